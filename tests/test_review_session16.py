"""Review of synchronous PBT, MedianStoppingRule(hard_stop=False) and paused trials (session 16).

Each test is a defect found by the review, shown by a real sweep through the public API.
The objective (tests/review16_objectives.py) logs every step it runs, as
tests/pbt_synch_objectives.py's does, so the tests see the order the trials really ran in.
"""

from __future__ import annotations

import json
import os
import re
import warnings

import pytest

import pause_objectives as po
import review16_objectives as ro
from fastasha import tune
from fastasha.schedulers import PopulationBasedTraining
from test_pbt_synch import (
    INTERVAL,
    MUTATIONS,
    N_STEPS,
    POINTS,
    RATES,
    _check_in_step,
    _check_quantile_exploits,
    _exploits,
    _index,
    _log,
)


def _pbt():
    return PopulationBasedTraining(time_attr="training_iteration",
                                   perturbation_interval=INTERVAL,
                                   hyperparam_mutations={"rate": MUTATIONS},
                                   quantile_fraction=0.25, resample_probability=0.25,
                                   synch=True)


def _space(tmp_path, name, rates=RATES, **extra):
    return {"rate": tune.grid_search(list(rates)), "n_steps": N_STEPS,
            "log": str(tmp_path / f"{name}.log"), **extra}


def _fit(tmp_path, *, name="sync", rates=RATES, max_failures=0, stop=None, **extra):
    return tune.Tuner(
        ro.synch_accumulator,
        param_space=_space(tmp_path, name, rates, **extra),
        tune_config=tune.TuneConfig(scheduler=_pbt(), metric="total", mode="max", seed=3,
                                    max_concurrent_trials=1),
        run_config=tune.RunConfig(name=name, storage_path=str(tmp_path), verbose=0,
                                  stop=stop,
                                  failure_config=tune.FailureConfig(max_failures=max_failures)),
    ).fit()


def _starts(tmp_path, name="sync"):
    """Each start of a trial's objective, in order: [(index, steps done before it)]."""
    with open(tmp_path / f"{name}.log.starts") as f:
        return [tuple(json.loads(line)) for line in f]


def test_synch_pbt_a_trial_retried_after_its_pause_waits_for_the_trials_not_created_yet(
        tmp_path):
    # One slot, four trials: trial 0 is paused at the first point (3), and its objective
    # fails while it winds down. Retried (max_failures=1), it waits PENDING at 3, ahead of
    # the three trials the sweep has not created yet. PBT chooses none of the trials
    # waiting (trial 0 has reached the point), and the sweep used to start trial 0 all the
    # same, with a RuntimeWarning, instead of creating the next trial: trial 0 ran step 4
    # before the others had reached 3, and ran it again after its exploit.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        grid = _fit(tmp_path, bad_wind_down=0, max_failures=1)
    assert os.path.exists(tmp_path / "sync.log.wound_down0")      # the fault struck
    assert not [w for w in caught if "choose_trial_to_run" in str(w.message)], \
        [str(w.message) for w in caught]
    assert [r.status for r in grid] == ["TERMINATED"] * 4 and not grid.errors
    log = _log(tmp_path)
    assert _check_in_step(log, POINTS) == {i: N_STEPS for i in range(4)}
    # trial 0, the worst at 3, exploits the best while it waits to start again
    assert _check_quantile_exploits(log, _exploits(tmp_path), POINTS) == len(POINTS)
    assert _starts(tmp_path)[:4] == [(0, 0), (1, 0), (2, 0), (3, 0)]


def test_synch_pbt_a_trial_resumed_by_restore_catches_up_without_a_pause_at_every_result(
        tmp_path):
    # One slot: trial 3 fails at step 5 (ERROR); the three others are ranked without it at
    # 6, and the stopper ends the sweep after 28 results, with trials 0 and 1 paused at 9
    # and trial 2 at 6. Tuner.restore(resume_errored=True) resumes trial 3 from its
    # checkpoint at step 4: it must run on to 9, where the others wait, and be ranked there
    # with them. It used to be paused at 6, 7, 8 and 9, and restarted after each, at
    # every result: its perturbation point counted from 3, its last point, not from the
    # population's next one.
    first = _fit(tmp_path, fail_once=[3, 5], stop=po.StopAllAfter(28))
    assert [r.status for r in first] == ["PAUSED", "PAUSED", "PAUSED", "ERROR"]
    assert [r.metrics["step"] for r in first] == [9, 9, 6, 4]
    n_before = len(_log(tmp_path))
    restored = tune.Tuner.restore(str(tmp_path / "sync"), ro.synch_accumulator,
                                  scheduler=_pbt(), resume_errored=True).fit()
    assert [r.status for r in restored] == ["TERMINATED"] * 4 and not restored.errors
    log = _log(tmp_path)
    # each trial ran each step once, in order; after the restore no trial ran a step past
    # 9 before all four had reached 9
    last = {}
    for index, step, _ in log:
        assert step == last.get(index, 0) + 1, (index, step, last)
        last[index] = step
    assert last == {i: N_STEPS for i in range(4)}
    after = [(i, s) for i, s, _ in log[n_before:]]
    first_past_9 = min(k for k, (_, s) in enumerate(after) if s > 9)
    assert {(i, 9) for i in range(2, 4)} <= set(after[:first_past_9]), after
    # after the restore trial 3 starts at 4 and is paused at the points 9 and 12 only
    resumed = [s for i, s in _starts(tmp_path) if i == 3]
    assert resumed == [0, 3, 4, 9, 12], resumed
    # one exploit among four at 3, among three at 6 (trial 3 had failed), and among all
    # four again at 9 and 12
    exploits = _exploits(tmp_path)
    assert _check_quantile_exploits(log, exploits, POINTS) == 4


def test_synch_pbt_the_trial_that_completes_a_point_keeps_its_exploit_through_a_retry(
        tmp_path):
    # One slot: trial 3 is the last to reach each point, and the worst at 3, so its own
    # result ranks the population and has it exploit the best; paused for that, its
    # objective fails while it winds down, and it is retried (max_failures=1). It must
    # go on from the donor's checkpoint with the new config, as pbt_global.txt says it
    # does: the retry dropped the exploit, and it went on from its own state.
    grid = _fit(tmp_path, rates=[1.0, 2.0, 4.0, 0.5], bad_wind_down=3, max_failures=1)
    assert os.path.exists(tmp_path / "sync.log.wound_down3")
    assert [r.status for r in grid] == ["TERMINATED"] * 4 and not grid.errors
    log = _log(tmp_path)
    assert _check_in_step(log, POINTS) == {i: N_STEPS for i in range(4)}
    exploits = _exploits(tmp_path)
    assert [_index(exploits[0][0]), _index(exploits[0][1]), *exploits[0][2:4]] == \
        [3, 2, 3, 3], exploits[0]
    assert _check_quantile_exploits(log, exploits, POINTS) == len(POINTS)


@pytest.mark.parametrize("reporter", [None, "cli"])
def test_the_table_of_paused_trials_is_of_the_best_of_all_of_them(tmp_path, capsys,
                                                                  reporter):
    # 300 trials, each paused at its first result (one slot), the later ones better; the
    # stopper ends the sweep once all are paused. The status table says "best loss
    # first": it must list the best paused trials of all 300, as the best-trial line
    # does, not the best of the first 256 to pause (the driver passes the display 256).
    n = 300
    cli = tune.CLIReporter(metric="loss", mode="min", sort_by_metric=True,
                           max_progress_rows=20) if reporter == "cli" else None
    grid = tune.Tuner(
        po.stepper,
        param_space={"x": tune.grid_search([float(n - i) for i in range(n)])},
        tune_config=tune.TuneConfig(scheduler=po.PausesOnce(pause_at=1), metric="loss",
                                    mode="min", max_concurrent_trials=1),
        run_config=tune.RunConfig(name="many", storage_path=str(tmp_path), verbose=1,
                                  stop=po.StopAllAfter(n), progress_reporter=cli),
    ).fit()
    assert [r.status for r in grid] == ["PAUSED"] * n
    out = capsys.readouterr().out
    ids = [r.metrics["trial_id"] for r in grid]
    assert f"Current best trial: {ids[-1]} with loss=1 " in out
    final = out[out.rindex("Trial status:"):]
    shown = re.findall(r"│ (\w+) +│ PAUSED +│", final)
    # the best first, as many as the table has rows for (the CLIReporter keeps half of
    # its 20 rows for finished trials, of which there are none)
    assert shown and shown == ids[::-1][:len(shown)], shown
    assert len(shown) >= 10


def _held(path):
    """(status, iteration of the latest checkpoint) of the first two trials in the file."""
    try:
        grid = tune.ResultGrid.from_path(str(path))
        return [(r.status, r.checkpoint and r.metrics.get("training_iteration"))
                for r in list(grid)[:2]]
    except Exception:   # noqa: BLE001 - not created yet, or caught mid-creation
        return None


def test_synch_pbt_restore_after_the_driver_is_killed_while_a_trial_pauses(tmp_path):
    # One slot: trial 0 waits paused at the first point (3), trial 1 has reached it too and
    # hangs while it winds down; the driver is killed then, before trials 2 and 3 exist.
    # Restored, trial 1 is PENDING at 3, and the two trials not created yet must run to 3
    # before any runs past it (it used to start as soon as the trials created before the
    # driver was killed had reached 3, with a RuntimeWarning).
    log = tmp_path / "killed.log"
    # the driver commits in the background: it is killed once the file holds the pause and
    # trial 1's checkpoint at the point (the driver may have created the next trial
    # already, PENDING); before that, a restore rightly resumes trial 1 from earlier
    po.kill_when(ro.__file__, [tmp_path, "killed", log],
                 lambda: os.path.exists(f"{log}.hung1") and
                 _held(tmp_path / "killed") == [("PAUSED", 3), ("RUNNING", 3)],
                 "the second trial paused, and the file holding its checkpoint")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        grid = tune.Tuner.restore(str(tmp_path / "killed"), ro.synch_accumulator,
                                  scheduler=_pbt()).fit()
    assert not [w for w in caught if "choose_trial_to_run" in str(w.message)], \
        [str(w.message) for w in caught]
    assert [r.status for r in grid] == ["TERMINATED"] * 4 and not grid.errors
    with open(log) as f:
        steps = [tuple(json.loads(line)) for line in f]
    assert _check_in_step(steps, POINTS) == {i: N_STEPS for i in range(4)}
    assert _check_quantile_exploits(steps, _exploits(tmp_path, "killed"), POINTS) == \
        len(POINTS)
