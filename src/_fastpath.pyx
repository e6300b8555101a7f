# cython: language_level=3
"""The two per-report hot spots of a trial process, compiled.

A trial that does little work between reports spends most of its time in
``tune.report()`` and in packing its buffered reports for the driver. Both
are written in Python in :mod:`fastasha._session` and :mod:`fastasha._rows`
as well: those versions are the reference this module is tested against
(``tests/test_fastpath.py``), and the only place the rules live in prose.

* :class:`Recorder` holds the state ``report()`` reads and writes on every
  call; :class:`fastasha._session.Session` derives from it and adds
  everything else.
* :func:`report` is ``tune.report``. Its common case (a plain dict, before
  the trial's next decision point, no checkpoint) appends ``(time, copy of
  the dict)`` to the session's buffer and returns; every other case goes to
  ``Session.report``.
* :func:`take_all` empties the buffer of reports in one step.
* :func:`pack_columns` turns a batch of buffered reports into the 8-byte
  arrays of the packed batch format, or says it cannot.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from cpython.dict cimport (PyDict_CheckExact, PyDict_Contains, PyDict_Copy, PyDict_GetItem,
                           PyDict_Next, PyDict_Size)
from cpython.list cimport PyList_Clear
from cpython.float cimport PyFloat_AS_DOUBLE, PyFloat_CheckExact
from cpython.long cimport PyLong_AsLongLongAndOverflow, PyLong_CheckExact
from cpython.object cimport PyObject
from cpython.tuple cimport PyTuple_CheckExact, PyTuple_GET_ITEM, PyTuple_GET_SIZE
from cpython.unicode cimport PyUnicode_CheckExact
from libc.stdint cimport int64_t
from libc.string cimport memcpy
from cpython.pythread cimport PyThread_get_thread_ident
from posix.time cimport CLOCK_REALTIME, clock_gettime, timespec

# what report() is made of (see _report_fastcall)
cdef extern from "Python.h":
    ctypedef struct _MethodDef "PyMethodDef":
        const char *ml_name
        void *ml_meth
        int ml_flags
        const char *ml_doc
    int METH_FASTCALL
    int METH_KEYWORDS
    object PyCFunction_NewEx(_MethodDef *ml, PyObject *self, object module)
    object PyObject_Vectorcall(object callable, PyObject **args, size_t nargsf,
                               PyObject *kwnames)

import numbers
import threading

# the session of the trial running in each thread (set by fastasha._session)
local = threading.local()

# The thread that set its own session last, and that session: report() takes it from
# here instead of looking ``local`` up (a saving of a third of a report's own cost).
# Kept by own_session() alone, which fastasha._session.set_session calls.
cdef unsigned long _own_ident = 0      # (no thread has the ident 0)
cdef object _own_session = None


def own_session(session):
    """Tell :func:`report` the calling thread's own session (None: it has none now).

    Called with every change of the thread's own session; the session it
    finds in ``local`` stays the rule, this only spares the lookup for the
    thread that set one last.
    """
    global _own_ident, _own_session
    cdef unsigned long ident = PyThread_get_thread_ident()
    # The one dropped is released only on return, once both are written: releasing it
    # may run Python code, and so let another thread report or set its own meanwhile.
    old = _own_session
    if session is None:
        if _own_ident == ident:
            _own_ident = 0
            _own_session = None
        return
    _own_ident = 0
    _own_session = session
    _own_ident = ident


def _forget_after_fork():
    """In a forked child, forget a session another thread of the parent set.

    Only the forking thread lives on in the child, and a thread the child
    starts may get the ident of one that did not: it must find no session
    (as ``local`` gives it none), not that thread's copy of another trial's.
    """
    global _own_ident, _own_session
    if _own_ident != PyThread_get_thread_ident():
        _own_ident = 0
        _own_session = None


import os as _os
if hasattr(_os, "register_at_fork"):       # (no fork where it is missing)
    _os.register_at_fork(after_in_child=_forget_after_fork)

cdef str _TRAINING_ITERATION = "training_iteration"
cdef str _DONE = "done"       # a report with a true one ends the trial (Session.report)


cdef inline double _wall_time():
    """Seconds since the epoch, as ``time.time()``."""
    cdef timespec ts
    clock_gettime(CLOCK_REALTIME, &ts)
    return <double>ts.tv_sec + <double>ts.tv_nsec * 1e-9


cdef class Recorder:
    """What ``report()`` needs on every call (see ``fastasha._session.Session``).

    Attributes
    ----------
    iteration : int
        Reports so far (the next one is ``iteration + 1``).
    decision_point : float
        Reports before this iteration only need buffering.
    due : float
        From this time on the next report must look up: a flush is due, or
        a STOP has come in (then it is ``-inf``).
    last : float
        Time of the latest report.
    fast : bool
        Whether the next report may take the common case at all.
    stop_requested : bool
        The driver said STOP; the next report raises.
    buffer : list
        ``(time, metrics)`` of the reports not sent yet (a list, not a
        deque: compiled code appends to it without a method call).
    """

    cdef public long long iteration
    cdef public double decision_point
    cdef public double due
    cdef public double last
    cdef public bint fast
    cdef public bint stop_requested
    cdef public list buffer



def _outside_a_trial():
    """The message of a report made where no trial's session is (a cold path)."""
    import threading

    text = ("tune.report() was called outside a trial; call it from inside the objective "
            "function you pass to tune.Tuner")
    if threading.current_thread() is not threading.main_thread():
        text += (", or from a thread the objective starts while its trial runs (a thread "
                 "left from an earlier trial cannot report, and on joblib's threading "
                 "backend only the objective's own thread can)")
    return text


def report(metrics=None, *, checkpoint=None, **keywords):
    """``report`` called in any other way than with one positional argument."""
    session = _current_session()
    if keywords:
        metrics = _keyword_metrics(metrics, keywords)
    return _report(session, metrics, checkpoint)


# (named report above so that CPython's argument errors name report(); the name is
# rebound to the fast-call function below)
_report_full = report


cdef inline object _current_session():
    if PyThread_get_thread_ident() == _own_ident:
        session = _own_session
    else:
        session = getattr(local, "session", None)
    if session is None:
        raise RuntimeError(_outside_a_trial())
    return session


cdef object _report(object session, object metrics, object checkpoint):
    cdef Recorder rec = <Recorder?>session
    cdef long long iteration
    cdef double now
    if rec.fast and checkpoint is None and PyDict_CheckExact(metrics) and \
            not PyDict_Contains(metrics, _TRAINING_ITERATION) and \
            _not_done(metrics):
        iteration = rec.iteration + 1
        if iteration < rec.decision_point:
            # the common case: buffer it, nothing to decide or check
            rec.iteration = iteration
            now = _wall_time()
            rec.last = now
            rec.buffer.append((now, PyDict_Copy(metrics)))   # the caller may reuse its dict
            if now >= rec.due:
                session.on_due()      # flush, or raise TrialStopped
            return None
    session.report(metrics, checkpoint)
    return None


cdef object _report_fastcall(PyObject *unused, PyObject **args, Py_ssize_t nargs,
                             PyObject *kwnames):
    """``report`` itself: a C function called with CPython's fast calling convention.

    A ``def`` with ``**keywords`` makes a dict at every call, even an empty
    one (about 20 ns of a report's 135 ns of own cost); this takes the usual
    call, ``report(metrics)``, without one, and hands every other form to
    :func:`_report_full`.
    """
    if nargs == 1 and kwnames is NULL:
        return _report(_current_session(), <object>args[0], None)
    return PyObject_Vectorcall(_report_full, args, <size_t>nargs, kwnames)


_REPORT_DOC = b"""report(metrics=None, *, checkpoint=None, **keywords)
--

Report a result of the current trial (Ray Tune's ``tune.report``).

Parameters
----------
metrics : dict
    Metric names to values. fastasha adds ``training_iteration`` (the
    1-based count of reports), ``time_this_iter_s``, ``time_total_s``,
    ``timestamp``, ``date``, ``trial_id``, ``hostname``, ``pid`` and
    ``done``; keys you report yourself take precedence. A true
    ``"done"`` ends the trial after this result, as in Ray Tune (status
    ``TERMINATED``).
checkpoint : Checkpoint, optional
    A directory to keep with this result; the trial resumes from its
    latest checkpoint after a failure or a restore.
**keywords
    Ray Tune 2.6 and earlier took the metrics as keywords,
    ``tune.report(mean_loss=loss)``; that form works too, instead of
    the dict (not beside it), and so does its ``tune.report(value)``,
    reported as ``{"_metric": value}``.

Raises
------
RuntimeError
    When called outside a trial.
TrialStopped
    When the scheduler, a stopper, the sweep's budget or a true
    ``"done"`` in the metrics ends the trial;
    let it propagate (it is not an ``Exception``).
"""   # (its first lines give inspect.signature() and help() the signature)
cdef _MethodDef _report_def
_report_def.ml_name = "report"
_report_def.ml_meth = <void *>_report_fastcall
_report_def.ml_flags = METH_FASTCALL | METH_KEYWORDS
_report_def.ml_doc = _REPORT_DOC
# (no self: pickled by name, as fastasha._fastpath.report)
report = PyCFunction_NewEx(&_report_def, NULL, __name__)


cdef inline bint _not_done(dict metrics):
    """Whether the report cannot end the trial: no ``"done"``, or ``"done": False``."""
    cdef PyObject *done = PyDict_GetItem(metrics, _DONE)
    return done is NULL or <object>done is False


def take_all(list buffer):
    """Every entry of ``buffer`` (a list), in order, as a new list; ``buffer`` is left empty.

    At once: compiled, the copy and the clear run without a thread switch in
    between (no Python code runs there, and the entries live on in the new
    list, so clearing frees none of them), so an entry another thread
    appends (a thread of the objective that reports) is either taken or
    left for the next call, never lost.
    """
    entries = []                 # allocated (a GC may run here) before anything is taken
    entries.extend(buffer)       # no GC-tracked allocation from here on
    PyList_Clear(buffer)         # (frees no entry: the new list holds them)
    return entries


# Ray Tune up to 2.6: the key of the value in tune.report(value)
DEFAULT_METRIC = "_metric"


def _keyword_metrics(metrics, dict keywords):
    """The metrics of ``tune.report(name=value, ...)``, Ray Tune's form up to 2.6."""
    if metrics is None:
        return keywords
    # any real number, as Session.report takes a value alone (numpy's float32 and
    # int64 are no float or int)
    if isinstance(metrics, numbers.Real) and not isinstance(metrics, bool):
        keywords[DEFAULT_METRIC] = metrics       # tune.report(value, name=value)
        return keywords
    raise TypeError(
        f"tune.report() got a dict (or value) and the keywords {sorted(keywords)!r}; "
        "pass the metrics one way: tune.report({'loss': loss}) or, as Ray Tune 2.6 and "
        "earlier took them, tune.report(loss=loss)"
    )


def pack_columns(list entries):
    """The arrays of a packed batch of reports ``[(time, metrics), ...]``, or None.

    Returns ``(keys, types, arrays)``: the metric keys of the first report
    in order, one type code per key (``"d"`` float64, ``"q"`` int64), and
    native-order bytes, first the report times, then one array per key.
    None when the batch is not plain: a report whose keys differ from the
    first one's (in order), a value that is not exactly a ``float`` or an
    ``int`` (``bool`` is neither), a column mixing the two, an int outside
    int64, a key that is not a ``str``, or a time that is not a float.
    """
    cdef Py_ssize_t n = len(entries), k, i, j, pos
    cdef PyObject *key
    cdef PyObject *value
    cdef int overflow
    cdef long long as_int
    cdef double as_float
    cdef double *times
    cdef char *column
    if n == 0:
        return None
    first = entries[0]
    if not PyTuple_CheckExact(first) or PyTuple_GET_SIZE(first) != 2:
        return None
    first_metrics = <object>PyTuple_GET_ITEM(first, 1)
    if not PyDict_CheckExact(first_metrics):
        return None
    keys = tuple(first_metrics)
    k = len(keys)
    if PyDict_Size(first_metrics) != k:    # (cannot differ; the loops below rely on it)
        return None
    for j in range(k):
        if type(keys[j]) is not str:
            return None
    kinds = bytearray(k)          # b"d" or b"q" per column, from the first report
    j = 0
    pos = 0
    while PyDict_Next(first_metrics, &pos, &key, &value):
        if j >= k:
            return None
        if PyFloat_CheckExact(<object>value):
            kinds[j] = 100     # "d"
        elif PyLong_CheckExact(<object>value):
            kinds[j] = 113     # "q"
        else:
            return None
        j += 1
    out_times = PyBytes_FromStringAndSize(NULL, 8 * n)
    times = <double *>PyBytes_AS_STRING(out_times)
    columns = [PyBytes_FromStringAndSize(NULL, 8 * n) for j in range(k)]
    for i in range(n):
        entry = entries[i]
        if not PyTuple_CheckExact(entry) or PyTuple_GET_SIZE(entry) != 2:
            return None
        stamp = <object>PyTuple_GET_ITEM(entry, 0)
        metrics = <object>PyTuple_GET_ITEM(entry, 1)
        if not PyFloat_CheckExact(stamp) or not PyDict_CheckExact(metrics) or \
                PyDict_Size(metrics) != k:
            return None
        times[i] = PyFloat_AS_DOUBLE(stamp)
        j = 0
        pos = 0
        while PyDict_Next(metrics, &pos, &key, &value):
            if j >= k:
                return None
            if <object>key is not keys[j] and not (
                    PyUnicode_CheckExact(<object>key) and <object>key == keys[j]):
                return None           # another key, or the same keys in another order
            column = PyBytes_AS_STRING(columns[j])
            if kinds[j] == 100:
                if not PyFloat_CheckExact(<object>value):
                    return None
                as_float = PyFloat_AS_DOUBLE(<object>value)
                memcpy(column + 8 * i, &as_float, 8)
            else:
                if not PyLong_CheckExact(<object>value):
                    return None
                as_int = PyLong_AsLongLongAndOverflow(<object>value, &overflow)
                if overflow:
                    return None
                memcpy(column + 8 * i, &as_int, 8)
            j += 1
    return keys, kinds.decode("ascii"), [out_times] + columns
