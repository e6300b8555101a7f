"""Short trials handed to a busy worker ahead of time.

When trials take well under AHEAD_LONG_S, the driver sends each worker the
next few trials before it needs them, so the worker never waits for the
driver between trials (see fastasha/_execution/driver.py). These tests
check that this happens, and that it changes nothing a user can see:
every trial runs exactly once, starts before it completes, never more run
at once than there are slots, a time budget leaves unstarted trials
PENDING, and a worker that dies gives back the trials it held.
"""

from __future__ import annotations

import socket
import sys
import threading
from multiprocessing.connection import Connection
from pathlib import Path

import joblib
import pytest

from fastasha import tune
from fastasha._controller import Controller
from fastasha._session import Link
from fastasha.schedulers import FIFOScheduler

TESTS_DIR = Path(__file__).resolve().parent
if str(TESTS_DIR) not in sys.path:
    sys.path.insert(0, str(TESTS_DIR))

import objectives  # noqa: E402

SLOTS = 2


class Events(tune.Callback):
    """A callback that records starts and completions, and the most running at once."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.started: list[str] = []
        self.completed: list[str] = []
        self.errored: list[str] = []
        self.running: set[str] = set()
        self.most_running = 0
        self.restarted: list[str] = []     # started again without having ended

    def on_trial_start(self, iteration, trials, trial, **info):
        trial_id = trial.trial_id
        with self.lock:
            if trial_id in self.running:
                self.restarted.append(trial_id)
            self.started.append(trial_id)
            self.running.add(trial_id)
            self.most_running = max(self.most_running, len(self.running))

    def on_trial_complete(self, iteration, trials, trial, **info):
        trial_id = trial.trial_id
        with self.lock:
            self.running.remove(trial_id)
            self.completed.append(trial_id)

    def on_trial_error(self, iteration, trials, trial, **info):
        trial_id = trial.trial_id
        with self.lock:
            self.running.discard(trial_id)
            self.errored.append(trial_id)


@pytest.fixture
def ahead_counter(monkeypatch):
    """Counts trials that started on a worker after being handed to it ahead of time."""
    calls = [0]
    original = Controller.start_ahead

    def counted(self, *args, **kwargs):
        calls[0] += 1
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Controller, "start_ahead", counted)
    return calls


def _tuner(tmp_path, n, events, *, param_space=None, **tune_kwargs):
    return tune.Tuner(
        objectives.short_trial,
        param_space=param_space or {"x": tune.uniform(0, 1), "reports": 2},
        tune_config=tune.TuneConfig(num_samples=n, metric="loss", mode="min",
                                    scheduler=FIFOScheduler(), seed=5, **tune_kwargs),
        run_config=tune.RunConfig(storage_path=str(tmp_path), name="exp", verbose=0,
                                  callbacks=[events]),
        resources={"cpu": SLOTS},
    )


@pytest.mark.parametrize("backend", ["loky", "threading"])
def test_short_trials_are_handed_out_ahead_and_each_runs_once(tmp_path, backend,
                                                              ahead_counter):
    events = Events()
    with joblib.parallel_config(backend=backend):
        grid = _tuner(tmp_path, 400, events).fit()
    assert ahead_counter[0] > 100, "short trials should mostly start from a worker's inbox"
    assert len(grid) == 400 and grid.num_terminated == 400 and not grid.errors
    assert all(r.metrics["training_iteration"] == 2 for r in grid)
    assert all(len(r.metrics_dataframe) == 2 for r in grid)
    assert sorted(events.started) == sorted(events.completed) == sorted(r.trial_id for r in grid)
    assert events.most_running <= SLOTS
    assert not events.running and not events.restarted


def test_ends_of_trials_of_a_millisecond_or_two_travel_together(tmp_path, monkeypatch):
    # A worker holding its next trials sends the ends of trials under 3 ms in groups,
    # so that the driver, which shares the cores with the trials, reads fewer messages.
    from fastasha._execution import driver

    messages, ends = [0], [0]
    original = driver.Driver._on_end

    def counted(self, peer, message, now):
        messages[0] += 1
        ends[0] += len(message[1])
        return original(self, peer, message, now)

    monkeypatch.setattr(driver.Driver, "_on_end", counted)
    events = Events()
    tuner = tune.Tuner(
        objectives.sleepy_steps,
        param_space={"x": tune.uniform(0, 1), "n": 1, "sleep": 0.0012},
        tune_config=tune.TuneConfig(num_samples=200, metric="loss", mode="min", seed=5),
        run_config=tune.RunConfig(storage_path=str(tmp_path), name="exp", verbose=0,
                                  callbacks=[events]),
        resources={"cpu": SLOTS},
    )
    grid = tuner.fit()
    assert grid.num_terminated == 200 and not grid.errors
    assert sorted(events.completed) == sorted(r.trial_id for r in grid)
    assert ends[0] == 200
    # (each end came alone before: 200 messages; a loaded machine stretches some trials
    # past 3 ms, whose ends go alone)
    assert messages[0] <= 0.9 * ends[0], (messages[0], ends[0])


def test_trials_ahead_give_the_same_sweep_as_one_at_a_time(tmp_path, monkeypatch):
    from fastasha._execution import driver

    grids = {}
    for name, long_s in (("ahead", driver.AHEAD_LONG_S), ("single", 0.0)):
        monkeypatch.setattr(driver, "AHEAD_LONG_S", long_s)
        grids[name] = _tuner(tmp_path / name, 60, Events()).fit()
    ahead, single = ({r.config["x"]: r.metrics["loss"] for r in grids[k]} for k in grids)
    assert ahead == single and len(ahead) == 60


def test_time_budget_leaves_trials_not_started_pending(tmp_path, ahead_counter):
    events = Events()
    grid = _tuner(tmp_path, 5000, events,
                  param_space={"x": tune.uniform(0, 1), "sleep": 0.002}, time_budget_s=1.0).fit()
    assert ahead_counter[0] > 0
    statuses = {}
    for r in grid:
        statuses.setdefault(r.status, []).append(r)
    assert set(statuses) <= {"TERMINATED", "PENDING"}, set(statuses)
    assert statuses.get("PENDING"), "the budget must run out before 5,000 trials of 2 ms"
    assert all(r.metrics_dataframe is None or len(r.metrics_dataframe) == 0
               for r in statuses["PENDING"])
    assert all(r.metrics["training_iteration"] == 1 for r in statuses["TERMINATED"])
    assert sorted(events.completed) == sorted(r.trial_id for r in statuses["TERMINATED"])
    assert not events.running


def test_a_dying_worker_gives_back_the_trials_it_held(tmp_path, ahead_counter):
    """One trial SIGKILLs its own process while later trials wait in that worker's inbox.

    The worker may have held back the ends of the short trials before it,
    so the trial the driver thinks is running is not the one that died. The
    trial process writes the id of each trial it begins on a page it shares
    with its supervisor, which reports it with the exit status: the killer
    is charged at once, the trial the driver thought was running goes back
    to the queue (its end was lost with the process) and runs again, and
    nothing else fails or is lost.
    """
    events = Events()
    n = 300
    grid = _tuner(tmp_path, 1, events, param_space={
        "x": tune.grid_search(list(range(n))),
        "die": tune.sample_from(lambda spec: spec.config["x"] == 200),
    }).fit()
    assert ahead_counter[0] > 0
    assert len(grid) == n
    (failed,) = grid.errors and [r for r in grid if r.status == "ERROR"]
    assert failed.config["x"] == 200 and "SIGKILL" in str(failed.error)
    ok = [r for r in grid if r.status == "TERMINATED"]
    assert len(ok) == n - 1
    assert all(r.metrics["training_iteration"] == 1 for r in ok)
    assert sorted(events.completed) == sorted(r.trial_id for r in ok)
    assert events.errored == [failed.trial_id]
    assert len(set(events.started)) == n
    # at most the one trial whose end was lost runs again
    assert len(events.restarted) <= 1
    assert failed.n_failures == 1


def test_trials_started_after_a_wait_keep_within_the_resources(tmp_path, ahead_counter):
    """Requests made by a function: each trial takes 2 of 4 CPUs, so at most 2 run at once.

    A worker that runs dry before its trials ahead arrive starts the first
    of them after a wait; it must run on the resources of the trial before
    it, not on resources the driver handed to another slot meanwhile.
    """
    events = Events()
    tuner = tune.Tuner(
        tune.with_resources(objectives.short_trial, objectives.two_cpus),
        param_space={"x": tune.uniform(0, 1), "sleep": 0.0005},
        tune_config=tune.TuneConfig(num_samples=1500, metric="loss", mode="min",
                                    scheduler=FIFOScheduler(), seed=3),
        run_config=tune.RunConfig(storage_path=str(tmp_path), name="exp", verbose=0,
                                  callbacks=[events]),
        resources={"cpu": 4})
    grid = tuner.fit()
    assert ahead_counter[0] > 100
    assert grid.num_terminated == 1500 and not grid.errors
    assert events.most_running <= 2


def test_a_drop_gives_back_only_the_trials_handed_out_ahead():
    """The trial sent to start at once is the driver's running trial: a drop keeps it."""
    ours, theirs = socket.socketpair()
    driver, worker = Connection(ours.detach()), Connection(theirs.detach())
    link = Link(worker)
    try:
        driver.send(("trials", [{"trial_id": "a", "ahead": False},
                                {"trial_id": "b", "ahead": True},
                                {"trial_id": "c", "ahead": True}]))
        driver.send(("drop",))
        link.wait_for_work()
        link.poll()
        assert [spec["trial_id"] for spec in link.inbox] == ["a"]
        assert driver.poll(5) and driver.recv() == ("dropped", ["b", "c"])
    finally:
        link.close()
        driver.close()
        worker.close()


def test_big_configs_are_not_pushed_at_busy_workers(tmp_path, ahead_counter):
    """Trial messages over AHEAD_MAX_BYTES go one at a time, to waiting workers."""
    from fastasha._execution import driver

    blob = "x" * (driver.AHEAD_MAX_BYTES + 1)
    events = Events()
    grid = _tuner(tmp_path, 60, events,
                  param_space={"x": tune.uniform(0, 1), "blob": blob}).fit()
    assert grid.num_terminated == 60 and not grid.errors
    assert all(r.config["blob"] == blob for r in grid)
    assert sorted(events.completed) == sorted(r.trial_id for r in grid)
    assert ahead_counter[0] == 0


def test_a_config_the_worker_cannot_unpickle_fails_its_trial_only(tmp_path):
    """A config only cloudpickle can send (it holds a lambda) that fails to unpickle."""
    grid = tune.Tuner(
        objectives.short_trial,
        param_space={"x": tune.grid_search([0.0, 1.0, 2.0]),
                     "poison": tune.sample_from(
                         lambda spec: objectives.Poison() if spec.config["x"] == 1.0 else None),
                     "f": lambda: 0},
        tune_config=tune.TuneConfig(metric="loss", mode="min", scheduler=FIFOScheduler()),
        run_config=tune.RunConfig(storage_path=str(tmp_path), name="exp", verbose=0),
        resources={"cpu": SLOTS}).fit()
    by_x = {r.config["x"]: r for r in grid}
    assert by_x[1.0].status == "ERROR"
    assert "could not be unpickled in the worker" in str(by_x[1.0].error)
    assert "this config cannot be rebuilt here" in str(by_x[1.0].error)
    assert by_x[0.0].status == by_x[2.0].status == "TERMINATED"


def holds_lock(config):
    """Uses the lock of its config: it must be the very object the space holds."""
    with config["lock"]:
        tune.report({"loss": config["x"], "same": int(config["lock"] is LOCK)})


LOCK = threading.Lock()


def test_a_config_that_cannot_be_pickled_runs_on_the_threading_backend(tmp_path):
    """Trials in the driver's own threads get such a config as the object itself."""
    from fastasha._execution.worker import SHARED_CONFIGS

    space = {"x": tune.grid_search([float(i) for i in range(12)]), "lock": LOCK}
    with joblib.parallel_config(backend="threading"):
        grid = tune.Tuner(holds_lock, param_space=space,
                          run_config=tune.RunConfig(storage_path=str(tmp_path), name="threads",
                                                    verbose=0),
                          resources={"cpu": SLOTS}).fit()
    assert grid.num_errors == 0 and len(grid) == 12
    assert all(r.metrics["same"] == 1 and r.config["lock"] is LOCK for r in grid)
    assert SHARED_CONFIGS == {}         # nothing left behind
    # in worker processes it cannot go, and the trial says why
    grid = tune.Tuner(holds_lock, param_space={"x": 1.0, "lock": LOCK},
                      run_config=tune.RunConfig(storage_path=str(tmp_path), name="processes",
                                                verbose=0)).fit()
    assert "could not be pickled for the worker" in str(grid[0].error)


def test_a_worker_thread_whose_config_was_withdrawn_ends_the_trial_not_itself():
    """Ctrl-C: the driver takes back the configs it shared while a worker thread starts one.

    The worker must end that trial (the interrupted driver does not record it) and
    carry on to the driver's "exit", instead of dying with a KeyError.
    """
    from fastasha._execution.worker import SHARED_CONFIGS, SlotTask, run_trials

    calls = []
    ours, theirs = socket.socketpair()
    driver, worker = Connection(ours.detach()), Connection(theirs.detach())
    task = SlotTask(("127.0.0.1", 0), b"k", 0, calls.append, 0)
    token = -12345
    assert token not in SHARED_CONFIGS          # withdrawn already
    try:
        driver.send(("trials", [{"trial_id": "t1", "config": None, "config_shared": token}]))
        thread = threading.Thread(target=run_trials, args=(worker, task, "inline"))
        thread.start()
        assert driver.poll(5) and driver.recv()[0] == "worker"
        assert driver.poll(5)
        kind, ends = driver.recv()
        driver.send(("exit",))
        thread.join(5)
        assert not thread.is_alive()
    finally:
        driver.close()
        worker.close()
    assert kind == "end" and calls == []
    (record, next_id), = ends
    assert record[0] == "t1" and record[4] == "ERROR" and next_id is None
    assert "interrupted before this trial started" in record[5]


class _NoStore:
    """A recorder that keeps nothing (the store is not what this test is about)."""

    def add_trial(self, *args, **kwargs):
        pass

    def update_trial(self, *args, **kwargs):
        pass

    def add_results(self, *args, **kwargs):
        pass

    def add_event(self, *args, **kwargs):
        pass

    def remove_checkpoint(self, *args, **kwargs):
        pass


def _bare_driver(n_trials: int):
    """A driver of 2 slots with a controller of ``n_trials`` one-CPU trials, no processes.

    Returns the driver, its controller and a list that collects the far ends
    of the pipes made with :func:`_pipe_end` (the test closes them).
    """
    import selectors

    from fastasha._execution.driver import Driver
    from fastasha._resources import Request, ResourcePool

    configs = iter([{"i": i} for i in range(n_trials)])
    controller = Controller(
        suggest=lambda trial_id: next(configs), total=n_trials, scheduler=FIFOScheduler(),
        request_for=lambda config: Request(1.0, 0.0), pool=ResourcePool(2.0, []),
        recorder=_NoStore(), metric=None, mode=None, max_failures=2)
    driver = Driver(objectives.steps, 2)
    driver.controller = controller
    driver._selector = selectors.DefaultSelector()
    return driver, controller, []


def _pipe_end(ends: list):
    """One end of a new pipe; the other goes to ``ends``."""
    from multiprocessing import Pipe

    conn, other = Pipe()
    ends.append(other)
    return conn


def test_a_dead_workers_trials_ahead_wait_for_its_exit_status():
    """The worker's connection closes before its supervisor reports the exit.

    The worker held back ends, so it may have died in a trial handed to it
    ahead. Those trials must not go back to the queue (where another worker
    could be handed the culprit) until the exit status names it; then the
    culprit is charged and every trial is queued exactly once.
    """
    import selectors

    from fastasha._execution.driver import Peer

    driver, controller, ends = _bare_driver(6)

    def peer(role, pid, **fields):
        p = Peer(_pipe_end(ends), role=role, slot=0, pid=pid, host="h", **fields)
        conn = p.conn
        driver.peers[conn] = p
        driver._selector.register(conn, selectors.EVENT_READ, p)
        return p

    slot = driver.slots[0]
    slot.supervisor = peer("supervisor", 100)
    believed = controller.assign(0.0)
    worker = slot.worker = peer("worker", 101, mode="fork", trial=believed, hold_given=True)
    culprit, other = (controller.take_ahead(believed.request) for _ in range(2))
    worker.ahead.extend([culprit, other])

    driver._drop(worker)                     # the connection closed first
    assert culprit not in controller.queue and other not in controller.queue
    assert controller.n_ahead == 2           # still out: not for another worker yet

    driver._on_child_exit(slot.supervisor, ("child_exit", 101, -9, culprit.trial_id), 1.0)
    queued = [t.trial_id for t in controller.queue]
    assert sorted(queued) == sorted({t.trial_id for t in (believed, culprit, other)})
    assert (culprit.n_failures, believed.n_failures, other.n_failures) == (1, 0, 0)
    assert controller.n_ahead == 0
    for end in ends:
        end.close()


def test_a_process_forked_before_its_supervisor_said_hello_waits_for_it():
    """A supervisor forks its first trial process before connecting (SlotTask.env).

    That process's hello can reach the driver before the supervisor's. It must
    get no trial until the supervisor is known: were the process to die in
    its trial, only the supervisor could report the exit status that charges
    the trial with the failure.
    """
    from fastasha._execution.driver import Peer
    from fastasha._resources import Allocation

    driver, controller, ends = _bare_driver(4)
    slot = driver.slots[0]
    worker = Peer(_pipe_end(ends))
    env = Allocation(cpu=1.0).env()          # what every trial here runs with
    driver._on_worker_hello(worker, ("worker", 0, 201, "h", "fork", env), 0.0)
    driver._pump(0.0)
    assert worker.trial is None and worker.waiting      # nothing yet: no supervisor

    supervisor = Peer(_pipe_end(ends))
    driver._on_supervisor_hello(supervisor, ("supervisor", 0, 200, "h", True), 0.0)
    assert not supervisor.waiting          # it forked already: it asks for no process
    driver._pump(0.0)
    assert worker.trial is not None and not worker.waiting
    assert worker.env == env
    for end in ends:
        end.close()


def test_a_trial_process_that_connects_during_the_wind_down_is_told_to_exit_at_once():
    """A slot whose trial process started late (a cold start on a busy machine: the other
    slot ran every trial) connects only once the sweep is over. Its supervisor, told to
    exit, waits for that process before it hangs up; the process must hear "exit" at once,
    not when the wind-down gives up after its 5 s."""
    import os
    import time

    from fastasha._execution.channel import Server, connect
    from fastasha._execution.driver import Peer

    driver, controller, ends = _bare_driver(1)
    key = os.urandom(32)
    server = driver._server = Server(key)
    sup = Peer(_pipe_end(ends), role="supervisor", slot=1)
    driver.peers[sup.conn] = sup
    supervisor_end = ends[-1]
    heard: list = []

    def supervisor():
        heard.append(supervisor_end.recv())            # ("exit",)
        child = connect(server.address, key)           # its trial process, late
        try:
            child.send(("worker", 1, os.getpid(), "host", "fork", None))
            heard.append(child.recv())
        except (EOFError, OSError) as err:
            heard.append(type(err).__name__)
        finally:
            child.close()
            supervisor_end.close()                      # it hangs up once its child ended

    thread = threading.Thread(target=supervisor, daemon=True)
    thread.start()
    try:
        driver._shutdown(flush=False)                   # tells the supervisor to exit
        started = time.monotonic()
        driver._wind_down()
        elapsed = time.monotonic() - started
        thread.join(10)
    finally:
        server.close()
        for end in ends:
            end.close()
    assert heard == [("exit",), ("exit",)]
    assert elapsed < 2.5, elapsed                       # not the wind-down's 5 s deadline


def test_exploit_now_refuses_a_running_trial():
    """Controller.exploit_now (synchronous PBT's) is for trials that are not running: a
    running trial takes its exploit when its pause ends."""
    driver, controller, ends = _bare_driver(1)
    trial = controller.assign(0.0)
    assert trial is not None and trial.status == "RUNNING"
    controller.request_exploit(trial, "donor", {"i": 5}, ("/nowhere", 1, 0.0, 0.0))
    with pytest.raises(ValueError, match=r"is RUNNING: its exploit is carried out when its "
                                         r"pause ends, not now"):
        controller.exploit_now(trial)
    assert trial.exploit is not None and trial.config == {"i": 0}    # nothing applied
