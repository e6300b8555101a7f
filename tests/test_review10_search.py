"""Fixes of review 10 (search spaces, searchers, schedulers), each with a test that failed
before it.

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


# --------------------------------------------------------- custom schedulers

from fastasha.schedulers import (  # noqa: E402
    AsyncHyperBandScheduler,
    FIFOScheduler,
    TrialScheduler,
)


class StopsAtTwo(FIFOScheduler):
    """fastasha's form, extending FIFOScheduler: stops each trial at its second result."""

    def __init__(self):
        super().__init__()
        self.heard: list[tuple[str, int]] = []

    def on_trial_result(self, trial_id, result):
        self.heard.append((trial_id, result["training_iteration"]))
        return self.STOP if result["training_iteration"] >= 2 else self.CONTINUE


def test_a_fifo_subclass_that_judges_results_is_asked(tmp_path):
    # FIFOScheduler's next_decision_point (inf) was inherited: no result ever reached the
    # subclass's on_trial_result, and every trial ran to its end
    # (trials in worker processes; the scheduler, and its record, in the driver)
    scheduler = StopsAtTwo()
    grid = tune.Tuner(objectives.steps, param_space={"n": 6, "x": tune.grid_search([1, 2])},
                      tune_config=tune.TuneConfig(scheduler=scheduler),
                      run_config=_run_config(tmp_path, "fifo")).fit()
    assert [r.metrics["training_iteration"] for r in grid] == [2, 2]
    assert all(r.metrics["loss"] == pytest.approx(2 * r.config["x"]) for r in grid)
    assert sorted(i for _, i in scheduler.heard) == [1, 1, 2, 2]


def test_a_fifo_subclass_with_hooks_is_not_stateless_and_plain_fifo_is():
    assert FIFOScheduler.stateless and FIFOScheduler().next_decision_point("t") == float("inf")
    assert not StopsAtTwo.stateless
    assert StopsAtTwo().next_decision_point("t") == float("-inf")

    class Declared(StopsAtTwo):
        stateless = True

    class Counting(FIFOScheduler):
        def on_trial_add(self, trial_id, bracket=None):
            return 0

    assert Declared.stateless and not Counting.stateless
    assert Counting().next_decision_point("t") == float("inf")   # it judges no result
    with pytest.raises(NotImplementedError, match="call it per result"):
        StopsAtTwo().on_results([0], [1], [1.0])


class RayStyle(FIFOScheduler):
    """A scheduler written for Ray: hooks take (tune_controller, trial[, result])."""

    def __init__(self, limit):
        super().__init__()
        self.limit = limit
        self.calls: list[tuple] = []

    def on_trial_add(self, tune_controller, trial):
        self.calls.append(("add", trial.trial_id, len(tune_controller.get_trials())))

    def on_trial_result(self, tune_controller, trial, result):
        self.calls.append(("result", trial.trial_id, result["training_iteration"]))
        if trial.config["x"] > self.limit and result["training_iteration"] >= 2:
            return TrialScheduler.STOP
        return TrialScheduler.CONTINUE

    def on_trial_complete(self, tune_controller, trial, result):
        live = [t.trial_id for t in tune_controller.get_live_trials()]
        self.calls.append(("complete", trial.trial_id, result["training_iteration"],
                           trial.trial_id in live))

    def on_trial_error(self, tune_controller, trial):
        self.calls.append(("error", trial.trial_id, trial.config["x"]))


def _ray_style_sweep(tmp_path, name, objective, space, scheduler):
    # (trials in worker processes; the scheduler, and its record, in the driver)
    return tune.Tuner(objective, param_space=space,
                      tune_config=tune.TuneConfig(scheduler=scheduler),
                      run_config=_run_config(tmp_path, name)).fit()


def test_a_scheduler_written_for_ray_gets_the_controller_and_the_trial(tmp_path):
    # its hooks were called with the trial id alone: TypeError "missing 1 required
    # positional argument: 'trial'" at the first trial
    scheduler = RayStyle(limit=1)
    grid = _ray_style_sweep(tmp_path, "ray-style", objectives.steps,
                            {"n": 4, "x": tune.grid_search([1, 2])}, scheduler)
    assert grid.num_errors == 0
    assert {r.config["x"]: r.metrics["training_iteration"] for r in grid} == {1: 4, 2: 2}
    ids = {r.config["x"]: r.metrics["trial_id"] for r in grid}
    adds = [c for c in scheduler.calls if c[0] == "add"]
    assert [c[1] for c in adds] == [ids[1], ids[2]]
    assert [c[2] for c in adds] == [1, 2]          # get_trials() holds the trial added
    results = sorted(c[1:] for c in scheduler.calls if c[0] == "result")
    assert results == sorted([(ids[1], i) for i in (1, 2, 3, 4)] + [(ids[2], i) for i in (1, 2)])
    completes = sorted(c[1:] for c in scheduler.calls if c[0] == "complete")
    assert completes == sorted([(ids[1], 4, True), (ids[2], 2, True)])


def test_a_scheduler_written_for_ray_hears_errors_and_is_replayed_on_restore(tmp_path):
    scheduler = RayStyle(limit=10)
    grid = _ray_style_sweep(tmp_path, "ray-errors", objectives.fails_for,
                            {"bad": 2, "x": tune.grid_search([1, 2])}, scheduler)
    assert sorted(r.error is not None for r in grid) == [False, True]
    assert [c for c in scheduler.calls if c[0] == "error"] == \
        [("error", next(r.metrics["trial_id"] for r in grid if r.error), 2)]
    # a restore gives a fresh one the calls again, each with its trial (the controller's
    # trials are not there while they are replayed: the restored trials join after that)
    fresh = RayStyle(limit=10)
    again = tune.Tuner.restore(grid.experiment_path, objectives.fails_for, scheduler=fresh)
    assert len(again.fit()) == 2
    def without_counts(calls):
        return [c[:2] if c[0] == "add" else c[:3] if c[0] == "complete" else c for c in calls]

    assert without_counts(fresh.calls) == without_counts(scheduler.calls)
    assert len(scheduler.calls) == 2 + 5 + 1 + 1    # adds, results, one end, one error


# ------------------------------------------------------------ Domain.sample

def test_sample_takes_a_list_of_configs_one_per_value_as_ray_does():
    # Ray's Domain.sample(config: Optional[Union[List[Dict], Dict]]): config[i] for the
    # i-th value; fastasha refused a list with TypeError
    double = tune.sample_from(lambda spec: spec.config.a * 2)
    assert double.sample([{"a": 1}, {"a": 5}], size=2) == [2, 10]
    assert tune.sample_from(lambda config: config["a"]).sample([{"a": 7}]) == 7
    # one config for every value, as before; other domains ignore the configs
    assert double.sample({"a": 3}, size=2) == [6, 6]
    assert tune.uniform(0, 1).sample([{}, {}], size=2, random_state=0) == \
        tune.uniform(0, 1).sample(size=2, random_state=0)
    with pytest.raises(ValueError, match="got 1 configs for size=2"):
        double.sample([{"a": 1}], size=2)
    with pytest.raises(TypeError, match="takes the config dict"):
        double.sample([{"a": 1}, 3], size=2)


class HearsEveryResult(AsyncHyperBandScheduler):
    """An ASHA subclass that overrides on_trial_result (to log, as Ray users do)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.heard: list[tuple[str, int]] = []

    def on_trial_result(self, trial_id, result):
        self.heard.append((trial_id, result["training_iteration"]))
        return super().on_trial_result(trial_id, result)


def test_an_asha_subclass_that_overrides_on_trial_result_hears_every_result(tmp_path):
    # it inherited ASHA's next_decision_point: only results at rungs reached it, as in Ray
    # none would be missed; its decisions stay ASHA's
    scheduler = HearsEveryResult(metric="loss", mode="min", grace_period=2, max_t=6)
    grid = tune.Tuner(objectives.steps, param_space={"n": 6, "x": tune.grid_search([1, 2, 3])},
                      tune_config=tune.TuneConfig(scheduler=scheduler),
                      run_config=_run_config(tmp_path, "asha-sub")).fit()
    reported = sorted((r.metrics["trial_id"], i) for r in grid
                      for i in range(1, r.metrics["training_iteration"] + 1))
    assert sorted(scheduler.heard) == reported
    assert len(reported) > 3 * 2      # more than the results at the rung at 2


def test_a_subclass_that_sets_its_own_decision_points_keeps_them():
    from fastasha._controller import judges_every_result

    class OwnPoints(HearsEveryResult):
        def next_decision_point(self, trial_id):
            return 4.0

    assert judges_every_result(HearsEveryResult(grace_period=2, max_t=6))
    assert not judges_every_result(OwnPoints(grace_period=2, max_t=6))
    assert not judges_every_result(AsyncHyperBandScheduler(grace_period=2, max_t=6))
