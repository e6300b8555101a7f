"""A scheduler's on_trial_add / on_trial_complete are skipped only where they are TrialScheduler's.

The controller does not call the base class's hooks (they do nothing, and
the complete call would flatten every trial's last result first); any hook
of the scheduler's own, defined in a subclass or set on the instance, is
called as before, with the final result.
"""

from __future__ import annotations

import joblib

from fastasha import tune
from fastasha.schedulers import FIFOScheduler

from objectives import steps


def _fit(tmp_path, scheduler, name: str) -> tune.ResultGrid:
    with joblib.parallel_config(backend="threading"):
        return tune.Tuner(
            steps, param_space={"n": 3, "x": tune.grid_search([1, 2])},
            tune_config=tune.TuneConfig(metric="loss", mode="min", scheduler=scheduler),
            run_config=tune.RunConfig(name=name, storage_path=str(tmp_path), verbose=0),
            resources={"cpu": 2},
        ).fit()


def test_hooks_set_on_the_instance_are_called(tmp_path):
    scheduler = FIFOScheduler()
    added, completed = [], []
    scheduler.on_trial_add = lambda trial_id, bracket=None: added.append(trial_id) or 0
    scheduler.on_trial_complete = lambda trial_id, result: completed.append(
        (trial_id, result["training_iteration"], result["done"]))
    grid = _fit(tmp_path, scheduler, "instance")
    ids = sorted(r.trial_id for r in grid)
    assert sorted(added) == ids
    assert sorted(completed) == [(trial_id, 3, True) for trial_id in ids]


def test_hooks_of_a_subclass_are_called(tmp_path):
    completed = []

    class Counting(FIFOScheduler):
        def on_trial_complete(self, trial_id, result):
            completed.append(result["training_iteration"])

    grid = _fit(tmp_path, Counting(), "subclass")
    assert completed == [3, 3] and all(r.status == "TERMINATED" for r in grid)
