"""The compact form in which a worker ships, and the store keeps, a trial's results.

Every result carries Ray Tune's automatic fields (``training_iteration``,
``time_this_iter_s``, ``time_total_s``, ``timestamp``, ``date``,
``trial_id``, ``hostname``, ``pid``, ``done``). Most of them are constant
for a trial or follow from the report's time, so a worker records only
``(iteration, time, metrics)`` per report and a batch is written as one JSON
object::

    {"pid": 123, "host": "node1", "start": t0, "prev": t_prev,
     "groups": [[["loss", "acc"], [[1, t1, 0.9, 0.1], [2, t2, 0.8, 0.2]]]]}

``groups`` holds runs of consecutive reports with the same metric keys;
each row is ``[iteration, time, *values]``. :func:`decode` turns a batch
back into full result dicts, which are exactly what :func:`expand` gives for
one report. Metrics the user reports under an automatic key win over the
automatic value, as in Ray Tune.
"""

from __future__ import annotations

import json
import math
import time
from typing import Any

AUTO_KEYS = ("training_iteration", "time_this_iter_s", "time_total_s", "timestamp", "date",
             "trial_id", "hostname", "pid", "done")

_date_cache: list = [math.nan, ""]


def json_default(obj: Any) -> Any:
    """Make numpy scalars/arrays and odd objects JSON-able (never raises)."""
    item = getattr(obj, "item", None)
    if callable(item):
        try:
            return obj.tolist() if getattr(obj, "ndim", 0) else item()
        except Exception:   # noqa: BLE001
            pass
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    path = getattr(obj, "path", None)
    if isinstance(path, str):
        return path
    return repr(obj)


def format_date(now: float) -> str:
    """Ray's ``date`` field: local time to the second, ``YYYY-mm-dd_HH-MM-SS``."""
    second = math.floor(now)
    if _date_cache[0] != second:
        _date_cache[0] = second
        _date_cache[1] = time.strftime("%Y-%m-%d_%H-%M-%S", time.localtime(second))
    return _date_cache[1]


def expand(trial_id: str, iteration: int, now: float, prev: float, start: float,
           pid: int, host: str, metrics: dict, done: bool = False) -> dict:
    """The full result of one report."""
    return {
        "training_iteration": iteration,
        "time_this_iter_s": now - prev,
        "time_total_s": now - start,
        "timestamp": int(now),
        "date": format_date(now),
        "trial_id": trial_id,
        "hostname": host,
        "pid": pid,
        "done": done,
        **metrics,
    }


def auto_value(key: str, iteration: int, now: float, prev: float, start: float) -> Any:
    """The automatic field ``key`` of a report, for the few a worker must judge on."""
    if key == "training_iteration":
        return iteration
    if key == "time_total_s":
        return now - start
    if key == "time_this_iter_s":
        return now - prev
    if key == "timestamp":
        return int(now)
    return None


def encode(entries: list, *, start: float, prev: float, pid: int, host: str) -> str:
    """JSON text of reports ``[(iteration, time, metrics), ...]``, oldest first."""
    groups: list = []
    keys: tuple | None = None
    rows: list = []
    for iteration, now, metrics in entries:
        k = tuple(metrics)
        if k != keys:
            rows = []
            keys = k
            groups.append([list(k), rows])
        rows.append([iteration, now, *metrics.values()])
    return json.dumps({"pid": pid, "host": host, "start": start, "prev": prev,
                       "groups": groups}, default=json_default)


def decode(trial_id: str, blob: str) -> list[dict]:
    """Full result dicts of one stored batch."""
    batch = json.loads(blob)
    pid, host, start, prev = batch["pid"], batch["host"], batch["start"], batch["prev"]
    out = []
    for keys, rows in batch["groups"]:
        for row in rows:
            iteration, now = row[0], row[1]
            out.append(expand(trial_id, iteration, now, prev, start, pid, host,
                              dict(zip(keys, row[2:]))))
            prev = now
    return out
