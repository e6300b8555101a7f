"""Ray's ``config``, ``time_since_restore`` and ``iterations_since_restore`` during a run.

Ray's trainables put these fields in every result, so a stop criterion, a
stop function, a ``Stopper``, a scheduler and a callback can use them while
the sweep runs. They must hold there the values the results read back
afterwards hold, counted from the trial's latest start (a retry, or a resume
after a pause).
"""

from __future__ import annotations

import json

import live_objectives as lo
import pause_objectives as po
from test_review10_exec import run_user_script
import pytest

from fastasha import tune
from fastasha.callback import Callback
from fastasha.schedulers import FIFOScheduler
from fastasha.stopper import Stopper

SINCE = ("time_since_restore", "iterations_since_restore")


def _fit(tmp_path, objective, param_space, *, name="exp", scheduler=None, **run_kwargs):
    return tune.Tuner(
        objective, param_space=param_space,
        tune_config=tune.TuneConfig(scheduler=scheduler, max_concurrent_trials=2),
        run_config=tune.RunConfig(name=name, storage_path=str(tmp_path), verbose=0,
                                  **run_kwargs),
    ).fit()


def _column(result, key):
    return [row[key] for row in result.history()]


class Seen(Callback):
    """Records each result callbacks get, and ``trial.last_result`` then."""

    def __init__(self) -> None:
        self.results: dict = {}
        self.last_results: dict = {}

    def on_trial_result(self, iteration, trials, trial, result, **info):
        self.results.setdefault(trial.trial_id, []).append(result)
        self.last_results.setdefault(trial.trial_id, []).append(trial.last_result)


def test_stop_dict_on_iterations_since_restore_stops_each_trial(tmp_path):
    grid = _fit(tmp_path, lo.steps, {"x": tune.grid_search([1.0, 2.0]), "n": 20},
                stop={"iterations_since_restore": 5})
    for result in grid:
        assert result.error is None
        assert _column(result, "training_iteration") == [1, 2, 3, 4, 5]
        assert result.metrics["iterations_since_restore"] == 5


def test_stop_dict_on_iterations_since_restore_counts_from_the_retry(tmp_path):
    # the first attempt reports 1..3 and fails; the retry resumes from step 3's
    # checkpoint and must be stopped 5 reports later, at step 8 (not at 5, nor never)
    grid = _fit(tmp_path, lo.fails_once_then_resumes,
                {"x": 1.0, "n": 20, "fail_at": 4, "marker": str(tmp_path / "marker")},
                stop={"iterations_since_restore": 5},
                failure_config=tune.FailureConfig(max_failures=1))
    (result,) = grid
    assert result.error is None
    assert _column(result, "step") == list(range(1, 9))
    assert _column(result, "iterations_since_restore") == [1, 2, 3, 1, 2, 3, 4, 5]


def test_stop_dict_on_time_since_restore_stops_each_trial(tmp_path):
    grid = _fit(tmp_path, lo.steps, {"x": tune.grid_search([1.0, 2.0]), "n": 200,
                                     "sleep": 0.02},
                stop={"time_since_restore": 0.2})
    for result in grid:
        assert result.error is None
        times = _column(result, "time_since_restore")
        # stopped by the first result that met the criterion, far before step 200
        assert times[-1] >= 0.2
        assert all(t < 0.2 for t in times[:-1])
        assert len(times) < 100


def test_stop_function_reads_the_since_restore_fields_and_the_config(tmp_path):
    def stop(trial_id, result):
        return result["iterations_since_restore"] >= result["config"]["stop_at"] and \
            result["time_since_restore"] >= 0.0

    grid = _fit(tmp_path, lo.steps, {"x": 1.0, "n": 20,
                                     "stop_at": tune.grid_search([3, 6])}, stop=stop)
    for result in grid:
        assert result.error is None
        assert len(result.history()) == result.config["stop_at"]


def test_a_stopper_gets_what_the_results_read_back_hold(tmp_path):
    class Records(Stopper):
        def __init__(self) -> None:
            self.seen: dict = {}

        def __call__(self, trial_id, result):
            self.seen.setdefault(trial_id, []).append(
                (result["config"]["x"], *(result[key] for key in SINCE)))
            return False

        def stop_all(self):
            return False

    stopper = Records()
    grid = _fit(tmp_path, lo.steps, {"x": tune.grid_search([1.0, 2.0]), "n": 4},
                stop=stopper)
    for result in grid:
        read_back = [(result.config["x"], *(row[key] for key in SINCE))
                     for row in result.history()]
        assert stopper.seen[result.metrics["trial_id"]] == read_back


@pytest.mark.parametrize("how", ["retry", "pause"])
def test_callbacks_and_last_result_hold_the_read_back_values_from_each_restore(tmp_path, how):
    seen = Seen()
    if how == "retry":
        grid = _fit(tmp_path, lo.fails_once_then_resumes,
                    {"x": 1.0, "n": 6, "fail_at": 4, "marker": str(tmp_path / "marker"),
                     "sleep": 0.01},
                    callbacks=[seen], failure_config=tune.FailureConfig(max_failures=1))
    else:
        grid = _fit(tmp_path, po.stepper, {"x": tune.grid_search([1.0, 2.0])},
                    scheduler=po.PausesOnce(), callbacks=[seen])
    for result in grid:
        assert result.error is None
        history = result.history()
        assert [row["iterations_since_restore"] for row in history] == [1, 2, 3, 1, 2, 3]
        live = seen.results[result.metrics["trial_id"]]
        assert len(live) == len(history)
        for got, row in zip(live, history):
            for key in (*SINCE, "config", "training_iteration"):
                assert got[key] == row[key], key     # the same floats, to the bit
        for got, row in zip(seen.last_results[result.metrics["trial_id"]], history):
            assert {key: got[key] for key in (*SINCE, "config")} == \
                {key: row[key] for key in (*SINCE, "config")}


def test_a_scheduler_gets_the_since_restore_fields(tmp_path):
    class Hears(FIFOScheduler):
        def __init__(self) -> None:
            super().__init__()
            self.heard: list = []

        def on_trial_result(self, trial_id, result):
            self.heard.append(tuple(result[key] for key in SINCE))
            return self.CONTINUE

    scheduler = Hears()
    grid = _fit(tmp_path, lo.steps, {"x": 1.0, "n": 3}, scheduler=scheduler)
    (result,) = grid
    assert scheduler.heard == [tuple(row[key] for key in SINCE) for row in result.history()]


def test_a_reported_since_restore_value_wins(tmp_path):
    seen = Seen()
    grid = _fit(tmp_path, lo.reports_own_since, {"x": 1.0}, callbacks=[seen],
                stop={"iterations_since_restore": 100})
    (result,) = grid
    # its first report (100) met the criterion, and callbacks saw the value it reported
    assert [r["iterations_since_restore"] for r in seen.results[result.metrics["trial_id"]]] \
        == [100]
    assert _column(result, "iterations_since_restore") == [100]


# -- warnings of an objective defined in the user's script ---------------------------------

_SCRIPT = '''
import json
import sys
import warnings
from fastasha import tune

def helper(x):
    warnings.warn(f"careful with x={x}")    # line 8: where the warning must point

def objective(config, scale=1):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        helper(config["x"] * scale)
        inner = lambda: warnings.warn("from a lambda")    # line 14
        inner()
    warnings.warn("shown by the trial process")    # line 16
    tune.report({"loss": 1.0, "where": [f"{w.filename}:{w.lineno}" for w in caught]})

if __name__ == "__main__":
    for name, trainable in [("plain", objective),
                            ("wrapped", tune.with_parameters(objective, scale=2))]:
        grid = tune.Tuner(
            trainable, param_space={"x": 3},
            tune_config=tune.TuneConfig(metric="loss", mode="min"),
            run_config=tune.RunConfig(storage_path=sys.argv[1], name=name, verbose=0),
        ).fit()
        assert grid[0].error is None, grid[0].error
        print(json.dumps(grid[0].metrics["where"]))
'''


def test_warnings_of_an_objective_in_the_users_script_name_its_file_and_line(tmp_path):
    # joblib sends an objective of the user's script by value (cloudpickle), whose code
    # is then named "<dynamic-code>" (cloudpickle 3.1 and later): its warnings said
    # "<dynamic-code>:8" instead of the script's file and line.
    script = tmp_path / "my_sweep.py"
    out, err = run_user_script(script, _SCRIPT, tmp_path)
    lines = out.strip().splitlines()
    assert len(lines) == 2, out
    for line in lines:
        assert json.loads(line) == [f"{script}:8", f"{script}:14"]
    # and as the trial process prints it
    assert f"{script}:16: UserWarning: shown by the trial process" in err, err
    assert "<dynamic-code>" not in err
