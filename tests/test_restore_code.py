"""Tuner.restore and what the store does not keep: callbacks and progress reporters.

Ray Tune pickles the run's callbacks with the experiment and restores them;
fastasha stores no code, so ``Tuner.restore`` takes them again and warns when
an experiment that had some is restored without.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import joblib
import pytest

from fastasha import tune

if str(Path(__file__).resolve().parent) not in sys.path:   # --import-mode=importlib
    sys.path.insert(0, str(Path(__file__).resolve().parent))

from test_restore import StopAllAfter, graded  # noqa: E402


class Completions(tune.Callback):
    def __init__(self):
        self.completed = []

    def on_trial_complete(self, iteration, trials, trial, **info):
        self.completed.append(trial.trial_id)


class Rows(tune.ProgressReporter):
    """A reporter of the user's own: counts its calls."""

    def __init__(self):
        self.reports = 0

    def should_report(self, trials, done=False):
        return done

    def report(self, trials, done, *sys_info):
        self.reports += 1


def _interrupted(tmp_path, **run_config):
    """A sweep of 6 trials, one at a time, ended after 2 by its stopper."""
    with joblib.parallel_config(backend="threading"):
        grid = tune.Tuner(
            graded, param_space={"x": tune.grid_search([1, 2, 3, 4, 5, 6])},
            tune_config=tune.TuneConfig(metric="loss", mode="min", max_concurrent_trials=1),
            run_config=tune.RunConfig(name="exp", storage_path=str(tmp_path),
                                      stop=StopAllAfter(2), **run_config),
        ).fit()
    assert grid.num_terminated < 6
    return grid


def test_callbacks_passed_to_restore_hear_the_rest_of_the_sweep(tmp_path):
    first = Completions()
    grid = _interrupted(tmp_path, callbacks=[first], verbose=0)
    again = Completions()
    with warnings.catch_warnings():
        warnings.simplefilter("error")       # passing them again: no warning
        tuner = tune.Tuner.restore(grid.experiment_path, graded, callbacks=[again])
    with joblib.parallel_config(backend="threading"):
        restored = tuner.fit()
    assert restored.num_terminated == 6
    assert len(again.completed) == 6 - grid.num_terminated
    assert not set(again.completed) & set(first.completed)


def test_restoring_without_the_callbacks_warns_and_names_them(tmp_path):
    grid = _interrupted(tmp_path, callbacks=[Completions()], verbose=0)
    with pytest.warns(UserWarning, match=r"callbacks \(Completions\): pass callbacks=\[\.\.\.\]"):
        tuner = tune.Tuner.restore(grid.experiment_path, graded)
    with joblib.parallel_config(backend="threading"):
        assert tuner.fit().num_terminated == 6


def test_a_progress_reporter_passed_to_restore_is_used(tmp_path):
    grid = _interrupted(tmp_path, progress_reporter=Rows(), verbose=1)
    with pytest.warns(UserWarning, match=r"a progress reporter \(Rows\)"):
        tune.Tuner.restore(grid.experiment_path, graded)
    reporter = Rows()
    tuner = tune.Tuner.restore(grid.experiment_path, graded, progress_reporter=reporter)
    with joblib.parallel_config(backend="threading"):
        assert tuner.fit().num_terminated == 6
    assert reporter.reports >= 1       # the last report, at the end


def test_an_experiment_without_callbacks_restores_without_a_warning(tmp_path):
    grid = _interrupted(tmp_path, verbose=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tune.Tuner.restore(grid.experiment_path, graded)
