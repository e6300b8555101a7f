"""AsyncHyperBandScheduler: Asynchronous Successive Halving (ASHA) on a compiled core."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Hashable

import numpy as np

from .. import _rungs
from .._validation import (
    check_bool,
    check_int,
    check_positive,
    check_real,
    metric_value,
    time_value,
)
from ._base import CONTINUE, STOP, Decision, _JudgingScheduler
from ._index import TrialIndex, as_int_ids

STATE_FORMAT = "fastasha.AsyncHyperBandScheduler/1"


@dataclass(frozen=True)
class RungInfo:
    """One rung of a bracket, as :meth:`AsyncHyperBandScheduler.rung_table` shows it.

    Attributes
    ----------
    milestone : float
        Value of ``time_attr`` at which trials are judged in this rung.
    cutoff : float or None
        In the metric's own units: for ``mode="min"`` the largest loss that
        continues, for ``mode="max"`` the smallest score that continues.
        ``None`` for an empty rung, NaN when the rung holds only NaN.
    n_recorded : int
        Number of values recorded in the rung, NaN included.
    """

    milestone: float
    cutoff: float | None
    n_recorded: int


def _milestones(grace_period: float, max_t: float, reduction_factor: float,
                s: int) -> list[float]:
    # Ray Tune's arithmetic, kept as is: float64 log ratio truncated by int(),
    # and milestones as raw products (ints for int arguments).
    n_rungs = int(np.log(max_t / grace_period) / np.log(reduction_factor) - s + 1)
    return [grace_period * reduction_factor ** (k + s) for k in reversed(range(n_rungs))]


def _encode_float(x: float) -> float | str:
    return x if math.isfinite(x) else repr(float(x))   # 'nan', 'inf', '-inf'


def _decode_float(x: float | str) -> float:
    return float(x)


class AsyncHyperBandScheduler(_JudgingScheduler):
    """Asynchronous Successive Halving (ASHA), with Ray Tune's arguments and decisions.

    Each trial is put in a bracket ``s``; bracket ``s`` has rungs at the
    milestones ``r * eta**(k + s)`` (``r = grace_period``, ``eta =
    reduction_factor``) below ``R = max_t``. When a trial's ``time_attr``
    first reaches a rung, its score is compared with the rung's cut-off, the
    ``1 - 1/eta`` quantile of the scores recorded there so far, and the trial
    is stopped if it is strictly worse:

    ``STOP  iff  score < quantile(rung, 1 - 1/eta)``

    so roughly the best ``1/eta`` of the trials reaching each rung go on.
    Decisions equal those of Ray Tune 2.53's ``AsyncHyperBandScheduler``
    result for result, including NaN, ties and float corner cases.

    Parameters
    ----------
    time_attr : str, default="training_iteration"
        Result key that measures training progress; must not decrease
        within a trial.
    metric : str or None, default=None
        Result key to judge trials by. May be left out here and given to
        ``TuneConfig`` instead.
    mode : {"min", "max"} or None, default=None
        Whether a smaller or a larger metric is better.
    max_t : float, default=100
        Maximum ``time_attr`` per trial (``R``).
    grace_period : float, default=1
        Minimum ``time_attr`` before a trial can be stopped (``r``).
    reduction_factor : float, default=4
        ``eta``: about ``1/eta`` of the trials reaching a rung continue.
    brackets : int, default=1
        Number of brackets; bracket ``s`` starts judging at ``r * eta**s``.
    stop_last_trials : bool, default=True
        Stop trials when they reach ``max_t``.
    seed : int, numpy.random.Generator or None, default=None
        Seed of the bracket draw. The global numpy RNG is never used.

    Raises
    ------
    ValueError
        For ``max_t <= 0``, ``grace_period <= 0``, ``grace_period > max_t``,
        ``reduction_factor <= 1``, ``brackets < 1`` or an unknown ``mode``.

    Notes
    -----
    The rung bookkeeping lives in the compiled :mod:`fastasha._rungs`:
    O(log n) to record a score, O(1) to read a cut-off. Besides the
    per-result API there is a batch API over integer trial ids
    (:meth:`add_trials`, :meth:`on_results`) for replays and simulations.

    References
    ----------
    L. Li, K. Jamieson, A. Rostamizadeh, E. Gonina, M. Hardt, B. Recht,
    A. Talwalkar. "A System for Massively Parallel Hyperparameter Tuning."
    MLSys 2020. https://arxiv.org/abs/1810.05934

    Examples
    --------
    >>> from fastasha.schedulers import AsyncHyperBandScheduler
    >>> sched = AsyncHyperBandScheduler(metric="loss", mode="min", grace_period=1,
    ...                                 max_t=16, reduction_factor=2)
    >>> for trial_id in "abc":
    ...     _ = sched.on_trial_add(trial_id)
    >>> sched.on_trial_result("a", {"training_iteration": 1, "loss": 0.5})
    <Decision.CONTINUE: 'CONTINUE'>
    >>> sched.on_trial_result("b", {"training_iteration": 1, "loss": 0.9})
    <Decision.STOP: 'STOP'>
    """

    def __init__(
        self,
        time_attr: str = "training_iteration",
        metric: str | None = None,
        mode: str | None = None,
        max_t: float = 100,
        grace_period: float = 1,
        reduction_factor: float = 4,
        brackets: int = 1,
        stop_last_trials: bool = True,
        seed: int | np.random.Generator | None = None,
    ) -> None:
        super().__init__(time_attr, metric, mode)
        check_positive("max_t", max_t, "; it is the largest time_attr a trial may reach")
        if math.isinf(max_t):
            raise ValueError(
                f"max_t must be finite, got {max_t!r}: it is the largest time_attr a trial "
                "may reach and sets the rungs; pass the length of your longest trial"
            )
        check_positive("grace_period", grace_period,
                       "; it is the smallest time_attr at which a trial can be stopped")
        if grace_period > max_t:
            raise ValueError(
                f"grace_period must not exceed max_t, got grace_period={grace_period!r} "
                f"and max_t={max_t!r}; lower grace_period or raise max_t"
            )
        if not check_real("reduction_factor", reduction_factor) > 1:
            raise ValueError(
                f"reduction_factor must be greater than 1, got {reduction_factor!r}; "
                "3 or 4 are the usual choices"
            )
        check_int("brackets", brackets, minimum=1, hint="; 1 is the usual choice")
        check_bool("stop_last_trials", stop_last_trials)
        self._max_t = max_t
        self._grace_period = grace_period
        self._reduction_factor = reduction_factor
        self._n_brackets = int(brackets)
        self._stop_last_trials = bool(stop_last_trials)
        self._seed = int(seed) if isinstance(seed, (int, np.integer)) else None
        self._rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)

        self._milestones = [
            _milestones(grace_period, max_t, reduction_factor, s) for s in range(self._n_brackets)
        ]
        sizes = np.array([len(m) for m in self._milestones], dtype=np.float64)
        weights = np.e ** (sizes - sizes.max())
        self._bracket_probs = weights / weights.sum()
        self._q = ((1 - 1 / reduction_factor) * 100) / 100
        self._core = _rungs.RungTable(self._milestones, float(max_t), self._q,
                                      self._stop_last_trials)
        self._report = self._core.report
        self._index = TrialIndex()

    # ------------------------------------------------------------ properties

    @property
    def max_t(self) -> float:
        return self._max_t

    @property
    def grace_period(self) -> float:
        return self._grace_period

    @property
    def reduction_factor(self) -> float:
        return self._reduction_factor

    @property
    def brackets(self) -> int:
        return self._n_brackets

    @property
    def stop_last_trials(self) -> bool:
        return self._stop_last_trials

    @property
    def bracket_milestones(self) -> list[list[float]]:
        """Milestones of each bracket, highest first."""
        return [list(m) for m in self._milestones]

    @property
    def bracket_probabilities(self) -> np.ndarray:
        """Probability of each bracket in the random draw of :meth:`on_trial_add`."""
        return self._bracket_probs.copy()

    @property
    def n_trials(self) -> int:
        """Number of trials added so far."""
        return self._core.n_trials

    @property
    def seed(self) -> int | None:
        """The integer seed of the bracket draw, if one was given."""
        return self._seed

    def set_seed(self, seed: int | np.random.Generator | None) -> None:
        """Reseed the bracket draw (the Tuner seeds it from ``TuneConfig.seed``)."""
        self._seed = int(seed) if isinstance(seed, (int, np.integer)) else None
        self._rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)

    # ---------------------------------------------------------------- trials

    def _check_bracket(self, bracket: Any) -> int:
        if isinstance(bracket, bool) or not isinstance(bracket, (int, np.integer)):
            raise TypeError(f"bracket must be an integer, got {bracket!r}")
        if not 0 <= bracket < self._n_brackets:
            raise ValueError(
                f"bracket must be in [0, {self._n_brackets - 1}] for brackets="
                f"{self._n_brackets}, got {bracket!r}"
            )
        return int(bracket)

    def on_trial_add(self, trial_id: Hashable, bracket: int | None = None) -> int:
        """Register ``trial_id`` (any hashable) and return its bracket index.

        The bracket is drawn with Ray's weights (``exp(K_s - max K)`` for a
        bracket of ``K_s`` rungs) from the scheduler's own generator unless
        given.
        """
        if self._index.contains(trial_id):
            raise ValueError(f"trial {trial_id!r} was already added; trial ids must be unique")
        if bracket is None:
            bracket = self._draw_brackets(None)
        else:
            bracket = self._check_bracket(bracket)
        idx = self._core.add_trial(bracket)
        self._index.add(trial_id, idx)
        return bracket

    def _draw_brackets(self, n: int | None) -> Any:
        if self._n_brackets == 1:
            return 0 if n is None else np.zeros(n, dtype=np.int32)
        drawn = self._rng.choice(self._n_brackets, size=n, p=self._bracket_probs)
        return int(drawn) if n is None else drawn.astype(np.int32)

    def add_trials(self, trial_ids: Any, brackets: Any = None) -> np.ndarray:
        """Register many integer trial ids at once; returns their brackets (int32).

        Parameters
        ----------
        trial_ids : array-like of int
            New, unique integer ids.
        brackets : array-like of int, optional
            Bracket of each trial; drawn at random when omitted.
        """
        ids = as_int_ids(trial_ids)
        if brackets is None:
            chosen = self._draw_brackets(ids.size)
        else:
            chosen = np.asarray(brackets)
            if chosen.shape != ids.shape:
                raise ValueError(
                    f"brackets must have one entry per trial id, got {chosen.shape} "
                    f"for {ids.shape} trial_ids"
                )
            if chosen.size and chosen.dtype.kind not in "iu":
                raise TypeError(f"brackets must be integers, got dtype {chosen.dtype}")
            if chosen.size and (chosen.min() < 0 or chosen.max() >= self._n_brackets):
                raise ValueError(
                    f"brackets must be in [0, {self._n_brackets - 1}], got values from "
                    f"{chosen.min()} to {chosen.max()}"
                )
            chosen = np.ascontiguousarray(chosen, dtype=np.int32)
        self._index.check_new(ids)
        first = self._core.add_trials(chosen)
        self._index.add_many(ids, first)
        return chosen.copy()

    def bracket_of(self, trial_id: Hashable) -> int:
        """Bracket index of ``trial_id``."""
        return self._core.bracket_of(self._index.lookup(trial_id))

    # --------------------------------------------------------------- results

    def _require_mode(self) -> float:
        if self._sign is None:
            raise ValueError(
                f"{type(self).__name__} has metric={self._metric!r} but no mode; pass "
                "mode='min' or mode='max' to the scheduler or to TuneConfig"
            )
        return self._sign

    def on_trial_result(self, trial_id: Hashable, result: dict) -> Decision:
        """Judge one result: :data:`STOP` or :data:`CONTINUE`.

        Results without ``time_attr`` or the metric continue and change
        nothing. A result of a trial that was already stopped or completed
        changes nothing and is answered with :data:`STOP` again.

        Raises
        ------
        ValueError
            If ``trial_id`` was never added, or no ``mode`` is set.
        TypeError
            If the metric or ``time_attr`` is not a number.
        """
        time_attr = self._time_attr
        metric = self._metric
        if time_attr not in result or metric not in result:
            return CONTINUE
        idx = self._index.ids.get(trial_id)
        if idx is None:
            idx = self._index.lookup(trial_id)
        t = result[time_attr]
        if type(t) is not int and (type(t) is not float or t != t):
            t = time_value(time_attr, t, trial_id)
        value = result[metric]
        if type(value) is not float and type(value) is not int:
            value = metric_value(metric, value, trial_id)
        sign = self._sign
        if sign is None:
            sign = self._require_mode()
        if self._report(idx, t, sign * value):
            return STOP
        return CONTINUE

    def on_trial_complete(self, trial_id: Hashable, result: dict) -> None:
        """A trial's final result: recorded like a result (no ``max_t`` shortcut).

        As in Ray Tune, the rung scan runs also for a trial that was stopped
        (the Tuner passes the stopping result again), and its outcome is
        discarded; afterwards the trial is retired.
        """
        if self._time_attr not in result or self._metric not in result:
            return
        idx = self._index.lookup(trial_id)
        t = time_value(self._time_attr, result[self._time_attr], trial_id)
        value = metric_value(self._metric, result[self._metric], trial_id)
        self._core.complete(idx, t, self._require_mode() * value)

    def on_trial_remove(self, trial_id: Hashable) -> None:
        """Retire a trial without recording anything (its values stay in the rungs)."""
        self._core.set_status(self._index.lookup(trial_id), _rungs.STATUS_DONE)

    def on_results(self, trial_ids: Any, times: Any, values: Any) -> np.ndarray:
        """Judge a batch of results in order; returns a bool array, True = STOP.

        Gives the same decisions as calling :meth:`on_trial_result` on each
        result in turn. Results of stopped trials are ignored and reported
        as STOP again. Every id is checked before any state changes.

        Parameters
        ----------
        trial_ids : array-like of int
            Ids registered with :meth:`add_trials` or :meth:`on_trial_add`.
        times : array-like of float
            ``time_attr`` of each result (no NaN).
        values : array-like of float
            The metric of each result, in the metric's own units.
        """
        ids = as_int_ids(trial_ids)
        try:
            t, v = np.asarray(times), np.asarray(values)
            # numpy would turn None into NaN and "0.5" into 0.5; the scalar
            # path (and Ray) raise TypeError for those, and so does this one
            if t.dtype.kind not in "biuf" or v.dtype.kind not in "biuf":
                raise TypeError(f"got arrays of dtype {t.dtype} and {v.dtype}")
            t = np.ascontiguousarray(t, dtype=np.float64)
            v = np.ascontiguousarray(v, dtype=np.float64)
        except (TypeError, ValueError) as err:
            raise TypeError(f"times and values must be numeric arrays: {err}") from err
        if not (ids.shape == t.shape == v.shape):
            raise ValueError(
                f"trial_ids, times and values must have the same length, got "
                f"{ids.size}, {t.size} and {v.size}"
            )
        if t.size and np.isnan(t).any():
            raise ValueError(
                f"times contain NaN at position {int(np.flatnonzero(np.isnan(t))[0])}; "
                f"every result needs a numeric {self._time_attr!r}"
            )
        sign = self._require_mode()
        idx = self._index.lookup_many(ids)
        scores = v if sign > 0 else np.negative(v)
        out = np.empty(ids.size, dtype=np.uint8)
        self._core.report_batch(idx, t, scores, out)
        return out.view(bool)

    def next_decision_point(self, trial_id: Hashable) -> float:
        """Smallest ``time_attr`` at which this trial's next result can be judged.

        It is the trial's next milestone, or ``max_t`` when
        ``stop_last_trials``; after a report that jumped over several
        milestones with ``stop_last_trials=True``, it is a milestone already
        passed, so the very next report is a decision point. ``inf`` for a
        trial that can no longer be stopped. Results below it get
        ``CONTINUE`` and change nothing.
        """
        return self._core.decision_point(self._index.lookup(trial_id))

    # -------------------------------------------------------------- read-outs

    def _to_metric_units(self, x: float) -> float:
        return -x if self._sign == -1.0 else x

    def rung_table(self) -> list[list[RungInfo]]:
        """For each bracket, its rungs (highest milestone first) as :class:`RungInfo`."""
        table = []
        for b, milestones in enumerate(self._milestones):
            rows = []
            for k, milestone in enumerate(milestones):
                cut = self._core.cutoff(b, k)
                rows.append(RungInfo(
                    milestone=milestone,
                    cutoff=None if cut is None else self._to_metric_units(cut),
                    n_recorded=self._core.n_recorded(b, k),
                ))
            table.append(rows)
        return table

    def recorded_values(self, bracket: int, rung: int) -> np.ndarray:
        """Values recorded in a rung, in the metric's units: sorted, NaN last."""
        bracket = self._check_bracket(bracket)
        values = self._core.values(bracket, rung)
        if self._sign == -1.0:
            finite = values[~np.isnan(values)]
            values = np.concatenate([np.sort(-finite), values[np.isnan(values)]])
        return values

    def debug_string(self) -> str:
        parts = []
        for b, rows in enumerate(self.rung_table()):
            rungs = ", ".join(f"{r.milestone}: {r.cutoff} ({r.n_recorded})" for r in rows)
            parts.append(f"Bracket {b}: {{{rungs}}}")
        return "Using AsyncHyperBand: " + " | ".join(parts)

    # ------------------------------------------------------------------ state

    def _params(self) -> dict:
        return {
            "time_attr": self._time_attr,
            "max_t": self._max_t,
            "grace_period": self._grace_period,
            "reduction_factor": self._reduction_factor,
            "brackets": self._n_brackets,
            "stop_last_trials": self._stop_last_trials,
        }

    def state_dict(self) -> dict:
        """A JSON-able snapshot: settings, RNG, trials and every rung's values.

        A scheduler built with the same arguments and given this snapshot
        with :meth:`load_state_dict` makes the same decisions as this one.
        Trial ids must be ``str`` or ``int`` for the snapshot to be JSON-able.
        """
        n = self._core.n_trials
        ids = self._index.id_list(n)
        for trial_id in ids:
            if not isinstance(trial_id, (str, int)) or isinstance(trial_id, bool):
                raise TypeError(
                    f"state_dict needs str or int trial ids to stay JSON-able, got "
                    f"{trial_id!r} of type {type(trial_id).__name__}"
                )
        brackets, status = self._core.trial_arrays()
        return {
            "format": STATE_FORMAT,
            "params": self._params(),
            "metric": self._metric,
            "mode": self._mode,
            "rng": self._rng.bit_generator.state,
            "trials": {
                "ids": ids,
                "bracket": brackets.tolist(),
                "status": status.tolist(),
                "rungs": [self._core.trial_bits(i) for i in range(n)],
            },
            "rungs": [
                [[_encode_float(x) for x in self._core.values(b, k).tolist()]
                 for k in range(len(m))]
                for b, m in enumerate(self._milestones)
            ],
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore a snapshot from :meth:`state_dict` into this fresh scheduler.

        Raises
        ------
        ValueError
            If the snapshot is not one of this class, was made with other
            constructor arguments, or this scheduler already has trials.
        """
        self._load_header(state, STATE_FORMAT)
        trials = state["trials"]
        self._rng.bit_generator.state = state["rng"]
        first = self._core.add_trials(np.asarray(trials["bracket"], dtype=np.int32))
        for i, (trial_id, status, mask) in enumerate(
            zip(trials["ids"], trials["status"], trials["rungs"])
        ):
            self._index.add(trial_id, first + i)
            self._core.set_status(first + i, status)
            if mask:
                self._core.set_trial_bits(first + i, mask)
        for b, rungs in enumerate(state["rungs"]):
            for k, values in enumerate(rungs):
                if values:
                    self._core.load_rung(b, k, [_decode_float(x) for x in values])
