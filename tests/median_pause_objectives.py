"""Objectives for the MedianStoppingRule(hard_stop=False) sweeps of test_median_stopping.py.

Module level, so that loky workers import them by reference (see
tests/objectives.py).
"""

from __future__ import annotations

import json
import os
import tempfile
import time

from fastasha import tune

N_STEPS = 20


def checkpointed_curve(config: dict) -> None:
    """The learning curve ``q + 1/step`` for ``N_STEPS`` steps, each step checkpointed.

    It goes on from the step of the checkpoint it is given, and reports how
    many times it has started (``starts``), so that a result shows whether
    the trial was paused and resumed, and how often. ``config["sleep_s"]``
    (default 0) is slept before each step.
    """
    checkpoint = tune.get_checkpoint()
    state = {"step": 0, "starts": 0}
    if checkpoint is not None:
        with open(os.path.join(checkpoint.path, "state.json")) as f:
            state = json.load(f)
    state["starts"] += 1
    while state["step"] < N_STEPS:
        state["step"] += 1
        time.sleep(config.get("sleep_s", 0.0))
        with tempfile.TemporaryDirectory() as folder:
            with open(os.path.join(folder, "state.json"), "w") as f:
                json.dump(state, f)
            tune.report({"loss": config["q"] + 1.0 / state["step"], "step": state["step"],
                         "starts": state["starts"]},
                        checkpoint=tune.Checkpoint.from_directory(folder))
