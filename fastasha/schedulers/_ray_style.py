"""Ray's way of calling a custom scheduler's hooks: ``(tune_controller, trial[, result])``.

fastasha calls a scheduler's hooks with a trial id: ``on_trial_add(trial_id)``,
``on_trial_result(trial_id, result)``, ... A scheduler written for Ray Tune
takes the controller and the trial object instead:
``on_trial_result(self, tune_controller, trial, result)``. The sweep finds
out which form each hook of a scheduler takes (:func:`ray_style_hooks`,
from the arguments it requires and their names) and calls a hook of Ray's form
with a :class:`TuneControllerView` and the trial, which has the attributes
Ray's ``Trial`` offers a scheduler (``trial_id``, ``config``, ``status``,
``last_result``, ...).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["TuneControllerView", "ray_style_hooks"]

# how many positional arguments each hook takes in fastasha's form (Ray's: one more)
_FASTASHA_ARGS = {"on_trial_add": 1, "on_trial_result": 2, "on_trial_complete": 2,
                  "on_trial_error": 1, "on_trial_remove": 1}


# the name Ray gives a hook's first argument (2.5 and later; trial_runner before)
_RAY_FIRST_NAMES = ("tune_controller", "trial_runner")


def _takes_ray_form(fn: Any, n: int) -> bool:
    """Whether the hook ``fn``, whose fastasha form takes ``n`` arguments, takes Ray's."""
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return False
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    required = sum(1 for p in positional if p.default is p.empty)
    if required != n + 1:
        # fewer: Ray's form only if its first argument has the name Ray gives it, and it
        # can take Ray's arguments (``result=None``, ``*args``)
        takes = len(positional) >= n + 1 or any(p.kind is p.VAR_POSITIONAL for p in params)
        return required <= n and takes and bool(positional) and \
            positional[0].name in _RAY_FIRST_NAMES
    return True


def ray_style_hooks(scheduler: Any) -> frozenset[str]:
    """The hooks of ``scheduler`` that take Ray's arguments (the controller, then the trial).

    A hook is of Ray's form when it requires exactly one positional argument
    more than fastasha's form: ``on_trial_result(tune_controller, trial,
    result)`` against ``on_trial_result(trial_id, result)``. One that
    requires fewer (``result=None``, ``*args``) is of Ray's form when its
    first argument has Ray's name, ``tune_controller`` (``trial_runner``
    before Ray 2.5), and it can take Ray's arguments. Any other hook
    (``*args`` alone, or a signature that cannot be read) keeps fastasha's
    form.

    Examples
    --------
    >>> from fastasha.schedulers import FIFOScheduler, TrialScheduler
    >>> class RayStyle(FIFOScheduler):
    ...     def on_trial_result(self, tune_controller, trial, result):
    ...         return TrialScheduler.CONTINUE
    ...     def on_trial_complete(self, tune_controller, trial, result=None):
    ...         pass
    >>> sorted(ray_style_hooks(RayStyle()))
    ['on_trial_complete', 'on_trial_result']
    """
    found = set()
    for name, n in _FASTASHA_ARGS.items():
        fn = getattr(scheduler, name, None)
        if callable(fn) and _takes_ray_form(fn, n):
            found.add(name)
    return frozenset(found)


class TuneControllerView:
    """What a hook of Ray's form gets as ``tune_controller``: the sweep's trials.

    It offers what Ray's schedulers use of the controller: ``get_trials()``,
    ``get_live_trials()`` and ``stop_trial()`` (for a paused or pending
    trial). The trial a hook judges is stopped or paused by the hook's
    answer (``TrialScheduler.STOP`` or ``TrialScheduler.PAUSE``).

    Parameters
    ----------
    trials : callable
        Returns every trial of the sweep so far, in creation order.
    controller : object, optional
        The sweep's controller, for fastasha's own schedulers (PBT asks
        whether trials wait, and has trials exploit others).
    """

    def __init__(self, trials: Callable[[], Sequence], controller: Any = None) -> None:
        self._trials = trials
        self._controller = controller

    def get_trials(self) -> list:
        """Every trial of the sweep so far, in creation order (as Ray's)."""
        return list(self._trials())

    def get_live_trials(self) -> list:
        """The trials that have not ended (neither ``TERMINATED`` nor ``ERROR``), as Ray's."""
        return [t for t in self._trials() if not t.is_finished()]

    def stop_trial(self, trial: Any) -> None:
        """Stop a PAUSED or PENDING trial (Ray's): it ends TERMINATED, and the scheduler hears
        ``on_trial_remove`` for it at once. A running trial is stopped by answering STOP."""
        if self._controller is None:
            raise RuntimeError("this tune_controller cannot stop trials")
        self._controller.stop_trial(trial)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        raise AttributeError(
            f"the tune_controller fastasha gives a scheduler's hooks has no {name!r}: it "
            "offers get_trials(), get_live_trials() and stop_trial(). A hook stops or pauses "
            "the trial it judges by answering TrialScheduler.STOP or TrialScheduler.PAUSE "
            "from on_trial_result")
