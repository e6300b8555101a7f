"""Trial folders: the working directory of their trials when asked (Ray's default), log files."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import joblib
import pytest

from fastasha import tune

TESTS_DIR = Path(__file__).resolve().parent
if str(TESTS_DIR) not in sys.path:
    sys.path.insert(0, str(TESTS_DIR))

import objectives_folders as objectives  # noqa: E402


class OpensALogInTheFolder(tune.Callback):
    """Ray's logging guide: a callback appends to a file in the trial's folder at its start."""

    def on_trial_start(self, iteration, trials, trial, **info):
        assert trial.logdir == trial.local_path        # Ray 2.0-2.6's name
        with open(os.path.join(trial.local_path, "log_test.txt"), "a") as f:
            f.write("started\n")


def _fit(tmp_path, name, **tune_config):
    return tune.Tuner(
        objectives.writes_relative,
        param_space={"i": tune.grid_search([0, 1, 2, 3])},
        tune_config=tune.TuneConfig(**tune_config),
        run_config=tune.RunConfig(storage_path=str(tmp_path), name=name, verbose=0,
                                  callbacks=[OpensALogInTheFolder()]),
    ).fit()


def test_trials_run_in_their_own_folders(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    grid = _fit(tmp_path, "apart", chdir_to_trial_dir=True)
    assert grid.num_errors == 0
    for result in grid:
        assert result.metrics["cwd"] == result.path
        assert Path(result.path, "artifact.txt").read_text() == str(result.config["i"])
        assert Path(result.path, "log_test.txt").read_text() == "started\n"
    assert not (tmp_path / "artifact.txt").exists()


def test_by_default_trials_run_in_the_drivers_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    grid = _fit(tmp_path, "shared", max_concurrent_trials=1)
    assert grid.num_errors == 0
    assert {r.metrics["cwd"] for r in grid} == {str(tmp_path)}
    assert (tmp_path / "artifact.txt").read_text() == "3"      # each trial overwrote it


def test_rays_environment_switch_sets_the_default(monkeypatch):
    monkeypatch.setenv("RAY_CHDIR_TO_TRIAL_DIR", "1")
    assert tune.TuneConfig().chdir_to_trial_dir is True
    assert tune.TuneConfig(chdir_to_trial_dir=False).chdir_to_trial_dir is False
    monkeypatch.setenv("RAY_CHDIR_TO_TRIAL_DIR", "0")
    assert tune.TuneConfig().chdir_to_trial_dir is False
    monkeypatch.delenv("RAY_CHDIR_TO_TRIAL_DIR")
    assert tune.TuneConfig().chdir_to_trial_dir is False
    with pytest.raises(TypeError, match="chdir_to_trial_dir"):
        tune.TuneConfig(chdir_to_trial_dir="yes")


def test_the_threading_backend_never_changes_the_drivers_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with joblib.parallel_config(backend="threading"):
        grid = _fit(tmp_path, "threads", max_concurrent_trials=1, chdir_to_trial_dir=True)
    assert grid.num_errors == 0
    assert os.getcwd() == str(tmp_path)
    assert {r.metrics["cwd"] for r in grid} == {str(tmp_path)}
    assert all(Path(r.path, "log_test.txt").exists() for r in grid)


@pytest.mark.parametrize("log_to_file, files", [
    (True, {"stdout": ["out", "child"], "stderr": ["err"]}),
    ("all.log", {"all.log": ["out", "err", "child"]}),
    (("o.txt", "e.txt"), {"o.txt": ["out", "child"], "e.txt": ["err"]}),
])
def test_log_to_file_writes_each_trials_output_in_its_folder(tmp_path, log_to_file, files):
    grid = tune.Tuner(
        objectives.prints,
        param_space={"i": tune.grid_search([0, 1, 2])},
        tune_config=tune.TuneConfig(max_concurrent_trials=1),    # one process runs them all
        run_config=tune.RunConfig(storage_path=str(tmp_path), name="logs", verbose=0,
                                  log_to_file=log_to_file),
    ).fit()
    assert grid.num_errors == 0
    for result in grid:
        i = result.config["i"]
        for name, kinds in files.items():
            lines = sorted(Path(result.path, name).read_text().split("\n"))
            assert [line for line in lines if line] == sorted(f"{k} {i}" for k in kinds)


def test_log_to_file_is_kept_by_a_restore(tmp_path):
    grid = tune.Tuner(objectives.prints, param_space={"i": 7},
                      run_config=tune.RunConfig(storage_path=str(tmp_path), name="kept",
                                                verbose=0, log_to_file="all.log")).fit()
    restored = tune.Tuner.restore(grid.experiment_path, objectives.prints)
    assert restored.run_config.log_to_file == "all.log"


def test_log_to_file_warns_that_threads_cannot_redirect(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)     # the objective writes artifact.txt where it runs
    with joblib.parallel_config(backend="threading"):
        with pytest.warns(UserWarning, match="log_to_file=.*no effect on the threading backend"):
            tune.Tuner(objectives.writes_relative, param_space={"i": 1},
                       run_config=tune.RunConfig(storage_path=str(tmp_path), verbose=0,
                                                 log_to_file=True)).fit()
