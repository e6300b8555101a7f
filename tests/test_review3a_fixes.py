"""Fixes from the third review of restoring a search_alg's state.

Each test failed before its fix. The searchers and objectives are those of
tests/test_searcher_restore.py.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import warnings
from pathlib import Path

import joblib
import pytest

if str(Path(__file__).resolve().parent) not in sys.path:   # --import-mode=importlib
    sys.path.insert(0, str(Path(__file__).resolve().parent))

from test_searcher_restore import NUM_SAMPLES, Remaining, _reap, _tuner, stepped

from fastasha import tune
from fastasha.search import ConcurrencyLimiter


@pytest.fixture(autouse=True)
def _threads():
    with joblib.parallel_config(backend="threading"):
        yield


class InterruptWhileRunning(tune.Callback):
    """Ctrl-C (a KeyboardInterrupt) at the first result once ``n`` trials ended."""

    def __init__(self, n):
        self.n, self.ended = n, 0

    def on_trial_complete(self, iteration, trials, trial, **info):
        self.ended += 1

    def on_trial_result(self, iteration, trials, trial, result, **info):
        if self.ended >= self.n:
            raise KeyboardInterrupt


# ------------------------------------------- resume_unfinished=False and a searcher

@pytest.mark.filterwarnings("ignore:this experiment ran with callbacks")
def test_unfinished_trials_ended_by_a_restore_are_ended_for_the_searcher(tmp_path,
                                                                         monkeypatch):
    # A ConcurrencyLimiter counted the trial that was running at Ctrl-C as live. A restore
    # with resume_unfinished=False ended it without a word to the searcher, so the limiter
    # kept its place forever: it answered None until FASTASHA_SEARCHER_WAIT_S ran out and
    # the sweep ended with trials it had promised to run never created.
    monkeypatch.setenv("FASTASHA_SEARCHER_WAIT_S", "1")
    with pytest.raises(KeyboardInterrupt):
        _tuner(tmp_path, "skip", ConcurrencyLimiter(Remaining(), max_concurrent=1), sleep=0.02,
               callbacks=[InterruptWhileRunning(2)]).fit()
    half = tune.ResultGrid.from_path(tmp_path / "skip")
    unfinished = [r.trial_id for r in half if r.status in ("PENDING", "RUNNING")]
    assert len(unfinished) == 1

    fresh = Remaining()
    limiter = ConcurrencyLimiter(fresh, max_concurrent=1)
    grid = tune.Tuner.restore(half.experiment_path, stepped, search_alg=limiter,
                              resume_unfinished=False).fit()
    assert len(grid) == NUM_SAMPLES
    assert grid.num_terminated == NUM_SAMPLES
    assert sorted(fresh.completed) == sorted(r.trial_id for r in grid)
    assert limiter.get_state()["live_trials"] == set()

    # the end the restore told the searcher of is part of the experiment: a further
    # restore's searcher knows it too, and has nothing left to run
    again = Remaining()
    tune.Tuner.restore(half.experiment_path, stepped,
                       search_alg=ConcurrencyLimiter(again, max_concurrent=1)).fit()
    assert sorted(again.completed) == sorted(fresh.completed)


# ------------------------------------------ trials a restored searcher never knew

class ForgetsAndSavesOnce(Remaining):
    """Saves only at the start of each sweep; restores with nothing left to suggest, so
    the trials created after its save are strangers to a restored one."""

    def save(self, checkpoint_path):
        if self.n_saves:
            raise NotImplementedError
        super().save(checkpoint_path)

    def restore(self, checkpoint_path):
        super().restore(checkpoint_path)
        self.remaining = []


@pytest.mark.filterwarnings("ignore:this experiment ran with callbacks",
                            "ignore:.*did not suggest again the trial")
def test_a_trial_the_restored_searcher_did_not_suggest_stays_unknown_to_later_restores(
        tmp_path):
    # A restore whose searcher did not suggest a stored trial again keeps that trial from
    # it; the next restore forgot that, and told its searcher of the trial's end (a
    # searcher that looks the trial up then fails on a trial it never suggested).
    with pytest.raises(KeyboardInterrupt):
        _tuner(tmp_path, "strangers", ForgetsAndSavesOnce(), sleep=0.02,
               callbacks=[InterruptWhileRunning(2)]).fit()
    path = tmp_path / "strangers"
    first = ForgetsAndSavesOnce()
    with pytest.raises(KeyboardInterrupt):    # again before the unfinished trials end
        tune.Tuner.restore(str(path), stepped, search_alg=first,
                           callbacks=[InterruptWhileRunning(0)]).fit()
    assert first.completed == []
    assert any(r.status in ("PENDING", "RUNNING") for r in tune.ResultGrid.from_path(path))
    second = ForgetsAndSavesOnce()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        grid = tune.Tuner.restore(str(path), stepped, search_alg=second).fit()
    assert grid.num_terminated == len(grid)
    assert second.completed == []
    # the first restore warned of them; this one has found no new ones to warn of
    assert not [w for w in caught if "did not suggest again" in str(w.message)]


# ----------------------------------------------------- a driver killed in a save

class KilledWhileSaving(Remaining):
    """With $KILL_IN_SAVE, its process is SIGKILLed half-way through its first save after
    3 suggestions."""

    def save(self, checkpoint_path):
        if os.environ.get("KILL_IN_SAVE") and len(self.suggested) >= 3:
            with open(checkpoint_path, "w", encoding="utf-8") as f:
                f.write('{"remaining": [')
                f.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        super().save(checkpoint_path)


@pytest.fixture
def killed_driver(tmp_path):
    """Runs this file as a sweep's driver until it kills itself; its leftovers at teardown."""
    procs = []

    def run(name):
        env = dict(os.environ, FASTASHA_SEARCHER_SAVE_S="0.05", KILL_IN_SAVE="1")
        proc = subprocess.Popen([sys.executable, __file__, str(tmp_path), name], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        procs.append(proc)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            pass
        return proc

    yield run
    _reap(procs)


def test_a_save_killed_half_way_leaves_no_file_behind_after_a_restore(tmp_path, killed_driver):
    # The state file is written to a temporary that a rename puts in place; a driver killed
    # before the rename left the temporary, and nothing ever removed it (one more file, as
    # large as the searcher's state, for every such crash).
    proc = killed_driver("killed")
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()[-2000:]
    path = tmp_path / "killed"
    assert [p.name for p in path.glob(".*tmp*")]          # what the killed save left
    fresh = KilledWhileSaving()
    grid = tune.Tuner.restore(str(path), stepped, search_alg=fresh).fit()
    assert len(grid) == NUM_SAMPLES and grid.num_terminated == NUM_SAMPLES
    assert fresh.restored_from is not None                # the save before the killed one
    assert sorted(fresh.completed) == sorted(r.trial_id for r in grid)
    assert not [p.name for p in path.glob(".*tmp*")]
    assert len(list(path.glob("searcher-state-*.pkl"))) == 1



# ------------------------------------------------ a space only the searcher reads

class OwnSpace(Remaining):
    """Takes the param space itself (set_search_properties returns True)."""

    def set_search_properties(self, metric, mode, config, **spec):
        self.space = config
        return True


def test_a_space_only_the_search_alg_reads_is_not_refused(tmp_path):
    # Storing the param space for a restore validated it as fastasha's own sampler would
    # run it, so a space the searcher takes itself and fastasha never samples (here a
    # grid_search inside a choice) failed fit() before the first trial; it ran before.
    space = {"sleep": 0.0, "kind": tune.choice([tune.grid_search([1, 2]), 3])}
    grid = tune.Tuner(
        stepped, param_space=space,
        tune_config=tune.TuneConfig(metric="loss", mode="min", search_alg=OwnSpace(),
                                    num_samples=3),
        run_config=tune.RunConfig(storage_path=str(tmp_path), name="own", verbose=0),
        resources={"cpu": 2}).fit()
    assert grid.num_terminated == 3
    with pytest.raises(ValueError, match="pass the same param_space to Tuner.restore"):
        tune.Tuner.restore(grid.experiment_path, stepped, search_alg=OwnSpace())
    again = tune.Tuner.restore(grid.experiment_path, stepped, search_alg=OwnSpace(),
                               param_space=space).fit()
    assert again.num_terminated == 3


if __name__ == "__main__":       # the driver of the killed-in-a-save test
    storage, name = sys.argv[1:3]
    with joblib.parallel_config(backend="threading"):
        _tuner(storage, name, KilledWhileSaving(), sleep=0.05).fit()
