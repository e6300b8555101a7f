"""Objectives for tests/test_review8_fixes.py, imported by the worker processes.

Each writes what the test checks to ``<config["log_dir"]>/<name>.jsonl``.
"""

from __future__ import annotations

import json
import os

from fastasha import tune


def _log(config, file, **entry):
    with open(os.path.join(config["log_dir"], f"{file}.jsonl"), "a") as f:
        f.write(json.dumps(entry) + "\n")


def yields_until_stopped(config, greeting):
    """A generator objective (Ray's function API, under ``with_parameters``) that cleans up."""
    try:
        for step in range(1, 1000):
            if step == config.get("fail_at"):
                yield "no result"          # fails the trial: neither a dict nor a number
            yield {"loss": 1.0 / step}
    finally:
        print(f"{greeting} of {config['name']}", flush=True)
        _log(config, "cleanup", name=config["name"], trial_id=tune.get_context().get_trial_id())


def done_with_accuracy(config):
    """Ends its own trial with a true "done" at its third report, with its accuracy."""
    for step in range(1, 6):
        tune.report({"acc": config["acc"] if step == 3 else 0.0, "done": step == 3})
