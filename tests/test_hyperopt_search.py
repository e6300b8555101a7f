"""HyperOptSearch (fastasha/search/hyperopt.py): Ray Tune's HyperOpt searcher, with real hyperopt.

The searcher is driven through its public methods (``set_search_properties``,
``suggest``, ``on_trial_complete``, ``save``/``restore``) for the many draws
that check each domain's conversion, and through real sweeps (joblib's
default loky backend; the objectives are tests/objectives.py's) for the
rest. What TPE learnt is read from what it suggests next. The recipes the
three library-backed searchers' tests share are tests/searcher_helpers.py's.
"""

from __future__ import annotations

import collections

import numpy as np
import objectives  # tests/objectives.py (pytest puts tests/ on sys.path)
import pytest
import searcher_helpers as helpers  # tests/searcher_helpers.py

hyperopt = pytest.importorskip("hyperopt")

from hyperopt import hp  # noqa: E402

from fastasha import tune  # noqa: E402
from fastasha.schedulers import AsyncHyperBandScheduler  # noqa: E402
from fastasha.search import ConcurrencyLimiter, Searcher  # noqa: E402
from fastasha.search.hyperopt import HyperOptSearch  # noqa: E402


def _draws(space, n, loss, seed=0, n_initial_points=20, mode="min"):
    """The configs of ``n`` trials suggested one after the other, each told ``loss(config)``."""
    searcher = HyperOptSearch(metric="loss", mode=mode, random_state_seed=seed,
                              n_initial_points=n_initial_points)
    assert searcher.set_search_properties(None, None, space) is True
    configs = []
    for i in range(n):
        config = searcher.suggest(str(i))
        configs.append(config)
        searcher.on_trial_complete(str(i), {"loss": loss(config)})
    return configs


# ------------------------------------------------------------------------- import

def test_hyperopt_is_imported_when_a_searcher_is_built_not_before():
    code = ("import sys; import fastasha.search, fastasha.tune; "
            "from fastasha.tune.search.hyperopt import HyperOptSearch; "
            "print('hyperopt' in sys.modules, end=' '); HyperOptSearch(); "
            "print('hyperopt' in sys.modules)")
    assert helpers.python_prints(code).split() == ["False", "True"]


def test_the_ray_paths_are_the_same_module():
    import fastasha.search.hyperopt as module
    import fastasha.tune.search.hyperopt as ray2
    import fastasha.tune.suggest.hyperopt as ray1     # Ray 1.x's path

    assert ray1 is ray2 is module and tune.search.hyperopt is module
    assert module.HyperOptSearch is HyperOptSearch and issubclass(HyperOptSearch, Searcher)


@pytest.mark.parametrize("installed, match", [
    (None, r'HyperOptSearch needs the optional dependency hyperopt.*'
           r'pip install "hyperopt>=0\.2\.7" \(or, in a clone of fastasha: '
           r'pip install -e "\.\[hyperopt\]"\)'),
    ("0.2.5", r'needs hyperopt 0.2.7 or newer, found 0.2.5: pip install -U "hyperopt>=0\.2\.7"'),
], ids=["missing", "too-old"])
def test_without_a_recent_hyperopt_construction_says_how_to_install(monkeypatch, installed,
                                                                     match):
    helpers.check_install_hint(monkeypatch, HyperOptSearch, "hyperopt", installed, match)


# -------------------------------------------------------------------- conversion

# each domain: the check of one value, and the values every draw must cover (or None)
DOMAINS = helpers.DOMAIN_CASES


def _found(values):
    return {tuple(v) if isinstance(v, list) else v for v in values}


def test_random_draws_of_every_domain_are_those_of_the_fastasha_domain():
    configs = _draws({**helpers.DOMAIN_SPACE, "const": 3}, 300, lambda c: 0.0,
                     n_initial_points=300)
    helpers.check_domain_values(configs, covered=True)
    # a category is itself, not a copy HyperOpt rebuilt as a tuple
    assert any(type(c["choice"]) is list and c["choice"] == [3] for c in configs)


@pytest.mark.parametrize("key", list(DOMAINS))
@pytest.mark.parametrize("toward", [-1.0, 1.0], ids=["low", "high"])
def test_tpes_draws_keep_to_the_domain_when_pulled_to_its_ends(key, toward):
    domain, check, expected = DOMAINS[key]

    def loss(config):        # TPE is driven to the low or the high end of the range
        value = config["p"]
        return -toward * (value if isinstance(value, (int, float)) else len(repr(value)))

    values = [c["p"] for c in _draws({"p": domain}, 50, loss, n_initial_points=10)]
    bad = [v for v in values if not check(v)]
    assert not bad, bad
    assert expected is None or _found(values) <= expected


def test_random_draws_give_every_int_of_a_randint_the_same_chance():
    # Ray's hp.uniformint(a, b - 1) makes the two end values half as likely
    configs = _draws({"k": tune.randint(0, 3), "j": tune.qrandint(0, 10, 5)}, 300,
                     lambda c: 0.0, n_initial_points=300)
    for key, values in (("k", (0, 1, 2)), ("j", (0, 5, 10))):
        counts = collections.Counter(c[key] for c in configs)
        assert set(counts) == set(values)
        assert all(70 <= counts[v] <= 130 for v in values), counts


def test_lograndint_draws_as_fastasha_does():
    # log-uniform on [1, 4), floored: P(1) = log 2 / log 4 = 1/2
    # (Ray's int(hp.qloguniform(log 1, log 3, 1)) gives 1 a chance of log 1.5 / log 3 = 0.37)
    configs = _draws({"k": tune.lograndint(1, 4)}, 300, lambda c: 0.0, n_initial_points=300)
    share = sum(c["k"] == 1 for c in configs) / len(configs)
    assert 0.42 <= share <= 0.58, share


def test_a_choice_of_categories_holding_domains_is_searched_too():
    space = {"model": tune.choice([
        {"kind": "svm", "C": tune.loguniform(1e-2, 1e2), "extra": [1, 2]},
        {"kind": "forest", "depth": tune.randint(1, 4), "sub": {"w": tune.uniform(0, 1)}},
        tune.uniform(10, 20),
        "none",
    ])}
    configs = _draws(space, 60, lambda c: 0.0)
    kinds = collections.Counter(
        c["model"]["kind"] if isinstance(c["model"], dict) else type(c["model"]).__name__
        for c in configs)
    assert set(kinds) == {"svm", "forest", "float", "str"}
    for c in configs:
        model = c["model"]
        if isinstance(model, dict) and model["kind"] == "svm":
            assert list(model) == ["kind", "C", "extra"]        # its order, its list
            assert 1e-2 <= model["C"] < 1e2 and model["extra"] == [1, 2]
        elif isinstance(model, dict):
            assert model["depth"] in (1, 2, 3) and 0 <= model["sub"]["w"] < 1
        elif isinstance(model, float):
            assert 10 <= model < 20
        else:
            assert model == "none"


def test_nested_domains_come_back_nested_and_the_same_when_asked_again():
    searcher = HyperOptSearch(metric="loss", mode="min", random_state_seed=0)
    searcher.set_search_properties(None, None, {
        "model": {"lr": tune.loguniform(1e-3, 1e-1), "depth": {"n": tune.randint(1, 3)}},
        "batch": 32})
    config = searcher.suggest("t0")
    assert set(config) == {"model"} and set(config["model"]) == {"lr", "depth"}
    assert config["model"]["depth"]["n"] in (1, 2)
    assert searcher.suggest("t0") == config


def test_a_hyperopt_space_given_to_the_searcher():
    space = {
        "width": hp.uniform("width", 0, 20),
        "act": hp.choice("act", ["relu", "tanh"]),
        "model": hp.choice("model", [{"kind": "a", "x": hp.uniform("x", 0, 1)},
                                     {"kind": "b", "k": hp.randint("k", 3)}]),
        "lr": tune.loguniform(1e-4, 1e-1),          # fastasha domains mix in, as in Ray
        "fixed": {"c": 7},
    }
    searcher = HyperOptSearch(space, metric="loss", mode="min", random_state_seed=1,
                              n_initial_points=5)
    assert searcher.set_search_properties("other", "max", {"const": 1}) is False
    assert (searcher.metric, searcher.mode) == ("loss", "min")    # its own are kept
    for i in range(12):
        config = searcher.suggest(str(i))
        assert 0 <= config["width"] <= 20 and config["act"] in ("relu", "tanh")
        assert config["model"]["kind"] in ("a", "b") and 1e-4 <= config["lr"] < 1e-1
        assert config["fixed"] == {"c": 7}
        searcher.on_trial_complete(str(i), {"loss": config["width"]})


def test_space_given_to_the_searcher_takes_the_sweeps_metric_and_mode():
    searcher = HyperOptSearch({"x": tune.uniform(0, 1)})
    searcher.set_search_properties("score", "max", {})
    assert (searcher.metric, searcher.mode) == ("score", "max")
    searcher.suggest("t0")
    searcher.on_trial_complete("t0", {"score": 0.5})


# ---------------------------------------------------------------------- refusals

@pytest.mark.parametrize("space, error, match", [
    ({"p": tune.grid_search([1, 2])}, ValueError, r"grid_search\(\).*use choice"),
    ({"p": tune.sample_from(lambda spec: 1)}, ValueError, r"sample_from\(\).*inside the objective"),
    ({"p": tune.choice([tune.sample_from(lambda spec: 1), 2])}, ValueError, r"sample_from\(\)"),
    ({"p": tune.choice([{"x": tune.grid_search([1, 2])}])}, ValueError, "grid_search inside"),
    ({"p": [tune.uniform(0, 1), 2]}, ValueError, "inside the list"),
    ({"p": tune.choice([[tune.uniform(0, 1)], 2])}, ValueError, "inside the list"),
    ({"a/b": tune.uniform(0, 1)}, ValueError, "holds '/'"),
    ({1: tune.uniform(0, 1)}, TypeError, "use str keys"),
    ({"p": hp.uniform("x", 0, 1), "x": tune.uniform(0, 1)}, ValueError, "label 'x'"),
], ids=["grid_search", "sample_from", "sample_from-in-choice", "grid-in-choice", "list",
        "list-in-choice", "slash", "int-key", "label-twice"])
def test_what_hyperopt_cannot_search_is_refused(space, error, match):
    helpers.check_refused(HyperOptSearch, space, match, error, as_param_space=not any(
        isinstance(v, hyperopt.pyll.Apply) for v in space.values()))


def test_a_sweep_with_an_unsupported_domain_fails_before_any_trial(tmp_path):
    space = {"x": tune.sample_from(lambda spec: 0.1), "n": 1}
    with pytest.raises(ValueError, match="sample_from"):
        helpers.sweep(tmp_path, "refused", objectives.steps, space, HyperOptSearch(),
                      num_samples=2)
    assert not list((tmp_path / "refused").glob("*/result.json"))


def test_the_space_given_twice_or_not_at_all_is_refused():
    helpers.check_space_refusals(HyperOptSearch, {"x": tune.uniform(0, 1)})
    with pytest.raises(RuntimeError, match="needs a metric and a mode"):
        HyperOptSearch({"x": tune.uniform(0, 1)}).suggest("t0")
    with pytest.raises(ValueError, match="nothing to search"):
        HyperOptSearch({"c": 3}, metric="loss", mode="min")


@pytest.mark.parametrize("kwargs, error, match", [
    ({"mode": "minimize"}, ValueError, "mode must be 'min' or 'max'"),
    ({"metric": ["a", "b"], "mode": ["min", "max"]}, ValueError, "optimises one metric"),
    ({"space": 3}, TypeError, "space must be a dict"),
    ({"n_initial_points": -1}, ValueError, "n_initial_points must be 0 or more"),
    ({"n_initial_points": 2.5}, TypeError, "n_initial_points must be an int"),
    ({"random_state_seed": "s"}, TypeError, "random_state_seed must be an int"),
    ({"random_state_seed": -3}, ValueError, "random_state_seed must be 0 or more"),
    ({"gamma": 0}, ValueError, "gamma must be greater than 0"),
    ({"gamma": "x"}, TypeError, "gamma must be a number"),
    ({"points_to_evaluate": {"x": 1}}, TypeError, "points_to_evaluate must be a list"),
], ids=["mode", "lists", "space", "n_initial_points", "n_initial_points-type", "seed-type",
        "seed", "gamma", "gamma-type", "points"])
def test_bad_arguments_are_refused(kwargs, error, match):
    with pytest.raises(error, match=match):
        HyperOptSearch(**kwargs)


def test_a_missing_mode_is_refused_before_the_sweep():
    helpers.check_a_missing_mode(HyperOptSearch)


@pytest.mark.parametrize("point, match", [
    ({"x": 0.5}, r"missing \['k'\]"),
    ({"x": 0.5, "k": 1, "y": 2}, r"not in the space \['y'\]"),
    ({"x": 1.5, "k": 1}, "1.5 of 'x'.*not in its search space"),
    ({"x": 0.5, "k": 3}, "3 of 'k'.*not in its search space"),          # randint: 3 excluded
    ({"x": 0.5, "k": 1.5}, "1.5 of 'k'"),
    ({"x": 0.5, "k": 1, "c": "other"}, "'other' of 'c'"),
    ({"x": 0.5, "k": 1, "c": {"w": 2.0}}, "of 'c'"),
], ids=["missing", "unknown", "outside", "upper", "not-int", "category", "category-domain"])
def test_points_that_do_not_fit_the_space_are_refused(point, match):
    space = {"x": tune.uniform(0, 1), "k": tune.randint(0, 3),
             "c": tune.choice(["a", {"w": tune.uniform(0, 1)}])}
    point = {"c": "a", **point}
    with pytest.raises(ValueError, match=match):   # (a key outside the space: at the first
        # suggestion, once it is known that no param_space gives it as a constant)
        HyperOptSearch(space, metric="loss", mode="min", points_to_evaluate=[point]).suggest("t0")


def test_points_cannot_set_a_computed_hyperopt_expression():
    with pytest.raises(ValueError, match="cannot give 'x' a value"):
        HyperOptSearch({"x": hp.uniform("x", 0, 1) * 2}, metric="loss", mode="min",
                       points_to_evaluate=[{"x": 1.0}])


# ---------------------------------------------------------------- what TPE hears

def test_points_to_evaluate_come_first_in_order_nested_as_configs():
    space = {"x": tune.uniform(0, 1), "sub": {"k": tune.qrandint(0, 10, 5)},
             "c": tune.choice(["a", [1, 2], {"w": tune.uniform(0, 1), "n": "fixed"}])}
    points = [{"x": 0.25, "sub": {"k": 10}, "c": {"w": 0.5, "n": "fixed"}},
              {"x": 0.75, "sub/k": 0, "c": [1, 2]},           # Ray's flat names work too
              {"x": 1.0, "sub": {"k": 5}, "c": "a"}]
    searcher = HyperOptSearch(metric="loss", mode="min", points_to_evaluate=points,
                              random_state_seed=0, n_initial_points=0)
    searcher.set_search_properties(None, None, space)
    configs = []
    for i in range(5):
        configs.append(searcher.suggest(str(i)))
        searcher.on_trial_complete(str(i), {"loss": float(i)})
    assert configs[0] == points[0]
    assert configs[1] == {"x": 0.75, "sub": {"k": 0}, "c": [1, 2]}
    assert configs[2] == points[2]
    assert type(configs[1]["sub"]["k"]) is int and type(configs[1]["c"]) is list
    assert configs[3] not in points and configs[4] not in points


def test_hyperopt_native_points_take_categories_as_values():
    space = {"act": hp.choice("act", ["relu", "tanh"]), "w": hp.quniform("w", 0, 10, 1)}
    searcher = HyperOptSearch(space, metric="loss", mode="min",
                              points_to_evaluate=[{"act": "tanh", "w": 3.0}])
    assert searcher.suggest("t0") == {"act": "tanh", "w": 3.0}


def _tpe_losses(seed, mode):
    """Losses of 40 trials of a 3-D quadratic (optimum at 3), minimised or maximised."""
    dims = ("x0", "x1", "x2")
    searcher = HyperOptSearch({d: tune.uniform(-10.0, 10.0) for d in dims}, metric="loss",
                              mode=mode, random_state_seed=seed, n_initial_points=10)
    losses = []
    for i in range(40):
        config = searcher.suggest(str(i))
        losses.append(sum((config[d] - 3.0) ** 2 for d in dims))
        searcher.on_trial_complete(str(i), {"loss": losses[-1]})
    return losses


def test_tpe_learns_from_the_results_in_the_direction_of_the_mode():
    """TPE's trials 20-39 are far better than random ones when minimising, worse when maximising.

    The first 10 trials are random. The median loss of random draws is about
    115 here; TPE's late trials reach about 50 when they minimise and about
    200 when they maximise (seeds 0-2, pooled), so the factors leave room.
    """
    draws = np.random.default_rng(0).uniform(-10.0, 10.0, (120, 3))
    random_median = float(np.median(((draws - 3.0) ** 2).sum(axis=1)))
    low = [loss for seed in (0, 1, 2) for loss in _tpe_losses(seed, "min")[20:]]
    high = [loss for seed in (0, 1, 2) for loss in _tpe_losses(seed, "max")[20:]]
    assert np.median(low) < 0.65 * random_median, (np.median(low), random_median)
    assert np.median(high) > 1.3 * random_median, (np.median(high), random_median)


def _suggestions(end_of_positive):
    """40 suggestions of x; a trial with x > 0 ends with ``end_of_positive`` (result, error)."""
    searcher = HyperOptSearch({"x": tune.uniform(-1.0, 1.0)}, metric="loss", mode="min",
                              random_state_seed=3, n_initial_points=10)
    xs = []
    for i in range(40):
        x = searcher.suggest(str(i))["x"]
        xs.append(x)
        result, error = end_of_positive if x > 0 else ({"loss": (x + 0.5) ** 2}, False)
        searcher.on_trial_complete(str(i), result, error=error)
    return xs


def test_failed_trials_are_left_out_of_tpes_model_as_in_ray():
    failed = _suggestions((None, True))
    assert _suggestions(({"loss": -100.0}, True)) == failed     # its value is not used
    with pytest.warns(UserWarning, match="nan as its metric"):
        assert _suggestions(({"loss": float("nan")}, False)) == failed
    with pytest.warns(UserWarning, match="'low' as its metric"):
        assert _suggestions(({"loss": "low"}, False)) == failed


def test_a_trial_without_the_metric_counts_as_the_worst():
    with pytest.warns(UserWarning, match="without the metric 'loss'") as record:
        silent = _suggestions((None, False))
    assert len(record) == 1                                      # once per searcher
    with pytest.warns(UserWarning, match="without the metric"):
        assert _suggestions(({"other": 1.0}, False)) == silent
    # TPE learnt to avoid x > 0 (about 3 late draws in 4 are below 0 for this seed, and
    # 1 in 10 when the trials there fail: a failed trial is no bad result to TPE)
    failed = _suggestions((None, True))
    assert np.mean(np.array(silent[20:]) < 0) >= 0.6, silent
    assert np.mean(np.array(silent[20:]) < 0) > np.mean(np.array(failed[20:]) < 0) + 0.3


def test_the_end_of_a_trial_heard_twice_or_never_suggested_is_ignored():
    searcher = HyperOptSearch({"x": tune.uniform(0, 1)}, metric="loss", mode="min")
    searcher.suggest("a")
    searcher.on_trial_complete("a", {"loss": 1.0})
    with pytest.warns(UserWarning, match="already ended"):
        searcher.on_trial_complete("a", {"loss": 0.0})
    with pytest.warns(UserWarning, match="was not suggested"):
        searcher.on_trial_complete("b", {"loss": 0.0})


def test_set_max_concurrency_leaves_it_to_the_limiter():
    assert HyperOptSearch().set_max_concurrency(2) is False


# ------------------------------------------------------------------------- sweeps
# (the objectives are tests/objectives.py's: a worker imports that small module)

def test_an_asha_sweep_with_hyperopt(tmp_path):
    # fails_for: loss = x * step for 3 steps, and x == bad fails at step 2; the bad
    # point is the best one (x is the lower bound), so ASHA never stops it at the rung
    # at step 1 before it fails, whichever trial reaches the rung first
    space = {"x": tune.uniform(0.1, 1.0), "bad": 0.1,
             "sub": {"k": tune.randint(0, 3), "c": "const"},
             "lr": tune.qloguniform(1e-4, 1e-1, 1e-4), "act": tune.choice(["relu", "tanh"])}
    points = [{"x": 0.1, "sub": {"k": 0}, "lr": 1e-3, "act": "relu"},
              {"x": 0.5, "sub": {"k": 2}, "lr": 1e-2, "act": "tanh"}]
    searcher = HyperOptSearch(points_to_evaluate=points, random_state_seed=3,
                              n_initial_points=6)
    grid = helpers.sweep(tmp_path, "asha", objectives.fails_for, space, searcher,
                         num_samples=16, scheduler=AsyncHyperBandScheduler(max_t=3, grace_period=1))
    assert len(grid) == 16
    configs = [r.config for r in grid]
    assert configs[:2] == [{**p, "bad": 0.1, "sub": {**p["sub"], "c": "const"}}
                           for p in points]
    assert grid[0].status == "ERROR" and grid.num_errors == 1
    for c in configs:
        assert 0.1 <= c["x"] < 1.0 and c["sub"]["k"] in (0, 1, 2) and c["sub"]["c"] == "const"
        assert 1e-4 <= c["lr"] <= 1e-1 and c["act"] in ("relu", "tanh")
    assert any(len(r.metrics_dataframe) < 3 for r in grid if r.status == "TERMINATED")


def test_the_same_seed_gives_the_same_sweep(tmp_path):
    space = {"x": tune.uniform(-1.0, 1.0), "k": tune.randint(0, 5), "n": 2}
    first, again, other = helpers.same_seed_sweeps(
        tmp_path, objectives.steps, space,
        lambda seed: HyperOptSearch(random_state_seed=seed, n_initial_points=5), num_samples=12)
    assert len(first) == 12 and first == again
    assert other != first


def test_a_concurrency_limiter_caps_the_trials_it_runs_at_once(tmp_path):
    # timed_steps reports t0 (its start) and t (each report's time); the sweep has 2 cores
    searcher = ConcurrencyLimiter(HyperOptSearch(random_state_seed=0), max_concurrent=1)
    grid = helpers.sweep(tmp_path, "cap", objectives.timed_steps,
                         {"x": tune.uniform(-1.0, 1.0), "n": 3, "sleep": 0.05}, searcher,
                         metric="t", num_samples=6)
    assert len(grid) == 6 and grid.num_errors == 0
    spans = sorted((r.metrics["t0"], r.metrics["t"]) for r in grid)
    assert all(end <= next_start for (_, end), (next_start, _) in zip(spans, spans[1:]))


# ----------------------------------------------------------------------- save/restore

def test_save_and_restore_continue_the_same_suggestions(tmp_path):
    space = {"x": tune.uniform(-1.0, 1.0), "c": tune.choice(["a", "b"])}
    points = [{"x": 0.1, "c": "a"}, {"x": 0.2, "c": "b"}]

    def searcher():
        return HyperOptSearch(space, metric="loss", mode="max", random_state_seed=4,
                              n_initial_points=4, points_to_evaluate=points)

    first = searcher()
    assert first.suggest("p0") == points[0]
    first.on_trial_complete("p0", {"loss": 0.0})
    first.save(str(tmp_path / "early.pkl"))       # one point not run yet
    for i in range(8):
        x = first.suggest(str(i))["x"]
        first.on_trial_complete(str(i), {"loss": -(x - 0.3) ** 2})
    running = first.suggest("running")
    first.save(str(tmp_path / "state.pkl"))
    fresh = searcher()
    fresh.restore(str(tmp_path / "state.pkl"))
    assert fresh.suggest("running") == running
    for s in (fresh, first):
        s.on_trial_complete("running", {"loss": -1.0})
    assert [fresh.suggest(f"n{i}") for i in range(3)] == [first.suggest(f"n{i}") for i in range(3)]
    early = searcher()
    early.restore(str(tmp_path / "early.pkl"))
    assert early.suggest("p1") == points[1]
    (tmp_path / "other.pkl").write_bytes(b"\x80\x04N.")     # a pickle of None
    with pytest.raises(ValueError, match="not a state saved by HyperOptSearch.save"):
        early.restore(str(tmp_path / "other.pkl"))


def test_a_stopped_sweep_restored_runs_as_if_never_stopped(tmp_path):
    space = {"x": tune.uniform(-1.0, 1.0), "k": tune.randint(0, 5), "n": 1}
    whole, half, restored = helpers.stopped_and_restored(
        tmp_path, objectives.steps, space,
        lambda: HyperOptSearch(random_state_seed=8, n_initial_points=4,
                               points_to_evaluate=[{"x": 0.5, "k": 1}]),
        # ends the sweep at the 5th result: the top 5 values "plateau" within a std of 1e9
        tune.stopper.ExperimentPlateauStopper("loss", std=1e9, top=5), num_samples=12)
    assert 5 <= len(half) < 12
    assert len(restored) == 12
    assert [r.status for r in restored] == ["TERMINATED"] * 12
    assert [r.config for r in restored] == [r.config for r in whole]
    assert restored[0].config == {"x": 0.5, "k": 1, "n": 1}


# ------------------------------------------------------------------------ example

def test_the_hyperopt_example_smoke_test(tmp_path):
    _, grid = helpers.run_example(tmp_path, "hyperopt_example.py")
    assert len(grid) == 10 and grid.num_errors == 0
    configs = [r.config for r in grid]
    assert configs[0] == {"steps": 20, "width": 10.0, "height": 0.0, "activation": "relu"}
    assert all(0 <= c["width"] < 20 and -100 <= c["height"] < 100 for c in configs)
