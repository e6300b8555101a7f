"""When the driver hands queued writes to the store's background writer."""

from __future__ import annotations

import sqlite3
import time

import joblib
import pytest

from fastasha import tune
from fastasha._execution import driver


def _objective(config):
    time.sleep(0.001)
    tune.report({"loss": config["x"]})


class _CommittedAtTheEnd(tune.Callback):
    """Counts the trials the file holds (committed) when the last trial completes."""

    def __init__(self, db, n):
        self.db, self.n, self.done, self.committed = db, n, 0, None

    def on_trial_complete(self, iteration, trials, trial, **info):
        self.done += 1
        if self.done == self.n:
            with sqlite3.connect(f"file:{self.db}?mode=ro", uri=True) as conn:
                self.committed = conn.execute("SELECT count(*) FROM trials").fetchone()[0]


def _sweep(tmp_path, n):
    counter = _CommittedAtTheEnd(tmp_path / "cadence" / "experiment.db", n)
    tuner = tune.Tuner(
        _objective,
        param_space={"x": tune.grid_search(list(range(n)))},
        tune_config=tune.TuneConfig(metric="loss", mode="min"),
        run_config=tune.RunConfig(name="cadence", storage_path=str(tmp_path), verbose=0,
                                  callbacks=[counter]),
        resources={"cpu": 2},
    )
    with joblib.parallel_config(backend="threading"):
        grid = tuner.fit()
    assert grid.num_terminated == n
    return counter.committed


@pytest.mark.parametrize("pending", [30, 10**9])
def test_queued_writes_are_committed_once_enough_wait_even_before_the_interval(
        tmp_path, monkeypatch, pending):
    # With an interval longer than the sweep, only the count of queued writes can
    # start a commit before the end: 200 trials queue about 600 writes.
    monkeypatch.setattr(driver, "FLUSH_INTERVAL_S", 3600.0)
    monkeypatch.setattr(driver, "FLUSH_PENDING_WRITES", pending)
    committed = _sweep(tmp_path, 200)
    if pending == 30:
        assert committed > 0
    else:
        assert committed == 0     # (the control: nothing else commits before the end)
