"""What a finished sweep returns, field for field as Ray Tune 2.x gives it.

Ray adds ``config``, ``time_since_restore``, ``iterations_since_restore``,
``checkpoint_dir_name`` (and ``should_checkpoint``) to every result, and
``experiment_tag`` to ``Result.metrics``; its data frames have ``config/...``
columns. fastasha fills these in when results are read. The values checked
here are what Ray gives in the same case (recorded with Ray 2.60: after a
restore, the since-restore fields count from it while ``training_iteration``
and ``time_total_s`` go on).

The objectives are module-level functions of this module, as in
``tests/test_results_compat.py``.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from fastasha import tune
from fastasha.schedulers import AsyncHyperBandScheduler

# what Ray's Result.metrics holds for a trial that reported, besides its own metrics
# (Ray 2.60; node_ip is left out by fastasha, see fastasha/results.py)
RAY_FIELDS = {"training_iteration", "time_this_iter_s", "time_total_s", "timestamp", "date",
              "trial_id", "hostname", "pid", "done", "config", "time_since_restore",
              "iterations_since_restore", "checkpoint_dir_name", "experiment_tag"}


def save(step: int) -> tune.Checkpoint:
    d = tempfile.mkdtemp()
    Path(d, "step.json").write_text(json.dumps(step))
    return tune.Checkpoint.from_directory(d)


def nested_with_checkpoints(config):
    """Six reports with a nested dict; a checkpoint with the odd ones (steps 1, 3, 5)."""
    if config["a"] == 3:
        tune.report({"loss": 10.0, "val": {"acc": 0.0}})
        raise ValueError("a = 3 is not allowed")
    for step in range(6):
        loss = config["a"] * config["b"] + 1.0 / (step + 1)
        tune.report({"loss": loss, "val": {"acc": 1 - loss / 10, "n": step}},
                    checkpoint=save(step) if step % 2 else None)


def fails_once_after_two(config):
    """Five steps with a checkpoint each; a run from scratch fails after its second.

    Every report goes alone (with its checkpoint); those with a string are
    stored as JSON, the others packed: a run has both kinds of batches.
    """
    start = 0
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as d:
            start = json.loads(Path(d, "step.json").read_text()) + 1
    for step in range(start, 5):
        if step == 2 and checkpoint is None:
            raise RuntimeError("the first run fails")
        metrics = {"loss": float(config["x"] + step)}
        if step % 2:
            metrics["note"] = "odd"
        tune.report(metrics, checkpoint=save(step))


def reports_its_own(config):
    """Reports keys Ray fills in itself: the reported values stand."""
    tune.report({"loss": 1.0, "iterations_since_restore": 99, "config": "mine"})


@pytest.fixture(scope="module")
def asha_grid(tmp_path_factory):
    """a in {1, 2, 3} x 2 samples of b, under ASHA; the trials with a = 3 fail."""
    return tune.Tuner(
        tune.with_resources(nested_with_checkpoints, {"cpu": 1}),
        param_space={"a": tune.grid_search([1, 2, 3]), "b": tune.uniform(0, 1)},
        tune_config=tune.TuneConfig(metric="loss", mode="min", num_samples=2,
                                    scheduler=AsyncHyperBandScheduler(grace_period=2, max_t=6)),
        run_config=tune.RunConfig(name="asha", verbose=0,
                                  storage_path=str(tmp_path_factory.mktemp("parity"))),
    ).fit()


def finished(grid):
    return [r for r in grid if r.status == "TERMINATED"]


# ----------------------------------------------------------- 1. Result.metrics

def test_metrics_have_rays_fields(asha_grid):
    assert asha_grid.num_errors == 2 and asha_grid.num_terminated == 4
    for index, result in enumerate(asha_grid):
        metrics = result.metrics
        assert RAY_FIELDS <= set(metrics), sorted(RAY_FIELDS - set(metrics))
        assert metrics["config"] == result.config
        assert metrics["trial_id"] == result.trial_id
        assert metrics["experiment_tag"].startswith(f"{index}_a={result.config['a']},b=")


def test_a_run_never_restored_counts_since_its_start(asha_grid):
    for result in asha_grid:
        metrics = result.metrics
        assert metrics["iterations_since_restore"] == metrics["training_iteration"]
        assert metrics["time_since_restore"] == metrics["time_total_s"]


def test_checkpoint_dir_name_names_the_checkpoint_of_that_report(asha_grid):
    for result in finished(asha_grid):
        metrics = result.metrics
        if metrics["training_iteration"] % 2 == 0:        # steps 1, 3, 5 saved one
            name = metrics["checkpoint_dir_name"]
            assert os.path.join(result.path, name) == result.checkpoint.path
            assert metrics["should_checkpoint"] is True
        else:
            assert metrics["checkpoint_dir_name"] is None
            assert "should_checkpoint" not in metrics


def test_an_errored_trial_keeps_its_last_result_and_its_error_class(asha_grid):
    failed = [r for r in asha_grid if r.status == "ERROR"]
    assert [r.config["a"] for r in failed] == [3, 3]
    for result in failed:
        assert isinstance(result.error, ValueError)
        assert result.metrics["loss"] == 10.0 and result.metrics["done"] is False
        assert result.metrics["iterations_since_restore"] == 1
        assert result.metrics["checkpoint_dir_name"] is None and result.checkpoint is None
    assert [type(e) for e in asha_grid.errors] == [type(failed[0].error)] * 2


# ------------------------------------------------------------ 2. data frames

def test_metrics_dataframe_has_rays_columns(asha_grid):
    result = max(finished(asha_grid), key=lambda r: r.metrics["training_iteration"])
    frame = result.metrics_dataframe
    for column in ("config/a", "config/b", "time_since_restore", "iterations_since_restore",
                   "checkpoint_dir_name", "should_checkpoint", "val/acc", "val/n"):
        assert column in frame.columns, column
    assert "config" not in frame.columns and "experiment_tag" not in frame.columns
    assert list(frame["iterations_since_restore"]) == list(frame["training_iteration"])
    assert list(frame["time_since_restore"]) == list(frame["time_total_s"])
    assert set(frame["config/a"]) == {result.config["a"]}
    names = [n if isinstance(n, str) else None for n in frame["checkpoint_dir_name"]]
    assert names == [None if i % 2 else os.path.basename(c.path)
                     for i, c in _checkpoints_by_iteration(result, len(frame))]
    last = frame.iloc[-1]
    for key in ("time_since_restore", "iterations_since_restore", "checkpoint_dir_name"):
        assert last[key] == result.metrics[key] or (last[key] is None and
                                                    result.metrics[key] is None), key


def _checkpoints_by_iteration(result, n):
    """(iteration, checkpoint or None) for iterations 1..n: the kept checkpoints by iteration."""
    kept = {m["training_iteration"]: c for c, m in result.best_checkpoints}
    return [(i, kept.get(i)) for i in range(1, n + 1)]


def test_get_dataframe_has_rays_columns(asha_grid):
    frame = asha_grid.get_dataframe()
    for column in ("config/a", "config/b", "time_since_restore", "iterations_since_restore",
                   "checkpoint_dir_name", "should_checkpoint", "trial_id", "logdir"):
        assert column in frame.columns, column
    # as Ray's: the config in config/... columns only, and no experiment_tag
    assert "config" not in frame.columns and "experiment_tag" not in frame.columns
    assert list(frame["iterations_since_restore"]) == [r.metrics["iterations_since_restore"]
                                                       for r in asha_grid]
    best = asha_grid.get_dataframe(filter_metric="loss", filter_mode="min")
    assert "config/a" in best.columns and "iterations_since_restore" in best.columns


def test_get_best_result_on_a_field_filled_in_when_read(asha_grid):
    longest = asha_grid.get_best_result("iterations_since_restore", "max")
    assert longest.metrics["iterations_since_restore"] == 6
    assert asha_grid.get_best_result("config/a", "max").config["a"] == 3
    best = asha_grid.get_best_result()          # TuneConfig's metric and mode
    assert best.metrics["loss"] == min(r.metrics["loss"] for r in asha_grid)


# ------------------------------------------------------ 3. repr and the rest

def test_result_repr_is_rays(asha_grid):
    ok, failed = finished(asha_grid)[0], next(r for r in asha_grid if r.status == "ERROR")
    text = repr(ok)
    assert text.startswith("Result(\n  metrics={'loss': ")
    assert f"\n  path={ok.path!r},\n  filesystem='local',\n  checkpoint=" in text
    # the fields every result gets are left out, as in Ray's
    for hidden in ("training_iteration", "time_since_restore", "config", "experiment_tag"):
        assert repr(hidden) not in text, hidden
    assert repr(failed).startswith("Result(\n  error='TrialError[ValueError]',\n  metrics={")


def test_result_from_path_is_the_trials_result(asha_grid):
    for result in asha_grid:
        again = tune.Result.from_path(result.path)
        assert (again.trial_id, again.config, again.status) == \
            (result.trial_id, result.config, result.status)
        assert again.metrics == result.metrics
    with pytest.raises(ValueError, match="not a trial folder of a fastasha experiment"):
        tune.Result.from_path(asha_grid.experiment_path)
    missing = Path(asha_grid.experiment_path, "trials", "nope")
    with pytest.raises(ValueError, match="has no trial 'nope'"):
        tune.Result.from_path(missing)


def test_filesystem_is_a_local_pyarrow_one(asha_grid):
    try:
        import pyarrow.fs
    except ImportError:
        with pytest.raises(ImportError, match="pip install pyarrow"):
            asha_grid[0].filesystem          # noqa: B018
        with pytest.raises(ImportError, match="pip install pyarrow"):
            asha_grid.filesystem             # noqa: B018
    else:
        assert isinstance(asha_grid[0].filesystem, pyarrow.fs.LocalFileSystem)
        assert isinstance(asha_grid.filesystem, pyarrow.fs.LocalFileSystem)


def test_reported_keys_win_over_filled_ones(tmp_path):
    grid = tune.Tuner(reports_its_own, run_config=tune.RunConfig(
        name="own", storage_path=str(tmp_path), verbose=0)).fit()
    metrics = grid[0].metrics
    assert metrics["iterations_since_restore"] == 99 and metrics["config"] == "mine"
    assert list(grid[0].metrics_dataframe["iterations_since_restore"]) == [99]


def test_metrics_without_the_experiment_file_lack_only_the_since_fields(tmp_path):
    grid = tune.Tuner(reports_its_own, run_config=tune.RunConfig(
        name="gone", storage_path=str(tmp_path), verbose=0)).fit()
    shutil.rmtree(tmp_path / "gone")
    with pytest.warns(RuntimeWarning, match="cannot read .*lack time_since_restore"):
        metrics = grid[0].metrics
    assert "time_since_restore" not in metrics and metrics["loss"] == 1.0
    assert metrics["experiment_tag"] == "0"


# ------------------------------------------------------------- 4. restores

def check_resumed_after_two(result):
    """The trial of :func:`fails_once_after_two` resumed from its checkpoint of step 2."""
    frame = result.metrics_dataframe
    assert list(frame["training_iteration"]) == [1, 2, 3, 4, 5]
    assert list(frame["iterations_since_restore"]) == [1, 2, 1, 2, 3]
    since, total = list(frame["time_since_restore"]), list(frame["time_total_s"])
    assert since[:2] == total[:2]
    # the resumed run's time starts at the restore; the total goes on from the checkpoint's
    assert since[2] == pytest.approx(frame["time_this_iter_s"][2], abs=1e-6)
    assert all(0 < s < t for s, t in zip(since[2:], total[2:]))
    for s, t in zip(since[2:], total[2:]):
        assert t - s == pytest.approx(total[1], abs=1e-6)
    metrics = result.metrics
    assert metrics["iterations_since_restore"] == 3 and metrics["training_iteration"] == 5
    assert metrics["time_since_restore"] == since[-1]
    assert metrics["checkpoint_dir_name"] == os.path.basename(result.checkpoint.path)


def test_a_retry_counts_since_restore_from_the_checkpoint(tmp_path):
    grid = tune.Tuner(
        fails_once_after_two,
        param_space={"x": 1.0},
        run_config=tune.RunConfig(name="retry", storage_path=str(tmp_path), verbose=0,
                                  failure_config=tune.FailureConfig(max_failures=1)),
    ).fit()
    (result,) = grid
    assert result.status == "TERMINATED"
    check_resumed_after_two(result)
    (again,) = tune.ResultGrid.from_path(grid.experiment_path)
    assert again.metrics == result.metrics


def test_tuner_restore_counts_since_restore_from_the_restore(tmp_path):
    first = tune.Tuner(
        fails_once_after_two, param_space={"x": 1.0},
        run_config=tune.RunConfig(name="restored", storage_path=str(tmp_path), verbose=0),
    ).fit()
    assert first.num_errors == 1
    assert first[0].metrics["iterations_since_restore"] == 2
    grid = tune.Tuner.restore(first.experiment_path, fails_once_after_two,
                              resume_errored=True).fit()
    (result,) = grid
    assert result.status == "TERMINATED" and grid.num_errors == 0
    check_resumed_after_two(result)
