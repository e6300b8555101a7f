"""The Tuner: wires search space, scheduler, controller, execution and storage."""

from __future__ import annotations

import functools
import heapq
import math
import numbers
import os
import secrets
import time
import warnings
from itertools import count, islice
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from . import _search_state, _storage
from ._controller import Controller, Trial
from ._execution.driver import Driver
from ._resources import (
    ORIG_WORKING_DIR_ENV,
    Allocation,
    Request,
    ResourcePool,
    available_memory,
    parse_available,
)
from ._trainable import request_of, resolve_trainable
from ._validation import check_bool, seconds_from_env
from .callback import STATE_KEY as CALLBACK_STATE_KEY
from .callback import CallbackStates, bound_hooks, restore_states
from .config import CheckpointConfig, FailureConfig, RunConfig, TuneConfig
from .progress_reporter import MIN_REPORT_INTERVAL, ReporterCalls, is_stock_reporter
from .result import default_results_dir
from .results import ResultGrid, TrialError
from .schedulers import AsyncHyperBandScheduler, FIFOScheduler, MedianStoppingRule
from .search import (
    BasicVariantGenerator,
    ConcurrencyLimiter,
    Searcher,
    VariantGenerator,
    config_to_json,
    space_from_json,
    space_to_json,
)
from .search._adapter import SearcherWrapper, Suggestions, hears_results, tell_search_properties
from .search.serialize import is_plain
from .stopper import normalize_stop
from .trainable import as_function, is_class_trainable

# Address the driver listens on; loopback unless workers run on other machines.
DRIVER_HOST_ENV = "FASTASHA_DRIVER_HOST"
# How long a search_alg may answer None while no trial runs before the sweep ends.
SEARCHER_WAIT_ENV = "FASTASHA_SEARCHER_WAIT_S"
DEFAULT_SEARCHER_WAIT_S = 10.0
# Seconds between two redraws of the default status display, and between two
# should_report() calls to a progress reporter of the user's own.
PROGRESS_INTERVAL = 0.25


def searcher_wait_s() -> float:
    """``$FASTASHA_SEARCHER_WAIT_S`` (seconds, greater than 0), or 10."""
    return seconds_from_env(SEARCHER_WAIT_ENV, DEFAULT_SEARCHER_WAIT_S)


def _trainable_name(trainable: Callable) -> str:
    """The objective's own name, under fastasha's wrappers and ``functools.partial``."""
    inner = getattr(trainable, "inner", trainable)
    for _ in range(10):
        unwrapped = inner.func if isinstance(inner, functools.partial) else \
            getattr(inner, "__wrapped__", None)
        if unwrapped is None:
            break
        inner = getattr(unwrapped, "inner", unwrapped)
    return getattr(inner, "__name__", type(inner).__name__)


def _check_picklable(trainable: Callable) -> None:
    from ._execution.driver import _cloudpickle

    try:
        _cloudpickle().dumps(trainable)
    except Exception as err:   # noqa: BLE001 - any pickling failure
        raise TypeError(
            f"the objective {_trainable_name(trainable)!r} cannot be pickled ({err}); worker "
            "processes need to receive it. Define it at module level and pass large objects "
            "with tune.with_parameters(...), or run with joblib's threading backend "
            "(joblib.parallel_config(backend='threading'))"
        ) from err


def _backend_is_threading() -> bool:
    try:
        from joblib.parallel import get_active_backend

        backend, _ = get_active_backend()
    except Exception:   # noqa: BLE001
        return False
    return type(backend).__name__.lower().startswith("threading")


def _scheduler_settings(scheduler: Any) -> dict:
    if isinstance(scheduler, AsyncHyperBandScheduler):
        params = {
            "time_attr": scheduler.time_attr, "metric": scheduler.metric, "mode": scheduler.mode,
            "max_t": scheduler.max_t, "grace_period": scheduler.grace_period,
            "reduction_factor": scheduler.reduction_factor, "brackets": scheduler.brackets,
            "stop_last_trials": scheduler.stop_last_trials,
        }
        return {"class": "AsyncHyperBandScheduler", "params": params}
    if type(scheduler) is MedianStoppingRule:
        params = {
            "time_attr": scheduler.time_attr, "metric": scheduler.metric, "mode": scheduler.mode,
            "grace_period": scheduler.grace_period,
            "min_samples_required": scheduler.min_samples_required,
            "min_time_slice": scheduler.min_time_slice, "hard_stop": scheduler.hard_stop,
        }
        return {"class": "MedianStoppingRule", "params": params}
    if type(scheduler) is FIFOScheduler:
        return {"class": "FIFOScheduler", "params": {"metric": scheduler.metric,
                                                     "mode": scheduler.mode}}
    return {"class": type(scheduler).__qualname__, "custom": True}


def _scheduler_from_settings(spec: dict) -> Any:
    if spec.get("class") == "AsyncHyperBandScheduler":
        return AsyncHyperBandScheduler(**spec["params"])
    if spec.get("class") == "MedianStoppingRule":
        return MedianStoppingRule(**spec["params"])
    if spec.get("class") == "FIFOScheduler":
        return FIFOScheduler(**spec["params"])
    return None


class Tuner:
    """Run a hyperparameter sweep (Ray Tune's ``Tuner``).

    Parameters
    ----------
    trainable : callable or str
        The objective ``trainable(config)``, which calls ``tune.report``;
        optionally wrapped by ``tune.with_resources`` and
        ``tune.with_parameters``. Or the name it was registered under with
        ``tune.register_trainable``.
    param_space : dict, optional
        The search space: constants, domains (``tune.uniform`` ...) and
        ``tune.grid_search`` markers, nested freely.
    tune_config : TuneConfig, optional
    run_config : RunConfig, optional
    resources : dict, optional
        What the sweep may use, e.g. ``{"cpu": 16, "gpu": 4, "memory":
        64e9}`` (a GPU list like ``["0", "3"]`` names devices; memory is in
        bytes). Detected when left out: the CPUs this process may run on,
        ``CUDA_VISIBLE_DEVICES`` or the GPUs ``nvidia-smi`` lists, and the
        physical memory (or a smaller cgroup v2 ``memory.max``), all on the
        machine that runs the Tuner (on a Dask cluster, declare what the
        workers have). Trials are packed so that their requests fit into
        all three. A fastasha extension; Ray takes this from its cluster.

    Examples
    --------
    >>> from fastasha import tune
    >>> def objective(config):
    ...     for step in range(3):
    ...         tune.report({"loss": config["x"] / (step + 1)})
    >>> import tempfile, joblib
    >>> with tempfile.TemporaryDirectory() as root, joblib.parallel_config(backend="threading"):
    ...     tuner = tune.Tuner(objective, param_space={"x": tune.grid_search([1.0, 2.0])},
    ...                        tune_config=tune.TuneConfig(metric="loss", mode="min"),
    ...                        run_config=tune.RunConfig(storage_path=root, verbose=0))
    ...     best = tuner.fit().get_best_result()
    >>> best.config
    {'x': 1.0}
    """

    def __init__(
        self,
        trainable: Callable | str,
        *,
        param_space: dict | None = None,
        tune_config: TuneConfig | None = None,
        run_config: RunConfig | None = None,
        resources: dict | None = None,
        _restore: dict | None = None,
    ) -> None:
        trainable = resolve_trainable(trainable)      # a name given to tune.register_trainable
        if not callable(trainable):
            raise TypeError(
                f"trainable must be a function taking a config dict, got {trainable!r}"
            )
        if param_space is not None and not isinstance(param_space, dict):
            raise TypeError(f"param_space must be a dict, got {type(param_space).__name__}")
        if tune_config is not None and not isinstance(tune_config, TuneConfig):
            raise TypeError(f"tune_config must be a tune.TuneConfig, got {tune_config!r}")
        if run_config is not None and not isinstance(run_config, RunConfig):
            raise TypeError(f"run_config must be a tune.RunConfig, got {run_config!r}")
        self.param_space = dict(param_space or {})
        self.tune_config = tune_config or TuneConfig()
        self.run_config = run_config or RunConfig()
        cc = self.run_config.checkpoint_config
        if (cc.checkpoint_frequency or cc.checkpoint_at_end) and not is_class_trainable(trainable):
            raise ValueError(
                "CheckpointConfig(checkpoint_frequency=..., checkpoint_at_end=...) applies to "
                "tune.Trainable classes; a function objective saves its checkpoints itself: "
                "call tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(folder))"
            )
        # a tune.Trainable class runs as a function objective (fastasha/trainable.py)
        self.trainable = as_function(trainable, cc.checkpoint_frequency,
                                     bool(cc.checkpoint_at_end))
        self.resources = resources
        self._restore = _restore
        self._results: ResultGrid | None = None
        self._experiment_path: Path | None = None
        # what the message after a Ctrl-C tells to run to resume (tune.run sets its own form)
        self._resume_line: Callable[[Path], str] = \
            lambda path: f"Tuner.restore({str(path)!r}, trainable)"
        if _restore is None:
            self._validate()

    # ------------------------------------------------------------- validation

    def _scheduler(self) -> Any:
        return self.tune_config.scheduler if self.tune_config.scheduler is not None else FIFOScheduler()

    def _validate(self) -> None:
        tc = self.tune_config
        basic = _basic_variants(tc.search_alg)
        if tc.search_alg is None or basic is not None:
            with warnings.catch_warnings():     # (points outside the space warn when fit() runs)
                warnings.simplefilter("ignore")
                VariantGenerator(self.param_space, tc.num_samples, 0,    # raises on a bad space
                                 **_variant_options(basic))
        if basic is not None and isinstance(basic.random_state, numbers.Integral) and \
                tc.seed is not None and tc.seed != basic.random_state:
            raise ValueError(
                f"TuneConfig(seed={tc.seed}) and BasicVariantGenerator(random_state="
                f"{basic.random_state}) both seed the sampling; give one of them")
        if basic is None and (isinstance(tc.search_alg, type) or (
                tc.search_alg is not None and
                not callable(getattr(tc.search_alg, "suggest", None)))):
            raise TypeError(
                f"search_alg must be a searcher object with a suggest(trial_id) method, got "
                f"{tc.search_alg!r}" + ("; pass an instance, not the class"
                                        if isinstance(tc.search_alg, type) else "")
            )
        inner = tc.search_alg
        while isinstance(inner, SearcherWrapper):
            inner = inner.searcher
        if isinstance(inner, Searcher) and type(inner).suggest is Searcher.suggest:
            raise TypeError(
                f"search_alg {type(inner).__name__} does not define suggest(trial_id); a "
                "Searcher subclass returns a config dict, None or Searcher.FINISHED from it"
            )
        if isinstance(tc.search_alg, ConcurrencyLimiter) and tc.max_concurrent_trials is not \
                None and tc.max_concurrent_trials != tc.search_alg.max_concurrent:
            raise ValueError(     # as in Ray
                f"max_concurrent_trials={tc.max_concurrent_trials} was given with a "
                f"ConcurrencyLimiter(max_concurrent={tc.search_alg.max_concurrent}); set the "
                "limit in one place: leave max_concurrent_trials at None"
            )
        scheduler = self._scheduler()
        if isinstance(scheduler, type):
            raise TypeError(
                f"scheduler must be a scheduler object, got the class {scheduler.__name__}; "
                f"pass an instance, for example {scheduler.__name__}()"
            )
        for name in ("on_trial_add", "on_trial_result", "on_trial_complete"):
            if not callable(getattr(scheduler, name, None)):
                raise TypeError(
                    f"scheduler {scheduler!r} has no {name}() method; pass a scheduler from "
                    "fastasha.schedulers or an object with the TrialScheduler interface"
                )
        normalize_stop(self.run_config.stop)

    # ------------------------------------------------------------------ paths

    def _experiment_dir(self) -> tuple[Path, Path | None]:
        """The experiment's folder, and for a generated name the folder of that name unsuffixed.

        A name the user gave is the folder (an experiment already there is
        refused, or replaced with ``overwrite``). A generated name,
        ``<trainable>_<date>_<time>`` as in Ray, is the first one free now;
        :func:`_claim_generated` takes it, or the next free one, when the
        experiment is created, so that sweeps started in the same second
        (in one process or several) each get a folder of their own.
        """
        rc = self.run_config
        # absolute: stored checkpoint paths must not depend on the working directory
        root = (Path(rc.storage_path).expanduser() if rc.storage_path
                else Path(default_results_dir())).absolute()
        if rc.name:
            return root / rc.name, None
        base = root / f"{_trainable_name(self.trainable)}_{time.strftime('%Y-%m-%d_%H-%M-%S')}"
        return next(path for path in _suffixed(base) if not path.exists()), base

    # -------------------------------------------------------------------- fit

    def fit(self) -> ResultGrid:
        """Run the sweep and return its results.

        Raises
        ------
        ValueError, TypeError
            For an invalid setup, before any trial runs.
        KeyboardInterrupt
            On Ctrl-C, after every running trial was put back as PENDING and
            everything was saved; resume with :meth:`Tuner.restore`.
        """
        run = _Run(self)
        # a new experiment's folder is known once the experiment is made there (execute
        # sets it): until then it may hold another one (an experiment this fit() was to
        # overwrite, or a sweep that took the generated name first)
        self._results = None
        self._experiment_path = run.directory if run.restore else None
        self._results = run.execute()
        return self._results

    def get_results(self) -> ResultGrid:
        """The results of the last :meth:`fit` (or of the restored experiment)."""
        if self._results is not None:
            return self._results
        if self._experiment_path is not None:
            return ResultGrid.from_path(self._experiment_path)
        raise RuntimeError("no results yet: call fit() first (a fit() that failed before it "
                           "created its experiment has none)")

    # ---------------------------------------------------------------- restore

    @classmethod
    def can_restore(cls, path: str | os.PathLike) -> bool:
        """Whether ``path`` holds a fastasha experiment that :meth:`restore` can resume."""
        try:
            store = _storage.ExperimentStore.open(Path(path).expanduser(), readonly=True)
        except (_storage.StoreError, OSError):
            return False
        store.close()
        return True

    @classmethod
    def restore(
        cls,
        path: str | os.PathLike,
        trainable: Callable | str | None = None,
        *,
        resume_unfinished: bool = True,
        resume_errored: bool = False,
        restart_errored: bool = False,
        param_space: dict | None = None,
        scheduler: Any = None,
        search_alg: Any = None,
        stop: Any = None,
        resources: dict | None = None,
        callbacks: list | None = None,
        progress_reporter: Any = None,
    ) -> Tuner:
        """Resume an interrupted experiment from its directory.

        The stored scheduler calls are replayed into a fresh scheduler, so
        rungs, cut-offs, bracket draws and the search's random stream
        continue exactly where they were. Trials that were running restart
        from their latest checkpoint (``training_iteration`` continues from
        it), or from the start without one.

        Parameters
        ----------
        path : str
            The experiment directory (``<storage_path>/<name>``).
        trainable : callable or str
            The objective (it is not stored with the experiment), or the
            name it was registered under with ``tune.register_trainable``.
        resume_unfinished : bool, default=True
            Run the trials that were running or waiting again. With False
            they end TERMINATED as they are (even those that never ran), as
            in Ray Tune, with their last stored result as their last result;
            trials the sweep had not created yet still run. A ``search_alg``
            hears their end (``on_trial_complete`` with that result), which
            Ray's does not: its ``ConcurrencyLimiter`` would count them as
            running for ever.
        resume_errored : bool, default=False
            Run errored trials again from their latest checkpoint.
        restart_errored : bool, default=False
            Run errored trials again from the start.
        param_space : dict, optional
            Needed only when the space held things the store cannot keep as
            JSON (``sample_from`` functions, objects in ``choice``); it must
            be the one the experiment started with.
        scheduler : TrialScheduler, optional
            Needed only for a custom scheduler; built-in ones are rebuilt from
            the stored settings.
        search_alg : Searcher, optional
            Needed for, and only for, an experiment that used a
            ``search_alg``: a fresh one built with the same arguments (wrapped
            in the same ``ConcurrencyLimiter`` or ``Repeater``, if any). It hears
            ``set_search_properties`` and then gets the state saved during the
            run through its ``restore_from_dir(path)`` (which calls its
            ``restore``), then the suggestions and trial ends that came after
            that save, and continues the sweep: the stored trials keep their
            configs, and it suggests the rest of ``num_samples``. A fastasha
            extension: Ray unpickles the searcher from the experiment, which
            fastasha does not store code in. A ``BasicVariantGenerator`` is
            different: its options are stored, and it is needed only when its
            ``points_to_evaluate`` could not be stored as JSON; one passed
            must sample as the experiment did (the same points and
            ``constant_grid_search``; ``max_concurrent`` may change).
        stop : dict, callable or Stopper, optional
            A stop criterion given as a dict is stored and applied again; a
            function or Stopper is code, which the store does not keep: pass
            it again here to keep using it.
        resources : dict, optional
            As in :class:`Tuner`.
        callbacks : list of Callback, optional
            The run's callbacks, as in :class:`RunConfig`. They are code, which
            the store does not keep (Ray Tune pickles them with the
            experiment): pass them again to keep them, in the same order:
            each gets the state its ``get_state`` saved, through
            ``set_state``, before ``setup`` (see :mod:`fastasha.callback`).
            Restoring an experiment that had callbacks without passing any
            warns, naming their classes.
        progress_reporter : ProgressReporter, optional
            As in :class:`RunConfig`, for the same reason.

        Raises
        ------
        ValueError
            If the experiment used a ``search_alg`` and none is passed (the
            message names its class), or one is passed for an experiment
            without; if a ``BasicVariantGenerator`` passed would sample
            other configs; if its searcher could not save its state (its ``save``
            is not implemented: Ray logs this error and starts the
            experiment over); and for the other reasons given in the
            messages (a custom scheduler not passed, an unstored
            ``param_space``, ...).
        """
        if trainable is None:
            # Ray 2.0-2.4 wrote Tuner.restore(path): Ray pickled the objective with the experiment
            raise TypeError(
                "Tuner.restore needs the objective: fastasha does not store it with the "
                "experiment (the experiment file holds no pickled code), so pass it as "
                "Tuner.restore(path, trainable=objective), or the name it was registered under"
            )
        check_bool("resume_unfinished", resume_unfinished)
        check_bool("resume_errored", resume_errored)
        check_bool("restart_errored", restart_errored)
        directory = Path(path).expanduser().absolute()
        if resume_errored and restart_errored:
            raise ValueError("pass resume_errored or restart_errored, not both")
        store = _storage.ExperimentStore.open(directory, readonly=True)
        try:
            settings = store.settings()
            callback_states = store.meta(CALLBACK_STATE_KEY)
            # a BasicVariantGenerator set options of the built-in sampling: rebuilt from them
            search_alg = _restored_basic_variants(settings, search_alg)
            _search_state.check_restorable(store, directory, settings,
                                           None if _basic_variants(search_alg) else search_alg)
            _check_same_sampling(settings, _basic_variants(search_alg))
        finally:
            store.close()
        space = param_space
        if space is None:
            stored = settings.get("search", {}).get("param_space")
            if stored is None:
                raise ValueError(
                    "the param_space of this experiment could not be stored as JSON (it holds "
                    "functions or objects, or a space only its search_alg reads); pass the "
                    "same param_space to Tuner.restore"
                )
            space = space_from_json(stored)
        sched = scheduler if scheduler is not None else _scheduler_from_settings(settings["scheduler"])
        if sched is None:
            raise ValueError(
                f"the experiment used a custom scheduler ({settings['scheduler'].get('class')}); "
                "pass a fresh one built with the same arguments: Tuner.restore(..., scheduler=...)"
            )
        tune_config = TuneConfig(
            metric=settings.get("metric"), mode=settings.get("mode"), scheduler=sched,
            search_alg=search_alg, num_samples=settings["num_samples"],
            max_concurrent_trials=settings.get("max_concurrent_trials"),
            time_budget_s=settings.get("time_budget_s"), seed=settings["seed"],
            chdir_to_trial_dir=settings.get("chdir_to_trial_dir"),
        )
        if stop is None:
            stop = settings.get("stop", {}).get("criteria")   # a custom stopper is code: not stored
        _warn_of_missing_code(settings.get("code", {}), callbacks, progress_reporter)
        run_config = RunConfig(
            name=directory.name, storage_path=str(directory.parent),
            stop=stop,
            verbose=settings.get("verbose", 1),
            failure_config=FailureConfig(**settings["failure_config"]),
            checkpoint_config=CheckpointConfig(**settings["checkpoint_config"]),
            callbacks=callbacks, progress_reporter=progress_reporter,
            log_to_file=settings.get("log_to_file", False),
        )
        tuner = cls(trainable, param_space=space, tune_config=tune_config, run_config=run_config,
                    resources=resources,
                    _restore={"directory": directory, "settings": settings,
                              "resume_unfinished": bool(resume_unfinished),
                              "resume_errored": resume_errored,
                              "restart_errored": restart_errored,
                              "callback_states": callback_states})
        tuner._validate()
        tuner._experiment_path = directory
        return tuner


def _suffixed(base: Path) -> Iterator[Path]:
    """``base``, then ``base_1``, ``base_2``, ...: the candidates for a generated name."""
    yield base
    for n in count(1):
        yield base.with_name(f"{base.name}_{n}")


def _claim_generated(base: Path) -> Path:
    """Create the folder of a generated experiment name: ``base``, or the first of
    ``base_1``, ``base_2``, ... that does not exist.

    ``os.mkdir`` creates a folder or fails if it exists, in one step, so two
    sweeps that start at once (two processes, or two threads) never get the
    same folder. A generated name is never an existing experiment, so
    neither ``overwrite`` nor the refusal of an existing name applies to it.
    """
    base.parent.mkdir(parents=True, exist_ok=True)
    for path in _suffixed(base):
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            continue
        return path
    raise RuntimeError("unreachable: _suffixed never ends")


def _basic_variants(search_alg: Any) -> BasicVariantGenerator | None:
    """The ``search_alg`` if it is a BasicVariantGenerator (options for the built-in sampling)."""
    return search_alg if isinstance(search_alg, BasicVariantGenerator) else None


def _restored_basic_variants(settings: dict, search_alg: Any) -> Any:
    """The ``search_alg`` a restore runs with: a BasicVariantGenerator rebuilt if none is given."""
    stored = settings.get("search", {}).get("basic_variant")
    if stored is None or search_alg is not None:
        return search_alg
    if stored["points_to_evaluate"] is None:
        raise ValueError(
            "this experiment ran with a BasicVariantGenerator whose points_to_evaluate could "
            "not be stored as JSON; pass the same one again: Tuner.restore(path, trainable, "
            "search_alg=BasicVariantGenerator(points_to_evaluate=...))")
    return BasicVariantGenerator(points_to_evaluate=stored["points_to_evaluate"],
                                 max_concurrent=stored["max_concurrent"],
                                 constant_grid_search=stored["constant_grid_search"])


def _check_same_sampling(settings: dict, basic: BasicVariantGenerator | None) -> None:
    """Raise ValueError if ``basic`` would sample other configs than the experiment did.

    Its ``max_concurrent`` may differ; points the experiment could not
    store are left to the replay, which compares the configs themselves.
    """
    if basic is None:
        return
    stored = settings.get("search", {}).get("basic_variant") or \
        {"points_to_evaluate": [], "constant_grid_search": False}
    ran = "ran with" if settings.get("search", {}).get("basic_variant") else \
        "ran without a BasicVariantGenerator, so with"
    points = stored["points_to_evaluate"]
    try:
        other_points = points is not None and points != basic.points_to_evaluate
    except Exception:   # noqa: BLE001 - e.g. numpy arrays in the points: not the stored ones
        other_points = True
    if other_points:
        raise ValueError(
            f"this experiment {ran} points_to_evaluate={points!r}, but the "
            f"BasicVariantGenerator passed to Tuner.restore has {basic.points_to_evaluate!r}; "
            "its configs would not be those of the stored trials. Pass the points the "
            "experiment started with, or leave search_alg out to use the stored ones")
    if stored["constant_grid_search"] != basic.constant_grid_search:
        raise ValueError(
            f"this experiment {ran} constant_grid_search={stored['constant_grid_search']}, "
            "but the BasicVariantGenerator passed to Tuner.restore has "
            f"constant_grid_search={basic.constant_grid_search}; its configs would not be "
            "those of the stored trials. Pass the same value, or leave search_alg out to "
            "use the stored one")


def _variant_options(basic: BasicVariantGenerator | None) -> dict:
    """The VariantGenerator arguments a BasicVariantGenerator sets."""
    if basic is None:
        return {}
    return {"points_to_evaluate": basic.points_to_evaluate,
            "constant_grid_search": basic.constant_grid_search}


def _warn_of_missing_code(code: dict, callbacks: Any, progress_reporter: Any) -> None:
    """Warn when the experiment ran with callbacks or a reporter that the restore lacks."""
    lost = []
    if code.get("callbacks") and not callbacks:
        lost.append(f"callbacks ({', '.join(code['callbacks'])}): pass callbacks=[...]")
    if code.get("progress_reporter") and progress_reporter is None:
        lost.append(f"a progress reporter ({code['progress_reporter']}): pass "
                    "progress_reporter=...")
    if lost:
        warnings.warn(
            "this experiment ran with " + " and ".join(lost) + " to Tuner.restore to keep "
            "them; fastasha does not store code with an experiment, so the restored run has "
            "none", UserWarning, stacklevel=3)


class _Run:
    """One execution of a Tuner: setup, the driver loop, and the result grid."""

    def __init__(self, tuner: Tuner) -> None:
        self.tuner = tuner
        tc, rc = tuner.tune_config, tuner.run_config
        tc._instances_for_fit()      # (a scheduler or searcher given by name: one of its own)
        restore = tuner._restore
        self.restore = restore
        # (a generated name's folder is taken only when the experiment is created)
        self.directory, self.generated = (restore["directory"], None) if restore \
            else tuner._experiment_dir()
        trainable = tuner.trainable
        if not _backend_is_threading():
            _check_picklable(trainable)
        elif rc.log_to_file:
            warnings.warn("RunConfig(log_to_file=...) has no effect on the threading backend: "
                          "its trials share the driver's process, and so its output",
                          UserWarning, stacklevel=4)
        self.scheduler = tuner._scheduler()
        self.metric, self.mode = tc.metric, tc.mode
        current = (getattr(self.scheduler, "metric", None), getattr(self.scheduler, "mode", None))
        # a duck-typed scheduler may lack set_search_properties: it keeps its own metric
        set_properties = getattr(self.scheduler, "set_search_properties", None)
        if (tc.metric, tc.mode) != current and set_properties is not None and \
                not set_properties(tc.metric, tc.mode):
            raise ValueError(
                "metric/mode were given both to TuneConfig and to the scheduler; set them in "
                "one place (TuneConfig is the usual one)"
            )
        self.metric = self.metric or getattr(self.scheduler, "metric", None)
        self.mode = self.mode or getattr(self.scheduler, "mode", None)
        if isinstance(self.scheduler, (AsyncHyperBandScheduler, MedianStoppingRule)) and (
                self.scheduler.metric is None or self.scheduler.mode is None):
            raise ValueError(
                f"{type(self.scheduler).__name__} needs a metric and a mode to judge trials by, got "
                f"metric={self.scheduler.metric!r} and mode={self.scheduler.mode!r}; pass "
                "them to TuneConfig (e.g. TuneConfig(metric='loss', mode='min')) or to the "
                "scheduler"
            )
        self.stop_dict, self.stopper = normalize_stop(rc.stop)
        fc = rc.failure_config
        if fc.fail_fast and fc.max_failures != 0:
            raise ValueError(f"fail_fast={fc.fail_fast!r} stops at the first error; leave "
                             "max_failures at 0")

        basic = _basic_variants(tc.search_alg)
        basic_seed = None if basic is None or restore else basic.seed()
        # without a seed of its own, the sweep draws one from numpy's global random state:
        # Ray samples from that state, and its FAQ makes a sweep reproducible with
        # np.random.seed(...) before it (unseeded, numpy's state is fresh entropy)
        self.seed = restore["settings"]["seed"] if restore else (
            tc.seed if tc.seed is not None else
            basic_seed if basic_seed is not None else int(np.random.randint(2**31)))
        seeds = np.random.SeedSequence(self.seed).spawn(2)
        scheduler_seed = getattr(self.scheduler, "seed", None)
        if hasattr(self.scheduler, "set_seed"):
            if restore:
                scheduler_seed = restore["settings"].get("scheduler_seed")
            if scheduler_seed is None:
                scheduler_seed = int(seeds[1].generate_state(1)[0])
            self.scheduler.set_seed(scheduler_seed)
        self.scheduler_seed = scheduler_seed

        # resources
        cpu, gpu_ids = parse_available(tuner.resources)
        self.pool = ResourcePool(cpu, gpu_ids, available_memory(tuner.resources))
        wrapper = request_of(trainable)
        if wrapper is None:
            fixed: Request | None = Request(1.0, 0.0)   # Ray's default: one CPU per trial
            self.request_for: Callable[[dict], Request] = lambda config: fixed
        elif wrapper.fixed is not None:
            fixed = wrapper.fixed
            self.request_for = lambda config: fixed
        else:
            fixed = None
            self.request_for = wrapper.request_for
        # the environment of every first trial, where each asks for the same CPUs and no
        # GPU (which devices a GPU trial gets is known only when it is assigned)
        self.first_env: dict[str, str] | None = None
        if fixed is not None:
            self.pool.check_fits(fixed)
            n_slots = self.pool.fits_count(fixed)
            if not fixed.gpu:
                self.first_env = Allocation(cpu=fixed.cpu).env()
        else:
            n_slots = max(1, int(cpu))

        # search
        self.searcher_state: _search_state.SearcherState | None = None   # set in execute
        self.basic = basic
        if tc.search_alg is not None and basic is None:
            # as in Ray: the searcher hears metric, mode and the space, and suggests configs
            # that are laid over the space's constants; at most num_samples trials
            self.searcher = tc.search_alg
            tell_search_properties(self.searcher, self.metric, self.mode, tuner.param_space,
                                   stop=rc.stop, time_budget_s=tc.time_budget_s,
                                   num_samples=tc.num_samples)
            total = tc.num_samples if tc.num_samples > 0 else None
            self.variants = None
            self.suggest = Suggestions(self.searcher, tuner.param_space)
            self.searcher_wait_s = searcher_wait_s()
            self.searcher_save_s = _search_state.save_interval_s()
        else:
            self.searcher = None
            # (a BasicVariantGenerator only sets options: the space is sampled the same way)
            self.variants = VariantGenerator(tuner.param_space, tc.num_samples,
                                             int(seeds[0].generate_state(1)[0]),
                                             **_variant_options(basic))
            total = self.variants.total
            self.suggest = lambda trial_id: self.variants.next_config()
            self.searcher_wait_s = DEFAULT_SEARCHER_WAIT_S     # (never answers None)
        self.total = total
        limits = [tc.max_concurrent_trials, basic.max_concurrent if basic else None]
        self.max_concurrent = min((n for n in limits if n), default=None)
        if self.max_concurrent is not None:
            n_slots = min(n_slots, self.max_concurrent)
        if total is not None:
            n_slots = min(n_slots, total)
        self.n_slots = max(1, n_slots)

    def settings(self, prefix: str) -> dict:
        tc, rc = self.tuner.tune_config, self.tuner.run_config
        try:
            space_json = space_to_json(self.tuner.param_space)
        except (TypeError, ValueError):
            if self.variants is not None:       # (checked already by the VariantGenerator)
                raise
            space_json = None       # a space its search_alg took, that fastasha never samples
        return {
            "name": self.directory.name,
            "created": time.time(),
            "metric": self.metric,
            "mode": self.mode,
            "num_samples": tc.num_samples,
            "total": self.total,
            "seed": self.seed,
            "scheduler_seed": self.scheduler_seed,
            "max_concurrent_trials": tc.max_concurrent_trials,
            "time_budget_s": tc.time_budget_s,
            "scheduler": _scheduler_settings(self.scheduler),
            "search": {"param_space": space_json, "custom_searcher": self.searcher is not None,
                       # the search_alg's class and those it wraps, to name them on restore
                       "searcher": None if self.searcher is None
                       else _search_state.class_names(self.searcher),
                       # a BasicVariantGenerator's options, for a restore to sample alike
                       "basic_variant": None if self.basic is None else {
                           "points_to_evaluate": self.basic.points_to_evaluate
                           if is_plain(self.basic.points_to_evaluate) else None,
                           "constant_grid_search": self.basic.constant_grid_search,
                           "max_concurrent": self.basic.max_concurrent}},
            "stop": {"criteria": self.stop_dict} if self.stopper is None
            else {"custom": repr(self.stopper)},
            "verbose": rc.verbose,
            "chdir_to_trial_dir": tc.chdir_to_trial_dir,
            # trials may have folders named by a trial_dirname_creator (kept as events)
            "trial_dirnames": tc.trial_dirname_creator is not None,
            "log_to_file": rc.log_to_file,
            # what a restore cannot rebuild, by class name, to warn when it is not passed again
            "code": {"callbacks": [type(c).__name__ for c in rc.callbacks or ()],
                     "progress_reporter": None if rc.progress_reporter is None
                     else type(rc.progress_reporter).__name__},
            "failure_config": {"max_failures": rc.failure_config.max_failures,
                               "fail_fast": rc.failure_config.fail_fast},
            "checkpoint_config": {
                "num_to_keep": rc.checkpoint_config.num_to_keep,
                "checkpoint_score_attribute": rc.checkpoint_config.checkpoint_score_attribute,
                "checkpoint_score_order": rc.checkpoint_config.checkpoint_score_order,
                "checkpoint_frequency": rc.checkpoint_config.checkpoint_frequency,
                "checkpoint_at_end": rc.checkpoint_config.checkpoint_at_end,
            },
            "trial_id_prefix": prefix,
            "resources": {"cpu": self.pool.cpu, "gpu_ids": self.pool.gpu_ids,
                          "memory": self.pool.memory if math.isfinite(self.pool.memory) else None},
        }

    # ---------------------------------------------------------------- running

    def _controller(self, store: Any, prefix: str) -> Controller:
        tc, rc = self.tuner.tune_config, self.tuner.run_config
        return Controller(
            suggest=self.suggest, total=self.total, scheduler=self.scheduler,
            request_for=self.request_for, pool=self.pool, recorder=store,
            metric=self.metric, mode=self.mode, stop=self.stop_dict, stopper=self.stopper,
            max_concurrent=self.max_concurrent, time_budget_s=tc.time_budget_s,
            max_failures=rc.failure_config.max_failures, fail_fast=rc.failure_config.fail_fast,
            checkpoint_config=rc.checkpoint_config, callbacks=rc.callbacks,
            trial_id_prefix=prefix, searcher=self.searcher, config_json=config_to_json,
            trial_name_creator=tc.trial_name_creator,
            trial_dirname_creator=tc.trial_dirname_creator,
            trials_dir=str(self.directory / _storage.TRIALS_DIR),
            chdir_to_trial_dir=tc.chdir_to_trial_dir, log_files=rc.log_files,
            trainable_name=_trainable_name(self.tuner.trainable),
            searcher_wait_s=self.searcher_wait_s,
        )

    def execute(self) -> ResultGrid:
        rc, tc = self.tuner.run_config, self.tuner.tune_config
        if not self.restore and self.generated is None and not rc.overwrite and \
                _storage.ExperimentStore.exists(self.directory):
            _storage.ExperimentStore.create(self.directory, {}, overwrite=False)   # raises
        if self.restore:        # as Ray: the saved states first, then setup
            restore_states(rc.callbacks or [], self.restore.get("callback_states"))
        # before anything is created: a setup that raises leaves nothing behind
        for setup in bound_hooks(rc.callbacks, "setup"):
            setup(stop=rc.stop, num_samples=tc.num_samples, total_num_samples=self.total)
        # a progress reporter is used only with verbose > 0; a stock one (CLIReporter, ...)
        # only configures the display, one of the user's own is called as Ray calls it
        progress_reporter = rc.progress_reporter if rc.verbose else None
        custom_reporter = progress_reporter is not None and \
            not is_stock_reporter(progress_reporter)
        interval = PROGRESS_INTERVAL
        if custom_reporter:
            reporter_setup = getattr(progress_reporter, "setup", None)
            if callable(reporter_setup):
                reporter_setup(start_time=time.time(), total_samples=self.total,
                               metric=self.metric, mode=self.mode)
        elif progress_reporter is not None:
            interval = max(progress_reporter.max_report_frequency, MIN_REPORT_INTERVAL)
        # as Ray's tune.run: trials on the threading backend and worker processes started
        # from here on find the driver's folder there (forked trial processes get it with
        # their allocation's environment)
        os.environ[ORIG_WORKING_DIR_ENV] = os.getcwd()
        # Worker processes take a moment to start: launch them first, set up meanwhile.
        driver = Driver(self.tuner.trainable, self.n_slots,
                        host=os.environ.get(DRIVER_HOST_ENV) or "127.0.0.1",
                        progress_interval=interval, first_env=self.first_env)
        driver.start()
        try:
            if self.restore:
                store = _storage.ExperimentStore.open(self.directory)
            else:
                prefix = secrets.token_hex(3)[:5]
                if self.generated is not None:
                    self.directory = _claim_generated(self.generated)
                store = _storage.ExperimentStore.create(self.directory, self.settings(prefix),
                                                        overwrite=rc.overwrite)
                self.tuner._experiment_path = self.directory
            try:
                if self.restore:
                    prefix = self.restore["settings"]["trial_id_prefix"]
                controller = self._controller(store, prefix)
                if self.searcher is not None:
                    self.searcher_state = _search_state.SearcherState(
                        self.searcher, self.directory, store, controller,
                        self.searcher_save_s, hears_results(self.searcher))
                    if not self.restore:    # (an overwritten experiment's files go)
                        self.searcher_state.start_fresh()
                if self.restore:
                    from ._restore import replay

                    replay(store, controller, self)
                if self.searcher_state is not None:
                    self.searcher_state.save()      # the state the sweep starts from
                callback_states = CallbackStates(rc.callbacks or [], store)
            except BaseException:
                store.close()
                raise
        except BaseException:
            driver.close()
            raise
        reporter, snapshot, rows = self._display(controller, progress_reporter)

        # a callback's on_experiment_end, and a progress reporter of the user's own, get
        # every trial whole; otherwise a finished trial's config and last result are
        # dropped (both are in the store by now)
        keep_finished = controller.has_hook("on_experiment_end") or custom_reporter

        # configs the store keeps only as JSON text (objects, functions, tuples):
        # the grid fit() returns gives them back as they were, as Ray's does
        objects: dict[str, Any] = {}

        def release(trial: Trial) -> None:
            """Keep a finished trial's config if it is an object; drop what is stored."""
            if trial.config is not None and not is_plain(trial.config):
                objects[trial.trial_id] = trial.config
            # (a finished trial that is not the best finished one never becomes the best)
            if trial is not controller.best_finished and not keep_finished:
                trial.config = trial.result = None

        if self.restore and not keep_finished:      # the trials a restore found finished
            for trial in controller.trials.values():
                if trial.scheduler_done and trial.status in ("TERMINATED", "ERROR"):
                    release(trial)

        def finished(trial: Trial) -> None:
            if rc.verbose >= 2:
                reporter.trial_finished(rows.row(trial), trial.error)   # type: ignore[union-attr]
            if rows is not None and rows.finished is not None:
                rows.finished.add(rows.row(trial))
            release(trial)

        interrupted = served = False
        grid: Any = None
        try:
            if reporter is not None:
                reporter.start()
            driver.serve(controller, store, experiment_name=self.directory.name,
                         trials_dir=str(self.directory / _storage.TRIALS_DIR),
                         progress=reporter, snapshot=snapshot,
                         on_trial_finished=finished,
                         periodic=self._periodic(callback_states))
            served = True
            controller.callback("on_experiment_end", trials=controller.trial_list)
        except KeyboardInterrupt:
            interrupted = True
            raise
        finally:
            # the slots exit meanwhile: driver.close() waits for them last
            try:
                try:
                    store.flush()
                    self._save_searcher_at_end(quiet=not served)
                    callback_states.save_at_end(quiet=not served)
                    if served:       # else an error is on its way out
                        if objects:        # and trials that never finished
                            objects.update((t.trial_id, t.config) for t in
                                           controller.trials.values()
                                           if t.config is not None and not is_plain(t.config))
                        store.checkpoint_soon()      # overlaps the close's work with the read
                        grid = ResultGrid.from_store(self.directory, store, configs=objects)
                finally:
                    # closed before fit() returns, though everything is durable already: the
                    # close deletes experiment.db-wal and -shm, and a script that removes or
                    # copies the folder right after fit() (a TemporaryDirectory as
                    # storage_path) must not see them vanish under it (a few ms at most)
                    store.close()
            finally:
                driver.close()
                try:
                    # a reporter of the user's own reports last when the sweep ended or
                    # was interrupted, not on the way out of an error (as in Ray)
                    if reporter is not None and (served or interrupted or not custom_reporter):
                        reporter.close(snapshot(final=True))
                finally:
                    if interrupted:
                        print(
                            f"\nExperiment interrupted; everything reported so far is saved "
                            f"in {self.directory}.\nResume it with:\n    "
                            f"{self.tuner._resume_line(self.directory)}\n", flush=True)
        failed = controller.failed_fast       # in this run (not one before a restore)
        if rc.failure_config.fail_fast == "raise" and failed is not None:
            raise TrialError.of(failed.trial_id, f"trial {failed.trial_id} failed and "
                                f"fail_fast='raise': {failed.error}\n\nIts traceback:\n"
                                f"{failed.traceback}", failed.traceback, error=failed.error)
        return grid

    def _periodic(self, callback_states: CallbackStates) -> Callable[[float], float] | None:
        """The driver's periodic hook: saving the searcher's and the callbacks' states."""
        hooks = [] if self.searcher_state is None or not self.searcher_state.supported \
            else [self.searcher_state.periodic]
        if callback_states.stateful:
            hooks.append(callback_states.periodic)
        if len(hooks) < 2:
            return hooks[0] if hooks else None
        return lambda now: min([hook(now) for hook in hooks])

    def _save_searcher_at_end(self, quiet: bool) -> None:
        """Save the searcher's state as the sweep left it (Ray does so at the end too).

        With ``quiet`` (an error or Ctrl-C is on its way out) a failing save
        only warns: the error that ended the sweep is the one to see.
        """
        if self.searcher_state is None:
            return
        try:
            self.searcher_state.save()
        except Exception as err:   # noqa: BLE001 - said, then raised unless quiet
            if not quiet:
                raise
            warnings.warn(f"saving the search_alg's state at the end of the sweep failed "
                          f"({type(err).__name__}: {err}); a restore continues from its "
                          "previous save", RuntimeWarning, stacklevel=2)

    def _display(self, controller: Controller, progress_reporter: Any
                 ) -> tuple[Any, Callable[[], Any] | None, _Snapshots | None]:
        """The status display, what the driver hands it, and the trial rows it is built from.

        ``(None, None, None)`` with ``verbose=0``. A progress reporter of the
        user's own is called with the trials; otherwise fastasha's display gets
        snapshots, laid out as a stock reporter (``tune.CLIReporter``) says.
        """
        rc = self.tuner.run_config
        if not rc.verbose:
            return None, None, None

        from ._progress import FinishedRows, ProgressReporter, default_console, is_live  # rich

        name = self.directory.name
        started = time.monotonic()
        if progress_reporter is None:
            rows = _Snapshots(controller, self.metric, self.mode, started)
            return ProgressReporter(rc.verbose, experiment_name=name, metric=self.metric), \
                rows, rows
        if not is_stock_reporter(progress_reporter):
            rows = _Snapshots(controller, self.metric, self.mode, started)
            lines = ProgressReporter(rc.verbose, experiment_name=name, metric=self.metric) \
                if rc.verbose >= 2 else None     # only its per-trial lines are used
            calls = ReporterCalls(progress_reporter, self._sys_info, lines)
            return calls, (lambda final=False: controller.trial_list), rows
        # the reporter's own metric and mode pick the best trial of the display
        metric = progress_reporter.metric or self.metric
        mode = progress_reporter.mode or self.mode
        console = default_console()
        n_rows = progress_reporter.max_progress_rows
        finished = FinishedRows(n_rows, progress_reporter.max_error_rows, metric, mode,
                                progress_reporter.sort_by_metric)
        rows = _Snapshots(controller, metric, mode, started, finished=finished,
                          n_running=max(256, n_rows),
                          sort_paused=progress_reporter.sort_by_metric)
        display = ProgressReporter(
            rc.verbose, experiment_name=name, console=console, metric=metric, max_rows=n_rows,
            layout=progress_reporter._layout(rc.verbose, live=is_live(console)))
        return display, rows, rows

    def _sys_info(self) -> tuple[str, str]:
        """What Ray passes a progress reporter as ``sys_info``: the scheduler, resource use."""
        debug_string = getattr(self.scheduler, "debug_string", None)
        scheduler = debug_string() if callable(debug_string) else \
            f"Using {type(self.scheduler).__name__}."
        pool = self.pool
        gpus = pool.free_gpu()
        used_gpu = len(gpus) - sum(gpus.values())
        resources = (f"Logical resource usage: {pool.cpu - pool.free_cpu:g}/{pool.cpu:g} "
                     f"CPUs, {used_gpu:g}/{len(gpus)} GPUs")
        return str(scheduler), resources


class _Snapshots:
    """Builds the progress display's rows and snapshots from the controller's state.

    ``metric`` and ``mode`` are the display's: the tuned ones, or a progress
    reporter's own. The controller tracks the best trial by the tuned metric;
    for another one, the best is taken among the running trials and
    ``finished.best``. ``finished`` (a :class:`~fastasha._progress.FinishedRows`)
    keeps the finished trials a reporter's table lists, when there is one.
    Of more than ``n_running`` paused trials, the snapshot passes the best
    ``n_running`` when ``sort_paused`` (the table lists them best first),
    else the first ones.
    """

    def __init__(self, controller: Controller, metric: str | None, mode: str | None,
                 started: float, finished: Any = None, n_running: int = 256,
                 sort_paused: bool = True) -> None:
        self.controller = controller
        self.metric = metric
        self.mode = mode
        self.started = started
        self.finished = finished
        self.n_running = n_running
        self.sort_paused = sort_paused and metric is not None and mode is not None
        # controller.best is the display's best when both show the tuned metric and mode
        self.tuned = metric == controller.metric and mode == controller.mode

    def row(self, trial: Trial):
        from ._progress import TrialRow, metric_of

        value = trial.metric_value if self.tuned else metric_of(trial.result, self.metric)
        return TrialRow(trial_id=trial.trial_id, status=trial.status,
                        iteration=trial.iteration or None,
                        metric=None if value is None else float(value),
                        config=trial.config or {}, result=trial.result,
                        error=trial.error, n_failures=trial.n_failures)

    def __call__(self, final: bool = False):
        """A snapshot; ``final``: the last one, which also says why the sweep stopped.

        While the sweep runs, the best is the best of the running, the paused
        and the finished trials. At the end, trials a Ctrl-C put back to PENDING
        count too, as every trial does in Ray's display (once, O(trials)).
        """
        from ._progress import ProgressSnapshot, best_of

        c = self.controller
        running = [self.row(t) for t in islice(c.running.values(), self.n_running)]
        # (as many paused ones for the table: a PBT population or HyperBand's brackets may
        # hold thousands, and a table of the best first must be of the best of all of them)
        paused_rows = [self.row(t) for t in self._paused()]
        finished = self.finished
        if final:
            best = self._best_of_all(running)
        elif self.tuned:
            best = self.row(c.best) if c.best is not None else None
        else:
            # paused trials count, as every trial that reported does in Ray's display
            paused = [self.row(t) for t in c.paused.values()]
            best = best_of([*running, *paused, finished.best] if finished is not None
                           else [*running, *paused], self.mode)
        return ProgressSnapshot(
            elapsed_s=time.monotonic() - self.started,
            counts=dict(c.counts),
            total=c.total,
            best=best,
            running=running,
            metric=self.metric,
            mode=self.mode,
            finished=finished.rows() if finished is not None else [],
            errors=finished.errors() if finished is not None else [],
            stop_reason=c.stop_message if final else None,
            paused=paused_rows,
        )

    def _paused(self) -> list:
        """The paused trials the snapshot passes: the best ``n_running`` (in O(paused
        trials), stable) or the first ones."""
        paused = self.controller.paused
        if len(paused) <= self.n_running or not self.sort_paused:
            return list(islice(paused.values(), self.n_running))
        from ._progress import metric_of

        sign = 1.0 if self.mode == "min" else -1.0

        def key(trial: Trial) -> tuple[int, float]:
            value = trial.metric_value if self.tuned else metric_of(trial.result, self.metric)
            if value is None or math.isnan(value):
                return (1, 0.0)
            return (0, sign * value)

        return heapq.nsmallest(self.n_running, paused.values(), key=key)

    def _best_of_all(self, running: list):
        """The best of the running and finished trials, and of those waiting (PENDING or
        PAUSED) that reported: a finished trial's result may be dropped once stored, so the
        finished ones count through the running best kept for them."""
        from ._progress import best_of

        c = self.controller
        waiting = [t for t in c.trials.values()
                   if t.status in ("PENDING", "PAUSED") and t.result]
        if self.tuned:
            best = c.best
            for trial in waiting:
                if c._better(trial, best):
                    best = trial
            return None if best is None else self.row(best)
        finished = [self.finished.best] if self.finished is not None else []
        return best_of([*running, *finished, *(self.row(t) for t in waiting)], self.mode)
