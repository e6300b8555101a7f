"""Stop criteria: end a trial (or the whole sweep) when a condition is met."""

from __future__ import annotations

import math
import numbers
from typing import Any, Callable, Mapping


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


class FunctionStopper(Stopper):
    """Wraps a function ``(trial_id, result) -> bool``."""

    def __init__(self, function: Callable[[str, dict], bool]) -> None:
        self._function = function

    def __call__(self, trial_id: str, result: dict) -> bool:
        return bool(self._function(trial_id, result))


class MaximumIterationStopper(Stopper):
    """Stop a trial after ``max_iter`` reports."""

    def __init__(self, max_iter: int) -> None:
        self._max_iter = max_iter

    def __call__(self, trial_id: str, result: dict) -> bool:
        return result.get("training_iteration", 0) >= self._max_iter


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
