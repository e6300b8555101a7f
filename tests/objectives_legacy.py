"""Objectives written against Ray Tune's function API up to 2.4 (tests/test_legacy_function_api.py).

``checkpoint_dir`` as the objective's parameter and as ``tune.checkpoint_dir``,
metrics as keywords of ``tune.report``. Each attempt appends a line to
``<log_dir>/attempts.jsonl``: the trial, the epoch it started from, and the
``checkpoint_dir`` it was given.
"""

from __future__ import annotations

import json
import os

from fastasha import tune


def _log(config, **entry):
    entry["trial_id"] = tune.get_trial_id()
    with open(os.path.join(config["log_dir"], "attempts.jsonl"), "a") as f:
        f.write(json.dumps(entry) + "\n")


def train(config, checkpoint_dir=None):
    """Ray 2.4's pattern: load from checkpoint_dir, save in tune.checkpoint_dir, then report."""
    start = 0
    if checkpoint_dir:
        with open(os.path.join(checkpoint_dir, "state.json")) as f:
            start = json.load(f)["epoch"] + 1
    _log(config, start=start, given=checkpoint_dir is not None)
    for epoch in range(start, config["epochs"]):
        if epoch == config.get("fail_at") and not os.path.exists(
                os.path.join(config["log_dir"], "failed")):
            open(os.path.join(config["log_dir"], "failed"), "w").close()
            raise RuntimeError(f"injected failure at epoch {epoch}")
        with tune.checkpoint_dir(step=config.get("step_tag", epoch)) as folder:
            with open(os.path.join(folder, "state.json"), "w") as f:
                json.dump({"epoch": epoch}, f)
        tune.report(loss=1.0 / (epoch + 1), epoch=epoch)


def train_with_data(config, checkpoint_dir=None, data=None):
    """with_parameters and checkpoint_dir together, as Ray's tutorials combine them."""
    tune.report(total=sum(data), given=checkpoint_dir is not None)


def saves_after_the_last_report(config, checkpoint_dir=None):
    tune.report(loss=1.0)
    with tune.checkpoint_dir(step=1) as folder:
        with open(os.path.join(folder, "state.json"), "w") as f:
            json.dump({"final": True}, f)


def anonymous_value(config):
    """Ray's tune.report(value): the value is reported as "_metric"."""
    tune.report(0.25)
    tune.report(0.5, acc=1.0)


def numpy_values(config):
    """tune.report(value) with the numpy scalars a mean or a loss often is, keywords or not."""
    import numpy as np

    tune.report(np.float32(0.25))
    tune.report(np.float32(0.5), acc=1.0)
    tune.report(np.int64(2), acc=0.5)


def saves_with_and_after_the_last_report(config, checkpoint_dir=None):
    """A checkpoint with each report, then one more after the loop (the final state)."""
    for epoch in range(2):
        with tune.checkpoint_dir(step=epoch) as folder:
            with open(os.path.join(folder, "state.json"), "w") as f:
                json.dump({"epoch": epoch}, f)
        tune.report(loss=1.0 / (epoch + 1))
    with tune.checkpoint_dir(step=2) as folder:
        with open(os.path.join(folder, "state.json"), "w") as f:
            json.dump({"final": True}, f)


def killed_while_saving(config, checkpoint_dir=None):
    """The trial process dies (SIGKILL: no finally runs) inside tune.checkpoint_dir()."""
    import signal

    tune.report(loss=1.0)
    with tune.checkpoint_dir(step=config["step_tag"]) as folder:
        with open(os.path.join(folder, "state.json"), "w") as f:
            json.dump({"half": "written"}, f)
        os.kill(os.getpid(), signal.SIGKILL)


def done_at(config):
    """Ray 1.x's way to end a trial early: ``tune.report(..., done=True)``, then go on."""
    for step in range(10):
        _log(config, step=step)
        if config["form"] == "keywords":
            tune.report(loss=float(step), done=step == config["done_at"])
        else:
            tune.report({"loss": float(step), "done": step == config["done_at"]})


def done_not_a_bool(config):
    import numpy as np

    tune.report({"loss": 1.0, "done": np.array([True, False])})
