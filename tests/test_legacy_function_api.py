"""Ray Tune's function API up to 2.4: ``checkpoint_dir``, keyword reports, session helpers."""

from __future__ import annotations

import glob
import json
import os
import sys
import tempfile
from pathlib import Path

import joblib
import pytest

from fastasha import tune

TESTS_DIR = Path(__file__).resolve().parent
if str(TESTS_DIR) not in sys.path:
    sys.path.insert(0, str(TESTS_DIR))

import objectives_legacy as legacy  # noqa: E402


def _fit(tmp_path, trainable, param_space=None, **run_kwargs):
    return tune.Tuner(
        trainable,
        param_space={"log_dir": str(tmp_path), **(param_space or {})},
        tune_config=tune.TuneConfig(metric="loss", mode="min"),
        run_config=tune.RunConfig(storage_path=str(tmp_path), name="legacy", verbose=0,
                                  **run_kwargs),
    ).fit()


def _attempts(tmp_path):
    with open(tmp_path / "attempts.jsonl") as f:
        return [json.loads(line) for line in f]


def _leftovers(step_tag):
    return glob.glob(os.path.join(tempfile.gettempdir(), f"fastasha-checkpoint-*-{step_tag}-*"))


@pytest.mark.parametrize("backend", ["loky", "threading"])
def test_a_failed_trial_resumes_from_its_checkpoint_dir(tmp_path, backend):
    with joblib.parallel_config(backend=backend):
        grid = _fit(tmp_path, legacy.train, {"epochs": 5, "fail_at": 3, "step_tag": 424242},
                    failure_config=tune.FailureConfig(max_failures=1))
    result = grid[0]
    assert result.status == "TERMINATED" and result.error is None
    # the first attempt started fresh; the retry got the folder of epoch 2's checkpoint
    first, retry = _attempts(tmp_path)
    assert (first["start"], first["given"]) == (0, False)
    assert (retry["start"], retry["given"]) == (3, True)
    frame = result.metrics_dataframe
    assert list(frame["epoch"]) == [0, 1, 2, 3, 4]
    assert list(frame["training_iteration"]) == [1, 2, 3, 4, 5]
    # every report went with the folder written just before it
    with result.checkpoint.as_directory() as folder:
        assert json.load(open(os.path.join(folder, "state.json"))) == {"epoch": 4}
    assert len(result.best_checkpoints) == 5
    assert _leftovers(424242) == []       # the temporary folders are gone


def test_checkpoint_dir_goes_with_with_parameters(tmp_path):
    grid = tune.Tuner(tune.with_parameters(legacy.train_with_data, data=[1, 2, 3]),
                      run_config=tune.RunConfig(storage_path=str(tmp_path), name="p",
                                                verbose=0)).fit()
    assert grid[0].metrics["total"] == 6 and grid[0].metrics["given"] is False


def test_a_checkpoint_dir_after_the_last_report_is_kept_with_it(tmp_path):
    grid = _fit(tmp_path, legacy.saves_after_the_last_report)
    result = grid[0]
    assert result.metrics["training_iteration"] == 1
    with result.checkpoint.as_directory() as folder:
        assert json.load(open(os.path.join(folder, "state.json"))) == {"final": True}
    assert _leftovers(1) == []


def test_a_value_is_reported_as_rays_anonymous_metric(tmp_path):
    grid = tune.Tuner(legacy.anonymous_value,
                      run_config=tune.RunConfig(storage_path=str(tmp_path), name="v",
                                                verbose=0)).fit()
    frame = grid[0].metrics_dataframe
    assert list(frame["_metric"]) == [0.25, 0.5]
    assert frame["acc"].iloc[1] == 1.0
    assert tune.result.DEFAULT_METRIC == "_metric"


def test_session_helpers_outside_a_trial():
    assert tune.is_session_enabled() is False
    assert tune.get_trial_id() is None and tune.get_trial_name() is None
    assert tune.get_trial_dir() is None
    with pytest.raises(RuntimeError, match=r"checkpoint_dir\(\) was called outside a trial"):
        with tune.checkpoint_dir(step=0):
            pass


def test_a_numpy_value_is_reported_with_keywords_as_without(tmp_path):
    grid = tune.Tuner(legacy.numpy_values,
                      run_config=tune.RunConfig(storage_path=str(tmp_path), name="np",
                                                verbose=0)).fit()
    assert grid[0].error is None
    frame = grid[0].metrics_dataframe
    assert list(frame["_metric"]) == [0.25, 0.5, 2]
    assert list(frame["acc"].iloc[1:]) == [1.0, 0.5]


def test_a_checkpoint_dir_after_a_report_with_one_replaces_it_once(tmp_path):
    """The end checkpoint goes with the last result, which has one already: one entry, not two."""
    grid = _fit(tmp_path, legacy.saves_with_and_after_the_last_report)
    result = grid[0]
    paths = [checkpoint.path for checkpoint, _ in result.best_checkpoints]
    assert len(paths) == len(set(paths)) == 2
    assert [m["training_iteration"] for _, m in result.best_checkpoints] == [1, 2]
    with result.checkpoint.as_directory() as folder:
        assert json.load(open(os.path.join(folder, "state.json"))) == {"final": True}


def test_the_folder_of_a_trial_process_killed_in_checkpoint_dir_is_removed(tmp_path):
    """Its worker removes it: the dead process could not (a driver killed outright kills it so)."""
    grid = _fit(tmp_path, legacy.killed_while_saving, {"step_tag": 535353})
    assert grid[0].status == "ERROR"
    assert _leftovers(535353) == []


def test_a_partial_objective_names_the_experiment_after_its_function(tmp_path):
    import functools

    grid = tune.Tuner(functools.partial(legacy.train_with_data, data=[1]),
                      run_config=tune.RunConfig(storage_path=str(tmp_path), verbose=0)).fit()
    assert os.path.basename(grid.experiment_path).startswith("train_with_data")


def test_restore_without_the_objective_says_to_pass_it(tmp_path):
    grid = tune.Tuner(legacy.anonymous_value,
                      run_config=tune.RunConfig(storage_path=str(tmp_path), name="r",
                                                verbose=0)).fit()
    with pytest.raises(TypeError, match=r"Tuner.restore\(path, trainable=objective\)"):
        tune.Tuner.restore(grid.experiment_path)


@pytest.mark.parametrize("backend", ["loky", "threading"])
@pytest.mark.parametrize("form", ["keywords", "dict"])
def test_a_true_done_ends_the_trial_after_its_result(tmp_path, backend, form):
    # Ray Tune stops a trial whose result has a true "done" (Ray 1.x scripts use
    # tune.report(..., done=True)); a false one changes nothing
    with joblib.parallel_config(backend=backend):
        grid = _fit(tmp_path, legacy.done_at,
                    {"form": form, "done_at": tune.grid_search([3, -1])})
    by_done_at = {r.config["done_at"]: r for r in grid}
    early, full = by_done_at[3], by_done_at[-1]
    assert early.status == full.status == "TERMINATED"
    assert early.error is None and full.error is None
    assert list(early.metrics_dataframe["loss"]) == [0.0, 1.0, 2.0, 3.0]
    assert list(early.metrics_dataframe["done"]) == [False, False, False, True]
    assert early.metrics["done"] is True and early.metrics["training_iteration"] == 4
    assert len(full.metrics_dataframe) == 10 and full.metrics["done"] is True
    # the objective did not go on after the result that said done
    steps = sorted(e["step"] for e in _attempts(tmp_path) if e["trial_id"] == early.trial_id)
    assert steps == [0, 1, 2, 3]


def test_a_done_without_a_truth_value_fails_its_trial(tmp_path):
    grid = _fit(tmp_path, legacy.done_not_a_bool)
    assert grid[0].status == "ERROR"
    assert "result key 'done'" in str(grid[0].error)
    assert "report True or False" in str(grid[0].error)
