# cython: language_level=3
"""Compiled ASHA rung bookkeeping: brackets, rungs and exact running quantiles.

This module knows integers and float64 values only. Trials are dense indices
``0..n_trials-1`` handed out by :class:`RungTable` itself; the Python layer
(:mod:`fastasha.schedulers`) maps user-visible trial ids to them. Values are
"bigger is better": the scheduler negates a ``mode="min"`` metric before it
gets here.

The rules are those of Ray Tune 2.53's ``AsyncHyperBandScheduler``, written
down in ``tests/data/ray_asha_cases.json``'s companion README:

* a result with ``t >= max_t`` is stopped outright when ``stop_last_trials``;
* otherwise the trial's bracket scans its rungs from the highest milestone
  down and the first rung with ``milestone <= t`` where the trial has no
  value yet judges it: STOP if ``score < cutoff`` (strictly), and the score is
  recorded there whether or not the trial was stopped;
* with ``stop_last_trials=False`` a rung with ``milestone <= t`` that already
  holds the trial's value ends the scan with CONTINUE.

The cut-off of a rung equals ``np.nanquantile(values, q)`` with numpy's
default ("linear") method, ``q = ((1 - 1/rf) * 100) / 100``, reproduced bit for
bit: NaN values are recorded but ignored by the quantile, a rung holding only
NaN has cut-off NaN (which stops nobody), an empty rung has no cut-off, and a
rung with fewer than ``rf`` values interpolates between its two largest.

Each rung keeps its non-NaN values in two d-ary heaps split at index
``floor(h)``, ``h = (n - 1) * q``: a max-heap with the ``floor(h) + 1`` smallest
values and a min-heap with the rest. Recording a value costs O(log n) (one
push and at most one move between the heaps); the cut-off is recomputed from
the two heap tops after every insertion and read in O(1).

A ``RungTable`` is not thread-safe: call it from one thread, or serialise the
calls. The GIL is released only inside :meth:`RungTable.report_batch`.
"""

from libc.stdint cimport int32_t, int64_t, uint8_t, uint64_t
from libc.stdlib cimport malloc, realloc, free
from libc.string cimport memset
from libc.math cimport floor, INFINITY, NAN

import numpy as np

ctypedef double float64_t

# Arity of the heaps: four children share half a cache line, which halves the
# depth of a sift-down (the cost of a move between the heaps) versus d = 2.
cdef enum:
    ARITY = 4

# Trial status codes, also used by the Python layer.
cdef enum:
    ACTIVE = 0
    STOPPED = 1
    DONE = 2

STATUS_ACTIVE = ACTIVE
STATUS_STOPPED = STOPPED
STATUS_DONE = DONE


cdef struct Rung:
    float64_t milestone
    float64_t* low        # max-heap: the floor(h) + 1 smallest non-NaN values
    int64_t n_low
    int64_t cap_low
    float64_t* high       # min-heap: the other non-NaN values
    int64_t n_high
    int64_t cap_high
    int64_t n_nan
    float64_t cutoff
    uint8_t has_cutoff


# ---------------------------------------------------------------- heap kernels

cdef int _grow(float64_t** data, int64_t* cap, int64_t need) except -1 nogil:
    """Make room for ``need`` values in ``*data``. Amortised O(1)."""
    cdef int64_t new_cap
    cdef float64_t* new_data
    if need <= cap[0]:
        return 0
    new_cap = cap[0] * 2 if cap[0] > 0 else 8
    while new_cap < need:
        new_cap *= 2
    new_data = <float64_t*> realloc(data[0], <size_t> new_cap * sizeof(float64_t))
    if new_data == NULL:
        with gil:
            raise MemoryError(
                f"fastasha._rungs: could not allocate {new_cap * 8} bytes for a rung"
            )
    data[0] = new_data
    cap[0] = new_cap
    return 0


cdef inline void _sift_up_max(float64_t* h, int64_t i) noexcept nogil:
    """Restore the max-heap property above ``h[i]``. O(log n)."""
    cdef float64_t x = h[i]
    cdef int64_t parent
    while i > 0:
        parent = (i - 1) // ARITY
        if not (h[parent] < x):
            break
        h[i] = h[parent]
        i = parent
    h[i] = x


cdef inline void _sift_up_min(float64_t* h, int64_t i) noexcept nogil:
    """Restore the min-heap property above ``h[i]``. O(log n)."""
    cdef float64_t x = h[i]
    cdef int64_t parent
    while i > 0:
        parent = (i - 1) // ARITY
        if not (x < h[parent]):
            break
        h[i] = h[parent]
        i = parent
    h[i] = x


cdef inline void _sift_down_max(float64_t* h, int64_t n, int64_t i) noexcept nogil:
    """Restore the max-heap property below ``h[i]`` in a heap of ``n``. O(log n)."""
    cdef float64_t x = h[i]
    cdef int64_t child, best, last
    while True:
        child = i * ARITY + 1
        if child >= n:
            break
        best = child
        last = child + ARITY
        if last > n:
            last = n
        child += 1
        while child < last:
            if h[best] < h[child]:
                best = child
            child += 1
        if not (x < h[best]):
            break
        h[i] = h[best]
        i = best
    h[i] = x


cdef inline void _sift_down_min(float64_t* h, int64_t n, int64_t i) noexcept nogil:
    """Restore the min-heap property below ``h[i]`` in a heap of ``n``. O(log n)."""
    cdef float64_t x = h[i]
    cdef int64_t child, best, last
    while True:
        child = i * ARITY + 1
        if child >= n:
            break
        best = child
        last = child + ARITY
        if last > n:
            last = n
        child += 1
        while child < last:
            if h[child] < h[best]:
                best = child
            child += 1
        if not (h[best] < x):
            break
        h[i] = h[best]
        i = best
    h[i] = x


cdef int _push_low(Rung* r, float64_t x) except -1 nogil:
    _grow(&r.low, &r.cap_low, r.n_low + 1)
    r.low[r.n_low] = x
    r.n_low += 1
    _sift_up_max(r.low, r.n_low - 1)
    return 0


cdef int _push_high(Rung* r, float64_t x) except -1 nogil:
    _grow(&r.high, &r.cap_high, r.n_high + 1)
    r.high[r.n_high] = x
    r.n_high += 1
    _sift_up_min(r.high, r.n_high - 1)
    return 0


cdef inline float64_t _pop_low(Rung* r) noexcept nogil:
    """Remove and return the largest value of the low heap (caller: n_low > 0)."""
    cdef float64_t top = r.low[0]
    r.n_low -= 1
    if r.n_low > 0:
        r.low[0] = r.low[r.n_low]
        _sift_down_max(r.low, r.n_low, 0)
    return top


cdef inline float64_t _pop_high(Rung* r) noexcept nogil:
    """Remove and return the smallest value of the high heap (caller: n_high > 0)."""
    cdef float64_t top = r.high[0]
    r.n_high -= 1
    if r.n_high > 0:
        r.high[0] = r.high[r.n_high]
        _sift_down_min(r.high, r.n_high, 0)
    return top


cdef inline int64_t _low_target(int64_t n, float64_t q) noexcept nogil:
    """Size of the low heap for ``n`` values: ``min(floor((n-1)*q) + 1, n)``."""
    cdef float64_t h = (n - 1) * q
    cdef int64_t target
    if h >= n - 1:
        return n
    target = <int64_t> floor(h) + 1
    return target


cdef void _update_cutoff(Rung* r, float64_t q) noexcept nogil:
    """Recompute ``r.cutoff`` from the heap tops, as numpy's linear quantile.

    Mirrors ``numpy.lib._function_base_impl._quantile`` for method="linear":
    ``h = (n - 1) * q``; above the last index both neighbours are ``x[n-1]``
    and ``gamma = h + 1``; otherwise ``x[i]``, ``x[i+1]``, ``gamma = h - i``;
    then numpy's two-branch ``_lerp``. O(1).
    """
    cdef int64_t n = r.n_low + r.n_high
    cdef float64_t h, a, b, gamma, diff
    if n == 0:
        if r.n_nan > 0:
            r.cutoff = NAN
            r.has_cutoff = 1
        else:
            r.has_cutoff = 0
        return
    h = (n - 1) * q
    if h >= n - 1:
        a = r.low[0]
        b = a
        gamma = h + 1.0
    else:
        a = r.low[0]
        b = r.high[0]
        gamma = h - floor(h)
    diff = b - a
    if gamma >= 0.5:
        r.cutoff = b - diff * (1.0 - gamma)
    else:
        r.cutoff = a + diff * gamma
    r.has_cutoff = 1


cdef int _insert(Rung* r, float64_t x, float64_t q) except -1 nogil:
    """Record ``x`` in rung ``r`` and refresh its cut-off. O(log n)."""
    cdef int64_t target
    if x != x:
        r.n_nan += 1
        if r.n_low + r.n_high == 0:
            _update_cutoff(r, q)
        return 0
    if r.n_low == 0 or not (r.low[0] < x):
        _push_low(r, x)
    else:
        _push_high(r, x)
    target = _low_target(r.n_low + r.n_high, q)
    while r.n_low > target:
        _push_high(r, _pop_low(r))
    while r.n_low < target:
        _push_low(r, _pop_high(r))
    _update_cutoff(r, q)
    return 0


# ------------------------------------------------------------------- the table

cdef class RungTable:
    """Rungs of every bracket and the per-trial state of an ASHA scheduler.

    Parameters
    ----------
    milestones : list of list of float
        For each bracket, its milestones highest first (an empty list is a
        bracket with no rungs). The scheduler computes them in Python with
        Ray Tune's arithmetic and passes them here unchanged.
    max_t : float
        Results with ``t >= max_t`` are stopped outright when
        ``stop_last_trials`` is true.
    q : float
        Quantile of the cut-off, ``((1 - 1/rf) * 100) / 100``.
    stop_last_trials : bool
        Ray Tune's ``stop_last_trials``.

    Notes
    -----
    Memory: 5 bytes plus 8 bytes per 64 rungs of the widest bracket per
    trial, and at most 16 bytes per recorded value (the heaps double their
    capacity when they grow).
    """

    cdef Rung* _rungs
    cdef int64_t _n_rungs_total
    cdef int32_t* _bracket_start
    cdef int32_t* _bracket_len
    cdef int32_t _n_brackets
    cdef int32_t _words
    cdef float64_t _max_t
    cdef float64_t _q
    cdef bint _stop_last_trials
    # per-trial flat arrays
    cdef int32_t* _bracket
    cdef uint8_t* _status
    cdef uint64_t* _bits
    cdef int64_t _n_trials
    cdef int64_t _cap_trials

    def __cinit__(self):
        self._rungs = NULL
        self._bracket_start = NULL
        self._bracket_len = NULL
        self._bracket = NULL
        self._status = NULL
        self._bits = NULL
        self._n_trials = 0
        self._cap_trials = 0

    def __init__(self, milestones, double max_t, double q, bint stop_last_trials):
        cdef int64_t b, k, pos, widest = 0
        n_brackets = len(milestones)
        if n_brackets < 1:
            raise ValueError("RungTable needs at least one bracket")
        if not 0.0 < q <= 1.0:
            raise ValueError(f"q must be in (0, 1], got {q!r}")
        self._n_brackets = n_brackets
        self._max_t = max_t
        self._q = q
        self._stop_last_trials = stop_last_trials
        self._n_rungs_total = sum(len(m) for m in milestones)
        self._bracket_start = <int32_t*> malloc(n_brackets * sizeof(int32_t))
        self._bracket_len = <int32_t*> malloc(n_brackets * sizeof(int32_t))
        self._rungs = <Rung*> malloc(max(self._n_rungs_total, 1) * sizeof(Rung))
        if self._bracket_start == NULL or self._bracket_len == NULL or self._rungs == NULL:
            raise MemoryError("fastasha._rungs: could not allocate the rung table")
        memset(self._rungs, 0, max(self._n_rungs_total, 1) * sizeof(Rung))
        pos = 0
        for b in range(n_brackets):
            ms = [float(m) for m in milestones[b]]
            if any(ms[i] <= ms[i + 1] for i in range(len(ms) - 1)):
                raise ValueError(f"milestones of bracket {b} must be strictly decreasing, got {ms}")
            self._bracket_start[b] = pos
            self._bracket_len[b] = len(ms)
            widest = max(widest, len(ms))
            for k in range(len(ms)):
                self._rungs[pos + k].milestone = ms[k]
            pos += len(ms)
        self._words = max(1, (widest + 63) // 64)

    def __dealloc__(self):
        cdef int64_t i
        if self._rungs != NULL:
            for i in range(self._n_rungs_total):
                free(self._rungs[i].low)
                free(self._rungs[i].high)
            free(self._rungs)
        free(self._bracket_start)
        free(self._bracket_len)
        free(self._bracket)
        free(self._status)
        free(self._bits)

    # ------------------------------------------------------------ properties

    @property
    def n_trials(self):
        """Number of trials added so far."""
        return self._n_trials

    @property
    def n_brackets(self):
        """Number of brackets."""
        return self._n_brackets

    # ---------------------------------------------------------------- trials

    cdef int _reserve(self, int64_t need) except -1:
        """Grow the per-trial arrays to hold ``need`` trials. Amortised O(1)."""
        cdef int64_t cap = self._cap_trials
        cdef void* p
        if need <= cap:
            return 0
        cap = cap * 2 if cap > 0 else 1024
        while cap < need:
            cap *= 2
        p = realloc(self._bracket, <size_t> cap * sizeof(int32_t))
        if p == NULL:
            raise MemoryError(f"fastasha._rungs: could not allocate {cap * 4} bytes of trial state")
        self._bracket = <int32_t*> p
        p = realloc(self._status, <size_t> cap * sizeof(uint8_t))
        if p == NULL:
            raise MemoryError(f"fastasha._rungs: could not allocate {cap} bytes of trial state")
        self._status = <uint8_t*> p
        p = realloc(self._bits, <size_t> cap * self._words * sizeof(uint64_t))
        if p == NULL:
            raise MemoryError(
                f"fastasha._rungs: could not allocate {cap * self._words * 8} bytes of trial state"
            )
        self._bits = <uint64_t*> p
        self._cap_trials = cap
        return 0

    def add_trials(self, const int32_t[::1] brackets):
        """Append one trial per entry of ``brackets``; return the first new index.

        Raises ``ValueError`` if a bracket index is out of range; nothing is
        added then.
        """
        cdef int64_t n = brackets.shape[0]
        cdef int64_t i, first = self._n_trials
        for i in range(n):
            if brackets[i] < 0 or brackets[i] >= self._n_brackets:
                raise ValueError(
                    f"bracket index {brackets[i]} is out of range for {self._n_brackets} bracket(s)"
                )
        self._reserve(first + n)
        for i in range(n):
            self._bracket[first + i] = brackets[i]
            self._status[first + i] = ACTIVE
        memset(&self._bits[first * self._words], 0, <size_t> n * self._words * sizeof(uint64_t))
        self._n_trials = first + n
        return first

    cpdef int64_t add_trial(self, int32_t bracket) except -1:
        """Append one trial in ``bracket``; return its index."""
        cdef int64_t idx = self._n_trials
        if bracket < 0 or bracket >= self._n_brackets:
            raise ValueError(
                f"bracket index {bracket} is out of range for {self._n_brackets} bracket(s)"
            )
        self._reserve(idx + 1)
        self._bracket[idx] = bracket
        self._status[idx] = ACTIVE
        memset(&self._bits[idx * self._words], 0, self._words * sizeof(uint64_t))
        self._n_trials = idx + 1
        return idx

    cdef inline int _check_idx(self, int64_t idx) except -1:
        if idx < 0 or idx >= self._n_trials:
            raise IndexError(f"trial index {idx} is out of range for {self._n_trials} trial(s)")
        return 0

    def bracket_of(self, int64_t idx):
        """Bracket index of trial ``idx``."""
        self._check_idx(idx)
        return self._bracket[idx]

    def status(self, int64_t idx):
        """Status code of trial ``idx``: STATUS_ACTIVE, STATUS_STOPPED or STATUS_DONE."""
        self._check_idx(idx)
        return self._status[idx]

    def set_status(self, int64_t idx, int status):
        """Overwrite the status code of trial ``idx`` (used by state restore and removal)."""
        self._check_idx(idx)
        if status not in (ACTIVE, STOPPED, DONE):
            raise ValueError(f"unknown status code {status}")
        self._status[idx] = <uint8_t> status

    # --------------------------------------------------------------- kernels

    cdef int _scan(self, int64_t idx, float64_t t, float64_t score) except -1 nogil:
        """Rung scan of one result; 1 means STOP. Caller: 0 <= idx < n_trials.

        O(number of rungs of the bracket) plus O(log n) for an insertion.
        """
        cdef int32_t b = self._bracket[idx]
        cdef int32_t start = self._bracket_start[b]
        cdef int32_t n_rungs = self._bracket_len[b]
        cdef uint64_t* bits = &self._bits[idx * self._words]
        cdef int32_t k
        cdef bint recorded, stop
        cdef Rung* r
        for k in range(n_rungs):
            r = &self._rungs[start + k]
            recorded = (bits[k >> 6] >> (k & 63)) & 1
            if t >= r.milestone and recorded and not self._stop_last_trials:
                return 0
            if t < r.milestone or recorded:
                continue
            stop = r.has_cutoff and score < r.cutoff
            _insert(r, score, self._q)
            bits[k >> 6] |= (<uint64_t> 1) << (k & 63)
            return 1 if stop else 0
        return 0

    cdef int _report(self, int64_t idx, float64_t t, float64_t score) except -1 nogil:
        """Judge one result of trial ``idx``; 1 means STOP. Caller: idx in range."""
        cdef int decision
        if self._status[idx] != ACTIVE:
            return 1
        if self._stop_last_trials and t >= self._max_t:
            self._status[idx] = STOPPED
            return 1
        decision = self._scan(idx, t, score)
        if decision:
            self._status[idx] = STOPPED
        return decision

    cpdef int report(self, int64_t idx, double t, double score) except -1:
        """Judge one result; return 1 for STOP, 0 for CONTINUE.

        ``score`` is bigger-is-better. A result for a stopped or finished
        trial changes nothing and returns 1.
        """
        self._check_idx(idx)
        return self._report(idx, t, score)

    cpdef int complete(self, int64_t idx, double t, double score) except -1:
        """Run the rung scan for a trial's final result, then retire the trial.

        As Ray's ``on_trial_complete``: no ``max_t`` shortcut, the decision is
        discarded, and the value may still be recorded (also after a STOP).
        Returns 1 if the scan ran, 0 if the trial was already retired.
        """
        self._check_idx(idx)
        if self._status[idx] == DONE:
            return 0
        self._scan(idx, t, score)
        self._status[idx] = DONE
        return 1

    def report_batch(self, const int64_t[::1] idx, const float64_t[::1] t,
                     const float64_t[::1] score, uint8_t[::1] out):
        """Judge a batch of results in order; write 1 to ``out`` where STOP.

        Equivalent to calling :meth:`report` on each element in turn. The
        indices are checked before any state changes; the loop itself runs
        without the GIL.
        """
        cdef int64_t n = idx.shape[0]
        cdef int64_t i
        if t.shape[0] != n or score.shape[0] != n or out.shape[0] != n:
            raise ValueError(
                f"batch arrays differ in length: idx {n}, t {t.shape[0]}, "
                f"score {score.shape[0]}, out {out.shape[0]}"
            )
        for i in range(n):
            if idx[i] < 0 or idx[i] >= self._n_trials:
                raise IndexError(
                    f"trial index {idx[i]} at position {i} is out of range for "
                    f"{self._n_trials} trial(s)"
                )
        with nogil:
            self._report_batch(idx, t, score, out)

    cdef int _report_batch(self, const int64_t[::1] idx, const float64_t[::1] t,
                           const float64_t[::1] score, uint8_t[::1] out) except -1 nogil:
        """Batch kernel. Caller: equal lengths, every index in range. O(n log n)."""
        cdef int64_t i
        for i in range(idx.shape[0]):
            out[i] = <uint8_t> self._report(idx[i], t[i], score[i])
        return 0

    cpdef double decision_point(self, int64_t idx) except? -1:
        """Smallest ``t`` at which trial ``idx``'s next result can change anything.

        With ``stop_last_trials``: the lowest milestone where the trial has no
        value yet, or ``max_t`` if that is smaller (a trial that jumped over a
        rung has an unfilled milestone below its last ``t``, so its very next
        report is a decision point). Without it: the lowest milestone above
        the trial's highest recorded rung. ``inf`` when nothing can happen,
        including for stopped and finished trials. Valid for non-decreasing
        ``t``.
        """
        self._check_idx(idx)
        cdef int32_t b = self._bracket[idx]
        cdef int32_t start = self._bracket_start[b]
        cdef int32_t n_rungs = self._bracket_len[b]
        cdef uint64_t* bits = &self._bits[idx * self._words]
        cdef int32_t k
        cdef double point = INFINITY
        if self._status[idx] != ACTIVE:
            return INFINITY
        if self._stop_last_trials:
            point = self._max_t
            for k in range(n_rungs - 1, -1, -1):     # lowest milestone first
                if not ((bits[k >> 6] >> (k & 63)) & 1):
                    if self._rungs[start + k].milestone < point:
                        point = self._rungs[start + k].milestone
                    break
            return point
        for k in range(n_rungs):                      # highest milestone first
            if (bits[k >> 6] >> (k & 63)) & 1:
                break
            point = self._rungs[start + k].milestone
        return point

    # ------------------------------------------------------------- read-outs

    cdef Rung* _rung(self, int32_t bracket, int32_t k) except NULL:
        if bracket < 0 or bracket >= self._n_brackets:
            raise IndexError(f"bracket {bracket} is out of range for {self._n_brackets} bracket(s)")
        if k < 0 or k >= self._bracket_len[bracket]:
            raise IndexError(f"rung {k} is out of range for bracket {bracket}")
        return &self._rungs[self._bracket_start[bracket] + k]

    def milestones(self, int32_t bracket):
        """Milestones of ``bracket``, highest first."""
        if bracket < 0 or bracket >= self._n_brackets:
            raise IndexError(f"bracket {bracket} is out of range for {self._n_brackets} bracket(s)")
        start = self._bracket_start[bracket]
        return [self._rungs[start + k].milestone for k in range(self._bracket_len[bracket])]

    def cutoff(self, int32_t bracket, int32_t k):
        """Cut-off of rung ``k`` of ``bracket`` (bigger is better); None if empty."""
        cdef Rung* r = self._rung(bracket, k)
        return r.cutoff if r.has_cutoff else None

    def n_recorded(self, int32_t bracket, int32_t k):
        """Number of values recorded in rung ``k`` of ``bracket``, NaN included."""
        cdef Rung* r = self._rung(bracket, k)
        return r.n_low + r.n_high + r.n_nan

    def values(self, int32_t bracket, int32_t k):
        """Recorded values of a rung: sorted non-NaN values, then one NaN per NaN."""
        cdef Rung* r = self._rung(bracket, k)
        cdef int64_t i
        out = np.empty(r.n_low + r.n_high + r.n_nan, dtype=np.float64)
        cdef float64_t[::1] view = out
        for i in range(r.n_low):
            view[i] = r.low[i]
        for i in range(r.n_high):
            view[r.n_low + i] = r.high[i]
        out[: r.n_low + r.n_high].sort()
        out[r.n_low + r.n_high:] = np.nan
        return out

    def load_rung(self, int32_t bracket, int32_t k, values):
        """Replace the values of an empty rung by ``values`` (state restore)."""
        cdef Rung* r = self._rung(bracket, k)
        cdef int64_t i, target
        if r.n_low + r.n_high + r.n_nan:
            raise ValueError(f"rung {k} of bracket {bracket} is not empty")
        arr = np.asarray(values, dtype=np.float64)
        nan = np.isnan(arr)
        cdef float64_t[::1] finite = np.sort(arr[~nan])
        cdef int64_t n = finite.shape[0]
        target = _low_target(n, self._q) if n else 0
        _grow(&r.low, &r.cap_low, target)
        _grow(&r.high, &r.cap_high, n - target)
        # A descending array is a max-heap, an ascending one a min-heap.
        for i in range(target):
            r.low[i] = finite[target - 1 - i]
        for i in range(n - target):
            r.high[i] = finite[target + i]
        r.n_low = target
        r.n_high = n - target
        r.n_nan = int(nan.sum())
        _update_cutoff(r, self._q)

    def trial_bits(self, int64_t idx):
        """Recorded rungs of trial ``idx`` as an int bit mask (bit k = rung k)."""
        self._check_idx(idx)
        mask = 0
        for w in range(self._words):
            mask |= int(self._bits[idx * self._words + w]) << (64 * w)
        return mask

    def set_trial_bits(self, int64_t idx, mask):
        """Overwrite the recorded-rung mask of trial ``idx`` (state restore)."""
        self._check_idx(idx)
        mask = int(mask)
        if mask < 0 or mask >> (64 * self._words):
            raise ValueError(f"rung mask {mask} does not fit {self._words * 64} rungs")
        for w in range(self._words):
            self._bits[idx * self._words + w] = (mask >> (64 * w)) & 0xFFFFFFFFFFFFFFFF

    def trial_arrays(self):
        """Copies of the per-trial bracket and status arrays (numpy int32, uint8)."""
        brackets = np.empty(self._n_trials, dtype=np.int32)
        status = np.empty(self._n_trials, dtype=np.uint8)
        cdef int32_t[::1] bv = brackets
        cdef uint8_t[::1] sv = status
        cdef int64_t i
        for i in range(self._n_trials):
            bv[i] = self._bracket[i]
            sv[i] = self._status[i]
        return brackets, status

    def nbytes(self):
        """Bytes allocated by this table (trial arrays and rung heaps)."""
        cdef int64_t i, total = 0
        total += self._cap_trials * (sizeof(int32_t) + sizeof(uint8_t) + self._words * sizeof(uint64_t))
        for i in range(self._n_rungs_total):
            total += (self._rungs[i].cap_low + self._rungs[i].cap_high) * sizeof(float64_t)
        total += self._n_rungs_total * sizeof(Rung)
        return total
