"""Objectives of tests/test_trial_folders.py (importable by worker processes)."""

from __future__ import annotations

import os

from fastasha import tune


def writes_relative(config):
    """Writes a file under a relative path, as Ray's getting-started tutorial does."""
    with open("artifact.txt", "w") as f:
        f.write(str(config["i"]))
    tune.report({"cwd": os.getcwd(), "i": config["i"]})


def prints(config):
    """Writes to stdout and stderr from Python and from a child process (fd level)."""
    import subprocess
    import sys

    print(f"out {config['i']}")
    print(f"err {config['i']}", file=sys.stderr)
    subprocess.run(["echo", f"child {config['i']}"], check=True)
    tune.report({"i": config["i"]})
