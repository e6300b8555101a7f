"""Review 10: the Tuner on joblib's Dask backend, as a sweep that outgrew one machine uses it.

Each test runs a real ``distributed.LocalCluster`` (worker processes) and
closes it.
"""

from __future__ import annotations

import os
import signal
import time
import warnings

import pytest

distributed = pytest.importorskip("distributed")
joblib = pytest.importorskip("joblib")
np = pytest.importorskip("numpy")

from fastasha import tune  # noqa: E402


def _cluster(n_workers, threads, **config):
    import dask

    with dask.config.set(config):
        cluster = distributed.LocalCluster(n_workers=n_workers, threads_per_worker=threads,
                                           processes=True, dashboard_address=None,
                                           silence_logs=50)
    return cluster, distributed.Client(cluster)


def _tuner(objective, tmp_path, name, num_samples, **tune_config):
    return tune.Tuner(
        objective,
        param_space={"i": tune.grid_search(list(range(num_samples)))},
        tune_config=tune.TuneConfig(metric="loss", mode="min", **tune_config),
        run_config=tune.RunConfig(name=name, storage_path=str(tmp_path), verbose=0),
    )


def short_trial(config):
    time.sleep(0.2)
    tune.report({"loss": float(config["i"])})


def test_slots_follow_the_clusters_threads_not_the_drivers_cpus(tmp_path):
    # one worker with more threads than the driver's machine has CPUs: every thread
    # runs a slot (each slot forks one trial process and runs its trials in it)
    from fastasha._resources import detect_cpus

    threads = detect_cpus() + 1
    cluster, client = _cluster(1, threads)
    try:
        with joblib.parallel_config(backend="dask"):
            results = _tuner(short_trial, tmp_path, "wide", 3 * threads).fit()
    finally:
        client.close()
        cluster.close()
    assert results.num_terminated == 3 * threads
    assert len({r.metrics["pid"] for r in results}) == threads


def kills_its_worker_once(config):
    folder = config["folder"]
    marker = os.path.join(folder, "worker-killed")
    worker = os.getppid()
    if config["i"] == 1 and not os.path.exists(marker):
        with open(marker, "w") as f:
            f.write(str(worker))
        os.kill(worker, signal.SIGKILL)     # the Dask worker running this slot
        time.sleep(30)
    open(os.path.join(folder, f"started-{worker}"), "w").close()
    if config["i"] >= 6 and os.path.exists(marker):
        # the last trials wait (up to 20 s) until a trial has started in a worker other
        # than this one and the killed one: on a busy machine the nanny's new worker may
        # take longer to come up than the surviving slot takes to run every other trial
        with open(marker) as f:
            killed = int(f.read() or 0)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not any(
                name.startswith("started-") and int(name[8:]) not in (worker, killed)
                for name in os.listdir(folder)):
            time.sleep(0.05)
    time.sleep(0.3)
    tune.report({"loss": float(config["i"]), "worker": worker})


def test_a_slot_whose_task_dask_gave_up_on_is_started_again(tmp_path):
    # allowed-failures=0: one dead worker makes Dask give up on the slot's task
    # (KilledWorker), which joblib's Parallel never reports
    cluster, client = _cluster(2, 1, **{"distributed.scheduler.allowed-failures": 0})
    try:
        before = set(client.run(os.getpid).values())
        tuner = tune.Tuner(
            kills_its_worker_once,
            param_space={"i": tune.grid_search(list(range(10))), "folder": str(tmp_path)},
            tune_config=tune.TuneConfig(metric="loss", mode="min"),
            run_config=tune.RunConfig(name="killed", storage_path=str(tmp_path), verbose=0),
        )
        started = time.monotonic()
        with joblib.parallel_config(backend="dask"):
            results = tuner.fit()
        elapsed = time.monotonic() - started
    finally:
        client.close()
        cluster.close()
    assert os.path.exists(tmp_path / "worker-killed")
    assert results.num_terminated == 10 and results.num_errors == 0
    # the slot went on in the worker the nanny started in place of the dead one
    assert {r.metrics["worker"] for r in results} - before
    # (not waiting for a Parallel call that never returns: the killed trial's process
    # sleeps 30 s)
    assert elapsed < 25.0


def with_data(config, data):
    time.sleep(0.05)
    tune.report({"loss": float(data[config["i"]])})


def test_with_parameters_data_goes_to_the_workers_once_not_in_the_graph(tmp_path):
    data = np.arange(3_000_000, dtype=np.float64)      # 24 MB, above Dask's 10 MB warning
    cluster, client = _cluster(2, 2)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with joblib.parallel_config(backend="dask"):
                results = _tuner(tune.with_parameters(with_data, data=data), tmp_path,
                                 "data", 8).fit()
        # the workers let go of it once the sweep is over
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and client.run_on_scheduler(
                lambda dask_scheduler: len(dask_scheduler.tasks)):
            time.sleep(0.05)
        left = client.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.tasks))
    finally:
        client.close()
        cluster.close()
    assert sorted(r.metrics["loss"] for r in results) == [float(i) for i in range(8)]
    assert not [w for w in caught if "large graph" in str(w.message)]
    assert left == 0
