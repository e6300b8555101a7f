"""Ray Tune's older entry point: ``tune.run(...)`` and the ``ExperimentAnalysis`` it returns.

Many Ray Tune ASHA scripts predate ``Tuner``: they call ``tune.run(objective,
config=..., scheduler=..., metric=..., mode=..., num_samples=...)`` and read
``analysis.best_config``. :func:`run` maps its arguments onto a
:class:`~fastasha.tuner.Tuner`, and :class:`ExperimentAnalysis` answers
Ray's questions from the experiment's :class:`~fastasha.results.ResultGrid`.

Examples
--------
>>> from fastasha import tune
>>> def objective(config):
...     tune.report({"loss": (config["x"] - 2) ** 2})
>>> import tempfile, joblib
>>> with tempfile.TemporaryDirectory() as root, joblib.parallel_config(backend="threading"):
...     analysis = tune.run(objective, config={"x": tune.grid_search([1, 2, 3])},
...                         metric="loss", mode="min", storage_path=root, verbose=0)
...     analysis.best_config
{'x': 2}
"""

from __future__ import annotations

import os
import warnings
from typing import Any, Callable

from ._rows import flatten, lookup
from ._validation import check_mode
from .config import OVERWRITE_ENV, RAY_ONLY_DEFAULTS, check_sync_config, refuse_ray_only
from .results import Result, ResultGrid, TuneError
from .schedulers._base import DEFAULT_METRIC


def run(
    run_or_experiment: Callable,
    *,
    name: str | None = None,
    metric: str | None = None,
    mode: str | None = None,
    stop: Any = None,
    time_budget_s: float | None = None,
    config: dict | None = None,
    resources_per_trial: dict | None = None,
    num_samples: int = 1,
    storage_path: str | None = None,
    search_alg: Any = None,
    scheduler: Any = None,
    checkpoint_config: Any = None,
    verbose: int | None = None,
    progress_reporter: Any = None,
    max_failures: int = 0,
    fail_fast: bool | str = False,
    reuse_actors: bool = False,
    raise_on_failed_trial: bool = True,
    callbacks: list | None = None,
    max_concurrent_trials: int | None = None,
    keep_checkpoints_num: int | None = None,
    checkpoint_score_attr: str | None = None,
    checkpoint_freq: int = 0,
    checkpoint_at_end: bool = False,
    trial_name_creator: Callable | None = None,
    trial_dirname_creator: Callable | None = None,
    chdir_to_trial_dir: bool | None = None,
    log_to_file: bool | str | tuple[str, str] = False,
    **ray_only: Any,
) -> ExperimentAnalysis:
    """Run a sweep the way Ray Tune's ``tune.run`` does; returns an :class:`ExperimentAnalysis`.

    The arguments mean what they mean in Ray Tune 2.x and go to a
    :class:`~fastasha.tuner.Tuner`: ``config`` is the param space,
    ``resources_per_trial`` goes to :func:`~fastasha.tune.with_resources`,
    ``local_dir`` is taken as ``storage_path``, ``resume`` (True,
    ``"LOCAL"`` or ``"AUTO"``, with Ray's ``"+ERRORED"``-style suffixes)
    continues the experiment ``name`` with :meth:`Tuner.restore
    <fastasha.tuner.Tuner.restore>`, ``keep_checkpoints_num`` and
    ``checkpoint_score_attr`` (``"min-loss"`` for a smaller-is-better
    score), ``checkpoint_freq`` and ``checkpoint_at_end`` (for a
    :class:`~fastasha.trainable.Trainable` class) build a
    :class:`~fastasha.config.CheckpointConfig`; ``progress_reporter`` (a
    ``tune.CLIReporter``, ...) goes to :class:`~fastasha.config.RunConfig`.
    ``scheduler`` and ``search_alg`` may be Ray's names for them
    (``scheduler="async_hyperband"``, ``search_alg="hyperopt"``), built
    with their defaults by :func:`~fastasha.schedulers.create_scheduler`
    and :func:`~fastasha.search.create_searcher`, as in Ray.

    Raises
    ------
    TuneError
        With ``raise_on_failed_trial=True`` (Ray's default), after the sweep
        and with everything saved, if any trial ended in ERROR.
    TypeError
        For an argument ``tune.run`` does not have, or one of Ray's cluster
        and logger settings given a value other than its default (fastasha
        has no equivalent to honour it with).
    ValueError
        For a ``scheduler`` or ``search_alg`` name that fastasha does not
        have (the message lists those it has), and the other reasons given
        in the messages.
    ImportError
        For a ``search_alg`` name whose library is not installed (the
        message says how to install it).
    """
    from . import tune
    from ._trainable import resolve_trainable, with_resources
    from .trainable import is_class_trainable

    run_or_experiment = resolve_trainable(run_or_experiment)   # a registered name
    if not callable(run_or_experiment):
        raise TypeError(
            f"tune.run needs the objective function or the name it was registered under "
            f"(tune.register_trainable), got {run_or_experiment!r}; fastasha does not run "
            "Experiment objects"
        )
    loggers = ray_only.pop("loggers", None)
    if loggers is not None:
        raise TypeError(
            "tune.run(loggers=...) is Ray 1.x's way to write log files; pass the callbacks "
            "that write them instead: callbacks=[CSVLoggerCallback(), JsonLoggerCallback()] "
            "from fastasha.tune.logger"
        )
    local_dir = ray_only.pop("local_dir", None)
    resume = _resume_flags(ray_only.pop("resume", False))
    check_sync_config(ray_only.pop("sync_config", None), "tune.run")
    unknown = sorted(set(ray_only) - set(RAY_ONLY_DEFAULTS))
    if unknown:
        raise TypeError(f"tune.run() got unexpected keyword argument(s) {unknown}")
    refuse_ray_only("tune.run", ray_only)
    # Ray's names, built before a resume too (which needs a fresh searcher of the same class)
    if isinstance(scheduler, str):
        from .schedulers import create_scheduler

        scheduler = create_scheduler(scheduler)
    if isinstance(search_alg, str):
        from .search import create_searcher

        search_alg = create_searcher(search_alg)
    if local_dir is not None and storage_path is None:
        storage_path = os.fspath(local_dir)
    trainable = run_or_experiment
    if (checkpoint_freq or checkpoint_at_end) and not is_class_trainable(trainable):
        # Ray 1.x: "no effect when using the Functional Training API"; the Tuner refuses them
        warnings.warn(
            "tune.run(checkpoint_freq=..., checkpoint_at_end=...) has no effect on a function "
            "objective, as in Ray 1.x: it saves its checkpoints itself (tune.report(..., "
            "checkpoint=...) or tune.checkpoint_dir)", UserWarning, stacklevel=2)
        checkpoint_freq, checkpoint_at_end = 0, False
    if resources_per_trial is not None:
        trainable = with_resources(trainable, resources_per_trial)
    separate = keep_checkpoints_num is not None or checkpoint_score_attr or checkpoint_freq or \
        checkpoint_at_end
    if checkpoint_config is not None and separate:
        raise ValueError("pass checkpoint_config, or keep_checkpoints_num, checkpoint_score_attr, "
                         "checkpoint_freq and checkpoint_at_end, not both")
    if checkpoint_config is None and separate:
        order = "max"
        if checkpoint_score_attr and checkpoint_score_attr.startswith("min-"):
            checkpoint_score_attr, order = checkpoint_score_attr[4:], "min"
        checkpoint_config = tune.CheckpointConfig(num_to_keep=keep_checkpoints_num,
                                                  checkpoint_score_attribute=checkpoint_score_attr,
                                                  checkpoint_score_order=order,
                                                  checkpoint_frequency=checkpoint_freq,
                                                  checkpoint_at_end=checkpoint_at_end)
    tuner = None
    if resume is not None:
        tuner = _resumed(trainable, name, storage_path, resume, config=config,
                         scheduler=scheduler, search_alg=search_alg, stop=stop,
                         callbacks=callbacks, progress_reporter=progress_reporter)
    tuner = tuner or tune.Tuner(
        trainable,
        param_space=config,
        tune_config=tune.TuneConfig(
            metric=metric, mode=mode, scheduler=scheduler, search_alg=search_alg,
            num_samples=num_samples, max_concurrent_trials=max_concurrent_trials,
            time_budget_s=time_budget_s, reuse_actors=reuse_actors,
            trial_name_creator=trial_name_creator, trial_dirname_creator=trial_dirname_creator,
            chdir_to_trial_dir=chdir_to_trial_dir),
        run_config=tune.RunConfig(
            name=name, storage_path=storage_path, stop=stop,
            verbose=1 if verbose is None else verbose, callbacks=callbacks,
            progress_reporter=progress_reporter, log_to_file=log_to_file,
            failure_config=tune.FailureConfig(max_failures=max_failures, fail_fast=fail_fast),
            checkpoint_config=checkpoint_config),
    )
    # after a Ctrl-C, the way back is tune.run's own, as in Ray
    tuner._resume_line = lambda path: (f"tune.run(trainable, name={path.name!r}, "
                                       f"storage_path={str(path.parent)!r}, resume=True)")
    try:
        grid = tuner.fit()
    except FileExistsError as err:
        if resume not in (None, False) or name is None:
            raise
        path = _experiment_path(name, storage_path)
        if not tune.Tuner.can_restore(path):
            raise
        # (the Tuner's message suggests RunConfig(overwrite=True), which tune.run cannot take)
        raise FileExistsError(
            f"{path} already holds an experiment; with tune.run, pass resume='AUTO' (or True) "
            f"to continue it, as in Ray, or replace it: run the script with the environment "
            f"variable {OVERWRITE_ENV}=1") from err
    analysis = ExperimentAnalysis(grid.experiment_path, default_metric=metric,
                                  default_mode=mode, _grid=grid)
    failed = [r for r in grid if r.status == "ERROR"]
    if raise_on_failed_trial and failed:
        raise TuneError(f"trials did not complete: {[r.trial_id for r in failed]}; "
                        f"the first error: {failed[0].error}")
    return analysis


# Ray's tune.run(resume=...): the base values, and the suffixes that say what
# becomes of errored trials (Tuner.restore's resume_unfinished, resume_errored,
# restart_errored)
_RESUME_BASES = {"LOCAL", "AUTO", "TRUE"}
_RESUME_SUFFIXES = {
    "ERRORED": {"resume_errored": True},
    "RESTART_ERRORED": {"restart_errored": True},
    "ERRORED_ONLY": {"resume_errored": True, "resume_unfinished": False},
    "RESTART_ERRORED_ONLY": {"restart_errored": True, "resume_unfinished": False},
}


def _resume_flags(resume: Any) -> dict | None:
    """What ``tune.run(resume=...)`` asks for: None (a new experiment) or restore flags.

    The flags hold ``must_exist`` (True and ``"LOCAL"``: resuming nothing is
    an error; ``"AUTO"``: then a new experiment starts) and the keyword
    arguments of :meth:`Tuner.restore`.
    """
    if resume is None or resume is False:
        return None
    if resume is True:
        return {"must_exist": True}
    if not isinstance(resume, str):
        raise TypeError(f"tune.run(resume=...) takes a bool or a string such as 'AUTO', got "
                        f"{resume!r}")
    base, *suffixes = resume.upper().split("+")
    if base == "ERRORED_ONLY":
        # Ray 1.x's value: errored trials start again from scratch (Ray 2.x reads it as
        # LOCAL+RESTART_ERRORED_ONLY, and says so in its deprecation warning)
        base, suffixes = "LOCAL", ["RESTART_ERRORED_ONLY", *suffixes]
    if base not in _RESUME_BASES or any(s not in _RESUME_SUFFIXES for s in suffixes):
        hint = " (fastasha keeps experiments in local or mounted folders only)" \
            if base in ("REMOTE", "PROMPT") else ""
        raise ValueError(
            f"tune.run(resume={resume!r}) is not one fastasha takes{hint}: use True, 'LOCAL' "
            "or 'AUTO', optionally with '+ERRORED', '+RESTART_ERRORED', '+ERRORED_ONLY' or "
            "'+RESTART_ERRORED_ONLY'"
        )
    flags: dict[str, Any] = {"must_exist": base != "AUTO"}
    for suffix in suffixes:
        flags.update(_RESUME_SUFFIXES[suffix])
    return flags


def _experiment_path(name: str, storage_path: str | None) -> str:
    """The folder of ``tune.run(name=..., storage_path=...)``'s experiment."""
    from .result import default_results_dir

    return os.path.join(os.fspath(storage_path or default_results_dir()), name)


def _resumed(trainable: Any, name: str | None, storage_path: str | None, flags: dict,
             **settings: Any) -> Any:
    """The Tuner that resumes ``name`` for ``tune.run(resume=...)``; None to start anew."""
    from .tuner import Tuner

    flags = dict(flags)
    must_exist = flags.pop("must_exist")
    if name is None:
        if must_exist:
            raise ValueError("tune.run(resume=...) needs the experiment's name=, the one it was "
                             "first run with")
        # as in Ray: a generated name is new, so there is nothing to resume and AUTO starts anew
        warnings.warn("tune.run(resume='AUTO') without name= cannot find an earlier run of "
                      "this experiment, and starts a new one; pass the name= it was first run "
                      "with to resume it", stacklevel=3)
        return None
    path = _experiment_path(name, storage_path)
    if not Tuner.can_restore(path):
        if must_exist:
            raise ValueError(
                f"tune.run(resume=...) found no experiment to resume at {path}; check name= "
                "and storage_path=, or pass resume='AUTO' to start one when there is none"
            )
        return None
    config = settings.pop("config")
    return Tuner.restore(path, trainable, param_space=config, **flags, **settings)


class ExperimentAnalysis:
    """The results of an experiment, with Ray Tune's ``ExperimentAnalysis`` names.

    Parameters
    ----------
    experiment_checkpoint_path : str or path-like
        The experiment's folder (``<storage_path>/<name>``).
    default_metric, default_mode : str, optional
        Used when a method is called without ``metric`` / ``mode``; by
        default those the sweep was tuned with. A ``default_mode`` alone
        makes ``"_metric"`` the default metric, as in Ray (the key a
        number an objective returns is reported under).
    """

    def __init__(self, experiment_checkpoint_path: str | os.PathLike, *,
                 default_metric: str | None = None, default_mode: str | None = None,
                 trials: Any = None, _grid: ResultGrid | None = None) -> None:
        if trials is not None:
            raise TypeError("ExperimentAnalysis(trials=...) is not supported: it reads the "
                            "trials from the experiment folder")
        check_mode(default_mode)
        self._grid = _grid if _grid is not None else \
            ResultGrid.from_path(experiment_checkpoint_path)
        self.default_metric = default_metric or self._grid._metric
        self.default_mode = default_mode or self._grid._mode
        if self.default_metric is None and self.default_mode is not None:
            self.default_metric = DEFAULT_METRIC

    @property
    def experiment_path(self) -> str:
        return self._grid.experiment_path

    @property
    def trials(self) -> list[Result]:
        """Every trial (``trial_id``, ``config``, ``last_result``, ``status``, ``error``)."""
        return list(self._grid)

    @property
    def results(self) -> dict[str, dict]:
        """The last result of every trial, by trial id."""
        return {r.trial_id: r.metrics for r in self._grid}

    def _metric_mode(self, metric: str | None, mode: str | None) -> tuple[str, str]:
        metric, mode = metric or self.default_metric, mode or self.default_mode
        if metric is None or mode is None:
            raise ValueError("pass metric and mode (e.g. metric='loss', mode='min'), or give "
                             "default_metric and default_mode to ExperimentAnalysis")
        return metric, mode

    def _check_defaults(self, what: str, instead: str) -> None:
        """Raise ValueError if the default metric or mode is missing (the ``best_*`` properties).

        As in Ray, they need both even for an experiment of one trial.
        """
        missing = [name for name, value in (("default_metric", self.default_metric),
                                            ("default_mode", self.default_mode))
                   if value is None]
        if missing:
            raise ValueError(
                f"{what} is the best by the default metric and mode, and "
                f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not set: pass "
                "metric= and mode= to tune.run (or default_metric= and default_mode= to "
                f"ExperimentAnalysis), or call {instead}")

    def get_best_trial(self, metric: str | None = None, mode: str | None = None,
                       scope: str = "last", filter_nan_and_inf: bool = True) -> Result | None:
        """The best trial by ``metric`` and ``mode``; None if no trial reported it.

        As in Ray Tune, an experiment of a single trial gives that trial,
        whatever ``metric``, ``mode`` and ``scope`` say, and even when it
        reported no value of the metric (or none at all). With more trials,
        ``metric`` and ``mode`` default to ``default_metric`` and
        ``default_mode``.

        Parameters
        ----------
        metric : str, optional
            The result key to compare (``"outer/inner"`` for a nested one).
        mode : {"min", "max"}, optional
            Whether the smallest or the largest value is the best.
        scope : {"last", "avg", "last-5-avg", "last-10-avg", "all"}, default="last"
            Which results of a trial count, as in
            :meth:`ResultGrid.get_best_result <fastasha.results.ResultGrid.get_best_result>`.
        filter_nan_and_inf : bool, default=True
            Ignore NaN and infinite values.

        Raises
        ------
        ValueError
            With more than one trial, if a metric or a mode is neither given
            nor a default, or if ``mode`` or ``scope`` is not one of the above.
        """
        if len(self._grid) == 1:
            return self._grid[0]
        metric, mode = self._metric_mode(metric, mode)
        try:
            return self._grid.get_best_result(metric, mode, scope, filter_nan_and_inf)
        except RuntimeError:
            return None

    def get_best_config(self, metric: str | None = None, mode: str | None = None,
                        scope: str = "last") -> dict | None:
        """The config of :meth:`get_best_trial`."""
        best = self.get_best_trial(metric, mode, scope)
        return None if best is None else best.config

    @property
    def best_trial(self) -> Result | None:
        """:meth:`get_best_trial` by the default metric and mode (ValueError without them)."""
        self._check_defaults("best_trial", "get_best_trial(metric, mode)")
        return self.get_best_trial()

    @property
    def best_config(self) -> dict | None:
        """:meth:`get_best_config` by the default metric and mode (ValueError without them)."""
        self._check_defaults("best_config", "get_best_config(metric, mode)")
        return self.get_best_config()

    @property
    def best_result(self) -> dict | None:
        """The last result of :attr:`best_trial`."""
        self._check_defaults("best_result", "get_best_trial(metric, mode).last_result")
        best = self.best_trial
        return None if best is None else best.metrics

    @property
    def best_checkpoint(self) -> Any:
        """The best checkpoint of the best trial by the default metric and mode."""
        self._check_defaults("best_checkpoint", "get_best_checkpoint(trial, metric, mode)")
        best = self.best_trial
        if best is None or not best.best_checkpoints:
            return None
        metric, mode = self._metric_mode(None, None)
        try:
            return best.get_best_checkpoint(metric, mode)
        except RuntimeError:
            return best.checkpoint

    def _trial(self, trial: Result | str | os.PathLike) -> Result:
        """``trial``, or the trial whose folder it is (Ray 1.x passed trials as their logdir)."""
        if not isinstance(trial, (str, os.PathLike)):
            return trial
        folder = os.path.abspath(os.path.expanduser(os.fspath(trial)))
        for result in self._grid:
            if os.path.abspath(result.path) == folder:
                return result
        raise ValueError(
            f"{os.fspath(trial)!r} is not the folder of a trial of the experiment at "
            f"{self.experiment_path}; pass one of analysis.trials, or its .path"
        )

    def get_best_checkpoint(self, trial: Result | str, metric: str | None = None,
                            mode: str | None = None) -> Any:
        """The checkpoint of ``trial`` (or of the trial in that folder) whose result is best
        by ``metric``; None if it has none.

        ``metric`` defaults to the default metric, then, as in Ray, to
        ``training_iteration``; ``mode`` to the default mode.
        """
        trial = self._trial(trial)
        metric, mode = self._metric_mode(metric or self.default_metric or "training_iteration",
                                         mode)
        try:
            return trial.get_best_checkpoint(metric, mode)
        except RuntimeError:
            return None

    def get_last_checkpoint(self, trial: Result | str | None = None,
                            metric: str = "training_iteration", mode: str = "max") -> Any:
        """The latest checkpoint of ``trial`` (by default of the best trial); None if none."""
        trial = self.get_best_trial(metric, mode) if trial is None else self._trial(trial)
        return None if trial is None else trial.checkpoint

    def get_trial_checkpoints_paths(self, trial: Result | str,
                                    metric: str | None = None) -> list[tuple[str, Any]]:
        """``(path, value of metric)`` of each checkpoint ``trial`` (or the trial in that folder)
        kept, in the order of ``Result.best_checkpoints`` (by ``CheckpointConfig``'s score,
        worst first; by time without one); ``metric`` defaults to the default metric, then
        to ``training_iteration``, as in Ray."""
        metric = metric or self.default_metric or "training_iteration"
        return [(checkpoint.path, lookup(metrics, metric, None))
                for checkpoint, metrics in self._trial(trial).best_checkpoints]

    def get_best_logdir(self, metric: str | None = None, mode: str | None = None,
                        scope: str = "last") -> str | None:
        """The folder of :meth:`get_best_trial` (Ray 1.x's name); None if no trial reported it."""
        best = self.get_best_trial(metric, mode, scope)
        return None if best is None else best.path

    @property
    def best_logdir(self) -> str | None:
        """The folder of the best trial by the default metric and mode."""
        self._check_defaults("best_logdir", "get_best_logdir(metric, mode)")
        return self.get_best_logdir()

    @property
    def trial_dataframes(self) -> dict:
        """Every trial's results, one data frame per trial id."""
        return {r.trial_id: r.metrics_dataframe for r in self._grid}

    def fetch_trial_dataframes(self) -> dict:
        """:attr:`trial_dataframes` (Ray 1.x read them from the trials' files with this)."""
        return self.trial_dataframes

    @property
    def best_dataframe(self):
        """The results of the best trial, as a data frame."""
        self._check_defaults("best_dataframe", "get_best_trial(metric, mode)")
        best = self.best_trial
        return None if best is None else best.metrics_dataframe

    @property
    def best_result_df(self):
        """The best trial's last result as a one-row data frame (nested keys flattened)."""
        from .results import _require_pandas

        best = self.best_result
        if best is None:
            return None
        frame = _require_pandas().DataFrame([flatten(best)])
        return frame.set_index("trial_id") if "trial_id" in frame else frame

    def get_all_configs(self, prefix: bool = False) -> dict[str, dict]:
        """Every trial's config, by trial id; with ``prefix``, flattened into
        ``config/...`` keys (``{"config/lr": 0.01}``), as in Ray."""
        if prefix:
            return {r.trial_id: flatten(r.config or {}, "config/") for r in self._grid}
        return {r.trial_id: r.config for r in self._grid}

    def dataframe(self, metric: str | None = None, mode: str | None = None):
        """One row per trial: its best result by ``metric`` and ``mode`` if both are given,
        else its last one (as in Ray: a ``mode`` needs a ``metric``)."""
        if mode is not None and metric is None:
            raise ValueError("dataframe(mode=...) needs a metric too: dataframe(metric='loss', "
                             "mode='min')")
        if mode is None:
            metric = None
        return self._grid.get_dataframe(filter_metric=metric, filter_mode=mode)

    @property
    def results_df(self):
        """One row per trial with its last result (pandas), indexed by trial id as in Ray."""
        frame = self._grid.get_dataframe()
        return frame.set_index("trial_id") if "trial_id" in frame else frame

    def __repr__(self) -> str:
        return f"ExperimentAnalysis({self.experiment_path!r}, trials={len(self._grid)})"


# Ray 1.x's name of the class ExperimentAnalysis grew out of (tune.Analysis(path))
Analysis = ExperimentAnalysis
