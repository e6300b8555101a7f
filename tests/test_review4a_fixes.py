"""Defects found reviewing the day's changes (BasicVariantGenerator, dict checkpoints, shared configs).

Each test reproduces one defect through the public API.
"""

from __future__ import annotations

import os
import threading

import joblib
import pytest

from fastasha import air, tune
from fastasha.search import BasicVariantGenerator, grid_search, uniform

# ------------------------------------------------ threading backend: configs that cannot be pickled

LOCK = threading.Lock()
ATTEMPTS: dict[str, int] = {}


def pops_its_config_then_fails_once(config):
    lock = config.pop("lock")       # Ray scripts take things out of their config
    config["x"] = config["x"] * 100
    with lock:
        trial_id = tune.get_context().get_trial_id()
        ATTEMPTS[trial_id] = ATTEMPTS.get(trial_id, 0) + 1
        if ATTEMPTS[trial_id] == 1:
            raise RuntimeError("the first attempt fails")
    tune.report({"score": config["x"]})


def test_an_unpicklable_config_mutated_by_its_trial_is_whole_for_the_retry(tmp_path):
    # The config went to the worker thread as the driver's own object: what the
    # objective popped was gone for the retry (KeyError: 'lock'), and Result.config
    # showed the popped config's stored JSON instead of the objects.
    ATTEMPTS.clear()
    with joblib.parallel_config(backend="threading", n_jobs=2):
        grid = tune.Tuner(
            pops_its_config_then_fails_once,
            param_space={"x": uniform(0, 1), "lock": LOCK},
            tune_config=tune.TuneConfig(num_samples=3, metric="score", mode="max"),
            run_config=tune.RunConfig(name="shared", storage_path=str(tmp_path), verbose=0,
                                      failure_config=tune.FailureConfig(max_failures=1)),
        ).fit()
    assert grid.num_errors == 0, [r.error for r in grid]
    assert sorted(ATTEMPTS.values()) == [2, 2, 2]
    for result in grid:
        assert result.config["lock"] is LOCK and result.config["x"] < 1
        assert result.metrics["score"] == pytest.approx(result.config["x"] * 100)


# ------------------------------------------------ Checkpoint.from_dict in trial processes

KEPT: list = []


def keeps_its_dict_checkpoints(config):
    for step in range(3):
        checkpoint = air.Checkpoint.from_dict({"step": step})
        KEPT.append(checkpoint)      # e.g. the best one so far, kept by the script
        air.session.report({"step": step, "folder": checkpoint.path}, checkpoint=checkpoint)


def test_dict_checkpoint_folders_go_when_the_trial_process_ends(tmp_path):
    # Trial processes end with os._exit, so the weakref finalizers that remove the
    # temporary folders of dict checkpoints still alive never ran: one folder per
    # checkpoint the objective kept, left in the temp dir after every sweep.
    grid = tune.Tuner(
        keeps_its_dict_checkpoints,
        param_space={"x": grid_search([1, 2])},
        tune_config=tune.TuneConfig(metric="step", mode="max"),
        run_config=tune.RunConfig(name="kept", storage_path=str(tmp_path), verbose=0),
    ).fit()
    assert grid.num_errors == 0
    folders = [row for r in grid for row in r.metrics_dataframe["folder"]]
    assert len(folders) == 6
    assert [f for f in folders if os.path.exists(f)] == []
    assert all(r.checkpoint.to_dict() == {"step": 2} for r in grid)


# ------------------------------------------------ Tuner.restore with a BasicVariantGenerator

def record(config):
    tune.report({"score": config["x"]})


def _sweep(tmp_path, name, search_alg=None):
    with joblib.parallel_config(backend="threading", n_jobs=1):
        tune.Tuner(record, param_space={"x": uniform(0, 1), "g": grid_search([1, 2])},
                   tune_config=tune.TuneConfig(num_samples=3, search_alg=search_alg),
                   run_config=tune.RunConfig(name=name, storage_path=str(tmp_path),
                                             verbose=0)).fit()
    return str(tmp_path / name)


def test_restore_names_points_that_differ_from_the_experiments(tmp_path):
    # A BasicVariantGenerator passed to Tuner.restore with other points failed in
    # the replay with "pass the param_space the experiment started with".
    path = _sweep(tmp_path, "points", BasicVariantGenerator(points_to_evaluate=[{"x": 0.5}]))
    with pytest.raises(ValueError, match="points_to_evaluate") as raised:
        tune.Tuner.restore(path, record, search_alg=BasicVariantGenerator(
            points_to_evaluate=[{"x": 0.6}]))
    assert "param_space" not in str(raised.value)
    # the same points, or other options that do not change the configs, restore
    grid = tune.Tuner.restore(path, record, search_alg=BasicVariantGenerator(
        points_to_evaluate=[{"x": 0.5}], max_concurrent=1)).fit()
    assert len(grid) == 6 and grid.num_errors == 0


def test_restore_refuses_points_for_an_experiment_that_had_none(tmp_path):
    path = _sweep(tmp_path, "nopoints")
    with pytest.raises(ValueError, match="points_to_evaluate") as raised:
        tune.Tuner.restore(path, record, search_alg=BasicVariantGenerator(
            points_to_evaluate=[{"x": 0.6}]))
    assert "param_space" not in str(raised.value)
    with pytest.raises(ValueError, match="constant_grid_search"):
        tune.Tuner.restore(path, record,
                           search_alg=BasicVariantGenerator(constant_grid_search=True))


def test_restore_with_other_unstorable_points_names_them(tmp_path):
    import numpy as np

    # points of numpy values are not stored: the replay finds the difference
    path = _sweep(tmp_path, "numpy", BasicVariantGenerator(
        points_to_evaluate=[{"x": np.float64(0.5)}]))
    with pytest.raises(ValueError, match="points_to_evaluate"):
        tune.Tuner.restore(path, record, search_alg=BasicVariantGenerator(
            points_to_evaluate=[{"x": np.float64(0.25)}])).fit()
    grid = tune.Tuner.restore(path, record, search_alg=BasicVariantGenerator(
        points_to_evaluate=[{"x": np.float64(0.5)}])).fit()
    assert len(grid) == 6 and grid.num_errors == 0
