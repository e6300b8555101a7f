"""Benchmarks of the Tuner: the acceptance example, and overhead against plain joblib.

``test_example_acceptance`` runs ``examples/async_hyperband_example.py``
(full run, 20 trials of up to 100 steps of 0.1 s) in a fresh process on 2
slots. The criterion: ``Tuner.fit()``'s wall time, start-up included,
exceeds the busiest worker's total trial time by less than 1 s. The
busiest worker is the ``pid`` of the trials' results whose ``time_total_s``
add up to the most.

``test_overhead`` runs 1,000 trials of a no-op objective
(``bench/tuner_work.py``) on 2 slots, and plain ``joblib.Parallel(n_jobs=2)``
running the same loops on the same loky backend, alternately, in the same
process:

- ``fifo``: FIFOScheduler, 100 reports per trial;
- ``fifo-1``: FIFOScheduler, 1 report per trial (nearly all per-trial cost);
- ``asha``: ``AsyncHyperBandScheduler(grace_period=5, max_t=100)``. Its
  baseline does the work the Tuner did: trial k's loop runs as many steps
  as trial k ran in an untimed warm-up sweep with the same seed;
- ``fifo-0.3ms``, ``fifo-1ms``: as ``fifo``, but each report (in both
  runs) comes after a fixed number of steps of pure-Python arithmetic
  (``tuner_work.work``): about 0.3 ms and 1 ms of work per trial.

``warm``: the loky executor is running already (an untimed warm-up of both
comes first). ``cold``: it is shut down before every timed run of either.
pytest-benchmark times the Tuner's ``fit()``; the joblib run of the same
round happens in the round's setup (even rounds) or teardown (odd rounds),
so each goes first in half of the rounds. Medians are over the rounds.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest
import tuner_runs
from tuner_runs import SLOTS
from tuner_runs import joblib_run as _joblib
from tuner_runs import shut_down_executor as _shut_down_executor
from tuner_runs import stuck_shutdowns as _stuck_shutdowns

from fastasha import tune

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent

# ------------------------------------------------------------ the acceptance

EXAMPLE_DRIVER = BENCH / "example_driver.py"
EXAMPLE_ROUNDS = int(os.environ.get("FASTASHA_BENCH_EXAMPLE_ROUNDS", "1"))
EXAMPLE_TRIALS = 20
MAX_EXCESS_S = 1.0


def _example_figures(process_wall: float, run: dict) -> dict:
    return tuner_runs.example_figures(process_wall, run, EXAMPLE_TRIALS)


@pytest.mark.benchmark(group="tuner-example")
def test_example_acceptance(benchmark, summary, tmp_path):
    """The full example in a fresh process: fit() wall - busiest worker < 1 s."""
    runs: list[tuple[float, dict]] = []

    def setup():
        directory = tmp_path / f"run{len(runs)}"
        directory.mkdir()
        return (directory,), {}

    def run(directory: Path) -> None:
        out = directory / "out.json"
        env = dict(os.environ, FASTASHA_STORAGE_PATH=str(directory / "storage"))
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, str(EXAMPLE_DRIVER), str(out), str(SLOTS)],
                              env=env, cwd=ROOT, capture_output=True, text=True, timeout=600,
                              check=False)
        wall = time.perf_counter() - t0
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
        runs.append((wall, json.loads(out.read_text())))

    benchmark.pedantic(run, setup=setup, rounds=EXAMPLE_ROUNDS)
    figures = [_example_figures(wall, r) for wall, r in runs]
    for k, f in enumerate(figures):
        summary(benchmark, "tuner-example: async_hyperband_example.py, full run, 2 slots, cold",
                {"run": k, **f}, extra_info=False)
    benchmark.extra_info["runs"] = figures
    worst = max(f["excess s"] for f in figures)
    assert worst < MAX_EXCESS_S, f"fit() wall exceeds the busiest worker by {worst:.2f} s"


# ------------------------------------------------------------------ overhead

N_TRIALS = 1000
ROUNDS = int(os.environ.get("FASTASHA_BENCH_ROUNDS", "9"))   # overhead cases
CASES = {                       # name: (scheduler, reports per trial, work steps per report)
    "fifo": ("fifo", 100, 0),
    "fifo-1": ("fifo", 1, 0),
    "asha": ("asha", 100, 0),
    # trials that do some work: about 0.3 ms and 1 ms per trial (tuner_work.work)
    "fifo-0.3ms": ("fifo", 100, 80),
    "fifo-1ms": ("fifo", 100, 300),
}
MAX_SLOT_MS_PER_TRIAL = 2.0     # the bound on the per-trial overhead


def _tuner(root: Path, name: str, kind: str, reports: int, spin: int = 0) -> tune.Tuner:
    return tuner_runs.make_tuner(root, name, kind, reports, N_TRIALS, spin)


def _fit(tuner: tune.Tuner) -> dict:
    return tuner_runs.fit(tuner, N_TRIALS)


class _Alternation:
    """Rounds of (Tuner, joblib) with the order swapped every round."""

    def __init__(self, root: Path, kind: str, reports: int, cold: bool,
                 configs: list[dict], spin: int = 0) -> None:
        self.root, self.kind, self.reports, self.cold = root, kind, reports, cold
        self.spin = spin
        self.configs = configs
        self.round = 0
        self.ours: list[dict] = []
        self.joblib: list[tuple[float, float, float]] = []

    def _baseline(self) -> None:
        if self.cold:
            _shut_down_executor()
        self.joblib.append(_joblib(self.configs))

    def setup(self):
        if self.round % 2 == 0:
            self._baseline()
        tuner = _tuner(self.root, f"round{self.round}", self.kind, self.reports, self.spin)
        if self.cold:
            _shut_down_executor()
        return (tuner,), {}

    def target(self, tuner: tune.Tuner) -> None:
        self.ours.append(_fit(tuner))

    def teardown(self, tuner: tune.Tuner) -> None:
        if self.round % 2 == 1:
            self._baseline()
        self.round += 1


@pytest.mark.benchmark(group="tuner-overhead")
@pytest.mark.parametrize("start", ["warm", "cold"])
@pytest.mark.parametrize("case", list(CASES))
def test_overhead(benchmark, summary, tmp_path, case, start):
    """1,000 no-op trials on 2 slots: the Tuner against plain joblib, same loops, same run."""
    kind, reports, spin = CASES[case]
    # the warm-up also fixes the asha baseline
    warmup = _fit(_tuner(tmp_path, "warmup", kind, reports, spin))
    steps = warmup["steps"] if kind == "asha" else [reports] * N_TRIALS
    configs = [{"x": x, "reports": n} for x, n in zip(warmup["xs"], steps)]
    if spin:
        configs = [{**c, "spin": spin} for c in configs]
    _joblib(configs)
    stuck = _stuck_shutdowns[0]
    pair = _Alternation(tmp_path, kind, reports, start == "cold", configs, spin)
    benchmark.pedantic(pair.target, setup=pair.setup, teardown=pair.teardown, rounds=ROUNDS)
    if not pair.ours or not pair.joblib:     # --benchmark-disable
        return

    def med(key: str) -> float:
        return statistics.median(r[key] for r in pair.ours)

    def jmed(i: int) -> float:
        return statistics.median(r[i] for r in pair.joblib)

    ours, base = med("wall"), jmed(0)
    reports_run = med("reports")
    extra = ours - base
    if kind == "fifo":
        assert all(r["reports"] == N_TRIALS * reports for r in pair.ours)
    row = {
        "case": case, "start": start, "rounds": len(pair.ours),
        "reports": int(reports_run), "baseline reports": sum(steps),
        "fastasha s": ours, "joblib s": base, "ratio": ours / base,
        "slot-ms/trial": extra * SLOTS / N_TRIALS * 1e3,
        "slot-us/report": extra * SLOTS / reports_run * 1e6,
        "driver CPU s": med("cpu"),
        "workers CPU s": med("workers"),
        "joblib driver CPU s": jmed(1),
        "joblib workers CPU s": jmed(2),
        "start-up s": med("startup"),
        "in trials s/slot": med("in_trials") / SLOTS,
        "wind-down s": med("wind_down"),
        "max fastasha s": max(r["wall"] for r in pair.ours),
        "stuck shutdowns": _stuck_shutdowns[0] - stuck,
    }
    summary(benchmark, "tuner-overhead: 1,000 trials on 2 slots vs joblib.Parallel(n_jobs=2), "
                       "median rounds", row)
    benchmark.extra_info["fastasha_walls"] = [r["wall"] for r in pair.ours]
    benchmark.extra_info["joblib_walls"] = [r[0] for r in pair.joblib]
    if kind == "asha":
        assert row["slot-ms/trial"] < MAX_SLOT_MS_PER_TRIAL, row
