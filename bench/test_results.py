"""Reading the results of a large grid: ``ResultGrid`` and ``Result.metrics``.

A sweep of N trials of a no-op objective (``bench/tuner_work.py``, one
report each, on 2 slots; a grid search over ``x``, with a constant ``lr``
and a nested ``model`` dict in the config) is run once per N, untimed.
Each case then times one call on a grid read afresh with
``ResultGrid.from_path`` in the round's setup (the previous round's grid is
dropped and collected first):

- ``from_path``: ``ResultGrid.from_path(path)`` itself;
- ``metrics``: ``[r.metrics for r in grid]``, every trial's last result
  with the fields filled in when read (``config``, the since-restore
  fields, ``checkpoint_dir_name``, ``experiment_tag``);
- ``get_dataframe``: ``grid.get_dataframe()``;
- ``get_best_result``: ``grid.get_best_result()`` (by ``TuneConfig``'s
  metric and mode).

Before anything is timed, the metrics of a sample of trials are checked
against each trial's history (a full decode of its stored results, another
path to the same values), and the data frame's rows against the metrics.

``FASTASHA_BENCH_READ_TRIALS`` (comma-separated, default ``10000,100000``)
sets the sizes, ``FASTASHA_BENCH_READ_ROUNDS`` (default 5) the rounds.
"""

from __future__ import annotations

import gc
import os

import pytest
import tuner_work

from fastasha import tune

SIZES = [int(n) for n in os.environ.get("FASTASHA_BENCH_READ_TRIALS", "10000,100000").split(",")]
ROUNDS = int(os.environ.get("FASTASHA_BENCH_READ_ROUNDS", "5"))
CONFIG = {"reports": 1, "lr": 0.01, "model": {"depth": 3, "act": "relu"}}
FILLED = ("config", "checkpoint_dir_name", "should_checkpoint", "time_since_restore",
          "iterations_since_restore", "experiment_tag")

_experiments: dict[int, str] = {}


def _experiment(n: int, tmp_path_factory) -> str:
    """The folder of the sweep of ``n`` trials (run on first use)."""
    if n not in _experiments:
        grid = tune.Tuner(
            tuner_work.objective,
            param_space={"x": tune.grid_search(list(range(n))), **CONFIG},
            tune_config=tune.TuneConfig(metric="loss", mode="min"),
            run_config=tune.RunConfig(name=f"grid{n}", verbose=0,
                                      storage_path=str(tmp_path_factory.mktemp("reads"))),
            resources={"cpu": 2},
        ).fit()
        assert len(grid) == n and grid.num_terminated == n
        _experiments[n] = grid.experiment_path
        _check(grid.experiment_path, n)
    return _experiments[n]


def _check(path: str, n: int) -> None:
    """A sample of trials' metrics are their histories' last rows; the frame's rows, the metrics."""
    grid = tune.ResultGrid.from_path(path)
    metrics = [r.metrics for r in grid]
    frame = tune.ResultGrid.from_path(path).get_dataframe()
    assert len(frame) == n
    for i in range(0, n, max(1, n // 50)):
        result = tune.ResultGrid.from_path(path)[i]     # read alone, and after all the others
        last = result.history()[-1]
        assert result.metrics == metrics[i] == \
            {**last, "experiment_tag": f"{i}_x={i},reports=1,lr=0.01,model/depth=3,model/act=relu"}
        assert list(metrics[i]) == [k for k in last if k not in FILLED] + \
            [k for k in FILLED if k in metrics[i]]
        row = frame.iloc[i]
        for key in ("loss", "time_since_restore", "iterations_since_restore", "trial_id"):
            assert row[key] == metrics[i][key], key
        assert row["config/x"] == i and row["config/model/act"] == "relu"


def _time(benchmark, path: str, call) -> None:
    """Time ``call(grid)`` on a grid read afresh in each round's setup; only it is alive."""
    held: list = []

    def setup():
        held.clear()
        gc.collect()
        held.append(tune.ResultGrid.from_path(path))
        return (), {}

    benchmark.pedantic(lambda: call(held[-1]), setup=setup, rounds=ROUNDS)


CASES = {
    "metrics": lambda grid: [r.metrics for r in grid],
    "get_dataframe": lambda grid: grid.get_dataframe(),
    "get_best_result": lambda grid: grid.get_best_result(),
}


@pytest.mark.benchmark(group="results-read")
@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("case", ["from_path", *CASES])
def test_read(benchmark, throughput, tmp_path_factory, case, n):
    """One read of every trial of an n-trial grid (see the module docstring)."""
    pytest.importorskip("pandas")
    path = _experiment(n, tmp_path_factory)
    if case == "from_path":         # (the previous round's grid is dropped in the setup)
        held: list = []

        def setup():
            held.clear()
            gc.collect()
            return (), {}

        benchmark.pedantic(lambda: held.append(tune.ResultGrid.from_path(path)),
                           setup=setup, rounds=ROUNDS)
    else:
        _time(benchmark, path, CASES[case])
    throughput(benchmark, case, n, n, unit="trial")


# ------------------------------------------- one trial's history as a data frame

def _many_reports(config: dict) -> None:
    for i in range(config["n"]):
        tune.report({"loss": float(i), "val": {"acc": 0.5}} if i == 7 else {"loss": float(i)})


@pytest.mark.benchmark(group="results-history")
@pytest.mark.parametrize("case", ["metrics_dataframe", "plain DataFrame(history)"])
def test_history_frame(benchmark, summary, tmp_path_factory, case):
    """``Result.metrics_dataframe`` of a 20,000-report trial with a nested config.

    Against ``pandas.DataFrame(result.history())``, the same rows without
    the ``config/...`` columns, in the same run: spreading the config into
    the frame must cost little next to building the frame itself.
    """
    pd = pytest.importorskip("pandas")
    grid = tune.Tuner(
        _many_reports, param_space={"n": 20_000, "opt": {"name": "adam", "b": 0.9}},
        run_config=tune.RunConfig(name="history", verbose=0,
                                  storage_path=str(tmp_path_factory.mktemp("history"))),
        resources={"cpu": 2},
    ).fit()
    result = grid[0]
    history = result.history()
    frame = result.metrics_dataframe
    assert len(frame) == 20_000 and set(frame["config/opt/name"]) == {"adam"}
    call = (lambda: result.metrics_dataframe) if case == "metrics_dataframe" else \
        (lambda: pd.DataFrame(history))
    benchmark.pedantic(call, rounds=ROUNDS, warmup_rounds=1)
    summary(benchmark, "results-history: one trial of 20,000 reports as a data frame",
            {"case": case, "median s": benchmark.stats.stats.median})
