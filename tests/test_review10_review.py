"""Defects found reviewing the change since d1ca043 (callback states, Ray-style scheduler
hooks, the per-process session, ...); each test failed before its fix.

The objectives are defined here, at module level: the worker processes import them
from this module (pytest puts ``tests/`` on the path, and loky passes it on).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import joblib
import pytest

from fastasha import tune

# -- a thread left running by one trial, in a process that runs the next one ----------------

# (module state of the trial process, shared by the trials it runs one after another)
_next_trial_started = threading.Event()
_stray: dict = {}


def _stray_reporter() -> None:
    """Started by trial 0, left running: reports once trial 1 runs in the same process."""
    _next_trial_started.wait(30)
    try:
        tune.report({"loss": 999.0, "stray": True})
        _stray["outcome"] = "reported"
    except BaseException as err:   # noqa: BLE001 - what the thread got is the finding
        _stray["outcome"] = type(err).__name__


def leaves_a_thread_behind(config):
    if config["i"] == 0:
        thread = threading.Thread(target=_stray_reporter, daemon=True)
        _stray["thread"] = thread
        thread.start()
        tune.report({"loss": 0.0, "pid": os.getpid()})
        return
    _next_trial_started.set()
    thread = _stray.get("thread")
    if thread is not None:
        thread.join(30)
    for i in range(3):
        tune.report({"loss": float(i), "pid": os.getpid(),
                     "stray_outcome": _stray.get("outcome", "no stray thread here")})


@pytest.mark.parametrize("backend", ["loky", "threading"])
def test_a_thread_left_by_one_trial_does_not_report_into_the_next(tmp_path, backend):
    # A trial process runs its trials one after another; a thread the objective
    # starts reports for its trial, through the session the process holds. A thread
    # trial 0 left running saw that session too once trial 1 held it: its reports went
    # into trial 1 (extra rows, the metrics of another config). It is not trial 1's
    # thread (it was running when trial 1 started): its report fails as outside a trial.
    with joblib.parallel_config(backend=backend, n_jobs=1):
        grid = tune.Tuner(
            leaves_a_thread_behind, param_space={"i": tune.grid_search([0, 1])},
            tune_config=tune.TuneConfig(metric="loss", mode="min", max_concurrent_trials=1),
            run_config=tune.RunConfig(storage_path=str(tmp_path), name="exp", verbose=0),
        ).fit()
    by_i = {r.config["i"]: r for r in grid}
    assert all(r.error is None for r in grid), [r.error for r in grid]
    assert by_i[0].metrics["pid"] == by_i[1].metrics["pid"]     # (else nothing is tested)
    second = by_i[1]
    assert second.metrics["stray_outcome"] == "RuntimeError"
    frame = second.metrics_dataframe
    assert len(frame) == 3
    assert "stray" not in frame.columns


# -- which form a scheduler's hooks take ------------------------------------------------------

from fastasha.schedulers import FIFOScheduler, TrialScheduler  # noqa: E402

import objectives  # noqa: E402


class _Recording(FIFOScheduler):
    """Stops trials whose x is 2 at their second result; records what it was told."""

    def __init__(self):
        super().__init__()
        self.calls: list[tuple] = []

    def _judge(self, trial, result):
        self.calls.append(("result", trial.trial_id, result["training_iteration"]))
        if trial.config["x"] == 2 and result["training_iteration"] >= 2:
            return TrialScheduler.STOP
        return TrialScheduler.CONTINUE


class RayResultWithDefault(_Recording):
    def on_trial_result(self, tune_controller, trial, result=None):
        return self._judge(trial, result)

    def on_trial_complete(self, tune_controller, trial, result=None):
        self.calls.append(("complete", trial.trial_id))


class RayResultWithArgs(_Recording):
    def on_trial_result(self, tune_controller, trial, result, *args):
        return self._judge(trial, result)

    def on_trial_complete(self, tune_controller, trial, *args):
        self.calls.append(("complete", trial.trial_id))


class RayResultWithKwargs(_Recording):
    def on_trial_result(self, tune_controller, trial, result, **kwargs):
        return self._judge(trial, result)

    def on_trial_complete(self, tune_controller, trial, result, **kwargs):
        self.calls.append(("complete", trial.trial_id))


class RayOldNames(_Recording):
    """Ray before 2.5 named the first argument trial_runner."""

    def on_trial_result(self, trial_runner, trial, result=None):
        return self._judge(trial, result)

    def on_trial_complete(self, trial_runner, trial, result=None):
        self.calls.append(("complete", trial.trial_id))


class RayCallsSuper(_Recording):
    """Ray's own custom schedulers end their hooks with the base class's."""

    def on_trial_add(self, tune_controller, trial):
        super().on_trial_add(tune_controller, trial)

    def on_trial_result(self, tune_controller, trial, result):
        decision = self._judge(trial, result)
        if decision == TrialScheduler.STOP:
            return decision
        return super().on_trial_result(tune_controller, trial, result)

    def on_trial_complete(self, tune_controller, trial, result):
        self.calls.append(("complete", trial.trial_id))
        super().on_trial_complete(tune_controller, trial, result)

    def on_trial_error(self, tune_controller, trial):
        super().on_trial_error(tune_controller, trial)

    def on_trial_remove(self, tune_controller, trial):
        super().on_trial_remove(tune_controller, trial)


class FastashaWithDefault(_Recording):
    """fastasha's own form, with an argument of its own that has a default: stays so."""

    def on_trial_result(self, trial_id, result, extra=None):
        assert extra is None
        self.calls.append(("result", trial_id, result["training_iteration"]))
        if result["loss"] == 2 * result["training_iteration"] and \
                result["training_iteration"] >= 2:
            return TrialScheduler.STOP
        return TrialScheduler.CONTINUE

    def on_trial_complete(self, trial_id, result, *args):
        self.calls.append(("complete", trial_id))


@pytest.mark.parametrize("cls", [RayResultWithDefault, RayResultWithArgs, RayResultWithKwargs,
                                 RayOldNames, RayCallsSuper, FastashaWithDefault],
                         ids=lambda cls: cls.__name__)
def test_a_hook_in_rays_form_is_told_so_by_its_names_not_only_its_count(tmp_path, cls):
    # The form of a hook was read from the number of positional arguments it requires:
    # one of Ray's form with a default (result=None) or *args was taken for fastasha's
    # and called with (trial_id, result): the trial id in the place of the controller,
    # the result in that of the trial (the trials failed with AttributeError "'dict'
    # object has no attribute 'trial_id'"), or TypeError "missing 1 required positional
    # argument: 'result'". A hook of Ray's form that ended with the base class's
    # (super().on_trial_result(tune_controller, trial, result)) failed with TypeError
    # "takes 3 positional arguments but 4 were given".
    scheduler = cls()
    grid = tune.Tuner(objectives.steps, param_space={"n": 4, "x": tune.grid_search([1, 2])},
                      tune_config=tune.TuneConfig(scheduler=scheduler),
                      run_config=tune.RunConfig(storage_path=str(tmp_path), name="exp",
                                                verbose=0)).fit()
    assert grid.num_errors == 0, [r.error for r in grid]
    iterations = {r.config["x"]: r.metrics["training_iteration"] for r in grid}
    assert iterations == {1: 4, 2: 2}
    ids = {r.config["x"]: r.metrics["trial_id"] for r in grid}
    results = sorted(c[1:] for c in scheduler.calls if c[0] == "result")
    assert results == sorted([(ids[1], i) for i in (1, 2, 3, 4)] + [(ids[2], i) for i in (1, 2)])
    assert sorted(c[1] for c in scheduler.calls if c[0] == "complete") == sorted(ids.values())


class RayErrorCallsSuper(RayCallsSuper):
    def __init__(self):
        super().__init__()
        self.removed: list[str] = []

    def on_trial_remove(self, tune_controller, trial):
        self.removed.append(trial.config["x"])
        super().on_trial_remove(tune_controller, trial)


def test_a_ray_form_error_hook_that_calls_the_base_class_reaches_on_trial_remove(tmp_path):
    # super().on_trial_error(tune_controller, trial) raised TypeError in the driver,
    # which ended the sweep
    scheduler = RayErrorCallsSuper()
    grid = tune.Tuner(objectives.fails_for,
                      param_space={"bad": 3, "x": tune.grid_search([1, 3])},
                      tune_config=tune.TuneConfig(scheduler=scheduler),
                      run_config=tune.RunConfig(storage_path=str(tmp_path), name="exp",
                                                verbose=0)).fit()
    assert sorted(r.error is not None for r in grid) == [False, True]
    assert "boom at x=3" in str(next(r.error for r in grid if r.error))
    assert scheduler.removed == [3]


# -- callback states JSON cannot keep ---------------------------------------------------------

import numpy as np  # noqa: E402
import warnings  # noqa: E402


class ArrayState(tune.Callback):
    """Its whole state is an array (Ray's get_state may return any object)."""

    def __init__(self):
        self.counts = np.zeros(2)
        self.given = None

    def on_trial_result(self, iteration, trials, trial, result, **info):
        self.counts[0] += 1

    def get_state(self):
        return self.counts

    def set_state(self, state):
        self.given = state


class CyclicState(tune.Callback):
    """A state that holds itself."""

    def __init__(self):
        self.given = None

    def get_state(self):
        state = {"n": 1}
        state["self"] = state
        return state

    def set_state(self, state):
        self.given = state


class EmptyState(tune.Callback):
    def __init__(self):
        self.given = "never"

    def get_state(self):
        return np.zeros(0).tolist()    # an empty list: nothing to save, nothing said

    def set_state(self, state):
        self.given = state


@pytest.mark.parametrize("cls, words", [(ArrayState, "ndarray cannot be kept as JSON"),
                                         (CyclicState, "holds itself")],
                         ids=["array", "cycle"])
def test_a_callback_state_json_cannot_keep_warns_and_the_sweep_runs(tmp_path, cls, words):
    # The module docstring: "a state with anything else (an array, an object, ...) is
    # not saved, with a warning". A state that was an array ended the sweep with
    # ValueError "The truth value of an array ... is ambiguous" (from `if state:`), one
    # that held itself with RecursionError, both raised by fit() while trials ran.
    callback = cls()
    with pytest.warns(UserWarning, match=f"callback {cls.__name__} cannot be saved.*{words}"):
        grid = tune.Tuner(objectives.steps, param_space={"n": 3, "x": tune.grid_search([1, 2])},
                          tune_config=tune.TuneConfig(metric="loss", mode="min"),
                          run_config=tune.RunConfig(storage_path=str(tmp_path), name="exp",
                                                    verbose=0, callbacks=[callback])).fit()
    assert grid.num_errors == 0 and grid.num_terminated == 2
    fresh, empty = cls(), EmptyState()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tune.Tuner.restore(grid.experiment_path, objectives.steps,
                           callbacks=[fresh, empty]).fit()
    assert fresh.given is None           # nothing was saved, nothing is given back
    assert empty.given == "never"


class StatelessRayAdds(FIFOScheduler):
    """A Ray-form on_trial_add, on a scheduler that says it keeps no state."""

    stateless = True

    def __init__(self):
        super().__init__()
        self.added: list[str] = []

    def on_trial_add(self, tune_controller, trial):
        self.added.append(trial.trial_id)


def test_a_restore_registers_trials_with_a_stateless_ray_form_scheduler_in_its_form(tmp_path):
    # The restore of a sweep whose scheduler says it is stateless registers the trials
    # with on_trial_add(trial_id) directly, not through the sweep's call in the hook's
    # form: TypeError "missing 1 required positional argument: 'trial'" from
    # Tuner.restore(...).fit()
    first = StatelessRayAdds()
    grid = tune.Tuner(objectives.steps, param_space={"n": 2, "x": tune.grid_search([1, 2])},
                      tune_config=tune.TuneConfig(scheduler=first),
                      run_config=tune.RunConfig(storage_path=str(tmp_path), name="exp",
                                                verbose=0)).fit()
    again = StatelessRayAdds()
    restored = tune.Tuner.restore(grid.experiment_path, objectives.steps, scheduler=again).fit()
    assert restored.num_terminated == 2
    assert sorted(again.added) == sorted(first.added) == sorted(r.trial_id for r in grid)


# -- CheckpointConfig(num_to_keep) with a numpy score ----------------------------------------


def checkpoints_with_numpy_losses(config):
    """Four checkpoints; the second has the best loss, reported as a numpy scalar."""
    import tempfile

    for step, loss in enumerate([5.0, 1.0, 4.0, 3.0]):
        with tempfile.TemporaryDirectory() as folder:
            with open(os.path.join(folder, "step"), "w") as f:
                f.write(str(step))
            tune.report({"loss": np.dtype(config["dtype"]).type(loss)},
                        checkpoint=tune.Checkpoint.from_directory(folder))


def test_num_to_keep_keeps_the_best_checkpoint_when_the_score_is_a_numpy_scalar(tmp_path):
    # The rank of a checkpoint took only int and float scores as numbers: a score
    # reported as numpy.float32 or numpy.int32 (a torch loss's .item() is a float, its
    # .numpy() is not) ranked as no score at all, so num_to_keep=1 kept only the
    # latest checkpoint and deleted the best one (step 1 here) from the disk.
    grid = tune.Tuner(
        checkpoints_with_numpy_losses,
        param_space={"dtype": tune.grid_search(["float64", "float32", "int32"])},
        tune_config=tune.TuneConfig(metric="loss", mode="min"),
        run_config=tune.RunConfig(
            storage_path=str(tmp_path), name="exp", verbose=0,
            checkpoint_config=tune.CheckpointConfig(
                num_to_keep=1, checkpoint_score_attribute="loss",
                checkpoint_score_order="min")),
    ).fit()
    for result in grid:
        assert result.error is None, result.error
        kept = []
        for name in os.listdir(result.path):
            if name.startswith("checkpoint_"):
                with open(os.path.join(result.path, name, "step")) as f:
                    kept.append(f.read())
        assert sorted(kept) == ["1", "3"], (result.config, kept)    # the best, the latest
        # Ray's best_checkpoints: the num_to_keep best only (the latest is Result.checkpoint)
        best = [Path(c.path, "step").read_text() for c, _ in result.best_checkpoints]
        assert best == ["1"], (result.config, best)
