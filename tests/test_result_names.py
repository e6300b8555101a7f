"""``fastasha.tune.result``: Ray's names of result keys, and what fastasha does with them."""

from __future__ import annotations

import os

from fastasha import tune
from fastasha.tune.result import (
    DEFAULT_RESULTS_DIR,
    DONE,
    EXPERIMENT_TAG,
    HOSTNAME,
    ITERATIONS_SINCE_RESTORE,
    PID,
    SHOULD_CHECKPOINT,
    TIME_SINCE_RESTORE,
    TIME_THIS_ITER_S,
    TIME_TOTAL_S,
    TIMESTAMP,
    TRAINING_ITERATION,
    TRIAL_ID,
    default_results_dir,
)


class SavesOnEvenSteps(tune.Trainable):
    """Asks for a checkpoint on even steps through Ray's result key."""

    def setup(self, config):
        self.n = 0

    def step(self):
        self.n += 1
        return {"n": self.n, SHOULD_CHECKPOINT: self.n % 2 == 0, DONE: self.n == 5}

    def save_checkpoint(self, checkpoint_dir):
        return {"n": self.n}

    def load_checkpoint(self, checkpoint):
        self.n = checkpoint["n"]


def test_the_module_is_fastashas_own_under_rays_path():
    import fastasha.result
    import fastasha.tune.result

    assert fastasha.tune.result is fastasha.result and tune.result is fastasha.result


def test_results_carry_the_keys_the_constants_name(tmp_path):
    grid = tune.Tuner(
        SavesOnEvenSteps,
        run_config=tune.RunConfig(storage_path=str(tmp_path), name="names", verbose=0),
    ).fit()
    result = grid[0]
    for key in (TRAINING_ITERATION, TIME_THIS_ITER_S, TIME_TOTAL_S, TIMESTAMP, TRIAL_ID,
                HOSTNAME, PID, DONE, TIME_SINCE_RESTORE, ITERATIONS_SINCE_RESTORE,
                EXPERIMENT_TAG):
        assert key in result.metrics, key
    assert result.metrics[TRAINING_ITERATION] == 5 and result.metrics[DONE] is True
    # a step() result with SHOULD_CHECKPOINT set was saved with its checkpoint
    saved = [metrics["n"] for _, metrics in result.best_checkpoints]
    assert saved == [2, 4]


def test_default_results_dir_is_where_a_tuner_without_storage_path_writes(monkeypatch,
                                                                           tmp_path):
    monkeypatch.setenv("FASTASHA_STORAGE_PATH", str(tmp_path / "here"))
    assert default_results_dir() == str(tmp_path / "here")
    grid = tune.Tuner(SavesOnEvenSteps, run_config=tune.RunConfig(name="x", verbose=0)).fit()
    assert os.path.dirname(grid.experiment_path) == str(tmp_path / "here")
    assert os.path.isabs(DEFAULT_RESULTS_DIR)
