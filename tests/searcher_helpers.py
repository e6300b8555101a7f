"""Recipes the tests of the library-backed searchers share (Optuna, HyperOpt, ...).

``tests/test_optuna_search.py``, ``tests/test_hyperopt_search.py``,
``tests/test_bayesopt_search.py`` and ``tests/test_nevergrad_search.py``
check the same promises of their searchers the same way: that the library
is imported only when needed (and that its absence says how to install
it), that what the library cannot search is refused both in
``param_space`` and in ``space=``, that a missing or doubled space and a
missing mode are refused before the sweep, that each domain's values stay
its own, that the searcher learns from what it is told, that the same
seed gives the same sweep, that a saved searcher continues where it was,
that a stopped sweep restored runs as if it was never stopped, and that
the example runs. The recipes are here; each test
file gives its searcher, space and objective, and asserts on what a
recipe returns (the ``check_*`` recipes assert themselves).

Sweeps run on joblib's default backend (loky): the objectives a test
passes are module-level functions, which workers import by name.
"""

from __future__ import annotations

import importlib
import math
import os
import re
import subprocess
import sys
import types
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import objectives  # tests/objectives.py
import pytest

from fastasha import tune
from fastasha.schedulers import AsyncHyperBandScheduler
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


def check_install_hints(monkeypatch: pytest.MonkeyPatch, cls: type, module: str,
                        minimum: str, old: str) -> None:
    """``cls()`` says how to install ``module`` when it is missing, and when it is ``old``.

    ``minimum`` is the oldest version that works (``"1.0"``); the extra of
    fastasha that installs the module is named after it. The commands
    install the library from PyPI, where fastasha itself is not.
    """
    wanted = re.escape(f'"{module}>={minimum}"')
    clone = re.escape(f'in a clone of fastasha: pip install -e ".[{module}]"')
    check_install_hint(monkeypatch, cls, module, None,
                       rf'{cls.__name__} needs the optional dependency {module}.*'
                       rf'pip install {wanted} \(or, {clone}\)')
    check_install_hint(monkeypatch, cls, module, old,
                       rf'needs {module} {re.escape(minimum)} or newer, found {re.escape(old)}: '
                       rf'pip install -U {wanted} \(or, {clone}\)')


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


# -------------------------------------------------------- recipes added with NevergradSearch
# (tests/test_hyperopt_search.py has its own copies of several; they may move here)

def imported_before_and_after(module: str, cls: str, library: str, args: str = "") -> list[str]:
    """Whether ``library`` is imported, in a fresh interpreter, before and after ``cls(args)``.

    ``cls`` is imported first from ``fastasha.tune.search.<module>``, after
    ``fastasha.search`` and ``fastasha.tune``: ``["False", "True"]`` when
    only building the searcher imports the library.
    """
    code = (f"import sys; import fastasha.search, fastasha.tune; "
            f"from fastasha.tune.search.{module} import {cls}; "
            f"print({library!r} in sys.modules, end=' '); {cls}({args}); "
            f"print({library!r} in sys.modules)")
    return python_prints(code).split()


def check_ray_paths(module: str, cls: type) -> None:
    """``fastasha.search.<module>`` is also Ray 2's ``tune.search.<module>`` and Ray 1's
    ``tune.suggest.<module>``, the very same module, and ``cls`` a Searcher in it."""
    real = importlib.import_module(f"fastasha.search.{module}")
    ray2 = importlib.import_module(f"fastasha.tune.search.{module}")
    ray1 = importlib.import_module(f"fastasha.tune.suggest.{module}")
    assert ray1 is ray2 is real and getattr(tune.search, module) is real
    assert getattr(real, cls.__name__) is cls and issubclass(cls, Searcher)


def told(loss: Callable[[dict], Any]) -> Callable[[dict], tuple[dict, bool]]:
    """The end of a trial (for :func:`one_by_one`) that reports ``{"loss": loss(config)}``."""
    return lambda config: ({"loss": loss(config)}, False)


def one_by_one(searcher: Searcher, n: int,
               end: Callable[[dict], tuple[dict | None, bool]]) -> list[dict]:
    """The configs of ``n`` trials ``searcher`` suggests one after the other.

    Trial ``i`` (id ``str(i)``) ends before the next is suggested, with
    ``end(config)``: its last result (or None) and whether it failed.
    """
    configs = []
    for i in range(n):
        config = searcher.suggest(str(i))
        configs.append(config)
        result, error = end(config)
        searcher.on_trial_complete(str(i), result, error=error)
    return configs


def _multiple(value: float, q: float) -> bool:
    return math.isclose(value / q, round(value / q), abs_tol=1e-9)


def _float_in(low: float, high: float) -> Callable[[Any], bool]:
    return lambda v: type(v) is float and low <= v < high


# A space of each kind of domain, for searchers that give each domain's values as its own
# draws do: each key's domain, a check of one value, and the values that enough random
# draws all give (None: too many to list)
DOMAIN_CASES = {
    "uniform": (tune.uniform(0.5, 2.0), _float_in(0.5, 2.0), None),
    "quniform": (tune.quniform(0.0, 1.0, 0.25), lambda v: type(v) is float,
                 {0.0, 0.25, 0.5, 0.75, 1.0}),
    "loguniform": (tune.loguniform(1e-4, 1e-1), _float_in(1e-4, 1e-1), None),
    "qloguniform": (tune.qloguniform(0.01, 1.0, 0.01),
                    lambda v: type(v) is float and 0.01 <= v <= 1.0 and _multiple(v, 0.01), None),
    "randn": (tune.randn(5.0, 2.0), lambda v: type(v) is float, None),
    "qrandn": (tune.qrandn(0.0, 1.0, 0.5), lambda v: type(v) is float and _multiple(v, 0.5),
               None),
    "randint": (tune.randint(-1, 2), lambda v: type(v) is int, {-1, 0, 1}),      # 2 excluded
    "qrandint": (tune.qrandint(1, 10, 3), lambda v: type(v) is int, {3, 6, 9}),  # multiples
    "qrandint-1": (tune.qrandint(0, 2), lambda v: type(v) is int, {0, 1, 2}),    # 2 included
    "lograndint": (tune.lograndint(1, 4), lambda v: type(v) is int, {1, 2, 3}),
    "qlograndint": (tune.qlograndint(2, 10, 2), lambda v: type(v) is int, {2, 4, 6, 8, 10}),
    "one-multiple": (tune.qlograndint(3, 5, 4), lambda v: type(v) is int, {4}),
    "choice": (tune.choice(["a", (1, 2), [3], None]), lambda v: True,
               {"a", (1, 2), (3,), None}),
}
DOMAIN_SPACE = {key: domain for key, (domain, _, _) in DOMAIN_CASES.items()}


def check_domain_values(configs: list[dict], covered: bool) -> None:
    """Each config of a sweep of :data:`DOMAIN_SPACE` gives each domain a value of its own.

    With ``covered``, the configs give every value a domain has, where
    :data:`DOMAIN_CASES` lists them.
    """
    assert all(set(c) == set(DOMAIN_CASES) for c in configs)    # constants: merged by the sweep
    for key, (_, check, expected) in DOMAIN_CASES.items():
        values = [c[key] for c in configs]
        bad = [v for v in values if not check(v)]
        assert not bad, (key, bad)
        found = {tuple(v) if isinstance(v, list) else v for v in values}
        assert not covered or expected is None or found == expected, (key, found)


# points_to_evaluate that do not fit {"x": tune.uniform(0, 1), "k": tune.randint(0, 3)} (and
# whatever more a test's space has, with values of its own), and what the error says
UNFIT_POINTS = [
    pytest.param({"x": 0.5}, r"missing \['k'\]", id="missing"),
    pytest.param({"x": 0.5, "k": 1, "y": 2}, r"not in the space \['y'\]", id="unknown"),
    pytest.param({"x": 1.5, "k": 1}, "1.5 of 'x'.*not in its search space", id="outside"),
    pytest.param({"x": 0.5, "k": 3}, "3 of 'k'.*not in its search space", id="upper"),  # excluded
    pytest.param({"x": 0.5, "k": 1.5}, "1.5 of 'k'", id="not-int"),
]


QUADRATIC_DIMS = ("x0", "x1", "x2")
QUADRATIC_SPACE = {d: tune.uniform(-10.0, 10.0) for d in QUADRATIC_DIMS}


def quadratic_losses(searcher: Searcher, n: int = 40) -> list[float]:
    """The losses of ``n`` trials of ``searcher`` (over :data:`QUADRATIC_SPACE`, its metric
    ``"loss"``) on a 3-D quadratic whose optimum is at 3."""
    losses: list[float] = []

    def loss(config: dict) -> float:
        losses.append(sum((config[d] - 3.0) ** 2 for d in QUADRATIC_DIMS))
        return losses[-1]

    one_by_one(searcher, n, told(loss))
    return losses


def random_quadratic_median() -> float:
    """The median loss of :func:`quadratic_losses`' quadratic at random configs (about 110)."""
    draws = np.random.default_rng(0).uniform(-10.0, 10.0, (120, len(QUADRATIC_DIMS)))
    return float(np.median(((draws - 3.0) ** 2).sum(axis=1)))


def check_stray_ends(searcher: Searcher) -> None:
    """The end of a trial heard twice, or of one never suggested, is ignored with a warning.

    ``searcher`` has a space and the metric ``"loss"``. The warning points
    at the caller of ``on_trial_complete``.
    """
    searcher.suggest("a")
    searcher.on_trial_complete("a", {"loss": 1.0})
    with pytest.warns(UserWarning, match="already ended") as record:
        searcher.on_trial_complete("a", {"loss": 0.0})
    assert record[0].filename == __file__
    with pytest.warns(UserWarning, match="was not suggested"):
        searcher.on_trial_complete("b", {"loss": 0.0})


def check_refused_before_any_trial(tmp_path: Path, searcher: Searcher) -> None:
    """A sweep of a ``sample_from`` domain with ``searcher`` fails before any trial ran."""
    space = {"x": tune.sample_from(lambda spec: 0.1), "n": 1}
    with pytest.raises(ValueError, match="sample_from"):
        sweep(tmp_path, "refused", objectives.steps, space, searcher, num_samples=2)
    assert not list((tmp_path / "refused").glob("*/result.json"))


def check_an_asha_sweep(tmp_path: Path, make_searcher: Callable[[list], Searcher]) -> None:
    """An ASHA sweep with ``make_searcher(points_to_evaluate)`` runs the points first, fails
    the trial that raises, stops some trials early, and keeps every value in its domain."""
    # fails_for: loss = x * step for 3 steps, and x == bad fails at step 2; the bad
    # point is the best one (x is the lower bound), so ASHA never stops it at the rung
    # at step 1 before it fails, whichever trial reaches the rung first
    space = {"x": tune.uniform(0.1, 1.0), "bad": 0.1,
             "sub": {"k": tune.randint(0, 3), "c": "const"},
             "lr": tune.qloguniform(1e-4, 1e-1, 1e-4), "act": tune.choice(["relu", "tanh"])}
    points = [{"x": 0.1, "sub": {"k": 0}, "lr": 1e-3, "act": "relu"},
              {"x": 0.5, "sub": {"k": 2}, "lr": 1e-2, "act": "tanh"}]
    grid = sweep(tmp_path, "asha", objectives.fails_for, space, make_searcher(points),
                 num_samples=16, scheduler=AsyncHyperBandScheduler(max_t=3, grace_period=1))
    assert len(grid) == 16
    configs = [r.config for r in grid]
    assert configs[:2] == [{**p, "bad": 0.1, "sub": {**p["sub"], "c": "const"}} for p in points]
    assert grid[0].status == "ERROR" and grid.num_errors == 1
    for c in configs:
        assert 0.1 <= c["x"] < 1.0 and c["sub"]["k"] in (0, 1, 2) and c["sub"]["c"] == "const"
        assert 1e-4 <= c["lr"] <= 1e-1 and _multiple(c["lr"], 1e-4)
        assert c["act"] in ("relu", "tanh")
    assert any(len(r.metrics_dataframe) < 3 for r in grid if r.status == "TERMINATED")


def check_one_trial_at_a_time(tmp_path: Path, searcher: Searcher) -> None:
    """``ConcurrencyLimiter(searcher, 1)`` runs one trial at a time, on 2 cores."""
    # timed_steps reports t0 (its start) and t (each report's time)
    grid = sweep(tmp_path, "cap", objectives.timed_steps,
                 {"x": tune.uniform(-1.0, 1.0), "n": 3, "sleep": 0.05},
                 ConcurrencyLimiter(searcher, max_concurrent=1), metric="t", num_samples=6)
    assert len(grid) == 6 and grid.num_errors == 0
    spans = sorted((r.metrics["t0"], r.metrics["t"]) for r in grid)
    assert all(end <= next_start for (_, end), (next_start, _) in zip(spans, spans[1:]))


def check_restored_as_never_stopped(tmp_path: Path, objective: Callable, param_space: dict,
                                    make_searcher: Callable[[], Searcher], stop: Any,
                                    num_samples: int) -> tune.ResultGrid:
    """:func:`stopped_and_restored`, and that the restored sweep is the whole one.

    ``stop`` ends the sweep at its 5th trial. Returns the restored ResultGrid.
    """
    whole, half, restored = stopped_and_restored(tmp_path, objective, param_space,
                                                 make_searcher, stop, num_samples)
    assert 5 <= len(half) < num_samples
    assert len(restored) == num_samples
    assert [r.status for r in restored] == ["TERMINATED"] * num_samples
    assert [r.config for r in restored] == [r.config for r in whole]
    return restored


def check_easy_objective_example(tmp_path: Path, script: str, num_samples: int) -> None:
    """``examples/<script> --smoke-test``, with Ray's easy_objective and its first guess.

    The example's space is Ray's (``width`` in [0, 20), ``height`` in
    [-100, 100), an ``activation``, 20 ``steps``), its first point
    ``width=10, height=0, activation="relu"``, and it runs ``num_samples``
    trials.
    """
    best, grid = run_example(tmp_path, script)
    assert "'width'" in best and "'height'" in best
    assert len(grid) == num_samples and grid.num_errors == 0
    configs = [r.config for r in grid]
    assert configs[0] == {"steps": 20, "width": 10.0, "height": 0.0, "activation": "relu"}
    assert all(0 <= c["width"] < 20 and -100 <= c["height"] < 100 for c in configs)
