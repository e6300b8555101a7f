"""Ray Tune 1.x-2.x class objectives (``tune.Trainable``) moved over as they are.

Each test runs a real sweep (loky workers) through ``tune.run`` or the
Tuner, with the classes of tests/objectives_review10.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fastasha import tune
from fastasha.schedulers import ASHAScheduler

import objectives_review10 as objectives


def test_step_results_get_rays_running_totals_carried_by_a_checkpoint(tmp_path):
    """Ray's Trainable.train sums timesteps_this_iter / episodes_this_iter into
    timesteps_total / episodes_total and a returned time_this_iter_s into time_total_s;
    a trial retried from its checkpoint goes on from the checkpoint's totals."""
    analysis = tune.run(objectives.Episodes, config={"rate": 1.0, "fail_at": 4,
                                                     "marker": str(tmp_path)},
                        stop={"training_iteration": 5}, checkpoint_freq=2, max_failures=1,
                        storage_path=str(tmp_path), name="totals", verbose=0)
    (trial,) = analysis.trials
    assert trial.status == "TERMINATED"
    history = trial.metrics_dataframe
    # attempt 1: steps 1-3 (a checkpoint at 2, a crash in step 4); attempt 2: steps 3-5
    assert list(history["training_iteration"]) == [1, 2, 3, 3, 4, 5]
    assert list(history["timesteps_total"]) == [100 * i for i in (1, 2, 3, 3, 4, 5)]
    assert list(history["episodes_total"]) == [2 * i for i in (1, 2, 3, 3, 4, 5)]
    assert list(history["time_total_s"]) == [10.0 * i for i in (1, 2, 3, 3, 4, 5)]


def test_asha_can_count_a_trials_time_in_timesteps_total(tmp_path):
    """ASHAScheduler(time_attr="timesteps_total"), as Ray's RL examples configure it."""
    analysis = tune.run(objectives.Episodes,
                        config={"rate": tune.grid_search([4.0, 3.0, 2.0, 1.0])},
                        max_concurrent_trials=1,       # one by one: the later, worse ones stop
                        scheduler=ASHAScheduler(time_attr="timesteps_total", max_t=400,
                                                grace_period=100, reduction_factor=2),
                        stop={"training_iteration": 8},  # a bound, should ASHA see no time
                        metric="reward", mode="max", storage_path=str(tmp_path), verbose=0)
    totals = sorted(t.last_result["timesteps_total"] for t in analysis.trials)
    assert totals[-1] == 400 and totals[0] < 400         # max_t ends the best, ASHA others
    assert all(t.status == "TERMINATED" for t in analysis.trials)
    assert analysis.best_config["rate"] == 4.0


def test_log_result_sees_each_completed_result_in_the_trial(tmp_path):
    analysis = tune.run(objectives.LogsResults, config={"marker": str(tmp_path)},
                        storage_path=str(tmp_path), verbose=0)
    (trial,) = analysis.trials
    import json

    lines = Path(tmp_path, f"log_{trial.trial_id}.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines] == [
        {"loss": 1.0 / i, "training_iteration": i, "done": i == 3} for i in (1, 2, 3)]


def test_with_parameters_objects_reach_setup_whatever_their_names(tmp_path):
    """Ray's with_parameters passes its objects to setup(); 'storage' and
    'logger_creator' are also Trainable.__init__'s keywords."""
    trainable = tune.with_parameters(objectives.TakesNamedObjects, storage="db",
                                     logger_creator="mine", data=[1, 2])
    (trial,) = tune.run(trainable, storage_path=str(tmp_path), verbose=0).trials
    assert (trial.last_result["storage"], trial.last_result["logger_creator"],
            trial.last_result["data"]) == ("db", "mine", [1, 2])


def test_checkpointing_without_save_checkpoint_fails_the_trial_as_in_ray(tmp_path):
    """An empty checkpoint would let a retry resume at its iteration with a fresh state."""
    analysis = tune.run(objectives.NoSaveCheckpoint, checkpoint_freq=1,
                        storage_path=str(tmp_path), verbose=0, raise_on_failed_trial=False)
    (trial,) = analysis.trials
    assert trial.status == "ERROR" and trial.checkpoint is None
    assert isinstance(trial.error, NotImplementedError)
    assert "save_checkpoint" in str(trial.error)


def test_resuming_without_load_checkpoint_fails_the_trial_as_in_ray(tmp_path):
    analysis = tune.run(objectives.NoLoadCheckpoint, config={"marker": str(tmp_path)},
                        checkpoint_freq=1, max_failures=1, storage_path=str(tmp_path),
                        verbose=0, raise_on_failed_trial=False)
    (trial,) = analysis.trials
    assert trial.status == "ERROR"
    assert isinstance(trial.error, NotImplementedError)
    assert "load_checkpoint" in str(trial.error)


def test_export_model_writes_into_the_trial_folder_by_default(tmp_path):
    analysis = tune.run(objectives.Exports, config={"w": tune.grid_search([1, 2])},
                        storage_path=str(tmp_path), verbose=0)
    for trial in analysis.trials:
        assert Path(trial.path, "model.txt").read_text() == str(trial.config["w"])
    by_hand = objectives.Exports({"w": 3})
    out = tmp_path / "out"
    out.mkdir()
    assert by_hand.export_model(["txt"], export_dir=str(out)) == {"txt": str(out / "model.txt")}
    with pytest.raises(ValueError, match="needs an export_dir outside a sweep"):
        by_hand.export_model("txt")
    with pytest.raises(TypeError, match=r"export_formats=.*self\.export_model"):
        tune.run(objectives.Exports, config={"w": 1}, export_formats=["txt"],
                 storage_path=str(tmp_path), verbose=0)
