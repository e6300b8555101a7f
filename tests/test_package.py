"""The package as a newcomer meets it: the import contract and the public names."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

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
                 "ExperimentAnalysis", "schedulers", "search", "stopper", "Callback"):
        assert getattr(tune, name) is not None, name
    assert set(tune.__all__) <= set(dir(tune))
    assert tune.schedulers.AsyncHyperBandScheduler is AsyncHyperBandScheduler


@pytest.mark.parametrize("modules", ["fastasha.tune", "fastasha.train",
                                     "fastasha.air, fastasha.air.session"])
def test_tune_import_in_a_worker_stays_light(modules):
    # a worker unpickling an objective that uses `tune` (or Ray's other spellings of it,
    # `train` and `air.session`) must not pay for numpy, joblib or sqlite3, nor for the
    # Tuner and the results: they are imported only where used
    code = (f"import sys; import {modules}, fastasha._execution.worker; "
            "print(sorted(m for m in ('numpy', 'joblib', 'sqlite3', 'rich', 'pandas', 'optuna', "
            "'fastasha.results', 'fastasha.tuner') if m in sys.modules))")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=True)
    assert run.stdout.strip() == "[]"


INSTALLED_SWEEP = """
import os, sys
import fastasha
from fastasha import tune
assert fastasha.__file__.startswith(sys.argv[1]), fastasha.__file__

def objective(config):
    for step in range(3):
        tune.report({"loss": config["x"] / (step + 1)})

if __name__ == "__main__":
    grid = tune.Tuner(objective, param_space={"x": tune.grid_search([1.0, 2.0])},
                      run_config=tune.RunConfig(storage_path=sys.argv[2], verbose=0),
                      resources={"cpu": 2}).fit()
    assert [r.status for r in grid] == ["TERMINATED"] * 2, [str(e) for e in grid.errors]
    assert all(r.metrics["pid"] != os.getpid() for r in grid)     # worker processes
    print("ok")
"""


def test_a_built_package_holds_every_module_and_runs_a_sweep(tmp_path):
    """Build the package as an install would (unoptimised: quick), then sweep with it.

    The build reads the package list from pyproject.toml, as a wheel build
    does; the sweep runs worker processes from the built copy alone.
    """
    pytest.importorskip("Cython")
    src = tmp_path / "src_tree"
    for part in ("fastasha", "src"):
        shutil.copytree(ROOT / part, src / part,
                        ignore=shutil.ignore_patterns("*.so", "*.pyd", "*.c", "__pycache__"))
    for name in ("setup.py", "pyproject.toml", "README.md", "MANIFEST.in"):
        shutil.copy(ROOT / name, src / name)
    env = dict(os.environ, FASTASHA_CYTHON_DEBUG="1")        # -O0: quick to compile
    built = subprocess.run([sys.executable, "setup.py", "build", "--build-base",
                            str(tmp_path / "build")], cwd=src, env=env, capture_output=True,
                           text=True, timeout=600, check=False)
    assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-3000:]
    (lib,) = (tmp_path / "build").glob("lib*")
    shipped = {p.relative_to(lib).as_posix() for p in (lib / "fastasha").rglob("*")}
    modules = {p.relative_to(ROOT).as_posix() for p in (ROOT / "fastasha").rglob("*.py")}
    assert modules - shipped == set(), "modules missing from the built package"
    assert {"fastasha/py.typed", "fastasha/_rungs.pyi", "fastasha/_fastpath.pyi"} <= shipped
    script = tmp_path / "sweep.py"
    script.write_text(INSTALLED_SWEEP)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(lib)
    run = subprocess.run([sys.executable, str(script), str(lib), str(tmp_path / "runs")],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
                         check=False)
    assert run.returncode == 0 and run.stdout.strip().endswith("ok"), run.stderr[-3000:]
