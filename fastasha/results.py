"""Results of a sweep: :class:`ResultGrid` and :class:`Result`, as in Ray Tune.

A ``ResultGrid`` is read from the experiment directory alone
(:meth:`ResultGrid.from_path`), so results can be inspected without the
objective, in another process, or after a crash. Per-trial histories
(``Result.metrics_dataframe``) are loaded from the experiment file on first
use, not kept in memory.

Results carry the fields Ray Tune adds to every result, filled in here,
when they are read, rather than shipped with each report: ``config``,
``time_since_restore`` and ``iterations_since_restore`` (counted from the
trial's latest start: its first, a retry under ``FailureConfig`` or a
``Tuner.restore``), ``checkpoint_dir_name`` (``should_checkpoint`` too on a
result saved with a checkpoint) and, in ``Result.metrics`` only,
``experiment_tag``. What differs from Ray:

* ``node_ip`` is not given: trials record ``hostname``, and fastasha has
  no cluster address of its own to report.
* ``checkpoint_dir_name`` names a checkpoint the trial still keeps (a
  folder of :attr:`Result.path`); a result whose checkpoint was deleted
  since (``CheckpointConfig(num_to_keep=...)``, ``restart_errored``) has
  ``None``, as one saved without. Folders are named after the iteration
  (``checkpoint_000006``), not numbered from 0 as Ray's.
* ``experiment_tag`` is fastasha's (see :func:`fastasha._rows.experiment_tag`).
* A trial that never reported has empty ``metrics`` (Ray's holds its
  ``config`` and the worker's ``pid``, ``hostname``, ... there).
* A trial created but never started, because the time budget
  (``TuneConfig(time_budget_s=...)``), a stopper's ``stop_all()`` or
  ``fail_fast`` ended the sweep first, is listed ``"PENDING"`` with empty
  ``metrics`` (as after Ctrl-C), so that ``Tuner.restore`` runs it. Ray
  lists it too, but ``TERMINATED``: its ``_stop_experiment_if_needed``
  stops every unfinished trial, started or not, when the stopper (where
  the time budget is a ``TimeoutStopper``) says ``stop_all()`` or
  ``fail_fast`` applies, and a restore does not run it again.
* After a driver crash, a trial whose last result was never recorded as a
  result counts only the results that were (``iterations_since_restore``),
  and ``Result.metrics`` lacks the since-restore fields if that result came
  from another run than the stored ones.
"""

from __future__ import annotations

import builtins
import json
import math
import numbers
import os
import sys
import warnings
import weakref
from pathlib import Path
from typing import Any, Iterator

from ._rows import MISSING, experiment_tag, flatten, lookup
from ._storage import TRIALS_DIR, ExperimentStore, StoreError
from ._validation import check_choice, check_mode
from .checkpoint import Checkpoint, checkpoint_rank

SCOPES = ("last", "avg", "last-5-avg", "last-10-avg", "all")


class TuneError(Exception):
    """Ray Tune's general error: ``tune.run`` raises it when trials failed."""


class TrialError(TuneError, RuntimeError):
    """The error a trial ended with; ``str(err)`` is the message, ``.traceback`` the text.

    Use :meth:`of` to make one: where the exception's class is known in this
    process, the error is an instance of it too (as Ray's ``RayTaskError``
    is), so ``isinstance(result.error, ValueError)`` works. Only the class
    comes back: attributes the original exception had (``errno``,
    ``returncode``, a custom ``__init__``'s) are not kept, since the worker
    sends its text, not the object.
    """

    def __init__(self, trial_id: str, message: str, traceback: str | None = None) -> None:
        super().__init__(message)
        self.trial_id = trial_id
        self.traceback = traceback

    def __str__(self) -> str:        # the message, whatever the original class prints
        return str(self.args[0]) if self.args else ""

    def __reduce__(self) -> tuple:   # a plain TrialError: the subclass exists only here
        return (TrialError, (self.trial_id, self.args[0] if self.args else "", self.traceback))

    @classmethod
    def of(cls, trial_id: str, message: str, traceback: str | None = None,
           error: str | None = None) -> TrialError:
        """The error of a trial, also an instance of the exception class it raised.

        ``error`` is the worker's ``"<class name>: <text>"`` when ``message``
        says more than that (by default ``message`` is it). The class is
        looked up among modules already imported (never
        imported for this: reading results runs no code). Classes that do
        not derive from ``Exception`` (``KeyboardInterrupt``, ...), or that
        cannot be mixed with ``RuntimeError``, give a plain
        :class:`TrialError`.
        """
        original = _exception_class(message if error is None else error, traceback)
        if original is None:
            return cls(trial_id, message, traceback)
        mixed = _MIXED.get(original)
        if mixed is None:
            try:
                mixed = type(f"TrialError[{original.__qualname__}]", (cls, original),
                             {"__module__": __name__})
            except Exception:   # noqa: BLE001 - a class that refuses to be mixed in
                mixed = cls
            _MIXED[original] = mixed
        return mixed(trial_id, message, traceback)


_MIXED: dict[type, type] = {}


def _exception_class(message: str | None, traceback: str | None) -> type | None:
    """The ``Exception`` subclass a trial raised, if this process has it.

    The worker writes the error as ``"<class name>: <text>"``; the traceback's
    own line for that exception (the last unindented line that starts with
    the name, possibly qualified by its module) says where the class lives.
    The text itself may hold colons, newlines or other errors' output, and
    notes may follow it: neither is read for the class.
    """
    head = (message or "").split(":", 1)[0].strip()
    if not head.isidentifier():
        return None
    name = head
    for line in reversed((traceback or "").splitlines()):
        if line and not line[0].isspace():
            first = line.split(":", 1)[0].strip()
            if first == head or first.endswith("." + head):
                name = first
                break
    parts = name.split(".")
    candidates: list = []
    if len(parts) == 1:
        # the user's script (__main__) first: a class of its own may shadow a builtin
        candidates = [getattr(sys.modules.get("__main__"), name, None),
                      getattr(builtins, name, None)]
    else:
        for i in range(len(parts) - 1, 0, -1):
            module = sys.modules.get(".".join(parts[:i]))
            if module is not None:
                found: Any = module
                for attr in parts[i:]:
                    found = getattr(found, attr, None)
                candidates = [found]
                break
    for found in candidates:
        if isinstance(found, type) and issubclass(found, Exception) and \
                not issubclass(found, TrialError):
            return found
    return None


def _best(pairs: Any, metric: str, mode: str) -> Any:
    """Of ``(result, item)`` pairs, the item whose result has the best value of ``metric``.

    Only real numbers count (see :func:`_number`), NaN not; the first of
    equals wins. None if no result has such a value.
    """
    scored = []
    for result, item in pairs:
        x = _number(lookup(result, metric, None))
        if x is not None and not math.isnan(x):
            scored.append((x, item))
    if not scored:
        return None
    pick = min if mode == "min" else max
    return pick(scored, key=lambda s: s[0])[1]


def _number(value: Any) -> float | None:
    """``value`` as a float if it is a real number (Python or numpy), else ``None``.

    ``bool``, strings, bytes and ``None`` are not numbers here: a trial that
    reported ``{"loss": "0.001"}`` has not reported a loss.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    return float(value)


def _require_pandas():
    try:
        import pandas
    except ImportError as err:
        raise ImportError(
            "data frames need pandas: pip install \"pandas>=2\" (or, in a clone of fastasha: "
            "pip install -e '.[pandas]')"
        ) from err
    return pandas


# the fields Result.metrics fills in when read
_FILLED = frozenset(("config", "checkpoint_dir_name", "should_checkpoint", "time_since_restore",
                     "iterations_since_restore", "experiment_tag"))

# what Result's repr leaves out of its metrics, as Ray's does: the fields every
# result gets, whatever the objective reports
_REPR_HIDDEN = frozenset((
    "training_iteration", "time_this_iter_s", "time_total_s", "timestamp", "date", "trial_id",
    "hostname", "pid", "node_ip", "done", "config", "time_since_restore",
    "iterations_since_restore", "timesteps_since_restore", "timesteps_total", "episodes_total",
    "checkpoint_dir_name", "should_checkpoint", "experiment_tag",
))


def _local_filesystem():
    try:
        import pyarrow.fs
    except ImportError as err:
        raise ImportError(
            "filesystem is a pyarrow file system, as in Ray Tune: pip install pyarrow (the "
            "results are local files: Result.path and ResultGrid.experiment_path name them)"
        ) from err
    return pyarrow.fs.LocalFileSystem()


class _GridReads:
    """What the results of one grid share, so that reading all of them costs little.

    * **Last runs.** Where the since-restore fields of each trial's last
      result count from. The first few trials asked about are read one by
      one (the heads of their stored batches, see
      :meth:`ExperimentStore.last_runs`); after that, or on
      :meth:`load_all`, one read of every head serves the whole grid. If the
      file can no longer be read, or holds batches of an older form (a list
      of results, before format version 1 held compact batches), a warning
      says so once and no trial has since-restore fields.
    * **JSON text.** A result's config, last result and checkpoint list
      arrive as JSON text, decoded when first needed. The grid is cut in
      chunks of ``CHUNK`` results: the first result of a chunk read is
      decoded alone (a few results looked at decode nothing more), the
      second decodes that field of the whole chunk in one ``json.loads``
      (about half the cost of one call each, and their dicts share their
      key strings). Each field is decoded on its own: a question about last
      results only (``get_best_result``) decodes no config.
    * The trials folder's path as text (``Result.path``).

    The grid is held by a weak reference: a :class:`Result` kept after its
    grid is gone does not keep the grid's other results in memory (its own
    fields are then decoded alone).
    """

    ONE_BY_ONE = 16
    CHUNK = 256
    # (also what a grid pickled before trial folders could be named finds: none named)
    dirnames: dict[str, str] = {}
    # the experiment's CheckpointConfig as its settings keep it (a grid pickled before
    # it was read, or a file without it: checkpoints in the order they were saved)
    checkpoint_config: dict = {}

    def __init__(self, path: str | os.PathLike) -> None:
        self._path = path
        self.trials_dir = os.path.join(path, TRIALS_DIR)
        # trial_id -> its folder's name, where a trial_dirname_creator named it
        self.dirnames: dict[str, str] = {}
        self._grid: weakref.ref[ResultGrid] | None = None
        self._begun: set[tuple[str, int]] = set()     # (field, chunk): one result decoded
        # trial_id -> (pid, offset, count) of its last run, as ExperimentStore.last_runs
        self._runs: dict[str, tuple | None] = {}
        self._complete = False

    def attach(self, grid: ResultGrid) -> None:
        """Decode neighbouring fields among ``grid``'s results from now on."""
        self._grid = weakref.ref(grid)

    def __getstate__(self) -> dict:
        # (a weak reference cannot be pickled; an unpickled grid attaches itself again)
        return {**self.__dict__, "_grid": None}

    # --------------------------------------------------------------- JSON text

    def decode(self, result: Result, field: str) -> Any:
        """The JSON text in ``result``'s attribute ``field``, decoded and stored there.

        Once a result of a chunk of the grid has been decoded alone, the
        next one to be read decodes the rest of its chunk (the same field)
        with it. Any failure there (a text that is not one JSON value) falls
        back to decoding ``result``'s own text alone, so that it raises (or
        not) exactly as ``json.loads`` of it would.
        """
        grid = None if self._grid is None else self._grid()
        position = result._position
        results = None if grid is None else grid._results
        if results is not None and position < len(results) and results[position] is result:
            chunk = (field, position // self.CHUNK)
            if chunk not in self._begun:        # perhaps the only one read: alone
                self._begun.add(chunk)
            else:
                first = chunk[1] * self.CHUNK
                pending = [r for r in results[first:first + self.CHUNK]
                           if isinstance(getattr(r, field), str)]
                texts = [getattr(r, field) for r in pending]
                try:
                    values = json.loads("[" + ",".join(texts) + "]")
                except (ValueError, RecursionError):    # (one nesting level more)
                    values = None
                if values is not None and len(values) == len(texts):
                    for other, value in zip(pending, values):
                        setattr(other, field, value)
                    return getattr(result, field)
        value = json.loads(getattr(result, field))
        setattr(result, field, value)
        return value

    # --------------------------------------------------------------- last runs

    def _read(self, trial_ids: set[str] | None) -> dict[str, tuple] | None:
        store = None
        try:
            store = ExperimentStore.open(self._path, readonly=True)
            # (StoreError: also batches stored as a list of results, by an older fastasha)
            return store.last_runs(trial_ids)
        except (StoreError, OSError) as err:
            warnings.warn(f"cannot read {self._path} ({err}); metrics of its trials lack "
                          "time_since_restore and iterations_since_restore",
                          RuntimeWarning, stacklevel=5)
            self._runs, self._complete = {}, True
            return None
        finally:
            if store is not None:
                store.close()

    def load_all(self) -> None:
        """Read the last run of every trial (one pass over the experiment file)."""
        if not self._complete:
            runs = self._read(None)
            if runs is not None:
                self._runs, self._complete = runs, True

    def get(self, trial_id: str) -> tuple | None:
        """``(pid, offset, count)`` of the trial's last run (None: no stored results)."""
        if not self._complete and trial_id not in self._runs:
            if len(self._runs) >= self.ONE_BY_ONE:
                self.load_all()
            else:
                runs = self._read({trial_id})
                if runs is not None:
                    self._runs[trial_id] = runs.get(trial_id)
        return self._runs.get(trial_id)


class Result:
    """The outcome of one trial.

    Attributes
    ----------
    trial_id : str
    config : dict
        The trial's hyperparameters. In the grid :meth:`Tuner.fit` returns,
        values JSON cannot hold (classes, functions, tuples, numpy values) are
        the objects themselves; a grid read back from the experiment folder
        has their JSON form (``{"__repr__": ...}`` for objects).
    metrics : dict
        The trial's last result, nested as reported, with Ray's fields
        (``config``, ``time_since_restore``, ``iterations_since_restore``,
        ``checkpoint_dir_name``, ``experiment_tag``, ...; see the module
        docstring). Empty if the trial reported nothing. If the driver
        stopped before the trial's end was recorded, the last result stored
        in its history.
    error : TrialError or None
        Why the trial failed, with its traceback text; also an instance of
        the exception's own class when this process has it (see
        :meth:`TrialError.of`).
    path : str
        The trial's folder in the experiment (holds its checkpoints).
    status : str
        ``"TERMINATED"``, ``"ERROR"``, ``"RUNNING"`` (interrupted) or
        ``"PENDING"`` (created, but the sweep ended before it started, or
        it waited for a retry: see the module docstring).
    """

    def __init__(self, experiment_path: Path, row: dict, reads: _GridReads | None = None,
                 position: int = 0) -> None:
        self._experiment_path = experiment_path
        self.trial_id: str = row["trial_id"]
        self._index: int = row["index"]
        # shared by a grid: the since-restore fields of the last results, JSON decoded a
        # chunk at a time; position is this result's in the grid
        self._reads = reads if reads is not None else _GridReads(experiment_path)
        self._position = position
        self._filled: dict | None = None
        # config and metrics may arrive as JSON text: decoded on first use, so that a
        # grid of 100,000 trials costs little until it is looked at
        self._config = row["config"]
        # None: a trial that was running (or put back) when the driver stopped, whose
        # last result was never recorded; other trials without one reported nothing.
        # What such a trial has stored may be older than its history: a run's start
        # stores the trial's last result so far, the failed run's for a retry, and
        # nothing until its end (the retry's results would get its since-restore fields)
        self._metrics = row["last_result"]
        self._stored_last = None
        if row["status"] in ("RUNNING", "PENDING"):
            self._stored_last, self._metrics = self._metrics, None
        elif self._metrics is None:
            self._metrics = {}
        self.status: str = row["status"]
        self.bracket: int | None = row["bracket"]
        self.n_failures: int = row["n_failures"]
        self.error: TrialError | None = (
            TrialError.of(self.trial_id, row["error"], row["traceback"]) if row["error"] and
            self.status == "ERROR" else None
        )
        latest = row["checkpoint"]
        self.checkpoint: Checkpoint | None = Checkpoint(latest) if latest else None
        self._checkpoints = row["checkpoints"]
        self._history: list[dict] | None = None

    @classmethod
    def from_path(cls, path: str | os.PathLike) -> Result:
        """The result of the trial whose folder is ``path`` (``<experiment>/trials/<trial_id>``).

        Raises
        ------
        ValueError
            If ``path`` is not a trial folder of a fastasha experiment.
        """
        path = Path(path).expanduser()
        experiment = path.parent.parent
        if path.parent.name != TRIALS_DIR or not ExperimentStore.exists(experiment):
            raise ValueError(
                f"{str(path)!r} is not a trial folder of a fastasha experiment; pass "
                f"<experiment>/{TRIALS_DIR}/<trial_id> (Result.path gives it), or read the "
                "whole experiment with ResultGrid.from_path(<experiment>)"
            )
        store = ExperimentStore.open(experiment, readonly=True)
        try:
            settings = store.settings()
            dirnames = store.trial_dirnames(settings)
            by_folder = {name: trial_id for trial_id, name in dirnames.items()}
            trial_id = by_folder.get(path.name, path.name)
            rows = [r for r in store.trial_rows(decode=False) if r["trial_id"] == trial_id]
        finally:
            store.close()
        if not rows:
            raise ValueError(f"the experiment {str(experiment)!r} has no trial {path.name!r}")
        result = cls(experiment, rows[0])
        result._reads.dirnames = dirnames
        result._reads.checkpoint_config = settings.get("checkpoint_config") or {}
        return result

    @property
    def filesystem(self):
        """``pyarrow.fs.LocalFileSystem()``, as Ray's (needs pyarrow): results are local files."""
        return _local_filesystem()

    @property
    def path(self) -> str:
        """The trial's folder in the experiment (holds its checkpoints)."""
        return os.path.join(self._reads.trials_dir,
                            self._reads.dirnames.get(self.trial_id, self.trial_id))

    # the names Ray's Trial has for it (ExperimentAnalysis hands out Results as trials)
    local_path = path
    logdir = path

    @property
    def config(self) -> dict:
        if isinstance(self._config, str):
            return self._reads.decode(self, "_config")
        return self._config

    @property
    def last_result(self) -> dict:
        """:attr:`metrics`, under the name Ray's ``Trial`` gives it."""
        return self.metrics

    @property
    def metrics(self) -> dict:
        if self._filled is None:
            last = self._last()
            self._filled = self._complete(last, self._is_history_row(last))
        return self._filled

    def _is_history_row(self, result: dict) -> bool:
        """Whether ``result`` is the last row of the loaded history (not the stored last result)."""
        return bool(self._history) and result is self._history[-1]

    def _last(self) -> dict:
        """The last result as stored, without the fields filled in when read."""
        if isinstance(self._metrics, str):
            return self._reads.decode(self, "_metrics")
        if self._metrics is None:
            # the driver stopped while the trial ran: its last stored result stands
            # for the one never recorded (as Tuner.restore recovers it)
            history = self.history()
            if history:
                self._metrics = history[-1]
            else:
                stored = self._stored_last
                self._metrics = json.loads(stored) if isinstance(stored, str) else stored or {}
        return self._metrics

    def _value(self, key: str) -> Any:
        """``key`` of the last result (a nested one named ``"outer/inner"``), or None."""
        value = lookup(self._last(), key)
        if value is MISSING:        # a field filled in when read ("config/lr", ...)?
            value = lookup(self.metrics, key, None)
        return value

    def _complete(self, last: dict, from_history: bool) -> dict:
        """``last`` with the fields Ray's results carry (see the module docstring).

        A row of the history (``from_history``) has all but ``experiment_tag``.
        Fields the trial reported itself keep their value and place.
        """
        if not last:
            return last
        config = self.config
        if from_history:
            out = dict(last)
            out.setdefault("experiment_tag", experiment_tag(self._index, config))
            return out
        extras = self._extras(last)
        tag = experiment_tag(self._index, config)
        if _FILLED.isdisjoint(last):        # the usual case: one dict, built at once
            return {**last, "config": config, **extras, "experiment_tag": tag}
        out = dict(last)
        out.setdefault("config", config)
        for key, value in extras.items():
            out.setdefault(key, value)
        out.setdefault("experiment_tag", tag)
        return out

    def _extras(self, last: dict) -> dict:
        """The fields besides ``config`` and ``experiment_tag`` a stored last result lacks."""
        extras = _checkpoint_fields(self._checkpoint_names(), last)
        run = self._reads.get(self.trial_id)
        if run is not None:
            total = last.get("time_total_s")
            if type(total) is not float:
                total = _number(total)
            # the run of the stored results, if the last result is from it
            if total is not None and last.get("pid") == run[0]:
                extras["time_since_restore"] = total - run[1]
                extras["iterations_since_restore"] = run[2]
        return extras

    def _checkpoint_names(self) -> dict:
        """Folder names of the kept checkpoints, by the report they were saved with."""
        if isinstance(self._checkpoints, str):
            self._reads.decode(self, "_checkpoints")
        names = {}
        for path, count, *rest in self._checkpoints or ():
            # (path, report count, score, time_total_s, the result's training_iteration:
            # older files keep only the report count)
            iteration = rest[2] if len(rest) > 2 else count
            names[(iteration, rest[1] if len(rest) > 1 else None)] = os.path.basename(path)
        return names

    @property
    def best_checkpoints(self) -> list[tuple[Checkpoint, dict]]:
        """The best kept checkpoints, each with the result it was saved with, as in Ray 2.7+.

        Ray's checkpoint manager gives them in its own order, and so does
        this: with ``CheckpointConfig(checkpoint_score_attribute=...)``, by
        score, **the worst first and the best last** (a score that is not a
        real number ranks below all others, equals by when they were
        saved); without one, in the order they were saved (the latest
        last). With ``num_to_keep`` these are the ``num_to_keep`` last of
        that order: the trial's latest checkpoint, kept on disk to resume
        from, is left out if it is not among them (:attr:`checkpoint` is
        always the latest). Read back with :meth:`ResultGrid.from_path`
        or :meth:`from_path`, the order is the same. (Ray's own
        ``Result.from_path`` lists every checkpoint folder by its index
        instead, not knowing the experiment's ``CheckpointConfig``.)

        Returns
        -------
        list of (Checkpoint, dict)
            The dict is the full result the trial reported at the
            checkpoint's ``training_iteration`` (read from the experiment
            file on first use), as in Ray Tune. If that result is not
            stored, the dict holds only ``training_iteration``.
        """
        self._checkpoint_names()         # decodes the list
        if not self._checkpoints:
            return []
        config = self._reads.checkpoint_config
        order = config.get("checkpoint_score_order", "max") \
            if config.get("checkpoint_score_attribute") else None
        entries = sorted(self._checkpoints, key=lambda c: checkpoint_rank(c, order))
        if config.get("num_to_keep") is not None:
            entries = entries[-config["num_to_keep"]:]
        # a trial that restarted from scratch reports an iteration again: the later wins
        by_iteration = {r.get("training_iteration"): r for r in self.history()}
        pairs = []
        for path, count, *rest in entries:
            # the training_iteration of the result it was saved with (older files and
            # objectives that do not report their own: the report count)
            iteration = rest[2] if len(rest) > 2 else count
            pairs.append((Checkpoint(path), dict(by_iteration.get(
                iteration, {"training_iteration": iteration}))))
        return pairs

    def get_best_checkpoint(self, metric: str, mode: str) -> Checkpoint:
        """Of :attr:`best_checkpoints`, the one whose result has the best value of ``metric``.

        As in Ray, the choice is among :attr:`best_checkpoints`: the latest
        checkpoint counts only if it is one of them.

        Parameters
        ----------
        metric : str
            A key of the checkpoints' results; a nested value is named
            ``"outer/inner"``.
        mode : {"min", "max"}
            Whether the smallest or the largest value is the best.

        Returns
        -------
        Checkpoint
            The first of the best in :attr:`best_checkpoints`' order if
            several tie. Checkpoints whose result
            has no numeric value of ``metric`` (missing, NaN, a string) are
            left out.

        Raises
        ------
        ValueError
            If ``mode`` is neither ``"min"`` nor ``"max"``.
        RuntimeError
            If the trial kept no checkpoint, or none has a numeric value of
            ``metric``. (Ray Tune raises ``RuntimeError`` in both cases too,
            although its docstring mentions ``None``.)
        """
        check_mode(mode, allow_none=False)
        checkpoints = self.best_checkpoints
        if not checkpoints:
            raise RuntimeError(
                f"trial {self.trial_id} kept no checkpoint; pass checkpoint=... to "
                "tune.report() to save one"
            )
        best = _best(((result, checkpoint) for checkpoint, result in checkpoints), metric, mode)
        if best is None:
            raise RuntimeError(
                f"no checkpoint of trial {self.trial_id} has a numeric value of {metric!r}; "
                f"its checkpoints' results have {sorted(flatten(checkpoints[-1][1]))!r}"
            )
        return best

    def history(self) -> list[dict]:
        """Every result of the trial, in order (read from the experiment file once).

        Each carries Ray's ``config``, ``time_since_restore``,
        ``iterations_since_restore`` and ``checkpoint_dir_name`` (with
        ``should_checkpoint`` where a checkpoint was saved), as in Ray's
        ``metrics_dataframe``.
        """
        if self._history is None:
            store = ExperimentStore.open(self._experiment_path, readonly=True)
            try:
                self._set_history(store.results(self.trial_id))
            finally:
                store.close()
        return self._history

    def _set_history(self, history: list[dict]) -> None:
        if history and self.status == "TERMINATED":
            history[-1]["done"] = True
        if history:
            config = self.config
            names = self._checkpoint_names()
            for row in history:
                row.setdefault("config", config)
                for key, value in _checkpoint_fields(names, row).items():
                    row.setdefault(key, value)
        self._history = history

    @property
    def metrics_dataframe(self):
        """Every result of the trial as a pandas DataFrame (nested keys as ``a/b``).

        The config is in ``config/...`` columns, as in Ray.
        """
        pd = _require_pandas()
        history = self.history()
        config = self.config
        # the config every row shares is spread into columns once for the frame: spread
        # in every row, it cost more than the rest of the frame
        shared = bool(history) and isinstance(config, dict) and \
            all(r.get("config") is config for r in history)
        if not shared:
            return pd.DataFrame([_frame_row(r) for r in history])
        frame = pd.DataFrame([_frame_row(r, keep=config) for r in history])
        columns = flatten(config, "config/")
        if not columns.keys().isdisjoint(frame.columns):    # a result of its own names one
            return pd.DataFrame([_frame_row(r) for r in history])
        at = frame.columns.get_loc("config")
        spread = pd.DataFrame({key: [value] * len(frame) for key, value in columns.items()},
                              index=frame.index)
        # (one concat: inserting column by column warns that the frame is fragmented)
        return pd.concat([frame.iloc[:, :at], spread, frame.iloc[:, at + 1:]], axis=1)

    def __repr__(self) -> str:
        # Ray's layout; its metrics are what the objective reported
        shown = [] if self.error is None else [f"error={type(self.error).__name__!r}"]
        metrics = {k: v for k, v in self._last().items() if k not in _REPR_HIDDEN}
        shown += [f"metrics={metrics!r}", f"path={self.path!r}", "filesystem='local'",
                  f"checkpoint={self.checkpoint!r}"]
        return "Result(\n" + ",\n".join(f"  {line}" for line in shown) + "\n)"


def _report_key(result: dict) -> tuple:
    """Which report ``result`` is, as a trial's checkpoint list names it."""
    return (result.get("training_iteration"), result.get("time_total_s"))


def _checkpoint_fields(names: dict, result: dict) -> dict[str, Any]:
    """Ray's ``checkpoint_dir_name`` of ``result`` (None unless a kept checkpoint was
    saved with it, then with ``should_checkpoint``); ``names`` from ``_checkpoint_names``."""
    name = names.get(_report_key(result)) if names else None
    if name is None:
        return {"checkpoint_dir_name": None}
    return {"checkpoint_dir_name": name, "should_checkpoint": True}


def _frame_row(result: dict, keep: dict | None = None) -> dict:
    """``result`` as a data frame row: nested keys spread (``a/b``), an empty config dropped.

    ``keep`` (the config every row of a frame shares) is left whole, for the
    frame to spread once.
    """
    if keep is not None:
        for value in result.values():
            if isinstance(value, dict) and value is not keep:
                break
        else:
            return result       # nothing else nested (a loop, as in flatten)
        out: dict = {}
        for key, value in result.items():      # as flatten, but for keep
            if isinstance(value, dict) and value and value is not keep:
                for inner, x in flatten(value, f"{key}/").items():
                    out.setdefault(inner, x)
            else:
                out[key] = value
        return out
    row = flatten(result)
    if row.get("config") == {}:
        row = dict(row)
        del row["config"]
    return row


class ResultGrid:
    """All trials of an experiment (Ray Tune's ``ResultGrid``).

    Supports ``len``, indexing and iteration over :class:`Result` objects in
    trial creation order. Unlike Ray's, its repr is one line (the path and
    counts), not every result: a grid may hold 100,000 trials.
    """

    def __init__(self, experiment_path: Any, results: list[Result] | None = None,
                 metric: str | None = None, mode: str | None = None) -> None:
        if results is None:
            # Ray's form: ResultGrid(experiment_analysis)
            grid = getattr(experiment_path, "_grid", None)
            if not isinstance(grid, ResultGrid):
                raise TypeError(
                    "ResultGrid takes an ExperimentAnalysis (as Ray's does), or the experiment "
                    f"path with its results; got {experiment_path!r}. To read a folder, use "
                    "ResultGrid.from_path(path)"
                )
            self.__dict__.update(grid.__dict__)
            return
        self.experiment_path = str(experiment_path)
        self._results = results
        self._metric = metric
        self._mode = mode

    @classmethod
    def from_path(cls, path: str | os.PathLike) -> ResultGrid:
        """Rebuild the grid from an experiment directory (no objective needed)."""
        path = Path(path).expanduser()
        store = ExperimentStore.open(path, readonly=True)
        try:
            return cls.from_store(path, store)
        finally:
            store.close()

    @classmethod
    def from_store(cls, path: Path, store: ExperimentStore,
                   configs: dict[str, dict] | None = None) -> ResultGrid:
        """The grid of an open experiment file (what it holds now).

        ``configs`` maps trial ids to configs to show instead of the stored
        JSON text: the objects themselves, where JSON could not hold them.
        """
        settings = store.settings()
        reads = _GridReads(path)
        reads.dirnames = store.trial_dirnames(settings)
        reads.checkpoint_config = settings.get("checkpoint_config") or {}
        results = [Result(path, row, reads, position)
                   for position, row in enumerate(store.trial_rows(decode=False))]
        if configs:
            for result in results:
                if result.trial_id in configs:
                    result._config = configs[result.trial_id]
        grid = cls(path, results, settings.get("metric"), settings.get("mode"))
        reads.attach(grid)
        return grid

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        if self._results:
            reads = self._results[0]._reads
            if reads._grid is None:
                reads.attach(self)

    def _load_histories(self) -> None:
        """Read the results of every trial in one pass over the experiment file.

        ``Result.history()`` opens the file for its own trial; a question
        about every trial's history (a ``scope`` other than ``"last"``, a
        ``filter_metric``) reads them all at once instead.
        """
        missing = {r.trial_id: r for r in self._results if r._history is None}
        if not missing:
            return
        collected: dict[str, list[dict]] = {trial_id: [] for trial_id in missing}
        store = ExperimentStore.open(self.experiment_path, readonly=True)
        try:
            for trial_id, rows in store.iter_results():
                bucket = collected.get(trial_id)
                if bucket is not None:
                    bucket.extend(rows)
        finally:
            store.close()
        for trial_id, result in missing.items():
            result._set_history(collected[trial_id])

    def _load_unrecorded_ends(self) -> None:
        """Read the histories of the trials whose last result was never recorded.

        Their ``metrics`` fall back to the last stored result; this reads them
        in one opening of the experiment file, not one per trial. A sweep
        that ended normally has none (except trials that never started).
        """
        missing = [r for r in self._results if r._metrics is None and r._history is None]
        if not missing:
            return
        store = ExperimentStore.open(self.experiment_path, readonly=True)
        try:
            for result in missing:
                result._set_history(store.results(result.trial_id))
        finally:
            store.close()

    def __len__(self) -> int:
        return len(self._results)

    def __getitem__(self, i: int) -> Result:
        return self._results[i]

    def __iter__(self) -> Iterator[Result]:
        return iter(self._results)

    @property
    def errors(self) -> list[TrialError]:
        """Errors of the trials that failed."""
        return [r.error for r in self._results if r.error is not None]

    @property
    def num_errors(self) -> int:
        return sum(1 for r in self._results if r.status == "ERROR")

    @property
    def num_terminated(self) -> int:
        return sum(1 for r in self._results if r.status == "TERMINATED")

    @property
    def filesystem(self):
        """``pyarrow.fs.LocalFileSystem()``, as Ray's (needs pyarrow): results are local files."""
        return _local_filesystem()

    def _score(self, result: Result, metric: str, mode: str, scope: str,
               finite_only: bool = True) -> float | None:
        if scope == "last":
            values = [result._value(metric)]
        else:
            values = [lookup(r, metric, None) for r in result.history()]
            if scope == "last-5-avg":
                values = values[-5:]
            elif scope == "last-10-avg":
                values = values[-10:]
        numbers = []
        for v in values:
            x = _number(v)
            if x is not None and (math.isfinite(x) if finite_only else not math.isnan(x)):
                numbers.append(x)
        if not numbers:
            return None
        if scope == "all":
            return max(numbers) if mode == "max" else min(numbers)
        if scope == "last":
            return numbers[-1]
        return sum(numbers) / len(numbers)

    def get_best_result(self, metric: str | None = None, mode: str | None = None,
                        scope: str = "last", filter_nan_and_inf: bool = True) -> Result:
        """The best trial by ``metric`` and ``mode`` (default: those of ``TuneConfig``).

        Parameters
        ----------
        metric : str or None, default=None
            A key of the trials' results; a nested value is named
            ``"outer/inner"``, as in :meth:`get_dataframe`'s columns. Only
            real numbers count: a trial whose value is a string, a bool or
            ``None`` has not reported the metric.
        mode : {"min", "max"} or None, default=None
            Whether the smallest or the largest value is the best.
        scope : {"last", "avg", "last-5-avg", "last-10-avg", "all"}
            Which results count: the last one, the average of all (or of the
            last 5 / 10), or the best of all.
        filter_nan_and_inf : bool, default=True
            Ignore NaN and infinite values. With False an infinite value can
            be the best; NaN never is (it does not compare).
        """
        metric = metric or self._metric
        mode = mode or self._mode
        if metric is None or mode is None:
            raise ValueError(
                "get_best_result needs a metric and a mode: pass them here, e.g. "
                "get_best_result(metric='loss', mode='min'), or set them in TuneConfig"
            )
        check_mode(mode, allow_none=False)
        check_choice("scope", scope, SCOPES)
        if scope != "last":
            self._load_histories()
        else:
            self._load_unrecorded_ends()
        best, best_score = None, None
        for result in self._results:
            score = self._score(result, metric, mode, scope, filter_nan_and_inf)
            if score is None:
                continue
            if best is None or (score < best_score if mode == "min" else score > best_score):
                best, best_score = result, score
        if best is None:
            raise RuntimeError(
                f"no trial reported a {'finite ' if filter_nan_and_inf else ''}numeric "
                f"value of {metric!r}; "
                f"{self.num_errors} of {len(self)} trial(s) failed"
            )
        return best

    def get_dataframe(self, filter_metric: str | None = None,
                      filter_mode: str | None = None):
        """One row per trial: its last result, ``config/...`` columns and ``trial_id``.

        With ``filter_metric`` and ``filter_mode`` each row is instead the
        trial's best result by that metric (a nested value is named
        ``"outer/inner"``; only real numbers count, NaN does not). A trial
        without such a result keeps its last one. As in Ray, a
        ``filter_metric`` without a ``filter_mode`` gives the last results,
        and a ``filter_mode`` without a ``filter_metric`` is an error.
        """
        pd = _require_pandas()
        check_mode(filter_mode)
        if filter_mode is not None and filter_metric is None:
            raise ValueError("get_dataframe(filter_mode=...) needs a filter_metric too, e.g. "
                             "get_dataframe(filter_metric='loss', filter_mode='min')")
        if filter_mode is None:
            filter_metric = None
        if filter_metric is not None:
            self._load_histories()
        else:
            self._load_unrecorded_ends()
        if self._results:
            self._results[0]._reads.load_all()     # (shared by the grid's results)
        rows = []
        for result in self._results:
            metrics = result._last()
            stored = not result._is_history_row(metrics)    # else it has the extras
            if filter_metric is not None:
                best = _best(((r, r) for r in result.history()), filter_metric, filter_mode)
                if best is not None:
                    metrics, stored = best, False
            row: dict[str, Any] = dict(flatten(metrics))   # (may be metrics itself)
            if metrics and stored:
                for key, value in result._extras(metrics).items():
                    row.setdefault(key, value)
            # as Ray's: the config in config/... columns only, and no experiment_tag
            row.pop("config", None)
            row.update(flatten(result.config, "config/"))
            row["trial_id"] = result.trial_id
            row["status"] = result.status
            row["logdir"] = result.path
            rows.append(row)
        return pd.DataFrame(rows)

    def __repr__(self) -> str:
        return (f"ResultGrid(experiment_path={self.experiment_path!r}, trials={len(self)}, "
                f"terminated={self.num_terminated}, errors={self.num_errors})")
