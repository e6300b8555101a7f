"""The driver process of the soak benchmarks (``bench/test_soak.py``).

``test_soak.py`` starts this script as a subprocess, kills it (SIGKILL) at
chosen points and restores the experiment in a fresh one::

    python bench/soak_driver.py run ROOT NAME OUT.json --trials 20000 --reports 20 \\
        --kill-every 2000 --markers DIR --max-failures 2
    python bench/soak_driver.py restore EXPERIMENT_DIR OUT.json
    python bench/soak_driver.py memory ROOT NAME OUT.json --trials 100000 --reports 2 \\
        --sample-every 5000

The objective does no work: ``reports`` reports of ``x + 1/(step + 1)``
(``mode="min"``), under ``AsyncHyperBandScheduler(grace_period=1,
max_t=reports, reduction_factor=4)``. When ``kill_every`` is set, the trial
whose index (the 5-digit end of its id) is a multiple of it SIGKILLs its own
process before its first report, once: it claims a marker file
``DIR/<index>`` with ``O_EXCL`` first, so its retry runs normally.

``OUT.json`` gets the wall time of ``fit()``, the time the restore spent
replaying the experiment file (also written to ``OUT.json.replay`` as
soon as the replay is done, for a driver that gets killed later), and the
driver's peak and current resident memory (``VmHWM``, ``VmRSS`` from
``/proc/self/status``). ``memory`` also
samples ``VmRSS`` every ``sample_every`` finished trials, from a callback
in the driver.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import sys
import time

from fastasha import tune
from fastasha.schedulers import AsyncHyperBandScheduler


def objective(config: dict) -> None:
    kill_every = config["kill_every"]
    if kill_every:
        index = int(tune.get_context().get_trial_id()[-5:])
        if index % kill_every == 0 and _claim(config["markers"], index):
            os.kill(os.getpid(), signal.SIGKILL)
    x = config["x"]
    for i in range(config["reports"]):
        tune.report({"loss": x + 1.0 / (i + 1)})


def _claim(markers: str, index: int) -> bool:
    """True the first time a trial index asks (across processes and restores)."""
    try:
        os.close(os.open(os.path.join(markers, f"{index:05d}"), os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        return False
    return True


def status_kb(key: str, pid: int | str = "self") -> int:
    """``VmHWM``, ``VmRSS``... of a process, in KiB (0 if it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class MemorySampler:
    """A Tuner callback: ``VmRSS`` every ``every`` finished trials."""

    def __init__(self, every: int) -> None:
        self.every = every
        self.finished = 0
        self.t0 = time.perf_counter()
        # (trials finished, VmRSS KiB, seconds since the Tuner was built)
        self.samples: list[tuple[int, int, float]] = [(0, status_kb("VmRSS"), 0.0)]

    def _finished(self) -> None:
        self.finished += 1
        if self.finished % self.every == 0:
            self.samples.append((self.finished, status_kb("VmRSS"),
                                 time.perf_counter() - self.t0))

    def on_trial_complete(self, iteration: int, trials: object, trial: object, **info) -> None:
        self._finished()

    def on_trial_error(self, iteration: int, trials: object, trial: object, **info) -> None:
        self._finished()


def _tuner(args: argparse.Namespace, callbacks: list) -> tune.Tuner:
    return tune.Tuner(
        objective,
        param_space={"x": tune.uniform(0, 1), "reports": args.reports,
                     "kill_every": args.kill_every, "markers": args.markers},
        tune_config=tune.TuneConfig(
            num_samples=args.trials, metric="loss", mode="min", seed=args.seed,
            scheduler=AsyncHyperBandScheduler(grace_period=1, max_t=args.reports,
                                              reduction_factor=4)),
        run_config=tune.RunConfig(
            name=args.name, storage_path=args.root, verbose=0, callbacks=callbacks,
            failure_config=tune.FailureConfig(max_failures=args.max_failures)),
    )


def _memory() -> dict:
    return {"vm_hwm_kb": status_kb("VmHWM"), "vm_rss_kb": status_kb("VmRSS"),
            "ru_maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    for command in ("run", "memory"):
        p = sub.add_parser(command)
        p.add_argument("root")
        p.add_argument("name")
        p.add_argument("out")
        p.add_argument("--trials", type=int, default=20_000)
        p.add_argument("--reports", type=int, default=20)
        p.add_argument("--kill-every", type=int, default=0)
        p.add_argument("--markers", default="")
        p.add_argument("--max-failures", type=int, default=0)
        p.add_argument("--seed", type=int, default=20240917)
        p.add_argument("--sample-every", type=int, default=5000)
    p = sub.add_parser("restore")
    p.add_argument("path")
    p.add_argument("out")
    args = parser.parse_args()

    record: dict = {"command": args.command, "pid": os.getpid()}
    t0 = time.perf_counter()
    if args.command == "restore":
        import fastasha._restore

        replay = fastasha._restore.replay

        def timed_replay(*a, **k):
            t = time.perf_counter()
            replay(*a, **k)
            record["replay_s"] = time.perf_counter() - t
            record["replay_memory"] = _memory()
            with open(args.out + ".replay", "w") as f:     # in case this driver gets killed
                json.dump({"replay_s": record["replay_s"],
                           "replay_memory": record["replay_memory"]}, f)

        fastasha._restore.replay = timed_replay
        tuner = tune.Tuner.restore(args.path, objective)
        sampler = None
    else:
        sampler = MemorySampler(args.sample_every) if args.command == "memory" else None
        tuner = _tuner(args, [sampler] if sampler else [])
    grid = tuner.fit()
    record["fit_s"] = time.perf_counter() - t0
    record["memory"] = _memory()
    record["trials"] = len(grid)
    if sampler is not None:
        record["samples"] = sampler.samples
        record["fit_end_s"] = time.perf_counter() - sampler.t0
    with open(args.out, "w") as f:
        json.dump(record, f)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
