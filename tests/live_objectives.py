"""Objectives for tests/test_live_fields.py (module level: loky workers import them by name).

See tests/objectives.py for why they live apart from the test module.
"""

from __future__ import annotations

import json
import os
import tempfile
import time

from fastasha import tune


def steps(config: dict) -> None:
    """Reports ``config["n"]`` steps, sleeping ``config.get("sleep", 0)`` seconds before each."""
    for step in range(1, config["n"] + 1):
        time.sleep(config.get("sleep", 0.0))
        tune.report({"loss": config["x"] / step, "step": step})


def fails_once_then_resumes(config: dict) -> None:
    """Checkpoints every step; its first attempt raises before step ``config["fail_at"]``.

    The first attempt claims the file ``config["marker"]``; the retry resumes
    from the checkpoint of step ``fail_at - 1`` and reports up to ``config["n"]``.
    """
    checkpoint = tune.get_checkpoint()
    step = 0
    if checkpoint is not None:
        with open(os.path.join(checkpoint.path, "state.json")) as f:
            step = json.load(f)["step"]
    while step < config["n"]:
        step += 1
        if step == config["fail_at"]:
            try:
                os.close(os.open(config["marker"], os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            except FileExistsError:
                pass
            else:
                raise RuntimeError("the first attempt fails")
        time.sleep(config.get("sleep", 0.0))
        with tempfile.TemporaryDirectory() as folder:
            with open(os.path.join(folder, "state.json"), "w") as f:
                json.dump({"step": step}, f)
            tune.report({"loss": config["x"] / step, "step": step},
                        checkpoint=tune.Checkpoint.from_directory(folder))


def reports_own_since(config: dict) -> None:
    """Reports its own ``iterations_since_restore`` (100, 200, 300)."""
    for step in range(1, 4):
        tune.report({"loss": config["x"], "iterations_since_restore": 100 * step})
