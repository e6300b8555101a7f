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
    ``trial.status`` (``"PENDING"``, ``"RUNNING"``, ``"PAUSED"``,
    ``"TERMINATED"``, ``"ERROR"``; also named ``Trial.TERMINATED`` and so
    on, as in Ray), ``trial.last_result`` (``{}`` before its first result,
    as in Ray), ``trial.error``, ``trial.n_failures`` (=
    ``trial.num_failures``), ``trial.is_finished()``, ``trial.checkpoint`` (the latest, a
    ``Checkpoint`` or None), ``trial.path`` (= ``trial.local_path``, its
    folder) and ``trial.experiment_tag``; ``str(trial)`` is its name, as in
    Ray: what ``TuneConfig(trial_name_creator=...)`` gave it, else
    ``<trainable>_<trial_id>``. Treat it as read-only.
    Once a trial has finished, the driver drops its ``config`` (None) and
    ``last_result`` (``{}``) to keep its memory flat over long sweeps (the
    experiment file keeps them): read them inside the hook. A callback
    that overrides ``on_experiment_end`` keeps them all.

``result`` is a copy: editing it changes nothing recorded. As in Ray, it
holds ``checkpoint_dir_name``: the name of the checkpoint folder saved
with it (in ``trial.path``), with ``should_checkpoint`` set to True, or
None; so does ``trial.last_result`` (a copy too). A trial that
started once may start again: after a failure it is retried for, or when
its worker was lost; ``on_trial_recover`` comes first.

Stateful callbacks
------------------
As in Ray Tune (2.7 and later), a callback that overrides ``get_state``
has its state saved with the experiment, and ``Tuner.restore(path,
trainable, callbacks=[...])`` gives it back to the callback passed at the
same place in the list, through ``set_state``, before ``setup`` (a state
that is ``None`` or empty is neither saved nor given back, as in Ray).
The state is saved when ``fit()`` starts, then at most every
``FASTASHA_CALLBACK_SAVE_S`` seconds (default 10, as Ray's experiment
checkpoints) when it changed, and when ``fit()`` ends (Ctrl-C and errors
included); after a crash, the callbacks get the state of the last save
(Ray's too). Where fastasha differs: the state is kept in the experiment
file as JSON (the file holds no pickle), so it may hold dicts, lists,
tuples, sets, strings, numbers, bools and ``None`` (numpy scalars come
back as Python numbers); a state with anything else (an array, an object,
a ``defaultdict``) is not saved, with a warning, and that callback starts
afresh on a restore. A callback of another class than the one saved at its
place gets no state, with a warning.

The experiment keeps the states of the callbacks of its latest ``fit()``
only: a state saved by an earlier ``fit()`` that the latest did not give
back (a restore without callbacks, with none that has a state, or with
another class at that place) is dropped when that ``fit()`` starts, since
the callback missed that run's events. Ray keeps the states by place in the
list too (``CallbackList.get_state``), but a run whose callbacks have no
state writes no new file, so a later restore gets the older state back, and
gives it to whatever callback is at that place.

Not supported: ``on_trial_restore`` is not called.
"""

from __future__ import annotations

import inspect
import json
import time
import warnings
from typing import Any, Sequence

from ._validation import seconds_from_env, user_stacklevel

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
        """The callback's state, to save with the experiment (None: nothing to save).

        Override it, and :meth:`set_state`, for a callback whose state
        should survive a ``Tuner.restore`` (see the module docstring for
        when it is saved and what it may hold)::

            class TrialCounter(tune.Callback):
                def __init__(self):
                    self.started = set()

                def on_trial_start(self, iteration, trials, trial, **info):
                    self.started.add(trial.trial_id)

                def get_state(self):
                    return {"started": self.started}

                def set_state(self, state):
                    self.started = state["started"]
        """
        return None

    def set_state(self, state: dict) -> None:
        """Take back the state :meth:`get_state` gave, saved with the experiment.

        Called by a restored sweep's ``fit()``, before :meth:`setup`.
        """


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


# ------------------------------------------------------------- callback states

STATE_KEY = "callback_states"      # the experiment file's meta key
STATE_FORMAT = "fastasha.callback_states/1"
SAVE_ENV = "FASTASHA_CALLBACK_SAVE_S"
DEFAULT_SAVE_S = 10.0
# A save taking d seconds puts the next one at least this many times d later.
SAVE_COST_FACTOR = 19.0


def _is_stateful(cb: Any) -> bool:
    """Whether ``cb`` has a ``get_state`` of its own (the base class's saves nothing)."""
    fn = getattr(cb, "get_state", None)
    if not callable(fn):
        return False
    return not (isinstance(cb, Callback) and "get_state" not in getattr(cb, "__dict__", {})
                and getattr(type(cb), "get_state", None) is Callback.get_state)


def _is_empty(state: Any) -> bool:
    """Whether ``state`` is None or empty: not saved (Ray's ``if state``, for the types
    JSON keeps; an array, whose truth is ambiguous, is refused by the save instead)."""
    if state is None:
        return True
    if isinstance(state, (dict, list, tuple, set, frozenset, str, int, float)):
        return not state
    return False


class CallbackStates:
    """Saves the states of a sweep's callbacks in its experiment file (module docstring).

    Parameters
    ----------
    callbacks : list
        ``RunConfig.callbacks``.
    store : ExperimentStore
        The experiment file, open for writing.
    interval_s : float, optional
        The shortest time between two saves while the sweep runs; by
        default ``$FASTASHA_CALLBACK_SAVE_S`` or 10 s.
    """

    def __init__(self, callbacks: list, store: Any, interval_s: float | None = None) -> None:
        self.callbacks = list(callbacks)
        self.store = store
        self.interval_s = seconds_from_env(SAVE_ENV, DEFAULT_SAVE_S) \
            if interval_s is None else interval_s
        self.period = self.interval_s
        self.stateful = any(_is_stateful(cb) for cb in self.callbacks)
        self._saved: str | None = None          # the JSON text of the last save
        self._unsaved: set[str] = set()         # classes whose state was warned of
        self.saved_at = -float("inf")
        if not self.stateful and store.meta(STATE_KEY) is not None:
            # states an earlier fit() saved, that none of this run's callbacks saves again:
            # they would miss this run's events, so they go now (a stateful run replaces
            # them with its own at its first save, when it starts)
            store.set_meta(STATE_KEY, None)

    def _entries(self) -> list[dict | None]:
        from ._storage import to_tagged_json   # (_storage imports config, which imports this)

        entries: list[dict | None] = []
        for cb in self.callbacks:
            entry = None
            if _is_stateful(cb):
                name = type(cb).__name__
                state = cb.get_state()
                entry = {"class": name, "state": None}
                if not _is_empty(state):
                    try:
                        entry["state"] = to_tagged_json(state, exact=True)
                    except (TypeError, RecursionError) as err:
                        why = err if isinstance(err, TypeError) else \
                            "the state holds itself (or is nested too deeply)"
                        if name not in self._unsaved:
                            self._unsaved.add(name)
                            warnings.warn(
                                f"the state of the callback {name} cannot be saved with the "
                                f"experiment: the file keeps states as JSON, and {why}; a "
                                "restore starts this callback afresh. Return dicts, lists, "
                                "tuples, sets, strings, numbers, bools and None from its "
                                "get_state()", UserWarning, stacklevel=user_stacklevel())
            entries.append(entry)
        return entries

    def save(self) -> None:
        """Save the callbacks' states now if they changed since the last save.

        The experiment file's queued writes are committed first, so that a
        saved state never knows of results the file does not.
        """
        if not self.stateful:
            return
        value = {"format": STATE_FORMAT, "callbacks": self._entries()}
        text = json.dumps(value, sort_keys=True)
        self.saved_at = time.monotonic()
        if text == self._saved:
            return
        self.store.flush()
        self.store.set_meta(STATE_KEY, value)
        self._saved = text

    def periodic(self, now: float) -> float:
        """Save if due; when to be called next (the driver's hook, ``now`` monotonic)."""
        if now < self.saved_at + self.period:
            return self.saved_at + self.period
        started = time.monotonic()
        self.save()
        self.period = max(self.interval_s, SAVE_COST_FACTOR * (time.monotonic() - started))
        return now + self.period

    def save_at_end(self, quiet: bool) -> None:
        """The save when ``fit()`` ends; with ``quiet`` (an error is on its way out) a
        failing ``get_state`` only warns."""
        try:
            self.save()
        except Exception as err:   # noqa: BLE001 - said, then raised unless quiet
            if not quiet:
                raise
            warnings.warn(f"saving the callbacks' states at the end of the sweep failed "
                          f"({type(err).__name__}: {err}); a restore gets those of the "
                          "previous save", RuntimeWarning, stacklevel=user_stacklevel())


def restore_states(callbacks: list, saved: Any) -> None:
    """Give each of ``callbacks`` the state saved at its place (``saved``: the meta value).

    Called by a restored sweep's ``fit()`` before the callbacks' ``setup``.
    A callback of another class than the saved one, or without
    ``set_state``, gets nothing, with a warning. Without callbacks, nothing
    is said here: ``Tuner.restore`` has warned that the run had some.
    """
    from ._storage import from_tagged_json

    if not callbacks or not isinstance(saved, dict) or saved.get("format") != STATE_FORMAT:
        return
    entries = saved.get("callbacks") or []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or not entry.get("state"):
            continue
        name = entry.get("class")
        cb = callbacks[i] if i < len(callbacks) else None
        if cb is None or type(cb).__name__ != name:
            given = "nothing" if cb is None else f"a {type(cb).__name__}"
            warnings.warn(
                f"the experiment saved the state of the callback {name} at place {i} of "
                f"RunConfig.callbacks, but the restore passed {given} there: that state is "
                "not restored, and this run's save drops it from the experiment. Pass the "
                "callbacks in the order the experiment had them",
                UserWarning, stacklevel=user_stacklevel())
            continue
        set_state = getattr(cb, "set_state", None)
        if not callable(set_state):
            warnings.warn(f"the callback {name} has no set_state() to take back its saved "
                          "state: it starts afresh, and this run's save drops that state",
                          UserWarning, stacklevel=user_stacklevel())
            continue
        set_state(from_tagged_json(entry["state"]))
