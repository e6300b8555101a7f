"""A search_alg's state: saved during the run, restored by Tuner.restore(search_alg=...).

The searcher here saves and restores itself as JSON (the list of configs it
has left, what it suggested and heard). Sweeps run on joblib's threading
backend (a searcher lives in the driver anyway). The killed-driver tests run
the sweep in a process of its own (this file, run as a script), SIGKILL it
by PID, and kill whatever of it is left by PID at teardown.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import warnings
from pathlib import Path

import joblib
import pytest

from fastasha import tune
from fastasha.search import ConcurrencyLimiter, Searcher

TESTS_DIR = Path(__file__).resolve().parent
if str(TESTS_DIR) not in sys.path:   # --import-mode=importlib leaves it out
    sys.path.insert(0, str(TESTS_DIR))

from test_faults import descendants  # noqa: E402  (the /proc reader of the fault tests)

NUM_SAMPLES = 8
STEPS = 3


class Remaining(Searcher):
    """Suggests ``{"x": 0}``, ``{"x": 1}``, ... from a list; saves itself as JSON."""

    def __init__(self, n=20):
        super().__init__()
        self.remaining = list(range(n))
        self.suggested = {}        # trial id -> x
        self.completed = []        # trial ids, in the order their ends were heard
        self.restored_from = None
        self.n_saves = 0

    def suggest(self, trial_id):
        if not self.remaining:
            return Searcher.FINISHED
        x = self.remaining.pop(0)
        self.suggested[trial_id] = x
        return {"x": x}

    def on_trial_complete(self, trial_id, result=None, error=False):
        self.completed.append(trial_id)

    def save(self, checkpoint_path):
        self.n_saves += 1
        with open(checkpoint_path, "w", encoding="utf-8") as f:
            json.dump({"remaining": self.remaining, "suggested": self.suggested,
                       "completed": self.completed}, f)

    def restore(self, checkpoint_path):
        with open(checkpoint_path, encoding="utf-8") as f:
            state = json.load(f)
        self.remaining, self.suggested = state["remaining"], state["suggested"]
        self.completed = state["completed"]
        self.restored_from = checkpoint_path


class Unsaved(Remaining):
    """The same searcher without save/restore (Searcher's raise NotImplementedError)."""

    save = Searcher.save
    restore = Searcher.restore


class StopAllAfter(tune.Stopper):
    """Ends the whole sweep once ``n`` trials reached their last step."""

    def __init__(self, n):
        self.n, self.done = n, set()

    def __call__(self, trial_id, result):
        if result["training_iteration"] == STEPS:
            self.done.add(trial_id)
        return False

    def stop_all(self):
        return len(self.done) >= self.n


class InterruptAfter(tune.Callback):
    """Raises KeyboardInterrupt (as Ctrl-C does) once ``n`` trials ended: the running
    ones go back to PENDING."""

    def __init__(self, n):
        self.n, self.ended = n, 0

    def on_trial_complete(self, iteration, trials, trial, **info):
        self.ended += 1
        if self.ended >= self.n:
            raise KeyboardInterrupt


def stepped(config):
    for step in range(1, STEPS + 1):
        time.sleep(float(config.get("sleep", 0.0)))
        tune.report({"loss": config["x"] + 1.0 / step})


def _tuner(storage, name, search_alg, stop=None, num_samples=NUM_SAMPLES, sleep=0.0,
           callbacks=None):
    return tune.Tuner(
        stepped, param_space={"sleep": sleep},
        tune_config=tune.TuneConfig(metric="loss", mode="min", search_alg=search_alg,
                                    num_samples=num_samples),
        run_config=tune.RunConfig(storage_path=str(storage), name=name, stop=stop, verbose=0,
                                  callbacks=callbacks),
        resources={"cpu": 2})


def _wrap(searcher, limited):
    return ConcurrencyLimiter(searcher, max_concurrent=2) if limited else searcher


@pytest.fixture(autouse=True)
def _threads():
    with joblib.parallel_config(backend="threading"):
        yield


def _state_files(path):
    return sorted(p.name for p in Path(path).glob("searcher-state-*.pkl"))


def _check_the_sweep_is_whole(grid, searcher):
    """num_samples trials, x = 0..n-1 once each, all finished; the searcher heard each end once."""
    assert len(grid) == NUM_SAMPLES
    assert sorted(r.config["x"] for r in grid) == list(range(NUM_SAMPLES))
    assert [r.status for r in grid] == ["TERMINATED"] * NUM_SAMPLES
    ids = [r.trial_id for r in grid]
    assert sorted(searcher.completed) == sorted(ids)
    assert {t: searcher.suggested[t] for t in ids} == {r.trial_id: r.config["x"] for r in grid}
    assert searcher.remaining == list(range(NUM_SAMPLES, 20))


# ------------------------------------------------------------ interrupted, restored

@pytest.mark.filterwarnings("ignore:this experiment ran with callbacks")
@pytest.mark.parametrize("limited", [False, True], ids=["searcher", "limiter"])
@pytest.mark.parametrize("how", ["stop_all", "ctrl_c"])
def test_an_interrupted_sweep_continues_with_the_restored_searcher(tmp_path, limited, how):
    first = Remaining()
    if how == "stop_all":      # the running trials are stopped: all trials end
        half = _tuner(tmp_path, "half", _wrap(first, limited), stop=StopAllAfter(3)).fit()
    else:                      # the running trials go back to PENDING, to run again
        with pytest.raises(KeyboardInterrupt):
            _tuner(tmp_path, "half", _wrap(first, limited), sleep=0.02,
                   callbacks=[InterruptAfter(3)]).fit()
        half = tune.ResultGrid.from_path(tmp_path / "half")
        assert any(r.status in ("PENDING", "RUNNING") for r in half)
    assert 3 <= len(half) < NUM_SAMPLES
    finished = {r.trial_id: len(r.metrics_dataframe) for r in half if r.status == "TERMINATED"}
    assert _state_files(half.experiment_path) == ["searcher-state-00000002.pkl"]

    fresh = Remaining()
    search_alg = _wrap(fresh, limited)
    restored = tune.Tuner.restore(half.experiment_path, stepped, search_alg=search_alg).fit()

    assert fresh.restored_from == os.path.join(half.experiment_path,
                                               "searcher-state-00000002.pkl")
    _check_the_sweep_is_whole(restored, fresh)
    by_id = {r.trial_id: r for r in restored}
    for trial_id, n in finished.items():          # a finished trial did not run again
        assert len(by_id[trial_id].metrics_dataframe) == n
    assert [r.trial_id for r in restored][:len(half)] == [r.trial_id for r in half]
    if limited:
        assert search_alg.get_state()["live_trials"] == set()
    # the restore's own saves replaced the older file
    assert _state_files(half.experiment_path) == ["searcher-state-00000004.pkl"]


def test_a_sweep_restored_twice(tmp_path):
    half = _tuner(tmp_path, "twice", Remaining(), stop=StopAllAfter(2)).fit()
    again = tune.Tuner.restore(half.experiment_path, stepped, search_alg=Remaining(),
                               stop=StopAllAfter(2)).fit()
    assert len(half) < len(again) < NUM_SAMPLES
    last = Remaining()
    grid = tune.Tuner.restore(half.experiment_path, stepped, search_alg=last).fit()
    _check_the_sweep_is_whole(grid, last)


def test_a_finished_sweep_restores_to_nothing_more(tmp_path):
    searcher = Remaining()
    grid = _tuner(tmp_path, "whole", searcher).fit()
    _check_the_sweep_is_whole(grid, searcher)
    assert searcher.n_saves == 2           # at the start and at the end: never per report
    fresh = Remaining()
    again = tune.Tuner.restore(grid.experiment_path, stepped, search_alg=fresh).fit()
    assert [r.config for r in again] == [r.config for r in grid]
    assert fresh.remaining == searcher.remaining and fresh.suggested == searcher.suggested


class Listening(Remaining):
    """Hears every result: its state may change with any report."""

    def on_trial_result(self, trial_id, result):
        pass


def test_saves_while_the_sweep_runs_come_at_most_every_interval(tmp_path, monkeypatch):
    monkeypatch.setenv("FASTASHA_SEARCHER_SAVE_S", "0.05")
    searcher = Listening()
    started = time.monotonic()
    grid = _tuner(tmp_path, "often", searcher, sleep=0.02).fit()
    elapsed = time.monotonic() - started
    _check_the_sweep_is_whole(grid, searcher)
    # at the start, at the end, and in between every 0.05 s at most (not per report)
    assert 3 <= searcher.n_saves <= 2 + elapsed / 0.05 + 1


class SavesOnce(Remaining):
    """Saves at the start of the sweep only: the trials all come after its saved state."""

    def save(self, checkpoint_path):
        if self.n_saves:
            raise NotImplementedError
        super().save(checkpoint_path)


class Reversed(Remaining):
    """Restores with its list reversed: it suggests other configs than it did."""

    def restore(self, checkpoint_path):
        super().restore(checkpoint_path)
        self.remaining.reverse()


class Forgetful(Remaining):
    """Restores with nothing left to suggest."""

    def restore(self, checkpoint_path):
        super().restore(checkpoint_path)
        self.remaining = []


@pytest.mark.filterwarnings("ignore:SavesOnce does not implement save", "ignore:.*may not fit")
def test_a_restored_searcher_that_suggests_otherwise_is_warned_of(tmp_path):
    half = _tuner(tmp_path, "reversed", SavesOnce(), stop=StopAllAfter(2)).fit()
    stored = {r.trial_id: r.config for r in half}
    fresh = Reversed()
    with pytest.warns(UserWarning, match=rf"suggested other configs than it had for "
                                         rf"{len(half)} trial\(s\) created after its last save"):
        grid = tune.Tuner.restore(half.experiment_path, stepped, search_alg=fresh).fit()
    assert len(grid) == NUM_SAMPLES
    assert {r.trial_id: r.config for r in grid if r.trial_id in stored} == stored
    assert sorted(fresh.completed) == sorted(r.trial_id for r in grid)

    half = _tuner(tmp_path, "forgetful", SavesOnce(), stop=StopAllAfter(2)).fit()
    fresh = Forgetful()
    with pytest.warns(UserWarning, match="did not suggest again the trial"):
        grid = tune.Tuner.restore(half.experiment_path, stepped, search_alg=fresh).fit()
    assert [r.config for r in grid] == [r.config for r in half]     # and no further trial
    assert fresh.completed == []           # it hears nothing of trials it did not suggest


# ------------------------------------------------------------------------ refusals

def test_restore_without_the_search_alg_names_its_class(tmp_path):
    grid = _tuner(tmp_path, "plain", Remaining()).fit()
    with pytest.raises(ValueError, match=r"search_alg Remaining.*search_alg=Remaining\(\.\.\.\)"):
        tune.Tuner.restore(grid.experiment_path, stepped)
    limited = _tuner(tmp_path, "limited", ConcurrencyLimiter(Remaining(), 2)).fit()
    with pytest.raises(ValueError, match=r"ConcurrencyLimiter wrapping Remaining.*"
                                         r"search_alg=ConcurrencyLimiter\(Remaining"):
        tune.Tuner.restore(limited.experiment_path, stepped)


def test_a_search_alg_for_an_experiment_without_one_is_refused(tmp_path):
    grid = tune.Tuner(stepped, param_space={"x": tune.grid_search([1, 2])},
                      run_config=tune.RunConfig(storage_path=str(tmp_path), name="grid",
                                                verbose=0)).fit()
    with pytest.raises(ValueError, match="did not use a search_alg"):
        tune.Tuner.restore(grid.experiment_path, stepped, search_alg=Remaining())


def test_a_searcher_without_save_warns_and_cannot_be_restored(tmp_path):
    with pytest.warns(UserWarning, match="Unsaved does not implement save"):
        half = _tuner(tmp_path, "unsaved", Unsaved(), stop=StopAllAfter(2)).fit()
    assert _state_files(half.experiment_path) == []
    assert not list(Path(half.experiment_path).glob(".*tmp*"))
    with pytest.raises(ValueError, match="Unsaved of this experiment did not save its state"):
        tune.Tuner.restore(half.experiment_path, stepped, search_alg=Unsaved())
    with pytest.raises(ValueError, match="search_alg=Unsaved"):
        tune.Tuner.restore(half.experiment_path, stepped)


def test_a_saved_state_that_is_gone_is_reported(tmp_path):
    half = _tuner(tmp_path, "gone", Remaining(), stop=StopAllAfter(2)).fit()
    for name in _state_files(half.experiment_path):
        os.remove(os.path.join(half.experiment_path, name))
    with pytest.raises(ValueError, match="saved state of the search_alg Remaining is missing"):
        tune.Tuner.restore(half.experiment_path, stepped, search_alg=Remaining())


def test_a_searcher_of_another_kind_is_warned_of(tmp_path):
    half = _tuner(tmp_path, "other", Remaining(), stop=StopAllAfter(2)).fit()
    fresh = Remaining()
    with pytest.warns(UserWarning, match="used the search_alg Remaining, but ConcurrencyLimiter "
                                         "wrapping Remaining was passed.*may not fit"):
        tuner = tune.Tuner.restore(half.experiment_path, stepped,
                                   search_alg=ConcurrencyLimiter(fresh, 2))
    with pytest.warns(UserWarning, match="no saved state of the search_alg wrapper "
                                         "ConcurrencyLimiter: it starts afresh"):
        grid = tuner.fit()
    _check_the_sweep_is_whole(grid, fresh)


def test_a_bad_save_interval_is_refused_before_anything_is_created(tmp_path, monkeypatch):
    monkeypatch.setenv("FASTASHA_SEARCHER_SAVE_S", "0")
    with pytest.raises(ValueError, match="FASTASHA_SEARCHER_SAVE_S must be a number of seconds "
                                         "greater than 0, got '0'"):
        _tuner(tmp_path, "bad", Remaining()).fit()
    assert not (tmp_path / "bad").exists()


# ------------------------------------------------------- save_to_dir, restore_from_dir

class FailsHalfway(Remaining):
    def save(self, checkpoint_path):
        with open(checkpoint_path, "w", encoding="utf-8") as f:
            f.write('{"remaining": [')
        raise OSError("disk full")


def test_save_to_dir_replaces_the_file_in_one_rename(tmp_path):
    searcher = Remaining(3)
    searcher.suggest("a")
    searcher.save_to_dir(str(tmp_path), session_str="s1")
    assert _state_files(tmp_path) == ["searcher-state-s1.pkl"]
    broken = FailsHalfway(3)
    with pytest.raises(OSError, match="disk full"):
        broken.save_to_dir(str(tmp_path), session_str="s1")
    assert sorted(os.listdir(tmp_path)) == ["searcher-state-s1.pkl"]   # no temporary left
    fresh = Remaining(3)
    fresh.restore_from_dir(str(tmp_path))          # the previous state, whole
    assert fresh.remaining == [1, 2] and fresh.suggested == {"a": 0}
    searcher.suggest("b")
    searcher.save_to_dir(str(tmp_path), session_str="s2")
    fresh.restore_from_dir(str(tmp_path))          # the newest file
    assert fresh.remaining == [2]


def test_restore_from_dir_without_a_saved_state_raises(tmp_path):
    with pytest.raises(RuntimeError, match="found no saved state"):
        Remaining().restore_from_dir(str(tmp_path))
    with pytest.warns(UserWarning, match="does not implement save"):
        Unsaved().save_to_dir(str(tmp_path))
    assert os.listdir(tmp_path) == []


# -------------------------------------------------------------- add_evaluated_trials

class Recording(Remaining):
    def __init__(self):
        super().__init__()
        self.points = []

    def add_evaluated_point(self, parameters, value, error=False, pruned=False,
                            intermediate_values=None):
        self.points.append((parameters["x"], value, error, pruned))


def test_add_evaluated_trials_passes_each_finished_trial_on(tmp_path):
    grid = _tuner(tmp_path, "evaluated", Remaining(), num_samples=3).fit()
    expected = sorted((r.config["x"], r.metrics["loss"], False, False) for r in grid)
    for given in (grid, list(grid), tune.ExperimentAnalysis(grid.experiment_path)):
        searcher = Recording()
        searcher.add_evaluated_trials(given, "loss")
        assert sorted(searcher.points) == expected
    searcher = Recording()
    searcher.add_evaluated_trials(grid[0], "loss")
    assert searcher.points == [expected[0]]
    limiter = ConcurrencyLimiter(Recording(), 1)          # passed through, as in Ray
    limiter.add_evaluated_trials(grid, "loss")
    assert sorted(limiter.searcher.points) == expected
    with pytest.warns(UserWarning, match="no trial that finished reported the metric 'acc'"):
        Recording().add_evaluated_trials(grid, "acc")
    with pytest.raises(TypeError, match="add_evaluated_trials takes a trial"):
        Recording().add_evaluated_trials({"x": 1}, "loss")
    with pytest.raises(NotImplementedError, match="add_evaluated_point"):
        Remaining().add_evaluated_trials(grid, "loss")


# ------------------------------------------------------------------ a killed driver

def _counts(db):
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            return dict(conn.execute("SELECT status, COUNT(*) FROM trials GROUP BY status"))
        finally:
            conn.close()
    except sqlite3.Error:
        return {}


def _reap(procs):
    """Kill what is left of the driver processes ``procs`` (by PID) and close their pipes."""
    for proc in procs:
        for pid, _ in descendants(proc.pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()


@pytest.fixture
def driver_process():
    """Starts this file as a sweep's driver; kills what is left of it by PID at teardown."""
    started = []

    def start(storage, name, save_s):
        env = dict(os.environ, FASTASHA_SEARCHER_SAVE_S=str(save_s))
        proc = subprocess.Popen([sys.executable, __file__, str(storage), name], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        started.append(proc)
        return proc

    yield start
    _reap(started)


@pytest.mark.parametrize("save_s", [1000.0, 0.05], ids=["saved_at_start", "saved_often"])
def test_a_killed_driver_continues_from_the_last_saved_state(tmp_path, driver_process, save_s):
    path = tmp_path / "killed"
    db = path / "experiment.db"
    proc = driver_process(tmp_path, "killed", save_s)
    deadline = time.monotonic() + 30
    while True:
        if proc.poll() is not None:
            raise AssertionError(f"the driver exited early ({proc.returncode}): "
                                 f"{proc.stderr.read().decode()[-2000:]}")
        counts = _counts(db)
        if counts.get("TERMINATED", 0) >= 3 and counts.get("RUNNING", 0):
            break
        assert time.monotonic() < deadline, "the sweep made no progress"
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait(timeout=10) == -signal.SIGKILL

    # the newest file is the one a restore takes (a kill between a save's rename and the
    # removal of the file before it leaves both)
    saved = _state_files(path)[-1]
    with open(path / saved, encoding="utf-8") as f:
        state = json.load(f)
    if save_s > 100:      # only the save at the start: every trial came after it
        assert saved == "searcher-state-00000001.pkl" and state["suggested"] == {}
    else:                 # saved while the sweep ran
        assert saved > "searcher-state-00000001.pkl" and state["suggested"]
    stored = tune.ResultGrid.from_path(path)
    assert 3 <= len(stored) < NUM_SAMPLES
    fresh = Remaining()
    search_alg = ConcurrencyLimiter(fresh, max_concurrent=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")       # the searcher suggests the same configs again
        grid = tune.Tuner.restore(str(path), stepped, search_alg=search_alg).fit()
    assert fresh.restored_from == str(path / saved)
    _check_the_sweep_is_whole(grid, fresh)
    assert [r.trial_id for r in grid][:len(stored)] == [r.trial_id for r in stored]
    assert search_alg.get_state()["live_trials"] == set()


if __name__ == "__main__":       # the driver of the killed-driver test
    storage, name = sys.argv[1:3]
    with joblib.parallel_config(backend="threading"):
        _tuner(storage, name, ConcurrencyLimiter(Remaining(), max_concurrent=2),
               sleep=0.05).fit()
