"""Review of the MLflow integration: what a user hits with real sweeps.

Real sweeps in loky worker processes log into an SQLite MLflow store.
"""

from __future__ import annotations

import threading
import time
import warnings

import joblib
import pytest

import objectives_review_trackers as ort
from fastasha import tune

mlflow = pytest.importorskip("mlflow", reason="pip install mlflow-skinny")
pytest.importorskip("sqlalchemy", reason="pip install sqlalchemy alembic")

from fastasha.air.integrations.mlflow import MLflowLoggerCallback  # noqa: E402


def _fit(tmp_path, callback, name, num_samples=4):
    tuner = tune.Tuner(
        ort.writes_a_file, param_space={"x": tune.uniform(0.1, 1.0)},
        tune_config=tune.TuneConfig(metric="loss", mode="min", num_samples=num_samples),
        run_config=tune.RunConfig(storage_path=str(tmp_path / "results"), name=name,
                                  verbose=0, callbacks=[callback]))
    with joblib.parallel_config(backend="loky", n_jobs=2):
        return tuner.fit()


def _writer_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "fastasha-mlflow"]


def test_no_writer_thread_left_after_fit(tmp_path):
    """Each fit() started a writer thread that waited forever after it: one more thread per
    fit() (with the same callback or a new one)."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    before = len(_writer_threads())
    callback = MLflowLoggerCallback(tracking_uri=uri, experiment_name="threads")
    for name in ("first", "second"):
        grid = _fit(tmp_path, callback, name)
        assert not grid.errors
        assert len(_writer_threads()) == before, [t.name for t in threading.enumerate()]
    _fit(tmp_path, MLflowLoggerCallback(tracking_uri=uri, experiment_name="threads"), "third")
    assert len(_writer_threads()) == before
    client = mlflow.MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("threads").experiment_id])
    assert len(runs) == 12 and {r.info.status for r in runs} == {"FINISHED"}


def test_failed_artifact_upload_loses_no_other_trial(tmp_path):
    """An artifact upload that can never work (the experiment's artifact store is a path
    that cannot be made) held up every later write of every trial: the sweep waited 30 s at
    its end, and all but the first trials had no run, the others stayed RUNNING."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = mlflow.MlflowClient(uri)
    client.create_experiment("art", artifact_location="file:///proc/no-such-dir/artifacts")
    callback = MLflowLoggerCallback(tracking_uri=uri, experiment_name="art",
                                    save_artifact=True)
    started = time.monotonic()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        grid = _fit(tmp_path, callback, "art", num_samples=4)
    took = time.monotonic() - started
    assert not grid.errors
    assert took < 20, took
    texts = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    assert any("artifacts" in t and "no-such-dir" in t for t in texts), texts
    assert not any("could not be written" in t for t in texts), texts
    runs = client.search_runs([client.get_experiment_by_name("art").experiment_id])
    assert len(runs) == 4
    assert {r.info.status for r in runs} == {"FINISHED"}
    by_name = {r.data.tags["trial_name"]: r for r in runs}
    for result in grid:
        run = by_name[f"writes_a_file_{result.metrics['trial_id']}"]
        history = client.get_metric_history(run.info.run_id, "loss")
        assert [m.step for m in history] == [1, 2, 3, 4, 5]
        assert history[-1].value == pytest.approx(result.metrics["loss"])


def test_run_deleted_during_the_sweep_holds_up_no_other_trial(tmp_path):
    """A run deleted during the sweep (in MLflow's UI): MLflow refuses its end for good,
    which was put back in front and tried again and again, holding up every later write of
    every trial (fit() waited 30 s at its end and lost them)."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    callback = MLflowLoggerCallback(tracking_uri=uri, experiment_name="deleted")
    tuner = tune.Tuner(
        ort.deletes_its_run,
        param_space={"x": tune.uniform(0.1, 1.0), "uri": uri, "experiment": "deleted",
                     "delete": tune.grid_search([True, False, False, False])},
        tune_config=tune.TuneConfig(metric="loss", mode="min", max_concurrent_trials=1),
        run_config=tune.RunConfig(storage_path=str(tmp_path / "results"), name="deleted",
                                  verbose=0, callbacks=[callback]))
    started = time.monotonic()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with joblib.parallel_config(backend="loky", n_jobs=2):
            grid = tuner.fit()
    assert not grid.errors
    texts = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    assert time.monotonic() - started < 25, texts
    texts = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    assert any("refused the end of its run" in t for t in texts), texts
    assert not any("could not be written" in t for t in texts), texts
    client = mlflow.MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("deleted").experiment_id])
    assert len(runs) == 3 and {r.info.status for r in runs} == {"FINISHED"}
    for run in runs:
        assert [m.step for m in client.get_metric_history(run.info.run_id, "loss")] == \
            [1, 2, 3, 4, 5]


def test_results_reach_mlflow_during_the_trial(tmp_path):
    """The writer slept until a trial ended or a thousand values waited: a put into its
    empty queue did not wake it, so a long trial showed nothing in MLflow until its end
    (and a driver that died lost it all). The docstring promises writes a second apart."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    callback = MLflowLoggerCallback(tracking_uri=uri, experiment_name="live")
    tuner = tune.Tuner(
        ort.waits_for_its_metric, param_space={"uri": uri, "experiment": "live"},
        tune_config=tune.TuneConfig(metric="loss", mode="min", num_samples=2),
        run_config=tune.RunConfig(storage_path=str(tmp_path / "results"), name="live",
                                  verbose=0, callbacks=[callback]))
    with joblib.parallel_config(backend="loky", n_jobs=2):
        grid = tuner.fit()
    assert not grid.errors
    for result in grid:
        assert 0 <= result.metrics["seen_after"] < 5, result.metrics["seen_after"]
