"""Regression tests for defects found in review of the searcher, reporter and end-save work.

Every sweep goes through ``tune.Tuner(...).fit()`` with joblib's threading
backend, so that the searchers and reporters (which live in the driver) can
be read after ``fit()`` returns.
"""

from __future__ import annotations

import warnings

import joblib

from fastasha import tune
from fastasha.search import ConcurrencyLimiter, Searcher


def quick(config):
    tune.report({"loss": float(config["x"])})


class Counting(Searcher):
    """Suggests x = 1, 2, ...; records the calls it gets, in order."""

    def __init__(self, busy_none=False):
        super().__init__()
        self.n = 0
        self.events = []
        self.busy_none = busy_none     # answer None while one of its trials has not completed
        self.live = set()

    def suggest(self, trial_id):
        if self.busy_none and self.live:
            return None
        self.n += 1
        self.live.add(trial_id)
        self.events.append(("suggest", self.n))
        return {"x": self.n}

    def on_trial_complete(self, trial_id, result=None, error=False):
        self.live.discard(trial_id)
        self.events.append(("complete", None if result is None else int(result["loss"])))


def _fit(trainable, search_alg, tmp_path, name, *, cpus=1, **tune_kwargs):
    tuner = tune.Tuner(trainable,
                       tune_config=tune.TuneConfig(search_alg=search_alg, **tune_kwargs),
                       run_config=tune.RunConfig(name=name, storage_path=str(tmp_path),
                                                 verbose=0),
                       resources={"cpu": cpus})
    with joblib.parallel_config(backend="threading"):
        return tuner.fit()


# ------------------------------------------------ ConcurrencyLimiter(batch=True)


def test_batch_is_max_concurrent_trials_even_on_fewer_slots(tmp_path):
    # One slot runs one trial at a time; Ray's limiter still passes completions on in
    # batches of max_concurrent (checked with Ray 2.60 on one CPU).
    inner = Counting()
    grid = _fit(quick, ConcurrencyLimiter(inner, max_concurrent=3, batch=True), tmp_path,
                "one_slot", num_samples=6)
    assert len(grid) == 6
    assert inner.events == [("suggest", 1), ("suggest", 2), ("suggest", 3),
                            ("complete", 1), ("complete", 2), ("complete", 3),
                            ("suggest", 4), ("suggest", 5), ("suggest", 6),
                            ("complete", 4), ("complete", 5), ("complete", 6)]


def test_the_last_partial_batch_still_reaches_the_searcher(tmp_path):
    inner = Counting()
    _fit(quick, ConcurrencyLimiter(inner, max_concurrent=3, batch=True), tmp_path,
         "partial", num_samples=5)
    assert inner.events[-4:] == [("suggest", 4), ("suggest", 5), ("complete", 4),
                                 ("complete", 5)]


def test_a_batch_the_searcher_will_not_fill_is_passed_on(tmp_path):
    # the wrapped searcher waits for its trials' ends before suggesting: the limiter
    # passes on the part of the batch that ended instead of waiting for ever
    inner = Counting(busy_none=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)     # the sweep does not give up
        grid = _fit(quick, ConcurrencyLimiter(inner, max_concurrent=3, batch=True), tmp_path,
                    "unfilled", num_samples=4)
    assert sorted(r.config["x"] for r in grid) == [1, 2, 3, 4]


class ReadsRaysTrialFields(tune.Callback):
    """Reads trials as Ray callbacks and reporters do, without guarding for None."""

    def __init__(self):
        self.seen = []

    def on_trial_start(self, iteration, trials, trial, **info):
        # trials waiting to start have no result yet: Ray gives them an empty dict
        self.seen.append([(t.last_result.get("loss"), t.num_failures, t.is_finished())
                          for t in trials])


def test_trials_without_a_result_have_an_empty_last_result_as_in_ray(tmp_path):
    callback = ReadsRaysTrialFields()
    tune.Tuner(lambda config: tune.report({"loss": config["x"]}),
               param_space={"x": tune.grid_search([1.0, 2.0, 3.0])},
               tune_config=tune.TuneConfig(max_concurrent_trials=1),
               run_config=tune.RunConfig(storage_path=str(tmp_path), verbose=0,
                                         callbacks=[callback])).fit()
    first = callback.seen[0]
    assert (None, 0, False) in first              # a trial that has not reported yet
    # the first trial, finished (its result is dropped from memory once stored: {})
    assert callback.seen[-1][0] == (None, 0, True)


class OneAtATime(Searcher):
    def __init__(self):
        super().__init__()
        self.n = 0

    def suggest(self, trial_id):
        self.n += 1
        return {"x": self.n} if self.n <= 2 else Searcher.FINISHED


class KeepsConfigs(tune.Callback):
    def __init__(self):
        self.configs = []

    def on_trial_start(self, iteration, trials, trial, **info):
        self.configs.append(trial.config)


def test_suggested_configs_share_no_nested_value_with_the_space_or_each_other(tmp_path):
    space = {"opts": {"layers": [1, 2]}}
    callback = KeepsConfigs()
    tune.Tuner(lambda config: tune.report({"loss": config["x"]}), param_space=space,
               tune_config=tune.TuneConfig(search_alg=OneAtATime(), num_samples=5),
               run_config=tune.RunConfig(storage_path=str(tmp_path), verbose=0,
                                         callbacks=[callback])).fit()
    first, second = callback.configs
    first["opts"]["layers"].append(3)       # a callback editing one trial's config
    assert second["opts"]["layers"] == [1, 2] and space["opts"]["layers"] == [1, 2]
