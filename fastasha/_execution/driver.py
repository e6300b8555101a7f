"""The driver's event loop: joblib slots, the report channel, and the controller.

The driver starts one joblib task per slot (:func:`~.worker.slot_main`) in a
background thread and then serves their connections from one thread:
supervisors ask for trial processes to fork (with the environment of the
trial they will run), workers ask for trials and report results. Short
trials are handed to a busy worker ahead of time, so that it does not wait
for the driver between trials (see ``AHEAD_*`` below and
:func:`~.worker.run_trials` for the messages). Every
event goes to the :class:`~fastasha._controller.Controller`; what it wants
persisted is handed to the experiment store's background writer every
``flush_interval`` seconds, or sooner once ``FLUSH_PENDING_WRITES`` wait
(one commit at a time, so a slow disk delays the next commit instead of
the driver), and flushed for good at the end.

Faults:

* a trial process that dies is reported by its supervisor with the exit
  status; the trial fails (and is retried under ``max_failures``) and the
  supervisor forks a fresh process for the slot;
* if a whole slot task disappears (its supervisor died, or joblib aborted
  the ``Parallel`` call), the trials it was running go back to the queue
  without counting as failures, and the driver starts the missing slots
  with a new ``Parallel`` call;
* on joblib's Dask backend the driver submits the slot tasks to the
  backend's ``distributed.Client`` itself, one future per slot, with the
  trainable scattered to the workers once (a ``with_parameters`` objective
  may hold a large array; in every task it would go through the scheduler
  once per slot). joblib's ``Parallel`` never hears of a task Dask gave up
  on (``KilledWorker`` after its workers died): its slot would stay empty
  for the rest of the sweep, and the call would never return. Here each
  slot whose task ends while trials remain is started again on its own,
  and the other slots run on; a slot whose task fails ``MAX_RELAUNCHES``
  times in a row before it reaches the driver is given up (with a warning;
  the sweep fails when no slot is left);
* on Ctrl-C the running trials are killed and put back as PENDING, the
  store is flushed, and ``KeyboardInterrupt`` propagates.
"""

from __future__ import annotations

import itertools
import math
import os
import pickle
import queue
import selectors
import signal
import threading
import time
import warnings
from collections import deque
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from multiprocessing.reduction import ForkingPickler as _ForkingPickler
from typing import Any, Callable

from .. import _session
from .._controller import Controller, Trial
from .._resources import dask_client
from ..search.serialize import is_plain
from .channel import Server, new_key
from .worker import SHARED_CONFIGS, SlotTask, batch_policy_wanted, kill_quietly, slot_main

# Running trials get this long to notice a stop (at their next report or
# periodic flush) before their processes are killed.
STOP_GRACE_S = 5.0
# A trial that has begun to save its end checkpoint when the sweep stops
# (a Trainable with checkpoint_at_end) gets this long for the save, counted
# from when it says so, before it is killed all the same.
END_SAVE_GRACE_S = 60.0
# A sweep whose slots keep vanishing without a single trial finishing in
# between gives up after this many relaunches.
MAX_RELAUNCHES = 5
# Queued writes go to the store's background writer this often, or as soon as
# FLUSH_PENDING_WRITES are queued. The count keeps the last, waited-for flush of a
# sweep small (at 50 ms alone, the last flush of 1,000 no-op trials took 13 ms;
# with commits every 10 ms, about 7), and the interval keeps a sweep of
# millisecond trials from committing 100 times a second: each commit costs the
# driver's process about 0.9 ms of CPU (its fsync, and its thread's turns at the
# GIL), which the trials' processes then lack. A commit writes only what is
# queued, and an idle driver does not wake for one.
FLUSH_INTERVAL_S = 0.05
FLUSH_PENDING_WRITES = 300
# An idle driver wakes this often all the same (time budgets, stoppers, kill timers).
IDLE_WAKE_S = 0.05
# Short trials are handed to a busy worker ahead of time, enough of them to
# cover AHEAD_COVER_S of its work (at most AHEAD_MAX), so that it never waits
# for the driver between trials. Trials that take AHEAD_LONG_S or more go one
# at a time: the wait is negligible next to them, and a trial queued behind
# a long one could leave another slot idle at the end of the sweep.
AHEAD_COVER_S = 0.01
AHEAD_MAX = 32
AHEAD_LONG_S = 0.1
# A busy worker reads its connection only between trials, so a send to it could
# block the driver once the socket's buffer is full. The trials handed to one
# worker ahead stay under this many bytes (the largest trial message so far
# sets how many fit); larger trials go one at a time, to workers that wait.
AHEAD_MAX_BYTES = 64 * 1024


# Messages a peer may send: their length, and the method that handles them.
_MESSAGE_SIZES = {"supervisor": 5, "worker": 6, "child_exit": 4, "report": 8, "end": 2,
                  "start": 2, "dropped": 2, "saving": 2}
_HANDLERS = {
    "supervisor": "_on_supervisor_hello",
    "worker": "_on_worker_hello",
    "child_exit": "_on_child_exit",
    "report": "_on_report",
    "end": "_on_end",
    "start": "_on_start",
    "dropped": "_on_dropped",
    "saving": "_on_saving",
}


def _cloudpickle():
    try:
        import cloudpickle
    except ImportError:   # older joblib vendors it
        from joblib.externals import cloudpickle
    return cloudpickle


class _Unpicklable:
    """Stands for a config that could not be pickled: unpickling it raises why."""

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def __reduce__(self):
        return (_raise_unpicklable, (self.reason,))


def _raise_unpicklable(reason: str) -> None:
    raise TypeError(f"the trial's config could not be pickled for the worker ({reason}); "
                    "use values that pickle, or the threading backend")


# tokens of configs handed to worker threads as objects (see Driver._pickle_specs)
_tokens = itertools.count()


def _own_containers(value: Any, memo: dict | None = None) -> Any:
    """``value`` with its dicts, lists and tuples copied; any other object is itself.

    A config handed to a worker thread as an object gets its own containers,
    as a pickled one does: what the objective pops or sets in it does not
    change the driver's config (a retry's, the result grid's). A container
    met twice (or inside itself) is copied once, as pickle would.
    """
    tp = type(value)
    if tp is not dict and tp is not list and tp is not tuple:
        return value      # (subclasses, which may hold more than items, are shared too)
    memo = {} if memo is None else memo
    if id(value) in memo:
        return memo[id(value)]
    copied: Any
    if tp is dict:
        copied = memo[id(value)] = {}
        copied.update((k, _own_containers(v, memo)) for k, v in value.items())
    elif tp is list:
        copied = memo[id(value)] = []
        copied.extend(_own_containers(v, memo) for v in value)
    else:
        copied = memo[id(value)] = tuple(_own_containers(v, memo) for v in value)
    return copied


def _send_quietly(conn: Connection, message: tuple) -> None:
    """Send at the end of a sweep, when a peer that has gone away no longer matters."""
    try:
        conn.send(message)
    except (OSError, ValueError):
        pass


def describe_exit(code: int) -> str:
    """Human words for a process exit code (negative = killed by a signal)."""
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


@dataclass(eq=False)
class Peer:
    conn: Connection
    role: str = ""            # "supervisor" | "worker" | "" before its hello
    slot: int = -1
    pid: int = 0
    host: str = ""
    mode: str = ""            # workers: "fork" | "inline"
    env: dict | None = None   # workers: the environment the process started with
    trial: Trial | None = None
    waiting: bool = False     # has asked and not been answered yet
    # workers: trials handed out ahead, to run after ``trial`` in this order
    ahead: deque = field(default_factory=deque)
    drop_sent: bool = False   # asked to give the trials ahead back (the sweep stops)
    hold_given: bool = False  # was allowed to hold back the ends of short trials
    # resources kept for the first trial ahead while it is on its way to an idle worker
    spare: Any = None
    # workers: (trial id, until when (monotonic)) a trial may save its end checkpoint
    # after the sweep stopped, before the stop grace kills it
    saving: tuple | None = None


@dataclass
class Slot:
    slot_id: int
    supervisor: Peer | None = None
    worker: Peer | None = None
    reserved: Trial | None = None      # assigned, waiting for a process with its env
    lost: Trial | None = None          # its worker vanished; waiting for the exit status
    lost_pid: int = 0
    lost_unsure: bool = False          # the lost trial may not be the one that died
    # ... and then the trials its worker was handed ahead, one of which it may have died
    # in: they stay out of the queue until the exit status says which
    lost_ahead: list = field(default_factory=list)
    kill_sent: bool = False
    # joblib's Dask backend: its task is submitted and has not ended; how many of its
    # tasks ended in a row before their supervisor said hello, and the last one's error
    launched: bool = False
    greeted: bool = False              # ... and its supervisor has said hello
    failures: int = 0
    last_error: BaseException | None = None


class Driver:
    """Runs a sweep to its end; see the module docstring."""

    def __init__(
        self,
        trainable: Callable,
        n_slots: int,
        *,
        host: str = "127.0.0.1",
        flush_interval: float | None = None,
        progress_interval: float = 0.25,
        first_env: dict[str, str] | None = None,
    ) -> None:
        self.trainable = trainable
        # the environment every slot's first trial runs with, where known at launch:
        # supervisors then fork their first trial process without asking
        self.first_env = first_env
        self.n_slots = n_slots
        self.host = host
        self.flush_interval = FLUSH_INTERVAL_S if flush_interval is None else flush_interval
        self.progress_interval = progress_interval
        self.controller: Controller | None = None
        self.store: Any = None
        self.progress: Any = None
        self.snapshot: Callable[[], Any] | None = None
        self.on_trial_finished: Callable[[Trial], None] | None = None
        self.periodic: Callable[[float], float] | None = None
        self._periodic_due = -math.inf
        self.experiment_name = ""
        self.trials_dir = ""
        self._folders = ""            # trials_dir with a separator at its end
        self._relaunches = 0            # in a row, without a trial finishing
        self.slots = {i: Slot(i) for i in range(n_slots)}
        self.peers: dict[Connection, Peer] = {}
        self._launcher: threading.Thread | None = None
        self._launcher_done = threading.Event()
        self._launcher_error: BaseException | None = None
        self._interrupted = False
        self._server: Server | None = None
        self._key = b""
        self._shut_down = False       # the sweep is over: every slot was told to exit
        self._wound_down = False      # ... and the slots are gone, the channel closed
        self._stop_started: float | None = None
        self._finished_since_launch = 0
        self._abandoned = False       # a trial's thread was left running (see _enforce_stop)
        self._trial_s: float | None = None    # running mean of a trial's wall time
        self._hold_ends = True        # workers may send the ends of short trials together
        self._spec_bytes = 0          # the largest pickled trial message so far
        self._shared: list[int] = []  # this driver's tokens in worker.SHARED_CONFIGS
        # joblib's Dask backend (see the module docstring): its client, each slot's
        # task (a future), the scattered trainable, and the tasks that ended, as
        # (slot id, future, error or None) from the threads that watch them
        self._client: Any = None
        self._slot_futures: dict[int, Any] = {}
        self._trainable_ref: Any = None
        self._task_ends: queue.SimpleQueue = queue.SimpleQueue()
        self._watchers: list[threading.Thread] = []

    # ------------------------------------------------------------------ launch

    def _launch(self) -> None:
        if self._client is not None:
            self._launch_dask(list(self.slots))
            return
        from joblib import Parallel, delayed, parallel_config

        # joblib's backend choice is per thread: carry the caller's into the launcher
        backend = self._backend
        tasks = list(self._slot_tasks(list(self.slots), self.trainable).values())
        self._launcher_done.clear()
        self._launcher_error = None

        def run() -> None:
            try:
                with parallel_config(backend=backend):
                    # n_jobs=1 would make joblib run the task here, in the driver, whatever
                    # the backend: a one-slot sweep must get a worker process too
                    Parallel(n_jobs=max(2, len(tasks)), batch_size=1, pre_dispatch="all")(
                        delayed(slot_main)(task) for task in tasks)
            except BaseException as err:   # noqa: BLE001 - reported to the loop
                self._launcher_error = err
            finally:
                self._launcher_done.set()
                if self._server is not None:
                    self._server.notify()

        self._launcher = threading.Thread(target=run, name="fastasha-slots", daemon=True)
        self._launcher.start()

    def _slot_tasks(self, slot_ids: list[int], trainable: Any) -> dict[int, SlotTask]:
        """The joblib or Dask task of each of ``slot_ids``, by slot id."""
        cwd, batch_policy = os.getcwd(), batch_policy_wanted()
        return {slot_id: SlotTask(self._server.address, self._key, slot_id, trainable,
                                  os.getpid(), env=self.first_env, cwd=cwd,
                                  batch_policy=batch_policy)
                for slot_id in slot_ids}

    def _launch_dask(self, slot_ids: list[int]) -> None:
        """Submit the tasks of ``slot_ids`` to the Dask client; a thread watches them."""
        from uuid import uuid4

        client = self._client
        if self._trainable_ref is None or self._trainable_ref.status != "finished":
            # once, to every worker, instead of inside every slot task's graph (through
            # the scheduler); a copy on each worker also outlives the death of some
            [self._trainable_ref] = client.scatter([self.trainable], broadcast=True, hash=False)
        # (what the user gave parallel_config beyond the backend: resources=, workers=...)
        options = dict(getattr(self._backend, "submit_kwargs", None) or {})
        futures = {}
        for slot_id, task in self._slot_tasks(slot_ids, None).items():
            futures[slot_id] = client.submit(
                slot_main, task, self._trainable_ref, pure=False,
                key=f"fastasha-slot-{slot_id}-{uuid4().hex}", **options)
            self.slots[slot_id].launched = True
            self.slots[slot_id].greeted = False
        self._slot_futures.update(futures)
        watcher = threading.Thread(target=self._watch_dask, args=(futures,),
                                   name="fastasha-slots", daemon=True)
        self._watchers.append(watcher)
        watcher.start()

    def _watch_dask(self, futures: dict[int, Any]) -> None:
        """Report each slot task as it ends (returned, failed or cancelled) to the loop."""
        from distributed import as_completed

        slot_of = {future.key: slot_id for slot_id, future in futures.items()}
        try:
            for future in as_completed(list(futures.values())):
                error = None
                if future.status != "finished":
                    try:
                        error = future.exception()
                    except BaseException as err:   # noqa: BLE001 - cancelled
                        error = err
                self._task_ends.put((slot_of[future.key], future, error))
                if self._server is not None:
                    self._server.notify()
        except Exception:   # noqa: BLE001 - the client closed under us: nothing to watch
            pass

    def _on_task_ends(self, now: float) -> None:
        """Dask slot tasks ended: start again those of slots that trials still need."""
        relaunch = []
        while True:
            try:
                slot_id, future, error = self._task_ends.get_nowait()
            except queue.Empty:
                break
            if self._slot_futures.get(slot_id) is not future:
                continue        # an older task of the slot
            del self._slot_futures[slot_id]
            slot = self.slots[slot_id]
            slot.launched = False
            if slot.supervisor is not None:
                # its worker died and Dask gave up, or it returned: whatever its
                # supervisor ran is gone (a vanished host is noticed here at once)
                self._drop(slot.supervisor)
            if self._shut_down or not self.controller.more_may_come():
                continue
            slot.failures += 1
            slot.last_error = error
            if slot.failures > MAX_RELAUNCHES:
                if any(s.launched for s in self.slots.values()):
                    warnings.warn(
                        f"the Dask task of slot {slot_id} ended {MAX_RELAUNCHES} times in a "
                        "row before it reached the driver; the sweep goes on without it. "
                        f"Last error: {error!r}", RuntimeWarning, stacklevel=2)
                    continue
                raise RuntimeError(
                    f"the worker slots' Dask tasks ended {MAX_RELAUNCHES} times in a row "
                    f"before they reached the driver; last error: {error!r}. Can the "
                    f"workers reach {self._server.address[0]}:{self._server.address[1]}? "
                    "If not, set FASTASHA_DRIVER_HOST to an address of this machine that "
                    "they can reach") from error
            relaunch.append(slot_id)
        if relaunch:
            self._launch_dask(relaunch)

    # -------------------------------------------------------------------- run

    def start(self) -> None:
        """Open the report channel and launch the slots (they take a moment to start)."""
        from joblib.parallel import get_active_backend

        self._backend, _ = get_active_backend()
        self._client = dask_client(self._backend)
        self._key = new_key()
        self._server = Server(self._key, self.host)
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._server.wakeup, selectors.EVENT_READ, None)
        self._launch()

    def close(self) -> None:
        """Let the slots wind down and close the channel; idempotent.

        After :meth:`serve` this waits for the worker processes to finish
        and for joblib's call to return, which takes a few milliseconds:
        the caller closes its store first, so that the two overlap. On a
        driver that never served (setup failed) it stops the slots at once.
        """
        if self._server is None or self._wound_down:
            return
        if not self._shut_down:
            self._interrupted = True
            self._shutdown(flush=False)
        self._wind_down()

    def serve(self, controller: Controller, store: Any, *, experiment_name: str,
              trials_dir: str, progress: Any = None, snapshot: Callable[[], Any] | None = None,
              on_trial_finished: Callable[[Trial], None] | None = None,
              periodic: Callable[[float], float] | None = None) -> None:
        """Serve the sweep until the controller is finished (or Ctrl-C).

        ``periodic(now)``, if given, is called from the loop once it is due
        (at once, then when the time it returned has come): for work that
        must not run per event, such as saving a searcher's state.
        """
        self.controller, self.store = controller, store
        self.periodic, self._periodic_due = periodic, -math.inf
        self.experiment_name, self.trials_dir = experiment_name, trials_dir
        self._folders = os.path.join(trials_dir, "")
        self.progress, self.snapshot = progress, snapshot
        self.on_trial_finished = on_trial_finished
        if self._server is None:
            self.start()
        controller.start(time.monotonic())
        previous = None
        if threading.current_thread() is threading.main_thread():
            previous = signal.signal(signal.SIGINT, self._on_sigint)
        try:
            self._loop()
        except BaseException:
            # user code raised in the driver (a callback, a stopper...): stop at once, as
            # on Ctrl-C, with the running trials put back as PENDING to resume later;
            # waiting for them to end could take as long as they do
            if not self._interrupted:
                self._interrupted = True
                self._interrupt(time.monotonic())
            raise
        finally:
            if previous is not None:
                signal.signal(signal.SIGINT, previous)
            self._shutdown()
        if self._interrupted:
            raise KeyboardInterrupt

    def _on_sigint(self, signum: int, frame: Any) -> None:
        if self._interrupted:             # a second Ctrl-C: leave at once
            raise KeyboardInterrupt
        self._interrupted = True
        if self._server is not None:
            self._server.notify()

    def _loop(self) -> None:
        server = self._server
        next_flush = time.monotonic() + self.flush_interval
        next_progress = time.monotonic()
        while True:
            now = time.monotonic()
            if self._interrupted:
                self._interrupt(now)
                return
            self.controller.callback("on_step_begin")
            self._accept_new()
            self._pump(now)
            if self.controller.is_finished() and self._all_slots_idle():
                self.controller.callback("on_step_end")
                return
            if not self._task_ends.empty():
                self._on_task_ends(now)
                if self.controller.is_finished() and self._all_slots_idle():
                    self.controller.callback("on_step_end")
                    return
            if self._launcher_done.is_set():
                self._on_launcher_done(now)
                if self.controller.is_finished():
                    self.controller.callback("on_step_end")
                    return
            if now >= next_flush or self.store.pending >= FLUSH_PENDING_WRITES:
                self.store.flush_soon()     # committed by a background thread
                next_flush = now + self.flush_interval
            if self.progress is not None and now >= next_progress:
                self.progress.update(self.snapshot())
                next_progress = now + self.progress_interval
            if self.periodic is not None and now >= self._periodic_due:
                self._periodic_due = self.periodic(now)
            self.controller.tick(now)      # the time budget runs out even without reports
            self.controller.poll_stopper(now)   # so may a stopper's (a TimeoutStopper)
            self._enforce_stop(now)
            self.controller.prepare(len(self.slots))   # idle time: create the next trials
            # wake for the next commit only when there is something to commit; else at
            # the idle pace, which time budgets, stoppers and kill timers rely on
            wake = next_flush if self.store.pending else now + IDLE_WAKE_S
            timeout = max(0.0, min(wake, next_progress if self.progress else wake) - now)
            for key, _ in self._selector.select(timeout=min(timeout, 0.25)):
                if key.data is None:
                    server.drain_wakeup()
                elif key.data.conn in self.peers:
                    self._read(key.data)
            self.controller.callback("on_step_end")

    def _all_slots_idle(self) -> bool:
        """No trial is assigned anywhere (workers may still be winding down)."""
        return all(s.reserved is None and s.lost is None and
                   (s.worker is None or (s.worker.trial is None and not s.worker.ahead))
                   for s in self.slots.values())

    # ------------------------------------------------------------ connections

    def _accept_new(self) -> None:
        server = self._server
        while True:
            try:
                conn = server.accepted.get_nowait()
            except Exception:   # queue.Empty
                break
            peer = self.peers[conn] = Peer(conn)
            self._selector.register(conn, selectors.EVENT_READ, peer)

    def _send(self, peer: Peer, message: tuple) -> bool:
        try:
            peer.conn.send(message)
            peer.waiting = False
            return True
        except (OSError, ValueError):
            self._drop(peer)
            return False

    def _read(self, peer: Peer) -> None:
        try:
            message = peer.conn.recv()
        except (EOFError, OSError):
            self._drop(peer)
            return
        except Exception:   # noqa: BLE001 - an undecodable message: drop the peer
            self._drop(peer)
            return
        if not isinstance(message, tuple) or not message or not isinstance(message[0], str):
            self._drop(peer)
            return
        kind = message[0]
        expected = _MESSAGE_SIZES.get(kind)
        hello = kind in ("supervisor", "worker")
        if expected is None or len(message) != expected or hello != (peer.role == ""):
            self._drop(peer)       # not our protocol, or out of turn
            return
        # Errors from here on come from the controller or user code (callbacks,
        # schedulers, searchers): they propagate as they are.
        getattr(self, _HANDLERS[kind])(peer, message, time.monotonic())

    def _forget(self, peer: Peer) -> bool:
        """Stop watching and close a connection; False if it was already forgotten."""
        if self.peers.pop(peer.conn, None) is None:
            return False
        try:
            self._selector.unregister(peer.conn)
        except (KeyError, ValueError, OSError):
            pass
        try:
            peer.conn.close()
        except OSError:
            pass
        return True

    def _drop(self, peer: Peer) -> None:
        """A connection closed (or misbehaved): forget it and deal with its trial."""
        if not self._forget(peer):
            return
        if peer.role not in ("supervisor", "worker"):
            return
        slot = self.slots.get(peer.slot)
        if slot is None:
            return
        now = time.monotonic()
        if peer.role == "worker":
            if slot.worker is peer:
                slot.worker = None
            unsure = self._unsure_which_trial(peer)
            # a forked process's supervisor will report how it ended: wait for that
            awaits_exit = peer.trial is not None and peer.mode == "fork" and \
                slot.supervisor is not None
            if awaits_exit and unsure:
                # not back in the queue yet: the exit status may charge one of them, and
                # by then it must not have been handed to another worker
                slot.lost_ahead = list(peer.ahead)
                peer.ahead.clear()
            self._put_back_ahead(peer)
            if awaits_exit:
                slot.lost, slot.lost_pid, slot.lost_unsure = peer.trial, peer.pid, unsure
            elif peer.trial is not None:
                self._lose(peer.trial, f"the worker of slot {peer.slot} (pid {peer.pid}) "
                           "disconnected", count=peer.mode == "inline", now=now)
            peer.trial = None
            return
        # a supervisor vanished: its slot task is gone
        if slot.supervisor is not peer:
            return          # an older supervisor of the slot, already replaced
        slot.supervisor = None
        if slot.worker is not None:
            worker = slot.worker
            if worker.host == peer.host:
                kill_quietly(worker.pid)
            self._put_back_ahead(worker)
            trial, worker.trial = worker.trial, None
            slot.worker = None
            self._forget(worker)
            if trial is not None:
                self._lose(trial, "its slot's joblib task ended", count=False, now=now)
        self._put_back_lost_ahead(slot)
        if slot.lost is not None:
            self._lose(slot.lost, "its slot's joblib task ended", count=False, now=now)
        if slot.reserved is not None:
            self._unreserve(slot.reserved, now)
        slot.lost = slot.reserved = None

    def _lose(self, trial: Trial, reason: str, count: bool, now: float,
              outcome: str | None = None) -> None:
        self.controller.on_lost(trial.trial_id, reason, count, now,
                                outcome=outcome or self._lost_outcome())
        self._after_trial(trial)

    def _lost_outcome(self) -> str:
        if self._interrupted:
            return "PENDING"
        if self.controller.stopping:
            return "TERMINATED"
        return "RETRY"

    def _after_trial(self, trial: Trial) -> None:
        if trial.status in ("TERMINATED", "ERROR"):
            self._finished_since_launch += 1
            if self.on_trial_finished is not None:
                self.on_trial_finished(trial)

    # -------------------------------------------------------------- handlers

    def _slot_of_hello(self, peer: Peer, slot_id: Any) -> Slot | None:
        slot = self.slots.get(slot_id) if isinstance(slot_id, int) else None
        if slot is None:
            self._drop(peer)
        return slot

    def _on_supervisor_hello(self, peer: Peer, message: tuple, now: float) -> None:
        _, slot_id, pid, host, forked = message
        slot = self._slot_of_hello(peer, slot_id)
        if slot is None:
            return
        if slot.supervisor is not None:
            # the slot's task was started again (e.g. Dask re-ran it after its worker
            # died): whatever the old one ran is gone with it
            self._drop(slot.supervisor)
        peer.role, peer.slot, peer.pid, peer.host = "supervisor", slot_id, int(pid), str(host)
        # a supervisor that forked its first trial process already (SlotTask.env)
        # asks for none until that one exits
        peer.waiting = not forked
        slot.supervisor, slot.kill_sent = peer, False
        slot.failures, slot.greeted = 0, True

    def _on_worker_hello(self, peer: Peer, message: tuple, now: float) -> None:
        _, slot_id, pid, host, mode, env = message
        if mode == "fork" and not isinstance(env, dict):
            self._drop(peer)          # a trial process says what it was forked with
            return
        slot = self._slot_of_hello(peer, slot_id)
        if slot is None:
            return
        peer.role, peer.slot, peer.pid, peer.host, peer.mode = (
            "worker", slot_id, int(pid), str(host), str(mode))
        # (from its hello: it may arrive before its supervisor's)
        peer.env = env if mode == "fork" else None
        peer.waiting = True
        slot.worker = peer

    def _on_child_exit(self, peer: Peer, message: tuple, now: float) -> None:
        _, pid, code, running = message
        slot = self.slots[peer.slot]
        slot.kill_sent = False
        worker = slot.worker
        if worker is not None and worker.pid == pid and worker.host == peer.host:
            # The dead process's last messages (ends it sent without waiting) may
            # still be unread on its own connection: they come first, or a trial it
            # finished would be taken for the one that died.
            self._drain(worker)
        trial, unsure = None, False
        if slot.lost is not None and slot.lost_pid == pid:
            trial, slot.lost, unsure = slot.lost, None, slot.lost_unsure
            self._put_back_lost_ahead(slot)      # the charge below takes its culprit out
        elif slot.worker is not None and slot.worker.pid == pid and slot.worker.host == peer.host:
            worker = slot.worker
            unsure = self._unsure_which_trial(worker)
            self._put_back_ahead(worker)
            trial, worker.trial = worker.trial, None
            slot.worker = None
            self._forget(worker)
        if trial is not None:
            reason = f"the worker process (pid {pid}) died: {describe_exit(code)}"
            # ``running`` is the trial the process had begun, from a page it shares
            # with its supervisor; it differs from ours when the process held back
            # the ends of the short trials before it
            held = unsure and running != trial.trial_id
            if held and isinstance(running, str) and running and \
                    self._charge_held(trial, running, reason, now):
                pass
            elif held:
                # no usable word on the trial it ran: retry ours without counting a
                # failure, and from now on have every end reported at once, so a trial
                # that kills its process again is the one charged
                self._hold_ends = False
                self._lose(trial, reason, count=False, now=now)
            else:
                # any exit with a trial unfinished counts, exit code 0 too (an objective
                # calling os._exit(0) would otherwise be requeued forever)
                self._lose(trial, reason, count=not self.controller.stopping, now=now)
        peer.waiting = True

    def _charge_held(self, believed: Trial, running: str, reason: str, now: float) -> bool:
        """The process died in ``running``, a trial it had started without telling us yet.

        It held back the ends of the trials before it, so those ran (their
        results are lost with the process) and go back to the queue without
        a failure; ``running`` is charged. False if ``running`` is not a
        trial that process could have started.
        """
        culprit = self.controller.trials.get(running)
        if culprit is None or culprit.status != "PENDING":
            return False
        self._lose(believed, "its end was lost with its worker process", count=False, now=now,
                   outcome="AGAIN")
        self.controller.fail_unstarted(culprit, reason, now)
        self._after_trial(culprit)
        return True

    def _drain(self, peer: Peer) -> None:
        """Handle whatever ``peer`` sent that is still unread, up to its end of stream."""
        while peer.conn in self.peers:
            try:
                if not peer.conn.poll(0):
                    return
            except (OSError, EOFError):
                self._drop(peer)
                return
            self._read(peer)

    def _on_report(self, peer: Peer, message: tuple, now: float) -> None:
        _, trial_id, rows_json, n_rows, last, kind, stop_hit, checkpoint = message
        stop, point = self.controller.on_report(trial_id, rows_json, n_rows, last, kind,
                                                stop_hit, checkpoint, now)
        self._send(peer, ("verdict", stop, point))

    def _on_end(self, peer: Peer, message: tuple, now: float) -> None:
        """Trials ended on this worker: ``[(record, next_id), ...]``, in order."""
        items = message[1]
        if not isinstance(items, list) or not items:
            self._drop(peer)
            return
        for item in items:
            if not (isinstance(item, tuple) and len(item) == 2 and
                    isinstance(item[0], tuple) and len(item[0]) == 8):
                self._drop(peer)
                return
            if not self._end_one(peer, item[0], item[1], now):
                return
        if peer.conn not in self.peers:
            return
        if peer.trial is not None:
            self._top_up(peer)
        elif not peer.ahead:
            peer.waiting = True       # it waits for its next trial
            self._feed_worker(self.slots[peer.slot], peer, now)

    def _end_one(self, peer: Peer, record: tuple, next_id: Any, now: float) -> bool:
        """One trial ended; False if the peer broke the protocol (and was dropped)."""
        trial_id, rows_json, n_rows, last, status, error, trace, elapsed = record
        if isinstance(elapsed, float) and elapsed >= 0.0:
            self._trial_s = elapsed if self._trial_s is None else \
                0.8 * self._trial_s + 0.2 * elapsed
        following = None
        if next_id is not None:
            if not peer.ahead or peer.ahead[0].trial_id != next_id:
                self._drop(peer)         # it starts a trial we did not hand it
                return False
            following = peer.ahead.popleft()
        trial = peer.trial
        allocation = None
        if trial is not None and trial.trial_id == trial_id:
            peer.trial = None
            if following is not None:    # the next trial runs on this one's resources
                allocation, trial.allocation = trial.allocation, None
            elif peer.ahead and trial.allocation is not None:
                # trials handed out ahead are on their way to a worker that ran dry:
                # keep these resources for the one it will start
                if peer.spare is not None:
                    self.controller.give_back(peer.spare)
                peer.spare, trial.allocation = trial.allocation, None
        else:
            trial = None          # not the trial we think it runs: leave ours alone
        # recorded before the next trial starts (callbacks see one end, then one start;
        # fail_fast can stop the sweep; a search_alg hears how it ended before it suggests)
        self.controller.on_end(trial_id, rows_json, n_rows, last, status, error, trace, now)
        if trial is not None:
            self._after_trial(trial)
        if following is not None:
            if allocation is None:        # it followed a trial we did not count as running
                allocation = self.controller.pool.acquire(following.request)
            if allocation is None:
                peer.ahead.appendleft(following)
                self._drop(peer)          # gives back its trials; its process goes
                return False
            self._start_following(peer, following, allocation, now)
        return True

    def _on_start(self, peer: Peer, message: tuple, now: float) -> None:
        """After a wait, the worker took up the first trial it was handed ahead."""
        trial_id = message[1]
        allocation, peer.spare = peer.spare, None
        if allocation is None and peer.ahead:
            allocation = self.controller.pool.acquire(peer.ahead[0].request)
        if peer.trial is not None or not peer.ahead or peer.ahead[0].trial_id != trial_id or \
                allocation is None:
            if allocation is not None:
                self.controller.give_back(allocation)
            self._drop(peer)
            return
        self._start_following(peer, peer.ahead.popleft(), allocation, now)
        self._top_up(peer)

    def _start_following(self, peer: Peer, trial: Trial, allocation: Any, now: float) -> None:
        self.controller.start_ahead(trial, allocation, now)
        peer.trial = trial

    def _on_saving(self, peer: Peer, message: tuple, now: float) -> None:
        """A trial told to stop is about to save its end checkpoint: may it?

        Yes while its trial is still the one this worker runs: the stop grace
        then waits up to ``END_SAVE_GRACE_S`` for it instead of killing the
        process mid-save. The answer is ``("saving", allowed)``.
        """
        trial = peer.trial
        allowed = peer.role == "worker" and trial is not None and trial.trial_id == message[1]
        if allowed:
            peer.saving = (trial.trial_id, now + END_SAVE_GRACE_S)
        self._send(peer, ("saving", allowed))

    def _on_dropped(self, peer: Peer, message: tuple, now: float) -> None:
        """The worker gave back the trials handed to it ahead (it never started them)."""
        ids = set(message[1]) if isinstance(message[1], (list, tuple)) else set()
        back = [t for t in peer.ahead if t.trial_id in ids]
        peer.ahead = deque(t for t in peer.ahead if t.trial_id not in ids)
        self.controller.put_back(back)
        if peer.trial is not None and peer.trial.trial_id in ids:
            # never happens with this worker code: a trial sent to start at once is
            # not given back; if it were, it did not run
            trial, peer.trial = peer.trial, None
            self.controller.on_lost(trial.trial_id, "given back unstarted", False, now,
                                    outcome=self._lost_outcome())
        if not peer.ahead and peer.spare is not None:
            self.controller.give_back(peer.spare)
            peer.spare = None
        if peer.trial is None and not peer.ahead:
            peer.waiting = True

    def _unsure_which_trial(self, worker: Peer) -> bool:
        """Whether a dead worker may have been past the trial we think it ran.

        A worker holding back the end of a short trial has started the next
        trial handed to it ahead without telling us yet; that trial is then
        still among ``worker.ahead``.
        """
        return worker.hold_given and bool(worker.ahead)

    def _put_back_lost_ahead(self, slot: Slot) -> None:
        if slot.lost_ahead:
            self.controller.put_back(slot.lost_ahead)
            slot.lost_ahead = []

    def _put_back_ahead(self, peer: Peer) -> None:
        if peer.ahead:
            self.controller.put_back(list(peer.ahead))
            peer.ahead.clear()
        if peer.spare is not None:
            self.controller.give_back(peer.spare)
            peer.spare = None

    # ------------------------------------------------------------- assigning

    def _pump(self, now: float) -> None:
        """Answer every peer that waits for work, as far as resources allow."""
        for slot in self.slots.values():
            worker = slot.worker
            # a forked process gets no trial before its supervisor is known (a process
            # forked before connecting may say hello first): only the supervisor can say
            # how the process ended, and so charge a trial that killed it
            if worker is not None and worker.waiting and worker.trial is None and \
                    (worker.mode != "fork" or slot.supervisor is not None):
                self._feed_worker(slot, worker, now)
            sup = slot.supervisor
            if sup is not None and sup.waiting and slot.worker is None and slot.lost is None:
                self._feed_supervisor(slot, sup, now)

    def _reserved(self, slot: Slot, now: float) -> Trial | None:
        """The trial held for this slot; given back if the sweep is stopping."""
        trial = slot.reserved
        if trial is not None and self.controller.stopping:
            slot.reserved = None
            self._unreserve(trial, now)
            return None
        return trial

    def _unreserve(self, trial: Trial, now: float) -> None:
        """A trial assigned to a slot that never started it waits again."""
        self.controller.on_lost(trial.trial_id, "not started", False, now, outcome="PENDING")

    def _feed_worker(self, slot: Slot, worker: Peer, now: float) -> None:
        trial = self._reserved(slot, now)
        if trial is None:
            prefer = tuple(g for g in (worker.env or {}).get("CUDA_VISIBLE_DEVICES", "").split(",") if g)
            trial = self.controller.assign(now, prefer, announce=False)
        if trial is None:
            if not self.controller.more_may_come():
                self._send(worker, ("exit",))
            return
        slot.reserved = None
        if worker.mode == "fork" and trial.allocation.env() != worker.env:
            slot.reserved = trial           # needs a process with another environment
            self._send(worker, ("exit",))
            return
        worker.trial = trial
        worker.drop_sent = False
        self.controller.announce_start(trial)
        self._top_up(worker, first=trial)

    def _ahead_depth(self) -> int:
        """How many trials a busy worker should hold ahead (0: none)."""
        est = self._trial_s
        fit = AHEAD_MAX_BYTES // max(self._spec_bytes, 1)
        if est is None or est >= AHEAD_LONG_S or not fit or not self.controller.can_hand_ahead():
            return 0
        depth = min(AHEAD_MAX, fit, max(1, math.ceil(AHEAD_COVER_S / max(est, 1e-6))))
        # never more than a fair share of what is left, so that no slot idles at the end
        return min(depth, math.ceil(self.controller.n_waiting() / len(self.slots)))

    def _top_up(self, worker: Peer, first: Trial | None = None) -> None:
        """Send ``first`` (the trial to start now) and trials ahead, as far as wanted."""
        running = worker.trial
        trials = [first] if first is not None else []
        # topped up once down to half its depth (at most AHEAD_MAX): checked first, since
        # working out the depth costs more, and this runs after every trial
        if running is not None and len(worker.ahead) <= AHEAD_MAX // 2:
            depth = self._ahead_depth()
            if depth and len(worker.ahead) <= depth // 2:
                while len(worker.ahead) < depth:
                    nxt = self.controller.take_ahead(running.request)
                    if nxt is None:
                        break
                    worker.ahead.append(nxt)
                    trials.append(nxt)
        if not trials:
            return
        alloc = running.allocation if running is not None else None
        folders = self._folders      # os.path.join(self.trials_dir, name), for a plain name
        specs = [self.controller.trial_spec(t, self.experiment_name,
                                            folders + (t.dirname or t.trial_id), alloc)
                 for t in trials]
        for spec, t in zip(specs, trials):
            spec["ahead"] = t is not first
            spec["hold_end"] = self._hold_ends
        worker.hold_given = worker.hold_given or self._hold_ends

        payload = self._pickle_specs(specs, trials, worker)
        self._spec_bytes = max(self._spec_bytes, len(payload) // len(trials))
        handed = [t for t in trials if t is not first]
        if handed and len(payload) > AHEAD_MAX_BYTES:
            # larger than the trials before them: too much to push at a worker that
            # is not reading; they wait for a later, smaller hand-out
            for t in handed:
                worker.ahead.remove(t)
            self.controller.put_back(handed)
            if first is None:
                return
            payload = self._pickle_specs(specs[:1], trials[:1], worker)
        try:
            worker.conn.send_bytes(payload)
            worker.waiting = False
        except (OSError, ValueError):
            self._drop(worker)

    def _pickle_specs(self, specs: list[dict], trials: list[Trial], worker: Peer) -> bytes:
        """The message that hands ``trials`` to ``worker``.

        A config of plain data goes as it is. Any other config goes as
        cloudpickle bytes (as joblib sends functions), which the worker
        unpickles only when the trial starts: classes and functions defined
        in the user's script (``__main__``) then travel by value, and a config
        that cannot be rebuilt in the worker fails its own trial, not the
        worker process and the trial it is running. To a worker thread of
        this very process (the threading backend), a config that cannot be
        pickled (a lock, an open file) goes as the objects themselves, in
        dicts and lists of its own.
        """
        pickler = None
        for i, (spec, trial) in enumerate(zip(specs, trials)):
            if not is_plain(trial.config):
                pickler = pickler or _cloudpickle()
                try:
                    data = pickler.dumps(trial.config)
                except Exception as err:   # noqa: BLE001 - fails this trial in the worker
                    if worker.pid == os.getpid() and worker.host == _session._HOSTNAME:
                        token = next(_tokens)
                        SHARED_CONFIGS[token] = _own_containers(trial.config)
                        self._shared.append(token)
                        specs[i] = dict(spec, config=None, config_shared=token)
                        continue
                    data = pickle.dumps(_Unpicklable(f"{type(err).__name__}: {err}"))
                specs[i] = dict(spec, config=None, config_pickle=data)
        return _ForkingPickler.dumps(("trials", specs))

    def _feed_supervisor(self, slot: Slot, sup: Peer, now: float) -> None:
        trial = self._reserved(slot, now)
        if trial is None:
            trial = self.controller.assign(now, announce=False)
            slot.reserved = trial
        if trial is None:
            if not self.controller.more_may_come():
                self._send(sup, ("exit",))
            return
        self._send(sup, ("fork", trial.allocation.env()))

    # --------------------------------------------------------- stop and faults

    def _enforce_stop(self, now: float) -> None:
        if not self.controller.stopping:
            return
        for slot in self.slots.values():
            worker = slot.worker
            if worker is not None and worker.ahead and not worker.drop_sent:
                worker.drop_sent = self._send(worker, ("drop",))
        if self._stop_started is None:
            self._stop_started = now
            return
        if now - self._stop_started < STOP_GRACE_S:
            return
        self._expire_saves(now)
        for slot in self.slots.values():
            busy = slot.lost is not None or (slot.worker is not None and slot.worker.trial is not None)
            if busy and slot.supervisor is not None and not slot.kill_sent and \
                    not self._saving(slot, now):
                slot.kill_sent = self._send(slot.supervisor, ("kill",))
        if now - self._stop_started < 2 * STOP_GRACE_S:
            return
        # A trial running inline in this process (threading backend) stops only at its
        # next report, and a thread cannot be killed: one still running after a second
        # grace period is left behind, so that fit() returns. Its connection closes,
        # so its next report (if any) ends it. (Inline in a process of its own, where
        # fork is missing, it is waited for: a next fit() would wait for it anyway.)
        for slot in self.slots.values():
            worker = slot.worker
            if worker is None or worker.mode != "inline" or worker.trial is None or \
                    worker.pid != os.getpid() or worker.host != _session._HOSTNAME or \
                    self._saving(slot, now):
                continue
            trial, worker.trial = worker.trial, None
            self._put_back_ahead(worker)
            slot.worker = None
            self._forget(worker)
            self._abandoned = True
            self._lose(trial, f"its thread did not stop within {2 * STOP_GRACE_S:g} s after "
                       "the sweep stopped (a thread cannot be killed; it may still be "
                       "running)", count=False, now=now)

    @staticmethod
    def _saving(slot: Slot, now: float) -> bool:
        """Whether the slot's trial is saving its end checkpoint, within its grace."""
        worker = slot.worker
        return worker is not None and worker.trial is not None and \
            worker.saving is not None and worker.saving[0] == worker.trial.trial_id and \
            now < worker.saving[1]

    def _expire_saves(self, now: float) -> None:
        """End the grace of saves that outlasted it, with a warning: their trials go
        the way of any that did not stop, and their end checkpoints are lost."""
        for slot in self.slots.values():
            worker = slot.worker
            if worker is None or worker.saving is None or self._saving(slot, now):
                continue
            if worker.trial is not None and worker.saving[0] == worker.trial.trial_id:
                warnings.warn(
                    f"trial {worker.trial.trial_id} was still saving its end checkpoint "
                    f"{END_SAVE_GRACE_S:g} s after it began, when the sweep had stopped; it "
                    "was ended without it (its earlier checkpoints are kept)",
                    RuntimeWarning, stacklevel=2)
            worker.saving = None

    def _on_launcher_done(self, now: float) -> None:
        """Every slot task has returned, or joblib aborted them: relaunch if work remains."""
        self._launcher_done.clear()
        for peer in [p for p in self.peers.values() if p.role == "supervisor"]:
            self._drop(peer)      # their tasks are over; requeues what they ran
        if not self.controller.more_may_come():
            return
        error = self._launcher_error
        self._relaunches = self._relaunches + 1 if self._finished_since_launch == 0 else 1
        if self._relaunches > MAX_RELAUNCHES:
            raise RuntimeError(
                f"the worker slots ended {MAX_RELAUNCHES} times in a row without finishing a "
                f"trial; last error from joblib: {error!r}"
            ) from error
        self._finished_since_launch = 0
        self._launch()

    def _interrupt(self, now: float) -> None:
        for slot in self.slots.values():
            if slot.worker is not None:
                self._put_back_ahead(slot.worker)
                if slot.worker.mode == "inline":
                    self._send(slot.worker, ("drop",))   # it cannot be killed
            if slot.supervisor is not None and slot.worker is not None:
                self._send(slot.supervisor, ("kill",))
            if slot.reserved is not None:
                self._unreserve(slot.reserved, now)
            self._put_back_lost_ahead(slot)
            for trial in (slot.lost, slot.worker.trial if slot.worker else None):
                if trial is not None:
                    self._lose(trial, "interrupted", count=False, now=now)   # back to PENDING
            slot.reserved = slot.lost = None
            if slot.worker is not None:
                slot.worker.trial = None

    def _shutdown(self, flush: bool = True) -> None:
        """Tell every slot to exit and write what is queued (the slots wind down meanwhile)."""
        self._shut_down = True
        try:
            # Supervisors hear it even while their trial process runs: they return as
            # soon as it has exited, without waiting for an answer to "child_exit".
            for peer in list(self.peers.values()):
                if peer.waiting or peer.role == "supervisor":
                    peer.waiting = False
                    _send_quietly(peer.conn, ("exit",))
        finally:
            if flush:
                self.store.flush()

    def _wind_down(self) -> None:
        """Answer the slots' last messages until they hang up, then close the channel."""
        self._wound_down = True
        deadline = time.monotonic() + 5.0
        # workers and supervisors exit on "exit" or EOF
        while self.peers and time.monotonic() < deadline and not self._interrupted:
            # a trial process that connects only now (its slot started late) is told to
            # exit at once: its supervisor, told already, waits for it to end before it
            # hangs up, and the sweep would wait here for the whole deadline
            self._server.dismiss_waiting()
            ready = wait(list(self.peers), timeout=0.1)
            for conn in ready:
                peer = self.peers.get(conn)
                if peer is None:
                    continue
                try:
                    message = conn.recv()
                except (EOFError, OSError):
                    self.peers.pop(conn, None)
                    conn.close()
                    continue
                kind = message[0] if isinstance(message, tuple) and message else None
                if kind in ("child_exit", "end", "worker", "supervisor"):
                    _send_quietly(conn, ("exit",))
                elif kind == "report":
                    _send_quietly(conn, ("verdict", True, float("inf")))
                elif kind == "saving":
                    _send_quietly(conn, ("saving", False))
        for peer in list(self.peers.values()):
            try:
                peer.conn.close()
            except OSError:
                pass
        self.peers.clear()
        for token in self._shared:      # configs of trials that never started
            SHARED_CONFIGS.pop(token, None)
        self._shared.clear()
        self._selector.close()
        self._server.close()
        # Wait for the Parallel call to return even when every slot task has hung
        # up: a joblib call started while it still runs (the next fit(), say) can
        # make loky resize the shared executor under it, and its manager thread
        # then dies on a work item it no longer knows (the next call then waits
        # forever for workers that are gone). After Ctrl-C too: a notebook or a
        # script that catches it may start the next sweep at once. The slot tasks
        # end within milliseconds once their connections close; a second Ctrl-C
        # interrupts the wait.
        if self._launcher is not None:
            # (not long for a thread left running: joblib's call returns when it does)
            self._launcher.join(timeout=1.0 if self._abandoned else
                                3.0 if self._interrupted else 10.0)
        if self._client is not None:
            self._release_dask()

    def _release_dask(self) -> None:
        """Cancel slot tasks that never started, wait briefly for the others, let go of
        the scattered trainable (the workers drop their copies)."""
        futures = dict(self._slot_futures)
        self._slot_futures.clear()
        # tasks whose supervisor never came (queued behind busy workers) would only
        # find the driver gone; the others end within milliseconds of the channel closing
        self._cancel([f for slot_id, f in futures.items() if not self.slots[slot_id].greeted])
        deadline = time.monotonic() + (3.0 if self._interrupted else 10.0)
        for watcher in self._watchers:
            watcher.join(timeout=max(0.0, deadline - time.monotonic()))
        self._watchers.clear()
        self._cancel(list(futures.values()))
        self._trainable_ref = None

    def _cancel(self, futures: list) -> None:
        try:
            waiting = [f for f in futures if f.status == "pending"]
            if waiting:
                self._client.cancel(waiting)
        except Exception:   # noqa: BLE001 - a client that closed: nothing to cancel
            pass
