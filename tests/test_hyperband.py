"""HyperBandScheduler (synchronous HyperBand): brackets pause their trials at each
milestone and halve once all have reached it (real loky sweeps)."""

from __future__ import annotations

import pytest

import pause_objectives as po
from fastasha import tune
from fastasha.schedulers import HyperBandScheduler, create_scheduler

XS = [float(i) for i in range(1, 11)]


class _Recording(HyperBandScheduler):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.heard = []

    def on_trial_result(self, tune_controller, trial, result):
        decision = super().on_trial_result(tune_controller, trial, result)
        self.heard.append((trial.trial_id, result["training_iteration"], str(decision)))
        return decision


def _fit(tmp_path, scheduler, *, name="hb", slots=2, stop=None, xs=XS):
    return tune.Tuner(
        po.stepper, param_space={"x": tune.grid_search(list(xs)), "n_steps": 4},
        tune_config=tune.TuneConfig(scheduler=scheduler, metric="loss", mode="min",
                                    max_concurrent_trials=slots),
        run_config=tune.RunConfig(name=name, storage_path=str(tmp_path), verbose=0, stop=stop),
    ).fit()


def _steps(result):
    return [row["step"] for row in result.metrics_dataframe.to_dict("records")]


def test_brackets_pause_at_their_milestones_and_keep_the_best(tmp_path):
    # max_t=4, rf=2: 3 brackets (s_max+1 = 3) of 3, 3 and 4 trials, first milestones 4, 2, 1
    scheduler = _Recording(max_t=4, reduction_factor=2)
    grid = _fit(tmp_path, scheduler)
    assert [r.status for r in grid] == ["TERMINATED"] * 10 and grid.num_errors == 0
    reached = {r.config["x"]: r.metrics["training_iteration"] for r in grid}
    # loss = x / step: a smaller x is better. Bracket 0 (x 1-3) runs to max_t; bracket 1
    # (x 4-6) keeps 2 of 3 at 2; bracket 2 (x 7-10) keeps 2 of 4 at 1, then 1 of 2 at 2
    assert reached == {1.0: 4, 2.0: 4, 3.0: 4, 4.0: 4, 5.0: 4, 6.0: 2, 7.0: 4, 8.0: 2,
                       9.0: 1, 10.0: 1}
    for result in grid:
        # a paused trial went on from its checkpoint: every step once
        assert _steps(result) == list(range(1, reached[result.config["x"]] + 1))
    paused = {(t, i) for t, i, d in scheduler.heard if d == "PAUSE"}
    by_x = {r.config["x"]: r.metrics["trial_id"] for r in grid}
    # in bracket 2, each trial paused at milestone 1 but the last one to reach it
    assert sum(1 for x in (7.0, 8.0, 9.0, 10.0) if (by_x[x], 1) in paused) >= 2
    assert "num_stopped=4" in scheduler.debug_string()


def test_stop_last_trials_false_lets_the_best_run_on(tmp_path):
    scheduler = HyperBandScheduler(max_t=2, reduction_factor=2, stop_last_trials=False)
    # max_t=2, rf=2: brackets of 2 (r=2) and 2 (r=1) trials; n_steps 4 lets them run on
    grid = _fit(tmp_path, scheduler, xs=[1.0, 2.0, 3.0, 4.0])
    reached = {r.config["x"]: r.metrics["training_iteration"] for r in grid}
    assert reached[1.0] == reached[2.0] == 4          # bracket 0 never stops its trials
    assert sorted([reached[3.0], reached[4.0]]) == [1, 4]   # one halving, then runs on


def test_restore_continues_the_brackets(tmp_path):
    grid = _fit(tmp_path, HyperBandScheduler(max_t=4, reduction_factor=2), slots=1,
                stop=po.StopAllAfter(14))
    assert any(r.status == "PAUSED" for r in grid)
    restored = tune.Tuner.restore(str(tmp_path / "hb"), po.stepper,
                                  scheduler=HyperBandScheduler(max_t=4, reduction_factor=2)
                                  ).fit()
    reached = {r.config["x"]: r.metrics["training_iteration"] for r in restored}
    assert [r.status for r in restored] == ["TERMINATED"] * 10
    assert reached == {1.0: 4, 2.0: 4, 3.0: 4, 4.0: 4, 5.0: 4, 6.0: 2, 7.0: 4, 8.0: 2,
                       9.0: 1, 10.0: 1}


def test_create_scheduler_hyperband():
    hb = create_scheduler("hyperband", metric="loss", mode="min", max_t=27)
    assert isinstance(hb, HyperBandScheduler)
    assert hb.max_t == 27 and hb.reduction_factor == 3 and hb.time_attr == "training_iteration"


@pytest.mark.parametrize("kwargs, error, match", [
    ({"max_t": 0}, ValueError, "max_t must be > 0"),
    ({"max_t": "9"}, TypeError, "max_t must be a number"),
    ({"reduction_factor": 1}, ValueError, "reduction_factor must be > 1"),
    ({"stop_last_trials": 1}, TypeError, "stop_last_trials must be True or False"),
    ({"mode": "up"}, ValueError, "mode"),
    ({"time_attr": None}, TypeError, "time_attr"),
])
def test_bad_arguments_say_what_to_do(kwargs, error, match):
    with pytest.raises(error, match=match):
        HyperBandScheduler(**kwargs)
