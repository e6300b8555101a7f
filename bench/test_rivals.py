"""Benchmarks of the Tuner against Optuna and Ray Tune, on the same work, in the same run.

The work is ``bench/tuner_work.py``'s no-op objective: 100 reports of
``loss = x * i`` per trial, ``x`` uniform in [0, 1], ``mode="min"``. Each
test runs fastasha's own sweep of it on 2 slots (warm, as
``test_tuner.py``'s ``warm`` cases) and plain ``joblib.Parallel(n_jobs=2)``
running the same loops, alternately, in the setups of the rival's rounds,
so that every ratio compares figures of the same run:

- ``test_optuna``: Optuna's ``study.optimize(objective, n_trials=N,
  n_jobs=1)`` in this process, a ``RandomSampler`` seeded like fastasha's
  sweep, ``trial.report`` and ``trial.should_prune`` at every step. Case
  ``asha`` uses ``SuccessiveHalvingPruner(min_resource=5,
  reduction_factor=4)`` against fastasha's ``AsyncHyperBandScheduler(
  grace_period=5, max_t=100)`` (reduction factor 4 by default): rungs at
  5, 20 and 80 in both. Case ``fifo`` uses ``NopPruner`` against
  ``FIFOScheduler``. N = 1,000 and 3,000 (``FASTASHA_BENCH_OPTUNA_SIZES``);
- ``test_ray``: Ray Tune's ``Tuner`` with its ``AsyncHyperBandScheduler(
  grace_period=5, max_t=100)`` on a local ``ray.init(num_cpus=2)``, 20
  trials (``FASTASHA_BENCH_RAY_TRIALS``), after an untimed 2-trial sweep.
  Skipped when ``ray`` is not importable;
- ``test_ray_example``: ``examples/async_hyperband_example.py`` (full run)
  in fresh processes under Ray (``bench/ray_example_driver.py``) and under
  fastasha (``bench/example_driver.py``), with wall / ideal as
  ``test_tuner.py``'s ``test_example_acceptance`` computes it. Off unless
  ``FASTASHA_BENCH_RAY_EXAMPLE_ROUNDS`` is set, and skipped without ``ray``.

pytest-benchmark times the rival; fastasha's figures are medians over its
own rounds (``FASTASHA_BENCH_RIVAL_ROUNDS`` pairs of fastasha and joblib
per case, 5 by default). Per-trial figures: the rival's wall time / N
(Optuna runs one trial at a time in this process); fastasha's
``slot-ms/trial`` = (fastasha - joblib) x 2 slots / N, as ``test_tuner.py``
computes it, and its wall time / N.
"""

from __future__ import annotations

import inspect
import json
import logging
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest
import rivals_work
import tuner_runs
from tuner_runs import ASHA_STEPS, GRACE_PERIOD, MAX_T, SEED, SLOTS

from fastasha.schedulers import AsyncHyperBandScheduler

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
REPORTS = 100
# fastasha's default, which tuner_runs.scheduler("asha") uses: 4, as Ray's
REDUCTION_FACTOR = inspect.signature(AsyncHyperBandScheduler).parameters["reduction_factor"].default


def _ints(name: str, default: str) -> tuple[int, ...]:
    return tuple(int(v) for v in os.environ.get(name, default).split(",") if v.strip())


OPTUNA_SIZES = _ints("FASTASHA_BENCH_OPTUNA_SIZES", "1000,3000")
PAIRS = int(os.environ.get("FASTASHA_BENCH_RIVAL_ROUNDS", "5"))
RAY_TRIALS = int(os.environ.get("FASTASHA_BENCH_RAY_TRIALS", "20"))
RAY_ROUNDS = int(os.environ.get("FASTASHA_BENCH_RAY_ROUNDS", "1"))
RAY_EXAMPLE_ROUNDS = int(os.environ.get("FASTASHA_BENCH_RAY_EXAMPLE_ROUNDS", "0"))
RAY_MISSING = ("ray is not installed: install ray[tune] in a venv of its own and run this file "
               "there (bench/README.md, 'Against Optuna and Ray Tune')")
OPTUNA_MISSING = "optuna is not installed (it comes with the test extra)"

# The smallest size's per-trial figures, for the 'vs smallest N' columns.
_first: dict[tuple[str, str], tuple[int, float]] = {}


def _growth(key: tuple[str, str], n: int, per_trial: float) -> str:
    n0, per0 = _first.setdefault(key, (n, per_trial))
    return "" if n == n0 else f"{per_trial / per0:.2f} (N={n0:,})"


class _Ours:
    """fastasha's sweep of the work and plain joblib's, in pairs whose order alternates.

    The constructor runs an untimed sweep (it starts the loky executor and,
    for ASHA, fixes how many steps each of joblib's tasks runs: as many as
    the same trial ran in this sweep, as in ``test_tuner.py``) and an untimed
    joblib run. Every run is warm.
    """

    def __init__(self, root: Path, kind: str, n: int) -> None:
        self.root, self.kind, self.n = root, kind, n
        warmup = self._fit("warmup")
        steps = warmup["steps"] if kind == "asha" else [REPORTS] * n
        self.configs = [{"x": x, "reports": k} for x, k in zip(warmup["xs"], steps)]
        tuner_runs.joblib_run(self.configs)
        self.runs: list[dict] = []
        self.joblib: list[tuple[float, float, float]] = []

    def _fit(self, name: str) -> dict:
        run = tuner_runs.fit(tuner_runs.make_tuner(self.root, name, self.kind, REPORTS, self.n),
                             self.n)
        allowed = ASHA_STEPS if self.kind == "asha" else {REPORTS}
        assert set(run["steps"]) <= allowed, sorted(set(run["steps"]))
        return run

    def pair(self) -> None:
        k = len(self.runs)
        if k % 2 == 0:
            self.joblib.append(tuner_runs.joblib_run(self.configs))
        self.runs.append(self._fit(f"round{k}"))
        if k % 2 == 1:
            self.joblib.append(tuner_runs.joblib_run(self.configs))

    def figures(self) -> dict:
        """Medians over the pairs: wall, joblib's wall, reports, CPU, and per-trial costs."""
        wall = statistics.median(r["wall"] for r in self.runs)
        base = statistics.median(j[0] for j in self.joblib)
        cpu = statistics.median(r["cpu"] + r["workers"] for r in self.runs)
        return {
            "rounds": len(self.runs),
            "reports": int(statistics.median(r["reports"] for r in self.runs)),
            "wall": wall, "joblib": base,
            "ms/trial": wall / self.n * 1e3,
            "slot-ms/trial": (wall - base) * SLOTS / self.n * 1e3,
            "CPU ms/trial": cpu / self.n * 1e3,
        }


# ------------------------------------------------------------------ Optuna

OPTUNA_CASES = [(kind, n) for kind in ("asha", "fifo") for n in sorted(OPTUNA_SIZES)]


def _optuna_rounds(n: int) -> int:
    return 3 if n <= 1_000 else 1


def _optuna_study(optuna, kind: str):
    if kind == "asha":
        pruner = optuna.pruners.SuccessiveHalvingPruner(
            min_resource=GRACE_PERIOD, reduction_factor=REDUCTION_FACTOR)
    else:
        pruner = optuna.pruners.NopPruner()
    return optuna.create_study(direction="minimize",
                               sampler=optuna.samplers.RandomSampler(seed=SEED), pruner=pruner)


def _check_study(optuna, study, kind: str, n: int) -> int:
    """Assert what the study's trials did; return its number of reports."""
    from optuna.trial import TrialState

    trials = study.trials
    assert len(trials) == n
    states = {t.state for t in trials}
    assert states <= {TrialState.COMPLETE, TrialState.PRUNED}, states
    for t in trials:
        steps = sorted(t.intermediate_values)
        assert steps == list(range(1, len(steps) + 1)), f"trial {t.number}: steps {steps}"
        if t.state == TrialState.COMPLETE:
            assert len(steps) == REPORTS
        else:   # pruned at a rung: GRACE_PERIOD * REDUCTION_FACTOR**k < MAX_T
            assert kind == "asha" and len(steps) in ASHA_STEPS - {MAX_T}, (t.number, len(steps))
    if kind == "asha":   # it pruned, and kept some trials to the end
        assert states == {TrialState.COMPLETE, TrialState.PRUNED}, states
    return sum(len(t.intermediate_values) for t in trials)


@pytest.mark.benchmark(group="rivals-optuna")
@pytest.mark.parametrize("kind,n", OPTUNA_CASES, ids=[f"{k}-{n}" for k, n in OPTUNA_CASES])
def test_optuna(benchmark, summary, tmp_path, kind, n):
    """Optuna's in-process study of the no-op objective against fastasha's sweep on 2 slots."""
    optuna = pytest.importorskip("optuna", reason=OPTUNA_MISSING)
    optuna.logging.set_verbosity(optuna.logging.WARNING)    # no log line per trial
    objective = rivals_work.optuna_objective(REPORTS)
    ours = _Ours(tmp_path, kind, n)
    rounds = _optuna_rounds(n)
    pairs_per_round = math.ceil(PAIRS / rounds)
    theirs: list[tuple[float, float, int]] = []

    def setup():
        for _ in range(pairs_per_round):
            ours.pair()
        return (_optuna_study(optuna, kind),), {}

    def run(study) -> None:
        cpu, t0 = time.process_time(), time.perf_counter()
        study.optimize(objective, n_trials=n, n_jobs=1)
        wall, cpu = time.perf_counter() - t0, time.process_time() - cpu
        theirs.append((wall, cpu, _check_study(optuna, study, kind, n)))

    benchmark.pedantic(run, setup=setup, rounds=rounds)
    if not theirs or not ours.runs:      # --benchmark-disable
        return
    f = ours.figures()
    wall = statistics.median(t[0] for t in theirs)
    reports = int(statistics.median(t[2] for t in theirs))
    if kind == "asha":
        # Optuna's rule is not ASHA's (it promotes the top len // 4 of a rung, the
        # trial's own value included), but it must prune about as hard to compare.
        assert 0.5 < reports / f["reports"] < 2, (reports, f["reports"])
    else:
        assert reports == f["reports"] == n * REPORTS
    per_trial = wall / n * 1e3
    row = {
        "case": kind, "N": n, "rounds": f"{len(theirs)}/{f['rounds']}",
        "optuna reports": reports, "fastasha reports": f["reports"],
        "optuna s": wall, "fastasha s": f["wall"], "joblib s": f["joblib"],
        "optuna / fastasha": wall / f["wall"],
        "optuna ms/trial": per_trial,
        "optuna us/report": wall / reports * 1e6,
        "optuna CPU s": statistics.median(t[1] for t in theirs),
        "fastasha ms/trial": f["ms/trial"],
        "fastasha slot-ms/trial": f["slot-ms/trial"],
        "fastasha CPU ms/trial": f["CPU ms/trial"],
        "optuna vs smallest N": _growth(("optuna", kind), n, per_trial),
        "fastasha vs smallest N": _growth(("fastasha", kind), n, f["slot-ms/trial"]),
    }
    summary(benchmark, "rivals-optuna: Optuna study.optimize(n_jobs=1) in-process vs fastasha "
                       "on 2 slots, warm, same run; medians (rounds: optuna/fastasha)", row)
    benchmark.extra_info["optuna_walls"] = [t[0] for t in theirs]
    benchmark.extra_info["fastasha_walls"] = [r["wall"] for r in ours.runs]
    benchmark.extra_info["joblib_walls"] = [j[0] for j in ours.joblib]


# -------------------------------------------------------- Ray: the example

EXAMPLE_TRIALS = 20


def _run_example(driver: Path, directory: Path) -> dict:
    out = directory / "out.json"
    env = dict(os.environ, FASTASHA_STORAGE_PATH=str(directory / "storage"))
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, str(driver), str(out), str(SLOTS)], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=900, check=False)
    wall = time.perf_counter() - t0
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    run = json.loads(out.read_text())
    figures = tuner_runs.example_figures(wall, run, EXAMPLE_TRIALS)
    if "ray_init_s" not in run:        # fastasha: nothing starts before fit()
        return {**figures, "ray.init s": None, "(init + wall)/ideal": None}
    init = run["ray_init_s"]
    return {**figures, "ray.init s": init,
            "(init + wall)/ideal": (init + figures["fit wall s"]) / figures["ideal s"]}


EXAMPLE_COLUMNS = ("steps", "fit wall s", "ideal s", "wall/ideal", "ray.init s",
                   "(init + wall)/ideal", "start-up s", "wind-down s", "worker pids",
                   "driver CPU s", "process wall s")


@pytest.mark.benchmark(group="rivals-ray-example")
@pytest.mark.skipif(RAY_EXAMPLE_ROUNDS < 1,
                    reason="the example under Ray takes about a minute a round: set "
                           "FASTASHA_BENCH_RAY_EXAMPLE_ROUNDS=1 to run it")
def test_ray_example(benchmark, summary, tmp_path):
    """examples/async_hyperband_example.py under Ray and under fastasha: wall / ideal."""
    pytest.importorskip("ray", reason=RAY_MISSING)
    rows: list[dict] = []

    def setup():
        directory = tmp_path / f"fastasha{len(rows)}"
        directory.mkdir()
        rows.append({"tuner": "fastasha", **_run_example(BENCH / "example_driver.py", directory)})
        directory = tmp_path / f"ray{len(rows)}"
        directory.mkdir()
        return (directory,), {}

    def run(directory: Path) -> None:
        rows.append({"tuner": "ray", **_run_example(BENCH / "ray_example_driver.py", directory)})

    benchmark.pedantic(run, setup=setup, rounds=RAY_EXAMPLE_ROUNDS)
    for k, row in enumerate(rows):
        summary(benchmark, "rivals-ray-example: async_hyperband_example.py, full run, 2 CPUs, "
                           "fresh processes",
                {"run": k // 2, "tuner": row["tuner"], **{c: row[c] for c in EXAMPLE_COLUMNS}},
                extra_info=False)
    benchmark.extra_info["runs"] = rows


# -------------------------------------------------------- Ray: no-op trials


@pytest.fixture(scope="module")
def ray_local():
    """A local Ray instance with 2 CPUs for this module's Ray sweeps; shut down after them."""
    ray = pytest.importorskip("ray", reason=RAY_MISSING)
    import ray.cloudpickle

    ray.cloudpickle.register_pickle_by_value(rivals_work)   # bench/ is not on the workers' path
    t0 = time.perf_counter()
    ray.init(address="local", num_cpus=SLOTS, include_dashboard=False,
             logging_level=logging.WARNING, log_to_driver=False)
    try:
        yield time.perf_counter() - t0
    finally:
        ray.shutdown()


def _ray_tuner(root: Path, name: str, n: int):
    from ray import tune
    from ray.tune.schedulers import AsyncHyperBandScheduler as RayASHA
    from ray.tune.search.basic_variant import BasicVariantGenerator

    return tune.Tuner(
        rivals_work.ray_objective,
        param_space={"x": tune.uniform(0, 1), "reports": REPORTS},
        tune_config=tune.TuneConfig(
            num_samples=n, metric="loss", mode="min",
            scheduler=RayASHA(grace_period=GRACE_PERIOD, max_t=MAX_T),
            search_alg=BasicVariantGenerator(random_state=SEED)),
        run_config=tune.RunConfig(name=name, storage_path=str(root), verbose=0,
                                  callbacks=[rivals_work.ray_clock()]),
    )


def _ray_fit(tuner, n: int) -> dict:
    clock = tuner._local_tuner.get_run_config().callbacks[0]
    cpu, t0 = time.process_time(), time.perf_counter()
    grid = tuner.fit()
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu
    assert len(grid) == n and not grid.errors, grid.errors
    metrics = [r.metrics for r in grid]
    steps = [m["training_iteration"] for m in metrics]
    assert set(steps) <= ASHA_STEPS, sorted(set(steps))
    return {"wall": wall, "cpu": cpu, "reports": sum(steps),
            "pids": len({m["pid"] for m in metrics}),
            "startup": clock.first_start - t0, "wind_down": t0 + wall - clock.last_complete}


@pytest.mark.benchmark(group="rivals-ray")
def test_ray(benchmark, summary, tmp_path, ray_local):
    """Ray Tune's Tuner on the no-op objective (ASHA, 2 CPUs) against fastasha's sweep."""
    n = RAY_TRIALS
    ours = _Ours(tmp_path / "fastasha", "asha", n)
    _ray_fit(_ray_tuner(tmp_path / "ray", "warmup", 2), 2)
    runs: list[dict] = []

    def setup():
        for _ in range(math.ceil(PAIRS / RAY_ROUNDS)):
            ours.pair()
        return (_ray_tuner(tmp_path / "ray", f"round{len(runs)}", n),), {}

    def run(tuner) -> None:
        runs.append(_ray_fit(tuner, n))

    benchmark.pedantic(run, setup=setup, rounds=RAY_ROUNDS)
    if not runs or not ours.runs:
        return
    import ray

    f = ours.figures()

    def med(key: str) -> float:
        return statistics.median(r[key] for r in runs)

    wall = med("wall")
    row = {
        "ray": ray.__version__, "N": n, "rounds": f"{len(runs)}/{f['rounds']}",
        "ray reports": int(med("reports")), "fastasha reports": f["reports"],
        "ray s": wall, "fastasha s": f["wall"], "joblib s": f["joblib"],
        "ray / fastasha": wall / f["wall"],
        "ray s/trial": wall / n,
        "ray slot-ms/trial": (wall - f["joblib"]) * SLOTS / n * 1e3,
        "fastasha slot-ms/trial": f["slot-ms/trial"],
        "ray start-up s": med("startup"), "ray wind-down s": med("wind_down"),
        "ray driver CPU s": med("cpu"), "ray trial pids": int(med("pids")),
        "ray.init s": ray_local,
    }
    summary(benchmark, "rivals-ray: Ray Tune Tuner (ASHA) on a local ray.init(num_cpus=2) vs "
                       "fastasha on 2 slots, warm, same run; medians (rounds: ray/fastasha)", row)
    benchmark.extra_info["ray_walls"] = [r["wall"] for r in runs]
    benchmark.extra_info["fastasha_walls"] = [r["wall"] for r in ours.runs]
