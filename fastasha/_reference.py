"""Plain-Python ASHA rung bookkeeping: the executable specification of the core.

This module restates the decision rules of ``fastasha._rungs`` in the most
direct Python there is: rungs are dicts of ``{trial: score}`` and the cut-off
sorts the rung every time it is read, so each rule can be checked by eye.
Tests compare the compiled core with it on random streams, and the
benchmarks use it as the baseline. It is never imported by the package
itself and is never a fallback for a missing extension.

All scores are "bigger is better" (a ``mode="min"`` metric is negated before
it gets here), exactly as in the core.
"""

from __future__ import annotations

import math
from typing import Hashable

ACTIVE, STOPPED, DONE = 0, 1, 2


def quantile_q(reduction_factor: float) -> float:
    """The cut-off quantile ``((1 - 1/rf) * 100) / 100``, as Ray and numpy compute it."""
    return ((1 - 1 / reduction_factor) * 100) / 100


def linear_quantile(values: list[float], q: float) -> float | None:
    """numpy's default ("linear") ``nanquantile`` of ``values``, bit for bit.

    NaN values are dropped; ``None`` for no values at all, NaN when every
    value is NaN.
    """
    if not values:
        return None
    x = sorted(v for v in values if v == v)
    n = len(x)
    if n == 0:
        return math.nan
    h = (n - 1) * q
    if h >= n - 1:
        a = b = x[n - 1]
        gamma = h + 1.0
    else:
        i = math.floor(h)
        a, b = x[i], x[i + 1]
        gamma = h - i
    diff = b - a
    if gamma >= 0.5:
        return b - diff * (1.0 - gamma)
    return a + diff * gamma


def bracket_milestones(grace_period: float, max_t: float, reduction_factor: float,
                       s: int) -> list[float]:
    """Milestones of bracket ``s``, highest first, with Ray Tune's float64 arithmetic."""
    import numpy as np

    n_rungs = int(np.log(max_t / grace_period) / np.log(reduction_factor) - s + 1)
    return [grace_period * reduction_factor ** (k + s) for k in reversed(range(n_rungs))]


class ReferenceASHA:
    """The rung rules of ASHA on plain dicts; see ``tests/data`` for the fixtures.

    Parameters
    ----------
    grace_period, max_t, reduction_factor, brackets, stop_last_trials
        As in :class:`fastasha.schedulers.AsyncHyperBandScheduler`.
    """

    def __init__(self, grace_period: float = 1, max_t: float = 100,
                 reduction_factor: float = 4, brackets: int = 1,
                 stop_last_trials: bool = True) -> None:
        self.max_t = max_t
        self.q = quantile_q(reduction_factor)
        self.stop_last_trials = stop_last_trials
        self.rungs: list[list[tuple[float, dict]]] = [
            [(m, {}) for m in bracket_milestones(grace_period, max_t, reduction_factor, s)]
            for s in range(brackets)
        ]
        self.bracket: dict[Hashable, int] = {}
        self.status: dict[Hashable, int] = {}

    def add(self, trial: Hashable, bracket: int) -> None:
        """Register ``trial`` in ``bracket``."""
        self.bracket[trial] = bracket
        self.status[trial] = ACTIVE

    def _scan(self, trial: Hashable, t: float, score: float) -> bool:
        for milestone, recorded in self.rungs[self.bracket[trial]]:
            if t >= milestone and trial in recorded and not self.stop_last_trials:
                return False
            if t < milestone or trial in recorded:
                continue
            cutoff = linear_quantile(list(recorded.values()), self.q)
            recorded[trial] = score
            return cutoff is not None and score < cutoff
        return False

    def report(self, trial: Hashable, t: float, score: float) -> bool:
        """Judge one result; True means STOP."""
        if self.status[trial] != ACTIVE:
            return True
        if self.stop_last_trials and t >= self.max_t:
            self.status[trial] = STOPPED
            return True
        stop = self._scan(trial, t, score)
        if stop:
            self.status[trial] = STOPPED
        return stop

    def complete(self, trial: Hashable, t: float, score: float) -> None:
        """Final result of a trial: the rung scan without the max_t shortcut."""
        if self.status[trial] == DONE:
            return
        self._scan(trial, t, score)
        self.status[trial] = DONE

    def decision_point(self, trial: Hashable) -> float:
        """Smallest ``t`` whose result can change anything for ``trial``."""
        if self.status[trial] != ACTIVE:
            return math.inf
        rungs = self.rungs[self.bracket[trial]]
        if self.stop_last_trials:
            open_milestones = [m for m, rec in rungs if trial not in rec]
            return min(open_milestones + [self.max_t])
        point = math.inf
        for milestone, recorded in rungs:
            if trial in recorded:
                break
            point = milestone
        return point

    def cutoff(self, bracket: int, k: int) -> float | None:
        """Cut-off of rung ``k`` (highest first) of ``bracket``."""
        return linear_quantile(list(self.rungs[bracket][k][1].values()), self.q)

    def values(self, bracket: int, k: int) -> list[float]:
        """Sorted non-NaN values of a rung, then one NaN per recorded NaN."""
        vals = list(self.rungs[bracket][k][1].values())
        finite = sorted(v for v in vals if v == v)
        return finite + [math.nan] * (len(vals) - len(finite))
