"""Fixes from a review of the results' Ray fields (since-restore, experiment_tag, reading cost).

Each test failed before its fix. The sweeps that must be read while they
run, or after their driver was SIGKILLed, run as a driver process of their
own (a script written to the test's folder), killed by PID as in
``tests/test_faults.py``.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import time
import warnings
from pathlib import Path

import pytest

from fastasha import _storage, tune

# ----------------------------------------- a retried trial read while it runs again

RETRY_DRIVER = textwrap.dedent('''
    import sys, tempfile, time
    from fastasha import tune

    def objective(config):
        if tune.get_checkpoint() is None:       # the first run: four results, then fails
            for i in range(4):
                checkpoint = None
                if i == 1:
                    checkpoint = tune.Checkpoint.from_directory(tempfile.mkdtemp())
                tune.report({"loss": float(i)}, checkpoint=checkpoint)
            raise RuntimeError("the first run fails")
        for i in range(6):      # the retry (same worker process): a checkpoint each, so stored
            tune.report({"loss": 10.0 + i},
                        checkpoint=tune.Checkpoint.from_directory(tempfile.mkdtemp()))
        time.sleep(600)         # until killed

    if __name__ == "__main__":
        tune.Tuner(objective, param_space={"x": 1}, run_config=tune.RunConfig(
            storage_path=sys.argv[1], name="retried", verbose=0,
            failure_config=tune.FailureConfig(max_failures=1))).fit()
''')


def _stored_results(db: Path) -> int:
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            return conn.execute("SELECT COALESCE(SUM(n), 0) FROM results").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.Error:
        return 0


def _process_tree(pid: int) -> list[tuple[int, str]]:
    """``(pid, start time)`` of the processes below ``pid``, from /proc (empty elsewhere)."""
    parents, starts = {}, {}
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else ():
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="utf-8") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        parents.setdefault(int(fields[1]), []).append(int(entry))
        starts[int(entry)] = fields[19]
    found, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append((child, starts[child]))
            todo.append(child)
    return found


def _kill_left_over(tree: list[tuple[int, str]]) -> None:
    """SIGKILL those of ``tree`` still running (the same process: same start time)."""
    for pid, start in tree:
        try:
            with open(f"/proc/{pid}/stat", encoding="utf-8") as f:
                if f.read().rsplit(")", 1)[1].split()[19] == start:
                    os.kill(pid, signal.SIGKILL)
        except (OSError, IndexError):
            pass


@pytest.fixture
def retried_then_killed(tmp_path):
    """Yield a reader at a sweep whose trial was retried and runs again; then SIGKILL it."""
    script = tmp_path / "driver.py"
    script.write_text(RETRY_DRIVER)
    proc = subprocess.Popen([sys.executable, str(script), str(tmp_path)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    db = tmp_path / "retried" / "experiment.db"
    tree: list[tuple[int, str]] = []
    try:
        deadline = time.monotonic() + 30
        while _stored_results(db) < 10:        # 4 of the first run, 6 of the retry
            if proc.poll() is not None:
                raise AssertionError(f"the driver exited: {proc.stderr.read().decode()[-2000:]}")
            if time.monotonic() > deadline:
                raise AssertionError("the retry's results were not stored within 30 s")
            time.sleep(0.05)
        tree = _process_tree(proc.pid)      # (its pool's workers may outlive it a while)

        def kill():
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)

        yield tmp_path / "retried", kill
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)
        proc.stderr.close()
        _kill_left_over(tree)


def _check_last_stored_result(path: Path) -> None:
    (result,) = tune.ResultGrid.from_path(path)
    assert result.status == "RUNNING"
    history = result.history()
    assert [r["loss"] for r in history] == [0.0, 1.0, 2.0, 3.0] + [10.0 + i for i in range(6)]
    metrics = result.metrics
    # the retry's latest result, not the failed run's (both ran in one worker process)
    assert metrics["loss"] == 15.0 and metrics["iterations_since_restore"] == 6
    for key in ("training_iteration", "time_total_s", "time_since_restore"):
        assert metrics[key] == history[-1][key], key
    assert metrics["time_since_restore"] < metrics["time_total_s"]
    frame = tune.ResultGrid.from_path(path).get_dataframe()
    assert list(frame["loss"]) == [15.0]
    assert list(frame["iterations_since_restore"]) == [6]


def test_a_retried_trial_read_while_it_runs_shows_the_retrys_results(retried_then_killed):
    path, _ = retried_then_killed
    _check_last_stored_result(path)


def test_a_retried_trial_whose_driver_was_killed_shows_the_retrys_results(retried_then_killed):
    path, kill = retried_then_killed
    kill()
    _check_last_stored_result(path)


def test_an_unfinished_trial_left_as_it_is_keeps_its_last_stored_result(retried_then_killed):
    path, kill = retried_then_killed
    kill()
    grid = tune.Tuner.restore(str(path), reports_once, resume_unfinished=False).fit()
    for result in (grid[0], tune.ResultGrid.from_path(path)[0]):
        assert result.status == "TERMINATED"
        last = result.history()[-1]
        assert result.metrics["loss"] == last["loss"] == 15.0
        assert result.metrics["done"] is True
        for key in ("training_iteration", "time_total_s", "time_since_restore",
                    "iterations_since_restore"):
            assert result.metrics[key] == last[key], key


# ------------------------------------------- experiment_tag of numpy config values

def reports_once(config):
    tune.report({"loss": 1.0})


def test_experiment_tag_is_the_same_read_back_with_numpy_values_in_the_config(tmp_path):
    np = pytest.importorskip("numpy")
    grid = tune.Tuner(reports_once, param_space={
        "n": tune.choice(list(np.arange(3, 4))), "f": tune.choice([np.float32(0.5)]),
        "b": tune.choice([np.bool_(True)]), "lr": 0.25},
        run_config=tune.RunConfig(name="numpy", storage_path=str(tmp_path), verbose=0)).fit()
    assert type(grid[0].config["n"]).__module__ == "numpy"      # as the sampler gave it
    tag = grid[0].metrics["experiment_tag"]
    assert tag == "0_n=3,f=0.5,b=True,lr=0.25"
    assert tune.ResultGrid.from_path(grid.experiment_path)[0].metrics["experiment_tag"] == tag


# -------------------------------------- since-restore of the last result, from the heads

def _save_step(step: int) -> tune.Checkpoint:
    folder = tempfile.mkdtemp()
    Path(folder, "step").write_text(str(step))
    return tune.Checkpoint.from_directory(folder)


def batches_in_two_runs(config):
    """Two runs of 5 large batches each (a checkpoint ends a batch); the first one fails."""
    checkpoint = tune.get_checkpoint()
    first = 0 if checkpoint is None else int(Path(checkpoint.path, "step").read_text()) + 1
    for step in range(first, first + 5):
        for i in range(config["per_batch"] - 1):
            tune.report({"loss": float(i)})
        tune.report({"loss": -1.0}, checkpoint=_save_step(step))
        if step == 3 and checkpoint is None:
            raise RuntimeError("the first run fails after its fourth batch")


def test_the_last_results_since_restore_fields_are_its_history_rows(tmp_path):
    grid = tune.Tuner(batches_in_two_runs, param_space={"per_batch": 1500},
                      run_config=tune.RunConfig(
                          name="runs", storage_path=str(tmp_path), verbose=0,
                          failure_config=tune.FailureConfig(max_failures=1))).fit()
    (result,) = grid
    assert result.status == "TERMINATED"
    metrics = result.metrics                    # (read before the history: from the heads)
    last = result.history()[-1]
    assert len(result.history()) == 9 * 1500
    assert metrics["iterations_since_restore"] == last["iterations_since_restore"] == 5 * 1500
    assert metrics["time_since_restore"] == last["time_since_restore"] < last["time_total_s"]


def _bytes_read() -> int:
    with open("/proc/self/io", encoding="utf-8") as f:
        return int(next(line for line in f if line.startswith("rchar:")).split()[1])


def test_the_last_results_fields_are_read_without_reading_the_results(tmp_path):
    if not os.path.exists("/proc/self/io") or not hasattr(sqlite3.Connection, "blobopen"):
        pytest.skip("needs /proc/self/io and sqlite3 blob handles (Python 3.11+)")
    grid = tune.Tuner(batches_in_two_runs, param_space={"per_batch": 40_000},
                      run_config=tune.RunConfig(
                          name="large", storage_path=str(tmp_path), verbose=0,
                          failure_config=tune.FailureConfig(max_failures=1))).fit()
    pytest.importorskip("pandas")    # imported now: reading its modules would count below
    # the experiment file closes in a background thread after fit(), reading its log into
    # the file: those reads are not the grid's
    _storage._wait_for_all_closes()
    size = (tmp_path / "large" / "experiment.db").stat().st_size
    assert size > 5_000_000
    before = _bytes_read()
    again = tune.ResultGrid.from_path(grid.experiment_path)
    assert again[0].metrics["iterations_since_restore"] == 5 * 40_000
    frame = again.get_dataframe()
    assert list(frame["iterations_since_restore"]) == [5 * 40_000]
    assert _bytes_read() - before < size / 10


# ------------------------------------------------ metrics_dataframe and the config

def many_reports(config):
    for i in range(config["n"]):
        tune.report({"loss": float(i), "val": {"acc": 0.5}} if i == 7 else {"loss": float(i)})


def test_metrics_dataframe_spreads_the_config_once_not_in_every_row(tmp_path):
    pd = pytest.importorskip("pandas")
    grid = tune.Tuner(many_reports, param_space={"n": 20_000, "opt": {"name": "adam", "b": 0.9}},
                      run_config=tune.RunConfig(name="frame", storage_path=str(tmp_path),
                                                verbose=0)).fit()
    result = grid[0]
    history = result.history()
    frame = result.metrics_dataframe
    assert len(frame) == 20_000 and "config" not in frame.columns
    assert set(frame["config/opt/name"]) == {"adam"} and set(frame["config/n"]) == {20_000}
    assert frame["val/acc"][7] == 0.5 and frame["val/acc"].isna().sum() == 19_999
    # the rows are the history's, each with the config's columns (its cost against a
    # plain frame of the history is measured in bench/test_results.py)
    plain = pd.DataFrame(history)
    common = [c for c in plain.columns if c in frame.columns]
    assert {"loss", "training_iteration", "time_total_s"} <= set(common)
    assert frame[common].equals(plain[common])


def test_metrics_dataframe_of_a_large_config_is_one_frame(tmp_path):
    pytest.importorskip("pandas")
    space = {"n": 3, **{f"k{i}": float(i) for i in range(150)}}
    grid = tune.Tuner(many_reports, param_space=space, run_config=tune.RunConfig(
        name="wide", storage_path=str(tmp_path), verbose=0)).fit()
    with warnings.catch_warnings():
        warnings.simplefilter("error")          # pandas: "DataFrame is highly fragmented"
        frame = grid[0].metrics_dataframe
    assert frame.shape[0] == 3 and list(frame["config/k149"]) == [149.0] * 3


# ------------------------------------- an experiment written by an older fastasha

def test_results_stored_as_before_compact_batches_still_give_metrics(tmp_path):
    """Format version 1 first stored each batch as a JSON list of full results.

    fastasha read such a file's metrics and data frame (its histories are not
    readable); the since-restore fields, read from batch heads, must not
    break that: they are left out, with a warning.
    """
    pytest.importorskip("pandas")
    grid = tune.Tuner(reports_once, param_space={"x": tune.grid_search([1, 2])},
                      run_config=tune.RunConfig(name="old", storage_path=str(tmp_path),
                                                verbose=0)).fit()
    conn = sqlite3.connect(tmp_path / "old" / "experiment.db")
    try:
        for seq, trial_id in conn.execute("SELECT seq, trial_id FROM results").fetchall():
            old = [{"loss": 1.0, "training_iteration": 1, "trial_id": trial_id, "done": False}]
            conn.execute("UPDATE results SET rows = ? WHERE seq = ?", (json.dumps(old), seq))
        conn.commit()
    finally:
        conn.close()
    again = tune.ResultGrid.from_path(grid.experiment_path)
    with pytest.warns(RuntimeWarning, match="lack time_since_restore"):
        metrics = again[0].metrics
    assert metrics["loss"] == 1.0 and "time_since_restore" not in metrics
    assert metrics["config"] == {"x": 1}
    frame = again.get_dataframe()
    assert list(frame["loss"]) == [1.0, 1.0] and list(frame["config/x"]) == [1, 2]
