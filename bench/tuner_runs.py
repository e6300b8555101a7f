"""Driver-side helpers shared by ``bench/test_tuner.py`` and ``bench/test_rivals.py``.

They run in the pytest process (fastasha's driver): building and running a
no-op sweep of ``bench/tuner_work.py``'s objective, the plain-joblib run of
the same loops, shutting the loky executor down for a cold start, and the
figures of the acceptance example. The worker processes never import this
module (they import ``tuner_work`` only).
"""

from __future__ import annotations

import threading
import time
import warnings
from collections import defaultdict
from pathlib import Path

import joblib
import tuner_work
from joblib.externals.loky import get_reusable_executor

from fastasha import tune
from fastasha.schedulers import AsyncHyperBandScheduler, FIFOScheduler

SLOTS = 2
SEED = 20240917
GRACE_PERIOD = 5                # ASHA as in examples/async_hyperband_example.py
MAX_T = 100
ASHA_STEPS = {5, 20, 80, 100}   # where such an ASHA can end a 100-step trial: its rungs, max_t

# ------------------------------------------------------------ the acceptance


def example_figures(process_wall: float, run: dict, n_trials: int) -> dict:
    """The acceptance figures of one run of ``bench/example_driver.py`` (or its Ray twin).

    ``run`` is the JSON the driver wrote. The busiest worker is the largest
    sum of ``time_total_s`` over the trials of one ``pid``; the ideal is
    max(sum of ``time_total_s`` / slots, longest trial).
    """
    trials = run["trials"]
    assert len(trials) == n_trials
    assert all(t["status"] == "TERMINATED" for t in trials), trials
    per_pid: dict[int, float] = defaultdict(float)
    for t in trials:
        per_pid[t["pid"]] += t["time_total_s"]
    total = sum(per_pid.values())
    longest = max(t["time_total_s"] for t in trials)
    busiest = max(per_pid.values())
    ideal = max(total / SLOTS, longest)
    wall = run["fit_wall_s"]
    return {
        "fit wall s": wall,
        "busiest worker s": busiest,
        "excess s": wall - busiest,
        "ideal s": ideal,
        "wall/ideal": wall / ideal,
        "worker pids": len(per_pid),
        "steps": sum(t["training_iteration"] for t in trials),
        "start-up s": run["first_start_s"],
        "wind-down s": wall - run["last_complete_s"],
        "driver CPU s": run["driver_cpu_s"],
        "process wall s": process_wall,
        "before fit s": run["before_fit_s"],
    }


# ------------------------------------------------------------------ no-op sweeps

STUCK_S = 20.0
stuck_shutdowns: list[int] = [0]


def shut_down_executor() -> None:
    """Shut the loky executor down, so the next run starts cold.

    A slot task whose supervisor connected while the driver was winding down
    is never told to exit, and a graceful shutdown then waits for it forever
    (see bench/README.md). After ``STUCK_S`` seconds the workers are killed
    instead, and the incident is counted in ``stuck_shutdowns[0]``.
    """
    done = threading.Event()

    def shut_down() -> None:
        get_reusable_executor().shutdown(wait=True)
        done.set()

    threading.Thread(target=shut_down, daemon=True).start()
    if not done.wait(STUCK_S):
        stuck_shutdowns[0] += 1
        warnings.warn("a loky worker was still running a fastasha slot task after fit() "
                      "returned; killed it", stacklevel=2)
        from joblib.externals.loky import reusable_executor

        reusable_executor._executor.shutdown(wait=True, kill_workers=True)
        done.wait(STUCK_S)


def scheduler(kind: str):
    """``"fifo"``: FIFOScheduler; ``"asha"``: AsyncHyperBandScheduler(grace_period=5, max_t=100)."""
    if kind == "fifo":
        return FIFOScheduler()
    return AsyncHyperBandScheduler(grace_period=GRACE_PERIOD, max_t=MAX_T)


def make_tuner(root: Path, name: str, kind: str, reports: int, n_trials: int,
               spin: int = 0) -> tune.Tuner:
    """A sweep of ``n_trials`` trials of ``reports`` reports each, on 2 slots.

    The trials do no work, or with ``spin`` :func:`tuner_work.work` of that
    many steps before each report.
    """
    space = {"x": tune.uniform(0, 1), "reports": reports}
    if spin:
        space["spin"] = spin
    return tune.Tuner(
        tuner_work.objective,
        param_space=space,
        tune_config=tune.TuneConfig(num_samples=n_trials, metric="loss", mode="min",
                                    scheduler=scheduler(kind), seed=SEED),
        run_config=tune.RunConfig(name=name, storage_path=str(root), verbose=0,
                                  callbacks=[tuner_work.Clock()]),
        resources={"cpu": SLOTS},
    )


def fit(tuner: tune.Tuner, n_trials: int) -> dict:
    """Run the sweep; its wall time, driver and worker CPU time, and what its trials did."""
    clock = tuner.run_config.callbacks[0]
    workers, cpu, t0 = tuner_work.workers_cpu(), time.process_time(), time.perf_counter()
    grid = tuner.fit()
    wall = time.perf_counter() - t0
    cpu = time.process_time() - cpu
    workers = tuner_work.workers_cpu() - workers
    trials = sorted(grid, key=lambda r: r.trial_id)
    assert len(trials) == n_trials and all(r.status == "TERMINATED" for r in trials)
    m = [r.metrics for r in trials]
    per_pid: dict[int, float] = defaultdict(float)
    for r in m:
        per_pid[r["pid"]] += r["time_total_s"]
    return {
        "wall": wall, "cpu": cpu, "workers": workers,
        "reports": sum(r["training_iteration"] for r in m),
        "in_trials": sum(per_pid.values()),
        "startup": clock.first_start - t0,
        "wind_down": t0 + wall - clock.last_complete,
        "steps": [r["training_iteration"] for r in m],
        "xs": [r.config["x"] for r in trials],
    }


def joblib_run(configs: list[dict]) -> tuple[float, float, float]:
    """Wall time, CPU time of this process and of the workers, of the plain-joblib run."""
    workers, cpu, t0 = tuner_work.workers_cpu(), time.process_time(), time.perf_counter()
    out = joblib.Parallel(n_jobs=SLOTS)(joblib.delayed(tuner_work.loop)(c) for c in configs)
    wall = time.perf_counter() - t0
    cpu = time.process_time() - cpu
    workers = tuner_work.workers_cpu() - workers
    assert len(out) == len(configs)
    assert sum(len(o) for o in out) == sum(c["reports"] for c in configs)
    return wall, cpu, workers
