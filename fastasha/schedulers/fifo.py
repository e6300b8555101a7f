"""FIFOScheduler: runs every trial to its end."""

from __future__ import annotations

import math
from typing import Any, Hashable

import numpy as np

from ._base import TrialScheduler


class FIFOScheduler(TrialScheduler):
    """Never stops a trial early: trials run in the order they were added.

    Its :meth:`next_decision_point` is ``inf``, so a Tuner with this
    scheduler sends results only at stop criteria and periodic flushes.

    Examples
    --------
    >>> from fastasha.schedulers import FIFOScheduler
    >>> FIFOScheduler().on_trial_result("a", {"training_iteration": 1, "loss": 0.3})
    <Decision.CONTINUE: 'CONTINUE'>
    """

    #: It keeps no state, so restoring an experiment needs no replay of its calls.
    stateless = True

    def next_decision_point(self, trial_id: Hashable) -> float:
        """Results never need a decision: ``inf``."""
        return math.inf

    def on_results(self, trial_ids: Any, times: Any, values: Any) -> np.ndarray:
        """Batch form of :meth:`on_trial_result`: all False (no STOP)."""
        n = len(trial_ids)
        if len(times) != n or len(values) != n:
            raise ValueError(
                f"trial_ids, times and values must have the same length, got "
                f"{n}, {len(times)} and {len(values)}"
            )
        return np.zeros(n, dtype=bool)
