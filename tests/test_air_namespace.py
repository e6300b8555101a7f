"""``from fastasha import air`` and ``from fastasha.air import session``: Ray 2.0-2.6 scripts.

Those scripts configure with ``air.RunConfig``, report with
``session.report`` and save dict checkpoints (``Checkpoint.from_dict``);
they must run after changing only their imports.
"""

from __future__ import annotations

import gc
import os
import tempfile

import pytest

from fastasha import air, tune
from fastasha.air import session
from fastasha.schedulers import AsyncHyperBandScheduler


def test_each_name_is_the_tune_object_of_the_same_name():
    from fastasha.air.checkpoint import Checkpoint
    from fastasha.air.config import CheckpointConfig, FailureConfig, RunConfig
    from fastasha.air.result import Result

    assert (RunConfig, CheckpointConfig, FailureConfig) == \
        (tune.RunConfig, tune.CheckpointConfig, tune.FailureConfig)
    assert Checkpoint is air.Checkpoint is tune.Checkpoint
    assert Result is air.Result is tune.Result
    assert air.session is session
    assert session.report is tune.report and session.get_checkpoint is tune.get_checkpoint
    assert set(air.__all__) == set(dir(air))
    assert all(callable(getattr(session, name)) for name in session.__all__)


def test_outside_a_trial_the_session_answers_none_or_rank_zero():
    assert session.get_trial_id() is None and session.get_trial_name() is None
    assert session.get_trial_dir() is None and session.get_trial_resources() == {}
    assert (session.get_world_rank(), session.get_world_size()) == (0, 1)
    with pytest.raises(RuntimeError, match="outside a trial"):
        session.report({"loss": 1.0})


def test_ray_air_training_is_refused_with_what_to_do_instead():
    with pytest.raises(AttributeError, match="ScalingConfig.*tune.with_resources"):
        air.ScalingConfig   # noqa: B018
    with pytest.raises(RuntimeError, match="tune.with_parameters"):
        session.get_dataset_shard("train")


def test_dict_checkpoints_round_trip_and_clean_up():
    checkpoint = air.Checkpoint.from_dict({"step": 3, "weights": [1.5, 2.5]})
    assert checkpoint.to_dict() == {"step": 3, "weights": [1.5, 2.5]}
    folder = checkpoint.path
    del checkpoint
    gc.collect()
    assert not os.path.exists(folder)
    with pytest.raises(TypeError, match="needs a dict"):
        air.Checkpoint.from_dict([1, 2])


def test_a_directory_checkpoint_is_not_a_dict(tmp_path):
    with pytest.raises(ValueError, match="no dict checkpoint.*as_directory"):
        air.Checkpoint.from_directory(tmp_path).to_dict()


def easy_objective(config):
    """The Ray 2.0-2.6 ASHA example's objective, as such a script writes it."""
    for step in range(config["steps"]):
        score = (0.1 + config["width"] * step / 100) ** (-1) + config["height"] * 0.1
        session.report({"iterations": step, "mean_loss": score,
                        "seen_id": session.get_trial_id(),
                        "seen_cpus": session.get_trial_resources()["cpu"]})


def test_a_script_written_with_air_runs_after_changing_its_imports(tmp_path):
    scheduler = AsyncHyperBandScheduler(grace_period=2, max_t=20)
    grid = tune.Tuner(
        tune.with_resources(easy_objective, {"cpu": 1, "gpu": 0}),
        # local_dir: the name of storage_path up to Ray 2.5
        run_config=air.RunConfig(name="asynchyperband_test", local_dir=str(tmp_path),
                                 stop={"training_iteration": 15}, verbose=0),
        tune_config=tune.TuneConfig(metric="mean_loss", mode="min", scheduler=scheduler,
                                    num_samples=8, seed=5),
        param_space={"steps": 20, "width": tune.uniform(10, 100),
                     "height": tune.uniform(0, 100)},
    ).fit()
    assert grid.num_errors == 0 and len(grid) == 8
    for result in grid:
        assert isinstance(result, air.Result)
        assert result.metrics["seen_id"] == result.metrics["trial_id"]
        assert result.metrics["seen_cpus"] == 1
    iterations = sorted(r.metrics["training_iteration"] for r in grid)
    assert iterations[-1] == 15 and iterations[0] < 15
    assert grid.experiment_path == str(tmp_path / "asynchyperband_test")


def test_local_dir_is_storage_path_and_not_both():
    config = air.RunConfig(local_dir="/tmp/somewhere")
    assert config.storage_path == "/tmp/somewhere" and config.local_dir is None
    assert air.RunConfig(local_dir="/a", storage_path="/a").storage_path == "/a"
    with pytest.raises(ValueError, match="local_dir is Ray 2.0-2.5's name of storage_path"):
        air.RunConfig(local_dir="/a", storage_path="/b")


def dict_checkpointing_objective(config):
    """Saves a dict checkpoint per step; its first attempt fails after step 1."""
    start = 0
    checkpoint = session.get_checkpoint()
    if checkpoint is not None:
        start = checkpoint.to_dict()["step"] + 1
    for step in range(start, 4):
        session.report({"step": step, "start": start},
                       checkpoint=air.Checkpoint.from_dict({"step": step}))
        if step == 1 and not os.path.exists(config["failed_once"]):
            open(config["failed_once"], "w").close()
            raise RuntimeError("the first attempt fails here")


def _dict_checkpoint_folders() -> set:
    return {p for p in os.listdir(tempfile.gettempdir()) if p.startswith("fastasha_checkpoint_")}


def test_dict_checkpoints_resume_a_failed_trial(tmp_path):
    before = _dict_checkpoint_folders()
    grid = tune.Tuner(
        dict_checkpointing_objective,
        param_space={"failed_once": str(tmp_path / "failed_once")},
        run_config=air.RunConfig(name="ckpt", storage_path=str(tmp_path), verbose=0,
                                 failure_config=air.FailureConfig(max_failures=1)),
        tune_config=tune.TuneConfig(metric="step", mode="max"),
    ).fit()
    result = grid[0]
    assert result.error is None
    assert result.metrics["step"] == 3 and result.metrics["start"] == 2
    assert result.checkpoint.to_dict() == {"step": 3}
    # each dict's temporary folder went once the trial had reported it
    assert _dict_checkpoint_folders() - before == set()
