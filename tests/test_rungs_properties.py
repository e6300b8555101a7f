"""Property tests: the compiled core against the plain-Python reference.

Random streams go through the public scheduler (which owns a compiled
``fastasha._rungs.RungTable``) and through ``fastasha._reference.ReferenceASHA``;
every decision, every decision point and every cut-off must agree at every
step. The reference's quantile is checked against ``np.nanquantile``
directly, and so is the core's cut-off, on rungs large enough to exercise
its heaps.
"""

from __future__ import annotations

import bisect
import math
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastasha._reference import ReferenceASHA, bracket_milestones, linear_quantile, quantile_q
from fastasha._rungs import RungTable
from fastasha.schedulers import AsyncHyperBandScheduler

TIME_ATTR = "training_iteration"
METRIC = "m"
REDUCTION_FACTORS = [2, 2.2, 2.5, 3, 4, 6]
# a small set, so that ties are common; -0.0 and 0.0 compare equal
SMALL_VALUES = [0.0, -0.0, 1.0, 1.0, 2.0, -1.0, 0.5, 3, math.nan, math.inf, -math.inf]

small_values = st.sampled_from(SMALL_VALUES)
any_values = st.one_of(
    small_values,
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-5, 5),
)
steps = st.one_of(
    # ("inc", dt): equal t (0), small steps, and jumps over several milestones or max_t
    st.tuples(st.just("inc"), st.sampled_from([0, 0, 1, 1, 2, 3, 0.5, 10, 50, 300])),
    # ("mark", k, d): one ulp below (d=0), at (1) or above (2) a milestone or max_t
    st.tuples(st.just("mark"), st.integers(0, 10), st.integers(0, 2)),
)


def _same(a, b) -> bool:
    """Equal floats, or both NaN, or both None. (-0.0 == 0.0: a zero's sign never decides.)"""
    if a is None or b is None:
        return a is None and b is None
    return a == b or (math.isnan(a) and math.isnan(b))


def _nanquantile(values, q) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)   # all-NaN slice
        return float(np.nanquantile(np.asarray(values, dtype=np.float64), q))


@st.composite
def asha_streams(draw, max_trials=16, max_events=120):
    """(params, brackets, events): scheduler arguments, each trial's bracket and a stream.

    ``events`` is a list of ``(kind, trial, t, value, late)`` with ``t``
    non-decreasing per trial; ``kind`` is ``"result"`` or ``"complete"``.
    :func:`_live` drops the events of retired trials unless ``late``.
    """
    rf = draw(st.sampled_from(REDUCTION_FACTORS))
    grace = draw(st.sampled_from([1, 2, 5]))
    max_t = draw(st.sampled_from([m for m in (10, 16, 27, 81, 100, 243) if m >= grace]))
    n_brackets = draw(st.integers(1, 3))
    params = {
        "mode": draw(st.sampled_from(["min", "max"])),
        "max_t": max_t,
        "grace_period": grace,
        "reduction_factor": rf,
        "brackets": n_brackets,
        "stop_last_trials": draw(st.booleans()),
    }
    n_trials = draw(st.integers(1, max_trials))
    brackets = draw(st.lists(st.integers(0, n_brackets - 1), min_size=n_trials,
                             max_size=n_trials))
    values = small_values if draw(st.booleans()) else any_values
    # the length is drawn first: hypothesis' own list sizes are mostly tiny
    n_events = draw(st.integers(1, max_events))
    raw = draw(st.lists(
        st.tuples(
            st.integers(0, n_trials - 1),
            st.sampled_from(["result"] * 7 + ["complete"]),
            steps,
            values,
            st.sampled_from([False] * 5 + [True]),
        ),
        min_size=n_events, max_size=n_events,
    ))
    marks = [bracket_milestones(grace, max_t, rf, s) + [max_t] for s in range(n_brackets)]
    t_now = [0] * n_trials
    events = []
    for trial, kind, step, value, late in raw:
        if step[0] == "inc":
            t = t_now[trial] + step[1]
        else:
            m = marks[brackets[trial]][step[1] % len(marks[brackets[trial]])]
            t = (math.nextafter(m, -math.inf), m, math.nextafter(m, math.inf))[step[2]]
            t = max(t_now[trial], t)
        t_now[trial] = t
        events.append((kind, trial, t, value, late))
    return params, brackets, events


def _live(params, brackets, events):
    """The ``(kind, trial, t, value)`` of ``events``, without most events of retired trials.

    A real Tuner sends nothing after a STOP but the completion, and nothing
    after a completion. So a stopped trial keeps its next completion, and
    any other event of a retired trial is kept only when marked ``late``.
    """
    ref = _reference(params, brackets)
    mode = params["mode"]
    stopped, completed = set(), set()
    live = []
    for kind, trial, t, value, late in events:
        running = trial not in stopped and trial not in completed
        completing_after_stop = kind == "complete" and trial not in completed
        if not (running or completing_after_stop or late):
            continue
        live.append((kind, trial, t, value))
        if kind == "complete":
            ref.complete(trial, t, _score(mode, value))
            completed.add(trial)
        elif ref.report(trial, t, _score(mode, value)):
            stopped.add(trial)
    return live


def _score(mode: str, value) -> float:
    return -float(value) if mode == "min" else float(value)


def _metric_units(mode: str, cutoff):
    return cutoff if cutoff is None or mode == "max" else -cutoff


def _build(params, brackets, batch=False):
    sched = AsyncHyperBandScheduler(time_attr=TIME_ATTR, metric=METRIC, **params)
    if batch:
        np.testing.assert_array_equal(
            sched.add_trials(np.arange(len(brackets)), brackets=np.array(brackets)), brackets)
    else:
        for i, b in enumerate(brackets):
            assert sched.on_trial_add(i, bracket=b) == b
    return sched


def _reference(params, brackets) -> ReferenceASHA:
    ref = ReferenceASHA(
        grace_period=params["grace_period"], max_t=params["max_t"],
        reduction_factor=params["reduction_factor"], brackets=params["brackets"],
        stop_last_trials=params["stop_last_trials"],
    )
    for i, b in enumerate(brackets):
        ref.add(i, b)
    return ref


def _assert_rungs_match(sched, ref, mode, where=""):
    table = sched.rung_table()
    assert [[r.milestone for r in rows] for rows in table] == \
        [[m for m, _ in rungs] for rungs in ref.rungs]
    for b, rows in enumerate(table):
        for k, info in enumerate(rows):
            expected = _metric_units(mode, ref.cutoff(b, k))
            assert _same(info.cutoff, expected), f"{where} bracket {b} rung {k}: cutoff " \
                f"{info.cutoff!r}, reference {expected!r}"
            assert info.n_recorded == len(ref.rungs[b][k][1]), f"{where} bracket {b} rung {k}"
    return table


def _assert_values_match(sched, ref, mode):
    for b, rungs in enumerate(ref.rungs):
        for k in range(len(rungs)):
            vals = ref.values(b, k)
            finite = sorted(-v if mode == "min" else v for v in vals if not math.isnan(v))
            expected = np.array(finite + [math.nan] * (len(vals) - len(finite)))
            np.testing.assert_array_equal(sched.recorded_values(b, k), expected,
                                          err_msg=f"bracket {b} rung {k}")


# ------------------------------------------------------------ core vs reference


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stream=asha_streams())
def test_scheduler_matches_reference_step_by_step(stream):
    params, brackets, events = stream
    events = _live(params, brackets, events)
    mode = params["mode"]
    sched = _build(params, brackets)
    ref = _reference(params, brackets)
    n_trials = len(brackets)
    retired = set()       # trials stopped or completed, as the decisions say
    table = sched.rung_table()
    for i, (kind, trial, t, value) in enumerate(events):
        where = f"event {i} {(kind, trial, t, value)}:"
        result = {TIME_ATTR: t, METRIC: value}
        point = sched.next_decision_point(trial)
        active = trial not in retired
        if kind == "result":
            decision = sched.on_trial_result(trial, result)
            expected = ref.report(trial, t, _score(mode, value))
            assert decision == ("STOP" if expected else "CONTINUE"), where
            if decision == "STOP":
                retired.add(trial)
        else:
            assert sched.on_trial_complete(trial, result) is None
            ref.complete(trial, t, _score(mode, value))
            retired.add(trial)
        before, table = table, _assert_rungs_match(sched, ref, mode, where)
        for j in range(n_trials):
            assert sched.next_decision_point(j) == ref.decision_point(j), f"{where} trial {j}"

        # Soundness of the decision point (t is non-decreasing per trial): a
        # result below it continues and changes nothing; one exactly at it
        # stops the trial or records a value. (A retired trial's point is
        # inf, and its results are answered STOP without changing anything.)
        if kind == "result" and active:
            if t < point:
                assert decision == "CONTINUE", f"{where} below decision point {point!r}"
                assert repr(table) == repr(before), f"{where} below decision point {point!r}"
                assert sched.next_decision_point(trial) == point, where
            elif t == point:
                n_before = sum(r.n_recorded for rows in before for r in rows)
                n_after = sum(r.n_recorded for rows in table for r in rows)
                assert decision == "STOP" or n_after == n_before + 1, \
                    f"{where} at decision point {point!r} but nothing happened"
    _assert_values_match(sched, ref, mode)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stream=asha_streams(), data=st.data())
def test_random_batches_match_one_by_one(stream, data):
    params, brackets, events = stream
    events = _live(params, brackets, events)
    one = _build(params, brackets)
    batched = _build(params, brackets, batch=True)
    i = 0
    while i < len(events):
        kind, trial, t, value = events[i]
        if kind == "complete":
            result = {TIME_ATTR: t, METRIC: value}
            one.on_trial_complete(trial, result)
            batched.on_trial_complete(trial, result)
            i += 1
            continue
        j = i
        while j < len(events) and events[j][0] == "result":
            j += 1
        if data.draw(st.booleans(), label="empty batch first"):
            assert batched.on_results([], [], []).shape == (0,)
        size = data.draw(st.integers(1, j - i), label="batch size")
        run = events[i:i + size]
        stops = batched.on_results([e[1] for e in run], [e[2] for e in run],
                                   [e[3] for e in run])
        expected = [one.on_trial_result(e[1], {TIME_ATTR: e[2], METRIC: e[3]}) == "STOP"
                    for e in run]
        assert stops.dtype == np.bool_
        assert stops.tolist() == expected, f"batch at event {i}"
        i += size
    assert repr(batched.rung_table()) == repr(one.rung_table())
    for b, milestones in enumerate(one.bracket_milestones):
        for k in range(len(milestones)):
            np.testing.assert_array_equal(batched.recorded_values(b, k), one.recorded_values(b, k))
    for j in range(len(brackets)):
        assert batched.next_decision_point(j) == one.next_decision_point(j)


# ------------------------------------------------------------------- quantiles


quantiles = st.one_of(
    st.sampled_from([quantile_q(rf) for rf in REDUCTION_FACTORS] + [0.0, 0.5, 1.0]),
    st.floats(0.0, 1.0),
)


@settings(max_examples=1500, deadline=None)
@given(values=st.lists(st.one_of(small_values, st.floats()), max_size=40), q=quantiles)
def test_linear_quantile_is_numpy_nanquantile(values, q):
    got = linear_quantile(values, q)
    if not values:
        assert got is None
        return
    expected = _nanquantile(values, q)
    assert _same(got, expected), f"linear_quantile {got!r}, numpy {expected!r}"


def test_quantile_q_matches_ray_round_trip():
    # Ray passes (1 - 1/rf) * 100 to np.nanpercentile, which divides by 100.
    assert quantile_q(6) == 0.8333333333333335 != 1 - 1 / 6
    for rf in (2, 2.2, 2.5, 3, 4):
        assert quantile_q(rf) == 1 - 1 / rf


def _feed_one_rung(values, rf, restore_at=None):
    """Record ``values`` one by one in a one-rung core, checking every step.

    After each value: the recorded values are the sorted inputs so far, the
    cut-off is ``np.nanquantile`` of them, and the decision was ``score <
    previous cut-off``. With ``restore_at``, the rung is copied into a new
    table with ``load_rung`` at that point, and both tables go on.
    """
    q = quantile_q(rf)
    tables = [RungTable([[1.0]], math.inf, q, False)]
    tables[0].add_trials(np.zeros(len(values), dtype=np.int32))
    finite: list[float] = []
    n_nan = 0
    previous = None
    for i, v in enumerate(values):
        if i == restore_at:
            clone = RungTable([[1.0]], math.inf, q, False)
            clone.add_trials(np.zeros(len(values), dtype=np.int32))
            clone.load_rung(0, 0, tables[0].values(0, 0))
            for j in range(i):
                clone.set_trial_bits(j, tables[0].trial_bits(j))
            assert _same(clone.cutoff(0, 0), previous)
            tables.append(clone)
        if not math.isnan(v):
            bisect.insort(finite, float(v))
        else:
            n_nan += 1
        expected_values = np.array(finite + [math.nan] * n_nan)
        expected_cutoff = _nanquantile(expected_values, q)
        for table in tables:
            stop = table.report(i, 1.0, v)
            assert stop == (previous is not None and v < previous), f"value {i}"
            np.testing.assert_array_equal(table.values(0, 0), expected_values,
                                          err_msg=f"value {i}")
            assert table.n_recorded(0, 0) == i + 1
            assert _same(table.cutoff(0, 0), expected_cutoff), \
                f"value {i}: cutoff {table.cutoff(0, 0)!r}, numpy {expected_cutoff!r}"
        previous = expected_cutoff


orders = st.sampled_from(["as drawn", "ascending", "descending"])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values=st.lists(st.one_of(small_values, st.floats(-1e6, 1e6), st.integers(-50, 50)),
                       min_size=1, max_size=300),
       order=orders, rf=st.sampled_from(REDUCTION_FACTORS), data=st.data())
def test_core_cutoff_is_nanquantile_of_its_values(values, order, rf, data):
    if order != "as drawn":
        finite = sorted(float(v) for v in values if not math.isnan(v))
        values = (finite if order == "ascending" else finite[::-1]) + \
            [math.nan] * (len(values) - len(finite))
    restore_at = data.draw(st.one_of(st.none(), st.integers(0, len(values) - 1)), label="restore")
    _feed_one_rung(values, rf, restore_at)


def _pattern(name: str, n: int) -> list[float]:
    rng = np.random.default_rng(sum(map(ord, name)))
    i = np.arange(n, dtype=np.float64)
    if name == "ascending":
        return i.tolist()
    if name == "descending":
        return i[::-1].tolist()
    if name == "random":
        return rng.normal(size=n).tolist()
    if name == "few ties":
        return rng.integers(0, 4, size=n).astype(float).tolist()
    if name == "alternating extremes":
        return np.where(i % 2 == 0, i, 1e6 - i).tolist()
    if name == "sawtooth":
        return (i % 97).tolist()
    if name == "nan and inf":
        x = rng.normal(size=n)
        x[rng.random(n) < 0.1] = np.nan
        x[rng.random(n) < 0.05] = np.inf
        x[rng.random(n) < 0.05] = -np.inf
        return x.tolist()
    raise ValueError(name)


@pytest.mark.parametrize("rf", [2, 3, 4, 6])
@pytest.mark.parametrize("name", ["ascending", "descending", "random", "few ties",
                                  "alternating extremes", "sawtooth", "nan and inf"])
def test_core_cutoff_on_large_rungs(name, rf):
    # thousands of values: the quantile's ranks wander far outside the
    # sorted window, so values move between the heaps and the window
    n = 1500
    _feed_one_rung(_pattern(name, n), rf, restore_at=n // 2)
