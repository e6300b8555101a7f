"""Objectives for tests/test_pbt_synch.py (module level, so that loky workers import them).

:func:`logged_accumulator` is ``pause_objectives.accumulator`` that also
appends one line per step to a log file shared by the whole sweep, so that a
test sees the order in which the trials really ran their steps, whatever the
driver was told.
"""

from __future__ import annotations

import json
import os
import time

from fastasha import tune
from pause_objectives import _load_state, _save


def logged_accumulator(config: dict) -> None:
    """``total`` grows by ``rate`` a step, kept in the checkpoint; each step is logged.

    Before it reports a step, a trial appends ``[trial index, step, total]``
    (a JSON list) to ``config["log"]``. The trial whose index is
    ``config["fail"][0]`` raises at step ``config["fail"][1]``, before
    logging it; the one whose index is ``config["end"][0]`` returns after
    step ``config["end"][1]``. Both keys name a trial, not a config, so a
    trial that takes another's config in an exploit keeps its own fate.
    ``config["sleep"]`` seconds a step let trials on two slots interleave.
    """
    state, _ = _load_state()
    total = state["total"] if state else 0.0
    step = state["step"] if state else 0
    me = tune.get_context().get_trial_id()
    index = int(me[-5:])
    lineage = state["lineage"] if state else [me]
    if lineage[-1] != me:
        lineage = [*lineage, me]
    fail, end = config.get("fail") or (None, None), config.get("end") or (None, None)
    while step < config.get("n_steps", 12):
        if index == end[0] and step >= end[1]:
            return
        step += 1
        if index == fail[0] and step >= fail[1]:
            raise RuntimeError(f"trial {index} fails at step {step}")
        total += config["rate"]
        time.sleep(config.get("sleep", 0.0))
        line = json.dumps([index, step, total]) + "\n"
        fd = os.open(config["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)
        _save({"total": total, "step": step, "rate": config["rate"],
               "lineage": "/".join(lineage)},
              {"total": total, "step": step, "lineage": lineage})
