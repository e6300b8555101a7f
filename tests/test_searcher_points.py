"""points_to_evaluate that give param_space's constants too, for the library-backed searchers.

A whole config copied from an earlier run (the best one, say) holds the
constants of ``param_space`` beside the searched values. Each searcher
takes such a point when the constants have their own values, and refuses
one that gives a constant another value (the sweep would override it).
"""

from __future__ import annotations

import objectives  # tests/objectives.py (pytest puts tests/ on sys.path)
import pytest
import searcher_helpers as helpers  # tests/searcher_helpers.py

from fastasha import tune

SPACE = {"x": tune.uniform(0.0, 1.0), "c": 3,
         "nested": {"d": "kept", "y": tune.uniform(0.0, 2.0)}}
POINT = {"x": 0.25, "c": 3, "nested": {"d": "kept", "y": 1.5}}


def _searcher(kind, point):
    if kind == "optuna":
        from fastasha.search.optuna import OptunaSearch

        return OptunaSearch(points_to_evaluate=[point], seed=1)
    if kind == "hyperopt":
        from fastasha.search.hyperopt import HyperOptSearch

        return HyperOptSearch(points_to_evaluate=[point], random_state_seed=1)
    if kind == "bayesopt":
        from fastasha.search.bayesopt import BayesOptSearch

        return BayesOptSearch(points_to_evaluate=[point], random_state=1)
    from fastasha.search.nevergrad import NevergradSearch

    return NevergradSearch(optimizer="OnePlusOne", points_to_evaluate=[point])


KINDS = ["optuna", "hyperopt", "bayesopt", "nevergrad"]


@pytest.mark.parametrize("kind", KINDS)
def test_a_whole_config_as_a_point_runs_first(tmp_path, kind):
    grid = helpers.sweep(tmp_path, "points", objectives.only_returns, SPACE,
                         _searcher(kind, POINT), num_samples=3, max_concurrent_trials=1)
    configs = [r.config for r in grid]
    assert configs[0] == POINT
    assert all(c["c"] == 3 and c["nested"]["d"] == "kept" for c in configs)


@pytest.mark.parametrize("kind", KINDS)
def test_a_point_that_changes_a_constant_is_refused(tmp_path, kind):
    point = {**POINT, "c": 4}
    with pytest.raises(ValueError, match=r"other values than the constants of param_space: "
                                         r"'c': 4 \(param_space: 3\)"):
        helpers.sweep(tmp_path, "changed", objectives.only_returns, SPACE,
                      _searcher(kind, point), num_samples=2)
