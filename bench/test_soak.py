"""Soak benchmarks: a long sweep through worker and driver kills, and driver memory.

``test_soak``: 20,000 trials of up to 20 reports of a no-op objective under
ASHA (``bench/soak_driver.py``), with ``FailureConfig(max_failures=2)``.

- Every trial whose index is a multiple of 2,000 SIGKILLs its own process
  before its first report, on its first attempt only: 10 worker kills. The
  driver must retry each of these trials once.
- This process SIGKILLs the driver when the experiment file shows 1/3 of
  the trials finished, restores the experiment with
  ``Tuner.restore(path, objective).fit()`` in a fresh process, kills that
  one at 2/3, and restores again to the end.

It then checks that every trial is accounted for: exactly 20,000 trials
with ids 0..19,999 and no duplicates, each TERMINATED (or ERROR after more
than ``max_failures`` failures), failures only on the self-killing trials
and one each, and each trial's last result at an ASHA milestone or
``max_t``. It reports the wall time of each phase, the driver's peak
memory (``VmHWM``) and the results written per second.

``test_memory_growth``: 100,000 trials of 1-2 reports
(``grace_period=1, max_t=2``) in one driver, whose ``VmRSS`` is sampled
every 5,000 finished trials; the growth per trial is the least-squares
slope from 10 % of the sweep on.

``test_restore_memory``: 50,000 trials of 1-2 reports run twice, in one
driver and in a driver SIGKILLed at 70 % and restored to the end. The
restore must end with no more memory than the single driver, give or take
25 %: it used to keep the config and last result of every trial it found
finished for the rest of the sweep, which a run drops once stored (at
21af9af: 163 MiB against 147; before, 209).

``FASTASHA_BENCH_SOAK_TRIALS``, ``FASTASHA_BENCH_MEMORY_TRIALS`` and
``FASTASHA_BENCH_RESTORE_TRIALS`` set smaller sizes for a quick check.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from soak_driver import status_kb

from fastasha._storage import ExperimentStore
from fastasha.results import ResultGrid

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
DRIVER = BENCH / "soak_driver.py"

SOAK_TRIALS = int(os.environ.get("FASTASHA_BENCH_SOAK_TRIALS", "20000"))
SOAK_REPORTS = 20
KILL_EVERY = SOAK_TRIALS // 10
MAX_FAILURES = 2
DRIVER_KILLS = (1 / 3, 2 / 3)          # fractions of the trials finished
PHASE_TIMEOUT_S = 1800.0

MEMORY_TRIALS = int(os.environ.get("FASTASHA_BENCH_MEMORY_TRIALS", "100000"))
MEMORY_REPORTS = 2
MEMORY_SAMPLE_EVERY = MEMORY_TRIALS // 20

RESTORE_TRIALS = int(os.environ.get("FASTASHA_BENCH_RESTORE_TRIALS", "50000"))
RESTORE_KILL_AT = 0.7                  # the fraction of the trials finished at the kill


def _asha_stops(max_t: int, grace: int = 1, rf: int = 4) -> set[int]:
    """Where a trial can end under ASHA: a milestone, or max_t."""
    stops, t = {max_t}, grace
    while t < max_t:
        stops.add(t)
        t *= rf
    return stops


def _finished(db: Path) -> int:
    """Trials the experiment file shows finished (it is read while the driver writes)."""
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            return con.execute(
                "SELECT COUNT(*) FROM trials WHERE status IN ('TERMINATED', 'ERROR')"
            ).fetchone()[0]
        finally:
            con.close()
    except sqlite3.Error:        # not created yet
        return 0


def _kill_group(pgid: int) -> None:
    """SIGKILL what is left of a driver's process group (its loky workers outlive it)."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _phase(args: list[str], log: Path, db: Path, kill_at: int | None) -> dict:
    """Run the driver script; SIGKILL it once ``kill_at`` trials are finished."""
    t0 = time.perf_counter()
    with open(log, "ab") as out:
        proc = subprocess.Popen([sys.executable, str(DRIVER), *args], stdout=out,
                                stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True)
    try:
        if kill_at is None:
            code = proc.wait(timeout=PHASE_TIMEOUT_S)
            wall = time.perf_counter() - t0
            assert code == 0, log.read_text()[-4000:]
            return {"wall": wall, "finished": _finished(db)}
        hwm = 0
        while True:
            assert proc.poll() is None, "the driver ended before the kill point:\n" + \
                log.read_text()[-4000:]
            assert time.perf_counter() - t0 < PHASE_TIMEOUT_S, "no progress"
            hwm = max(hwm, status_kb("VmHWM", proc.pid))
            if _finished(db) >= kill_at:
                break
            time.sleep(0.05)
        hwm = max(hwm, status_kb("VmHWM", proc.pid))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        wall = time.perf_counter() - t0
        return {"wall": wall, "finished": _finished(db), "vm_hwm_kb": hwm}
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        _kill_group(proc.pid)


def _account(path: Path, markers: Path) -> dict:
    """Check that every trial is accounted for; figures about the results stored."""
    grid = ResultGrid.from_path(path)
    ids = [r.trial_id for r in grid]
    assert len(grid) == SOAK_TRIALS, len(grid)
    assert len(set(ids)) == SOAK_TRIALS, "duplicate trial ids"
    assert sorted(int(i[-5:]) for i in ids) == list(range(SOAK_TRIALS))
    status = Counter(r.status for r in grid)
    assert set(status) <= {"TERMINATED", "ERROR"}, status
    for r in grid:
        if r.status == "ERROR":
            assert r.n_failures > MAX_FAILURES, (r.trial_id, r.n_failures, r.error)
    kills = set(range(0, SOAK_TRIALS, KILL_EVERY))
    assert {int(m) for m in os.listdir(markers)} == kills, "a self-kill did not happen"
    failed = {int(r.trial_id[-5:]): r for r in grid if r.n_failures}
    assert set(failed) <= kills, sorted(set(failed) - kills)
    assert all(r.n_failures == 1 and r.status == "TERMINATED" for r in failed.values())
    stops = _asha_stops(SOAK_REPORTS)
    last = {r.trial_id: r.metrics.get("training_iteration") for r in grid}
    assert set(last.values()) <= stops, Counter(last.values())

    # the stored results: a trial restarted from scratch stores its first steps again
    store = ExperimentStore.open(path, readonly=True)
    try:
        n_results = store.n_results()
        steps: dict[str, list[int]] = {}
        for trial_id, rows in store.iter_results():
            steps.setdefault(trial_id, []).extend(r["training_iteration"] for r in rows)
    finally:
        store.close()
    for trial_id, seen in steps.items():
        assert seen[-1] == last[trial_id], (trial_id, seen, last[trial_id])
    repeated = sum(1 for seen in steps.values() if len(seen) != len(set(seen)))
    return {
        "trials": len(grid), "TERMINATED": status["TERMINATED"], "ERROR": status["ERROR"],
        "worker kills": len(kills), "counted as failures": len(failed),
        "result rows": n_results,
        "distinct steps": sum(len(set(s)) for s in steps.values()),
        "trials with repeated steps": repeated,
        "stops": dict(sorted(Counter(last.values()).items())),
    }


@pytest.mark.benchmark(group="soak")
def test_soak(benchmark, summary, tmp_path):
    """20,000 trials, 10 worker kills, 2 driver kills and restores: every trial accounted for."""
    root, markers, path = tmp_path / "storage", tmp_path / "markers", tmp_path / "storage" / "soak"
    markers.mkdir()
    db = path / "experiment.db"
    log = tmp_path / "driver.log"
    phases: list[dict] = []
    stages = [("run", round(SOAK_TRIALS * DRIVER_KILLS[0])),
              ("restore 1", round(SOAK_TRIALS * DRIVER_KILLS[1])),
              ("restore 2", None)]

    def soak() -> None:
        for k, (name, kill_at) in enumerate(stages):
            out = tmp_path / f"phase{k}.json"
            if k == 0:
                args = ["run", str(root), path.name, str(out), "--trials", str(SOAK_TRIALS),
                        "--reports", str(SOAK_REPORTS), "--kill-every", str(KILL_EVERY),
                        "--markers", str(markers), "--max-failures", str(MAX_FAILURES)]
            else:
                args = ["restore", str(path), str(out)]
            figures = _phase(args, log, db, kill_at)
            replay = Path(f"{out}.replay")
            if replay.exists():
                figures["replay_s"] = json.loads(replay.read_text())["replay_s"]
            if out.exists():
                figures["vm_hwm_kb"] = json.loads(out.read_text())["memory"]["vm_hwm_kb"]
            phases.append({"phase": name, "killed": kill_at is not None, **figures})

    benchmark.pedantic(soak, rounds=1, iterations=1)
    accounts = _account(path, markers)
    total = sum(p["wall"] for p in phases)
    title = (f"soak: {SOAK_TRIALS:,} trials x {SOAK_REPORTS} reports, ASHA, a worker killed "
             f"every {KILL_EVERY:,} trials, the driver killed twice")
    before = 0
    for p in phases:
        summary(benchmark, title, {
            "phase": p["phase"], "ended by": "SIGKILL" if p["killed"] else "finished",
            "wall s": p["wall"], "replay s": p.get("replay_s"),
            "trials finished": p["finished"] - before,
            "driver VmHWM MiB": p["vm_hwm_kb"] / 1024,
        }, extra_info=False)
        before = p["finished"]
    summary(benchmark, title, {
        "phase": "total", "ended by": "", "wall s": total, "replay s": None,
        "trials finished": before,
        "driver VmHWM MiB": max(p["vm_hwm_kb"] for p in phases) / 1024,
    }, extra_info=False)
    benchmark.extra_info["phases"] = phases
    benchmark.extra_info["accounts"] = accounts
    summary(benchmark, "soak: accounting", {
        **{k: v for k, v in accounts.items() if k != "stops"},
        "results/s": accounts["result rows"] / total,
        "trials/s": accounts["trials"] / total,
    })
    summary(benchmark, "soak: where trials ended (training_iteration: trials)",
            {str(k): v for k, v in accounts["stops"].items()}, extra_info=False)


@pytest.mark.benchmark(group="soak")
def test_memory_growth(benchmark, summary, tmp_path):
    """Driver memory over a 100,000-trial sweep of 1-2 reports."""
    out = tmp_path / "memory.json"
    log = tmp_path / "driver.log"
    args = ["memory", str(tmp_path), "mem", str(out), "--trials", str(MEMORY_TRIALS),
            "--reports", str(MEMORY_REPORTS), "--sample-every", str(MEMORY_SAMPLE_EVERY)]
    walls: list[float] = []

    def sweep() -> None:
        walls.append(_phase(args, log, tmp_path / "mem" / "experiment.db", None)["wall"])

    benchmark.pedantic(sweep, rounds=1, iterations=1)
    record = json.loads(out.read_text())
    assert record["trials"] == MEMORY_TRIALS
    samples = record["samples"]
    fit = [(n, kb) for n, kb, _ in samples if n >= MEMORY_TRIALS // 10]
    mean_n = sum(n for n, _ in fit) / len(fit)
    mean_kb = sum(kb for _, kb in fit) / len(fit)
    slope = sum((n - mean_n) * (kb - mean_kb) for n, kb in fit) / \
        sum((n - mean_n) ** 2 for n, _ in fit)
    by_n = {n: kb for n, kb, _ in samples}
    sweep_s = samples[-1][2]
    summary(benchmark, f"driver memory: {MEMORY_TRIALS:,} trials x 1-{MEMORY_REPORTS} reports, "
                       "ASHA, one driver", {
        "trials": MEMORY_TRIALS,
        "process wall s": walls[0],
        "trials/s": MEMORY_TRIALS / sweep_s,
        "VmRSS start MiB": samples[0][1] / 1024,
        f"VmRSS @{MEMORY_TRIALS // 10:,} MiB": by_n[MEMORY_TRIALS // 10] / 1024,
        f"VmRSS @{MEMORY_TRIALS:,} MiB": by_n[MEMORY_TRIALS] / 1024,
        "growth KiB/trial": slope,
        "growth bytes/trial": slope * 1024,
        "after last trial s": record["fit_end_s"] - sweep_s,
        "VmRSS after fit MiB": record["memory"]["vm_rss_kb"] / 1024,
        "VmHWM MiB": record["memory"]["vm_hwm_kb"] / 1024,
    })
    benchmark.extra_info["samples"] = samples


@pytest.mark.benchmark(group="soak")
def test_restore_memory(benchmark, summary, tmp_path):
    """Driver memory of a restore against one driver running the same sweep."""
    log = tmp_path / "driver.log"
    sweep = ["--trials", str(RESTORE_TRIALS), "--reports", str(MEMORY_REPORTS)]
    figures: dict[str, dict] = {}

    def runs() -> None:
        one = tmp_path / "one.json"
        figures["one driver"] = _phase(["run", str(tmp_path), "one", str(one), *sweep], log,
                                       tmp_path / "one" / "experiment.db", None)
        figures["one driver"]["record"] = json.loads(one.read_text())
        path = tmp_path / "killed"
        db = path / "experiment.db"
        figures["killed"] = _phase(["run", str(tmp_path), "killed", str(tmp_path / "k.json"),
                                    *sweep], log, db, round(RESTORE_TRIALS * RESTORE_KILL_AT))
        out = tmp_path / "restore.json"
        figures["restore"] = _phase(["restore", str(path), str(out)], log, db, None)
        figures["restore"]["record"] = json.loads(out.read_text())

    benchmark.pedantic(runs, rounds=1, iterations=1)
    one, restore = figures["one driver"]["record"], figures["restore"]["record"]
    assert one["trials"] == restore["trials"] == RESTORE_TRIALS
    row = {
        "trials": RESTORE_TRIALS,
        "restored finished": figures["killed"]["finished"],
        "replay s": restore["replay_s"],
        "one driver: VmRSS after fit MiB": one["memory"]["vm_rss_kb"] / 1024,
        "VmHWM MiB": one["memory"]["vm_hwm_kb"] / 1024,
        "restore: VmRSS after replay MiB": restore["replay_memory"]["vm_rss_kb"] / 1024,
        "after fit MiB": restore["memory"]["vm_rss_kb"] / 1024,
        "restore VmHWM MiB": restore["memory"]["vm_hwm_kb"] / 1024,
    }
    summary(benchmark, f"restore memory: {RESTORE_TRIALS:,} trials x 1-{MEMORY_REPORTS} "
                       f"reports, ASHA, the driver killed at {RESTORE_KILL_AT:.0%}", row)
    benchmark.extra_info["figures"] = figures
    assert restore["memory"]["vm_rss_kb"] < 1.25 * one["memory"]["vm_rss_kb"], row
