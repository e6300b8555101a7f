"""Ray's tune.register_trainable and tune.SyncConfig, as Ray scripts use them."""

from __future__ import annotations

import joblib
import pytest

from fastasha import tune
from fastasha._trainable import _REGISTRY


def objective(config):
    for step in range(1, 4):
        tune.report({"loss": config["x"] / step})


@pytest.fixture
def registry():
    saved = dict(_REGISTRY)
    yield
    _REGISTRY.clear()
    _REGISTRY.update(saved)


def test_a_registered_name_runs_in_the_tuner_in_tune_run_and_in_restore(tmp_path, registry):
    tune.register_trainable("my_objective", objective)
    grid = tune.Tuner("my_objective", param_space={"x": tune.grid_search([1.0, 2.0])},
                      tune_config=tune.TuneConfig(metric="loss", mode="min"),
                      run_config=tune.RunConfig(name="by_name", storage_path=str(tmp_path),
                                                verbose=0),
                      resources={"cpu": 2}).fit()           # loky: the function is shipped
    assert grid.num_terminated == 2
    assert grid.get_best_result().metrics["loss"] == pytest.approx(1.0 / 3)
    again = tune.Tuner.restore(grid.experiment_path, "my_objective").fit()
    assert again.num_terminated == 2
    with joblib.parallel_config(backend="threading"):
        analysis = tune.run("my_objective", config={"x": 3.0}, metric="loss", mode="min",
                            storage_path=str(tmp_path), name="run_by_name", verbose=0)
    assert analysis.best_result["loss"] == pytest.approx(1.0)


def test_registering_again_replaces_and_wrappers_keep_their_resources(tmp_path, registry):
    tune.register_trainable("obj", lambda config: None)
    tune.register_trainable("obj", tune.with_resources(objective, {"cpu": 2}))
    with joblib.parallel_config(backend="threading"):
        grid = tune.Tuner("obj", param_space={"x": 1.0},
                          run_config=tune.RunConfig(name="e", storage_path=str(tmp_path),
                                                    verbose=0),
                          resources={"cpu": 2}).fit()
    assert grid[0].metrics["training_iteration"] == 3


def test_an_unknown_name_names_what_is_registered(registry):
    tune.register_trainable("known", objective)
    with pytest.raises(ValueError, match=r"no trainable is registered as 'unknown' "
                                         r"\(registered: 'known'\).*register_trainable"):
        tune.Tuner("unknown")
    with pytest.raises(ValueError, match="no trainable is registered as 'unknown'"):
        tune.run("unknown")


@pytest.mark.parametrize("name, trainable, match", [
    ("", objective, "non-empty string"),
    (3, objective, "non-empty string"),
    ("x", "not callable", "needs a function or a Trainable class"),
])
def test_bad_registrations_are_refused(registry, name, trainable, match):
    with pytest.raises(TypeError, match=match):
        tune.register_trainable(name, trainable)


def test_a_sync_config_is_accepted_and_changes_nothing(tmp_path):
    sync = tune.SyncConfig(sync_period=60, sync_artifacts=True)
    assert (sync.sync_period, sync.sync_timeout, sync.sync_artifacts,
            sync.sync_artifacts_on_checkpoint) == (60, 1800, True, True)
    with joblib.parallel_config(backend="threading"):
        grid = tune.Tuner(objective, param_space={"x": 1.0},
                          run_config=tune.RunConfig(name="e", storage_path=str(tmp_path),
                                                    verbose=0, sync_config=sync)).fit()
        analysis = tune.run(objective, config={"x": 2.0}, storage_path=str(tmp_path),
                            name="r", verbose=0, sync_config=tune.SyncConfig())
    assert grid.num_terminated == 1 and len(analysis.trials) == 1
    assert sorted(p.name for p in (tmp_path / "e").iterdir() if not p.name.startswith(".")) \
        == ["experiment.db", "trials"]


@pytest.mark.parametrize("kwargs, error, match", [
    ({"sync_period": -1}, ValueError, "sync_period must be a number of seconds >= 0"),
    ({"sync_timeout": "1h"}, ValueError, "sync_timeout must be a number of seconds"),
    ({"sync_artifacts": "yes"}, TypeError, "sync_artifacts"),
])
def test_bad_sync_configs_are_refused(kwargs, error, match):
    with pytest.raises(error, match=match):
        tune.SyncConfig(**kwargs)
