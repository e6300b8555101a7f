"""Class-based objectives (``tune.Trainable``), run by the Tuner as Ray runs them."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from fastasha import tune
from fastasha.schedulers import AsyncHyperBandScheduler


class Countdown(tune.Trainable):
    """Loss falls with the steps, faster for a larger ``rate``; state is a counter."""

    def setup(self, config, marker_dir=None):
        self.x = 0
        self.marker_dir = marker_dir or config.get("marker_dir")

    def step(self):
        self.x += 1
        if self.config.get("fail_at") == self.x and not self._failed_before():
            raise RuntimeError("a crash, once")
        return {"loss": 1.0 / (self.config["rate"] * self.x), "x": self.x,
                "done": self.x >= self.config.get("steps", 10 ** 9)}

    def _failed_before(self):
        flag = Path(self.marker_dir, f"failed_{self.trial_id}")
        if flag.exists():
            return True
        flag.write_text("1")
        return False

    def save_checkpoint(self, checkpoint_dir):
        return {"x": self.x}

    def load_checkpoint(self, checkpoint):
        self.x = checkpoint["x"]

    def cleanup(self):
        if self.marker_dir:
            Path(self.marker_dir, f"cleanup_{self.trial_id}").write_text(str(self.x))


class SavesFiles(tune.Trainable):
    def setup(self, config):
        self.x = 0

    def step(self):
        self.x += 1
        return {"loss": float(self.x)}

    def save_checkpoint(self, checkpoint_dir):
        Path(checkpoint_dir, "x").write_text(str(self.x))       # returns None: the folder

    def load_checkpoint(self, checkpoint):
        self.x = int(Path(checkpoint, "x").read_text())


class ReturnsItsFile(Countdown):
    """Ray's mnist_pytorch_trainable.py: save_checkpoint returns the file it wrote."""

    def save_checkpoint(self, checkpoint_dir):
        path = os.path.join(checkpoint_dir, "sub", "model.pth")
        os.makedirs(os.path.dirname(path))
        Path(path).write_text(str(self.x))
        return path

    def load_checkpoint(self, checkpoint_path):
        assert checkpoint_path.endswith(os.path.join("sub", "model.pth")), checkpoint_path
        self.x = int(Path(checkpoint_path).read_text())


class ReturnsAnotherFolder(SavesFiles):
    def save_checkpoint(self, checkpoint_dir):
        return tempfile.gettempdir()


class ReturnsAList(tune.Trainable):
    def step(self):
        return [1.0]


def _run_config(tmp_path, name, **kwargs):
    return tune.RunConfig(name=name, storage_path=str(tmp_path), verbose=0, **kwargs)


def test_a_trainable_class_runs_under_asha_and_always_cleans_up(tmp_path):
    markers = tmp_path / "markers"
    markers.mkdir()
    grid = tune.Tuner(
        Countdown,
        param_space={"rate": tune.grid_search([8.0, 4.0, 2.0, 1.0]), "marker_dir": str(markers)},
        tune_config=tune.TuneConfig(metric="loss", mode="min", max_concurrent_trials=1,
                                    scheduler=AsyncHyperBandScheduler(grace_period=1, max_t=8,
                                                                      reduction_factor=2)),
        run_config=_run_config(tmp_path, "asha", stop={"training_iteration": 8}),
    ).fit()
    assert [r.status for r in grid] == ["TERMINATED"] * 4
    steps = {r.config["rate"]: r.metrics["training_iteration"] for r in grid}
    assert steps[8.0] == 8 and min(steps.values()) < 8         # ASHA stopped some early
    assert all(r.metrics["x"] == r.metrics["training_iteration"] for r in grid)
    cleaned = {p.name.split("_", 1)[1]: int(p.read_text()) for p in markers.glob("cleanup_*")}
    assert cleaned == {r.trial_id: r.metrics["x"] for r in grid}   # even the stopped ones


def _fails_at_step_5(tmp_path, cls, name):
    """One trial of 7 steps, checkpointed every 2, that crashes once in step 5."""
    markers = tmp_path / "markers"
    markers.mkdir()
    (result,) = tune.Tuner(
        cls,
        param_space={"rate": 1.0, "steps": 7, "fail_at": 5, "marker_dir": str(markers)},
        run_config=_run_config(tmp_path, name,
                               failure_config=tune.FailureConfig(max_failures=1),
                               checkpoint_config=tune.CheckpointConfig(checkpoint_frequency=2)),
    ).fit()
    return result


def test_done_ends_a_trial_and_checkpoints_resume_a_failed_one(tmp_path):
    result = _fails_at_step_5(tmp_path, Countdown, "resume")
    assert result.status == "TERMINATED" and result.metrics["done"] is True
    # failed in step 5, resumed from the checkpoint of step 4: steps 5, 6, 7 again
    assert result.metrics["x"] == 7 and result.metrics["training_iteration"] == 7
    history = result.metrics_dataframe
    assert list(history["x"]) == [1, 2, 3, 4, 5, 6, 7]
    assert [c for _, c in result.best_checkpoints][-1]["x"] == 6
    # the dict save_checkpoint returned, read back as Ray 2.0-2.6 scripts do
    assert result.checkpoint.to_dict() == {"x": 6}


def test_a_save_checkpoint_that_returns_its_file_gets_it_back_on_load(tmp_path):
    result = _fails_at_step_5(tmp_path, ReturnsItsFile, "file")
    # failed at step 5, resumed from step 4's file (in the trial's own checkpoint folder)
    assert result.status == "TERMINATED", result.error
    assert list(result.metrics_dataframe["x"]) == [1, 2, 3, 4, 5, 6, 7]
    assert Path(result.checkpoint.path, "sub", "model.pth").read_text() == "6"


def test_a_save_checkpoint_that_returns_a_path_elsewhere_fails_its_trial(tmp_path):
    grid = tune.Tuner(
        ReturnsAnotherFolder,
        run_config=_run_config(tmp_path, "elsewhere", stop={"training_iteration": 3},
                               checkpoint_config=tune.CheckpointConfig(checkpoint_frequency=1)),
    ).fit()
    assert "not in the folder it was given" in str(grid[0].error)


def test_checkpoints_saved_as_files_and_at_the_end(tmp_path):
    grid = tune.Tuner(
        tune.with_resources(SavesFiles, {"cpu": 1}),
        run_config=_run_config(tmp_path, "files", stop={"training_iteration": 5},
                               checkpoint_config=tune.CheckpointConfig(checkpoint_at_end=True)),
    ).fit()
    (result,) = grid
    assert result.metrics["training_iteration"] == 5
    assert Path(result.checkpoint.path, "x").read_text() == "5"
    # a restore of the folder resumes from it (here: nothing left to run)
    assert tune.Tuner.restore(grid.experiment_path, SavesFiles).fit()[0].metrics["loss"] == 5.0


def test_with_parameters_reach_setup(tmp_path):
    markers = tmp_path / "markers"
    markers.mkdir()
    grid = tune.Tuner(
        tune.with_parameters(Countdown, marker_dir=str(markers)),
        param_space={"rate": 1.0, "steps": 2},
        run_config=_run_config(tmp_path, "params"),
    ).fit()
    assert grid[0].status == "TERMINATED"
    assert [p.name for p in markers.iterdir()] == [f"cleanup_{grid[0].trial_id}"]


def test_a_step_that_returns_no_dict_fails_its_trial_clearly(tmp_path):
    grid = tune.Tuner(ReturnsAList, run_config=_run_config(tmp_path, "bad")).fit()
    assert grid[0].status == "ERROR"
    assert "ReturnsAList.step() must return a dict of metrics" in str(grid[0].error)
    assert isinstance(grid[0].error, TypeError)


def test_a_trainable_class_is_named_and_refused_where_ray_refuses(tmp_path):
    assert tune.Tuner(Countdown, run_config=_run_config(tmp_path, "n")).trainable.__name__ \
        == "Countdown"
    with pytest.raises(NotImplementedError, match="must override step"):
        tune.Trainable({}).step()

    class Ray08(tune.Trainable):        # Ray 0.8's names
        def _train(self):
            return {"loss": 1.0}

        def _save(self, checkpoint_dir):
            return checkpoint_dir

    with pytest.raises(NotImplementedError, match=r"it defines _train, _save, the names of "
                                                  r"Ray 0\.8: rename them setup, step"):
        Ray08({}).step()


class RaysDocExample(tune.Trainable):
    """Shaped like the class-API example of Ray's docs: saves files, returns the folder."""

    def setup(self, config):
        self.x = 0
        self.seen_iteration_at_load = None

    def step(self):
        self.x += 1
        if self.config.get("crash_at") == self.x and not Path(self.config["flag"]).exists():
            Path(self.config["flag"]).write_text("1")
            raise RuntimeError("once")
        return {"score": float(self.x * self.config["rate"]), "x": self.x,
                "loaded_at": self.seen_iteration_at_load,
                "should_checkpoint": self.x == self.config.get("checkpoint_at", -1)}

    def save_checkpoint(self, checkpoint_dir):
        Path(checkpoint_dir, "x").write_text(str(self.x))
        return checkpoint_dir

    def load_checkpoint(self, checkpoint_dir):
        self.x = int(Path(checkpoint_dir, "x").read_text())
        self.seen_iteration_at_load = self.iteration


def test_checkpoint_at_end_saves_however_a_trial_stops(tmp_path):
    # as Ray: a stop by the scheduler, a stop criterion or a stopper counts as the end
    grid = tune.Tuner(
        RaysDocExample,
        param_space={"rate": tune.grid_search([4.0, 3.0, 2.0, 1.0])},
        tune_config=tune.TuneConfig(metric="score", mode="max", max_concurrent_trials=1,
                                    scheduler=AsyncHyperBandScheduler(grace_period=1, max_t=6,
                                                                      reduction_factor=2)),
        run_config=_run_config(tmp_path, "at_end", stop={"time_total_s": 60.0,
                                                         "training_iteration": 6},
                               checkpoint_config=tune.CheckpointConfig(checkpoint_at_end=True)),
    ).fit()
    steps = {r.config["rate"]: r.metrics["training_iteration"] for r in grid}
    assert steps[4.0] == 6 and min(steps.values()) < 6          # some stopped by ASHA
    for result in grid:
        assert result.checkpoint is not None, result.config
        assert Path(result.checkpoint.path, "x").read_text() == str(result.metrics["x"])
        assert [m["x"] for _, m in result.best_checkpoints] == [result.metrics["x"]]


def test_should_checkpoint_and_the_iteration_a_checkpoint_restores(tmp_path):
    grid = tune.Tuner(
        RaysDocExample,
        param_space={"rate": 1.0, "checkpoint_at": 2, "crash_at": 4,
                     "flag": str(tmp_path / "crashed")},
        run_config=_run_config(tmp_path, "should", stop={"training_iteration": 5},
                               failure_config=tune.FailureConfig(max_failures=1)),
    ).fit()
    (result,) = grid
    assert result.status == "TERMINATED" and result.metrics["x"] == 5
    assert result.metrics["loaded_at"] == 2      # load_checkpoint saw the iteration it saved at
    assert [m["x"] for _, m in result.best_checkpoints] == [2]


def test_tune_run_takes_the_class_checkpoint_settings(tmp_path):
    analysis = tune.run(RaysDocExample, config={"rate": 1.0}, stop={"training_iteration": 3},
                        checkpoint_freq=2, checkpoint_at_end=True, storage_path=str(tmp_path),
                        verbose=0)
    (trial,) = analysis.trials
    assert [m["x"] for _, m in trial.best_checkpoints] == [2, 3]


def test_a_trainable_can_be_driven_by_hand_as_in_ray(tmp_path):
    trainable = RaysDocExample({"rate": 2.0})
    assert trainable.train()["training_iteration"] == 1
    assert trainable.train()["score"] == 4.0
    folder = trainable.save(str(tmp_path / "ckpt"))
    again = RaysDocExample({"rate": 2.0})
    again.restore(folder)
    assert again.iteration == 2 and again.train()["x"] == 3
    again.stop()


class InterruptsItsDriver(tune.Trainable):
    """Runs in the driver's process (threading backend) and presses Ctrl-C at step 3."""

    def setup(self, config):
        self.x = 0

    def step(self):
        import os
        import signal
        import time

        self.x += 1
        if self.x == 3:
            os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)
        return {"x": self.x}

    def save_checkpoint(self, checkpoint_dir):
        return {"x": self.x}


def test_an_interrupted_sweep_saves_no_end_checkpoint_nobody_would_keep(tmp_path):
    import joblib

    with joblib.parallel_config(backend="threading"), pytest.raises(KeyboardInterrupt):
        tune.Tuner(InterruptsItsDriver,
                   run_config=_run_config(tmp_path, "ctrl_c", stop={"training_iteration": 200},
                                          checkpoint_config=tune.CheckpointConfig(
                                              checkpoint_at_end=True))).fit()
    # the trial's thread stopped at its next flush (the driver was gone): no orphan folder
    assert not list((tmp_path / "ctrl_c" / "trials").glob("*/checkpoint_*"))


class SlowToSave(tune.Trainable):
    """Quick steps; saving takes ``config["save_s"]`` seconds."""

    def setup(self, config):
        self.x = 0

    def step(self):
        import time

        self.x += 1
        time.sleep(0.02)
        return {"x": self.x}

    def save_checkpoint(self, checkpoint_dir):
        import time

        time.sleep(self.config["save_s"])
        Path(checkpoint_dir, "x").write_text(str(self.x))
        return checkpoint_dir


def _stopped_by_the_budget(tmp_path, name, save_s):
    return tune.Tuner(
        SlowToSave, param_space={"save_s": save_s},
        tune_config=tune.TuneConfig(time_budget_s=0.5),
        run_config=_run_config(tmp_path, name,
                               checkpoint_config=tune.CheckpointConfig(checkpoint_at_end=True)),
    ).fit()


@pytest.mark.parametrize("backend", ["loky", "threading"])
def test_a_stopping_sweep_waits_for_an_end_checkpoint_being_saved(tmp_path, monkeypatch,
                                                                   backend):
    import joblib

    from fastasha._execution import driver

    monkeypatch.setattr(driver, "STOP_GRACE_S", 0.3)       # (5 s in earnest)
    with joblib.parallel_config(backend=backend):
        (result,) = _stopped_by_the_budget(tmp_path, "slow_save", save_s=1.5)
    # the save outlasted the stop grace five times over and was kept all the same
    assert result.status == "TERMINATED" and result.checkpoint is not None
    assert Path(result.checkpoint.path, "x").read_text() == str(result.metrics["x"])


def test_an_end_save_past_its_own_grace_is_ended_with_a_warning(tmp_path, monkeypatch):
    import time

    from fastasha._execution import driver

    monkeypatch.setattr(driver, "STOP_GRACE_S", 0.3)
    monkeypatch.setattr(driver, "END_SAVE_GRACE_S", 0.5)    # (60 s in earnest)
    started = time.monotonic()
    with pytest.warns(RuntimeWarning, match="still saving its end checkpoint"):
        (result,) = _stopped_by_the_budget(tmp_path, "too_slow", save_s=30)
    assert time.monotonic() - started < 10        # killed, not waited for
    assert result.status == "TERMINATED" and result.checkpoint is None


class CountsItself(tune.Trainable):
    """Reports its own training_iteration; ``forgets`` makes load_checkpoint lose it."""

    def setup(self, config):
        self.n = 0
        self.forgets = config.get("forgets", False)

    def step(self):
        self.n += 1
        return {"training_iteration": self.n}

    def save_checkpoint(self, checkpoint_dir):
        return {"n": self.n}

    def load_checkpoint(self, checkpoint):
        if not self.forgets:
            self.n = checkpoint["n"]


class FailsToLoad(CountsItself):
    def load_checkpoint(self, checkpoint):
        raise KeyError("weights")


def test_validate_save_restore_as_in_ray():
    from fastasha.tune.utils import validate_save_restore

    assert validate_save_restore(CountsItself) is True
    assert validate_save_restore(SavesFiles) is True
    with pytest.raises(AssertionError, match=r"went on at iteration 1, not 4"):
        validate_save_restore(CountsItself, config={"forgets": True})
    with pytest.raises(KeyError, match="weights"):
        validate_save_restore(FailsToLoad)
    with pytest.raises(TypeError, match="checks a tune.Trainable subclass"):
        validate_save_restore(lambda config: None)
