"""Map user-visible trial ids to the dense indices of the rung core.

Ids added one at a time (any hashable) live in a dict. Integer ids added in
batches live in numpy arrays, so that a batch of a million results is mapped
with a few vectorised passes and no per-id Python work: a direct table
``id -> index`` while the ids are dense non-negative integers, else a sorted
array searched with ``np.searchsorted``.
"""

from __future__ import annotations

import numbers
from typing import Any, Hashable

import numpy as np

# A direct table may hold up to this many unused slots per trial (plus a
# fixed allowance) before sparse ids switch the map to sorted arrays.
_DENSE_SLACK = 8
_DENSE_ALLOWANCE = 1 << 16


def _is_int_id(trial_id: Any) -> bool:
    return isinstance(trial_id, numbers.Integral) and not isinstance(trial_id, bool)


def as_int_ids(trial_ids: Any) -> np.ndarray:
    """Convert a batch of trial ids to a contiguous int64 array, or raise TypeError."""
    ids = np.asarray(trial_ids)
    if ids.ndim != 1:
        raise ValueError(f"trial_ids must be one-dimensional, got shape {ids.shape}")
    if ids.dtype.kind == "u":
        if ids.size and ids.max() > np.iinfo(np.int64).max:
            raise ValueError("trial_ids do not fit in int64")
    elif ids.dtype.kind != "i":
        if ids.size == 0:
            return np.empty(0, dtype=np.int64)
        raise TypeError(
            f"the batch API takes integer trial ids, got an array of dtype {ids.dtype}; "
            "use on_trial_add / on_trial_result for other ids"
        )
    return np.ascontiguousarray(ids, dtype=np.int64)


class TrialIndex:
    """Bidirectional map between trial ids and dense indices ``0..n-1``."""

    def __init__(self) -> None:
        self.ids: dict[Hashable, int] = {}
        self._pending: list[tuple[int, int]] = []   # int ids added one by one
        self._direct: np.ndarray | None = np.empty(0, dtype=np.int64)
        self._keys: np.ndarray | None = None       # sorted int ids (sparse mode)
        self._vals: np.ndarray | None = None
        self._n_int = 0
        self._segments: list[tuple[int, np.ndarray]] = []

    # ------------------------------------------------------------ scalar ids

    def lookup(self, trial_id: Hashable) -> int:
        """Index of ``trial_id``; ``ValueError`` if it was never added."""
        idx = self.ids.get(trial_id)
        if idx is not None:
            return idx
        if _is_int_id(trial_id) and self._n_int:
            found = self.lookup_many(np.array([trial_id], dtype=np.int64), missing_ok=True)[0]
            if found >= 0:
                return int(found)
        raise ValueError(
            f"unknown trial {trial_id!r}: call on_trial_add({trial_id!r}) (or add_trials) "
            "before reporting its results"
        )

    def contains(self, trial_id: Hashable) -> bool:
        if trial_id in self.ids:
            return True
        # ids added one at a time are all in the dict; only batch ids need the int map
        if not self._segments or not _is_int_id(trial_id):
            return False
        return self.lookup_many(np.array([trial_id], dtype=np.int64), missing_ok=True)[0] >= 0

    def add(self, trial_id: Hashable, idx: int) -> None:
        """Register one id (any hashable). Caller checked it is new."""
        self.ids[trial_id] = idx
        if _is_int_id(trial_id):
            self._pending.append((int(trial_id), idx))

    # ------------------------------------------------------------- int ids

    def _flush_pending(self) -> None:
        if self._pending:
            pending = np.array(self._pending, dtype=np.int64)
            self._pending = []
            self._insert(pending[:, 0], pending[:, 1])

    def _insert(self, keys: np.ndarray, vals: np.ndarray) -> None:
        if keys.size == 0:
            return
        n_total = self._n_int + keys.size
        if self._direct is not None:
            lo, hi = int(keys.min()), int(keys.max())
            if lo >= 0 and hi < _DENSE_SLACK * n_total + _DENSE_ALLOWANCE:
                if hi >= self._direct.size:
                    grown = np.full(max(hi + 1, 2 * self._direct.size), -1, dtype=np.int64)
                    grown[: self._direct.size] = self._direct
                    self._direct = grown
                self._direct[keys] = vals
                self._n_int = n_total
                return
            old_keys = np.flatnonzero(self._direct >= 0).astype(np.int64)
            self._keys, self._vals = old_keys, self._direct[old_keys]
            self._direct = None
        all_keys = np.concatenate([self._keys, keys])
        order = np.argsort(all_keys, kind="stable")
        self._keys = all_keys[order]
        self._vals = np.concatenate([self._vals, vals])[order]
        self._n_int = n_total

    def lookup_many(self, ids: np.ndarray, missing_ok: bool = False) -> np.ndarray:
        """Indices of int64 ``ids``; -1 for unknown ids when ``missing_ok``.

        Otherwise an unknown id raises ``ValueError`` naming it.
        """
        self._flush_pending()
        if ids.size == 0:
            return np.empty(0, dtype=np.int64)
        if self._direct is not None:
            direct = self._direct
            lo, hi = int(ids.min()), int(ids.max())
            if lo >= 0 and hi < direct.size:
                idx = direct[ids]
            else:
                inside = (ids >= 0) & (ids < direct.size)
                idx = np.full(ids.size, -1, dtype=np.int64)
                idx[inside] = direct[ids[inside]]
        else:
            pos = np.searchsorted(self._keys, ids)
            pos[pos >= self._keys.size] = 0
            idx = np.where(self._keys[pos] == ids, self._vals[pos], -1) if self._keys.size \
                else np.full(ids.size, -1, dtype=np.int64)
        if not missing_ok and idx.size and idx.min() < 0:
            bad = ids[np.flatnonzero(idx < 0)[0]]
            raise ValueError(
                f"unknown trial {int(bad)}: add it with add_trials or on_trial_add "
                "before reporting its results; nothing was recorded from this batch"
            )
        return idx

    def add_many(self, ids: np.ndarray, first_idx: int) -> None:
        """Register int64 ``ids`` as indices ``first_idx, first_idx + 1, ...``."""
        self._insert(ids, np.arange(first_idx, first_idx + ids.size, dtype=np.int64))
        self._segments.append((first_idx, ids.copy()))

    def check_new(self, ids: np.ndarray) -> None:
        """``ValueError`` if ``ids`` repeat an id or one already added."""
        if ids.size > 1:
            # a sort, not np.unique: numpy >= 2.3's hash-based unique is 100x slower here
            sorted_ids = np.sort(ids)
            repeated = np.flatnonzero(sorted_ids[1:] == sorted_ids[:-1])
            if repeated.size:
                dup = sorted_ids[repeated[0]]
                raise ValueError(f"trial id {int(dup)} appears twice in trial_ids; ids must be unique")
        known = self.lookup_many(ids, missing_ok=True)
        if known.size and known.max() >= 0:
            bad = ids[np.flatnonzero(known >= 0)[0]]
            raise ValueError(f"trial {int(bad)} was already added; trial ids must be unique")

    def id_list(self, n_trials: int) -> list:
        """The trial id of every index, ``0..n_trials-1``."""
        out: list = [None] * n_trials
        for trial_id, idx in self.ids.items():
            out[idx] = trial_id
        for first, ids in self._segments:
            out[first: first + ids.size] = ids.tolist()
        return out
