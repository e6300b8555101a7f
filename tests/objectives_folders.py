"""Objectives of tests/test_trial_folders.py (importable by worker processes)."""

from __future__ import annotations

import os

from fastasha import tune


def writes_relative(config):
    """Writes a file under a relative path, as Ray's getting-started tutorial does."""
    with open("artifact.txt", "w") as f:
        f.write(str(config["i"]))
    tune.report({"cwd": os.getcwd(), "i": config["i"]})
