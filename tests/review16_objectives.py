"""Objectives for tests/test_review_session16.py (module level, so that loky workers import
them by reference, see tests/objectives.py). Also run as a script by its kill test:

    python tests/review16_objectives.py <storage_path> <name> <log>

runs a synchronous PBT sweep of four trials on one slot whose second trial, paused at the
first perturbation point, hangs while it winds down (writing ``<log>.hung1``); the test
kills the process then.
"""

from __future__ import annotations

import json
import os
import sys
import time

from fastasha import tune
from pause_objectives import _load_state, _save


def _append(path: str, entry: list) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, (json.dumps(entry) + "\n").encode())
    finally:
        os.close(fd)


def _once(config: dict, what: str, index: int) -> bool:
    """True the first time trial ``index`` asks about ``what`` in this sweep's folder."""
    marker = f"{config['log']}.{what}{index}"
    if os.path.exists(marker):
        return False
    open(marker, "w").close()
    return True


def synch_accumulator(config: dict) -> None:
    """``pbt_synch_objectives.logged_accumulator`` (the same log of steps), with two
    faults that strike once each.

    ``total`` grows by ``rate`` a step, kept in the checkpoint; before it
    reports a step, a trial appends ``[trial index, step, total]`` to
    ``config["log"]``, and each start appends ``[trial index, steps done]`` to
    ``config["log"] + ".starts"``. The trial whose index is
    ``config["fail_once"][0]`` raises at step ``config["fail_once"][1]`` the
    first time it gets there. The one whose index is
    ``config["bad_wind_down"]`` raises, the first time the sweep ends its
    objective (stopped or paused in ``report()``), while it winds down (a
    clean-up that fails); the one whose index is ``config["hang"]`` sleeps
    there instead, the first time, after writing ``config["log"] + ".hung<index>"``.
    """
    state, _ = _load_state()
    total = state["total"] if state else 0.0
    step = state["step"] if state else 0
    index = int(tune.get_context().get_trial_id()[-5:])
    _append(config["log"] + ".starts", [index, step])
    fail = config.get("fail_once") or (None, None)
    try:
        while step < config.get("n_steps", 12):
            step += 1
            if index == fail[0] and step == fail[1] and _once(config, "failed", index):
                raise RuntimeError(f"trial {index} fails at step {step}")
            total += config["rate"]
            _append(config["log"], [index, step, total])
            _save({"total": total, "step": step, "rate": config["rate"]},
                  {"total": total, "step": step, "lineage": []})
    except Exception:
        raise
    except BaseException:
        if index == config.get("bad_wind_down") and _once(config, "wound_down", index):
            raise RuntimeError(f"trial {index}'s clean-up failed") from None
        if index == config.get("hang") and _once(config, "hung", index):
            time.sleep(60)         # the test kills the sweep here
        raise


def main(storage_path: str, name: str, log: str) -> None:
    from fastasha.schedulers import PopulationBasedTraining

    pbt = PopulationBasedTraining(time_attr="training_iteration", perturbation_interval=3,
                                  hyperparam_mutations={"rate": [0.5, 1.0, 2.0, 4.0, 8.0]},
                                  synch=True)
    tune.Tuner(
        synch_accumulator,
        param_space={"rate": tune.grid_search([0.5, 1.0, 2.0, 4.0]), "n_steps": 12,
                     "log": log, "hang": 1},
        tune_config=tune.TuneConfig(scheduler=pbt, metric="total", mode="max", seed=3,
                                    max_concurrent_trials=1),
        run_config=tune.RunConfig(name=name, storage_path=storage_path, verbose=0),
    ).fit()


if __name__ == "__main__":
    main(*sys.argv[1:4])
