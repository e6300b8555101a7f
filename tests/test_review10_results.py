"""Review 10: what a sweep leaves behind and how it is resumed.

Callback states saved with the experiment and given back by
``Tuner.restore`` (Ray 2.7+'s ``Callback.get_state``/``set_state``), and
the answers of ``ExperimentAnalysis`` and ``Checkpoint`` that a Ray Tune
script reads. Sweeps run in real worker processes; driver processes are
started in sessions of their own and killed by PID, and every process a
test starts is killed by PID at its teardown if still alive.
"""

from __future__ import annotations

import collections
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

from fastasha import tune
from fastasha.results import ResultGrid

REPO = Path(__file__).resolve().parent.parent


# ------------------------------------------------------------------ processes

def _children_of() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", encoding="utf-8") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    return children


def _descendants(pid: int) -> list[int]:
    children, found, todo = _children_of(), [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


@pytest.fixture
def drivers():
    """Driver processes (and what they started) to SIGKILL by PID at teardown."""
    started: list[subprocess.Popen] = []
    pids: list[int] = []

    class Drivers:
        def start(self, args: list[str], env: dict | None = None) -> subprocess.Popen:
            proc = subprocess.Popen([sys.executable, *args], stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, start_new_session=True,
                                    env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})})
            started.append(proc)
            return proc

        def kill(self, proc: subprocess.Popen) -> None:
            """SIGKILL the driver and everything it started, by PID."""
            below = _descendants(proc.pid)
            pids.extend(below)
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
            for pid in below:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass

    yield Drivers()
    for proc in started:
        if proc.poll() is None:
            pids.extend(_descendants(proc.pid))
            proc.kill()
        proc.wait(timeout=10)
        for pipe in (proc.stdout, proc.stderr):
            pipe.close()
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


# -------------------------------------------------------------- callback states

class Tally(tune.Callback):
    """Ray's documented stateful callback: the trials it saw start, and results heard."""

    def __init__(self) -> None:
        self.started: set[str] = set()
        self.results = 0
        self.at_setup: tuple | None = None

    def setup(self, stop=None, num_samples=None, total_num_samples=None, **info):
        self.at_setup = (self.results, set(self.started))

    def on_trial_start(self, iteration, trials, trial, **info):
        self.started.add(trial.trial_id)

    def on_trial_result(self, iteration, trials, trial, result, **info):
        self.results += 1

    def get_state(self):
        return {"started": self.started, "results": self.results}

    def set_state(self, state):
        self.started = state["started"]
        self.results = state["results"]


class Plain(tune.Callback):
    """A callback without state, listed before the stateful one."""

    def on_trial_start(self, iteration, trials, trial, **info):
        pass


def three_reports(config):
    for step in range(3):
        tune.report({"loss": config["x"] + step})


def _tuner(tmp_path: Path, callbacks: list) -> tune.Tuner:
    return tune.Tuner(three_reports, param_space={"x": tune.grid_search([1, 2, 3, 4])},
                      tune_config=tune.TuneConfig(metric="loss", mode="min"),
                      run_config=tune.RunConfig(storage_path=str(tmp_path), name="cb",
                                                verbose=0, callbacks=callbacks))


def test_a_restore_gives_callbacks_their_saved_state_before_setup(tmp_path):
    first = Tally()
    grid = _tuner(tmp_path, [Plain(), first]).fit()
    assert first.results == 12 and first.started == {r.trial_id for r in grid}

    again = Tally()
    tune.Tuner.restore(grid.experiment_path, three_reports, callbacks=[Plain(), again]).fit()
    # nothing ran again: the state is the one saved at the end of the first fit, set
    # before setup, as Ray's resume does; the set comes back a set
    assert again.at_setup == (12, first.started)
    assert again.results == 12 and again.started == first.started
    assert isinstance(again.started, set)


def test_a_callback_of_another_class_at_the_place_gets_no_state(tmp_path):
    grid = _tuner(tmp_path, [Plain(), Tally()]).fit()

    class Other(Tally):
        pass

    other = Other()
    with pytest.warns(UserWarning, match="Tally at place 1") as caught:
        tune.Tuner.restore(grid.experiment_path, three_reports,
                           callbacks=[Plain(), other]).fit()
    assert other.at_setup == (0, set())
    assert {w.filename for w in caught} == {__file__}      # the user's line

    # without callbacks, the restore says once that the run had some, no more
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tune.Tuner.restore(grid.experiment_path, three_reports).fit()
    assert [str(w.message) for w in caught if "allback" in str(w.message)] == [
        next(str(w.message) for w in caught if "pass callbacks=[...]" in str(w.message))]


class Defaulting(tune.Callback):
    def __init__(self) -> None:
        self.seen = collections.defaultdict(int)

    def on_trial_result(self, iteration, trials, trial, result, **info):
        self.seen[trial.trial_id] += 1

    def get_state(self):
        return {"seen": self.seen}      # a defaultdict: JSON would make it a plain dict

    def set_state(self, state):
        self.seen = state["seen"]


def test_a_state_json_cannot_keep_is_refused_with_a_warning(tmp_path):
    with pytest.warns(UserWarning, match="callback Defaulting cannot be saved.*defaultdict"):
        grid = _tuner(tmp_path, [Defaulting()]).fit()
    fresh = Defaulting()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tune.Tuner.restore(grid.experiment_path, three_reports, callbacks=[fresh]).fit()
    # nothing was saved, so nothing is given back (its own state still cannot be saved)
    assert [str(w.message) for w in caught if "cannot be saved" not in str(w.message)] == []
    assert isinstance(fresh.seen, collections.defaultdict) and not fresh.seen


DRIVER = textwrap.dedent('''
    import json, sys, time
    from fastasha import tune

    class Tally(tune.Callback):
        def __init__(self):
            self.started, self.results = set(), 0
        def on_trial_start(self, iteration, trials, trial, **info):
            self.started.add(trial.trial_id)
        def on_trial_result(self, iteration, trials, trial, result, **info):
            self.results += 1
        def get_state(self):
            return {"started": self.started, "results": self.results}
        def set_state(self, state):
            self.started, self.results = state["started"], state["results"]

    class ThisRun(tune.Callback):
        def __init__(self):
            self.results = 0
        def on_trial_result(self, iteration, trials, trial, result, **info):
            self.results += 1

    def objective(config):
        for step in range(6):
            time.sleep(0.15)
            tune.report({"loss": config["x"] / (step + 1)})

    mode, path = sys.argv[1], sys.argv[2]
    callbacks = [Tally(), ThisRun()]
    if mode == "fit":
        folder, name = path.rsplit("/", 1)
        tune.Tuner(objective, param_space={"x": tune.grid_search(list(range(6)))},
                   tune_config=tune.TuneConfig(metric="loss", mode="min"),
                   run_config=tune.RunConfig(storage_path=folder, name=name, verbose=0,
                                             callbacks=callbacks),
                   resources={"cpu": 2}).fit()
    else:
        tune.Tuner.restore(path, objective, callbacks=callbacks).fit()
    print(json.dumps({"started": sorted(callbacks[0].started),
                      "results": callbacks[0].results, "this_run": callbacks[1].results}))
''')


def _finished_trials(db: Path) -> list[str]:
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            return [r[0] for r in conn.execute(
                "SELECT trial_id FROM trials WHERE status = 'TERMINATED'")]
        finally:
            conn.close()
    except sqlite3.Error:
        return []


def test_callback_state_survives_a_killed_driver(tmp_path, drivers):
    script = tmp_path / "driver.py"
    script.write_text(DRIVER)
    path = tmp_path / "runs" / "killed"
    env = {"FASTASHA_CALLBACK_SAVE_S": "0.2"}
    proc = drivers.start([str(script), "fit", str(path)], env)
    deadline = time.monotonic() + 60
    while len(_finished_trials(path / "experiment.db")) < 2:
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        assert time.monotonic() < deadline, "the sweep made no progress"
        time.sleep(0.05)
    finished = _finished_trials(path / "experiment.db")
    time.sleep(0.5)                     # past a periodic save
    assert proc.poll() is None, "the sweep ended before it was killed"
    drivers.kill(proc)

    again = drivers.start([str(script), "restore", str(path)], env)
    out, err = again.communicate(timeout=120)
    assert again.returncode == 0, err.decode()[-2000:]
    state = json.loads(out.decode().strip().splitlines()[-1])
    grid = ResultGrid.from_path(path)
    assert len(grid) == 6 and grid.num_terminated == 6
    # what the callback heard before the kill came back: the trials that had ended then
    # (they do not run again), and more results than the restored run reported
    assert set(finished) <= set(state["started"])
    assert state["results"] > state["this_run"]
    # and never a result the experiment file does not hold (the file is written first)
    assert state["results"] <= sum(len(r.history()) for r in grid)


# ------------------------------------------------------------ ExperimentAnalysis

def two_values(config):
    for step in range(3):
        tune.report({"loss": config["x"] * (3 - step), "nested": {"y": step}})


@pytest.fixture(scope="module")
def analysis(tmp_path_factory):
    root = tmp_path_factory.mktemp("analysis")
    return tune.run(two_values, config={"x": tune.grid_search([1, 2]), "opt": {"lr": 0.1}},
                    metric="loss", mode="min", storage_path=str(root), name="a", verbose=0)


def test_get_all_configs_with_prefix_flattens_into_config_columns(analysis):
    configs = analysis.get_all_configs(prefix=True)
    assert sorted(configs.values(), key=lambda c: c["config/x"]) == [
        {"config/x": 1, "config/opt/lr": 0.1}, {"config/x": 2, "config/opt/lr": 0.1}]
    assert set(configs) == {t.trial_id for t in analysis.trials}


def test_best_result_df_is_indexed_by_trial_id_as_in_ray(analysis):
    frame = analysis.best_result_df
    assert list(frame.index) == [analysis.best_trial.trial_id]
    assert frame.loc[analysis.best_trial.trial_id, "loss"] == 1


def test_a_metric_without_a_mode_gives_the_last_results(analysis):
    # Ray: "If metric=None or mode=None, the last result will be returned"
    frame = analysis.dataframe(metric="loss")
    assert sorted(frame["loss"]) == [1, 2] and set(frame["training_iteration"]) == {3}
    grid = ResultGrid(analysis)
    assert sorted(grid.get_dataframe(filter_metric="loss")["loss"]) == [1, 2]
    with pytest.raises(ValueError, match="needs a metric"):
        analysis.dataframe(mode="max")
    with pytest.raises(ValueError, match="needs a filter_metric"):
        grid.get_dataframe(filter_mode="max")


def checkpoint_each_step(config):
    for step in range(1, 4):
        with tempfile.TemporaryDirectory() as folder:
            checkpoint = tune.Checkpoint.from_directory(folder)
            checkpoint.set_metadata({"step": step})
            checkpoint.update_metadata({"x": config["x"]})
            tune.report({"loss": -step}, checkpoint=checkpoint)


def test_best_checkpoint_defaults_to_training_iteration_without_a_metric(tmp_path):
    analysis = tune.run(checkpoint_each_step, config={"x": tune.grid_search([1])},
                        storage_path=str(tmp_path), name="nometric", verbose=0)
    trial = analysis.trials[0]
    best = analysis.get_best_checkpoint(trial, mode="max")     # Ray: training_iteration
    assert best == trial.checkpoint
    assert best.get_metadata() == {"step": 3, "x": 1}
    assert analysis.get_best_checkpoint(trial, mode="min").get_metadata()["step"] == 1


def test_checkpoint_metadata_travels_with_the_reported_checkpoint(tmp_path):
    grid = tune.Tuner(checkpoint_each_step, param_space={"x": tune.grid_search([5])},
                      run_config=tune.RunConfig(storage_path=str(tmp_path), verbose=0)).fit()
    result = grid[0]
    assert [c.get_metadata() for c, _ in result.best_checkpoints] == [
        {"step": s, "x": 5} for s in (1, 2, 3)]
    with pytest.raises(TypeError, match="JSON"):
        result.checkpoint.set_metadata({"f": object()})
    assert result.checkpoint.get_metadata() == {"step": 3, "x": 5}


def test_fit_returns_with_the_experiment_file_closed(tmp_path):
    # fit() closed the file in a background thread, which deletes experiment.db-wal and
    # -shm a few ms later: a TemporaryDirectory used as storage_path, cleaned up right
    # after fit(), could fail in shutil.rmtree on a file that vanished meanwhile
    import tempfile

    for i in range(5):
        with tempfile.TemporaryDirectory(dir=tmp_path) as storage:
            grid = tune.Tuner(many_reports, param_space={"x": tune.uniform(0, 1)},
                              tune_config=tune.TuneConfig(num_samples=200),
                              run_config=tune.RunConfig(name=f"tmp{i}", storage_path=storage,
                                                        verbose=0)).fit()
            left = sorted(os.listdir(grid.experiment_path))
            assert not [name for name in left if name.endswith(("-wal", "-shm"))], left
        assert len(grid) == 200 and grid.num_errors == 0


def many_reports(config):
    for step in range(200):          # (a WAL of about 1 MB, which takes ms to copy back)
        tune.report({"loss": config["x"] + step})
