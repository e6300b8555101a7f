"""Ray's experiment-tracking integrations: MLflow and Weights & Biases.

Real ASHA sweeps in loky worker processes log through
``MLflowLoggerCallback`` / ``setup_mlflow`` into an SQLite MLflow store, and
through ``WandbLoggerCallback`` / ``setup_wandb`` into W&B's offline run
files (``WANDB_MODE=offline``: there is no network here). The tests read
back what the tracker stored (``MlflowClient.search_runs`` and
``get_metric_history``; the records of the ``.wandb`` files) and compare it
with the sweep's own results. Each group skips, saying how to install the
library, where it is missing; the missing-library messages are tested
everywhere.
"""

from __future__ import annotations

import glob
import json
import struct
import sys
import time
import warnings

import joblib
import pytest

import objectives_trackers as ot
import objectives_trial_end as ote
from fastasha import tune
from fastasha.schedulers import ASHAScheduler

SPACE = {"x": tune.uniform(0.1, 1.0), "model": {"depth": tune.choice([1, 2, 3])}}


def _sweep(tmp_path, objective, callbacks=(), param_space=None, num_samples=6, name="sweep"):
    space = dict(SPACE if param_space is None else param_space)
    tuner = tune.Tuner(
        objective, param_space=space,
        tune_config=tune.TuneConfig(
            metric="loss", mode="min", num_samples=num_samples,
            scheduler=ASHAScheduler(max_t=10, grace_period=2, reduction_factor=2)),
        run_config=tune.RunConfig(storage_path=str(tmp_path), name=name, verbose=0,
                                  callbacks=list(callbacks)))
    with joblib.parallel_config(backend="loky", n_jobs=2):
        return tuner.fit()


def _by_trial(grid) -> dict:
    return {r.metrics["trial_id"]: r for r in grid}


# ------------------------------------------------------------------ missing libraries


@pytest.mark.parametrize("module, name, package, extra", [
    ("fastasha.air.integrations.mlflow", "MLflowLoggerCallback", "mlflow-skinny", "mlflow"),
    ("fastasha.air.integrations.mlflow", "setup_mlflow", "mlflow-skinny", "mlflow"),
    ("fastasha.air.integrations.wandb", "WandbLoggerCallback", "wandb", "wandb"),
    ("fastasha.air.integrations.wandb", "setup_wandb", "wandb", "wandb"),
])
def test_missing_library_says_how_to_install(monkeypatch, module, name, package, extra):
    import importlib

    library = extra if extra == "wandb" else "mlflow"
    monkeypatch.setitem(sys.modules, library, None)     # import fails as if not installed
    thing = getattr(importlib.import_module(module), name)
    with pytest.raises(ImportError) as info:
        thing() if name[0].isupper() else thing({})
    text = str(info.value)
    assert f'pip install "{package}"' in text
    assert f'pip install -e ".[{extra}]"' in text
    assert "fastasha[" not in text


def test_ray_paths_are_the_same_modules():
    import fastasha.air.integrations.mlflow as air_mlflow
    import fastasha.air.integrations.wandb as air_wandb
    import fastasha.tune.integration.mlflow as tune_mlflow
    import fastasha.tune.integration.wandb as tune_wandb

    assert tune_mlflow is air_mlflow and tune_wandb is air_wandb
    with pytest.raises(AttributeError, match="setup_mlflow"):
        tune_mlflow.mlflow_mixin
    with pytest.raises(AttributeError, match="setup_wandb"):
        tune_wandb.wandb_mixin


# ----------------------------------------------------------------------------- MLflow

def _mlflow():
    pytest.importorskip("mlflow", reason="MLflow is not installed (pip install mlflow-skinny, "
                        "or pip install -e '.[mlflow]')")
    pytest.importorskip("sqlalchemy", reason="the SQLite MLflow store needs SQLAlchemy "
                        "(pip install -e '.[mlflow]')")
    pytest.importorskip("alembic", reason="the SQLite MLflow store needs alembic "
                        "(pip install -e '.[mlflow]')")
    from mlflow import MlflowClient
    from fastasha.air.integrations import mlflow as integration

    return MlflowClient, integration


@pytest.fixture(scope="module")
def mlflow_store(tmp_path_factory):
    """One SQLite store for the module (creating its tables takes seconds)."""
    MlflowClient, _ = _mlflow()
    folder = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{folder}/mlflow.db"
    client = MlflowClient(uri)
    client.search_experiments()        # makes the tables
    return uri, client, folder


def _runs(client, experiment_name):
    experiment = client.get_experiment_by_name(experiment_name)
    assert experiment is not None
    return client.search_runs([experiment.experiment_id], max_results=1000)


def test_mlflow_callback_logs_each_trial(tmp_path, mlflow_store, monkeypatch):
    _, integration = _mlflow()
    uri, client, folder = mlflow_store
    monkeypatch.chdir(folder)           # (artifacts go under the working directory)
    space = dict(SPACE, fail_at=tune.sample_from(
        lambda spec: 2 if spec.config["x"] > 0.85 else None), odd_key=True)
    space["x"] = tune.grid_search([0.2, 0.4, 0.6, 0.9])
    callback = integration.MLflowLoggerCallback(
        uri, experiment_name="callback", tags={"team": "tests"}, save_artifact=True)
    with pytest.warns(RuntimeWarning, match="odd\\?key"):
        grid = _sweep(tmp_path, ot.curve, [callback], param_space=space, num_samples=1)
    results = _by_trial(grid)
    # each run is named as Ray names it, str(trial): the objective's name and the trial id
    runs = {run.info.run_name: run for run in _runs(client, "callback")}
    assert set(runs) == {f"curve_{trial_id}" for trial_id in results}
    for trial_id, result in results.items():
        run = runs[f"curve_{trial_id}"]
        failed = result.config["x"] > 0.85
        assert (result.error is not None) == failed
        assert run.info.status == ("FAILED" if failed else "FINISHED")
        assert run.data.tags["team"] == "tests" and run.data.tags["trial_name"] == f"curve_{trial_id}"
        assert run.data.params["x"] == str(result.config["x"])
        assert run.data.params["model/depth"] == str(result.config["model"]["depth"])
        history = client.get_metric_history(run.info.run_id, "loss")
        frame = result.metrics_dataframe
        assert [(m.step, m.value) for m in sorted(history, key=lambda m: m.step)] == \
            list(zip(frame["training_iteration"], frame["loss"]))
        nested = client.get_metric_history(run.info.run_id, "extra/step2")
        assert sorted(m.value for m in nested) == [2.0 * s for s in frame["training_iteration"]]
        assert "odd?key" not in run.data.metrics       # refused by MLflow, left out
        # the trial's folder, as artifacts (it holds no files unless something wrote some)
        client.list_artifacts(run.info.run_id)


def test_mlflow_setup_inside_the_objective(tmp_path, mlflow_store):
    _, _ = _mlflow()
    uri, client, _ = mlflow_store
    client.create_experiment("inside")
    space = dict(SPACE, mlflow={"tracking_uri": uri, "experiment_name": "inside"})
    # more trials than workers: processes run several trials, each in its own run
    grid = _sweep(tmp_path, ot.curve_with_mlflow, param_space=space, num_samples=6)
    results = _by_trial(grid)
    runs = {run.data.tags["trial"]: run for run in _runs(client, "inside")}
    assert set(runs) == set(results)
    for trial_id, result in results.items():
        run = runs[trial_id]
        assert run.info.status == "FINISHED"       # ended when its trial ended
        assert run.data.params["x"] == str(result.config["x"])
        history = client.get_metric_history(run.info.run_id, "inner_loss")
        assert [m.value for m in sorted(history, key=lambda m: m.step)] == \
            list(result.metrics_dataframe["loss"])


def test_mlflow_setup_run_ends_with_its_trial(tmp_path, mlflow_store):
    """Without mlflow.end_run() in the objective, the run ends when its trial is over
    (the threading backend: the process outlives the trials)."""
    import time

    uri, client, _ = mlflow_store
    client.create_experiment("ended")
    space = dict(SPACE, mlflow={"tracking_uri": uri, "experiment_name": "ended",
                                "end_run": False})
    tuner = tune.Tuner(ot.curve_with_mlflow, param_space=space,
                       tune_config=tune.TuneConfig(num_samples=3),
                       run_config=tune.RunConfig(storage_path=str(tmp_path), verbose=0))
    with joblib.parallel_config(backend="threading", n_jobs=2):
        grid = tuner.fit()
    deadline = time.monotonic() + 5.0
    while True:     # (the worker's flush thread may hold a trial a moment longer)
        statuses = [run.info.status for run in _runs(client, "ended")]
        if statuses.count("FINISHED") == len(grid) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert statuses == ["FINISHED"] * len(grid)


def test_mlflow_setup_runs_all_end_finished_when_fit_returns(tmp_path, mlflow_store):
    """The objective never ends its run: fastasha does, before the trial counts as ended,
    so the run of each trial process's last trial is ended too (the process exits right
    after the sweep), and at once: nothing is left to end after fit()."""
    uri, client, _ = mlflow_store
    client.create_experiment("left-open")
    space = dict(SPACE, mlflow={"tracking_uri": uri, "experiment_name": "left-open"})
    grid = _sweep(tmp_path, ote.mlflow_left_open, param_space=space, num_samples=4)
    results = _by_trial(grid)
    runs = {run.data.tags["trial"]: run for run in _runs(client, "left-open")}
    assert set(runs) == set(results)
    assert {trial_id: run.info.status for trial_id, run in runs.items()} == \
        dict.fromkeys(results, "FINISHED")
    for trial_id, result in results.items():
        history = client.get_metric_history(runs[trial_id].info.run_id, "inner_loss")
        assert len(history) >= len(result.metrics_dataframe)


def test_mlflow_server_failure_is_retried_not_fatal(tmp_path, mlflow_store, monkeypatch):
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    _, integration = _mlflow()
    uri, client, _ = mlflow_store
    real = MlflowClient.log_batch
    calls = {"n": 0}

    def flaky(self, run_id, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] <= 2:          # a server that is down for the first two writes
            raise MlflowException("connection refused", error_code="TEMPORARILY_UNAVAILABLE")
        return real(self, run_id, *args, **kwargs)

    monkeypatch.setattr(MlflowClient, "log_batch", flaky)
    callback = integration.MLflowLoggerCallback(uri, experiment_name="flaky")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        grid = _sweep(tmp_path, ot.curve, [callback], num_samples=4)
    said = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    assert any("failed" in s and "retried" in s for s in said), said
    results = _by_trial(grid)
    runs = {run.info.run_name.removeprefix("curve_"): run for run in _runs(client, "flaky")}
    assert set(runs) == set(results)
    for trial_id, result in results.items():     # nothing was lost
        history = client.get_metric_history(runs[trial_id].info.run_id, "loss")
        assert len(history) == len(result.metrics_dataframe)
        assert runs[trial_id].info.status == "FINISHED"


def test_mlflow_bad_arguments(monkeypatch, tmp_path):
    _, integration = _mlflow()
    with pytest.raises(TypeError, match="tags"):
        integration.MLflowLoggerCallback(tags=["a"])
    with pytest.raises(TypeError, match="save_artifact"):
        integration.MLflowLoggerCallback(save_artifact="yes")
    with pytest.raises(TypeError, match="experiment_name"):
        integration.MLflowLoggerCallback(experiment_name=3)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_ID", raising=False)
    callback = integration.MLflowLoggerCallback(f"sqlite:///{tmp_path}/none.db")
    with pytest.raises(ValueError, match="experiment_name"):
        callback.setup()
    with pytest.raises(TypeError, match="config"):
        integration.setup_mlflow(config=[1])
    with pytest.raises(ValueError, match="create_experiment_if_not_exists"):
        integration.setup_mlflow({}, tracking_uri=f"sqlite:///{tmp_path}/none.db",
                                 experiment_name="missing")


# --------------------------------------------------------------------- Weights & Biases


def _wandb(monkeypatch, tmp_path):
    pytest.importorskip("wandb", reason="wandb is not installed (pip install wandb, or "
                        "pip install -e '.[wandb]')")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "wandb_config"))
    monkeypatch.setenv("WANDB_CACHE_DIR", str(tmp_path / "wandb_cache"))
    from fastasha.air.integrations import wandb as integration

    return integration


def _records(path: str):
    """The records of a W&B run file (``run-<id>.wandb``).

    The file is a LevelDB-style log: a 7-byte header (``:W&B``, a magic
    number, a version), then 32 KiB blocks of chunks, each a 7-byte header
    (CRC, length, type: 1 whole, 2 first, 3 middle, 4 last) and data; the
    records are W&B's ``Record`` protocol buffers.
    """
    from wandb.proto import wandb_internal_pb2 as pb

    with open(path, "rb") as f:
        data = f.read()
    assert data[:4] == b":W&B"
    pos, block, parts = 7, 32768, b""
    while pos + 7 <= len(data):
        left = block - pos % block
        if left < 7:
            pos += left
            continue
        _, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        if kind == 0 and length == 0:
            break
        chunk = data[pos + 7:pos + 7 + length]
        pos += 7 + length
        if kind in (1, 2):
            parts = chunk
        else:
            parts += chunk
        if kind in (1, 4):
            record = pb.Record()
            record.ParseFromString(parts)
            yield record


def _read_run(path: str) -> dict:
    """What a run file holds: its run record, config, history rows and exit code."""
    out: dict = {"history": [], "config": {}, "exit": None, "run": None}
    for record in _records(path):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            out["run"] = record.run
            for item in record.run.config.update:
                out["config"][item.key] = json.loads(item.value_json)
        elif kind == "config":
            for item in record.config.update:
                out["config"][item.key] = json.loads(item.value_json)
        elif kind == "history":
            out["history"].append({item.key or "/".join(item.nested_key):
                                   json.loads(item.value_json) for item in record.history.item})
        elif kind == "exit":
            out["exit"] = record.exit.exit_code
    return out


def test_wandb_callback_logs_each_trial(tmp_path, monkeypatch):
    integration = _wandb(monkeypatch, tmp_path)
    space = dict(SPACE, fail_at=tune.sample_from(
        lambda spec: 2 if spec.config["x"] > 0.85 else None))
    space["x"] = tune.grid_search([0.2, 0.4, 0.6, 0.9])
    callback = integration.WandbLoggerCallback(project="tests", excludes=["extra"])
    grid = _sweep(tmp_path, ot.curve, [callback], param_space=space, num_samples=1)
    results = _by_trial(grid)
    files = glob.glob(str(tmp_path / "sweep" / "trials" / "*" / "wandb" / "offline-run-*" /
                          "run-*.wandb"))
    runs = {}
    for path in files:
        run = _read_run(path)
        runs[run["run"].run_id] = run
    assert set(runs) == set(results)
    for trial_id, result in results.items():
        run = runs[trial_id]
        failed = result.config["x"] > 0.85
        assert run["exit"] == (1 if failed else 0)
        assert run["run"].project == "tests"
        assert run["run"].run_group == "sweep"           # the experiment's name
        assert run["config"]["x"] == result.config["x"]
        assert run["config"]["model"] == result.config["model"]
        frame = result.metrics_dataframe
        assert [row["loss"] for row in run["history"]] == list(frame["loss"])
        assert [row["training_iteration"] for row in run["history"]] == \
            list(frame["training_iteration"])
        assert not any(key.startswith("extra") or key == "done"
                       for row in run["history"] for key in row)


def test_wandb_setup_inside_the_objective(tmp_path, monkeypatch):
    _wandb(monkeypatch, tmp_path)
    space = dict(SPACE, wandb_dir=str(tmp_path / "runs"))
    (tmp_path / "runs").mkdir()
    grid = _sweep(tmp_path, ot.curve_with_wandb, param_space=space, num_samples=6)
    results = _by_trial(grid)
    runs = {}
    for path in glob.glob(str(tmp_path / "runs" / "wandb" / "offline-run-*" / "run-*.wandb")):
        run = _read_run(path)
        runs[run["run"].run_id] = run
    assert set(runs) == set(results)
    for trial_id, result in results.items():
        run = runs[trial_id]
        assert run["exit"] == 0                  # finished when its trial ended
        assert run["run"].run_group == "sweep"
        assert [row["inner_loss"] for row in run["history"]] == \
            list(result.metrics_dataframe["loss"])


def test_wandb_setup_runs_all_finish_when_fit_returns(tmp_path, monkeypatch):
    """The objective never finishes its run: fastasha does, before the trial counts as
    ended, so the run files of each trial process's last trial are complete too."""
    _wandb(monkeypatch, tmp_path)
    (tmp_path / "runs").mkdir()
    space = dict(SPACE, wandb_dir=str(tmp_path / "runs"))
    grid = _sweep(tmp_path, ote.wandb_left_open, param_space=space, num_samples=4)
    results = _by_trial(grid)
    # W&B's own service process writes the run files: on a busy machine a file may still
    # lack its records for a moment after the run finished. A run nobody finished never
    # gets its exit record (trial processes leave with os._exit), so waiting for them
    # still fails the test if fastasha did not finish the runs
    deadline = time.monotonic() + 15
    while True:
        runs = [_read_run(path) for path in glob.glob(
            str(tmp_path / "runs" / "wandb" / "offline-run-*" / "run-*.wandb"))]
        if time.monotonic() > deadline or (
                len(runs) == len(results) and
                all(r["run"] is not None and r["exit"] is not None for r in runs)):
            break
        time.sleep(0.1)
    assert all(run["run"] is not None for run in runs), runs
    runs = {run["run"].run_id: run for run in runs}
    assert set(runs) == set(results)
    assert {trial_id: run["exit"] for trial_id, run in runs.items()} == dict.fromkeys(results, 0)


def test_wandb_bad_arguments(tmp_path, monkeypatch):
    integration = _wandb(monkeypatch, tmp_path)
    with pytest.raises(TypeError, match="excludes"):
        integration.WandbLoggerCallback(project="p", excludes="loss")
    with pytest.raises(ValueError, match="upload_timeout"):
        integration.WandbLoggerCallback(project="p", upload_timeout=0)
    with pytest.raises(TypeError, match="log_config"):
        integration.WandbLoggerCallback(project="p", log_config="no")
    monkeypatch.delenv("WANDB_PROJECT_NAME", raising=False)
    with pytest.raises(ValueError, match="project"):
        integration.WandbLoggerCallback().setup()
    with pytest.raises(ValueError, match="api_key"):
        integration.WandbLoggerCallback(project="p", api_key="a", api_key_file="f").setup()
    # online, with no key anywhere: said before any trial starts
    monkeypatch.setenv("WANDB_MODE", "online")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("NETRC", str(tmp_path / "netrc"))
    with pytest.raises(ValueError, match="WANDB_API_KEY"):
        integration.WandbLoggerCallback(project="p").setup()
    with pytest.deprecated_call():
        callback = integration.WandbLoggerCallback(project="p", save_checkpoints=True)
    assert callback.upload_checkpoints
