"""Module-level objectives for tests/test_review_trackers.py (workers import them)."""

from __future__ import annotations

import os

from fastasha import tune


def writes_a_file(config):
    """Five reports; a file in the trial's folder for MLflowLoggerCallback(save_artifact=True)."""
    folder = tune.get_context().get_trial_dir()
    for step in range(1, 6):
        with open(os.path.join(folder, "notes.txt"), "w") as f:
            f.write(f"step {step}\n")
        tune.report({"loss": config["x"] / step})
