"""The package as a newcomer meets it: the import contract and the public names."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_import_without_the_compiled_core_says_how_to_build_it(tmp_path):
    # a copy of the package without the extension: there is no pure-Python fallback
    shutil.copytree(ROOT / "fastasha", tmp_path / "fastasha",
                    ignore=shutil.ignore_patterns("*.so", "*.pyd", "__pycache__"))
    # -S: without site-packages, so that the editable install's finder cannot
    # supply the built extension of the source tree
    run = subprocess.run([sys.executable, "-S", "-c", "import fastasha"], cwd=tmp_path,
                         env=dict(os.environ, PYTHONPATH=str(tmp_path)),
                         capture_output=True, text=True, timeout=60)
    assert run.returncode != 0
    assert "ImportError" in run.stderr
    assert "fastasha._rungs" in run.stderr and 'pip install -e ".[test]"' in run.stderr


def test_ray_tune_names_are_where_ray_users_look():
    from fastasha import tune
    from fastasha.schedulers import (
        ASHAScheduler,
        AsyncHyperBandScheduler,
        FIFOScheduler,
        TrialScheduler,
    )

    assert ASHAScheduler is AsyncHyperBandScheduler
    assert issubclass(FIFOScheduler, TrialScheduler)
    for name in ("Tuner", "TuneConfig", "RunConfig", "FailureConfig", "CheckpointConfig",
                 "Checkpoint", "report", "get_context", "get_checkpoint", "with_resources",
                 "with_parameters", "uniform", "quniform", "loguniform", "qloguniform", "randn",
                 "qrandn", "randint", "qrandint", "lograndint", "qlograndint", "choice",
                 "grid_search", "sample_from", "Stopper", "ResultGrid", "Result",
                 "ExperimentAnalysis", "schedulers", "Callback"):
        assert getattr(tune, name) is not None, name
    assert set(tune.__all__) <= set(dir(tune))
    assert tune.schedulers.AsyncHyperBandScheduler is AsyncHyperBandScheduler


def test_tune_import_in_a_worker_stays_light():
    # a worker unpickling an objective that uses `tune` must not pay for numpy,
    # joblib or sqlite3: they are imported only where used
    code = ("import sys; import fastasha.tune, fastasha._execution.worker; "
            "print(sorted(m for m in ('numpy', 'joblib', 'sqlite3', 'rich', 'pandas') "
            "if m in sys.modules))")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=True)
    assert run.stdout.strip() == "[]"
