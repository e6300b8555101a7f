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

Each rung keeps its non-NaN values in three parts, in ascending order: an
8-ary max-heap, a sorted window of at most 64 values, and an 8-ary min-heap.
The window always holds the order statistics the quantile reads (ranks
``floor(h)`` and ``floor(h) + 1``, ``h = (n - 1) * q``). Recording a value costs
O(log n): one heap push, or an insertion into the window, plus a move between
a heap and the window when the quantile's rank leaves the window (rare for a
stationary stream). The cut-off is recomputed after every insertion and read
in O(1).

A ``RungTable`` is not thread-safe: call it from one thread, or serialise the
calls. The GIL is released only inside :meth:`RungTable.report_batch`.
"""

from libc.stdint cimport int32_t, int64_t, uint8_t, uint64_t
from libc.stdlib cimport malloc, realloc, free
from libc.string cimport memset
from libc.math cimport floor, INFINITY, NAN

# numpy is imported where it is used (read-outs and restore only), so that
# importing fastasha in a worker process stays cheap.

ctypedef double float64_t

# Arity of the heaps. A node's children are stored contiguously and, thanks
# to the offset below, aligned to a cache line of 8 doubles: a sift-down
# touches one line per level, and a heap of a million values is 7 levels deep.
cdef enum:
    ARITY = 8
    # heap element i lives at data[i + HEAP_OFFSET], so the children of i,
    # ARITY*i + 1 .. ARITY*i + ARITY, start at a multiple of ARITY.
    HEAP_OFFSET = ARITY - 1
    # capacity of the sorted window around the quantile
    WINDOW = 64

# Trial status codes, also used by the Python layer.
cdef enum:
    ACTIVE = 0
    STOPPED = 1
    DONE = 2

STATUS_ACTIVE = ACTIVE
STATUS_STOPPED = STOPPED
STATUS_DONE = DONE

cdef extern from *:
    """
    #if defined(__GNUC__) || defined(__clang__)
    #define FASTASHA_PREFETCH(p) __builtin_prefetch(p)
    #else
    #define FASTASHA_PREFETCH(p) ((void)0)
    #endif
    """
    void FASTASHA_PREFETCH(const void* p) noexcept nogil


cdef struct Heap:
    float64_t* data       # element i at data[i + HEAP_OFFSET]
    int64_t n
    int64_t cap           # elements that fit


cdef struct Rung:
    float64_t milestone
    # The non-NaN values, in ascending order, are: the values of ``low`` (a
    # max-heap), then ``window[0:n_window]`` (sorted), then the values of
    # ``high`` (a min-heap). The window always holds the order statistics the
    # cut-off needs.
    Heap low
    Heap high
    float64_t window[WINDOW + 1]
    int64_t n_window
    int64_t n_nan
    float64_t cutoff
    uint8_t has_cutoff


cdef struct Trial:
    uint64_t bits         # rung k (highest milestone first) recorded, k < 64
    int32_t bracket
    uint8_t status


# ---------------------------------------------------------------- heap kernels

cdef int _heap_reserve(Heap* h, int64_t need) except -1 nogil:
    """Make room for ``need`` elements. Amortised O(1)."""
    cdef int64_t new_cap
    cdef float64_t* new_data
    if need <= h.cap:
        return 0
    new_cap = h.cap * 2 if h.cap > 0 else 64
    while new_cap < need:
        new_cap *= 2
    new_data = <float64_t*> realloc(h.data, <size_t> (new_cap + HEAP_OFFSET) * sizeof(float64_t))
    if new_data == NULL:
        with gil:
            raise MemoryError(
                f"fastasha._rungs: could not allocate {(new_cap + HEAP_OFFSET) * 8} bytes for a rung"
            )
    h.data = new_data
    h.cap = new_cap
    return 0


cdef inline float64_t _heap_top(Heap* h) noexcept nogil:
    return h.data[HEAP_OFFSET]


cdef int _heap_push(Heap* h, float64_t x, bint is_max) except -1 nogil:
    """Add ``x`` to a max-heap (``is_max``) or min-heap. O(log n)."""
    cdef float64_t* d
    cdef int64_t i, parent
    _heap_reserve(h, h.n + 1)
    d = h.data + HEAP_OFFSET
    i = h.n
    h.n += 1
    while i > 0:
        parent = (i - 1) // ARITY
        if is_max:
            if not (d[parent] < x):
                break
        else:
            if not (x < d[parent]):
                break
        d[i] = d[parent]
        i = parent
    d[i] = x
    return 0


cdef float64_t _heap_pop(Heap* h, bint is_max) noexcept nogil:
    """Remove and return the top of a non-empty heap. O(log n)."""
    cdef float64_t* d = h.data + HEAP_OFFSET
    cdef float64_t top = d[0]
    cdef float64_t x
    cdef int64_t i = 0, n, child, best, last
    h.n -= 1
    n = h.n
    if n == 0:
        return top
    x = d[n]
    while True:
        child = i * ARITY + 1
        if child >= n:
            break
        best = child
        last = child + ARITY
        if last > n:
            last = n
        child += 1
        if is_max:
            while child < last:
                if d[best] < d[child]:
                    best = child
                child += 1
            if not (x < d[best]):
                break
        else:
            while child < last:
                if d[child] < d[best]:
                    best = child
                child += 1
            if not (d[best] < x):
                break
        d[i] = d[best]
        i = best
    d[i] = x
    return top


# -------------------------------------------------------------- window kernels

cdef inline void _window_insert_at(Rung* r, int64_t pos, float64_t x) noexcept nogil:
    """Insert ``x`` at ``pos`` of the window (caller: room for one more). O(WINDOW)."""
    cdef int64_t j = r.n_window
    while j > pos:
        r.window[j] = r.window[j - 1]
        j -= 1
    r.window[pos] = x
    r.n_window += 1


cdef inline float64_t _window_pop_front(Rung* r) noexcept nogil:
    cdef float64_t x = r.window[0]
    cdef int64_t j
    r.n_window -= 1
    for j in range(r.n_window):
        r.window[j] = r.window[j + 1]
    return x


cdef inline int64_t _window_upper_bound(Rung* r, float64_t x) noexcept nogil:
    """First window position whose value is greater than ``x``. O(log WINDOW)."""
    cdef int64_t lo = 0, hi = r.n_window, mid
    while lo < hi:
        mid = (lo + hi) >> 1
        if x < r.window[mid]:
            hi = mid
        else:
            lo = mid + 1
    return lo


cdef inline void _needed(int64_t n, float64_t q, int64_t* first, int64_t* last) noexcept nogil:
    """Ranks of the order statistics the cut-off of ``n`` values reads.

    ``h = (n-1)*q``; below the last index they are ``floor(h)`` and
    ``floor(h) + 1``, above it both are ``n - 1``.
    """
    cdef float64_t h = (n - 1) * q
    cdef int64_t i
    if h >= n - 1:
        first[0] = n - 1
        last[0] = n - 1
    else:
        i = <int64_t> floor(h)
        first[0] = i
        last[0] = i + 1


cdef void _update_cutoff(Rung* r, float64_t q) noexcept nogil:
    """Recompute ``r.cutoff`` as numpy's linear quantile. O(1).

    Mirrors ``numpy.lib._function_base_impl._quantile`` for method="linear":
    ``h = (n - 1) * q``; above the last index both neighbours are ``x[n-1]``
    and ``gamma = h + 1``; otherwise ``x[i]``, ``x[i+1]`` with ``i = floor(h)``
    and ``gamma = h - i``; then numpy's two-branch ``_lerp``. Caller: the
    window holds the ranks :func:`_needed` names.
    """
    cdef int64_t n = r.low.n + r.n_window + r.high.n
    cdef int64_t first, last
    cdef float64_t h, a, b, gamma, diff
    if n == 0:
        if r.n_nan > 0:
            r.cutoff = NAN
            r.has_cutoff = 1
        else:
            r.has_cutoff = 0
        return
    h = (n - 1) * q
    _needed(n, q, &first, &last)
    a = r.window[first - r.low.n]
    b = r.window[last - r.low.n]
    if h >= n - 1:
        gamma = h + 1.0
    else:
        gamma = h - floor(h)
    diff = b - a
    if gamma >= 0.5:
        r.cutoff = b - diff * (1.0 - gamma)
    else:
        r.cutoff = a + diff * gamma
    r.has_cutoff = 1


cdef int _insert(Rung* r, float64_t x, float64_t q) except -1 nogil:
    """Record ``x`` in rung ``r`` and refresh its cut-off. O(log n).

    A value outside the window goes straight into a heap; only when the
    quantile's ranks leave the window does a value move between a heap and
    the window. For a stationary stream the ranks wander like a random walk,
    so such moves are rare (about one in WINDOW / 2 insertions).
    """
    cdef int64_t n, first, last, front_slack, back_slack
    if x != x:
        r.n_nan += 1
        if r.low.n + r.n_window + r.high.n == 0:
            _update_cutoff(r, q)
        return 0
    if r.n_window > 0 and x < r.window[0]:
        _heap_push(&r.low, x, True)
    elif r.n_window > 0 and r.window[r.n_window - 1] < x:
        _heap_push(&r.high, x, False)
    else:
        _window_insert_at(r, _window_upper_bound(r, x), x)
    n = r.low.n + r.n_window + r.high.n
    _needed(n, q, &first, &last)
    # bring the needed ranks into the window
    while r.low.n > first:
        _window_insert_at(r, 0, _heap_pop(&r.low, True))
        if r.n_window > WINDOW:
            _heap_push(&r.high, r.window[r.n_window - 1], False)
            r.n_window -= 1
    while r.low.n + r.n_window <= last:
        r.window[r.n_window] = _heap_pop(&r.high, False)
        r.n_window += 1
        if r.n_window > WINDOW:
            _heap_push(&r.low, _window_pop_front(r), True)
    # keep the window within its capacity, shrinking the side with more slack
    while r.n_window > WINDOW:
        front_slack = first - r.low.n
        back_slack = r.low.n + r.n_window - 1 - last
        if front_slack > back_slack:
            _heap_push(&r.low, _window_pop_front(r), True)
        else:
            _heap_push(&r.high, r.window[r.n_window - 1], False)
            r.n_window -= 1
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
    Memory: 16 bytes per trial (plus 8 per further 64 rungs when a bracket
    has more than 64), and at most 16 bytes per recorded value (the heaps
    double their capacity when they grow). :meth:`add_trials` reserves
    exactly the trials it adds; :meth:`add_trial` doubles the reservation
    when it runs out, so trials added one at a time take up to twice that.
    """

    cdef Rung* _rungs
    cdef int64_t _n_rungs_total
    cdef int32_t* _bracket_start
    cdef int32_t* _bracket_len
    cdef int32_t _n_brackets
    cdef int32_t _extra_words      # bit words per trial beyond the first 64 rungs
    cdef float64_t _max_t
    cdef float64_t _q
    cdef bint _stop_last_trials
    cdef Trial* _trials
    cdef uint64_t* _extra_bits
    cdef int64_t _n_trials
    cdef int64_t _cap_trials

    def __cinit__(self):
        self._rungs = NULL
        self._n_rungs_total = 0
        self._bracket_start = NULL
        self._bracket_len = NULL
        self._trials = NULL
        self._extra_bits = NULL
        self._n_trials = 0
        self._cap_trials = 0

    def __init__(self, milestones, double max_t, double q, bint stop_last_trials):
        cdef int64_t b, k, pos, widest = 0, n_rungs_total
        n_brackets = len(milestones)
        if n_brackets < 1:
            raise ValueError("RungTable needs at least one bracket")
        if not 0.0 < q <= 1.0:
            raise ValueError(f"q must be in (0, 1], got {q!r}")
        if self._rungs != NULL:
            raise RuntimeError("RungTable.__init__ must not be called twice")
        rows = [[float(m) for m in ms] for ms in milestones]
        for b, ms in enumerate(rows):
            if any(ms[i] <= ms[i + 1] for i in range(len(ms) - 1)):
                raise ValueError(f"milestones of bracket {b} must be strictly decreasing, got {ms}")
        n_rungs_total = sum(len(ms) for ms in rows)
        self._n_brackets = n_brackets
        self._max_t = max_t
        self._q = q
        self._stop_last_trials = stop_last_trials
        self._bracket_start = <int32_t*> malloc(n_brackets * sizeof(int32_t))
        self._bracket_len = <int32_t*> malloc(n_brackets * sizeof(int32_t))
        self._rungs = <Rung*> malloc(max(n_rungs_total, 1) * sizeof(Rung))
        if self._bracket_start == NULL or self._bracket_len == NULL or self._rungs == NULL:
            raise MemoryError("fastasha._rungs: could not allocate the rung table")
        memset(self._rungs, 0, max(n_rungs_total, 1) * sizeof(Rung))
        self._n_rungs_total = n_rungs_total
        pos = 0
        for b, ms in enumerate(rows):
            self._bracket_start[b] = pos
            self._bracket_len[b] = len(ms)
            widest = max(widest, len(ms))
            for k in range(len(ms)):
                self._rungs[pos + k].milestone = ms[k]
            pos += len(ms)
        self._extra_words = (widest - 1) // 64 if widest > 64 else 0

    def __dealloc__(self):
        cdef int64_t i
        if self._rungs != NULL:
            for i in range(self._n_rungs_total):
                free(self._rungs[i].low.data)
                free(self._rungs[i].high.data)
            free(self._rungs)
        free(self._bracket_start)
        free(self._bracket_len)
        free(self._trials)
        free(self._extra_bits)

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
        # Doubling keeps one-at-a-time adds amortised O(1); a batch that needs
        # more than that gets exactly what it needs (16 bytes per trial).
        cap = max(need, 2 * cap, 1024)
        p = realloc(self._trials, <size_t> cap * sizeof(Trial))
        if p == NULL:
            raise MemoryError(
                f"fastasha._rungs: could not allocate {cap * sizeof(Trial)} bytes of trial state"
            )
        self._trials = <Trial*> p
        if self._extra_words:
            p = realloc(self._extra_bits, <size_t> cap * self._extra_words * sizeof(uint64_t))
            if p == NULL:
                raise MemoryError(
                    f"fastasha._rungs: could not allocate {cap * self._extra_words * 8} "
                    "bytes of trial state"
                )
            self._extra_bits = <uint64_t*> p
        self._cap_trials = cap
        return 0

    cdef void _init_trial(self, int64_t idx, int32_t bracket) noexcept:
        self._trials[idx].bits = 0
        self._trials[idx].bracket = bracket
        self._trials[idx].status = ACTIVE
        if self._extra_words:
            memset(&self._extra_bits[idx * self._extra_words], 0,
                   self._extra_words * sizeof(uint64_t))

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
            self._init_trial(first + i, brackets[i])
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
        self._init_trial(idx, bracket)
        self._n_trials = idx + 1
        return idx

    cdef inline int _check_idx(self, int64_t idx) except -1:
        if idx < 0 or idx >= self._n_trials:
            raise IndexError(f"trial index {idx} is out of range for {self._n_trials} trial(s)")
        return 0

    def bracket_of(self, int64_t idx):
        """Bracket index of trial ``idx``."""
        self._check_idx(idx)
        return self._trials[idx].bracket

    def status(self, int64_t idx):
        """Status code of trial ``idx``: STATUS_ACTIVE, STATUS_STOPPED or STATUS_DONE."""
        self._check_idx(idx)
        return self._trials[idx].status

    def set_status(self, int64_t idx, int status):
        """Overwrite the status code of trial ``idx`` (used by state restore and removal)."""
        self._check_idx(idx)
        if status not in (ACTIVE, STOPPED, DONE):
            raise ValueError(f"unknown status code {status}")
        self._trials[idx].status = <uint8_t> status

    # --------------------------------------------------------------- kernels

    cdef inline bint _has(self, int64_t idx, int32_t k) noexcept nogil:
        """Whether trial ``idx`` has a value in rung ``k`` of its bracket."""
        if k < 64:
            return (self._trials[idx].bits >> k) & 1
        return (self._extra_bits[idx * self._extra_words + (k >> 6) - 1] >> (k & 63)) & 1

    cdef inline void _mark(self, int64_t idx, int32_t k) noexcept nogil:
        if k < 64:
            self._trials[idx].bits |= (<uint64_t> 1) << k
        else:
            self._extra_bits[idx * self._extra_words + (k >> 6) - 1] |= (<uint64_t> 1) << (k & 63)

    cdef int _scan(self, int64_t idx, float64_t t, float64_t score) except -1 nogil:
        """Rung scan of one result; 1 means STOP. Caller: 0 <= idx < n_trials.

        O(number of rungs of the bracket) plus O(log n) for an insertion.
        """
        cdef int32_t b = self._trials[idx].bracket
        cdef int32_t start = self._bracket_start[b]
        cdef int32_t n_rungs = self._bracket_len[b]
        cdef int32_t k
        cdef bint recorded, stop
        cdef Rung* r
        for k in range(n_rungs):
            r = &self._rungs[start + k]
            recorded = self._has(idx, k)
            if t >= r.milestone and recorded and not self._stop_last_trials:
                return 0
            if t < r.milestone or recorded:
                continue
            stop = r.has_cutoff and score < r.cutoff
            _insert(r, score, self._q)
            self._mark(idx, k)
            return 1 if stop else 0
        return 0

    cdef int _report(self, int64_t idx, float64_t t, float64_t score) except -1 nogil:
        """Judge one result of trial ``idx``; 1 means STOP. Caller: idx in range."""
        cdef int decision
        if self._trials[idx].status != ACTIVE:
            return 1
        if self._stop_last_trials and t >= self._max_t:
            self._trials[idx].status = STOPPED
            return 1
        decision = self._scan(idx, t, score)
        if decision:
            self._trials[idx].status = STOPPED
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
        if self._trials[idx].status == DONE:
            return 0
        self._scan(idx, t, score)
        self._trials[idx].status = DONE
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
        """Batch kernel. Caller: equal lengths, every index in range. O(n log n).

        The trials of a batch are usually in random order, so each report
        starts with a cache miss on its trial's state; prefetching a few
        reports ahead overlaps those misses.
        """
        cdef int64_t i, n = idx.shape[0]
        cdef int64_t ahead = 16
        for i in range(n):
            if i + ahead < n:
                FASTASHA_PREFETCH(&self._trials[idx[i + ahead]])
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
        cdef int32_t b = self._trials[idx].bracket
        cdef int32_t start = self._bracket_start[b]
        cdef int32_t n_rungs = self._bracket_len[b]
        cdef int32_t k
        cdef double point = INFINITY
        if self._trials[idx].status != ACTIVE:
            return INFINITY
        if self._stop_last_trials:
            point = self._max_t
            for k in range(n_rungs - 1, -1, -1):     # lowest milestone first
                if not self._has(idx, k):
                    if self._rungs[start + k].milestone < point:
                        point = self._rungs[start + k].milestone
                    break
            return point
        for k in range(n_rungs):                      # highest milestone first
            if self._has(idx, k):
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
        return r.low.n + r.n_window + r.high.n + r.n_nan

    def values(self, int32_t bracket, int32_t k):
        """Recorded values of a rung: sorted non-NaN values, then one NaN per NaN."""
        import numpy as np
        cdef Rung* r = self._rung(bracket, k)
        cdef int64_t i, pos = 0
        cdef int64_t n_finite = r.low.n + r.n_window + r.high.n
        out = np.empty(n_finite + r.n_nan, dtype=np.float64)
        cdef float64_t[::1] view = out
        for i in range(r.low.n):
            view[pos] = r.low.data[HEAP_OFFSET + i]
            pos += 1
        for i in range(r.n_window):
            view[pos] = r.window[i]
            pos += 1
        for i in range(r.high.n):
            view[pos] = r.high.data[HEAP_OFFSET + i]
            pos += 1
        out[:n_finite].sort()
        out[n_finite:] = np.nan
        return out

    def load_rung(self, int32_t bracket, int32_t k, values):
        """Fill an empty rung with ``values`` (state restore). O(n log n)."""
        import numpy as np
        cdef Rung* r = self._rung(bracket, k)
        cdef int64_t i, n, first, last, w0, w1
        if r.low.n + r.n_window + r.high.n + r.n_nan:
            raise ValueError(f"rung {k} of bracket {bracket} is not empty")
        arr = np.asarray(values, dtype=np.float64)
        nan = np.isnan(arr)
        cdef float64_t[::1] finite = np.sort(arr[~nan])
        n = finite.shape[0]
        r.n_nan = int(nan.sum())
        if n:
            # the window gets the ranks the cut-off reads plus some slack
            _needed(n, self._q, &first, &last)
            w0 = max(0, first - WINDOW // 4)
            w1 = min(n, w0 + WINDOW // 2)
            _heap_reserve(&r.low, w0)
            _heap_reserve(&r.high, n - w1)
            # A descending array is a max-heap, an ascending one a min-heap.
            for i in range(w0):
                r.low.data[HEAP_OFFSET + i] = finite[w0 - 1 - i]
            for i in range(w1 - w0):
                r.window[i] = finite[w0 + i]
            for i in range(n - w1):
                r.high.data[HEAP_OFFSET + i] = finite[w1 + i]
            r.low.n = w0
            r.n_window = w1 - w0
            r.high.n = n - w1
        _update_cutoff(r, self._q)

    def trial_bits(self, int64_t idx):
        """Recorded rungs of trial ``idx`` as an int bit mask (bit k = rung k)."""
        self._check_idx(idx)
        mask = int(self._trials[idx].bits)
        for w in range(self._extra_words):
            mask |= int(self._extra_bits[idx * self._extra_words + w]) << (64 * (w + 1))
        return mask

    def set_trial_bits(self, int64_t idx, mask):
        """Overwrite the recorded-rung mask of trial ``idx`` (state restore)."""
        self._check_idx(idx)
        mask = int(mask)
        if mask < 0 or mask >> (64 * (self._extra_words + 1)):
            raise ValueError(f"rung mask {mask} does not fit {(self._extra_words + 1) * 64} rungs")
        self._trials[idx].bits = mask & 0xFFFFFFFFFFFFFFFF
        for w in range(self._extra_words):
            self._extra_bits[idx * self._extra_words + w] = (mask >> (64 * (w + 1))) & 0xFFFFFFFFFFFFFFFF

    def trial_arrays(self):
        """Copies of the per-trial bracket and status arrays (numpy int32, uint8)."""
        import numpy as np
        brackets = np.empty(self._n_trials, dtype=np.int32)
        status = np.empty(self._n_trials, dtype=np.uint8)
        cdef int32_t[::1] bv = brackets
        cdef uint8_t[::1] sv = status
        cdef int64_t i
        for i in range(self._n_trials):
            bv[i] = self._trials[i].bracket
            sv[i] = self._trials[i].status
        return brackets, status

    def nbytes(self):
        """Bytes allocated by this table (trial state and rung values)."""
        cdef int64_t i, total = 0
        total += self._cap_trials * (sizeof(Trial) + self._extra_words * sizeof(uint64_t))
        for i in range(self._n_rungs_total):
            total += (self._rungs[i].low.cap + self._rungs[i].high.cap + 2 * HEAP_OFFSET) * sizeof(float64_t)
        total += self._n_rungs_total * sizeof(Rung)
        return total
