"""The objective's side of a trial: ``report``, ``get_context``, ``get_checkpoint``.

A :class:`Session` lives in the worker for the duration of one trial. Its
``report`` adds Ray Tune's automatic fields to the metrics and appends the
result to a buffer; the buffer goes to the driver only at a *decision point*
(the scheduler's next milestone, a met stop criterion, a checkpoint, a
decreasing ``time_attr``, or every report when a stopper or custom
scheduler asks for it), and otherwise at least every
:data:`FLUSH_INTERVAL_S` seconds. At a decision point the objective waits
for the driver's verdict; a STOP raises :class:`TrialStopped`, which does
not derive from ``Exception`` so that ``except Exception`` in user code
cannot swallow it.
"""

from __future__ import annotations

import json
import math
import numbers
import os
import select
import shutil
import socket
import tempfile
import threading
import warnings
import time
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass, field
from multiprocessing.reduction import ForkingPickler
from typing import Any, Callable, Iterator, Mapping

from . import _rows
from . import _fastpath
from ._fastpath import DEFAULT_METRIC, Recorder, report
from .checkpoint import Checkpoint

FLUSH_INTERVAL_S = 0.5
# Ends of short trials that a worker follows with a trial it holds are sent
# together: up to ENDS_MAX of them, held at most ENDS_HOLD_S (longer only if
# the next trial runs long: then the flush thread sends them within
# FLUSH_INTERVAL_S). Any other message to the driver sends them first.
ENDS_MAX = 16
ENDS_HOLD_S = 0.004
SHORT_TRIAL_S = 0.003

# tune.checkpoint_dir() folders are named <this><pid>-<step>-<random>, in the temporary folder
CHECKPOINT_DIR_PREFIX = "fastasha-checkpoint-"

_now = time.time
_HOSTNAME = socket.gethostname()


def _json_default(obj: Any) -> Any:
    """What the store keeps of a value JSON cannot hold: :func:`_rows.json_default`'s
    answer, or, where even that fails (a ``__repr__`` that raises), a placeholder."""
    try:
        return _rows.json_default(obj)
    except Exception:     # noqa: BLE001 - the value is the user's; its text is all we keep
        return f"<{type(obj).__qualname__} object (its repr() failed)>"


def plain_value(value: Any) -> Any:
    """``value`` as the store keeps it: its JSON form, read back (never raises)."""
    try:
        return json.loads(json.dumps(value, default=_json_default))
    except Exception:     # noqa: BLE001 - a key JSON refuses, a cycle, too deep
        return _json_default(value)


def _picklable(value: Any) -> bool:
    try:
        ForkingPickler.dumps(value)
    except Exception:     # noqa: BLE001 - whatever the value's own reducer raises
        return False
    return True


def _sendable_result(result: dict | None) -> dict | None:
    """``result`` with each value that cannot be pickled replaced by :func:`plain_value`."""
    if not isinstance(result, dict):
        return result
    return {key: value if _picklable(value) else plain_value(value)
            for key, value in result.items()}


def dumps_message(message: tuple) -> bytes:
    """``message`` pickled for the driver.

    A report or an end carries the trial's latest result with the values
    the objective reported, as they are. One that cannot be pickled (a
    lock, an open file, a class whose reducer raises) goes as the store
    keeps it (:func:`plain_value`, its ``repr`` for most objects), instead
    of failing the send, which would kill the worker process, and with it
    the trial's error and the results of the trials whose ends it held.
    """
    try:
        return ForkingPickler.dumps(message)
    except Exception:     # noqa: BLE001 - see below: only results are replaced
        kind = message[0] if message else None
        if kind == "report":
            message = message[:4] + (_sendable_result(message[4]),) + message[5:]
        elif kind == "end":
            message = ("end", [(record[:3] + (_sendable_result(record[3]),) + record[4:],
                                next_id) for record, next_id in message[1]])
        else:
            raise
        return ForkingPickler.dumps(message)


class TrialStopped(BaseException):
    """Raised inside ``report()`` when the trial must end (scheduler, stopper, budget)."""


@dataclass
class TrialContext:
    """What ``tune.get_context()`` returns inside a trial (Ray's ``TuneContext`` methods)."""

    trial_id: str | None = None
    trial_name: str | None = None
    experiment_name: str | None = None
    trial_dir: str | None = None
    resources: dict = field(default_factory=dict)
    gpu_ids: list[str] = field(default_factory=list)
    placement: Any = None        # the trial's PlacementGroupFactory, when it asked with one

    def get_trial_id(self) -> str | None:
        return self.trial_id

    def get_trial_name(self) -> str | None:
        return self.trial_name

    def get_experiment_name(self) -> str | None:
        return self.experiment_name

    def get_trial_dir(self) -> str | None:
        """The trial's own folder in the experiment (created on first use)."""
        if self.trial_dir is not None:
            os.makedirs(self.trial_dir, mode=0o700, exist_ok=True)
        return self.trial_dir

    def get_trial_resources(self) -> Any:
        """What the trial asked for: a ``tune.PlacementGroupFactory``, as in Ray.

        The answer is also a dict under fastasha's names (``{"cpu": 1.0,
        "gpu": 0.0}``, with ``"memory"`` when asked for), as fastasha
        answered before: ``get_trial_resources()["cpu"]`` and
        ``get_trial_resources().required_resources["CPU"]`` both work (see
        :class:`fastasha._resources.TrialResources`). A dict request
        ``{"cpu": 2}`` reads as the one bundle ``[{"CPU": 2.0}]``. Outside a
        trial the answer is ``{}`` (Ray's is ``None``, with a warning).
        """
        if not self.resources:
            return {}
        from ._resources import TrialResources

        return TrialResources.of(self.resources, self.placement)

    # Ray's context answers these for distributed training too; a fastasha
    # trial is one process, so it is rank 0 of 1 (scripts written for Ray
    # that checkpoint "on rank 0 only" work unchanged)
    def get_world_rank(self) -> int:
        return 0

    def get_local_rank(self) -> int:
        return 0

    def get_node_rank(self) -> int:
        return 0

    def get_world_size(self) -> int:
        return 1

    def get_local_world_size(self) -> int:
        return 1


class Link:
    """One worker's connection to the driver, shared by its successive trials.

    A background thread flushes the current trial's buffer when it has
    waited :data:`FLUSH_INTERVAL_S`; ``lock`` keeps each request/answer pair
    on the connection whole.

    The driver may hand a worker trials ahead of time (``("trials",
    [spec, ...])``), at any moment, so a message read while waiting for an
    answer can be one of those: :meth:`answer` files them in :attr:`inbox`
    and returns the first message that is not. ``("drop",)`` takes back the
    trials handed out ahead and not yet started (the worker answers with
    their ids; a trial sent to start at once stays), and
    ``("exit",)`` means no further trial will come.
    """

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.lock = threading.RLock()   # report() holds it around a decision's flush
        self.session: Session | None = None
        self.inbox: deque[dict] = deque()   # trial specs handed out ahead, oldest first
        self.exit_seen = False
        self._ends: list[tuple] = []        # (end record, next trial id) not sent yet
        self._ends_since = 0.0
        # Connection.poll() builds a selector per call; a poll object made once is cheaper
        self._poller = None
        if hasattr(select, "poll") and hasattr(conn, "fileno"):
            self._poller = select.poll()
            self._poller.register(conn.fileno(), select.POLLIN)
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._flush_loop, name="fastasha-flush", daemon=True)
        self._thread.start()

    def _flush_loop(self) -> None:
        while not self._closed.wait(FLUSH_INTERVAL_S / 2):
            if self._ends:
                try:
                    with self.lock:
                        self._send_ends()
                except (OSError, EOFError):
                    return
            session = self.session
            if session is not None and session.buffer and \
                    time.time() - session.last_flush >= FLUSH_INTERVAL_S:
                try:
                    session.flush("sync", from_thread=True)
                except (OSError, EOFError):
                    return

    def _file(self, message: Any) -> bool:
        """Take in a message about trials handed out ahead; False for any other."""
        kind = message[0] if isinstance(message, tuple) and message else None
        if kind == "trials":
            self.inbox.extend(message[1])
        elif kind == "drop":
            # only trials handed out ahead go back: one sent to start now is the
            # driver's running trial already
            keep = [spec for spec in self.inbox if not spec.get("ahead")]
            dropped = [spec["trial_id"] for spec in self.inbox if spec.get("ahead")]
            self.inbox.clear()
            self.inbox.extend(keep)
            self._send_ends()
            self._send(("dropped", dropped))
        elif kind == "exit":
            self.exit_seen = True
            return False
        else:
            return False
        return True

    def answer(self) -> Any:
        """The driver's next message that is not about trials handed out ahead."""
        with self.lock:
            while True:
                message = self.conn.recv()
                if not self._file(message):
                    return message

    def _receive_unasked(self) -> None:
        """Receive one message sent unasked (trials, drop, exit); anything else is an error."""
        message = self.conn.recv()
        if not self._file(message) and not self.exit_seen:
            raise EOFError(f"unexpected message from the driver: {message!r:.40}")

    def wait_for_work(self) -> None:
        """Wait until a trial is in the inbox or the driver said there are no more."""
        with self.lock:
            while not self.inbox and not self.exit_seen:
                self._receive_unasked()

    def poll(self) -> None:
        """Take in whatever the driver sent meanwhile, without waiting."""
        with self.lock:
            while not self.exit_seen and (self._poller.poll(0) if self._poller is not None
                                          else self.conn.poll()):
                self._receive_unasked()

    def _send_ends(self) -> None:
        if self._ends:
            ends, self._ends = self._ends, []
            self._send(("end", ends))

    def end(self, record: tuple, next_id: str | None, hold: bool) -> None:
        """Tell the driver a trial ended and which one starts next (maybe later, with others)."""
        with self.lock:
            now = time.monotonic()
            if not self._ends:
                self._ends_since = now
            self._ends.append((record, next_id))
            if not hold or len(self._ends) >= ENDS_MAX or now - self._ends_since >= ENDS_HOLD_S:
                self._send_ends()

    def _send(self, message: tuple) -> None:
        """Send one message, pickled here (a result that cannot be is sent all the same)."""
        self.conn.send_bytes(dumps_message(message))

    def send(self, message: tuple) -> None:
        with self.lock:
            self._send_ends()
            self._send(message)

    def request(self, message: tuple) -> Any:
        """Send ``message`` and wait for the driver's answer."""
        with self.lock:
            self._send_ends()      # the driver must know which trial runs before it answers
            self._send(message)
            return self.answer()

    def close(self) -> None:
        self._closed.set()


class Session(Recorder):
    """State of one running trial in its worker.

    The state every report touches lives in the compiled :class:`Recorder`
    (``iteration``, ``decision_point``, ``due``, ``last``, ``fast``,
    ``stop_requested``, ``buffer``); :func:`report` takes the common case
    there and hands every other to :meth:`report`.
    """

    def __init__(self, link: Link, spec: dict) -> None:
        self.link = link
        self.trial_id: str = spec["trial_id"]
        self.config: dict = spec["config"]
        self.metric: str | None = spec.get("metric")
        self.time_attr: str | None = spec.get("time_attr")
        self._counts_reports = self.time_attr == "training_iteration"
        self.decision_point: float = spec.get("decision_point", -math.inf)
        self.every_report: bool = spec.get("every_report", False)
        self.stop_items = list(spec.get("stop", {}).items())
        # fast: reports before the decision point only need buffering (decided by the
        # first report, which takes the full path); never when the objective reports
        # its own training_iteration
        self.fast = False
        self._never_fast = False
        self.iteration: int = spec.get("iteration", 0)
        self.checkpoint_root: str | None = spec.get("checkpoint_root")
        restored = spec.get("checkpoint")
        self.restored_checkpoint = Checkpoint(restored) if restored else None
        self._spec = spec
        self._context: TrialContext | None = None
        self._end_hooks: list | None = None    # at_trial_end()'s functions, oldest first
        # (time, metrics) of the reports not sent yet; their iterations are consecutive
        # from ``self._first`` on (kept by drain() alone, so that it needs no lock)
        self.buffer: list[tuple] = []
        self._first = self.iteration + 1
        self.stop_requested = False
        self.pausing = False          # the stop is a pause: a class Trainable saves its state
        self.driver_gone = False      # a stop that only means nobody listens any more
        self._check_metric = self.metric is not None
        self.held_checkpoint: str | None = None   # a tune.checkpoint_dir() folder, for the next report
        self._pid = os.getpid()
        now = time.time()
        self._start = now - spec.get("time_offset", 0.0)
        # this run's time_total_s and iteration at its start, for Ray's time_since_restore
        # and iterations_since_restore (computed as _rows.RunTracker does from the batches:
        # the first batch's ``prev`` is ``now``)
        self._resumed = now - self._start
        self._first_iteration = self.iteration
        self.last = now           # time of the latest report
        self._prev = now          # time of the report before the next batch
        self.last_flush = now
        # when the fast path must look up: the next flush is due, or a stop came in
        self.due = now + FLUSH_INTERVAL_S
        self._last_t = -math.inf

    @property
    def context(self) -> TrialContext:
        """The trial's :class:`TrialContext` (made on first use: most objectives never ask)."""
        if self._context is None:
            spec = self._spec
            self._context = TrialContext(
                trial_id=self.trial_id,
                trial_name=spec.get("trial_name", self.trial_id),
                experiment_name=spec.get("experiment_name"),
                trial_dir=spec.get("trial_dir"),
                resources=dict(spec.get("resources", {})),
                gpu_ids=list(spec.get("gpu_ids", [])),
                placement=spec.get("placement"),
            )
        return self._context

    # ------------------------------------------------------------- the end

    def add_end_hook(self, fn: Callable[[], Any]) -> None:
        """Have :meth:`run_end_hooks` call ``fn()`` (see :func:`at_trial_end`)."""
        if self._end_hooks is None:
            self._end_hooks = []
        self._end_hooks.append(fn)

    def run_end_hooks(self) -> None:
        """Call the functions given to :func:`at_trial_end`, the latest first.

        Called in the trial's thread once its objective has returned or
        raised, before its end goes to the driver. A function that raises
        is reported with a ``RuntimeWarning`` and the others still run: the
        trial keeps its results and its status.
        """
        hooks = self._end_hooks
        while hooks:
            fn = hooks.pop()
            try:
                fn()
            except BaseException as err:   # noqa: BLE001 - a cleanup must not cost the trial
                warnings.warn(
                    f"{getattr(fn, '__qualname__', fn)!s}, called at the end of trial "
                    f"{self.trial_id}, raised {type(err).__name__}: {err}; the trial's "
                    "results are kept", RuntimeWarning, stacklevel=2)

    # ---------------------------------------------------------------- report

    def _value(self, key: str, metrics: dict, now: float) -> Any:
        value = _rows.lookup(metrics, key)      # "outer/inner" names a nested value
        if value is not _rows.MISSING:
            return value
        return _rows.auto_value(key, self.iteration, now, self.last, self._start,
                                self._resumed, self._first_iteration)

    def report(self, metrics: Mapping, checkpoint: Checkpoint | None = None) -> None:
        """Record one report (the general path; :func:`report` takes the common case itself)."""
        if isinstance(metrics, numbers.Real) and not isinstance(metrics, bool):
            metrics = {DEFAULT_METRIC: metrics}     # Ray Tune up to 2.6: tune.report(value)
        elif type(metrics) is not dict and not isinstance(metrics, Mapping):
            raise TypeError(
                f"report() takes a dict of metrics, got {metrics!r} of type "
                f"{type(metrics).__name__}; call tune.report({{'loss': loss}})"
            )
        metrics = dict(metrics)   # the caller may reuse its dict
        held = None
        if checkpoint is None and self.held_checkpoint is not None:
            held, self.held_checkpoint = self.held_checkpoint, None
            checkpoint = Checkpoint(held)
        try:
            self._report(metrics, checkpoint)
        finally:
            if held is not None:
                shutil.rmtree(held, ignore_errors=True)   # copied into the trial's folder

    def _report(self, metrics: dict, checkpoint: Checkpoint | None) -> None:
        now = _now()
        if self.fast:
            # reports taken by the common case since the last one here counted as
            # their own time: the latest of them is the one to compare with
            self._last_t = self.iteration
        iteration = self.iteration + 1
        previous = (self._last_t, self._check_metric, self.fast)
        self.iteration = iteration
        try:
            if "training_iteration" in metrics:
                self._never_fast = True   # its own count: the decreasing check always matters
            if self._check_metric:
                self._check_metric = False
                if self.metric not in _rows.AUTO_KEYS and \
                        _rows.lookup(metrics, self.metric) is _rows.MISSING:
                    raise ValueError(
                        f"trial {self.trial_id} reported {sorted(metrics)!r} but "
                        f"TuneConfig(metric={self.metric!r}) needs {self.metric!r} in every "
                        "result; add it to the dict passed to tune.report() or change the metric"
                    )
            self.fast = not self._never_fast and not self.every_report and \
                not self.stop_items and self._counts_reports
            decide = self.every_report
            time_attr = self.time_attr
            if self._counts_reports and "training_iteration" not in metrics:
                # the common case, kept short: decisions fall on report counts
                if iteration >= self.decision_point or iteration < self._last_t:
                    decide = True
                self._last_t = iteration
            elif time_attr is not None:
                t = self._value(time_attr, metrics, now)
                if t is not None:
                    try:
                        if t >= self.decision_point or t < self._last_t:
                            decide = True
                    except TypeError as err:
                        raise TypeError(
                            f"result key {time_attr!r} must be a number, got {t!r}"
                        ) from err
                    self._last_t = t
            stop_hit = False
            for key, bound in self.stop_items:     # usually empty
                value = self._value(key, metrics, now)
                if value is None:
                    # as in Ray Tune: a result without the key does not meet the
                    # criterion (validation metrics are often reported every few steps)
                    _warn_missing_stop_key(key, self.trial_id, metrics)
                    continue
                if value >= bound:
                    stop_hit = True
            if "done" in metrics and _is_done(metrics["done"]):
                stop_hit = True           # as in Ray Tune: a true "done" ends the trial
        except BaseException:
            # a report that is refused is not recorded, so it does not count: the
            # iterations of the buffered reports stay consecutive
            self.iteration = iteration - 1
            self._last_t, self._check_metric, self.fast = previous
            raise
        if decide or stop_hit or checkpoint is not None:
            # hold the lock so that the background flush cannot ship this result as a
            # mere "sync" (without its checkpoint and its decision) while we work
            with self.link.lock:
                self.buffer.append((now, metrics))
                self.last = now
                saved = None if checkpoint is None else self._save_checkpoint(checkpoint)
                self.flush("decide", stop_hit=stop_hit, checkpoint=saved)
        else:
            self.buffer.append((now, metrics))
            self.last = now
            if now - self.last_flush >= FLUSH_INTERVAL_S:
                self.flush("sync")
        if self.stop_requested:
            raise TrialStopped()

    def hold_checkpoint(self, folder: str) -> None:
        """Keep a :func:`checkpoint_dir` folder for the next report (replacing one held)."""
        if self.held_checkpoint is not None:
            shutil.rmtree(self.held_checkpoint, ignore_errors=True)
        self.held_checkpoint = folder
        self.fast = False        # the next report takes the general path, which takes it

    def end_held_checkpoint(self, keep: bool) -> None:
        """At the trial's end: keep a held folder with the last result (``keep``), or drop it.

        Ray Tune kept a ``checkpoint_dir`` written after the last report too;
        without any report there is no result to keep it with.
        """
        folder, self.held_checkpoint = self.held_checkpoint, None
        if folder is None:
            return
        try:
            if keep:
                self.save_after_stop(Checkpoint(folder))
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def on_due(self) -> None:
        """Called by :func:`report` once ``due`` has passed: raise on a STOP, else flush."""
        if self.stop_requested:
            raise TrialStopped()
        self.flush("sync")

    def drain(self) -> tuple[str | bytes, int, dict | None]:
        """Take every buffered report: ``(encoded batch, count, last result)``."""
        # at once (compiled): a thread of the objective may append meanwhile
        entries = _fastpath.take_all(self.buffer)
        if not entries:
            return "", 0, None
        prev = self._prev
        first = self._first
        self._first = first + len(entries)
        try:
            blob = _rows.encode(first, entries, start=self._start, prev=prev, pid=self._pid,
                                host=_HOSTNAME)
        except Exception:     # noqa: BLE001 - a value JSON cannot take even as its repr
            # (one whose repr() raises, a dict holding itself): each value as the store
            # can keep it, rather than a failure that loses the batch and kills the worker
            entries = [(t, {key: plain_value(value) for key, value in metrics.items()})
                       for t, metrics in entries]
            blob = _rows.encode(first, entries, start=self._start, prev=prev, pid=self._pid,
                                host=_HOSTNAME)
        before_last = entries[-2][0] if len(entries) > 1 else prev
        now, metrics = entries[-1]
        last = _rows.expand(self.trial_id, first + len(entries) - 1, now, before_last,
                            self._start, self._pid, _HOSTNAME, metrics)
        self._prev = now
        return blob, len(entries), last

    def flush(self, kind: str, *, stop_hit: bool = False, checkpoint: tuple | None = None,
              from_thread: bool = False) -> None:
        """Send the buffer; at a decision point wait for and apply the verdict."""
        with self.link.lock:
            if self.link.session is not self:
                return
            blob, n_rows, last = self.drain()
            if not n_rows and kind == "sync" and checkpoint is None:
                return
            answer = self._ask(
                ("report", self.trial_id, blob, n_rows, last, kind, stop_hit, checkpoint),
                "verdict")
            if answer is None:       # the driver is gone: unwind the objective
                stop, decision_point = True, math.inf
            else:
                _, stop, decision_point = answer
            self.last_flush = time.time()
            self.due = self.last_flush + FLUSH_INTERVAL_S
        self.decision_point = decision_point
        if stop:
            self.stop_requested = True
            self.pausing = stop == "PAUSE"
            self.due = -math.inf
            if not from_thread:
                raise TrialStopped()

    # ------------------------------------------------------------ checkpoint

    def may_save_after_stop(self) -> bool:
        """Before a class objective saves its end checkpoint after a STOP: may it?

        Asks the driver, which then gives the save up to its own grace if the
        whole sweep is stopping (instead of killing the process after the usual
        few seconds). False when the driver is gone or no longer follows this
        trial: nobody would keep the checkpoint.
        """
        with self.link.lock:
            if self.link.session is not self or self.iteration == 0 or self.driver_gone:
                return False
            answer = self._ask(("saving", self.trial_id), "saving")
            return answer is not None and bool(answer[1])

    def _ask(self, message: tuple, expected: str) -> tuple | None:
        """Send ``message``; the driver's answer of kind ``expected``, or None if it is gone.

        Gone: it hung up (interrupted or killed) or answered ``("exit",)``
        (winding down). Either way :attr:`driver_gone` is set.
        """
        try:
            answer = self.link.request(message)
        except (EOFError, OSError):
            answer = None
        if answer is None or answer[0] != expected:
            self.driver_gone = True
            return None
        return answer

    def save_after_stop(self, checkpoint: Checkpoint) -> None:
        """Keep ``checkpoint`` with the last result, once the trial was told to stop.

        A STOP ends the trial inside ``report()``; a class objective with
        ``checkpoint_at_end`` saves its state after that, as Ray does for any
        stop. Nothing happens if the driver is gone.
        """
        with self.link.lock:
            if self.link.session is not self or self.iteration == 0 or self.driver_gone:
                return
            # sent with whatever is still buffered (normally nothing: the STOP flushed it)
            self.flush("sync", checkpoint=self._save_checkpoint(checkpoint), from_thread=True)

    def _save_checkpoint(self, checkpoint: Checkpoint) -> tuple[str, int]:
        if not isinstance(checkpoint, Checkpoint):
            raise TypeError(
                f"checkpoint must be a tune.Checkpoint, got {checkpoint!r}; use "
                "Checkpoint.from_directory(path)"
            )
        if self.checkpoint_root is None:
            raise RuntimeError("this trial has no checkpoint folder")
        name = f"checkpoint_{self.iteration:06d}"
        os.makedirs(self.checkpoint_root, mode=0o700, exist_ok=True)
        target = os.path.join(self.checkpoint_root, name)
        if os.path.abspath(checkpoint.path) != os.path.abspath(target):
            tmp = target + ".tmp"
            shutil.rmtree(tmp, ignore_errors=True)
            shutil.copytree(checkpoint.path, tmp)
            shutil.rmtree(target, ignore_errors=True)
            os.replace(tmp, target)
        return (target, self.iteration)


_warned_stop_keys: set = set()


def _is_done(value: Any) -> bool:
    """Whether a reported ``"done"`` is true (Ray Tune tests its truth value)."""
    try:
        return bool(value)
    except Exception as err:       # noqa: BLE001 - e.g. a numpy array of several values
        raise TypeError(
            f"the result key 'done' ends the trial when it is true; report True or False, "
            f"got {value!r} of type {type(value).__name__}"
        ) from err


def _warn_missing_stop_key(key: str, trial_id: str, metrics: dict) -> None:
    """Warn once per process that a result lacks a stop criterion's key."""
    if key in _warned_stop_keys:
        return
    _warned_stop_keys.add(key)
    warnings.warn(
        f"stop criterion {key!r} is not in a result of trial {trial_id}, which reported "
        f"{sorted(metrics)!r} plus the automatic "
        f"{list(_rows.AUTO_KEYS + _rows.SINCE_RESTORE_KEYS)!r}; results without "
        f"it do not meet the criterion, and if {key!r} is never reported the trials run to "
        "their end. (Shown once per worker process.)",
        RuntimeWarning, stacklevel=4)


# ------------------------------------------------------------- public helpers

class _ProcessTrial:
    """The session a thread that set none of its own sees: the trial its process runs.

    Set where a trial has a process of its own (a forked trial process),
    which runs its trials one after another. Only the threads started while
    the trial runs are its own: a thread that was running when the trial
    started (one an earlier trial of the process left behind, still
    training or reporting) sees no session, so that it cannot report into
    the trial that came next.
    """

    def __init__(self) -> None:
        self.session: Session | None = None
        self.strangers: frozenset = frozenset()     # the threads alive at its start

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        if instance is None:
            return self
        session = self.session
        if session is not None and self.strangers and \
                threading.current_thread() in self.strangers:
            return None
        return session

    def set(self, session: Session | None) -> None:
        """Make ``session`` the process's trial (called from the thread that runs it)."""
        strangers: frozenset = frozenset()
        if session is not None:
            # (the trial's own thread and the flush thread never look the session up here)
            ours = {threading.current_thread(), getattr(session.link, "_thread", None)}
            strangers = frozenset(t for t in threading.enumerate() if t not in ours)
        self.session, self.strangers = None, strangers
        self.session = session


_process_trial = _ProcessTrial()


class _TrialSessions(threading.local):
    """Where ``tune.report`` and the other helpers find the running trial's session.

    Each thread that runs a trial sets its own: the threading backend runs
    several trials in one process. A thread the objective starts has set
    none, and sees the class attribute instead (:class:`_ProcessTrial`, a
    descriptor that a thread's own value overrides): the session of the one
    trial its process runs, where a trial has a process of its own (as in
    Ray, whose session is one per trial process, so a training loop run in a
    thread of the objective reports as the objective would).
    """

    session = _process_trial


_local = _TrialSessions()
# tune.report (compiled, in _fastpath) looks its module's ``local`` up at every call
_fastpath.local = _local


def set_session(session: Session | None, process_wide: bool = False) -> None:
    """Make ``session`` this thread's trial; ``process_wide``: also that of the threads
    started from now on that set none (see :class:`_ProcessTrial`)."""
    _local.session = session
    _fastpath.own_session(session)
    if process_wide:
        _process_trial.set(session)


def at_trial_end(fn: Callable[[], Any]) -> bool:
    """Call ``fn()`` when the objective of this thread's trial has returned or raised.

    ``fn`` runs in the thread that runs the trial, after the objective
    (whether it returned, raised or was stopped) and before the trial's end
    is sent to the driver, so that it runs before the trial process may
    exit; functions registered for one trial run the latest first. An
    exception from ``fn`` becomes a ``RuntimeWarning``. For what a trial
    opens in its process and must close at its end (the tracking runs of
    ``setup_mlflow`` and ``setup_wandb``): a trial process runs several
    trials and leaves with ``os._exit``, so ``atexit`` handlers never run.

    Returns
    -------
    bool
        False, and ``fn`` is not kept, outside a trial.
    """
    session = getattr(_local, "session", None)
    if session is None:
        return False
    session.add_end_hook(fn)
    return True


def get_context() -> TrialContext:
    """Information about the current trial (an empty context outside a trial)."""
    session = getattr(_local, "session", None)
    return session.context if session is not None else TrialContext()


@contextmanager
def checkpoint_dir(step: int) -> Iterator[str]:
    """A folder to save the trial's state in; it goes with the next ``report()``.

    Ray Tune's function API up to 2.4 (``with tune.checkpoint_dir(step=epoch)
    as folder: ...``, then ``tune.report(...)``), with the objective declared
    as ``def objective(config, checkpoint_dir=None)``: a trial that resumes
    gets the folder of its latest checkpoint there. ``step`` is accepted for
    Ray's signature; checkpoints are named by the report they go with. A
    folder written after the last report is kept with the last result.

    Raises
    ------
    RuntimeError
        Outside a trial.
    """
    session = getattr(_local, "session", None)
    if session is None:
        raise RuntimeError(
            "tune.checkpoint_dir() was called outside a trial; call it from inside the "
            "objective function you pass to tune.Tuner"
        )
    folder = tempfile.mkdtemp(prefix=f"{CHECKPOINT_DIR_PREFIX}{os.getpid()}-{step}-")
    try:
        yield folder
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    session.hold_checkpoint(folder)


def remove_checkpoint_dirs(pid: int) -> None:
    """Remove the :func:`checkpoint_dir` folders that the ended process ``pid`` left behind.

    A trial process killed outright (SIGKILL, as when the driver is killed)
    runs no ``finally``: the worker that forked it calls this once it is gone.
    """
    root = tempfile.gettempdir()
    start = f"{CHECKPOINT_DIR_PREFIX}{pid}-"
    try:
        entries = [entry.name for entry in os.scandir(root) if entry.name.startswith(start)]
    except OSError:
        return
    for name in entries:
        shutil.rmtree(os.path.join(root, name), ignore_errors=True)


def is_session_enabled() -> bool:
    """Whether this code runs inside a trial (Ray Tune's name, up to 2.4)."""
    return getattr(_local, "session", None) is not None


def get_checkpoint() -> Checkpoint | None:
    """The checkpoint this trial resumes from, or ``None`` on a fresh start."""
    session = getattr(_local, "session", None)
    return session.restored_checkpoint if session is not None else None
