"""Configuration objects of a sweep, with Ray Tune's names and defaults."""

from __future__ import annotations

import numbers
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Callable

from ._validation import check_bool, check_choice, check_int, check_mode
from .callback import check_callbacks
from .progress_reporter import check_progress_reporter

# RunConfig(overwrite=None) is True when the environment sets this to 1
OVERWRITE_ENV = "FASTASHA_OVERWRITE"

#: Ray Tune settings for a Ray cluster or for Ray's loggers, with Ray's defaults. Left
#: at its default, such a setting is accepted (a Ray script passes them explicitly);
#: any other value is refused: fastasha has nothing to honour it with.
RAY_ONLY_DEFAULTS: dict[str, Any] = {
    "storage_filesystem": None,
    "export_formats": None, "restore": None, "resume_config": None,
    "server_port": None, "_remote": None,
}
_RAY_ONLY_HINTS = {
    "storage_filesystem": "pass a local or mounted folder as storage_path",
    "restore": "resume an experiment with Tuner.restore(path, trainable)",
    "resume_config": "resume an experiment with Tuner.restore(path, trainable)",
    "export_formats": "a Trainable class can call self.export_model(formats) in its cleanup()",
}


def check_log_to_file(value: Any) -> bool | str | tuple[str, str]:
    """``RunConfig(log_to_file=...)`` checked: a bool, a file name, or a pair of them."""
    names = [value] if isinstance(value, str) else \
        list(value) if isinstance(value, (tuple, list)) and len(value) == 2 else None
    if isinstance(value, bool):
        return value
    if names is None or not all(isinstance(n, str) and n.strip() for n in names):
        raise TypeError(
            f"log_to_file must be True/False, a file name, or a pair (stdout file, stderr "
            f"file), got {value!r}"
        )
    for n in names:
        if os.path.isabs(n) or os.pardir in n.replace("\\", "/").split("/"):
            raise ValueError(f"log_to_file names a file in the trial's folder; got {n!r}: "
                             "pass a plain file name such as 'output.log'")
    return names[0] if isinstance(value, str) else (names[0], names[1])


def refuse_ray_only(caller: str, settings: Mapping[str, Any]) -> None:
    """Refuse Ray cluster and logger settings (:data:`RAY_ONLY_DEFAULTS`) not at their default.

    Parameters
    ----------
    caller : str
        Named in the message, e.g. ``"RunConfig"`` or ``"tune.run"``.
    settings : mapping
        Setting names (keys of :data:`RAY_ONLY_DEFAULTS`) and the values given.

    Raises
    ------
    TypeError
        Naming every setting given a value other than Ray's default.
    """
    # the defaults are None and False: compared by identity (a pyarrow filesystem or a
    # numpy value could answer == oddly)
    changed = sorted(name for name, value in settings.items()
                     if value is not RAY_ONLY_DEFAULTS[name])
    if changed:
        hints = "; ".join(dict.fromkeys(_RAY_ONLY_HINTS[k] for k in changed
                                         if k in _RAY_ONLY_HINTS))
        raise TypeError(
            f"{caller}({', '.join(f'{k}=...' for k in changed)}) is a Ray cluster or logger "
            "setting that fastasha has no equivalent for; leave it out"
            + (f" ({hints})" if hints else "")
        )


@dataclass
class FailureConfig:
    """What happens when a trial fails.

    Parameters
    ----------
    max_failures : int, default=0
        Retries per trial after an error or a dead worker (from the
        trial's latest checkpoint when it has one). ``-1`` retries forever.
    fail_fast : bool or "raise", default=False
        Stop the whole sweep at the first trial error. With ``"raise"``,
        :meth:`Tuner.fit` then raises that trial's error (a
        :class:`~fastasha.results.TrialError` carrying its traceback, and an
        instance of the original exception's class where the driver has it)
        once everything is saved, instead of returning the results.
    """

    max_failures: int = 0
    fail_fast: bool | str = False

    def __post_init__(self) -> None:
        check_int("max_failures", self.max_failures, minimum=-1)
        if isinstance(self.fail_fast, str) and self.fail_fast.lower() == "raise":
            self.fail_fast = "raise"
        else:
            check_bool("fail_fast", self.fail_fast, hint=' or "raise"')


@dataclass
class SyncConfig:
    """Ray Tune's settings for syncing an experiment to remote storage; no effect here.

    fastasha writes the experiment into ``storage_path`` itself as the sweep
    runs (a local or mounted folder), so there is nothing to sync: a
    ``RunConfig(sync_config=SyncConfig(...))`` of a Ray script is checked
    and accepted, and changes nothing. Ray does the same with a local
    ``storage_path``.

    Parameters
    ----------
    sync_period : int, default=300
        Seconds between syncs in Ray.
    sync_timeout : int, default=1800
        Seconds a sync may take in Ray.
    sync_artifacts : bool, default=False
        Whether Ray syncs the files trials write into their folders.
    sync_artifacts_on_checkpoint : bool, default=True
        Whether Ray syncs those files with each checkpoint.
    """

    sync_period: int = 300
    sync_timeout: int = 1800
    sync_artifacts: bool = False
    sync_artifacts_on_checkpoint: bool = True

    def __post_init__(self) -> None:
        for name in ("sync_period", "sync_timeout"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"{name} must be a number of seconds >= 0, got {value!r}")
        check_bool("sync_artifacts", self.sync_artifacts)
        check_bool("sync_artifacts_on_checkpoint", self.sync_artifacts_on_checkpoint)


def check_sync_config(sync_config: Any, caller: str) -> None:
    """``TypeError`` unless ``sync_config`` is None or a :class:`SyncConfig`."""
    if sync_config is not None and not isinstance(sync_config, SyncConfig):
        raise TypeError(
            f"{caller}: sync_config must be a tune.SyncConfig or None, got {sync_config!r} "
            f"(it has no effect: the experiment is written to storage_path directly)"
        )


@dataclass
class CheckpointConfig:
    """Which checkpoints of a trial are kept.

    Parameters
    ----------
    num_to_keep : int or None, default=None
        Keep this many checkpoints per trial, the best ones by
        ``checkpoint_score_attribute`` (``None`` keeps all). As in Ray, the
        latest checkpoint is kept as well, so that a trial can resume: a
        trial whose latest checkpoint is not among its best keeps
        ``num_to_keep + 1`` of them until its next checkpoint.
    checkpoint_score_attribute : str or None, default=None
        Result key that ranks checkpoints (nested values as ``"val/loss"``);
        by default the most recent ones are kept.
    checkpoint_score_order : {"max", "min"}, default="max"
        Whether a larger or a smaller score is better.
    checkpoint_frequency : int, default=0
        For a :class:`~fastasha.trainable.Trainable` class: save a checkpoint
        every this many steps. A function objective saves its checkpoints
        itself, so (as in Ray) the Tuner refuses it there.
    checkpoint_at_end : bool or None, default=None
        For a :class:`~fastasha.trainable.Trainable` class: save one with
        the last result. Refused with a function objective, as in Ray.
    """

    num_to_keep: int | None = None
    checkpoint_score_attribute: str | None = None
    checkpoint_score_order: str = "max"
    checkpoint_frequency: int = 0
    checkpoint_at_end: bool | None = None

    def __post_init__(self) -> None:
        if self.num_to_keep is not None:
            check_int("num_to_keep", self.num_to_keep, minimum=1,
                      hint="; use None to keep every checkpoint")
        if self.checkpoint_score_attribute is not None and \
                not isinstance(self.checkpoint_score_attribute, str):
            raise TypeError(
                "checkpoint_score_attribute must be the name of a result key (a string) or "
                f"None, got {self.checkpoint_score_attribute!r}"
            )
        check_choice("checkpoint_score_order", self.checkpoint_score_order, ("max", "min"))
        check_int("checkpoint_frequency", self.checkpoint_frequency, minimum=0)
        if self.checkpoint_at_end is not None:
            check_bool("checkpoint_at_end", self.checkpoint_at_end)


def _folder_key(path: Any) -> Any:
    """``path`` spelled one way (``~``, relative parts and a trailing slash resolved), to
    compare two names of a folder; anything that is not a text path, as it is."""
    try:
        path = os.fspath(path)
    except TypeError:
        return path
    if isinstance(path, str) and path.startswith("file://"):
        path = path[len("file://"):]
    return os.path.abspath(os.path.expanduser(path)) if isinstance(path, str) else path


@dataclass
class RunConfig:
    """Where and how a sweep runs.

    Parameters
    ----------
    name : str or None, default=None
        Experiment name: its directory is ``<storage_path>/<name>``. A name
        is generated from the objective and the time when left out.
    storage_path : str, path-like or None, default=None
        Root folder of experiments, ``~/fastasha_results`` by default.
    stop : dict, callable or Stopper, optional
        When to end a trial: a dict ``{key: bound}`` stops it when
        ``result[key] >= bound``; a callable ``(trial_id, result) -> bool``;
        or a :class:`~fastasha.stopper.Stopper`.
    verbose : int, default=1
        0 silent, 1 live status table, 2 also a line per finished trial.
    failure_config : FailureConfig, optional
    checkpoint_config : CheckpointConfig, optional
    overwrite : bool or None, default=None
        Replace an existing experiment of the same name instead of refusing
        to start (a fastasha extension; without it, resume the old one with
        ``Tuner.restore``). None means False unless the environment sets
        ``FASTASHA_OVERWRITE=1``, which lets a script with a fixed ``name``
        run again unchanged, as Ray scripts are run.
    callbacks : list of Callback, optional
        :class:`~fastasha.callback.Callback` objects (Ray Tune's hooks and
        arguments), called in the driver.
    progress_reporter : ProgressReporter or None, default=None
        A :class:`~fastasha.progress_reporter.CLIReporter` or
        :class:`~fastasha.progress_reporter.JupyterNotebookReporter`
        configures the status display (columns, rows, refresh interval,
        sorting); another :class:`~fastasha.progress_reporter.ProgressReporter`
        subclass is called as Ray Tune calls it. Unused with ``verbose=0``.
        See :mod:`fastasha.progress_reporter`.
    sync_config : SyncConfig or None, default=None
        Accepted and without effect: the experiment is written to
        ``storage_path`` directly, there is nothing to sync (see
        :class:`SyncConfig`).
    storage_filesystem : None
        A Ray cluster setting, accepted at its default (None) for Ray
        scripts; any other value raises ``TypeError``.
    log_to_file : bool, str or (str, str), default=False
        Write each trial's standard output and error into files in its
        folder, as Ray does: True gives ``stdout`` and ``stderr``, a file
        name gives one file for both, a pair of names one file each; a
        retried or restored trial appends to them. Unlike Ray, which also
        copies Python's output to the console, the output goes to the files
        only, caught at the file-descriptor level (a compiled library's or a
        child process's output too). On the threading backend, whose trials
        share the driver's process, output is not redirected.
    local_dir : str, path-like or None, default=None
        Ray 2.0-2.5's name of ``storage_path``, taken as it (and then set
        back to None); giving both is an error.
    """

    name: str | None = None
    storage_path: str | None = None
    stop: dict | Callable | Any | None = None
    verbose: int = 1
    failure_config: FailureConfig | None = None
    checkpoint_config: CheckpointConfig | None = None
    callbacks: list | None = None
    overwrite: bool | None = None
    progress_reporter: Any = None
    storage_filesystem: Any = None
    sync_config: Any = None
    log_to_file: bool | str | tuple[str, str] = False
    local_dir: str | None = None

    def __post_init__(self) -> None:
        if self.local_dir is not None:
            if self.storage_path is not None and \
                    _folder_key(self.storage_path) != _folder_key(self.local_dir):
                raise ValueError(
                    f"RunConfig got storage_path={self.storage_path!r} and local_dir="
                    f"{self.local_dir!r}; local_dir is Ray 2.0-2.5's name of storage_path: "
                    "pass one of them"
                )
            self.storage_path, self.local_dir = self.local_dir, None
        if self.name is not None:
            if not isinstance(self.name, str) or not self.name.strip():
                raise ValueError(f"name must be a non-empty string, got {self.name!r}")
            if "/" in self.name or "\\" in self.name or self.name in (".", ".."):
                raise ValueError(
                    f"name must be a plain folder name, got {self.name!r}; put the parent "
                    "folder in storage_path"
                )
        if self.storage_path is not None:
            if not isinstance(self.storage_path, (str, os.PathLike)):
                raise TypeError(
                    f"storage_path must be a folder path (a string), got {self.storage_path!r} "
                    f"of type {type(self.storage_path).__name__}"
                )
            self.storage_path = os.fspath(self.storage_path)
            if not isinstance(self.storage_path, str):
                raise TypeError(f"storage_path must be a text path, got {self.storage_path!r}")
            scheme = self.storage_path.split("://", 1)[0] if "://" in self.storage_path else ""
            if scheme and scheme != "file":
                raise ValueError(
                    f"storage_path={self.storage_path!r} is a {scheme}:// URI; fastasha writes "
                    "its experiment file to a local or mounted folder: pass a folder path "
                    "(mount the bucket, or copy the folder there after the sweep)"
                )
            if scheme == "file":
                self.storage_path = self.storage_path[len("file://"):]
        if self.overwrite is None:
            self.overwrite = os.environ.get(OVERWRITE_ENV, "0") == "1"
        check_bool("overwrite", self.overwrite)
        if isinstance(self.verbose, bool) or not isinstance(self.verbose, int) \
                or self.verbose not in (0, 1, 2, 3):
            raise ValueError(f"verbose must be 0, 1, 2 or 3, got {self.verbose!r}")
        if self.failure_config is None:
            self.failure_config = FailureConfig()
        elif not isinstance(self.failure_config, FailureConfig):
            raise TypeError(
                f"failure_config must be a tune.FailureConfig, got {self.failure_config!r}; "
                "for example tune.FailureConfig(max_failures=2)"
            )
        if self.checkpoint_config is None:
            self.checkpoint_config = CheckpointConfig()
        elif not isinstance(self.checkpoint_config, CheckpointConfig):
            raise TypeError(
                f"checkpoint_config must be a tune.CheckpointConfig, got "
                f"{self.checkpoint_config!r}; for example tune.CheckpointConfig(num_to_keep=2)"
            )
        self.callbacks = check_callbacks(self.callbacks)
        self.progress_reporter = check_progress_reporter(self.progress_reporter)
        check_sync_config(self.sync_config, "RunConfig")
        refuse_ray_only("RunConfig", {"storage_filesystem": self.storage_filesystem})
        self.log_to_file = check_log_to_file(self.log_to_file)

    @property
    def log_files(self) -> tuple[str, str] | None:
        """The names of a trial's output and error files, or None (``log_to_file``)."""
        value = self.log_to_file
        if value is False:
            return None
        if value is True:
            return ("stdout", "stderr")
        if isinstance(value, str):
            return (value, value)
        return (value[0], value[1])


@dataclass
class TuneConfig:
    """What a sweep optimises and how many trials it runs.

    Parameters
    ----------
    metric : str or None, default=None
        Result key to optimise; passed to the scheduler.
    mode : {"min", "max"} or None, default=None
        Whether smaller or larger values of ``metric`` are better.
    scheduler : TrialScheduler, str or None, default=None
        Early stopping; :class:`~fastasha.schedulers.FIFOScheduler` (none)
        by default. A name (``"async_hyperband"``) is built with its
        defaults by :func:`~fastasha.schedulers.create_scheduler`, as Ray's
        Tuner does.
    search_alg : Searcher, object, str or None, default=None
        A :class:`~fastasha.search.Searcher` (possibly wrapped in a
        :class:`~fastasha.search.ConcurrencyLimiter`), or any object with
        ``suggest(trial_id)`` and, optionally, the Searcher's other
        methods. Its suggestions are laid over the constants of the param
        space; at most ``num_samples`` trials are created. By default
        configs are drawn from the param space. A name (``"optuna"``) is
        built with its defaults by :func:`~fastasha.search.create_searcher`,
        as Ray's Tuner does.
    num_samples : int, default=1
        Number of trials (times the size of any grid search); ``-1`` runs
        until ``time_budget_s``.
    max_concurrent_trials : int or None, default=None
        Cap on the trials running at once. Paused trials (PBT, HyperBand,
        BOHB) do not count. Ray Tune keeps its limit through its search
        algorithm, over every trial that has not ended: under a pausing
        scheduler it creates no new trial while that many are paused or
        running, where fastasha may start new trials beside paused ones.
    time_budget_s : float, datetime.timedelta or None, default=None
        Wall-clock budget of the sweep in seconds (or as a ``timedelta``).
    seed : int or None, default=None
        Makes sampled configs and bracket draws reproducible (a fastasha
        extension). None: the sweep draws its seed from numpy's global
        random state, so that ``np.random.seed(...)`` before ``fit()``
        makes it reproducible, as in Ray Tune.
    reuse_actors : bool, default=False
        Accepted for Ray scripts; no effect: a slot's worker process always
        runs trial after trial.
    trial_name_creator : callable or None, default=None
        ``trial -> str``: the trial's name, asked once when the trial is
        made: what ``tune.get_context().get_trial_name()`` and ``str(trial)``
        return (by default, as in Ray, ``<trainable>_<trial_id>``, with a
        config's ``"env"`` between the two). ``trial`` has ``trial_id``,
        ``config`` and ``index``.
    trial_dirname_creator : callable or None, default=None
        ``trial_dirname_creator(trial) -> str``, as in Ray: the name of the
        trial's folder under ``<experiment>/trials/`` instead of its trial
        id. Each trial needs a name of its own (include ``trial.trial_id``);
        a name that is taken, empty or holds a ``/`` ends the sweep with a
        ``ValueError``. The names are kept in the experiment: ``Result.path``
        and a restore find the folders; trials a restored sweep creates are
        named by trial id (the function is code, which the experiment does
        not keep).
    chdir_to_trial_dir : bool or None, default=None
        Run each trial with its own folder (``<experiment>/trials/<trial
        id>``) as the working directory, so that files an objective writes
        under relative paths stay apart, as Ray Tune does by default. None
        means False unless the environment sets ``RAY_CHDIR_TO_TRIAL_DIR=1``
        (Ray 2.7's switch): making a folder for every trial costs 40-120 µs
        of kernel time on ext4 (measured on this project's machines), so
        fastasha runs trials in the driver's working directory unless asked.
        With it, relative paths in a config point into the trial's folder:
        pass absolute ones. On the threading backend, where trials share
        the driver's process, the directory is never changed.
    """

    metric: str | None = None
    mode: str | None = None
    scheduler: Any = None
    search_alg: Any = None
    num_samples: int = 1
    max_concurrent_trials: int | None = None
    time_budget_s: float | None = None
    seed: int | None = None
    reuse_actors: bool = False
    trial_name_creator: Callable | None = None
    trial_dirname_creator: Callable | None = None
    chdir_to_trial_dir: bool | None = None

    def __post_init__(self) -> None:
        # Ray's names, as Ray's Tuner takes them: built now, so that a wrong name fails at
        # once, and remembered, so that each fit() runs a scheduler and a searcher of its
        # own (see _instances_for_fit)
        self._by_name: dict[str, list] = {}
        if isinstance(self.scheduler, str):
            from .schedulers import create_scheduler

            name, self.scheduler = self.scheduler, create_scheduler(self.scheduler)
            self._by_name["scheduler"] = [name, self.scheduler, False]
        if isinstance(self.search_alg, str):
            from .search import create_searcher

            name, self.search_alg = self.search_alg, create_searcher(self.search_alg)
            self._by_name["search_alg"] = [name, self.search_alg, False]
        if self.chdir_to_trial_dir is None:
            self.chdir_to_trial_dir = os.environ.get("RAY_CHDIR_TO_TRIAL_DIR", "0") == "1"
        check_bool("chdir_to_trial_dir", self.chdir_to_trial_dir)
        if self.metric is not None and not isinstance(self.metric, str):
            raise TypeError(f"metric must be a string, got {self.metric!r}")
        check_mode(self.mode)
        if self.mode is not None and self.metric is None:
            raise ValueError(
                f"mode={self.mode!r} was given without a metric; pass metric='<result key>' "
                "to TuneConfig as well"
            )
        check_int("num_samples", self.num_samples)
        if self.num_samples == 0 or self.num_samples < -1:
            raise ValueError(
                f"num_samples must be a positive number of trials or -1 (run until "
                f"time_budget_s), got {self.num_samples!r}"
            )
        if self.max_concurrent_trials is not None:
            check_int("max_concurrent_trials", self.max_concurrent_trials, minimum=1)
        if self.time_budget_s is not None and hasattr(self.time_budget_s, "total_seconds"):
            self.time_budget_s = self.time_budget_s.total_seconds()     # a timedelta, as Ray
        if self.time_budget_s is not None:
            if isinstance(self.time_budget_s, bool) or not isinstance(self.time_budget_s, numbers.Real) \
                    or not self.time_budget_s > 0:
                raise ValueError(
                    f"time_budget_s must be a number of seconds greater than 0, got "
                    f"{self.time_budget_s!r}"
                )
        if self.num_samples == -1 and self.time_budget_s is None:
            raise ValueError(
                "num_samples=-1 runs trials until the time budget is spent; set "
                "time_budget_s as well"
            )
        if self.seed is not None:
            check_int("seed", self.seed, minimum=0)
        check_bool("reuse_actors", self.reuse_actors)
        for name in ("trial_name_creator", "trial_dirname_creator"):
            value = getattr(self, name)
            if value is not None and not callable(value):
                raise TypeError(f"{name} must be a function trial -> str, got {value!r}")

    def _instances_for_fit(self) -> None:
        """Give a ``fit()`` a scheduler and a searcher of its own where names were given.

        Ray builds them from their names in each ``tune.run``, so that one
        config serves several sweeps. Here the first ``fit()`` runs those
        built when the config was made (``config.scheduler`` is then the
        one the sweep ran with, as when an object is given); each later
        one builds new ones from the names, since a scheduler keeps the
        trials it judged (ASHA's rungs) and a searcher the search space it
        was given. A field set to another object since is left as it is.
        """
        for field, entry in getattr(self, "_by_name", {}).items():
            name, built, used = entry
            if getattr(self, field) is not built:
                continue
            if used:
                if field == "scheduler":
                    from .schedulers import create_scheduler as create
                else:
                    from .search import create_searcher as create
                entry[1] = create(name)
                setattr(self, field, entry[1])
            entry[2] = True
