"""Ray Tune's logger callbacks: per-trial ``progress.csv``, ``result.json`` and TensorBoard files.

Ray Tune writes, for every trial, files in the trial's folder that many
tools read: ``progress.csv`` (one row per result), ``result.json`` (one JSON
object per line and result), ``params.json`` and ``params.pkl`` (the
config) and TensorBoard event files. The callbacks here write the same
files, in the trial's folder ``<storage_path>/<name>/trials/<trial_id>/``
(``Result.path``, ``trial.path``), with Ray's names and arguments, so that a
Ray script moves over by changing its import::

    from fastasha import tune
    from fastasha.tune.logger import CSVLoggerCallback, JsonLoggerCallback

    tuner = tune.Tuner(objective, param_space=...,
                       run_config=tune.RunConfig(callbacks=[CSVLoggerCallback(),
                                                            JsonLoggerCallback()]))

``fastasha.tune.logger`` is this module, ``fastasha.logger``. Subclass
:class:`LoggerCallback` for a logger of your own, as in Ray.

These loggers are opt-in. Ray Tune adds them to every run; fastasha writes
none of these files unless you pass the callbacks, because every result is
already in the experiment file (``experiment.db``): ``Result.metrics_dataframe``
and ``ResultGrid.get_dataframe()`` read the same data, and
:func:`export_trial_logs` writes these files after a sweep, from that file.

A logger that writes every result (all three here do) makes each report
of the objective wait for the driver, as a ``Stopper`` does: without one,
fastasha's trials buffer their reports. Ray writes these files on every
result too; for a sweep of many short reports, leave the loggers out and
call :func:`export_trial_logs` at the end.

Files are created on the first write (the trial's folder too), appended to
and flushed after every result, as Ray does, and closed when the trial
ends. A trial retried after a failure (``FailureConfig(max_failures=...)``)
or resumed by ``Tuner.restore`` appends to its files, as in Ray: its rows
follow the failed run's, with ``training_iteration`` counting from its
checkpoint (from 1 when it starts over) and ``iterations_since_restore``
from 1. Because every result is flushed, nothing written is lost on
Ctrl-C or a crash; the files of trials that were running then stay open
until the callback object is garbage-collected or the process exits.

What differs from Ray Tune:

* The result a logger gets has Ray's fields, filled in by
  :class:`LoggerCallback`: ``config``, ``time_since_restore``,
  ``iterations_since_restore`` and ``checkpoint_dir_name`` (and
  ``should_checkpoint`` when a checkpoint came with the result), the ones
  ``Result.metrics_dataframe`` has. There is no ``node_ip``, and the keys
  come in fastasha's order: the automatic fields first, then what was
  reported (Ray: the other way round).
* Nested dicts are flattened (``{"val": {"loss": 1}}`` to ``val/loss``)
  in place rather than moved to the end, and an empty dict stays a value.
* ``progress.csv`` that a trial already has (a restore in a new process)
  keeps its header: rows go into its columns. (Ray takes the columns of
  the first result it writes, and may misalign them.)
* A ``params.pkl`` that cannot be pickled is left out with a warning
  (Ray's raises and ends the run).
* The TensorBoard hparams are every number, string and bool of the
  config (Ray's: the sampled values only); each start of a trial gets its
  own event file, as in Ray (a retry in the same second as the failed
  run gets a ``.1``, ``.2``, ... suffix instead of overwriting its file).
* ``log_trial_restore`` is never called (``on_trial_restore`` is not), and
  Ray's ``pretty_print`` is not provided.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import numbers
import os
import warnings
from collections.abc import Iterable, Sequence
from typing import Any

from ._rows import flatten
from .callback import Callback
from .checkpoint import checkpoint_fields

logger = logging.getLogger(__name__)

# Ray's file names (ray.air.constants)
EXPR_PROGRESS_FILE = "progress.csv"
EXPR_RESULT_FILE = "result.json"
EXPR_PARAM_FILE = "params.json"
EXPR_PARAM_PICKLE_FILE = "params.pkl"

FORMATS = ("csv", "json", "tensorboard")


class LoggerCallback(Callback):
    """Base class of loggers that write per-trial files (Ray Tune's ``LoggerCallback``).

    Override the ``log_*`` methods; the callback hooks call them:
    ``on_trial_start`` calls :meth:`log_trial_start`, ``on_trial_result``
    :meth:`log_trial_result`, ``on_trial_save`` :meth:`log_trial_save`,
    ``on_trial_complete`` and ``on_trial_error``
    :meth:`log_trial_end` (``failed=False`` / ``True``). Close what a trial
    has open in :meth:`log_trial_end`.

    Notes
    -----
    The result given to :meth:`log_trial_result` carries the fields Ray's
    results have that fastasha fills in only when results are read:
    ``config``, ``time_since_restore``, ``iterations_since_restore``
    (counted from the trial's latest start: its first, a retry or a
    restore) and ``checkpoint_dir_name`` (with ``should_checkpoint`` when
    the result came with a checkpoint). A value the objective reported
    under one of these names is kept.

    A subclass that overrides :meth:`log_trial_result` makes every report
    of the objective wait for the driver (see the module docstring); one
    that does not (it logs only starts and ends, say) does not.
    """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # the driver calls on_trial_result, and so makes every report wait, only
        # for callbacks that override it: a logger that logs no results need not
        if "on_trial_result" not in cls.__dict__:
            logs = cls.log_trial_result is not LoggerCallback.log_trial_result
            if logs and cls.on_trial_result is Callback.on_trial_result:
                cls.on_trial_result = LoggerCallback.on_trial_result   # type: ignore[method-assign]
            elif not logs and cls.on_trial_result is LoggerCallback.on_trial_result:
                cls.on_trial_result = Callback.on_trial_result         # type: ignore[method-assign]

    # ------------------------------------------------------------ to override

    def log_trial_start(self, trial: Any) -> None:
        """Called when ``trial`` starts, and again when it starts after a failure or restore.

        Parameters
        ----------
        trial : Trial
            See :mod:`fastasha.callback` for what it offers (``trial.path``,
            ``trial.config``, ``trial.trial_id``, ...).
        """

    def log_trial_restore(self, trial: Any) -> None:
        """Ray's hook for a trial restored from a checkpoint; fastasha does not call it."""

    def log_trial_save(self, trial: Any) -> None:
        """Called when ``trial`` has saved a checkpoint (after the result it came with)."""

    def log_trial_result(self, iteration: int, trial: Any, result: dict) -> None:
        """Called for every result of ``trial``.

        Parameters
        ----------
        iteration : int
            The driver's running count of callback events.
        trial : Trial
        result : dict
            The result as reported, with Ray's automatic fields and those
            listed in the class Notes; nested dicts are kept nested. A
            copy: changing it changes nothing recorded.
        """

    def log_trial_end(self, trial: Any, failed: bool = False) -> None:
        """Called once when ``trial`` ends: ``failed`` is True if it ended in ERROR.

        ``trial.config`` and ``trial.last_result`` can still be read here
        (fastasha drops them once the trial has ended).
        """

    # ------------------------------------------------------ the callback hooks

    def on_trial_start(self, iteration: int, trials: Sequence, trial: Any,
                       **info: Any) -> None:
        _runs(self).pop(trial.trial_id, None)     # a new run: its since-restore counts restart
        self.log_trial_start(trial)

    def on_trial_result(self, iteration: int, trials: Sequence, trial: Any, result: dict,
                        **info: Any) -> None:
        self.log_trial_result(iteration, trial, self._complete(trial, result))

    def on_trial_save(self, iteration: int, trials: Sequence, trial: Any, **info: Any) -> None:
        self.log_trial_save(trial)

    def on_trial_restore(self, iteration: int, trials: Sequence, trial: Any,
                         **info: Any) -> None:
        self.log_trial_restore(trial)

    def on_trial_complete(self, iteration: int, trials: Sequence, trial: Any,
                          **info: Any) -> None:
        _runs(self).pop(trial.trial_id, None)
        self.log_trial_end(trial, failed=False)

    def on_trial_error(self, iteration: int, trials: Sequence, trial: Any,
                       **info: Any) -> None:
        _runs(self).pop(trial.trial_id, None)
        self.log_trial_end(trial, failed=True)

    def _complete(self, trial: Any, result: dict) -> dict:
        """``result`` with Ray's fields that fastasha fills in when read (see the Notes)."""
        run = _runs(self).get(trial.trial_id)
        total, this = result.get("time_total_s"), result.get("time_this_iter_s")
        if run is None:
            # the run's first result: the time it resumed from is its total less this step
            offset = total - this if _is_real(total) and _is_real(this) else None
            run = _runs(self)[trial.trial_id] = [0, offset]
        run[0] += 1
        out = dict(result)
        name = _checkpoint_name(trial, result)
        # (the driver's result has checkpoint_dir_name already, as Ray's: it goes after the
        # fields below, where the experiment's own rows have it, so that the columns of a
        # live log and of export_trial_logs come in one order)
        out.pop("checkpoint_dir_name", None)
        if name is not None:
            out.pop("should_checkpoint", None)
        config = getattr(trial, "config", None)
        if config is not None:
            out.setdefault("config", config)
        if run[1] is not None and _is_real(total):
            out.setdefault("time_since_restore", total - run[1])
        out.setdefault("iterations_since_restore", run[0])
        out.setdefault("checkpoint_dir_name", name)
        if name is not None:
            out.setdefault("should_checkpoint", True)
        return out


def _runs(callback: LoggerCallback) -> dict:
    """``{trial_id: [results in this run, time_total_s it resumed from]}`` of ``callback``.

    Kept in the instance's ``__dict__`` on first use: Ray's loggers (and so
    subclasses written for Ray) do not call ``super().__init__()``.
    """
    runs = callback.__dict__.get("_logger_runs")
    if runs is None:
        runs = callback.__dict__["_logger_runs"] = {}
    return runs


def _is_real(x: Any) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool)


def _checkpoint_name(trial: Any, result: dict) -> str | None:
    """The folder name of the checkpoint saved with ``result``, or None."""
    # a checkpoint is recorded (fastasha's Trial.latest) before callbacks hear of its result
    return checkpoint_fields(result, getattr(trial, "latest", None) or None)["checkpoint_dir_name"]


def _folder(trial: Any) -> str:
    """The trial's folder, created if needed."""
    path = getattr(trial, "local_path", None) or getattr(trial, "path", None)
    if not path:
        raise ValueError(
            f"trial {trial} has no folder to write its logs to (trial.path is {path!r}); "
            "logger callbacks write into the trial folders of a Tuner's experiment"
        )
    os.makedirs(path, exist_ok=True)
    return path


# --------------------------------------------------------------------- files

def json_fallback(value: Any) -> Any:
    """A JSON form of a value ``json`` cannot write, as Ray's loggers make it.

    numpy arrays become lists and numpy scalars Python numbers; other
    numbers become ``int`` or ``float``; anything else its ``str()``.
    """
    tolist = getattr(value, "tolist", None)
    if type(value).__module__ == "numpy" and callable(tolist):
        return tolist()
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    return str(value)


class _CsvFile:
    """One trial's ``progress.csv``: columns from the first row (or the file's own header)."""

    def __init__(self, path: str, fresh: bool = False) -> None:
        self.flush = not fresh      # a live log is flushed after each result, an export at the end
        self.fields: list[str] | None = None
        self.header = True
        if not fresh and os.path.exists(path) and os.path.getsize(path) > 0:
            with open(path, newline="") as f:
                self.fields = next(csv.reader(f), None) or None
            self.header = False
        self.file = open(path, "w" if fresh else "a", newline="")  # noqa: SIM115 - kept open
        self.writer: csv.DictWriter | None = None

    def write(self, result: dict) -> None:
        row = dict(result)
        row.pop("config", None)
        row = flatten(row)
        if self.writer is None:
            # as in Ray: the columns are those of the first result; keys that
            # appear later are left out
            self.writer = csv.DictWriter(self.file, self.fields or list(row),
                                         extrasaction="ignore")
            if self.header:
                self.writer.writeheader()
        self.writer.writerow(row)
        if self.flush:
            self.file.flush()

    def close(self) -> None:
        self.file.close()


def _write_params(folder: str, config: Any) -> None:
    """``params.json`` and ``params.pkl`` of ``config`` in ``folder``."""
    with open(os.path.join(folder, EXPR_PARAM_FILE), "w") as f:
        json.dump(config, f, indent=2, sort_keys=True, default=json_fallback)
    from ._execution.driver import _cloudpickle  # joblib's (pickles lambdas too)

    path = os.path.join(folder, EXPR_PARAM_PICKLE_FILE)
    try:
        data = _cloudpickle().dumps(config)
    except Exception as err:  # noqa: BLE001 - a log file must not end the sweep
        warnings.warn(f"{EXPR_PARAM_PICKLE_FILE} of {folder} is not written: the config cannot "
                      f"be pickled ({type(err).__name__}: {err})", RuntimeWarning, stacklevel=2)
        return
    with open(path, "wb") as f:
        f.write(data)


class _JsonFile:
    """One trial's ``result.json``: a JSON object per line and result."""

    def __init__(self, path: str, fresh: bool = False) -> None:
        self.flush = not fresh      # a live log is flushed after each result, an export at the end
        self.file = open(path, "w" if fresh else "a")  # noqa: SIM115 - kept open

    def write(self, result: dict) -> None:
        self.file.write(json.dumps(result, default=json_fallback) + "\n")
        if self.flush:
            self.file.flush()

    def close(self) -> None:
        self.file.close()


_SKIPPED_TBX = ("config", "pid", "timestamp", "time_total_s", "training_iteration")
_HPARAM_TYPES = (str, bool, int, float, list)


class _TbxFile:
    """One run of a trial in TensorBoard: an event file in the trial's folder."""

    def __init__(self, writer_class: Any, folder: str, suffix: str = "",
                 flush: bool = True) -> None:
        self.flush = flush          # a live log is flushed after each result, an export at the end
        self.writer = writer_class(folder, flush_secs=30, filename_suffix=suffix)
        self.last: dict = {}        # the scalars of the latest result, for the hparams

    def write(self, result: dict) -> None:
        import numpy as np

        step = result.get("timesteps_total") or result.get("training_iteration")
        row = {k: v for k, v in result.items() if k not in _SKIPPED_TBX}
        scalars = {}
        for key, value in flatten(row).items():
            tag = f"ray/tune/{key}"    # Ray's tags, so that dashboards carry over
            if isinstance(value, (int, float, np.integer, np.floating)):
                if not math.isnan(value):
                    scalars[tag] = value
                    self.writer.add_scalar(tag, value, global_step=step)
            elif isinstance(value, np.ndarray) and value.ndim in (3, 4, 5) and value.size:
                if value.ndim == 3:
                    self.writer.add_image(tag, value, global_step=step)
                elif value.ndim == 4:
                    self.writer.add_images(tag, value, global_step=step)
                else:
                    self.writer.add_video(tag, value, global_step=step, fps=20)
            elif (isinstance(value, list) and value) or \
                    (isinstance(value, np.ndarray) and value.size):
                try:
                    self.writer.add_histogram(tag, value, global_step=step)
                except (ValueError, TypeError):
                    logger.warning("%s is not a value TensorBoard can show as a histogram: %r",
                                   tag, value)
        self.last = scalars
        if self.flush:
            self.writer.flush()

    def close(self, config: Any) -> None:
        """Write the hparams of ``config`` with the latest scalars, then close."""
        try:
            if isinstance(config, dict) and config and self.last:
                self._hparams(config)
        finally:
            self.writer.close()

    def _hparams(self, config: dict) -> None:
        import numpy as np
        from tensorboardX.summary import hparams

        params = {}
        for key, value in flatten(config).items():
            if isinstance(value, np.generic):
                value = value.item()
            if isinstance(value, _HPARAM_TYPES):
                params[key] = value
        if not params:
            return
        try:
            for summary in hparams(hparam_dict=params, metric_dict=self.last):
                self.writer.file_writer.add_summary(summary)
        except Exception:     # as Ray: the hparams are not worth ending the sweep
            logger.exception("tensorboardX could not write the hparams %r", params)


# ---------------------------------------------------------------- callbacks

class CSVLoggerCallback(LoggerCallback):
    """Write each trial's results to ``progress.csv`` in its folder (as Ray Tune's).

    One row per result, nested dicts flattened (``{"a": {"b": 1}}`` is the
    column ``a/b``), without the ``config``. The columns are those of the
    trial's first result, as in Ray: a key that first appears in a later
    result is left out of the file (``result.json`` and the experiment file
    keep it), and a key missing from a result leaves its cell empty.
    Lists and other values are written as their ``str()``.

    Every report of the objective waits for the driver while this callback
    is in use (see :mod:`fastasha.logger`).

    Examples
    --------
    >>> from fastasha.tune.logger import CSVLoggerCallback
    >>> callbacks = [CSVLoggerCallback()]   # RunConfig(callbacks=callbacks)
    """

    def __init__(self) -> None:
        self._trial_files: dict[str, _CsvFile] = {}

    def log_trial_result(self, iteration: int, trial: Any, result: dict) -> None:
        file = self._trial_files.get(trial.trial_id)
        if file is None:
            path = os.path.join(_folder(trial), EXPR_PROGRESS_FILE)
            file = self._trial_files[trial.trial_id] = _CsvFile(path)
        file.write(result)

    def log_trial_end(self, trial: Any, failed: bool = False) -> None:
        file = self._trial_files.pop(trial.trial_id, None)
        if file is not None:
            file.close()


class JsonLoggerCallback(LoggerCallback):
    """Write ``result.json``, ``params.json`` and ``params.pkl`` in each trial's folder.

    As Ray Tune's: ``result.json`` has one JSON object per line and
    result (nested as reported, with the ``config``); ``params.json`` the
    config (sorted keys, indented) and ``params.pkl`` the config pickled
    with cloudpickle, both written when the trial starts. Values JSON
    cannot hold are written as Ray writes them (:func:`json_fallback`:
    numpy values as numbers and lists, anything else as its ``str()``).

    Every report of the objective waits for the driver while this callback
    is in use (see :mod:`fastasha.logger`).
    """

    def __init__(self) -> None:
        self._trial_files: dict[str, _JsonFile] = {}

    def log_trial_start(self, trial: Any) -> None:
        file = self._trial_files.pop(trial.trial_id, None)
        if file is not None:
            file.close()
        self.update_config(trial, trial.config)
        self._trial_files[trial.trial_id] = _JsonFile(
            os.path.join(_folder(trial), EXPR_RESULT_FILE))

    def log_trial_result(self, iteration: int, trial: Any, result: dict) -> None:
        if trial.trial_id not in self._trial_files:
            self.log_trial_start(trial)
        self._trial_files[trial.trial_id].write(result)

    def log_trial_end(self, trial: Any, failed: bool = False) -> None:
        file = self._trial_files.pop(trial.trial_id, None)
        if file is not None:
            file.close()

    def update_config(self, trial: Any, config: dict) -> None:
        """Write ``params.json`` and ``params.pkl`` of ``config`` in the trial's folder."""
        _write_params(_folder(trial), config)


def _summary_writer_class() -> Any:
    try:
        from tensorboardX import SummaryWriter
    except ImportError as err:
        raise ImportError(
            "TBXLoggerCallback writes TensorBoard files with tensorboardX, which is not "
            f"installed ({err}): pip install \"tensorboardX>=2.6\" (or, in a clone of "
            'fastasha: pip install -e ".[tensorboard]")'
        ) from err
    return SummaryWriter


class TBXLoggerCallback(LoggerCallback):
    """Write TensorBoard event files in each trial's folder with tensorboardX (as Ray Tune's).

    Every numeric value of a result (nested ones flattened, ``a/b``) is a
    scalar tagged ``ray/tune/<key>`` at step ``timesteps_total`` if the
    result has it, else ``training_iteration``; ``config``, ``pid``,
    ``timestamp``, ``time_total_s`` and ``training_iteration`` are left out,
    and so are NaN values. Non-empty lists and arrays are histograms; numpy
    arrays of 3, 4 or 5 dimensions an image, images or a video. When the
    trial ends, its hparams (the numbers, strings and bools of its config)
    are written with the scalars of its last result, for TensorBoard's
    HParams tab. Open it with ``tensorboard --logdir <experiment folder>``.

    Every report of the objective waits for the driver while this callback
    is in use (see :mod:`fastasha.logger`).

    Raises
    ------
    ImportError
        If ``tensorboardX`` is not installed (``pip install tensorboardX``).
    """

    def __init__(self) -> None:
        self._summary_writer_cls = _summary_writer_class()
        self._trial_writer: dict[str, _TbxFile] = {}
        self._starts: dict[str, int] = {}

    def log_trial_start(self, trial: Any) -> None:
        file = self._trial_writer.pop(trial.trial_id, None)
        if file is not None:
            file.close(None)
        # tensorboardX names its file after the second it opens it, and would
        # overwrite the failed run's file in a retry of the same second
        n = self._starts.get(trial.trial_id, 0)
        self._starts[trial.trial_id] = n + 1
        self._trial_writer[trial.trial_id] = _TbxFile(
            self._summary_writer_cls, _folder(trial), f".{n}" if n else "")

    def log_trial_result(self, iteration: int, trial: Any, result: dict) -> None:
        if trial.trial_id not in self._trial_writer:
            self.log_trial_start(trial)
        self._trial_writer[trial.trial_id].write(result)

    def log_trial_end(self, trial: Any, failed: bool = False) -> None:
        self._starts.pop(trial.trial_id, None)
        file = self._trial_writer.pop(trial.trial_id, None)
        if file is not None:
            file.close(getattr(trial, "config", None))


# ------------------------------------------------------- after the sweep

def export_trial_logs(experiment: Any, formats: Iterable[str] = ("csv", "json")) -> list[str]:
    """Write Ray Tune's per-trial log files from an experiment file, after the sweep.

    The files the logger callbacks of this module write during a sweep,
    without slowing the sweep down: every result is read back from the
    experiment file and written into its trial's folder.

    Parameters
    ----------
    experiment : str, os.PathLike or ResultGrid
        The experiment folder (``<storage_path>/<name>``, holding
        ``experiment.db``), or the ``ResultGrid`` of one (``fit()``'s, or
        ``ResultGrid.from_path``'s).
    formats : iterable of str, default=("csv", "json")
        Which files: ``"csv"`` (``progress.csv``), ``"json"``
        (``result.json``, ``params.json``, ``params.pkl``) and
        ``"tensorboard"`` (event files; needs tensorboardX).

    Returns
    -------
    list of str
        The trial folders written to, in the grid's order (trials that
        reported nothing get only ``params.json`` and ``params.pkl``).

    Raises
    ------
    ValueError
        If a format is unknown, or ``experiment`` is not a fastasha
        experiment.
    ImportError
        If ``"tensorboard"`` is asked for without tensorboardX installed.

    Notes
    -----
    ``progress.csv``, ``result.json`` and the ``params`` files are
    replaced; a new TensorBoard event file is added next to those already
    there (delete those first if the sweep logged with
    :class:`TBXLoggerCallback` as well). The rows are the trial's results as
    ``Result.metrics_dataframe`` has them: with ``done=True`` on the last
    result of a trial that ended TERMINATED (a callback sees ``done=False``
    there, as Ray's loggers do). A grid read back from the experiment
    folder has the JSON form of configs that held objects, and so do the
    files written from it.

    For example, ``export_trial_logs("~/fastasha_results/lr_sweep",
    formats=("csv", "tensorboard"))``, then ``tensorboard --logdir
    ~/fastasha_results/lr_sweep``.
    """
    from .results import ResultGrid

    if isinstance(formats, str):
        formats = (formats,)
    formats = tuple(formats)
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise ValueError(f"unknown format(s) {unknown!r}; choose among {FORMATS!r}")
    writer_class = _summary_writer_class() if "tensorboard" in formats else None
    grid = experiment if isinstance(experiment, ResultGrid) else \
        ResultGrid.from_path(os.path.expanduser(os.fspath(experiment)))
    folders = []
    for result in grid:
        loaded = result._history is not None
        history = result.history()
        folder = result.path
        os.makedirs(folder, exist_ok=True)
        files: list[Any] = []
        if "csv" in formats and history:
            files.append(_CsvFile(os.path.join(folder, EXPR_PROGRESS_FILE), fresh=True))
        if "json" in formats:
            _write_params(folder, result.config)
            if history:
                files.append(_JsonFile(os.path.join(folder, EXPR_RESULT_FILE), fresh=True))
        tbx = _TbxFile(writer_class, folder, ".export", flush=False) if writer_class and history else None
        try:
            for row in history:
                for file in files:
                    file.write(row)
                if tbx is not None:
                    tbx.write(row)
        finally:
            for file in files:
                file.close()
            if tbx is not None:
                tbx.close(result.config)
        if not loaded:      # a long grid's histories need not all stay in memory
            result._history = None
        folders.append(folder)
    return folders


__all__ = [
    "CSVLoggerCallback",
    "JsonLoggerCallback",
    "LoggerCallback",
    "TBXLoggerCallback",
    "export_trial_logs",
    "json_fallback",
]
