"""Objectives and schedulers for tests/test_pause.py and tests/test_pbt.py.

Module level, so that loky workers import them by reference (see
tests/objectives.py). Also run as a script by test_pause.py's kill test:

    python tests/pause_objectives.py <storage_path> <name> <marker>

runs a sweep whose trials all pause at iteration 3 on one slot; the first
trial writes ``marker`` once it resumes, and the test kills the process then.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from fastasha import tune
from fastasha.schedulers import TrialScheduler
from fastasha.stopper import Stopper

N_STEPS = 6
PAUSE_AT = 3


def _load_state() -> tuple[dict | None, bool]:
    checkpoint = tune.get_checkpoint()
    if checkpoint is None:
        return None, False
    with open(os.path.join(checkpoint.path, "state.json")) as f:
        return json.load(f), True


def _save(metrics: dict, state: dict) -> None:
    with tempfile.TemporaryDirectory() as folder:
        with open(os.path.join(folder, "state.json"), "w") as f:
            json.dump(state, f)
        tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(folder))


def stepper(config: dict) -> None:
    """Counts steps in its checkpoint; its loss is x / step. Each step is checkpointed."""
    state, resumed = _load_state()
    step = state["step"] if state else 0
    starts = (state["starts"] if state else 0) + 1
    marker = config.get("marker")
    while step < config.get("n_steps", N_STEPS):
        step += 1
        if marker and resumed and not os.path.exists(marker):
            with open(marker, "w") as f:
                f.write(str(step))
            time.sleep(60)         # the test kills the sweep here
        _save({"loss": config["x"] / step, "step": step, "starts": starts,
               "resumed": resumed}, {"step": step, "starts": starts})


def no_checkpoints(config: dict) -> None:
    """Reports ``N_STEPS`` losses and never saves a checkpoint."""
    for step in range(1, N_STEPS + 1):
        tune.report({"loss": config["x"] / step, "step": step})


def accumulator(config: dict) -> None:
    """PBT's test objective: ``total`` grows by ``rate`` a step, kept in the checkpoint.

    A trial that exploits another goes on from the donor's total with its own
    (mutated) rate, so its results show whose state it took.
    """
    state, _ = _load_state()
    total = state["total"] if state else 0.0
    step = state["step"] if state else 0
    me = tune.get_context().get_trial_id()
    # the trials whose state this one carries, the one that wrote the checkpoint last
    lineage = state["lineage"] if state else [me]
    if lineage[-1] != me:
        lineage = [*lineage, me]
    while step < config.get("n_steps", 12):
        step += 1
        total += config["rate"]
        metrics = {"total": total, "step": step, "rate": config["rate"],
                   "lineage": "/".join(lineage)}
        if "speed" in config:         # a time of its own: "speed" a step
            metrics["t"] = step * config["speed"]
        _save(metrics, {"total": total, "step": step, "lineage": lineage})


class CountingTrainable(tune.Trainable):
    """A class objective whose state is its step count: saved and loaded as a dict.

    Its results say how many times it was set up (``setups``, counted on
    through its checkpoints) and the step it is at; ``N_STEPS`` steps.
    """

    def setup(self, config):
        self.steps, self.setups = 0, 1

    def step(self):
        self.steps += 1
        return {"loss": self.config["x"] / self.steps, "steps": self.steps,
                "setups": self.setups, "done": self.steps >= N_STEPS}

    def save_checkpoint(self, checkpoint_dir):
        return {"steps": self.steps, "setups": self.setups}

    def load_checkpoint(self, checkpoint):
        self.steps, self.setups = checkpoint["steps"], checkpoint["setups"] + 1


class CountingWithoutSave(CountingTrainable):
    """The same, unable to save its state (the base class's save_checkpoint)."""

    save_checkpoint = tune.Trainable.save_checkpoint
    load_checkpoint = tune.Trainable.load_checkpoint


def kill_when(script: Any, args: list, ready: Callable[[], Any], what: str,
              timeout: float = 40.0) -> None:
    """Run the sweep driver ``python script *args``, SIGKILL it once ``ready()`` is true.

    The driver runs in a process group of its own, killed whole (the driver and its
    workers), by its id. Fails the test if the driver exits first, or if ``ready()`` is
    still false after ``timeout`` seconds (``what`` says what was awaited).
    """
    script = Path(script)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(script.parent), *sys.path]))
    proc = subprocess.Popen([sys.executable, str(script), *map(str, args)], env=env,
                            start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + timeout
        while not ready():
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, f"{what}: not seen within {timeout} s"
            time.sleep(0.05)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
        proc.stderr.close()


def statuses(path) -> list | None:
    """The trials' statuses in the experiment file at ``path`` (None before it holds any).

    For tests that watch a sweep run by another process.
    """
    try:
        return [r.status for r in tune.ResultGrid.from_path(str(path))] or None
    except Exception:   # noqa: BLE001 - not created yet, or caught mid-creation
        return None


class StopAllAfter(Stopper):
    """Stops the sweep after ``n`` results (deterministic on one slot)."""

    def __init__(self, n: int) -> None:
        self.n, self.seen = n, 0

    def __call__(self, trial_id, result) -> bool:
        self.seen += 1
        return False

    def stop_all(self) -> bool:
        return self.seen >= self.n


class PausesOnce(TrialScheduler):
    """Pauses each trial once, at iteration ``PAUSE_AT``, and records what it heard."""

    def __init__(self, pause_at: int = PAUSE_AT) -> None:
        super().__init__(metric="loss", mode="min")
        self.pause_at = pause_at
        self.paused: set = set()
        self.heard: list = []

    def on_trial_result(self, trial_id, result):
        self.heard.append((trial_id, result["training_iteration"]))
        if result["training_iteration"] == self.pause_at and trial_id not in self.paused:
            self.paused.add(trial_id)
            return self.PAUSE
        return self.CONTINUE


def pending_or_paused(tune_controller):
    """``(the first PENDING trial or None, the PAUSED trials in creation order)``, for a
    ``choose_trial_to_run`` of Ray's form that starts waiting trials first."""
    trials = tune_controller.get_trials()
    pending = next((t for t in trials if t.status == "PENDING"), None)
    return pending, [t for t in trials if t.status == "PAUSED"]


class LastPausedFirst(PausesOnce):
    """Resumes the paused trial created last first (Ray's form of choose_trial_to_run)."""

    def choose_trial_to_run(self, tune_controller):
        pending, paused = pending_or_paused(tune_controller)
        if pending is not None:
            return pending
        return paused[-1] if paused else None


def main(storage_path: str, name: str, marker: str) -> None:
    tune.Tuner(
        stepper,
        param_space={"x": tune.grid_search([1.0, 2.0, 3.0]), "marker": marker},
        tune_config=tune.TuneConfig(scheduler=PausesOnce(), max_concurrent_trials=1),
        run_config=tune.RunConfig(name=name, storage_path=storage_path, verbose=0),
    ).fit()


if __name__ == "__main__":
    main(*sys.argv[1:4])
