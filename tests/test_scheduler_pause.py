"""A custom scheduler that answers PAUSE: fastasha cannot pause, and says so once."""

from __future__ import annotations

import warnings

import joblib
import pytest

from fastasha import tune
from fastasha.schedulers import TrialScheduler


class PausesEveryResult(TrialScheduler):
    def __init__(self):
        super().__init__(metric="loss", mode="min")
        self.answers = 0

    def on_trial_result(self, trial_id, result):
        self.answers += 1
        return self.PAUSE


def five_steps(config):
    for step in range(1, 6):
        tune.report({"loss": config["x"] / step})


def _fit(tmp_path, scheduler):
    with joblib.parallel_config(backend="threading"):
        return tune.Tuner(
            five_steps, param_space={"x": tune.grid_search([1.0, 2.0, 3.0])},
            tune_config=tune.TuneConfig(scheduler=scheduler),
            run_config=tune.RunConfig(name="exp", storage_path=str(tmp_path), verbose=0),
            resources={"cpu": 2},
        ).fit()


def test_pause_warns_once_and_the_trials_go_on(tmp_path):
    scheduler = PausesEveryResult()
    with pytest.warns(RuntimeWarning, match="cannot pause a trial") as caught:
        grid = _fit(tmp_path, scheduler)
    assert sum("cannot pause" in str(w.message) for w in caught) == 1
    assert "PausesEveryResult" in str(caught[0].message)
    assert scheduler.answers == 15
    assert [r.metrics["training_iteration"] for r in grid] == [5, 5, 5]
    assert grid.num_terminated == 3


def test_continue_gives_no_warning(tmp_path):
    class Continues(PausesEveryResult):
        def on_trial_result(self, trial_id, result):
            return self.CONTINUE

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        grid = _fit(tmp_path, Continues())
    assert grid.num_terminated == 3
