"""Reading a grid's results: the same values whatever is read first, and in what order.

``Result.metrics`` fills in Ray's fields (``config``, the since-restore
fields, ``checkpoint_dir_name``, ``experiment_tag``) when read, from what the
results of a grid share: the last runs of all trials are read in one pass
once enough trials are asked about, and JSON text is decoded a chunk of
neighbouring results at a time. None of that may show: these tests read
the same experiment in several orders, against values computed eagerly from
each trial's full history, and check that results stay independent of one
another (no shared dicts, no grid kept alive by one result).

The objectives are module-level functions of this module, as in
``tests/test_results_compat.py``.
"""

from __future__ import annotations

import copy
import gc
import json
import math
import pickle
import random
import sqlite3
import tempfile
import weakref
from pathlib import Path

import pytest

from fastasha import tune

N_TRIALS = 600          # more than a chunk of decoded text, and than the trials read one by one
READ_TIME = ("config", "checkpoint_dir_name", "should_checkpoint", "time_since_restore",
             "iterations_since_restore", "experiment_tag")


def _save(step: int) -> tune.Checkpoint:
    folder = tempfile.mkdtemp()
    Path(folder, "step").write_text(str(step))
    return tune.Checkpoint.from_directory(folder)


def mixed(config):
    """1 to 3 reports with the same nested metric; some trials save, fail once or never report.

    ``x % 50 == 2``: three reports with a checkpoint each, the first run fails
    after the second (so the retry's since-restore fields count from it);
    ``x % 40 == 0``: a checkpoint with each report; ``x % 101 == 7``: fails
    before reporting, every time; ``x % 7 == 0``: a string metric too.
    """
    x = config["x"]
    if x % 101 == 7:
        raise ValueError("never reports")
    retried = x % 50 == 2
    checkpoint = tune.get_checkpoint()
    first = 0 if checkpoint is None else int(Path(checkpoint.path, "step").read_text()) + 1
    for step in range(first, 3 if retried else 1 + x % 3):
        metrics = {"loss": float(x + step), "val": {"acc": 0.5}}
        if x % 7 == 0:
            metrics["note"] = "seven"
        tune.report(metrics, checkpoint=_save(step) if retried or x % 40 == 0 else None)
        if retried and checkpoint is None and step == 1:
            raise RuntimeError("the first run fails after its second report")


def reports_once(config):
    tune.report({"loss": float(config["x"]), "val": {"acc": 0.5}})


@pytest.fixture(scope="module")
def experiment(tmp_path_factory) -> str:
    """The folder of a sweep of :func:`mixed` over x = 0..599 (a nested config too)."""
    grid = tune.Tuner(
        mixed,
        param_space={"x": tune.grid_search(list(range(N_TRIALS))), "lr": 0.01,
                     "model": {"depth": 3, "act": "relu"}},
        run_config=tune.RunConfig(name="mixed", verbose=0,
                                  storage_path=str(tmp_path_factory.mktemp("reads")),
                                  failure_config=tune.FailureConfig(max_failures=1)),
        resources={"cpu": 2},
    ).fit()
    assert len(grid) == N_TRIALS and grid.num_errors == 6
    return grid.experiment_path


def _items(metrics: dict) -> list:
    return list(metrics.items())         # values and key order


def _expected_metrics(result: tune.Result, index: int) -> dict:
    """What ``result.metrics`` must be, from the trial's full history (read eagerly)."""
    history = result.history()
    if not history:
        return {}
    last = history[-1]
    filled = {key: last[key] for key in READ_TIME if key in last}
    filled["experiment_tag"] = f"{index}_x={index},lr=0.01,model/depth=3,model/act=relu"
    # the stored result's keys in their order, then the fields filled in when read
    return {**{k: v for k, v in last.items() if k not in READ_TIME}, **filled}


@pytest.fixture(scope="module")
def expected(experiment) -> list[list]:
    grid = tune.ResultGrid.from_path(experiment)
    return [_items(_expected_metrics(result, i)) for i, result in enumerate(grid)]


def test_the_fixture_has_what_the_reads_must_handle(experiment, expected):
    grid = tune.ResultGrid.from_path(experiment)
    metrics = [dict(items) for items in expected]
    assert sum(1 for m in metrics if not m) == 6            # never reported
    retried = [m for m in metrics if m and m["iterations_since_restore"] != m["training_iteration"]]
    assert len(retried) == 12 and all(m["iterations_since_restore"] == 1 for m in retried)
    assert all(m["time_since_restore"] < m["time_total_s"] for m in retried)
    assert sum(1 for m in metrics if m.get("should_checkpoint")) == 12 + 15
    assert sum(1 for m in metrics if "note" in m) > 50
    assert {r.status for r in grid} == {"TERMINATED", "ERROR"}


def _orders(n: int) -> dict[str, list[int]]:
    shuffled = list(range(n))
    random.Random(0).shuffle(shuffled)
    return {
        "forward": list(range(n)),
        "backward": list(range(n - 1, -1, -1)),
        "shuffled": shuffled,
        "odd then even": list(range(1, n, 2)) + list(range(0, n, 2)),
        "last first": [n - 1, *range(n - 1)],
    }


@pytest.mark.parametrize("order", list(_orders(N_TRIALS)))
def test_metrics_are_the_eager_values_in_any_reading_order(experiment, expected, order):
    grid = tune.ResultGrid.from_path(experiment)
    for i in _orders(N_TRIALS)[order]:
        assert _items(grid[i].metrics) == expected[i], (order, i)
    assert [_items(r.metrics) for r in grid] == expected     # and read again


def test_a_trial_read_alone_equals_it_read_after_all_the_others(experiment, expected):
    for i in (0, 2, 255, 256, 599):
        alone = tune.ResultGrid.from_path(experiment)[i].metrics
        grid = tune.ResultGrid.from_path(experiment)
        others = [_items(r.metrics) for j, r in enumerate(grid) if j != i]
        assert _items(grid[i].metrics) == _items(alone) == expected[i]
        assert others == expected[:i] + expected[i + 1:]
        single = tune.Result.from_path(grid[i].path)
        assert _items(single.metrics) == expected[i]


def test_metrics_read_after_the_data_frame_or_the_best_result_are_the_same(experiment, expected):
    pytest.importorskip("pandas")
    grid = tune.ResultGrid.from_path(experiment)
    grid.get_dataframe()
    assert [_items(r.metrics) for r in grid] == expected
    grid = tune.ResultGrid.from_path(experiment)
    best = grid.get_best_result("loss", "min")
    assert best.metrics["loss"] == 0.0
    assert [_items(r.metrics) for r in grid] == expected


def test_config_is_the_one_in_metrics(experiment):
    grid = tune.ResultGrid.from_path(experiment)
    for i in (3, 400):
        assert grid[i].config == {"x": i, "lr": 0.01, "model": {"depth": 3, "act": "relu"}}
        assert grid[i].metrics["config"] is grid[i].config


# --------------------------------------------------------- the data frame's rows

def _spread(d: dict, prefix: str = "") -> dict:
    """Nested dicts as ``outer/inner`` keys (the data frame's columns)."""
    out = {}
    for key, value in d.items():
        if isinstance(value, dict) and value:
            out.update(_spread(value, f"{prefix}{key}/"))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _frame_of_metrics(grid) -> object:
    """``get_dataframe()`` as it must be: each trial's metrics, less what Ray leaves out."""
    pd = pytest.importorskip("pandas")
    rows = []
    for result in grid:
        row = {k: v for k, v in _spread(result.metrics).items()
               if k != "experiment_tag" and not k.startswith("config/")}
        row.update(_spread(result.config, "config/"))
        row.update(trial_id=result.trial_id, status=result.status, logdir=result.path)
        rows.append(row)
    return pd.DataFrame(rows)


@pytest.mark.parametrize("first", ["frame", "metrics"])
def test_the_data_frame_is_the_metrics_rows(experiment, first):
    pd = pytest.importorskip("pandas")
    grid = tune.ResultGrid.from_path(experiment)
    if first == "frame":
        frame = grid.get_dataframe()
        expected = _frame_of_metrics(tune.ResultGrid.from_path(experiment))
    else:
        expected = _frame_of_metrics(grid)
        frame = grid.get_dataframe()
    assert len(frame) == N_TRIALS
    assert "config" not in frame.columns and "experiment_tag" not in frame.columns
    pd.testing.assert_frame_equal(frame, expected, check_exact=True)
    pd.testing.assert_frame_equal(grid.get_dataframe(), frame, check_exact=True)


# ----------------------------------------------------- results stay independent

def test_changing_one_results_metrics_changes_no_other_result_nor_a_read_again(experiment,
                                                                               expected):
    grid = tune.ResultGrid.from_path(experiment)
    a, b = grid[10], grid[11]       # neighbours, with equal nested values
    assert a.metrics["val"] == b.metrics["val"] == {"acc": 0.5}
    assert a.config["model"] == b.config["model"]
    a.metrics["loss"] = -1.0
    a.metrics["val"]["acc"] = -1.0
    a.config["model"]["depth"] = -1
    a.metrics["extra"] = "mine"
    assert a.metrics["loss"] == -1.0            # Result.metrics is one dict, as in Ray
    assert b.metrics["val"] == {"acc": 0.5} and b.config["model"]["depth"] == 3
    assert _items(b.metrics) == expected[11]
    assert [_items(r.metrics) for j, r in enumerate(grid) if j != 10] == \
        expected[:10] + expected[11:]
    again = tune.ResultGrid.from_path(experiment)
    assert _items(again[10].metrics) == expected[10]


def test_a_result_kept_does_not_keep_its_grid(experiment, expected):
    grid = tune.ResultGrid.from_path(experiment)
    kept, other = grid[300], weakref.ref(grid[301])
    grid_ref = weakref.ref(grid)
    del grid
    gc.collect()
    assert grid_ref() is None and other() is None
    assert _items(kept.metrics) == expected[300]


@pytest.mark.parametrize("how", ["pickle", "deepcopy"])
def test_a_grid_copied_before_it_is_read_reads_the_same(experiment, expected, how):
    grid = tune.ResultGrid.from_path(experiment)
    if how == "pickle":
        grid, result = pickle.loads(pickle.dumps((grid, grid[7])))
    else:
        grid, result = copy.deepcopy((grid, grid[7]))
    assert result is grid[7]
    assert _items(result.metrics) == expected[7]
    assert [_items(r.metrics) for r in grid] == expected


def test_a_trial_whose_text_is_corrupt_fails_alone(tmp_path):
    grid = tune.Tuner(reports_once, param_space={"x": tune.grid_search(list(range(20)))},
                      run_config=tune.RunConfig(name="corrupt", storage_path=str(tmp_path),
                                                verbose=0)).fit()
    wanted = [_items(r.metrics) for r in tune.ResultGrid.from_path(grid.experiment_path)]
    conn = sqlite3.connect(Path(grid.experiment_path) / "experiment.db")
    with conn:
        conn.execute("UPDATE trials SET config = '{bad' WHERE idx = 4")
        conn.execute("UPDATE trials SET last_result = '[1,' WHERE idx = 5")
        conn.execute("UPDATE trials SET config = '{\"x\": 6} {' WHERE idx = 6")
    conn.close()
    for order in (range(20), range(19, -1, -1)):
        again = tune.ResultGrid.from_path(grid.experiment_path)
        for i in order:
            if i in (4, 5, 6):
                for _attempt in range(2):     # as json.loads of that text raises, every time
                    with pytest.raises(json.JSONDecodeError):
                        _ = again[i].metrics
            else:
                assert _items(again[i].metrics) == wanted[i], i
    again = tune.ResultGrid.from_path(grid.experiment_path)
    with pytest.raises(json.JSONDecodeError, match="Expecting property name"):
        _ = again[4].config
    assert again[5].config == {"x": 5}
    with pytest.raises(json.JSONDecodeError, match="Extra data"):
        _ = again[6].config


# ---------------------------------------------------------------- experiment_tag

def test_experiment_tag_of_every_kind_of_config_value(tmp_path):
    space = {"f": 0.000123456, "neg": -0.0, "inf": float("inf"), "nan": float("nan"),
             "big": 10 ** 20, "i": -3, "b": False, "s": "adam", "none": None, "l": [1, 2],
             "m": {"d": 3, "e": {"g": 2.5}}, "empty": {}, "fn": len, "a/b": "slash"}
    grid = tune.Tuner(reports_once, param_space={"x": 1, **space}, run_config=tune.RunConfig(
        name="tags", storage_path=str(tmp_path), verbose=0)).fit()
    tag = ("0_x=1,f=0.0001235,neg=-0,inf=inf,nan=nan,big=100000000000000000000,i=-3,b=False,"
           "s=adam,m/d=3,m/e/g=2.5,a/b=slash")
    assert grid[0].metrics["experiment_tag"] == tag        # the config's objects
    assert tune.ResultGrid.from_path(grid.experiment_path)[0].metrics["experiment_tag"] == tag
    assert math.isnan(grid[0].config["nan"])
