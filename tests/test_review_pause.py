"""Review of pausing schedulers: defects found by running real sweeps (real loky workers)."""

from __future__ import annotations

import json
import os
import re
import tempfile
import time
import warnings

import pause_objectives as po
from fastasha import tune
from fastasha.schedulers import PopulationBasedTraining


def test_the_display_counts_paused_trials_for_the_best_trial(tmp_path, capsys):
    # one slot: x=1 and x=2 run 3 steps each and pause (loss 1/3 and 2/3); x=3 runs 2 steps
    # (loss 1.5) when the sweep stops. The best trial is the paused x=1, not the stopped x=3
    grid = tune.Tuner(
        po.stepper, param_space={"x": tune.grid_search([1.0, 2.0, 3.0])},
        tune_config=tune.TuneConfig(scheduler=po.PausesOnce(), max_concurrent_trials=1),
        run_config=tune.RunConfig(name="best", storage_path=str(tmp_path), verbose=1,
                                  stop=po.StopAllAfter(2 * po.PAUSE_AT + 2)),
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
            state = json.load(f)
        assert state["step"] == result.metrics["step"]


def leader_runs_ahead(config: dict) -> None:
    """Adds ``rate`` a step. The trial with rate 4 is fast but waits after each step
    just past a perturbation point (4, 7, ...): its latest checkpoint is then no longer
    the one PBT took at the perturbation point, which num_to_keep=1 would remove."""
    checkpoint = tune.get_checkpoint()
    state = {"step": 0, "total": 0.0}
    if checkpoint is not None:
        with open(os.path.join(checkpoint.path, "state.json")) as f:
            state = json.load(f)
    leader = config["rate"] == 4.0
    while state["step"] < 12:
        state["step"] += 1
        state["total"] += config["rate"]
        time.sleep(0.02 if leader else 0.15)
        with tempfile.TemporaryDirectory() as folder:
            with open(os.path.join(folder, "state.json"), "w") as f:
                json.dump(state, f)
            tune.report({"total": state["total"], "step": state["step"]},
                        checkpoint=tune.Checkpoint.from_directory(folder))
        if leader and state["step"] % 3 == 1:
            time.sleep(0.6)


def test_pbt_donor_checkpoint_survives_num_to_keep(tmp_path):
    # the leader is in the upper quantile at iteration 3 and 6 and runs on; the other trial
    # reaches iteration 6 later and exploits it, from the checkpoint of its perturbation
    # point, which num_to_keep=1 removed: the exploit failed (a warning), and the trial,
    # its perturbation time moved to the donor's, paused and restarted at every result
    pbt = PopulationBasedTraining(time_attr="training_iteration", perturbation_interval=3,
                                  hyperparam_mutations={"rate": [0.5, 4.0]},
                                  quantile_fraction=0.5, resample_probability=0.0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        grid = tune.Tuner(
            leader_runs_ahead, param_space={"rate": tune.grid_search([4.0, 0.5])},
            tune_config=tune.TuneConfig(scheduler=pbt, metric="total", mode="max", seed=0,
                                        max_concurrent_trials=2),
            run_config=tune.RunConfig(name="donor", storage_path=str(tmp_path), verbose=0,
                                      checkpoint_config=tune.CheckpointConfig(num_to_keep=1)),
        ).fit()
    assert not [w for w in caught if "could not copy" in str(w.message)]
    assert grid.num_errors == 0 and all(r.status == "TERMINATED" for r in grid)
    with open(tmp_path / "donor" / "pbt_global.txt") as f:
        exploits = [json.loads(line) for line in f]
    assert exploits and all(e[0].endswith("rate=0.5") for e in exploits)
    follower = next(r for r in grid if r.metrics["trial_id"].endswith("1"))
    rows = follower.metrics_dataframe.to_dict("records")
    # it went on from the leader's state: a total of 4 a step, at the leader's iteration
    switch = next(i for i, row in enumerate(rows) if row["total"] > 0.5 * row["step"])
    assert rows[switch]["total"] == 4.0 * rows[switch]["step"]
    # once the sweep is over, num_to_keep holds again
    for result in grid:
        listed = {os.path.basename(c.path) for c, _ in result.best_checkpoints}
        assert _checkpoint_folders(result) == listed and len(listed) == 1
