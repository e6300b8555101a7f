"""Defects found reviewing the change since d1ca043 (callback states, Ray-style scheduler
hooks, the per-process session, ...); each test failed before its fix.

The objectives are defined here, at module level: the worker processes import them
from this module (pytest puts ``tests/`` on the path, and loky passes it on).
"""

from __future__ import annotations

import os
import threading

import joblib
import pytest

from fastasha import tune

# -- a thread left running by one trial, in a process that runs the next one ----------------

# (module state of the trial process, shared by the trials it runs one after another)
_next_trial_started = threading.Event()
_stray: dict = {}


def _stray_reporter() -> None:
    """Started by trial 0, left running: reports once trial 1 runs in the same process."""
    _next_trial_started.wait(30)
    try:
        tune.report({"loss": 999.0, "stray": True})
        _stray["outcome"] = "reported"
    except BaseException as err:   # noqa: BLE001 - what the thread got is the finding
        _stray["outcome"] = type(err).__name__


def leaves_a_thread_behind(config):
    if config["i"] == 0:
        thread = threading.Thread(target=_stray_reporter, daemon=True)
        _stray["thread"] = thread
        thread.start()
        tune.report({"loss": 0.0, "pid": os.getpid()})
        return
    _next_trial_started.set()
    thread = _stray.get("thread")
    if thread is not None:
        thread.join(30)
    for i in range(3):
        tune.report({"loss": float(i), "pid": os.getpid(),
                     "stray_outcome": _stray.get("outcome", "no stray thread here")})


@pytest.mark.parametrize("backend", ["loky", "threading"])
def test_a_thread_left_by_one_trial_does_not_report_into_the_next(tmp_path, backend):
    # A trial process runs its trials one after another; a thread the objective
    # starts reports for its trial, through the session the process holds. A thread
    # trial 0 left running saw that session too once trial 1 held it: its reports went
    # into trial 1 (extra rows, the metrics of another config). It is not trial 1's
    # thread (it was running when trial 1 started): its report fails as outside a trial.
    with joblib.parallel_config(backend=backend, n_jobs=1):
        grid = tune.Tuner(
            leaves_a_thread_behind, param_space={"i": tune.grid_search([0, 1])},
            tune_config=tune.TuneConfig(metric="loss", mode="min", max_concurrent_trials=1),
            run_config=tune.RunConfig(storage_path=str(tmp_path), name="exp", verbose=0),
        ).fit()
    by_i = {r.config["i"]: r for r in grid}
    assert all(r.error is None for r in grid), [r.error for r in grid]
    assert by_i[0].metrics["pid"] == by_i[1].metrics["pid"]     # (else nothing is tested)
    second = by_i[1]
    assert second.metrics["stray_outcome"] == "RuntimeError"
    frame = second.metrics_dataframe
    assert len(frame) == 3
    assert "stray" not in frame.columns
