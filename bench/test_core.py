"""Benchmarks of the rung core on an ASHA report stream.

``test_sweep`` replays the whole stream (add every trial, then every report
in order) into a fresh scheduler, for each implementation and trial count,
in one benchmark group:

- ``batch``: ``add_trials`` for all ids, then one ``on_results`` call per round;
- ``scalar``: ``on_trial_add`` per trial, then one ``on_trial_result`` call
  per report, with string ids and result dicts built beforehand;
- ``batch-reports``, ``scalar-reports``: the same with the trials added in
  the untimed setup, so that only the result calls are timed;
- ``reference``: the plain-Python ``fastasha._reference.ReferenceASHA``;
- ``ray``: Ray Tune's ``AsyncHyperBandScheduler``, where importable;
- ``optuna``: Optuna's ``SuccessiveHalvingPruner``, where importable.

Before timing, each case checks that its decisions agree with the recorded
stream (see :func:`_check`), so a fast wrong answer fails instead of winning.
``test_scalar_call`` times single ``on_trial_result`` calls.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from fastasha._reference import ReferenceASHA
from fastasha.schedulers import STOP, AsyncHyperBandScheduler

# ------------------------------------------------------------------ the stream
#
# n trials of 100 steps, each with a random quality. In round t (1..100)
# every trial still alive reports step t with value = quality + noise, in a
# shuffled order; a trial that got STOP reports no more. Scores are
# bigger-is-better (mode="max"); ASHA with grace_period=1, max_t=100,
# reduction_factor=4 has rungs at 1, 4, 16 and 64 and stops everyone at 100.
#
# Round t draws its shuffle and its noise from its own generator, seeded with
# (SEED, n, t), so a round's inputs depend on nothing but the trials still
# alive. Which trials are alive depends on the decisions, so play() runs the
# loop once with a scheduler in it and records every round. A benchmark then
# replays the recorded rounds into a fresh scheduler: when its decisions equal
# the recorded ones, the closed loop would have produced exactly this stream.

SEED = 20240917
N_STEPS = 100
GRACE_PERIOD = 1
MAX_T = 100
REDUCTION_FACTOR = 4
MILESTONES = (64, 16, 4, 1)      # highest first, as rung_table() lists them
TIME_ATTR = "training_iteration"
METRIC = "m"
MODE = "max"
NOISE = 0.5

REFERENCE_MAX_N = 10_000   # the reference sorts a rung per milestone report: O(n^2 log n)

SWEEP_GROUP = "asha-sweep"
CALL_GROUP = "scalar-call"


@dataclass(frozen=True)
class Round:
    """One round: who reports, in which order, what, and the verdicts recorded."""

    t: int
    ids: np.ndarray       # int64 trial ids 0..n-1, in reporting order
    values: np.ndarray    # float64 metric values (bigger is better)
    stop: np.ndarray      # bool, True = STOP, from the scheduler that played the loop


@dataclass(frozen=True)
class Stream:
    n: int
    rounds: list[Round]

    @property
    def n_reports(self) -> int:
        return sum(r.ids.size for r in self.rounds)

    @property
    def decisions(self) -> np.ndarray:
        return np.concatenate([r.stop for r in self.rounds])

    def rung_values(self, milestone: int) -> np.ndarray:
        """Every value recorded in the rung at ``milestone``.

        Every alive trial reports every step, so a trial enters a rung
        exactly at ``t == milestone``, and every report of that round is
        recorded there.
        """
        return next((r.values for r in self.rounds if r.t == milestone), np.empty(0))


def play(n: int, judge: Callable[[np.ndarray, int, np.ndarray], Any],
         seed: int = SEED) -> Stream:
    """Run the closed loop; ``judge(ids, t, values)`` returns one STOP flag per report."""
    quality = np.random.default_rng([seed, n]).standard_normal(n)
    alive = np.arange(n, dtype=np.int64)
    rounds = []
    for t in range(1, N_STEPS + 1):
        rng = np.random.default_rng([seed, n, t])
        ids = alive[rng.permutation(alive.size)]
        values = quality[ids] + NOISE * rng.standard_normal(ids.size)
        stop = np.array(judge(ids, t, values), dtype=bool)
        assert stop.shape == ids.shape
        rounds.append(Round(t, ids, values, stop))
        alive = ids[~stop]
        if alive.size == 0:
            break
    return Stream(n, rounds)


def _fastasha() -> AsyncHyperBandScheduler:
    return AsyncHyperBandScheduler(time_attr=TIME_ATTR, metric=METRIC, mode=MODE,
                                   max_t=MAX_T, grace_period=GRACE_PERIOD,
                                   reduction_factor=REDUCTION_FACTOR, seed=0)


def _names(n: int) -> list[str]:
    return [f"trial_{i:07d}" for i in range(n)]


def _flat(out: list[list[bool]]) -> np.ndarray:
    return np.fromiter((d for rnd in out for d in rnd), dtype=bool)


# ------------------------------------------------------------ implementations
#
# Each implementation has: new() -> a fresh scheduler; prepare(stream) -> the
# inputs in the form it takes, built outside the timing; sweep(sched, inputs)
# -> the timed replay (add every trial, then every report), returning its
# decisions; decisions(out) -> one bool array; rungs(sched) -> (cut-offs,
# counts) of the rungs, highest first. Batch and Scalar split sweep() into
# add() and reports() for the "-reports" cases.


class Batch:
    @staticmethod
    def new():
        return _fastasha()

    @staticmethod
    def prepare(stream: Stream):
        ids = np.arange(stream.n, dtype=np.int64)
        return ids, [(r.ids, np.full(r.ids.size, float(r.t)), r.values) for r in stream.rounds]

    @staticmethod
    def add(sched, inputs):
        sched.add_trials(inputs[0])

    @staticmethod
    def reports(sched, inputs):
        on_results = sched.on_results
        return [on_results(i, t, v) for i, t, v in inputs[1]]

    @classmethod
    def sweep(cls, sched, inputs):
        cls.add(sched, inputs)
        return cls.reports(sched, inputs)

    @staticmethod
    def decisions(out) -> np.ndarray:
        return np.concatenate(out)

    @staticmethod
    def rungs(sched):
        rows = sched.rung_table()[0]
        return [r.cutoff for r in rows], [r.n_recorded for r in rows]


class Scalar(Batch):
    @staticmethod
    def prepare(stream: Stream):
        names = _names(stream.n)
        rounds = [
            [(names[i], {TIME_ATTR: r.t, METRIC: v})
             for i, v in zip(r.ids.tolist(), r.values.tolist())]
            for r in stream.rounds
        ]
        return names, rounds

    @staticmethod
    def add(sched, inputs):
        add = sched.on_trial_add
        for name in inputs[0]:
            add(name)

    @staticmethod
    def reports(sched, inputs):
        report = sched.on_trial_result
        return [[report(tid, result) is STOP for tid, result in rnd] for rnd in inputs[1]]

    decisions = staticmethod(_flat)


class Reference:
    @staticmethod
    def new():
        return ReferenceASHA(grace_period=GRACE_PERIOD, max_t=MAX_T,
                             reduction_factor=REDUCTION_FACTOR)

    @staticmethod
    def prepare(stream: Stream):
        names = _names(stream.n)
        rounds = [(float(r.t), [(names[i], v) for i, v in zip(r.ids.tolist(), r.values.tolist())])
                  for r in stream.rounds]
        return names, rounds

    @staticmethod
    def sweep(ref, inputs):
        names, rounds = inputs
        for name in names:
            ref.add(name, 0)
        report = ref.report
        return [[report(tid, t, v) for tid, v in pairs] for t, pairs in rounds]

    decisions = staticmethod(_flat)

    @staticmethod
    def rungs(ref):
        return ([ref.cutoff(0, k) for k in range(len(MILESTONES))],
                [len(recorded) for _, recorded in ref.rungs[0]])


class _RayTrial:
    """The one attribute of a Ray ``Trial`` that the scheduler reads."""

    __slots__ = ("trial_id",)

    def __init__(self, trial_id: str) -> None:
        self.trial_id = trial_id


class Ray:
    @staticmethod
    def new():
        pytest.importorskip("ray")
        from ray.tune.schedulers import AsyncHyperBandScheduler as RayASHA

        return RayASHA(time_attr=TIME_ATTR, metric=METRIC, mode=MODE, max_t=MAX_T,
                       grace_period=GRACE_PERIOD, reduction_factor=REDUCTION_FACTOR)

    @staticmethod
    def prepare(stream: Stream):
        trials = [_RayTrial(name) for name in _names(stream.n)]
        rounds = [
            [(trials[i], {TIME_ATTR: r.t, METRIC: v})
             for i, v in zip(r.ids.tolist(), r.values.tolist())]
            for r in stream.rounds
        ]
        return trials, rounds

    @staticmethod
    def sweep(sched, inputs):
        trials, rounds = inputs
        for trial in trials:
            sched.on_trial_add(None, trial)
        report = sched.on_trial_result
        return [[report(None, trial, result) == "STOP" for trial, result in rnd]
                for rnd in rounds]

    decisions = staticmethod(_flat)

    @staticmethod
    def rungs(sched):
        bracket = sched._brackets[0]
        cut = [bracket.cutoff(recorded) for _, recorded in bracket._rungs]
        return ([None if c is None else float(c) for c in cut],
                [len(recorded) for _, recorded in bracket._rungs])


class Optuna:
    """Optuna's SuccessiveHalvingPruner on the same generator; its own decisions.

    Its rule differs from Ray's ASHA (promote the top ``len // eta`` of the
    rung values including the trial's own, no STOP at ``max_t``), so it
    plays its own closed loop from the same seeds. A trial pruned is told
    PRUNED, a trial that reaches step 100 is told COMPLETE (and counts as a
    STOP there, as in ASHA).
    """

    @staticmethod
    def new():
        optuna = pytest.importorskip("optuna")
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        return optuna.create_study(
            direction="maximize",
            sampler=optuna.samplers.RandomSampler(seed=0),
            pruner=optuna.pruners.SuccessiveHalvingPruner(min_resource=1,
                                                          reduction_factor=REDUCTION_FACTOR),
        )

    @staticmethod
    def prepare(stream: Stream):
        return stream.n, [(r.t, list(zip(r.ids.tolist(), r.values.tolist())))
                          for r in stream.rounds]

    @staticmethod
    def sweep(study, inputs):
        from optuna.trial import TrialState

        n, rounds = inputs
        trials = [study.ask() for _ in range(n)]
        tell = study.tell
        out = []
        for t, pairs in rounds:
            stops = []
            for i, v in pairs:
                trial = trials[i]
                trial.report(v, t)
                if trial.should_prune():
                    tell(trial, state=TrialState.PRUNED)
                    stops.append(True)
                elif t >= MAX_T:
                    tell(trial, v)
                    stops.append(True)
                else:
                    stops.append(False)
            out.append(stops)
        return out

    decisions = staticmethod(_flat)

    @classmethod
    def play(cls, n: int) -> Stream:
        """Optuna's own closed loop: the stream it produces."""
        from optuna.trial import TrialState

        study = cls.new()
        trials = [study.ask() for _ in range(n)]

        def judge(ids, t, values):
            stops = []
            for i, v in zip(ids.tolist(), values.tolist()):
                trial = trials[i]
                trial.report(v, t)
                if trial.should_prune():
                    study.tell(trial, state=TrialState.PRUNED)
                    stops.append(True)
                elif t >= MAX_T:
                    study.tell(trial, v)
                    stops.append(True)
                else:
                    stops.append(False)
            return stops

        return play(n, judge)


IMPLS: dict[str, Any] = {"batch": Batch, "scalar": Scalar, "reference": Reference,
                         "ray": Ray, "optuna": Optuna}
# "<impl>-reports": the same replay with the trials added in the untimed setup,
# so that only the on_results / on_trial_result calls are timed.
REPORTS_ONLY = ("batch-reports", "scalar-reports")


# ------------------------------------------------------- streams and agreement

_streams: dict[tuple[str, int], Stream] = {}
_outcomes: dict[tuple[str, int], tuple] = {}


def _stream(n: int, kind: str = "asha") -> Stream:
    """The recorded stream: ASHA's (played by the batch path) or Optuna's own."""
    key = (kind, n)
    if key not in _streams:
        if kind == "optuna":
            _streams[key] = Optuna.play(n)
        else:
            sched = _fastasha()
            sched.add_trials(np.arange(n))
            _streams[key] = play(
                n, lambda ids, t, values: sched.on_results(ids, np.full(ids.size, float(t)),
                                                           values))
    return _streams[key]


def _outcome(name: str, n: int) -> tuple:
    """One untimed replay of the ASHA stream: (decisions, cut-offs, rung counts)."""
    key = (name, n)
    if key not in _outcomes:
        impl = IMPLS[name]
        sched = impl.new()
        out = impl.sweep(sched, impl.prepare(_stream(n)))
        cutoffs, counts = impl.rungs(sched)
        _outcomes[key] = (impl.decisions(out), cutoffs, counts)
    return _outcomes[key]


def _assert_same(name: str, got: tuple, want: tuple, what: str) -> None:
    decisions, cutoffs, counts = got
    want_decisions, want_cutoffs, want_counts = want
    assert decisions.size == want_decisions.size, (
        f"{name}: {decisions.size} reports vs {want_decisions.size} of {what}")
    diff = np.flatnonzero(decisions != want_decisions)
    assert diff.size == 0, (
        f"{name}: {diff.size} decisions differ from {what}, first at report {diff[0]}")
    assert counts == want_counts, f"{name}: rung counts {counts} vs {want_counts} of {what}"
    assert cutoffs == want_cutoffs, f"{name}: cut-offs {cutoffs} vs {want_cutoffs} of {what}"


def _check(name: str, n: int) -> None:
    """Assert that ``name`` decides the ASHA stream of size ``n`` as recorded.

    The stream was played by the batch path; that is checked against an
    independent implementation (the reference up to ``REFERENCE_MAX_N``
    trials, the scalar path above) and its final cut-offs against
    ``np.quantile`` of the values recorded in each rung.
    """
    stream = _stream(n)
    recorded = [stream.rung_values(m) for m in MILESTONES]
    want_cutoffs = [float(np.quantile(v, 1 - 1 / REDUCTION_FACTOR)) if v.size else None
                    for v in recorded]
    want = (stream.decisions, want_cutoffs, [v.size for v in recorded])
    oracle = "reference" if n <= REFERENCE_MAX_N else "scalar"
    _assert_same(oracle, _outcome(oracle, n), want, f"the stream played by batch (n={n})")
    if name != oracle:
        _assert_same(name, _outcome(name, n), want, f"the stream played by batch (n={n})")


# ------------------------------------------------------------------ the sweep

SIZES = (1_000, 10_000, 100_000, 1_000_000)
SWEEP_CASES = (
    [(impl, n) for impl in ("batch", "batch-reports", "scalar", "scalar-reports") for n in SIZES]
    + [("reference", n) for n in SIZES if n <= REFERENCE_MAX_N]
    + [("ray", 1_000), ("ray", 10_000), ("optuna", 1_000), ("optuna", 10_000)]
)
SLOW = ("reference", "ray", "optuna")


def _rounds(impl: str, n: int) -> tuple[int, int]:
    """(rounds, warm-up rounds): few at big n, a single round for slow ones at 10k."""
    if impl in SLOW:
        return (3, 1) if n <= 1_000 else (1, 0)
    return {1_000: (50, 5), 10_000: (20, 2), 100_000: (10, 1)}.get(n, (3, 1))


@pytest.mark.benchmark(group=SWEEP_GROUP)
@pytest.mark.parametrize("impl,n", SWEEP_CASES, ids=[f"{i}-{n}" for i, n in SWEEP_CASES])
def test_sweep(benchmark, throughput, impl, n):
    """Replay the whole stream of ``n`` trials into a fresh scheduler."""
    name = impl.removesuffix("-reports")
    cls = IMPLS[name]
    cls.new()                                  # skips when ray / optuna is not installed
    if name == "optuna":
        stream = _stream(n, "optuna")
        asha = _stream(n)
        # Not the same rule, but it must prune about as hard for ns/report to compare.
        assert 0.75 < stream.n_reports / asha.n_reports < 1.33, (
            f"optuna made {stream.n_reports} reports vs {asha.n_reports} of ASHA")
    else:
        _check(name, n)
        stream = _stream(n)
    inputs = cls.prepare(stream)

    if impl in REPORTS_ONLY:
        def setup():
            sched = cls.new()
            cls.add(sched, inputs)
            return (sched, inputs), {}
        target = cls.reports
    else:
        def setup():
            return (cls.new(), inputs), {}
        target = cls.sweep
    rounds, warmup = _rounds(impl, n)
    out = benchmark.pedantic(target, setup=setup, rounds=rounds, warmup_rounds=warmup)
    # The timed replays decide as recorded, too.
    assert np.array_equal(cls.decisions(out), stream.decisions)
    throughput(benchmark, impl, n, stream.n_reports)


# ------------------------------------------------------- single scalar calls

PREFILLED = 100_000     # values already in the bottom rung ("steady state")
BLOCK = 1_000           # calls per timed round in the "-x1000" cases
BLOCK_ROUNDS = 90       # (+ 10 warm-up rounds): uses up the 100,000 fresh trials


def _noop(trial_id, result):
    return None


def _calls(report, pairs):
    for trial_id, result in pairs:
        report(trial_id, result)


@pytest.fixture(scope="module")
def steady():
    """A scheduler whose bottom rung holds 100,000 values; 100,000 more trials added.

    The first trial reported step 1 and continued; the other 100,000 trials
    are fresh, each with a step-1 result waiting, in the order they were added.
    """
    sched = _fastasha()
    names = _names(2 * PREFILLED)
    values = np.random.default_rng([SEED, 1]).standard_normal(2 * PREFILLED).tolist()
    for name in names:
        sched.on_trial_add(name)
    values[0] = 10.0                               # the best: it continues
    for name, v in zip(names[:PREFILLED], values):
        sched.on_trial_result(name, {TIME_ATTR: 1, METRIC: v})
    fresh = [(name, {TIME_ATTR: 1, METRIC: v})
             for name, v in zip(names[PREFILLED:], values[PREFILLED:])]
    return sched, names[0], fresh


@pytest.mark.benchmark(group=CALL_GROUP)
@pytest.mark.parametrize("case", ["continue", "continue-x1000", "milestone-x1000",
                                  "noop-x1000"])
def test_scalar_call(benchmark, per_call, steady, case):
    """One on_trial_result call: between milestones, and recording in a rung.

    ``continue``: a trial past rung 1 reports step 2 (it scans the rungs and
    records nothing), in pytest-benchmark's calibrated loop. The ``-x1000``
    cases time a Python loop of 1,000 calls per round (the summary table
    divides by 1,000): ``continue`` again; ``milestone``, 1,000 fresh trials
    report step 1 and are recorded in the bottom rung (100,000 values and
    growing; about 3 in 4 get STOP); ``noop``, the same loop around a
    do-nothing function, i.e. the loop's own cost.
    """
    sched, survivor, fresh = steady
    report = sched.on_trial_result
    between = {TIME_ATTR: 2, METRIC: 0.0}
    assert report(survivor, between) == "CONTINUE"
    if case == "continue":
        benchmark(report, survivor, between)
        per_call(benchmark, case)
        return
    if case == "milestone-x1000":
        blocks = iter(range(0, len(fresh), BLOCK))
        used = [0]

        def setup():
            start = next(blocks)
            used[0] += BLOCK
            return (report, fresh[start:start + BLOCK]), {}

        before = sched.rung_table()[0][-1].n_recorded
        benchmark.pedantic(_calls, setup=setup, rounds=BLOCK_ROUNDS, warmup_rounds=10)
        assert sched.rung_table()[0][-1].n_recorded == before + used[0]   # all recorded
    else:
        target = _noop if case == "noop-x1000" else report
        benchmark.pedantic(_calls, args=(target, [(survivor, between)] * BLOCK),
                           rounds=BLOCK_ROUNDS, warmup_rounds=10)
    per_call(benchmark, case, calls=BLOCK)
