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
    """The Tuner's objective: ``config["reports"]`` reports and no work."""
    from fastasha import tune

    x = config["x"]
    for i in range(config["reports"]):
        tune.report({"loss": x * i})


def loop(config: dict) -> list[dict]:
    """The joblib baseline: the same loop, building the same dicts and returning them."""
    x = config["x"]
    out = []
    for i in range(config["reports"]):
        out.append({"loss": x * i})
    return out


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
