"""Defects found reviewing ``done``, objectives that return or yield, ``Domain.sample``,
the log console, ``FASTASHA_OVERWRITE`` and ``HyperOptSearch``.

Each test reproduces one defect through the public API; the objectives the worker
processes import are in ``tests/objectives_review8.py``.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import joblib
import pytest

from fastasha import tune

TESTS_DIR = Path(__file__).resolve().parent
if str(TESTS_DIR) not in sys.path:
    sys.path.insert(0, str(TESTS_DIR))

import objectives_review8 as objectives  # noqa: E402


def _lines(path: Path) -> list[dict]:
    with open(path) as f:
        return [json.loads(line) for line in f]


# -- a generator objective is closed inside its trial --------------------------------------


@pytest.mark.parametrize("backend", ["loky", "threading"])
@pytest.mark.parametrize("how", ["stop", "asha", "error"])
def test_a_stopped_generator_cleans_up_inside_its_trial(tmp_path, backend, how):
    # A generator objective stopped at a report (or failing on what it yields) was
    # left suspended at its yield: its finally ran only when the generator was
    # garbage-collected, after the trial ended, with no trial context and (log_to_file)
    # printing to the driver's output instead of the trial's log.
    space = {"log_dir": str(tmp_path), "name": how}
    run = {}
    tune_config = {}
    if how == "stop":
        run["stop"] = {"training_iteration": 3}
    elif how == "asha":
        tune_config["scheduler"] = tune.schedulers.ASHAScheduler(max_t=4, grace_period=4)
    else:
        space["fail_at"] = 2
    with joblib.parallel_config(backend=backend):
        grid = tune.Tuner(
            tune.with_parameters(objectives.yields_until_stopped, greeting="cleanup"),
            param_space=space,
            tune_config=tune.TuneConfig(metric="loss", mode="min", **tune_config),
            run_config=tune.RunConfig(storage_path=str(tmp_path), name="gen", verbose=0,
                                      log_to_file=backend == "loky", **run),
        ).fit()
    result = grid[0]
    if how == "error":
        assert result.status == "ERROR" and "yielded 'no result'" in str(result.error)
    else:
        assert result.status == "TERMINATED" and result.error is None
        assert result.metrics["training_iteration"] == (3 if how == "stop" else 4)
    assert _lines(tmp_path / "cleanup.jsonl") == [{"name": how, "trial_id": result.trial_id}]
    if backend == "loky":
        assert (Path(result.path) / "stdout").read_text() == f"cleanup of {how}\n"


# -- a Stopper sees the result that says "done" ------------------------------------------------


class _TargetStopper(tune.Stopper):
    """Ray's docs' pattern: stop everything once any trial reached the target."""

    def __init__(self):
        self.seen = []
        self.reached = False

    def __call__(self, trial_id, result):
        self.seen.append((trial_id, result["training_iteration"], result["done"]))
        self.reached = self.reached or result["acc"] > 0.9
        return self.reached

    def stop_all(self):
        return self.reached


def test_a_stopper_sees_the_result_that_ends_the_trial_with_done(tmp_path):
    # Ray asks the stopper about every result, a true "done" one too (before it looks
    # at "done"); fastasha skipped the stopper for it, so a stopper never saw the
    # result that reached its target, and stop_all() never ended the sweep
    stopper = _TargetStopper()
    grid = tune.Tuner(
        objectives.done_with_accuracy,
        param_space={"acc": tune.grid_search([0.95, 0.5, 0.5])},
        tune_config=tune.TuneConfig(metric="acc", mode="max", max_concurrent_trials=1),
        run_config=tune.RunConfig(storage_path=str(tmp_path), name="stopper", verbose=0,
                                  stop=stopper),
    ).fit()
    first = next(r for r in grid if r.config["acc"] == 0.95)
    assert first.status == "TERMINATED" and first.metrics["training_iteration"] == 3
    assert [s for s in stopper.seen if s[0] == first.trial_id] == \
        [(first.trial_id, 1, False), (first.trial_id, 2, False), (first.trial_id, 3, True)]
    # the stopper's stop_all() ended the sweep: no other trial ran to its "done"
    others = [r for r in grid if r.trial_id != first.trial_id]
    assert all((r.metrics or {}).get("training_iteration", 0) < 3 for r in others)


# -- an overwritten experiment's searcher state is not taken for the new one's -------------


def test_a_replaced_experiments_searcher_state_is_not_taken_for_the_new_ones(tmp_path):
    # A script crashed (its driver killed) after its searcher saved its state, and is run
    # again with FASTASHA_OVERWRITE=1 (or overwrite=True). The new sweep's searcher
    # cannot save; its first save looked for the file it should have written, found
    # the crashed run's file of the same name, and took it for its own: the new
    # experiment then claimed a saved state that belongs to the one it replaced.
    crashed = subprocess.run(
        [sys.executable, str(TESTS_DIR / "objectives_review8.py"), str(tmp_path), "again"],
        capture_output=True, text=True, timeout=120, check=False)
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    assert list((tmp_path / "again").glob("searcher-state-*.pkl"))     # what it left
    with pytest.warns(UserWarning, match="does not implement save"):
        grid = tune.Tuner(
            objectives.reports_x,
            tune_config=tune.TuneConfig(metric="loss", mode="min", num_samples=2,
                                        search_alg=objectives.UnsavedSearcher()),
            run_config=tune.RunConfig(storage_path=str(tmp_path), name="again", verbose=0,
                                      overwrite=True),
        ).fit()
    assert [r.config for r in grid] == [{"x": 0}, {"x": 1}]
    assert not list((tmp_path / "again").glob("searcher-state-*.pkl"))
    # a restore says the searcher saved nothing, instead of handing it the old state
    with pytest.raises(ValueError, match="did not save its state"):
        tune.Tuner.restore(grid.experiment_path, objectives.reports_x,
                           search_alg=objectives.UnsavedSearcher())
