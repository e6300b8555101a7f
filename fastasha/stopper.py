"""Stop criteria: end a trial (or the whole sweep) when a condition is met.

The classes have the names, arguments and decisions of Ray Tune 2.x's
``ray.tune.stopper`` module, so ``from ray.tune.stopper import X`` becomes
``from fastasha.stopper import X`` (or ``from fastasha.tune.stopper import X``).
Pass one as ``RunConfig(stop=...)``; :class:`CombinedStopper` joins several.

A :class:`Stopper` lives in the driver. It sees every result of every trial,
in the order the driver receives them: ``stopper(trial_id, result)`` after
each result (``True`` ends that trial), then ``stopper.stop_all()`` (``True``
ends the sweep: no trial starts any more, and the running ones stop at their
next report). Because of that, each report of the objective waits for the
driver's answer while a Stopper is in use; a dict ``{key: bound}`` is judged
in the worker and costs nothing.

Examples
--------
>>> from fastasha.stopper import CombinedStopper, MaximumIterationStopper, TrialPlateauStopper
>>> stopper = CombinedStopper(MaximumIterationStopper(max_iter=10),
...                           TrialPlateauStopper(metric="loss", num_results=3, grace_period=3))
>>> [stopper("t0", {"loss": loss, "training_iteration": i + 1})
...  for i, loss in enumerate([0.9, 0.5, 0.3, 0.3, 0.3])]
[False, False, False, False, True]
"""

from __future__ import annotations

import math
import numbers
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from ._rows import MISSING, lookup
from ._validation import check_int, check_mode, check_positive, check_real, metric_value


class Stopper:
    """Base class of stateful stop criteria (as Ray Tune's ``tune.Stopper``).

    Subclasses implement ``__call__(trial_id, result) -> bool`` (end this
    trial) and ``stop_all() -> bool`` (end the sweep). A Stopper sees every
    result of every trial, so each report of the objective waits for the
    driver's answer.
    """

    def __call__(self, trial_id: str, result: dict) -> bool:
        return False

    def stop_all(self) -> bool:
        return False


class NoopStopper(Stopper):
    """A stopper that never stops anything (as Ray Tune's ``NoopStopper``)."""


class FunctionStopper(Stopper):
    """Wraps a function ``(trial_id, result) -> bool``."""

    def __init__(self, function: Callable[[str, dict], bool]) -> None:
        if not callable(function):
            raise TypeError(f"FunctionStopper needs a function (trial_id, result) -> bool, "
                            f"got {function!r}")
        self._function = function

    def __call__(self, trial_id: str, result: dict) -> bool:
        return bool(self._function(trial_id, result))


class MaximumIterationStopper(Stopper):
    """Stop a trial once its ``training_iteration`` reaches ``max_iter``.

    (Ray's counts the results it has seen instead; the two agree unless the
    objective reports its own ``training_iteration`` or resumes from a
    checkpoint, where this one keeps counting from the checkpoint.)
    """

    def __init__(self, max_iter: int) -> None:
        self._max_iter = check_int("max_iter", max_iter, minimum=1)

    def __call__(self, trial_id: str, result: dict) -> bool:
        return result.get("training_iteration", 0) >= self._max_iter


def _check_metric_name(metric: Any) -> str:
    if not isinstance(metric, str) or not metric:
        raise TypeError(
            f"metric must be the name of a reported result key (a non-empty str), got "
            f"{metric!r}; pass for example metric='loss'"
        )
    return metric


def _population_std(values: list[float]) -> float:
    """Standard deviation with divisor ``n`` (as ``numpy.std``); NaN if a value is NaN or ±inf."""
    n = len(values)
    try:
        mean = math.fsum(values) / n
        return math.sqrt(math.fsum((v - mean) ** 2 for v in values) / n)
    except (OverflowError, ValueError):   # huge values, or inf and -inf together
        return math.inf


class TrialPlateauStopper(Stopper):
    """Stop a trial once its metric has plateaued (as Ray Tune's ``TrialPlateauStopper``).

    After each result of a trial, the stopper takes the standard deviation
    of the trial's last ``num_results`` values of ``metric``. The trial stops
    when that deviation is below ``std``, as soon as

    - the trial has given at least ``grace_period`` results and at least
      ``num_results`` of them, and
    - when ``metric_threshold`` is given, the current value has reached it
      (``value <= metric_threshold`` for ``mode="min"``,
      ``value >= metric_threshold`` for ``mode="max"``).

    Parameters
    ----------
    metric : str
        The result key to watch. ``"outer/inner"`` names a nested value.
    std : float, default=0.01
        A trial whose last ``num_results`` values have a standard deviation
        (divisor ``n``, as ``numpy.std``) below this has plateaued. Must be
        greater than 0.
    num_results : int, default=4
        How many of the trial's latest values the deviation is taken over; at
        least 1.
    grace_period : int, default=4
        The number of results a trial gives before it can be stopped; at
        least 0. Results are counted by this stopper, one per report.
    metric_threshold : float, optional
        Stop only a trial whose current value is at least this good.
    mode : {"min", "max"} or None, default=None
        Which way ``metric_threshold`` is "good"; required with it.

    Raises
    ------
    TypeError
        If ``metric`` is not a string, or a number argument is not a number.
    ValueError
        If a number is out of range, ``mode`` is not ``"min"``, ``"max"`` or
        None, or ``metric_threshold`` is given without ``mode``.

    Notes
    -----
    As in Ray Tune, a result that lacks ``metric`` or holds something other
    than a number does not fail the trial: it takes its place in the window,
    and the trial is not stopped while the window holds it. A misspelt
    ``metric`` therefore never stops anything. A NaN or infinite value has
    the same effect (its deviation is NaN).

    Examples
    --------
    >>> stopper = TrialPlateauStopper("loss", std=0.01, num_results=3, grace_period=3)
    >>> [stopper("t0", {"loss": x}) for x in [1.0, 0.5, 0.4, 0.4, 0.4]]
    [False, False, False, False, True]
    """

    def __init__(self, metric: str, std: float = 0.01, num_results: int = 4,
                 grace_period: int = 4, metric_threshold: float | None = None,
                 mode: str | None = None) -> None:
        self._metric = _check_metric_name(metric)
        self._std = check_positive(
            "std", std, "; it is the largest standard deviation of a plateau, e.g. 0.01")
        self._num_results = check_int(
            "num_results", num_results, 1, "; it is how many latest results the deviation "
            "is taken over")
        self._grace_period = check_int(
            "grace_period", grace_period, 0, "; it is how many results a trial gives before "
            "it can be stopped")
        self._mode = check_mode(mode)
        if metric_threshold is not None:
            metric_threshold = check_real("metric_threshold", metric_threshold)
            if math.isnan(metric_threshold):
                raise ValueError("metric_threshold must be a number, got nan; pass None to "
                                 "stop trials whatever their value")
            if self._mode is None:
                raise ValueError(
                    f"metric_threshold={metric_threshold!r} needs mode='min' or mode='max' to "
                    "say which side of the threshold a trial must reach before it can stop"
                )
        self._metric_threshold = metric_threshold
        self._windows: dict[str, deque] = {}      # trial_id -> its last num_results values
        self._n_results: dict[str, int] = {}      # trial_id -> results seen

    def __repr__(self) -> str:
        return (f"TrialPlateauStopper(metric={self._metric!r}, std={self._std!r}, "
                f"num_results={self._num_results!r}, grace_period={self._grace_period!r}, "
                f"metric_threshold={self._metric_threshold!r}, mode={self._mode!r})")

    def _value(self, trial_id: str, result: dict) -> float | None:
        try:     # (missing: None, which metric_value refuses too)
            return metric_value(self._metric, lookup(result, self._metric, None), trial_id)
        except (TypeError, ValueError):
            return None

    def __call__(self, trial_id: str, result: dict) -> bool:
        value = self._value(trial_id, result)
        window = self._windows.get(trial_id)
        if window is None:
            window = self._windows[trial_id] = deque(maxlen=self._num_results)
        window.append(value)
        self._n_results[trial_id] = self._n_results.get(trial_id, 0) + 1
        if self._n_results[trial_id] < self._grace_period or len(window) < self._num_results:
            return False
        if None in window:
            return False
        if self._metric_threshold is not None:
            if self._mode == "min" and not value <= self._metric_threshold:
                return False
            if self._mode == "max" and not value >= self._metric_threshold:
                return False
        return _population_std(list(window)) < self._std


class ExperimentPlateauStopper(Stopper):
    """Stop the sweep once the best results have plateaued (as Ray Tune's stopper of that name).

    The stopper keeps the ``top`` best values of ``metric`` among all results
    of all trials so far (every result counts, not just each trial's best).
    After each result it asks whether the top values have plateaued: there
    are ``top`` of them and their standard deviation (divisor ``n``, as
    ``numpy.std``) is at most ``std``. It counts the results in a row after
    which they have, and a result after which they have not resets the count.
    Once the count reaches ``patience``, the trial that gave the result is
    stopped and so is the sweep (``stop_all()`` answers True while the top
    values stay plateaued).

    Parameters
    ----------
    metric : str
        The result key to watch; every result must report it. ``"outer/inner"``
        names a nested value.
    std : float, default=0.001
        The top values have plateaued when their standard deviation is at
        most this. Must be greater than 0.
    top : int, default=10
        How many of the best values to consider; at least 2.
    mode : {"min", "max"}, default="min"
        Whether smaller or bigger values are better.
    patience : int, default=0
        Stop at the ``patience``-th result in a row after which the top values
        have plateaued; at least 0. As in Ray Tune, 0 and 1 both stop at the
        first such result.

    Raises
    ------
    TypeError
        If ``metric`` is not a string or a number argument is not a number.
    ValueError
        If ``mode`` is not ``"min"`` or ``"max"``, ``top`` is less than 2,
        ``std`` is not greater than 0, or ``patience`` is negative.

    Notes
    -----
    A result without ``metric`` fails its trial with a ``ValueError`` (the
    sweep goes on), as a missing key fails Ray Tune's stopper. A NaN value
    does not enter the top values, but still counts as a result.

    Examples
    --------
    >>> stopper = ExperimentPlateauStopper("loss", std=0.01, top=3, patience=1)
    >>> [stopper(f"t{i}", {"loss": x}) for i, x in enumerate([0.5, 0.2, 0.2, 0.2])]
    [False, False, False, True]
    >>> stopper.stop_all()
    True
    """

    def __init__(self, metric: str, std: float = 0.001, top: int = 10, mode: str = "min",
                 patience: int = 0) -> None:
        self._metric = _check_metric_name(metric)
        self._mode = check_mode(mode, allow_none=False)
        self._top = check_int("top", top, 2, "; it is how many of the best results are "
                              "compared, e.g. 10")
        self._std = check_positive(
            "std", std, "; it is the largest standard deviation of a plateau, e.g. 0.001")
        self._patience = check_int("patience", patience, 0, "; 0 stops at the first plateau")
        self._top_values: list[float] = []     # the best values so far, best first
        self._n_plateaued = 0                  # results in a row after which they plateaued

    def __repr__(self) -> str:
        return (f"ExperimentPlateauStopper(metric={self._metric!r}, std={self._std!r}, "
                f"top={self._top!r}, mode={self._mode!r}, patience={self._patience!r})")

    def __call__(self, trial_id: str, result: dict) -> bool:
        value = lookup(result, self._metric)
        if value is MISSING:
            raise ValueError(
                f"ExperimentPlateauStopper(metric={self._metric!r}) needs {self._metric!r} in "
                f"every result, but trial {trial_id!r} reported {sorted(result)!r}; add it to "
                "each tune.report() or change the stopper's metric"
            )
        value = metric_value(self._metric, value, trial_id)
        if not math.isnan(value):
            self._top_values.append(value)
            self._top_values.sort(reverse=self._mode == "max")   # best first
            del self._top_values[self._top:]
        self._n_plateaued = self._n_plateaued + 1 if self._has_plateaued() else 0
        return self.stop_all()

    def _has_plateaued(self) -> bool:
        return (len(self._top_values) == self._top
                and _population_std(self._top_values) <= self._std)

    def stop_all(self) -> bool:
        """Whether the sweep must end: the top values plateaued for ``patience`` results."""
        return self._has_plateaued() and self._n_plateaued >= self._patience


class TimeoutStopper(Stopper):
    """Stop the sweep after ``timeout`` (as Ray Tune's ``TimeoutStopper``).

    The clock starts at the first call to :meth:`stop_all` (the driver's
    first look, as the sweep starts), and
    ``stop_all()`` answers True once the time since then reaches ``timeout``.
    It never stops a single trial. Time spent while the stopper is pickled
    does not count: an unpickled copy keeps the budget left and restarts its
    clock at its next check.

    Parameters
    ----------
    timeout : float or datetime.timedelta
        The budget, in seconds or as a ``timedelta``; greater than 0.
        ``math.inf`` never stops.

    Raises
    ------
    TypeError
        If ``timeout`` is neither a number nor a ``datetime.timedelta``.
    ValueError
        If ``timeout`` is not greater than 0.

    Notes
    -----
    The driver asks ``stop_all()`` after each result and every 50 ms, so the
    sweep ends on time even while no trial reports (as Ray's loop asks it on
    every step). ``TuneConfig(time_budget_s=...)`` is the driver's own clock,
    started with the sweep.

    Examples
    --------
    >>> from datetime import timedelta
    >>> stopper = TimeoutStopper(timedelta(minutes=5))
    >>> stopper.stop_all()
    False
    """

    def __init__(self, timeout: float | Any) -> None:
        from datetime import timedelta  # not at import: ``import fastasha.tune`` stays light

        if isinstance(timeout, timedelta):
            seconds = timeout.total_seconds()
        elif isinstance(timeout, numbers.Real) and not isinstance(timeout, bool):
            seconds = float(timeout)
        else:
            raise TypeError(
                f"timeout must be a number of seconds or a datetime.timedelta, got {timeout!r} "
                f"of type {type(timeout).__name__}"
            )
        if not seconds > 0:
            raise ValueError(f"timeout must be greater than 0 seconds, got {timeout!r}")
        self._timeout_s = seconds
        self._budget_s = seconds
        self._last_check: float | None = None

    def __repr__(self) -> str:
        return f"TimeoutStopper(timeout={self._timeout_s!r})"

    def __call__(self, trial_id: str, result: dict) -> bool:
        return False

    def stop_all(self) -> bool:
        """Whether the time budget is spent (the first call starts the clock)."""
        now = time.monotonic()
        if self._last_check is not None:
            self._budget_s -= now - self._last_check
        self._last_check = now
        return self._budget_s <= 0

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_last_check"] = None    # a monotonic clock means nothing in another process
        return state


class CombinedStopper(Stopper):
    """Stop when any of several stoppers says so (as Ray Tune's ``CombinedStopper``).

    Every stopper sees every result, even after an earlier one has said stop,
    so stateful stoppers (plateaus, timeouts) keep an exact account.

    Parameters
    ----------
    *stoppers : Stopper
        The stoppers to combine with "or". Objects with ``__call__(trial_id,
        result)`` and ``stop_all()`` are accepted too. None at all never stops.

    Raises
    ------
    TypeError
        If an argument is not a stopper.

    Examples
    --------
    >>> stopper = CombinedStopper(MaximumIterationStopper(max_iter=3), TimeoutStopper(3600))
    >>> [stopper("t0", {"training_iteration": i}) for i in (1, 2, 3)]
    [False, False, True]
    >>> stopper.stop_all()
    False
    """

    def __init__(self, *stoppers: Stopper) -> None:
        for i, stopper in enumerate(stoppers):
            if not (callable(stopper) and callable(getattr(stopper, "stop_all", None))):
                hint = ("; wrap a function (trial_id, result) -> bool in FunctionStopper"
                        if callable(stopper) else "")
                raise TypeError(
                    f"CombinedStopper takes Stopper objects, but argument {i} is {stopper!r} of "
                    f"type {type(stopper).__name__}{hint}"
                )
        self._stoppers = stoppers

    def __repr__(self) -> str:
        return f"CombinedStopper({', '.join(repr(s) for s in self._stoppers)})"

    def __call__(self, trial_id: str, result: dict) -> bool:
        answers = [bool(stopper(trial_id, result)) for stopper in self._stoppers]
        return any(answers)

    def stop_all(self) -> bool:
        answers = [bool(stopper.stop_all()) for stopper in self._stoppers]
        return any(answers)


def check_stop_dict(stop: Mapping) -> dict[str, float]:
    """Validate ``RunConfig.stop`` given as ``{key: bound}``."""
    out = {}
    for key, bound in stop.items():
        if not isinstance(key, str):
            raise TypeError(f"stop criteria keys must be result keys (str), got {key!r}")
        if isinstance(bound, bool) or not isinstance(bound, numbers.Real) or math.isnan(bound):
            raise TypeError(f"stop criterion {key!r} must be a number, got {bound!r}")
        out[key] = bound
    return out


def normalize_stop(stop: Any) -> tuple[dict[str, float], Stopper | None]:
    """Split ``RunConfig.stop`` into worker-side bounds and a driver-side Stopper."""
    if stop is None:
        return {}, None
    if isinstance(stop, Mapping):
        return check_stop_dict(stop), None
    if isinstance(stop, Stopper):
        return {}, stop
    if callable(stop):
        return {}, FunctionStopper(stop)
    raise TypeError(
        f"stop must be a dict {{key: bound}}, a function (trial_id, result) -> bool or a "
        f"Stopper, got {stop!r}"
    )


__all__ = [
    "CombinedStopper",
    "ExperimentPlateauStopper",
    "FunctionStopper",
    "MaximumIterationStopper",
    "NoopStopper",
    "Stopper",
    "TimeoutStopper",
    "TrialPlateauStopper",
]
