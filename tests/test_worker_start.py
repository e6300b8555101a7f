"""What a slot's worker process prepares once, so that its trial processes need not.

Every objective calls ``tune.report``. A supervisor imports ``fastasha.tune``
before it forks, so that a trial process finds it loaded: imported in the
trial process instead, it would cost every sweep about 5 ms per slot,
since a trial process ends with its sweep while the worker lives on. That
import brings the report API only: the driver's side of ``fastasha.tune``
(configs, callbacks, stoppers, reporters, resource requests) loads on first
use, which spares a cold worker about 4 ms.
"""

from __future__ import annotations

import subprocess
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


def test_the_report_api_comes_without_the_drivers_side():
    code = (
        "import sys; import fastasha.tune as tune\n"
        "heavy = ['fastasha.config', 'fastasha.callback', 'fastasha.stopper',\n"
        "         'fastasha.progress_reporter', 'fastasha._resources', 'fastasha._trainable',\n"
        "         'fastasha.air', 'fastasha.tuner', 'numpy', 'joblib', 'sqlite3']\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
        "print(tune.report.__module__, tune.get_context.__module__)\n"
        # every public name still resolves, to the object of the module that holds it
        "from fastasha.config import RunConfig; from fastasha.stopper import Stopper\n"
        "from fastasha._trainable import with_resources\n"
        "from fastasha.air.session import get_trial_dir; from fastasha import air\n"
        "assert all(getattr(tune, n) is not None for n in tune.__all__)\n"
        "assert tune.RunConfig is RunConfig is air.RunConfig and tune.Stopper is Stopper\n"
        "assert tune.with_resources is with_resources and tune.get_trial_dir is get_trial_dir\n"

        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[:3] == ["[]", "fastasha._fastpath fastasha._session", "ok"]
    # Ray's module path fastasha.air.config, as an attribute, before anything loaded it
    out = subprocess.run([sys.executable, "-c", "import fastasha.air, fastasha.config; "
                          "assert fastasha.air.config.RunConfig is fastasha.config.RunConfig"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
