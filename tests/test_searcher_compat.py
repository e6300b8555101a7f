"""Ray Tune's search-algorithm API: Searcher, ConcurrencyLimiter and how a sweep uses them.

Every sweep here goes through ``tune.Tuner(...).fit()``; the searcher lives
in the driver, so the test reads what it was told after ``fit()`` returns.
"""

from __future__ import annotations

import pickle
import time
import warnings

import joblib
import pytest

from fastasha import tune
from fastasha.search import ConcurrencyLimiter, Searcher


def timed(config):
    """Sleeps ``config['sleep']`` seconds and reports when it ran."""
    start = time.time()
    time.sleep(config.get("sleep", 0.0))
    tune.report({"loss": float(config.get("x", 0.0)), "start": start, "end": time.time()})


def chatty(config):
    """Reports ``config['n']`` results, a little apart."""
    for step in range(config["n"]):
        time.sleep(0.005)
        tune.report({"loss": config["x"] + 1.0 / (step + 1)})


def fails_on_negative(config):
    if config["x"] < 0:
        raise ValueError("negative x")
    tune.report({"loss": config["x"]})


class ListSearcher(Searcher):
    """Suggests the configs of a list, then FINISHED; records what it is told."""

    def __init__(self, configs, metric=None, mode=None):
        super().__init__(metric=metric, mode=mode)
        self.configs = list(configs)
        self.n_suggest = 0
        self.properties = None
        self.events = []           # ("suggest", id) / ("complete", id, error)
        self.completed = {}

    def set_search_properties(self, metric, mode, config, **spec):
        self.properties = (metric, mode, config, dict(spec))
        return super().set_search_properties(metric, mode, config, **spec)

    def suggest(self, trial_id):
        self.n_suggest += 1
        if not self.configs:
            return Searcher.FINISHED
        self.events.append(("suggest", trial_id))
        return dict(self.configs.pop(0))

    def on_trial_complete(self, trial_id, result=None, error=False):
        self.events.append(("complete", trial_id, error))
        self.completed[trial_id] = (None if result is None else result.get("loss"), error)


class HearsResults(ListSearcher):
    def __init__(self, configs):
        super().__init__(configs)
        self.results = 0

    def on_trial_result(self, trial_id, result):
        self.results += 1


def _fit(trainable, search_alg, tmp_path, name, *, param_space=None, backend="threading",
         resources=None, **tune_kwargs):
    tune_kwargs.setdefault("num_samples", 20)
    tuner = tune.Tuner(trainable, param_space=param_space,
                       tune_config=tune.TuneConfig(search_alg=search_alg, **tune_kwargs),
                       run_config=tune.RunConfig(name=name, storage_path=str(tmp_path),
                                                 verbose=0),
                       resources=resources)
    with joblib.parallel_config(backend=backend):
        return tuner.fit()


def _max_overlap(grid) -> int:
    """The most trials that ran at once, from the times they reported."""
    edges = sorted([(r.metrics["start"], 1) for r in grid] + [(r.metrics["end"], -1) for r in grid],
                   key=lambda e: (e[0], e[1]))
    live = best = 0
    for _, step in edges:
        live += step
        best = max(best, live)
    return best


# ----------------------------------------------------------------- the names


def test_ray_import_paths_give_fastasha_classes():
    from fastasha.tune.search import ConcurrencyLimiter as Limiter
    from fastasha.tune.search import Searcher as Base
    from fastasha.tune.search.concurrency_limiter import ConcurrencyLimiter as Limiter2
    from fastasha.tune.search.searcher import Searcher as Base2

    assert Base is Base2 is Searcher and Limiter is Limiter2 is ConcurrencyLimiter
    assert Searcher.FINISHED == "FINISHED"


def test_ray_1_suggest_paths_are_fastasha_search():
    """Ray 1.x imported searchers from ray.tune.suggest (Ray 2.0 renamed it search)."""
    import fastasha.search
    import fastasha.search.basic_variant
    import fastasha.tune.suggest
    import fastasha.tune.suggest.basic_variant
    from fastasha import tune
    from fastasha.tune.suggest import BasicVariantGenerator
    from fastasha.tune.suggest import ConcurrencyLimiter as Limiter
    from fastasha.tune.suggest.suggestion import ConcurrencyLimiter as Limiter2
    from fastasha.tune.suggest.suggestion import Searcher as Base

    assert fastasha.tune.suggest is fastasha.search and tune.suggest is fastasha.search
    assert fastasha.tune.suggest.basic_variant is fastasha.search.basic_variant
    assert Limiter is Limiter2 is ConcurrencyLimiter and Base is Searcher
    assert BasicVariantGenerator is fastasha.search.BasicVariantGenerator
    with pytest.raises(ModuleNotFoundError, match="fastasha.tune.suggest.zoopt"):
        import fastasha.tune.suggest.zoopt  # noqa: F401


def test_the_base_class_has_rays_defaults():
    class Plain(Searcher):
        def suggest(self, trial_id):
            return {}

    s = Plain()
    assert (s.metric, s.mode) == (None, None)
    assert s.set_max_concurrency(4) is False
    s.on_trial_result("t", {"loss": 1.0})                  # no-ops
    s.on_trial_complete("t", {"loss": 1.0})
    for call in (lambda: s.add_evaluated_point({"x": 1}, 1.0), lambda: s.save("p"),
                 lambda: s.restore("p"), s.get_state, lambda: s.set_state({})):
        with pytest.raises(NotImplementedError, match=r"does not (implement|support) \w+"):
            call()
    with pytest.raises(NotImplementedError, match="suggest"):
        Searcher().suggest("t")


def test_set_search_properties_fills_only_what_is_unset():
    own = ListSearcher([], metric="acc", mode="max")
    assert own.set_search_properties("loss", "min", {}) is False
    assert (own.metric, own.mode) == ("acc", "max")
    bare = ListSearcher([])
    assert bare.set_search_properties("loss", "min", {}) is False
    assert (bare.metric, bare.mode) == ("loss", "min")
    assert bare.set_search_properties("other", "max", {}) is False
    assert (bare.metric, bare.mode) == ("loss", "min")


# --------------------------------------------------------------- the sweep


def test_a_searcher_suggests_and_finished_ends_the_sweep(tmp_path):
    searcher = ListSearcher([{"x": 0.5}, {"x": 0.25}, {"x": 0.75}])
    grid = _fit(timed, searcher, tmp_path, "list", metric="loss", mode="min", num_samples=10)
    assert sorted(r.config["x"] for r in grid) == [0.25, 0.5, 0.75]
    assert grid.get_best_result().config["x"] == 0.25
    # FINISHED ends the sweep: the searcher is not asked again after it
    assert searcher.n_suggest == 4
    assert sorted(searcher.completed.values()) == [(0.25, False), (0.5, False), (0.75, False)]


def test_finished_at_once_gives_an_empty_sweep(tmp_path):
    searcher = ListSearcher([])
    grid = _fit(timed, searcher, tmp_path, "empty")
    assert len(grid) == 0 and searcher.n_suggest == 1


def test_num_samples_caps_the_trials_of_a_searcher(tmp_path):
    searcher = ListSearcher([{"x": float(i)} for i in range(5)])
    grid = _fit(timed, searcher, tmp_path, "capped", num_samples=2)
    assert len(grid) == 2 and searcher.n_suggest == 2


def test_suggestions_are_laid_over_the_constants_of_param_space(tmp_path):
    searcher = ListSearcher([{"x": 1.0, "nested": {"b": 5, "z": 9}}])
    grid = _fit(timed, searcher, tmp_path, "merged",
                param_space={"c": 7, "nested": {"a": 1, "b": 2}})
    assert [r.config for r in grid] == [{"c": 7, "nested": {"a": 1, "b": 5, "z": 9}, "x": 1.0}]


def test_metric_mode_and_space_reach_the_searcher_through_a_limiter(tmp_path):
    inner = ListSearcher([{"x": 1.0}])
    limiter = ConcurrencyLimiter(inner, max_concurrent=1)
    assert limiter.metric is None
    _fit(timed, limiter, tmp_path, "props", param_space={"c": 1}, metric="loss", mode="min",
         num_samples=3, time_budget_s=60)
    metric, mode, config, spec = inner.properties
    assert (metric, mode, config) == ("loss", "min", {"c": 1})
    assert spec["num_samples"] == 3 and spec["time_budget_s"] == 60
    assert (inner.metric, inner.mode) == ("loss", "min")
    assert (limiter.metric, limiter.mode) == ("loss", "min")


def test_an_older_set_search_properties_signature_still_works(tmp_path):
    class Older(ListSearcher):
        def set_search_properties(self, metric, mode, config):     # without **spec: an older signature
            self.properties = (metric, mode, config)
            return False

    inner = Older([{"x": 1.0}])
    _fit(timed, ConcurrencyLimiter(inner, 1), tmp_path, "older", metric="loss", mode="min")
    assert inner.properties == ("loss", "min", {})


def test_a_searcher_keeps_its_own_metric(tmp_path):
    searcher = ListSearcher([{"x": 1.0}], metric="end", mode="max")
    _fit(timed, searcher, tmp_path, "own", metric="loss", mode="min")
    assert (searcher.metric, searcher.mode) == ("end", "max")


def test_a_searcher_that_overrides_on_trial_result_sees_every_result(tmp_path):
    from fastasha.schedulers import ASHAScheduler

    inner = HearsResults([{"x": 0.0, "n": 12}, {"x": 1.0, "n": 12}])
    _fit(chatty, ConcurrencyLimiter(inner, 2), tmp_path, "results", metric="loss", mode="min",
         scheduler=ASHAScheduler(max_t=100, grace_period=50))
    assert inner.results == 24


class RecordsResults(ListSearcher):
    def __init__(self, configs):
        super().__init__(configs)
        self.heard: dict[str, list] = {}
        self.final: dict[str, int] = {}

    def on_trial_result(self, trial_id, result):
        self.heard.setdefault(trial_id, []).append(result["training_iteration"])

    def on_trial_complete(self, trial_id, result=None, error=False):
        super().on_trial_complete(trial_id, result, error)
        self.final[trial_id] = result["training_iteration"]


def test_the_result_that_stops_a_trial_reaches_the_searcher_only_at_its_end(tmp_path):
    # as in Ray: on_trial_result only for the results that do not stop the trial
    searcher = RecordsResults([{"x": 0.0, "n": 12}, {"x": 1.0, "n": 3}])
    tuner = tune.Tuner(chatty, tune_config=tune.TuneConfig(search_alg=searcher, num_samples=2,
                                                          metric="loss", mode="min"),
                       run_config=tune.RunConfig(name="stop5", storage_path=str(tmp_path),
                                                 verbose=0, stop={"training_iteration": 5}))
    with joblib.parallel_config(backend="threading"):
        tuner.fit()
    long, short = [event[1] for event in searcher.events if event[0] == "suggest"]
    # stopped at 5 by the criterion: that result comes only with the end
    assert (searcher.heard[long], searcher.final[long]) == ([1, 2, 3, 4], 5)
    # ended by itself at 3, no stop: every result heard, then the end
    assert (searcher.heard[short], searcher.final[short]) == ([1, 2, 3], 3)


# --------------------------------------------------------- ConcurrencyLimiter


def test_concurrency_limiter_caps_live_trials_below_the_slots(tmp_path):
    configs = [{"x": float(i), "sleep": 0.25} for i in range(6)]
    uncapped = _fit(timed, ListSearcher(configs), tmp_path, "uncapped", resources={"cpu": 4})
    assert _max_overlap(uncapped) >= 3          # the 4 slots do run trials side by side
    inner = ListSearcher(configs)
    grid = _fit(timed, ConcurrencyLimiter(inner, max_concurrent=2), tmp_path, "capped",
                resources={"cpu": 4})
    assert len(grid) == 6 and grid.num_errors == 0
    assert _max_overlap(grid) == 2
    assert len(inner.completed) == 6


def test_concurrency_limiter_in_worker_processes(tmp_path):
    configs = [{"x": float(i), "sleep": 0.2} for i in range(4)]
    grid = _fit(timed, ConcurrencyLimiter(ListSearcher(configs), 1), tmp_path, "loky",
                backend="loky", resources={"cpu": 2})
    assert len(grid) == 4 and _max_overlap(grid) == 1


def test_batch_mode_waits_for_the_whole_batch(tmp_path):
    # a short and a long trial per batch: without batch the third would start early
    configs = [{"x": float(i), "sleep": 0.05 if i % 2 == 0 else 0.4} for i in range(4)]
    inner = ListSearcher(configs)
    grid = _fit(timed, ConcurrencyLimiter(inner, max_concurrent=2, batch=True), tmp_path,
                "batch", resources={"cpu": 4})
    by_x = {r.config["x"]: r.metrics for r in grid}
    assert min(by_x[2.0]["start"], by_x[3.0]["start"]) > max(by_x[0.0]["end"], by_x[1.0]["end"])
    # the wrapped searcher hears of each batch at once, after the batch ended
    kinds = [e[0] for e in inner.events]
    assert kinds == ["suggest", "suggest", "complete", "complete"] * 2


def test_an_errored_trial_frees_its_place(tmp_path):
    inner = ListSearcher([{"x": -1.0}, {"x": 1.0}, {"x": 2.0}])
    grid = _fit(fails_on_negative, ConcurrencyLimiter(inner, 1), tmp_path, "errored")
    assert len(grid) == 3 and grid.num_errors == 1
    assert sorted(e for _, e in inner.completed.values()) == [False, False, True]


def test_limiter_state_and_checkpoint_pass_through(tmp_path):
    class Saving(ListSearcher):
        def save(self, checkpoint_path):
            with open(checkpoint_path, "wb") as f:
                pickle.dump(self.configs, f)

        def restore(self, checkpoint_path):
            with open(checkpoint_path, "rb") as f:
                self.configs = pickle.load(f)

    limiter = ConcurrencyLimiter(Saving([{"x": 1}, {"x": 2}, {"x": 3}]), 2)
    assert limiter.suggest("a") == {"x": 1}
    limiter.save(str(tmp_path / "s.pkl"))
    state = limiter.get_state()
    other = ConcurrencyLimiter(Saving([]), 2)
    other.restore(str(tmp_path / "s.pkl"))
    other.set_state(state)
    assert other.suggest("b") == {"x": 2}
    assert other.suggest("c") is None             # "a" is still live in the restored state
    other.on_trial_complete("a", {"loss": 0.0})
    assert other.suggest("c") == {"x": 3}


# ------------------------------------------------- None: "not now"


class NoneWhileBusy(HearsResults):
    """Answers None while one of its trials is live; counts those answers."""

    def __init__(self, configs):
        super().__init__(configs)
        self.live = set()
        self.n_none = 0

    def suggest(self, trial_id):
        if self.live:
            self.n_none += 1
            return None
        config = super().suggest(trial_id)
        if config != Searcher.FINISHED:
            self.live.add(trial_id)
        return config

    def on_trial_complete(self, trial_id, result=None, error=False):
        super().on_trial_complete(trial_id, result, error)
        self.live.discard(trial_id)


def test_none_while_trials_run_is_asked_again_without_spinning(tmp_path):
    searcher = NoneWhileBusy([{"x": 0.0, "n": 60}, {"x": 1.0, "n": 60}])
    started = time.monotonic()
    grid = _fit(chatty, searcher, tmp_path, "busy", resources={"cpu": 2})
    assert len(grid) == 2 and searcher.results == 120     # each report woke the driver
    # asked again on a timer that backs off, not on every wake-up of the driver
    assert searcher.n_none <= 12, searcher.n_none
    assert time.monotonic() - started < 10


class NoneAtFirst(ListSearcher):
    """Answers None for its first ``delay`` seconds, then suggests."""

    def __init__(self, configs, delay):
        super().__init__(configs)
        self.delay = delay
        self.first = None
        self.n_none = 0

    def suggest(self, trial_id):
        self.first = self.first or time.monotonic()
        if time.monotonic() - self.first < self.delay:
            self.n_none += 1
            return None
        return super().suggest(trial_id)


def test_none_with_nothing_running_is_asked_again(tmp_path):
    searcher = NoneAtFirst([{"x": 1.0}, {"x": 2.0}], delay=0.4)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)      # it does not give up
        grid = _fit(timed, searcher, tmp_path, "waits")
    assert sorted(r.config["x"] for r in grid) == [1.0, 2.0]
    assert 2 <= searcher.n_none <= 10


class AlwaysNoneAfter(ListSearcher):
    def suggest(self, trial_id):
        config = super().suggest(trial_id)
        return None if config == Searcher.FINISHED else config


def test_none_with_nothing_running_ends_the_sweep_with_a_warning(tmp_path, monkeypatch):
    monkeypatch.setenv("FASTASHA_SEARCHER_WAIT_S", "0.5")
    searcher = AlwaysNoneAfter([{"x": 1.0}])
    started = time.monotonic()
    with pytest.warns(RuntimeWarning, match="AlwaysNoneAfter answered None"):
        grid = _fit(timed, searcher, tmp_path, "gives_up")
    assert time.monotonic() - started < 8
    assert [r.config["x"] for r in grid] == [1.0] and grid.num_errors == 0


def test_a_bad_wait_setting_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("FASTASHA_SEARCHER_WAIT_S", "soon")
    with pytest.raises(ValueError, match="FASTASHA_SEARCHER_WAIT_S"):
        _fit(timed, ListSearcher([{"x": 1.0}]), tmp_path, "bad_wait")
    assert not (tmp_path / "bad_wait").exists()


# -------------------------------------------------------------- bad input


class NotASearcher:
    def suggest(self, trial_id):
        return {"x": 1.0}


@pytest.mark.parametrize("make, error, match", [
    (lambda: ConcurrencyLimiter(ListSearcher([]), 0), ValueError,
     "max_concurrent must be at least 1"),
    (lambda: ConcurrencyLimiter(ListSearcher([]), 1.5), TypeError,
     "max_concurrent must be an integer"),
    (lambda: ConcurrencyLimiter(NotASearcher(), 2), TypeError, "Searcher instance"),
    (lambda: ConcurrencyLimiter(ListSearcher, 2), TypeError, "pass ListSearcher"),
    (lambda: ConcurrencyLimiter(ListSearcher([]), 2, batch="yes"), TypeError, "batch"),
    (lambda: ListSearcher([], metric="loss", mode="minimize"), ValueError, "'min' or 'max'"),
    (lambda: ListSearcher([], metric=["a", "b"], mode=["min"]), ValueError, "same length"),
])
def test_bad_arguments_say_what_is_wrong(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_a_searcher_without_suggest_is_refused():
    class Lazy(Searcher):
        pass

    for search_alg in (Lazy(), ConcurrencyLimiter(Lazy(), 2)):
        with pytest.raises(TypeError, match="does not define suggest"):
            tune.Tuner(timed, tune_config=tune.TuneConfig(search_alg=search_alg))


def test_max_concurrent_trials_must_agree_with_the_limiter():
    limiter = ConcurrencyLimiter(ListSearcher([]), 2)
    with pytest.raises(ValueError, match="set the limit in one place"):
        tune.Tuner(timed, tune_config=tune.TuneConfig(search_alg=limiter, max_concurrent_trials=3))
    tune.Tuner(timed, tune_config=tune.TuneConfig(search_alg=limiter, max_concurrent_trials=2))


def test_a_space_the_searcher_ignores_is_refused(tmp_path):
    with pytest.raises(ValueError, match="did not take its search space"):
        _fit(timed, ListSearcher([{"x": 1.0}]), tmp_path, "ignored",
             param_space={"x": tune.uniform(0, 1)})
    assert not (tmp_path / "ignored").exists()


class Accepting(ListSearcher):
    def set_search_properties(self, metric, mode, config, **spec):
        return True


def test_a_space_the_searcher_takes_is_its_own(tmp_path):
    grid = _fit(timed, Accepting([{"x": 0.5}]), tmp_path, "taken",
                param_space={"x": tune.uniform(0, 1), "c": 3})
    assert [r.config for r in grid] == [{"x": 0.5, "c": 3}]


@pytest.mark.parametrize("bad", [[1, 2], "DONE", 3.0])
def test_a_suggestion_that_is_not_a_config_is_refused(tmp_path, bad):
    class Bad(Searcher):
        def suggest(self, trial_id):
            return bad

    with pytest.raises(TypeError,
                       match=r"must return a config dict, None \(not now\) or Searcher.FINISHED"):
        _fit(timed, Bad(), tmp_path, "bad")


def test_restore_refuses_an_experiment_with_a_searcher(tmp_path):
    grid = _fit(timed, ConcurrencyLimiter(ListSearcher([{"x": 1.0}]), 1), tmp_path, "norestore",
                param_space={"c": 1})
    for kwargs in ({}, {"param_space": {"c": 1}}):
        with pytest.raises(ValueError, match="search_alg ConcurrencyLimiter wrapping List"):
            tune.Tuner.restore(grid.experiment_path, timed, **kwargs)
