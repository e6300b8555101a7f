"""Recipes the tests of the library-backed searchers share (Optuna, HyperOpt, BayesOpt).

``tests/test_optuna_search.py``, ``tests/test_hyperopt_search.py`` and
``tests/test_bayesopt_search.py`` check the same promises of their
searchers the same way: that the library is imported only when needed
(and that its absence says how to install it), that what the library
cannot search is refused both in ``param_space`` and in ``space=``, that
a missing or doubled space and a missing mode are refused before the
sweep, that the same seed gives the same sweep, that a saved searcher
continues where it was, that a stopped sweep restored runs as if it was
never stopped, and that the example runs. The recipes are here; each test
file gives its searcher, space and objective, and asserts on what a
recipe returns (the ``check_*`` recipes assert themselves).

Sweeps run on joblib's default backend (loky): the objectives a test
passes are module-level functions, which workers import by name.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import types
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from fastasha import tune
from fastasha.search import ConcurrencyLimiter, Searcher

REPO = Path(__file__).resolve().parent.parent


class StopAllAfter(tune.Stopper):
    """Ends the whole sweep once ``n`` trials reported."""

    def __init__(self, n: int) -> None:
        self.n, self.seen = n, set()

    def __call__(self, trial_id: str, result: dict) -> bool:
        self.seen.add(trial_id)
        return False

    def stop_all(self) -> bool:
        return len(self.seen) >= self.n


def python_prints(code: str) -> str:
    """What ``python -c code`` prints (stripped), in an interpreter of its own."""
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=True)
    return run.stdout.strip()


def check_install_hint(monkeypatch: pytest.MonkeyPatch, make: Callable[[], Searcher],
                       module: str, installed: str | None, match: str) -> None:
    """``make()`` raises an ImportError matching ``match`` without ``module``, or with it old.

    ``installed`` is the version found (``"1.4.3"``), or ``None``: not
    installed at all.
    """
    # None in sys.modules makes `import module` fail
    found = None if installed is None else types.SimpleNamespace(__version__=installed)
    monkeypatch.setitem(sys.modules, module, found)
    with pytest.raises(ImportError, match=match):
        make()


def check_refused(make: Callable[..., Searcher], space: dict, match: str,
                  error: type[Exception] = ValueError, as_param_space: bool = True) -> None:
    """``space`` is refused with ``error`` as ``space=``, and (``as_param_space``) as param_space.

    ``make(**kwargs)`` builds the searcher (the class, say), with
    ``metric="loss", mode="min"``.
    """
    with pytest.raises(error, match=match):
        make(space=space, metric="loss", mode="min")
    if as_param_space:
        searcher = make(metric="loss", mode="min")
        with pytest.raises(error, match=match):
            searcher.set_search_properties(None, None, space)


def check_space_refusals(make: Callable[..., Searcher], space: dict) -> None:
    """The search space is refused when given twice, and its absence when there is none.

    Twice: ``space=`` (``space``), and domains in ``param_space`` too. None:
    a ``param_space`` of constants only (``ValueError``), or a suggestion
    asked before any space was given (``RuntimeError``).
    """
    searcher = make(space=space, metric="loss", mode="min")
    with pytest.raises(ValueError, match="given twice"):
        searcher.set_search_properties(None, None, {"y": tune.uniform(0, 1)})
    with pytest.raises(ValueError, match="no search space"):
        make(metric="loss", mode="min").set_search_properties(None, None, {"c": 1})
    with pytest.raises(RuntimeError, match="no search space"):
        make(metric="loss", mode="min").suggest("t0")


def check_a_missing_mode(make: Callable[..., Searcher]) -> None:
    """A sweep without a mode is refused before it starts; one given it then works.

    ``make()`` builds the searcher without a metric or a mode; the sweep's
    ``param_space`` is ``{"x": tune.uniform(0, 1)}``.
    """
    searcher = make()
    with pytest.raises(ValueError, match="needs a mode"):
        searcher.set_search_properties("loss", None, {"x": tune.uniform(0, 1)})
    searcher.set_search_properties("loss", "min", {"x": tune.uniform(0, 1)})    # then given
    config = searcher.suggest("t0")
    assert isinstance(config, dict) and 0 <= config["x"] <= 1, config


def sweep(tmp_path: Path, name: str | None, objective: Callable, param_space: dict,
          search_alg: Any, stop: Any = None, metric: str = "loss",
          **tune_config: Any) -> tune.ResultGrid:
    """The ResultGrid of a sweep that minimises ``metric``, in ``tmp_path/name``."""
    return tune.Tuner(
        objective, param_space=param_space,
        tune_config=tune.TuneConfig(metric=metric, mode="min", search_alg=search_alg,
                                    **tune_config),
        run_config=tune.RunConfig(storage_path=str(tmp_path), name=name, verbose=0,
                                  stop=stop)).fit()


def same_seed_sweeps(tmp_path: Path, objective: Callable, param_space: dict,
                     searcher_with_seed: Callable[[int], Searcher],
                     num_samples: int) -> tuple[list, list, list]:
    """The configs of three sweeps, each with a searcher ``searcher_with_seed(seed)``.

    Each runs one trial at a time, so that each suggestion follows the
    same results: seed 11 with ``max_concurrent_trials=1``; seed 11 under
    ``ConcurrencyLimiter(searcher, 1)`` instead; seed 12.
    """
    sweeps = [
        sweep(tmp_path, "a", objective, param_space, searcher_with_seed(11),
              num_samples=num_samples, max_concurrent_trials=1),
        sweep(tmp_path, "b", objective, param_space,
              ConcurrencyLimiter(searcher_with_seed(11), max_concurrent=1),
              num_samples=num_samples),
        sweep(tmp_path, "c", objective, param_space, searcher_with_seed(12),
              num_samples=num_samples, max_concurrent_trials=1)]
    first, again, other = ([r.config for r in grid] for grid in sweeps)
    return first, again, other


def stopped_and_restored(tmp_path: Path, objective: Callable, param_space: dict,
                         make_searcher: Callable[[], Searcher], stop: Any,
                         num_samples: int) -> tuple[Any, Any, Any]:
    """A sweep run whole, the same sweep ended early by ``stop``, and that one restored.

    Each runs one trial at a time, with a searcher ``make_searcher()``
    built afresh (the restored one too, as a user would). The restore and
    the rest of its sweep run with warnings as errors: no replay mismatch,
    nothing left unsaved. Returns the three ResultGrids.
    """
    def run(name: str, stopper: Any = None) -> Any:
        return sweep(tmp_path, name, objective, param_space, make_searcher(), stop=stopper,
                     num_samples=num_samples, max_concurrent_trials=1)

    whole = run("whole")
    half = run("half", stopper=stop)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        restored = tune.Tuner.restore(half.experiment_path, objective,
                                      search_alg=make_searcher()).fit()
    return whole, half, restored


def suggestions_after_restore(tmp_path: Path, searcher: Searcher, fresh: Searcher,
                              n_told: int) -> tuple[list, list]:
    """What ``searcher`` and ``fresh``, restored from its saved state, suggest next.

    ``searcher`` (metric ``"loss"``) is told ``n_told`` trials of
    ``(x - 0.3)^2``, suggests one more (``"running"``) and is saved;
    ``fresh`` restores that. Each then gives the running trial's config
    again, hears its end (loss 1) and suggests the next: returns
    ``[running, next]`` of each.
    """
    for i in range(n_told):
        x = searcher.suggest(str(i))["x"]
        searcher.on_trial_complete(str(i), {"loss": (x - 0.3) ** 2})
    running = searcher.suggest("running")
    searcher.save(str(tmp_path / "state.pkl"))
    fresh.restore(str(tmp_path / "state.pkl"))
    fresh_running = fresh.suggest("running")
    for s in (searcher, fresh):
        s.on_trial_complete("running", {"loss": 1.0})
    return [running, searcher.suggest("next")], [fresh_running, fresh.suggest("next")]


def run_example(tmp_path: Path, script: str) -> tuple[str, tune.ResultGrid]:
    """Run ``examples/<script> --smoke-test`` with its experiment in ``tmp_path``.

    Returns the best config it printed (the text of the dict) and its
    experiment's ResultGrid; fails the test if it fails or prints none.
    """
    env = dict(os.environ, FASTASHA_STORAGE_PATH=str(tmp_path))
    proc = subprocess.run(
        [sys.executable, str(REPO / "examples" / script), "--smoke-test"],
        check=False, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        pytest.fail(f"{script} --smoke-test failed:\n{proc.stderr}")
    match = re.search(r"^Best hyperparameters found: (\{.*\})$", proc.stdout, re.MULTILINE)
    if match is None:
        pytest.fail(f"{script} --smoke-test printed no best config:\n{proc.stdout}")
    (experiment,) = [p.parent for p in tmp_path.glob("*/experiment.db")]
    return match.group(1), tune.ResultGrid.from_path(experiment)
