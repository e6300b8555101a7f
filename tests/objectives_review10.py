"""Class objectives (``tune.Trainable``) for tests/test_review10_legacy.py.

Kept in a module of their own so that loky workers import only this small
module. Each takes what it needs from its config; ``config["marker"]`` is a
folder for the files that make a failure happen once per trial, or that
record what a hook saw.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from fastasha import tune


def _fail_once(trainable: tune.Trainable, at: int | None) -> None:
    """Raise on step ``at`` of the trial's first attempt (a flag file in the marker folder)."""
    if at is None or trainable.iteration + 1 != at:
        return
    flag = Path(trainable.config["marker"], f"failed_{trainable.trial_id}")
    if not flag.exists():
        flag.write_text("1")
        raise RuntimeError("a crash, once")


class Episodes(tune.Trainable):
    """An RL-style loop: each step is 100 timesteps, 2 episodes, and 10 s of simulated time."""

    def setup(self, config):
        self.reward = 0.0

    def step(self):
        _fail_once(self, self.config.get("fail_at"))
        self.reward += self.config["rate"]
        return {"reward": self.reward, "timesteps_this_iter": 100, "episodes_this_iter": 2,
                "time_this_iter_s": 10.0}

    def save_checkpoint(self, checkpoint_dir):
        return {"reward": self.reward}

    def load_checkpoint(self, checkpoint):
        self.reward = checkpoint["reward"]


class LogsResults(tune.Trainable):
    """Overrides Ray's log_result hook: appends what it is given to a file."""

    def step(self):
        return {"loss": 1.0 / (self.iteration + 1), "done": self.iteration + 1 >= 3}

    def log_result(self, result):
        with open(Path(self.config["marker"], f"log_{self.trial_id}.jsonl"), "a") as f:
            f.write(json.dumps({k: result[k] for k in ("loss", "training_iteration", "done")})
                    + "\n")


class TakesNamedObjects(tune.Trainable):
    """with_parameters objects named as Trainable.__init__'s own keywords."""

    def setup(self, config, storage=None, logger_creator=None, data=None):
        self.seen = {"storage": storage, "logger_creator": logger_creator, "data": data}

    def step(self):
        return {**self.seen, "done": True}


class NoSaveCheckpoint(tune.Trainable):
    """Asks for checkpoints (by the sweep's settings) without overriding save_checkpoint."""

    def setup(self, config):
        self.x = 0

    def step(self):
        self.x += 1
        return {"x": self.x, "done": self.x >= 3}


class NoLoadCheckpoint(tune.Trainable):
    """Saves its state but cannot load it; fails once after its first checkpoint."""

    def setup(self, config):
        self.x = 0

    def step(self):
        _fail_once(self, 2)
        self.x += 1
        return {"x": self.x, "done": self.x >= 3}

    def save_checkpoint(self, checkpoint_dir):
        return {"x": self.x}


class Exports(tune.Trainable):
    """Exports its 'model' into its trial folder when it ends (Ray's export_model)."""

    def step(self):
        return {"loss": float(self.config["w"]), "done": True}

    def _export_model(self, export_formats, export_dir):
        exported = {}
        for name in export_formats:
            path = os.path.join(export_dir, f"model.{name}")
            Path(path).write_text(str(self.config["w"]))
            exported[name] = path
        return exported

    def cleanup(self):
        self.exported = self.export_model("txt")
