"""Schedulers that pause trials: PAUSE ends the objective, the trial waits PAUSED, and
resumes from its latest checkpoint when the scheduler picks it (real loky sweeps)."""

from __future__ import annotations

import pytest

import pause_objectives as po
from fastasha import tune
from fastasha.callback import Callback
from fastasha.stopper import Stopper

IDS = ["x=1", "x=2", "x=3"]


def _fit(tmp_path, objective, scheduler, *, name="exp", slots=1, callbacks=None, stop=None,
         grid=(1.0, 2.0, 3.0)):
    return tune.Tuner(
        objective, param_space={"x": tune.grid_search(list(grid))},
        tune_config=tune.TuneConfig(scheduler=scheduler, max_concurrent_trials=slots),
        run_config=tune.RunConfig(name=name, storage_path=str(tmp_path), verbose=0,
                                  callbacks=callbacks, stop=stop),
    ).fit()


def _history(result, key):
    return [row[key] for row in result.metrics_dataframe.to_dict("records")]


def test_paused_trials_resume_from_their_checkpoint_with_iterations_counting_on(tmp_path):
    scheduler = po.PausesOnce()
    grid = _fit(tmp_path, po.stepper, scheduler)
    assert [r.status for r in grid] == ["TERMINATED"] * 3
    assert grid.num_errors == 0
    for result in grid:
        # one row per step, no step lost or repeated: the checkpoint of the result that
        # was answered PAUSE is the one the trial restarts from
        assert _history(result, "training_iteration") == list(range(1, po.N_STEPS + 1))
        assert _history(result, "step") == list(range(1, po.N_STEPS + 1))
        assert _history(result, "starts") == [1] * po.PAUSE_AT + [2] * (po.N_STEPS - po.PAUSE_AT)
        assert _history(result, "resumed") == [False] * po.PAUSE_AT + \
            [True] * (po.N_STEPS - po.PAUSE_AT)
        assert result.checkpoint is not None
    # one slot, FIFO: the PENDING trials run first, then the paused ones (created first
    # first, here also the order they paused in)
    ids = [r.metrics["trial_id"] for r in grid]
    expected = [(t, i) for t in ids for i in range(1, po.PAUSE_AT + 1)] + \
        [(t, i) for t in ids for i in range(po.PAUSE_AT + 1, po.N_STEPS + 1)]
    assert scheduler.heard == expected


def test_choose_trial_to_run_of_the_scheduler_picks_the_paused_trial(tmp_path):
    scheduler = po.LastPausedFirst()
    grid = _fit(tmp_path, po.stepper, scheduler)
    assert [r.status for r in grid] == ["TERMINATED"] * 3
    ids = [r.metrics["trial_id"] for r in grid]
    resumed = [t for t, i in scheduler.heard if i == po.PAUSE_AT + 1]
    assert resumed == ids[::-1]
    # a paused trial runs to its end once resumed (one slot)
    after = scheduler.heard[3 * po.PAUSE_AT:]
    assert [t for t, _ in after] == [t for t in ids[::-1] for _ in range(po.N_STEPS - po.PAUSE_AT)]


def test_a_trial_paused_without_a_checkpoint_starts_again_from_scratch(tmp_path):
    grid = _fit(tmp_path, po.no_checkpoints, po.PausesOnce(), grid=(1.0, 2.0))
    for result in grid:
        assert result.status == "TERMINATED"
        steps = list(range(1, po.PAUSE_AT + 1)) + list(range(1, po.N_STEPS + 1))
        assert _history(result, "step") == steps
        assert _history(result, "training_iteration") == steps
        assert result.metrics["training_iteration"] == po.N_STEPS


class _StopWhenPaused(Stopper):
    """Stops the sweep once the three trials reached their pause: they stay PAUSED."""

    def __init__(self):
        self.paused = set()

    def __call__(self, trial_id, result):
        if result["training_iteration"] == po.PAUSE_AT:
            self.paused.add(trial_id)
        return False

    def stop_all(self):
        return len(self.paused) >= 3


class _Statuses(Callback):
    def __init__(self):
        self.starts = []

    def on_trial_start(self, iteration, trials, trial, **info):
        self.starts.append(trial.trial_id)


def test_paused_trials_stay_paused_when_the_sweep_stops_and_restore_resumes_them(tmp_path):
    grid = _fit(tmp_path, po.stepper, po.PausesOnce(), stop=_StopWhenPaused())
    # the last one was paused by the result that stopped the sweep: paused all the same
    assert [r.status for r in grid] == ["PAUSED"] * 3
    for result in grid:
        assert result.metrics["training_iteration"] == po.PAUSE_AT
        assert result.checkpoint is not None
    assert grid.num_terminated == 0 and grid.num_errors == 0
    # restored, the paused trials run on from their checkpoints (a fresh scheduler, which
    # pauses nothing it paused before: it hears only the new results)
    restored = tune.Tuner.restore(str(tmp_path / "exp"), po.stepper,
                                  scheduler=po.PausesOnce(pause_at=0)).fit()
    for after in restored:
        assert after.status == "TERMINATED"
        assert _history(after, "step") == list(range(1, po.N_STEPS + 1))
        assert _history(after, "training_iteration") == list(range(1, po.N_STEPS + 1))
        assert _history(after, "starts")[-1] == 2


def test_restore_after_the_driver_is_killed_with_paused_trials(tmp_path):
    marker = tmp_path / "resumed"
    # the driver commits in the background: it is killed once the file holds the resume
    # (the first trial sleeps in its step meanwhile)
    po.kill_when(po.__file__, [tmp_path, "killed", marker], lambda: marker.exists() and
                 po.statuses(tmp_path / "killed") == ["RUNNING", "PAUSED", "PAUSED"],
                 "the first trial resumed, and the file saying so")
    assert po.statuses(tmp_path / "killed") == ["RUNNING", "PAUSED", "PAUSED"]
    grid = tune.Tuner.restore(str(tmp_path / "killed"), po.stepper,
                              scheduler=po.PausesOnce(pause_at=0)).fit()
    assert [r.status for r in grid] == ["TERMINATED"] * 3
    for result in grid:
        assert result.metrics["step"] == po.N_STEPS
        # every step once up to the pause, then on from the checkpoint of step 3 (the first
        # trial's step 4 was never reported: it was killed before)
        steps = _history(result, "step")
        assert steps == list(range(1, po.N_STEPS + 1))
        assert _history(result, "starts")[-1] == 2


def test_a_pause_is_not_a_failure_and_callbacks_see_each_start(tmp_path):
    calls = _Statuses()
    grid = _fit(tmp_path, po.stepper, po.PausesOnce(), callbacks=[calls], slots=2)
    assert all(r.error is None and r.status == "TERMINATED" for r in grid)
    ids = [r.metrics["trial_id"] for r in grid]
    # each trial started twice: once fresh, once resumed
    assert sorted(calls.starts) == sorted(ids * 2)
    assert all(r.metrics["starts"] == 2 for r in grid)


def test_choose_trial_to_run_returning_a_wrong_trial_says_what_it_must_return(tmp_path):
    class Wrong(po.PausesOnce):
        def choose_trial_to_run(self, tune_controller):
            return "trial_00000"

    with pytest.raises(Exception, match="choose_trial_to_run returned 'trial_00000'.*PENDING "
                                        "or PAUSED"):
        _fit(tmp_path, po.stepper, Wrong())


class _FirstPausesTwice(po.PausesOnce):
    """The first trial pauses at iterations 2 and 4, the others at iteration 1."""

    def __init__(self):
        super().__init__()
        self.order: list = []

    def on_trial_add(self, trial_id, bracket=None):
        self.order.append(trial_id)
        return 0

    def on_trial_result(self, trial_id, result):
        iteration = result["training_iteration"]
        self.heard.append((trial_id, iteration))
        first = trial_id == self.order[0]
        if (iteration in (2, 4) if first else iteration == 1) and \
                (trial_id, iteration) not in self.paused:
            self.paused.add((trial_id, iteration))
            return self.PAUSE
        return self.CONTINUE


def test_without_choose_trial_to_run_paused_trials_resume_in_the_order_they_were_created(
        tmp_path):
    # as Ray's FIFOScheduler: with no trial waiting to start, the paused trial created
    # first resumes first. One slot: the first trial pauses at 2, the others at 1, and
    # once resumed the first pauses again at 4, after the others: it is still the one
    # to resume first, at once (in the order of the pauses, the second trial would)
    scheduler = _FirstPausesTwice()
    grid = _fit(tmp_path, po.stepper, scheduler)
    assert [r.status for r in grid] == ["TERMINATED"] * 3
    a, b, c = scheduler.order
    assert scheduler.heard == [(a, 1), (a, 2), (b, 1), (c, 1)] + [
        (t, i) for t in (a, b, c) for i in range(3 if t == a else 2, po.N_STEPS + 1)]
    by_id = {r.metrics["trial_id"]: r for r in grid}
    assert _history(by_id[a], "starts") == [1, 1, 2, 2, 3, 3]
    for result in grid:
        assert _history(result, "step") == list(range(1, po.N_STEPS + 1))


def test_a_paused_class_trainable_saves_its_state_and_resumes_from_it(tmp_path):
    # as Ray, which saves a Trainable it pauses: without any checkpoint_frequency the
    # trial resumes from the step it was paused at, set up once more
    grid = _fit(tmp_path, po.CountingTrainable, po.PausesOnce())
    assert [r.status for r in grid] == ["TERMINATED"] * 3 and not grid.errors
    for result in grid:
        assert _history(result, "steps") == list(range(1, po.N_STEPS + 1))
        assert _history(result, "training_iteration") == list(range(1, po.N_STEPS + 1))
        assert _history(result, "setups") == [1] * po.PAUSE_AT + [2] * (po.N_STEPS - po.PAUSE_AT)


def test_a_paused_class_trainable_that_cannot_save_starts_again(tmp_path):
    # (Ray's would fail on the save; it has no state to resume from here, and starts anew)
    grid = _fit(tmp_path, po.CountingWithoutSave, po.PausesOnce())
    assert [r.status for r in grid] == ["TERMINATED"] * 3 and not grid.errors
    for result in grid:
        assert _history(result, "steps") == [1, 2, 3, 1, 2, 3, 4, 5, 6]
        assert _history(result, "setups") == [1] * 9


class _StopsTheFirstPausedOnce(po.PausesOnce):
    """Once no trial is PENDING, stops the paused trial created first and chooses none."""

    def __init__(self):
        super().__init__()
        self.stopped = None

    def choose_trial_to_run(self, tune_controller):
        pending, paused = po.pending_or_paused(tune_controller)
        if pending is not None:
            return pending
        if paused and self.stopped is None:
            self.stopped = paused[0].trial_id
            tune_controller.stop_trial(paused[0])
            return None
        return paused[0] if paused else None


def test_a_trial_stopped_by_choose_trial_to_run_is_not_the_one_started_instead(tmp_path):
    # one slot: both trials pause at 3; the scheduler then stops the first and chooses
    # none while nothing runs, so a waiting trial starts all the same (with a warning):
    # the second, not the first, picked before the call and stopped by it
    scheduler = _StopsTheFirstPausedOnce()
    with pytest.warns(RuntimeWarning, match="chose no trial while none was running"):
        grid = _fit(tmp_path, po.stepper, scheduler, grid=(1.0, 2.0))
    by_id = {r.metrics["trial_id"]: r for r in grid}
    first, second = sorted(by_id)
    assert scheduler.stopped == first
    assert [r.status for r in grid] == ["TERMINATED", "TERMINATED"]
    assert _history(by_id[first], "step") == list(range(1, po.PAUSE_AT + 1))
    assert _history(by_id[second], "step") == list(range(1, po.N_STEPS + 1))
    assert [t for t, _ in scheduler.heard].count(first) == po.PAUSE_AT
