"""NevergradSearch (fastasha/search/nevergrad.py): Ray's nevergrad searcher, with real nevergrad.

The searcher is driven through its public methods (``set_search_properties``,
``suggest``, ``on_trial_complete``, ``save``/``restore``) for the many draws
that check each domain's conversion, and through real sweeps (joblib's
default loky backend; the objectives are tests/objectives.py's) for the
rest. What the optimizer learnt is read from what it suggests next. The
recipes the library-backed searchers' tests share are
tests/searcher_helpers.py's.

nevergrad is imported with ``import_nevergrad``, as fastasha does: a plain
``import nevergrad`` fails next to bayesian-optimization 2.0 or newer,
which the test extra installs for BayesOptSearch.
"""

from __future__ import annotations

import collections
import functools
import importlib.util
import math

import numpy as np
import objectives  # tests/objectives.py (pytest puts tests/ on sys.path)
import pytest
import searcher_helpers as helpers  # tests/searcher_helpers.py

if importlib.util.find_spec("nevergrad") is None:
    pytest.skip("nevergrad is not installed", allow_module_level=True)

from fastasha import tune  # noqa: E402
from fastasha.search.nevergrad import NevergradSearch, import_nevergrad  # noqa: E402

ng = import_nevergrad()

# what Ray's example passes, and what most tests use
OnePlusOne = functools.partial(NevergradSearch, ng.optimizers.OnePlusOne)


def _draws(space, n, loss, optimizer="RandomSearch", seed=0, points=None):
    """The configs of ``n`` trials suggested one after the other, each told ``loss(config)``."""
    searcher = NevergradSearch(optimizer, metric="loss", mode="min", seed=seed,
                               points_to_evaluate=points)
    assert searcher.set_search_properties(None, None, space) is True
    return helpers.one_by_one(searcher, n, helpers.told(loss))


# ------------------------------------------------------------------------- import

def test_nevergrad_is_imported_when_a_searcher_is_built_not_before():
    assert helpers.imported_before_and_after("nevergrad", "NevergradSearch", "nevergrad",
                                             "'OnePlusOne'") == ["False", "True"]


def test_the_ray_paths_are_the_same_module():
    helpers.check_ray_paths("nevergrad", NevergradSearch)


def test_without_a_recent_nevergrad_construction_says_how_to_install(monkeypatch):
    helpers.check_install_hints(monkeypatch, NevergradSearch, "nevergrad", "1.0", old="0.14.0")


def test_nevergrad_imports_next_to_a_bayes_opt_without_utility_function(tmp_path):
    # a bayes_opt like 2.0 and newer: no UtilityFunction, which nevergrad imports
    (tmp_path / "bayes_opt").mkdir()
    (tmp_path / "bayes_opt" / "__init__.py").write_text("__version__ = '3.0.0'\nFAKE = 1\n")
    code = "\n".join([
        "import sys",
        f"sys.path.insert(0, {str(tmp_path)!r})",
        "try:",
        "    import nevergrad",
        "except ImportError as err:",
        "    print('plain import fails on', err.name)",
        "from fastasha.search.nevergrad import NevergradSearch, import_nevergrad",
        "ng = import_nevergrad()",
        "import bayes_opt, nevergrad",
        "print(nevergrad is ng, bayes_opt.FAKE, hasattr(ng.optimizers, 'BO'))",
        "searcher = NevergradSearch(ng.optimizers.OnePlusOne, space={'x': ng.p.Scalar()},",
        "                           metric='loss', mode='min')",
        "print(sorted(searcher.suggest('t0')))",
    ])
    assert helpers.python_prints(code).splitlines() == [
        "plain import fails on bayes_opt", "True 1 False", "['x']"]


def test_a_nevergrad_that_fails_to_import_is_not_called_missing(tmp_path):
    (tmp_path / "nevergrad").mkdir()
    (tmp_path / "nevergrad" / "__init__.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'cma'\", name='cma')\n")
    code = "\n".join([
        "import sys",
        f"sys.path.insert(0, {str(tmp_path)!r})",
        "from fastasha.search.nevergrad import NevergradSearch",
        "try:",
        "    NevergradSearch('OnePlusOne')",
        "except ImportError as err:",
        "    print(err)",
    ])
    message = helpers.python_prints(code)
    assert "installed but fails to import (ModuleNotFoundError: No module named 'cma')" in message
    assert 'pip install "nevergrad>=1.0" (or, in a clone of fastasha: pip install -e ' \
        '".[nevergrad]")' in message and "not installed" not in message


# -------------------------------------------------------------------- conversion

SPACE = helpers.DOMAIN_SPACE


def test_random_draws_of_every_domain_are_values_of_the_fastasha_domain():
    configs = _draws({**SPACE, "const": 3}, 300, lambda c: 0.0)
    helpers.check_domain_values(configs, covered=True)
    # each int as likely as the others (Ray's conversion halves the end values)
    counts = collections.Counter(c["randint"] for c in configs)
    assert min(counts.values()) > 0.25 * 300, counts
    assert type(configs[0]["choice"]) is type(next(c for c in SPACE["choice"].categories
                                                   if c == configs[0]["choice"]))


def test_values_nevergrad_proposes_at_its_bounds_stay_in_the_domains():
    """Cauchy draws ten times wider than the range: nevergrad clips many to its bounds."""
    wide = ng.families.RandomSearchMaker(sampler="cauchy", scale=10.0)
    configs = _draws(SPACE, 200, lambda c: 0.0, optimizer=wide)
    helpers.check_domain_values(configs, covered=True)
    for key, upper in (("uniform", 2.0), ("loguniform", 1e-1)):
        top = math.nextafter(upper, 0.0)        # the upper bound proposed: kept below it
        assert sum(c[key] == top for c in configs) >= 10, key


@pytest.mark.parametrize("sd", [0.5, 5.0])
def test_randn_starts_at_the_mean_and_steps_by_the_sd(sd):
    """OnePlusOne's first candidate is the mean; the ones asked before any result, steps of it.

    A normal step from the mean is ``sd * N(0, 1)``, whose median size is
    about 0.67 sd.
    """
    searcher = OnePlusOne(space={"n": tune.randn(50.0, sd), "q": tune.qrandn(0.0, sd, 0.5)},
                          metric="loss", mode="min", seed=0)
    configs = [searcher.suggest(str(i)) for i in range(40)]
    assert configs[0] == {"n": 50.0, "q": 0.0}
    steps = np.median([abs(c["n"] - 50.0) for c in configs[1:]]) / sd
    assert 0.4 < steps < 1.2, steps
    assert all(c["q"] % 0.5 == 0 for c in configs)


def test_nested_domains_and_nevergrad_parameters_in_param_space():
    space = {"model": {"lr": tune.loguniform(1e-4, 1e-1), "width": ng.p.Scalar(lower=1, upper=2)},
             "act": ng.p.Choice(["relu", "tanh"]), "n": 3}
    configs = _draws(space, 20, lambda c: 0.0)
    for c in configs:
        assert set(c) == {"model", "act"} and set(c["model"]) == {"lr", "width"}
        assert 1e-4 <= c["model"]["lr"] < 1e-1 and 1 <= c["model"]["width"] <= 2
        assert c["act"] in ("relu", "tanh")


def test_a_nevergrad_parameter_inside_a_choice_is_searched():
    configs = _draws({"c": tune.choice(["off", ng.p.Scalar(lower=0, upper=1)])}, 60,
                     lambda c: 0.0)
    values = [c["c"] for c in configs]
    assert "off" in values and any(isinstance(v, float) and 0 <= v <= 1 for v in values)


def test_constants_of_space_are_kept_in_the_configs():
    searcher = OnePlusOne(space={"x": tune.uniform(0, 1), "sub": {"k": 3, "l": [1, 2]}},
                          metric="loss", mode="min")
    config = searcher.suggest("t0")
    assert config == {"x": 0.5, "sub": {"k": 3, "l": [1, 2]}}       # the middle first


# ---------------------------------------------------------------------- native spaces

def test_a_native_dict_space_and_nested_dicts_in_it():
    space = ng.p.Dict(width=ng.p.Scalar(lower=0, upper=20),
                      model=ng.p.Dict(kind=ng.p.Choice(["a", "b"]), depth=3),
                      **{"sub/x": ng.p.Log(lower=1e-3, upper=1.0)})
    searcher = OnePlusOne(space=space, metric="loss", mode="min")
    for i in range(5):
        config = searcher.suggest(str(i))
        assert set(config) == {"width", "model", "sub"}
        assert config["model"]["depth"] == 3 and config["model"]["kind"] in ("a", "b")
        assert 1e-3 <= config["sub"]["x"] <= 1.0               # "/" in a name: nested, as Ray
        searcher.on_trial_complete(str(i), {"loss": config["width"]})


def test_an_instrumentation_of_keywords_as_the_space():
    space = ng.p.Instrumentation(x=ng.p.Scalar(lower=-1, upper=1), act=ng.p.Choice(["r", "t"]))
    searcher = OnePlusOne(space=space, metric="loss", mode="min",
                          points_to_evaluate=[{"x": 0.25, "act": "t"}])
    assert searcher.suggest("p") == {"x": 0.25, "act": "t"}
    config = searcher.suggest("t1")
    assert set(config) == {"x", "act"} and -1 <= config["x"] <= 1


def test_an_optimizer_built_already_with_its_own_parametrization():
    built = ng.optimizers.OnePlusOne(ng.p.Dict(x=ng.p.Scalar(lower=0, upper=1)), budget=10)
    searcher = NevergradSearch(built, metric="loss", mode="min")
    assert searcher.suggest("t0") == {"x": 0.5}
    searcher.on_trial_complete("t0", {"loss": 1.0})
    assert built.num_tell == 1                                  # the very optimizer given


def test_an_optimizer_built_on_an_array_with_its_names_as_in_ray():
    array = ng.p.Array(shape=(2,)).set_bounds(-5.0, 5.0)
    searcher = NevergradSearch(ng.optimizers.OnePlusOne(array), space=["a", "b/c"],
                               metric="loss", mode="min",
                               points_to_evaluate=[{"a": 0.5, "b": {"c": -0.5}}])
    assert searcher.suggest("p") == {"a": 0.5, "b": {"c": -0.5}}
    config = searcher.suggest("t1")
    assert set(config) == {"a", "b"} and all(type(v) is float for v in (config["a"],
                                                                          config["b"]["c"]))


@pytest.mark.filterwarnings("ignore:Could not import matplotlib")     # cma's, on import
@pytest.mark.parametrize("optimizer", [
    ng.optimizers.NGOpt, ng.optimizers.CMA, ng.optimizers.OnePlusOne,
    ng.families.ParametrizedOnePlusOne(mutation="cauchy"), "DE",
], ids=["class-NGOpt", "class-CMA", "configured", "family", "registry-name"])
def test_optimizer_classes_configured_optimizers_and_names(optimizer):
    searcher = NevergradSearch(optimizer, {"budget": 30}, {"x": tune.uniform(-2, 2),
                                                           "k": tune.randint(0, 4)},
                               metric="loss", mode="min", seed=0)
    for i in range(12):
        config = searcher.suggest(str(i))
        assert -2 <= config["x"] < 2 and config["k"] in (0, 1, 2, 3)
        searcher.on_trial_complete(str(i), {"loss": config["x"] ** 2 + config["k"]})


# ---------------------------------------------------------------------- refusals

@pytest.mark.parametrize("space, error, match", [
    ({"p": tune.grid_search([1, 2])}, ValueError, r"grid_search\(\).*use choice"),
    ({"p": tune.sample_from(lambda spec: 1)}, ValueError, r"sample_from\(\).*inside the objective"),
    ({"p": tune.choice([{"x": tune.uniform(0, 1)}, 2])}, ValueError,
     r"holds a domain.*ng\.p\.Choice\(\[ng\.p\.Dict"),
    ({"p": tune.choice([{"x": tune.grid_search([1, 2])}])}, ValueError, "grid_search inside"),
    ({"p": [tune.uniform(0, 1), 2]}, ValueError, "inside the list"),
    ({"a/b": tune.uniform(0, 1)}, ValueError, "holds '/'"),
    ({1: tune.uniform(0, 1)}, TypeError, "use str keys"),
], ids=["grid_search", "sample_from", "domain-in-choice", "grid-in-choice", "list", "slash",
        "int-key"])
def test_what_nevergrad_cannot_search_is_refused(space, error, match):
    helpers.check_refused(OnePlusOne, space, match, error)


@pytest.mark.parametrize("space, match", [
    (ng.p.Instrumentation(ng.p.Scalar(), y=ng.p.Scalar()), "1 positional parameter"),
    (ng.p.Array(shape=(2,)), "Array, whose values have no names"),
    (ng.p.Dict(c=3), "nothing to search"),
    ({"c": 3}, "nothing to search"),
    (["x", "y"], "goes with an optimizer built already"),
], ids=["positional", "array", "native-constants", "constants", "names"])
def test_spaces_without_names_or_without_parameters_are_refused(space, match):
    with pytest.raises(ValueError, match=match):
        OnePlusOne(space=space, metric="loss", mode="min")


def test_a_sweep_with_an_unsupported_domain_fails_before_any_trial(tmp_path):
    helpers.check_refused_before_any_trial(tmp_path, OnePlusOne())


def test_the_space_given_twice_or_not_at_all_is_refused():
    helpers.check_space_refusals(OnePlusOne, {"x": tune.uniform(0, 1)})
    with pytest.raises(RuntimeError, match="needs a metric and a mode"):
        OnePlusOne(space={"x": tune.uniform(0, 1)}).suggest("t0")
    built = ng.optimizers.OnePlusOne(ng.p.Dict(x=ng.p.Scalar()))
    with pytest.raises(ValueError, match="given twice"):
        NevergradSearch(built).set_search_properties("loss", "min", {"y": tune.uniform(0, 1)})


@pytest.mark.parametrize("kwargs, error, match", [
    ({}, ValueError, "needs an optimizer, as in Ray"),
    ({"optimizer": "OnePlusOn"}, ValueError, "no optimizer named 'OnePlusOn'; did you mean "
                                             "'OnePlusOne'"),
    ({"optimizer": 3}, TypeError, "optimizer must be a nevergrad optimizer class"),
    ({"optimizer": "OnePlusOne", "optimizer_kwargs": "budget"}, TypeError,
     "optimizer_kwargs must be a dict"),
    ({"optimizer": "OnePlusOne", "optimizer_kwargs": {"bogus": 1},
      "space": {"x": tune.uniform(0, 1)}, "mode": "min"}, TypeError,
     "cannot be built with optimizer_kwargs"),
    ({"optimizer": "OnePlusOne", "mode": "minimize"}, ValueError, "mode must be 'min' or 'max'"),
    ({"optimizer": "OnePlusOne", "metric": ["a", "b"], "mode": ["min", "max"]}, ValueError,
     "optimises one metric"),
    ({"optimizer": "OnePlusOne", "space": 3}, TypeError, "space must be a dict"),
    ({"optimizer": "OnePlusOne", "seed": -1}, ValueError, "seed must be at least 0"),
    ({"optimizer": "OnePlusOne", "seed": 2**32}, ValueError, "less than 2\\*\\*32"),
    ({"optimizer": "OnePlusOne", "seed": "s"}, TypeError, "seed must be an integer"),
    ({"optimizer": "OnePlusOne", "points_to_evaluate": {"x": 1}}, TypeError,
     "points_to_evaluate must be a list"),
], ids=["none", "unknown-name", "type", "kwargs-type", "kwargs-unknown", "mode", "lists",
        "space", "seed", "seed-large", "seed-type", "points"])
def test_bad_arguments_are_refused(kwargs, error, match):
    with pytest.raises(error, match=match):
        NevergradSearch(**kwargs)


@pytest.mark.parametrize("kwargs, error, match", [
    ({"optimizer_kwargs": {"budget": 3}}, ValueError, "an optimizer built already took its own"),
    ({"seed": 0}, ValueError, r"seed its parametrization before building it"),
    ({"space": {"x": tune.uniform(0, 1)}}, TypeError, "space must be None or a list of names"),
    ({"space": ["a"]}, ValueError, "names 1 value"),
    ({"space": ["a", "a"]}, ValueError, "one distinct name per value"),
], ids=["optimizer_kwargs", "seed", "dict-space", "too-few-names", "same-name"])
def test_what_does_not_go_with_an_optimizer_built_already_is_refused(kwargs, error, match):
    built = ng.optimizers.OnePlusOne(ng.p.Array(shape=(2,)))
    with pytest.raises(error, match=match):
        NevergradSearch(built, **kwargs)
    with pytest.raises(ValueError, match="Array, whose values have no names"):
        NevergradSearch(built)


def test_a_missing_mode_is_refused_before_the_sweep():
    helpers.check_a_missing_mode(OnePlusOne)


@pytest.mark.parametrize("point, match", [*helpers.UNFIT_POINTS,
    pytest.param({"x": 0.5, "k": 1, "q": 5}, "5 of 'q'", id="not-multiple"),     # of 4
    pytest.param({"x": 0.5, "k": 1, "c": "other"}, "does not fit the nevergrad parametrization",
                 id="category"),
    pytest.param({"x": 0.5, "k": 1, "w": 3.0}, "does not fit the nevergrad parametrization",
                 id="native-outside"),
])
def test_points_that_do_not_fit_the_space_are_refused(point, match):
    space = {"x": tune.uniform(0, 1), "k": tune.randint(0, 3), "q": tune.qrandint(0, 8, 4),
             "c": tune.choice(["a", "b"]), "w": ng.p.Scalar(lower=0, upper=2)}
    point = {"q": 4, "c": "a", "w": 1.0, **point}
    with pytest.raises(ValueError, match=match):   # (a key outside the space: at the first
        # suggestion, once it is known that no param_space gives it as a constant)
        OnePlusOne(space=space, metric="loss", mode="min",
                   points_to_evaluate=[point]).suggest("t0")


# ---------------------------------------------------------- what the optimizer hears

def test_points_to_evaluate_come_first_in_order_nested_as_configs():
    space = {"x": tune.uniform(0, 1), "sub": {"k": tune.qrandint(0, 10, 5)},
             "lr": tune.lograndint(1, 100), "c": tune.choice(["a", [1, 2]])}
    points = [{"x": 0.25, "sub": {"k": 10}, "lr": 99, "c": [1, 2]},
              {"x": 1, "sub/k": 0.0, "lr": 1, "c": "a"},           # Ray's flat names work too
              {"x": 0.75, "sub": {"k": 5}, "lr": 7, "c": "a"}]
    configs = _draws(space, 5, lambda c: c["x"], optimizer="OnePlusOne", points=points)
    assert configs[0] == points[0]
    assert configs[1] == {"x": 1.0, "sub": {"k": 0}, "lr": 1, "c": "a"}
    assert type(configs[1]["x"]) is float and type(configs[1]["sub"]["k"]) is int
    assert configs[2] == points[2]
    assert configs[3] not in points and configs[4] not in points


def test_the_optimizer_learns_from_the_results_in_the_direction_of_the_mode():
    """OnePlusOne's trials 20-39 are far better than random ones minimising, worse maximising.

    The median loss of random draws is about 110 here; OnePlusOne's late
    trials reach about 13 when they minimise and about 290 when they
    maximise (seeds 0-2, pooled), so the factors leave room.
    """
    def late(mode):
        return [loss for seed in (0, 1, 2) for loss in helpers.quadratic_losses(
            OnePlusOne(space=helpers.QUADRATIC_SPACE, metric="loss", mode=mode, seed=seed))[20:]]

    low, high, random_median = late("min"), late("max"), helpers.random_quadratic_median()
    assert np.median(low) < 0.5 * random_median, (np.median(low), random_median)
    assert np.median(high) > 1.5 * random_median, (np.median(high), random_median)


def _suggestions(end_of_positive, mode="min", sign=1.0):
    """40 suggestions of x; a trial with x > 0 ends with ``end_of_positive`` (result, error).

    The others end with ``sign * (x + 0.5) ** 2``.
    """
    searcher = OnePlusOne(space={"x": tune.uniform(-1.0, 1.0)}, metric="loss", mode=mode,
                          seed=3)
    configs = helpers.one_by_one(searcher, 40, lambda c: end_of_positive if c["x"] > 0 else
                                 ({"loss": sign * (c["x"] + 0.5) ** 2}, False))
    return [c["x"] for c in configs]


def test_max_is_min_of_the_negated_metric():
    assert _suggestions(({"loss": 9.0}, False)) == \
        _suggestions(({"loss": -9.0}, False), mode="max", sign=-1.0)


def test_failed_trials_and_results_without_the_metric_tell_the_optimizer_nothing():
    failed = _suggestions((None, True))
    assert _suggestions(({"loss": -100.0}, True)) == failed     # its value is not used, as Ray
    with pytest.warns(UserWarning, match="without the metric 'loss'") as record:
        assert _suggestions((None, False)) == failed
    assert len(record) == 1                                      # once per searcher
    with pytest.warns(UserWarning, match="without the metric"):
        assert _suggestions(({"other": 1.0}, False)) == failed
    with pytest.warns(UserWarning, match="'low' as its metric.*no number"):
        assert _suggestions(({"loss": "low"}, False)) == failed
    assert _suggestions(({"loss": 9.0}, False)) != failed       # told: it learns


def test_nan_is_the_worst_loss_there_is():
    with pytest.warns(UserWarning, match="nan as its metric") as record:
        nan = _suggestions(({"loss": float("nan")}, False))
    assert all("nan as its metric" in str(w.message) for w in record)   # nevergrad's: not shown
    with pytest.warns(ng.errors.LossTooLargeWarning, match="Clipping very high value inf"):
        assert _suggestions(({"loss": math.inf}, False)) == nan
    assert nan != _suggestions((None, True))


def test_the_end_of_a_trial_heard_twice_or_never_suggested_is_ignored():
    helpers.check_stray_ends(OnePlusOne(space={"x": tune.uniform(0, 1)}, metric="loss",
                                        mode="min"))


def test_set_max_concurrency_leaves_it_to_the_limiter():
    assert OnePlusOne().set_max_concurrency(2) is False


# ------------------------------------------------------------------------- sweeps
# (the objectives are tests/objectives.py's: a worker imports that small module)

def test_an_asha_sweep_with_nevergrad(tmp_path):
    helpers.check_an_asha_sweep(tmp_path, lambda points: OnePlusOne(points_to_evaluate=points,
                                                                    seed=3))


def test_the_same_seed_gives_the_same_sweep(tmp_path):
    space = {"x": tune.uniform(-1.0, 1.0), "k": tune.randint(0, 5), "n": 2}
    first, again, other = helpers.same_seed_sweeps(
        tmp_path, objectives.steps, space, lambda seed: OnePlusOne(seed=seed), num_samples=12)
    assert len(first) == 12 and first == again
    assert other != first


def _native_space(seed):
    space = ng.p.Dict(x=ng.p.Scalar(lower=-1, upper=1),
                      k=ng.p.Scalar(lower=0, upper=4).set_integer_casting())
    space.random_state.seed(seed)
    return space


def test_a_native_space_with_a_seeded_random_state_gives_the_same_sweep(tmp_path):
    first, again, other = helpers.same_seed_sweeps(
        tmp_path, objectives.steps, {"n": 2},
        lambda seed: NevergradSearch(ng.optimizers.NGOpt, {"budget": 10}, _native_space(seed)),
        num_samples=10)
    assert len(first) == 10 and first == again
    assert other != first
    assert all(-1 <= c["x"] <= 1 and c["k"] in range(5) and c["n"] == 2 for c in first)


def test_a_concurrency_limiter_caps_the_trials_it_runs_at_once(tmp_path):
    helpers.check_one_trial_at_a_time(tmp_path, OnePlusOne(seed=0))


def test_a_sweep_with_an_optimizer_built_already(tmp_path):
    built = ng.optimizers.OnePlusOne(ng.p.Dict(x=ng.p.Scalar(lower=0, upper=1)), budget=8)
    grid = helpers.sweep(tmp_path, "built", objectives.steps, {"n": 2},
                         NevergradSearch(built), num_samples=8)
    assert len(grid) == 8 and grid.num_errors == 0
    assert built.num_tell == 8 and grid[0].config == {"x": 0.5, "n": 2}


# ----------------------------------------------------------------------- save/restore

def test_save_and_restore_continue_the_same_suggestions(tmp_path):
    space = {"x": tune.uniform(-1.0, 1.0), "c": tune.choice(["a", "b"])}
    before, after = helpers.suggestions_after_restore(
        tmp_path, OnePlusOne(space=space, metric="loss", mode="min", seed=4),
        OnePlusOne(space=space, metric="loss", mode="min", seed=99), n_told=8)
    assert after == before


def test_points_not_run_yet_are_kept_by_save(tmp_path):
    points = [{"x": 0.1}, {"x": 0.2}]

    def searcher():
        return OnePlusOne(space={"x": tune.uniform(-1.0, 1.0)}, metric="loss", mode="max",
                          points_to_evaluate=points)

    first = searcher()
    assert first.suggest("p0") == points[0]
    first.save(str(tmp_path / "early.pkl"))       # one point not run yet, one running
    early = searcher()
    early.restore(str(tmp_path / "early.pkl"))
    assert early.suggest("p0") == points[0] and early.suggest("p1") == points[1]
    early.on_trial_complete("p0", {"loss": 1.0})
    (tmp_path / "other.pkl").write_bytes(b"\x80\x04N.")     # a pickle of None
    with pytest.raises(ValueError, match="not a state saved by NevergradSearch.save"):
        early.restore(str(tmp_path / "other.pkl"))


def test_a_stopped_sweep_restored_runs_as_if_never_stopped(tmp_path):
    space = {"x": tune.uniform(-1.0, 1.0), "k": tune.randint(0, 5), "n": 1}
    restored = helpers.check_restored_as_never_stopped(
        tmp_path, objectives.steps, space,
        lambda: OnePlusOne(seed=8, points_to_evaluate=[{"x": 0.5, "k": 1}]),
        helpers.StopAllAfter(5), num_samples=12)
    assert restored[0].config == {"x": 0.5, "k": 1, "n": 1}


# ------------------------------------------------------------------------ example

def test_the_nevergrad_example_smoke_test(tmp_path):
    helpers.check_easy_objective_example(tmp_path, "nevergrad_example.py", num_samples=10)
