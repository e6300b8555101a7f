"""Tuner.restore: what it rebuilds, what it needs, what it refuses.

Restores after a killed driver and after Ctrl-C are in test_faults.py; here
the experiments end in-process (errors, a stopper that ends the sweep).
"""

from __future__ import annotations

import json
import os
import sqlite3
import tempfile
from pathlib import Path

import pytest

from fastasha import tune
from fastasha.schedulers import AsyncHyperBandScheduler, TrialScheduler


def checkpointing(config):
    """Reports 6 steps with a checkpoint each; fails at step 4 while ``config['flag']`` exists."""
    start = 0
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        start = int(Path(checkpoint.path, "step").read_text())
    for step in range(start + 1, 7):
        if step == 4 and os.path.exists(config["flag"]):
            raise RuntimeError("flag is up")
        with tempfile.TemporaryDirectory() as d:
            Path(d, "step").write_text(str(step))
            tune.report({"loss": config["x"] * step, "step": step, "resumed_from": start},
                        checkpoint=tune.Checkpoint.from_directory(d))


def graded(config):
    """A deterministic learning curve per trial, 16 steps."""
    for step in range(1, 17):
        tune.report({"loss": config["x"] + 1.0 / step})


class StopAllAfter(tune.Stopper):
    """Ends the whole sweep once ``n`` trials reached their last step."""

    def __init__(self, n):
        self.n, self.done = n, set()

    def __call__(self, trial_id, result):
        if result["training_iteration"] == 16:
            self.done.add(trial_id)
        return False

    def stop_all(self):
        return len(self.done) >= self.n


def _run_config(tmp_path, name, **kwargs):
    return tune.RunConfig(name=name, storage_path=str(tmp_path), verbose=0, **kwargs)


def _flagged_sweep(tmp_path, name="errored"):
    flag = tmp_path / "flag"
    flag.write_text("up")
    tuner = tune.Tuner(checkpointing,
                       param_space={"x": tune.grid_search([1.0, 2.0]), "flag": str(flag)},
                       tune_config=tune.TuneConfig(metric="loss", mode="min"),
                       run_config=_run_config(tmp_path, name))
    grid = tuner.fit()
    assert [r.status for r in grid] == ["ERROR", "ERROR"]
    flag.unlink()
    return grid


def test_resume_errored_continues_from_the_latest_checkpoint(tmp_path):
    grid = _flagged_sweep(tmp_path)
    restored = tune.Tuner.restore(grid.experiment_path, checkpointing, resume_errored=True).fit()
    assert [r.status for r in restored] == ["TERMINATED", "TERMINATED"]
    for result in restored:
        history = result.metrics_dataframe
        # steps 1-3 before the error, then 4-6 resumed from the checkpoint of step 3
        assert history["step"].tolist() == [1, 2, 3, 4, 5, 6]
        assert history["training_iteration"].tolist() == [1, 2, 3, 4, 5, 6]
        assert history["resumed_from"].tolist() == [0, 0, 0, 3, 3, 3]
        assert result.error is None


def test_restart_errored_starts_again_from_scratch(tmp_path):
    grid = _flagged_sweep(tmp_path)
    restored = tune.Tuner.restore(grid.experiment_path, checkpointing, restart_errored=True).fit()
    assert [r.status for r in restored] == ["TERMINATED", "TERMINATED"]
    for result in restored:
        history = result.metrics_dataframe
        assert history["step"].tolist() == [1, 2, 3, 1, 2, 3, 4, 5, 6]
        assert history["resumed_from"].tolist() == [0] * 9


def test_errored_trials_stay_errored_by_default(tmp_path):
    grid = _flagged_sweep(tmp_path)
    restored = tune.Tuner.restore(grid.experiment_path, checkpointing).fit()
    assert [r.status for r in restored] == ["ERROR", "ERROR"]
    assert "flag is up" in str(restored[0].error)


def test_resume_and_restart_errored_together_is_an_error(tmp_path):
    grid = _flagged_sweep(tmp_path)
    with pytest.raises(ValueError, match="not both"):
        tune.Tuner.restore(grid.experiment_path, checkpointing, resume_errored=True,
                           restart_errored=True)


def _graded_tuner(tmp_path, name, stop=None):
    return tune.Tuner(
        graded,
        param_space={"x": tune.uniform(0, 1)},
        tune_config=tune.TuneConfig(
            metric="loss", mode="min", num_samples=12, seed=11, max_concurrent_trials=1,
            scheduler=AsyncHyperBandScheduler(grace_period=1, max_t=16, reduction_factor=2,
                                              brackets=3)),
        run_config=_run_config(tmp_path, name, stop=stop))


def _brackets(path):
    with sqlite3.connect(Path(path) / "experiment.db") as con:
        return [b for (b,) in con.execute("SELECT bracket FROM trials ORDER BY idx")]


def test_a_restored_sweep_continues_exactly_where_it_stopped(tmp_path):
    # One trial at a time makes every decision depend on the seed alone, so the
    # sweep that was stopped half-way and restored must equal one that never stopped.
    whole = _graded_tuner(tmp_path, "whole").fit()
    half = _graded_tuner(tmp_path, "half", stop=StopAllAfter(2)).fit()
    ran = [r for r in half if r.status == "TERMINATED"]
    assert 2 <= len(ran) < 12
    restored = tune.Tuner.restore(half.experiment_path, graded).fit()
    assert len(restored) == 12 and restored.num_terminated == 12
    assert [r.config for r in restored] == [r.config for r in whole]
    assert _brackets(restored.experiment_path) == _brackets(whole.experiment_path)
    assert [r.metrics["training_iteration"] for r in restored] == \
        [r.metrics["training_iteration"] for r in whole]
    assert len({r.metrics["training_iteration"] for r in restored}) > 1   # ASHA stopped some


def test_resume_unfinished_false_ends_waiting_trials_as_they_are(tmp_path):
    half = _graded_tuner(tmp_path, "half", stop=StopAllAfter(2)).fit()
    waiting = {r.trial_id for r in half if r.status in ("PENDING", "RUNNING")}
    assert waiting, "the stopped sweep left no trial waiting"
    finished = {r.trial_id: len(r.metrics_dataframe) for r in half if r.status == "TERMINATED"}
    restored = tune.Tuner.restore(half.experiment_path, graded, resume_unfinished=False).fit()
    assert len(restored) == 12 and restored.num_terminated == 12
    by_id = {r.trial_id: r for r in restored}
    for trial_id in waiting:        # ended as they were: none of them ran
        assert by_id[trial_id].status == "TERMINATED"
        assert by_id[trial_id].history() == []
    for trial_id, n in finished.items():
        assert len(by_id[trial_id].metrics_dataframe) == n
    new = set(by_id) - waiting - set(finished)
    assert new and all(by_id[t].history() for t in new)   # the rest of the sweep ran


def test_restoring_a_finished_experiment_runs_nothing(tmp_path):
    grid = _graded_tuner(tmp_path, "done").fit()
    before = [len(r.metrics_dataframe) for r in grid]
    again = tune.Tuner.restore(grid.experiment_path, graded).fit()
    assert [len(r.metrics_dataframe) for r in again] == before
    assert [r.config for r in again] == [r.config for r in grid]


def test_a_trial_stopped_before_its_end_was_recorded_keeps_its_final_result(tmp_path):
    """The driver died after ASHA stopped a trial but before the trial's end was stored.

    (A worker sends the ends of short trials together, so this window is
    real.) The experiment file is set to that state by hand: the trial's row
    says RUNNING with no last result; its results and the scheduler's
    ``complete`` event are there. The restore must not run it again, and its
    final result is the one the scheduler was given.
    """
    grid = _graded_tuner(tmp_path, "cut").fit()
    stopped = [r for r in grid if r.metrics["training_iteration"] < 16]
    assert stopped, "ASHA stopped no trial early"
    victim = stopped[0]
    db = Path(grid.experiment_path) / "experiment.db"
    with sqlite3.connect(db) as con:
        con.execute("UPDATE trials SET status = 'RUNNING', last_result = NULL WHERE trial_id = ?",
                    (victim.trial_id,))
    con.close()
    before = {r.trial_id: len(r.metrics_dataframe) for r in grid}
    again = tune.Tuner.restore(grid.experiment_path, graded).fit()
    by_id = {r.trial_id: r for r in again}
    restored = by_id[victim.trial_id]
    assert restored.status == "TERMINATED"
    assert restored.metrics["training_iteration"] == victim.metrics["training_iteration"]
    assert restored.metrics["loss"] == victim.metrics["loss"]
    assert restored.metrics["done"] is True
    assert {t: len(r.metrics_dataframe) for t, r in by_id.items()} == before   # nothing re-ran


def graded_nested(config):
    """``graded`` with its loss nested under ``val``."""
    for step in range(1, 17):
        tune.report({"val": {"loss": config["x"] + 1.0 / step}})


def test_a_recovered_final_result_keeps_its_nested_metrics(tmp_path):
    # the scheduler gets them flattened; what is recovered for the trial must not be
    scheduler = AsyncHyperBandScheduler(grace_period=1, max_t=16, reduction_factor=2)
    grid = tune.Tuner(graded_nested, param_space={"x": tune.grid_search([0.0, 0.5, 1.0, 2.0])},
                      tune_config=tune.TuneConfig(metric="val/loss", mode="min",
                                                  scheduler=scheduler,
                                                  max_concurrent_trials=1),
                      run_config=_run_config(tmp_path, "nested")).fit()
    victim = next(r for r in grid if r.metrics["training_iteration"] < 16)
    db = Path(grid.experiment_path) / "experiment.db"
    with sqlite3.connect(db) as con:
        con.execute("UPDATE trials SET status = 'RUNNING', last_result = NULL WHERE trial_id = ?",
                    (victim.trial_id,))
    con.close()
    again = {r.trial_id: r for r in tune.Tuner.restore(grid.experiment_path, graded_nested).fit()}
    restored = again[victim.trial_id]
    assert restored.status == "TERMINATED"
    assert restored.metrics["val"] == victim.metrics["val"] and "val/loss" not in restored.metrics


def _spec_value(spec):
    return spec.config.a * 2


def test_a_space_with_functions_needs_the_param_space_again(tmp_path):
    space = {"a": tune.uniform(0, 1), "b": tune.sample_from(_spec_value)}
    tuner = tune.Tuner(graded, param_space={**space, "x": 0.5},
                       tune_config=tune.TuneConfig(num_samples=2, seed=3),
                       run_config=_run_config(tmp_path, "functions"))
    grid = tuner.fit()
    with pytest.raises(ValueError, match="pass the same param_space"):
        tune.Tuner.restore(grid.experiment_path, graded)
    again = tune.Tuner.restore(grid.experiment_path, graded,
                               param_space={**space, "x": 0.5}).fit()
    assert [r.config for r in again] == [r.config for r in grid]


def test_a_numpy_grid_restores_without_the_param_space(tmp_path):
    """Ray 2.0-2.4's Tuner.restore(path) takes no param_space: a np.linspace grid is stored."""
    import numpy as np

    space = {"x": tune.grid_search(list(np.linspace(0.0, 1.0, 4))), "k": np.int64(3)}
    tuner = tune.Tuner(graded, param_space=space,
                       tune_config=tune.TuneConfig(max_concurrent_trials=1),
                       run_config=_run_config(tmp_path, "numpy", stop=StopAllAfter(2)))
    first = tuner.fit()
    assert [r.status for r in first].count("TERMINATED") < 4      # the stopper ended it
    again = tune.Tuner.restore(first.experiment_path, graded).fit()
    assert [r.status for r in again] == ["TERMINATED"] * 4
    assert [r.config["x"] for r in again] == [0.0, 1 / 3, 2 / 3, 1.0]
    assert all(r.config["k"] == 3 for r in again)


def reports_x(config):
    tune.report({"loss": float(config["x"])})


def test_a_longdouble_grid_runs_and_restores_with_its_param_space(tmp_path):
    """np.longdouble is no Python number: the space is not stored (the fit used to crash)."""
    import numpy as np

    space = {"x": tune.grid_search([np.longdouble(0.25), np.longdouble(0.5)])}
    first = tune.Tuner(reports_x, param_space=space,
                       run_config=_run_config(tmp_path, "ld")).fit()
    assert [r.status for r in first] == ["TERMINATED"] * 2
    with pytest.raises(ValueError, match="could not be stored as JSON"):
        tune.Tuner.restore(first.experiment_path, reports_x)
    again = tune.Tuner.restore(first.experiment_path, reports_x, param_space=space).fit()
    assert [r.metrics["loss"] for r in again] == [0.25, 0.5]


def test_another_param_space_is_refused(tmp_path):
    grid = _graded_tuner(tmp_path, "space").fit()
    with pytest.raises(ValueError, match="differs"):
        tune.Tuner.restore(grid.experiment_path, graded,
                           param_space={"x": tune.uniform(5, 6)}).fit()


class CountingScheduler(TrialScheduler):
    """A custom scheduler: stops every trial at its third report."""

    def on_trial_result(self, trial_id, result):
        return self.STOP if result["training_iteration"] >= 3 else self.CONTINUE


def test_a_custom_scheduler_must_be_passed_to_restore(tmp_path):
    tuner = tune.Tuner(graded, param_space={"x": tune.uniform(0, 1)},
                       tune_config=tune.TuneConfig(num_samples=2, scheduler=CountingScheduler()),
                       run_config=_run_config(tmp_path, "custom"))
    grid = tuner.fit()
    assert [r.metrics["training_iteration"] for r in grid] == [3, 3]
    with pytest.raises(ValueError, match="scheduler=") as err:
        tune.Tuner.restore(grid.experiment_path, graded)
    assert "CountingScheduler" in str(err.value)
    again = tune.Tuner.restore(grid.experiment_path, graded, scheduler=CountingScheduler()).fit()
    assert again.num_terminated == 2


class ListSearcher:
    """A minimal search_alg: configs from a list, then FINISHED; records what it is told."""

    def __init__(self, xs):
        self.xs = list(xs)
        self.completed = []
        self.results = 0

    def suggest(self, trial_id):
        return {"x": self.xs.pop(0)} if self.xs else "FINISHED"

    def on_trial_result(self, trial_id, result):
        self.results += 1

    def on_trial_complete(self, trial_id, result=None, error=False):
        self.completed.append((trial_id, error, None if result is None else result["loss"]))


def test_a_search_alg_suggests_and_hears_how_trials_ended(tmp_path):
    searcher = ListSearcher([0.25, 0.5, 0.75])
    with __import__("joblib").parallel_config(backend="threading"):   # keep the searcher here
        grid = tune.Tuner(graded, tune_config=tune.TuneConfig(metric="loss", mode="min",
                                                              search_alg=searcher, num_samples=10),
                          run_config=_run_config(tmp_path, "searcher")).fit()
    assert [r.config["x"] for r in grid] == [0.25, 0.5, 0.75]
    assert sorted(x for _, _, x in searcher.completed) == pytest.approx(
        [0.25 + 1 / 16, 0.5 + 1 / 16, 0.75 + 1 / 16])
    assert all(not error for _, error, _ in searcher.completed)
    assert searcher.results >= 3
    with pytest.raises(ValueError, match="search_alg"):
        tune.Tuner.restore(grid.experiment_path, graded)


def test_settings_in_the_file_are_json(tmp_path):
    grid = _graded_tuner(tmp_path, "json").fit()
    with sqlite3.connect(Path(grid.experiment_path) / "experiment.db") as con:
        settings = json.loads(con.execute("SELECT value FROM meta WHERE key='settings'").fetchone()[0])
    assert settings["scheduler"]["class"] == "AsyncHyperBandScheduler"
    assert settings["seed"] == 11 and settings["num_samples"] == 12
    assert settings["search"]["param_space"] is not None


def reports_a_string_for(config):
    for step in range(1, 4):
        loss = "oops" if config["bad"] and step == 1 else config["x"] * step   # a rung
        tune.report({"loss": loss})


def test_restore_skips_a_scheduler_call_that_failed_in_the_run(tmp_path):
    # the scheduler rejected trial 1's string loss; the call is not replayed
    tuner = tune.Tuner(reports_a_string_for,
                       param_space={"x": 1.0, "bad": tune.grid_search([False, True, False])},
                       tune_config=tune.TuneConfig(
                           metric="loss", mode="min",
                           scheduler=AsyncHyperBandScheduler(grace_period=1, max_t=3)),
                       run_config=_run_config(tmp_path, "bad_metric"))
    grid = tuner.fit()
    assert [r.status for r in grid] == ["TERMINATED", "ERROR", "TERMINATED"]
    assert "must be a number" in str(grid[1].error)
    again = tune.Tuner.restore(grid.experiment_path, reports_a_string_for).fit()
    assert [r.status for r in again] == ["TERMINATED", "ERROR", "TERMINATED"]


def _cpu_for(config):
    return {"cpu": -1} if config["huge"] else {"cpu": 1}     # -1: an invalid request


def test_restore_keeps_a_trial_whose_resource_request_failed(tmp_path):
    trainable = tune.with_resources(graded, _cpu_for)
    grid = tune.Tuner(trainable, param_space={"x": 0.5, "huge": tune.grid_search([False, True])},
                      run_config=_run_config(tmp_path, "huge")).fit()
    assert [r.status for r in grid] == ["TERMINATED", "ERROR"]
    again = tune.Tuner.restore(grid.experiment_path, trainable).fit()
    assert [r.status for r in again] == ["TERMINATED", "ERROR"]


def _activations():
    """New function objects on every call (so their reprs show other addresses)."""
    def relu(v):
        return max(v, 0.0)

    def identity(v):
        return v

    return [relu, identity]


def uses_a_function(config):
    tune.report({"loss": config["act"](config["x"])})


def test_restore_with_functions_in_the_configs(tmp_path):
    # configs hold function objects: stored by repr (with a memory address), so
    # restore compares them as "some object" and trusts the param_space passed
    space = {"act": tune.choice(_activations()), "x": tune.uniform(-1, 1)}
    tuner = tune.Tuner(uses_a_function, param_space=space,
                       tune_config=tune.TuneConfig(num_samples=6, seed=5, metric="loss", mode="min"),
                       run_config=_run_config(tmp_path, "functions_in_config",
                                              stop=StopAllAfterReports(2)))
    with __import__("joblib").parallel_config(backend="threading"):
        half = tuner.fit()
        same_space = {"act": tune.choice(_activations()), "x": tune.uniform(-1, 1)}
        again = tune.Tuner.restore(half.experiment_path, uses_a_function,
                                   param_space=same_space).fit()
    assert again.num_terminated == 6


class StopAllAfterReports(tune.Stopper):
    def __init__(self, n):
        self.n, self.seen = n, 0

    def __call__(self, trial_id, result):
        self.seen += 1
        return False

    def stop_all(self):
        return self.seen >= self.n


@pytest.mark.parametrize("name", ["lr?sweep", "run#1", "50%done"])
def test_any_folder_name_can_be_read_back_and_restored(tmp_path, name):
    # '?', '#' and '%' mean something in the SQLite URI that opens a file read-only
    tuner = tune.Tuner(graded, param_space={"x": tune.grid_search([0.0, 1.0])},
                       run_config=_run_config(tmp_path, name))
    grid = tuner.fit()
    assert len(grid[0].metrics_dataframe) == 16
    again = tune.ResultGrid.from_path(tmp_path / name)
    assert sorted(r.metrics["loss"] for r in again) == pytest.approx([1.0 / 16, 1.0 + 1.0 / 16])
    assert tune.Tuner.can_restore(tmp_path / name)
    assert len(tune.Tuner.restore(str(tmp_path / name), graded).fit()) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]    # no stray files beside it
