"""What runs on the joblib side: one long-running task per slot.

A slot task (:func:`slot_main`) connects to the driver and runs trials one
after another until the driver says it is done, so a trial costs one message
instead of one joblib dispatch.

Where the task runs in a process of its own (loky, or a Dask worker) and the
platform can fork, it *supervises*: it forks a trial process with the slot's
environment (``CUDA_VISIBLE_DEVICES``, BLAS/OpenMP thread caps) set before
the objective imports anything, waits for it, and tells the driver how it
ended. A trial process that dies (``os._exit``, SIGKILL, a segfault) then
takes down only itself: the supervisor reports its exit status, the driver
fails or retries the trial, and the supervisor forks a fresh process for the
slot. joblib never sees a dead worker, so it never aborts the other slots.
Where the driver knows the environment of the slot's first trial when it
launches the slots (``SlotTask.env``), the supervisor forks the first trial
process at once, before it connects, instead of asking for it.

In the driver's own process (the ``threading`` backend), or where ``fork``
is missing, the task runs the trials itself ("inline").
"""

from __future__ import annotations

import functools
import inspect
import mmap
import numbers
import os
import signal
import sys
import time
import traceback
import types
import warnings
from dataclasses import dataclass
from multiprocessing.connection import wait
from typing import Any, Callable

from .. import _session
from .._fastpath import DEFAULT_METRIC
from ..checkpoint import remove_dict_folders
from .channel import connect

ISOLATION_ENV = "FASTASHA_TRIAL_ISOLATION"   # "fork" (default where possible) or "inline"
# "0" keeps trial processes under the kernel's normal CPU policy (see _batch_policy)
BATCH_POLICY_ENV = "FASTASHA_TRIAL_BATCH_POLICY"
# A page shared by a supervisor and its trial process: the process writes the id
# of the trial it is about to run (a length byte, then the id), so that when the
# process dies the supervisor can say which trial it was running.
_BOARD_SIZE = 256
# Configs that cannot be pickled, handed to a worker thread of the driver's own process
# (the threading backend) as the objects themselves: token -> config. The driver puts
# them here and names the token in the trial message; the worker takes them out.
SHARED_CONFIGS: dict[int, Any] = {}
_WITHDRAWN = object()     # a token the driver took back when it wound down


class _Board:
    """The trial process's side of the shared page (a no-op without one)."""

    def __init__(self, page: mmap.mmap | None = None) -> None:
        self.page = page

    def write(self, trial_id: str) -> None:
        if self.page is not None:
            data = trial_id.encode()[: _BOARD_SIZE - 1]
            self.page[1:1 + len(data)] = data
            self.page[0] = len(data)


def _read_board(page: mmap.mmap) -> str:
    n = page[0]
    return page[1:1 + n].decode(errors="replace")


@dataclass
class SlotTask:
    """Everything a slot task needs; pickled once per slot by joblib."""

    address: tuple[str, int]
    key: bytes
    slot_id: int
    trainable: Callable | None     # None: passed to slot_main on its own (Dask)
    driver_pid: int
    isolation: str = "auto"
    # The environment of the slot's first trial where the driver knows it at launch
    # (every trial asks for the same CPUs and no GPU): the supervisor then forks its
    # trial process at once, while it connects, instead of asking the driver first.
    env: dict | None = None
    # The driver's working directory when it launched the slots: a trial process starts
    # there (a reused loky worker may still be in the one of an earlier fit()).
    cwd: str | None = None
    # Trial processes under SCHED_BATCH (see _batch_policy); the driver's environment
    # decides (FASTASHA_TRIAL_BATCH_POLICY=0: no), so that it holds on any worker.
    batch_policy: bool = True

    def __repr__(self) -> str:   # never show the key
        return f"SlotTask(slot_id={self.slot_id}, address={self.address})"


def _mode(task: SlotTask) -> str:
    wanted = os.environ.get(ISOLATION_ENV, task.isolation)
    if os.getpid() == task.driver_pid or not hasattr(os, "fork") or wanted == "inline":
        return "inline"
    return "fork"


def slot_main(task: SlotTask, trainable: Callable | None = None) -> int:
    """The joblib task of one slot; returns the number of trial processes it forked.

    ``trainable``, where given, replaces ``task.trainable`` (on Dask it is
    scattered to the workers once, and passed in separately).
    """
    if trainable is not None:
        task.trainable = trainable
    name_dynamic_code(task.trainable)
    if _mode(task) == "inline":
        conn = connect(task.address, task.key)
        try:
            run_trials(conn, task, mode="inline")
        except (EOFError, OSError):
            pass   # the driver went away
        finally:
            conn.close()
        return 0
    return _supervise(task)


# ------------------------------------------------------------------ trials

def run_trials(conn: Any, task: SlotTask, mode: str, board: _Board | None = None,
               env: dict | None = None) -> None:
    """Run the trials the driver hands out until it says there are no more.

    After each trial the worker sends ``("end", [(record, next_id), ...])``
    without waiting for an answer (ends of short trials go together, see
    :meth:`~fastasha._session.Link.end`). ``next_id`` names the trial it
    starts next, taken from the trials the driver handed it ahead of time,
    or is ``None`` when it has none left and waits for the driver. A trial handed out ahead that
    the worker takes up after such a wait is announced with ``("start",
    trial_id)``. So the driver counts a trial as running only once the
    worker has committed to it, and a ``("drop",)`` can never take back a
    trial the driver believes started.

    ``env`` is the environment a trial process was forked with; its hello
    says so, since it may reach the driver before its supervisor's does.
    """
    link = _session.Link(conn)
    board = board or _Board()
    try:
        link.send(("worker", task.slot_id, os.getpid(), _session._HOSTNAME, mode, env))
        spec = None
        while True:
            if spec is None:
                link.poll()
                if link.exit_seen:
                    break
                if not link.inbox:
                    link.wait_for_work()
                    continue
                spec = link.inbox.popleft()
                board.write(spec["trial_id"])
                if spec.get("ahead"):
                    link.send(("start", spec["trial_id"]))
            record = _run_one(link, task.trainable, spec, own_process=mode == "fork")
            link.poll()
            spec = link.inbox.popleft() if link.inbox and not link.exit_seen else None
            if spec is not None:
                board.write(spec["trial_id"])
            # a short trial followed by another may wait to be reported with the next ones
            link.end(record, None if spec is None else spec["trial_id"],
                     hold=spec is not None and spec.get("hold_end", False) and
                     record[-1] < _session.SHORT_TRIAL_S)
    finally:
        link.close()


def _run_one(link: _session.Link, trainable: Callable, spec: dict,
             own_process: bool = False) -> tuple:
    """Run one trial; return its end record for the driver.

    In a trial process of its own (``own_process``) the trial runs in its
    folder, made first, unless the sweep says not to (``spec["chdir"]``).
    """
    started = time.perf_counter()
    if spec.get("config_shared") is not None:      # the object itself, from this process
        config = SHARED_CONFIGS.pop(spec["config_shared"], _WITHDRAWN)
        if config is _WITHDRAWN:
            # the driver wound down (Ctrl-C) between handing this trial out and now
            return (spec["trial_id"], "", 0, None, "ERROR",
                    "the sweep was interrupted before this trial started: the driver "
                    "withdrew its config", None, time.perf_counter() - started)
        spec["config"] = config
    elif spec.get("config_pickle") is not None:      # a config only cloudpickle could send
        import pickle

        try:
            spec["config"] = pickle.loads(spec["config_pickle"])
        except Exception as err:   # noqa: BLE001 - fails this trial, not the worker
            return (spec["trial_id"], "", 0, None, "ERROR",
                    f"the trial's config could not be unpickled in the worker: "
                    f"{type(err).__name__}: {err}", traceback.format_exc(),
                    time.perf_counter() - started)
    folder = spec.get("trial_dir")
    if own_process and spec.get("chdir") and folder is not None:
        try:    # before the session: its clock (time_total_s) starts with the objective
            os.makedirs(folder, mode=0o700, exist_ok=True)
            os.chdir(folder)
        except OSError as err:
            return (spec["trial_id"], "", 0, None, "ERROR",
                    f"the trial's folder could not be made its working directory: {err}; "
                    "check storage_path, or pass TuneConfig(chdir_to_trial_dir=False)",
                    traceback.format_exc(), time.perf_counter() - started)
    session = _session.Session(link, spec)
    status, error, trace = "TERMINATED", None, None
    with link.lock:
        link.session = session
    # a trial with a process of its own: the threads its objective starts report for it
    _session.set_session(session, process_wide=own_process)
    redirected = None
    try:
        if own_process and spec.get("log_files") and folder is not None:
            redirected = _redirect_output(folder, spec["log_files"])
        returned = trainable(spec["config"])
        if inspect.isgenerator(returned):
            _report_yields(session, returned)
        else:
            _report_output(session, returned, "returned")
        session.end_held_checkpoint(keep=True)     # a checkpoint_dir() after the last report
    except _session.TrialStopped:
        pass
    except BaseException as err:   # noqa: BLE001 - any failure of the objective ends the trial
        status = "ERROR"
        error = error_text(err)
        trace = format_traceback(err)
    finally:
        # what the trial opened and asked to close at its end (setup_mlflow's run): in its
        # thread, while its output still goes to its files, before the driver hears of its
        # end (the process may exit soon after)
        session.run_end_hooks()
        if redirected is not None:
            _restore_output(redirected)
        session.end_held_checkpoint(keep=False)    # (the trial failed or was stopped)
        _session.set_session(None, process_wide=own_process)
        with link.lock:
            link.session = None
            blob, n_rows, last = session.drain()
    return (session.trial_id, blob, n_rows, last, status, error, trace,
            time.perf_counter() - started)


def error_text(err: BaseException) -> str:
    """``"<class name>: <message>"`` of a trial's exception (never raises).

    An exception whose ``__str__`` raises gets the words Python's own
    traceback prints for it.
    """
    try:
        text = str(err)
    except Exception:     # noqa: BLE001 - the user's __str__
        text = "<exception str() failed>"
    return f"{type(err).__name__}: {text}"


# the file name cloudpickle gives the code it sends by value (functions and classes of
# the user's script, closures)
_DYNAMIC_CODE = "<dynamic-code>"


def format_traceback(err: BaseException) -> str:
    """The traceback of a trial's exception, naming the files of the user's code.

    joblib sends an objective defined in the user's script (``__main__``)
    by value, with cloudpickle, which names the file of such code
    ``<dynamic-code>`` (cloudpickle 3.1 and later): its frames would show
    neither the script nor its lines. The function's module globals still
    say where it came from (``__file__``), and the frames are named after
    that file again, with their lines where the file can be read here.
    """
    try:
        summary = traceback.TracebackException(type(err), err, err.__traceback__,
                                               lookup_lines=False)
        _name_dynamic_files(summary, err, set())
        return "".join(summary.format())
    except Exception:     # noqa: BLE001 - never worse than Python's own
        return "".join(traceback.format_exception(type(err), err, err.__traceback__))


def _name_dynamic_files(summary: Any, err: BaseException | None, seen: set) -> None:
    """Rename the ``<dynamic-code>`` frames of ``summary`` (and of the exceptions it chains)."""
    if summary is None or err is None or id(err) in seen:
        return
    seen.add(id(err))
    frames = [frame for frame, _ in traceback.walk_tb(err.__traceback__)]
    if len(frames) == len(summary.stack):
        for entry, frame in zip(summary.stack, frames):
            if entry.filename == _DYNAMIC_CODE:
                source = frame.f_globals.get("__file__")
                if isinstance(source, str) and source:
                    entry.filename = source
    _name_dynamic_files(summary.__cause__, err.__cause__, seen)
    _name_dynamic_files(summary.__context__, err.__context__, seen)
    for inner_summary, inner in zip(getattr(summary, "exceptions", None) or (),
                                    getattr(err, "exceptions", None) or ()):
        _name_dynamic_files(inner_summary, inner, seen)


def name_dynamic_code(trainable: Any) -> None:
    """Give the code cloudpickle sent by value the name of its file again, in place.

    cloudpickle (3.1 and later) names the file of the functions and classes
    of the user's script ``<dynamic-code>``: a ``warnings.warn`` in the
    objective then says ``<dynamic-code>:9`` instead of the script's file
    and line. The code objects keep their line numbers, and the functions'
    globals their module's ``__file__``; the code of ``trainable``, and of
    the functions, classes and closures of the script it uses (through its
    globals, closure cells, class attributes, ``functools.partial`` and
    fastasha's wrappers such as ``with_parameters``), is
    renamed after that file. Code that came by reference (importable
    modules) has its own file already and is left alone, as is anything
    else (never raises: at worst a name stays ``<dynamic-code>``, and
    :func:`format_traceback` still names the files of a traceback).
    """
    try:
        _rename_reachable(trainable)
    except Exception:     # noqa: BLE001 - names in messages only: never worth a failed slot
        pass


def _rename_reachable(root: Any) -> None:
    seen: set[int] = set()
    stack = [root]
    while stack:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, types.FunctionType):
            code = obj.__code__
            if code.co_filename != _DYNAMIC_CODE:
                continue        # by reference, or not cloudpickle's: nothing of ours below
            source = obj.__globals__.get("__file__")
            if isinstance(source, str) and source:
                obj.__code__ = _renamed_code(code, source)
            # (cloudpickle's globals of a function: only the names its code uses)
            stack.extend(obj.__globals__.values())
            stack.extend(cell.cell_contents for cell in obj.__closure__ or ()
                         if _cell_filled(cell))
            stack.extend((obj.__defaults__ or ()) + tuple((obj.__kwdefaults__ or {}).values()))
        elif isinstance(obj, type):
            if obj.__module__ == "__main__" or any(
                    _is_dynamic(v) for v in vars(obj).values()):
                stack.extend(vars(obj).values())
        elif isinstance(obj, (staticmethod, classmethod)):
            stack.append(obj.__func__)
        elif isinstance(obj, property):
            stack.extend(f for f in (obj.fget, obj.fset, obj.fdel) if f is not None)
        elif isinstance(obj, functools.partial):
            stack.extend((obj.func, *obj.args, *obj.keywords.values()))
        elif isinstance(obj, types.MethodType):
            stack.append(obj.__func__)
        elif not isinstance(obj, (types.ModuleType, str, bytes, int, float)):
            module = getattr(type(obj), "__module__", None) or ""
            if module == "__main__":
                stack.append(type(obj))     # an instance of a class of the script
            elif module.startswith("fastasha.") and hasattr(obj, "__dict__"):
                # fastasha's wrappers of the objective (with_parameters, a Trainable class)
                stack.extend(vars(obj).values())


def _is_dynamic(obj: Any) -> bool:
    func = getattr(obj, "__func__", obj)
    code = getattr(func, "__code__", None)
    return isinstance(code, types.CodeType) and code.co_filename == _DYNAMIC_CODE


def _cell_filled(cell: Any) -> bool:
    try:
        cell.cell_contents
    except ValueError:      # an empty cell (a name assigned later)
        return False
    return True


def _renamed_code(code: types.CodeType, filename: str) -> types.CodeType:
    """``code``, and the code objects among its constants (nested functions, lambdas,
    comprehensions, classes), with ``co_filename`` set to ``filename`` where it was
    cloudpickle's ``<dynamic-code>``."""
    consts = tuple(_renamed_code(c, filename)
                   if isinstance(c, types.CodeType) and c.co_filename == _DYNAMIC_CODE else c
                   for c in code.co_consts)
    return code.replace(co_filename=filename, co_consts=consts)


def _report_yields(session: _session.Session, generator: Any) -> None:
    """Report each value a generator objective yields (Ray's function API); then close it.

    A stop (``TrialStopped`` from a report) or a refused value leaves the
    generator suspended at its ``yield``: it is closed here, while the trial's
    session and output files are still in place, so that its ``finally``
    (or ``with``) cleanup runs inside the trial, as that of a function
    objective stopped in ``tune.report`` does, instead of whenever the
    generator is garbage-collected. An exception raised by that cleanup
    fails the trial.
    """
    try:
        for output in generator:
            _report_output(session, output, "yielded")
    finally:
        generator.close()


def _report_output(session: _session.Session, output: Any, how: str) -> None:
    """What an objective returned or yielded, as Ray's function API takes it.

    Nothing for a false value (``None``, ``{}``, ``0``), a report for a dict,
    ``{"_metric": value}`` for a number; anything else fails the trial.
    """
    if not _truth(output, how):
        return
    if isinstance(output, dict):
        session.report(output)
    elif isinstance(output, numbers.Number):
        session.report({DEFAULT_METRIC: output})
    else:
        raise ValueError(
            f"the objective {how} {_short_repr(output)} of type {type(output).__name__}; an "
            f"objective may return or yield a dict of metrics or a single number (reported "
            "as '_metric'), or nothing: report results with tune.report() and return None"
        )


def _truth(output: Any, how: str) -> bool:
    try:
        return bool(output)
    except Exception as err:      # noqa: BLE001 - e.g. a numpy array of several values
        raise ValueError(
            f"the objective {how} {_short_repr(output)} of type {type(output).__name__}, "
            "which has no truth value; return or yield a dict of metrics, a single number, "
            "or nothing"
        ) from err


def _short_repr(value: Any) -> str:
    try:
        text = repr(value)
    except Exception:             # noqa: BLE001 - a broken __repr__ must not hide the error
        text = f"<{type(value).__name__} object>"
    return text if len(text) <= 80 else text[:77] + "..."


def _redirect_output(folder: str, names: tuple[str, str]) -> list[tuple[int, int]]:
    """Send this process's stdout and stderr into files of ``folder`` (``log_to_file``).

    Returns what :func:`_restore_output` needs: ``(fd, saved copy)`` pairs.
    The files are appended to, so that a trial run again adds to them.
    """
    os.makedirs(folder, mode=0o700, exist_ok=True)
    _flush_output()
    saved = []
    opened: dict[str, int] = {}
    try:
        for name in names:       # both first: a file that cannot be opened changes nothing
            if name not in opened:
                opened[name] = os.open(os.path.join(folder, name),
                                       os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            for fd, name in ((1, names[0]), (2, names[1])):
                saved.append((fd, os.dup(fd)))
                os.dup2(opened[name], fd)
        except BaseException:
            _put_back(saved)
            raise
    finally:
        for target in opened.values():
            os.close(target)
    return saved


def _restore_output(saved: list[tuple[int, int]]) -> None:
    """Undo :func:`_redirect_output`: the process writes where it did before."""
    _flush_output()
    _put_back(saved)


def _put_back(saved: list[tuple[int, int]]) -> None:
    for fd, copy in saved:
        os.dup2(copy, fd)
        os.close(copy)


_libc: Any = None     # the C library, for fflush (False where it cannot be reached)


def _flush_output() -> None:
    """Write out what the process holds for its output, to where fds 1 and 2 point now.

    That is Python's streams, the original ones too (an objective may have
    replaced or closed ``sys.stdout``), and the C library's buffers, where a
    compiled extension's ``printf`` waits; ``os._exit`` would drop them.
    Never raises.
    """
    global _libc
    streams = (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__)
    for i, stream in enumerate(streams):
        if stream is not None and all(stream is not s for s in streams[:i]):
            try:
                stream.flush()
            except Exception:   # noqa: BLE001 - closed, or not a file at all
                pass
    if _libc is None:
        try:
            import ctypes   # (loaded already: threadpoolctl uses it in the supervisor)
            _libc = ctypes.CDLL(None)
            _libc.fflush.argtypes = [ctypes.c_void_p]
        except Exception:   # noqa: BLE001
            _libc = False
    if _libc:
        _libc.fflush(None)


# --------------------------------------------------------------- supervisor

def _ignore_sigint() -> Any:
    """Ignore Ctrl-C (it reaches the whole process group; the driver decides what stops).

    Returns the previous handler, or None where it could not be changed.
    """
    try:
        return signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:   # not the main thread (e.g. a Dask worker thread)
        return None


def _supervise(task: SlotTask) -> int:
    previous_sigint = _ignore_sigint()
    child_of_driver = os.getppid() == task.driver_pid   # e.g. a loky worker of this driver
    # Every objective calls tune.report: imported here, it is imported once per worker
    # process instead of once in every trial process (about 5 ms, every sweep).
    import fastasha.tune  # noqa: F401
    # found once here, not by every trial process (the supervisor loads no library later)
    pools = _thread_pools()
    # the first trial process, forked before connecting where its environment is known
    child = _fork(task, task.env, None, pools) if task.env is not None else None
    try:
        sup = connect(task.address, task.key)
    except BaseException:
        _discard(child)          # the driver is out of reach: leave no process behind
        raise
    n_forked = 0
    driver_gone = True
    try:
        try:
            sup.send(("supervisor", task.slot_id, os.getpid(), _session._HOSTNAME,
                      child is not None))
        except BaseException:
            _discard(child)
            raise
        while True:
            if child is None:
                try:
                    message = sup.recv()
                except (EOFError, OSError):
                    return n_forked
                if message[0] != "fork":
                    driver_gone = False
                    return n_forked
                child = _fork(task, message[1], sup, pools)
            (pid, page), child = child, None
            n_forked += 1
            code, told_to_exit = _wait_child(pid, sup)
            if code != 0:
                # a killed child ran no finally: remove the checkpoint_dir() folders it left
                # (a clean exit removed its own; the scan of the temporary folder takes
                # about a millisecond, at the end of every sweep otherwise)
                _session.remove_checkpoint_dirs(pid)
            running = _read_board(page)
            page.close()
            if told_to_exit:
                driver_gone = False    # it is winding down: the orphan check waits no more
            if code is None:
                return n_forked    # the driver went away; the child was killed
            try:
                sup.send(("child_exit", pid, code, running))
            except OSError:
                return n_forked
            if told_to_exit:       # the sweep is over: no answer to wait for
                return n_forked
    finally:
        sup.close()
        if previous_sigint is not None:     # a reused loky worker is Ctrl-C-able again
            signal.signal(signal.SIGINT, previous_sigint)
        if child_of_driver:
            # after a normal end only a driver killed right after its "exit" is gone
            _exit_if_orphaned(task.driver_pid, wait_s=1.0 if driver_gone else 0.0)


def _exit_if_orphaned(driver_pid: int, wait_s: float = 1.0) -> None:
    """Exit this process if the driver that started it has died.

    A loky worker whose driver was killed outright (SIGKILL) would otherwise
    sit idle until loky's worker timeout, minutes later, though nothing can
    reach it any more. The kernel reparents it a moment after the driver's
    sockets close, so this waits up to ``wait_s`` for that; a driver that
    lives on (it only closed the connection) is left alone.
    """
    deadline = time.monotonic() + wait_s
    while os.getppid() == driver_pid:
        if time.monotonic() >= deadline:
            return
        time.sleep(0.01)
    os._exit(0)


def _fork(task: SlotTask, env: dict, sup: Any, pools: Any) -> tuple[int, mmap.mmap]:
    """Fork a trial process with ``env``; its pid and the page it shares with us."""
    sys.stdout.flush()
    sys.stderr.flush()
    page = mmap.mmap(-1, _BOARD_SIZE)     # anonymous and shared with the child
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)   # fork with threads
        pid = os.fork()
    if pid == 0:
        _child_main(task, env, sup, page, pools)   # never returns
    return pid, page


def _discard(child: tuple[int, mmap.mmap] | None) -> None:
    """Kill and reap a trial process forked by :func:`_fork` (None: nothing to do)."""
    if child is not None:
        kill_quietly(child[0])
        os.waitpid(child[0], 0)
        child[1].close()


def _child_main(task: SlotTask, env: dict, parent_conn: Any, page: mmap.mmap,
                pools: Any) -> None:
    code = 1
    try:
        if parent_conn is not None:
            parent_conn.close()
        os.environ.update(env)
        if task.batch_policy:
            _batch_policy()
        if task.cwd is not None:
            try:
                os.chdir(task.cwd)
            except OSError:
                pass        # (a worker on another machine, where that folder is not)
        _limit_threads(env, pools)
        conn = connect(task.address, task.key)
        try:
            run_trials(conn, task, mode="fork", board=_Board(page), env=env)
        finally:
            conn.close()
        code = 0
    except (EOFError, OSError):
        code = 0      # the driver is gone: nothing to report to
    except BaseException:   # noqa: BLE001
        traceback.print_exc()
    finally:
        try:
            _flush_output()           # (os._exit skips the flushes and finalizers)
            remove_dict_folders()
        finally:
            os._exit(code)


# (the shared libraries loaded when it was made, threadpoolctl's controller)
_pools: tuple[frozenset | None, Any] | None = None


def _loaded_libraries() -> frozenset | None:
    """Paths of the shared libraries mapped into this process; None where unknown."""
    try:
        with open("/proc/self/maps") as f:
            return frozenset(line[line.index("/"):].rstrip() for line in f
                             if ".so" in line and "/" in line)
    except OSError:
        return None


def _thread_pools() -> Any:
    """threadpoolctl's controller of this process's BLAS/OpenMP pools, or None.

    Making one inspects every loaded library and takes milliseconds (5-10 in
    a fresh trial process), so a supervisor makes it before it forks, the
    trial process inherits it, and a process keeps it as long as the same
    libraries are loaded (a loky worker serves many sweeps).
    """
    global _pools
    try:
        # imported first: it loads libraries of its own (ctypes, libffi) the first time
        from threadpoolctl import ThreadpoolController
    except Exception:   # noqa: BLE001 - best effort; the env vars still apply
        return None
    libraries = _loaded_libraries()
    if _pools is not None and libraries is not None and _pools[0] == libraries:
        return _pools[1]
    try:
        controller = ThreadpoolController()
    except Exception:   # noqa: BLE001 - best effort; the env vars still apply
        controller = None
    _pools = (libraries, controller)
    return controller


def batch_policy_wanted() -> bool:
    """Whether the driver's environment lets trial processes run under ``SCHED_BATCH``."""
    return os.environ.get(BATCH_POLICY_ENV, "1").strip() != "0"


def _batch_policy() -> None:
    """Put this trial process under Linux's ``SCHED_BATCH`` CPU policy (best effort).

    A trial process computes; the driver answers it. When the driver sends a
    process its next trials or a verdict, the kernel wakes the process, and
    under the normal policy the woken process takes the CPU from the driver
    at once: with two trial processes and the driver on two cores the
    driver then waits for a core in the middle of its work, and so does
    every trial process waiting for it. ``SCHED_BATCH`` only drops that
    preemption on wake-up: the process keeps its nice value and its share
    of the CPU. Children of the trial (data loaders) inherit the policy.
    ``FASTASHA_TRIAL_BATCH_POLICY=0`` in the driver's environment keeps the
    normal policy (:func:`batch_policy_wanted`). No privilege is needed;
    elsewhere than Linux this does nothing.
    """
    try:
        os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))
    except (AttributeError, OSError):
        pass


def _limit_threads(env: dict, pools: Any = None) -> None:
    """Cap the thread pools of libraries already loaded (env vars cover later ones)."""
    threads = env.get("OMP_NUM_THREADS")
    if not threads:
        return
    try:
        if pools is None:
            pools = _thread_pools()
        pools.limit(limits=int(threads))
    except Exception:   # noqa: BLE001 - best effort; the env vars still apply
        pass


def _wait_child(pid: int, sup: Any) -> tuple[int | None, bool]:
    """Wait for the child; obey ``kill`` requests.

    Returns its exit code (None if the driver vanished, and the child was
    killed) and whether the driver said ``exit`` meanwhile: the sweep is
    over, the child exits on its own, and the supervisor then returns
    without waiting for an answer to its ``child_exit``.
    """
    pidfd = None
    if hasattr(os, "pidfd_open"):
        try:
            pidfd = os.pidfd_open(pid)
        except OSError:
            pidfd = None
    told_to_exit = False
    try:
        while True:
            watch = [sup] + ([pidfd] if pidfd is not None else [])
            ready = wait(watch, timeout=None if pidfd is not None else 0.05)
            if sup in ready:
                try:
                    message = sup.recv()
                except (EOFError, OSError):
                    kill_quietly(pid)
                    os.waitpid(pid, 0)
                    return None, told_to_exit
                if message[0] == "kill":
                    kill_quietly(pid)
                elif message[0] == "exit":
                    told_to_exit = True
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                return os.waitstatus_to_exitcode(status), told_to_exit
    finally:
        if pidfd is not None:
            os.close(pidfd)


def kill_quietly(pid: int) -> None:
    """SIGKILL ``pid``; a process already gone (or not ours) is left alone."""
    try:
        os.kill(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
