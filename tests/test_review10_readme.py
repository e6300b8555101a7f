"""What README.md and the examples tell a newcomer, checked as a newcomer would run it.

- ``examples/large_sweep.py`` puts its experiment where every other
  experiment goes: ``$FASTASHA_STORAGE_PATH`` when it is set (it used to
  write to ``~/fastasha_results`` whatever the variable said).
- Every ``from fastasha... import ...`` line of the README imports, and every
  dotted name it gives (``fastasha.tune.suggest.hyperopt``, ...) exists.
- Every extra the README installs (``pip install -e ".[name]"``) is one
  that ``pyproject.toml`` declares, and the README names no package
  ``fastasha[...]`` to fetch from PyPI, where fastasha is not.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from fastasha import tune

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
EXAMPLE = ROOT / "examples" / "large_sweep.py"


def test_large_sweep_goes_to_the_storage_path_of_the_environment(tmp_path):
    storage = tmp_path / "store"
    home = tmp_path / "home"          # where ~/fastasha_results would be
    home.mkdir()
    env = {**os.environ, "FASTASHA_STORAGE_PATH": str(storage), "HOME": str(home),
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    command = [sys.executable, str(EXAMPLE), "--trials", "6", "--epochs", "5",
               "--step-ms", "0", "--verbose", "0"]
    run = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env,
                         cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "Trials: 6 (6 TERMINATED)" in run.stdout
    assert not (home / "fastasha_results").exists()
    grid = tune.ResultGrid.from_path(storage / "large_sweep")
    assert len(grid) == 6 and grid.num_terminated == 6
    # an explicit --storage still wins over the variable
    other = tmp_path / "other"
    run = subprocess.run([*command, "--storage", str(other)], capture_output=True, text=True,
                         timeout=120, env=env, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    assert len(tune.ResultGrid.from_path(other / "large_sweep")) == 6


# `from fastasha... import A, B` in backticks or in a code block; "import ..." names no objects
IMPORT = re.compile(r"^(from fastasha[\w.]* import [\w, ]+)$"
                    r"|`(from fastasha[\w.]* import [\w, ]+)`", re.M)
# a dotted name in backticks: `fastasha.tune.suggest.hyperopt`, `fastasha.logger.export_trial_logs(`
DOTTED = re.compile(r"`(fastasha(?:\.\w+)+)[`(]")
# the module of any `from fastasha... import` line, `from fastasha.tune.logger import ...` too
MODULE = re.compile(r"from (fastasha[\w.]*) import")


def _resolve(dotted: str) -> object:
    """The module or object a dotted name names: its longest importable prefix, then attributes."""
    parts = dotted.split(".")
    for n in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:n]))
        except ModuleNotFoundError as err:
            if not (err.name and dotted.startswith(err.name)):
                raise                   # a library the module needs is missing
            continue
        for attr in parts[n:]:
            obj = getattr(obj, attr)
        return obj
    raise ModuleNotFoundError(dotted)


# libraries of extras that the test extra leaves out (torch is a download of several GB):
# a README line that needs one of them is checked only where it is installed
NOT_IN_TEST = {"torch", "lightning", "pytorch_lightning", "keras"}


def _not_installed(err: BaseException) -> bool:
    """Whether ``err`` is the import error of a library the test extra leaves out."""
    name = (getattr(err, "name", None) or "").partition(".")[0]
    return name in NOT_IN_TEST and importlib.util.find_spec(name) is None


def test_every_fastasha_import_and_name_of_the_readme_resolves():
    lines = sorted({a or b for a, b in IMPORT.findall(README)})
    names = sorted(set(DOTTED.findall(README)) | set(MODULE.findall(README)))
    assert len(lines) >= 10 and len(names) >= 20, (lines, names)
    failed = {}
    for line in lines:
        try:
            exec(line, {})
        except ImportError as err:
            if not _not_installed(err):
                failed[line] = str(err)
    for name in names:
        try:
            _resolve(name)
        except (ImportError, AttributeError) as err:
            if not _not_installed(err):
                failed[name] = str(err)
    assert not failed, failed


def test_the_extras_the_readme_installs_exist_and_fastasha_is_not_fetched_from_pypi():
    tomllib = pytest.importorskip("tomllib")
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]
    named = set(re.findall(r'pip install -e "\.\[(\w+)\]"', README))
    assert {"test", "hyperopt", "bayesopt", "nevergrad"} <= named
    assert named <= set(declared), named - set(declared)
    assert "fastasha[" not in README
    for example in sorted((ROOT / "examples").glob("*.py")):
        assert "fastasha[" not in example.read_text(), example.name
