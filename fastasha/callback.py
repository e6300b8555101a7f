"""Callbacks: user code the driver calls as a sweep goes (Ray Tune's ``tune.Callback``).

Subclass :class:`Callback`, override the hooks you need, and pass instances
in ``RunConfig(callbacks=[...])``. The hooks have Ray Tune's names and
keyword arguments, so a Ray callback moves over by changing its import::

    from fastasha import tune

    class PrintResults(tune.Callback):
        def on_trial_result(self, iteration, trials, trial, result, **info):
            print(trial.trial_id, result["loss"])

Hooks run in the driver, between the driver's other work: keep them short.
An exception raised by a hook ends the sweep with that exception (what was
reported so far is saved, as on Ctrl-C). Objects that do not subclass
:class:`Callback` work too: the driver calls the hooks they have.

What the hooks receive:

``iteration``
    A running count of the events the driver has passed to callbacks (Ray
    counts the steps of its own loop; the number only grows in both).
``trials``
    All trials of the sweep so far, in creation order, as a read-only
    sequence (it is not copied for each call).
``trial``
    The trial the event is about: ``trial.trial_id``, ``trial.config``,
    ``trial.status`` (``"PENDING"``, ``"RUNNING"``, ``"TERMINATED"``,
    ``"ERROR"``), ``trial.last_result`` (``{}`` before its first result,
    as in Ray), ``trial.error``, ``trial.n_failures`` (=
    ``trial.num_failures``), ``trial.is_finished()``, ``trial.checkpoint`` (the latest, a
    ``Checkpoint`` or None), ``trial.path`` (= ``trial.local_path``, its
    folder) and ``trial.experiment_tag``; ``str(trial)`` is its id. Treat it
    as read-only.
    Once a trial has finished, the driver drops its ``config`` (None) and
    ``last_result`` (``{}``) to keep its memory flat over long sweeps (the
    experiment file keeps them): read them inside the hook. A callback
    that overrides ``on_experiment_end`` keeps them all.

``result`` is a copy: editing it changes nothing recorded. A trial that
started once may start again: after a failure it is retried for, or when
its worker was lost; ``on_trial_recover`` comes first.

Not supported: ``get_state``/``set_state`` are not saved with the
experiment, so a restored sweep starts its callbacks afresh, and
``on_trial_restore`` is not called.
"""

from __future__ import annotations

import inspect
from typing import Any, Sequence

HOOKS = (
    "setup", "on_step_begin", "on_step_end", "on_trial_start", "on_trial_result",
    "on_trial_save", "on_checkpoint", "on_trial_complete", "on_trial_error",
    "on_trial_recover", "on_experiment_end",
)
# Ray's hooks this driver never calls (accepted, so that a Ray callback still loads)
NOT_CALLED = ("on_trial_restore",)

# the keyword arguments each hook is called with (beyond what ``**info`` may take)
_ARGUMENTS = {
    "setup": ("stop", "num_samples", "total_num_samples"),
    "on_step_begin": ("iteration", "trials"),
    "on_step_end": ("iteration", "trials"),
    "on_trial_result": ("iteration", "trials", "trial", "result"),
    "on_checkpoint": ("iteration", "trials", "trial", "checkpoint"),
    "on_experiment_end": ("trials",),
}


class Callback:
    """Base class of sweep callbacks; every hook does nothing until overridden."""

    def setup(self, stop: Any = None, num_samples: int | None = None,
              total_num_samples: int | None = None, **info: Any) -> None:
        """Called once, before the first trial starts.

        ``stop`` is ``RunConfig.stop``, ``num_samples`` is
        ``TuneConfig.num_samples`` and ``total_num_samples`` the number of
        trials the sweep will create (None when it runs until its time
        budget).
        """

    def on_step_begin(self, iteration: int, trials: Sequence, **info: Any) -> None:
        """Called at the start of each pass of the driver's loop."""

    def on_step_end(self, iteration: int, trials: Sequence, **info: Any) -> None:
        """Called at the end of each pass of the driver's loop."""

    def on_trial_start(self, iteration: int, trials: Sequence, trial: Any,
                       **info: Any) -> None:
        """Called when a trial starts (again, after a failure it is retried for)."""

    def on_trial_result(self, iteration: int, trials: Sequence, trial: Any, result: dict,
                        **info: Any) -> None:
        """Called for every result of every trial, after the scheduler has seen it.

        Overriding it makes each report of the objective wait for the
        driver, as a Stopper does: reports are no longer buffered.
        """

    def on_trial_save(self, iteration: int, trials: Sequence, trial: Any,
                      **info: Any) -> None:
        """Called when a trial has saved a checkpoint.

        After :meth:`on_trial_result` for the result it came with, and
        before :meth:`on_checkpoint`.
        """

    def on_checkpoint(self, iteration: int, trials: Sequence, trial: Any, checkpoint: Any,
                      **info: Any) -> None:
        """Called with the :class:`~fastasha.checkpoint.Checkpoint` a trial has saved."""

    def on_trial_complete(self, iteration: int, trials: Sequence, trial: Any,
                          **info: Any) -> None:
        """Called when a trial ends TERMINATED (it returned, or was stopped)."""

    def on_trial_error(self, iteration: int, trials: Sequence, trial: Any,
                       **info: Any) -> None:
        """Called when a trial ends in ERROR (``trial.error`` says why)."""

    def on_trial_recover(self, iteration: int, trials: Sequence, trial: Any,
                         **info: Any) -> None:
        """Called when a trial that ran goes back to wait, to run again.

        After a failure it is retried for (``FailureConfig.max_failures``),
        and when its worker slot was lost or its end was lost with its
        worker process (no failure counted then): it will be started, and
        report, again.
        """

    def on_experiment_end(self, trials: Sequence, **info: Any) -> None:
        """Called once, after the last trial has ended (not after Ctrl-C or an error).

        Overriding it keeps every finished trial's ``config`` and
        ``last_result`` in memory for this call (they are dropped otherwise).
        """

    def get_state(self) -> dict | None:
        """Ray's hook for saving a callback's state; fastasha does not save it."""
        return None

    def set_state(self, state: dict) -> None:
        """Ray's hook for restoring a callback's state; fastasha does not call it."""


def bound_hooks(callbacks: list, name: str) -> list:
    """The methods ``name`` of ``callbacks`` that do something.

    A :class:`Callback` subclass counts only if it overrides the hook, so
    that the no-op defaults cost nothing (and an inherited
    ``on_trial_result`` does not make every report wait for the driver).
    """
    out = []
    for cb in callbacks:
        fn = getattr(cb, name, None)
        if not callable(fn):
            continue
        if isinstance(cb, Callback) and name not in getattr(cb, "__dict__", {}) and \
                getattr(type(cb), name, None) is getattr(Callback, name):
            continue
        out.append(fn)
    return out


def _check_signature(cb: Any, name: str) -> None:
    """A clear error for a hook that cannot take the arguments it will be called with."""
    fn = getattr(cb, name)
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):       # a builtin or C function: cannot tell
        return
    arguments = _ARGUMENTS.get(name, ("iteration", "trials", "trial"))
    try:
        signature.bind(**{a: None for a in arguments})
    except TypeError:
        raise TypeError(
            f"{type(cb).__name__}.{name}{signature} cannot be called the way Ray Tune (and "
            f"fastasha) call it: {name}({', '.join(arguments)}, **info), with keyword "
            "arguments; give it those parameters (a trial's id is trial.trial_id)"
        ) from None


def check_callbacks(callbacks: Any) -> list:
    """``RunConfig.callbacks`` as a list; a clear error for what cannot be one."""
    if callbacks is None:
        return []
    if isinstance(callbacks, (str, bytes)) or not isinstance(callbacks, (list, tuple)):
        single = not isinstance(callbacks, type) and \
            any(callable(getattr(callbacks, n, None)) for n in HOOKS)
        hint = "; put it in a list: callbacks=[...]" if single else ""
        raise TypeError(
            f"RunConfig(callbacks=...) takes a list of Callback objects, got {callbacks!r}{hint}"
        )
    for cb in callbacks:
        if isinstance(cb, type):
            raise TypeError(
                f"RunConfig(callbacks=...) got the class {cb.__name__}; pass an instance: "
                f"callbacks=[{cb.__name__}()]"
            )
        if not any(callable(getattr(cb, name, None)) for name in HOOKS + NOT_CALLED):
            raise TypeError(
                f"{cb!r} in RunConfig(callbacks=...) has none of the callback hooks "
                f"({', '.join(HOOKS)}); subclass tune.Callback"
            )
        for name in HOOKS:
            if bound_hooks([cb], name):
                _check_signature(cb, name)
    return list(callbacks)
