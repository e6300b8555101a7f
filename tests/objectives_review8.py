"""Objectives for tests/test_review8_fixes.py, imported by the worker processes.

Each writes what the test checks to ``<config["log_dir"]>/<name>.jsonl``.
"""

from __future__ import annotations

import json
import os
import signal
import sys

from fastasha import tune
from fastasha.search import Searcher


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


# -- a searcher's state left by a replaced experiment (run as a script) ----------------------

class SavingSearcher(Searcher):
    """Suggests ``{"x": 0}``, ``{"x": 1}``, ...; saves how many it suggested."""

    def __init__(self):
        super().__init__()
        self.n = 0

    def suggest(self, trial_id):
        self.n += 1
        return {"x": self.n - 1}

    def save(self, checkpoint_path):
        with open(checkpoint_path, "w") as f:
            json.dump({"n": self.n}, f)

    def restore(self, checkpoint_path):
        with open(checkpoint_path) as f:
            self.n = json.load(f)["n"]


class UnsavedSearcher(SavingSearcher):
    """The same searcher without save/restore (Searcher's raise NotImplementedError)."""

    save = Searcher.save
    restore = Searcher.restore


def kills_its_driver(config):
    """On the threading backend the trial runs in the driver: killed as by a crash."""
    os.kill(os.getpid(), signal.SIGKILL)


def reports_x(config):
    tune.report({"loss": float(config["x"])})


if __name__ == "__main__":
    # python objectives_review8.py <storage_path> <name>: a sweep whose driver is killed
    # once its searcher's state was saved (at the start of fit())
    import joblib

    with joblib.parallel_config(backend="threading"):
        tune.Tuner(kills_its_driver,
                   tune_config=tune.TuneConfig(search_alg=SavingSearcher(), num_samples=2),
                   run_config=tune.RunConfig(storage_path=sys.argv[1], name=sys.argv[2],
                                             verbose=0)).fit()
