"""The Tuner end to end, through the public API (``from fastasha import tune``).

The objectives live in ``tests/objectives.py`` so that loky's worker
processes can import them by name (see that module's docstring). Every sweep
writes to ``tmp_path`` with ``verbose=0`` unless a test is about the output.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

import joblib
import numpy as np
import objectives
import pytest

from fastasha import tune
from fastasha.schedulers import (
    AsyncHyperBandScheduler,
    TrialScheduler,
)

REPO = Path(__file__).resolve().parents[1]
AUTO_KEYS = ("training_iteration", "time_this_iter_s", "time_total_s", "timestamp",
             "trial_id", "date", "hostname", "pid", "done")


def run_config(tmp_path, name="exp", **kwargs) -> tune.RunConfig:
    kwargs.setdefault("verbose", 0)
    return tune.RunConfig(storage_path=str(tmp_path), name=name, **kwargs)


def fit(trainable, tmp_path, *, param_space=None, name="exp", tune_config=None,
        resources=None, **run_kwargs) -> tune.ResultGrid:
    tuner = tune.Tuner(trainable, param_space=param_space,
                       tune_config=tune_config or tune.TuneConfig(),
                       run_config=run_config(tmp_path, name, **run_kwargs),
                       resources=resources)
    return tuner.fit()


def n_reports(result) -> int:
    return len(result.metrics_dataframe)


@pytest.fixture(params=["loky", "threading"])
def backend(request):
    """Run the test under joblib's process backend (the default) and under threads."""
    with joblib.parallel_config(backend=request.param):
        yield request.param


def check_backend_pids(grid, backend):
    """Trials ran where the backend puts them: other processes, or this one."""
    pids = {r.metrics["pid"] for r in grid}
    if backend == "threading":
        assert pids == {os.getpid()}
    else:
        assert os.getpid() not in pids


# ------------------------------------------------------------- 1. the example

def test_async_hyperband_example_smoke_test(tmp_path):
    env = dict(os.environ, FASTASHA_STORAGE_PATH=str(tmp_path))
    proc = subprocess.run(
        [sys.executable, str(REPO / "examples" / "async_hyperband_example.py"), "--smoke-test"],
        check=False, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    match = re.search(r"^Best hyperparameters found: (\{.*\})$", proc.stdout, re.MULTILINE)
    assert match is not None, proc.stdout
    assert "'width'" in match.group(1) and "'height'" in match.group(1)
    grid = tune.ResultGrid.from_path(tmp_path / "asynchyperband_test")
    assert len(grid) == 20
    assert grid.num_errors == 0
    assert {r.metrics["training_iteration"] for r in grid} == {1}


# ------------------------------------------------------------ 2. auto fields

@pytest.mark.parametrize("tune_config", [
    tune.TuneConfig(num_samples=1),
    tune.TuneConfig(num_samples=3, max_concurrent_trials=1),
], ids=["one-trial", "one-at-a-time"])
def test_single_slot_sweep_runs_trials_where_the_backend_puts_them(tmp_path, backend,
                                                                    tune_config):
    # joblib runs Parallel(n_jobs=1) in the calling process whatever the backend;
    # a one-slot sweep must still run its trials in loky's worker processes.
    grid = fit(objectives.steps, tmp_path, param_space={"x": 1.0, "n": 2},
               tune_config=tune_config)
    assert grid.num_errors == 0
    check_backend_pids(grid, backend)


def test_every_result_carries_the_automatic_fields(tmp_path, backend):
    before = time.time()
    grid = fit(objectives.sleepy_steps, tmp_path,
               param_space={"x": 2.0, "n": 4, "sleep": 0.01})
    after = time.time()
    (result,) = grid
    history = result.metrics_dataframe
    assert len(history) == 4
    for key in AUTO_KEYS + ("loss", "step"):
        assert key in history.columns, key
    assert list(history["training_iteration"]) == [1, 2, 3, 4]
    assert list(history["step"]) == [1, 2, 3, 4]
    assert list(history["loss"]) == [2.0, 4.0, 6.0, 8.0]
    assert set(history["trial_id"]) == {result.trial_id}
    assert set(history["hostname"]) == {socket.gethostname()}
    assert history["pid"].nunique() == 1
    assert list(history["done"]) == [False, False, False, True]
    totals = list(history["time_total_s"])
    per_iter = list(history["time_this_iter_s"])
    assert all(t >= 0.01 for t in per_iter)     # each report came after a 10 ms sleep
    assert totals == sorted(totals)
    for i in range(1, 4):
        assert totals[i] - totals[i - 1] == pytest.approx(per_iter[i], abs=1e-6)
    assert totals[0] >= per_iter[0]
    for stamp in history["timestamp"]:
        assert int(before) <= stamp <= after
    for date in history["date"]:
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}_\d{2}-\d{2}-\d{2}", date)
    # the last result is also Result.metrics
    assert result.metrics["training_iteration"] == 4
    assert result.metrics["done"] is True
    assert result.metrics["loss"] == 8.0


def test_user_keys_take_precedence_over_automatic_fields(tmp_path):
    grid = fit(objectives.overriding_auto_keys, tmp_path)
    history = grid[0].metrics_dataframe
    assert list(history["hostname"]) == ["my-host"] * 3
    assert list(history["pid"]) == [-1, -2, -3]
    assert list(history["time_total_s"]) == [1001.0, 1002.0, 1003.0]
    assert list(history["training_iteration"]) == [1, 2, 3]    # not overridden: automatic
    assert grid[0].metrics["hostname"] == "my-host"


# ------------------------------------------------- 3. scheduler decisions

def expected_asha_reports(configs, max_t):
    """How many reports each trial gets, run one after another through a fresh ASHA."""
    scheduler = AsyncHyperBandScheduler(metric="loss", mode="min", grace_period=1,
                                        max_t=max_t, reduction_factor=2)
    counts = []
    for i, config in enumerate(configs):
        trial_id = f"replay_{i}"
        scheduler.on_trial_add(trial_id)
        for step in range(1, 100):
            result = {"training_iteration": step, "loss": objectives.asha_loss(config, step)}
            if scheduler.on_trial_result(trial_id, result) == "STOP":
                break
        scheduler.on_trial_complete(trial_id, result)
        counts.append(step)
    return counts


def test_asha_stops_each_trial_at_the_report_the_scheduler_decides(tmp_path, backend):
    markers = tmp_path / "markers"
    markers.mkdir()
    max_t = 16
    grid = fit(
        objectives.asha_objective, tmp_path,
        param_space={"seed": tune.randint(0, 10**6), "base": tune.uniform(0, 1),
                     "marker_dir": str(markers)},
        tune_config=tune.TuneConfig(
            metric="loss", mode="min", num_samples=12, max_concurrent_trials=1, seed=11,
            scheduler=AsyncHyperBandScheduler(grace_period=1, max_t=max_t, reduction_factor=2)),
    )
    assert grid.num_errors == 0
    expected = expected_asha_reports([r.config for r in grid], max_t)
    assert [n_reports(r) for r in grid] == expected
    assert [r.metrics["training_iteration"] for r in grid] == expected
    # the sweep is not trivial: some trials were cut early, some reached max_t
    assert min(expected) < max_t and max(expected) == max_t
    # each history is exactly the sequence the objective computes
    for r in grid:
        losses = list(r.metrics_dataframe["loss"])
        assert losses == [objectives.asha_loss(r.config, s) for s in range(1, len(losses) + 1)]
    # STOP ended every objective inside report(), through its `except Exception`
    assert os.listdir(markers) == []


# ------------------------------------------------------- 4. stop criteria

def test_stop_dict_on_training_iteration_stops_at_exactly_that_report(tmp_path, backend):
    grid = fit(objectives.score_steps, tmp_path, param_space={"n": 10},
               tune_config=tune.TuneConfig(num_samples=2),
               stop={"training_iteration": 3})
    assert [n_reports(r) for r in grid] == [3, 3]
    assert [r.status for r in grid] == ["TERMINATED", "TERMINATED"]


def test_stop_dict_on_a_user_metric(tmp_path):
    grid = fit(objectives.score_steps, tmp_path, param_space={"n": 10}, stop={"score": 5})
    assert list(grid[0].metrics_dataframe["score"]) == [1.0, 2.0, 3.0, 4.0, 5.0]


def test_stop_callable(tmp_path, backend):
    seen = []

    def stop(trial_id, result):
        seen.append((trial_id, result["training_iteration"]))
        return result["score"] >= 4

    grid = fit(objectives.score_steps, tmp_path, param_space={"n": 10},
               tune_config=tune.TuneConfig(num_samples=2), stop=stop)
    assert [n_reports(r) for r in grid] == [4, 4]
    # the function saw every result of every trial
    assert sorted(seen) == sorted((r.trial_id, i) for r in grid for i in range(1, 5))


class StopAllAtScore(tune.Stopper):
    def __init__(self, score):
        self.score = score
        self.triggered = False

    def __call__(self, trial_id, result):
        if result["score"] >= self.score:
            self.triggered = True
        return False

    def stop_all(self):
        return self.triggered


def test_stopper_stop_all_ends_the_sweep(tmp_path):
    grid = fit(objectives.score_steps, tmp_path, param_space={"n": 10},
               tune_config=tune.TuneConfig(num_samples=4, max_concurrent_trials=1),
               stop=StopAllAtScore(3))
    assert grid[0].status == "TERMINATED"
    assert n_reports(grid[0]) == 3
    # no further trial ran (one may have been created ahead, waiting as PENDING)
    assert all(r.status == "PENDING" and not r.metrics for r in grid[1:])
    assert len(grid) <= 2


def test_stop_key_never_reported_lets_the_trial_run_with_a_warning(tmp_path):
    # as in Ray Tune, which warns once and runs on
    with joblib.parallel_config(backend="threading"), \
            pytest.warns(RuntimeWarning, match=r"stop criterion 'never_reported'.*'score'"):
        grid = fit(objectives.score_steps, tmp_path, param_space={"n": 10},
                   stop={"never_reported": 1})
    assert grid[0].status == "TERMINATED" and n_reports(grid[0]) == 10


def test_a_stop_key_reported_every_few_steps_stops_the_trial_when_met(tmp_path):
    grid = fit(objectives.nested_steps, tmp_path, param_space={"n": 12, "x": 1.0},
               stop={"val_acc": 0.5})
    assert grid[0].status == "TERMINATED"
    assert n_reports(grid[0]) == 6            # val_acc = 3/12 at step 3, 6/12 at step 6


def test_nested_metrics_are_tuned_on_by_their_flattened_name(tmp_path):
    # Ray flattens results for the scheduler: metric="val/loss" names result["val"]["loss"]
    scheduler = AsyncHyperBandScheduler(grace_period=2, max_t=16, reduction_factor=2)
    grid = fit(objectives.nested_steps, tmp_path,
               param_space={"n": 16, "x": tune.grid_search([1.0, 2.0, 4.0, 8.0, 16.0, 32.0])},
               tune_config=tune.TuneConfig(metric="val/loss", mode="min", scheduler=scheduler,
                                           max_concurrent_trials=1),
               stop={"train/step": 12})          # a nested stop key too
    assert grid.num_errors == 0, [str(e) for e in grid.errors]
    steps = {r.config["x"]: n_reports(r) for r in grid}
    assert steps[1.0] == 12                      # best at every rung; the stop key ends it
    assert min(steps.values()) < 12              # ASHA stopped worse ones early
    assert grid[0].metrics["val"]["loss"] == pytest.approx(1.0 / 12)   # kept nested


def test_a_nested_metric_that_is_missing_is_still_a_clear_error(tmp_path):
    grid = fit(objectives.nested_steps, tmp_path, param_space={"n": 3, "x": 1.0},
               tune_config=tune.TuneConfig(metric="val/acc", mode="max"))
    assert grid[0].status == "ERROR"
    assert "'val/acc'" in str(grid[0].error) and "'val'" in str(grid[0].error)


# --------------------------------------------------------------- 5. errors

def test_failing_objective_errors_its_trial_and_the_sweep_goes_on(tmp_path, backend):
    grid = fit(objectives.fails_for, tmp_path,
               param_space={"x": tune.grid_search([0, 1, 2, 3]), "bad": 1},
               tune_config=tune.TuneConfig(metric="loss", mode="min"))
    assert [r.status for r in grid] == ["TERMINATED", "ERROR", "TERMINATED", "TERMINATED"]
    assert grid.num_errors == 1
    assert grid.num_terminated == 3
    failed = grid[1]
    assert failed.config["x"] == 1
    assert isinstance(failed.error, tune.TrialError)
    assert "ValueError: boom at x=1" in str(failed.error)
    assert "Traceback" in failed.error.traceback
    assert "fails_for" in failed.error.traceback
    assert n_reports(failed) == 2          # what it reported before failing is kept
    assert grid.errors == [failed.error]
    assert all(r.error is None for r in grid if r is not failed)
    assert [n_reports(r) for r in grid if r is not failed] == [3, 3, 3]
    assert grid.get_best_result().config["x"] == 0


def test_metric_never_reported_fails_the_trial_naming_the_keys(tmp_path, backend):
    grid = fit(objectives.reports_other_key, tmp_path,
               tune_config=tune.TuneConfig(metric="loss", mode="min"))
    assert grid[0].status == "ERROR"
    message = str(grid[0].error)
    assert "'loss'" in message and "'acc'" in message


def test_metrics_as_keywords_as_in_ray_2_6(tmp_path, backend):
    """``tune.report(loss=...)``, Ray Tune's form up to 2.6, reports those metrics."""
    grid = fit(objectives.reports_keywords, tmp_path, param_space={"steps": 4},
               tune_config=tune.TuneConfig(metric="loss", mode="min",
                                           scheduler=AsyncHyperBandScheduler(max_t=10)))
    result = grid[0]
    assert result.status == "TERMINATED"
    frame = result.metrics_dataframe
    assert list(frame["step"]) == [0, 1, 2, 3]
    assert list(frame["loss"]) == [1.0, 0.5, 1.0 / 3, 0.25]
    assert list(frame["training_iteration"]) == [1, 2, 3, 4]
    with result.checkpoint.as_directory() as d:
        assert open(f"{d}/step").read() == "3"


@pytest.mark.parametrize("objective, match", [
    (objectives.reports_dict_and_keywords, r"got a dict \(or value\) and the keywords \['acc'\]"),
    (objectives.reports_nothing_given, r"report\(\) takes a dict of metrics, got None"),
])
def test_report_refuses_a_dict_and_keywords_together_and_nothing_at_all(tmp_path, objective,
                                                                         match):
    grid = fit(objective, tmp_path)
    assert grid[0].status == "ERROR"
    assert re.search(match, str(grid[0].error)), grid[0].error


def test_report_outside_a_trial_raises():
    with pytest.raises(RuntimeError, match=r"tune.report\(\) was called outside a trial"):
        tune.report({"loss": 1.0})


def test_unpicklable_objective_is_refused_before_anything_runs(tmp_path):
    lock = threading.Lock()

    def objective(config):
        with lock:
            tune.report({"loss": 1.0})

    tuner = tune.Tuner(objective, run_config=run_config(tmp_path))
    with pytest.raises(TypeError, match="cannot be pickled.*threading"):
        tuner.fit()
    assert list(tmp_path.iterdir()) == []
    # the same closure is fine where nothing is pickled
    with joblib.parallel_config(backend="threading"):
        grid = tune.Tuner(objective, run_config=run_config(tmp_path)).fit()
    assert grid[0].metrics["loss"] == 1.0


def test_invalid_search_space_is_refused_before_anything_runs(tmp_path):
    with pytest.raises(ValueError, match="lower must be less than upper"):
        fit(objectives.steps, tmp_path, param_space={"x": tune.uniform(5, 1), "n": 1})
    assert list(tmp_path.iterdir()) == []


def test_tune_config_refuses_bad_values(tmp_path):
    with pytest.raises(ValueError, match="num_samples"):
        tune.TuneConfig(num_samples=0)
    with pytest.raises(ValueError, match="mode='min' was given without a metric"):
        tune.TuneConfig(mode="min")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("make, match", [
    # a flag from the command line or the environment is a string, and "false" is truthy
    (lambda: tune.RunConfig(overwrite="false"), "overwrite must be True or False"),
    (lambda: tune.FailureConfig(fail_fast="yes"), "fail_fast must be True or False"),
    (lambda: tune.RunConfig(failure_config={"max_failures": 2}), "tune.FailureConfig"),
    (lambda: tune.RunConfig(checkpoint_config=3), "tune.CheckpointConfig"),
    (lambda: tune.RunConfig(storage_path=5), "storage_path must be a folder path"),
    (lambda: tune.CheckpointConfig(checkpoint_score_attribute=5), "checkpoint_score_attribute"),
    (lambda: tune.Tuner(objectives.steps, tune_config=tune.TuneConfig(search_alg=5)),
     "suggest"),
    (lambda: tune.Tuner(objectives.steps,
                        tune_config=tune.TuneConfig(scheduler=AsyncHyperBandScheduler)),
     r"the class AsyncHyperBandScheduler; pass an instance"),
])
def test_config_objects_of_the_wrong_kind_are_refused_at_once(make, match):
    with pytest.raises(TypeError, match=match):
        make()


def named_by_config(trial):
    return f"x={trial.config['x']}"


def named_as_in_rays_docs(trial):
    return "{}_{}".format(trial.trainable_name, trial.trial_id)


def misnamed(trial):
    return trial.no_such_attribute


def test_ray_tune_config_knobs_are_accepted(tmp_path):
    # names Ray scripts pass: reuse_actors (no effect here), trial_name_creator (used)
    grid = fit(objectives.ranks_and_name, tmp_path, param_space={"x": tune.grid_search([1, 2])},
               tune_config=tune.TuneConfig(reuse_actors=True,
                                           trial_name_creator=named_by_config))
    assert sorted(r.metrics["name"] for r in grid) == ["x=1", "x=2"]
    assert all(r.metrics["ranks"] == [0, 0, 0, 1, 1] for r in grid)
    grid = fit(objectives.ranks_and_name, tmp_path, name="ray_names", param_space={"x": 1},
               tune_config=tune.TuneConfig(trial_name_creator=named_as_in_rays_docs))
    assert grid[0].metrics["name"] == f"ranks_and_name_{grid[0].trial_id}"
    with pytest.raises(ValueError, match="trial_name_creator=.... raised AttributeError.*"
                                         "no_such_attribute.*a trial there has trial_id"):
        fit(objectives.ranks_and_name, tmp_path, name="bad_names", param_space={"x": 1},
            tune_config=tune.TuneConfig(trial_name_creator=misnamed))
    with pytest.raises(TypeError, match="trial_name_creator must be a function"):
        tune.TuneConfig(trial_name_creator="x")
    with pytest.raises(TypeError, match="reuse_actors must be True or False"):
        tune.TuneConfig(reuse_actors="yes")
    assert tune.CheckpointConfig(checkpoint_frequency=0, checkpoint_at_end=None)
    with pytest.raises(ValueError, match="applies to tune.Trainable classes.*tune.report"):
        tune.Tuner(objectives.steps, run_config=tune.RunConfig(
            checkpoint_config=tune.CheckpointConfig(checkpoint_frequency=5)))
    with pytest.raises(ValueError, match="checkpoint_frequency must be at least 0"):
        tune.CheckpointConfig(checkpoint_frequency=-1)
    from datetime import timedelta

    assert tune.TuneConfig(time_budget_s=timedelta(minutes=2)).time_budget_s == 120.0


def test_storage_path_may_be_a_path_object(tmp_path):
    assert tune.RunConfig(storage_path=tmp_path).storage_path == str(tmp_path)


def test_a_cloud_storage_uri_is_refused_rather_than_written_locally():
    # it used to make a local folder named "s3:" and report success
    with pytest.raises(ValueError, match="s3:// URI.*local or mounted folder"):
        tune.RunConfig(storage_path="s3://bucket/tune")
    assert tune.RunConfig(storage_path="file:///tmp/x").storage_path == "/tmp/x"


@pytest.mark.parametrize("flag", ["resume_unfinished", "resume_errored", "restart_errored"])
def test_restore_flags_must_be_booleans(tmp_path, flag):
    grid = fit(objectives.steps, tmp_path, param_space={"x": 1.0, "n": 1})
    with pytest.raises(TypeError, match=f"{flag} must be True or False"):
        tune.Tuner.restore(grid.experiment_path, objectives.steps, **{flag: "no"})


def test_restoring_the_file_instead_of_its_folder_says_so(tmp_path):
    grid = fit(objectives.steps, tmp_path, param_space={"x": 1.0, "n": 1})
    with pytest.raises(ValueError, match="pass the folder that holds it"):
        tune.Tuner.restore(os.path.join(grid.experiment_path, "experiment.db"), objectives.steps)


def test_metric_and_mode_given_twice_is_refused(tmp_path):
    scheduler = AsyncHyperBandScheduler(metric="acc", mode="max")
    tuner = tune.Tuner(objectives.steps, param_space={"x": 1.0, "n": 1},
                       tune_config=tune.TuneConfig(metric="loss", mode="min",
                                                   scheduler=scheduler),
                       run_config=run_config(tmp_path))
    with pytest.raises(ValueError, match="both to TuneConfig and to the scheduler"):
        tuner.fit()
    assert list(tmp_path.iterdir()) == []


def test_existing_experiment_is_refused_unless_overwrite(tmp_path):
    first = fit(objectives.steps, tmp_path, name="same",
                param_space={"x": tune.grid_search([1.0, 2.0]), "n": 1})
    with pytest.raises(FileExistsError, match=r"Tuner\.restore"):
        fit(objectives.steps, tmp_path, name="same",
            param_space={"x": tune.grid_search([5.0, 6.0, 7.0]), "n": 1})
    kept = tune.ResultGrid.from_path(first.experiment_path)
    assert sorted(r.config["x"] for r in kept) == [1.0, 2.0]

    second = fit(objectives.steps, tmp_path, name="same", overwrite=True,
                 param_space={"x": tune.grid_search([5.0, 6.0, 7.0]), "n": 1})
    assert second.experiment_path == first.experiment_path
    reread = tune.ResultGrid.from_path(second.experiment_path)
    assert sorted(r.config["x"] for r in reread) == [5.0, 6.0, 7.0]
    assert not {r.trial_id for r in reread} & {r.trial_id for r in first}


def test_two_unnamed_experiments_in_a_row_both_run(tmp_path):
    # The default name holds the time to the second: two quick fits must not collide.
    grids = [tune.Tuner(objectives.steps, param_space={"x": 1.0, "n": 1},
                        run_config=tune.RunConfig(storage_path=str(tmp_path), verbose=0)).fit()
             for _ in range(2)]
    assert grids[0].experiment_path != grids[1].experiment_path
    assert all(len(tune.ResultGrid.from_path(g.experiment_path)) == 1 for g in grids)


# -------------------------------------------------------------- 6. backends

def small_seeded_sweep(tmp_path, name):
    return fit(objectives.steps, tmp_path, name=name,
               param_space={"x": tune.uniform(0, 1), "n": tune.randint(1, 5)},
               tune_config=tune.TuneConfig(metric="loss", mode="min", num_samples=5, seed=42))


def test_backends_give_identical_results(tmp_path):
    grids = {}
    for name in ("loky", "threading"):
        with joblib.parallel_config(backend=name):
            grids[name] = small_seeded_sweep(tmp_path, name)
        check_backend_pids(grids[name], name)
    loky, threads = grids["loky"], grids["threading"]
    assert [r.config for r in loky] == [r.config for r in threads]
    assert len({r.config["x"] for r in loky}) == 5
    deterministic = ["loss", "step", "training_iteration", "done"]
    for a, b in zip(loky, threads):
        assert a.status == b.status == "TERMINATED"
        assert a.metrics_dataframe[deterministic].equals(b.metrics_dataframe[deterministic])
        assert a.metrics["loss"] == a.config["x"] * a.config["n"]
    assert loky.get_best_result().config == threads.get_best_result().config


# --------------------------------------------------------- 7. search space

def test_grid_search_is_crossed_and_repeated_num_samples_times(tmp_path):
    grid = fit(objectives.echo_config, tmp_path,
               param_space={"a": tune.grid_search([1, 2]),
                            "b": tune.grid_search(["x", "y", "z"]),
                            "c": tune.uniform(0, 1)},
               tune_config=tune.TuneConfig(num_samples=2))
    assert len(grid) == 12
    pairs = [(r.config["a"], r.config["b"]) for r in grid]
    assert sorted(pairs) == sorted([(a, b) for a in (1, 2) for b in "xyz"] * 2)
    assert len({r.config["c"] for r in grid}) == 12     # a fresh draw per trial
    for r in grid:
        assert r.metrics["seen"] == r.config              # the objective got the stored config


def test_seed_makes_configs_reproducible(tmp_path):
    space = {"x": tune.uniform(0, 1), "k": tune.choice(["a", "b", "c"]),
             "i": tune.randint(0, 1000), "n": 1}

    def configs(name, seed):
        grid = fit(objectives.steps, tmp_path, name=name, param_space=space,
                   tune_config=tune.TuneConfig(num_samples=4, seed=seed))
        return [r.config for r in grid]

    first = configs("first", 5)
    assert configs("again", 5) == first
    assert configs("other", 6) != first


def test_nested_dicts_constants_and_sample_from(tmp_path):
    space = {
        "model": {"depth": tune.grid_search([2, 3]),
                  "optim": {"lr": tune.loguniform(1e-4, 1e-1), "name": "adam"}},
        "const": 7,
        "double_lr": tune.sample_from(lambda spec: spec.config.model.optim.lr * 2),
    }
    grid = fit(objectives.echo_config, tmp_path, param_space=space,
               tune_config=tune.TuneConfig(num_samples=2, seed=0))
    assert len(grid) == 4
    assert sorted(r.config["model"]["depth"] for r in grid) == [2, 2, 3, 3]
    for r in grid:
        lr = r.config["model"]["optim"]["lr"]
        assert 1e-4 <= lr < 1e-1
        assert r.config["model"]["optim"]["name"] == "adam"
        assert r.config["const"] == 7
        assert r.config["double_lr"] == lr * 2
        assert r.metrics["seen"] == r.config


# ------------------------------------------------------------ 8. ResultGrid

@pytest.fixture
def scope_grid(tmp_path):
    return fit(objectives.scope_sequence, tmp_path,
               param_space={"name": tune.grid_search(list(objectives.SCOPE_SEQUENCES))},
               tune_config=tune.TuneConfig(metric="score", mode="max"))


def test_result_grid_len_indexing_iteration(scope_grid):
    assert len(scope_grid) == 5
    names = [r.config["name"] for r in scope_grid]
    assert names == list(objectives.SCOPE_SEQUENCES)
    assert [r.trial_id for r in scope_grid] == [scope_grid[i].trial_id for i in range(5)]
    assert scope_grid[-1].trial_id == scope_grid[4].trial_id
    assert len({r.trial_id for r in scope_grid}) == 5
    assert Path(scope_grid.experiment_path).is_dir()
    with pytest.raises(IndexError):
        scope_grid[5]


@pytest.mark.parametrize("scope", ["last", "avg", "last-5-avg", "last-10-avg", "all"])
def test_get_best_result_scopes(scope_grid, scope):
    assert scope_grid.get_best_result(scope=scope).config["name"] == scope


def test_get_best_result_explicit_metric_and_mode_override(scope_grid):
    assert scope_grid.get_best_result().config["name"] == "last"
    assert scope_grid.get_best_result(metric="neg", mode="min", scope="all") \
        .config["name"] == "all"
    # smallest average score
    assert scope_grid.get_best_result(mode="min", scope="avg").config["name"] == "last"
    assert scope_grid.get_best_result("neg", "max", scope="avg").config["name"] == "last"


def test_get_best_result_refuses_bad_arguments(scope_grid, tmp_path):
    with pytest.raises(ValueError, match="scope"):
        scope_grid.get_best_result(scope="best")
    with pytest.raises(ValueError, match="mode"):
        scope_grid.get_best_result(mode="largest")
    no_metric = fit(objectives.steps, tmp_path, name="no_metric", param_space={"x": 1.0, "n": 2})
    with pytest.raises(ValueError, match="needs a metric and a mode"):
        no_metric.get_best_result()
    with pytest.raises(ValueError, match="needs a metric and a mode"):
        no_metric.get_best_result(metric="loss")
    assert no_metric.get_best_result(metric="loss", mode="min").metrics["loss"] == 2.0


def test_get_dataframe(scope_grid):
    df = scope_grid.get_dataframe()
    assert len(df) == 5
    for column in ("config/name", "trial_id", "score", "neg", "training_iteration"):
        assert column in df.columns
    assert list(df["trial_id"]) == [r.trial_id for r in scope_grid]
    assert list(df["config/name"]) == list(objectives.SCOPE_SEQUENCES)
    assert list(df["training_iteration"]) == [12] * 5
    best = scope_grid.get_dataframe(filter_metric="score", filter_mode="max")
    assert list(best["score"]) == [max(s) for s in objectives.SCOPE_SEQUENCES.values()]


def test_result_grid_from_path_rebuilds_the_grid(scope_grid):
    again = tune.ResultGrid.from_path(scope_grid.experiment_path)
    assert len(again) == len(scope_grid)
    for a, b in zip(scope_grid, again):
        assert (a.trial_id, a.config, a.status, a.metrics) == (b.trial_id, b.config,
                                                               b.status, b.metrics)
        assert a.metrics_dataframe.equals(b.metrics_dataframe)
    for scope in ("last", "avg", "all"):
        assert again.get_best_result(scope=scope).trial_id == \
            scope_grid.get_best_result(scope=scope).trial_id


def test_a_slow_checkpoint_save_keeps_its_checkpoint(tmp_path, monkeypatch):
    # While report() copies a checkpoint, the half-second background flush must
    # not ship the result without it (the checkpoint was then dropped).
    source = tmp_path / "source"
    source.mkdir()
    (source / "weights.txt").write_text("42")
    copytree = shutil.copytree

    def slow_copytree(*args, **kwargs):
        time.sleep(0.8)
        return copytree(*args, **kwargs)

    monkeypatch.setattr(shutil, "copytree", slow_copytree)
    with joblib.parallel_config(backend="threading"):   # the objective runs in this process
        grid = fit(objectives.checkpointing, tmp_path, param_space={"n": 2, "dir": str(source)})
    (result,) = grid
    assert result.status == "TERMINATED"
    assert [m["training_iteration"] for _, m in result.best_checkpoints] == [1, 2]
    assert result.checkpoint is not None
    assert (Path(result.checkpoint.path) / "weights.txt").read_text() == "42"


# ---------------------------------------- 9. with_parameters, context, return

def test_with_parameters_passes_large_objects(tmp_path, backend):
    data = np.arange(1_000_000, dtype=np.float64)        # 8 MB
    trainable = tune.with_parameters(objectives.with_data, data=data, offset=0.5)
    grid = fit(trainable, tmp_path, param_space={"x": tune.grid_search([1, 2, 3])})
    assert [r.metrics["total"] for r in grid] == [float(data.sum()) + 0.5] * 3
    assert [r.metrics["n"] for r in grid] == [1_000_000] * 3
    assert [r.config["x"] for r in grid] == [1, 2, 3]


def test_get_context_inside_and_outside_a_trial(tmp_path, backend):
    trainable = tune.with_resources(objectives.context_reporter, {"cpu": 1})
    grid = fit(trainable, tmp_path, name="ctx", tune_config=tune.TuneConfig(num_samples=2))
    for r in grid:
        assert r.metrics["ctx_trial_id"] == r.trial_id
        # Ray's context names the trial as str(trial) does: <trainable>_<trial_id>
        assert r.metrics["ctx_trial_name"] == f"context_reporter_{r.trial_id}"
        assert r.metrics["ctx_experiment"] == "ctx"
        assert r.metrics["ctx_resources"] == {"cpu": 1.0, "gpu": 0.0}
    outside = tune.get_context()
    assert outside.get_trial_id() is None
    assert outside.get_trial_name() is None
    assert outside.get_trial_resources() == {}


def test_returned_dict_is_a_final_result(tmp_path, backend):
    grid = fit(objectives.returns_dict, tmp_path)
    history = grid[0].metrics_dataframe
    assert list(history["loss"]) == [1.0, 2.0, 99.0]
    assert list(history["training_iteration"]) == [1, 2, 3]
    assert grid[0].metrics["final"] is True
    only = fit(objectives.only_returns, tmp_path, name="only", param_space={"x": 4.0})
    assert list(only[0].metrics_dataframe["loss"]) == [8.0]
    assert only[0].status == "TERMINATED"


def test_returned_numbers_and_yields_are_results_as_in_ray(tmp_path, backend):
    value = fit(objectives.returns_value, tmp_path, name="value", param_space={"x": 2.0})
    assert list(value[0].metrics_dataframe["_metric"]) == [1.0, 6.0]
    yields = fit(objectives.yields_results, tmp_path, name="yields")
    history = yields[0].metrics_dataframe
    assert yields[0].status == "TERMINATED"
    assert list(history["training_iteration"]) == [1, 2, 3, 4]
    assert list(history["loss"].fillna(-1.0)) == [3.0, -1.0, 1.0, 0.5]
    assert list(history["_metric"].fillna(-1.0)) == [-1.0, 2.0, -1.0, -1.0]


@pytest.mark.parametrize("what, shown", [
    ("a string", "returned 'a string' of type str"),
    ([1.0, 2.0], "returned [1.0, 2.0] of type list"),
])
def test_a_returned_value_ray_refuses_fails_the_trial_after_its_reports(tmp_path, what, shown):
    grid = fit(objectives.returns_other, tmp_path, param_space={"what": what})
    result = grid[0]
    assert result.status == "ERROR"
    assert shown in str(result.error) and "tune.report()" in str(result.error)
    assert list(result.metrics_dataframe["loss"]) == [1.0]     # the report before it is kept


# ------------------------------------------------------ 10. custom scheduler

class CountingScheduler(TrialScheduler):
    """Records every result; stops the trial with ``x == 1`` at its second report."""

    def __init__(self):
        super().__init__()
        self.added, self.completed = [], []
        self.results = defaultdict(list)

    def on_trial_add(self, trial_id, bracket=None):
        self.added.append(trial_id)
        return 0

    def on_trial_result(self, trial_id, result):
        self.results[trial_id].append(result["step"])
        if result["x"] == 1 and result["training_iteration"] >= 2:
            return TrialScheduler.STOP
        return TrialScheduler.CONTINUE

    def on_trial_complete(self, trial_id, result):
        self.completed.append(trial_id)


class DuckScheduler:
    """The same, without the base class (and without next_decision_point)."""

    def __init__(self):
        self.added, self.completed = [], []
        self.results = defaultdict(list)

    def on_trial_add(self, trial_id):
        self.added.append(trial_id)

    def on_trial_result(self, trial_id, result):
        self.results[trial_id].append(result["step"])
        return "STOP" if result["x"] == 1 and result["training_iteration"] >= 2 else "CONTINUE"

    def on_trial_complete(self, trial_id, result):
        self.completed.append(trial_id)


@pytest.mark.parametrize("make_scheduler", [CountingScheduler, DuckScheduler],
                         ids=["subclass", "duck-typed"])
def test_custom_scheduler_sees_every_result_and_can_stop(tmp_path, backend, make_scheduler):
    scheduler = make_scheduler()
    grid = fit(objectives.x_steps, tmp_path, param_space={"x": tune.grid_search([0, 1, 2])},
               tune_config=tune.TuneConfig(metric="step", mode="max", scheduler=scheduler))
    ids = [r.trial_id for r in grid]
    assert [n_reports(r) for r in grid] == [6, 2, 6]
    assert sorted(scheduler.added) == ids
    assert sorted(scheduler.completed) == ids
    for r in grid:
        assert scheduler.results[r.trial_id] == list(range(1, n_reports(r) + 1))


# --------------------------------------------------------- 11. TuneConfig

def test_time_budget_ends_a_sweep_of_long_trials(tmp_path):
    full = 6000                                           # 60 s per trial
    started = time.monotonic()
    grid = fit(objectives.sleepy_steps, tmp_path,
               param_space={"x": 1.0, "n": full, "sleep": 0.01},
               tune_config=tune.TuneConfig(num_samples=2, time_budget_s=1.0))
    elapsed = time.monotonic() - started
    assert elapsed < 40                                   # far less than 2 x 60 s
    assert 1 <= len(grid) <= 2
    for r in grid:
        assert r.status == "TERMINATED"
        assert 1 <= n_reports(r) < full
        assert r.metrics["time_total_s"] < 30


def test_a_stop_heard_between_reports_ends_the_trial_at_its_next_report(tmp_path, backend):
    """The background flush hears the budget's end; the next report() stops the trial.

    Each burst's first report sends the buffer itself (0.5 s have passed), its
    other two wait; during the pause the background flush sends them and
    hears STOP. The next burst's first report must raise, although the next
    flush is not due yet.
    """
    # workers started beforehand: the trial must start well within the budget
    joblib.Parallel(n_jobs=2)(joblib.delayed(abs)(i) for i in range(2))
    grid = fit(objectives.bursts, tmp_path,
               param_space={"x": 1.0, "n": 30, "sleep": 0.7},   # 21 s if nothing stops it
               tune_config=tune.TuneConfig(num_samples=1, time_budget_s=0.3))
    (result,) = grid
    assert result.status == "TERMINATED" and result.error is None
    # the burst at 0.7 s: its first report is kept, and raises
    assert n_reports(result) == 4
    assert result.metrics["time_total_s"] < 1.2


def test_unbounded_num_samples_runs_until_the_budget(tmp_path):
    grid = fit(objectives.steps, tmp_path,
               param_space={"x": tune.uniform(0, 1), "n": 3},
               tune_config=tune.TuneConfig(num_samples=-1, time_budget_s=1.5, seed=1))
    assert len(grid) >= 3
    assert grid.num_errors == 0
    assert {r.status for r in grid} == {"TERMINATED"}


def overlaps(grid) -> bool:
    spans = sorted((r.metrics["t0"], r.metrics["t"]) for r in grid)
    return any(start < previous_end for (_, previous_end), (start, _) in itertools.pairwise(spans))


def test_max_concurrent_trials_one_runs_trials_one_at_a_time(tmp_path):
    space = {"n": 3, "sleep": 0.05}
    serial = fit(objectives.timed_steps, tmp_path, name="serial", param_space=space,
                 tune_config=tune.TuneConfig(num_samples=4, max_concurrent_trials=1),
                 resources={"cpu": 2})
    assert len(serial) == 4 and serial.num_errors == 0
    assert not overlaps(serial)
    # the check can fail: with two slots the same trials do overlap (threads start at once)
    with joblib.parallel_config(backend="threading"):
        parallel = fit(objectives.timed_steps, tmp_path, name="parallel", param_space=space,
                       tune_config=tune.TuneConfig(num_samples=4), resources={"cpu": 2})
    assert overlaps(parallel)


# ------------------------------------------------- 12. output and callbacks

def test_verbose_0_prints_nothing(tmp_path, capfd):
    fit(objectives.fails_for, tmp_path, param_space={"x": tune.grid_search([0, 1]), "bad": 1},
        tune_config=tune.TuneConfig(metric="loss", mode="min"), verbose=0)
    out, err = capfd.readouterr()
    assert out == ""
    assert err == ""


FINISHED_LINE = re.compile(r"^(TERMINATED|ERROR)\s+(\S+) iter=", re.MULTILINE)


@pytest.mark.parametrize("verbose", [1, 2])
def test_verbose_prints_a_final_table_and_at_2_a_line_per_trial(tmp_path, capsys, verbose):
    grid = fit(objectives.fails_for, tmp_path, name="shown",
               param_space={"x": tune.grid_search([0, 1, 2]), "bad": 1},
               tune_config=tune.TuneConfig(metric="loss", mode="min"), verbose=verbose)
    out = capsys.readouterr().out
    assert "Trial status: 0 PENDING | 0 RUNNING | 2 TERMINATED | 1 ERROR (3/3 trials)" in out
    assert "Experiment 'shown' finished" in out
    lines = {m.group(2): m.group(1) for m in FINISHED_LINE.finditer(out)}
    if verbose == 1:
        assert lines == {}
    else:
        assert lines == {r.trial_id: r.status for r in grid}
        assert "boom at x=1" in out


class RecordingCallback(tune.Callback):
    """Ray Tune's hooks, with Ray's keyword arguments."""

    def __init__(self):
        self.events = []
        self.iterations = []

    def setup(self, stop=None, num_samples=None, total_num_samples=None, **info):
        self.events.append(("setup", num_samples, total_num_samples))

    def on_trial_start(self, iteration, trials, trial, **info):
        self.iterations.append(iteration)
        assert trial in list(trials) and str(trial) == f"{trial.trainable_name}_{trial.trial_id}"
        self.events.append(("start", trial.trial_id, trial.config["x"]))

    def on_trial_result(self, iteration, trials, trial, result, **info):
        self.iterations.append(iteration)
        assert trial.status == "RUNNING" and trial.last_result == result
        self.events.append(("result", trial.trial_id, result["training_iteration"]))

    def on_trial_complete(self, iteration, trials, trial, **info):
        self.iterations.append(iteration)
        assert trial.status == "TERMINATED" and trial.last_result["done"] is True
        self.events.append(("complete", trial.trial_id, trial.last_result["training_iteration"]))

    def on_trial_error(self, iteration, trials, trial, **info):
        self.iterations.append(iteration)
        assert trial.status == "ERROR"
        self.events.append(("error", trial.trial_id, trial.error))

    def on_experiment_end(self, trials, **info):
        self.events.append(("end", sorted(t.status for t in trials)))


def test_callbacks_see_starts_every_result_and_endings(tmp_path, backend):
    callback = RecordingCallback()
    grid = fit(objectives.fails_for, tmp_path,
               param_space={"x": tune.grid_search([0, 1, 2]), "bad": 1},
               tune_config=tune.TuneConfig(metric="loss", mode="min"), callbacks=[callback])
    assert callback.events[0] == ("setup", 1, 3)
    assert callback.events[-1] == ("end", ["ERROR", "TERMINATED", "TERMINATED"])
    for r in grid:
        mine = [e for e in callback.events if e[1] == r.trial_id]
        n = n_reports(r)
        ending = ("error", r.trial_id, "ValueError: boom at x=1") if r.config["x"] == 1 \
            else ("complete", r.trial_id, 3)
        assert mine == ([("start", r.trial_id, r.config["x"])]
                        + [("result", r.trial_id, i) for i in range(1, n + 1)]
                        + [ending])
    assert callback.iterations == sorted(set(callback.iterations))   # a growing count


class RayDocsCallback(tune.Callback):
    """The example of Ray Tune's ``tune.Callback`` page, as written there."""

    def __init__(self):
        self.seen = []

    def on_trial_result(self, iteration, trials, trial, result, **info):
        self.seen.append(result["metric"])


def reports_metric(config):
    for i in range(3):
        tune.report({"metric": i})


def test_a_ray_tune_callback_runs_unchanged(tmp_path):
    callback = RayDocsCallback()
    fit(reports_metric, tmp_path, callbacks=[callback])
    assert callback.seen == [0, 1, 2]


class RetriesAndCheckpoints(tune.Callback):
    def __init__(self):
        self.events = []

    def on_trial_recover(self, iteration, trials, trial, **info):
        self.events.append(("recover", trial.n_failures, trial.status))

    def on_trial_save(self, iteration, trials, trial, **info):
        self.events.append(("save",))

    def on_checkpoint(self, iteration, trials, trial, checkpoint, **info):
        self.events.append(("checkpoint", os.path.basename(checkpoint.path)))

    def on_trial_complete(self, iteration, trials, trial, **info):
        self.events.append(("complete", trial.n_failures))


def test_callbacks_hear_of_retries_and_checkpoints(tmp_path):
    callback = RetriesAndCheckpoints()
    grid = fit(objectives.fails_once, tmp_path, param_space={"marker": str(tmp_path / "m")},
               failure_config=tune.FailureConfig(max_failures=1), callbacks=[callback])
    assert grid[0].status == "TERMINATED"
    assert callback.events == [("recover", 1, "PENDING"), ("complete", 1)]
    callback = RetriesAndCheckpoints()
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "weights.txt").write_text("w")
    fit(objectives.checkpointing, tmp_path, name="ckpt",
        param_space={"n": 2, "dir": str(tmp_path / "state")}, callbacks=[callback])
    assert callback.events == [("save",), ("checkpoint", "checkpoint_000001"),
                               ("save",), ("checkpoint", "checkpoint_000002"), ("complete", 0)]


class Lifecycle(tune.Callback):
    """Every trial event and every loop step, in order."""

    def __init__(self):
        self.events, self.steps = [], []

    def on_step_begin(self, iteration, trials, **info):
        self.steps.append("begin")

    def on_step_end(self, iteration, trials, **info):
        self.steps.append("end")

    def on_trial_start(self, iteration, trials, trial, **info):
        self.events.append(("start", trial.trial_id))

    def on_trial_result(self, iteration, trials, trial, result, **info):
        self.events.append(("result", trial.trial_id))

    def on_trial_recover(self, iteration, trials, trial, **info):
        self.events.append(("recover", trial.trial_id))

    def on_trial_complete(self, iteration, trials, trial, **info):
        self.events.append(("complete", trial.trial_id))

    def on_trial_error(self, iteration, trials, trial, **info):
        self.events.append(("error", trial.trial_id))

    def broken_lifecycles(self):
        """Trials whose events are not start, results, (recover, start, results)*, end."""
        per_trial = {}
        for kind, trial_id in self.events:
            per_trial.setdefault(trial_id, []).append(kind)
        broken = {}
        for trial_id, kinds in per_trial.items():
            state = "waiting"
            for kind in kinds:
                allowed = {"start": state == "waiting", "result": state == "running",
                           "recover": state == "running",
                           "complete": state == "running", "error": state == "running"}[kind]
                if not allowed:
                    broken[trial_id] = kinds
                    break
                state = {"start": "running", "recover": "waiting"}.get(
                    kind, "done" if kind in ("complete", "error") else state)
            else:
                if state != "done":
                    broken[trial_id] = kinds
        return broken


def test_a_trial_lost_with_its_worker_is_recovered_before_it_starts_again(tmp_path):
    """Among short trials (whose ends a worker may send late) one kills its process.

    The trials whose ends died with that process run again: callbacks hear
    on_trial_recover before their second start, never two starts in a row.
    """
    callback = Lifecycle()
    space = {"x": tune.grid_search(list(range(300))),
             "die": tune.sample_from(lambda spec: spec.config.x == 150)}
    grid = fit(objectives.short_trial, tmp_path, param_space=space, callbacks=[callback])
    assert callback.broken_lifecycles() == {}
    assert {r.status for r in grid} == {"TERMINATED", "ERROR"} and grid.num_errors == 1
    assert callback.steps.count("begin") == callback.steps.count("end")


class RaisesAtThirdResult(tune.Callback):
    def __init__(self):
        self.results = 0

    def on_trial_result(self, iteration, trials, trial, result, **info):
        self.results += 1
        if self.results == 3:
            raise LookupError("my callback is broken")


def test_a_hook_that_raises_ends_the_sweep_at_once_and_it_resumes(tmp_path, backend):
    started = time.monotonic()
    with pytest.raises(LookupError, match="my callback is broken"):
        fit(objectives.sleepy_steps, tmp_path,
            param_space={"x": tune.grid_search([0.0, 1.0, 2.0]), "n": 3, "sleep": 0.05},
            callbacks=[RaisesAtThirdResult()])
    # the running trials are put back, as on Ctrl-C; waiting for them (the 5 s the
    # wind-down allows) would delay the error
    assert time.monotonic() - started < 4
    with pytest.warns(UserWarning, match="RaisesAtThirdResult"):    # (left out on purpose)
        tuner = tune.Tuner.restore(str(tmp_path / "exp"), objectives.sleepy_steps)
    grid = tuner.fit()
    assert [r.status for r in grid] == ["TERMINATED"] * 3
    assert all(n_reports(r) >= 3 for r in grid)


class EditsResults(tune.Callback):
    def on_trial_result(self, iteration, trials, trial, result, **info):
        result["loss"] = -1000.0

    def on_experiment_end(self, trials, **info):
        self.seen = [(t.config["x"], t.last_result["loss"]) for t in trials]


def test_a_hook_gets_a_copy_of_the_result_and_the_end_sees_every_trial(tmp_path):
    callback = EditsResults()
    grid = fit(objectives.steps, tmp_path,
               param_space={"x": tune.grid_search([1.0, 2.0, 3.0]), "n": 2},
               tune_config=tune.TuneConfig(metric="loss", mode="min"), callbacks=[callback])
    assert sorted(r.metrics["loss"] for r in grid) == [2.0, 4.0, 6.0]
    assert grid.get_best_result().config["x"] == 1.0
    # on_experiment_end gets every trial whole (they are not dropped for it)
    assert sorted(callback.seen) == [(1.0, 2.0), (2.0, 4.0), (3.0, 6.0)]


class FailsInSetup(tune.Callback):
    def setup(self, stop=None, num_samples=None, total_num_samples=None, **info):
        raise RuntimeError("no setup today")


def test_a_setup_that_raises_leaves_nothing_behind(tmp_path):
    with pytest.raises(RuntimeError, match="no setup today"):
        fit(objectives.steps, tmp_path, param_space={"x": 1.0, "n": 1},
            callbacks=[FailsInSetup()])
    assert not (tmp_path / "exp").exists()


def test_only_the_hooks_a_callback_overrides_are_called():
    from fastasha.callback import bound_hooks

    class CompleteOnly(tune.Callback):
        def on_trial_complete(self, iteration, trials, trial, **info):
            pass

    class Duck:
        def on_trial_result(self, iteration, trials, trial, result, **info):
            pass

    callbacks = [CompleteOnly(), Duck()]
    assert len(bound_hooks(callbacks, "on_trial_complete")) == 1
    # an inherited no-op on_trial_result must not make every report wait for the driver
    assert [f.__self__ for f in bound_hooks(callbacks, "on_trial_result")] == [callbacks[1]]
    # a hook set on the instance counts too
    plain = tune.Callback()
    plain.on_trial_error = lambda **info: None
    assert bound_hooks([plain], "on_trial_error") == [plain.on_trial_error]


class OldStyle:
    """Hooks with fastasha's old arguments: caught when the RunConfig is made."""

    def on_trial_start(self, trial_id, config):
        pass


@pytest.mark.parametrize("callbacks, match", [
    (RecordingCallback, r"callbacks=\.\.\.\) takes a list"),
    (RecordingCallback(), r"put it in a list"),
    ([RecordingCallback], r"got the class RecordingCallback; pass an instance"),
    (["print"], r"has none of the callback hooks"),
    ([OldStyle()], r"OldStyle.on_trial_start\(trial_id, config\) cannot be called the way "
                   r"Ray Tune \(and fastasha\) call it: on_trial_start\(iteration, trials, trial"),
])
def test_bad_callbacks_are_a_clear_error(callbacks, match):
    with pytest.raises(TypeError, match=match):
        tune.RunConfig(callbacks=callbacks)


# ------------------------------------------------ review regressions

def _local_functions():
    def double(v):
        return 2 * v

    return [double, lambda v: v + 1]


def applies_a_function(config):
    tune.report({"loss": config["f"](config["x"])})


def test_configs_holding_lambdas_reach_worker_processes(tmp_path):
    # pickle cannot send lambdas or local functions; the driver falls back to cloudpickle
    grid = fit(applies_a_function, tmp_path,
               param_space={"f": tune.grid_search(_local_functions()), "x": 3.0})
    assert [r.status for r in grid] == ["TERMINATED", "TERMINATED"]
    assert sorted(r.metrics["loss"] for r in grid) == [4.0, 6.0]
    assert all(r.metrics["pid"] != os.getpid() for r in grid)


MAIN_SCRIPT = """
import json, sys
import numpy as np
from fastasha import tune


class Net:                     # defined in __main__: a worker cannot import it
    def __init__(self, width):
        self.width = width


def relu(x):
    return max(x, 0.0)


def objective(config):
    net = config["model"](config["width"])
    tune.report({"score": net.width * config["act"](1.0)})


if __name__ == "__main__":
    grid = tune.Tuner(
        objective,
        param_space={"model": Net, "act": tune.grid_search([relu, np.tanh]), "width": 2},
        run_config=tune.RunConfig(name="main", storage_path=sys.argv[1], verbose=0),
        resources={"cpu": 1},
    ).fit()
    print(json.dumps(sorted([r.status, r.metrics.get("score"), str(r.error),
                             r.config["model"] is Net, r.config["act"].__name__] for r in grid)))
"""


def test_classes_and_functions_of_the_users_script_reach_the_workers(tmp_path):
    # standard pickle sends them by reference to __main__, which is another module in a
    # worker process; Ray (and joblib, for the objective itself) send them by value
    script = tmp_path / "script.py"
    script.write_text(MAIN_SCRIPT)
    out = subprocess.run([sys.executable, str(script), str(tmp_path / "runs")],
                         capture_output=True, text=True, timeout=120, check=True)
    rows = json.loads(out.stdout.strip().splitlines()[-1])
    # and the grid fit() returns holds the objects themselves, as Ray's does
    assert rows == [["TERMINATED", pytest.approx(np.tanh(1.0) * 2), "None", True, "tanh"],
                    ["TERMINATED", 2.0, "None", True, "relu"]]


def test_the_grid_of_fit_gives_back_configs_json_cannot_hold(tmp_path):
    space = {"f": tune.grid_search([abs, objectives.reports_its_name]), "shape": (3, 4),
             "lr": np.float32(0.5), "v": "plain"}
    grid = fit(objectives.reports_its_name, tmp_path, param_space=space,
               tune_config=tune.TuneConfig(metric="loss", mode="min"))
    assert sorted(r.config["f"].__name__ for r in grid) == ["abs", "reports_its_name"]
    assert all(r.config["shape"] == (3, 4) and type(r.config["lr"]) is np.float32
               for r in grid)
    # read back from the folder: the JSON form (the store holds no pickles)
    again = tune.ResultGrid.from_path(grid.experiment_path)
    assert all(r.config["shape"] == [3, 4] and "__repr__" in r.config["f"] for r in again)


def test_a_config_the_worker_cannot_rebuild_fails_only_its_own_trial(tmp_path):
    # the worker reads the next trials while one runs: a config that cannot be
    # unpickled there must not take the worker process (and its running trial) down
    grid = fit(objectives.reports_its_name, tmp_path,
               param_space={"v": tune.grid_search(["a", "b", objectives.OnlyInDriver(), "c",
                                                   "d"])},
               resources={"cpu": 1})
    by_status = {r.status for r in grid}
    assert by_status == {"TERMINATED", "ERROR"} and grid.num_errors == 1
    assert "could not be unpickled in the worker" in str(grid.errors[0])
    assert "cannot be rebuilt in this process" in str(grid.errors[0])
    assert sorted(r.metrics["name"] for r in grid if r.status == "TERMINATED") == \
        ["a", "b", "c", "d"]
    assert len({r.metrics["pid"] for r in grid if r.status == "TERMINATED"}) == 1


def test_asha_without_a_metric_fails_before_anything_runs(tmp_path):
    tuner = tune.Tuner(objectives.steps, param_space={"x": 1.0, "n": 2},
                       tune_config=tune.TuneConfig(scheduler=AsyncHyperBandScheduler()),
                       run_config=run_config(tmp_path, "no_metric"))
    with pytest.raises(ValueError, match="needs a metric and a mode"):
        tuner.fit()
    assert not (tmp_path / "no_metric").exists()


class ExplodingCallback(tune.Callback):
    def on_trial_complete(self, iteration, trials, trial, **info):
        raise KeyError("my callback is broken")


def test_a_callback_error_propagates_as_itself(tmp_path):
    with pytest.raises(KeyError, match="my callback is broken"):
        fit(objectives.steps, tmp_path, param_space={"x": 1.0, "n": 2},
            callbacks=[ExplodingCallback()])


def writes_into_its_trial_dir(config):
    trial_dir = tune.get_context().get_trial_dir()
    with open(os.path.join(trial_dir, "artifact.txt"), "w") as f:
        f.write(tune.get_context().get_trial_id())
    tune.report({"loss": 1.0})


def test_trials_get_a_folder_of_their_own(tmp_path):
    grid = fit(writes_into_its_trial_dir, tmp_path, tune_config=tune.TuneConfig(num_samples=2))
    for result in grid:
        with open(os.path.join(result.path, "artifact.txt")) as f:
            assert f.read() == result.trial_id


def checkpoints_every_step(config):
    for step in range(1, 5):
        d = os.path.join(tune.get_context().get_trial_dir(), f"scratch_{step}")
        os.makedirs(d)
        with open(os.path.join(d, "step"), "w") as f:
            f.write(str(step))
        tune.report({"loss": float(step)}, checkpoint=tune.Checkpoint.from_directory(d))


def test_a_relative_storage_path_keeps_absolute_checkpoints(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    grid = tune.Tuner(checkpoints_every_step,
                      run_config=tune.RunConfig(name="rel", storage_path="results", verbose=0,
                                                checkpoint_config=tune.CheckpointConfig(num_to_keep=1))
                      ).fit()
    result = grid[0]
    assert os.path.isabs(result.checkpoint.path) and os.path.isabs(grid.experiment_path)
    kept = sorted(p for p in os.listdir(result.path) if p.startswith("checkpoint_"))
    assert kept == ["checkpoint_000004"]          # num_to_keep pruned the others


RELEASE_BLOCKED = threading.Event()


def blocks_after_one_report(config):
    tune.report({"loss": 1.0})
    RELEASE_BLOCKED.wait(120)          # no report: a thread stops only at one
    tune.report({"loss": 0.5})


def test_a_blocked_thread_does_not_keep_fit_waiting_past_the_budget(tmp_path, monkeypatch):
    from fastasha._execution import driver

    monkeypatch.setattr(driver, "STOP_GRACE_S", 0.5)    # (5 s in earnest)
    RELEASE_BLOCKED.clear()
    started = time.monotonic()
    try:
        with joblib.parallel_config(backend="threading"):
            grid = fit(blocks_after_one_report, tmp_path, param_space={"x": 1},
                       tune_config=tune.TuneConfig(time_budget_s=1.0))
        took = time.monotonic() - started
    finally:
        RELEASE_BLOCKED.set()            # let the left-behind thread end
    assert took < 10, took
    assert grid[0].status == "TERMINATED" and grid[0].metrics["training_iteration"] == 1


class SeesRaysTrialAttributes(tune.Callback):
    def __init__(self):
        self.seen = {}

    def on_trial_complete(self, iteration, trials, trial, **info):
        checkpoint = trial.checkpoint
        self.seen[trial.trial_id] = (trial.path, trial.local_path, trial.experiment_tag,
                                     None if checkpoint is None else checkpoint.path)


def test_callbacks_see_rays_trial_attributes(tmp_path):
    callback = SeesRaysTrialAttributes()
    source = tmp_path / "source"
    source.mkdir()
    (source / "weights").write_text("w")
    grid = fit(objectives.checkpointing, tmp_path / "runs",
               param_space={"x": tune.grid_search([0.5, 2.0]), "dir": str(source), "n": 2},
               callbacks=[callback])
    assert len(callback.seen) == 2
    for result in grid:
        path, local_path, tag, checkpoint = callback.seen[result.trial_id]
        assert path == local_path == result.path
        assert tag.startswith(f"{grid._results.index(result)}_") and "x=" in tag
        assert checkpoint == result.checkpoint.path and checkpoint.startswith(path)


# ------------------------------------------------ a script with a fixed name, run again


def test_a_second_run_of_a_fixed_name_is_refused_unless_asked(tmp_path, monkeypatch):
    first = fit(objectives.only_returns, tmp_path, name="fixed", param_space={"x": 1.0})
    with pytest.raises(FileExistsError) as refused:
        fit(objectives.only_returns, tmp_path, name="fixed", param_space={"x": 2.0})
    message = str(refused.value)
    assert "Tuner.restore(" in message and "RunConfig(overwrite=True)" in message
    assert "FASTASHA_OVERWRITE=1" in message
    # the refused run changed nothing
    kept = tune.ResultGrid.from_path(first.experiment_path)
    assert [r.metrics["loss"] for r in kept] == [2.0]
    # the environment lets the script run again unchanged, as Ray scripts are run
    monkeypatch.setenv("FASTASHA_OVERWRITE", "1")
    second = fit(objectives.only_returns, tmp_path, name="fixed", param_space={"x": 2.0})
    assert [r.metrics["loss"] for r in second] == [4.0]
    assert [r.metrics["loss"] for r in tune.ResultGrid.from_path(second.experiment_path)] == [4.0]
    # an explicit overwrite=False wins over the environment
    with pytest.raises(FileExistsError):
        fit(objectives.only_returns, tmp_path, name="fixed", param_space={"x": 3.0},
            overwrite=False)


def test_a_returned_value_without_a_truth_value_fails_the_trial_with_a_message(tmp_path):
    grid = fit(objectives.returns_array, tmp_path)
    assert grid[0].status == "ERROR"
    assert re.search(r"ValueError: the objective returned array\(\[1\., 2\.\]\) of type "
                     r"ndarray, which has no truth value", str(grid[0].error))
    assert list(grid[0].metrics_dataframe["loss"]) == [1.0]


def test_the_trial_callbacks_get_is_importable_where_ray_keeps_it(tmp_path):
    from fastasha.tune.experiment import Trial
    from fastasha.tune.experiment.trial import Trial as TrialByModulePath
    from fastasha.tune.trial import Trial as TrialOfRay1

    assert Trial is TrialByModulePath is TrialOfRay1

    class Finished(tune.Callback):
        def __init__(self):
            self.trials = []

        def on_trial_complete(self, iteration, trials, trial: Trial, **info):
            self.trials.append(trial)

    seen = Finished()
    grid = fit(objectives.only_returns, tmp_path, param_space={"x": tune.grid_search([1, 2])},
               callbacks=[seen])
    assert len(seen.trials) == 2 and all(isinstance(t, Trial) for t in seen.trials)
    assert sorted(t.trial_id for t in seen.trials) == sorted(r.trial_id for r in grid)


# ------------------------------------------------------------ trial_dirname_creator


def folder_as_in_rays_docs(trial):
    return f"{trial.trainable_name}_{trial.trial_id}"


class _EndAfterTwo(tune.Stopper):
    """Ends the sweep once two trials finished their steps."""

    def __init__(self):
        self.done = set()

    def __call__(self, trial_id, result):
        if result["training_iteration"] == 3:
            self.done.add(trial_id)
        return False

    def stop_all(self):
        return len(self.done) >= 2


@pytest.mark.parametrize("chdir", [False, True])
def test_trial_folders_are_named_by_the_dirname_creator(tmp_path, chdir):
    grid = fit(objectives.saves_each_step, tmp_path,
               param_space={"steps": 3, "x": tune.grid_search([1, 2])},
               tune_config=tune.TuneConfig(trial_dirname_creator=folder_as_in_rays_docs,
                                           chdir_to_trial_dir=chdir))
    trials_dir = os.path.join(grid.experiment_path, "trials")
    expected = {r.trial_id: f"saves_each_step_{r.trial_id}" for r in grid}
    assert sorted(os.listdir(trials_dir)) == sorted(expected.values())
    for result in grid:
        folder = os.path.join(trials_dir, expected[result.trial_id])
        assert result.path == folder
        assert result.metrics["trial_dir"] == folder       # what the objective was told
        assert result.metrics["cwd"] == (expected[result.trial_id] if chdir else
                                          os.path.basename(os.getcwd()))
        assert os.path.dirname(result.checkpoint.path) == folder
        assert [os.path.dirname(c.path) for c, _ in result.best_checkpoints] == [folder] * 3
    # read back without the objective, and a trial found by its folder, as in Ray 1.x
    again = tune.ResultGrid.from_path(grid.experiment_path)
    assert sorted(r.path for r in again) == sorted(r.path for r in grid)
    one = tune.Result.from_path(grid[0].path)
    assert one.trial_id == grid[0].trial_id and one.path == grid[0].path
    analysis = tune.ExperimentAnalysis(grid.experiment_path)
    assert analysis.get_best_checkpoint(grid[0].path, "loss", "max").path == \
        grid[0].checkpoint.path


def test_a_restored_sweep_keeps_the_folders_the_creator_named(tmp_path):
    first = fit(objectives.saves_each_step, tmp_path, name="named",
                param_space={"steps": 3, "x": tune.grid_search([1, 2, 3, 4])},
                tune_config=tune.TuneConfig(trial_dirname_creator=folder_as_in_rays_docs,
                                            max_concurrent_trials=1),
                stop=_EndAfterTwo())
    named = {r.trial_id: r.path for r in first}
    assert len(named) >= 2
    grid = tune.Tuner.restore(first.experiment_path, objectives.saves_each_step).fit()
    assert len(grid) == 4 and grid.num_terminated == 4
    for result in grid:
        if result.trial_id in named:          # folders named before the restore stay
            assert result.path == named[result.trial_id]
            assert os.path.basename(result.path) == f"saves_each_step_{result.trial_id}"
        else:                                 # the function is code: not kept
            assert os.path.basename(result.path) == result.trial_id
            assert list(result.metrics_dataframe["loss"]) == [0.0, 1.0, 2.0]
        # (a trial running when the stopper ended the first sweep ended there, as in Ray)
        losses = list(result.metrics_dataframe["loss"]) if result.metrics else []
        assert losses == [0.0, 1.0, 2.0][:len(losses)]
        if losses:
            assert os.path.dirname(result.checkpoint.path) == result.path


def test_a_trial_resumed_by_a_restore_saves_into_the_folder_the_creator_named(tmp_path):
    first = fit(objectives.saves_then_fails_once, tmp_path, name="resumed",
                param_space={"steps": 4, "x": 1, "dir": str(tmp_path)},
                tune_config=tune.TuneConfig(trial_dirname_creator=folder_as_in_rays_docs))
    assert first[0].status == "ERROR"
    folder = first[0].path
    assert os.path.basename(folder) == f"saves_then_fails_once_{first[0].trial_id}"
    grid = tune.Tuner.restore(first.experiment_path, objectives.saves_then_fails_once,
                              resume_errored=True).fit()
    result = grid[0]
    assert result.status == "TERMINATED" and result.path == folder
    assert list(result.metrics_dataframe["loss"]) == [0.0, 1.0, 2.0, 3.0]  # on from step 1's
    assert result.metrics["trial_dir"] == folder
    assert {os.path.dirname(c.path) for c, _ in result.best_checkpoints} == {folder}
    assert os.listdir(os.path.dirname(folder)) == [os.path.basename(folder)]


@pytest.mark.parametrize("creator, match", [
    (lambda trial: "same", r"returned 'same' for trial \w+ and for another trial"),
    (lambda trial: f"a/{trial.trial_id}", r"returned 'a/\w+', which is not the name of one"),
    (lambda trial: "", r"returned '', which is not the name of one folder"),
    (lambda trial: 7, r"returned 7 of type int, not a str"),
    (misnamed, r"trial_dirname_creator=.... raised AttributeError"),
])
def test_a_dirname_creator_that_cannot_name_a_folder_of_its_own_ends_the_sweep(
        tmp_path, creator, match):
    with pytest.raises(ValueError, match=match), joblib.parallel_config(backend="threading"):
        fit(objectives.only_returns, tmp_path, param_space={"x": tune.grid_search([1, 2])},
            tune_config=tune.TuneConfig(trial_dirname_creator=creator))


def test_a_retried_trial_runs_again_before_the_trials_created_after_it(tmp_path):
    # as Ray's FIFOScheduler, which starts the waiting trial created first; one slot
    starts = []

    class Starts(tune.Callback):
        def on_trial_start(self, iteration, trials, trial, **info):
            starts.append(trial.config["x"])

    done = tmp_path / "done"
    done.touch()
    grid = tune.Tuner(
        objectives.fails_once,
        param_space={"x": tune.grid_search([1, 2, 3, 4]), "marker": tune.sample_from(
            lambda spec: str(tmp_path / "first") if spec.config["x"] == 1 else str(done))},
        tune_config=tune.TuneConfig(max_concurrent_trials=1),
        run_config=tune.RunConfig(name="retry", storage_path=str(tmp_path), verbose=0,
                                  failure_config=tune.FailureConfig(max_failures=1),
                                  callbacks=[Starts()]),
    ).fit()
    assert [r.status for r in grid] == ["TERMINATED"] * 4 and not grid.errors
    assert starts == [1, 1, 2, 3, 4]
