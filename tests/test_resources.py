"""Resources: requests, detection, the pool, slot counts and what a trial sees.

The first half tests the parts on their own: parsing of requests and of the
resources a sweep may use, CPU and GPU detection, and the pool that packs
trials onto CPUs and (whole or fractional) GPUs. The second half runs real
sweeps and watches them: each objective records the wall-clock interval it
ran in, and the largest number of overlapping intervals is the number of
trials that ran at once. So that a slot whose worker process starts late
still counts, the first trials of a sweep wait (up to a generous deadline)
until the expected number of trials has started: with fewer slots than
expected the overlap stays too small, with more it grows too large. Sleeps
make the overlaps unambiguous; no test asserts on speed.

GPUs here are declared, never real: the bookkeeping (which trial gets which
device id, and what it finds in ``CUDA_VISIBLE_DEVICES``) needs no GPU.
The environment of a trial is its own only where the trial runs in a
process of its own (joblib's default loky backend). In the threading
backend trials share the driver's ``os.environ``; their device ids are in
``tune.get_context().gpu_ids``.

These tests import ``fastasha._resources`` directly (detection and the pool
have no public entry point of their own besides ``Tuner``).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
import time
from collections import defaultdict

import joblib
import pytest

from fastasha import tune
from fastasha._resources import (
    THREAD_ENV_VARS,
    Allocation,
    Request,
    ResourcePool,
    detect_cpus,
    detect_gpus,
    parse_available,
)

SLEEP_S = 0.25
# How long the first trials wait for the others to start; only a failing test waits this long.
MEET_TIMEOUT_S = 20.0


# ---------------------------------------------------------------- objectives

def wait_for_others(folder, n_expected):
    """Mark this trial as started; wait until ``n_expected`` trials have (or the deadline)."""
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, tune.get_context().get_trial_id()), "w"):
        pass
    deadline = time.monotonic() + MEET_TIMEOUT_S
    while len(os.listdir(folder)) < n_expected and time.monotonic() < deadline:
        time.sleep(0.01)


def record(config):
    """Sleep, then report the interval the trial ran in and what it saw."""
    start = time.time()
    if config.get("meet"):
        wait_for_others(config["meet"], config["expected"])
    time.sleep(SLEEP_S)
    context = tune.get_context()
    metrics = {
        "start": start,
        "end": time.time(),
        "cuda": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "context_gpus": ",".join(context.gpu_ids),
        "context_cpu": context.get_trial_resources().get("cpu"),
        "context_gpu": context.get_trial_resources().get("gpu"),
    }
    for name in THREAD_ENV_VARS:
        metrics[name] = os.environ.get(name)
    tune.report(metrics)


def blas_threads(config):
    """Report the largest thread pool threadpoolctl finds (after loading numpy's BLAS)."""
    import numpy as np
    from threadpoolctl import threadpool_info

    np.ones((64, 64)) @ np.ones((64, 64))     # make sure the BLAS is loaded and used
    pools = threadpool_info()
    tune.report({
        "n_pools": len(pools),
        "max_threads": max((p["num_threads"] for p in pools), default=0),
        "omp": os.environ.get("OMP_NUM_THREADS"),
    })


def gpu_for_even_trials(config):
    return {"cpu": 1, "gpu": 1 if config["i"] % 2 == 0 else 0}


def two_cpus(config):
    return {"cpu": 2}


def two_gpus_for_trial_one(config):
    return {"cpu": 1, "gpu": 2 if config["i"] == 1 else 0}


def unknown_key_for_trial_one(config):
    return {"cpu": 1, "tpu": 1} if config["i"] == 1 else {"cpu": 1}


def fractional_over_one_for_trial_one(config):
    return {"cpu": 1, "gpu": 1.5} if config["i"] == 1 else {"cpu": 1}


def raises_for_trial_one(config):
    if config["i"] == 1:
        raise KeyError("no_such_key")
    return {"cpu": 1}


# ------------------------------------------------------------------- helpers

def fit(trainable, n_trials, resources=None, *, backend="loky", storage=None, meet=None,
        **tune_config):
    """Run ``n_trials`` trials; return the result grid.

    ``meet=(folder, n)`` makes the first trials of :func:`record` wait until
    ``n`` trials have started.
    """
    run_config = tune.RunConfig(storage_path=None if storage is None else str(storage),
                                name=None if storage is None else "exp", verbose=0)
    space = {"i": tune.grid_search(list(range(n_trials)))}
    if meet is not None:
        space.update(meet=str(meet[0]), expected=meet[1])
    with joblib.parallel_config(backend=backend):
        tuner = tune.Tuner(trainable, param_space=space,
                           tune_config=tune.TuneConfig(**tune_config), run_config=run_config,
                           resources=resources)
        return tuner.fit()


def finished_metrics(grid):
    """The last result of every trial; all of them must have terminated."""
    assert [r.status for r in grid] == ["TERMINATED"] * len(grid), [r.error for r in grid]
    return [r.metrics for r in grid]


def max_overlap(intervals):
    """Largest number of ``(start, end)`` intervals that share an instant (touching is not sharing)."""
    events = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    most = running = 0
    for _, step in events:        # at equal times the end (-1) sorts before the start
        running += step
        most = max(most, running)
    return most


def overlap_per_device(metrics, key):
    """For each device id in ``metrics[key]``, the most trials that held it at once."""
    held = defaultdict(list)
    for m in metrics:
        for device in filter(None, m[key].split(",")):
            held[device].append((m["start"], m["end"]))
    return {device: max_overlap(intervals) for device, intervals in held.items()}


def intervals(metrics):
    return [(m["start"], m["end"]) for m in metrics]


def fake_nvidia_smi(folder, body, monkeypatch):
    """Put an ``nvidia-smi`` running ``body`` first (and alone) on PATH."""
    script = folder / "nvidia-smi"
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(0o755)
    monkeypatch.setenv("PATH", str(folder))


# ---------------------------------------------------------- requests (with_resources)

@pytest.mark.parametrize("resources, expected", [
    ({}, Request(cpu=1.0, gpu=0.0)),
    ({"gpu": 1}, Request(cpu=1.0, gpu=1.0)),
    ({"cpu": 0, "gpu": 0.5}, Request(cpu=0.0, gpu=0.5)),
    ({"CPU": 2, "GPU": 2}, Request(cpu=2.0, gpu=2.0)),
    ({"cpu": 0.5, "gpu": 1.0}, Request(cpu=0.5, gpu=1.0)),
    ({"gpu": 0.25}, Request(cpu=1.0, gpu=0.25)),
])
def test_with_resources_fixed_request(resources, expected):
    wrapped = tune.with_resources(record, resources)
    assert wrapped.request_for({"i": 0}) == expected
    assert wrapped.request_for({"i": 1}) == expected


def test_with_resources_function_gives_per_trial_requests():
    wrapped = tune.with_resources(record, gpu_for_even_trials)
    assert wrapped.request_for({"i": 0}) == Request(cpu=1.0, gpu=1.0)
    assert wrapped.request_for({"i": 1}) == Request(cpu=1.0, gpu=0.0)


@pytest.mark.parametrize("resources, error, match", [
    ({"tpu": 1}, ValueError, r"unknown resource 'tpu'.*'cpu', 'gpu' and 'memory' \(bytes\) only"),
    ({"cpu": 1, "neuron_cores": 1}, ValueError, r"unknown resource 'neuron_cores'"),
    ({"cpu": -1}, ValueError, r"resource 'cpu' must not be negative, got -1"),
    ({"gpu": -0.5}, ValueError, r"resource 'gpu' must not be negative, got -0.5"),
    ({"gpu": 1.5}, ValueError, r"fractional GPU request must be at most 1, got gpu=1.5"),
    ({"gpu": 2.5}, ValueError, r"at most 1, got gpu=2.5; ask for a whole number"),
    ({"cpu": "2"}, TypeError, r"resource 'cpu' must be a finite number, got '2'"),
    ({"cpu": math.nan}, TypeError, r"resource 'cpu' must be a finite number, got nan"),
    ({"gpu": math.inf}, TypeError, r"resource 'gpu' must be a finite number, got inf"),
    ({"gpu": True}, TypeError, r"resource 'gpu' must be a finite number, got True"),
    ([("cpu", 1)], TypeError, r"resources must be a dict like"),
])
def test_with_resources_rejects_bad_requests(resources, error, match):
    with pytest.raises(error, match=match):
        tune.with_resources(record, resources)


# ------------------------------------------------------- declared resources

def test_parse_available_declared(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "7")    # declared values win over detection
    assert parse_available({"cpu": 16, "gpu": 4}) == (16.0, ["0", "1", "2", "3"])
    assert parse_available({"cpu": 2, "gpu": ["0", "3"]}) == (2.0, ["0", "3"])
    assert parse_available({"cpu": 2, "gpu": [0, 3]}) == (2.0, ["0", "3"])
    assert parse_available({"CPU": 2.5, "GPU": 0}) == (2.5, [])
    assert parse_available({"cpu": 2, "gpu": []}) == (2.0, [])


def test_parse_available_detects_what_is_left_out(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,6")
    assert parse_available(None) == (float(detect_cpus()), ["4", "6"])
    assert parse_available({"cpu": 3}) == (3.0, ["4", "6"])
    assert parse_available({"gpu": 1}) == (float(detect_cpus()), ["0"])


@pytest.mark.parametrize("resources, error, match", [
    ({"tpu": 1}, ValueError, r"unknown resource\(s\) \['tpu'\]; declare 'cpu', 'gpu' and 'memory'"),
    ({"cpu": 0}, ValueError, r"resources\['cpu'\] must be a number greater than 0, got 0"),
    ({"cpu": -2}, ValueError, r"resources\['cpu'\] must be a number greater than 0, got -2"),
    ({"cpu": "4"}, ValueError, r"resources\['cpu'\] must be a number greater than 0, got '4'"),
    ({"cpu": True}, ValueError, r"resources\['cpu'\] must be a number greater than 0, got True"),
    ({"gpu": 1.5}, ValueError, r"resources\['gpu'\] must be a whole number of GPUs or a list"),
    ({"gpu": -1}, ValueError, r"resources\['gpu'\] must be a whole number of GPUs or a list"),
    ({"gpu": True}, ValueError, r"resources\['gpu'\] must be a whole number of GPUs or a list"),
    ({"gpu": ["0", "1", "0"]}, ValueError, r"resources\['gpu'\] lists a device twice"),
    ([4], TypeError, r"resources must be a dict like \{'cpu': 16, 'gpu': 4\}"),
])
def test_parse_available_rejects_bad_declarations(resources, error, match):
    with pytest.raises(error, match=match):
        parse_available(resources)


# ------------------------------------------------------------------ detection

def test_detect_cpus_respects_affinity_of_this_process():
    assert 1 <= detect_cpus() <= len(os.sched_getaffinity(0))


AFFINITY_SCRIPT = textwrap.dedent("""
    import json, os, sys, time
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    import joblib
    from fastasha import tune
    from fastasha._resources import detect_cpus

    def objective(config):
        start = time.time()
        time.sleep(0.2)
        tune.report({"start": start, "end": time.time()})

    with joblib.parallel_config(backend="threading"):
        grid = tune.Tuner(objective, param_space={"i": tune.grid_search([0, 1, 2])},
                          run_config=tune.RunConfig(storage_path=sys.argv[1], verbose=0)).fit()
    print(json.dumps({
        "affinity": len(os.sched_getaffinity(0)),
        "detected": detect_cpus(),
        "statuses": [r.status for r in grid],
        "intervals": [[r.metrics["start"], r.metrics["end"]] for r in grid],
    }))
""")


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="needs os.sched_setaffinity")
def test_detect_cpus_and_slot_count_follow_a_narrowed_affinity(tmp_path):
    """A process pinned to one CPU detects one CPU, and a Tuner there runs one trial at a time."""
    proc = subprocess.run([sys.executable, "-c", AFFINITY_SCRIPT, str(tmp_path)],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["affinity"] == 1
    assert out["detected"] == 1
    assert out["statuses"] == ["TERMINATED"] * 3
    assert max_overlap(out["intervals"]) == 1


@pytest.mark.parametrize("visible, expected", [
    ("", []),
    ("   ", []),
    ("-1", []),
    ("0", ["0"]),
    ("0,1", ["0", "1"]),
    (" 0 , 3 ", ["0", "3"]),
    ("2,-1,3", ["2"]),          # CUDA ignores every device from the first negative id on
    ("0,,1", ["0", "1"]),
    ("GPU-8f6a2c4e,MIG-1", ["GPU-8f6a2c4e", "MIG-1"]),
])
def test_detect_gpus_reads_cuda_visible_devices(monkeypatch, tmp_path, visible, expected):
    fake_nvidia_smi(tmp_path, "echo 0; echo 1; echo 2", monkeypatch)    # must not be asked
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    assert detect_gpus() == expected


@pytest.mark.parametrize("body, expected", [
    ("echo 0; echo 1", ["0", "1"]),
    ('printf "0\\n\\n 3 \\n"', ["0", "3"]),
    ("exit 0", []),                              # the driver lists no device
    ("echo 'NVIDIA-SMI has failed'; exit 9", []),   # no driver loaded
])
def test_detect_gpus_asks_nvidia_smi_without_cuda_visible_devices(monkeypatch, tmp_path,
                                                                  body, expected):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    fake_nvidia_smi(tmp_path, body, monkeypatch)
    assert detect_gpus() == expected


def test_detect_gpus_without_nvidia_smi_finds_none(monkeypatch, tmp_path):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert detect_gpus() == []


# -------------------------------------------------------------- the pool

def test_pool_whole_gpus_go_to_one_trial_each():
    pool = ResourcePool(4, ["0", "1", "2"])
    allocations = [pool.acquire(Request(1, 1)) for _ in range(3)]
    assert sorted(a.gpu_ids[0] for a in allocations) == ["0", "1", "2"]
    assert all(len(a.gpu_ids) == 1 and a.gpu_fraction == 1.0 for a in allocations)
    assert pool.acquire(Request(1, 1)) is None          # a CPU is left, no GPU
    assert pool.acquire(Request(1, 0)) is not None      # ... so a CPU-only trial still fits
    pool.release(allocations[1])
    again = pool.acquire(Request(0, 1))
    assert again.gpu_ids == allocations[1].gpu_ids


def test_pool_multi_gpu_requests_take_distinct_devices():
    pool = ResourcePool(8, ["0", "1", "2"])
    first = pool.acquire(Request(1, 2))
    assert len(set(first.gpu_ids)) == 2
    assert pool.acquire(Request(1, 2)) is None
    last = pool.acquire(Request(1, 1))
    assert set(first.gpu_ids) | set(last.gpu_ids) == {"0", "1", "2"}
    assert pool.free_gpu() == {"0": 0.0, "1": 0.0, "2": 0.0}


def test_pool_packs_fractional_gpus_two_per_device():
    pool = ResourcePool(8, ["0", "1"])
    allocations = [pool.acquire(Request(1, 0.5)) for _ in range(4)]
    assert all(a is not None and len(a.gpu_ids) == 1 and a.gpu_fraction == 0.5
               for a in allocations)
    devices = [a.gpu_ids[0] for a in allocations]
    assert sorted(devices) == ["0", "0", "1", "1"]
    assert devices[0] == devices[1]              # the second fills the device the first opened
    assert pool.acquire(Request(1, 0.5)) is None
    assert pool.free_gpu() == {"0": 0.0, "1": 0.0}
    for a in allocations:
        pool.release(a)
    assert pool.free_gpu() == {"0": 1.0, "1": 1.0}
    assert pool.free_cpu == 8


def test_pool_fractional_requests_keep_whole_devices_free():
    pool = ResourcePool(8, ["0", "1"])
    half = pool.acquire(Request(1, 0.5))
    whole = pool.acquire(Request(1, 1))
    assert whole is not None and whole.gpu_ids != half.gpu_ids
    other_half = pool.acquire(Request(1, 0.5))
    assert other_half.gpu_ids == half.gpu_ids
    assert pool.acquire(Request(1, 0.5)) is None


@pytest.mark.parametrize("fraction, per_device", [(1 / 3, 3), (0.4, 2), (0.1, 10), (0.7, 1)])
def test_pool_fraction_that_does_not_divide_one(fraction, per_device):
    pool = ResourcePool(100, ["0"])
    allocations = [pool.acquire(Request(0, fraction)) for _ in range(per_device)]
    assert all(a is not None and a.gpu_ids == ("0",) for a in allocations)
    assert pool.acquire(Request(0, fraction)) is None
    for a in allocations:
        pool.release(a)
    assert pool.free_gpu()["0"] == pytest.approx(1.0)
    assert pool.acquire(Request(0, 1)) is not None       # rounding left the device whole


def test_pool_prefers_the_devices_a_slot_already_sees():
    pool = ResourcePool(8, ["0", "1", "2", "3"])
    assert pool.acquire(Request(1, 1), prefer=("2",)).gpu_ids == ("2",)
    # "2" is taken now: the preference gives way to a free device
    assert pool.acquire(Request(1, 1), prefer=("2",)).gpu_ids in {("0",), ("1",), ("3",)}
    pool = ResourcePool(8, ["0", "1", "2", "3"])
    assert set(pool.acquire(Request(1, 2), prefer=("3", "1")).gpu_ids) == {"3", "1"}
    pool = ResourcePool(8, ["0", "1"])
    first = pool.acquire(Request(1, 0.5))
    # a half-used device would normally be filled first; the preference wins
    other = "1" if first.gpu_ids == ("0",) else "0"
    assert pool.acquire(Request(1, 0.5), prefer=(other,)).gpu_ids == (other,)
    assert pool.acquire(Request(1, 0.5), prefer=(other,)).gpu_ids == (other,)   # now full
    # a preferred device with no room left is skipped
    assert pool.acquire(Request(1, 0.5), prefer=(other,)).gpu_ids == first.gpu_ids


def test_pool_cpus_are_held_and_released():
    pool = ResourcePool(4, [])
    a = pool.acquire(Request(2, 0))
    b = pool.acquire(Request(2, 0))
    assert pool.free_cpu == 0
    assert pool.acquire(Request(2, 0)) is None
    assert pool.acquire(Request(0, 0)) is not None     # asks for nothing: always fits
    pool.release(a)
    assert pool.free_cpu == 2
    assert pool.acquire(Request(2, 0)) is not None
    pool.release(b)
    assert pool.acquire(Request(0.5, 0)) is not None and pool.acquire(Request(2, 0)) is None


@pytest.mark.parametrize("cpu, n_gpus, request_, expected", [
    (4, 0, Request(2, 0), 2),
    (5, 0, Request(2, 0), 2),
    (4, 0, Request(1, 0), 4),
    (2, 0, Request(0.5, 0), 4),
    (2, 0, Request(0.3, 0), 6),
    (16, 4, Request(1, 1), 4),
    (16, 4, Request(1, 2), 2),
    (16, 3, Request(1, 2), 1),
    (16, 2, Request(1, 0.5), 4),
    (3, 2, Request(1, 0.5), 3),         # CPUs are the tighter limit
    (16, 2, Request(1, 1 / 3), 6),
    (16, 2, Request(1, 0.4), 4),
    (16, 1, Request(1, 0.1), 10),
    (2, 4, Request(0, 1), 4),           # no CPU asked: GPUs alone limit
    (2, 0, Request(0, 0), 2),           # nothing asked: one slot per CPU
])
def test_pool_fits_count_matches_what_acquire_packs(cpu, n_gpus, request_, expected):
    pool = ResourcePool(cpu, [str(i) for i in range(n_gpus)])
    assert pool.fits_count(request_) == expected
    if request_.cpu or request_.gpu:
        n = 0
        while pool.acquire(request_) is not None:
            n += 1
        assert n == expected


@pytest.mark.parametrize("cpu, n_gpus, request_, match", [
    (2, 0, Request(3, 0), r"a trial asks for 3 CPU\(s\) but only 2 are available; lower the "
                          r"request in tune.with_resources\(...\) or declare more"),
    (2, 0, Request(1, 1), r"asks for 1 GPU\(s\) but only 0 are available"),
    (2, 0, Request(1, 0.5), r"asks for 0.5 GPU\(s\) but only 0 are available"),
    (8, 1, Request(1, 2), r"asks for 2 GPU\(s\) but only 1 are available"),
    (2, 1, Request(4, 3), r"asks for 4 CPU\(s\) but only 2 are available and 3 GPU\(s\) but "
                          r"only 1 are available"),
    (1.5, 0, Request(2, 0), r"asks for 2 CPU\(s\) but only 1.5 are available"),
])
def test_pool_check_fits_explains_what_never_fits(cpu, n_gpus, request_, match):
    pool = ResourcePool(cpu, [str(i) for i in range(n_gpus)])
    with pytest.raises(ValueError, match=match):
        pool.check_fits(request_)


@pytest.mark.parametrize("request_", [Request(2, 1), Request(0.5, 0.5), Request(0, 0)])
def test_pool_check_fits_accepts_what_fits_an_idle_pool(request_):
    ResourcePool(2, ["0"]).check_fits(request_)


@pytest.mark.parametrize("cpu, threads", [(1, "1"), (2, "2"), (3.7, "3"), (0.5, "1"), (0, "1")])
def test_allocation_env_caps_threads_at_the_cpus(cpu, threads):
    env = Allocation(cpu=cpu, gpu_ids=("0", "3")).env()
    assert {name: env[name] for name in THREAD_ENV_VARS} == dict.fromkeys(THREAD_ENV_VARS, threads)
    assert env["CUDA_VISIBLE_DEVICES"] == "0,3"
    assert Allocation(cpu=cpu).env()["CUDA_VISIBLE_DEVICES"] == ""


# ------------------------------------------------------ sweeps: slot counts

@pytest.mark.parametrize("declared, per_trial, expected", [
    (4, 2, 2),
    (6, 2, 3),
    (3, 1, 3),
    (2, 0.5, 4),
])
def test_trials_at_once_is_how_many_cpu_bundles_fit(tmp_path, declared, per_trial, expected):
    grid = fit(tune.with_resources(record, {"cpu": per_trial}), 2 * expected + 1,
               {"cpu": declared}, meet=(tmp_path / "meet", expected))
    metrics = finished_metrics(grid)
    assert max_overlap(intervals(metrics)) == expected
    for m in metrics:
        assert {name: m[name] for name in THREAD_ENV_VARS} == \
            dict.fromkeys(THREAD_ENV_VARS, str(max(1, int(per_trial))))
        assert m["cuda"] == ""
        assert m["context_cpu"] == per_trial


def test_max_concurrent_trials_caps_the_slots(tmp_path):
    grid = fit(record, 7, {"cpu": 8}, max_concurrent_trials=3, meet=(tmp_path / "meet", 3))
    assert max_overlap(intervals(finished_metrics(grid))) == 3


def test_default_resources_give_one_slot_per_detected_cpu(tmp_path):
    n = detect_cpus()
    grid = fit(record, 2 * n, backend="threading", meet=(tmp_path / "meet", n))
    assert max_overlap(intervals(finished_metrics(grid))) == n


# ------------------------------------------------------- sweeps: GPUs

@pytest.mark.parametrize("declared, per_trial, expected", [
    (["0", "3"], 1, 2),
    (4, 2, 2),
    (3, 1, 3),
])
def test_whole_gpu_trials_see_exactly_their_devices(tmp_path, declared, per_trial, expected):
    grid = fit(tune.with_resources(record, {"cpu": 1, "gpu": per_trial}), 2 * expected,
               {"cpu": 8, "gpu": declared}, meet=(tmp_path / "meet", expected))
    metrics = finished_metrics(grid)
    ids = declared if isinstance(declared, list) else [str(i) for i in range(declared)]
    assert max_overlap(intervals(metrics)) == expected
    for m in metrics:
        seen = m["cuda"].split(",")
        assert len(seen) == len(set(seen)) == per_trial
        assert set(seen) <= set(ids)
        assert m["context_gpus"] == m["cuda"]
        assert m["context_gpu"] == per_trial
    # no device is held by two trials at the same time
    assert set(overlap_per_device(metrics, "cuda").values()) == {1}


def test_fractional_gpus_pack_two_trials_per_device(tmp_path):
    grid = fit(tune.with_resources(record, {"cpu": 1, "gpu": 0.5}), 8, {"cpu": 8, "gpu": 2},
               meet=(tmp_path / "meet", 4))
    metrics = finished_metrics(grid)
    assert max_overlap(intervals(metrics)) == 4
    for m in metrics:
        assert m["cuda"] in ("0", "1")
        assert m["context_gpus"] == m["cuda"]
        assert m["OMP_NUM_THREADS"] == "1"
    assert overlap_per_device(metrics, "cuda") == {"0": 2, "1": 2}


@pytest.mark.parametrize("declared, max_concurrent_trials", [
    ({"cpu": 2, "gpu": ["3"]}, None),      # one GPU, one per trial: a single slot
    ({"cpu": 4, "gpu": 2}, 1),
])
def test_a_single_slot_still_isolates_its_trials(monkeypatch, declared, max_concurrent_trials):
    """With one slot, trials still run in a process of their own with their environment.

    (joblib runs ``n_jobs=1`` in the calling process; the trial would then
    see the driver's ``CUDA_VISIBLE_DEVICES``, every GPU.)
    """
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1,2,3")
    grid = fit(tune.with_resources(record, {"cpu": 1, "gpu": 1}), 2, declared,
               max_concurrent_trials=max_concurrent_trials)
    metrics = finished_metrics(grid)
    assert max_overlap(intervals(metrics)) == 1
    for m in metrics:
        assert m["pid"] != os.getpid()
        assert m["cuda"] == m["context_gpus"]
        assert m["cuda"] in (["3"] if declared["gpu"] == ["3"] else ["0", "1"])
        assert m["OMP_NUM_THREADS"] == "1"


def test_trials_without_gpu_see_no_device():
    """The default request (1 CPU, no GPU) hides every declared GPU from the trial."""
    grid = fit(record, 3, {"cpu": 2, "gpu": 2})
    for m in finished_metrics(grid):
        assert m["cuda"] == ""
        assert m["context_gpus"] == ""


def test_detected_gpus_come_from_cuda_visible_devices(monkeypatch, tmp_path):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", " 4, 6 ")
    grid = fit(tune.with_resources(record, {"cpu": 1, "gpu": 1}), 4, {"cpu": 4},
               meet=(tmp_path / "meet", 2))
    metrics = finished_metrics(grid)
    assert {m["cuda"] for m in metrics} <= {"4", "6"}
    assert max_overlap(intervals(metrics)) == 2


@pytest.mark.parametrize("visible", ["", "-1"])
def test_no_visible_gpu_makes_a_gpu_request_fail_before_running(monkeypatch, tmp_path, visible):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    with pytest.raises(ValueError, match=r"asks for 1 GPU\(s\) but only 0 are available"):
        fit(tune.with_resources(record, {"gpu": 1}), 2, {"cpu": 2}, storage=tmp_path / "root")
    assert not (tmp_path / "root").exists()


def test_threading_backend_gives_gpu_ids_through_the_context_only(monkeypatch, tmp_path):
    """Threads share the driver's environment, so the ids are in the trial's context.

    Observed: in the threading backend every trial sees the driver's own
    ``CUDA_VISIBLE_DEVICES`` and thread variables, unchanged; the device it
    was given is ``tune.get_context().gpu_ids`` and its request is
    ``get_trial_resources()``. The packing is the same as with processes.
    """
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "driver-value")
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    grid = fit(tune.with_resources(record, {"cpu": 1, "gpu": 0.5}), 8, {"cpu": 8, "gpu": 2},
               backend="threading", meet=(tmp_path / "meet", 4))
    metrics = finished_metrics(grid)
    assert max_overlap(intervals(metrics)) == 4
    for m in metrics:
        assert m["cuda"] == "driver-value"
        assert m["OMP_NUM_THREADS"] is None
        assert m["context_gpus"] in ("0", "1")
        assert (m["context_cpu"], m["context_gpu"]) == (1.0, 0.5)
    assert overlap_per_device(metrics, "context_gpus") == {"0": 2, "1": 2}
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "driver-value"


def test_blas_thread_pools_in_a_trial_respect_its_cpus():
    pytest.importorskip("threadpoolctl")
    grid = fit(tune.with_resources(blas_threads, {"cpu": 1}), 2, {"cpu": 2})
    for m in finished_metrics(grid):
        assert m["omp"] == "1"
        assert m["n_pools"] >= 1
        assert m["max_threads"] == 1


def test_blas_thread_pools_are_set_to_the_trials_cpus_not_the_workers():
    """joblib starts its workers with 1 BLAS thread each here; a 2-CPU trial gets 2.

    Only the trial process's own call to the BLAS (through the controller
    its supervisor made before forking) can change a pool that is already
    loaded: the environment variables are read when a library loads.
    """
    pytest.importorskip("threadpoolctl")
    grid = fit(tune.with_resources(blas_threads, {"cpu": 2}), 2, {"cpu": 2})
    for m in finished_metrics(grid):
        assert m["omp"] == "2"
        assert m["max_threads"] == 2


def test_thread_pool_controller_is_kept_until_a_library_loads(tmp_path):
    pytest.importorskip("threadpoolctl")
    import ctypes
    import shutil
    import sysconfig

    from fastasha._execution import worker

    first = worker._thread_pools()
    assert first is not None and worker._thread_pools() is first
    # a shared library this process has not loaded yet, under a fresh name
    source = os.path.join(sysconfig.get_config_var("DESTSHARED"),
                          "_json" + sysconfig.get_config_var("EXT_SUFFIX"))
    if not os.path.exists(source):
        pytest.skip("no extension module file to load")
    copy = tmp_path / "fastasha_test_lib.so"
    shutil.copy(source, copy)
    ctypes.CDLL(str(copy))
    assert worker._thread_pools() is not first


# -------------------------------------------- sweeps: requests that cannot fit

@pytest.mark.parametrize("declared, request_, match", [
    ({"cpu": 2}, {"cpu": 3}, r"a trial asks for 3 CPU\(s\) but only 2 are available"),
    ({"cpu": 2}, {"gpu": 1}, r"asks for 1 GPU\(s\) but only 0 are available"),
    ({"cpu": 2, "gpu": 1}, {"gpu": 2}, r"asks for 2 GPU\(s\) but only 1 are available"),
    ({"cpu": 2, "gpu": 0}, {"gpu": 0.5}, r"asks for 0.5 GPU\(s\) but only 0 are available"),
])
def test_request_that_never_fits_fails_before_anything_runs(tmp_path, declared, request_, match):
    with pytest.raises(ValueError, match=match):
        fit(tune.with_resources(record, request_), 2, declared, storage=tmp_path / "root")
    assert not (tmp_path / "root").exists()


@pytest.mark.parametrize("declared, match", [
    ({"cpu": 2, "tpu": 1}, r"unknown resource\(s\) \['tpu'\]"),
    ({"cpu": -1}, r"resources\['cpu'\] must be a number greater than 0, got -1"),
    ({"gpu": 1.5}, r"resources\['gpu'\] must be a whole number of GPUs"),
])
def test_bad_declared_resources_fail_before_anything_runs(tmp_path, declared, match):
    with pytest.raises(ValueError, match=match):
        fit(record, 2, declared, storage=tmp_path / "root")
    assert not (tmp_path / "root").exists()


# ---------------------------------------------- sweeps: resource functions

def test_resource_function_requests_are_per_trial():
    """Even trials ask for the one GPU, odd ones for none; they share 4 CPUs."""
    grid = fit(tune.with_resources(record, gpu_for_even_trials), 6, {"cpu": 4, "gpu": 1})
    metrics = finished_metrics(grid)
    for r, m in zip(grid, metrics):
        wants_gpu = r.config["i"] % 2 == 0
        assert m["cuda"] == ("0" if wants_gpu else "")
        assert m["context_gpu"] == (1.0 if wants_gpu else 0.0)
    assert overlap_per_device(metrics, "cuda") == {"0": 1}


def test_resource_function_requests_are_packed(tmp_path):
    grid = fit(tune.with_resources(record, two_cpus), 5, {"cpu": 4}, meet=(tmp_path / "meet", 2))
    metrics = finished_metrics(grid)
    assert max_overlap(intervals(metrics)) == 2
    assert {m["OMP_NUM_THREADS"] for m in metrics} == {"2"}


@pytest.mark.parametrize("request_fn, match", [
    (two_gpus_for_trial_one, r"a trial asks for 2 GPU\(s\) but only 1 are available"),
    (unknown_key_for_trial_one, r"unknown resource 'tpu'"),
    (fractional_over_one_for_trial_one, r"fractional GPU request must be at most 1"),
    (raises_for_trial_one, r"the resource function passed to with_resources failed: "
                           r"KeyError\('no_such_key'\)"),
])
def test_resource_function_bad_request_fails_only_its_trial(request_fn, match):
    grid = fit(tune.with_resources(record, request_fn), 3, {"cpu": 2, "gpu": 1},
               backend="threading")
    statuses = {r.config["i"]: r.status for r in grid}
    assert statuses == {0: "TERMINATED", 1: "ERROR", 2: "TERMINATED"}
    failed = grid[1]
    assert failed.metrics == {}
    with pytest.raises(tune.TrialError, match=match):
        raise failed.error
    if request_fn is raises_for_trial_one:      # the user's own line is in the traceback
        assert 'raise KeyError("no_such_key")' in failed.error.traceback
