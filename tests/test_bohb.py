"""BOHB: HyperBandForBOHB (fastasha/schedulers/hb_bohb.py) with TuneBOHB
(fastasha/search/bohb.py), on real hpbandster and ConfigSpace.

Sweeps run on joblib's default backend (loky) with pause_objectives.stepper,
whose loss is ``x / step`` and which checkpoints every step: a smaller ``x``
is better at every milestone, so each bracket's halvings are known from its
trials' configs whatever BOHB proposes. The recipes the library-backed
searchers' tests share are tests/searcher_helpers.py's.
"""

from __future__ import annotations

import math
import pickle
import types
import warnings

import numpy as np
import pytest
import searcher_helpers as helpers  # tests/searcher_helpers.py

pytest.importorskip("hpbandster", reason="BOHB needs hpbandster: pip install -e '.[bohb]'")
CS = pytest.importorskip("ConfigSpace")

import pause_objectives as po  # noqa: E402

from fastasha import tune  # noqa: E402
from fastasha.schedulers import HyperBandForBOHB, HyperBandScheduler  # noqa: E402
from fastasha.schedulers import create_scheduler  # noqa: E402
from fastasha.search import ConcurrencyLimiter, create_searcher  # noqa: E402
from fastasha.search.bohb import TuneBOHB  # noqa: E402

SPACE = {"x": tune.uniform(1.0, 10.0), "n_steps": 4}


def _budget(budget):
    """A result's Ray form of what HyperBandForBOHB tells the searcher: its budget."""
    return {"hyperband_info": {"budget": budget}}


def _fit(tmp_path, name, searcher, scheduler, *, slots=2, num_samples=10, stop=None):
    return tune.Tuner(
        po.stepper, param_space=SPACE,
        tune_config=tune.TuneConfig(scheduler=scheduler, search_alg=searcher, metric="loss",
                                    mode="min", num_samples=num_samples,
                                    max_concurrent_trials=slots),
        run_config=tune.RunConfig(name=name, storage_path=str(tmp_path), verbose=0, stop=stop),
    ).fit()


def _steps(result):
    return [row["step"] for row in result.metrics_dataframe.to_dict("records")]


def _check_brackets(grid):
    """The 10 trials of a sweep with max_t=4, rf=2 ran in Ray's BOHB brackets.

    Largest bracket first: trials 0-3 start at milestone 1 (4 halve to 2 at 1,
    to 1 at 2), trials 4-6 at 2 (3 halve to 2), trials 7-9 run to 4. The best
    (smallest x) go on; a paused trial resumed from its checkpoint.
    """
    results = sorted(grid, key=lambda r: r.metrics["trial_id"])
    assert [r.status for r in results] == ["TERMINATED"] * 10 and grid.num_errors == 0
    reached = [r.metrics["training_iteration"] for r in results]
    for result, n in zip(results, reached):
        assert _steps(result) == list(range(1, n + 1))     # every step once
    for bracket, expected in ((results[:4], [4, 2, 1, 1]), (results[4:7], [4, 4, 2]),
                              (results[7:], [4, 4, 4])):
        by_x = sorted(bracket, key=lambda r: r.config["x"])
        assert [r.metrics["training_iteration"] for r in by_x] == expected


# ------------------------------------------------------------------------- import

def test_importing_the_modules_does_not_import_hpbandster():
    assert helpers.imported_before_and_after("bohb", "TuneBOHB", "hpbandster") == \
        ["False", "True"]
    assert helpers.python_prints("import sys, fastasha.schedulers, fastasha.search.bohb; "
                                 "print('ConfigSpace' in sys.modules)") == "False"


def test_the_ray_paths_give_the_same_classes():
    helpers.check_ray_paths("bohb", TuneBOHB)
    from fastasha.tune.schedulers import HyperBandForBOHB as aliased
    from fastasha.tune.schedulers.hb_bohb import HyperBandForBOHB as by_module

    assert aliased is by_module is HyperBandForBOHB and tune.schedulers.HyperBandForBOHB is \
        HyperBandForBOHB
    assert issubclass(HyperBandForBOHB, HyperBandScheduler)


def test_rays_names_build_the_pair():
    scheduler = create_scheduler("hb_bohb", metric="loss", mode="min", max_t=9)
    assert type(scheduler) is HyperBandForBOHB and scheduler.max_t == 9
    searcher = create_searcher("BOHB", metric="loss", mode="min", seed=1, max_concurrent=2)
    assert type(searcher) is TuneBOHB and (searcher.metric, searcher.mode) == ("loss", "min")


@pytest.mark.parametrize("module, installed, match", [
    ("hpbandster", None, r'TuneBOHB needs the optional dependency hpbandster, which is not '
                         r'installed: pip install "hpbandster>=0\.7\.4" \(or, in a clone of '
                         r'fastasha: pip install -e "\.\[bohb\]"\)'),
    ("ConfigSpace", "0.4.18", r'TuneBOHB needs ConfigSpace 1\.0 or newer, found 0\.4\.18: pip '
                              r'install -U "ConfigSpace>=1\.0" \(or, in a clone of fastasha: '
                              r'pip install -e "\.\[bohb\]"\)'),
])
def test_without_the_libraries_construction_says_how_to_install(monkeypatch, module, installed,
                                                                  match):
    helpers.check_install_hint(monkeypatch, TuneBOHB, module, installed, match)


def test_the_bohb_extra_installs_what_the_message_names():
    import tomllib

    with open(helpers.REPO / "pyproject.toml", "rb") as f:
        extras = tomllib.load(f)["project"]["optional-dependencies"]
    assert extras["bohb"] == ["hpbandster>=0.7.4", "ConfigSpace>=1.0"]
    assert set(extras["bohb"]) <= set(extras["test"])


# -------------------------------------------------------------------- conversion

def _hyperparameter(domain):
    """The ConfigSpace hyperparameter BOHB searches for a param_space of one domain."""
    searcher = TuneBOHB(metric="loss", mode="min", seed=0)
    assert searcher.set_search_properties(None, None, {"p": domain, "const": 3}) is True
    return list(searcher.bohber.configspace.values())


@pytest.mark.parametrize("domain, expected", [
    (tune.uniform(0.5, 2.0), CS.UniformFloatHyperparameter("p", 0.5, 2.0)),
    (tune.loguniform(1e-4, 1e-1), CS.UniformFloatHyperparameter("p", 1e-4, 1e-1, log=True)),
    (tune.randn(5.0, 2.0), CS.NormalFloatHyperparameter("p", mu=5.0, sigma=2.0, lower=-7.0,
                                                        upper=17.0)),
    (tune.randint(1, 5), CS.UniformIntegerHyperparameter("p", 1, 4)),        # upper excluded
    (tune.lograndint(1, 100), CS.UniformIntegerHyperparameter("p", 1, 99, log=True)),
    # quantised: the k of the multiples k * q in the bounds (upper included)
    (tune.quniform(0.0, 1.0, 0.25), CS.UniformIntegerHyperparameter("p", 0, 4)),
    (tune.qloguniform(0.01, 1.0, 0.01), CS.UniformIntegerHyperparameter("p", 1, 100, log=True)),
    (tune.qrandint(1, 10, 3), CS.UniformIntegerHyperparameter("p", 1, 3)),
    (tune.qlograndint(2, 10, 2), CS.UniformIntegerHyperparameter("p", 1, 5, log=True)),
    (tune.qrandn(0.0, 1.0, 0.5), CS.NormalIntegerHyperparameter("p", mu=0.0, sigma=2.0,
                                                                lower=-12, upper=12)),
    (tune.choice(["a", 1, None]), CS.CategoricalHyperparameter("p", choices=[0, 1, 2])),
], ids=["uniform", "loguniform", "randn", "randint", "lograndint", "quniform", "qloguniform",
        "qrandint", "qlograndint", "qrandn", "choice"])
def test_each_domain_becomes_a_configspace_hyperparameter(domain, expected):
    assert _hyperparameter(domain) == [expected]


def test_every_domain_gives_its_own_values_random_and_model_based():
    searcher = TuneBOHB(metric="loss", mode="min", seed=0)
    searcher.set_search_properties(None, None, {**helpers.DOMAIN_SPACE, "const": "c"})
    random = [searcher.suggest(str(i)) for i in range(150)]
    helpers.check_domain_values(random, covered=True)
    # results at one budget: BOHB models them and proposes configs from the model
    configs = []
    for i in range(150, 230):
        config = searcher.suggest(str(i))
        configs.append(config)
        searcher.on_trial_result(str(i), {"loss": abs(config["uniform"] - 1.0),
                                          **_budget(1)})
        searcher.on_trial_complete(str(i))
    assert searcher.bohber.kde_models            # a model was fitted
    helpers.check_domain_values(configs, covered=False)


def test_nested_domains_are_named_with_a_slash_and_come_back_nested():
    searcher = TuneBOHB(metric="loss", mode="min", seed=0)
    searcher.set_search_properties(None, None, {
        "model": {"lr": tune.loguniform(1e-3, 1e-1), "depth": {"n": tune.randint(1, 3)}},
        "batch": 32})
    assert sorted(searcher.bohber.configspace.keys()) == ["model/depth/n", "model/lr"]
    config = searcher.suggest("t0")
    assert set(config) == {"model"} and set(config["model"]) == {"lr", "depth"}
    assert config["model"]["depth"]["n"] in (1, 2) and searcher.suggest("t0") == config


def test_a_domain_of_one_value_is_given_as_it_is():
    searcher = TuneBOHB(metric="loss", mode="min", seed=0)
    searcher.set_search_properties(None, None, {"x": tune.uniform(0, 1),
                                                "k": tune.qrandint(3, 5, 4),
                                                "c": tune.choice([(1, 2)])})
    assert list(searcher.bohber.configspace.keys()) == ["x"]
    assert all(searcher.suggest(str(i))["k"] == 4 and searcher.suggest(str(i))["c"] == (1, 2)
               for i in range(5))
    with pytest.raises(ValueError, match="one value only"):
        TuneBOHB(space={"k": tune.qrandint(3, 5, 4)}, metric="loss", mode="min")


@pytest.mark.parametrize("space, match", [
    ({"x": tune.sample_from(lambda spec: 1)}, r"'x' is a sample_from\(\) function, which BOHB "
                                              r"cannot search"),
    ({"x": tune.grid_search([1, 2])}, r"'x' is a grid_search\(\), which TuneBOHB cannot "
                                      r"search"),
    ({"x": tune.choice([tune.uniform(0, 1), 2])}, r"'x' is a choice\(\) whose category .* "
                                                  r"holds a domain"),
    ({"x": [tune.uniform(0, 1)]}, "a domain inside the list"),
], ids=["sample_from", "grid_search", "choice-of-domains", "list"])
def test_what_bohb_cannot_search_is_refused_with_what_to_do(space, match):
    helpers.check_refused(TuneBOHB, space, match)


def test_a_missing_or_doubled_space_and_a_missing_mode_are_refused():
    helpers.check_space_refusals(TuneBOHB, {"x": tune.uniform(0, 1)})
    helpers.check_a_missing_mode(TuneBOHB)


def test_a_configurationspace_of_ones_own_is_searched_as_it_is():
    space = CS.ConfigurationSpace({"width": (0.0, 20.0), "layers": (1, 4),
                                   "activation": ["relu", "tanh"]})
    searcher = TuneBOHB(space, metric="loss", mode="min", seed=3,
                        points_to_evaluate=[{"width": 1.5, "layers": 2, "activation": "tanh"}])
    assert searcher.set_search_properties("other", "max", {"const": 1}) is False
    assert searcher.suggest("t0") == {"width": 1.5, "layers": 2, "activation": "tanh"}
    configs = [searcher.suggest(str(i)) for i in range(1, 30)]
    assert all(type(c["width"]) is float and 0 <= c["width"] <= 20 and type(c["layers"]) is int
               and type(c["activation"]) is str for c in configs)
    assert searcher.bohber.configspace is not space          # a copy, seeded
    again = TuneBOHB(space, metric="loss", mode="min", seed=3)
    assert [again.suggest(str(i)) for i in range(1, 30)] == configs
    with pytest.raises(ValueError, match="does not fit the ConfigurationSpace"):
        TuneBOHB(space, metric="loss", mode="min",
                 points_to_evaluate=[{"width": 30.0, "layers": 2, "activation": "tanh"}])
    with pytest.raises(ValueError, match="has no hyperparameter"):
        TuneBOHB(CS.ConfigurationSpace(), metric="loss", mode="min")


# ------------------------------------------------------------------------ points

def test_points_to_evaluate_run_first_nested_and_checked():
    searcher = TuneBOHB(metric="loss", mode="min", seed=0, points_to_evaluate=[
        {"sub": {"lr": 0.01, "k": 12}, "act": (1, 2), "c": 5},
        {"sub": {"lr": 0.1, "k": 3}, "act": "relu"}])
    searcher.set_search_properties(None, None, {
        "sub": {"lr": tune.loguniform(1e-3, 1e-1), "k": tune.qrandint(0, 12, 3)},
        "act": tune.choice(["relu", (1, 2)]), "c": 5})
    assert searcher.suggest("a") == {"sub": {"lr": 0.01, "k": 12}, "act": (1, 2)}
    assert searcher.suggest("b") == {"sub": {"lr": 0.1, "k": 3}, "act": "relu"}
    searcher.on_trial_result("a", {"loss": 1.0, **_budget(1)})     # BOHB takes the point
    assert searcher.bohber.losses == {1: [1.0]}


@pytest.mark.parametrize("point, match", helpers.UNFIT_POINTS + [
    pytest.param({"x": 0.5, "k": 1, "q": 0.3}, "0.3 of 'q'", id="not-a-multiple"),
    pytest.param({"x": 0.5, "k": 1, "q": 1.25}, "1.25 of 'q'", id="above-the-multiples")])
def test_a_point_that_does_not_fit_the_space_is_refused(point, match):
    searcher = TuneBOHB(metric="loss", mode="min", points_to_evaluate=[point])
    space = {"x": tune.uniform(0, 1), "k": tune.randint(0, 3)}
    if "q" in point:
        space["q"] = tune.quniform(0, 1, 0.25)
    with pytest.raises(ValueError, match=match):
        searcher.set_search_properties(None, None, space)


# ------------------------------------------------------------------ bad arguments

@pytest.mark.parametrize("kwargs, error, match", [
    ({"mode": "avg"}, ValueError, "mode"),
    ({"metric": ["a", "b"], "mode": ["min", "max"]}, ValueError, "optimises one metric"),
    ({"bohb_config": [("top_n_percent", 10)]}, TypeError, "bohb_config must be a dict"),
    ({"bohb_config": {"eta": 3}}, ValueError, r"'eta', which HpBandSter's BOHB does not take; "
                                              r"it takes min_points_in_model"),
    ({"seed": "1"}, TypeError, "seed must be an int"),
    ({"seed": -1}, ValueError, r"seed must be from 0 to 2\*\*32 - 1"),
    ({"max_concurrent": 1.5}, TypeError, r"max_concurrent must be an int \(0 for no limit\)"),
    ({"space": [("x", 0, 1)]}, TypeError, "space must be a ConfigSpace.ConfigurationSpace"),
    ({"points_to_evaluate": {"x": 1}}, TypeError, "points_to_evaluate"),
])
def test_bad_searcher_arguments_say_what_to_do(kwargs, error, match):
    with pytest.raises(error, match=match):
        TuneBOHB(**kwargs)


@pytest.mark.parametrize("kwargs, error, match", [
    ({"max_t": 0}, ValueError, "max_t must be > 0"),
    ({"reduction_factor": 1}, ValueError, "reduction_factor must be > 1"),
    ({"time_attr": 3}, TypeError, "time_attr must be a string"),
    ({"mode": "avg"}, ValueError, "mode"),
])
def test_bad_scheduler_arguments_say_what_to_do(kwargs, error, match):
    with pytest.raises(error, match=match):
        HyperBandForBOHB(**kwargs)


def test_a_scheduler_without_metric_or_mode_says_where_to_give_them(tmp_path):
    with pytest.raises(ValueError, match=r"HyperBandForBOHB has no metric \(None\) or mode "
                                         r"\(None\): pass them to HyperBandForBOHB\(metric="):
        tune.Tuner(po.stepper, param_space={"x": 1.0},
                   tune_config=tune.TuneConfig(scheduler=HyperBandForBOHB()),
                   run_config=tune.RunConfig(storage_path=str(tmp_path), verbose=0)).fit()


# ----------------------------------------------------------------- the searcher

def test_max_concurrent_counts_the_running_trials_not_the_paused_ones():
    for searcher in (TuneBOHB({"x": tune.uniform(0, 1)}, metric="loss", mode="min",
                              max_concurrent=2),
                     ConcurrencyLimiter(TuneBOHB({"x": tune.uniform(0, 1)}, metric="loss",
                                                 mode="min"), max_concurrent=2)):
        bohb = getattr(searcher, "searcher", searcher)
        assert searcher.suggest("a") and searcher.suggest("b")
        assert searcher.suggest("c") is None
        bohb.on_pause("a")
        assert searcher.suggest("c") is not None
        bohb.on_unpause("a")
        assert searcher.suggest("d") is None          # a, b and c run
        searcher.on_trial_complete("b", {"loss": 1.0})
        assert searcher.suggest("d") is None          # a and c
        searcher.on_trial_complete("c", {"loss": 1.0})
        assert searcher.suggest("d") is not None


def test_bohb_hears_the_results_at_milestones_with_their_budgets():
    searcher = TuneBOHB({"x": tune.uniform(0, 1)}, metric="acc", mode="max", seed=0)
    configs = {t: searcher.suggest(t) for t in "abc"}
    searcher.on_trial_result("a", {"acc": 0.5, **_budget(1)})
    searcher.on_trial_result("b", {"acc": 0.25, "hyperband_info": {}})   # between milestones
    searcher.on_trial_result("c", {"acc": 0.75, **_budget(3)})
    with pytest.warns(UserWarning, match="metric 'acc' is missing"):  # no metric: skipped
        searcher.on_trial_result("c", {"other": 1.0, **_budget(9)})
    assert searcher.bohber.losses == {1: [-0.5], 3: [-0.75]}    # max: negated losses
    assert [float(a[0]) for a in searcher.bohber.configs[1]] == \
        pytest.approx([configs["a"]["x"]], abs=1e-9)
    with pytest.warns(UserWarning, match="without BOHB's budget.*Use "
                                         "fastasha.schedulers.HyperBandForBOHB"):
        searcher.on_trial_result("a", {"acc": 0.5})
    with warnings.catch_warnings():
        warnings.simplefilter("error")          # once
        searcher.on_trial_result("b", {"acc": 0.5})
    searcher.on_trial_complete("a", {"acc": 0.9})       # the last result is not given (Ray's)
    assert searcher.bohber.losses[1] == [-0.5]


def _told(seed, n=60):
    """The configs of ``n`` trials a TuneBOHB(seed) suggests, each told its loss at budget 1."""
    searcher = TuneBOHB(metric="loss", mode="min", seed=seed)
    searcher.set_search_properties(None, None, {"x": tune.uniform(-5.0, 5.0),
                                                "k": tune.qrandint(0, 20, 2),
                                                "act": tune.choice(["relu", "tanh"])})
    configs = []
    for i in range(n):
        config = searcher.suggest(str(i))
        configs.append(config)
        loss = (config["x"] - 1.0) ** 2 + config["k"] / 10 + (config["act"] == "tanh")
        searcher.on_trial_result(str(i), {"loss": loss, **_budget(1)})
        searcher.on_trial_complete(str(i), {"loss": loss})
    return configs, searcher


def test_the_same_seed_gives_the_same_configs_and_numpys_global_state_is_left_alone():
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    first, searcher = _told(7)
    assert (np.random.get_state()[1] == before).all()
    again, _ = _told(7)
    other, _ = _told(8)
    assert first == again and first != other
    assert searcher.bohber.kde_models           # model-based proposals were reproduced too
    # and BOHB learns: its later configs are better than its first, random ones
    losses = [(c["x"] - 1.0) ** 2 + c["k"] / 10 + (c["act"] == "tanh") for c in first]
    assert np.median(losses[-20:]) < np.median(losses[:20])


def test_stray_ends_are_ignored_with_a_warning():
    helpers.check_stray_ends(TuneBOHB({"x": tune.uniform(0, 1)}, metric="loss", mode="min"))


def test_a_saved_searcher_continues_where_it_was(tmp_path):
    _, searcher = _told(5, n=30)
    running = searcher.suggest("running")
    searcher.on_pause("running")
    searcher.save(str(tmp_path / "state.pkl"))
    fresh = TuneBOHB(metric="loss", mode="min", seed=99)
    fresh.restore(str(tmp_path / "state.pkl"))
    assert fresh.suggest("running") == running
    for s in (searcher, fresh):
        s.on_unpause("running")
        s.on_trial_result("running", {"loss": 0.0, **_budget(2)})
    assert [searcher.suggest(f"n{i}") for i in range(5)] == \
        [fresh.suggest(f"n{i}") for i in range(5)]
    assert fresh.bohber.losses == searcher.bohber.losses
    with open(tmp_path / "other.pkl", "wb") as f:
        pickle.dump({"format": "something else"}, f)
    with pytest.raises(ValueError, match="not a state saved by TuneBOHB.save"):
        fresh.restore(str(tmp_path / "other.pkl"))


# ------------------------------------------------------------------------ sweeps

def test_a_bohb_sweep_fills_the_largest_bracket_first_and_halves_them(tmp_path):
    searcher = TuneBOHB(seed=1)
    grid = _fit(tmp_path, "bohb", searcher, HyperBandForBOHB(max_t=4, reduction_factor=2))
    _check_brackets(grid)
    # BOHB heard the results the trials paused at, at each milestone
    assert sorted(searcher.bohber.configs) == [1, 2, 4]
    assert sum(len(v) for v in searcher.bohber.configs.values()) >= 6


def test_the_names_run_a_bohb_sweep(tmp_path):
    analysis = tune.run(po.stepper, config=SPACE, scheduler="hb_bohb", search_alg="bohb",
                        metric="loss", mode="min", num_samples=3, storage_path=str(tmp_path),
                        verbose=0)
    assert [t.status for t in analysis.trials] == ["TERMINATED"] * 3
    assert all(t.last_result["training_iteration"] == 4 for t in analysis.trials)


def test_the_same_seed_gives_the_same_sweep(tmp_path):
    def configs(name, seed):
        grid = _fit(tmp_path, name, TuneBOHB(seed=seed),
                    HyperBandForBOHB(max_t=4, reduction_factor=2), slots=1)
        _check_brackets(grid)
        return [r.config for r in sorted(grid, key=lambda r: r.metrics["trial_id"])]

    first = configs("a", 4)
    assert configs("b", 4) == first and configs("c", 5) != first


def _restored(tmp_path, name, n_results):
    """A 1-slot sweep stopped after ``n_results`` results, and the grids before and after its
    restore (with warnings as errors: nothing replayed differently, no trial run twice)."""
    half = _fit(tmp_path, name, TuneBOHB(seed=2), HyperBandForBOHB(max_t=4, reduction_factor=2),
                slots=1, stop=po.StopAllAfter(n_results))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        restored = tune.Tuner.restore(
            half.experiment_path, po.stepper, search_alg=TuneBOHB(seed=2),
            scheduler=HyperBandForBOHB(max_t=4, reduction_factor=2)).fit()
    return half, restored


def test_a_stopped_sweep_with_paused_trials_is_restored(tmp_path):
    half, restored = _restored(tmp_path, "half", 5)
    assert sorted(r.status for r in half) == ["PAUSED", "PAUSED", "PENDING", "TERMINATED",
                                              "TERMINATED"]
    _check_brackets(restored)
    assert [r.config for r in restored][:5] == [r.config for r in half]


def test_a_restored_bracket_that_lost_a_trial_still_ends(tmp_path):
    # the stop ends trial 7 (of the last bracket, which runs its 3 trials to max_t) at
    # step 2: restored, the bracket gets no more trials, and stops the other two at 4
    half, restored = _restored(tmp_path, "lost", 20)
    assert len(half) == 8 and half[7].status == "TERMINATED" and \
        half[7].metrics["training_iteration"] == 2
    assert [r.status for r in restored] == ["TERMINATED"] * 10
    assert [r.metrics["training_iteration"] for r in restored][7:] == [2, 4, 4]
    assert all(_steps(r) == list(range(1, r.metrics["training_iteration"] + 1))
               for r in restored)


def test_a_restore_refuses_another_schedulers_state():
    hyperband = HyperBandScheduler(metric="loss", mode="min", max_t=4, reduction_factor=2)
    with pytest.raises(ValueError, match="not a HyperBandForBOHB snapshot"):
        HyperBandForBOHB(metric="loss", mode="min", max_t=4,
                         reduction_factor=2).load_state_dict(hyperband.state_dict())
    bohb = HyperBandForBOHB(metric="loss", mode="min", max_t=4, reduction_factor=2)
    bohb.on_trial_add(None, types.SimpleNamespace(trial_id="t0"))
    fresh = HyperBandForBOHB(metric="loss", mode="min", max_t=4, reduction_factor=2)
    fresh.load_state_dict(bohb.state_dict())
    assert fresh.state_dict() == bohb.state_dict()
    assert "Using HyperBandForBOHB: num_stopped=0" in fresh.debug_string()
    assert math.isclose(fresh.next_decision_point("t0"), 1.0)      # the largest bracket's


def test_other_searchers_run_with_the_scheduler(tmp_path):
    # (Ray's calls on_pause of any searcher, and fails without it)
    grid = tune.Tuner(
        po.stepper, param_space={"x": tune.grid_search([float(i) for i in range(1, 11)]),
                                 "n_steps": 4},
        tune_config=tune.TuneConfig(scheduler=HyperBandForBOHB(max_t=4, reduction_factor=2),
                                    metric="loss", mode="min", max_concurrent_trials=2),
        run_config=tune.RunConfig(name="grid", storage_path=str(tmp_path), verbose=0)).fit()
    _check_brackets(grid)


class _OneConfig(tune.search.Searcher):
    """Suggests one config, then ends the sweep (Searcher.FINISHED)."""

    def __init__(self):
        super().__init__()
        self.given = 0

    def suggest(self, trial_id):
        self.given += 1
        return {"x": 1.0, "n_steps": 4} if self.given == 1 else self.FINISHED

    def save(self, checkpoint_path):
        with open(checkpoint_path, "wb") as f:
            pickle.dump(self.given, f)

    def restore(self, checkpoint_path):
        with open(checkpoint_path, "rb") as f:
            self.given = pickle.load(f)


def test_a_bracket_ended_when_the_searcher_finishes_stops_its_paused_trial(tmp_path):
    # max_t=4, rf=5: one bracket of 2 trials, run to 4. The only trial pauses at 4 (the
    # bracket may still get a trial); the searcher then finishes, and choose_trial_to_run
    # ends the bracket, stopping the paused trial
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        grid = tune.Tuner(
            po.stepper, tune_config=tune.TuneConfig(
                scheduler=HyperBandForBOHB(max_t=4, reduction_factor=5), search_alg=_OneConfig(),
                metric="loss", mode="min", num_samples=5, max_concurrent_trials=1),
            run_config=tune.RunConfig(name="finished", storage_path=str(tmp_path),
                                      verbose=0)).fit()
    assert [(r.status, r.metrics["training_iteration"]) for r in grid] == [("TERMINATED", 4)]
    assert not [w for w in caught if "chose no trial" in str(w.message)]
