"""The experiment file's contract: what is durable when, order, and refusals."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import stat
import subprocess
import sys
import threading
import time

import pytest

from fastasha import tune
from fastasha.results import ResultGrid
from fastasha._storage import ExperimentStore, StoreError
from hypothesis import given, settings
from hypothesis import strategies as st

from fastasha._rows import decode, encode


def _store(tmp_path, name="exp"):
    return ExperimentStore.create(tmp_path / name, {"metric": "loss", "mode": "min"})


def _reader(path):
    return sqlite3.connect(f"file:{path / 'experiment.db'}?mode=ro", uri=True)


def test_writes_are_queued_until_flush_then_visible_to_other_readers(tmp_path):
    store = _store(tmp_path)
    store.add_trial("t0", 0, '{"x": 1}', 0, {"cpu": 1.0, "gpu": 0.0})
    store.update_trial("t0", status="RUNNING")
    reader = _reader(tmp_path / "exp")
    assert reader.execute("SELECT COUNT(*) FROM trials").fetchone()[0] == 0
    store.flush()
    assert reader.execute("SELECT status FROM trials").fetchall() == [("RUNNING",)]
    store.update_trial("t0", status="TERMINATED", last_result={"loss": 0.5})
    store.flush()
    assert reader.execute("SELECT status FROM trials").fetchall() == [("TERMINATED",)]
    store.close()


def test_results_keep_arrival_order_and_expand_to_full_results(tmp_path):
    store = _store(tmp_path)
    store.add_trial("t0", 0, "{}", 0, {"cpu": 1.0, "gpu": 0.0})
    first = encode(1, [(100.0, {"loss": 3.0}), (101.5, {"loss": 2.0})],
                   start=99.0, prev=99.0, pid=7, host="h")
    second = encode(3, [(103.0, {"loss": 1.0, "extra": "x"})], start=99.0, prev=101.5, pid=7,
                    host="h")
    store.add_results("t0", first, 2)
    store.add_results("t0", second, 1)
    store.flush()
    rows = store.results("t0")
    assert [r["training_iteration"] for r in rows] == [1, 2, 3]
    assert [r["loss"] for r in rows] == [3.0, 2.0, 1.0]
    assert [r["time_this_iter_s"] for r in rows] == [1.0, 1.5, 1.5]
    assert [r["time_total_s"] for r in rows] == [1.0, 2.5, 4.0]
    assert rows[2]["extra"] == "x" and rows[0]["trial_id"] == "t0" and rows[0]["pid"] == 7
    assert store.n_results() == 3
    store.close()


def test_nothing_is_pickled(tmp_path):
    store = _store(tmp_path)
    store.add_trial("t0", 0, '{"x": 1}', 0, {"cpu": 1.0, "gpu": 0.0})
    store.add_event("result", "t0", {"loss": float("nan")})
    store.flush()
    store.close()
    reader = _reader(tmp_path / "exp")
    for table in ("meta", "trials", "results", "events"):
        for row in reader.execute(f"SELECT * FROM {table}"):
            for value in row:
                assert value is None or isinstance(value, (str, int, float)), (table, row)
                if isinstance(value, str) and value[:1] in "{[":
                    json.loads(value)


def test_existing_experiment_is_refused_unless_overwrite(tmp_path):
    _store(tmp_path).close()
    with pytest.raises(FileExistsError, match="Tuner.restore"):
        _store(tmp_path)
    again = ExperimentStore.create(tmp_path / "exp", {"a": 2}, overwrite=True)
    assert again.settings() == {"a": 2}
    again.close()


def test_a_crash_during_creation_does_not_block_the_name(tmp_path):
    directory = tmp_path / "exp"
    (directory / "trials").mkdir(parents=True)
    (directory / ".experiment.db.creating-12345").write_bytes(b"half a database")
    store = ExperimentStore.create(directory, {"a": 1})
    assert store.settings() == {"a": 1}
    assert not list(directory.glob(".experiment.db.creating-*"))
    store.close()


def test_a_new_file_is_in_wal_mode_and_synced_before_it_takes_its_name(tmp_path, monkeypatch):
    # made without a journal and unsynced, so one fsync must come before the rename
    calls = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append(("fsync", os.readlink(
        f"/proc/self/fd/{fd}"))), real_fsync(fd))[1])
    monkeypatch.setattr(os, "replace", lambda a, b: (calls.append(("replace", str(a))),
                                                     real_replace(a, b))[1])
    store = _store(tmp_path)
    monkeypatch.undo()
    partial = [path for kind, path in calls if kind == "replace"]
    assert len(partial) == 1 and ".experiment.db.creating-" in partial[0]
    assert calls.index(("fsync", partial[0])) < calls.index(("replace", partial[0]))
    reader = _reader(tmp_path / "exp")
    assert reader.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert json.loads(reader.execute(
        "SELECT value FROM meta WHERE key = 'settings'").fetchone()[0]) == {
            "metric": "loss", "mode": "min"}
    reader.close()
    store.add_trial("t0", 0, '{"x": 1}', 0, {"cpu": 1.0, "gpu": 0.0})
    store.flush()
    store.close()
    assert sorted(p.name for p in (tmp_path / "exp").iterdir()
                  if not p.name.startswith(".")) == ["experiment.db", "trials"]
    again = ExperimentStore.open(tmp_path / "exp", readonly=True)
    assert [row["trial_id"] for row in again.trial_rows()] == ["t0"]
    again.close()


_NO_SHARED_MMAP = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
/* As on file systems without shared mappings (9p, vboxsf, some FUSE mounts): a
   MAP_SHARED mapping of a file whose name ends in -shm (SQLite's WAL index) fails. */
static void *(*real_mmap)(void *, size_t, int, int, int, off_t);
void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off) {
    if (!real_mmap) real_mmap = dlsym(RTLD_NEXT, "mmap");
    if (fd >= 0 && (flags & MAP_SHARED)) {
        char link[64], path[4096]; ssize_t n;
        snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
        n = readlink(link, path, sizeof path - 1);
        if (n > 4) { path[n] = 0;
            if (strcmp(path + n - 4, "-shm") == 0) { errno = ENODEV; return MAP_FAILED; } }
    }
    return real_mmap(addr, len, prot, flags, fd, off);
}
void *mmap64(void *a, size_t l, int p, int f, int fd, off_t o) { return mmap(a, l, p, f, fd, o); }
"""


_needs_shim = pytest.mark.skipif(
    not sys.platform.startswith("linux") or shutil.which("cc") is None,
    reason="needs Linux and a C compiler (for an LD_PRELOAD shim)")


def _shim(tmp_path, name, code):
    """Compile ``code`` (C) into a shared library for LD_PRELOAD; its path."""
    source = tmp_path / f"{name}.c"
    source.write_text(code)
    shim = tmp_path / f"{name}.so"
    subprocess.run(["cc", "-shared", "-fPIC", "-o", str(shim), str(source), "-ldl"],
                   check=True, capture_output=True, timeout=120)
    return shim


@_needs_shim
def test_where_wal_cannot_work_no_experiment_file_is_left_to_block_the_name(tmp_path):
    # The file is made without a journal and switched to WAL at the end: it must be
    # read in WAL mode before it takes its name, or a file no run can open (nor
    # overwrite) would be left behind.
    shim = _shim(tmp_path, "noshm", _NO_SHARED_MMAP)
    script = (
        "import os, sys\n"
        "from fastasha._storage import ExperimentStore\n"
        "for overwrite in (False, True):\n"
        "    try:\n"
        "        ExperimentStore.create(sys.argv[1], {'metric': 'loss'}, overwrite=overwrite)\n"
        "        print('created')\n"
        "    except Exception as err:\n"
        "        print(type(err).__name__, str(err).replace(chr(10), ' '))\n"
        "    print(sorted(os.listdir(sys.argv[1])))\n"
    )
    out = subprocess.run([sys.executable, "-c", script, str(tmp_path / "exp")],
                         env={**os.environ, "LD_PRELOAD": str(shim)},
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert len(lines) == 4, out.stdout
    for attempt, files in ((lines[0], lines[1]), (lines[2], lines[3])):
        assert attempt != "created" and "not a readable fastasha experiment" not in attempt
        assert files == "['.experiment.lock', 'trials']"    # no file, whole or partial
    assert lines[0] == lines[2]           # the second attempt fails as the first did
    assert lines[0].startswith("StoreError") and "choose a storage_path" in lines[0]


_LOG_FOLDER_SYNCS = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
/* Appends the path of every folder that is fsync()ed or fdatasync()ed to the file
   named by $FOLDER_SYNC_LOG, then syncs as asked. */
static void note(int fd) {
    struct stat st; char link[64], path[4096]; ssize_t n; FILE *log;
    const char *name = getenv("FOLDER_SYNC_LOG");
    if (!name || fstat(fd, &st) != 0 || !S_ISDIR(st.st_mode)) return;
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    n = readlink(link, path, sizeof path - 1);
    if (n <= 0) return;
    path[n] = 0;
    if ((log = fopen(name, "a"))) { fprintf(log, "%s\n", path); fclose(log); }
}
int fsync(int fd) {
    static int (*real)(int);
    if (!real) real = dlsym(RTLD_NEXT, "fsync");
    note(fd);
    return real(fd);
}
int fdatasync(int fd) {
    static int (*real)(int);
    if (!real) real = dlsym(RTLD_NEXT, "fdatasync");
    note(fd);
    return real(fd);
}
"""


@_needs_shim
def test_the_new_files_name_is_made_durable_by_the_first_commit(tmp_path):
    # ExperimentStore.create renames the finished file into place and does not sync
    # the folder itself: it relies on SQLite syncing the folder when it first syncs
    # the WAL it creates there (at the first commit). If a SQLite ever stopped doing
    # that, this fails, and create() must sync the folder itself.
    shim = _shim(tmp_path, "syncs", _LOG_FOLDER_SYNCS)
    log = tmp_path / "folder-syncs.log"
    script = (
        "import os, sys\n"
        "from fastasha._storage import ExperimentStore\n"
        "store = ExperimentStore.create(sys.argv[1], {'metric': 'loss'})\n"
        "store.add_trial('t0', 0, '{}', None, {'cpu': 1})\n"
        "store.flush()\n"
        "print('flushed', flush=True)\n"
        "os.abort()\n"          # no close: only what the commit did counts
    )
    out = subprocess.run([sys.executable, "-c", script, str(tmp_path / "exp")],
                         env={**os.environ, "LD_PRELOAD": str(shim),
                              "FOLDER_SYNC_LOG": str(log)},
                         capture_output=True, text=True, timeout=120)
    assert out.stdout == "flushed\n", out.stderr
    synced = log.read_text().splitlines() if log.exists() else []
    assert os.path.realpath(tmp_path / "exp") in synced, synced


def test_a_folder_with_other_files_is_refused(tmp_path):
    directory = tmp_path / "exp"
    directory.mkdir()
    (directory / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not empty"):
        ExperimentStore.create(directory, {})
    assert (directory / "notes.txt").read_text() == "mine"


def test_files_are_private(tmp_path):
    store = _store(tmp_path)
    store.close()
    assert stat.S_IMODE(os.stat(tmp_path / "exp").st_mode) == 0o700
    assert stat.S_IMODE(os.stat(tmp_path / "exp" / "experiment.db").st_mode) == 0o600


@pytest.mark.parametrize("content", [b"", b"not a database at all" * 100])
def test_a_foreign_file_gives_a_clear_error(tmp_path, content):
    directory = tmp_path / "exp"
    directory.mkdir()
    (directory / "experiment.db").write_bytes(content)
    with pytest.raises(StoreError, match="fastasha experiment"):
        ExperimentStore.open(directory)
    with pytest.raises(ValueError, match="fastasha experiment"):
        ResultGrid.from_path(directory)
    assert not tune.Tuner.can_restore(directory)
    assert (directory / "experiment.db").read_bytes() == content


def test_unknown_trial_field_is_an_error(tmp_path):
    store = _store(tmp_path)
    with pytest.raises(ValueError, match="unknown trial field"):
        store.update_trial("t0", colour="red")
    store.close()


class _FailingCommit:
    """Wraps a connection so that the next COMMIT fails, as a full disk would."""

    def __init__(self, conn):
        self.conn, self.armed = conn, True

    def execute(self, sql, *args):
        if sql == "COMMIT" and self.armed:
            self.armed = False
            raise sqlite3.OperationalError("database or disk is full")
        return self.conn.execute(sql, *args)

    def executemany(self, sql, rows):
        return self.conn.executemany(sql, rows)


def test_a_failed_flush_keeps_the_queued_writes(tmp_path):
    store = _store(tmp_path)
    real = store._conn
    store.add_trial("t0", 0, "{}", 0, {"cpu": 1.0, "gpu": 0.0})
    store.add_results("t0", encode(1, [(1.0, {"loss": 1.0})], start=0.0, prev=0.0, pid=1,
                                   host="h"), 1)
    store.add_event("add", "t0", {"bracket": 0})
    store._conn = _FailingCommit(real)
    with pytest.raises(sqlite3.OperationalError, match="disk is full"):
        store.flush()
    store.update_trial("t0", status="TERMINATED")     # a write queued after the failure
    store._conn = real
    store.flush()                                     # the retry writes everything
    assert [r["loss"] for r in store.results("t0")] == [1.0]
    assert store.trial_rows()[0]["status"] == "TERMINATED"
    assert list(store.events()) == [("add", "t0", {"bracket": 0})]
    store.close()


def test_background_commits_keep_order_and_a_failure_loses_nothing(tmp_path):
    store = _store(tmp_path)
    real = store._conn
    store.add_trial("t0", 0, "{}", 0, {"cpu": 1.0, "gpu": 0.0})
    store.update_trial("t0", status="RUNNING")
    store.flush_soon()
    store.add_results("t0", encode(1, [(1.0, {"loss": 1.0})], start=0.0, prev=0.0, pid=1,
                                   host="h"), 1)
    store.flush_soon()          # waits for the next call if the first commit still runs
    store.flush()               # durable: both batches
    reader = _reader(tmp_path / "exp")
    assert reader.execute("SELECT status FROM trials").fetchall() == [("RUNNING",)]
    assert reader.execute("SELECT COUNT(*) FROM results").fetchone() == (1,)

    store._conn = _FailingCommit(real)
    store.update_trial("t0", status="TERMINATED")
    store.add_event("complete", "t0", {"loss": 1.0})
    store.flush_soon()          # fails in the background
    store.update_trial("t0", n_failures=0)      # queued meanwhile
    with pytest.raises(sqlite3.OperationalError, match="disk is full"):
        store.flush()           # the background failure is raised in the caller's thread
    store._conn = real
    store.flush()
    assert reader.execute("SELECT status FROM trials").fetchall() == [("TERMINATED",)]
    assert list(store.events()) == [("complete", "t0", {"loss": 1.0})]
    store.close()


def _writers(store):
    return [t for t in threading.enumerate()
            if t.name == "fastasha-store" and t is getattr(store, "_writer", None)]


def test_background_commits_share_one_writer_thread_that_close_ends(tmp_path):
    store = _store(tmp_path)
    reader = _reader(tmp_path / "exp")
    writers = set()
    for k in range(3):
        store.add_trial(f"t{k}", k, "{}", None, {"cpu": 1.0})
        store.flush_soon()
        writers.update(_writers(store))
        store.flush()                 # waits for the background commit
        assert reader.execute("SELECT count(*) FROM trials").fetchone() == (k + 1,)
    assert len(writers) == 1          # one thread for every commit
    (writer,) = writers
    store.close()
    writer.join(timeout=5)
    assert not writer.is_alive()


@pytest.mark.parametrize("settled", [True, False])
def test_a_store_dropped_without_close_ends_its_writer_after_its_commit(tmp_path, settled):
    # settled: the writer is idle when the store goes; else the writes handed to it
    # are still to be committed, and are
    import gc

    store = _store(tmp_path)
    store.add_trial("t0", 0, "{}", None, {"cpu": 1.0})
    store.flush_soon()
    (writer,) = _writers(store)
    if settled:
        store._settle()
    del store
    gc.collect()
    writer.join(timeout=5)
    assert not writer.is_alive()
    assert _reader(tmp_path / "exp").execute("SELECT trial_id FROM trials").fetchall() == \
        [("t0",)]


def test_ctrl_c_as_the_writer_thread_starts_loses_nothing(tmp_path, monkeypatch):
    store = _store(tmp_path)
    real_start = threading.Thread.start

    def start_then_ctrl_c(self):
        real_start(self)
        if self.name == "fastasha-store":
            raise KeyboardInterrupt

    monkeypatch.setattr(threading.Thread, "start", start_then_ctrl_c)
    store.add_trial("t0", 0, "{}", None, {"cpu": 1.0})
    with pytest.raises(KeyboardInterrupt):
        store.flush_soon()
    monkeypatch.setattr(threading.Thread, "start", real_start)
    store.flush()
    store.close()
    assert _reader(tmp_path / "exp").execute("SELECT trial_id FROM trials").fetchall() == \
        [("t0",)]


def test_ctrl_c_while_waiting_for_a_background_commit_loses_nothing(tmp_path, monkeypatch):
    """A second Ctrl-C can land while flush() waits for the background writer."""
    store = _store(tmp_path)
    real_commit = ExperimentStore._commit

    def slow_commit(self, batch):
        if threading.current_thread().name == "fastasha-store":
            time.sleep(0.5)          # a slow disk
        return real_commit(self, batch)

    monkeypatch.setattr(ExperimentStore, "_commit", slow_commit)
    store.add_trial("t1", 0, "{}", None, {"cpu": 1.0})
    store.flush_soon()               # t1 is being committed in the background
    store.add_trial("t2", 1, "{}", None, {"cpu": 1.0})

    def ctrl_c(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGALRM, ctrl_c)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.1)
        with pytest.raises(KeyboardInterrupt):
            store.flush()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    store.flush()                    # what the Tuner does on its way out
    store.close()
    reader = _reader(tmp_path / "exp")
    assert [t for (t,) in reader.execute("SELECT trial_id FROM trials ORDER BY idx")] == \
        ["t1", "t2"]


# ------------------------------------------------------------ packed batches

_plain_values = st.one_of(st.floats(allow_nan=True, allow_infinity=True, width=64),
                          st.integers(min_value=-(1 << 63), max_value=(1 << 63) - 1))
_any_values = st.one_of(_plain_values, st.booleans(), st.none(), st.text(max_size=3),
                        st.integers(min_value=1 << 63, max_value=1 << 70))


@st.composite
def _batches(draw):
    """Consecutive reports; mostly plain (packable), sometimes not."""
    n = draw(st.integers(min_value=1, max_value=12))
    keys = draw(st.lists(st.text(min_size=1, max_size=4), max_size=4, unique=True))
    values = _plain_values if draw(st.booleans()) else _any_values
    first = draw(st.integers(min_value=1, max_value=10**6))
    t = draw(st.floats(min_value=0, max_value=2e9))
    entries = []
    for i in range(n):
        row_keys = keys if draw(st.integers(0, 9)) else keys[:-1]
        if not draw(st.integers(0, 9)):
            row_keys = list(reversed(row_keys))      # same keys, another order
        entries.append((t + i * 0.25, {k: draw(values) for k in row_keys}))
    return first, entries


def _same(a, b):
    """Equal results, NaN included, with the same types (an int stays an int)."""
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert list(x) == list(y)        # the same keys in the same order
        for k in x:
            assert type(x[k]) is type(y[k]), (k, x[k], y[k])
            assert x[k] == y[k] or (x[k] != x[k] and y[k] != y[k]), (k, x[k], y[k])


@settings(max_examples=300, deadline=None)
@given(_batches())
def test_packed_batches_read_back_exactly_as_json_ones(batch):
    first, entries = batch
    kw = dict(start=entries[0][0] - 3.0, prev=entries[0][0] - 1.0, pid=11, host="node")
    packed, text = encode(first, entries, **kw), encode(first, entries, **kw, pack=False)
    assert isinstance(text, str)
    _same(decode("t", packed), decode("t", text))
    assert [r["training_iteration"] for r in decode("t", packed)] == \
        list(range(first, first + len(entries)))
    plain = all(list(m) == list(entries[0][1]) for _, m in entries) and all(
        type(v) is float or (type(v) is int and -(1 << 63) <= v < 1 << 63)
        for _, m in entries for v in m.values())
    if plain and all(len({type(m[k]) for _, m in entries}) == 1 for k in entries[0][1]):
        assert isinstance(packed, bytes) and packed[:4] == b"FAR1"


def test_packed_batches_survive_the_store_and_are_not_pickle(tmp_path):
    store = _store(tmp_path)
    store.add_trial("t0", 0, "{}", 0, {"cpu": 1.0, "gpu": 0.0})
    entries = [(100.0 + i, {"loss": 1.0 / i, "step": i}) for i in range(1, 101)]
    blob = encode(1, entries, start=99.0, prev=99.0, pid=3, host="h")
    assert isinstance(blob, bytes)
    store.add_results("t0", blob, len(entries))
    store.flush()
    rows = store.results("t0")
    assert [r["training_iteration"] for r in rows] == list(range(1, 101))
    assert [r["loss"] for r in rows] == [1.0 / i for i in range(1, 101)]
    assert all(type(r["step"]) is int for r in rows)
    assert rows[-1]["time_total_s"] == 101.0 and rows[5]["time_this_iter_s"] == 1.0
    store.close()
    (stored,) = _reader(tmp_path / "exp").execute("SELECT rows FROM results").fetchone()
    assert stored[:4] == b"FAR1" and b"\x80" != stored[:1]   # not a pickle stream


def test_truncated_packed_batch_is_an_error():
    blob = encode(1, [(1.0, {"loss": 0.5}), (2.0, {"loss": 0.25})], start=0.0, prev=0.0,
                  pid=1, host="h")
    with pytest.raises(ValueError, match="truncated"):
        decode("t", blob[:-3])


def test_each_result_keeps_the_key_order_it_was_reported_in():
    entries = [(10.0, {"a": 1.0, "b": 2.0}), (11.0, {"b": 3.0, "a": 4.0})]
    rows = decode("t", encode(1, entries, start=9.0, prev=9.0, pid=1, host="h"))
    assert [list(r)[-2:] for r in rows] == [["a", "b"], ["b", "a"]]
    assert [(r["a"], r["b"]) for r in rows] == [(1.0, 2.0), (4.0, 3.0)]


def test_scopes_over_all_trials_read_the_file_once_and_see_the_same_histories(tmp_path,
                                                                              monkeypatch):
    """get_best_result(scope=...) reads every history in one pass; the same as one by one."""
    import sys

    import joblib

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import objectives

    with joblib.parallel_config(backend="threading"):
        grid = tune.Tuner(
            objectives.short_trial, param_space={"x": tune.uniform(0, 1), "reports": 3},
            tune_config=tune.TuneConfig(num_samples=40, metric="loss", mode="min", seed=2),
            run_config=tune.RunConfig(storage_path=str(tmp_path), name="h", verbose=0),
            resources={"cpu": 2}).fit()
    one_by_one = ResultGrid.from_path(grid.experiment_path)
    expected = {r.trial_id: r.history() for r in one_by_one}
    together = ResultGrid.from_path(grid.experiment_path)
    opened = []
    real_open = ExperimentStore.open

    def counting_open(cls, *args, **kwargs):
        opened.append(args)
        return real_open(*args, **kwargs)

    monkeypatch.setattr(ExperimentStore, "open", classmethod(counting_open))
    best = together.get_best_result(scope="avg")
    histories = {r.trial_id: r.history() for r in together}
    monkeypatch.undo()
    assert len(opened) == 1
    assert histories == expected
    assert all(h[-1]["done"] is True and len(h) == 3 for h in histories.values())
    avg = {t: sum(r["loss"] for r in h) / 3 for t, h in expected.items()}
    assert best.trial_id == min(avg, key=avg.get)


def test_a_file_system_without_locks_is_used_unlocked_with_a_warning(tmp_path, monkeypatch):
    import fcntl

    def no_locks(fd, operation):
        raise OSError(37, "No locks available")      # ENOLCK: NFS without a lock daemon

    monkeypatch.setattr(fcntl, "flock", no_locks)
    with pytest.warns(RuntimeWarning, match="cannot lock"):
        store = ExperimentStore.create(tmp_path / "nfs", {"a": 1})
    store.close()
    with pytest.warns(RuntimeWarning, match="cannot lock"):
        ExperimentStore.open(tmp_path / "nfs").close()


def test_a_path_starting_with_two_slashes_opens(tmp_path):
    ExperimentStore.create(tmp_path / "exp", {"a": 1}).close()
    odd = "/" + str(tmp_path / "exp")           # //tmp/...: the same folder on POSIX
    store = ExperimentStore.open(odd, readonly=True)
    assert store.settings() == {"a": 1}
    store.close()


def test_a_checkpoint_started_before_the_close_leaves_no_log_behind(tmp_path):
    """checkpoint_soon() copies the log in a thread; close() waits for it, then removes it."""
    store = ExperimentStore.create(tmp_path / "exp", {"a": 1})
    for i in range(200):
        store.add_trial(f"t{i}", i, "{}", None, {"cpu": 1})
        store.add_results(f"t{i}", '[{"loss": 1.0}]', 1)
    store.flush()
    wal = tmp_path / "exp" / "experiment.db-wal"
    assert wal.exists() and wal.stat().st_size > 0
    store.checkpoint_soon()
    store.checkpoint_soon()          # (a second call while one runs does nothing)
    assert len(store.trial_rows()) == 200      # reads meanwhile see everything
    store.close()
    assert sorted(p.name for p in (tmp_path / "exp").iterdir()
                  if p.name.startswith("experiment.db")) == ["experiment.db"]
    reopened = ExperimentStore.open(tmp_path / "exp", readonly=True)
    assert len(reopened.trial_rows()) == 200
    reopened.close()


def test_a_ctrl_c_while_the_close_waits_for_the_checkpoint_still_closes(tmp_path):
    """The file is closed and its lock released; the experiment reopens with every trial."""
    store = ExperimentStore.create(tmp_path / "exp", {"a": 1})
    for i in range(50):
        store.add_trial(f"t{i}", i, "{}", None, {"cpu": 1})
    store.flush()
    store.checkpoint_soon()
    thread = store._checkpointer
    thread.join()                          # (done: only the wait is interrupted below)

    class Interrupted:
        def join(self):
            raise KeyboardInterrupt

    store._checkpointer = Interrupted()
    with pytest.raises(KeyboardInterrupt):
        store.close()
    reopened = ExperimentStore.open(tmp_path / "exp")       # for writing: the lock is free
    assert len(reopened.trial_rows()) == 50
    reopened.close()


def test_the_checkpoint_never_makes_a_removed_file_again(tmp_path):
    """A second connection opened by path would create an empty experiment.db."""
    store = ExperimentStore.create(tmp_path / "exp", {"a": 1})
    store.add_trial("t0", 0, "{}", None, {"cpu": 1})
    store.flush()
    for p in (tmp_path / "exp").iterdir():
        if p.name.startswith("experiment.db"):
            p.unlink()
    store.checkpoint_soon()
    store.close()
    assert not any(p.name.startswith("experiment.db") for p in (tmp_path / "exp").iterdir())


def test_a_fork_waits_for_the_checkpoint_thread(tmp_path):
    """As for a background close: no child inherits SQLite's locks from a copy in flight."""
    from fastasha import _storage

    store = ExperimentStore.create(tmp_path / "exp", {"a": 1})
    for i in range(3000):
        store.add_trial(f"t{i}", i, "{}", None, {"cpu": 1})
        store.add_results(f"t{i}", '[{"loss": 1.0}]' * 20, 1)
    store.flush()
    store.checkpoint_soon()
    thread = store._checkpointer
    _storage._wait_for_all_closes()            # what runs before every fork
    assert not thread.is_alive() and not _storage._checkpointing
    store.close()
