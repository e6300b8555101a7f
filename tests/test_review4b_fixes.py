"""Defects found reviewing OptunaSearch (fastasha/search/optuna.py) and the loggers.

Each test reproduces one defect through the public API; the study a
searcher works on is read back with Optuna's own ``load_study``.
"""

from __future__ import annotations

import warnings

import joblib
import pytest

optuna = pytest.importorskip("optuna")

from optuna.trial import TrialState
from test_optuna_search import StopAllAfter  # (pytest puts tests/ on sys.path)

from fastasha import tune
from fastasha.search.optuna import OptunaSearch

optuna.logging.set_verbosity(optuna.logging.WARNING)


def quadratic(config):
    tune.report({"loss": (config["x"] - 0.3) ** 2})


def test_space_with_a_mode_only_optimises_the_sweeps_metric(tmp_path):
    # OptunaSearch(space, mode=...) without a metric, the metric given to TuneConfig:
    # the searcher must optimise "loss", not Ray's anonymous "_metric" (which no result
    # has, so that every trial was PRUNED and TPE never learnt anything)
    storage = optuna.storages.InMemoryStorage()
    searcher = OptunaSearch({"x": tune.uniform(-1.0, 1.0)}, mode="min", seed=0,
                            storage=storage, study_name="s")
    with joblib.parallel_config(backend="threading"):
        tune.Tuner(quadratic,
                   tune_config=tune.TuneConfig(metric="loss", mode="min", search_alg=searcher,
                                               num_samples=4),
                   run_config=tune.RunConfig(storage_path=str(tmp_path), name="m",
                                             verbose=0)).fit()
    assert searcher.metric == "loss"
    trials = optuna.load_study(study_name="s", storage=storage).trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 4


def test_a_restore_with_a_storage_does_not_run_points_to_evaluate_again(tmp_path):
    # the fresh searcher given to Tuner.restore enqueued its points_to_evaluate into the
    # persistent study once more, and the restored sweep ran them a second time
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    points = [{"x": 0.5}, {"x": -0.5}]

    def searcher():
        return OptunaSearch({"x": tune.uniform(-1.0, 1.0)}, metric="loss", mode="min", seed=0,
                            points_to_evaluate=points, storage=url, study_name="s")

    with joblib.parallel_config(backend="threading"):
        half = tune.Tuner(
            quadratic,
            tune_config=tune.TuneConfig(search_alg=searcher(), num_samples=6,
                                        max_concurrent_trials=1),
            run_config=tune.RunConfig(storage_path=str(tmp_path), name="e", verbose=0,
                                      stop=StopAllAfter(3))).fit()
        assert 3 <= len(half) < 6
        grid = tune.Tuner.restore(half.experiment_path, quadratic,
                                  search_alg=searcher()).fit()
    xs = [r.config["x"] for r in grid]
    assert len(xs) == 6
    assert xs[:2] == [0.5, -0.5]
    assert xs.count(0.5) == 1 and xs.count(-0.5) == 1, xs


@pytest.mark.parametrize("value", [float("nan"), [1.0, float("nan")]], ids=["one", "two"])
def test_a_nan_final_value_ends_the_optuna_trial_failed(value):
    # as on_trial_complete's docstring says: Optuna refuses NaN, and the trial is FAIL
    # (it stayed RUNNING in the study for ever)
    storage = optuna.storages.InMemoryStorage()
    two = isinstance(value, list)
    searcher = OptunaSearch({"x": tune.uniform(0.0, 1.0)}, metric=["a", "b"] if two else "a",
                            mode=["min", "max"] if two else "min", seed=0, storage=storage,
                            study_name="s")
    searcher.suggest("t0")
    with pytest.warns(UserWarning, match="nan"):
        searcher.on_trial_complete("t0", {"a": value[0], "b": value[1]} if two else
                                   {"a": value})
    searcher.suggest("t1")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        searcher.on_trial_complete("t1", {"a": 1.0, "b": 2.0})
    trials = optuna.load_study(study_name="s", storage=storage).trials
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.COMPLETE]
