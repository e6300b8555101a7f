"""PopulationBasedTraining: exploits in real loky sweeps, seeded decisions, restore, errors."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

import pause_objectives as po
from fastasha import tune
from fastasha.schedulers import PopulationBasedTraining, create_scheduler

RATES = [0.5, 1.0, 2.0, 4.0]
N_STEPS = 12
INTERVAL = 3


def _pbt(**kwargs):
    args = dict(time_attr="training_iteration", perturbation_interval=INTERVAL,
                hyperparam_mutations={"rate": [0.5, 1.0, 2.0, 4.0, 8.0]},
                quantile_fraction=0.25, resample_probability=0.25)
    args.update(kwargs)
    return PopulationBasedTraining(**args)


def _fit(tmp_path, scheduler, *, name="pbt", seed=3, slots=1, stop=None, rates=RATES,
         extra=None):
    return tune.Tuner(
        po.accumulator,
        param_space={"rate": tune.grid_search(list(rates)), "n_steps": N_STEPS, **(extra or {})},
        tune_config=tune.TuneConfig(scheduler=scheduler, metric="total", mode="max",
                                    seed=seed, max_concurrent_trials=slots),
        run_config=tune.RunConfig(name=name, storage_path=str(tmp_path), verbose=0, stop=stop),
    ).fit()


def _rows(result):
    return result.metrics_dataframe.to_dict("records")


def _exploits(path):
    with open(Path(path) / "pbt_global.txt") as f:
        return [json.loads(line) for line in f]


def _check_continuity(grid) -> int:
    """Each result goes on from the trial's own state or from its donor's; the switches."""
    by_id = {r.metrics["trial_id"]: r for r in grid}
    switches = 0
    for trial_id, result in by_id.items():
        rows = _rows(result)
        for before, after in zip(rows, rows[1:]):
            if after["lineage"] == before["lineage"]:
                # its own state: the total grows by the rate it reported (a restart from
                # its own checkpoint repeats steps with the same totals)
                assert after["total"] == pytest.approx(
                    before["total"] + after["rate"] * (after["step"] - before["step"]))
                continue
            switches += 1
            lineage = after["lineage"].split("/")
            assert lineage[-1] == trial_id
            donor = lineage[-2]
            assert donor in by_id and donor != trial_id
            # it went on from the donor's checkpoint: a total the donor reported at the
            # step before (a donor exploited later has reported that step more than once)
            donor_totals = [r["total"] for r in _rows(by_id[donor])
                            if r["step"] == after["step"] - 1]
            assert any(after["total"] == pytest.approx(t + after["rate"])
                       for t in donor_totals), (after, donor_totals)
            # the donor's iteration counts on, as in Ray
            assert after["training_iteration"] == after["step"]
            # the mutated rate is one of hyperparam_mutations' values
            assert after["rate"] in [0.5, 1.0, 2.0, 4.0, 8.0]
    return switches


def test_pbt_exploits_copy_the_donors_state_and_a_mutated_config(tmp_path):
    grid = _fit(tmp_path, _pbt())
    assert grid.num_errors == 0
    assert [r.status for r in grid] == ["TERMINATED"] * 4
    exploits = _exploits(tmp_path / "pbt")
    assert exploits, "no trial exploited another"
    # (a trial that takes the state of a donor that has finished reports nothing more)
    assert _check_continuity(grid) == sum(1 for e in exploits if e[3] < N_STEPS)
    for result in grid:
        trial_id = result.metrics["trial_id"]
        rows = _rows(result)
        # the stored config is the trial's last one, logged as Ray logs it
        last = [e for e in exploits if e[0].startswith(f"{int(trial_id[-5:])}_")]
        if last:
            assert result.config == last[-1][5]
            assert (tmp_path / "pbt" / f"pbt_policy_{trial_id}.txt").exists()
        if not last or last[-1][3] < N_STEPS:
            assert result.config["rate"] == rows[-1]["rate"]
        assert result.metrics["step"] == N_STEPS
    # the best trial took the best trial's state and a rate at least as good
    assert max(r.metrics["total"] for r in grid) >= N_STEPS * max(RATES) - 1e-9


def grid_by_id(grid):
    return {r.metrics["trial_id"]: r for r in grid}


def test_pbt_with_the_same_seed_makes_the_same_decisions(tmp_path):
    a = _fit(tmp_path, _pbt(resample_probability=0.5), name="a", seed=11)
    b = _fit(tmp_path, _pbt(resample_probability=0.5), name="b", seed=11)
    assert [r.config for r in a] == [r.config for r in b]
    def trace(grid):     # (trial ids differ between the two sweeps: their index only)
        return [[(row["rate"], [t[-5:] for t in row["lineage"].split("/")], row["total"])
                 for row in _rows(r)] for r in grid]

    assert trace(a) == trace(b)
    strip = [[line[2:] for line in _exploits(tmp_path / name)] for name in ("a", "b")]
    assert strip[0] and strip[0] == strip[1]


class _Recording(PopulationBasedTraining):
    """PBT that records each result it hears (in the driver) and its answer."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.heard = []

    def on_trial_result(self, tune_controller, trial, result):
        decision = super().on_trial_result(tune_controller, trial, result)
        self.heard.append((trial.trial_id, result["training_iteration"], str(decision)))
        return decision


def test_pbt_time_shares_more_trials_than_slots_fairly(tmp_path):
    # 4 trials on one slot: each is paused at every perturbation point while others wait,
    # and the one that has trained least runs next (the first created among equals)
    args = dict(time_attr="training_iteration", perturbation_interval=INTERVAL,
                hyperparam_mutations={"rate": RATES}, quantile_fraction=0.0)
    scheduler = _Recording(**args)
    grid = _fit(tmp_path, scheduler, slots=1)
    ids = [r.metrics["trial_id"] for r in grid]
    expected = [(t, i) for start in range(1, N_STEPS + 1, INTERVAL) for t in ids
                for i in range(start, start + INTERVAL)]
    assert [(t, i) for t, i, _ in scheduler.heard] == expected
    assert [d for t, i, d in scheduler.heard if i % INTERVAL == 0] == ["PAUSE"] * (4 * 4)
    for result in grid:
        assert [row["step"] for row in _rows(result)] == list(range(1, N_STEPS + 1))
        assert result.status == "TERMINATED"
    # no exploit (quantile 0): each trial keeps its own rate
    assert sorted(r.config["rate"] for r in grid) == RATES
    assert not os.path.exists(tmp_path / "pbt" / "pbt_global.txt")


def test_pbt_fills_in_config_keys_the_param_space_lacks(tmp_path):
    scheduler = _pbt(hyperparam_mutations={"rate": [1.0, 2.0], "extra": tune.uniform(0, 1)})
    grid = _fit(tmp_path, scheduler, rates=[1.0, 2.0], slots=2)
    for result in grid:
        assert 0.0 <= result.config["extra"] <= 1.0


def test_pbt_restore_continues_the_sweep_with_the_exploited_configs(tmp_path):
    grid = _fit(tmp_path, _pbt(), stop=po.StopAllAfter(30))
    # stopped with the trials paused at their perturbation points, after exploits
    assert [r.status for r in grid].count("PAUSED") >= 3
    before = {r.metrics["trial_id"]: (r.config, len(_rows(r))) for r in grid}
    n_exploits = len(_exploits(tmp_path / "pbt"))
    assert n_exploits >= 1
    restored = tune.Tuner.restore(str(tmp_path / "pbt"), po.accumulator,
                                  scheduler=_pbt()).fit()
    assert [r.status for r in restored] == ["TERMINATED"] * 4
    _check_continuity(restored)
    assert len(_exploits(tmp_path / "pbt")) > n_exploits     # PBT went on exploiting
    for result in restored:
        rows = _rows(result)
        assert rows[-1]["step"] == N_STEPS
        config, n_rows = before[result.metrics["trial_id"]]
        # the first result after the restore: with the config the trial had (an exploited
        # one included), unless it exploited another at once
        if rows[n_rows]["lineage"] == rows[n_rows - 1]["lineage"]:
            assert rows[n_rows]["rate"] == config["rate"]


def test_create_scheduler_pbt_and_the_import(tmp_path):
    from fastasha.tune.schedulers import PopulationBasedTraining as FromTune

    assert FromTune is PopulationBasedTraining
    pbt = create_scheduler("pbt", hyperparam_mutations={"lr": [0.1, 0.01]}, metric="loss",
                           mode="min", perturbation_interval=5)
    assert isinstance(pbt, PopulationBasedTraining)
    assert pbt.perturbation_interval == 5.0 and pbt.time_attr == "time_total_s"
    assert pbt.metric == "loss" and pbt.mode == "min"
    # by name in TuneConfig too (with its mutations given through create_scheduler's kwargs)
    with pytest.raises(ValueError, match="hyperparam_mutations or custom_explore_fn"):
        tune.TuneConfig(scheduler="pbt")


@pytest.mark.parametrize("kwargs, error, match", [
    ({}, ValueError, "needs hyperparam_mutations or custom_explore_fn"),
    ({"hyperparam_mutations": {"a": 3}}, TypeError, r"hyperparam_mutations\['a'\] must be"),
    ({"hyperparam_mutations": {"a": []}}, ValueError, "empty list"),
    ({"hyperparam_mutations": {"a": tune.sample_from(lambda spec: 1)}}, ValueError,
     "tune.sample_from"),
    ({"hyperparam_mutations": {"a": [1]}, "quantile_fraction": 0.6}, ValueError,
     "quantile_fraction must be between 0 and 0.5"),
    ({"hyperparam_mutations": {"a": [1]}, "perturbation_interval": 0}, ValueError,
     "perturbation_interval must be > 0"),
    ({"hyperparam_mutations": {"a": [1]}, "resample_probability": 2}, ValueError,
     "resample_probability must be between 0 and 1"),
    ({"hyperparam_mutations": {"a": [1]}, "perturbation_factors": "x"}, TypeError,
     "perturbation_factors must be a tuple"),
    ({"hyperparam_mutations": {"a": [1]}, "mode": "best"}, ValueError, "mode"),
    ({"hyperparam_mutations": {"a": [1]}, "synch": "yes"}, TypeError,
     "synch must be True or False"),
    ({"hyperparam_mutations": {"a": [1]}, "custom_explore_fn": 3}, TypeError,
     "custom_explore_fn must be a function"),
    ({"hyperparam_mutations": {"a": [1]}, "time_attr": 3}, TypeError, "time_attr"),
])
def test_bad_arguments_say_what_to_do(kwargs, error, match):
    with pytest.raises(error, match=match):
        PopulationBasedTraining(**kwargs)


def test_pbt_without_metric_or_mode_fails_the_sweep_with_what_to_pass(tmp_path):
    with pytest.raises(Exception, match="no metric .*or mode.*TuneConfig"):
        tune.Tuner(po.accumulator, param_space={"rate": 1.0},
                   tune_config=tune.TuneConfig(scheduler=_pbt()),
                   run_config=tune.RunConfig(storage_path=str(tmp_path), verbose=0)).fit()


def test_a_result_without_the_metric_fails_the_trial_unless_require_attrs_is_false(tmp_path):
    def grid_of(require):
        return tune.Tuner(
            po.accumulator, param_space={"rate": tune.grid_search([1.0, 2.0]), "n_steps": 4},
            tune_config=tune.TuneConfig(scheduler=_pbt(time_attr="nope", metric="total",
                                                       mode="max", require_attrs=require)),
            run_config=tune.RunConfig(name=f"r{require}", storage_path=str(tmp_path),
                                      verbose=0)).fit()

    failed = grid_of(True)
    assert failed.num_errors == 2
    assert "has no time_attr 'nope'" in str(failed[0].error)
    assert "require_attrs=False" in str(failed[0].error)
    assert grid_of(False).num_errors == 0


def test_the_pbt_example_runs_with_smoke_test(tmp_path):
    import subprocess

    script = Path(__file__).parent.parent / "examples" / "pbt_example.py"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    done = subprocess.run([sys.executable, str(script), "--smoke-test", "--storage-path",
                           str(tmp_path)], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "best trial" in done.stdout
    grid = tune.ResultGrid.from_path(str(tmp_path / "pbt_example"))
    assert len(grid) == 4 and grid.num_errors == 0
    assert _exploits(tmp_path / "pbt_example")      # it exploited (seeded: always the same)


def test_a_failed_checkpoint_copy_leaves_the_trial_its_own_perturbation_times(tmp_path,
                                                                                monkeypatch):
    """A donor's checkpoint that cannot be copied (a full disk): the trial goes on as it was.

    The fast, poor trial (t grows by 2 a step) exploits a slow, good one (1 a step). When
    the copy fails it resumes from its own checkpoint with its own config, and its next
    perturbation point is its own time plus the interval: left at the slow donor's, every
    later result of it would be a perturbation point, each pausing and restarting it.
    """
    import shutil

    def full_disk(src, dst, *args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(shutil, "copytree", full_disk)     # the driver copies checkpoints
    space = {"case": tune.grid_search([(0.5, 2), (1.0, 1), (2.0, 1), (4.0, 1)]),
             "rate": tune.sample_from(lambda spec: spec.config["case"][0]),
             "speed": tune.sample_from(lambda spec: spec.config["case"][1]),
             "n_steps": N_STEPS}
    with pytest.warns(RuntimeWarning, match="could not copy the checkpoint"):
        grid = tune.Tuner(
            po.accumulator, param_space=space,
            tune_config=tune.TuneConfig(scheduler=_pbt(time_attr="t", perturbation_interval=4),
                                        metric="total", mode="max", seed=3,
                                        max_concurrent_trials=1),
            run_config=tune.RunConfig(name="pbt", storage_path=str(tmp_path), verbose=0),
        ).fit()
    assert grid.num_errors == 0 and [r.status for r in grid] == ["TERMINATED"] * 4
    fast = next(r for r in grid if r.config["speed"] == 2)
    tried = [e for e in _exploits(tmp_path / "pbt")
             if e[0].startswith(f"{int(fast.metrics['trial_id'][-5:])}_")]
    assert tried, "the fast, poor trial never tried to exploit another"
    # at its own perturbation points (t = 4, 8, ...: every second step), not at every result
    steps = [e[2] for e in tried]
    assert all(b - a >= 2 for a, b in zip(steps, steps[1:])), steps
    rows = _rows(fast)          # it kept its own state and config
    assert [row["total"] for row in rows] == pytest.approx(
        [0.5 * step for step in range(1, N_STEPS + 1)])
