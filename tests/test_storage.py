"""The experiment file's contract: what is durable when, order, and refusals."""

from __future__ import annotations

import json
import os
import sqlite3
import stat

import pytest

from fastasha import tune
from fastasha.results import ResultGrid
from fastasha._storage import ExperimentStore, StoreError
from fastasha._rows import encode


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
    first = encode([(1, 100.0, {"loss": 3.0}), (2, 101.5, {"loss": 2.0})],
                   start=99.0, prev=99.0, pid=7, host="h")
    second = encode([(3, 103.0, {"loss": 1.0, "extra": "x"})], start=99.0, prev=101.5, pid=7, host="h")
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
    store.add_results("t0", encode([(1, 1.0, {"loss": 1.0})], start=0.0, prev=0.0, pid=1,
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
