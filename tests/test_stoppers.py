"""Ray Tune's stock stoppers (``fastasha/stopper.py``) and the ``fastasha.tune.*`` import paths.

The unit tests feed hand-made result sequences to each stopper and check the
decision after every result. The sweeps run the real Tuner with a stopper as
``RunConfig(stop=...)``; their objective is defined here, at module level, so
that loky's workers can import it by name (pytest puts ``tests/`` on
``sys.path``).
"""

from __future__ import annotations

import importlib
import pickle
import subprocess
import sys
import math
import time
from datetime import timedelta

import numpy as np
import pytest

import fastasha.schedulers
import fastasha.search
import fastasha.stopper
from fastasha import tune
from fastasha.stopper import (
    CombinedStopper,
    ExperimentPlateauStopper,
    FunctionStopper,
    MaximumIterationStopper,
    NoopStopper,
    Stopper,
    TimeoutStopper,
    TrialPlateauStopper,
)

# ``ray.tune.stopper.__all__`` in Ray 2.x
RAY_STOPPER_NAMES = ("Stopper", "CombinedStopper", "ExperimentPlateauStopper", "FunctionStopper",
                     "MaximumIterationStopper", "NoopStopper", "TimeoutStopper",
                     "TrialPlateauStopper")


def decisions(stopper, results, trial_id="t0"):
    """``stopper(trial_id, result)`` for each result, in order."""
    return [stopper(trial_id, r) for r in results]


def losses(*values):
    return [{"loss": v} for v in values]


# --------------------------------------------------------- TrialPlateauStopper

def test_trial_plateau_waits_for_num_results_values():
    stopper = TrialPlateauStopper("loss", num_results=3, grace_period=0)
    assert decisions(stopper, losses(1.0, 1.0, 1.0, 1.0)) == [False, False, True, True]


def test_trial_plateau_waits_for_the_grace_period():
    stopper = TrialPlateauStopper("loss", num_results=2, grace_period=5)
    assert decisions(stopper, losses(*[1.0] * 6)) == [False] * 4 + [True, True]


def test_trial_plateau_looks_at_the_last_num_results_values_only():
    stopper = TrialPlateauStopper("loss", num_results=3, grace_period=0)
    assert decisions(stopper, losses(5.0, 0.0, 0.0, 0.0)) == [False, False, False, True]


def test_trial_plateau_needs_a_deviation_below_std():
    # the population deviation (divisor n, as numpy.std) of [0, 2] is exactly 1
    assert decisions(TrialPlateauStopper("loss", std=1.0, num_results=2, grace_period=0),
                     losses(0.0, 2.0)) == [False, False]
    assert decisions(TrialPlateauStopper("loss", std=1.001, num_results=2, grace_period=0),
                     losses(0.0, 2.0)) == [False, True]


@pytest.mark.parametrize("seed", range(5))
def test_trial_plateau_decides_as_numpy_std_does(seed):
    rng = np.random.default_rng(seed)
    values = list(rng.normal(0.0, 0.02, size=60))
    stopper = TrialPlateauStopper("loss", std=0.015, num_results=4, grace_period=6)
    expected = [i + 1 >= 6 and float(np.std(values[i - 3:i + 1])) < 0.015 for i in range(60)]
    assert decisions(stopper, losses(*values)) == expected
    assert any(expected) and not all(expected)


def test_trial_plateau_counts_each_trial_apart():
    stopper = TrialPlateauStopper("loss", num_results=2, grace_period=0)
    assert stopper("a", {"loss": 1.0}) is False
    assert stopper("b", {"loss": 1.0}) is False
    assert stopper("b", {"loss": 3.0}) is False
    assert stopper("a", {"loss": 1.0}) is True


@pytest.mark.parametrize("mode, threshold, expected", [
    ("min", 0.4, [False] * 4),          # 0.5 never gets down to 0.4
    ("min", 0.5, [False, False, True, True]),
    ("max", 0.6, [False] * 4),          # 0.5 never gets up to 0.6
    ("max", 0.5, [False, False, True, True]),
])
def test_trial_plateau_metric_threshold(mode, threshold, expected):
    stopper = TrialPlateauStopper("loss", num_results=3, grace_period=0,
                                  metric_threshold=threshold, mode=mode)
    assert decisions(stopper, losses(*[0.5] * 4)) == expected


def test_trial_plateau_does_not_stop_while_a_result_without_the_metric_is_in_the_window():
    # as in Ray Tune: a missing value does not fail the trial, it only blocks the plateau
    stopper = TrialPlateauStopper("loss", num_results=2, grace_period=0)
    results = [{"loss": 1.0}, {"acc": 0.5}, {"loss": 1.0}, {"loss": 1.0}]
    assert decisions(stopper, results) == [False, False, False, True]
    misspelt = TrialPlateauStopper("los", num_results=2, grace_period=0)
    assert decisions(misspelt, losses(*[1.0] * 5)) == [False] * 5


def test_trial_plateau_ignores_nan_and_strings_until_they_leave_the_window():
    stopper = TrialPlateauStopper("loss", num_results=2, grace_period=0)
    results = losses(1.0, float("nan"), 1.0, "high", 1.0, 1.0)
    assert decisions(stopper, results) == [False, False, False, False, False, True]


def test_trial_plateau_reads_nested_metrics_and_numpy_scalars():
    stopper = TrialPlateauStopper("val/loss", num_results=2, grace_period=0)
    results = [{"val": {"loss": np.float32(0.25)}}] * 2
    assert decisions(stopper, results) == [False, True]


def test_trial_plateau_state_survives_pickling():
    stopper = TrialPlateauStopper("loss", num_results=3, grace_period=0)
    decisions(stopper, losses(1.0, 1.0))
    copy = pickle.loads(pickle.dumps(stopper))
    assert copy("t0", {"loss": 1.0}) is True
    assert copy("t1", {"loss": 1.0}) is False


# ---------------------------------------------------- ExperimentPlateauStopper

def test_experiment_plateau_keeps_the_top_values_of_all_trials_and_results():
    stopper = ExperimentPlateauStopper("loss", std=0.01, top=3, mode="min")
    # a, b, c each give 0.1 once: the three best values are equal after the third
    assert stopper("a", {"loss": 0.1}) is False
    assert stopper("b", {"loss": 9.0}) is False
    assert stopper("b", {"loss": 0.1}) is False
    assert stopper.stop_all() is False
    assert stopper("c", {"loss": 0.1}) is True
    assert stopper.stop_all() is True


@pytest.mark.parametrize("mode, expected", [
    ("max", [False, False, False, True]),     # top 3 of max: 5, 5, 5
    ("min", [False, False, False, False]),    # top 3 of min: 1, 5, 5
])
def test_experiment_plateau_mode_picks_the_top(mode, expected):
    stopper = ExperimentPlateauStopper("score", std=0.01, top=3, mode=mode)
    results = [{"score": v} for v in (1.0, 5.0, 5.0, 5.0)]
    assert [stopper(f"t{i}", r) for i, r in enumerate(results)] == expected


def test_experiment_plateau_patience_counts_plateaued_results_in_a_row():
    stopper = ExperimentPlateauStopper("loss", std=0.01, top=2, mode="min", patience=3)
    # plateaued after 2 results (count 1), then 3 (count 2); a better value
    # breaks the plateau (count 0); three more plateaued results stop the sweep
    values = [1.0, 1.0, 1.0, 0.5, 0.5, 2.0, 2.0]
    assert decisions(stopper, losses(*values)) == [False] * 6 + [True]
    assert stopper.stop_all() is True


@pytest.mark.parametrize("patience", [0, 1])
def test_experiment_plateau_patience_0_and_1_stop_at_the_first_plateau(patience):
    # Ray Tune counts the plateaued result itself: 0 and 1 decide alike
    stopper = ExperimentPlateauStopper("loss", top=2, patience=patience)
    assert decisions(stopper, losses(1.0, 1.0)) == [False, True]


def test_experiment_plateau_skips_nan_values():
    stopper = ExperimentPlateauStopper("loss", top=2)
    assert decisions(stopper, losses(1.0, float("nan"), 1.0)) == [False, False, True]


def test_experiment_plateau_result_without_the_metric_is_an_error():
    stopper = ExperimentPlateauStopper("loss")
    with pytest.raises(ValueError, match=r"needs 'loss' in every result.*\['acc'\]"):
        stopper("t0", {"acc": 1.0})
    with pytest.raises(TypeError, match="metric 'loss' of trial 't0' must be a number"):
        stopper("t0", {"loss": "low"})


# ----------------------------------------------------------------- TimeoutStopper

def test_timeout_stopper_counts_from_its_first_check():
    stopper = TimeoutStopper(0.05)
    time.sleep(0.1)                       # before the first check: set-up, not counted
    assert stopper.stop_all() is False
    assert stopper("t0", {"loss": 1.0}) is False
    time.sleep(0.1)
    assert stopper.stop_all() is True
    assert stopper("t0", {"loss": 1.0}) is False      # it never stops a single trial


def test_timeout_stopper_takes_a_timedelta():
    stopper = TimeoutStopper(timedelta(milliseconds=50))
    assert repr(stopper) == "TimeoutStopper(timeout=0.05)"
    assert stopper.stop_all() is False
    time.sleep(0.1)
    assert stopper.stop_all() is True


def test_timeout_stopper_does_not_count_the_time_spent_pickled():
    stopper = TimeoutStopper(0.3)
    assert stopper.stop_all() is False
    data = pickle.dumps(stopper)
    time.sleep(0.4)                       # the budget is spent for the original
    copy = pickle.loads(data)
    assert stopper.stop_all() is True
    assert copy.stop_all() is False       # the copy's clock restarts here
    time.sleep(0.35)
    assert copy.stop_all() is True


def test_timeout_stopper_before_the_budget_is_spent():
    stopper = TimeoutStopper(3600)
    assert [stopper.stop_all() for _ in range(3)] == [False, False, False]


# ---------------------------------------------------------------- CombinedStopper

class Recorder(Stopper):
    """Records what it sees; stops trial ``stop_trial``; stop_all as told."""

    def __init__(self, stop_trial=None, stop_all=False):
        self.seen = []
        self.stop_trial = stop_trial
        self.all = stop_all
        self.n_stop_all = 0

    def __call__(self, trial_id, result):
        self.seen.append(trial_id)
        return trial_id == self.stop_trial

    def stop_all(self):
        self.n_stop_all += 1
        return self.all


def test_combined_stopper_is_an_or_that_asks_every_stopper():
    first, second = Recorder(stop_trial="a"), Recorder(stop_trial="b")
    stopper = CombinedStopper(first, second)
    assert [stopper(t, {}) for t in ("a", "b", "c")] == [True, True, False]
    # each stopper saw each result, also after the other had said stop
    assert first.seen == second.seen == ["a", "b", "c"]
    assert stopper.stop_all() is False
    second.all = True
    assert stopper.stop_all() is True
    assert first.n_stop_all == second.n_stop_all == 2


def test_combined_stopper_of_nothing_never_stops():
    stopper = CombinedStopper()
    assert stopper("t0", {"loss": 1.0}) is False and stopper.stop_all() is False


def test_combined_stopper_with_ray_stoppers():
    stopper = CombinedStopper(MaximumIterationStopper(max_iter=4),
                              TrialPlateauStopper("loss", num_results=2, grace_period=0))
    flat = [{"loss": 1.0, "training_iteration": i} for i in (1, 2)]
    falling = [{"loss": 1.0 / i, "training_iteration": i} for i in (1, 2, 3, 4)]
    assert decisions(stopper, flat, "flat") == [False, True]
    assert decisions(stopper, falling, "falling") == [False, False, False, True]


def test_noop_stopper_never_stops():
    stopper = NoopStopper()
    assert stopper("t0", {"loss": 1.0}) is False and stopper.stop_all() is False


# ------------------------------------------------------------------ bad arguments

@pytest.mark.parametrize("make, error, match", [
    (lambda: TrialPlateauStopper(3), TypeError, "metric must be the name"),
    (lambda: TrialPlateauStopper(""), TypeError, "metric must be the name"),
    (lambda: TrialPlateauStopper("loss", std=0), ValueError, "std must be greater than 0"),
    (lambda: TrialPlateauStopper("loss", std="0.1"), TypeError, "std must be a real number"),
    (lambda: TrialPlateauStopper("loss", num_results=0), ValueError,
     "num_results must be at least 1"),
    (lambda: TrialPlateauStopper("loss", num_results=2.5), TypeError,
     "num_results must be an integer"),
    (lambda: TrialPlateauStopper("loss", grace_period=-1), ValueError,
     "grace_period must be at least 0"),
    (lambda: TrialPlateauStopper("loss", metric_threshold=0.5), ValueError,
     "needs mode='min' or mode='max'"),
    (lambda: TrialPlateauStopper("loss", metric_threshold=float("nan"), mode="min"), ValueError,
     "metric_threshold must be a number, got nan"),
    (lambda: TrialPlateauStopper("loss", metric_threshold="0.5", mode="min"), TypeError,
     "metric_threshold must be a real number"),
    (lambda: TrialPlateauStopper("loss", mode="minimize"), ValueError,
     "mode must be one of 'min', 'max'"),
    (lambda: ExperimentPlateauStopper(None), TypeError, "metric must be the name"),
    (lambda: ExperimentPlateauStopper("loss", mode=None), ValueError,
     "mode must be one of 'min', 'max', got None"),
    (lambda: ExperimentPlateauStopper("loss", top=1), ValueError, "top must be at least 2"),
    (lambda: ExperimentPlateauStopper("loss", top=True), TypeError, "top must be an integer"),
    (lambda: ExperimentPlateauStopper("loss", std=-0.1), ValueError,
     "std must be greater than 0"),
    (lambda: ExperimentPlateauStopper("loss", patience=-1), ValueError,
     "patience must be at least 0"),
    (lambda: TimeoutStopper("60"), TypeError,
     "timeout must be a number of seconds or a datetime.timedelta"),
    (lambda: TimeoutStopper(None), TypeError, "timeout must be a number"),
    (lambda: TimeoutStopper(0), ValueError, "timeout must be greater than 0 seconds"),
    (lambda: TimeoutStopper(timedelta(seconds=-5)), ValueError,
     "timeout must be greater than 0 seconds"),
    (lambda: TimeoutStopper(float("nan")), ValueError, "timeout must be greater than 0"),
    (lambda: CombinedStopper(MaximumIterationStopper(3), {"training_iteration": 3}), TypeError,
     "argument 1 is {'training_iteration': 3}"),
    (lambda: CombinedStopper(lambda trial_id, result: False), TypeError,
     "wrap a function .* in FunctionStopper"),
])
def test_bad_arguments_say_what_was_wrong(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_combined_stopper_accepts_a_wrapped_function():
    stopper = CombinedStopper(FunctionStopper(lambda trial_id, result: result["loss"] < 0.5))
    assert decisions(stopper, losses(1.0, 0.4)) == [False, True]


# ------------------------------------------------------------------------ sweeps

def flattening(config):
    """``loss = 1 / min(step, floor_at)``: falls, then stays flat from ``floor_at`` on."""
    for step in range(1, config["n"] + 1):
        tune.report({"loss": 1.0 / min(step, config["floor_at"])})


def fit(tmp_path, stop, floor_at, **tune_kwargs):
    tuner = tune.Tuner(
        flattening,
        param_space={"floor_at": tune.grid_search(floor_at), "n": 40},
        tune_config=tune.TuneConfig(**tune_kwargs),
        run_config=tune.RunConfig(storage_path=str(tmp_path), name="exp", verbose=0, stop=stop),
    )
    return tuner.fit()


def reports_by_config(grid):
    return {r.config["floor_at"]: len(r.metrics_dataframe) for r in grid}


def test_sweep_trial_plateau_stopper_ends_each_trial_at_its_plateau(tmp_path):
    stopper = TrialPlateauStopper("loss", std=1e-9, num_results=3, grace_period=3)
    grid = fit(tmp_path, stopper, [2, 5, 8])
    # flat from floor_at on; three equal values end the trial two reports later
    assert reports_by_config(grid) == {2: 4, 5: 7, 8: 10}
    assert all(r.status == "TERMINATED" for r in grid)


def test_sweep_combined_stopper_ends_each_trial_at_the_first_criterion(tmp_path):
    stopper = CombinedStopper(MaximumIterationStopper(max_iter=6),
                              TrialPlateauStopper("loss", std=1e-9, num_results=3, grace_period=3))
    grid = fit(tmp_path, stopper, [2, 5, 8])
    # the plateau ends floor_at=2 at report 4; the iteration cap ends the others at 6
    assert reports_by_config(grid) == {2: 4, 5: 6, 8: 6}


def test_sweep_experiment_plateau_stopper_ends_the_sweep(tmp_path):
    stopper = ExperimentPlateauStopper("loss", std=1e-9, top=3, mode="min", patience=2)
    grid = fit(tmp_path, stopper, [1, 1, 1, 1], max_concurrent_trials=1)
    # loss is 1.0 from the start: plateaued after 3 results, the 2nd such result stops
    first = grid[0]
    assert first.status == "TERMINATED" and len(first.metrics_dataframe) == 4
    # no further trial ran (one may have been created ahead, waiting as PENDING)
    assert all(r.status == "PENDING" and not r.metrics for r in grid[1:])


def test_sweep_combined_stopper_passes_stop_all_on(tmp_path):
    stopper = CombinedStopper(NoopStopper(),
                              ExperimentPlateauStopper("loss", std=1e-9, top=2, patience=1))
    grid = fit(tmp_path, stopper, [1, 1, 1], max_concurrent_trials=1)
    assert len(grid[0].metrics_dataframe) == 2
    assert all(not r.metrics for r in grid[1:])


# ---------------------------------------------------------------- import paths

def test_ray_stopper_module_names_are_in_fastasha_stopper():
    assert set(RAY_STOPPER_NAMES) <= set(fastasha.stopper.__all__)
    for name in RAY_STOPPER_NAMES:
        assert issubclass(getattr(fastasha.stopper, name), fastasha.stopper.Stopper)


def test_ray_tune_submodule_paths_are_the_fastasha_modules():
    from fastasha.tune.schedulers import ASHAScheduler
    from fastasha.tune.search import grid_search
    from fastasha.tune.stopper import TrialPlateauStopper as FromTune

    assert FromTune is TrialPlateauStopper
    assert ASHAScheduler is fastasha.schedulers.AsyncHyperBandScheduler
    assert grid_search is fastasha.search.grid_search
    assert tune.stopper is fastasha.stopper
    assert tune.search is fastasha.search
    assert tune.schedulers is fastasha.schedulers
    assert sys.modules["fastasha.tune.stopper"] is fastasha.stopper
    assert tune.stopper.__spec__.name == "fastasha.stopper"    # its own spec, not the alias's
    assert {"schedulers", "search", "stopper", "Stopper"} <= set(tune.__all__)


def test_ray_tune_submodules_of_submodules_are_not_copies():
    import fastasha.tune.schedulers.async_hyperband as via_tune
    from fastasha.tune.search.sample import Domain

    import fastasha.schedulers.async_hyperband as direct
    assert via_tune is direct
    assert via_tune.AsyncHyperBandScheduler is fastasha.schedulers.AsyncHyperBandScheduler
    assert Domain is fastasha.search.Domain


def test_unknown_tune_submodules_are_not_found():
    with pytest.raises(ModuleNotFoundError, match="fastasha.tune.search.zoopt"):
        importlib.import_module("fastasha.tune.search.zoopt")
    with pytest.raises(ModuleNotFoundError, match="fastasha.tune.nothing"):
        importlib.import_module("fastasha.tune.nothing")
    with pytest.raises(AttributeError, match="has no attribute 'nothing'"):
        tune.nothing  # noqa: B018


def test_tune_submodule_paths_in_a_fresh_interpreter_and_still_lazy():
    # the first fastasha import of the process is a submodule path; plain
    # `import fastasha.tune` must still leave the schedulers and search unloaded
    code = (
        "import sys\n"
        "import fastasha.tune\n"
        "assert 'fastasha.schedulers' not in sys.modules, 'schedulers loaded early'\n"
        "assert 'fastasha.search' not in sys.modules, 'search loaded early'\n"
        "from fastasha.tune.schedulers import ASHAScheduler\n"
        "from fastasha.schedulers import AsyncHyperBandScheduler\n"
        "assert ASHAScheduler is AsyncHyperBandScheduler\n"
        "print('ok')\n"
    )
    first = "from fastasha.tune.stopper import TrialPlateauStopper; print('ok')"
    for source in (code, first):
        run = subprocess.run([sys.executable, "-c", source], capture_output=True, text=True,
                             timeout=60, check=False)
        assert run.returncode == 0, run.stderr
        assert run.stdout.strip() == "ok"


def test_the_older_stoppers_check_their_arguments_too():
    with pytest.raises(ValueError, match="max_iter must be at least 1"):
        MaximumIterationStopper(0)
    with pytest.raises(TypeError, match="max_iter"):
        MaximumIterationStopper("5")
    with pytest.raises(TypeError, match="needs a function"):
        FunctionStopper(5)


def sleeps_between_reports(config):
    tune.report({"loss": 1.0})
    time.sleep(config["sleep"])         # no report for a long while
    tune.report({"loss": 0.5})


def test_a_timeout_stopper_ends_the_sweep_on_time_even_without_reports(tmp_path):
    # Ray's loop asks stop_all() on every step, not only after a result
    started = time.monotonic()
    grid = tune.Tuner(sleeps_between_reports, param_space={"sleep": 30.0},
                      run_config=tune.RunConfig(stop=TimeoutStopper(1.0), verbose=0,
                                                storage_path=str(tmp_path)),
                      resources={"cpu": 1}).fit()
    assert time.monotonic() - started < 15
    assert grid[0].status == "TERMINATED" and grid[0].metrics["training_iteration"] == 1


def test_a_diverging_metric_does_not_break_the_plateau_stoppers():
    # (v - mean) ** 2 overflows for huge values; inf and -inf together make fsum raise
    stopper = TrialPlateauStopper("loss", num_results=3, grace_period=0)
    assert [stopper("t", {"loss": v}) for v in (1e60, 1e120, 1e200, 1e300)] == [False] * 4
    stopper = TrialPlateauStopper("loss", num_results=2, grace_period=0)
    assert [stopper("t", {"loss": v}) for v in (math.inf, -math.inf, 1.0)] == [False] * 3
    experiment = ExperimentPlateauStopper("loss", top=3, mode="max")
    for v in (1e200, 1e250, 1e300, -1e300):
        experiment("t", {"loss": v})
    assert experiment.stop_all() is False        # far from a plateau, and no error


class RaisesBeforeAnyResult(Stopper):
    def __init__(self):
        self.scores = []

    def __call__(self, trial_id, result):
        self.scores.append(result["loss"])
        return False

    def stop_all(self):
        return min(self.scores) < 0      # ValueError on an empty list


def test_a_stop_all_that_raises_between_results_does_not_end_the_sweep(tmp_path):
    with pytest.warns(RuntimeWarning, match=r"stop_all\(\) raised ValueError"):
        grid = tune.Tuner(sleeps_between_reports, param_space={"sleep": 0.1},
                          run_config=tune.RunConfig(stop=RaisesBeforeAnyResult(), verbose=0,
                                                    storage_path=str(tmp_path)),
                          resources={"cpu": 1}).fit()
    assert grid[0].status == "TERMINATED" and grid[0].metrics["training_iteration"] == 2
