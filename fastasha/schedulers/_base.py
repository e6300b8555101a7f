"""The scheduler interface: decisions, and the base class custom schedulers extend."""

from __future__ import annotations

import math
from enum import Enum
from typing import Any, Hashable

import numpy as np

from .._validation import check_mode


class Decision(str, Enum):
    """What a scheduler tells a trial after a result.

    Members compare equal to the strings Ray Tune uses (``"CONTINUE"``,
    ``"STOP"``, ``"PAUSE"``), so code that checks ``decision == "STOP"`` keeps
    working.
    """

    CONTINUE = "CONTINUE"
    STOP = "STOP"
    PAUSE = "PAUSE"

    def __str__(self) -> str:
        return self.value


CONTINUE = Decision.CONTINUE
STOP = Decision.STOP
PAUSE = Decision.PAUSE


def judges_every_result(scheduler: Any) -> bool:
    """Whether ``scheduler`` (an instance or a class) overrides ``on_trial_result`` below
    the class that sets its ``next_decision_point`` (a user's subclass of ASHA, say, that
    logs every result).

    Ray calls ``on_trial_result`` with every result; the decision points of the
    class it inherited would keep all results between rungs from it. A
    subclass that sets its own ``next_decision_point`` keeps it.
    """
    mro = (scheduler if isinstance(scheduler, type) else type(scheduler)).__mro__
    points = next((k for k in mro if "next_decision_point" in k.__dict__), None)
    results = next((k for k in mro if "on_trial_result" in k.__dict__), None)
    return points is not None and results is not None and results is not points and \
        issubclass(results, points)


class TrialScheduler:
    """Base class of schedulers: every result of every trial goes through it.

    A scheduler is told of each trial (:meth:`on_trial_add`), of each result
    (:meth:`on_trial_result`, which returns :data:`CONTINUE`, :data:`STOP` or
    :data:`PAUSE`), and of the end of each trial (:meth:`on_trial_complete`,
    :meth:`on_trial_remove`). Subclasses override what they need; the
    defaults never stop anything.

    A ``PAUSE`` ends the trial's objective inside ``report()``, as a
    ``STOP`` does, and the trial becomes ``PAUSED`` (its scheduler is not
    told it completed). When a slot frees up, :meth:`choose_trial_to_run`
    picks the next trial among the ``PENDING`` and ``PAUSED`` ones (by
    default ``PENDING`` trials first, then paused ones in the order they
    were created, as Ray's FIFOScheduler takes them); a paused trial
    restarts its objective with ``tune.get_checkpoint()`` returning its
    latest checkpoint and its
    ``training_iteration`` counting on from that checkpoint, as after a
    failure. One paused without any checkpoint starts from scratch, as in
    Ray. Trials still paused when a sweep is stopped (a time budget,
    ``stop_all``) stay ``PAUSED``; ``Tuner.restore`` resumes them.

    :meth:`next_decision_point` tells the Tuner when a trial's next result
    can be judged, so that reports in between need no round trip. The
    default, ``-inf``, means "every result", which is always correct; a
    scheduler that overrides it promises to return ``CONTINUE`` and change
    nothing for any result whose ``time_attr`` is below the returned value.

    A subclass written for Ray Tune, whose hooks take the controller and the
    trial (``on_trial_result(self, tune_controller, trial, result)``,
    ``on_trial_add(self, tune_controller, trial)``, ...), runs as it is: the
    sweep calls each hook in the form it is written in: Ray's when it
    requires one positional argument more than fastasha's, or when its first
    argument is named ``tune_controller`` (``trial_runner`` before Ray 2.5)
    and it can take Ray's arguments (``result=None``, ``*args``). Its
    ``tune_controller`` offers ``get_trials()`` and ``get_live_trials()``.
    ``choose_trial_to_run(tune_controller)`` always takes Ray's form, and is
    called only where a subclass overrides it. Such a hook may end with this class's (or
    :class:`~fastasha.schedulers.FIFOScheduler`'s), in Ray's form:
    ``return super().on_trial_result(tune_controller, trial, result)``. The
    hooks of the other built-in schedulers take fastasha's form only: call
    them as ``super().on_trial_result(trial.trial_id, result)``.
    """

    CONTINUE = CONTINUE
    STOP = STOP
    PAUSE = PAUSE
    NOOP = "NOOP"

    #: True for a scheduler whose decisions depend on no earlier call; the
    #: Tuner then does not log its calls for a restore to replay.
    stateless = False

    def __init__(self, metric: str | None = None, mode: str | None = None) -> None:
        if metric is not None and not isinstance(metric, str):
            raise TypeError(f"metric must be a string or None, got {metric!r}")
        check_mode(mode)
        self._metric = metric
        self._mode = mode

    @property
    def metric(self) -> str | None:
        """Name of the metric the scheduler judges trials by."""
        return self._metric

    @property
    def mode(self) -> str | None:
        """``"min"`` or ``"max"``: which direction of the metric is better."""
        return self._mode

    def set_search_properties(self, metric: str | None, mode: str | None, **spec: Any) -> bool:
        """Take ``metric`` and ``mode`` from the Tuner unless already set.

        Returns ``False`` (and changes nothing) when the scheduler already
        has a metric or mode of its own and the caller passes one too.
        """
        if (self._metric and metric) or (self._mode and mode):
            return False
        if metric:
            self._metric = metric
        if mode:
            self._mode = mode
        return True

    # The default hooks also take Ray's arguments (``tune_controller, trial[, result]``:
    # one more), so that a hook of Ray's form may end with the base class's, as Ray's
    # custom schedulers do (``return super().on_trial_result(tune_controller, trial,
    # result)``).

    def on_trial_add(self, trial_id: Hashable, bracket: int | None = None) -> int:
        """Register a trial; returns its bracket (always 0 here)."""
        return 0

    def on_trial_result(self, trial_id: Hashable, result: dict, *ray_result: Any) -> Decision:
        """Judge one result; the default continues every trial."""
        return CONTINUE

    def on_trial_complete(self, trial_id: Hashable, result: dict, *ray_result: Any) -> None:
        """A trial ended normally (or after a STOP) with ``result`` as its last result."""

    def on_trial_error(self, trial_id: Hashable, *ray_trial: Any) -> None:
        """A trial failed; by default the same as :meth:`on_trial_remove`."""
        self.on_trial_remove(trial_id, *ray_trial)

    def on_trial_remove(self, trial_id: Hashable, *ray_trial: Any) -> None:
        """A trial was removed without completing."""

    def choose_trial_to_run(self, tune_controller: Any) -> Any:
        """The trial to start next: a ``PENDING`` one first, else a ``PAUSED`` one (Ray's FIFO).

        Ray's form: ``tune_controller.get_trials()`` lists the trials;
        returns one whose status is ``PENDING`` or ``PAUSED``, or ``None``
        to start none now. The sweep calls a subclass's override only; this
        default is what it does without one (in O(1), where this method
        looks at every trial), and is here for an override to fall back on
        with ``super().choose_trial_to_run(tune_controller)``.
        """
        trials = tune_controller.get_trials()
        for status in ("PENDING", "PAUSED"):
            for trial in trials:
                if trial.status == status:
                    return trial
        return None

    def next_decision_point(self, trial_id: Hashable) -> float:
        """Smallest ``time_attr`` at which the next result can be judged."""
        return -math.inf

    def add_trials(self, trial_ids: Any, brackets: Any = None) -> np.ndarray:
        """Register many integer trial ids at once; returns their brackets."""
        ids = np.asarray(trial_ids)
        for trial_id in ids.tolist():
            self.on_trial_add(trial_id)
        return np.zeros(len(ids), dtype=np.int32)

    def rung_table(self) -> list:
        """Rungs of every bracket (none for schedulers without rungs)."""
        return []

    def state_dict(self) -> dict:
        """JSON-able snapshot of the scheduler's state."""
        return {"metric": self._metric, "mode": self._mode}

    def load_state_dict(self, state: dict) -> None:
        """Restore a snapshot made by :meth:`state_dict`."""
        self._metric = state.get("metric", self._metric)
        self._mode = state.get("mode", self._mode)

    def debug_string(self) -> str:
        """One line about the scheduler's state, for logs."""
        return type(self).__name__


# Ray's name for the metric when only a mode is given (ray.tune.result.DEFAULT_METRIC)
DEFAULT_METRIC = "_metric"


class _RayMetricMode:
    """Mixin of the built-in schedulers that compare trials (not public).

    They take the Tuner's ``metric`` and ``mode`` as Ray's do: a mode
    checked, and a mode alone meaning Ray's anonymous metric. It goes before
    the scheduler base class, whose ``set_search_properties`` it extends.
    """

    def set_search_properties(self, metric: str | None, mode: str | None, **spec: Any) -> bool:
        """Take ``metric`` and ``mode`` from the Tuner unless already set (as in Ray)."""
        check_mode(mode)
        accepted = super().set_search_properties(metric, mode, **spec)  # type: ignore[misc]
        if accepted and self._metric is None and self._mode:
            self._metric = DEFAULT_METRIC    # Ray: only a mode given means its anonymous metric
        return accepted


class _JudgingScheduler(_RayMetricMode, TrialScheduler):
    """What the built-in schedulers that compare trials share (not public).

    They check and keep ``time_attr``, keep ``_sign`` (+1 for ``"max"``, -1
    for ``"min"``, None before a mode is known), take Ray's anonymous metric when only a mode is given,
    and check a snapshot's header the same way before loading its trials.
    Subclasses define ``_params()`` (the constructor arguments a snapshot
    must match) and ``n_trials``.
    """

    def __init__(self, time_attr: str, metric: str | None, mode: str | None) -> None:
        if not isinstance(time_attr, str):
            raise TypeError(f"time_attr must be a string, got {time_attr!r}")
        super().__init__(metric, mode)
        self._time_attr = time_attr
        self._sign: float | None = None
        self._update_sign()

    @property
    def time_attr(self) -> str:
        """The result key that measures a trial's progress."""
        return self._time_attr

    def _update_sign(self) -> None:
        self._sign = {"max": 1.0, "min": -1.0}.get(self._mode)

    def set_search_properties(self, metric: str | None, mode: str | None, **spec: Any) -> bool:
        """Take ``metric`` and ``mode`` from the Tuner unless already set (as in Ray)."""
        accepted = super().set_search_properties(metric, mode, **spec)
        self._update_sign()
        return accepted

    def _params(self) -> dict:
        raise NotImplementedError

    def _load_header(self, state: Any, state_format: str) -> None:
        """Check a snapshot against this fresh scheduler and take its metric and mode.

        Raises ``ValueError`` if ``state`` is not a snapshot of ``state_format``,
        this scheduler already has trials, or the snapshot was made with
        other constructor arguments, metric or mode.
        """
        if not isinstance(state, dict) or state.get("format") != state_format:
            raise ValueError(
                f"not a {type(self).__name__} snapshot (expected format {state_format!r}); "
                "pass what state_dict() returned"
            )
        if self.n_trials:
            raise ValueError(
                f"load_state_dict needs a fresh scheduler, this one already has "
                f"{self.n_trials} trial(s)"
            )
        params = self._params()
        for key, value in state["params"].items():
            if params.get(key) != value:
                raise ValueError(
                    f"snapshot was made with {key}={value!r} but this scheduler has "
                    f"{key}={params.get(key)!r}; build the scheduler with the same arguments"
                )
        for key in ("metric", "mode"):
            mine, theirs = getattr(self, "_" + key), state.get(key)
            if mine is not None and theirs is not None and mine != theirs:
                raise ValueError(
                    f"snapshot was made with {key}={theirs!r} but this scheduler has "
                    f"{key}={mine!r}"
                )
        self._metric = self._metric or state.get("metric")
        self._mode = self._mode or state.get("mode")
        self._update_sign()
