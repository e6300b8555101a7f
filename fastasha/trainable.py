"""Class-based objectives: Ray Tune's ``tune.Trainable``.

A Ray script may define its objective as a class::

    class MyTrainable(tune.Trainable):
        def setup(self, config):
            self.x = 0
        def step(self):
            self.x += 1
            return {"loss": 1 / self.x}
        def save_checkpoint(self, checkpoint_dir):
            return {"x": self.x}
        def load_checkpoint(self, checkpoint):
            self.x = checkpoint["x"]

and pass the class to :class:`~fastasha.tuner.Tuner`. fastasha runs it as a
function objective (:class:`ClassTrainable`): ``setup`` once, then ``step``
after ``step``, each result reported, until a stop criterion, the scheduler
or ``result["done"]`` ends the trial; ``cleanup`` always runs at the end.
``CheckpointConfig(checkpoint_frequency=N, checkpoint_at_end=True)`` saves
checkpoints every N steps (and whenever a result holds ``should_checkpoint``)
and at the end, however the trial ends (``done``, a stop criterion, the
scheduler, the sweep's budget); a trial that resumes (after a failure, or in
a restored sweep) starts from its latest checkpoint, as in Ray. When the
whole sweep stops (its budget, a stopper's ``stop_all``), a trial learns it
at its next result; one whose step is still running 5 s after the stop is
killed without an end checkpoint (on the threading backend, where a thread
cannot be killed, it is left behind 10 s after the stop). A trial that has begun to save its end
checkpoint by then gets up to 60 s for the save (with a warning if even
that runs out). Ctrl-C saves none.

Each step's result is completed as Ray's ``Trainable.train`` completes it:
``training_iteration``, ``timesteps_total`` and ``episodes_total`` (the sums
of the ``timesteps_this_iter`` / ``episodes_this_iter`` a step returns, once
it returns them) and, for a step that returns its own ``time_this_iter_s``,
``time_total_s`` as the sum of those times (measured ones for the steps that
return none), all carried on by a checkpoint; then :meth:`Trainable.log_result`
sees it, in the trial's process.

A ``save_checkpoint`` that returns a dict has it pickled into the
checkpoint folder, and ``load_checkpoint`` gets it back unpickled, as Ray
does: only a trial of the experiment reads it, never the experiment file's
readers (which stay pickle-free). One that returns a path inside the folder
it was given (``os.path.join(checkpoint_dir, "model.pth")``, as Ray's
examples do) has ``load_checkpoint`` called with the same path inside the
restored folder, as Ray did up to 2.6.
"""

from __future__ import annotations

import copy
import functools
import inspect
import json
import os
import pickle
import tempfile
import time
from typing import Any

from . import _session
from .checkpoint import TRAINABLE_DICT_FILE, Checkpoint

_DICT_FILE = TRAINABLE_DICT_FILE   # a checkpoint saved as a dict, pickled here
_ITERATION_FILE = "_fastasha_iteration"    # the steps done when it was saved
_PATH_FILE = "_fastasha_returned_path"     # the path save_checkpoint returned, in the folder
_TOTALS_FILE = "_fastasha_totals.json"     # Ray's running totals when it was saved (if any)


class Trainable:
    """Base class of class-based objectives (Ray Tune's ``tune.Trainable``).

    Override :meth:`setup`, :meth:`step` and, to checkpoint,
    :meth:`save_checkpoint` and :meth:`load_checkpoint`; :meth:`cleanup`
    is optional.

    Attributes
    ----------
    config : dict
        The trial's config.
    iteration, training_iteration : int
        Steps done so far (counting those before the checkpoint it resumed
        from).
    trial_id, trial_name : str or None
        The running trial's id and name.
    logdir : str or None
        The trial's own folder.
    """

    def __init__(self, config: dict | None = None, logger_creator: Any = None,
                 storage: Any = None, **parameters: Any) -> None:
        # (logger_creator and storage: Ray's, accepted and unused; other keywords are
        # objects for setup. A sweep hands with_parameters' objects over by the attribute
        # below instead, so that they may have any name, logger_creator and storage too,
        # as in Ray)
        parameters = {**self.__dict__.pop("_fastasha_setup_parameters", {}), **parameters}
        self.config = dict(config or {})
        self._iteration = 0
        # Ray's running totals (Trainable.train): None until a step reports an increment
        self._time_total = 0.0
        self._time_reported = False     # whether a step returned its own time_this_iter_s
        self._timesteps_total: float | None = None
        self._episodes_total: float | None = None
        context = _session.get_context()
        self.trial_id = context.get_trial_id()
        self.trial_name = context.get_trial_name()
        self.trial_resources = context.get_trial_resources()
        self._logdir = context.trial_dir
        self.setup(copy.deepcopy(self.config), **parameters)

    @property
    def iteration(self) -> int:
        return self._iteration

    training_iteration = iteration

    @property
    def logdir(self) -> str | None:
        return self._logdir

    def setup(self, config: dict, **parameters: Any) -> None:
        """Prepare the trial (called once, with the config and any ``with_parameters``)."""

    def step(self) -> dict:
        """Run one step of training and return its result (a dict of metrics)."""
        old = [name for name in ("_setup", "_train", "_save", "_restore", "_stop")
               if hasattr(type(self), name)]
        hint = ""
        if old:     # Ray 0.8's method names, renamed in Ray 1.0
            hint = (f"; it defines {', '.join(old)}, the names of Ray 0.8: rename them setup, "
                    "step, save_checkpoint, load_checkpoint and cleanup")
        raise NotImplementedError(
            f"{type(self).__name__} must override step() and return a dict of metrics{hint}"
        )

    def save_checkpoint(self, checkpoint_dir: str) -> dict | str | None:
        """Save the state into ``checkpoint_dir``, or return it as a (picklable) dict.

        Override it to checkpoint: as in Ray, the base class raises
        ``NotImplementedError``, which fails the trial that asked for a
        checkpoint (``checkpoint_frequency``, ``checkpoint_at_end``,
        ``should_checkpoint``) rather than saving an empty one it would
        later resume from with its state lost.
        """
        raise NotImplementedError(
            f"{type(self).__name__} asked for a checkpoint (checkpoint_frequency, "
            "checkpoint_at_end or should_checkpoint) but does not override save_checkpoint(); "
            "override it, together with load_checkpoint()"
        )

    def load_checkpoint(self, checkpoint: dict | str) -> None:
        """Restore the state: the dict :meth:`save_checkpoint` returned, or its folder.

        Override it together with :meth:`save_checkpoint`: as in Ray, the
        base class raises ``NotImplementedError`` (a trial resuming from a
        checkpoint it cannot load fails instead of going on with a fresh
        state and the checkpoint's iteration count).
        """
        raise NotImplementedError(
            f"{type(self).__name__} resumes from a checkpoint but does not override "
            "load_checkpoint(); override it to restore what save_checkpoint() saved"
        )

    def log_result(self, result: dict) -> None:
        """Called with each step's result, in the trial's process (Ray's hook; does nothing).

        The result holds what :meth:`step` returned with ``training_iteration``,
        ``done`` and Ray's running totals filled in (see the module
        docstring); the fields the sweep adds when it records the result
        (``time_total_s`` otherwise, ``timestamp``, ``pid``, ...) are not in
        it yet. Changing it changes nothing that is reported.
        """

    def export_model(self, export_formats: list[str] | str,
                     export_dir: str | None = None) -> dict:
        """Export the model in ``export_formats`` into ``export_dir`` (Ray's method).

        Calls :meth:`_export_model`, which a subclass overrides, with the
        formats as a list and ``export_dir`` or, by default, the trial's
        folder (:attr:`logdir`). A sweep does not call it (``tune.run``'s
        ``export_formats`` is not supported): call it from :meth:`cleanup`,
        or on a trainable restored from the best checkpoint.

        Returns
        -------
        dict
            What :meth:`_export_model` returns: each format exported, and
            where.
        """
        if isinstance(export_formats, str):
            export_formats = [export_formats]
        export_dir = export_dir if export_dir is not None else self.logdir
        if export_dir is None:
            raise ValueError(
                f"{type(self).__name__}.export_model() needs an export_dir outside a sweep "
                "(there is no trial folder to default to)"
            )
        export_dir = os.fspath(export_dir)
        os.makedirs(export_dir, exist_ok=True)     # (a trial's folder is made when needed)
        return self._export_model(list(export_formats), export_dir)

    def _export_model(self, export_formats: list[str], export_dir: str) -> dict:
        """Override to export the model; returns ``{format: path}`` of what it exported."""
        return {}

    def cleanup(self) -> None:
        """Release what :meth:`setup` took; called once the trial ends, however it ends."""

    @classmethod
    def default_resource_request(cls, config: dict) -> Any:
        """What a trial of this class asks for, given its config (Ray's hook).

        Override it to return a dict (``{"cpu": 2, "gpu": 1}``) or a
        :class:`~fastasha.tune.PlacementGroupFactory`; None (the default)
        asks for one CPU. ``tune.with_resources`` around the class overrides
        it, as in Ray.
        """
        return None

    def reset_config(self, new_config: dict) -> bool:
        """Ray reuses an actor for a new config through this; fastasha never does."""
        return False

    # Ray's driving methods, for trying a class out by hand (the Tuner does not use them)
    def get_config(self) -> dict:
        return self.config

    def train(self) -> dict:
        """One :meth:`step`, its result completed as in a sweep (as Ray's ``train``)."""
        return _train(self, self.step)

    def save(self, checkpoint_dir: str | None = None) -> str:
        """Save a checkpoint into ``checkpoint_dir`` (a new temporary folder by default)."""
        folder = checkpoint_dir or tempfile.mkdtemp(prefix="checkpoint_")
        os.makedirs(folder, exist_ok=True)
        _save(self, folder)
        return folder

    def restore(self, checkpoint_path: str) -> None:
        """Load a checkpoint :meth:`save` wrote (a folder, or a ``Checkpoint``)."""
        _load(self, os.fspath(getattr(checkpoint_path, "path", checkpoint_path)))

    def stop(self) -> None:
        """Release the trial's resources: :meth:`cleanup`."""
        self.cleanup()


class ClassTrainable:
    """A :class:`Trainable` subclass run as a function objective (picklable).

    Parameters
    ----------
    cls : type
        The Trainable subclass.
    checkpoint_frequency : int, default=0
        Save a checkpoint every this many steps (0: never on a schedule).
    checkpoint_at_end : bool, default=False
        Save one with the last result, however the trial ends.
    """

    def __init__(self, cls: type, checkpoint_frequency: int = 0,
                 checkpoint_at_end: bool = False) -> None:
        self.cls = cls
        self.checkpoint_frequency = checkpoint_frequency
        self.checkpoint_at_end = checkpoint_at_end
        self.__name__ = cls.__name__
        self.__qualname__ = getattr(cls, "__qualname__", cls.__name__)
        self.__doc__ = cls.__doc__

    def __repr__(self) -> str:
        return f"ClassTrainable({self.cls.__name__})"

    def __call__(self, config: dict, **parameters: Any) -> None:
        # with_parameters' objects go to setup whatever their names (see Trainable.__init__)
        trainable = self.cls.__new__(self.cls)
        trainable._fastasha_setup_parameters = parameters
        trainable.__init__(config)
        saved_now = False            # whether the latest result went with a checkpoint
        try:
            restored = _session.get_checkpoint()
            if restored is not None:
                _load(trainable, restored.path)
            while True:
                result = _train(trainable, trainable.step)
                done = bool(result.get("done", False))
                frequency = self.checkpoint_frequency
                saved_now = bool((frequency and trainable._iteration % frequency == 0) or
                                 result.get("should_checkpoint") or
                                 (done and self.checkpoint_at_end))
                if saved_now:
                    self._report_with_checkpoint(trainable, result)
                else:
                    _session.report(result)
                if done:
                    return
        except _session.TrialStopped:
            # stopped by the scheduler, a stop criterion or the sweep's end: as Ray,
            # checkpoint_at_end saves the state with the last result; and paused (PBT,
            # HyperBand, BOHB), as Ray, it saves it whatever the settings, to resume from
            # it, if it can save at all (else it starts again from its latest checkpoint)
            session = getattr(_session._local, "session", None)
            pausing = session is not None and session.pausing and \
                type(trainable).save_checkpoint is not Trainable.save_checkpoint
            if (self.checkpoint_at_end or pausing) and not saved_now:
                self._save_after_stop(trainable)
            raise
        finally:
            trainable.cleanup()

    @staticmethod
    def _save_after_stop(trainable: Trainable) -> None:
        session = getattr(_session._local, "session", None)
        # (interrupted: nobody would keep it; a stopping sweep waits for the save)
        if session is None or not session.may_save_after_stop():
            return
        with tempfile.TemporaryDirectory() as folder:   # copied into the trial's folder
            _save(trainable, folder)
            session.save_after_stop(Checkpoint.from_directory(folder))

    @staticmethod
    def _report_with_checkpoint(trainable: Trainable, result: dict) -> None:
        with tempfile.TemporaryDirectory() as folder:   # report() copies it
            _save(trainable, folder)
            _session.report(result, checkpoint=Checkpoint.from_directory(folder))


def _train(trainable: Trainable, step: Any) -> dict:
    """One step of ``trainable``, its result completed as Ray's ``Trainable.train`` does.

    Counts the iteration; fills ``training_iteration``, ``done``,
    ``timesteps_total`` / ``episodes_total`` (once a step reports an
    increment) and, once a step reported its own ``time_this_iter_s``,
    ``time_total_s`` (values the step returned under these names win); then
    calls :meth:`Trainable.log_result` with a copy.
    """
    began = time.perf_counter()
    result = step()
    took = time.perf_counter() - began
    if not isinstance(result, dict):
        raise TypeError(
            f"{type(trainable).__name__}.step() must return a dict of metrics, got {result!r}"
        )
    result = dict(result)
    trainable._iteration += 1
    reported = result.get("time_this_iter_s")
    if reported is not None:
        trainable._time_reported = True
    trainable._time_total += reported if reported is not None else took
    if trainable._time_reported:
        result.setdefault("time_total_s", trainable._time_total)
    increment = result.get("timesteps_this_iter")
    if increment is not None:
        trainable._timesteps_total = (trainable._timesteps_total or 0) + increment
    if trainable._timesteps_total is not None:
        result.setdefault("timesteps_total", trainable._timesteps_total)
    increment = result.get("episodes_this_iter")
    if increment is not None:
        trainable._episodes_total = (trainable._episodes_total or 0) + increment
    if trainable._episodes_total is not None:
        result.setdefault("episodes_total", trainable._episodes_total)
    result.setdefault("training_iteration", trainable._iteration)
    result.setdefault("done", False)
    if type(trainable).log_result is not Trainable.log_result:
        trainable.log_result(copy.deepcopy(result))
    return result


def _outside(relative: str) -> bool:
    return relative == os.pardir or relative.startswith(os.pardir + os.sep)


def _save(trainable: Trainable, folder: str) -> None:
    state = trainable.save_checkpoint(folder)
    if isinstance(state, (str, os.PathLike)):
        returned, root = os.path.abspath(os.fspath(state)), os.path.abspath(folder)
        inside = os.path.relpath(returned, root)
        if _outside(inside):    # or it was resolved (Path.resolve()) through a symlink
            inside = os.path.relpath(os.path.realpath(returned), os.path.realpath(root))
        if _outside(inside):
            raise ValueError(
                f"{type(trainable).__name__}.save_checkpoint() returned {state!r}, which is "
                f"not in the folder it was given ({folder!r}); save into that folder and "
                "return it, a path inside it, None, or a dict"
            )
        if inside != os.curdir:     # a file in the folder: load_checkpoint gets its new path
            with open(os.path.join(folder, _PATH_FILE), "w", encoding="utf-8") as f:
                f.write(inside)
        state = None          # Ray's example returns the folder it wrote into
    if state is not None:
        if not isinstance(state, dict):
            raise TypeError(
                f"{type(trainable).__name__}.save_checkpoint() must return a dict or None "
                f"(having written into the folder), got {type(state).__name__}"
            )
        with open(os.path.join(folder, _DICT_FILE), "wb") as f:
            pickle.dump(state, f)
    with open(os.path.join(folder, _ITERATION_FILE), "w", encoding="utf-8") as f:
        f.write(str(trainable._iteration))
    totals = _totals(trainable)
    if totals:
        with open(os.path.join(folder, _TOTALS_FILE), "w", encoding="utf-8") as f:
            json.dump(totals, f)


def _totals(trainable: Trainable) -> dict:
    """Ray's running totals to keep with a checkpoint: only those a step started."""
    totals: dict[str, Any] = {}
    if trainable._time_reported:
        totals["time_total"] = trainable._time_total
    if trainable._timesteps_total is not None:
        totals["timesteps_total"] = trainable._timesteps_total
    if trainable._episodes_total is not None:
        totals["episodes_total"] = trainable._episodes_total
    return totals


def _load(trainable: Trainable, folder: str) -> None:
    iteration_file = os.path.join(folder, _ITERATION_FILE)
    if os.path.exists(iteration_file):      # first: load_checkpoint may read the iteration
        with open(iteration_file, encoding="utf-8") as f:
            trainable._iteration = int(f.read().strip() or 0)
    totals_file = os.path.join(folder, _TOTALS_FILE)
    if os.path.exists(totals_file):
        with open(totals_file, encoding="utf-8") as f:
            totals = json.load(f)
        if "time_total" in totals:
            trainable._time_total, trainable._time_reported = totals["time_total"], True
        trainable._timesteps_total = totals.get("timesteps_total")
        trainable._episodes_total = totals.get("episodes_total")
    dict_file = os.path.join(folder, _DICT_FILE)
    path_file = os.path.join(folder, _PATH_FILE)
    if os.path.exists(dict_file):
        # written by this trial's own save_checkpoint, in this experiment's folder
        with open(dict_file, "rb") as f:
            trainable.load_checkpoint(pickle.load(f))
    elif os.path.exists(path_file):
        with open(path_file, encoding="utf-8") as f:
            trainable.load_checkpoint(os.path.join(folder, f.read()))
    else:
        trainable.load_checkpoint(folder)


class CheckpointDirFunction:
    """Calls ``fn(config, checkpoint_dir=...)``, Ray Tune's function API up to 2.4.

    ``checkpoint_dir`` is the folder of the checkpoint the trial resumes
    from, or None on a fresh start (see :func:`fastasha.tune.checkpoint_dir`).
    """

    def __init__(self, fn: Any) -> None:
        self.fn = fn
        functools.update_wrapper(self, fn, updated=())

    def __call__(self, config: dict, **parameters: Any) -> Any:
        restored = _session.get_checkpoint()
        return self.fn(config, checkpoint_dir=None if restored is None else restored.path,
                       **parameters)


def _takes_checkpoint_dir(fn: Any) -> bool:
    """Whether ``fn`` is a function with a ``checkpoint_dir`` keyword (Ray up to 2.4)."""
    if not (inspect.isfunction(fn) or isinstance(fn, functools.partial)):
        return False
    try:
        parameter = inspect.signature(fn).parameters.get("checkpoint_dir")
    except (TypeError, ValueError):
        return False
    return parameter is not None and parameter.kind in (
        inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)


def as_function(trainable: Any, checkpoint_frequency: int = 0,
                checkpoint_at_end: bool = False) -> Any:
    """``trainable`` as the function objective a trial process calls with its config.

    A :class:`Trainable` subclass inside it runs as a function, and so does a
    function with a ``checkpoint_dir`` parameter (see
    :class:`CheckpointDirFunction`). ``with_resources`` / ``with_parameters``
    wrappers around either are copied (the caller's stay as they are);
    anything else comes back as it is.
    """
    from ._trainable import _Wrapped

    if isinstance(trainable, type) and issubclass(trainable, Trainable):
        return ClassTrainable(trainable, checkpoint_frequency, checkpoint_at_end)
    if _takes_checkpoint_dir(trainable):
        return CheckpointDirFunction(trainable)
    if isinstance(trainable, _Wrapped):
        inner = as_function(trainable.trainable, checkpoint_frequency, checkpoint_at_end)
        if inner is not trainable.trainable:
            import copy

            trainable = copy.copy(trainable)
            trainable.trainable = inner
    return trainable


def is_class_trainable(trainable: Any) -> bool:
    """Whether ``trainable`` is (or wraps) a :class:`Trainable` subclass."""
    inner = getattr(trainable, "inner", trainable)
    return isinstance(inner, type) and issubclass(inner, Trainable)
