"""The schedulers' public API: defaults, errors, decisions, bracket draws and state.

Expected values here come from Ray Tune's documented behaviour and from the
rules in ``../shared/conformance/README.md``, worked out by hand, never from
the code under test. The last section tests the compiled core
``fastasha._rungs.RungTable`` directly: batch inputs, index errors, memory.
"""

from __future__ import annotations

import inspect
import json
import math

import numpy as np
import pytest

from fastasha._rungs import RungTable
from fastasha.schedulers import (
    CONTINUE,
    STOP,
    ASHAScheduler,
    AsyncHyperBandScheduler,
    Decision,
    FIFOScheduler,
    RungInfo,
    TrialScheduler,
)

T = "training_iteration"

# AsyncHyperBandScheduler's signature in Ray Tune 2.53, in order.
RAY_DEFAULTS = {
    "time_attr": "training_iteration",
    "metric": None,
    "mode": None,
    "max_t": 100,
    "grace_period": 1,
    "reduction_factor": 4,
    "brackets": 1,
    "stop_last_trials": True,
}


def _zeros_unsigned(obj):
    # The sign of a zero never decides anything (the README's rule), and
    # numpy's sort does not keep it: -0.0 and 0.0 are the same value here.
    if isinstance(obj, float):
        return obj + 0.0
    if isinstance(obj, dict):
        return {k: _zeros_unsigned(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_zeros_unsigned(v) for v in obj]
    return obj


def _state(sched) -> str:
    """Everything a scheduler knows, as comparable text (JSON of its snapshot)."""
    return json.dumps(_zeros_unsigned(sched.state_dict()), sort_keys=True, allow_nan=False)


def _table(sched) -> str:
    """The rung table as comparable text (NaN cut-offs compare equal)."""
    return repr(_zeros_unsigned([[(r.milestone, r.cutoff, r.n_recorded) for r in rows]
                                 for rows in sched.rung_table()]))


def _asha(**kwargs) -> AsyncHyperBandScheduler:
    args = {"metric": "m", "mode": "max", "max_t": 16, "grace_period": 1,
            "reduction_factor": 2, "seed": 0}
    args.update(kwargs)
    return AsyncHyperBandScheduler(**args)


def _rung_values(sched) -> str:
    return repr(_zeros_unsigned([[sched.recorded_values(b, k).tolist() for k in range(len(ms))]
                                 for b, ms in enumerate(sched.bracket_milestones)]))


# ------------------------------------------------------------------ defaults


def test_constructor_defaults_are_rays():
    params = inspect.signature(AsyncHyperBandScheduler).parameters
    assert list(params)[: len(RAY_DEFAULTS)] == list(RAY_DEFAULTS)
    for name, default in RAY_DEFAULTS.items():
        assert repr(params[name].default) == repr(default), name
    sched = AsyncHyperBandScheduler()
    for name, default in RAY_DEFAULTS.items():
        assert repr(getattr(sched, name)) == repr(default), name
    # int(ln(100 / 1) / ln(4) + 1) = 4 rungs at 1 * 4**k, highest first
    assert sched.bracket_milestones == [[64, 16, 4, 1]]
    assert sched.bracket_probabilities.tolist() == [1.0]


def test_ashascheduler_is_an_alias():
    assert ASHAScheduler is AsyncHyperBandScheduler


def test_grace_period_equal_to_max_t_is_allowed():
    sched = AsyncHyperBandScheduler(max_t=10, grace_period=10)
    assert sched.bracket_milestones == [[10]]


# -------------------------------------------------------------- constructor


@pytest.mark.parametrize("kwargs, error, name", [
    ({"max_t": 0}, ValueError, "max_t"),
    ({"max_t": -5}, ValueError, "max_t"),
    ({"max_t": math.nan}, ValueError, "max_t"),
    ({"max_t": "100"}, TypeError, "max_t"),
    ({"grace_period": 0}, ValueError, "grace_period"),
    ({"grace_period": -1}, ValueError, "grace_period"),
    ({"grace_period": 101}, ValueError, "grace_period"),
    ({"reduction_factor": 1}, ValueError, "reduction_factor"),
    ({"reduction_factor": 0.5}, ValueError, "reduction_factor"),
    ({"reduction_factor": "4"}, TypeError, "reduction_factor"),
    ({"brackets": 0}, ValueError, "brackets"),
    ({"brackets": -2}, ValueError, "brackets"),
    ({"brackets": 1.5}, TypeError, "brackets"),
    ({"brackets": 2.0}, TypeError, "brackets"),
    ({"brackets": "2"}, TypeError, "brackets"),
    ({"brackets": True}, TypeError, "brackets"),
    ({"mode": "maximize"}, ValueError, "mode"),
    ({"mode": "MIN"}, ValueError, "mode"),
    ({"metric": 3}, TypeError, "metric"),
    ({"time_attr": None}, TypeError, "time_attr"),
    ({"max_t": math.inf}, ValueError, "max_t"),
    ({"stop_last_trials": "no"}, TypeError, "stop_last_trials"),
    ({"stop_last_trials": 0}, TypeError, "stop_last_trials"),
])
def test_bad_constructor_arguments(kwargs, error, name):
    with pytest.raises(error, match=name) as info:
        AsyncHyperBandScheduler(**kwargs)
    assert repr(kwargs[name]) in str(info.value), "the message shows the value received"


@pytest.mark.parametrize("kwargs, error, name", [
    ({"mode": "x"}, ValueError, "mode"),
    ({"metric": 5}, TypeError, "metric"),
])
def test_fifo_checks_its_metric_and_mode(kwargs, error, name):
    with pytest.raises(error, match=name):
        FIFOScheduler(**kwargs)


def test_bad_mode_message_lists_the_options():
    with pytest.raises(ValueError, match="mode") as info:
        AsyncHyperBandScheduler(mode="best")
    assert "'min'" in str(info.value) and "'max'" in str(info.value)


# ---------------------------------------------------------- decisions, rungs


def test_decisions_compare_equal_to_ray_strings():
    sched = _asha()
    sched.on_trial_add("a")
    sched.on_trial_add("b")
    go = sched.on_trial_result("a", {T: 1, "m": 1.0})
    halt = sched.on_trial_result("b", {T: 1, "m": 0.0})
    assert go == "CONTINUE" and go == CONTINUE and go == TrialScheduler.CONTINUE
    assert halt == "STOP" and halt == STOP and halt == TrialScheduler.STOP
    assert go != "STOP" and halt != "CONTINUE"
    assert isinstance(go, str) and isinstance(halt, Decision)
    assert str(go) == "CONTINUE" and str(halt) == "STOP"
    assert {"STOP": 1}[halt] == 1     # hashes like the string


def test_min_mode_rungs_are_in_metric_units():
    # rf=2: q = 0.5. Losses 0.5 then 0.9 at t=1: the second is worse than the
    # cut-off 0.5 and stops; the rung then holds both losses.
    sched = _asha(mode="min")
    sched.on_trial_add("a")
    sched.on_trial_add("b")
    assert sched.on_trial_result("a", {T: 1, "m": 0.5}) == "CONTINUE"
    assert sched.rung_table()[0][-1].cutoff == 0.5
    assert sched.on_trial_result("b", {T: 1, "m": 0.9}) == "STOP"
    bottom = sched.rung_table()[0][-1]
    assert isinstance(bottom, RungInfo)
    assert bottom.milestone == 1 and bottom.n_recorded == 2
    assert bottom.cutoff == -np.nanquantile([-0.5, -0.9], 0.5)
    assert sched.recorded_values(0, 4).tolist() == [0.5, 0.9]
    assert [r.cutoff for r in sched.rung_table()[0][:-1]] == [None] * 4


def test_ties_continue_and_nan_is_never_stopped():
    sched = _asha()
    for trial_id in "abcd":
        sched.on_trial_add(trial_id)
    assert sched.on_trial_result("a", {T: 1, "m": 2.0}) == "CONTINUE"
    assert sched.on_trial_result("b", {T: 1, "m": 2.0}) == "CONTINUE"   # equal to the cut-off
    assert sched.on_trial_result("c", {T: 1, "m": math.nan}) == "CONTINUE"
    assert sched.on_trial_result("d", {T: 1, "m": 1.999}) == "STOP"
    values = sched.recorded_values(0, 4)
    assert values[:3].tolist() == [1.999, 2.0, 2.0] and math.isnan(values[3])


@pytest.mark.parametrize("result", [
    {"m": 1.0},                 # no time_attr
    {T: 1},                     # no metric
    {},
    {"other": 3, "m2": 1.0},
])
def test_results_missing_time_or_metric_continue_and_change_nothing(result):
    sched = _asha()
    sched.on_trial_add("a")
    sched.on_trial_add("b")
    sched.on_trial_result("a", {T: 1, "m": 5.0})
    sched.on_trial_result("b", {T: 1, "m": 0.0})          # stopped
    before = _state(sched)
    point = sched.next_decision_point("a")
    assert sched.on_trial_result("a", {**result, "unused": 1}) == "CONTINUE"
    assert sched.on_trial_result("b", result) == "CONTINUE"   # Ray checks the keys first
    assert sched.on_trial_complete("a", result) is None
    assert _state(sched) == before
    assert sched.next_decision_point("a") == point
    # "a" was not retired by the incomplete completion: it is still judged
    assert sched.on_trial_result("a", {T: 2, "m": 5.0}) == "CONTINUE"
    assert sched.rung_table()[0][3].n_recorded == 1


def test_result_after_stop_returns_stop_and_changes_nothing():
    sched = _asha()
    for trial_id in "ab":
        sched.on_trial_add(trial_id)
    sched.on_trial_result("a", {T: 1, "m": 1.0})
    assert sched.on_trial_result("b", {T: 1, "m": 0.0}) == "STOP"
    before = _state(sched)
    assert sched.next_decision_point("b") == math.inf
    assert sched.on_trial_result("b", {T: 2, "m": 100.0}) == "STOP"
    assert sched.on_trial_result("b", {T: 16, "m": 100.0}) == "STOP"
    assert _state(sched) == before


def test_result_after_stop_in_a_batch_returns_stop_and_changes_nothing():
    sched = _asha()
    sched.add_trials([0, 1])
    assert sched.on_results([0, 1], [1, 1], [1.0, 0.0]).tolist() == [False, True]
    before = _state(sched)
    assert sched.on_results([1, 1], [2, 4], [100.0, 100.0]).tolist() == [True, True]
    assert _state(sched) == before


def test_max_t_stops_without_recording_and_completion_records():
    # max_t=16, rf=2, g=1: milestones 16, 8, 4, 2, 1. A result at t = max_t is
    # stopped outright; the completion the Tuner sends after the STOP runs
    # the rung scan and fills the top rung (Ray semantics).
    sched = _asha()
    sched.on_trial_add("a")
    for t in (1, 2, 4, 8):
        assert sched.on_trial_result("a", {T: t, "m": 3.0}) == "CONTINUE"
    assert sched.on_trial_result("a", {T: 16, "m": 3.0}) == "STOP"
    top = sched.rung_table()[0][0]
    assert top.milestone == 16 and top.n_recorded == 0 and top.cutoff is None
    sched.on_trial_complete("a", {T: 16, "m": 3.0})
    top = sched.rung_table()[0][0]
    assert top.n_recorded == 1 and top.cutoff == 3.0
    # a second completion is ignored: the trial is retired
    before = _state(sched)
    sched.on_trial_complete("a", {T: 16, "m": 9.0})
    assert _state(sched) == before


def test_completion_after_stop_still_records():
    sched = _asha()
    for trial_id in "ab":
        sched.on_trial_add(trial_id)
    sched.on_trial_result("a", {T: 2, "m": 1.0})       # jumps: recorded at rung 2 only
    assert sched.on_trial_result("b", {T: 2, "m": 0.5}) == "STOP"
    assert sched.recorded_values(0, 4).size == 0        # rung 1: nobody yet
    # b's completion at t=2 repeats the stopping result: rung 2 already has
    # b, so the scan goes on and fills the skipped rung 1
    sched.on_trial_complete("b", {T: 2, "m": 0.5})
    assert sched.recorded_values(0, 4).tolist() == [0.5]
    assert sched.recorded_values(0, 3).tolist() == [0.5, 1.0]


def test_removed_trial_keeps_its_values_and_is_retired():
    sched = _asha()
    sched.on_trial_add("a")
    sched.on_trial_result("a", {T: 1, "m": 1.0})
    sched.on_trial_remove("a")
    before = _state(sched)
    assert sched.next_decision_point("a") == math.inf
    sched.on_trial_complete("a", {T: 2, "m": 1.0})
    assert _state(sched) == before
    assert sched.recorded_values(0, 4).tolist() == [1.0]


# ------------------------------------------------------------------ errors


def test_unknown_trial_raises():
    sched = _asha()
    sched.on_trial_add("a")
    sched.add_trials([5, 6])
    for call in (
        lambda: sched.on_trial_result("ghost", {T: 1, "m": 1.0}),
        lambda: sched.on_trial_result(7, {T: 1, "m": 1.0}),
        lambda: sched.on_trial_complete("ghost", {T: 1, "m": 1.0}),
        lambda: sched.next_decision_point("ghost"),
        lambda: sched.bracket_of("ghost"),
    ):
        with pytest.raises(ValueError, match="unknown trial"):
            call()


@pytest.mark.parametrize("ids", [[0, 1, 2], [10**12, -5, 7]], ids=["dense", "sparse"])
@pytest.mark.parametrize("bad_at", [0, 2])
def test_unknown_id_in_batch_raises_before_any_change(ids, bad_at):
    sched, twin = _asha(), _asha()
    for s in (sched, twin):
        s.add_trials(ids)
        s.on_results(ids[:1], [1], [1.0])
    before = _state(sched)
    batch = [ids[1], ids[2], ids[1]]
    batch[bad_at] = 99
    # the known trials' results would record values and stop one
    with pytest.raises(ValueError, match="99"):
        sched.on_results(batch, [1, 1, 2], [0.5, 3.0, 4.0])
    assert _state(sched) == before
    # the scheduler goes on exactly as one that never saw the bad batch
    good = ([ids[1], ids[2], ids[1]], [1, 1, 2], [0.5, 3.0, 4.0])
    assert sched.on_results(*good).tolist() == twin.on_results(*good).tolist()
    assert _state(sched) == _state(twin)


@pytest.mark.parametrize("value", [None, "0.5", "abc", [1.0], {"x": 1}])
def test_non_numeric_metric_raises_type_error(value):
    sched = _asha()
    sched.on_trial_add("a")
    with pytest.raises(TypeError, match="metric 'm'"):
        sched.on_trial_result("a", {T: 1, "m": value})
    with pytest.raises(TypeError, match="metric 'm'"):
        sched.on_trial_complete("a", {T: 1, "m": value})


@pytest.mark.parametrize("values", [[None, 1.0], ["abc", 1.0], ["0.5", "1.0"]])
def test_non_numeric_batch_values_raise_type_error(values):
    sched = _asha()
    sched.add_trials([0, 1])
    before = _state(sched)
    with pytest.raises(TypeError, match="values"):
        sched.on_results([0, 1], [1, 1], values)
    assert _state(sched) == before


def test_numpy_and_int_metrics_are_accepted():
    sched = _asha()
    for trial_id in "abc":
        sched.on_trial_add(trial_id)
    assert sched.on_trial_result("a", {T: 1, "m": np.float32(0.5)}) == "CONTINUE"
    assert sched.on_trial_result("b", {T: np.int64(1), "m": 1}) == "CONTINUE"
    assert sched.on_trial_result("c", {T: 1.0, "m": np.array(0.25)}) == "STOP"
    assert sched.recorded_values(0, 4).tolist() == [0.25, 0.5, 1.0]


@pytest.mark.parametrize("t", [math.nan, np.float64("nan")])
def test_nan_time_raises(t):
    sched = _asha()
    sched.on_trial_add("a")
    with pytest.raises(ValueError, match="time_attr 'training_iteration'"):
        sched.on_trial_result("a", {T: t, "m": 1.0})
    with pytest.raises(ValueError, match="time_attr 'training_iteration'"):
        sched.on_trial_complete("a", {T: t, "m": 1.0})


@pytest.mark.parametrize("t", [None, "3"])
def test_non_numeric_time_raises_type_error(t):
    sched = _asha()
    sched.on_trial_add("a")
    with pytest.raises(TypeError, match="time_attr"):
        sched.on_trial_result("a", {T: t, "m": 1.0})


def test_nan_time_in_batch_raises_before_any_change():
    sched = _asha()
    sched.add_trials([0, 1])
    before = _state(sched)
    with pytest.raises(ValueError, match="times"):
        sched.on_results([0, 1], [1, math.nan], [1.0, 2.0])
    assert _state(sched) == before


@pytest.mark.parametrize("ids, times, values", [
    ([0, 1], [1], [1.0, 2.0]),
    ([0, 1], [1, 1], [1.0]),
    ([0], [1, 1], [1.0, 2.0]),
])
def test_batch_lengths_must_match(ids, times, values):
    sched = _asha()
    sched.add_trials([0, 1])
    before = _state(sched)
    with pytest.raises(ValueError, match="trial_ids, times and values"):
        sched.on_results(ids, times, values)
    assert _state(sched) == before


@pytest.mark.parametrize("ids", [[0.0, 1.0], ["0", "1"], [True, False], [0, 1.5]])
def test_batch_ids_must_be_integers(ids):
    sched = _asha()
    sched.add_trials([0, 1])
    with pytest.raises(TypeError, match="integer trial ids"):
        sched.on_results(ids, [1, 1], [1.0, 2.0])
    with pytest.raises(TypeError, match="integer trial ids"):
        _asha().add_trials(ids)


def test_batch_ids_must_be_one_dimensional():
    sched = _asha()
    with pytest.raises(ValueError, match="trial_ids"):
        sched.add_trials([[0, 1]])


def test_duplicate_trial_ids_raise():
    sched = _asha()
    sched.on_trial_add("a")
    sched.on_trial_add(1)
    sched.add_trials([7, 8])
    n = sched.n_trials
    with pytest.raises(ValueError, match="'a' was already added"):
        sched.on_trial_add("a")
    with pytest.raises(ValueError, match="7 was already added"):
        sched.on_trial_add(7)
    with pytest.raises(ValueError, match=r"7\)? was already added"):
        sched.on_trial_add(np.int64(7))
    with pytest.raises(ValueError, match="1 was already added"):
        sched.add_trials([20, 1])
    with pytest.raises(ValueError, match="8 was already added"):
        sched.add_trials([30, 8])
    with pytest.raises(ValueError, match="40 appears twice"):
        sched.add_trials([40, 41, 40])
    assert sched.n_trials == n
    for new_id in (20, 30, 41):      # nothing of a failed batch was added
        with pytest.raises(ValueError, match="unknown trial"):
            sched.on_results([new_id], [1], [1.0])
    sched.add_trials([20, 30, 40, 41])
    assert sched.n_trials == n + 4


def test_bracket_out_of_range_raises():
    sched = _asha(brackets=2)
    with pytest.raises(ValueError, match="bracket"):
        sched.on_trial_add("a", bracket=2)
    with pytest.raises(ValueError, match="bracket"):
        sched.on_trial_add("a", bracket=-1)
    with pytest.raises(TypeError, match="bracket"):
        sched.on_trial_add("a", bracket=1.0)
    with pytest.raises(TypeError, match="bracket"):
        sched.on_trial_add("a", bracket=True)
    with pytest.raises(ValueError, match="brackets"):
        sched.add_trials([0, 1], brackets=[0, 2])
    with pytest.raises(ValueError, match="brackets"):
        sched.add_trials([0, 1], brackets=[0, -1])
    with pytest.raises(ValueError, match="brackets"):
        sched.add_trials([0, 1], brackets=[0])
    with pytest.raises(TypeError, match="brackets"):
        sched.add_trials([0, 1], brackets=[0.0, 1.0])
    with pytest.raises(ValueError, match="bracket"):
        sched.recorded_values(2, 0)
    assert sched.n_trials == 0
    # the failed ids were not registered
    assert sched.on_trial_add("a", bracket=1) == 1
    assert sched.add_trials([0, 1], brackets=[1, 0]).tolist() == [1, 0]
    assert [sched.bracket_of(i) for i in ("a", 0, 1)] == [1, 1, 0]


def test_missing_mode_raises():
    sched = AsyncHyperBandScheduler(metric="m")
    sched.on_trial_add("a")
    sched.add_trials([1])
    with pytest.raises(ValueError, match="mode"):
        sched.on_trial_result("a", {T: 1, "m": 1.0})
    with pytest.raises(ValueError, match="mode"):
        sched.on_results([1], [1], [1.0])


# ----------------------------------------------------- set_search_properties


def test_set_search_properties_fills_what_is_missing():
    sched = AsyncHyperBandScheduler()
    assert sched.set_search_properties("loss", "min") is True
    assert (sched.metric, sched.mode) == ("loss", "min")
    sched.on_trial_add("a")
    sched.on_trial_add("b")
    assert sched.on_trial_result("a", {T: 1, "loss": 0.1}) == "CONTINUE"
    assert sched.on_trial_result("b", {T: 1, "loss": 0.9}) == "STOP"   # larger loss is worse


@pytest.mark.parametrize("init, passed, accepted, final", [
    # Ray: False (and nothing changes) as soon as the scheduler has a
    # metric and another metric is passed, or a mode and another mode.
    (("acc", "max"), ("loss", "min"), False, ("acc", "max")),
    (("acc", None), ("loss", None), False, ("acc", None)),
    (("acc", None), ("loss", "min"), False, ("acc", None)),
    ((None, "min"), (None, "max"), False, (None, "min")),
    ((None, "min"), ("loss", "max"), False, (None, "min")),
    (("acc", None), (None, "max"), True, ("acc", "max")),
    ((None, "min"), ("loss", None), True, ("loss", "min")),
    (("acc", "max"), (None, None), True, ("acc", "max")),
    ((None, None), ("loss", None), True, ("loss", None)),
    # Ray: only a mode and no metric at all means the anonymous metric "_metric"
    ((None, None), (None, "max"), True, ("_metric", "max")),
])
def test_set_search_properties_like_ray(init, passed, accepted, final):
    sched = AsyncHyperBandScheduler(metric=init[0], mode=init[1])
    assert sched.set_search_properties(*passed) is accepted
    assert (sched.metric, sched.mode) == final


def test_set_search_properties_mode_decides_the_sign():
    sched = AsyncHyperBandScheduler(metric="acc")
    assert sched.set_search_properties(None, "max") is True
    sched.add_trials([0, 1])
    assert sched.on_results([0, 1], [1, 1], [0.1, 0.9]).tolist() == [False, False]
    with pytest.raises(ValueError, match="mode"):
        AsyncHyperBandScheduler().set_search_properties("loss", "maximum")


# ------------------------------------------------------------- bracket draw


def _same_global_rng_state(a, b) -> bool:
    return a[0] == b[0] and np.array_equal(a[1], b[1]) and a[2:] == b[2:]


def test_bracket_draw_is_seeded_and_leaves_the_global_rng_alone():
    global_state = np.random.get_state()
    a, b, c = (AsyncHyperBandScheduler(brackets=3, seed=s) for s in (7, 7, 8))
    draws = [[s.on_trial_add(i) for i in range(300)] for s in (a, b, c)]
    assert draws[0] == draws[1]
    assert draws[0] != draws[2]
    assert set(draws[0]) == {0, 1, 2}
    assert [a.bracket_of(i) for i in range(300)] == draws[0]
    batch_a, batch_b = a.add_trials(np.arange(1000, 3000)), b.add_trials(np.arange(1000, 3000))
    assert batch_a.dtype == np.int32 and np.array_equal(batch_a, batch_b)
    assert [a.bracket_of(i) for i in range(1000, 1010)] == batch_a[:10].tolist()
    # a Generator and set_seed are accepted too
    d = AsyncHyperBandScheduler(brackets=3, seed=np.random.default_rng(7))
    assert [d.on_trial_add(i) for i in range(300)] == draws[0]
    e = AsyncHyperBandScheduler(brackets=3)
    e.set_seed(7)
    assert [e.on_trial_add(i) for i in range(300)] == draws[0]
    AsyncHyperBandScheduler(brackets=3).add_trials(np.arange(100))   # unseeded
    assert _same_global_rng_state(np.random.get_state(), global_state)


@pytest.mark.parametrize("params", [
    {"brackets": 3},
    {"brackets": 4, "max_t": 81, "reduction_factor": 3},
    {"brackets": 3, "max_t": 10, "grace_period": 5, "reduction_factor": 2},   # an empty bracket
    {"brackets": 2, "max_t": 100, "reduction_factor": 2.5},
])
def test_bracket_frequencies_follow_rays_weights(params):
    sched = AsyncHyperBandScheduler(seed=20250101, **params)
    # Ray: weight exp(K_s - max K) for a bracket of K_s rungs,
    # K_s = int(ln(max_t / g) / ln(rf) - s + 1), at least 0
    g = params.get("grace_period", 1)
    rf = params.get("reduction_factor", 4)
    sizes = np.array([max(0, int(np.log(params.get("max_t", 100) / g) / np.log(rf) - s + 1))
                      for s in range(params["brackets"])])
    assert [len(m) for m in sched.bracket_milestones] == sizes.tolist()
    weights = np.exp(sizes - sizes.max())
    probs = weights / weights.sum()
    np.testing.assert_allclose(sched.bracket_probabilities, probs, rtol=1e-12)
    # The seed is fixed, so this cannot flake; 6 standard errors would
    # tolerate any other seed too.
    n = 200_000
    drawn = sched.add_trials(np.arange(n))
    freq = np.bincount(drawn, minlength=len(probs)) / n
    tol = 6 * np.sqrt(probs * (1 - probs) / n)
    assert np.all(np.abs(freq - probs) <= tol), (freq, probs)
    n_scalar = 20_000
    drawn = np.array([sched.on_trial_add(f"s{i}") for i in range(n_scalar)])
    freq = np.bincount(drawn, minlength=len(probs)) / n_scalar
    tol = 6 * np.sqrt(probs * (1 - probs) / n_scalar)
    assert np.all(np.abs(freq - probs) <= tol), (freq, probs)


# --------------------------------------------------------------- state_dict


ROUND_TRIP_ARGS = {"metric": "loss", "mode": "min", "max_t": 81, "grace_period": 1,
                   "reduction_factor": 3, "brackets": 3}


def _busy_scheduler(seed=5):
    """A scheduler with large rungs, NaN and inf values, and trials in every status."""
    rng = np.random.default_rng(seed)
    sched = AsyncHyperBandScheduler(seed=11, **ROUND_TRIP_ARGS)
    for i in range(6):
        sched.on_trial_add(f"s{i}")
    ids = np.arange(100, 700)
    sched.add_trials(ids)
    t = np.zeros(ids.size)
    for _ in range(12):
        batch = rng.choice(ids, size=300)
        times = []
        for i in batch:
            t[i - 100] += rng.choice([1, 1, 2, 5])
            times.append(t[i - 100])
        values = rng.normal(size=batch.size).round(2)
        values[rng.random(batch.size) < 0.03] = np.nan
        values[rng.random(batch.size) < 0.01] = np.inf
        sched.on_results(batch, times, values)
    for i in range(6):
        for step in (1, 3, 9):
            sched.on_trial_result(f"s{i}", {T: step, "loss": float(i) / 3})
    sched.on_trial_complete("s0", {T: 9, "loss": 0.0})
    sched.on_trial_complete(100, {T: t[0] + 1, "loss": -1.0})
    sched.on_trial_remove("s5")
    return sched


def _continue(sched, seed=6) -> list:
    """Feed the same continuation to a scheduler; return every decision."""
    rng = np.random.default_rng(seed)
    out = [sched.add_trials(np.arange(2000, 2050)).tolist()]        # brackets drawn
    out += [sched.on_trial_add(f"n{i}") for i in range(5)]
    for step in range(1, 30):
        batch = np.concatenate([rng.choice(np.arange(100, 700), size=100),
                                rng.choice(np.arange(2000, 2050), size=20)])
        times = np.full(batch.size, 10.0 + 3 * step)
        times[100:] = step
        out.append(sched.on_results(batch, times, rng.normal(size=batch.size).round(1)).tolist())
        for trial_id in ("s1", "s2", "s5", "n0", "n3"):
            out.append(sched.on_trial_result(trial_id, {T: 2 * step, "loss": rng.normal()}))
    sched.on_trial_complete("s3", {T: 70, "loss": 0.1})
    sched.on_trial_complete(2001, {T: 40, "loss": 0.2})
    out.append(sched.on_trial_result("s3", {T: 71, "loss": -5.0}))
    return out


def test_state_dict_round_trip_makes_the_same_decisions():
    original = _busy_scheduler()
    snapshot = json.loads(json.dumps(original.state_dict(), allow_nan=False))
    restored = AsyncHyperBandScheduler(**ROUND_TRIP_ARGS)       # no seed: the snapshot's RNG
    restored.load_state_dict(snapshot)
    assert _state(restored) == _state(original)
    assert _table(restored) == _table(original)
    assert sum(r.n_recorded for rows in original.rung_table() for r in rows) > 500
    every_id = [f"s{i}" for i in range(6)] + list(range(100, 700))
    assert [restored.next_decision_point(i) for i in every_id] == \
        [original.next_decision_point(i) for i in every_id]
    assert [restored.bracket_of(i) for i in every_id] == [original.bracket_of(i) for i in every_id]

    assert _continue(restored) == _continue(original)
    assert _table(restored) == _table(original)
    assert _rung_values(restored) == _rung_values(original)
    assert _state(restored) == _state(original)


def test_state_dict_round_trip_takes_metric_and_mode_from_the_snapshot():
    original = _asha(mode="min")
    original.on_trial_add("a")
    original.on_trial_result("a", {T: 1, "m": 0.5})
    restored = AsyncHyperBandScheduler(max_t=16, grace_period=1, reduction_factor=2)
    restored.load_state_dict(json.loads(json.dumps(original.state_dict())))
    assert (restored.metric, restored.mode) == ("m", "min")
    restored.on_trial_add("b")
    assert restored.on_trial_result("b", {T: 1, "m": 0.7}) == "STOP"


@pytest.mark.parametrize("change", [
    {"max_t": 27}, {"grace_period": 3}, {"reduction_factor": 4}, {"brackets": 2},
    {"stop_last_trials": False}, {"time_attr": "epoch"}, {"metric": "acc"}, {"mode": "max"},
])
def test_load_state_dict_with_other_arguments_raises(change):
    snapshot = json.loads(json.dumps(_busy_scheduler().state_dict()))
    other = AsyncHyperBandScheduler(**{**ROUND_TRIP_ARGS, **change})
    (name,) = change
    with pytest.raises(ValueError, match=name):
        other.load_state_dict(snapshot)
    assert other.n_trials == 0


def test_load_state_dict_needs_a_fresh_scheduler_and_a_snapshot():
    snapshot = _asha().state_dict()
    used = _asha()
    used.on_trial_add("a")
    with pytest.raises(ValueError, match="fresh"):
        used.load_state_dict(snapshot)
    with pytest.raises(ValueError, match="snapshot"):
        _asha().load_state_dict({"params": {}})
    with pytest.raises(ValueError, match="snapshot"):
        _asha().load_state_dict(FIFOScheduler().state_dict())


# ------------------------------------------------------------- batch inputs


def _batch_stream():
    rng = np.random.default_rng(3)
    ids = np.repeat(np.arange(10), 4)
    times = np.tile(np.array([1, 2, 4, 8]), 10)
    order = np.argsort(times, kind="stable")
    values = rng.integers(-8, 8, size=ids.size) / 4.0       # exact in float32
    return ids[order], times[order], values[order]


def _as_kind(kind, arr, tmp_path, name):
    if kind == "list":
        return arr.tolist()
    if kind == "read-only":
        arr = arr.copy()
        arr.setflags(write=False)
        return arr
    if kind == "non-contiguous":
        wide = np.empty(2 * arr.size, dtype=arr.dtype)
        wide[::2] = arr
        return wide[::2]
    if kind == "wrong dtype":
        return arr.astype(np.int32 if arr.dtype.kind in "iu" else np.float32)
    if kind == "memmap":
        path = tmp_path / f"{name}.npy"
        np.save(path, arr)
        return np.load(path, mmap_mode="r")
    raise ValueError(kind)


@pytest.mark.parametrize("kind", ["list", "read-only", "non-contiguous", "wrong dtype", "memmap"])
def test_on_results_accepts_array_like_inputs(kind, tmp_path):
    ids, times, values = _batch_stream()
    plain, other = _asha(), _asha()
    for s in (plain, other):
        s.add_trials(np.arange(10))
    expected = plain.on_results(ids, times, values)
    assert expected.any() and not expected.all()
    got = other.on_results(_as_kind(kind, ids, tmp_path, "ids"),
                           _as_kind(kind, times, tmp_path, "times"),
                           _as_kind(kind, values, tmp_path, "values"))
    assert got.dtype == np.bool_
    assert got.tolist() == expected.tolist()
    assert _state(other) == _state(plain)


def test_on_results_accepts_unsigned_ids():
    ids, times, values = _batch_stream()
    plain, other = _asha(), _asha()
    plain.add_trials(np.arange(10))
    other.add_trials(np.arange(10, dtype=np.uint64))
    assert other.on_results(ids.astype(np.uint16), times, values).tolist() == \
        plain.on_results(ids, times, values).tolist()


def test_empty_batches():
    sched = _asha()
    assert sched.add_trials([]).shape == (0,)
    sched.add_trials([0])
    before = _state(sched)
    for ids in ([], np.empty(0, dtype=np.int64), np.empty(0)):
        out = sched.on_results(ids, [], [])
        assert out.shape == (0,) and out.dtype == np.bool_
    assert _state(sched) == before


# -------------------------------------------------------------------- FIFO


def test_fifo_never_stops():
    sched = FIFOScheduler(metric="loss", mode="min")
    sched.on_trial_add("a")
    for t, loss in [(1, 5.0), (100, math.nan), (10**9, math.inf), (10**9, -math.inf)]:
        assert sched.on_trial_result("a", {T: t, "loss": loss}) == "CONTINUE"
    assert sched.next_decision_point("a") == math.inf
    assert sched.on_results([0, 1], [1, 2], [1.0, 2.0]).tolist() == [False, False]
    assert sched.on_results([], [], []).shape == (0,)
    with pytest.raises(ValueError, match="same length"):
        sched.on_results([0, 1], [1], [1.0, 2.0])
    assert sched.on_trial_complete("a", {T: 2, "loss": 1.0}) is None
    assert sched.rung_table() == []


# ---------------------------------------------------------- shared contract


@pytest.fixture(params=["fifo", "asha"])
def scheduler(request) -> TrialScheduler:
    if request.param == "fifo":
        return FIFOScheduler(metric="loss", mode="min")
    return AsyncHyperBandScheduler(metric="loss", mode="min", max_t=16, reduction_factor=2)


def test_contract_results_below_the_decision_point_continue(scheduler):
    rng = np.random.default_rng(1)
    for i in range(8):
        scheduler.on_trial_add(f"t{i}")
    t = dict.fromkeys(range(8), 0)
    running = set(range(8))
    n_below = 0
    for _ in range(200):
        if not running:
            break
        i = int(rng.choice(sorted(running)))
        t[i] += int(rng.integers(0, 3))
        point = scheduler.next_decision_point(f"t{i}")
        assert isinstance(point, float)
        before = _table(scheduler)
        decision = scheduler.on_trial_result(f"t{i}", {T: t[i], "loss": float(rng.normal())})
        assert decision in ("CONTINUE", "STOP")
        if t[i] < point:
            n_below += 1
            assert decision == "CONTINUE"
            assert _table(scheduler) == before
        if decision == "STOP":      # a Tuner sends nothing more after a STOP
            running.discard(i)
    assert n_below > 0


def test_contract_state_dict_is_json(scheduler):
    scheduler.on_trial_add("a")
    scheduler.on_trial_result("a", {T: 1, "loss": math.nan})
    json.dumps(scheduler.state_dict(), allow_nan=False)


def test_contract_set_search_properties_keeps_own_metric(scheduler):
    assert scheduler.set_search_properties("acc", None) is False
    assert scheduler.set_search_properties(None, "max") is False
    assert (scheduler.metric, scheduler.mode) == ("loss", "min")


# --------------------------------------------------------- the core directly


def _core(n_trials=6) -> RungTable:
    # milestones 4, 2, 1; max_t 8; q = 0.5 (rf = 2)
    table = RungTable([[4.0, 2.0, 1.0]], 8.0, 0.5, True)
    table.add_trials(np.zeros(n_trials, dtype=np.int32))
    return table


def _core_state(table: RungTable) -> str:
    _, status = table.trial_arrays()
    rungs = [(table.values(0, k).tolist(), table.cutoff(0, k)) for k in range(3)]
    return repr((rungs, status.tolist(), [table.trial_bits(i) for i in range(table.n_trials)]))


def _core_batch():
    idx = np.array([0, 1, 2, 3, 0, 1, 4, 5, 2, 4], dtype=np.int64)
    t = np.array([1, 1, 1, 1, 2, 2, 4, 8, 3, 5], dtype=np.float64)
    score = np.array([0.5, 0.7, 0.1, np.nan, 0.9, 0.2, 1.0, 2.0, 0.4, np.inf])
    return idx, t, score


def test_core_report_batch_takes_read_only_arrays_and_equals_scalar_reports():
    idx, t, score = _core_batch()
    for arr in (idx, t, score):
        arr.setflags(write=False)
    batched, scalar = _core(), _core()
    out = np.zeros(idx.size, dtype=np.uint8)
    assert batched.report_batch(idx, t, score, out) is None
    expected = [scalar.report(int(i), float(ti), float(s))
                for i, ti, s in zip(idx, t, score, strict=True)]
    assert out.tolist() == expected
    assert 0 < sum(expected) < len(expected)
    assert _core_state(batched) == _core_state(scalar)


@pytest.mark.parametrize("bad", [-1, 6, 2**40])
def test_core_report_batch_out_of_range_raises_index_error(bad):
    idx, t, score = _core_batch()
    table, twin = _core(), _core()
    before = _core_state(table)
    bad_idx = idx.copy()
    bad_idx[-1] = bad
    out = np.zeros(idx.size, dtype=np.uint8)
    with pytest.raises(IndexError, match="out of range"):
        table.report_batch(bad_idx, t, score, out)
    assert _core_state(table) == before
    assert not out.any()
    out_twin = np.zeros(idx.size, dtype=np.uint8)
    table.report_batch(idx, t, score, out)
    twin.report_batch(idx, t, score, out_twin)
    assert out.tolist() == out_twin.tolist()
    assert _core_state(table) == _core_state(twin)


def test_core_report_batch_checks_lengths_and_takes_empty_batches():
    table = _core()
    before = _core_state(table)
    with pytest.raises(ValueError, match="length"):
        table.report_batch(np.zeros(2, np.int64), np.ones(1), np.ones(2), np.zeros(2, np.uint8))
    with pytest.raises(ValueError, match="length"):
        table.report_batch(np.zeros(2, np.int64), np.ones(2), np.ones(2), np.zeros(3, np.uint8))
    empty = np.empty(0)
    table.report_batch(np.empty(0, np.int64), empty, empty, np.empty(0, np.uint8))
    assert _core_state(table) == before


def test_core_scalar_calls_check_their_indices():
    table = _core()
    for call in (
        lambda: table.report(6, 1.0, 1.0),
        lambda: table.report(-1, 1.0, 1.0),
        lambda: table.complete(6, 1.0, 1.0),
        lambda: table.decision_point(6),
        lambda: table.status(-1),
        lambda: table.bracket_of(6),
        lambda: table.set_status(6, 0),
        lambda: table.trial_bits(6),
        lambda: table.cutoff(1, 0),
        lambda: table.cutoff(0, 3),
        lambda: table.values(0, -1),
        lambda: table.n_recorded(-1, 0),
        lambda: table.milestones(1),
    ):
        with pytest.raises(IndexError, match="out of range"):
            call()
    with pytest.raises(ValueError, match="bracket index 1"):
        table.add_trial(1)
    with pytest.raises(ValueError, match="bracket index 1"):
        table.add_trials(np.array([0, 1], dtype=np.int32))
    assert table.n_trials == 6


@pytest.mark.parametrize("milestones, q, match", [
    ([], 0.5, "bracket"),
    ([[2.0, 1.0]], 0.0, "q"),
    ([[2.0, 1.0]], 1.5, "q"),
    ([[1.0, 2.0]], 0.5, "decreasing"),
    ([[2.0, 2.0]], 0.5, "decreasing"),
])
def test_core_constructor_checks(milestones, q, match):
    with pytest.raises(ValueError, match=match):
        RungTable(milestones, 8.0, q, True)


# ------------------------------------------------------------------- memory
#
# The documented bound (RungTable's Notes): 16 bytes per trial, at most 16
# bytes per recorded value, plus a fixed overhead: the empty table, a first
# block of 1024 trial slots and a first heap block (2 x 64 values) per rung.

FIRST_TRIAL_BLOCK = 1024 * 16
FIRST_HEAP_BLOCKS = 2 * 64 * 8


def _n_values(table: RungTable) -> int:
    return sum(table.n_recorded(b, k) for b in range(table.n_brackets)
               for k in range(len(table.milestones(b))))


def test_memory_of_100k_trials_is_within_the_documented_bound():
    milestones = [[64.0, 16.0, 4.0, 1.0], [64.0, 16.0, 4.0]]
    n_rungs = 7
    table = RungTable(milestones, 100.0, 0.75, True)
    empty = table.nbytes()
    n = 100_000
    rng = np.random.default_rng(0)
    table.add_trials((rng.random(n) < 0.3).astype(np.int32))
    with_trials = table.nbytes()
    assert 16 * n <= with_trials - empty <= 16 * n + FIRST_TRIAL_BLOCK
    # some trials report: 20,000 at t=1, 5,000 of them again at t=4
    idx = rng.choice(n, size=20_000, replace=False).astype(np.int64)
    for chosen, t in ((idx, 1.0), (idx[:5000], 4.0)):
        out = np.zeros(chosen.size, dtype=np.uint8)
        table.report_batch(chosen, np.full(chosen.size, t), rng.normal(size=chosen.size), out)
    n_values = _n_values(table)
    assert n_values > 15_000      # stopped trials record nothing more
    assert table.nbytes() - with_trials <= 16 * n_values + FIRST_HEAP_BLOCKS * n_rungs
    assert table.nbytes() <= 16 * n + 16 * n_values + empty + FIRST_TRIAL_BLOCK \
        + FIRST_HEAP_BLOCKS * n_rungs


@pytest.mark.parametrize("n_values", [0, 1, 64, 65, 200, 4097, 40_000])
def test_memory_per_recorded_value_is_within_the_documented_bound(n_values):
    table = RungTable([[1.0]], 10.0, 0.75, False)
    empty = table.nbytes()
    table.add_trials(np.zeros(n_values, dtype=np.int32))
    with_trials = table.nbytes()
    assert with_trials - empty <= 16 * n_values + FIRST_TRIAL_BLOCK
    values = np.random.default_rng(n_values).normal(size=n_values)
    out = np.zeros(n_values, dtype=np.uint8)
    table.report_batch(np.arange(n_values, dtype=np.int64), np.ones(n_values), values, out)
    assert _n_values(table) == n_values
    assert table.nbytes() - with_trials <= 16 * n_values + FIRST_HEAP_BLOCKS


def test_memory_of_trials_added_one_at_a_time():
    # add_trial doubles its reservation: at most twice 16 bytes per trial
    table = RungTable([[1.0]], 10.0, 0.75, False)
    empty = table.nbytes()
    for n in range(1, 5000):
        table.add_trial(0)
        assert table.nbytes() - empty <= max(32 * n, FIRST_TRIAL_BLOCK)


@pytest.mark.parametrize("name", ["PB2", "ResourceChangingScheduler"])
def test_rays_schedulers_fastasha_lacks_are_refused_with_what_it_has(name):
    import importlib

    with pytest.raises(ImportError, match=f"fastasha has no {name} .*It has "
                                          "PopulationBasedTraining.*ASHAScheduler"):
        exec(f"from fastasha.tune.schedulers import {name}", {})
    with pytest.raises(AttributeError, match="has no attribute 'NoSuchScheduler'"):
        importlib.import_module("fastasha.schedulers").NoSuchScheduler
