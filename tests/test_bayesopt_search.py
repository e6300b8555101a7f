"""BayesOptSearch (fastasha/search/bayesopt.py): Ray Tune's BayesOpt searcher, with real bayes_opt.

What the Gaussian process was given is read back through Ray's public
attribute ``BayesOptSearch.optimizer`` (a ``bayes_opt.BayesianOptimization``)
and bayes_opt's public ``res`` (each registered point with its target).
Sweeps run on joblib's default backend (loky): their objectives are
module-level functions of this file. The recipes the three library-backed
searchers' tests share are tests/searcher_helpers.py's.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import searcher_helpers as helpers  # tests/searcher_helpers.py

bayes_opt = pytest.importorskip("bayes_opt")

from fastasha import tune  # noqa: E402
from fastasha.schedulers import AsyncHyperBandScheduler  # noqa: E402
from fastasha.search import ConcurrencyLimiter, Searcher  # noqa: E402
from fastasha.search.bayesopt import BayesOptSearch  # noqa: E402


def _targets(searcher):
    """What the GP was given: ``[(params, target), ...]`` in the order it got them."""
    return [(r["params"], r["target"]) for r in searcher.optimizer.res]


def _tell(searcher, trial_id, loss):
    searcher.on_trial_complete(trial_id, {"loss": loss})


# ------------------------------------------------------------------------- import

def test_importing_fastasha_search_does_not_import_bayes_opt():
    assert helpers.python_prints("import sys; import fastasha.search, fastasha.search.bayesopt, "
                                 "fastasha.tune; print('bayes_opt' in sys.modules)") == "False"


def test_the_ray_paths_give_the_same_class():
    from fastasha.tune.search.bayesopt import BayesOptSearch as ray2
    from fastasha.tune.suggest.bayesopt import BayesOptSearch as ray1

    assert ray2 is BayesOptSearch and ray1 is BayesOptSearch
    assert tune.search.bayesopt.BayesOptSearch is BayesOptSearch
    assert issubclass(BayesOptSearch, Searcher)


def test_without_bayes_opt_construction_says_how_to_install(monkeypatch):
    helpers.check_install_hint(monkeypatch, BayesOptSearch, "bayes_opt", None,
                               r'bayesian-optimization.*pip install "bayesian-optimization>=3\.0" '
                               r'\(or, in a clone of fastasha: pip install -e "\.\[bayesopt\]"\)')


def test_the_bayes_opt_ray_pins_is_refused_with_how_to_upgrade(monkeypatch):
    helpers.check_install_hint(monkeypatch, BayesOptSearch, "bayes_opt", "1.4.3",
                               r'3\.0 or newer.*found 1\.4\.3: '
                               r'pip install -U "bayesian-optimization>=3\.0"')


# -------------------------------------------------------------------- the space

def test_draws_stay_inside_the_ranges_random_and_from_the_gp():
    space = {"a": tune.uniform(-2.0, 3.0), "n": {"b": tune.uniform(0.0, 1e-3)}, "c": "const"}
    searcher = BayesOptSearch(metric="loss", mode="min", random_search_steps=25, random_state=3)
    assert searcher.set_search_properties(None, None, space) is True
    configs = []
    for i in range(31):                 # 25 random draws, then 6 from the GP
        config = searcher.suggest(str(i))
        assert isinstance(config, dict), (i, config)
        configs.append(config)
        _tell(searcher, str(i), (config["a"] - 1.0) ** 2 + config["n"]["b"])
    assert all(set(c) == {"a", "n"} and set(c["n"]) == {"b"} for c in configs)
    assert all(-2.0 <= c["a"] <= 3.0 and 0.0 <= c["n"]["b"] <= 1e-3 for c in configs)
    assert len({c["a"] for c in configs}) == 31
    assert len(_targets(searcher)) == 31
    assert searcher.suggest("5") is not None        # an ended trial's id: a new config


def test_rays_own_pairs_nested_and_mixed_with_domains():
    searcher = BayesOptSearch({"width": (0, 20), "sub": {"h": tune.uniform(-1, 1)}},
                              metric="loss", mode="min", random_search_steps=0)
    assert searcher.set_search_properties("other", "max", {"c": 1}) is False
    assert (searcher.metric, searcher.mode) == ("loss", "min")       # its own are kept
    bounds = searcher.optimizer.space.bounds.tolist()
    assert bounds == [[0.0, 20.0], [-1.0, 1.0]]
    config = searcher.suggest("t0")
    assert isinstance(config["width"], float) and set(config["sub"]) == {"h"}


def test_space_given_to_the_searcher_takes_the_sweeps_metric_and_mode():
    searcher = BayesOptSearch(space={"x": (0.0, 1.0)}, random_search_steps=0)
    searcher.set_search_properties("score", "max", {})
    assert (searcher.metric, searcher.mode) == ("score", "max")
    config = searcher.suggest("t0")
    searcher.on_trial_complete("t0", {"score": 0.5})
    assert _targets(searcher) == [(config, 0.5)]                 # max: as it is


def test_only_a_mode_optimises_the_sweeps_metric():
    searcher = BayesOptSearch(space={"x": (0.0, 1.0)}, mode="min")
    assert searcher.metric == "_metric"                         # Ray's anonymous metric
    searcher.set_search_properties("loss", None, {})
    assert searcher.metric == "loss"


def test_loguniform_is_searched_on_a_linear_scale_with_a_warning_as_in_ray():
    searcher = BayesOptSearch(metric="loss", mode="min", random_search_steps=40, random_state=0)
    with pytest.warns(UserWarning, match=r"log scale.*uniform\(-4, 0\)"):
        searcher.set_search_properties(None, None, {"lr": tune.loguniform(1e-4, 1.0)})
    draws = [searcher.suggest(str(i))["lr"] for i in range(40)]
    assert all(1e-4 <= x <= 1.0 for x in draws)
    # linear: half the draws above 0.5 or so; on a log scale, hardly any above 0.1
    assert np.median(draws) > 0.2


def test_quantised_domains_drop_their_step_with_a_warning_as_in_ray():
    searcher = BayesOptSearch(metric="loss", mode="min", random_state=0)
    with pytest.warns(UserWarning, match=r"step q=0\.25 \(values are not rounded"):
        searcher.set_search_properties(None, None, {"x": tune.quniform(0.0, 1.0, 0.25)})
    draws = [searcher.suggest(str(i))["x"] for i in range(8)]
    assert any(x % 0.25 for x in draws)


# ---------------------------------------------------------------------- refusals

@pytest.mark.parametrize("space, match", [
    ({"p": tune.randn(0, 1)}, r"randn\(\) domain.*uniform.*-3 to 3"),
    ({"p": tune.qrandn(0, 1, 0.1)}, r"qrandn\(\) domain"),
    ({"p": tune.randint(1, 5)}, r"integer domain.*uniform\(1, 5\) and round"),
    ({"p": tune.qrandint(0, 10, 2)}, "integer domain"),
    ({"p": tune.lograndint(1, 100)}, "integer domain"),
    ({"p": tune.choice(["a", "b"])}, r"choice\(\) domain.*OptunaSearch"),
    ({"p": tune.grid_search([1, 2])}, r"grid_search\(\).*leave search_alg out"),
    ({"p": tune.sample_from(lambda spec: 1)}, r"sample_from\(\).*inside the objective"),
    ({"p": [tune.uniform(0, 1), 2]}, "inside the list"),
    ({"a/b": tune.uniform(0, 1)}, "holds '/', which BayesOptSearch uses"),
], ids=["randn", "qrandn", "randint", "qrandint", "lograndint", "choice", "grid_search",
        "sample_from", "list", "slash"])
def test_domains_bayesopt_cannot_search_are_refused(space, match):
    helpers.check_refused(BayesOptSearch, space, match)


def test_a_sweep_with_an_unsupported_domain_fails_before_any_trial(tmp_path):
    with pytest.raises(ValueError, match="continuous ranges only"):
        helpers.sweep(tmp_path, None, quadratic, {"x": tune.choice([0.1, 0.2])},
                      BayesOptSearch(), num_samples=2)
    assert not any(tmp_path.rglob("experiment.db"))


@pytest.mark.parametrize("space, error, match", [
    ({"x": (0.0, 1.0), "c": 3}, ValueError, "Put constants in the Tuner's param_space"),
    ({"x": (1.0, 1.0)}, ValueError, "low < high"),
    ({"x": (0.0, math.inf)}, ValueError, "two finite numbers"),
    ({"x": ("a", "b")}, ValueError, r"\(low, high\) pairs of numbers"),
    ({"x": (0.0, 1.0, 2.0)}, ValueError, "takes only ranges"),
    ([("x", (0, 1))], TypeError, "space must be a dict"),
], ids=["constant", "empty-range", "infinite", "strings", "triple", "not-a-dict"])
def test_bad_spaces_given_to_the_searcher_are_refused(space, error, match):
    with pytest.raises(error, match=match):
        BayesOptSearch(space=space, metric="loss", mode="min")


@pytest.mark.parametrize("kwargs, error, match", [
    ({"mode": "minimize"}, ValueError, "mode must be 'min' or 'max'"),
    ({"metric": 3}, TypeError, "metric must be a result key"),
    ({"metric": ["a", "b"], "mode": ["min", "max"]}, ValueError, "optimises one metric"),
    ({"utility_kwargs": "ucb"}, TypeError, "utility_kwargs must be a dict"),
    ({"utility_kwargs": {"kind": "lcb"}}, ValueError, r"must be one of 'ucb', 'ei', 'poi'"),
    ({"utility_kwargs": {"kappa": -1.0}}, ValueError, r"'kappa'\] must be a finite number"),
    ({"utility_kwargs": {"xi": "0.1"}}, TypeError, r"'xi'\] must be a real number"),
    ({"utility_kwargs": {"beta": 1}}, ValueError, r"unknown key\(s\) \['beta'\]"),
    ({"random_state": 1.5}, TypeError, "random_state must be an integer"),
    ({"random_state": 2**32}, ValueError, "less than 2\\*\\*32"),
    ({"random_search_steps": -1}, ValueError, "random_search_steps must be at least 0"),
    ({"patience": 0}, ValueError, "patience must be at least 1"),
    ({"skip_duplicate": "yes"}, TypeError, "skip_duplicate"),
    ({"verbose": None}, TypeError, "verbose must be an integer"),
    ({"points_to_evaluate": {"x": 1}}, TypeError, "points_to_evaluate must be a list"),
    ({"analysis": "/some/path"}, TypeError, "analysis must be a fastasha ExperimentAnalysis"),
], ids=["mode", "metric", "lists", "utility-type", "kind", "kappa", "xi", "utility-key",
        "seed-type", "seed-range", "steps", "patience", "skip", "verbose", "points",
        "analysis"])
def test_bad_arguments_are_refused(kwargs, error, match):
    with pytest.raises(error, match=match):
        BayesOptSearch(**kwargs)


def test_the_space_given_twice_or_not_at_all_is_refused():
    helpers.check_space_refusals(BayesOptSearch, {"x": (0.0, 1.0)})


def test_a_missing_mode_is_refused_before_the_sweep():
    helpers.check_a_missing_mode(BayesOptSearch)


def test_points_that_do_not_fit_the_space_are_refused():
    space = {"x": (0.0, 1.0), "sub": {"y": (0.0, 1.0)}}
    with pytest.raises(ValueError, match=r"missing \['sub/y'\].*to each of \['sub/y', 'x'\]"):
        BayesOptSearch(space, metric="loss", mode="min", points_to_evaluate=[{"x": 0.5}])
    with pytest.raises(ValueError, match=r"not a number in its range \[0, 1\]"):
        BayesOptSearch(space, metric="loss", mode="min",
                       points_to_evaluate=[{"x": 1.5, "sub": {"y": 0.5}}])


def test_bayes_opt_1x_decay_arguments_are_warned_of_as_having_no_effect():
    with pytest.warns(UserWarning, match=r"\['kappa_decay'\] have no effect"):
        BayesOptSearch(utility_kwargs={"kind": "ucb", "kappa": 2.0, "kappa_decay": 0.9})


# ------------------------------------------------------------- what the GP is told

@pytest.mark.parametrize("utility, kind, attribute, value", [
    (None, bayes_opt.acquisition.UpperConfidenceBound, "kappa", 2.576),
    ({"kind": "ucb", "kappa": 1.5, "xi": 0.0}, bayes_opt.acquisition.UpperConfidenceBound,
     "kappa", 1.5),
    ({"kind": "ei", "xi": 0.05}, bayes_opt.acquisition.ExpectedImprovement, "xi", 0.05),
    ({"kind": "poi"}, bayes_opt.acquisition.ProbabilityOfImprovement, "xi", 0.0),
], ids=["default", "ucb", "ei", "poi"])
def test_utility_kwargs_become_bayes_opts_acquisition_function(utility, kind, attribute, value):
    searcher = BayesOptSearch({"x": (-1.0, 1.0)}, metric="loss", mode="min",
                              utility_kwargs=utility, random_search_steps=3,
                              skip_duplicate=False)     # the GP may propose its best point
    function = searcher.optimizer.acquisition_function
    assert type(function) is kind and getattr(function, attribute) == value
    for i in range(4):              # 3 random, then one from the GP with this function
        config = searcher.suggest(str(i))
        assert -1.0 <= config["x"] <= 1.0
        _tell(searcher, str(i), config["x"] ** 2)


def test_the_first_phase_waits_for_all_its_trials_however_they_end():
    searcher = BayesOptSearch({"x": (0.0, 1.0)}, metric="loss", mode="min",
                              random_search_steps=4, random_state=0)
    configs = {t: searcher.suggest(t) for t in "abcd"}
    assert searcher.suggest("e") is None                 # the GP waits
    searcher.on_trial_complete("a", None, error=True)
    searcher.on_trial_complete("b", {"loss": 5.0}, error=True)      # failed: ignored, as Ray
    searcher.on_trial_complete("c", {"other": 1.0})                 # no metric
    assert searcher.suggest("e") is None and _targets(searcher) == []
    searcher.on_trial_complete("d", {"loss": 2.0})
    assert _targets(searcher) == [(configs["d"], -2.0)]      # min: negated
    assert isinstance(searcher.suggest("e"), dict)       # Ray would wait for ever here
    with pytest.warns(UserWarning, match="already ended"):
        searcher.on_trial_complete("d", {"loss": 0.0})
    with pytest.warns(UserWarning, match="was not suggested by it"):
        searcher.on_trial_complete("zz", {"loss": 0.0})


def test_an_ended_trials_id_suggested_again_is_a_new_trial():
    searcher = BayesOptSearch({"x": (0.0, 1.0)}, metric="loss", mode="max",
                              random_search_steps=0, random_state=0)
    first = searcher.suggest("a")
    searcher.on_trial_complete("a", {"loss": 0.5})
    again = searcher.suggest("a")
    assert again != first
    with warnings.catch_warnings():
        warnings.simplefilter("error")          # its end is heard, not "already ended"
        searcher.on_trial_complete("a", {"loss": 0.25})
    assert _targets(searcher) == [(first, 0.5), (again, 0.25)]


def test_nan_and_infinite_values_are_not_given_to_the_gp():
    searcher = BayesOptSearch({"x": (0.0, 1.0)}, metric="loss", mode="max",
                              random_search_steps=0, random_state=0)
    for trial_id, value in (("a", math.nan), ("b", -math.inf), ("c", "0.5"), ("d", 0.5)):
        config = searcher.suggest(trial_id)
        searcher.on_trial_complete(trial_id, {"loss": value})
    assert _targets(searcher) == [(config, 0.5)]


def test_points_to_evaluate_come_first_nested_as_configs():
    points = [{"x": 0.25, "sub": {"y": -1.0}}, {"x": 0.75, "sub": {"y": 0.0}},
              {"x": 0.5, "sub": {"y": 1.0}}]
    space = {"x": tune.uniform(0, 1), "sub": {"y": tune.uniform(-1, 1)}}
    searcher = BayesOptSearch(metric="loss", mode="min", points_to_evaluate=points,
                              random_search_steps=2, random_state=0)
    searcher.set_search_properties(None, None, space)
    assert [searcher.suggest(t) for t in "abc"] == points        # 3 points: none dropped
    assert searcher.suggest("d") is None                 # the first phase is the 3 points
    for t in "abc":
        searcher.on_trial_complete(t, {"loss": 1.0})
    assert searcher.suggest("d") not in points


def test_duplicates_are_skipped_and_patience_ends_the_sweep():
    point = {"x": 0.5}
    searcher = BayesOptSearch({"x": (0.0, 1.0)}, metric="loss", mode="min",
                              points_to_evaluate=[point] * 7, random_search_steps=0)
    with pytest.warns(UserWarning, match=r"ends the sweep.*\{'x': 0\.5\} 6 times.*patience=5"):
        answers = [searcher.suggest(str(i)) for i in range(7)]
    assert answers == [point, None, None, None, None, Searcher.FINISHED, Searcher.FINISHED]


def test_a_running_trial_does_not_use_up_patience():
    """The GP's duplicate is not proposed again until a trial ends (Ray's would be, each time)."""
    searcher = BayesOptSearch({"x": (-1.0, 1.0)}, metric="loss", mode="min",
                              random_search_steps=4, random_state=0)
    for i in range(10):             # 4 random, 6 from the GP: it converges near 0
        _tell(searcher, str(i), searcher.suggest(str(i))["x"] ** 2)
    running = searcher.suggest("running")        # the GP's best guess, with no news after it
    assert searcher.suggest("next") is None      # it proposes the same again: a duplicate
    with warnings.catch_warnings():
        warnings.simplefilter("error")           # no "ends the sweep"
        assert [searcher.suggest("next") for _ in range(10)] == [None] * 10
    _tell(searcher, "running", running["x"] ** 2)
    assert searcher.suggest("next") != Searcher.FINISHED


def test_without_skip_duplicate_a_repeat_runs_and_the_gp_keeps_one_value():
    searcher = BayesOptSearch({"x": (0.0, 1.0)}, metric="loss", mode="min",
                              points_to_evaluate=[{"x": 0.5}] * 3, random_search_steps=0,
                              skip_duplicate=False, patience=None)
    assert [searcher.suggest(t) for t in "abc"] == [{"x": 0.5}] * 3
    for t, loss in zip("abc", (1.0, 2.0, 3.0)):
        searcher.on_trial_complete(t, {"loss": loss})      # bayes_opt would raise at "b"
    assert _targets(searcher) == [({"x": 0.5}, -1.0)]


def test_duplicates_are_judged_relative_to_the_range():
    # Ray compares to 5 decimals, which would make these two the same config
    points = [{"lr": 2.0e-5}, {"lr": 3.0e-5}, {"lr": 2.0e-5 + 1e-12}]
    searcher = BayesOptSearch({"lr": (1e-6, 1e-4)}, metric="loss", mode="min",
                              points_to_evaluate=points, random_search_steps=0)
    assert [searcher.suggest(t) for t in "abc"] == points[:2] + [None]


def test_the_gp_uses_the_results_it_is_given():
    """On a 1-D quadratic the GP's proposals get far closer to the optimum than random draws.

    With 5 random draws on [-10, 10] the closest is typically 1 or more away
    from 3; the GP's next 8 come within 0.05 (seen: 0.0001 to 0.04 for these
    seeds). Both modes, so that a wrong sign would send the GP to the edges.
    """
    for seed, mode in ((0, "min"), (1, "max"), (2, "min")):
        searcher = BayesOptSearch({"x": (-10.0, 10.0)}, metric="loss", mode=mode,
                                  random_state=seed, random_search_steps=5)
        xs = []
        for i in range(13):
            x = searcher.suggest(str(i))["x"]
            xs.append(x)
            loss = (x - 3.0) ** 2
            _tell(searcher, str(i), loss if mode == "min" else -loss)
        random_best = min(abs(x - 3.0) for x in xs[:5])
        gp_best = min(abs(x - 3.0) for x in xs[5:])
        assert gp_best < 0.2 and gp_best < random_best / 4, (seed, gp_best, random_best)


def test_analysis_gives_the_gp_each_trials_best_value(tmp_path):
    grid = helpers.sweep(tmp_path, "before", three_steps,
                         {"x": tune.uniform(-1.0, 1.0), "y": tune.uniform(0, 1)}, None,
                         num_samples=5)
    analysis = tune.ExperimentAnalysis(grid.experiment_path)
    searcher = BayesOptSearch({"x": (-1.0, 1.0)}, metric="loss", mode="min", analysis=analysis)
    best = sorted(-(r.config["x"] - 0.3) ** 2 for r in grid)        # at step 2, not the last
    assert sorted(t for _, t in _targets(searcher)) == pytest.approx(best)
    assert sorted(p["x"] for p, _ in _targets(searcher)) == sorted(r.config["x"] for r in grid)
    with pytest.warns(UserWarning, match=r"5 trial\(s\) of the analysis were left out"):
        other = BayesOptSearch({"z": (0.0, 1.0)}, metric="loss", mode="min", analysis=grid)
    assert _targets(other) == []


def test_set_max_concurrency_leaves_it_to_the_limiter():
    assert BayesOptSearch().set_max_concurrency(2) is False


# ------------------------------------------------------------------------- sweeps

def quadratic(config):
    """One report: ``loss = (x - 0.3)^2``."""
    tune.report({"loss": (config["x"] - 0.3) ** 2})


def three_steps(config):
    """Three reports; the best (at step 2) is ``(x - 0.3)^2``, the others 1 more."""
    for step in (1, 2, 3):
        tune.report({"loss": (config["x"] - 0.3) ** 2 + (step - 2) ** 2})


def stepped(config):
    """Up to 6 reports, getting better; fails for ``x > 0.9``, reports nothing for ``x < -0.9``."""
    if config["x"] < -0.9:
        return
    for step in range(1, 7):
        if config["x"] > 0.9 and step == 2:
            raise RuntimeError("diverged")
        tune.report({"loss": (config["x"] - 0.3) ** 2 + config["sub"]["h"] + 1.0 / step})


def test_an_asha_sweep_under_a_concurrency_limiter_as_in_rays_example(tmp_path):
    # the first points are sure to fail and to report nothing; the GP gets neither
    points = [{"x": 0.95, "sub": {"h": 0.5}}, {"x": -0.95, "sub": {"h": 0.5}}]
    searcher = BayesOptSearch(points_to_evaluate=points, random_search_steps=5, random_state=7)
    space = {"x": tune.uniform(-1.0, 1.0), "sub": {"h": tune.uniform(0.0, 1.0), "c": "const"}}
    grid = helpers.sweep(tmp_path, "asha", stepped, space,
                         ConcurrencyLimiter(searcher, max_concurrent=4), num_samples=14,
                         scheduler=AsyncHyperBandScheduler(max_t=6, grace_period=1))
    assert len(grid) == 14
    configs = [r.config for r in grid]
    assert configs[:2] == [{**p, "sub": {**p["sub"], "c": "const"}} for p in points]
    assert all(-1.0 <= c["x"] <= 1.0 and 0.0 <= c["sub"]["h"] <= 1.0 for c in configs)
    assert grid[0].status == "ERROR" and "loss" not in grid[1].metrics
    # the GP got the last value of every trial that reported one, negated (mode="min")
    told = sorted(t for _, t in _targets(searcher))
    expected = sorted(-r.metrics["loss"] for r in grid
                      if r.status == "TERMINATED" and "loss" in r.metrics)
    assert told == pytest.approx(expected) and len(told) >= 10
    assert any(r.metrics.get("training_iteration", 6) < 6 for r in grid)   # ASHA stopped some


def test_the_same_seed_gives_the_same_sweep(tmp_path):
    first, again, other = helpers.same_seed_sweeps(
        tmp_path, quadratic, {"x": tune.uniform(-1.0, 1.0), "y": tune.uniform(0.0, 2.0)},
        lambda seed: BayesOptSearch(random_state=seed, random_search_steps=3), num_samples=7)
    assert len(first) == 7 and first == again
    assert other[0] != first[0]


# ----------------------------------------------------------------------- save/restore

def test_save_and_restore_continue_the_same_suggestions(tmp_path):
    space = {"x": (-1.0, 1.0)}
    before, after = helpers.suggestions_after_restore(
        tmp_path, BayesOptSearch(space, metric="loss", mode="min", random_state=4,
                                 random_search_steps=3),
        BayesOptSearch(space, metric="loss", mode="min", random_state=99), n_told=4)
    assert after == before


def test_restore_refuses_a_file_it_did_not_write(tmp_path):
    path = tmp_path / "state.pkl"
    BayesOptSearch({"x": (0.0, 1.0)}, metric="loss", mode="min").save(str(path))
    with pytest.raises(ValueError, match="not a state saved by BayesOptSearch.save"):
        (tmp_path / "other.pkl").write_bytes(b"\x80\x05N.")          # pickle of None
        BayesOptSearch().restore(str(tmp_path / "other.pkl"))


def test_a_stopped_sweep_restored_runs_as_if_never_stopped(tmp_path):
    whole, half, restored = helpers.stopped_and_restored(
        tmp_path, quadratic, {"x": tune.uniform(-1.0, 1.0), "c": 5},
        lambda: BayesOptSearch(random_search_steps=3, random_state=8), helpers.StopAllAfter(4),
        num_samples=8)
    assert 4 <= len(half) < 8
    assert len(restored) == 8
    assert [r.status for r in restored] == ["TERMINATED"] * 8
    assert [r.config for r in restored] == [r.config for r in whole]


# ------------------------------------------------------------------------ the example

def test_the_bayesopt_example_smoke_test(tmp_path):
    best, grid = helpers.run_example(tmp_path, "bayesopt_example.py")
    assert "'width'" in best and "'height'" in best
    # 4 random trials, then the GP's; patience may end the sweep before its 10 (as in Ray)
    assert 5 <= len(grid) <= 10 and grid.num_errors == 0
    assert all(0 <= r.config["width"] <= 20 and -100 <= r.config["height"] <= 100
               for r in grid)
