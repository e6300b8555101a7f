"""``tune.run`` and ``ExperimentAnalysis``: Ray Tune's older entry point, through the public API."""

from __future__ import annotations

import time

import pytest

from fastasha import tune
from fastasha.schedulers import AsyncHyperBandScheduler


def easy_objective(config):
    """The shape of Ray's classic ASHA example: a loss that falls with the steps."""
    for step in range(config["steps"]):
        time.sleep(0.001)
        tune.report({"iterations": step,
                     "mean_loss": (0.1 + config["width"] * step / 100) ** -1 +
                     config["height"] * 0.1})


def fails_for_big_height(config):
    if config["height"] > 50:
        raise ValueError("too high")
    tune.report({"mean_loss": config["height"]})


def test_a_tune_run_asha_script_runs_and_answers_rays_questions(tmp_path):
    analysis = tune.run(
        easy_objective,
        name="asha_run",
        local_dir=str(tmp_path),               # Ray's older name for storage_path
        scheduler=AsyncHyperBandScheduler(grace_period=5, max_t=50),
        metric="mean_loss", mode="min",
        stop={"training_iteration": 50},
        resources_per_trial={"cpu": 1, "gpu": 0},
        num_samples=8,
        config={"steps": 50, "width": tune.uniform(10, 100), "height": tune.uniform(0, 100)},
        verbose=0,
    )
    assert analysis.experiment_path == str(tmp_path / "asha_run")
    assert len(analysis.trials) == 8 and all(t.status == "TERMINATED" for t in analysis.trials)
    lengths = [t.last_result["training_iteration"] for t in analysis.trials]
    assert max(lengths) == 50 and min(lengths) < 50       # ASHA stopped some early
    best = min(analysis.trials, key=lambda t: t.last_result["mean_loss"])
    assert analysis.best_config == best.config
    assert analysis.best_result["mean_loss"] == best.last_result["mean_loss"]
    assert analysis.best_trial.trial_id == best.trial_id
    assert analysis.get_best_config(metric="mean_loss", mode="max") != analysis.best_config
    assert set(analysis.get_all_configs()) == {t.trial_id for t in analysis.trials}
    assert len(analysis.results_df) == 8 and "config/width" in analysis.results_df
    # read back from the folder, as Ray's ExperimentAnalysis(path, default_metric=...)
    again = tune.ExperimentAnalysis(analysis.experiment_path, default_metric="mean_loss",
                                    default_mode="min")
    assert again.best_config == analysis.best_config
    assert len(again.dataframe(metric="mean_loss", mode="min")) == 8


def test_failed_trials_raise_a_tune_error_unless_told_not_to(tmp_path):
    space = {"height": tune.grid_search([10, 90])}
    with pytest.raises(tune.TuneError, match="trials did not complete.*too high"):
        tune.run(fails_for_big_height, config=space, storage_path=str(tmp_path), name="a",
                 verbose=0)
    assert tune.ExperimentAnalysis(tmp_path / "a").get_best_config("mean_loss", "min") == \
        {"height": 10}                            # everything was saved before the raise
    analysis = tune.run(fails_for_big_height, config=space, storage_path=str(tmp_path),
                        name="b", verbose=0, raise_on_failed_trial=False)
    assert sorted(t.status for t in analysis.trials) == ["ERROR", "TERMINATED"]
    assert isinstance(next(t.error for t in analysis.trials if t.error), ValueError)


def test_tune_run_refuses_what_it_cannot_honour(tmp_path):
    with pytest.raises(TypeError, match=r"server_port=\.\.\..*no equivalent"):
        tune.run(fails_for_big_height, config={"height": 1}, server_port=4321,
                 storage_path=str(tmp_path))
    with pytest.raises(TypeError, match="unexpected keyword.*'no_such_argument'"):
        tune.run(fails_for_big_height, no_such_argument=1)
    with pytest.raises(ValueError, match="no trainable is registered as 'PPO'"):
        tune.run("PPO")
    with pytest.raises(TypeError, match="needs the objective function"):
        tune.run(object())
    with pytest.raises(ValueError, match="pass metric and mode"):
        tune.run(fails_for_big_height, config={"height": tune.grid_search([1, 2])},
                 storage_path=str(tmp_path), verbose=0, server_port=None).get_best_config()
    assert list(tmp_path.iterdir())[0].name.startswith("fails_for_big_height")


LOSSES = [3.0, 1.0, 0.5, 2.0, 4.0]


def checkpoints_each_step(config):
    import tempfile
    from pathlib import Path

    for step, loss in enumerate(LOSSES, start=1):
        with tempfile.TemporaryDirectory() as d:
            Path(d, "step").write_text(str(step))
            tune.report({"loss": loss}, checkpoint=tune.Checkpoint.from_directory(d))


def test_keep_checkpoints_num_and_a_min_score_attr_keep_the_best(tmp_path):
    from pathlib import Path

    analysis = tune.run(checkpoints_each_step, storage_path=str(tmp_path), verbose=0,
                        metric="loss", mode="min", keep_checkpoints_num=2,
                        checkpoint_score_attr="min-loss")
    (trial,) = analysis.trials
    kept = [int(Path(c.path, "step").read_text()) for c, _ in trial.best_checkpoints]
    # the two best by loss, the worse first, as Ray's best_checkpoints (the latest, step 5,
    # is kept on disk to resume from but is not among them)
    assert kept == [2, 3]
    assert int(Path(trial.checkpoint.path, "step").read_text()) == 5
    assert int(Path(analysis.best_checkpoint.path, "step").read_text()) == 3


def test_the_rest_of_rays_analysis_names(tmp_path):
    analysis = tune.run(checkpoints_each_step, config={"x": tune.grid_search([1, 2])},
                        storage_path=str(tmp_path), verbose=0, metric="loss", mode="min")
    from pathlib import Path

    best = analysis.best_trial
    step = lambda c: int(Path(c.path, "step").read_text())     # noqa: E731
    assert step(analysis.get_best_checkpoint(best)) == 3
    assert step(analysis.get_best_checkpoint(best, "loss", "max")) == 5
    assert step(analysis.get_last_checkpoint(best)) == 5
    assert step(analysis.get_last_checkpoint()) == 5
    assert set(analysis.trial_dataframes) == {t.trial_id for t in analysis.trials}
    assert list(analysis.best_dataframe["loss"]) == LOSSES
    assert analysis.best_result_df["loss"].tolist() == [4.0]
    assert best.local_path == best.logdir == best.path


def test_ray_1_code_reads_checkpoints_as_paths_and_the_old_analysis_names(tmp_path):
    """Ray 1.x returned checkpoints as paths and named trial folders logdirs."""
    import os

    analysis = tune.run(checkpoints_each_step, config={"x": tune.grid_search([1, 2])},
                        storage_path=str(tmp_path), verbose=0, metric="loss", mode="min")
    best = analysis.best_trial
    # os.path.join(analysis.best_checkpoint, ...), trial.checkpoint.value: Ray 1.x's lines
    with open(os.path.join(analysis.best_checkpoint, "step")) as f:
        assert f.read() == "3"
    assert best.checkpoint.value == best.checkpoint.local_path == best.checkpoint.path
    assert best.checkpoint.to_air_checkpoint() is best.checkpoint
    assert os.fspath(best.checkpoint) == best.checkpoint.path
    assert tune.Checkpoint(best.checkpoint) == best.checkpoint
    paths = analysis.get_trial_checkpoints_paths(best, "loss")
    assert [value for _, value in paths] == LOSSES
    assert all(os.path.isdir(path) for path, _ in paths)
    assert analysis.get_best_logdir() == analysis.best_logdir == best.path
    assert analysis.get_best_logdir("loss", "max") == best.path     # both trials report alike
    assert set(analysis.fetch_trial_dataframes()) == {t.trial_id for t in analysis.trials}
    frame = analysis.results_df
    assert sorted(frame.index) == sorted(t.trial_id for t in analysis.trials)
    assert frame.loc[best.trial_id, "loss"] == LOSSES[-1]
    again = tune.Analysis(analysis.experiment_path, default_metric="loss", default_mode="min")
    assert isinstance(again, tune.ExperimentAnalysis) and again.best_trial.trial_id == best.trial_id


def slow_or_failing(config):
    import os
    import time

    if os.path.exists(os.path.join(config["flags"], f"fail{config['i']}")):
        raise RuntimeError(f"trial {config['i']} was told to fail")
    time.sleep(config.get("sleep", 0.0))
    tune.report(loss=float(config["i"]))


def test_resume_continues_an_experiment_as_rays_tune_run_does(tmp_path):
    """resume=True takes up the trials a time budget left; '+RESTART_ERRORED' reruns errors."""
    flags = tmp_path / "flags"
    flags.mkdir()
    (flags / "fail0").touch()
    space = {"i": tune.grid_search(list(range(6))), "flags": str(flags), "sleep": 0.3}
    common = dict(name="exp", storage_path=str(tmp_path / "runs"), verbose=0, metric="loss",
                  mode="min", max_concurrent_trials=1, raise_on_failed_trial=False)
    first = tune.run(slow_or_failing, config=space, time_budget_s=1.0, **common)
    statuses = [t.status for t in first.trials]
    assert statuses[0] == "ERROR" and "PENDING" in statuses      # the budget ran out
    # resume=True: the PENDING trials run; the errored one stays as it was
    second = tune.run(slow_or_failing, config=space, resume=True, **common)
    assert [t.status for t in second.trials] == ["ERROR"] + ["TERMINATED"] * 5
    (flags / "fail0").unlink()
    third = tune.run(slow_or_failing, config=space, resume="LOCAL+RESTART_ERRORED", **common)
    assert [t.status for t in third.trials] == ["TERMINATED"] * 6
    assert third.best_config["i"] == 0
    assert [len(t.metrics_dataframe) for t in third.trials] == [1] * 6   # each ran once


def test_resume_values_and_what_they_need(tmp_path):
    common = dict(config={"i": 1, "flags": str(tmp_path)}, storage_path=str(tmp_path),
                  verbose=0)
    with pytest.raises(ValueError, match="found no experiment to resume at .*nothing_here"):
        tune.run(slow_or_failing, name="nothing_here", resume=True, **common)
    with pytest.raises(ValueError, match=r"needs the experiment's name="):
        tune.run(slow_or_failing, resume=True, **common)
    # as in Ray, AUTO without a name has nothing to find (a generated name is new): it
    # starts an experiment, and says how to resume one
    with pytest.warns(UserWarning, match=r"without name=.*starts a new one"):
        started = tune.run(slow_or_failing, resume="AUTO", **common)
    assert [t.status for t in started.trials] == ["TERMINATED"]
    with pytest.raises(ValueError, match=r"resume='REMOTE'.*local or mounted folders"):
        tune.run(slow_or_failing, name="x", resume="REMOTE", **common)
    with pytest.raises(TypeError, match=r"takes a bool or a string"):
        tune.run(slow_or_failing, name="x", resume=1, **common)
    # AUTO starts an experiment when there is none; resume=False is Ray's default
    fresh = tune.run(slow_or_failing, name="auto", resume="AUTO", **common)
    assert [t.status for t in fresh.trials] == ["TERMINATED"]
    again = tune.run(slow_or_failing, name="auto", resume="AUTO", **common)
    assert [len(t.metrics_dataframe) for t in again.trials] == [1]    # nothing ran twice
    assert tune.run(slow_or_failing, name="plain", resume=False, **common).trials
    for resume in ({}, {"resume": False}):
        with pytest.raises(FileExistsError, match=r"with tune.run, pass resume='AUTO'") as err:
            tune.run(slow_or_failing, name="plain", **common, **resume)
        assert "FASTASHA_OVERWRITE=1" in str(err.value)
        assert "RunConfig(overwrite" not in str(err.value)     # tune.run takes no RunConfig


def test_ray_1_checkpoint_settings_and_loggers_with_a_function(tmp_path):
    with pytest.warns(UserWarning, match="no effect on a function objective"):
        analysis = tune.run(checkpoints_each_step, storage_path=str(tmp_path), verbose=0,
                            checkpoint_freq=2, checkpoint_at_end=True)
    (trial,) = analysis.trials
    assert len(trial.best_checkpoints) == len(LOSSES)      # its own checkpoints, as before
    with pytest.raises(TypeError, match=r"loggers=\.\.\.\) is Ray 1.x's way.*CSVLoggerCallback"):
        tune.run(checkpoints_each_step, storage_path=str(tmp_path), loggers=[object])


def test_ray_1_analysis_methods_take_a_trial_as_its_logdir(tmp_path):
    """Ray 1.x: get_trial_checkpoints_paths(trial=analysis.get_best_logdir(...)), and
    the checkpoints' metric defaults to the analysis' default metric."""
    from pathlib import Path

    analysis = tune.run(checkpoints_each_step, config={"x": tune.grid_search([1, 2])},
                        storage_path=str(tmp_path), verbose=0, metric="loss", mode="min")
    best = analysis.best_trial
    logdir = analysis.get_best_logdir()
    assert analysis.get_trial_checkpoints_paths(logdir) == \
        analysis.get_trial_checkpoints_paths(best, "loss")
    assert [value for _, value in analysis.get_trial_checkpoints_paths(logdir)] == LOSSES
    assert analysis.get_best_checkpoint(logdir) == analysis.get_best_checkpoint(best)
    assert Path(analysis.get_best_checkpoint(logdir + "/").path, "step").read_text() == "3"
    assert analysis.get_last_checkpoint(Path(logdir)) == best.checkpoint
    with pytest.raises(ValueError, match="is not the folder of a trial"):
        analysis.get_best_checkpoint(str(tmp_path))


def fails_after_a_checkpoint(config):
    import os
    import tempfile

    resumed = tune.get_checkpoint() is not None
    for step in range(3):
        if step == 1 and os.path.exists(config["flag"]):
            raise RuntimeError("told to fail")
        with tempfile.TemporaryDirectory() as d:
            tune.report({"loss": 1.0, "from_checkpoint": resumed},
                        checkpoint=tune.Checkpoint.from_directory(d))


def test_resume_errored_only_restarts_errored_trials_from_scratch(tmp_path):
    """Ray 1.x's resume='ERRORED_ONLY' reset errored trials; Ray 2.x reads it as
    'LOCAL+RESTART_ERRORED_ONLY'. Neither loads the errored trial's checkpoint."""
    flag = tmp_path / "fail"
    flag.touch()
    common = dict(name="e", config={"flag": str(flag)}, storage_path=str(tmp_path / "runs"),
                  verbose=0, raise_on_failed_trial=False)
    (first,) = tune.run(fails_after_a_checkpoint, **common).trials
    assert first.status == "ERROR" and first.checkpoint is not None
    flag.unlink()
    (again,) = tune.run(fails_after_a_checkpoint, resume="ERRORED_ONLY", **common).trials
    assert again.status == "TERMINATED"
    assert again.last_result["from_checkpoint"] is False
    assert again.last_result["training_iteration"] == 3


def test_rays_result_grid_of_an_analysis_and_module_path(tmp_path):
    from fastasha.tune.analysis import ExperimentAnalysis

    analysis = tune.run(checkpoints_each_step, config={"x": tune.grid_search([1, 2])},
                        storage_path=str(tmp_path), verbose=0, metric="loss", mode="min")
    assert ExperimentAnalysis is tune.ExperimentAnalysis
    grid = tune.ResultGrid(analysis)               # Ray's ResultGrid(experiment_analysis)
    assert len(grid) == 2 and grid.experiment_path == analysis.experiment_path
    assert grid.get_best_result().trial_id == analysis.best_trial.trial_id
    with pytest.raises(TypeError, match=r"ResultGrid takes an ExperimentAnalysis"):
        tune.ResultGrid(str(tmp_path))
