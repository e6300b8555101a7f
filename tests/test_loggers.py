"""Ray Tune's logger callbacks (``fastasha.logger``, also ``fastasha.tune.logger``).

Real sweeps write ``progress.csv``, ``result.json``, ``params.json``,
``params.pkl`` and TensorBoard event files into the trial folders; the tests
read them back and compare them with what the experiment file holds
(``Result.metrics_dataframe``), and with what Ray Tune 2.60 writes for the
same objective (columns, a retried trial's rows, non-JSON config values).
"""

from __future__ import annotations

import csv
import glob
import json
import math
import os
import pickle
import struct
import sys

import joblib
import numpy as np
import pytest

from fastasha import tune
from fastasha.logger import CSVLoggerCallback, JsonLoggerCallback, LoggerCallback

pd = pytest.importorskip("pandas")

# Ray's automatic fields in progress.csv (Ray 2.60 has node_ip too, fastasha has none)
RAY_FIELDS = {"training_iteration", "time_this_iter_s", "time_total_s", "timestamp", "date",
              "trial_id", "hostname", "pid", "done", "time_since_restore",
              "iterations_since_restore", "checkpoint_dir_name"}


# -------------------------------------------------------------- objectives
# (module level, so that loky's worker processes can import them)

def curve(config):
    """Four reports of a loss that depends only on the config, one nested metric."""
    for step in range(1, 5):
        tune.report({"loss": config["x"] / step, "val": {"acc": step * 0.25}})


def late_key(config):
    """A key that appears only from the third report on, as in Ray's CSV test."""
    for step in range(1, 5):
        extra = {"late": step} if step >= 3 else {}
        tune.report({"loss": float(step), "arr": [1, 2], **extra})


def fails_after_two(config):
    """Reports twice, fails once (it claims the file config["marker"]), then reports 4 times.

    With config["checkpoint"], each report comes with a checkpoint, and the
    retry resumes from the latest one.
    """
    first = not os.path.exists(config["marker"])
    start = 0
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with open(os.path.join(checkpoint.path, "step")) as f:
            start = int(f.read())
    for step in range(start + 1, 5):
        report = {"loss": 10.0 * config["x"] + step}
        if config["checkpoint"]:
            folder = os.path.join(config["dir"], f"step{step}_{int(first)}")
            os.makedirs(folder)
            with open(os.path.join(folder, "step"), "w") as f:
                f.write(str(step))
            tune.report(report, checkpoint=tune.Checkpoint.from_directory(folder))
        else:
            tune.report(report)
        if first and step == 2:
            open(config["marker"], "w").close()
            raise RuntimeError("the first run fails after two reports")


def _fit(tmp_path, objective, param_space, callbacks, backend="loky", **run):
    tuner = tune.Tuner(objective, param_space=param_space,
                       run_config=tune.RunConfig(storage_path=str(tmp_path), name="exp",
                                                 verbose=0, callbacks=callbacks, **run))
    with joblib.parallel_config(backend=backend):
        return tuner.fit()


def _csv_rows(path):
    with open(path, newline="") as f:
        return list(csv.reader(f))


def _json_lines(path):
    with open(path) as f:
        return [json.loads(line) for line in f]


# ------------------------------------------------------------------ tests

def test_the_loggers_import_where_ray_users_look():
    import fastasha.tune.logger
    from fastasha.tune.logger import TBXLoggerCallback

    import fastasha.logger

    assert fastasha.tune.logger is fastasha.logger
    assert tune.logger is fastasha.logger and "logger" in tune.__all__
    assert fastasha.logger.TBXLoggerCallback is TBXLoggerCallback
    for cls in (CSVLoggerCallback, JsonLoggerCallback, TBXLoggerCallback):
        assert issubclass(cls, LoggerCallback) and issubclass(cls, tune.Callback)


def test_csv_and_json_files_hold_every_result_as_the_experiment_file_does(tmp_path):
    # the default backend (loky: trials in worker processes)
    configs = [0.5, 2.0]
    grid = _fit(tmp_path, curve, {"x": tune.grid_search(configs), "name": "a"},
                [CSVLoggerCallback(), JsonLoggerCallback()])
    assert sorted(r.config["x"] for r in grid) == configs
    for result in grid:
        folder = result.path
        assert sorted(os.listdir(folder)) == ["params.json", "params.pkl", "progress.csv",
                                              "result.json"]
        frame = result.metrics_dataframe
        progress = pd.read_csv(os.path.join(folder, "progress.csv"))
        # Ray's columns: no config, nested metrics flattened
        assert set(progress.columns) == RAY_FIELDS | {"loss", "val/acc"}
        assert len(progress) == len(frame) == 4
        assert progress["training_iteration"].tolist() == [1, 2, 3, 4]
        assert progress["loss"].tolist() == [result.config["x"] / s for s in range(1, 5)]
        assert progress["val/acc"].tolist() == [0.25, 0.5, 0.75, 1.0]
        for column in ("training_iteration", "loss", "val/acc", "time_total_s",
                       "time_this_iter_s", "timestamp", "pid", "iterations_since_restore"):
            assert progress[column].tolist() == frame[column].tolist(), column
        np.testing.assert_allclose(progress["time_since_restore"], frame["time_since_restore"],
                                   rtol=1e-9, atol=1e-12)
        assert (progress["trial_id"] == result.trial_id).all()
        # as in Ray: the rows a callback sees are not done (the stored last one is)
        assert not progress["done"].any()

        lines = _json_lines(os.path.join(folder, "result.json"))
        assert [line["loss"] for line in lines] == progress["loss"].tolist()
        assert [line["val"] for line in lines] == [{"acc": a} for a in (0.25, 0.5, 0.75, 1.0)]
        assert all(line["config"] == result.config for line in lines)
        with open(os.path.join(folder, "params.json")) as f:
            assert json.load(f) == result.config == {"x": result.config["x"], "name": "a"}
        with open(os.path.join(folder, "params.pkl"), "rb") as f:
            assert pickle.load(f) == result.config


def test_a_sweep_without_loggers_writes_no_log_files(tmp_path):
    grid = _fit(tmp_path, curve, {"x": 1.0}, None, backend="threading")
    folder = grid[0].path
    assert not os.path.exists(folder) or not os.listdir(folder)


def test_csv_columns_are_the_first_results_and_json_keeps_every_key(tmp_path):
    def show(value):        # a config value JSON cannot hold: written as its str(), as in Ray
        return value

    grid = _fit(tmp_path, late_key, {"x": np.float64(1.5), "n": np.int64(3), "f": show},
                [CSVLoggerCallback(), JsonLoggerCallback()], backend="threading")
    folder = grid[0].path
    rows = _csv_rows(os.path.join(folder, "progress.csv"))
    header = rows[0]
    # as Ray 2.60: "late" first appears in the third result and is left out of the CSV
    assert "late" not in header and "arr" in header and len(rows) == 5
    assert all(len(row) == len(header) for row in rows)
    assert [row[header.index("arr")] for row in rows[1:]] == ["[1, 2]"] * 4
    lines = _json_lines(os.path.join(folder, "result.json"))
    assert [line.get("late") for line in lines] == [None, None, 3, 4]
    with open(os.path.join(folder, "params.json")) as f:
        params = json.load(f)
    assert params["x"] == 1.5 and params["n"] == 3 and params["f"] == str(show)
    assert lines[0]["config"] == params
    with open(os.path.join(folder, "params.pkl"), "rb") as f:
        assert pickle.load(f)["x"] == 1.5


@pytest.mark.parametrize("checkpoint", [False, True], ids=["from-scratch", "from-checkpoint"])
def test_a_retried_trial_appends_its_rows_as_ray_does(tmp_path, checkpoint):
    # Ray 2.60 keeps one header and appends the retry's rows to the failed run's,
    # in progress.csv and result.json alike
    os.makedirs(tmp_path / "ckpt")
    config = {"x": 1.0, "marker": str(tmp_path / "marker"), "checkpoint": checkpoint,
              "dir": str(tmp_path / "ckpt")}
    grid = _fit(tmp_path, fails_after_two, config, [CSVLoggerCallback(), JsonLoggerCallback()],
                backend="threading", failure_config=tune.FailureConfig(max_failures=1))
    result = grid[0]
    assert result.status == "TERMINATED" and result.n_failures == 1
    frame = result.metrics_dataframe
    rows = _csv_rows(os.path.join(result.path, "progress.csv"))
    assert rows.count(rows[0]) == 1         # one header
    progress = pd.read_csv(os.path.join(result.path, "progress.csv"))
    lines = _json_lines(os.path.join(result.path, "result.json"))
    if checkpoint:      # the retry resumes after step 2
        iterations, since = [1, 2, 3, 4], [1, 2, 1, 2]
    else:               # the retry starts over
        iterations, since = [1, 2, 1, 2, 3, 4], [1, 2, 1, 2, 3, 4]
    assert progress["training_iteration"].tolist() == iterations
    assert progress["iterations_since_restore"].tolist() == since
    assert progress["loss"].tolist() == [10.0 + i for i in iterations]
    assert [line["training_iteration"] for line in lines] == iterations
    for column in ("training_iteration", "iterations_since_restore", "loss", "time_total_s"):
        assert progress[column].tolist() == frame[column].tolist(), column
    np.testing.assert_allclose(progress["time_since_restore"], frame["time_since_restore"],
                               rtol=1e-9, atol=1e-12)
    names = progress["checkpoint_dir_name"].tolist()
    if checkpoint:      # every result came with a checkpoint: named as the stored ones
        assert names == frame["checkpoint_dir_name"].tolist()
        assert all(isinstance(n, str) and n.startswith("checkpoint_") for n in names)
        assert all(line["should_checkpoint"] for line in lines)
    else:
        assert all(isinstance(n, float) and math.isnan(n) for n in names)     # empty cells
        assert all(line["checkpoint_dir_name"] is None for line in lines)


def test_a_logger_of_ones_own_gets_rays_calls(tmp_path):
    calls = []

    class Ends(LoggerCallback):         # logs no results: reports need not wait for it
        def log_trial_start(self, trial):
            calls.append(("start", trial.config["marker"] != ""))

        def log_trial_end(self, trial, failed=False):
            calls.append(("end", failed, trial.config is not None))

    class Results(Ends):
        def log_trial_result(self, iteration, trial, result):
            calls.append(("result", result["iterations_since_restore"], "config" in result))

    assert Ends.on_trial_result is tune.Callback.on_trial_result
    assert Results.on_trial_result is LoggerCallback.on_trial_result
    config = {"x": 1.0, "marker": str(tmp_path / "marker"), "checkpoint": False,
              "dir": str(tmp_path)}
    _fit(tmp_path, fails_after_two, config, [Results()], backend="threading",
         failure_config=tune.FailureConfig(max_failures=0))
    assert calls == [("start", True), ("result", 1, True), ("result", 2, True),
                     ("end", True, True)]


def _records(path):
    """The events of a TensorBoard file (TFRecord framing: length, crc, data, crc)."""
    from tensorboardX.proto import event_pb2

    with open(path, "rb") as f:
        data = f.read()
    events, at = [], 0
    while at < len(data):
        (size,) = struct.unpack_from("<Q", data, at)
        at += 12
        events.append(event_pb2.Event.FromString(data[at:at + size]))
        at += size + 4
    return events


def _scalars(folder):
    out: dict = {}
    tags = set()
    for path in sorted(glob.glob(os.path.join(folder, "events.out.tfevents.*"))):
        for event in _records(path):
            for value in event.summary.value:
                tags.add(value.tag)
                if value.HasField("simple_value"):
                    out.setdefault(value.tag, []).append((event.step, value.simple_value))
    return out, tags


def test_tbx_logger_writes_scalars_and_hparams_tensorboard_reads(tmp_path):
    pytest.importorskip("tensorboardX", reason="TBXLoggerCallback needs tensorboardX "
                        '(pip install "tensorboardX>=2.6")')
    from fastasha.tune.logger import TBXLoggerCallback

    grid = _fit(tmp_path, curve, {"x": tune.grid_search([0.5, 2.0])}, [TBXLoggerCallback()],
                backend="threading")
    for result in grid:
        files = glob.glob(os.path.join(result.path, "events.out.tfevents.*"))
        assert len(files) == 1 and os.path.getsize(files[0]) > 0
        scalars, tags = _scalars(result.path)
        x = result.config["x"]
        assert scalars["ray/tune/loss"] == [(s, pytest.approx(x / s)) for s in range(1, 5)]
        assert scalars["ray/tune/val/acc"] == [(s, s * 0.25) for s in range(1, 5)]
        # left out as in Ray: the step itself, and what is no metric
        assert not {"ray/tune/training_iteration", "ray/tune/pid",
                    "ray/tune/timestamp"} & set(scalars)
        assert {"_hparams_/experiment", "_hparams_/session_start_info",
                "_hparams_/session_end_info"} <= tags


def test_tbx_logger_without_tensorboardx_says_what_to_install(monkeypatch, tmp_path):
    from fastasha.logger import TBXLoggerCallback, export_trial_logs

    monkeypatch.setitem(sys.modules, "tensorboardX", None)     # import fails
    # commands that work: fastasha is not on PyPI, so "fastasha[tensorboard]" needs a clone
    hint = r'pip install "tensorboardX>=2\.6" .*in a clone.*pip install -e "\.\[tensorboard\]"'
    with pytest.raises(ImportError, match=hint):
        TBXLoggerCallback()
    with pytest.raises(ImportError, match=hint):
        export_trial_logs(tmp_path, formats=("tensorboard",))


def test_export_writes_the_files_after_the_sweep(tmp_path):
    from fastasha.logger import export_trial_logs

    grid = _fit(tmp_path, curve, {"x": tune.grid_search([0.5, 2.0])}, None,
                backend="threading")
    live = tmp_path / "live"
    _fit(live, curve, {"x": tune.grid_search([0.5, 2.0])}, [CSVLoggerCallback()],
         backend="threading")
    formats = ("csv", "json", "tensorboard") if _has_tensorboardx() else ("csv", "json")
    folders = export_trial_logs(grid.experiment_path, formats=formats)
    assert folders == [r.path for r in grid]
    for result in grid:
        progress = pd.read_csv(os.path.join(result.path, "progress.csv"))
        frame = result.metrics_dataframe
        assert progress["loss"].tolist() == frame["loss"].tolist()
        assert progress["done"].tolist() == [False, False, False, True]   # as stored
        lines = _json_lines(os.path.join(result.path, "result.json"))
        assert [line["val"]["acc"] for line in lines] == [0.25, 0.5, 0.75, 1.0]
        with open(os.path.join(result.path, "params.json")) as f:
            assert json.load(f) == result.config
        if "tensorboard" in formats:
            assert len(_scalars(result.path)[0]["ray/tune/loss"]) == 4
    # the same columns as the live logger's
    live_header = _csv_rows(glob.glob(str(live / "exp" / "trials" / "*" / "progress.csv"))[0])[0]
    assert _csv_rows(os.path.join(grid[0].path, "progress.csv"))[0] == live_header
    # again, from the grid itself: the files are replaced, not appended to
    export_trial_logs(grid, formats=("csv",))
    assert len(_csv_rows(os.path.join(grid[0].path, "progress.csv"))) == 5
    with pytest.raises(ValueError, match="unknown format"):
        export_trial_logs(grid, formats=("csv", "yaml"))
    with pytest.raises(ValueError, match="no fastasha experiment"):
        export_trial_logs(tmp_path / "nothing here")


def _has_tensorboardx():
    try:
        import tensorboardX  # noqa: F401
    except ImportError:
        return False
    return True


def counts(config):
    """Reports config["n"] times; the loss is the step, so rows can be told apart."""
    for step in range(1, config["n"] + 1):
        tune.report({"loss": float(step)})


class CtrlC(tune.Callback):
    """Ctrl-C (a KeyboardInterrupt) in the driver at the ``at``-th result."""

    def __init__(self, at):
        self.at, self.seen = at, 0

    def on_trial_result(self, iteration, trials, trial, result, **info):
        self.seen += 1
        if self.seen == self.at:
            raise KeyboardInterrupt


def test_ctrl_c_loses_no_row_and_a_restore_appends(tmp_path):
    space = {"n": 40, "x": tune.grid_search([1, 2])}
    with pytest.raises(KeyboardInterrupt):
        _fit(tmp_path, counts, space, [CSVLoggerCallback(), JsonLoggerCallback(), CtrlC(25)],
             backend="threading")
    path = str(tmp_path / "exp")
    before = {r.trial_id: len(r.history()) for r in tune.ResultGrid.from_path(path)}
    assert sum(before.values()) >= 25 and min(before.values()) < 40, before
    for result in tune.ResultGrid.from_path(path):
        if before[result.trial_id]:     # every stored result is in the files, flushed
            progress = pd.read_csv(os.path.join(result.path, "progress.csv"))
            assert progress["loss"].tolist() == [r["loss"] for r in result.history()]
            assert len(_json_lines(os.path.join(result.path, "result.json"))) == len(progress)
    with joblib.parallel_config(backend="threading"):
        grid = tune.Tuner.restore(path, counts,
                                  callbacks=[CSVLoggerCallback(), JsonLoggerCallback()]).fit()
    for result in grid:
        assert result.status == "TERMINATED"
        rows = _csv_rows(os.path.join(result.path, "progress.csv"))
        assert rows.count(rows[0]) == 1     # the header is not written again
        progress = pd.read_csv(os.path.join(result.path, "progress.csv"))
        frame = result.metrics_dataframe
        for column in ("loss", "training_iteration", "iterations_since_restore"):
            assert progress[column].tolist() == frame[column].tolist(), column
        assert progress["loss"].tolist()[-1] == 40.0
        assert len(_json_lines(os.path.join(result.path, "result.json"))) == len(progress)
