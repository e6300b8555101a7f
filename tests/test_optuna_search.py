"""OptunaSearch (fastasha/search/optuna.py): Ray Tune's Optuna searcher, with real optuna.

The study a searcher works on is read back through Optuna's public API: the
searcher is given an ``InMemoryStorage`` of the test's own, and
``optuna.load_study`` opens the study there. Sweeps run on joblib's default
backend (loky): their objectives are module-level functions of this file.
The recipes the three library-backed searchers' tests share are
tests/searcher_helpers.py's.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import searcher_helpers as helpers  # tests/searcher_helpers.py

optuna = pytest.importorskip("optuna")

from optuna.distributions import (  # noqa: E402
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.trial import TrialState  # noqa: E402

from fastasha import tune  # noqa: E402
from fastasha.schedulers import ASHAScheduler  # noqa: E402
from fastasha.search import Searcher  # noqa: E402
from fastasha.search.optuna import OptunaSearch  # noqa: E402

optuna.logging.set_verbosity(optuna.logging.WARNING)

# tests/test_review4b_fixes.py imports StopAllAfter from this module; it lives in
# tests/searcher_helpers.py now
StopAllAfter = helpers.StopAllAfter


def _searcher(**kwargs):
    """An OptunaSearch with a storage of the test's own; the study is ``_study(storage)``."""
    storage = optuna.storages.InMemoryStorage()
    return OptunaSearch(storage=storage, study_name="s", **kwargs), storage


def _study(storage):
    return optuna.load_study(study_name="s", storage=storage)


def _distributions(space):
    """The distributions Optuna gets for a param_space (of the first trial suggested)."""
    searcher, storage = _searcher(metric="loss", mode="min", seed=0)
    assert searcher.set_search_properties(None, None, space) is True
    searcher.suggest("t0")
    return _study(storage).trials[0].distributions


# ------------------------------------------------------------------------- import

def test_importing_fastasha_search_does_not_import_optuna():
    assert helpers.python_prints("import sys; import fastasha.search, fastasha.search.optuna, "
                                 "fastasha.tune; print('optuna' in sys.modules)") == "False"


def test_the_ray_paths_give_the_same_class():
    from fastasha.tune.search.optuna import OptunaSearch as aliased

    assert aliased is OptunaSearch
    assert tune.search.optuna.OptunaSearch is OptunaSearch
    assert issubclass(OptunaSearch, Searcher)


def test_without_optuna_construction_says_how_to_install(monkeypatch):
    helpers.check_install_hint(monkeypatch, OptunaSearch, "optuna", None,
                               r'pip install "optuna>=3\.4" \(or, in a clone of '
                               r'fastasha: pip install -e "\.\[optuna\]"\)')


# -------------------------------------------------------------------- conversion

@pytest.mark.parametrize("domain, expected", [
    (tune.uniform(0.5, 2.0), FloatDistribution(0.5, 2.0)),
    (tune.quniform(0.0, 1.0, 0.25), FloatDistribution(0.0, 1.0, step=0.25)),
    (tune.loguniform(1e-4, 1e-1), FloatDistribution(1e-4, 1e-1, log=True)),
    (tune.randint(1, 5), IntDistribution(1, 4)),                  # upper excluded
    (tune.qrandint(0, 10, 5), IntDistribution(0, 10, step=5)),    # upper included
    (tune.qrandint(1, 10, 3), IntDistribution(3, 9, step=3)),     # multiples of q
    (tune.qrandint(1, 5), IntDistribution(1, 5)),
    (tune.lograndint(1, 100), IntDistribution(1, 99, log=True)),
    (tune.qlograndint(1, 100, 1), IntDistribution(1, 100, log=True)),
    (tune.choice(["a", 1, None]), CategoricalDistribution(["a", 1, None])),
], ids=["uniform", "quniform", "loguniform", "randint", "qrandint", "qrandint-offset",
        "qrandint-1", "lograndint", "qlograndint-1", "choice"])
def test_each_domain_becomes_rays_optuna_distribution(domain, expected):
    assert _distributions({"p": domain, "const": 3}) == {"p": expected}


def test_qloguniform_drops_its_step_with_a_warning_as_in_ray():
    with pytest.warns(UserWarning, match="no quantised log scale"):
        found = _distributions({"p": tune.qloguniform(1e-4, 1e-1, 1e-4)})
    assert found == {"p": FloatDistribution(1e-4, 1e-1, log=True)}


def test_nested_domains_are_named_with_a_slash_and_come_back_nested():
    space = {"model": {"lr": tune.loguniform(1e-3, 1e-1), "depth": {"n": tune.randint(1, 3)}},
             "batch": 32}
    searcher, storage = _searcher(metric="loss", mode="min", seed=0)
    searcher.set_search_properties(None, None, space)
    config = searcher.suggest("t0")
    assert set(_study(storage).trials[0].distributions) == {"model/lr", "model/depth/n"}
    assert set(config) == {"model"} and set(config["model"]) == {"lr", "depth"}
    assert config["model"]["depth"]["n"] in (1, 2)
    assert searcher.suggest("t0") == config          # asked again: the same config


def test_a_space_of_optuna_distributions_or_domains_given_to_the_searcher():
    space = {"x": FloatDistribution(-1.0, 1.0), "sub": {"k": tune.randint(0, 3)}}
    searcher, storage = _searcher(space=space, metric="loss", mode="min", seed=0)
    assert searcher.set_search_properties("other", "max", {"const": 1}) is False
    assert (searcher.metric, searcher.mode) == ("loss", "min")     # its own are kept
    config = searcher.suggest("t0")
    assert -1.0 <= config["x"] <= 1.0 and config["sub"]["k"] in (0, 1, 2)
    assert _study(storage).direction == optuna.study.StudyDirection.MINIMIZE


def test_space_given_to_the_searcher_takes_the_sweeps_metric_and_mode():
    searcher, storage = _searcher(space={"x": tune.uniform(0, 1)})
    searcher.set_search_properties("score", "max", {})
    assert (searcher.metric, searcher.mode) == ("score", "max")
    searcher.suggest("t0")
    searcher.on_trial_complete("t0", {"score": 0.5})
    study = _study(storage)
    assert study.direction == optuna.study.StudyDirection.MAXIMIZE
    assert study.trials[0].value == 0.5


# ---------------------------------------------------------------------- refusals

@pytest.mark.parametrize("space, match", [
    ({"p": tune.randn(0, 1)}, r"randn\(\) domain, but Optuna has no normal"),
    ({"p": tune.qrandn(0, 1, 0.1)}, r"qrandn\(\) domain"),
    ({"p": tune.qlograndint(1, 100, 5)}, r"lograndint\(1, 101\).*qrandint\(1, 100, 5\)"),
    ({"p": tune.grid_search([1, 2])}, r"grid_search\(\).*use choice"),
    ({"p": tune.sample_from(lambda spec: 1)}, r"sample_from\(\).*inside the objective"),
    ({"p": tune.choice([{"x": tune.uniform(0, 1)}, 2])}, "choice.*holds a domain"),
    ({"p": [tune.uniform(0, 1), 2]}, "inside the list"),
    ({"a/b": tune.uniform(0, 1)}, "holds '/'"),
], ids=["randn", "qrandn", "qlograndint", "grid_search", "sample_from", "nested-choice",
        "list", "slash"])
def test_domains_optuna_cannot_search_are_refused(space, match):
    helpers.check_refused(OptunaSearch, space, match)


def test_a_sweep_with_an_unsupported_domain_fails_before_any_trial(tmp_path):
    with pytest.raises(ValueError, match="no normal distribution"):
        helpers.sweep(tmp_path, None, quadratic, {"x": tune.randn(0, 1)}, OptunaSearch(),
                      num_samples=2)


def test_the_space_given_twice_or_not_at_all_is_refused():
    helpers.check_space_refusals(OptunaSearch, {"x": tune.uniform(0, 1)})


def test_constants_in_space_are_refused():
    with pytest.raises(ValueError, match="Put constants in the Tuner's param_space"):
        OptunaSearch(space={"x": tune.uniform(0, 1), "c": 3}, metric="loss", mode="min")


@pytest.mark.parametrize("kwargs, error, match", [
    ({"mode": "minimize"}, ValueError, "mode must be 'min' or 'max'"),
    ({"metric": 3}, TypeError, "metric must be a result key"),
    ({"metric": "a", "mode": ["min"]}, TypeError, "both be strings or both lists"),
    ({"metric": ["a", "b"], "mode": ["min"]}, ValueError, "same length"),
    ({"sampler": "tpe"}, TypeError, "sampler must be an Optuna sampler"),
    ({"space": 3}, TypeError, "space must be a dict"),
    ({"seed": 1.5}, TypeError, "seed must be an int"),
    ({"points_to_evaluate": {"x": 1}}, TypeError, "points_to_evaluate must be a list"),
    ({"points_to_evaluate": [{"x": 0.1}], "evaluated_rewards": [1, 2]}, ValueError,
     "one value per point"),
], ids=["mode", "metric", "str-and-list", "lengths", "sampler", "space", "seed", "points",
        "rewards"])
def test_bad_arguments_are_refused(kwargs, error, match):
    with pytest.raises(error, match=match):
        OptunaSearch(**kwargs)


def test_a_missing_mode_is_refused_before_the_sweep():
    helpers.check_a_missing_mode(OptunaSearch)


def test_points_that_do_not_fit_the_space_are_refused():
    space = {"x": tune.uniform(0, 1), "k": tune.randint(0, 3)}
    with pytest.raises(ValueError, match=r"missing \['k'\]"):
        OptunaSearch(space, metric="loss", mode="min", points_to_evaluate=[{"x": 0.5}])
    with pytest.raises(ValueError, match="is not in its search space"):
        OptunaSearch(space, metric="loss", mode="min", points_to_evaluate=[{"x": 0.5, "k": 3}])


def test_a_seed_with_a_sampler_is_warned_of():
    with pytest.warns(UserWarning, match="seed is ignored|it is ignored"):
        OptunaSearch(sampler=optuna.samplers.RandomSampler(seed=0), seed=1)


def test_define_by_run_with_evaluated_rewards_is_refused():
    with pytest.raises(TypeError, match="define-by-run"):
        OptunaSearch(lambda trial: None, points_to_evaluate=[{"x": 1}], evaluated_rewards=[1])


# ---------------------------------------------------------------- the study's story

def test_completion_failure_and_a_missing_metric_reach_the_study_as_in_ray():
    searcher, storage = _searcher(space={"x": tune.uniform(0, 1)}, metric="loss", mode="min")
    for t in ("a", "b", "c", "d"):
        searcher.suggest(t)
    searcher.on_trial_result("a", {"loss": 3.0, "training_iteration": 1})
    searcher.on_trial_result("a", {"loss": 2.0, "training_iteration": 2})
    searcher.on_trial_result("a", {"other": 1.0, "training_iteration": 3})     # skipped
    searcher.on_trial_complete("a", {"loss": 2.0, "training_iteration": 2})
    searcher.on_trial_complete("b", None, error=True)
    searcher.on_trial_complete("c", {"other": 1.0})
    searcher.on_trial_complete("d", {"loss": 5.0}, error=True)    # a value: COMPLETE, as Ray
    with pytest.warns(UserWarning, match="already ended"):
        searcher.on_trial_complete("a", {"loss": 0.0})
    trials = _study(storage).trials
    assert [t.state for t in trials] == [TrialState.COMPLETE, TrialState.FAIL,
                                         TrialState.PRUNED, TrialState.COMPLETE]
    assert trials[0].value == 2.0 and trials[0].intermediate_values == {1: 3.0, 2: 2.0}


def test_points_to_evaluate_come_first_nested_as_configs():
    points = [{"x": 0.25, "sub": {"k": 2}}, {"x": 0.75, "sub": {"k": 0}}]
    space = {"x": tune.uniform(0, 1), "sub": {"k": tune.randint(0, 3)}}
    searcher = OptunaSearch(metric="loss", mode="min", points_to_evaluate=points, seed=0)
    searcher.set_search_properties(None, None, space)
    assert [searcher.suggest("a"), searcher.suggest("b")] == points


def test_evaluated_rewards_add_the_points_as_finished_trials():
    points = [{"x": 0.25}, {"x": 0.75}]
    searcher, storage = _searcher(space={"x": tune.uniform(0, 1)}, metric="loss", mode="min",
                                  points_to_evaluate=points, evaluated_rewards=[1.5, 0.5])
    trials = _study(storage).trials
    assert [(t.params, t.value, t.state) for t in trials] == [
        ({"x": 0.25}, 1.5, TrialState.COMPLETE), ({"x": 0.75}, 0.5, TrialState.COMPLETE)]
    searcher.suggest("t0")              # asks the sampler, not the points again
    assert len(_study(storage).trials) == 3


def test_a_define_by_run_space():
    def space(trial):
        trial.suggest_float("x", 0.0, 1.0)
        return {"c": 7}

    searcher = OptunaSearch(space, metric="loss", mode="min", seed=0)
    config = searcher.suggest("t0")
    assert set(config) == {"x", "c"} and config["c"] == 7 and 0.0 <= config["x"] <= 1.0


def test_several_objectives():
    searcher, storage = _searcher(space={"x": tune.uniform(0, 1)}, metric=["a", "b"],
                                  mode=["min", "max"], seed=0)
    searcher.suggest("t0")
    searcher.on_trial_result("t0", {"a": 1.0, "b": 2.0, "training_iteration": 1})
    searcher.on_trial_complete("t0", {"a": 1.0, "b": 2.0})
    assert _study(storage).trials[0].values == [1.0, 2.0]


def test_tpe_learns_a_quadratic():
    """In 3-D, TPE's late trials are far better than random ones, and it beats its startup.

    TPE's first 10 trials are random; trials 20-39 follow what it learnt. Their
    median loss is compared with that of 40 uniform draws (about 115 here; TPE's
    is about 20 for these seeds), with a factor of 2 to spare.
    """
    dims = ("x0", "x1", "x2")
    for seed in (0, 1, 2):
        searcher = OptunaSearch({d: tune.uniform(-10.0, 10.0) for d in dims}, metric="loss",
                                mode="min", seed=seed)
        losses = []
        for i in range(40):
            config = searcher.suggest(str(i))
            losses.append(sum((config[d] - 3.0) ** 2 for d in dims))
            searcher.on_trial_complete(str(i), {"loss": losses[-1]})
        draws = np.random.default_rng(seed).uniform(-10.0, 10.0, (40, len(dims)))
        random_median = float(np.median(((draws - 3.0) ** 2).sum(axis=1)))
        late_median = float(np.median(losses[20:]))
        assert late_median < 0.5 * random_median, (seed, late_median, random_median)
        assert min(losses) < min(losses[:10]), seed


def test_set_max_concurrency_leaves_it_to_the_limiter():
    assert OptunaSearch().set_max_concurrency(2) is False


# ------------------------------------------------------------------------- sweeps

def quadratic(config):
    """One report: ``loss = (x - 0.3)^2``."""
    tune.report({"loss": (config["x"] - 0.3) ** 2})


def stepped(config):
    """Up to 8 reports, getting better; fails for ``x > 0.8``, reports nothing for ``x < -0.8``."""
    if config["x"] < -0.8:
        return
    for step in range(1, 9):
        if config["x"] > 0.8 and step == 2:
            raise RuntimeError("diverged")
        tune.report({"loss": (config["x"] - 0.3) ** 2 + config["sub"]["k"] + 1.0 / step})


SPACE = {"x": tune.uniform(-1.0, 1.0), "sub": {"k": tune.randint(0, 3), "c": "const"},
         "lr": tune.loguniform(1e-4, 1e-1), "act": tune.choice(["relu", "tanh"])}


def _in_space(config):
    return (-1.0 <= config["x"] <= 1.0 and config["sub"]["k"] in (0, 1, 2)
            and config["sub"]["c"] == "const" and 1e-4 <= config["lr"] <= 1e-1
            and config["act"] in ("relu", "tanh"))


def test_an_asha_sweep_tells_the_study_how_each_trial_ended(tmp_path):
    # the first points are sure to fail and to report nothing; TPE may avoid both later
    points = [{"x": 0.9, "sub": {"k": 0}, "lr": 1e-3, "act": "relu"},
              {"x": -0.9, "sub": {"k": 1}, "lr": 1e-2, "act": "tanh"}]
    searcher, storage = _searcher(seed=3, points_to_evaluate=points)
    grid = helpers.sweep(tmp_path, "asha", stepped, SPACE, searcher,
                         scheduler=ASHAScheduler(max_t=8, grace_period=1), num_samples=24)
    assert len(grid) == 24
    assert all(_in_space(r.config) for r in grid)
    trials = _study(storage).trials
    assert len(trials) == len(grid)
    assert all(t.state.is_finished() for t in trials)
    by_x = {t.params["x"]: t for t in trials}
    expected = {"TERMINATED": TrialState.COMPLETE, "ERROR": TrialState.FAIL}
    for result in grid:
        trial = by_x[result.config["x"]]
        if result.config["x"] < -0.8:            # no result: PRUNED, as in Ray
            assert (result.status, trial.state) == ("TERMINATED", TrialState.PRUNED)
            continue
        assert trial.state == expected[result.status], result.config
        if result.status == "TERMINATED":        # its last value (ASHA may have stopped it)
            steps = len(result.metrics_dataframe)
            assert trial.value == pytest.approx(result.metrics["loss"])
            # every trial ended on a STOP (at a rung, or at max_t=8), and as in Ray the
            # searcher hears the result that stops a trial only in on_trial_complete
            assert sorted(trial.intermediate_values) == list(range(1, steps))
    assert any(r.status == "ERROR" for r in grid)
    assert any(len(r.metrics_dataframe) < 8 for r in grid if r.status == "TERMINATED")


def test_the_same_seed_gives_the_same_sweep(tmp_path):
    first, again, other = helpers.same_seed_sweeps(
        tmp_path, quadratic, {"x": tune.uniform(-1.0, 1.0), "k": tune.randint(0, 5)},
        lambda seed: OptunaSearch(seed=seed), num_samples=14)
    assert len(first) == 14 and first == again
    assert other != first


# ----------------------------------------------------------------------- save/restore

def test_save_and_restore_continue_the_same_suggestions(tmp_path):
    space = {"x": tune.uniform(-1.0, 1.0)}
    before, after = helpers.suggestions_after_restore(
        tmp_path, OptunaSearch(space, metric="loss", mode="min", seed=4),
        OptunaSearch(space, metric="loss", mode="min", seed=4), n_told=12)
    assert after == before


def test_a_stopped_sweep_restored_runs_as_if_never_stopped(tmp_path):
    whole, half, restored = helpers.stopped_and_restored(
        tmp_path, quadratic, {"x": tune.uniform(-1.0, 1.0), "k": tune.randint(0, 5)},
        lambda: OptunaSearch(seed=8), StopAllAfter(5), num_samples=14)
    assert 5 <= len(half) < 14
    assert len(restored) == 14
    assert [r.status for r in restored] == ["TERMINATED"] * 14
    assert [r.config for r in restored] == [r.config for r in whole]
    assert not math.isnan(restored.get_best_result().metrics["loss"])
