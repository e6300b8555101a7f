"""PopulationBasedTraining(synch=True): the population moves from one perturbation point
to the next in step, and is ranked as a whole at each (real loky sweeps, 1 and 2 slots).

The objective (tests/pbt_synch_objectives.py) appends every step it runs to a log file
shared by the sweep, so the tests see the order the trials really ran in, not only what
the driver heard.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

import pause_objectives as po
import pbt_synch_objectives as so
from test_pbt import _Recording
from fastasha import tune
from fastasha.schedulers import PopulationBasedTraining

RATES = [0.5, 1.0, 2.0, 4.0]
MUTATIONS = [0.5, 1.0, 2.0, 4.0, 8.0]
N_STEPS = 12
INTERVAL = 3
POINTS = [3, 6, 9, 12]


def _pbt(**kwargs):
    args = dict(time_attr="training_iteration", perturbation_interval=INTERVAL,
                hyperparam_mutations={"rate": MUTATIONS}, quantile_fraction=0.25,
                resample_probability=0.25, synch=True)
    args.update(kwargs)
    return PopulationBasedTraining(**args)


def _space(tmp_path, name, rates=RATES, slots=1, **extra):
    # (on two slots each step takes a little while, so that the trials' steps interleave)
    return {"rate": tune.grid_search(list(rates)), "n_steps": N_STEPS,
            "log": str(tmp_path / f"{name}.log"), "sleep": 0.01 if slots > 1 else 0.0,
            **extra}


def _fit(tmp_path, scheduler, *, name="sync", slots=1, rates=RATES, stop=None, seed=3,
         **extra):
    return tune.Tuner(
        so.logged_accumulator,
        param_space=_space(tmp_path, name, rates, slots, **extra),
        tune_config=tune.TuneConfig(scheduler=scheduler, metric="total", mode="max",
                                    seed=seed, max_concurrent_trials=slots),
        run_config=tune.RunConfig(name=name, storage_path=str(tmp_path), verbose=0,
                                  stop=stop),
    ).fit()


def _log(tmp_path, name="sync"):
    """The steps the trials ran, in the order they ran them: [(index, step, total)]."""
    with open(tmp_path / f"{name}.log") as f:
        return [tuple(json.loads(line)) for line in f]


def _exploits(tmp_path, name="sync"):
    path = tmp_path / name / "pbt_global.txt"
    if not path.exists():
        return []
    with open(path) as f:
        return [json.loads(line) for line in f]


def _index(tag: str) -> int:
    """The trial index of a PBT log tag ("<index>_rate=...")."""
    return int(tag.split("_", 1)[0])


def _check_in_step(log, points):
    """No trial runs a step past a perturbation point before every trial has reached that
    point or ended; each trial runs each of its steps once, in order."""
    last = {}
    for index, step, _ in log:
        assert step == last.get(index, 0) + 1, (index, step, last)
        last[index] = step
    seen = set()
    for index, step, _ in log:
        passed = [p for p in points if p < step]
        if passed:
            point = passed[-1]
            for other, end in last.items():
                assert (other, min(point, end)) in seen, (
                    f"trial {index} ran step {step} before trial {other} reached step "
                    f"{min(point, end)}")
        seen.add((index, step))
    return last


def _n_quantile(n_ranked, fraction=0.25):
    if n_ranked <= 1:
        return 0
    return min(math.ceil(n_ranked * fraction), n_ranked // 2)


def _check_quantile_exploits(log, exploits, points, fraction=0.25, values=MUTATIONS):
    """At each point the trials that reached it are ranked together: the bottom quantile
    exploits the top one, all at that point, and every exploiter goes on from its donor's
    total with its new rate. Returns the number of exploits."""
    totals = {(index, step): total for index, step, total in log}
    for exploit in exploits:
        assert exploit[2] == exploit[3] and exploit[2] in points, exploit
    for point in points:
        ranked = {index: total for (index, step), total in totals.items() if step == point}
        at_point = [e for e in exploits if e[2] == point]
        assert len(at_point) == _n_quantile(len(ranked), fraction), (point, ranked, at_point)
        exploiters = {_index(e[0]) for e in at_point}
        assert len(exploiters) == len(at_point)
        others = [v for k, v in ranked.items() if k not in exploiters]
        for exploit in at_point:
            me, donor = _index(exploit[0]), _index(exploit[1])
            assert ranked[me] <= min(others)
            # the donor is in the top quantile: fewer than that many trials did better
            assert sum(1 for v in ranked.values() if v > ranked[donor]) < len(at_point)
            assert exploit[5]["rate"] in values
            if (me, point + 1) in totals:
                assert totals[me, point + 1] == pytest.approx(
                    ranked[donor] + exploit[5]["rate"])
    return len(exploits)


@pytest.mark.parametrize("slots", [1, 2])
def test_no_trial_runs_past_a_point_before_the_whole_population_reaches_it(tmp_path, slots):
    grid = _fit(tmp_path, _pbt(), slots=slots)
    assert grid.num_errors == 0
    assert [r.status for r in grid] == ["TERMINATED"] * 4
    log = _log(tmp_path)
    ends = _check_in_step(log, POINTS)
    assert ends == {0: N_STEPS, 1: N_STEPS, 2: N_STEPS, 3: N_STEPS}
    # four trials, quantile 0.25: one exploit at each point, the worst of the four
    # taking the state of the best
    assert _check_quantile_exploits(log, _exploits(tmp_path), POINTS) == len(POINTS)
    for result in grid:
        index = int(result.metrics["trial_id"][-5:])
        assert result.metrics["total"] == [t for i, s, t in log if i == index][-1]
        assert result.metrics["step"] == N_STEPS


def test_every_trial_waits_at_each_point_even_with_a_slot_each(tmp_path):
    # two trials on two slots: nothing waits for a slot (asynchronous PBT would let both
    # run on), yet each is paused at every point until the other gets there
    scheduler = _Recording(**dict(time_attr="training_iteration",
                                  perturbation_interval=INTERVAL,
                                  hyperparam_mutations={"rate": MUTATIONS}, synch=True))
    grid = _fit(tmp_path, scheduler, slots=2, rates=[1.0, 2.0])
    assert [r.status for r in grid] == ["TERMINATED"] * 2
    at_points = [(int(t[-5:]), s, d) for t, s, d in scheduler.heard if s % INTERVAL == 0]
    assert sorted((i, s) for i, s, _ in at_points) == [(i, p) for i in (0, 1) for p in POINTS]
    assert {d for _, _, d in at_points} == {"PAUSE"}
    assert {d for _, s, d in scheduler.heard if s % INTERVAL} == {"CONTINUE"}
    log = _log(tmp_path)
    _check_in_step(log, POINTS)
    # two trials: the worse exploits the better at each point
    assert _check_quantile_exploits(log, _exploits(tmp_path), POINTS) == len(POINTS)


def test_a_larger_population_is_ranked_at_once_with_the_quantile_rule(tmp_path):
    # six trials, quantile 0.25: the two worst exploit the two best at each point
    rates = [0.5, 1.0, 1.5, 2.0, 3.0, 4.0]
    values = sorted(MUTATIONS + [1.5, 3.0])
    grid = _fit(tmp_path, _pbt(hyperparam_mutations={"rate": values}), slots=2, rates=rates)
    assert [r.status for r in grid] == ["TERMINATED"] * 6
    log = _log(tmp_path)
    _check_in_step(log, POINTS)
    assert _check_quantile_exploits(log, _exploits(tmp_path), POINTS,
                                    values=values) == 2 * len(POINTS)


def test_the_burn_in_period_moves_the_first_point(tmp_path):
    # the first point is max(perturbation_interval, burn_in_period), then every interval
    _fit(tmp_path, _pbt(burn_in_period=5))
    log = _log(tmp_path)
    _check_in_step(log, [5, 8, 11])
    assert _check_quantile_exploits(log, _exploits(tmp_path), [5, 8, 11]) == 3


@pytest.mark.parametrize("slots", [1, 2])
@pytest.mark.parametrize("how", ["ends", "fails"])
def test_a_trial_that_ends_or_fails_does_not_hold_up_the_others(tmp_path, slots, how):
    # trial 3 stops between points 3 and 6 (on one slot, while the others wait at 6 for
    # it): the three others are ranked at 6 without it, and go on in step
    extra = {"end": [3, 4]} if how == "ends" else {"fail": [3, 5]}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        grid = _fit(tmp_path, _pbt(), slots=slots, **extra)
    assert not [w for w in caught if "choose_trial_to_run" in str(w.message)]
    statuses = [r.status for r in grid]
    assert statuses == ["TERMINATED"] * 3 + (["TERMINATED"] if how == "ends" else ["ERROR"])
    if how == "fails":
        assert "trial 3 fails at step 5" in str(grid[3].error)
    log = _log(tmp_path)
    ends = _check_in_step(log, POINTS)
    assert ends == {0: N_STEPS, 1: N_STEPS, 2: N_STEPS, 3: 4}
    # one exploit among four at 3, among three at 6, 9 and 12
    assert _check_quantile_exploits(log, _exploits(tmp_path), POINTS) == 4


def test_the_same_seed_makes_the_same_decisions_on_two_slots(tmp_path):
    # all ranking happens at the points, in an order that does not hang on timing
    a = _fit(tmp_path, _pbt(resample_probability=0.5), name="a", slots=2, seed=11)
    b = _fit(tmp_path, _pbt(resample_probability=0.5), name="b", slots=2, seed=11)
    assert [r.config["rate"] for r in a] == [r.config["rate"] for r in b]

    def strip(name):
        return [(_index(e[0]), _index(e[1]), e[2], e[3], e[4]["rate"], e[5]["rate"])
                for e in _exploits(tmp_path, name)]

    assert strip("a") and strip("a") == strip("b")
    assert sorted(_log(tmp_path, "a")) == sorted(_log(tmp_path, "b"))


def test_restore_after_a_stop_with_trials_waiting_at_different_points(tmp_path):
    # one slot, stopped after 18 results: trials 0 and 1 wait at 6 for the others, which
    # are paused at 3 (ranked there, to run next)
    grid = _fit(tmp_path, _pbt(), stop=po.StopAllAfter(18))
    assert [r.status for r in grid] == ["PAUSED"] * 4
    assert [r.metrics["step"] for r in grid] == [6, 6, 3, 3]
    assert len(_exploits(tmp_path)) == 1
    # a restore with asynchronous PBT is refused: the snapshot is of synchronous PBT
    with pytest.raises(ValueError, match="synch=True .*synch=False"):
        tune.Tuner.restore(str(tmp_path / "sync"), so.logged_accumulator,
                           scheduler=_pbt(synch=False)).fit()
    restored = tune.Tuner.restore(str(tmp_path / "sync"), so.logged_accumulator,
                                  scheduler=_pbt()).fit()
    assert [r.status for r in restored] == ["TERMINATED"] * 4
    log = _log(tmp_path)
    ends = _check_in_step(log, POINTS)
    assert ends == {0: N_STEPS, 1: N_STEPS, 2: N_STEPS, 3: N_STEPS}
    # the point of 6 ranks the two trials that reached it before the stop with the two
    # that reached it after the restore
    assert _check_quantile_exploits(log, _exploits(tmp_path), POINTS) == len(POINTS)


def test_synch_needs_a_known_number_of_trials(tmp_path):
    with pytest.raises(Exception, match=r"synch=True\) needs a population of known size.*"
                                        r"num_samples=-1"):
        tune.Tuner(
            so.logged_accumulator, param_space=_space(tmp_path, "unbounded"),
            tune_config=tune.TuneConfig(scheduler=_pbt(), metric="total", mode="max",
                                        num_samples=-1, time_budget_s=30),
            run_config=tune.RunConfig(storage_path=str(tmp_path), verbose=0),
        ).fit()


@pytest.mark.parametrize("synch", ["yes", 1, None])
def test_synch_must_be_a_bool(synch):
    with pytest.raises(TypeError, match="synch must be True or False"):
        _pbt(synch=synch)


def test_the_pbt_example_runs_synchronously(tmp_path):
    script = Path(__file__).parent.parent / "examples" / "pbt_example.py"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    done = subprocess.run([sys.executable, str(script), "--smoke-test", "--synch",
                           "--storage-path", str(tmp_path)], env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "best trial" in done.stdout
    grid = tune.ResultGrid.from_path(str(tmp_path / "pbt_example"))
    assert len(grid) == 4 and grid.num_errors == 0
    exploits = _exploits(tmp_path, "pbt_example")
    assert exploits
    # all at shared points (every 4 iterations), each trial at the donor's iteration
    assert all(e[2] == e[3] and e[2] % 4 == 0 for e in exploits)
