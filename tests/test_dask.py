"""The Tuner on a real Dask cluster, through joblib's dask backend."""

from __future__ import annotations

import os
import time

import pytest

distributed = pytest.importorskip("distributed")
joblib = pytest.importorskip("joblib")

from fastasha import tune  # noqa: E402
from fastasha.schedulers import AsyncHyperBandScheduler  # noqa: E402


def objective(config):
    for step in range(12):
        time.sleep(0.005)
        tune.report({"loss": config["x"] / (step + 1), "parent": os.getppid(),
                     "policy": os.sched_getscheduler(0) if hasattr(os, "SCHED_BATCH") else -1})


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=None, silence_logs=40)
    client = distributed.Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


def _sweep(tmp_path, name, max_concurrent=None):
    return tune.Tuner(
        objective,
        param_space={"x": tune.uniform(0, 1)},
        tune_config=tune.TuneConfig(
            metric="loss", mode="min", num_samples=10, seed=7,
            max_concurrent_trials=max_concurrent,
            scheduler=AsyncHyperBandScheduler(grace_period=2, max_t=12, reduction_factor=2),
        ),
        run_config=tune.RunConfig(name=name, storage_path=str(tmp_path), verbose=0),
    )


def test_trials_run_in_the_cluster_workers(client, tmp_path):
    worker_pids = set(client.run(os.getpid).values())
    with joblib.parallel_config(backend="dask"):
        results = _sweep(tmp_path, "dask").fit()
    assert len(results) == 10
    assert results.num_terminated == 10
    # each trial process is forked by the Dask worker running its slot
    parents = {r.metrics["parent"] for r in results}
    assert parents <= worker_pids
    assert os.getpid() not in {r.metrics["pid"] for r in results}
    if hasattr(os, "SCHED_BATCH"):     # (Linux) as on loky: see tests/test_trial_cpu_policy.py
        assert {r.metrics["policy"] for r in results} == {os.SCHED_BATCH}


def test_dask_and_loky_make_the_same_decisions(client, tmp_path):
    # one trial at a time makes the order of results, hence every decision, fixed
    with joblib.parallel_config(backend="dask"):
        on_dask = _sweep(tmp_path, "dask_run", max_concurrent=1).fit()
    on_loky = _sweep(tmp_path, "loky_run", max_concurrent=1).fit()
    assert [r.config for r in on_dask] == [r.config for r in on_loky]
    assert [r.metrics["training_iteration"] for r in on_dask] == \
        [r.metrics["training_iteration"] for r in on_loky]
    assert len({r.metrics["training_iteration"] for r in on_dask}) > 1   # some were stopped
