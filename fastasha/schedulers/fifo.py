"""FIFOScheduler: runs every trial to its end."""

from __future__ import annotations

import math
from typing import Any, Hashable

import numpy as np

from ._base import TrialScheduler, judges_every_result

# the hooks a subclass may override to judge trials (or keep state about them)
_HOOKS = ("on_trial_add", "on_trial_result", "on_trial_complete", "on_trial_error",
          "on_trial_remove")


class FIFOScheduler(TrialScheduler):
    """Never stops a trial early: trials run in the order they were added.

    Its :meth:`next_decision_point` is ``inf``, so a Tuner with this
    scheduler sends results only at stop criteria and periodic flushes.

    A subclass that overrides ``on_trial_result`` (as Ray's custom
    schedulers often extend ``FIFOScheduler``) judges every result instead:
    its :meth:`next_decision_point` is ``-inf``. One that overrides any of
    the ``on_trial_*`` hooks is not :attr:`stateless` (unless it says so
    itself), so that ``Tuner.restore`` gives it its calls again.

    Examples
    --------
    >>> from fastasha.schedulers import FIFOScheduler
    >>> FIFOScheduler().on_trial_result("a", {"training_iteration": 1, "loss": 0.3})
    <Decision.CONTINUE: 'CONTINUE'>
    """

    #: It keeps no state, so restoring an experiment needs no replay of its calls.
    stateless = True
    # a subclass that overrides on_trial_result judges results (the controller's rule)
    _judges_results = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        overrides = any(getattr(cls, name) is not getattr(FIFOScheduler, name)
                        for name in _HOOKS)
        if overrides and "stateless" not in cls.__dict__:
            cls.stateless = False       # it may count or remember what it is told
        cls._judges_results = judges_every_result(cls)

    def next_decision_point(self, trial_id: Hashable) -> float:
        """Results never need a decision: ``inf``; ``-inf`` (every result) for a subclass
        that overrides ``on_trial_result``."""
        return -math.inf if self._judges_results else math.inf

    def on_results(self, trial_ids: Any, times: Any, values: Any) -> np.ndarray:
        """Batch form of :meth:`on_trial_result`: all False (no STOP).

        Raises
        ------
        NotImplementedError
            For a subclass that overrides ``on_trial_result``: its results
            need their whole dicts (call it per result).
        """
        if type(self).on_trial_result is not FIFOScheduler.on_trial_result:
            raise NotImplementedError(
                f"{type(self).__name__} overrides on_trial_result, which needs each result "
                "dict: call it per result instead of on_results")
        n = len(trial_ids)
        if len(times) != n or len(values) != n:
            raise ValueError(
                f"trial_ids, times and values must have the same length, got "
                f"{n}, {len(times)} and {len(values)}"
            )
        return np.zeros(n, dtype=bool)
