"""The compiled per-report path (fastasha._fastpath) against its Python reference.

``pack_columns`` must agree with ``fastasha._rows.pack_columns_py`` on every
batch, plain or not; ``tune.report``'s compiled common case must leave a
session exactly as ``Session.report`` (the general path, in Python) leaves
it, and send the driver the same messages.
"""

from __future__ import annotations

import math
import pickle

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastasha import _fastpath, _rows, _session, tune

# ------------------------------------------------------------------ packing

_values = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(1 << 70), max_value=1 << 70),
    st.booleans(),
    st.none(),
    st.text(max_size=3),
)
_plain_values = st.one_of(st.floats(allow_nan=True), st.integers(-(1 << 63), (1 << 63) - 1))


@st.composite
def _entries(draw):
    """Buffered reports: mostly plain, with the ways a batch can fail to be."""
    n = draw(st.integers(min_value=1, max_value=10))
    keys = draw(st.lists(st.one_of(st.text(min_size=1, max_size=3), st.integers(0, 3)),
                         max_size=4, unique=True))
    if draw(st.booleans()):
        keys = [str(k) for k in keys]
    values = _plain_values if draw(st.booleans()) else _values
    entries = []
    for i in range(n):
        row_keys = list(keys)
        change = draw(st.integers(0, 19))
        if change == 0 and row_keys:
            row_keys.pop()                               # a key missing
        elif change == 1:
            row_keys.reverse()                           # same keys, another order
        elif change == 2:
            row_keys.append("extra")                     # one more key
        metrics = {k: draw(values) for k in row_keys}
        stamp = draw(st.sampled_from([1e9 + i * 0.5, 7, float("nan")])) \
            if change == 3 else 1e9 + i * 0.5
        entries.append((stamp, metrics))
    return entries


@settings(max_examples=500, deadline=None)
@given(_entries())
def test_compiled_packing_agrees_with_the_python_reference(entries):
    assert _fastpath.pack_columns(entries) == _rows.pack_columns_py(entries)


def test_packing_refuses_what_cannot_be_packed_exactly():
    t = 1e9
    assert _fastpath.pack_columns([(t, {"a": 1.0}), (t, {"a": 2})]) is None      # float, then int
    assert _fastpath.pack_columns([(t, {"a": True})]) is None                   # a bool
    assert _fastpath.pack_columns([(t, {"a": 1 << 63})]) is None                # beyond int64
    assert _fastpath.pack_columns([(t, {"a": 1.0, "b": 2.0}),
                                   (t, {"b": 1.0, "a": 2.0})]) is None          # key order
    assert _fastpath.pack_columns([(t, {1: 1.0})]) is None                      # not a str key
    keys, types, arrays = _fastpath.pack_columns([(t, {"a": 1.5, "b": -3}), (t + 1, {"a": 2.5, "b": 4})])
    assert (keys, types, len(arrays)) == (("a", "b"), "dq", 3)


# ------------------------------------------------------------------ report()

class _Conn:
    """Stands in for the driver: answers every report with CONTINUE (or STOP)."""

    def __init__(self, stop_after: int | None = None) -> None:
        self.sent: list[tuple] = []
        self.stop_after = stop_after

    def send(self, message):
        self.sent.append(message)

    def send_bytes(self, data):     # the worker pickles its messages itself
        self.sent.append(pickle.loads(data))

    def recv(self):
        reports = sum(1 for m in self.sent if m[0] == "report")
        stop = self.stop_after is not None and reports >= self.stop_after
        return ("verdict", stop, 7.0)

    def poll(self, *args):
        return False


def _session_on(conn, **spec):
    link = _session.Link(conn)
    base = {"trial_id": "t", "config": {}, "metric": "loss",
            "time_attr": "training_iteration", "decision_point": 4.0, "stop": {}}
    session = _session.Session(link, {**base, **spec})
    link.session = session
    return link, session


# The ways a script calls report(): the first is the compiled fast call, the others
# go through its general form (keywords, Ray 2.6's metrics as keywords).
_CALLS = {
    "positional": lambda metrics: tune.report(metrics),
    "metrics=": lambda metrics: tune.report(metrics=metrics),
    "checkpoint=None": lambda metrics: tune.report(metrics, checkpoint=None),
    "keywords": lambda metrics: tune.report(**metrics),
}


def _run(reports, via_compiled: bool, stop_after=None, calls=("positional",)):
    conn = _Conn(stop_after)
    link, session = _session_on(conn)
    _session.set_session(session)
    stopped_at = None
    try:
        for i, metrics in enumerate(reports):
            try:
                if via_compiled:
                    _CALLS[calls[i % len(calls)]](metrics)
                else:
                    session.report(metrics)
            except _session.TrialStopped:
                stopped_at = i
                break
        _, n_rows, last = session.drain()
    finally:
        _session.set_session(None)
        link.close()
    messages = [(m[0], m[1], m[3], m[5]) for m in conn.sent]    # kind, trial, rows, why
    buffered = [m[4] and {k: v for k, v in m[4].items()
                          if k not in ("time_this_iter_s", "time_total_s", "timestamp", "date")}
                for m in conn.sent if m[0] == "report"]
    return (stopped_at, session.iteration, session.fast, n_rows, messages, buffered,
            None if last is None else last["training_iteration"])


_report = st.one_of(
    st.dictionaries(st.sampled_from(["loss", "acc", "step"]), st.floats(-5, 5), min_size=1),
    st.just({"loss": 1.0, "training_iteration": 2}),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(_report, min_size=1, max_size=15), st.one_of(st.none(), st.integers(1, 3)),
       st.lists(st.sampled_from(sorted(_CALLS)), min_size=1, max_size=4))
def test_compiled_report_leaves_the_session_as_the_python_path_does(reports, stop_after,
                                                                    calls):
    reports = [dict(m, loss=m.get("loss", 0.0)) for m in reports]
    assert _run(reports, True, stop_after, calls) == _run(reports, False, stop_after)


def test_report_is_found_by_name_and_shows_its_signature():
    # a C function of its own (no dict made per call), still pickled by reference
    # (cloudpickle sends a script's `from fastasha.tune import report` that way)
    import inspect

    assert pickle.loads(pickle.dumps(tune.report)) is tune.report
    assert str(inspect.signature(tune.report)) == \
        "(metrics=None, *, checkpoint=None, **keywords)"
    assert tune.report.__module__ == "fastasha._fastpath" and tune.report.__name__ == "report"
    assert "Report a result of the current trial" in tune.report.__doc__


def test_report_called_wrongly_is_a_type_error_naming_it():
    link, session = _session_on(_Conn(), decision_point=math.inf)
    _session.set_session(session)
    try:
        with pytest.raises(TypeError, match=r"^report\(\) takes at most 1 positional"):
            tune.report({"loss": 1.0}, {"loss": 2.0})
        with pytest.raises(TypeError, match=r"^report\(\) got multiple values .*'metrics'"):
            tune.report({"loss": 1.0}, metrics={"loss": 2.0})
        assert session.iteration == 0 and not session.buffer
    finally:
        _session.set_session(None)
        link.close()


def test_report_keeps_a_copy_of_the_callers_dict():
    link, session = _session_on(_Conn(), decision_point=math.inf)
    _session.set_session(session)
    try:
        metrics = {"loss": 1.0}
        tune.report(metrics)             # the full path: the first report
        tune.report(metrics)             # the compiled common case
        metrics["loss"] = 99.0
        assert session.fast
        assert [m for _, m in session.buffer] == [{"loss": 1.0}, {"loss": 1.0}]
    finally:
        _session.set_session(None)
        link.close()


def test_report_outside_a_trial_is_a_runtime_error():
    _session.set_session(None)
    with pytest.raises(RuntimeError, match="outside a trial") as raised:
        tune.report({"loss": 1.0})
    assert "thread" not in str(raised.value)      # (the main thread: no word of threads)


def test_report_from_a_thread_outside_a_trial_says_which_threads_can_report():
    import threading

    errors = []

    def report():
        try:
            tune.report({"loss": 1.0})
        except RuntimeError as err:
            errors.append(str(err))

    thread = threading.Thread(target=report)
    thread.start()
    thread.join()
    assert len(errors) == 1 and "outside a trial" in errors[0]
    assert "a thread the objective starts while its trial runs" in errors[0]


def test_a_stop_heard_meanwhile_ends_the_next_compiled_report():
    link, session = _session_on(_Conn(), decision_point=math.inf)
    _session.set_session(session)
    try:
        tune.report({"loss": 1.0})
        tune.report({"loss": 2.0})
        assert session.fast
        session.stop_requested, session.due = True, -math.inf   # as a background flush does
        with pytest.raises(_session.TrialStopped):
            tune.report({"loss": 3.0})
        assert session.iteration == 3
    finally:
        _session.set_session(None)
        link.close()


def test_a_refused_report_does_not_count():
    """An objective that catches report()'s error goes on with consecutive iterations."""
    conn = _Conn()
    link, session = _session_on(conn, decision_point=math.inf)
    _session.set_session(session)
    try:
        for _ in range(2):        # refused each time: nothing of the first one sticks
            with pytest.raises(ValueError, match="needs 'loss' in every result"):
                tune.report({"acc": 1.0})
        assert session.iteration == 0
        tune.report({"loss": 1.0})
        tune.report({"loss": 2.0})
        _, n_rows, last = session.drain()
        assert (n_rows, last["training_iteration"], session.iteration) == (2, 2, 2)
    finally:
        _session.set_session(None)
        link.close()


# ------------------------------------------------------------------ taking

def test_take_all_empties_the_buffer_in_order():
    buffer = [(1.0, {"a": 1}), (2.0, {"a": 2})]
    assert _fastpath.take_all(buffer) == [(1.0, {"a": 1}), (2.0, {"a": 2})]
    assert not buffer
    assert _fastpath.take_all(buffer) == []


def test_take_all_loses_and_repeats_nothing_while_another_thread_appends():
    """A thread of the objective may report while the trial's buffer is drained."""
    import threading

    buffer: list = []
    n = 200_000
    done = threading.Event()

    def append() -> None:
        for i in range(n):
            buffer.append((float(i), {"i": i}))
        done.set()

    taken: list = []
    thread = threading.Thread(target=append)
    thread.start()
    while not done.is_set():
        taken.extend(_fastpath.take_all(buffer))
    thread.join()
    taken.extend(_fastpath.take_all(buffer))
    assert [m["i"] for _, m in taken] == list(range(n))


def test_take_all_loses_nothing_to_code_a_garbage_collection_runs_meanwhile():
    """No collection can run between taking the entries and clearing the buffer.

    A collection can run finalizers, and at that point another thread can
    report; what it appends then must be left for the next call, not
    cleared. Here a finalizer stands in for that thread, and a collection
    is due at every allocation.
    """
    import gc

    buffer: list = []

    class Reporter:
        def __del__(self):
            buffer.append((2.0, {"a": 2}))

    lost = 0
    threshold = gc.get_threshold()
    try:
        for i in range(50):
            buffer.clear()
            buffer.append((1.0, {"a": 1}))
            cycle = Reporter()
            cycle.me = cycle          # garbage only a collection frees
            del cycle
            gc.set_threshold(1)
            held = slice(i)           # (takes the interpreter's one cached slice object)
            taken = _fastpath.take_all(buffer)
            gc.set_threshold(*threshold)
            gc.collect()
            del held
            lost += len(taken) + len(buffer) < 2
    finally:
        gc.set_threshold(*threshold)
    assert lost == 0


# ------------------------------------------------------ the thread's own session

def test_each_thread_reports_into_its_own_session_and_none_after_its_trial():
    """report() keeps the session of the thread that set one last; it must never hand
    that session to another thread, nor keep it once the thread's trial has ended."""
    import threading

    sessions = {}
    ready = [threading.Event(), threading.Event()]
    go = [threading.Event(), threading.Event()]
    errors = []

    def trial(k: int) -> None:
        link, session = _session_on(_Conn(), trial_id=f"t{k}", decision_point=math.inf)
        sessions[k] = session
        _session.set_session(session)
        try:
            ready[k].set()
            for step in range(50):
                go[k].wait()
                tune.report({"loss": float(k)})
                go[k].clear()
                ready[k].set()
        finally:
            _session.set_session(None)
            link.close()
        try:
            tune.report({"loss": 0.0})
        except RuntimeError as err:
            errors.append((k, str(err)))

    threads = [threading.Thread(target=trial, args=(k,)) for k in (0, 1)]
    for t in threads:
        t.start()
    for step in range(50):
        for k in (1, 0) if step % 2 else (0, 1):    # each report follows one of the other's
            ready[k].wait()
            ready[k].clear()
            go[k].set()
    for t in threads:
        t.join()
    for k in (0, 1):
        values = [m["loss"] for _, m in sessions[k].buffer]
        assert sessions[k].iteration == 50 and set(values) == {float(k)}
    assert sorted(k for k, text in errors if "outside a trial" in text) == [0, 1]
    with pytest.raises(RuntimeError, match="outside a trial"):
        tune.report({"loss": 1.0})              # nor in this thread, which set none


def test_a_thread_of_a_forked_child_never_reports_into_another_threads_trial():
    """Trial A's thread set its session last; trial B's thread forks (its objective starts
    a process). In the child only B's thread lives on, and a new thread there can get
    A's thread ident (glibc reuses the stacks of the threads that did not come along):
    its report must fail as outside a trial, not land in the child's copy of A's session."""
    import os
    import threading

    class Landing(_fastpath.Recorder):
        def __init__(self):
            self.fast = False

        def report(self, metrics, checkpoint):
            raise AssertionError("the report landed in trial A's session")

    a_ready, a_stop = threading.Event(), threading.Event()

    def trial_a():
        _session.set_session(Landing())
        a_ready.set()
        a_stop.wait()
        _session.set_session(None)

    a = threading.Thread(target=trial_a)
    a.start()
    a_ready.wait()
    codes = []

    def trial_b():
        pid = os.fork()
        if pid == 0:
            code = 2                          # no thread got A's ident: nothing shown
            try:
                for _ in range(20):
                    outcome = []

                    def helper():
                        if threading.get_ident() != a.ident:
                            return
                        try:
                            tune.report({"loss": 1.0})
                            outcome.append(1)
                        except RuntimeError:
                            outcome.append(0)
                        except AssertionError:
                            outcome.append(1)

                    h = threading.Thread(target=helper)
                    h.start()
                    h.join()
                    if outcome:
                        code = outcome[0]
                        break
            finally:
                os._exit(code)
        codes.append(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))

    b = threading.Thread(target=trial_b)
    b.start()
    b.join()
    a_stop.set()
    a.join()
    if codes == [2]:
        pytest.skip("no thread of the child got the ident of trial A's thread here")
    assert codes == [0]
