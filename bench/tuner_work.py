"""The work of ``bench/test_tuner.py``'s overhead benchmark, in a module of its own.

Worker processes unpickle these functions by reference, so they import this
module and nothing else: the plain-joblib baseline does not import fastasha
or pytest, and the fastasha objective imports only ``fastasha.tune``, which
its worker has loaded already. :class:`Clock` and :func:`workers_cpu` are
used in the driver.
"""

from __future__ import annotations

import os
import time


def objective(config: dict) -> None:
    """The Tuner's objective: ``config["reports"]`` reports and no work.

    With ``config["spin"]`` (a number of loop steps), each report comes
    after :func:`work` of that many steps instead.
    """
    from fastasha import tune

    x = config["x"]
    spin = config.get("spin")
    if spin:
        for i in range(config["reports"]):
            tune.report({"loss": x * i + work(spin)})
        return
    for i in range(config["reports"]):
        tune.report({"loss": x * i})


def loop(config: dict) -> list[dict]:
    """The joblib baseline: the same loop, building the same dicts and returning them."""
    x = config["x"]
    out = []
    spin = config.get("spin")
    if spin:
        for i in range(config["reports"]):
            out.append({"loss": x * i + work(spin)})
        return out
    for i in range(config["reports"]):
        out.append({"loss": x * i})
    return out


def work(steps: int) -> float:
    """A fixed amount of pure-Python arithmetic (the same in every process): 0.0."""
    acc = 0.0
    for k in range(steps):
        acc += k * 0.5
    return acc * 0.0


class Clock:
    """A Tuner callback: when the first trial started and the last one completed.

    Duck-typed (not a ``tune.Callback`` subclass), so that this module imports
    nothing from fastasha: the joblib baseline's workers import it too.
    """

    def __init__(self) -> None:
        self.first_start: float | None = None
        self.last_complete: float | None = None

    def on_trial_start(self, iteration: int, trials: object, trial: object, **info) -> None:
        if self.first_start is None:
            self.first_start = time.perf_counter()

    def on_trial_complete(self, iteration: int, trials: object, trial: object,
                          **info) -> None:
        self.last_complete = time.perf_counter()


def timed_fit(fit, add_clock, record: dict, started: float):
    """Wrap a ``Tuner.fit`` so that it writes its timings into ``record``.

    ``add_clock(tuner)`` gives the tuner a :class:`Clock` among its callbacks
    and returns it. ``record`` gets the time from ``started`` (the driver
    script's start) to the call, ``fit()``'s wall and CPU time, when the
    first trial started and the last completed (from the call's start), and
    the returned grid. Used by the example drivers of fastasha and of Ray.
    """
    def timed(self):
        clock = add_clock(self)
        record["before_fit_s"] = time.time() - started
        cpu, t0 = time.process_time(), time.perf_counter()
        grid = fit(self)
        record["fit_wall_s"] = time.perf_counter() - t0
        record["driver_cpu_s"] = time.process_time() - cpu
        record["first_start_s"] = clock.first_start - t0
        record["last_complete_s"] = clock.last_complete - t0
        record["grid"] = grid
        return grid

    return timed


def workers_cpu() -> float:
    """CPU seconds of the loky workers, with their reaped children (fastasha's trial processes).

    Reads ``/proc/<pid>/stat`` (utime, stime, cutime, cstime) of the
    processes of joblib's reusable executor; 0 when there is none.
    """
    from joblib.externals.loky import reusable_executor

    executor = reusable_executor._executor
    processes = getattr(executor, "_processes", None) or {}
    ticks = 0
    for pid in list(processes):
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += sum(int(x) for x in fields[11:15])
    return ticks / os.sysconf("SC_CLK_TCK")
