"""Names a Ray script relies on: generated experiment names, schedulers and searchers given
by name, the install commands in messages, and ``ExperimentAnalysis.get_best_trial``.

Through the public API; the sweeps run in loky worker processes (the default backend),
and the race of two drivers runs them as processes of their own.
"""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
import time
import tomllib
import types
import warnings
from pathlib import Path

import pytest

import fastasha.integration
import fastasha.search.bayesopt
import fastasha.search.bohb
import fastasha.search.hyperopt
import fastasha.search.nevergrad
import fastasha.search.optuna
from fastasha import tune
from fastasha.results import ResultGrid
from fastasha.schedulers import (
    AsyncHyperBandScheduler,
    FIFOScheduler,
    MedianStoppingRule,
    create_scheduler,
)
from fastasha.search import BasicVariantGenerator, ConcurrencyLimiter, create_searcher
from fastasha.search.bayesopt import BayesOptSearch
from fastasha.search.hyperopt import HyperOptSearch
from fastasha.search.nevergrad import NevergradSearch
from fastasha.search.optuna import OptunaSearch

TESTS_DIR = Path(__file__).parent
ROOT = TESTS_DIR.parent


def report_who(config):
    """Reports which sweep ran it, and a loss."""
    tune.report({"loss": float(config.get("x", 0.0)), "who": config["who"]})


def loss_is_x(config):
    """20 steps, each reporting ``loss = x``: a smaller x is better at every step."""
    for _ in range(20):
        tune.report({"loss": float(config["x"])})


def returns_number(config):
    """Ray's function API: the number returned is the result ``{"_metric": value}``."""
    return config["x"] * 3.0


def says_nothing(config):
    """Reports no metric at all."""
    tune.report({"step_done": True})


STAMP = "2001-02-03_04-05-06"


def frozen_clock() -> types.ModuleType:
    """``time`` whose ``strftime`` of a generated name's stamp always gives ``STAMP``.

    Set as ``fastasha.tuner.time``, it makes every sweep started with it pick
    the same name, however late on a busy machine it starts.
    """
    clock = types.ModuleType("time")
    clock.__dict__.update(time.__dict__)
    clock.strftime = lambda fmt, *t: STAMP if fmt == "%Y-%m-%d_%H-%M-%S" else \
        time.strftime(fmt, *t)
    return clock


def unnamed(tmp_path: Path, who: str, objective=report_who, **run_config) -> ResultGrid:
    """One sweep of one trial under a generated name in ``tmp_path``."""
    return tune.Tuner(objective, param_space={"who": who},
                      run_config=tune.RunConfig(storage_path=str(tmp_path), verbose=0,
                                                **run_config)).fit()


# ------------------------------------------------------------------ generated names

def test_unnamed_fits_in_a_loop_each_get_a_folder_and_results_of_their_own(tmp_path):
    grids = [unnamed(tmp_path, who) for who in ("a", "b", "c")]
    paths = [Path(g.experiment_path) for g in grids]
    assert len(set(paths)) == 3 and all(p.parent == tmp_path for p in paths)
    assert all(p.name.startswith("report_who_") for p in paths)
    for grid, who in zip(grids, "abc"):
        assert ResultGrid.from_path(grid.experiment_path)[0].metrics["who"] == who
    # a loop of tune.run calls too
    first = tune.run(report_who, config={"who": "d"}, storage_path=str(tmp_path), verbose=0)
    second = tune.run(report_who, config={"who": "e"}, storage_path=str(tmp_path), verbose=0)
    assert first.experiment_path != second.experiment_path
    assert [first.trials[0].metrics["who"], second.trials[0].metrics["who"]] == ["d", "e"]


DRIVER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    sys.path.insert(0, {tests!r})
    import fastasha.tuner
    from fastasha import tune
    from test_names_and_registries import frozen_clock, report_who
    fastasha.tuner.time = frozen_clock()    # both name it the same, even if one starts late
    root, who, go_file = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    print("ready", flush=True)
    while not go_file.exists():
        time.sleep(0.002)
    go = float(go_file.read_text())
    while time.time() < go:
        time.sleep(0.0005)
    grid = tune.Tuner(report_who, param_space={{"who": who}},
                      run_config=tune.RunConfig(storage_path=root, verbose=0)).fit()
    print(grid.experiment_path, flush=True)
""").format(tests=str(TESTS_DIR))


def test_two_drivers_started_in_the_same_second_each_get_a_folder_of_their_own(tmp_path):
    root, go_file = tmp_path / "results", tmp_path / "go"
    procs = [subprocess.Popen([sys.executable, "-c", DRIVER, str(root), who, str(go_file)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              cwd=str(ROOT)) for who in ("first", "second")]
    try:
        for proc in procs:       # both imported everything: start them together
            assert proc.stdout.readline().strip() == "ready", proc.stderr.read()
        go_file.write_text(repr(time.time() + 0.5))
        outputs = [proc.communicate(timeout=120) for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
    assert [proc.returncode for proc in procs] == [0, 0], [err for _, err in outputs]
    paths = [Path(out.strip()) for out, _ in outputs]
    assert sorted(p.name for p in paths) == [f"report_who_{STAMP}", f"report_who_{STAMP}_1"]
    for path, who in zip(paths, ("first", "second")):
        grid = ResultGrid.from_path(path)
        assert len(grid) == 1 and grid[0].metrics["who"] == who


def test_a_name_given_is_still_refused_and_overwrite_still_replaces(tmp_path, monkeypatch):
    def named(who: str, **kwargs) -> ResultGrid:
        return unnamed(tmp_path, who, name="mine", **kwargs)

    named("a")
    with pytest.raises(FileExistsError, match="already holds an experiment"):
        named("b")
    with pytest.raises(FileExistsError, match="resume='AUTO'"):
        tune.run(report_who, config={"who": "b"}, name="mine", storage_path=str(tmp_path),
                 verbose=0)
    assert named("c", overwrite=True)[0].metrics["who"] == "c"
    monkeypatch.setenv("FASTASHA_OVERWRITE", "1")
    assert named("d")[0].metrics["who"] == "d"
    assert [p.name for p in tmp_path.iterdir()] == ["mine"]


def test_a_generated_name_never_replaces_an_experiment_even_with_overwrite(tmp_path):
    first = unnamed(tmp_path, "a")
    second = unnamed(tmp_path, "b", overwrite=True)
    assert first.experiment_path != second.experiment_path
    assert ResultGrid.from_path(first.experiment_path)[0].metrics["who"] == "a"


def test_a_folder_in_the_way_of_a_generated_name_is_left_alone(tmp_path, monkeypatch):
    import fastasha.tuner

    monkeypatch.setattr(fastasha.tuner, "time", frozen_clock())
    folder = tmp_path / f"report_who_{STAMP}"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    grid = unnamed(tmp_path, "a")
    assert Path(grid.experiment_path).name == f"report_who_{STAMP}_1"
    assert sorted(p.name for p in tmp_path.iterdir()) == [folder.name, f"{folder.name}_1"]
    assert (folder / "notes.txt").read_text() == "mine"


def test_restore_and_get_results_find_a_suffixed_folder(tmp_path):
    tuners = [tune.Tuner(report_who, param_space={"who": who},
                         run_config=tune.RunConfig(storage_path=str(tmp_path), verbose=0))
              for who in ("a", "b")]
    for tuner in tuners:
        tuner.fit()
    for tuner, who in zip(tuners, "ab"):
        assert tuner.get_results()[0].metrics["who"] == who
    path = tuners[1].get_results().experiment_path
    again = tune.Tuner.restore(path, report_who).fit()
    assert again.experiment_path == path and again[0].metrics["who"] == "b"


# ------------------------------------------------------------------ schedulers by name

@pytest.mark.parametrize("name, cls", [
    ("fifo", FIFOScheduler), ("async_hyperband", AsyncHyperBandScheduler),
    ("asynchyperband", AsyncHyperBandScheduler), ("asha", AsyncHyperBandScheduler),
    ("ASYNC_HYPERBAND", AsyncHyperBandScheduler), ("median_stopping_rule", MedianStoppingRule),
    ("medianstopping", MedianStoppingRule),
])
def test_create_scheduler_builds_rays_names(name, cls):
    scheduler = create_scheduler(name, metric="loss", mode="min")
    assert type(scheduler) is cls and (scheduler.metric, scheduler.mode) == ("loss", "min")
    assert tune.create_scheduler is create_scheduler
    assert tune.schedulers.create_scheduler is create_scheduler


def test_create_scheduler_passes_arguments_and_drops_those_the_class_lacks():
    asha = create_scheduler("async_hyperband", grace_period=3, max_t=27, reduction_factor=3)
    assert (asha.grace_period, asha.max_t, asha.reduction_factor) == (3, 27, 3)
    # as Ray: one call serves several names; fastasha says what it dropped
    with pytest.warns(UserWarning, match=r"create_scheduler\('fifo'\) ignored max_t, "
                                         r"grace_period: FIFOScheduler takes no such"):
        fifo = create_scheduler("fifo", metric="loss", mode="min", max_t=27, grace_period=3)
    assert type(fifo) is FIFOScheduler and fifo.metric == "loss"
    with warnings.catch_warnings():
        warnings.simplefilter("error")        # nothing dropped: no warning
        create_scheduler("medianstopping", metric="loss", mode="min", grace_period=1.0)
    with pytest.raises(ValueError, match="reduction_factor"):   # the class checks what it takes
        create_scheduler("async_hyperband", reduction_factor=1)


@pytest.mark.parametrize("name", ["pbt_replay", "pb2", "resource_changing", "PB2"])
def test_rays_schedulers_that_fastasha_lacks_are_named_as_such(name):
    with pytest.raises(ValueError, match=rf"{name!r} is Ray Tune's name for .*not available in "
                                         r"fastasha; the schedulers fastasha has are 'fifo', "
                                         r"'async_hyperband'.*'median_stopping_rule'"):
        create_scheduler(name)


def test_an_unknown_scheduler_name_lists_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown scheduler name 'ashaa'; the names fastasha "
                                         r"knows are 'fifo', 'async_hyperband'"):
        create_scheduler("ashaa")
    with pytest.raises(TypeError, match="scheduler name must be a str"):
        create_scheduler(AsyncHyperBandScheduler)
    with pytest.raises(ValueError, match="'pb2' is Ray Tune's name"):
        tune.TuneConfig(scheduler="pb2")


def test_tune_run_takes_a_scheduler_and_a_search_alg_by_name(tmp_path):
    # one trial at a time, the best first: ASHA stops the others at their first rung
    analysis = tune.run(loss_is_x, config={"x": tune.grid_search([1.0, 2.0, 3.0, 4.0])},
                        scheduler="async_hyperband", search_alg="variant_generator",
                        metric="loss", mode="min", max_concurrent_trials=1,
                        storage_path=str(tmp_path), verbose=0)
    iterations = {t.config["x"]: t.metrics["training_iteration"] for t in analysis.trials}
    assert iterations == {1.0: 20, 2.0: 1, 3.0: 1, 4.0: 1}
    # FIFO by name stops none
    analysis = tune.run(loss_is_x, config={"x": tune.grid_search([1.0, 2.0])},
                        scheduler="FIFO", metric="loss", mode="min", max_concurrent_trials=1,
                        storage_path=str(tmp_path), verbose=0)
    assert [t.metrics["training_iteration"] for t in analysis.trials] == [20, 20]


def test_the_tuner_takes_names_in_tune_config(tmp_path):
    grid = tune.Tuner(
        loss_is_x, param_space={"x": tune.grid_search([1.0, 2.0, 3.0])},
        tune_config=tune.TuneConfig(metric="loss", mode="min", scheduler="asha",
                                    search_alg="random", max_concurrent_trials=1),
        run_config=tune.RunConfig(storage_path=str(tmp_path), verbose=0)).fit()
    assert sorted(r.metrics["training_iteration"] for r in grid) == [1, 1, 20]


def test_a_searcher_by_name_runs_and_a_resume_by_name_continues_it(tmp_path):
    def run(**kwargs):
        return tune.run(loss_is_x, config={"x": tune.uniform(0.0, 1.0)}, search_alg="hyperopt",
                        metric="loss", mode="min", name="by_name", storage_path=str(tmp_path),
                        verbose=0, stop={"training_iteration": 2}, **kwargs)

    analysis = run(num_samples=3)
    assert len(analysis.trials) == 3 and all(0.0 <= t.config["x"] <= 1.0 for t in analysis.trials)
    # the experiment knows its searcher was HyperOptSearch: a restore without one says so
    with pytest.raises(ValueError, match="HyperOptSearch"):
        tune.Tuner.restore(analysis.experiment_path, loss_is_x)
    resumed = run(num_samples=3, resume=True)
    assert resumed.experiment_path == analysis.experiment_path and len(resumed.trials) == 3


@pytest.mark.parametrize("name, cls, kwargs", [
    ("variant_generator", BasicVariantGenerator, {}),
    ("random", BasicVariantGenerator, {}),
    ("optuna", OptunaSearch, {"metric": "loss", "mode": "min"}),
    ("Hyperopt", HyperOptSearch, {"metric": "loss", "mode": "min"}),
    ("bayesopt", BayesOptSearch, {"metric": "loss", "mode": "min"}),
    ("nevergrad", NevergradSearch, {"optimizer": "OnePlusOne", "metric": "loss", "mode": "min"}),
])
def test_create_searcher_builds_rays_names(name, cls, kwargs):
    searcher = create_searcher(name, **kwargs)
    assert type(searcher) is cls
    if kwargs:
        assert (searcher.metric, searcher.mode) == ("loss", "min")
    assert tune.create_searcher is create_searcher
    assert tune.search.create_searcher is create_searcher


def test_create_searcher_drops_what_the_class_does_not_take():
    with pytest.warns(UserWarning, match=r"create_searcher\('random'\) ignored metric, mode: "
                                         r"BasicVariantGenerator takes no such arguments"):
        generator = create_searcher("random", metric="loss", mode="min", max_concurrent=2)
    assert generator.max_concurrent == 2


@pytest.mark.parametrize("name", ["ax", "hebo", "zoopt", "skopt", "dragonfly", "vizier",
                                  "blendsearch", "AX"])
def test_rays_searchers_that_fastasha_lacks_are_named_as_such(name):
    with pytest.raises(ValueError, match=rf"{name!r} is Ray Tune's name for .*not available in "
                                         r"fastasha; the searchers fastasha has are "
                                         r"'variant_generator', 'random', 'optuna', 'hyperopt', "
                                         r"'bayesopt', 'nevergrad'"):
        create_searcher(name)


def test_unknown_searcher_names_and_wrappers_are_refused_with_what_to_do():
    with pytest.raises(ValueError, match=r"unknown searcher name 'tpe'; the names fastasha knows "
                                         r"are 'variant_generator'"):
        create_searcher("tpe")
    with pytest.raises(ValueError, match=r"ConcurrencyLimiter wraps a searcher.*"
                                         r"ConcurrencyLimiter\(create_searcher\('optuna'\), "
                                         r"max_concurrent=4\)"):
        create_searcher("concurrency_limiter")
    with pytest.raises(ValueError, match=r"Repeater wraps a searcher.*repeat=3"):
        create_searcher("Repeater")
    with pytest.raises(TypeError, match="searcher name must be a str"):
        create_searcher(None)
    # the wrapper of a searcher built by name works as any other
    limited = ConcurrencyLimiter(create_searcher("optuna"), max_concurrent=2)
    assert isinstance(limited.searcher, OptunaSearch)


def test_a_searcher_named_without_its_library_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "optuna", None)     # `import optuna` fails
    hint = re.escape('pip install "optuna>=3.4" (or, in a clone of fastasha: '
                     'pip install -e ".[optuna]")')
    with pytest.raises(ImportError, match=f"OptunaSearch needs the optional dependency "
                                          f"optuna, which is not installed: {hint}"):
        create_searcher("optuna")
    with pytest.raises(ImportError, match=hint):
        tune.TuneConfig(search_alg="optuna")
    with pytest.raises(ImportError, match=hint):
        tune.run(report_who, config={"who": "a"}, search_alg="optuna", metric="loss",
                 mode="min", storage_path=str(tmp_path), verbose=0)
    assert not any(tmp_path.iterdir())


# ------------------------------------------------------------------ install commands

def _extras() -> dict[str, list[str]]:
    with open(ROOT / "pyproject.toml", "rb") as f:
        return tomllib.load(f)["project"]["optional-dependencies"]


@pytest.mark.parametrize("module", [fastasha.search.optuna, fastasha.search.hyperopt,
                                    fastasha.search.bayesopt, fastasha.search.nevergrad,
                                    fastasha.search.bohb, fastasha.integration],
                         ids=lambda m: m.__name__)
def test_docstrings_give_install_commands_that_work(module):
    """fastasha is not on PyPI: a command must install the library, or an extra of a clone."""
    doc = module.__doc__
    assert "fastasha[" not in doc
    extras = _extras()
    requirements = {r for name, reqs in extras.items() if name != "test" for r in reqs}
    named = re.findall(r'pip install "([^"]+)"', doc)
    assert named and set(named) <= requirements, named
    clone = re.findall(r'pip install -e\s+"\.\[(\w+)\]"', doc) + \
        re.findall(r'or ``"\.\[(\w+)\]"``', doc)
    assert clone and set(clone) <= set(extras), clone


@pytest.mark.parametrize("cls, module, extra", [
    (OptunaSearch, "optuna", "optuna"), (HyperOptSearch, "hyperopt", "hyperopt"),
    (BayesOptSearch, "bayes_opt", "bayesopt"), (NevergradSearch, "nevergrad", "nevergrad"),
])
def test_install_messages_name_the_extras_requirement(monkeypatch, cls, module, extra):
    monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(ImportError) as info:
        cls("OnePlusOne") if cls is NevergradSearch else cls()
    message = str(info.value)
    assert "fastasha[" not in message
    (requirement,) = _extras()[extra]
    package, minimum = requirement.split(">=")
    wanted = re.search(rf'pip install "{re.escape(package)}>=([\d.]+)"', message)
    assert wanted, message
    assert tuple(map(int, wanted.group(1).split("."))) >= tuple(map(int, minimum.split(".")))
    assert f'in a clone of fastasha: pip install -e ".[{extra}]"' in message



def test_no_message_or_docstring_tells_users_to_pip_install_fastasha_extras():
    """``pip install "fastasha[x]"`` fails (fastasha is not on PyPI): no source may say it."""
    package = Path(fastasha.integration.__file__).parent.parent
    offenders = [f"{path.relative_to(package)}:{n}"
                 for path in sorted(package.rglob("*.py"))
                 for n, line in enumerate(path.read_text().splitlines(), 1)
                 if re.search(r"""pip install\s+(-U\s+)?["']?fastasha\[""", line)]
    assert not offenders, offenders


def test_data_frames_without_pandas_say_how_to_install_it(tmp_path, monkeypatch):
    grid = tune.Tuner(lambda config: tune.report({"loss": 1.0}),
                      run_config=tune.RunConfig(storage_path=str(tmp_path), verbose=0)).fit()
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ImportError) as info:
        grid.get_dataframe()
    message = str(info.value)
    assert "fastasha[" not in message
    assert 'pip install "pandas>=2"' in message
    assert "in a clone of fastasha: pip install -e '.[pandas]'" in message


# ------------------------------------------------------------------ get_best_trial

def test_a_single_trial_is_the_best_whatever_the_metric_as_in_ray(tmp_path):
    analysis = tune.run(says_nothing, config={"x": 1}, storage_path=str(tmp_path), verbose=0)
    (trial,) = analysis.trials
    assert analysis.get_best_trial().trial_id == trial.trial_id
    assert analysis.get_best_trial("loss", "min").trial_id == trial.trial_id
    assert analysis.get_best_config() == {"x": 1}
    assert analysis.get_best_logdir() == trial.path
    # the best_* properties need the default metric and mode, as in Ray
    for name in ("best_trial", "best_config", "best_result", "best_checkpoint", "best_logdir"):
        with pytest.raises(ValueError, match=rf"{name} is the best by the default metric and "
                                             r"mode, and default_metric and default_mode are "
                                             r"not set"):
            getattr(analysis, name)
    given = tune.ExperimentAnalysis(analysis.experiment_path, default_metric="loss",
                                    default_mode="min")
    assert given.best_trial.trial_id == trial.trial_id and given.best_config == {"x": 1}


def test_with_more_trials_a_metric_and_mode_are_needed(tmp_path):
    analysis = tune.run(loss_is_x, config={"x": tune.grid_search([2.0, 1.0])},
                        storage_path=str(tmp_path), verbose=0)
    with pytest.raises(ValueError, match="pass metric and mode"):
        analysis.get_best_trial()
    with pytest.raises(ValueError, match="pass metric and mode"):
        analysis.get_best_trial(metric="loss")
    with pytest.raises(ValueError, match="mode"):
        analysis.get_best_trial("loss", "smallest")
    with pytest.raises(ValueError, match="scope"):
        analysis.get_best_trial("loss", "min", scope="first")
    assert analysis.get_best_trial("loss", "min").config == {"x": 1.0}
    assert analysis.get_best_trial("loss", "max").config == {"x": 2.0}
    assert analysis.get_best_trial("accuracy", "max") is None   # no trial reported it
    with pytest.raises(ValueError, match="default_mode is not set"):
        tune.ExperimentAnalysis(analysis.experiment_path, default_metric="loss").best_trial


def test_a_default_mode_alone_ranks_by_the_returned_number(tmp_path):
    analysis = tune.run(returns_number, config={"x": tune.grid_search([3.0, 1.0, 2.0])},
                        storage_path=str(tmp_path), verbose=0)
    ranked = tune.ExperimentAnalysis(analysis.experiment_path, default_mode="min")
    assert ranked.default_metric == "_metric" and ranked.best_config == {"x": 1.0}
