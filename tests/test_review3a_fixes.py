"""Fixes from the third review of restoring a search_alg's state.

Each test failed before its fix. The searchers and objectives are those of
tests/test_searcher_restore.py.
"""

from __future__ import annotations

import sys
from pathlib import Path

import joblib
import pytest

if str(Path(__file__).resolve().parent) not in sys.path:   # --import-mode=importlib
    sys.path.insert(0, str(Path(__file__).resolve().parent))

from test_searcher_restore import NUM_SAMPLES, Remaining, _tuner, stepped

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
