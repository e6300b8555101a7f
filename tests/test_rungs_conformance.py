"""Replay the streams recorded from Ray Tune 2.53 through the public scheduler.

Every case of ``tests/data/ray_asha_cases.json`` (see
``../shared/conformance/README.md``) is replayed twice: result by result
(``on_trial_add`` / ``on_trial_result`` / ``on_trial_complete``) and in
batches (``add_trials`` / ``on_results``, a batch being a maximal run of
consecutive results). Every decision Ray returned and every final rung Ray
held must come out identical. The cases arrive through the ``ray_asha_case``
parameter (see ``conftest.py``), so a failure names its case.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from fastasha.schedulers import AsyncHyperBandScheduler

TIME_ATTR = "training_iteration"
METRIC = "m"


def _num(x):
    """A fixture number: ``"nan"`` is NaN, ints stay ints (Ray got ints for them)."""
    return math.nan if x == "nan" else x


def _build(case: dict) -> AsyncHyperBandScheduler:
    return AsyncHyperBandScheduler(time_attr=TIME_ATTR, metric=METRIC, **case["params"])


def _rung_state(sched: AsyncHyperBandScheduler) -> str:
    # repr keeps NaN cut-offs comparable (nan != nan) and shows int/float types
    return repr(sched.rung_table())


def _check_brackets(sched: AsyncHyperBandScheduler, case: dict) -> None:
    # repr: equal values *and* types (Ray's milestones are ints for int arguments)
    got = [[repr(m) for m in ms] for ms in sched.bracket_milestones]
    expected = [[repr(m) for m in ms] for ms in case["brackets"]]
    assert got == expected, "milestones differ from Ray's"
    np.testing.assert_allclose(sched.bracket_probabilities, case["bracket_probs"], rtol=1e-12,
                               atol=0, err_msg="bracket probabilities differ from Ray's")


def _check_final_rungs(sched: AsyncHyperBandScheduler, case: dict) -> None:
    # The fixture is in Ray's bigger-is-better space; the scheduler reports
    # metric units, so a "min" case is negated here.
    sign = -1.0 if case["params"]["mode"] == "min" else 1.0
    table = sched.rung_table()
    assert [len(rows) for rows in table] == [len(rungs) for rungs in case["final_rungs"]]
    for b, rungs in enumerate(case["final_rungs"]):
        for k, rung in enumerate(rungs):
            where = f"bracket {b}, rung {k} (milestone {rung['milestone']!r})"
            info = table[b][k]
            assert repr(info.milestone) == repr(rung["milestone"]), where

            recorded = [_num(x) for x in rung["recorded_sorted"]]
            finite = sorted(sign * x for x in recorded if not math.isnan(x))
            expected = np.array(finite + [math.nan] * (len(recorded) - len(finite)),
                                dtype=np.float64)
            got = sched.recorded_values(b, k)
            assert got.dtype == np.float64, where
            np.testing.assert_array_equal(got, expected, err_msg=where)
            assert info.n_recorded == len(recorded), where

            cutoff = rung["cutoff"]
            if cutoff is None:
                assert info.cutoff is None, where
            elif cutoff == "nan":
                assert info.cutoff is not None and math.isnan(info.cutoff), where
            else:
                assert info.cutoff == sign * cutoff, f"{where}: cutoff {info.cutoff!r}"


def test_fixture_is_complete(ray_asha_fixture):
    # guards against a truncated or hand-edited copy of the fixture
    cases = ray_asha_fixture["cases"]
    assert ray_asha_fixture["produced_by"]["ray"] == "2.53.0"
    assert ray_asha_fixture["produced_by"]["time_attr"] == TIME_ATTR
    assert ray_asha_fixture["produced_by"]["metric"] == METRIC
    assert len(cases) == ray_asha_fixture["n_cases"]
    assert sum(len(c["events"]) for c in cases) == ray_asha_fixture["n_events"]
    assert len({c["name"] for c in cases}) == len(cases)


def test_replay_result_by_result(ray_asha_case):
    case = ray_asha_case
    sched = _build(case)
    _check_brackets(sched, case)
    for trial_id, bracket in case["trial_bracket"].items():
        assert sched.on_trial_add(trial_id, bracket=bracket) == bracket

    for i, event in enumerate(case["events"]):
        kind, trial_id, t, value, expected = event
        result = {TIME_ATTR: t, METRIC: _num(value)}
        if kind == "complete":
            assert sched.on_trial_complete(trial_id, result) is None
            continue
        assert kind == "result", f"event {i}: unknown kind {kind!r}"
        # The decision point is checked against Ray's own decisions: below
        # it, Ray must have said CONTINUE and the rungs must not move.
        point = sched.next_decision_point(trial_id)
        before = _rung_state(sched) if t < point else None
        decision = sched.on_trial_result(trial_id, result)
        if decision != expected:
            pytest.fail(f"event {i} {event}: got {decision!r}, Ray returned {expected!r}")
        if before is not None:
            assert expected == "CONTINUE", (
                f"event {i} {event}: t is below next_decision_point {point!r} but Ray stopped it"
            )
            assert _rung_state(sched) == before, (
                f"event {i} {event}: below next_decision_point {point!r} but the rungs changed"
            )
    _check_final_rungs(sched, case)


@pytest.mark.parametrize("id_layout", ["dense", "sparse"])
def test_replay_in_batches(ray_asha_case, id_layout):
    case = ray_asha_case
    sched = _build(case)
    _check_brackets(sched, case)

    names = list(case["trial_bracket"])
    n = len(names)
    if id_layout == "dense":
        int_ids = np.arange(n, dtype=np.int64)
    else:   # negative and widely spread: the id map cannot be a direct table
        int_ids = (np.arange(n, dtype=np.int64) - n // 2) * 1_000_003 + 17
    to_int = dict(zip(names, int_ids.tolist(), strict=True))
    brackets = np.array([case["trial_bracket"][name] for name in names], dtype=np.int64)
    half = n // 2   # two add_trials calls, so that the id map grows once
    for part in (slice(0, half), slice(half, n)):
        got = sched.add_trials(int_ids[part], brackets=brackets[part])
        np.testing.assert_array_equal(got, brackets[part])

    events = case["events"]
    n_batches = 0
    i = 0
    while i < len(events):
        kind, trial_id, t, value, _ = events[i]
        if kind == "complete":
            result = {TIME_ATTR: t, METRIC: _num(value)}
            assert sched.on_trial_complete(to_int[trial_id], result) is None
            i += 1
            continue
        j = i
        while j < len(events) and events[j][0] == "result":
            j += 1
        run = events[i:j]
        stops = sched.on_results(
            [to_int[e[1]] for e in run],
            [e[2] for e in run],
            [_num(e[3]) for e in run],
        )
        expected = np.array([e[4] == "STOP" for e in run], dtype=bool)
        assert stops.dtype == np.bool_ and stops.shape == expected.shape
        if not np.array_equal(stops, expected):
            first = int(np.flatnonzero(stops != expected)[0])
            pytest.fail(
                f"event {i + first} {events[i + first]} (batch of {len(run)}): "
                f"got STOP={bool(stops[first])}, Ray returned {run[first][4]!r}"
            )
        n_batches += 1
        i = j
    assert n_batches >= 1
    _check_final_rungs(sched, case)
