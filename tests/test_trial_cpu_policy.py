"""Trial processes run under Linux's ``SCHED_BATCH`` CPU policy.

A woken trial process then no longer preempts the driver that woke it (by
sending it trials or a verdict), which on a machine whose cores are all
busy with trials keeps the driver answering; see bench/README.md for what
it saved. ``FASTASHA_TRIAL_BATCH_POLICY=0`` in the driver's environment
keeps the normal policy. Trials that run in the driver's own process (the
threading backend) leave its policy alone.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import joblib
import pytest

from fastasha import tune

TESTS_DIR = Path(__file__).resolve().parent
if str(TESTS_DIR) not in sys.path:
    sys.path.insert(0, str(TESTS_DIR))

import objectives

pytestmark = pytest.mark.skipif(not hasattr(os, "SCHED_BATCH"),
                                reason="CPU scheduling policies are Linux's")


def policies(tmp_path, name, backend="loky"):
    with joblib.parallel_config(backend=backend):
        grid = tune.Tuner(
            objectives.reports_cpu_policy,
            param_space={"i": tune.grid_search(list(range(4)))},
            tune_config=tune.TuneConfig(metric="policy", mode="max"),
            run_config=tune.RunConfig(name=name, storage_path=str(tmp_path), verbose=0),
            resources={"cpu": 2},
        ).fit()
    assert grid.num_errors == 0
    return [(r.metrics["policy"], r.metrics["own_pid"]) for r in grid]


def test_trial_processes_run_under_the_batch_policy(tmp_path):
    own = os.sched_getscheduler(0)
    seen = policies(tmp_path, "batch")
    assert {policy for policy, _ in seen} == {os.SCHED_BATCH}
    assert all(pid != os.getpid() for _, pid in seen)
    assert os.sched_getscheduler(0) == own      # the driver's own is left alone


def test_the_environment_variable_keeps_the_normal_policy(tmp_path, monkeypatch):
    # read in the driver when it launches the slots, so a warm worker obeys it too
    policies(tmp_path, "warm-up")
    monkeypatch.setenv("FASTASHA_TRIAL_BATCH_POLICY", "0")
    seen = policies(tmp_path, "normal")
    # (the policy the worker inherited from this process, normally SCHED_OTHER)
    assert {policy for policy, _ in seen} == {os.sched_getscheduler(0)} != {os.SCHED_BATCH}


def test_threads_of_the_driver_keep_its_policy(tmp_path):
    own = os.sched_getscheduler(0)
    seen = policies(tmp_path, "threads", backend="threading")
    assert {pid for _, pid in seen} == {os.getpid()}
    assert {policy for policy, _ in seen} == {own} != {os.SCHED_BATCH}
    assert os.sched_getscheduler(0) == own
