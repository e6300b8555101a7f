"""Defects found reviewing ``done``, objectives that return or yield, ``Domain.sample``,
the log console, ``FASTASHA_OVERWRITE`` and ``HyperOptSearch``.

Each test reproduces one defect through the public API; the objectives the worker
processes import are in ``tests/objectives_review8.py``.
"""

from __future__ import annotations

import json
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
