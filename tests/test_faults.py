"""Fault injection: failing objectives, dying workers, a killed or interrupted
driver, corrupt experiment files and strangers on the report channel.

Every fault is real: objectives raise, trial processes ``os._exit``, SIGKILL
or segfault themselves or are killed from outside, and driver processes
(``tests/fault_driver.py``) are SIGKILLed or sent SIGINT by PID. Every process
a test starts is killed by PID in a fixture's teardown if it is still alive.
"""

from __future__ import annotations

import base64
import ctypes
import json
import os
import resource
import signal
import socket
import sqlite3
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from fastasha import tune
from fastasha._execution import channel
from fastasha.schedulers import AsyncHyperBandScheduler

TESTS_DIR = Path(__file__).resolve().parent
if str(TESTS_DIR) not in sys.path:   # --import-mode=importlib leaves it out
    sys.path.insert(0, str(TESTS_DIR))

import fault_driver  # the objective and settings of the driver-process sweeps

DRIVER_SCRIPT = TESTS_DIR / "fault_driver.py"
DB_NAME = "experiment.db"


# ------------------------------------------------------------------ processes

def _stat_fields(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (state first), or None."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as f:
            text = f.read()
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()


def _identity(pid: int) -> tuple[int, str] | None:
    fields = _stat_fields(pid)
    return None if fields is None else (pid, fields[19])   # field 22: start time


def _alive(identity: tuple[int, str]) -> bool:
    """Whether the process is still there (same start time, not a zombie)."""
    fields = _stat_fields(identity[0])
    return fields is not None and fields[19] == identity[1] and fields[0] not in ("Z", "X")


def descendants(pid: int) -> list[tuple[int, str]]:
    """Every process below ``pid`` (children, grandchildren...), read from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat_fields(int(entry))
            if fields is not None:
                children.setdefault(int(fields[1]), []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            identity = _identity(child)
            if identity is not None:
                found.append(identity)
                todo.append(child)
    return found


def wait_gone(identities: list[tuple[int, str]], timeout: float) -> list[int]:
    """Wait for the processes to exit; the PIDs still alive after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        alive = [i for i in identities if _alive(i)]
        if not alive or time.monotonic() > deadline:
            return [pid for pid, _ in alive]
        time.sleep(0.05)


@pytest.fixture
def reaper():
    """Processes to SIGKILL (by PID, if still the same process) at teardown."""
    popens: list[subprocess.Popen] = []
    others: list[tuple[int, str]] = []

    class Reaper:
        def popen(self, args: list[str]) -> subprocess.Popen:
            proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    cwd=str(TESTS_DIR.parent))
            popens.append(proc)
            return proc

        def watch(self, identities: list[tuple[int, str]]) -> None:
            others.extend(identities)

    yield Reaper()
    for proc in popens:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)
        for pipe in (proc.stdout, proc.stderr):
            pipe.close()
    for identity in others:
        if _alive(identity):
            try:
                os.kill(identity[0], signal.SIGKILL)
            except ProcessLookupError:
                pass


def start_driver(reaper, storage: Path, name: str, verbose: int = 0) -> subprocess.Popen:
    return reaper.popen([sys.executable, str(DRIVER_SCRIPT), "fit", str(storage), name,
                         str(verbose)])


def wait_for_progress(proc: subprocess.Popen, db: Path, n_finished: int,
                      timeout: float = 30.0) -> dict:
    """Poll the experiment file until ``n_finished`` trials ended and one still runs."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the driver exited early ({proc.returncode}): "
                                 f"{proc.stderr.read().decode()[-2000:]}")
        if db.is_file():
            try:
                conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
                try:
                    counts = dict(conn.execute(
                        "SELECT status, COUNT(*) FROM trials GROUP BY status").fetchall())
                finally:
                    conn.close()
            except sqlite3.Error:
                counts = {}
            if counts.get("TERMINATED", 0) >= n_finished and counts.get("RUNNING", 0):
                return counts
        time.sleep(0.03)
    raise AssertionError(f"the sweep made no progress in {timeout} s")


# ----------------------------------------------------------------- objectives

def raise_for_two(config):
    for step in range(3):
        tune.report({"loss": config["x"] + step})
    if config["x"] == 2:
        raise ValueError(f"x={config['x']} is a bad value")


def _mark(folder: str, name: str) -> bool:
    """Create ``folder/name``; True the first time (attempt counting across processes)."""
    try:
        os.close(os.open(os.path.join(folder, name), os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return False
    return True


def _attempt(folder: str, trial: object) -> int:
    n = 0
    while not _mark(folder, f"attempt_{trial}_{n}"):
        n += 1
    return n


def _resume_point() -> int:
    checkpoint = tune.get_checkpoint()
    if checkpoint is None:
        return 0
    return int(Path(checkpoint.path, "iteration").read_text())


def _report_with_checkpoint(metrics: dict, iteration: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        Path(folder, "iteration").write_text(str(iteration))
        tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(folder))


def flaky_with_checkpoint(config):
    """Checkpoints every step; the first attempt raises after its third report."""
    start = _resume_point()
    attempt = _attempt(config["dir"], "t")
    for iteration in range(start + 1, 7):
        _report_with_checkpoint({"loss": 1.0 / iteration, "start": start,
                                 "attempt": attempt}, iteration)
        if iteration == 3 and attempt == 0:
            raise RuntimeError("flaky failure")


def always_fails(config):
    _attempt(config["dir"], "t")
    tune.report({"loss": 1.0})
    raise RuntimeError("always fails")


def fail_fast_objective(config):
    _mark(config["dir"], f"started_{config['i']}")
    if config["i"] == 0:
        time.sleep(0.3)
        raise RuntimeError("the first trial fails")
    for step in range(40):
        time.sleep(0.05)
        tune.report({"loss": float(step)})


def _die(how: str) -> None:
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))   # no core file from the segfault
    if how == "exit":
        os._exit(3)
    elif how == "exit0":     # a clean exit in the middle of a trial is a failure too
        os._exit(0)
    elif how == "sigkill":
        os.kill(os.getpid(), signal.SIGKILL)
    elif how == "segfault":
        ctypes.string_at(0)
    raise RuntimeError(f"unreachable: unknown way to die {how!r}")


def dies_once(config):
    """Trial ``i == 1`` dies after checkpointing at iteration 2, on its first attempt."""
    start = _resume_point()
    for iteration in range(start + 1, 6):
        time.sleep(0.03)
        metrics = {"loss": config["i"] + 1.0 / iteration, "start": start}
        if iteration == 2:
            _report_with_checkpoint(metrics, iteration)
            if config["i"] == 1 and _mark(config["dir"], "died"):
                _die(config["how"])
        else:
            tune.report(metrics)


def killed_from_outside(config):
    """Trial ``i == 1`` writes its PID and waits to be killed (first attempt only)."""
    for iteration in range(1, 5):
        time.sleep(0.03)
        tune.report({"loss": float(config["i"] + iteration)})
    if config["i"] == 1 and _mark(config["dir"], "waiting"):
        tmp = Path(config["dir"], "pid.tmp")
        tmp.write_text(str(os.getpid()))
        tmp.rename(Path(config["dir"], "pid"))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            time.sleep(0.05)
        raise RuntimeError("nobody killed this trial process")


def slow_objective(config):
    for step in range(10):
        time.sleep(0.1)
        tune.report({"loss": config["x"] / (step + 1)})


def quick_objective(config):
    tune.report({"loss": config["x"]})


# ---------------------------------------------------------------------- helpers

def run_config(storage: Path, name: str, **kwargs) -> tune.RunConfig:
    kwargs.setdefault("verbose", 0)
    return tune.RunConfig(storage_path=str(storage), name=name, **kwargs)


def iterations(result) -> list[int]:
    return [int(i) for i in result.metrics_dataframe["training_iteration"]]


def snapshot_files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


# ------------------------------------------------------ 1. objectives that raise

def test_raising_objective_is_an_error_with_its_traceback_and_the_sweep_goes_on(tmp_path):
    tuner = tune.Tuner(raise_for_two, param_space={"x": tune.grid_search([0, 1, 2, 3])},
                       tune_config=tune.TuneConfig(metric="loss", mode="min"),
                       run_config=run_config(tmp_path, "raises"), resources={"cpu": 2})
    grid = tuner.fit()
    for results in (grid, tune.ResultGrid.from_path(tmp_path / "raises")):
        by_x = {r.config["x"]: r for r in results}
        assert sorted(by_x) == [0, 1, 2, 3]
        failed = by_x[2]
        assert failed.status == "ERROR"
        assert "ValueError: x=2 is a bad value" in str(failed.error)
        assert "raise_for_two" in failed.error.traceback
        assert "raise ValueError" in failed.error.traceback
        assert iterations(failed) == [1, 2, 3]   # its results are kept
        for x in (0, 1, 3):
            assert by_x[x].status == "TERMINATED"
            assert by_x[x].error is None
            assert by_x[x].metrics["training_iteration"] == 3
        assert results.num_errors == 1
        assert [str(e) for e in results.errors] == [str(failed.error)]


def test_max_failures_retries_from_the_checkpoint(tmp_path):
    tuner = tune.Tuner(flaky_with_checkpoint, param_space={"dir": str(tmp_path)},
                       tune_config=tune.TuneConfig(metric="loss", mode="min"),
                       run_config=run_config(tmp_path, "retry",
                                             failure_config=tune.FailureConfig(max_failures=1)))
    (result,) = tuner.fit()
    assert result.status == "TERMINATED"
    assert result.error is None
    assert result.n_failures == 1
    history = result.metrics_dataframe
    # the retry got the iteration-3 checkpoint and counted on from it
    assert list(history["training_iteration"]) == [1, 2, 3, 4, 5, 6]
    assert list(history["attempt"]) == [0, 0, 0, 1, 1, 1]
    assert list(history["start"]) == [0, 0, 0, 3, 3, 3]
    assert Path(result.checkpoint.path, "iteration").read_text() == "6"


def test_max_failures_gives_up_after_n_retries(tmp_path):
    tuner = tune.Tuner(always_fails, param_space={"dir": str(tmp_path)},
                       tune_config=tune.TuneConfig(metric="loss", mode="min"),
                       run_config=run_config(tmp_path, "gives_up",
                                             failure_config=tune.FailureConfig(max_failures=2)))
    (result,) = tuner.fit()
    assert result.status == "ERROR"
    assert "RuntimeError: always fails" in str(result.error)
    assert sorted(p.name for p in tmp_path.glob("attempt_*")) == \
        ["attempt_t_0", "attempt_t_1", "attempt_t_2"]


def test_fail_fast_starts_no_trial_after_the_first_error(tmp_path):
    tuner = tune.Tuner(fail_fast_objective,
                       param_space={"i": tune.grid_search(list(range(6))), "dir": str(tmp_path)},
                       tune_config=tune.TuneConfig(metric="loss", mode="min"),
                       run_config=run_config(tmp_path, "fail_fast",
                                             failure_config=tune.FailureConfig(fail_fast=True)),
                       resources={"cpu": 2})
    started = time.monotonic()
    grid = tuner.fit()
    assert time.monotonic() - started < 10
    began = {int(p.name.split("_")[1]) for p in tmp_path.glob("started_*")}
    # trial 0 fails after 0.3 s, trial 1 needs 2 s: a trial that began later
    # than those two began after the error
    assert 0 in began and began <= {0, 1}
    by_i = {r.config["i"]: r for r in grid}
    assert by_i[0].status == "ERROR"
    assert "the first trial fails" in str(by_i[0].error)
    for i, result in by_i.items():
        if i != 0:
            assert result.status != "RUNNING"
            assert result.metrics.get("training_iteration", 0) < 40, "trial 1 was not stopped"


def test_fail_fast_raise_raises_the_first_error_once_everything_is_saved(tmp_path):
    tuner = tune.Tuner(fail_fast_objective,
                       param_space={"i": tune.grid_search(list(range(3))), "dir": str(tmp_path)},
                       run_config=run_config(tmp_path, "raise", failure_config=tune.FailureConfig(
                           fail_fast="RAISE")),          # any case, as in Ray
                       resources={"cpu": 2})
    with pytest.raises(tune.TrialError, match="fail_fast='raise'.*the first trial fails") as info:
        tuner.fit()
    assert "Traceback" in str(info.value) and "RuntimeError" in info.value.traceback
    saved = tune.ResultGrid.from_path(tmp_path / "raise")
    assert sorted(r.status for r in saved)[0] == "ERROR" and len(saved) == 3
    assert all(r.status != "RUNNING" for r in saved)
    # a restore that runs the rest without an error returns: the stored error is old
    grid = tune.Tuner.restore(str(tmp_path / "raise"), fail_fast_objective).fit()
    assert sorted(r.status for r in grid) == ["ERROR", "TERMINATED", "TERMINATED"]


# ------------------------------------------------------------ 2. dying workers

DEATHS = [("exit", "exit code 3"), ("exit0", "exit code 0"), ("sigkill", "killed by SIGKILL"),
          ("segfault", "killed by SIGSEGV")]


@pytest.mark.parametrize("how, words", DEATHS, ids=[d[0] for d in DEATHS])
def test_trial_process_that_dies_fails_its_trial_only(tmp_path, how, words):
    tuner = tune.Tuner(dies_once,
                       param_space={"i": tune.grid_search(list(range(8))), "how": how,
                                    "dir": str(tmp_path)},
                       tune_config=tune.TuneConfig(metric="loss", mode="min"),
                       run_config=run_config(tmp_path, f"dies_{how}"), resources={"cpu": 2})
    grid = tuner.fit()
    by_i = {r.config["i"]: r for r in grid}
    assert len(by_i) == 8
    dead = by_i[1]
    assert dead.status == "ERROR"
    assert words in str(dead.error), str(dead.error)
    assert "worker process" in str(dead.error)
    assert iterations(dead) == [1, 2]
    for i, result in by_i.items():
        if i != 1:
            assert result.status == "TERMINATED", (i, result.error)
            assert iterations(result) == [1, 2, 3, 4, 5]
    # the dead process was replaced: more trial processes than slots reported
    pids = {int(p) for r in grid for p in r.metrics_dataframe["pid"]}
    assert len(pids) >= 3


@pytest.mark.parametrize("how, words", DEATHS, ids=[d[0] for d in DEATHS])
def test_trial_process_that_dies_is_retried_from_its_checkpoint(tmp_path, how, words):
    tuner = tune.Tuner(dies_once,
                       param_space={"i": tune.grid_search(list(range(4))), "how": how,
                                    "dir": str(tmp_path)},
                       tune_config=tune.TuneConfig(metric="loss", mode="min"),
                       run_config=run_config(tmp_path, f"retries_{how}",
                                             failure_config=tune.FailureConfig(max_failures=1)),
                       resources={"cpu": 2})
    grid = tuner.fit()
    assert [r.status for r in grid] == ["TERMINATED"] * 4
    by_i = {r.config["i"]: r for r in grid}
    assert by_i[1].n_failures == 1
    history = by_i[1].metrics_dataframe
    assert list(history["training_iteration"]) == [1, 2, 3, 4, 5]
    assert list(history["start"]) == [0, 0, 2, 2, 2]
    assert len(set(history["pid"])) == 2


@pytest.mark.parametrize("max_failures", [0, 1])
def test_trial_process_killed_from_outside(tmp_path, max_failures):
    pid_file = tmp_path / "pid"
    killed: list[int] = []

    def killer() -> None:
        deadline = time.monotonic() + 30
        while not pid_file.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        if pid_file.exists():
            pid = int(pid_file.read_text())
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    failure_config = tune.FailureConfig(max_failures=max_failures)
    tuner = tune.Tuner(killed_from_outside,
                       param_space={"i": tune.grid_search(list(range(4))), "dir": str(tmp_path)},
                       tune_config=tune.TuneConfig(metric="loss", mode="min"),
                       run_config=run_config(tmp_path, "killed", failure_config=failure_config),
                       resources={"cpu": 2})
    grid = tuner.fit()
    thread.join(timeout=5)
    assert killed, "the trial never wrote its pid"
    by_i = {r.config["i"]: r for r in grid}
    assert [by_i[i].status for i in (0, 2, 3)] == ["TERMINATED"] * 3
    if max_failures == 0:
        assert by_i[1].status == "ERROR"
        assert f"(pid {killed[0]}) died: killed by SIGKILL" in str(by_i[1].error)
    else:
        assert by_i[1].status == "TERMINATED"
        assert by_i[1].n_failures == 1
        assert iterations(by_i[1])[-4:] == [1, 2, 3, 4]   # the retry ran in full


# ------------------------------------------------- 3. the driver killed outright

def _events(db: Path) -> list[tuple]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return conn.execute("SELECT kind, trial_id, payload FROM events ORDER BY seq").fetchall()
    finally:
        conn.close()


def _histories(path: Path) -> dict[str, list[dict]]:
    """Every stored result of every trial, through the public API (``done`` left out)."""
    out = {}
    for result in tune.ResultGrid.from_path(path):
        # (and the checkpoint fields: they follow the checkpoints kept, which a restore adds to)
        frame = result.metrics_dataframe.drop(
            columns=["done", "checkpoint_dir_name", "should_checkpoint"], errors="ignore")
        out[result.trial_id] = frame.to_dict("records")
    return out


def _replay(events: list[tuple]) -> AsyncHyperBandScheduler:
    """A fresh scheduler fed the logged scheduler calls, in the driver's order."""
    scheduler = AsyncHyperBandScheduler(**fault_driver.SCHEDULER_ARGS)
    for kind, trial_id, payload in events:
        data = json.loads(payload) if payload is not None else None
        if kind == "add":
            scheduler.on_trial_add(trial_id, bracket=data["bracket"])
        elif kind == "result":
            scheduler.on_trial_result(trial_id, data)
        elif kind == "complete":
            scheduler.on_trial_complete(trial_id, data)
        elif kind == "remove":
            scheduler.on_trial_remove(trial_id)
        else:
            raise AssertionError(f"unknown event kind {kind!r}")
    return scheduler


def _rungs_from_results(grid, scheduler: AsyncHyperBandScheduler) -> dict:
    """What each rung must hold: per trial of the bracket, the loss of its first
    stored result at or past the milestone (training_iteration steps by one)."""
    expected = {}
    for b, milestones in enumerate(scheduler.bracket_milestones):
        for k, milestone in enumerate(milestones):
            values = []
            for result in grid:
                if result.bracket != b:
                    continue
                for row in result.history():
                    if row["training_iteration"] >= milestone:
                        values.append(row["loss"])
                        break
            expected[b, k] = np.sort(np.array(values, dtype=np.float64))
    return expected


def _kill_mid_sweep(reaper, proc: subprocess.Popen, db: Path, n_finished: int) -> None:
    """SIGKILL the driver once ``n_finished`` trials ended; check its processes all go."""
    wait_for_progress(proc, db, n_finished)
    tree = descendants(proc.pid)
    reaper.watch(tree)
    assert tree, "the driver has no worker processes"
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait(timeout=10) == -signal.SIGKILL
    survivors = wait_gone(tree, timeout=5.0)
    assert not survivors, f"processes of the killed driver still run: {survivors}"
    for leftover in db.parent.glob(DB_NAME + "*"):   # -wal and -shm outlive the driver
        assert stat.S_IMODE(leftover.stat().st_mode) & 0o077 == 0, leftover


def _check_nothing_lost(path: Path, before: dict, before_events: list) -> None:
    after = _histories(path)
    for trial_id, rows in before.items():
        assert after[trial_id][:len(rows)] == rows, f"stored results of {trial_id} changed"
    assert _events(path / DB_NAME)[:len(before_events)] == before_events


def test_a_running_experiment_can_be_neither_restored_nor_overwritten(tmp_path, reaper):
    path = tmp_path / "in_use"
    db = path / DB_NAME
    proc = start_driver(reaper, tmp_path, "in_use")
    wait_for_progress(proc, db, n_finished=1)
    before = _histories(path)
    with pytest.raises(ValueError, match=rf"in use by another fastasha run \(pid {proc.pid}\)"):
        tune.Tuner.restore(str(path), fault_driver.objective).fit()
    with pytest.raises(ValueError, match="in use by another fastasha run"):
        tune.Tuner(fault_driver.objective, param_space={"x": 0.5},
                   run_config=tune.RunConfig(name="in_use", storage_path=str(tmp_path),
                                             overwrite=True, verbose=0)).fit()
    assert db.is_file()
    assert tune.ResultGrid.from_path(path)     # readers are welcome meanwhile
    # the kernel drops the lock with the process that held it: restore works then
    _kill_mid_sweep(reaper, proc, db, n_finished=2)
    _check_nothing_lost(path, before, [])
    grid = tune.Tuner.restore(str(path), fault_driver.objective).fit()
    assert [r.status for r in grid] == ["TERMINATED"] * fault_driver.NUM_SAMPLES


@pytest.mark.parametrize("n_kills", [1, 2], ids=["killed_once", "killed_again_in_restore"])
def test_driver_killed_mid_sweep_then_restored(tmp_path, reaper, n_kills):
    path = tmp_path / "killed_driver"
    db = path / DB_NAME
    proc = start_driver(reaper, tmp_path, "killed_driver")
    _kill_mid_sweep(reaper, proc, db, n_finished=3)
    assert tune.Tuner.can_restore(path)
    before, before_events = _histories(path), _events(db)
    assert 0 < sum(map(len, before.values()))
    assert Counter(r.status for r in tune.ResultGrid.from_path(path))["TERMINATED"] < \
        fault_driver.NUM_SAMPLES
    if n_kills == 2:   # kill the restoring driver too
        finished = Counter(r.status for r in tune.ResultGrid.from_path(path))["TERMINATED"]
        proc = reaper.popen([sys.executable, str(DRIVER_SCRIPT), "restore", str(path)])
        _kill_mid_sweep(reaper, proc, db, n_finished=finished + 2)
        _check_nothing_lost(path, before, before_events)
        before, before_events = _histories(path), _events(db)

    tuner = tune.Tuner.restore(str(path), fault_driver.objective)
    grid = tuner.fit()

    ids = [r.trial_id for r in grid]
    assert len(grid) == fault_driver.NUM_SAMPLES
    assert len(set(ids)) == len(ids)
    assert set(before) <= set(ids)
    assert [r.status for r in grid] == ["TERMINATED"] * fault_driver.NUM_SAMPLES
    _check_nothing_lost(path, before, before_events)

    # the rungs are those of a fresh scheduler fed the logged calls in order...
    replayed = _replay(_events(db))
    assert tuner.tune_config.scheduler.rung_table() == replayed.rung_table()
    # ...and hold exactly the stored results that reached each milestone
    expected = _rungs_from_results(grid, replayed)
    for (b, k), values in expected.items():
        np.testing.assert_array_equal(np.sort(replayed.recorded_values(b, k)), values,
                                      err_msg=f"bracket {b}, rung {k}")
    assert sum(len(v) for v in expected.values()) > fault_driver.NUM_SAMPLES


# ----------------------------------------------------------- 4. Ctrl-C (SIGINT)

def test_sigint_stops_the_driver_promptly_and_restore_completes(tmp_path, reaper):
    path = tmp_path / "interrupted"
    proc = start_driver(reaper, tmp_path, "interrupted", verbose=1)
    wait_for_progress(proc, path / DB_NAME, n_finished=2)
    tree = descendants(proc.pid)
    reaper.watch(tree)
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pytest.fail("the driver did not exit within 10 s of SIGINT")
    took = time.monotonic() - sent
    out, err = proc.stdout.read().decode(), proc.stderr.read().decode()
    assert took < 5, f"exiting took {took:.1f} s"
    assert proc.returncode == -signal.SIGINT, (proc.returncode, err[-2000:])
    assert "KeyboardInterrupt" in err
    assert f"Tuner.restore({str(path)!r}" in out
    assert not wait_gone(tree, timeout=5.0), "trial or worker processes survived Ctrl-C"

    stored = tune.ResultGrid.from_path(path)
    statuses = Counter(r.status for r in stored)
    assert statuses["RUNNING"] == 0          # running trials were stopped and put back
    assert statuses["TERMINATED"] >= 2
    assert tune.Tuner.can_restore(path)

    grid = tune.Tuner.restore(str(path), fault_driver.objective).fit()
    ids = [r.trial_id for r in grid]
    assert len(grid) == fault_driver.NUM_SAMPLES
    assert len(set(ids)) == len(ids)
    assert [r.status for r in grid] == ["TERMINATED"] * fault_driver.NUM_SAMPLES


INTERRUPTED_SCRIPT = """
import sys, time
from fastasha import tune

def objective(config):
    tune.report({"loss": config["x"]})
    time.sleep(60)                      # still running when Ctrl-C comes

space = {"x": tune.grid_search([0.5, 0.25])}
if sys.argv[2] == "tuner":
    tune.Tuner(objective, param_space=space,
               tune_config=tune.TuneConfig(metric="loss", mode="min"),
               run_config=tune.RunConfig(name="ctrl-c", storage_path=sys.argv[1], verbose=1),
               resources={"cpu": 2}).fit()
else:
    tune.run(objective, config=space, metric="loss", mode="min", name="ctrl-c",
             storage_path=sys.argv[1], resources_per_trial={"cpu": 1}, verbose=1)
"""


def _interrupt_after_two_reports(tmp_path: Path, reaper, entry: str) -> str:
    """Run INTERRUPTED_SCRIPT (``entry``: "tuner" or "run"), Ctrl-C it once both trials
    reported; its output."""
    script = tmp_path / "interrupted.py"
    script.write_text(INTERRUPTED_SCRIPT)
    proc = reaper.popen([sys.executable, str(script), str(tmp_path), entry])
    db = tmp_path / "ctrl-c" / DB_NAME
    deadline = time.monotonic() + 30
    reported = 0
    while reported < 2 and time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        time.sleep(0.1)
        if db.is_file():
            try:
                conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
                try:
                    reported = conn.execute("SELECT COUNT(DISTINCT trial_id) FROM results"
                                            ).fetchone()[0]
                finally:
                    conn.close()
            except sqlite3.Error:
                pass
    assert reported == 2, "the trials did not report in time"
    reaper.watch(descendants(proc.pid))
    proc.send_signal(signal.SIGINT)
    return proc.communicate(timeout=20)[0].decode()


def test_the_summary_after_ctrl_c_names_the_best_of_the_interrupted_trials(tmp_path, reaper):
    # Ctrl-C puts running trials back to PENDING; the last table said "Current best
    # trial: none yet" although both had reported (Ray's display counts every trial)
    out = _interrupt_after_two_reports(tmp_path, reaper, "tuner")
    assert "none yet" not in out
    best = [line for line in out.splitlines() if "Current best trial:" in line]
    assert best and "loss=0.25" in best[-1], out[-2000:]
    assert f"Tuner.restore({str(tmp_path / 'ctrl-c')!r}, trainable)" in out


def test_ctrl_c_under_tune_run_says_how_tune_run_resumes(tmp_path, reaper):
    # the message named Tuner.restore, which a tune.run script does not use
    out = _interrupt_after_two_reports(tmp_path, reaper, "run")
    assert (f"tune.run(trainable, name='ctrl-c', storage_path={str(tmp_path)!r}, "
            "resume=True)") in out, out[-2000:]
    grid = tune.ResultGrid.from_path(tmp_path / "ctrl-c")
    assert sorted(r.metrics["loss"] for r in grid) == [0.25, 0.5]


# ------------------------------------------------- 5. corrupt and foreign files

def _write_random(db: Path) -> None:
    db.write_bytes(np.random.default_rng(0).bytes(8192))


def _write_foreign_sqlite(db: Path) -> None:
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
    conn.executemany("INSERT INTO users (name) VALUES (?)", [("ada",), ("grace",)])
    conn.commit()
    conn.close()


def _write_foreign_meta(db: Path) -> None:
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    conn.execute("INSERT INTO meta VALUES ('format', 'someone-else')")
    conn.commit()
    conn.close()


def _write_empty(db: Path) -> None:
    db.write_bytes(b"")


CORRUPTIONS = {"random_bytes": _write_random, "foreign_sqlite": _write_foreign_sqlite,
               "foreign_meta": _write_foreign_meta, "empty_file": _write_empty}


@pytest.mark.parametrize("corrupt", list(CORRUPTIONS))
def test_corrupt_or_foreign_experiment_file_is_refused_and_left_alone(tmp_path, corrupt):
    path = tmp_path / "broken"
    path.mkdir()
    CORRUPTIONS[corrupt](path / DB_NAME)
    original = snapshot_files(path)

    assert tune.Tuner.can_restore(path) is False
    with pytest.raises(ValueError, match="experiment"):
        tune.Tuner.restore(str(path), quick_objective)
    with pytest.raises(ValueError, match="experiment"):
        tune.ResultGrid.from_path(path)
    with pytest.raises(FileExistsError, match="already holds"):
        tune.Tuner(quick_objective, param_space={"x": 1.0},
                   run_config=run_config(tmp_path, "broken")).fit()
    with pytest.raises(ValueError, match="experiment"):
        tune.Tuner(quick_objective, param_space={"x": 1.0},
                   run_config=run_config(tmp_path, "broken", overwrite=True)).fit()
    assert snapshot_files(path) == original


# ---------------------------------------------------- 6. strangers on the channel

def _listening_ports(pid: int) -> set[int]:
    """Loopback TCP ports on which process ``pid`` listens (from /proc)."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = set()
    with open(f"/proc/{pid}/net/tcp", encoding="ascii") as f:
        next(f)
        for line in f:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == "0A" and inode in inodes and local.startswith("0100007F:"):
                ports.add(int(local.split(":")[1], 16))
    return ports


def _closed_by_peer(sock: socket.socket, timeout: float) -> bool:
    """Read until the peer closes the connection; False if it stays open."""
    sock.settimeout(timeout)
    try:
        while sock.recv(4096):
            pass
    except TimeoutError:
        return False
    except ConnectionResetError:
        pass
    return True


def test_report_channel_drops_strangers_and_keeps_its_key_secret(tmp_path, monkeypatch, capfd):
    keys: list[bytes] = []
    real_new_key = channel.new_key

    def recording_new_key() -> bytes:
        keys.append(real_new_key())
        return keys[-1]

    from fastasha._execution import driver as driver_module

    monkeypatch.setattr(channel, "new_key", recording_new_key)
    monkeypatch.setattr(driver_module, "new_key", recording_new_key)
    monkeypatch.setattr(channel, "HANDSHAKE_TIMEOUT_S", 1.0)   # a silent stranger waits this long

    known = _listening_ports(os.getpid())
    outcome: dict[str, object] = {}

    def strangers() -> None:
        try:
            meet_strangers()
        except Exception as err:   # noqa: BLE001 - reported to the test
            outcome["error"] = repr(err)

    def meet_strangers() -> None:
        deadline = time.monotonic() + 20
        new: set[int] = set()
        while not new and time.monotonic() < deadline:
            new = _listening_ports(os.getpid()) - known
            time.sleep(0.01)
        if len(new) != 1:
            outcome["error"] = f"found no single new listening port: {new}"
            return
        address = ("127.0.0.1", new.pop())
        silent = socket.create_connection(address)
        for name, garbage in (("http", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
                              ("framed", b"\x00\x00\x00\x40" + os.urandom(64))):
            with socket.create_connection(address) as sock:
                sock.sendall(garbage)
                outcome[name] = _closed_by_peer(sock, 5.0)
        try:
            channel.connect(address, os.urandom(32), timeout=5.0)
        except (channel.AuthenticationFailed, EOFError, OSError) as err:
            outcome["wrong_key"] = type(err).__name__
        else:
            outcome["wrong_key"] = "accepted"
        with silent:
            outcome["silent"] = _closed_by_peer(silent, 5.0)

    thread = threading.Thread(target=strangers, daemon=True)
    thread.start()
    tuner = tune.Tuner(slow_objective, param_space={"x": tune.uniform(1, 2)},
                       tune_config=tune.TuneConfig(metric="loss", mode="min", num_samples=6,
                                                   seed=3),
                       run_config=run_config(tmp_path, "strangers", verbose=2),
                       resources={"cpu": 2})
    grid = tuner.fit()
    thread.join(timeout=15)
    assert not thread.is_alive()
    assert "error" not in outcome, outcome["error"]
    assert outcome["http"] and outcome["framed"], "garbage did not get the connection closed"
    assert outcome["silent"], "a silent stranger was not dropped"
    assert outcome["wrong_key"] != "accepted", "a wrong key passed the handshake"
    assert len(grid) == 6
    assert [r.status for r in grid] == ["TERMINATED"] * 6

    assert len(keys) == 1
    key = keys[0]
    forms = [key, key.hex().encode(), key.hex().upper().encode(), base64.b64encode(key),
             base64.urlsafe_b64encode(key), repr(key).encode()]
    for name, data in snapshot_files(tmp_path / "strangers").items():
        for form in forms:
            assert form not in data, f"the key is in {name}"
    captured = capfd.readouterr()
    printed = (captured.out + captured.err).encode()
    assert b"TERMINATED" in printed    # verbose=2 did print
    for form in forms:
        assert form not in printed


# ----------------------------------------------------------- 7. file permissions

def test_experiment_directory_and_file_are_private(tmp_path):
    old = os.umask(0)
    try:
        tune.Tuner(quick_objective, param_space={"x": tune.grid_search([1.0, 2.0])},
                   run_config=run_config(tmp_path, "private")).fit()
    finally:
        os.umask(old)
    path = tmp_path / "private"
    assert stat.S_IMODE(path.stat().st_mode) == 0o700
    assert stat.S_IMODE((path / DB_NAME).stat().st_mode) == 0o600


def test_existing_empty_directory_is_made_private(tmp_path):
    path = tmp_path / "premade"
    path.mkdir(mode=0o755)
    os.chmod(path, 0o755)
    tune.Tuner(quick_objective, param_space={"x": 1.0},
               run_config=run_config(tmp_path, "premade")).fit()
    assert stat.S_IMODE(path.stat().st_mode) == 0o700
    assert stat.S_IMODE((path / DB_NAME).stat().st_mode) == 0o600


# --------------------------------------------------------------- 8. can_restore

def test_can_restore(tmp_path):
    tune.Tuner(quick_objective, param_space={"x": 1.0},
               run_config=run_config(tmp_path, "done")).fit()
    assert tune.Tuner.can_restore(tmp_path / "done") is True
    assert tune.Tuner.can_restore(str(tmp_path / "done")) is True
    (tmp_path / "empty").mkdir()
    assert tune.Tuner.can_restore(tmp_path / "empty") is False
    assert tune.Tuner.can_restore(tmp_path / "missing") is False
    assert tune.Tuner.can_restore(tmp_path / "done" / DB_NAME) is False


# ------------------------------------------------ slots that keep vanishing, budgets

def kills_its_slot(config):
    """Trial 0 kills the joblib worker that supervises it; the others just report.

    It first gives the others (on the other slot, milliseconds each) time to
    finish: loky then ends every worker, and a trial still running on the
    other slot would be lost with it, through no fault of its own, each time.
    """
    if config["i"] == 0:
        time.sleep(0.5)
        os.kill(os.getppid(), signal.SIGKILL)
        time.sleep(30)
    for step in range(3):
        tune.report({"loss": config["i"] + step})


def test_a_trial_that_keeps_killing_its_slot_fails_instead_of_looping(tmp_path):
    # Killing the loky worker aborts joblib's whole Parallel call; the driver
    # starts the slots again and puts the trial back, but only a few times.
    started = time.monotonic()
    grid = tune.Tuner(kills_its_slot, param_space={"i": tune.grid_search([0, 1, 2])},
                      tune_config=tune.TuneConfig(metric="loss", mode="min"),
                      run_config=run_config(tmp_path, "slot_killer"),
                      resources={"cpu": 2}).fit()
    assert time.monotonic() - started < 60
    by_i = {r.config["i"]: r for r in grid}
    assert by_i[0].status == "ERROR"
    assert "lost 3 times" in str(by_i[0].error)
    assert by_i[1].status == by_i[2].status == "TERMINATED"


def silent_for_a_long_time(config):
    time.sleep(config["sleep"])
    tune.report({"loss": 1.0})


def test_the_time_budget_ends_trials_that_never_report(tmp_path):
    started = time.monotonic()
    grid = tune.Tuner(silent_for_a_long_time, param_space={"sleep": 60},
                      tune_config=tune.TuneConfig(num_samples=2, time_budget_s=1.0),
                      run_config=run_config(tmp_path, "silent"), resources={"cpu": 2}).fit()
    # 1 s of budget, then a few seconds of grace before the processes are killed
    assert time.monotonic() - started < 20
    assert {r.status for r in grid} <= {"TERMINATED", "PENDING"}
    assert all(not r.metrics for r in grid)        # nobody got to report


def fails_while_stopping(config):
    try:
        for step in range(1, 20):
            tune.report({"loss": config["x"] * step})
    except tune.TrialStopped:
        raise RuntimeError("cleanup after the stop failed") from None


def test_a_stopped_trial_that_errors_while_unwinding_is_not_run_again(tmp_path):
    grid = tune.Tuner(
        fails_while_stopping, param_space={"x": tune.grid_search([1.0, 2.0, 3.0])},
        tune_config=tune.TuneConfig(
            metric="loss", mode="min", max_concurrent_trials=1,
            scheduler=AsyncHyperBandScheduler(grace_period=1, max_t=19, reduction_factor=2)),
        run_config=run_config(tmp_path, "unwinding",
                              failure_config=tune.FailureConfig(max_failures=3))).fit()
    for result in grid:
        assert result.status == "ERROR"        # every trial is stopped (at a rung or max_t)
        assert "cleanup after the stop failed" in str(result.error)
        # one attempt only: its reports were not repeated by a retry
        steps = result.metrics_dataframe["training_iteration"].tolist()
        assert steps == list(range(1, len(steps) + 1))


# ------------------------------------------- a supervisor told to exit mid-trial

def _child(seconds: float) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", f"import time; time.sleep({seconds})"])


def test_a_supervisor_told_to_exit_lets_its_trial_process_finish():
    """At the end of a sweep the driver says "exit" to every supervisor at once.

    The supervisor must not kill its trial process for it (that process is
    winding down on its own), and must remember it, so that it returns
    after the process exits without waiting for an answer.
    """
    from multiprocessing import Pipe

    from fastasha._execution.worker import _wait_child

    driver_end, sup_end = Pipe()
    child = _child(0.3)
    try:
        driver_end.send(("exit",))
        started = time.monotonic()
        code, told_to_exit = _wait_child(child.pid, sup_end)
        assert (code, told_to_exit) == (0, True)           # exited by itself, not killed
        assert time.monotonic() - started > 0.1
    finally:
        if child.poll() is None:
            child.kill()
        driver_end.close()
        sup_end.close()


def test_a_supervisor_told_to_kill_kills_and_waits_for_more():
    from multiprocessing import Pipe

    from fastasha._execution.worker import _wait_child

    driver_end, sup_end = Pipe()
    child = _child(30)
    try:
        driver_end.send(("kill",))
        code, told_to_exit = _wait_child(child.pid, sup_end)
        assert (code, told_to_exit) == (-signal.SIGKILL, False)
    finally:
        if child.poll() is None:
            child.kill()
        driver_end.close()
        sup_end.close()
