"""What a slot's worker process prepares once, so that its trial processes need not.

Every objective calls ``tune.report``. A supervisor imports ``fastasha.tune``
before it forks, so that a trial process finds it loaded: imported in the
trial process instead, it would cost every sweep about 5 ms per slot,
since a trial process ends with its sweep while the worker lives on.
"""

from __future__ import annotations

import sys
from pathlib import Path

import joblib
from joblib.externals.loky import get_reusable_executor

from fastasha import tune

TESTS_DIR = Path(__file__).resolve().parent
if str(TESTS_DIR) not in sys.path:
    sys.path.insert(0, str(TESTS_DIR))

import objectives_bare


def test_trial_processes_find_the_report_api_loaded(tmp_path):
    # fresh loky workers: none has imported fastasha.tune for an earlier test
    get_reusable_executor().shutdown(wait=True)
    with joblib.parallel_config(backend="loky"):
        grid = tune.Tuner(
            objectives_bare.note_preloaded,
            param_space={"i": tune.grid_search(list(range(4)))},
            tune_config=tune.TuneConfig(metric="preloaded", mode="max"),
            run_config=tune.RunConfig(name="preload", storage_path=str(tmp_path), verbose=0),
            resources={"cpu": 2},
        ).fit()
    assert grid.num_errors == 0
    assert [r.metrics["preloaded"] for r in grid] == [1, 1, 1, 1]
