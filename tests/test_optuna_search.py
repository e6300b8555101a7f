"""OptunaSearch (fastasha/search/optuna.py): Ray Tune's Optuna searcher, with real optuna.

The study a searcher works on is read back through Optuna's public API: the
searcher is given an ``InMemoryStorage`` of the test's own, and
``optuna.load_study`` opens the study there. Sweeps run on joblib's default
backend (loky): their objectives are module-level functions of this file.
"""

from __future__ import annotations

import math
import subprocess
import sys
import warnings

import numpy as np
import pytest

optuna = pytest.importorskip("optuna")

from optuna.distributions import (  # noqa: E402
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.trial import TrialState  # noqa: E402

from fastasha import tune  # noqa: E402
from fastasha.schedulers import ASHAScheduler  # noqa: E402
from fastasha.search import ConcurrencyLimiter, Searcher  # noqa: E402
from fastasha.search.optuna import OptunaSearch  # noqa: E402

optuna.logging.set_verbosity(optuna.logging.WARNING)


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
    code = ("import sys; import fastasha.search, fastasha.search.optuna, fastasha.tune; "
            "print('optuna' in sys.modules)")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=True)
    assert run.stdout.strip() == "False"


def test_the_ray_paths_give_the_same_class():
    from fastasha.tune.search.optuna import OptunaSearch as aliased

    assert aliased is OptunaSearch
    assert tune.search.optuna.OptunaSearch is OptunaSearch
    assert issubclass(OptunaSearch, Searcher)


def test_without_optuna_construction_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "optuna", None)      # makes `import optuna` fail
    with pytest.raises(ImportError, match=r'pip install "fastasha\[optuna\]"'):
        OptunaSearch()


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
    searcher = OptunaSearch(metric="loss", mode="min")
    with pytest.raises(ValueError, match=match):
        searcher.set_search_properties(None, None, space)
    with pytest.raises(ValueError, match=match):
        OptunaSearch(space=space, metric="loss", mode="min")


def test_a_sweep_with_an_unsupported_domain_fails_before_any_trial(tmp_path):
    tuner = tune.Tuner(quadratic, param_space={"x": tune.randn(0, 1)},
                       tune_config=tune.TuneConfig(metric="loss", mode="min",
                                                   search_alg=OptunaSearch(), num_samples=2),
                       run_config=tune.RunConfig(storage_path=str(tmp_path), verbose=0))
    with pytest.raises(ValueError, match="no normal distribution"):
        tuner.fit()


def test_the_space_given_twice_is_refused():
    searcher = OptunaSearch(space={"x": tune.uniform(0, 1)}, metric="loss", mode="min")
    with pytest.raises(ValueError, match="given twice"):
        searcher.set_search_properties(None, None, {"y": tune.uniform(0, 1)})


def test_no_space_at_all_is_refused():
    with pytest.raises(ValueError, match="no search space"):
        OptunaSearch(metric="loss", mode="min").set_search_properties(None, None, {"c": 1})
    with pytest.raises(RuntimeError, match="no search space"):
        OptunaSearch(metric="loss", mode="min").suggest("t0")


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
    with pytest.raises(ValueError, match="needs a mode"):
        OptunaSearch().set_search_properties("loss", None, {"x": tune.uniform(0, 1)})


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
    grid = tune.Tuner(
        stepped, param_space=SPACE,
        tune_config=tune.TuneConfig(metric="loss", mode="min", search_alg=searcher,
                                    scheduler=ASHAScheduler(max_t=8, grace_period=1),
                                    num_samples=24),
        run_config=tune.RunConfig(storage_path=str(tmp_path), name="asha", verbose=0)).fit()
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


def _sequential_configs(tmp_path, name, seed, limiter=False):
    searcher = OptunaSearch(seed=seed)
    grid = tune.Tuner(
        quadratic, param_space={"x": tune.uniform(-1.0, 1.0), "k": tune.randint(0, 5)},
        tune_config=tune.TuneConfig(
            metric="loss", mode="min", num_samples=14,
            search_alg=ConcurrencyLimiter(searcher, 1) if limiter else searcher,
            max_concurrent_trials=None if limiter else 1),
        run_config=tune.RunConfig(storage_path=str(tmp_path), name=name, verbose=0)).fit()
    return [r.config for r in grid]


def test_the_same_seed_gives_the_same_sweep(tmp_path):
    first = _sequential_configs(tmp_path, "a", seed=11)
    again = _sequential_configs(tmp_path, "b", seed=11, limiter=True)
    other = _sequential_configs(tmp_path, "c", seed=12)
    assert len(first) == 14 and first == again
    assert other != first


# ----------------------------------------------------------------------- save/restore

def test_save_and_restore_continue_the_same_suggestions(tmp_path):
    space = {"x": tune.uniform(-1.0, 1.0)}
    searcher = OptunaSearch(space, metric="loss", mode="min", seed=4)
    for i in range(12):
        x = searcher.suggest(str(i))["x"]
        searcher.on_trial_complete(str(i), {"loss": (x - 0.3) ** 2})
    running = searcher.suggest("running")
    searcher.save(str(tmp_path / "state.pkl"))
    fresh = OptunaSearch(space, metric="loss", mode="min", seed=4)
    fresh.restore(str(tmp_path / "state.pkl"))
    assert fresh.suggest("running") == running
    fresh.on_trial_complete("running", {"loss": 1.0})
    searcher.on_trial_complete("running", {"loss": 1.0})
    assert fresh.suggest("next") == searcher.suggest("next")


class StopAllAfter(tune.Stopper):
    """Ends the whole sweep once ``n`` trials reported."""

    def __init__(self, n):
        self.n, self.seen = n, set()

    def __call__(self, trial_id, result):
        self.seen.add(trial_id)
        return False

    def stop_all(self):
        return len(self.seen) >= self.n


def test_a_stopped_sweep_restored_runs_as_if_never_stopped(tmp_path):
    space = {"x": tune.uniform(-1.0, 1.0), "k": tune.randint(0, 5)}

    def tuner(name, stop=None):
        return tune.Tuner(
            quadratic, param_space=space,
            tune_config=tune.TuneConfig(metric="loss", mode="min", num_samples=14,
                                        search_alg=OptunaSearch(seed=8),
                                        max_concurrent_trials=1),
            run_config=tune.RunConfig(storage_path=str(tmp_path), name=name, verbose=0,
                                      stop=stop))

    whole = tuner("whole").fit()
    half = tuner("half", stop=StopAllAfter(5)).fit()
    assert 5 <= len(half) < 14
    with warnings.catch_warnings():
        warnings.simplefilter("error")          # no replay mismatch, nothing unsaved
        restored = tune.Tuner.restore(half.experiment_path, quadratic,
                                      search_alg=OptunaSearch(seed=8)).fit()
    assert len(restored) == 14
    assert [r.status for r in restored] == ["TERMINATED"] * 14
    assert [r.config for r in restored] == [r.config for r in whole]
    assert not math.isnan(restored.get_best_result().metrics["loss"])
