"""Fixes of review 10 (search spaces, searchers, schedulers), each with a test that failed before it.

Sweeps run in real worker processes (joblib's loky backend), with the
objectives of ``tests/objectives.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from fastasha import tune

TESTS_DIR = Path(__file__).resolve().parent
if str(TESTS_DIR) not in sys.path:
    sys.path.insert(0, str(TESTS_DIR))

import objectives  # noqa: E402


def _run_config(tmp_path, name: str) -> tune.RunConfig:
    return tune.RunConfig(storage_path=str(tmp_path), name=name, verbose=0)


# ------------------------------------------------ the library-backed searchers

def _searcher(kind: str, **kwargs):
    """A library-backed searcher of ``kind``, or a skip when its library is missing."""
    if kind == "optuna":
        pytest.importorskip("optuna")
        from fastasha.search.optuna import OptunaSearch
        return OptunaSearch(seed=0, **kwargs)
    if kind == "hyperopt":
        pytest.importorskip("hyperopt")
        from fastasha.search.hyperopt import HyperOptSearch
        return HyperOptSearch(random_state_seed=0, **kwargs)
    if kind == "bayesopt":
        pytest.importorskip("bayes_opt")
        from fastasha.search.bayesopt import BayesOptSearch
        return BayesOptSearch(random_state=0, **kwargs)
    from fastasha.search.nevergrad import NevergradSearch, import_nevergrad
    try:
        ng = import_nevergrad()
    except ImportError:
        pytest.skip("nevergrad is not installed")
    return NevergradSearch(ng.optimizers.OnePlusOne, seed=0, **kwargs)


SEARCHERS = ["optuna", "hyperopt", "bayesopt", "nevergrad"]
ONE_METRIC = ["hyperopt", "bayesopt", "nevergrad"]


@pytest.mark.parametrize("kind", ONE_METRIC)
@pytest.mark.parametrize("where", ["constructor", "set_search_properties"])
def test_a_list_of_metrics_is_one_error_for_every_single_metric_searcher(kind, where):
    # HyperOptSearch raised TypeError, BayesOptSearch and NevergradSearch ValueError
    space = {"x": tune.uniform(0.0, 1.0)}
    with pytest.raises(ValueError, match=r"optimises one metric.*metric='loss', mode='min'"):
        if where == "constructor":
            _searcher(kind, space=space, metric=["a", "b"], mode=["min", "max"])
        else:
            _searcher(kind, metric=["a", "b"], mode=["min", "max"]).set_search_properties(
                None, None, space)


@pytest.mark.parametrize("kind", SEARCHERS)
def test_a_point_may_give_a_constant_of_param_space_with_space_metric_and_mode_given(
        kind, tmp_path):
    # A searcher given space=, a metric and a mode sets up in its constructor, before
    # param_space is known: a point copied whole from an earlier run, with the constant
    # "n" of param_space in it, was refused as "not in the space" there.
    searcher = _searcher(kind, space={"x": tune.uniform(0.0, 1.0)}, metric="loss", mode="min",
                         points_to_evaluate=[{"x": 0.25, "n": 2}])
    grid = tune.Tuner(objectives.steps, param_space={"n": 2},
                      tune_config=tune.TuneConfig(search_alg=searcher, num_samples=2),
                      run_config=_run_config(tmp_path, kind)).fit()
    assert grid.num_errors == 0 and len(grid) == 2
    first = min(grid, key=lambda r: r.metrics["trial_id"])
    assert first.config == {"x": 0.25, "n": 2}
    assert first.metrics["loss"] == pytest.approx(0.5)
    assert all(r.config["n"] == 2 and 0.0 <= r.config["x"] < 1.0 for r in grid)


@pytest.mark.parametrize("kind", SEARCHERS)
@pytest.mark.parametrize("point, match", [
    ({"x": 0.25, "n": 3}, r"other values than the constants of param_space: 'n': 3"),
    ({"x": 0.25, "y": 1}, r"not in the space \['y'\]"),
], ids=["other-value", "unknown"])
def test_a_point_is_still_checked_against_param_space_once_it_is_known(kind, point, match,
                                                                      tmp_path):
    searcher = _searcher(kind, space={"x": tune.uniform(0.0, 1.0)}, metric="loss", mode="min",
                         points_to_evaluate=[point])
    tuner = tune.Tuner(objectives.steps, param_space={"n": 2},
                       tune_config=tune.TuneConfig(search_alg=searcher, num_samples=2),
                       run_config=_run_config(tmp_path, kind))
    with pytest.raises(ValueError, match=match):
        tuner.fit()
    # used alone, without a sweep (and so without constants), at its first suggestion
    alone = _searcher(kind, space={"x": tune.uniform(0.0, 1.0)}, metric="loss", mode="min",
                      points_to_evaluate=[{"x": 0.25, "n": 2}])
    with pytest.raises(ValueError, match=r"not in the space \['n'\]"):
        alone.suggest("t0")
