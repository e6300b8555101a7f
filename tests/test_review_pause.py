"""Review of pausing schedulers: defects found by running real sweeps (real loky workers)."""

from __future__ import annotations

import os
import re

import pause_objectives as po
from fastasha import tune
from fastasha.schedulers import PopulationBasedTraining
from fastasha.stopper import Stopper


class _StopAfter(Stopper):
    """Stops the sweep after ``n`` results (deterministic on one slot)."""

    def __init__(self, n):
        self.n, self.seen = n, 0

    def __call__(self, trial_id, result):
        self.seen += 1
        return False

    def stop_all(self):
        return self.seen >= self.n


def test_the_display_counts_paused_trials_for_the_best_trial(tmp_path, capsys):
    # one slot: x=1 and x=2 run 3 steps each and pause (loss 1/3 and 2/3); x=3 runs 2 steps
    # (loss 1.5) when the sweep stops. The best trial is the paused x=1, not the stopped x=3
    grid = tune.Tuner(
        po.stepper, param_space={"x": tune.grid_search([1.0, 2.0, 3.0])},
        tune_config=tune.TuneConfig(scheduler=po.PausesOnce(), max_concurrent_trials=1),
        run_config=tune.RunConfig(name="best", storage_path=str(tmp_path), verbose=1,
                                  stop=_StopAfter(2 * po.PAUSE_AT + 2)),
    ).fit()
    by_x = {r.config["x"]: r for r in grid}
    assert [by_x[x].status for x in (1.0, 2.0)] == ["PAUSED", "PAUSED"]
    assert by_x[3.0].status == "TERMINATED"
    out = capsys.readouterr().out
    best = re.findall(r"Best trial: (\S+) with loss=", out)
    assert best, out
    assert best[-1] == by_x[1.0].metrics["trial_id"], out


def _checkpoint_folders(result) -> set:
    return {name for name in os.listdir(result.path) if name.startswith("checkpoint_")}


def test_pbt_exploits_leave_only_the_listed_checkpoint_folders(tmp_path):
    # six trials on two slots: exploits send trials back to a donor's earlier report; the
    # checkpoints of the timeline a trial leaves must not stay on disk past num_to_keep
    pbt = PopulationBasedTraining(time_attr="training_iteration", perturbation_interval=3,
                                  hyperparam_mutations={"rate": [0.5, 1.0, 2.0, 4.0, 8.0]},
                                  quantile_fraction=0.5)
    grid = tune.Tuner(
        po.accumulator,
        param_space={"rate": tune.grid_search([0.5, 1.0, 2.0, 4.0, 3.0, 5.0]), "n_steps": 12},
        tune_config=tune.TuneConfig(scheduler=pbt, metric="total", mode="max", seed=1,
                                    max_concurrent_trials=2),
        run_config=tune.RunConfig(name="keep", storage_path=str(tmp_path), verbose=0,
                                  checkpoint_config=tune.CheckpointConfig(num_to_keep=1)),
    ).fit()
    assert grid.num_errors == 0 and all(r.status == "TERMINATED" for r in grid)
    with open(tmp_path / "keep" / "pbt_global.txt") as f:
        assert len(f.readlines()) >= 2          # trials did exploit others
    for result in grid:
        listed = {os.path.basename(c.path) for c, _ in result.best_checkpoints}
        assert len(listed) == 1
        assert _checkpoint_folders(result) == listed
        # the trial's last checkpoint holds the state its last result reports
        with open(os.path.join(result.checkpoint.path, "state.json")) as f:
            state = __import__("json").load(f)
        assert state["step"] == result.metrics["step"]
