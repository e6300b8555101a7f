"""MedianStoppingRule (``fastasha/schedulers/median_stopping_rule.py``).

Three sources of expected decisions, none of them the code under test:

- ``tests/data/ray_median_cases.json``: streams fed to Ray Tune 2.60's own
  ``MedianStoppingRule`` by ``tests/data/record_ray_median.py`` (run once
  with the interpreter that has Ray; it drives Ray's scheduler with stand-in
  trial objects that have a ``trial_id``), with Ray's answer to every
  result. Only those answers are recorded, not Ray's code.
- ``Reference`` below: the rule in plain Python, written from Ray's
  documented semantics and recomputing everything from the full result
  lists at every decision. It is checked against the recorded streams too,
  then compared with the scheduler on random streams (hypothesis).
- Tuner sweeps whose outcome is worked out by hand in the test.

``hard_stop=False`` (pause where the rule would stop) has no recorded Ray
streams; its expected answers come from reading Ray's rule, where
``hard_stop`` only turns the final STOP into PAUSE and makes the later
results of that trial continue without being recorded (the reference does
the same), and from hand-worked sweeps.
"""

from __future__ import annotations

import doctest
import inspect
import json
import math
import warnings
from pathlib import Path

import joblib
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fastasha.schedulers
import fastasha.schedulers.median_stopping_rule
import median_pause_objectives as mpo
import pause_objectives as po
from fastasha import tune
from fastasha.callback import Callback
from fastasha.schedulers import CONTINUE, PAUSE, STOP, MedianStoppingRule, TrialScheduler

DATA = Path(__file__).parent / "data" / "ray_median_cases.json"
T, M = "training_iteration", "m"

# MedianStoppingRule's signature in Ray Tune 2.x, in order.
RAY_DEFAULTS = {
    "time_attr": "time_total_s",
    "metric": None,
    "mode": None,
    "grace_period": 60.0,
    "min_samples_required": 3,
    "min_time_slice": 0,
    "hard_stop": True,
}


class Reference:
    """The median stopping rule, recomputed from scratch at every result.

    At a result of trial ``i`` at time ``t >= grace_period``: every other
    trial whose latest recorded result is at ``t`` or later contributes the
    mean of its values recorded at times in ``[grace_period, t]`` (trials
    with no value there, or a NaN or infinite mean, contribute nothing).
    With at least ``min_samples_required`` contributions, ``i`` stops iff
    its best value so far (Python's ``min``/``max`` in the order reported)
    is neither better than nor equal to their median. Final results are
    recorded like results; trials that were stopped or have ended get STOP.
    With ``hard_stop=False`` a trial that would stop gets PAUSE instead, and
    its later results get CONTINUE and are not recorded, until it ends.
    Values stay in the metric's units (the scheduler flips the sign of "min"
    metrics, which must not change any mean or median).
    """

    def __init__(self, metric, mode, time_attr=T, grace_period=60.0, min_samples_required=3,
                 hard_stop=True, **ignored):
        self.metric, self.mode, self.time_attr = metric, mode, time_attr
        self.grace, self.min_samples = grace_period, min_samples_required
        self.hard_stop = hard_stop
        self.results = {}       # trial -> [(time, value)], in the order recorded
        self.finished = set()   # stopped, completed or removed
        self.paused = set()     # paused by the rule (hard_stop=False)
        self.n_stopped = 0

    def _has_keys(self, result):
        return self.time_attr in result and self.metric in result

    def result(self, trial, result):
        if not self._has_keys(result):
            return "CONTINUE"
        if trial in self.finished:
            return "STOP"
        if trial in self.paused:
            return "CONTINUE"
        t = result[self.time_attr]
        self.results.setdefault(trial, []).append((t, result[self.metric]))
        if t < self.grace:
            return "CONTINUE"
        means = []
        for other, recorded in self.results.items():
            if other == trial or recorded[-1][0] < t:
                continue
            window = [v for (s, v) in recorded if self.grace <= s <= t]
            if window and np.isfinite(np.mean(window)):
                means.append(np.mean(window))
        if len(means) < self.min_samples:
            return "CONTINUE"
        median = np.median(means)
        own = [v for _, v in self.results[trial]]
        best = min(own) if self.mode == "min" else max(own)
        at_least_as_good = best <= median if self.mode == "min" else best >= median
        if at_least_as_good:
            return "CONTINUE"
        self.n_stopped += 1
        if not self.hard_stop:
            self.paused.add(trial)
            return "PAUSE"
        self.finished.add(trial)
        return "STOP"

    def complete(self, trial, result):
        if self._has_keys(result):
            self.results.setdefault(trial, []).append(
                (result[self.time_attr], result[self.metric]))
        self.finished.add(trial)

    def remove(self, trial):
        self.finished.add(trial)


# ------------------------------------------------------------------ helpers

def _num(x):
    return float(x) if isinstance(x, str) else x      # "nan", "inf", "-inf"


def _ray_cases() -> list[dict]:
    with open(DATA, encoding="utf-8") as f:
        return json.load(f)["cases"]


def _feed(rule, events):
    """Replay ``[kind, trial_id, result, _]`` events; returns the answers to results."""
    answers = []
    for kind, trial_id, result, _ in events:
        result = None if result is None else {k: _num(v) for k, v in result.items()}
        if kind == "add":
            rule.on_trial_add(trial_id)
        elif kind == "result":
            answers.append(str(rule.on_trial_result(trial_id, result)))
        elif kind == "complete":
            rule.on_trial_complete(trial_id, result)
        elif kind == "remove":
            rule.on_trial_remove(trial_id)
        else:
            raise ValueError(f"unknown event kind {kind!r}")
    return answers


def _feed_reference(ref, events):
    answers = []
    for kind, trial_id, result, _ in events:
        result = None if result is None else {k: _num(v) for k, v in result.items()}
        if kind == "result":
            answers.append(ref.result(trial_id, result))
        elif kind == "complete":
            ref.complete(trial_id, result)
        elif kind == "remove":
            ref.remove(trial_id)
    return answers


def _build(case) -> MedianStoppingRule:
    rule = MedianStoppingRule(**case["params"])
    if case["search_properties"] is not None:
        assert rule.set_search_properties(*case["search_properties"])
    return rule


def _expected(case) -> list[str]:
    # fastasha cannot pause: where Ray yields the slot (too few samples while
    # a trial waits), the trial continues, as in Ray when nothing waits
    return ["CONTINUE" if d == "PAUSE" else d for k, _, _, d in case["events"] if k == "result"]


# ------------------------------------------------------- Ray's recorded answers

@pytest.mark.parametrize("case", _ray_cases(), ids=lambda c: c["name"])
def test_decisions_equal_ray_on_recorded_streams(case):
    rule = _build(case)
    assert _feed(rule, case["events"]) == _expected(case)
    assert rule.debug_string() == case["debug_string"]


@pytest.mark.parametrize("case", _ray_cases(), ids=lambda c: c["name"])
def test_the_reference_agrees_with_ray_on_recorded_streams(case):
    params = dict(RAY_DEFAULTS, **case["params"])
    if case["search_properties"] is not None:
        params["metric"] = case["search_properties"][0] or "_metric"
        params["mode"] = case["search_properties"][1]
    assert _feed_reference(Reference(**params), case["events"]) == _expected(case)


def _stops_nothing_twice(case) -> bool:
    """Whether no trial of the case reports a judged result after Ray answered it STOP."""
    rule = _build(case)
    stopped = set()
    for kind, trial_id, result, decision in case["events"]:
        if kind != "result":
            continue
        if trial_id in stopped and rule.time_attr in result and rule.metric in result:
            return False
        if decision == "STOP":
            stopped.add(trial_id)
    return True


@pytest.mark.parametrize("case", _ray_cases(), ids=lambda c: c["name"])
def test_without_hard_stop_the_recorded_streams_pause_where_ray_stopped(case):
    # In Ray's rule hard_stop only changes the answer to the result that decides a
    # trial's fate (PAUSE instead of STOP) and the answers to that trial's later
    # results; the recorded streams have none of those (Ray asserts on them with
    # hard_stop=True), so without hard_stop the answers are Ray's, PAUSE for STOP.
    assert _stops_nothing_twice(case)
    rule = MedianStoppingRule(**dict(case["params"], hard_stop=False))
    if case["search_properties"] is not None:
        assert rule.set_search_properties(*case["search_properties"])
    expected = ["PAUSE" if d == "STOP" else d for d in _expected(case)]
    assert _feed(rule, case["events"]) == expected
    assert rule.debug_string() == case["debug_string"]      # num_stopped counts the pauses


def test_the_recorded_streams_cover_what_they_should():
    cases = _ray_cases()
    answers = [d for c in cases for k, _, _, d in c["events"] if k == "result"]
    assert answers.count("STOP") >= 20 and answers.count("PAUSE") >= 1
    assert {c["params"]["mode"] for c in cases if "mode" in c["params"]} == {"min", "max"}
    assert any(c["params"].get("time_attr") == "time_total_s" for c in cases)
    assert any(k == "remove" for c in cases for k, *_ in c["events"])


# ---------------------------------------------------- random streams (hypothesis)

VALUES = [0.0, -0.0, 0.1, 0.2, 0.3, 1.0, 1.5, 2.0, 2, 3, -1.0, 1e308, -1e308,
          math.nan, math.inf, -math.inf]


@st.composite
def streams(draw):
    """Parameters and events over 5 trials: results (some without a key), ends, removals."""
    params = {
        "time_attr": T, "metric": M,
        "mode": draw(st.sampled_from(["min", "max"])),
        "grace_period": draw(st.sampled_from([0, 1, 2, 2.5])),
        "min_samples_required": draw(st.integers(1, 3)),
        "hard_stop": draw(st.booleans()),
    }
    n = draw(st.integers(0, 60))
    times = [0.0] * 5
    events = [["add", i, None, None] for i in range(5)]
    for _ in range(n):
        trial = draw(st.integers(0, 4))
        kind = draw(st.sampled_from(["result"] * 12 + ["complete", "remove"]))
        if kind == "remove":
            events.append(["remove", trial, None, None])
            continue
        # mostly forward, sometimes back (a restart), sometimes the same time
        times[trial] = max(0.0, times[trial] + draw(st.sampled_from([0, 0.5, 1, 1, 1, 2, -2])))
        value = draw(st.one_of(st.sampled_from(VALUES), st.floats(-10, 10, width=16)))
        result = {T: times[trial], M: value}
        dropped = draw(st.sampled_from([None] * 10 + [T, M]))
        if dropped:
            del result[dropped]
        events.append([kind, trial, result, None])
    return params, events


@pytest.mark.filterwarnings("ignore::RuntimeWarning")   # the reference's inf - inf and overflows
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stream=streams())
def test_decisions_equal_the_reference_on_random_streams(stream):
    params, events = stream
    rule = MedianStoppingRule(**params)
    ref = Reference(**params)
    assert _feed(rule, events) == _feed_reference(ref, events)
    assert rule.n_stopped == ref.n_stopped


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stream=streams(), data=st.data())
def test_a_state_snapshot_makes_the_same_decisions(stream, data):
    params, events = stream
    cut = data.draw(st.integers(5, len(events)))
    whole = MedianStoppingRule(**params)
    first = _feed(whole, events[:cut])
    snapshot = json.loads(json.dumps(whole.state_dict(), allow_nan=False))
    copy = MedianStoppingRule(**params)
    copy.load_state_dict(snapshot)
    assert copy.state_dict() == whole.state_dict()
    assert _feed(copy, events[cut:]) == _feed(whole, events[cut:])
    assert len(first) == sum(k == "result" for k, *_ in events[:cut])


# -------------------------------------------------------------- hand-made cases

def _rule(**kwargs) -> MedianStoppingRule:
    args = {"time_attr": T, "metric": M, "mode": "min", "grace_period": 1,
            "min_samples_required": 2}
    args.update(kwargs)
    rule = MedianStoppingRule(**args)
    for trial_id in "abcd":
        rule.on_trial_add(trial_id)
    return rule


def test_a_trial_worse_than_the_median_stops_and_a_tie_continues():
    rule = _rule()
    for trial_id, v in (("a", 1.0), ("b", 3.0)):
        assert rule.on_trial_result(trial_id, {T: 1, M: v}) is CONTINUE
    assert rule.on_trial_result("c", {T: 1, M: 2.0}) is CONTINUE     # median of 1 and 3
    assert rule.on_trial_result("d", {T: 1, M: 2.5}) is STOP
    assert rule.debug_string() == "Using MedianStoppingRule: num_stopped=1."


def test_results_before_the_grace_period_count_for_the_best_only():
    rule = _rule(grace_period=2)
    rule.on_trial_result("a", {T: 1, M: 0.0})
    rule.on_trial_result("a", {T: 2, M: 5.0})
    rule.on_trial_result("b", {T: 2, M: 5.0})
    # a's 0.0 at t=1 is before the grace period: the median is 5.0, not 3.75
    assert rule.on_trial_result("d", {T: 2, M: 4.0}) is CONTINUE
    # c's best, 1.0 at t=1, beats the median 5.0, though its value at t=2 does not
    assert rule.on_trial_result("c", {T: 1, M: 1.0}) is CONTINUE
    assert rule.on_trial_result("c", {T: 2, M: 9.0}) is CONTINUE


def test_only_trials_that_got_as_far_count():
    rule = _rule(min_samples_required=1)
    rule.on_trial_result("a", {T: 1, M: 1.0})
    # a's latest result is at 1: it does not count at t=2, so c has no sample
    assert rule.on_trial_result("c", {T: 2, M: 9.0}) is CONTINUE
    rule.on_trial_result("a", {T: 2, M: 1.0})
    assert rule.on_trial_result("c", {T: 3, M: 9.0}) is CONTINUE
    assert rule.on_trial_result("d", {T: 2, M: 9.0}) is STOP


def test_max_mode_stops_the_smaller_best():
    rule = _rule(mode="max")
    rule.on_trial_result("a", {T: 1, M: 1.0})
    rule.on_trial_result("b", {T: 1, M: 3.0})
    assert rule.on_trial_result("c", {T: 1, M: 2.5}) is CONTINUE
    assert rule.on_trial_result("d", {T: 1, M: 1.5}) is STOP


def test_results_without_the_metric_or_time_attr_change_nothing():
    rule = _rule(min_samples_required=1)
    rule.on_trial_result("a", {T: 1, M: 1.0})
    assert rule.on_trial_result("b", {T: 1}) is CONTINUE
    assert rule.on_trial_result("b", {M: 9.0}) is CONTINUE
    rule.on_trial_complete("b", {"done": True})       # not recorded (Ray fails on it later)
    assert rule.on_trial_result("c", {T: 1, M: 2.0}) is STOP   # only a counts: median 1.0


def test_infinite_and_nan_means_are_left_out_without_a_warning():
    rule = _rule(min_samples_required=1)
    rule.on_trial_add("e")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rule.on_trial_result("a", {T: 1, M: 1e308})
        rule.on_trial_result("a", {T: 1, M: 1e308})
        rule.on_trial_result("e", {T: 1, M: math.inf})
        rule.on_trial_result("e", {T: 1, M: -math.inf})
        # a's mean overflows to inf, e's is NaN: both are left out, b has no sample
        assert rule.on_trial_result("b", {T: 1, M: 1e308}) is CONTINUE
        assert rule.on_trial_result("c", {T: 1, M: 1.7e308}) is STOP
        # the median of b's 1e308 and c's 1.7e308 overflows to inf: 2.0 beats it
        assert rule.on_trial_result("d", {T: 1, M: 2.0}) is CONTINUE


def test_stopped_and_ended_trials_get_stop_and_are_not_recorded():
    rule = _rule(min_samples_required=1)
    rule.on_trial_result("a", {T: 1, M: 1.0})
    assert rule.on_trial_result("b", {T: 1, M: 5.0}) is STOP
    assert rule.on_trial_result("b", {T: 2, M: 0.0}) is STOP
    rule.on_trial_complete("a", {T: 1, M: 1.0})
    assert rule.on_trial_result("a", {T: 2, M: 0.0}) is STOP
    rule.on_trial_remove("c")
    assert rule.on_trial_result("c", {T: 1, M: 0.0}) is STOP
    # none of the results at t=2 was recorded, so d has no sample at t=2
    assert rule.on_trial_result("d", {T: 2, M: 9.0}) is CONTINUE
    assert rule.n_stopped == 1


def test_without_hard_stop_a_paused_trial_is_judged_no_more_and_not_recorded():
    rule = _rule(min_samples_required=1, hard_stop=False)
    rule.on_trial_result("a", {T: 1, M: 1.0})
    assert rule.on_trial_result("b", {T: 1, M: 5.0}) is PAUSE
    assert rule.n_stopped == 1
    # resumed: b continues whatever it reports (here, worse than ever), as in Ray
    assert rule.on_trial_result("b", {T: 2, M: 50.0}) is CONTINUE
    assert rule.on_trial_result("b", {T: 3, M: 0.0}) is CONTINUE
    # none of b's later results was recorded: its latest recorded time is still 1,
    # so d has no sample at t=2 (recorded, b's mean over [1, 2] would be 27.5, which
    # d's 30.0 trails)
    assert rule.on_trial_result("d", {T: 2, M: 30.0}) is CONTINUE
    # b's final result is recorded as any trial's: at t=2 it now counts, with the mean of
    # its recorded values in [1, 2], 5.0 (its 0.0 at t=3 lies outside); with d's 30.0
    # the median is 17.5, which c's 20.0 trails (d's 30.0 alone would not pause c)
    rule.on_trial_complete("b", {T: 3, M: 0.0})
    assert rule.on_trial_result("c", {T: 2, M: 20.0}) is PAUSE
    # a trial that has ended gets STOP, paused before or not (as with hard_stop=True)
    assert rule.on_trial_result("b", {T: 4, M: 0.0}) is STOP
    assert rule.n_stopped == 2
    assert rule.debug_string() == "Using MedianStoppingRule: num_stopped=2."


def test_a_removed_trial_still_counts_for_the_others():
    rule = _rule(min_samples_required=1)
    rule.on_trial_result("a", {T: 1, M: 1.0})
    rule.on_trial_remove("a")
    assert rule.on_trial_result("b", {T: 1, M: 2.0}) is STOP


def test_a_call_that_raises_changes_nothing():
    rule, clean = _rule(min_samples_required=1), _rule(min_samples_required=1)
    with pytest.raises(TypeError, match="metric 'm' of trial 'a' must be a number"):
        rule.on_trial_result("a", {T: 1, M: "0.5"})
    with pytest.raises(ValueError, match="is NaN"):
        rule.on_trial_result("a", {T: math.nan, M: 0.5})
    with pytest.raises(TypeError, match="must be a number"):
        rule.on_trial_complete("a", {T: 1, M: None})
    for trial_id, v in (("a", 1.0), ("b", 3.0), ("c", 2.0)):
        result = {T: 1, M: v}
        assert rule.on_trial_result(trial_id, result) is clean.on_trial_result(trial_id, result)
    assert rule.state_dict() == clean.state_dict()


def test_trials_must_be_added_once():
    rule = _rule()
    with pytest.raises(ValueError, match=r"unknown trial 'z': call on_trial_add\('z'\)"):
        rule.on_trial_result("z", {T: 1, M: 1.0})
    with pytest.raises(ValueError, match="unknown trial 'z'"):
        rule.on_trial_complete("z", {T: 1, M: 1.0})
    with pytest.raises(ValueError, match="trial 'a' was already added"):
        rule.on_trial_add("a")


def test_a_trial_needs_a_metric_and_a_mode():
    with pytest.raises(ValueError, match=r"needs a metric and a mode.*TuneConfig"):
        MedianStoppingRule(metric="loss").on_trial_add("a")
    with pytest.raises(ValueError, match="needs a metric and a mode"):
        MedianStoppingRule(mode="min").on_trial_add("a")


# ------------------------------------------------------- arguments and the API

def test_signature_and_defaults_are_rays():
    params = inspect.signature(MedianStoppingRule).parameters
    assert {k: p.default for k, p in params.items()} == RAY_DEFAULTS
    assert list(params) == list(RAY_DEFAULTS)
    rule = MedianStoppingRule()
    assert (rule.time_attr, rule.metric, rule.mode, rule.grace_period, rule.min_samples_required,
            rule.min_time_slice, rule.hard_stop) == tuple(RAY_DEFAULTS.values())
    assert isinstance(rule, TrialScheduler) and not rule.stateless
    rule = MedianStoppingRule(metric="loss", mode="min")
    rule.on_trial_add("a")
    assert rule.next_decision_point("a") == -math.inf     # every result is judged
    assert MedianStoppingRule(hard_stop=False).hard_stop is False


def test_the_examples_in_its_docstring_run():
    failed, attempted = doctest.testmod(fastasha.schedulers.median_stopping_rule)
    assert attempted >= 10 and failed == 0


def test_it_is_importable_by_rays_paths():
    from fastasha.tune.schedulers import MedianStoppingRule as via_tune
    from fastasha.tune.schedulers.median_stopping_rule import MedianStoppingRule as via_module

    assert via_tune is via_module is MedianStoppingRule
    assert "MedianStoppingRule" in fastasha.schedulers.__all__
    assert tune.schedulers.MedianStoppingRule is MedianStoppingRule


@pytest.mark.parametrize("kwargs, error, match", [
    ({"hard_stop": 0}, TypeError, "hard_stop must be True or False"),
    ({"hard_stop": "False"}, TypeError, "hard_stop must be True or False"),
    ({"grace_period": -1}, ValueError, "grace_period must be a finite number >= 0, got -1"),
    ({"grace_period": math.inf}, ValueError, "grace_period must be a finite number >= 0"),
    ({"grace_period": math.nan}, ValueError, "grace_period must be a finite number >= 0"),
    ({"grace_period": "60"}, TypeError, "grace_period must be a real number"),
    ({"min_samples_required": 0}, ValueError, "min_samples_required must be at least 1"),
    ({"min_samples_required": 2.5}, TypeError, "min_samples_required must be an integer"),
    ({"min_time_slice": -1}, ValueError, "min_time_slice must be >= 0, got -1"),
    ({"mode": "minimize"}, ValueError, "mode must be one of 'min', 'max', got 'minimize'"),
    ({"metric": 3}, TypeError, "metric must be a string or None"),
    ({"time_attr": None}, TypeError, "time_attr must be a string"),
])
def test_bad_arguments_are_refused(kwargs, error, match):
    with pytest.raises(error, match=match):
        MedianStoppingRule(**kwargs)


def test_search_properties_as_in_ray():
    rule = MedianStoppingRule()
    assert rule.set_search_properties("loss", "max")
    assert (rule.metric, rule.mode) == ("loss", "max")
    assert not MedianStoppingRule(metric="a", mode="min").set_search_properties("b", None)
    only_mode = MedianStoppingRule()
    assert only_mode.set_search_properties(None, "min")
    assert only_mode.metric == "_metric"
    with pytest.raises(ValueError, match="mode must be one of"):
        MedianStoppingRule().set_search_properties("loss", "best")


def test_snapshots_are_refused_when_they_do_not_fit():
    rule = _rule()
    rule.on_trial_result("a", {T: 1, M: 1.0})
    state = rule.state_dict()
    with pytest.raises(ValueError, match="grace_period=1 but this scheduler has grace_period=2"):
        MedianStoppingRule(time_attr=T, metric=M, mode="min", grace_period=2,
                           min_samples_required=2).load_state_dict(state)
    with pytest.raises(ValueError, match="hard_stop=True but this scheduler has hard_stop=False"):
        MedianStoppingRule(time_attr=T, metric=M, mode="min", grace_period=1,
                           min_samples_required=2, hard_stop=False).load_state_dict(state)
    with pytest.raises(ValueError, match="mode='min' but this scheduler has mode='max'"):
        MedianStoppingRule(time_attr=T, metric=M, mode="max", grace_period=1,
                           min_samples_required=2).load_state_dict(state)
    with pytest.raises(ValueError, match="needs a fresh scheduler"):
        rule.load_state_dict(state)
    with pytest.raises(ValueError, match="not a MedianStoppingRule snapshot"):
        MedianStoppingRule().load_state_dict({"format": "something else"})
    tupled = MedianStoppingRule(metric=M, mode="min")
    tupled.on_trial_add(("a", 1))
    with pytest.raises(TypeError, match="str or int trial ids"):
        tupled.state_dict()


# ------------------------------------------------------------------ the Tuner

QUALITIES = [3.0, 1.0, 0.0, 4.0, 2.6, 5.0]     # lower is better; 0.0 is the best


def curve(config):
    """A learning curve of quality ``q``: ``q + 1/step`` for 20 steps."""
    for step in range(1, 21):
        tune.report({"loss": config["q"] + 1.0 / step})


class StopAllAfter(tune.Stopper):
    """Ends the whole sweep once ``n`` trials reached their last step."""

    def __init__(self, n):
        self.n, self.done = n, set()

    def __call__(self, trial_id, result):
        if result["training_iteration"] == 20:
            self.done.add(trial_id)
        return False

    def stop_all(self):
        return len(self.done) >= self.n


def _tuner(tmp_path, name, stop=None):
    # one trial at a time, so that every decision is known in advance:
    # 3.0 and 1.0 run alone or with one sample (min_samples_required=2), 0.0
    # beats the median of their running means, and 4.0, 2.6 and 5.0 trail it
    # at the grace period (iteration 3)
    return tune.Tuner(
        curve,
        param_space={"q": tune.grid_search(QUALITIES)},
        tune_config=tune.TuneConfig(
            metric="loss", mode="min", max_concurrent_trials=1,
            scheduler=MedianStoppingRule(time_attr="training_iteration", grace_period=3,
                                         min_samples_required=2)),
        run_config=tune.RunConfig(name=name, storage_path=str(tmp_path), verbose=0, stop=stop))


def _iterations(grid):
    """Iterations each quality ran (0: never started)."""
    return {r.config["q"]: r.metrics.get("training_iteration", 0) for r in grid}


def test_a_sweep_stops_the_bad_trials_at_the_grace_period_and_runs_the_best(tmp_path):
    with joblib.parallel_config(backend="threading"):
        grid = _tuner(tmp_path, "sweep").fit()
    assert grid.num_terminated == len(QUALITIES) and not grid.errors
    assert _iterations(grid) == {3.0: 20, 1.0: 20, 0.0: 20, 4.0: 3, 2.6: 3, 5.0: 3}
    assert grid.get_best_result().config["q"] == 0.0


def test_a_restored_sweep_replays_the_rule_and_decides_as_the_whole_one(tmp_path):
    with joblib.parallel_config(backend="threading"):
        half = _tuner(tmp_path, "half", stop=StopAllAfter(3)).fit()
        # the first three trials ran to the end, the last two did not start (nor
        # were they always created: trials are created ahead only while the driver
        # is idle); 4.0 may have begun, and then it ended there (a trial running
        # when a stopper ends the sweep ends as it is, as in Ray)
        ran = _iterations(half)
        assert [ran.get(q, 0) for q in (3.0, 1.0, 0.0, 2.6, 5.0)] == [20, 20, 20, 0, 0]
        assert ran.get(4.0, 0) <= 3
        # the rule is rebuilt from the stored settings and replays the stored
        # calls: without them, 2.6 would find fewer than 2 samples and run to the end
        restored = tune.Tuner.restore(half.experiment_path, curve).fit()
    assert restored.num_terminated == len(QUALITIES)
    assert _iterations(restored) == {3.0: 20, 1.0: 20, 0.0: 20, 4.0: ran.get(4.0, 0) or 3,
                                     2.6: 3, 5.0: 3}


def test_the_tuner_needs_a_metric_and_a_mode_for_it(tmp_path):
    tuner = tune.Tuner(curve, param_space={"q": 1.0},
                       tune_config=tune.TuneConfig(scheduler=MedianStoppingRule()),
                       run_config=tune.RunConfig(storage_path=str(tmp_path), verbose=0))
    with pytest.raises(ValueError, match="MedianStoppingRule needs a metric and a mode"):
        tuner.fit()


# ------------------------------------------------- the Tuner, with hard_stop=False

class _Starts(Callback):
    """Each trial start: the trial and every trial's status at that moment."""

    def __init__(self):
        self.starts = []

    def on_trial_start(self, iteration, trials, trial, **info):
        self.starts.append((trial.trial_id, {t.trial_id: t.status for t in trials}))


def _pausing_tuner(tmp_path, name, hard_stop=False, slots=1, stop=None, callbacks=None,
                   sleep_s=0.0):
    # as _tuner, with an objective that checkpoints every step (mpo.checkpointed_curve)
    return tune.Tuner(
        mpo.checkpointed_curve,
        param_space={"q": tune.grid_search(QUALITIES), "sleep_s": sleep_s},
        tune_config=tune.TuneConfig(
            metric="loss", mode="min", max_concurrent_trials=slots,
            scheduler=MedianStoppingRule(time_attr="training_iteration", grace_period=3,
                                         min_samples_required=2, hard_stop=hard_stop)),
        run_config=tune.RunConfig(name=name, storage_path=str(tmp_path), verbose=0, stop=stop,
                                  callbacks=callbacks))


def _column(result, key):
    return [row[key] for row in result.metrics_dataframe.to_dict("records")]


BAD = (4.0, 2.6, 5.0)      # the qualities the rule judges at the grace period (iteration 3)


@pytest.mark.parametrize("hard_stop", [True, False])
def test_without_hard_stop_the_bad_trials_are_paused_and_run_last_from_their_checkpoint(
        tmp_path, hard_stop):
    starts = _Starts()
    grid = _pausing_tuner(tmp_path, "sweep", hard_stop=hard_stop, callbacks=[starts]).fit()
    assert [r.status for r in grid] == ["TERMINATED"] * len(QUALITIES) and not grid.errors
    by_q = {r.config["q"]: r for r in grid}
    ids = [r.metrics["trial_id"] for r in grid]
    bad_ids = [by_q[q].metrics["trial_id"] for q in BAD]
    for q, result in by_q.items():
        if q in BAD and hard_stop:
            # stopped for good at the grace period
            assert _column(result, "step") == [1, 2, 3]
            assert _column(result, "starts") == [1, 1, 1]
        elif q in BAD:
            # paused at the grace period; resumed from the checkpoint of step 3, it ran
            # every step once, and was not judged (paused) again, though it still trails
            assert _column(result, "step") == list(range(1, mpo.N_STEPS + 1))
            assert _column(result, "training_iteration") == list(range(1, mpo.N_STEPS + 1))
            assert _column(result, "starts") == [1] * 3 + [2] * (mpo.N_STEPS - 3)
        else:
            assert _column(result, "starts") == [1] * mpo.N_STEPS
    # one slot: every trial starts in order; without hard_stop, the paused ones start
    # again once none is left to start, in the order they were paused
    assert [t for t, _ in starts.starts] == ids + ([] if hard_stop else bad_ids)
    if not hard_stop:
        # while the first paused trial resumes, the other two wait PAUSED
        resumed, statuses = starts.starts[len(ids)]
        assert resumed == bad_ids[0]
        assert [statuses[t] for t in ids] == ["TERMINATED"] * 3 + ["RUNNING", "PAUSED",
                                                                     "PAUSED"]
        # and when the last bad trial first started, the two before it were PAUSED
        assert [starts.starts[5][1][t] for t in bad_ids] == ["PAUSED", "PAUSED", "RUNNING"]
    assert grid.get_best_result().config["q"] == 0.0


@pytest.mark.parametrize("sleep_s", [0.02, 0.0])
def test_without_hard_stop_paused_trials_resume_only_once_every_trial_has_started(
        tmp_path, sleep_s):
    # two slots: which trials the rule judges depends on timing, except that 5.0, the
    # worst, always trails the median of the 3 or more trials that reached iteration 3
    # before it; whatever was paused starts again only after the six first starts.
    # (Trials of no time at all too: the driver hands trials under 0.1 s to busy
    # workers ahead of time, except for a scheduler that may pause trials, where a
    # free slot would resume a paused trial while one handed ahead waited, PENDING,
    # for its worker.)
    starts = _Starts()
    grid = _pausing_tuner(tmp_path, "two", slots=2, callbacks=[starts], sleep_s=sleep_s).fit()
    assert [r.status for r in grid] == ["TERMINATED"] * len(QUALITIES) and not grid.errors
    first = [t for t, _ in starts.starts[:len(QUALITIES)]]
    assert sorted(first) == sorted(r.metrics["trial_id"] for r in grid)
    again = [t for t, _ in starts.starts[len(QUALITIES):]]
    paused = [r.metrics["trial_id"] for r in grid if max(_column(r, "starts")) > 1]
    assert sorted(again) == sorted(paused)
    by_q = {r.config["q"]: r for r in grid}
    assert by_q[5.0].metrics["trial_id"] in paused
    assert by_q[0.0].metrics["trial_id"] not in paused
    for result in grid:
        assert _column(result, "step") == list(range(1, mpo.N_STEPS + 1))
        assert max(_column(result, "starts")) <= 2       # paused at most once


def test_without_hard_stop_a_sweep_cut_short_keeps_them_paused_and_restore_resumes_them(
        tmp_path):
    # the stopper ends the sweep at the 69th result: the three good trials' 60 and the
    # three bad ones' first 3 each; the last of them was paused by that very result
    half = _pausing_tuner(tmp_path, "cut", stop=po.StopAllAfter(3 * mpo.N_STEPS + 9)).fit()
    statuses = {r.config["q"]: r.status for r in half}
    assert statuses == {3.0: "TERMINATED", 1.0: "TERMINATED", 0.0: "TERMINATED",
                        4.0: "PAUSED", 2.6: "PAUSED", 5.0: "PAUSED"}
    for result in half:
        if result.config["q"] in BAD:
            assert result.metrics["training_iteration"] == 3 and result.checkpoint is not None
    # restored, the rule replays its calls and knows the three as paused: they resume
    # from their checkpoints and run to the end without being judged (paused) again
    restored = tune.Tuner.restore(half.experiment_path, mpo.checkpointed_curve).fit()
    assert [r.status for r in restored] == ["TERMINATED"] * len(QUALITIES)
    for result in restored:
        assert _column(result, "step") == list(range(1, mpo.N_STEPS + 1))
        expected = [1] * 3 + [2] * (mpo.N_STEPS - 3) if result.config["q"] in BAD \
            else [1] * mpo.N_STEPS
        assert _column(result, "starts") == expected
