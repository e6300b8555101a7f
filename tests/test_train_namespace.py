"""``from fastasha import train``: the Ray Train names that Ray Tune scripts of Ray 2.7 and later use.

Such scripts report with ``train.report`` and configure with
``train.RunConfig``; they must run after changing only their imports.
"""

from __future__ import annotations

import pytest

from fastasha import train, tune
from fastasha.schedulers import AsyncHyperBandScheduler


def test_each_name_is_the_tune_object_of_the_same_name():
    for name in ("report", "get_context", "get_checkpoint", "Checkpoint", "RunConfig",
                 "CheckpointConfig", "FailureConfig", "SyncConfig", "Result", "TrialContext"):
        assert getattr(train, name) is getattr(tune, name), name
    assert train.TrainContext is tune.TrialContext is tune.TuneContext
    assert set(train.__all__) == set(dir(train))


def test_ray_trainers_are_refused_with_what_to_do_instead():
    with pytest.raises(AttributeError, match="ScalingConfig.*not Ray Train's distributed "
                                             "trainers.*tune.with_resources"):
        train.ScalingConfig   # noqa: B018
    with pytest.raises(AttributeError, match="has no attribute 'no_such_name'"):
        train.no_such_name    # noqa: B018
    with pytest.raises(ImportError, match="cannot import name 'TorchTrainer'"):
        from fastasha.train import TorchTrainer  # noqa: F401


def easy_objective(config):
    """The Ray 2.7-era ASHA example's objective, as such a script writes it."""
    context = train.get_context()
    for step in range(config["steps"]):
        score = (0.1 + config["width"] * step / 100) ** (-1) + config["height"] * 0.1
        train.report({"iterations": step, "mean_loss": score,
                      "seen_id": context.get_trial_id()})


def test_a_script_written_with_train_runs_after_changing_its_imports(tmp_path):
    scheduler = AsyncHyperBandScheduler(grace_period=2, max_t=20)
    tuner = tune.Tuner(
        tune.with_resources(easy_objective, {"cpu": 1, "gpu": 0}),
        run_config=train.RunConfig(name="asynchyperband_test", storage_path=str(tmp_path),
                                   stop={"training_iteration": 15}, verbose=0),
        tune_config=tune.TuneConfig(metric="mean_loss", mode="min", scheduler=scheduler,
                                    num_samples=8, seed=3),
        param_space={"steps": 20, "width": tune.uniform(10, 100),
                     "height": tune.uniform(0, 100)},
    )
    grid = tuner.fit()
    assert grid.num_errors == 0 and len(grid) == 8
    for result in grid:
        assert isinstance(result, train.Result)
        assert result.metrics["seen_id"] == result.metrics["trial_id"]
        assert 1 <= result.metrics["training_iteration"] <= 15
    # the stop criterion ends the trials ASHA lets through; ASHA stops some earlier
    iterations = sorted(r.metrics["training_iteration"] for r in grid)
    assert iterations[-1] == 15 and iterations[0] < 15
    best = grid.get_best_result()
    assert best.metrics["mean_loss"] == min(r.metrics["mean_loss"] for r in grid
                                            if r.metrics["training_iteration"] == 15)


def checkpointing_objective(config):
    """Saves a checkpoint per step; its first attempt fails after step 1."""
    import json
    import os
    import tempfile

    start = 0
    checkpoint = train.get_checkpoint()
    if checkpoint is not None:
        with open(os.path.join(checkpoint.path, "state.json")) as f:
            start = json.load(f)["step"] + 1
    for step in range(start, 4):
        with tempfile.TemporaryDirectory() as d:
            with open(os.path.join(d, "state.json"), "w") as f:
                json.dump({"step": step}, f)
            train.report({"step": step, "start": start},
                         checkpoint=train.Checkpoint.from_directory(d))
        if step == 1 and not os.path.exists(config["failed_once"]):
            open(config["failed_once"], "w").close()
            raise RuntimeError("the first attempt fails here")


def test_train_checkpoints_resume_a_failed_trial(tmp_path):
    grid = tune.Tuner(
        checkpointing_objective,
        param_space={"failed_once": str(tmp_path / "failed_once")},
        run_config=train.RunConfig(name="ckpt", storage_path=str(tmp_path), verbose=0,
                                   failure_config=train.FailureConfig(max_failures=1),
                                   checkpoint_config=train.CheckpointConfig(num_to_keep=2)),
        tune_config=tune.TuneConfig(metric="step", mode="max"),
    ).fit()
    result = grid[0]
    assert result.error is None
    # the second attempt began after the checkpoint of step 1
    assert result.metrics["step"] == 3 and result.metrics["start"] == 2
    assert [row["step"] for row in result.metrics_dataframe.to_dict("records")] == [0, 1, 2, 3]
    with open(f"{result.checkpoint.path}/state.json") as f:
        assert f.read() == '{"step": 3}'
