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
import os
import pickle
import tempfile
from typing import Any

from . import _session
from .checkpoint import TRAINABLE_DICT_FILE, Checkpoint

_DICT_FILE = TRAINABLE_DICT_FILE   # a checkpoint saved as a dict, pickled here
_ITERATION_FILE = "_fastasha_iteration"    # the steps done when it was saved
_PATH_FILE = "_fastasha_returned_path"     # the path save_checkpoint returned, in the folder


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
        # with_parameters' objects, passed to setup)
        self.config = dict(config or {})
        self._iteration = 0
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

    def save_checkpoint(self, checkpoint_dir: str) -> dict | None:
        """Save the state into ``checkpoint_dir``, or return it as a (picklable) dict."""
        return None

    def load_checkpoint(self, checkpoint: dict | str) -> None:
        """Restore the state: the dict :meth:`save_checkpoint` returned, or its folder."""

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
        """One :meth:`step`, with ``training_iteration`` added (as Ray's ``train``)."""
        result = self.step()
        self._iteration += 1
        return {**result, "training_iteration": result.get("training_iteration",
                                                             self._iteration)}

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
        trainable = self.cls(config, **parameters)
        saved_now = False            # whether the latest result went with a checkpoint
        try:
            restored = _session.get_checkpoint()
            if restored is not None:
                _load(trainable, restored.path)
            while True:
                result = trainable.step()
                if not isinstance(result, dict):
                    raise TypeError(
                        f"{self.cls.__name__}.step() must return a dict of metrics, got "
                        f"{result!r}"
                    )
                trainable._iteration += 1
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
            # checkpoint_at_end saves the state with the last result
            if self.checkpoint_at_end and not saved_now:
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


def _load(trainable: Trainable, folder: str) -> None:
    iteration_file = os.path.join(folder, _ITERATION_FILE)
    if os.path.exists(iteration_file):      # first: load_checkpoint may read the iteration
        with open(iteration_file, encoding="utf-8") as f:
            trainable._iteration = int(f.read().strip() or 0)
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
