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
