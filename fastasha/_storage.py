"""The experiment file: one SQLite database per experiment.

Layout of an experiment directory ``<storage_path>/<name>/``::

    experiment.db       SQLite (WAL): settings, trials, results, scheduler events
    trials/<trial_id>/checkpoint_<iteration>/   checkpoints saved by trials
    searcher-state-<n>.pkl   a search_alg's state, written by its own save()
                             (see :mod:`fastasha._search_state`)

Contract
--------
* Only the driver writes, from one thread. Readers may open the file at
  any time (WAL lets them read while the driver writes). A writer holds an
  exclusive ``flock`` on ``.experiment.lock`` in the directory while the
  store is open, so a second process can neither restore nor overwrite a
  running experiment; the lock goes with the process, however it ends.
* The write methods (:meth:`ExperimentStore.add_trial`, ``update_trial``,
  ``add_results``, ``add_event``, ``remove_checkpoint``) only queue in memory.
  :meth:`ExperimentStore.flush` writes everything queued in one
  transaction and returns once it is durable (``synchronous=FULL``): a
  crash of the driver afterwards loses nothing that was flushed.
  :meth:`ExperimentStore.flush_soon` hands what is queued to the store's
  background writer thread, which commits it the same way, so that the
  driver does not wait for the disk; a commit that fails there keeps its
  writes, which go back in front of the queue, and its error is raised by
  the next ``flush`` or ``flush_soon``. Batches are committed in the order
  they were queued.
* Repeated ``update_trial`` calls overwrite the named fields; adding the
  same trial twice is an error. Results keep their arrival order.
* Everything stored is JSON text, numbers, and result batches packed as
  plain numeric arrays (see :mod:`fastasha._rows`), never pickle: opening
  an experiment cannot run code. (A ``search_alg``'s state file next to it
  is in whatever format the searcher's own ``save`` writes; only the
  searcher's ``restore`` reads it, when the user restores with it.)
* The directory is created ``0o700`` and the database ``0o600``.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import sqlite3
import threading
import time
import urllib.parse
import warnings
import weakref
from pathlib import Path
from typing import Any, Collection, Iterator

from ._json import encoder
from ._rows import RunTracker, decode, head, json_default
from .config import OVERWRITE_ENV

FILE_NAME = "experiment.db"
# the event that keeps the folder name a trial_dirname_creator gave a trial
DIRNAME_EVENT = "trial.dirname"
# the event that keeps a config a scheduler gave a trial while it ran (PBT's exploit):
# {"config": the new config, "original": the one it was created with (first change only)}
CONFIG_EVENT = "trial.config"
# the event that keeps the state of a scheduler restored from its state (PBT), not by a
# replay of its calls: what its state_dict() returned
SCHEDULER_STATE_EVENT = "scheduler.state"
_PARTIAL = ".experiment.db.creating-"
# Held (flock) by the one process that writes the experiment, so that a second
# run cannot restore or overwrite it meanwhile; the kernel drops the lock when
# that process ends, however it ends.
LOCK_NAME = ".experiment.lock"
TRIALS_DIR = "trials"
FORMAT = "fastasha-experiment"
VERSION = 1

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE trials (
    idx INTEGER PRIMARY KEY,
    trial_id TEXT NOT NULL UNIQUE,
    config TEXT NOT NULL,
    bracket INTEGER,
    resources TEXT NOT NULL,
    status TEXT NOT NULL,
    n_failures INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    traceback TEXT,
    last_result TEXT,
    checkpoint TEXT,
    checkpoints TEXT
);
CREATE TABLE results (
    seq INTEGER PRIMARY KEY,
    trial_id TEXT NOT NULL,
    n INTEGER NOT NULL,
    rows TEXT NOT NULL
);
CREATE INDEX results_by_trial ON results (trial_id, seq);
CREATE TABLE events (
    seq INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    trial_id TEXT,
    payload TEXT
);
"""

_TRIAL_FIELDS = ("status", "n_failures", "error", "traceback", "last_result", "checkpoint",
                 "checkpoints")
_JSON_FIELDS = ("last_result", "checkpoints")
# and "config" (JSON text), for a config a scheduler changed (update_trial only)
_FIELD_SET = frozenset(_TRIAL_FIELDS + ("config",))
# a new trial's fields before any update
_NEW_TRIAL = ("PENDING", 0, None, None, None, None, None)


def _new_trial_fields(fields: dict) -> tuple:
    """The values of ``_TRIAL_FIELDS`` for a new trial with the updates ``fields``."""
    last, checkpoints = fields.get("last_result"), fields.get("checkpoints")
    return (fields.get("status", "PENDING"), fields.get("n_failures", 0), fields.get("error"),
            fields.get("traceback"), None if last is None else _dumps(last),
            fields.get("checkpoint"), None if checkpoints is None else _dumps(checkpoints))


class StoreError(ValueError):
    """The experiment file is missing, corrupt, or not a fastasha experiment."""


# one encoder for every write: json.dumps(obj, default=...) builds a new one per call,
# and JSONEncoder.encode a new C encoder (see fastasha._json)
_dumps = encoder(json_default)


_EXACT = (dict, list, tuple, set, frozenset)


def to_tagged_json(value: Any, exact: bool = False) -> Any:
    """``value`` as JSON values that :func:`from_tagged_json` turns back into it.

    Dicts (with keys of any of these types), lists, tuples, sets, strings,
    numbers, bools and ``None``; tuples, sets and dicts are tagged
    (``{"__tuple__": [...]}``, ...) so that they come back as they were,
    numpy scalars come back as the Python numbers they hold. With
    ``exact``, subclasses of those containers (``defaultdict``,
    ``Counter``, ``OrderedDict``, ...) are refused rather than kept as
    plain ones: they would come back without their behaviour.

    Raises
    ------
    TypeError
        For a value of another type, naming it.
    """
    if value is None or type(value) in (bool, int, float, str):
        return value
    if isinstance(value, (int, float, str)) and not exact:
        return value
    item = getattr(value, "item", None)
    if type(value).__module__ == "numpy" and getattr(value, "ndim", None) == 0 and callable(item):
        return to_tagged_json(item(), exact)
    if exact and isinstance(value, _EXACT) and type(value) not in _EXACT:
        raise TypeError(f"a {type(value).__name__} cannot be kept as JSON without becoming a "
                        f"plain {next(t for t in _EXACT if isinstance(value, t)).__name__}")
    if isinstance(value, dict):
        return {"__dict__": [[to_tagged_json(k, exact), to_tagged_json(v, exact)]
                             for k, v in value.items()]}
    if isinstance(value, list):
        return [to_tagged_json(v, exact) for v in value]
    if isinstance(value, tuple):
        return {"__tuple__": [to_tagged_json(v, exact) for v in value]}
    if isinstance(value, (set, frozenset)):
        return {"__set__": [to_tagged_json(v, exact) for v in value]}
    raise TypeError(f"a {type(value).__name__} cannot be kept as JSON")


def from_tagged_json(value: Any) -> Any:
    """The value :func:`to_tagged_json` made ``value`` of (frozensets come back as sets)."""
    if isinstance(value, list):
        return [from_tagged_json(v) for v in value]
    if not isinstance(value, dict):
        return value
    if "__dict__" in value:
        return {from_tagged_json(k): from_tagged_json(v) for k, v in value["__dict__"]}
    if "__tuple__" in value:
        return tuple(from_tagged_json(v) for v in value["__tuple__"])
    if "__set__" in value:
        return {from_tagged_json(v) for v in value["__set__"]}
    raise ValueError(f"unknown tagged value {sorted(value)!r}")


def _uri(db: Path, mode: str = "ro") -> str:
    """An SQLite URI that opens ``db`` (``mode`` ``"ro"``: read-only; ``"rw"``:
    read-write, never creating it), whatever characters its path holds.

    The path is percent-encoded: a ``?`` or ``#`` in a folder name would
    otherwise end the path part of the URI (SQLite would open another file).
    """
    # from the absolute path, as file:///...: a path starting with // must not
    # read as an authority (file://host/...)
    return f"file://{urllib.parse.quote(os.path.abspath(db))}?mode={mode}"


# Stores being closed by a background thread (see ExperimentStore.close), by their
# directory: each holds its directory's lock until its file is closed, so whoever
# takes that lock next in this process waits for it first. Another process knows
# such a holder by the word after its pid in the lock file, and waits for it too,
# at most CLOSE_WAIT_S.
CLOSING = "closing"
CLOSE_WAIT_S = 30.0
_closing: dict[str, threading.Thread] = {}
# and the threads copying a store's log into its file (ExperimentStore.checkpoint_soon)
_checkpointing: set[threading.Thread] = set()
_closing_guard = threading.Lock()


def _write_batches(jobs: queue.SimpleQueue) -> None:
    """The body of a store's background writer: commit each ``(store, batch)``, until None.

    The job holds its store, so that writes handed over are committed even if
    the store is dropped meanwhile; between jobs the thread holds no store.
    """
    while True:
        job = jobs.get()
        if job is None:
            return
        store, batch = job
        store._commit_in_background(batch)
        del job, store, batch


def _wait_for_close(directory: Path) -> None:
    """Wait until a background close of the store in ``directory`` is done."""
    with _closing_guard:
        thread = _closing.get(os.path.realpath(directory))
    if thread is not None:
        thread.join()


def _wait_for_all_closes() -> None:
    """Before a fork: wait until every background close is done.

    A child forked meanwhile would inherit the lock's descriptor, and an
    ``flock`` is released only when every copy is closed: the experiment
    would stay locked for as long as the child lives (a pool worker, for
    instance), against this process too. A child could also inherit
    SQLite's mutexes held by the closing thread. The wait is that of the
    close, milliseconds after a sweep.
    """
    with _closing_guard:
        threads = [*_closing.values(), *_checkpointing]
    for thread in threads:
        if thread is not threading.current_thread():
            thread.join()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_wait_for_all_closes)


def _take_lock(directory: Path) -> int | None:
    """Hold the experiment's lock; :class:`StoreError` if another process holds it.

    Returns the lock file's descriptor (closing it releases the lock), or
    None where ``flock`` does not exist.
    """
    _wait_for_close(directory)
    try:
        import fcntl
    except ImportError:     # not on this platform: no protection, as before
        return None
    fd = os.open(directory / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
    deadline = None
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            try:
                holder = os.pread(fd, 32, 0).decode(errors="replace").split()
                # a run whose fit() has returned, closing the file in the background:
                # the lock is free in a moment
                if holder[1:] == [CLOSING]:
                    deadline = deadline or time.monotonic() + CLOSE_WAIT_S
                    if time.monotonic() < deadline:
                        time.sleep(0.005)
                        continue
            except BaseException:
                os.close(fd)
                raise
            os.close(fd)
            raise StoreError(
                f"{directory} is in use by another fastasha run (pid "
                f"{holder[0] if holder else 'unknown'}); wait for it to end (or stop it) "
                "before restoring or overwriting it, or choose another RunConfig(name=...)"
            ) from None
        except OSError as err:      # a file system without locks (NFS without lockd, ...)
            os.close(fd)
            warnings.warn(f"cannot lock {directory} ({err}); nothing stops another process "
                          "from restoring or overwriting this experiment while it runs",
                          RuntimeWarning, stacklevel=3)
            return None
    pid = str(os.getpid()).encode()
    os.pwrite(fd, pid, 0)           # then cut: a reader sees a whole pid, old or new
    os.ftruncate(fd, len(pid))
    return fd


def _say_closing(fd: int) -> None:
    """Write in the lock file that its holder only closes the file now (see CLOSING)."""
    text = f"{os.getpid()} {CLOSING}".encode()
    try:
        os.pwrite(fd, text, 0)
        os.ftruncate(fd, len(text))
    except OSError:
        pass            # then another process is told the experiment is in use, as before


def _release_lock(fd: int) -> None:
    try:
        os.close(fd)          # releases the flock
    except OSError:
        pass


def _open_private(path: Path) -> None:
    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    os.close(fd)


# How much of a stored batch holds its head (see fastasha._rows.head): 48 bytes of a
# packed one; a JSON one's ends a few hundred characters in, unless the host's name is long.
_HEAD_BYTES = 48
_HEAD_CHARS = 400
# SQLite reads a value whole to cut a part out of it (only typeof() and a blob's length()
# do without): packed batches larger than this are left to a blob handle instead.
_SMALL_BATCH = 8192


def _head_part(table: str) -> str:
    """SQL for the beginning of ``table``'s batch that holds its head; NULL for a large packed one."""
    return (f"CASE WHEN typeof({table}.rows) != 'blob' THEN substr({table}.rows, 1, {_HEAD_CHARS}) "
            f"WHEN length({table}.rows) <= {_SMALL_BATCH} "
            f"THEN substr({table}.rows, 1, {_HEAD_BYTES}) END")


class ExperimentStore:
    """Read and write one experiment file; see the module docstring for the contract."""

    def __init__(self, directory: Path, conn: sqlite3.Connection, readonly: bool,
                 lock: int | None = None) -> None:
        self.directory = directory
        self._lock = lock
        self._conn = conn
        self.readonly = readonly
        self._new_trials: list[tuple] = []
        self._trial_updates: dict[str, dict] = {}
        self._results: list[tuple] = []
        self._events: list[tuple] = []
        self._doomed_checkpoints: list[str] = []
        self.n_flushes = 0
        # the background writer: one thread for the store's life, started by the first
        # flush_soon() and given one batch at a time through ``_jobs`` (starting a thread
        # per commit made the driver wait for it to start: on busy cores, milliseconds)
        self._writer: threading.Thread | None = None
        self._jobs: queue.SimpleQueue | None = None
        self._busy = False                # a background commit in flight
        # held by every commit: the writer's and a flush()'s never overlap on the
        # connection, whatever a Ctrl-C left of the bookkeeping around them
        self._commit_lock = threading.Lock()
        # set by the writer when it is done; waited on instead of Thread.join(), which
        # a Ctrl-C can interrupt so that the thread looks finished while it still runs
        self._writer_done = threading.Event()
        self._checkpointer: threading.Thread | None = None   # see checkpoint_soon()
        self._in_flight: tuple | None = None
        self._failure: BaseException | None = None
        self._resources_json: dict[tuple, str] = {}

    # ------------------------------------------------------------ open/create

    @staticmethod
    def path_of(directory: str | os.PathLike) -> Path:
        return Path(directory) / FILE_NAME

    @classmethod
    def exists(cls, directory: str | os.PathLike) -> bool:
        """Whether ``directory`` holds an experiment file (not checking its content)."""
        return cls.path_of(directory).is_file()

    @classmethod
    def create(cls, directory: str | os.PathLike, settings: dict,
               overwrite: bool = False) -> ExperimentStore:
        """Create the experiment directory and file; refuse to clobber an experiment."""
        directory = Path(directory)
        db = cls.path_of(directory)
        lock = partial = None
        try:
            if db.exists():
                if not overwrite:
                    raise FileExistsError(
                        f"{directory} already holds an experiment; resume it with "
                        f"Tuner.restore({str(directory)!r}, trainable), choose another "
                        "RunConfig(name=...), or replace it: RunConfig(overwrite=True), or "
                        f"run the script with the environment variable {OVERWRITE_ENV}=1"
                    )
                # only ever overwrite one of ours; read-only, so that checking a
                # foreign SQLite file does not switch it to WAL (rewriting its header)
                cls.open(directory, readonly=True).close()
                lock = _take_lock(directory)       # and never one that is running
                for suffix in ("", "-wal", "-shm"):
                    Path(str(db) + suffix).unlink(missing_ok=True)
                shutil.rmtree(directory / TRIALS_DIR, ignore_errors=True)
            elif directory.exists():
                leftovers = [p for p in directory.iterdir()
                             if not (p.name.startswith(_PARTIAL) or p.name == LOCK_NAME or
                                     (p.name == TRIALS_DIR and p.is_dir()
                                      and not any(p.iterdir())))]
                if leftovers:
                    raise FileExistsError(
                        f"{directory} exists and is not empty but holds no fastasha experiment; "
                        "choose another RunConfig(name=...) or storage_path"
                    )
                for p in directory.glob(_PARTIAL + "*"):     # an earlier creation that crashed
                    p.unlink(missing_ok=True)
            directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            os.chmod(directory, 0o700)
            (directory / TRIALS_DIR).mkdir(exist_ok=True, mode=0o700)
            if lock is None:
                lock = _take_lock(directory)
            # Build the file under a temporary name and rename it into place, so that
            # a crash during creation never leaves a half-made experiment.db behind.
            partial = directory / f"{_PARTIAL}{os.getpid()}"
            partial.unlink(missing_ok=True)
            _open_private(partial)
            # Written without a journal and without syncing (a crash leaves only a partial
            # file, removed by the next creation), switched to WAL, and synced once
            # before it takes its name: one fsync instead of three, 2 ms less on ext4.
            conn = sqlite3.connect(partial, isolation_level=None, check_same_thread=False)
            try:
                conn.execute("PRAGMA synchronous = OFF")
                conn.execute("PRAGMA journal_mode = OFF")
                conn.execute("BEGIN")
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.executemany("INSERT INTO meta (key, value) VALUES (?, ?)", [
                    ("format", FORMAT),
                    ("version", str(VERSION)),
                    ("settings", _dumps(settings)),
                ])
                conn.execute("COMMIT")
                # (as _connect does, whatever SQLite answers: where it cannot use WAL, the
                # file keeps SQLite's default journal)
                conn.execute("PRAGMA journal_mode = WAL")
                # read once in that mode before the file takes its name: where the WAL
                # index cannot be mapped this fails here, on the partial file, not later
                # on an experiment.db that no run can open or overwrite
                try:
                    conn.execute("SELECT count(*) FROM meta").fetchone()
                except sqlite3.OperationalError as err:
                    raise StoreError(
                        f"SQLite cannot use its write-ahead log in {directory} ({err}): the "
                        "experiment file needs a file system that can map a file shared "
                        "between processes, as local disks can (9p, vboxsf and some FUSE "
                        "mounts cannot); choose a storage_path on one"
                    ) from err
            finally:
                conn.close()
            fd = os.open(partial, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            # The new name needs no fsync of the folder here: opening the file below
            # creates experiment.db-wal in this folder, and SQLite syncs the folder at
            # that WAL's first sync, in the first commit (it does so for every WAL it
            # creates), which makes this rename durable with it. Before that commit the
            # file holds no result to lose.
            os.replace(partial, db)
            return cls(directory, cls._connect(db), readonly=False, lock=lock)
        except BaseException:
            if partial is not None:      # (a crash here leaves it to the next creation)
                for suffix in ("", "-wal", "-shm"):
                    Path(str(partial) + suffix).unlink(missing_ok=True)
            if lock is not None:
                _release_lock(lock)
            raise

    @classmethod
    def open(cls, directory: str | os.PathLike, readonly: bool = False) -> ExperimentStore:
        """Open an existing experiment; :class:`StoreError` if it is not one."""
        directory = Path(directory)
        db = cls.path_of(directory)
        if not db.is_file():
            if directory.name == FILE_NAME and directory.is_file():
                raise StoreError(
                    f"{directory} is the experiment file itself; pass the folder that holds "
                    f"it: {directory.parent}"
                )
            raise StoreError(f"no fastasha experiment in {directory} (missing {FILE_NAME})")
        try:
            # check read-only first: opening a foreign file read-write (for WAL) rewrites it
            conn = sqlite3.connect(_uri(db), uri=True, check_same_thread=False)
            conn.execute("PRAGMA query_only = ON")
            rows = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        except sqlite3.DatabaseError as err:
            raise StoreError(
                f"{db} is not a readable fastasha experiment file ({err}); it was left "
                "untouched"
            ) from err
        if rows.get("format") != FORMAT:
            conn.close()
            raise StoreError(f"{db} is an SQLite file but not a fastasha experiment; it was left untouched")
        if rows.get("version") != str(VERSION):
            conn.close()
            raise StoreError(
                f"{db} was written by an incompatible fastasha (format version "
                f"{rows.get('version')!r}, this one reads {VERSION})"
            )
        lock = None
        if not readonly:
            conn.close()
            lock = _take_lock(directory)
            try:
                conn = cls._connect(db)
            except BaseException:
                _release_lock(lock)
                raise
        return cls(directory, conn, readonly=readonly, lock=lock)

    @staticmethod
    def _connect(db: Path) -> sqlite3.Connection:
        conn = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")
        return conn

    # ----------------------------------------------------------------- writes

    def add_trial(self, trial_id: str, index: int, config_json: str, bracket: int | None,
                  resources: dict) -> None:
        key = tuple(resources.items())
        text = self._resources_json.get(key)
        if text is None:        # nearly every trial asks for the same: encode it once
            text = self._resources_json[key] = _dumps(resources)
        self._new_trials.append((trial_id, (index, trial_id, config_json, bracket, text)))

    def update_trial(self, trial_id: str, **fields: Any) -> None:
        if not _FIELD_SET.issuperset(fields):
            raise ValueError(f"unknown trial field(s) {sorted(set(fields) - _FIELD_SET)}")
        self._trial_updates.setdefault(trial_id, {}).update(fields)

    def add_results(self, trial_id: str, rows_json: str | bytes, n_rows: int) -> None:
        self._results.append((trial_id, n_rows, rows_json))

    def add_event(self, kind: str, trial_id: str | None, payload: Any) -> None:
        self._events.append((kind, trial_id, None if payload is None else _dumps(payload)))

    def remove_checkpoint(self, trial_id: str, path: str) -> None:
        self._doomed_checkpoints.append(path)

    @property
    def pending(self) -> int:
        """Number of queued writes."""
        return (len(self._new_trials) + len(self._trial_updates) + len(self._results)
                + len(self._events))

    def flush(self) -> None:
        """Write everything queued in one transaction; durable on return."""
        if self.readonly:
            raise StoreError("this experiment file was opened read-only")
        self._settle()
        batch = self._take()
        if batch is None:
            return
        try:
            self._commit(batch)
        except BaseException:
            self._put_back(batch)
            raise
        self._after_commit(batch)

    def flush_soon(self) -> None:
        """Commit what is queued in a background thread (at most one commit at a time).

        Returns at once. If the previous background commit is still running,
        the writes wait for the next call. If it failed, its writes are back
        in the queue and its error is raised here.
        """
        if self.readonly:
            raise StoreError("this experiment file was opened read-only")
        if self._busy:
            if not self._writer_done.is_set():
                return
            self._settle()
        if self._jobs is None:
            # before the writes are taken: a Ctrl-C while the thread starts loses nothing
            self._start_writer()
        batch = self._take()
        if batch is None:
            return
        self._in_flight = batch
        self._writer_done.clear()
        # queued first: a Ctrl-C between the two lines leaves a commit that no one
        # waits for (the commit lock keeps it apart from the next), never a wait for a
        # commit that was not queued
        self._jobs.put((self, batch))
        self._busy = True

    def _start_writer(self) -> None:
        """Start the background writer."""
        jobs = self._jobs = queue.SimpleQueue()
        # the thread holds no store between jobs: a store dropped without close() is
        # collected, and this finalizer ends the thread
        weakref.finalize(self, jobs.put, None)
        self._writer = threading.Thread(target=_write_batches, args=(jobs,),
                                        name="fastasha-store", daemon=True)
        self._writer.start()

    def _stop_writer(self) -> None:
        """End the background writer (idle: :meth:`_settle` came first). Does not wait."""
        jobs = self._jobs
        self._writer = self._jobs = None
        if jobs is not None:
            jobs.put(None)

    def _commit_in_background(self, batch: tuple) -> None:
        try:
            self._commit(batch)
        except BaseException as err:   # noqa: BLE001 - handed to the driver's thread
            self._failure = err
        finally:
            self._writer_done.set()

    def _settle(self) -> None:
        """Wait for a background commit; put its writes back and raise if it failed."""
        if not self._busy:
            return
        # interrupted (Ctrl-C), the commit stays known: a later call waits again
        self._writer_done.wait()
        self._busy = False
        batch, self._in_flight = self._in_flight, None
        failure, self._failure = self._failure, None
        if failure is not None:
            self._put_back(batch)
            raise failure
        self._after_commit(batch)

    def _take(self) -> tuple | None:
        """Everything queued, as one batch (None if nothing is)."""
        if not self.pending and not self._doomed_checkpoints:
            return None
        batch = (self._new_trials, self._trial_updates, self._results, self._events,
                 self._doomed_checkpoints)
        self._new_trials, self._trial_updates, self._results = [], {}, []
        self._events, self._doomed_checkpoints = [], []
        return batch

    def _put_back(self, batch: tuple) -> None:
        """A batch that was not written goes back in front of what came meanwhile."""
        new_trials, updates, results, events, doomed = batch
        self._new_trials[:0] = new_trials
        for trial_id, fields in self._trial_updates.items():
            updates.setdefault(trial_id, {}).update(fields)
        self._trial_updates = updates
        self._results[:0] = results
        self._events[:0] = events
        self._doomed_checkpoints[:0] = doomed

    def _commit(self, batch: tuple) -> None:
        with self._commit_lock:
            self._commit_locked(batch)

    def _commit_locked(self, batch: tuple) -> None:
        new_trials, updates, results, events, _ = batch
        updates = dict(updates)        # a failed commit must leave the batch as it was
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            if new_trials:
                # a trial created since the last flush is written once, with its updates
                rows = []
                for trial_id, base in new_trials:
                    fields = updates.pop(trial_id, None)
                    if fields is not None and "config" in fields:    # changed at once
                        base = (*base[:2], fields["config"], *base[3:])
                    rows.append(base + (_NEW_TRIAL if fields is None else
                                        _new_trial_fields(fields)))
                columns = ", ".join(("idx", "trial_id", "config", "bracket", "resources")
                                    + _TRIAL_FIELDS)
                marks = ", ".join("?" * (5 + len(_TRIAL_FIELDS)))
                conn.executemany(f"INSERT INTO trials ({columns}) VALUES ({marks})", rows)
            by_fields: dict[tuple, list] = {}
            for trial_id, fields in updates.items():
                names = tuple(fields)
                by_fields.setdefault(names, []).append(
                    (*[_dumps(v) if v is not None and n in _JSON_FIELDS else v
                       for n, v in fields.items()], trial_id))
            for names, params in by_fields.items():
                conn.executemany(
                    f"UPDATE trials SET {', '.join(n + ' = ?' for n in names)} WHERE trial_id = ?",
                    params)
            if results:
                conn.executemany("INSERT INTO results (trial_id, n, rows) VALUES (?, ?, ?)", results)
            if events:
                conn.executemany("INSERT INTO events (kind, trial_id, payload) VALUES (?, ?, ?)",
                                 events)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def _after_commit(self, batch: tuple) -> None:
        self.n_flushes += 1
        for path in batch[4]:
            target = Path(path)
            if target.is_dir() and self.directory in target.resolve().parents:
                shutil.rmtree(target, ignore_errors=True)

    def set_meta(self, key: str, value: Any) -> None:
        """Write one extra setting at once (durable on return)."""
        self._settle()
        self._conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                           (key, _dumps(value)))

    def checkpoint_soon(self) -> None:
        """Start copying the write-ahead log into the file in a thread of its own.

        That copy (SQLite's checkpoint) is most of the work of :meth:`close`
        after a large sweep, and it runs in SQLite's code, which lets other
        Python threads run: started before the caller reads its results back
        (``ResultGrid.from_store``), the two overlap. It uses a connection of
        its own and only copies what no reader needs (a passive checkpoint);
        :meth:`close` waits for it before it closes the file, and then has
        little left to copy, and so does a fork (as for a background close).
        Best effort: an error (the file removed meanwhile: it is never made
        again) leaves the copy to the close.
        """
        if self.readonly or self._checkpointer is not None:
            return
        uri = _uri(self.path_of(self.directory), "rw")

        def copy() -> None:
            try:
                conn = sqlite3.connect(uri, uri=True, isolation_level=None,
                                       check_same_thread=False)
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
                finally:
                    conn.close()
            except sqlite3.Error:
                pass
            finally:
                with _closing_guard:
                    _checkpointing.discard(threading.current_thread())

        thread = threading.Thread(target=copy, name="fastasha-checkpoint", daemon=True)
        with _closing_guard:        # (a fork waits for the threads listed: started ones)
            _checkpointing.add(thread)
            thread.start()
        self._checkpointer = thread

    def close(self, background: bool = False) -> None:
        """Close the file; waits for a background commit (unflushed writes are not written).

        Closing copies the write-ahead log into the database file (SQLite's
        checkpoint), which takes milliseconds after a large sweep, though
        everything flushed is durable already. With ``background=True`` a
        thread does it and this returns at once. The lock is held until the
        thread is done: opening or creating the experiment again in this
        process waits for it, and so does the interpreter's exit (the thread
        is not a daemon), and so does a fork, so that no child inherits the
        lock. Another process that opens the experiment to write meanwhile
        (a restore, an overwrite) finds the lock file saying so and waits
        too, instead of calling the experiment in use. Reading the file
        meanwhile is safe.
        """
        try:
            self._settle()
        except BaseException:   # noqa: BLE001 - its writes stay unwritten, as any unflushed
            pass
        if not self._busy:      # (a Ctrl-C during the wait leaves the writer to its commit)
            self._stop_writer()
        checkpointer, self._checkpointer = self._checkpointer, None
        if checkpointer is not None:
            # (before the close's own checkpoint, which would find the log busy and leave
            # it and its -shm file behind)
            try:
                checkpointer.join()
            except BaseException:
                # a Ctrl-C: close all the same (the lock goes too); whichever connection
                # closes last copies the log in and removes it, so nothing is lost
                self._close_now()
                raise
        if not background or self.readonly:
            self._close_now()
            return
        if self._lock is not None:
            _say_closing(self._lock)
        key = os.path.realpath(self.directory)
        thread = threading.Thread(target=self._close_now, args=(key,), name="fastasha-close")
        with _closing_guard:        # (a fork waits for the threads listed: started ones)
            _closing[key] = thread
            thread.start()

    def _close_now(self, closing_key: str | None = None) -> None:
        try:
            self._conn.close()
        except sqlite3.Error:
            pass
        finally:
            if self._lock is not None:
                _release_lock(self._lock)
                self._lock = None
            if closing_key is not None:
                with _closing_guard:
                    if _closing.get(closing_key) is threading.current_thread():
                        del _closing[closing_key]

    # ------------------------------------------------------------------ reads

    def settings(self) -> dict:
        row = self._conn.execute("SELECT value FROM meta WHERE key = 'settings'").fetchone()
        return json.loads(row[0]) if row else {}

    def meta(self, key: str, default: Any = None) -> Any:
        row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else default

    def trial_rows(self, decode: bool = True) -> list[dict]:
        """Every trial, in creation order.

        With ``decode=False`` the ``config``, ``resources``, ``last_result`` and
        ``checkpoints`` fields stay JSON text, for readers that decode them
        only on demand.
        """
        cur = self._conn.execute(
            "SELECT idx, trial_id, config, bracket, resources, status, n_failures, error, "
            "traceback, last_result, checkpoint, checkpoints FROM trials ORDER BY idx")
        out = []
        for (idx, trial_id, config, bracket, resources, status, n_failures, error, trace,
             last_result, checkpoint, checkpoints) in cur:
            out.append({
                "index": idx, "trial_id": trial_id,
                "config": json.loads(config) if decode else config,
                "bracket": bracket, "resources": json.loads(resources) if decode else resources,
                "status": status,
                "n_failures": n_failures, "error": error, "traceback": trace,
                "last_result": (json.loads(last_result) if decode else last_result)
                if last_result else None,
                "checkpoint": checkpoint,
                "checkpoints": (json.loads(checkpoints) if decode else checkpoints)
                if checkpoints else [],
            })
        return out

    def results(self, trial_id: str) -> list[dict]:
        """Every result of one trial, in arrival order.

        Each has Ray's ``time_since_restore`` and ``iterations_since_restore``
        too (see :mod:`fastasha._rows`).
        """
        rows: list[dict] = []
        runs = RunTracker()
        for (blob,) in self._conn.execute(
                "SELECT rows FROM results WHERE trial_id = ? ORDER BY seq", (trial_id,)):
            rows.extend(decode(trial_id, blob, runs))
        return rows

    def iter_results(self) -> Iterator[tuple[str, list[dict]]]:
        """``(trial_id, results)`` batches of the whole experiment, in arrival order.

        The results are those of :meth:`results`.
        """
        trackers: dict[str, RunTracker] = {}
        for trial_id, blob in self._conn.execute("SELECT trial_id, rows FROM results ORDER BY seq"):
            runs = trackers.get(trial_id)
            if runs is None:
                runs = trackers[trial_id] = RunTracker()
            yield trial_id, decode(trial_id, blob, runs)

    def last_runs(self, trial_ids: Collection[str] | None = None) -> dict[str, tuple[int, float, int]]:
        """Each trial's last run: what its last stored result's since-restore fields count from.

        Reads the heads of the stored batches (of the trials in ``trial_ids``,
        or all), not the results: those of a trial's first and last batches,
        and for a trial that ran more than once a few more, to find where its
        last run began (a run's batches follow one another). A packed batch
        is never read whole (see :meth:`_head`): reading every trial's last
        run costs about the same for a file of gigabytes as for a small one.
        Trials without stored results are left out.

        Returns
        -------
        dict
            ``trial_id -> (pid, offset, count)``: the run's worker ``pid``,
            the ``time_total_s`` it resumed from and how many results it
            stored, as a :class:`~fastasha._rows.RunTracker` fed the trial's
            batches would hold them (its ``run[1]``, ``offset``, ``count``).
            Plain tuples: a grid of 100,000 trials reads one per trial, and an
            object each made a quarter of that read's time.
        """
        where = "WHERE trial_id = ?" if trial_ids is not None and len(trial_ids) == 1 else ""
        query = f"""
            SELECT g.trial_id, g.first, g.last, g.n, {_head_part('f')}, {_head_part('l')}
            FROM (SELECT trial_id, MIN(seq) AS first, MAX(seq) AS last, SUM(n) AS n
                  FROM results {where} GROUP BY trial_id) AS g
            JOIN results AS f ON f.seq = g.first
            JOIN results AS l ON l.seq = g.last"""
        params = (next(iter(trial_ids)),) if where else ()
        runs: dict[str, tuple[int, float, int]] = {}
        for trial_id, first, last, n, first_part, last_part in self._conn.execute(query, params):
            if trial_ids is not None and trial_id not in trial_ids:
                continue
            start, prev, pid = self._head(trial_id, first, first_part)
            if last != first:
                latest = self._head(trial_id, last, last_part)
                if (start, pid) != (latest[0], latest[2]):     # it ran more than once
                    (start, prev, pid), n = self._run_begun(trial_id, latest)
            runs[trial_id] = (pid, prev - start, n)
        return runs

    def _run_begun(self, trial_id: str, latest: tuple) -> tuple[tuple, int]:
        """The head of the first batch of the run whose last batch has head ``latest``, and
        how many results that run stored (a binary search over the trial's batches)."""
        batches = self._conn.execute("SELECT seq, n FROM results WHERE trial_id = ? ORDER BY seq",
                                     (trial_id,)).fetchall()
        run = (latest[0], latest[2])
        lo, hi, found = 0, len(batches) - 1, latest     # lo: of an earlier run; hi: of this one
        while hi - lo > 1:
            mid = (lo + hi) // 2
            h = self._head(trial_id, batches[mid][0])
            if (h[0], h[2]) == run:
                hi, found = mid, h
            else:
                lo = mid
        return found, sum(n for _, n in batches[hi:])

    def _head(self, trial_id: str, seq: int, part: str | bytes | None = None) -> tuple:
        """``(start, prev, pid)`` of the batch ``seq``, from ``part`` (its beginning) if given.

        A large packed batch comes without ``part`` (see :func:`_head_part`):
        its first bytes are read through a blob handle (Python 3.11+;
        before, the batch is read whole).
        """
        found = None if part is None else head(part)
        if found is None:
            blobopen = getattr(self._conn, "blobopen", None)
            if blobopen is not None:
                with blobopen("results", "rows", seq, readonly=True) as blob:
                    found = head(blob.read(_HEAD_CHARS))
        if found is None:       # a head longer than the part read (a very long host name)
            (whole,) = self._conn.execute("SELECT rows FROM results WHERE seq = ?",
                                          (seq,)).fetchone()
            found = head(whole)
            if found is None:
                raise StoreError(f"a result batch of trial {trial_id} in {self.directory} "
                                 "is corrupt or of an older fastasha (its head cannot be read)")
        return found

    def n_results(self) -> int:
        row = self._conn.execute("SELECT COALESCE(SUM(n), 0) FROM results").fetchone()
        return int(row[0])

    def trial_dirnames(self, settings: dict | None = None) -> dict[str, str]:
        """``{trial_id: folder name}`` of the trials a ``trial_dirname_creator`` named.

        The event log is read only for an experiment whose settings (read
        here unless given) say it had the function.
        """
        if not (settings if settings is not None else self.settings()).get("trial_dirnames"):
            return {}
        return {trial_id: name for _, trial_id, name in self.events([DIRNAME_EVENT])}

    def events(self, kinds: Collection[str] | None = None
               ) -> Iterator[tuple[str, str | None, Any]]:
        """The logged calls of the experiment, in order: ``(kind, trial_id, payload)``.

        The scheduler's calls (``"add"``, ``"result"``, ``"complete"``,
        ``"remove"``) and a ``search_alg``'s (``"searcher.suggest"``,
        ``"searcher.complete"``); ``kinds`` keeps only those named.
        """
        query = "SELECT kind, trial_id, payload FROM events"
        params: tuple = ()
        if kinds is not None:
            kinds = tuple(kinds)
            query += f" WHERE kind IN ({', '.join('?' * len(kinds))})"
            params = kinds
        for kind, trial_id, payload in self._conn.execute(query + " ORDER BY seq", params):
            yield kind, trial_id, json.loads(payload) if payload is not None else None
