"""The end of a sweep: the experiment file is closed in the background, safely.

``fit()`` returns once everything is durable; the copy of the write-ahead log
into the database file (SQLite's checkpoint on close) runs in a thread. The
lock stays held until that thread is done, so these tests check that nothing
can observe the difference: reopening in the same process waits for it, and
a process that exits right after ``fit()`` still leaves a closed, complete
file behind.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from fastasha import tune
from fastasha._storage import ExperimentStore
from fastasha.results import ResultGrid


class _SlowClose:
    """A connection whose close takes ``delay`` seconds (a checkpoint of a large log)."""

    def __init__(self, conn, delay: float) -> None:
        self._conn, self._delay = conn, delay
        self.closed_at: float | None = None

    def close(self) -> None:
        time.sleep(self._delay)
        self._conn.close()
        self.closed_at = time.monotonic()

    def __getattr__(self, name):
        return getattr(self._conn, name)


def test_reopening_waits_for_a_background_close(tmp_path):
    store = ExperimentStore.create(tmp_path / "exp", {"metric": "loss", "mode": "min"})
    store.add_trial("t0", 0, "{}", 0, {"cpu": 1.0, "gpu": 0.0})
    store.update_trial("t0", status="TERMINATED")
    store.flush()
    slow = store._conn = _SlowClose(store._conn, 0.3)
    store.close(background=True)
    assert slow.closed_at is None                     # it returned before the close

    # reading meanwhile is fine
    reader = ExperimentStore.open(tmp_path / "exp", readonly=True)
    assert [r["status"] for r in reader.trial_rows()] == ["TERMINATED"]
    reader.close()

    # writing again needs the lock: it waits for the close instead of calling the
    # experiment "in use by another fastasha run"
    again = ExperimentStore.open(tmp_path / "exp")
    assert slow.closed_at is not None and time.monotonic() >= slow.closed_at
    assert [r["status"] for r in again.trial_rows()] == ["TERMINATED"]
    again.close()


def test_a_background_close_of_a_read_only_store_is_immediate(tmp_path):
    ExperimentStore.create(tmp_path / "exp", {}).close()
    reader = ExperimentStore.open(tmp_path / "exp", readonly=True)
    reader.close(background=True)        # nothing to checkpoint, no lock: no thread
    assert not [t for t in threading.enumerate() if t.name == "fastasha-close"]
    with pytest.raises(sqlite3.ProgrammingError, match="closed"):
        reader._conn.execute("SELECT 1")   # closed before close() returned


def noop(config):
    for i in range(3):
        tune.report({"loss": config["x"] + i})


def test_restore_right_after_fit_in_the_same_process(tmp_path):
    tuner = tune.Tuner(
        noop, param_space={"x": tune.grid_search([1, 2, 3, 4])},
        tune_config=tune.TuneConfig(metric="loss", mode="min"),
        run_config=tune.RunConfig(name="exp", storage_path=str(tmp_path), verbose=0),
        resources={"cpu": 2})
    grid = tuner.fit()
    assert grid.num_terminated == 4
    # at once: the file may still be closing in the background
    restored = tune.Tuner.restore(str(tmp_path / "exp"), noop)
    again = restored.fit()
    assert again.num_terminated == 4
    assert sorted(r.metrics["loss"] for r in again) == [3, 4, 5, 6]


def test_a_process_that_exits_right_after_fit_leaves_a_closed_complete_file(tmp_path):
    script = textwrap.dedent(f"""
        import os, sys
        from fastasha import tune

        def objective(config):
            for i in range(50):
                tune.report({{"loss": config["x"] * i}})

        grid = tune.Tuner(
            objective, param_space={{"x": tune.uniform(0, 1)}},
            tune_config=tune.TuneConfig(num_samples=200, metric="loss", mode="min"),
            run_config=tune.RunConfig(name="exp", storage_path={str(tmp_path)!r}, verbose=0),
            resources={{"cpu": 2}},
        ).fit()
        print(len(grid), flush=True)
        # the interpreter's exit waits for the close; nothing else does
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "200"
    directory = tmp_path / "exp"
    # closed: the log was copied into the file and removed, and the lock is free
    assert not (directory / "experiment.db-wal").exists()
    store = ExperimentStore.open(directory)
    store.close()
    grid = ResultGrid.from_path(directory)
    assert len(grid) == 200 and grid.num_terminated == 200
    assert all(r.metrics["training_iteration"] == 50 for r in grid)
