"""ResultGrid and Result as Ray Tune has them: checkpoints with their results,
trials whose end was never recorded, metrics that are not numbers, nested metrics.

The objectives are module-level functions of this module: loky's workers
import it by name (pytest puts ``tests/`` on ``sys.path`` and loky passes
``sys.path`` on), as with ``tests/objectives.py``. Every sweep uses the
FIFO scheduler and no ``TuneConfig(metric=...)``; metric and mode are passed
to the ``ResultGrid`` methods.
"""

from __future__ import annotations

import os
import pickle
import shutil
import sqlite3
import tempfile
from pathlib import Path

import numpy as np
import objectives
import pytest

from fastasha import tune

# the losses of :func:`saves_every_step`, one per step: the best (min) is step 3
CHECKPOINT_LOSSES = [3.0, 1.0, 0.5, 2.0, 4.0]

# what :func:`reports_value` reports as "loss"; only the numbers count
ODD_VALUES = ["0.001", "-5", True, None, 0.5, 0.25, np.float64(0.125)]


def saves_every_step(config):
    """Reports :data:`CHECKPOINT_LOSSES` with a checkpoint each; the checkpoint holds the step.

    Also reports ``val/loss`` nested, ``acc`` at even steps only, and
    ``note`` (a string) that looks like a number.
    """
    for step, loss in enumerate(CHECKPOINT_LOSSES, start=1):
        metrics = {"loss": loss, "val": {"loss": -loss}, "note": str(-loss)}
        if step % 2 == 0:
            metrics["acc"] = float(step)
        with tempfile.TemporaryDirectory() as d:
            Path(d, "step").write_text(str(step))
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(d))


def no_checkpoint(config):
    """Two reports, no checkpoint."""
    for step in range(1, 3):
        tune.report({"loss": float(step)})


def steps(config):
    """``config["n"]`` reports of ``loss = x * step``."""
    for step in range(1, config["n"] + 1):
        tune.report({"loss": config["x"] * step, "step": step})


def reports_value(config):
    """Reports ``ODD_VALUES[config["i"]]`` as ``loss`` once."""
    tune.report({"loss": ODD_VALUES[config["i"]]})


def reports_sequence(config):
    """Reports each value of ``config["losses"]`` as ``loss``, in order."""
    for loss in config["losses"]:
        tune.report({"loss": loss})


def nested(config):
    """Three reports of ``{"val": {"loss": x * step, "acc": -x}}``."""
    for step in range(1, 4):
        tune.report({"val": {"loss": config["x"] * step, "acc": -config["x"]}, "step": step})


def slash_and_nested(config):
    """Reports ``"a/b"`` both as a top-level key (``x``) and nested (``-x``)."""
    tune.report({"a/b": config["x"], "a": {"b": -config["x"]}})


def fit(trainable, tmp_path, param_space, name="exp", **run_kwargs) -> tune.ResultGrid:
    tuner = tune.Tuner(trainable, param_space=param_space, tune_config=tune.TuneConfig(),
                       run_config=tune.RunConfig(storage_path=str(tmp_path), name=name,
                                                 verbose=0, **run_kwargs))
    return tuner.fit()


def step_of(checkpoint) -> int:
    return int(Path(checkpoint.path, "step").read_text())


# ------------------------------------------- 1. checkpoints and their results

@pytest.fixture(scope="module")
def checkpointed(tmp_path_factory):
    """One trial of :func:`saves_every_step`, read back from its directory."""
    grid = fit(saves_every_step, tmp_path_factory.mktemp("ckpt"), {"x": 1})
    return tune.ResultGrid.from_path(grid.experiment_path)[0]


def test_best_checkpoints_carry_the_result_of_their_iteration(checkpointed):
    pairs = checkpointed.best_checkpoints
    assert [step_of(c) for c, _ in pairs] == [1, 2, 3, 4, 5]
    history = checkpointed.history()
    for (checkpoint, result), reported in zip(pairs, history):
        assert result == reported                      # the full result, automatic keys too
        assert result["loss"] == CHECKPOINT_LOSSES[result["training_iteration"] - 1]
        assert result["val"] == {"loss": -result["loss"]}   # nested, as reported
        assert {"time_total_s", "trial_id", "timestamp"} <= set(result)


def test_best_checkpoints_results_are_copies(checkpointed):
    checkpointed.best_checkpoints[0][1]["loss"] = 99.0
    assert checkpointed.best_checkpoints[0][1]["loss"] == CHECKPOINT_LOSSES[0]
    assert checkpointed.history()[0]["loss"] == CHECKPOINT_LOSSES[0]


@pytest.mark.parametrize(("metric", "mode", "step"), [
    ("loss", "min", 3),
    ("loss", "max", 5),
    ("val/loss", "min", 5),              # a nested value, named as Ray flattens it
    ("val/loss", "max", 3),
    ("acc", "max", 4),                   # only steps 2 and 4 reported it
    ("acc", "min", 2),
    ("training_iteration", "max", 5),
])
def test_get_best_checkpoint(checkpointed, metric, mode, step):
    assert step_of(checkpointed.get_best_checkpoint(metric, mode)) == step


def test_get_best_checkpoint_refuses_a_bad_mode(checkpointed):
    with pytest.raises(ValueError, match="mode must be one of 'min', 'max', got 'best'"):
        checkpointed.get_best_checkpoint("loss", "best")


@pytest.mark.parametrize("metric", ["nope", "note", "val"])
def test_get_best_checkpoint_needs_a_numeric_metric(checkpointed, metric):
    # Ray raises RuntimeError when no checkpoint's result has the metric; a string
    # ("note") or a dict ("val") is not a value to rank either
    with pytest.raises(RuntimeError, match=f"no checkpoint .* numeric value of '{metric}'"):
        checkpointed.get_best_checkpoint(metric, "min")


def test_get_best_checkpoint_of_a_trial_without_checkpoints(tmp_path):
    result = fit(no_checkpoint, tmp_path, {"x": 1})[0]
    assert result.best_checkpoints == []
    with pytest.raises(RuntimeError, match="kept no checkpoint"):
        result.get_best_checkpoint("loss", "min")


def test_kept_checkpoints_keep_their_results(tmp_path):
    config = tune.CheckpointConfig(num_to_keep=2, checkpoint_score_attribute="loss",
                                   checkpoint_score_order="min")
    grid = fit(saves_every_step, tmp_path, {"x": 1}, checkpoint_config=config)
    for result in (grid[0], tune.ResultGrid.from_path(grid.experiment_path)[0]):
        pairs = result.best_checkpoints
        # as in Ray: the two best by loss (steps 2 and 3), the worse first; the latest
        # (step 5) is kept on disk to resume from, and is Result.checkpoint, but it is
        # not among the best
        assert [step_of(c) for c, _ in pairs] == [2, 3]
        assert [r["loss"] for _, r in pairs] == [1.0, 0.5]
        assert step_of(result.checkpoint) == 5
        assert step_of(result.get_best_checkpoint("loss", "max")) == 2


def test_checkpoints_are_kept_by_a_nested_score_too(tmp_path):
    # val/loss is -loss: keeping the best by val/loss "max" is keeping the best by loss
    config = tune.CheckpointConfig(num_to_keep=2, checkpoint_score_attribute="val/loss",
                                   checkpoint_score_order="max")
    grid = fit(saves_every_step, tmp_path, {"x": 1}, checkpoint_config=config)
    assert [step_of(c) for c, _ in grid[0].best_checkpoints] == [2, 3]


def test_keeping_one_checkpoint_by_score_keeps_the_best_and_the_latest(tmp_path):
    # Ray's num_to_keep=1 with a score: the best survives later, worse checkpoints
    config = tune.CheckpointConfig(num_to_keep=1, checkpoint_score_attribute="loss",
                                   checkpoint_score_order="min")
    grid = fit(saves_every_step, tmp_path, {"x": 1}, checkpoint_config=config)
    result = grid[0]
    assert [step_of(c) for c, _ in result.best_checkpoints] == [3]
    assert step_of(result.get_best_checkpoint("loss", "min")) == 3
    on_disk = sorted(p.name for p in Path(result.path).iterdir() if p.name.startswith("checkpoint_"))
    assert len(on_disk) == 2


def test_keeping_by_recency_keeps_only_the_most_recent(tmp_path):
    grid = fit(saves_every_step, tmp_path, {"x": 1},
               checkpoint_config=tune.CheckpointConfig(num_to_keep=2))
    assert [step_of(c) for c, _ in grid[0].best_checkpoints] == [4, 5]


def saves_with_own_iteration(config):
    """Reports its own training_iteration (10, 20, ...) with a checkpoint each."""
    for step, loss in enumerate(CHECKPOINT_LOSSES, start=1):
        with tempfile.TemporaryDirectory() as d:
            Path(d, "step").write_text(str(step))
            tune.report({"loss": loss, "training_iteration": 10 * step},
                        checkpoint=tune.Checkpoint.from_directory(d))


def test_checkpoints_meet_their_results_when_the_objective_counts_itself(tmp_path):
    grid = fit(saves_with_own_iteration, tmp_path, {"x": 1})
    pairs = grid[0].best_checkpoints
    assert [r["training_iteration"] for _, r in pairs] == [10, 20, 30, 40, 50]
    assert [r["loss"] for _, r in pairs] == CHECKPOINT_LOSSES
    assert step_of(grid[0].get_best_checkpoint("loss", "min")) == 3


# ------------------------------ 2. trials whose end was never recorded (a crash)

def crash_leftover(grid, trial_id, keep_history=True) -> tune.ResultGrid:
    """The experiment file as a driver crash leaves it: the trial's end was never stored."""
    db = Path(grid.experiment_path) / "experiment.db"
    con = sqlite3.connect(db)
    with con:
        con.execute("UPDATE trials SET status = 'RUNNING', last_result = NULL "
                    "WHERE trial_id = ?", (trial_id,))
        if not keep_history:
            con.execute("DELETE FROM results WHERE trial_id = ?", (trial_id,))
    con.close()
    return tune.ResultGrid.from_path(grid.experiment_path)


@pytest.fixture
def three_trials(tmp_path):
    """Three trials of :func:`steps` (x = 1, 2, 3; 4 reports); the one with x = 1 is the best."""
    return fit(steps, tmp_path, {"x": tune.grid_search([1.0, 2.0, 3.0]), "n": 4})


def test_a_running_trial_shows_its_last_stored_result(three_trials):
    victim = three_trials[0]
    grid = crash_leftover(three_trials, victim.trial_id)
    result = grid[0]
    assert result.status == "RUNNING"
    assert dict(result.history()[-1], experiment_tag=result.metrics["experiment_tag"]) == result.metrics
    assert result.metrics["loss"] == 4.0 and result.metrics["training_iteration"] == 4
    assert result.metrics["done"] is False             # its end was not recorded


def test_get_best_result_counts_a_running_trial(three_trials):
    victim = three_trials[0]
    grid = crash_leftover(three_trials, victim.trial_id)
    assert grid.get_best_result("loss", "min").trial_id == victim.trial_id
    assert grid.get_best_result("loss", "min", scope="avg").trial_id == victim.trial_id
    frame = grid.get_dataframe().set_index("trial_id")
    assert frame.loc[victim.trial_id, "loss"] == 4.0
    assert frame.loc[victim.trial_id, "status"] == "RUNNING"


def test_a_running_trial_without_results_has_no_metrics(three_trials):
    victim = three_trials[0]
    grid = crash_leftover(three_trials, victim.trial_id, keep_history=False)
    assert grid[0].metrics == {}
    assert grid.get_best_result("loss", "min").trial_id == three_trials[1].trial_id
    assert len(grid.get_dataframe()) == 3


# ---------------------------------------------- 3. only numbers are ranked

@pytest.fixture(scope="module")
def odd_values(tmp_path_factory):
    return fit(reports_value, tmp_path_factory.mktemp("odd"),
               {"i": tune.grid_search(list(range(len(ODD_VALUES))))})


@pytest.mark.parametrize(("mode", "best"), [
    ("min", np.float64(0.125)),   # not "0.001" nor "-5"
    ("max", 0.5),                 # not True
])
def test_get_best_result_ranks_numbers_only(odd_values, mode, best):
    for scope in ("last", "avg", "all"):
        result = odd_values.get_best_result("loss", mode, scope=scope)
        assert result.metrics["loss"] == best


def test_a_string_metric_counts_as_not_reported(tmp_path):
    grid = fit(reports_value, tmp_path, {"i": tune.grid_search([0, 1, 2, 3])})
    for scope in ("last", "all"):
        with pytest.raises(RuntimeError, match="no trial reported a finite numeric value"):
            grid.get_best_result("loss", "min", scope=scope)


def test_non_numbers_in_a_history_are_skipped(tmp_path):
    grid = fit(reports_sequence, tmp_path, {"losses": tune.grid_search([
        [True, 3.0, 2.0, "1"],     # last number 2.0, avg 2.5, min 2.0
        [2.5, None, 2.25],         # last 2.25, avg 2.375, min 2.25
    ])})
    first, second = grid
    # the first trial's last result is "1": with scope="last" it reported no loss
    assert grid.get_best_result("loss", "min").trial_id == second.trial_id
    assert grid.get_best_result("loss", "min", scope="all").trial_id == first.trial_id
    assert grid.get_best_result("loss", "max", scope="avg").trial_id == first.trial_id
    frame = grid.get_dataframe(filter_metric="loss", filter_mode="min").set_index("trial_id")
    assert frame.loc[first.trial_id, "loss"] == 2.0      # not True
    assert frame.loc[second.trial_id, "loss"] == 2.25


# -------------------------------------------------------- 4. nested metrics

@pytest.fixture(scope="module")
def nested_grid(tmp_path_factory):
    return fit(nested, tmp_path_factory.mktemp("nested"),
               {"x": tune.grid_search([2.0, 1.0, 3.0])})


@pytest.mark.parametrize("scope", ["last", "avg", "last-5-avg", "all"])
def test_get_best_result_takes_a_flattened_name(nested_grid, scope):
    best = nested_grid.get_best_result(metric="val/loss", mode="min", scope=scope)
    assert best.config["x"] == 1.0
    assert nested_grid.get_best_result("val/acc", "min", scope=scope).config["x"] == 3.0
    assert best.metrics["val"] == {"loss": 3.0, "acc": -1.0}     # metrics stay nested


def test_get_dataframe_filters_on_a_flattened_name(nested_grid):
    frame = nested_grid.get_dataframe(filter_metric="val/loss", filter_mode="min")
    assert list(frame["val/loss"]) == [2.0, 1.0, 3.0]           # each trial's first step
    assert list(frame["training_iteration"]) == [1, 1, 1]
    frame = nested_grid.get_dataframe(filter_metric="val/loss", filter_mode="max")
    assert list(frame["val/loss"]) == [6.0, 3.0, 9.0]


def test_an_unknown_nested_name_is_not_reported(nested_grid):
    with pytest.raises(RuntimeError, match="'val/nope'"):
        nested_grid.get_best_result("val/nope", "min")
    with pytest.raises(RuntimeError, match="'val'"):          # a dict is not a number
        nested_grid.get_best_result("val", "min")


def test_a_key_with_a_slash_wins_over_a_nested_value(tmp_path):
    grid = fit(slash_and_nested, tmp_path, {"x": tune.grid_search([2.0, 1.0, 3.0])})
    assert grid.get_best_result("a/b", "min").config["x"] == 1.0
    assert grid[0].metrics["a"] == {"b": -2.0}
    assert list(grid.get_dataframe()["a/b"]) == [2.0, 1.0, 3.0]     # the same value


def test_objectives_run_in_worker_processes(nested_grid):
    # the objectives above are imported by name in loky's workers, not run in pytest's process
    assert {r.metrics["pid"] for r in nested_grid} != {os.getpid()}


def test_a_trial_error_is_also_an_instance_of_the_exception_raised(tmp_path):
    # Ray's RayTaskError(ValueError) is a ValueError: code sorting errors by type works
    grid = tune.Tuner(objectives.raises_kind,
                      param_space={"kind": tune.grid_search(["value", "key", "os", "own",
                                                             "chained"])},
                      run_config=tune.RunConfig(storage_path=str(tmp_path), verbose=0)).fit()
    errors = {r.config["kind"]: r.error for r in grid}
    assert all(isinstance(e, tune.TrialError) for e in errors.values())
    assert isinstance(errors["value"], ValueError) and str(errors["value"]) == \
        "ValueError: bad value"
    assert isinstance(errors["key"], KeyError) and "missing" in str(errors["key"])
    assert isinstance(errors["own"], objectives.OutOfBudget)
    assert str(errors["own"]) == "OutOfBudget: needed 3, have 1"
    assert isinstance(errors["chained"], RuntimeError) and \
        not isinstance(errors["chained"], ValueError)       # the error raised last
    assert isinstance(errors["os"], FileNotFoundError)
    # read back from the folder alike; and they pickle (as plain TrialErrors)
    again = {r.config["kind"]: r.error for r in tune.ResultGrid.from_path(grid.experiment_path)}
    assert isinstance(again["value"], ValueError)
    copy = pickle.loads(pickle.dumps(again["own"]))
    assert type(copy) is tune.TrialError and str(copy) == "OutOfBudget: needed 3, have 1"


def test_fail_fast_raise_can_be_caught_as_the_original_class(tmp_path):
    with pytest.raises(ValueError, match="bad value"):
        tune.Tuner(objectives.raises_kind, param_space={"kind": "value"},
                   run_config=tune.RunConfig(storage_path=str(tmp_path), verbose=0,
                                             failure_config=tune.FailureConfig(
                                                 fail_fast="raise"))).fit()


def raises_before_reporting(config):
    if config["x"] > 1:
        raise ValueError("nothing to report")
    tune.report({"loss": config["x"]})


def test_an_errored_trial_without_results_needs_no_file_to_show_its_metrics(tmp_path):
    # only a trial whose end was never recorded reads its history for metrics
    grid = tune.Tuner(raises_before_reporting, param_space={"x": tune.grid_search([1.0, 2.0])},
                      run_config=tune.RunConfig(name="gone", storage_path=str(tmp_path),
                                                verbose=0)).fit()
    shutil.rmtree(tmp_path / "gone")          # e.g. a temporary folder, cleaned up
    failed = next(r for r in grid if r.status == "ERROR")
    assert failed.metrics == {} and "error='TrialError[ValueError]'" in repr(failed)
    assert grid.get_best_result("loss", "min").config == {"x": 1.0}


class TimeoutError(Exception):          # noqa: A001 - shadows the builtin on purpose
    """A module's own class named like a builtin."""


@pytest.mark.parametrize("message, traceback, expected", [
    # a message over several lines, or with a note after it: the class line is not last
    ("ValueError: bad config:\nx must be > 0",
     "Traceback (most recent call last):\n  File \"x.py\", line 1\nValueError: bad config:\n"
     "x must be > 0\n", ValueError),
    ("ValueError: bad", "Traceback (most recent call last):\n  File \"x.py\"\nValueError: bad\n"
     "see the docs\n", ValueError),
    # another error's output inside the text does not decide the class
    ("RuntimeError: child failed:\nModuleNotFoundError: No module named 'x'",
     "Traceback (most recent call last):\nRuntimeError: child failed:\n"
     "ModuleNotFoundError: No module named 'x'\n", RuntimeError),
    # a module's class named like a builtin: the traceback names its module
    ("TimeoutError: too slow", "Traceback (most recent call last):\n"
     f"{__name__}.TimeoutError: too slow\n", TimeoutError),
    ("the worker process (pid 7) died: exit code 1", None, None),
])
def test_the_class_of_a_trial_error_is_the_one_raised(message, traceback, expected):
    error = tune.TrialError.of("t", message, traceback)
    assert str(error) == message
    if expected is None:
        assert type(error) is tune.TrialError
    else:
        assert isinstance(error, expected)
        assert not isinstance(error, ModuleNotFoundError)
        assert expected is not TimeoutError or not isinstance(error, OSError)
