"""Objectives and a driver script for tests/test_review_bohb.py.

Module level, so that loky workers import them by reference (see
tests/objectives.py). Also run as a script by the test of a restore after the
driver was killed:

    python tests/review_bohb_objectives.py <storage_path> <name> <marker>

runs a BOHB sweep on one slot whose first configs are x = 1, 2, 3, 4
(``points_to_evaluate``); the trial of x = 3 writes ``marker`` before its first
result and sleeps, and the test kills the driver then, with x = 1 and 2 paused.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time

from fastasha import tune

N_STEPS = 4
POINTS = [{"x": 1.0}, {"x": 2.0}, {"x": 3.0}, {"x": 4.0}]


def holding_stepper(config: dict) -> None:
    """pause_objectives.stepper (loss x / step, a checkpoint a step), and the trial of
    ``config["hold_x"]`` sleeps before its first result until ``config["marker"]`` exists
    (it writes it): the test kills the sweep there."""
    checkpoint = tune.get_checkpoint()
    step = 0
    if checkpoint is not None:
        with open(os.path.join(checkpoint.path, "state.json")) as f:
            step = json.load(f)["step"]
    marker = config.get("marker")
    while step < config.get("n_steps", N_STEPS):
        step += 1
        if marker and config["x"] == config.get("hold_x") and not os.path.exists(marker):
            with open(marker, "w") as f:
                f.write("held")
            time.sleep(60)
        with tempfile.TemporaryDirectory() as folder:
            with open(os.path.join(folder, "state.json"), "w") as f:
                json.dump({"step": step}, f)
            tune.report({"loss": config["x"] / step, "step": step},
                        checkpoint=tune.Checkpoint.from_directory(folder))


def searcher():
    from fastasha.search.bohb import TuneBOHB

    return TuneBOHB(seed=3, max_concurrent=2, points_to_evaluate=[dict(p) for p in POINTS])


def scheduler():
    from fastasha.schedulers import HyperBandForBOHB

    return HyperBandForBOHB(max_t=4, reduction_factor=2)


def main(storage_path: str, name: str, marker: str) -> None:
    tune.Tuner(
        holding_stepper,
        param_space={"x": tune.uniform(1.0, 10.0), "n_steps": N_STEPS, "marker": marker,
                     "hold_x": 3.0},
        tune_config=tune.TuneConfig(scheduler=scheduler(), search_alg=searcher(),
                                    metric="loss", mode="min", num_samples=10,
                                    max_concurrent_trials=1),
        run_config=tune.RunConfig(name=name, storage_path=storage_path, verbose=0),
    ).fit()


if __name__ == "__main__":
    main(*sys.argv[1:4])


class SigmoidTrainable(tune.Trainable):
    """Ray's bohb_example.py Trainable (its learning curve a sigmoid of width and height),
    without its 0.1 s sleep: save_checkpoint returns a path inside the folder."""

    def setup(self, config):
        self.timestep = 0

    def step(self):
        import numpy as np

        self.timestep += 1
        v = np.tanh(float(self.timestep) / self.config.get("width", 1))
        v *= self.config.get("height", 1)
        return {"episode_reward_mean": v}

    def save_checkpoint(self, checkpoint_dir):
        path = os.path.join(checkpoint_dir, "checkpoint")
        with open(path, "w") as f:
            f.write(json.dumps({"timestep": self.timestep}))
        return path

    def load_checkpoint(self, checkpoint_path):
        with open(checkpoint_path) as f:
            self.timestep = json.loads(f.read())["timestep"]
