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
each row is ``[iteration, time, *values]``.

Most batches are plainer than that: every report has the same keys and
every value is a Python ``float`` or ``int``. Such a batch is *packed*
instead, as bytes: the magic ``b"FAR1"``; ``start`` and ``prev`` (float64),
``pid``, the first ``iteration`` and the row count (int64), and the length
of what follows (uint32), all little-endian; a JSON object with ``host``,
the keys and one type code per key (``"d"`` for float64, ``"q"`` for
int64); then the report times and each column as little-endian 8-byte
arrays. Packing costs a fraction of JSON's float
formatting, which dominated a worker's time per report, and it reads back
bit for bit. It is data, not code: decoding it runs nothing it contains.

:func:`decode` turns a batch of either form back into full result dicts,
which are exactly what :func:`expand` gives for one report. Metrics the
user reports under an automatic key win over the automatic value. (Ray
Tune 2.60 does the opposite: its own ``config``, ``time_total_s``,
``pid``, ... overwrite what the objective reported under those names.)

Ray's ``time_since_restore`` and ``iterations_since_restore`` are not
stored with each row: they follow from the batches themselves. During the run, the
worker computes them for a stop criterion (:func:`auto_value`), and the
driver for the results it passes on, from the batches' heads and row counts
as :class:`RunTracker` does. Every run of a trial (its
first, and each one after a retry or a ``Tuner.restore``) has its own
``start`` and ``pid``, and its first batch's ``prev`` is when the run began.
:func:`decode` fills them in when given a :class:`RunTracker` (one per trial,
fed the trial's batches in order), and :func:`head` reads just enough of a
batch to tell its run, so that the values of a trial's last result can be
had without decoding its history.
"""

from __future__ import annotations

import json
import math
import re
import struct
import sys
import time
from array import array
from typing import Any

from ._fastpath import pack_columns

AUTO_KEYS = ("training_iteration", "time_this_iter_s", "time_total_s", "timestamp", "date",
             "trial_id", "hostname", "pid", "done")
# Ray's fields counted from the start of the trial's current run: not in the stored rows
# (see the module docstring), but in the results seen during the run
SINCE_RESTORE_KEYS = ("time_since_restore", "iterations_since_restore")

_date_cache: list = [math.nan, ""]


def json_default(obj: Any) -> Any:
    """Make numpy scalars/arrays and odd objects JSON-able (never raises)."""
    item = getattr(obj, "item", None)
    if callable(item):
        try:
            value = obj.tolist() if getattr(obj, "ndim", 0) else item()
            if type(value) is not type(obj):
                return value
            # np.longdouble's item() is a np.longdouble: handed back, the encoder would call
            # this again until the recursion limit
            return float(obj) if obj.imag == 0 else repr(obj)
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


def flatten(result: dict, prefix: str = "") -> dict:
    """``result`` with nested dicts spread into ``"outer/inner"`` keys, as Ray Tune does.

    Two differences from Ray's ``flatten_dict``: empty dicts stay as they
    are (Ray drops them), and a key that holds the ``/`` itself wins over a
    nested value of the same name (in Ray the nested one overwrites it,
    whatever the order). Returns ``result`` itself when
    nothing is nested (the common case costs one pass and no copy): copy
    it before changing it.
    """
    if not prefix:
        for value in result.values():
            if isinstance(value, dict):
                break
        else:
            return result       # nothing nested (a loop: cheaper than any() per result)
    out: dict = {}
    for key, value in result.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            for inner, x in flatten(value, name + "/").items():
                out.setdefault(inner, x)
        else:
            out[name] = value
    return out


MISSING = object()


def lookup(metrics: dict, key: str, default: Any = MISSING) -> Any:
    """``metrics[key]``, where ``key`` may name a nested value as ``"outer/inner"``.

    A top-level key that holds the ``/`` itself wins. ``default`` (by
    default :data:`MISSING`, which no reported value can be) if there is no
    such value.
    """
    if key in metrics:
        return metrics[key]
    if "/" in key:
        return flatten(metrics).get(key, default)
    return default


def experiment_tag(index: int, config: dict | None) -> str:
    """``"<index>_<key>=<value>,..."``: a trial's tag, from its index and config.

    Like Ray's ``experiment_tag`` (``"0_lr=0.0100,momentum=0.9"``), but made
    from every number, string and bool of the config in its own order, with
    nested keys named ``outer/inner`` and floats to 4 significant digits
    (Ray's names only the sampled values, by their last key, floats to 4
    decimals). Values JSON could not hold (stored as ``{"__repr__": ...}``)
    are left out, as the objects themselves are; numpy scalars count as the
    Python numbers they are stored as.
    """
    parts = []
    for key, value in flatten(config or {}).items():
        kind = type(value)
        if kind is float:           # (the common types first: a grid reads 100,000 tags)
            parts.append(f"{key}={value:.4g}")
            continue
        if kind is not int and kind is not str and kind is not bool:
            if kind.__module__ == "numpy" and getattr(value, "ndim", None) == 0:
                value = value.item()    # as stored (json_default): the tag read back is the same
            if isinstance(value, float):
                parts.append(f"{key}={value:.4g}")
                continue
            if not isinstance(value, (int, str, bool)):
                continue
        if not key.endswith("/__repr__"):
            parts.append(f"{key}={value}")
    return f"{index}_" + ",".join(parts) if parts else str(index)


def auto_value(key: str, iteration: int, now: float, prev: float, start: float,
               resumed: float = 0.0, first: int = 0) -> Any:
    """The automatic field ``key`` of a report, for the few a worker must judge on.

    ``resumed`` is the ``time_total_s`` the report's run resumed from (its
    first batch's ``prev - start``) and ``first`` the iteration it resumed
    from, for ``time_since_restore`` and ``iterations_since_restore``: the
    values :func:`decode` gives them with a :class:`RunTracker`. None for a
    key that is not one of these.
    """
    if key == "training_iteration":
        return iteration
    if key == "time_total_s":
        return now - start
    if key == "time_this_iter_s":
        return now - prev
    if key == "timestamp":
        return int(now)
    if key == "time_since_restore":
        return (now - start) - resumed
    if key == "iterations_since_restore":
        return iteration - first
    return None


_MAGIC = b"FAR1"
_HEAD = struct.Struct("<ddqqqI")     # start, prev, pid, first iteration, rows, len(meta)
_meta_cache: dict[tuple, bytes] = {}
_INT64 = (-(1 << 63), 1 << 63)
_SWAP = sys.byteorder != "little"


def _column(values: list) -> array | None:
    """An 8-byte array of one metric's values, or None if they are not all float or all int."""
    kinds = set(map(type, values))
    if kinds == {float}:
        return array("d", values)
    if kinds == {int} and _INT64[0] <= min(values) and max(values) < _INT64[1]:
        return array("q", values)
    return None


def pack_columns_py(entries: list) -> tuple[tuple, str, list[bytes]] | None:
    """The arrays of a packed batch, or None if it is not plain (the reference).

    Same contract as the compiled :func:`fastasha._fastpath.pack_columns`,
    which the packer uses and the tests compare with this one.
    """
    times, metrics = zip(*entries)
    n = len(entries)
    keys = tuple(metrics[0])
    if any(type(k) is not str for k in keys) or any(type(t) is not float for t in times):
        return None
    # Same keys in the same order everywhere (a dict keeps its order). Equal lengths
    # and every column found mean equal key sets; the order matters from two keys on.
    if len(keys) == 1:
        if set(map(len, metrics)) != {1}:
            return None
    elif list(map(tuple, metrics)).count(keys) != n:
        return None
    try:
        columns = [_column([m[k] for m in metrics]) for k in keys]
    except KeyError:
        return None
    if None in columns:
        return None
    types = "".join(c.typecode for c in columns)    # type: ignore[union-attr]
    return keys, types, [a.tobytes() for a in (array("d", times), *columns)]  # type: ignore


def _pack(first: int, entries: list, start: float, prev: float, pid: int,
          host: str) -> bytes | None:
    """The packed form of a batch, or None if the batch is not plain enough for it."""
    if type(first) is not int:
        return None
    packed = pack_columns_py(entries) if _SWAP else pack_columns(entries)
    if packed is None:
        return None
    keys, types, arrays = packed
    if _SWAP:
        arrays = [_little_endian(a) for a in arrays]
    key = (host, keys, types)
    meta = _meta_cache.get(key)
    if meta is None:
        if len(_meta_cache) > 256:
            _meta_cache.clear()
        meta = _meta_cache[key] = json.dumps({"host": host, "keys": list(keys),
                                              "types": types}).encode()
    return b"".join([_MAGIC, _HEAD.pack(start, prev, pid, first, len(entries), len(meta)),
                     meta, *arrays])


def _little_endian(data: bytes) -> bytes:
    a = array("d")
    a.frombytes(data)
    a.byteswap()
    return a.tobytes()


class RunTracker:
    """Which run of one trial its batches belong to, fed them in order.

    A run is a stretch of a trial in one worker: its first, and each one
    after a retry or a ``Tuner.restore``. It is told by the batch's
    ``(start, pid)``, which no two runs share (``start`` is when the run
    began, less the ``time_total_s`` it resumed from). For the current run,
    ``offset`` is that ``time_total_s`` as the batches give it (its first
    batch's ``prev - start``: exactly 0.0 for a run from scratch) and
    ``count`` its results so far.
    """

    __slots__ = ("count", "offset", "run")

    def __init__(self) -> None:
        self.run: tuple | None = None
        self.offset = 0.0
        self.count = 0

    def enter(self, start: float, prev: float, pid: int) -> None:
        """A batch with this head comes next."""
        if self.run != (start, pid):
            self.run = (start, pid)
            self.offset = prev - start
            self.count = 0


def _since(runs: RunTracker, row: dict, total: float) -> None:
    """Add Ray's since-restore fields to ``row`` (``total``: its automatic time_total_s)."""
    runs.count += 1
    if "time_since_restore" not in row:
        row["time_since_restore"] = total - runs.offset
    if "iterations_since_restore" not in row:
        row["iterations_since_restore"] = runs.count


_JSON_HEAD = re.compile(
    r'\{"pid": (-?\d+), "host": "(?:[^"\\]|\\.)*", "start": ([^,]+), "prev": ([^,]+), ')


def head(blob: str | bytes) -> tuple[float, float, int] | None:
    """``(start, prev, pid)`` of a stored batch, read from the batch or its beginning.

    Parameters
    ----------
    blob : str or bytes
        A batch as :func:`encode` made it, or its first characters (bytes)
        only: 48 bytes of a packed batch, a few hundred characters of a JSON
        one are enough.

    Returns
    -------
    tuple or None
        None if ``blob`` is a part of a batch too short to tell (read the
        whole batch then), or is not a batch of this form.
    """
    if isinstance(blob, bytes) and blob[:4] == _MAGIC:
        if len(blob) < 4 + _HEAD.size:
            return None
        start, prev, pid = _HEAD.unpack_from(blob, 4)[:3]
        return start, prev, pid
    # (bytes of JSON text: ASCII, but a cut part may end anywhere)
    text = blob.decode(errors="replace") if isinstance(blob, bytes) else blob
    found = _JSON_HEAD.match(text)
    if found is not None:       # float() reads back what json wrote, bit for bit
        return float(found[2]), float(found[3]), int(found[1])
    try:
        batch = json.loads(text)
        return batch["start"], batch["prev"], batch["pid"]
    except (ValueError, TypeError, KeyError):     # (a list of results: an older form)
        return None


def _unpack(trial_id: str, blob: bytes, runs: RunTracker | None = None) -> list[dict]:
    if len(blob) < 4 + _HEAD.size:
        raise ValueError(f"a packed result batch of trial {trial_id} is truncated")
    start, prev, pid, it0, n, size = _HEAD.unpack_from(blob, 4)
    offset = 4 + _HEAD.size + size
    head = json.loads(blob[4 + _HEAD.size:offset])
    keys, host = head["keys"], head["host"]
    if len(blob) != offset + 8 * n * (1 + len(head["types"])):
        raise ValueError(f"a packed result batch of trial {trial_id} is truncated")
    arrays = []
    for code in "d" + head["types"]:
        a = array(code)
        a.frombytes(blob[offset:offset + 8 * n])
        if _SWAP:
            a.byteswap()
        offset += 8 * n
        arrays.append(a.tolist())
    times, columns = arrays[0], arrays[1:]
    out = []
    if runs is not None:
        runs.enter(start, prev, pid)
    for i, now in enumerate(times):
        row = expand(trial_id, it0 + i, now, prev, start, pid, host,
                     {k: c[i] for k, c in zip(keys, columns)})
        if runs is not None:
            _since(runs, row, now - start)
        out.append(row)
        prev = now
    return out


def encode(first: int, entries: list, *, start: float, prev: float, pid: int, host: str,
           pack: bool = True) -> str | bytes:
    """One batch of consecutive reports ``[(time, metrics), ...]``, oldest first.

    ``first`` is the ``training_iteration`` of the first one. Packed bytes
    when ``pack`` and the batch is plain enough (see the module docstring),
    JSON text otherwise.
    """
    if pack and entries:
        packed = _pack(first, entries, start, prev, pid, host)
        if packed is not None:
            return packed
    groups: list = []
    keys: tuple | None = None
    rows: list = []
    for iteration, (now, metrics) in enumerate(entries, first):
        k = tuple(metrics)
        if k != keys:
            rows = []
            keys = k
            groups.append([list(k), rows])
        rows.append([iteration, now, *metrics.values()])
    return json.dumps({"pid": pid, "host": host, "start": start, "prev": prev,
                       "groups": groups}, default=json_default)


def decode(trial_id: str, blob: str | bytes, runs: RunTracker | None = None) -> list[dict]:
    """Full result dicts of one stored batch (packed or JSON).

    With ``runs`` (the trial's tracker, given its batches in order) every
    result also gets ``time_since_restore`` (its ``time_total_s`` less the
    one its run resumed from) and ``iterations_since_restore`` (its count in
    its run), unless it reported those keys itself.
    """
    if isinstance(blob, bytes) and blob[:4] == _MAGIC:
        return _unpack(trial_id, blob, runs)
    batch = json.loads(blob)
    pid, host, start, prev = batch["pid"], batch["host"], batch["start"], batch["prev"]
    if runs is not None:
        runs.enter(start, prev, pid)
    out = []
    for keys, rows in batch["groups"]:
        for row in rows:
            iteration, now = row[0], row[1]
            result = expand(trial_id, iteration, now, prev, start, pid, host,
                            dict(zip(keys, row[2:])))
            if runs is not None:
                _since(runs, result, now - start)
            out.append(result)
            prev = now
    return out
