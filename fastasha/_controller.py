"""The experiment as a state machine: events in, decisions and records out.

The controller knows trials, their status and resources, the searcher, the
scheduler, stop criteria, budgets and retries. It does no I/O of its own:
the driver feeds it events (a worker is free, a trial reported, a trial
ended, a worker died, time passed) and executes what it answers (which
trial to start, whether a trial stops). What must be persisted goes to the
``recorder`` (the experiment store, whose write methods only queue; the
driver commits them), so a restore can replay exactly the scheduler calls
made here.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import traceback
import warnings
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Sequence

from ._resources import Allocation, Request, ResourcePool, TrialResources
from ._rows import experiment_tag, flatten, head, lookup
from ._storage import CONFIG_EVENT, DIRNAME_EVENT, SCHEDULER_STATE_EVENT
from .callback import HOOKS, bound_hooks
from .checkpoint import Checkpoint, checkpoint_fields, checkpoint_rank
from .config import CheckpointConfig
from .schedulers._base import TrialScheduler, judges_every_result
from .schedulers._ray_style import TuneControllerView, ray_style_hooks
from .search._adapter import hears_results
from .stopper import Stopper

PENDING, RUNNING, TERMINATED, ERROR = "PENDING", "RUNNING", "TERMINATED", "ERROR"
# a trial its scheduler paused (it answered PAUSE): it waits, with its latest checkpoint,
# for the scheduler to pick it again (choose_trial_to_run), as in Ray
PAUSED = "PAUSED"
STATUSES = (PENDING, RUNNING, PAUSED, TERMINATED, ERROR)
# The kinds of logged events: the scheduler's calls, and a search_alg's (logged only
# while its state is saved, see fastasha/_search_state.py)
SCHEDULER_CALLS = ("add", "result", "complete", "remove")
SEARCHER_SUGGEST, SEARCHER_COMPLETE = "searcher.suggest", "searcher.complete"
SEARCHER_CALLS = (SEARCHER_SUGGEST, SEARCHER_COMPLETE)
_UNFIT = object()   # _create_trial: the trial was created and failed at once
# A trial whose worker slot vanishes this often (not a crash of its own process)
# counts as failed: it may be what takes the slot down.
MAX_LOSSES = 3
# After a searcher answered None ("not now"), it is asked again at once when a
# trial ends, and otherwise after a delay that doubles from the first to the
# second value (Ray asks about once a second).
ASK_AGAIN_MIN_S = 0.05
ASK_AGAIN_MAX_S = 1.0
# the verdict's "stop" for a trial told to pause (truthy: its objective ends as on a STOP)
PAUSE_VERDICT = "PAUSE"


@dataclass(eq=False, slots=True)
class Trial:
    """The driver's record of one trial."""

    # Ray's Trial names its statuses (callbacks and reporters compare trial.status to them)
    PENDING: ClassVar[str] = PENDING
    RUNNING: ClassVar[str] = RUNNING
    PAUSED: ClassVar[str] = PAUSED
    TERMINATED: ClassVar[str] = TERMINATED
    ERROR: ClassVar[str] = ERROR

    trial_id: str
    index: int
    config: dict | None                # dropped (None) once the trial is stored and done
    request: Request
    bracket: int | None = None
    status: str = PENDING
    allocation: Allocation | None = None
    n_failures: int = 0
    iteration: int = 0                 # training_iteration of the latest result
    result: dict | None = None         # the latest result (None before the first)
    metric_value: float | None = None
    error: str | None = None
    traceback: str | None = None
    # [(path, iteration, score, time_total_s)]; a shared empty tuple until the first one
    checkpoints: list | tuple = ()
    scheduler_done: bool = False       # on_trial_complete / removal already sent
    n_lost: int = 0                    # times its worker slot vanished under it
    pending_error: tuple | None = None  # set when a result could not be judged
    stop_reason: str | None = None
    started_at: float | None = None
    root: str | None = None            # the experiment's trials folder (one shared string)
    trainable_name: str | None = None  # the objective's name (one shared string), as in Ray
    folder_made: bool = False          # its folder was made for a caller of ``path``
    dirname: str | None = None         # its folder's name, when trial_dirname_creator gave one
    pausing: bool = False              # its scheduler answered PAUSE; its objective is ending
    # (donor trial id, new config, donor checkpoint tuple): the scheduler exploits another
    # trial (PBT) once this one is paused
    exploit: tuple | None = None
    custom_name: str | None = None     # what trial_name_creator named it, once asked
    # Ray's since-restore fields of ``result``, worked out as the read-back results do
    # (fastasha._rows.RunTracker): the ``started_at`` of the run whose results are being
    # counted, the time_total_s that run resumed from (its first batch's prev - start)
    # and its results so far; ``since`` is (that time, that count) for ``result``
    run_started: float | None = None
    run_offset: float | None = None
    run_count: int = 0
    since: tuple | None = None

    def __str__(self) -> str:
        """As Ray's Trial: its ``trial_name_creator`` name, else ``<trainable>_<trial_id>``.

        Also as in Ray, a config's ``"env"`` (an RL environment's name, or
        its class) goes between the two, and ``/`` becomes ``_``.
        """
        if self.custom_name is not None:
            return self.custom_name
        if not self.trainable_name:
            return self.trial_id
        parts = [self.trainable_name]
        env = self.config.get("env") if isinstance(self.config, dict) else None
        if env is not None:
            parts.append(env.__name__ if isinstance(env, type) else str(env))
        parts.append(self.trial_id)
        return "_".join(parts).replace("/", "_")

    __repr__ = __str__

    @property
    def latest(self) -> tuple | None:
        """Latest checkpoint ``(path, iteration, score, time_total_s[, result iteration])``.

        ``checkpoints`` is kept in the order of their report counts (see
        ``Controller._add_checkpoint``), so this is its last entry: callbacks
        ask for it with every result, and a trial may keep thousands.
        """
        return self.checkpoints[-1] if self.checkpoints else None

    # what Ray's Trial offers callbacks and progress reporters under these names
    @property
    def last_result(self) -> dict:
        """A copy of the latest result with Ray's ``config`` and ``checkpoint_dir_name``;
        ``{}`` before the first one, as in Ray.

        Its ``time_since_restore`` and ``iterations_since_restore`` came with
        the result from the worker. ``config`` is the trial's own dict (not a
        copy: read it, do not change it), unless the objective reported a
        ``"config"`` of its own; a finished trial whose config was dropped
        has none.
        """
        result = self.result
        if result is None:
            return {}
        out = self.live_result(config=True)
        out.update(checkpoint_fields(result, self.latest))
        return out

    def live_result(self, config: bool = True) -> dict:
        """A copy of :attr:`result` with the fields Ray's results carry that the stored
        rows get only when read: ``config`` (if ``config``), ``time_since_restore`` and
        ``iterations_since_restore`` (the values the read-back result has).

        A value the objective reported under one of these names wins. Without a
        result from this driver (a restored trial's stored one), no since-restore
        fields; a finished trial whose config was dropped has no ``config``.
        """
        out = dict(self.result or {})
        if config and "config" not in out and self.config is not None:
            out["config"] = self.config
        since = self.since
        if since is not None:
            offset, count = since
            total = out.get("time_total_s")
            if "time_since_restore" not in out and offset is not None and \
                    isinstance(total, (int, float)) and not isinstance(total, bool):
                out["time_since_restore"] = total - offset
            out.setdefault("iterations_since_restore", count)
        return out

    @property
    def num_failures(self) -> int:
        """How many times the trial failed (``n_failures``)."""
        return self.n_failures

    def is_finished(self) -> bool:
        """Whether the trial has ended (``TERMINATED`` or ``ERROR``)."""
        return self.status in (TERMINATED, ERROR)

    @property
    def checkpoint(self) -> Checkpoint | None:
        """The latest checkpoint the trial saved, as a :class:`~fastasha.checkpoint.Checkpoint`."""
        latest = self.latest
        return Checkpoint(latest[0]) if latest else None

    @property
    def path(self) -> str | None:
        """The trial's folder (its checkpoints go there); made on first use, as Ray has it.

        A callback's ``on_trial_start`` finds it there, as in Ray (whose logging
        guide opens a file in it), though the trial process may not have made
        it yet; it is made here only when asked for, since making a folder
        costs tens of microseconds of the driver's time.
        """
        if self.root is None:
            return None
        path = os.path.join(self.root, self.dirname or self.trial_id)
        if not self.folder_made:
            os.makedirs(path, mode=0o700, exist_ok=True)
            self.folder_made = True
        return path

    local_path = path
    logdir = path       # Ray 2.0-2.6's name, still used by Ray's logging guide

    @property
    def placement_group_factory(self) -> TrialResources:
        """The trial's request as a ``tune.PlacementGroupFactory``, as Ray's Trial has it."""
        return TrialResources.of(self.request.as_dict(), self.request.placement)

    @property
    def experiment_tag(self) -> str:
        """``"<index>_<key>=<value>,..."`` from the config's values, like Ray's tag."""
        return experiment_tag(self.index, self.config)


class TrialList(Sequence):
    """Every trial so far, in creation order: what callbacks get as ``trials``.

    A view of the controller's own records, not a copy: cheap to pass on
    every event of a long sweep.
    """

    def __init__(self, controller: Controller) -> None:
        self._controller = controller

    def __len__(self) -> int:
        return len(self._controller.order)

    def __getitem__(self, i: Any) -> Any:
        trials, order = self._controller.trials, self._controller.order
        if isinstance(i, slice):
            return [trials[t] for t in order[i]]
        return trials[order[i]]

    def __repr__(self) -> str:
        return f"<{len(self)} trials>"



class Controller:
    """Trials, scheduler, searcher, stop criteria and resources of one sweep.

    Parameters
    ----------
    suggest : callable
        ``suggest(trial_id) -> dict | None``; raises ``StopIteration`` when
        no further trial will come, returns ``None`` for "not now".
    total : int or None
        Number of trials expected (``None`` when unbounded).
    scheduler : TrialScheduler-like
    request_for : callable
        Config -> :class:`~fastasha._resources.Request`.
    pool : ResourcePool
    recorder : object
        The store's queueing write interface (``add_trial``,
        ``update_trial``, ``add_results``, ``add_event``, ``remove_checkpoint``).
    searcher_wait_s : float, default=10.0
        How long ``suggest`` may keep answering ``None`` while no trial runs
        or waits before the sweep ends (with a ``RuntimeWarning``): then no
        trial can change its answer. Ray waits forever.

    Notes
    -----
    After ``suggest`` answered ``None``, it is not asked again before a
    trial ends or a delay passes (``ASK_AGAIN_MIN_S``, doubling up to
    ``ASK_AGAIN_MAX_S`` while the answer stays ``None``), however often the
    driver looks for work.
    """

    def __init__(
        self,
        *,
        suggest: Callable[[str], dict | None],
        total: int | None,
        scheduler: Any,
        request_for: Callable[[dict], Request],
        pool: ResourcePool,
        recorder: Any,
        metric: str | None,
        mode: str | None,
        stop: dict | None = None,
        stopper: Any = None,
        max_concurrent: int | None = None,
        time_budget_s: float | None = None,
        max_failures: int = 0,
        fail_fast: bool = False,
        checkpoint_config: CheckpointConfig | None = None,
        callbacks: list | None = None,
        trial_id_prefix: str = "trial",
        searcher: Any = None,
        config_json: Callable[[dict], str] | None = None,
        trial_name_creator: Callable[[Trial], str] | None = None,
        trial_dirname_creator: Callable[[Trial], str] | None = None,
        trials_dir: str | None = None,
        chdir_to_trial_dir: bool = False,
        log_files: tuple[str, str] | None = None,
        trainable_name: str | None = None,
        searcher_wait_s: float = 10.0,
    ) -> None:
        self._name_trial = trial_name_creator
        self._dirname_of = trial_dirname_creator
        self._dirnames: set[str] = set()      # the folder names trial_dirname_creator gave
        self.trials_dir = trials_dir
        self.chdir_to_trial_dir = chdir_to_trial_dir
        self.log_files = log_files
        self.trainable_name = trainable_name
        self._suggest = suggest
        self.total = total
        self.scheduler = scheduler
        self._request_for = request_for
        self.pool = pool
        self.recorder = recorder
        self.metric = metric
        self.mode = mode
        self.stop = dict(stop or {})
        self.stopper = stopper
        # when poll_stopper next asks stop_all(); None: the stopper has no stop_all of its own
        own = getattr(type(stopper), "stop_all", None) if stopper is not None else None
        self._stop_all_due: float | None = -math.inf if own is not None and \
            own is not Stopper.stop_all else None
        self.max_concurrent = max_concurrent
        self.time_budget_s = time_budget_s
        self.max_failures = max_failures
        self.fail_fast = fail_fast
        self.failed_fast: Trial | None = None     # the trial whose error stopped the sweep
        self.checkpoint_config = checkpoint_config or CheckpointConfig()
        self.callbacks = list(callbacks or [])
        # the hooks that do something, per name; an event without any costs nothing
        self._hooks = {name: bound_hooks(self.callbacks, name) for name in HOOKS}
        self.trial_list = TrialList(self)
        self.events = 0         # the ``iteration`` callbacks are given
        self.prefix = trial_id_prefix
        self.searcher = searcher
        self._config_json = config_json or (lambda c: "{}")
        self._dp = getattr(scheduler, "next_decision_point", None)
        # hooks written for Ray take (tune_controller, trial[, result]) (schedulers/_ray_style)
        self._ray_hooks = ray_style_hooks(scheduler)
        self._ray_view = TuneControllerView(lambda: self.trial_list, self)
        # a stateless scheduler (FIFO) needs no event log to be restored; one restored from
        # its state (PBT: its decisions hinge on the trials' statuses, which a replay cannot
        # give back) has its state_dict() logged whenever its state_version changes
        self._by_state = bool(getattr(scheduler, "restore_by_state", False))
        self._log_events = not getattr(scheduler, "stateless", False) and not self._by_state
        self._state_version: Any = None
        # the hooks the scheduler leaves as TrialScheduler's (FIFO's add and complete) do
        # nothing: they are not called (which saves flattening every trial's last result)
        self._base_hooks = frozenset(
            name for name in ("on_trial_add", "on_trial_complete")
            if getattr(getattr(scheduler, name, None), "__func__", None) is
            getattr(TrialScheduler, name))
        # the scheduler's own choose_trial_to_run (Ray's form: it takes the controller);
        # None: trials start in FIFO order, those waiting to start before paused ones
        own = getattr(type(scheduler), "choose_trial_to_run", None)
        self._choose = getattr(scheduler, "choose_trial_to_run") if own is not None and \
            own is not TrialScheduler.choose_trial_to_run else None
        # a scheduler that may answer PAUSE (MedianStoppingRule(hard_stop=False) says so;
        # any other, once it has paused a trial): no trials are handed out ahead
        self._may_pause = bool(getattr(scheduler, "pauses_trials", False))
        # a scheduler that fills in or changes configs (PBT): the stored config follows
        self._changes_configs = bool(getattr(scheduler, "changes_configs", False))
        # a scheduler without time_attr (a TrialScheduler subclass) counts reports, as in Ray
        self.time_attr = (getattr(scheduler, "time_attr", None) or "training_iteration") \
            if self._dp is not None else None
        # stoppers, and callbacks or a search_alg with on_trial_result, see every result
        self.every_report = self._dp is None or stopper is not None or \
            judges_every_result(scheduler) or \
            bool(self._hooks["on_trial_result"]) or \
            (searcher is not None and hears_results(searcher))
        self.searcher_wait_s = searcher_wait_s
        # While a search_alg's state is saved, the suggestions that created trials and
        # the on_trial_complete calls it got are logged (SEARCHER_CALLS), so that a
        # restore can replay those it got after its last save; n_searcher_calls counts
        # them over the whole experiment. A restored searcher that did not suggest a
        # stored trial again hears nothing of it (searcher_strangers).
        self.log_searcher = False
        self.n_searcher_calls = 0
        self.searcher_strangers: set[str] = set()
        # after suggest answered None: when to ask again, the current delay, and since
        # when it has answered None with no trial running or waiting
        self._ask_at = -math.inf
        self._ask_delay = 0.0
        self._idle_since: float | None = None

        self.trials: dict[str, Trial] = {}
        self.order: list[str] = []
        self.counts = {s: 0 for s in STATUSES}
        # trials waiting to start, oldest first: retries, and trials created ahead
        self.queue: deque[Trial] = deque()
        self.exhausted = False
        self.stopping = False
        self.stop_message: str | None = None
        self.started_at: float | None = None
        # the finished trial (TERMINATED or ERROR) with the best final value of the metric:
        # finished values no longer change, so a running best is exact for these
        self.best_finished: Trial | None = None
        self.running: dict[str, Trial] = {}
        # paused trials, in the order they were paused
        self.paused: dict[str, Trial] = {}
        self.n_ahead = 0        # trials handed to a worker ahead, not started yet
        self._warned_choice = False

    # -------------------------------------------------------------- bookkeeping

    def _set_status(self, trial: Trial, status: str) -> None:
        self.counts[trial.status] -= 1
        self.counts[status] += 1
        if status == RUNNING:
            self.running[trial.trial_id] = trial
        else:
            self.running.pop(trial.trial_id, None)
        if status == PAUSED:
            self.paused[trial.trial_id] = trial
        elif trial.status == PAUSED:
            self.paused.pop(trial.trial_id, None)
        trial.status = status
        if status in (TERMINATED, ERROR):
            # (final: a restore that runs errored trials again makes them PENDING
            # before they reach the controller)
            self._rank_finished(trial)

    @property
    def best(self) -> Trial | None:
        """The trial whose latest value of the metric is the best, as Ray's display picks it.

        Among the running and the paused trials (their latest results) and
        the finished ones (their last): a trial that led and then reported
        worse values gives way to one that finished better. Ray's display
        ranks every trial that reported; a paused trial (PBT time-shares
        most of its population) is one. O(running + paused trials).
        """
        best = self.best_finished
        for trials in (self.running, self.paused):
            for trial in trials.values():
                if self._better(trial, best):
                    best = trial
        return best

    def _better(self, trial: Trial, than: Trial | None) -> bool:
        """Whether ``trial``'s metric value beats ``than``'s (a NaN or missing one never does)."""
        value = trial.metric_value
        if value is None or math.isnan(value):
            return False
        if than is None:
            return True
        return value < than.metric_value if self.mode == "min" else value > than.metric_value

    def _rank_finished(self, trial: Trial) -> None:
        if self._better(trial, self.best_finished):
            self.best_finished = trial

    @property
    def n_running(self) -> int:
        return len(self.running)

    def _persist(self, trial: Trial, **extra: Any) -> None:
        self.recorder.update_trial(
            trial.trial_id,
            status=trial.status,
            n_failures=trial.n_failures,
            error=trial.error,
            traceback=trial.traceback,
            last_result=trial.result,
            **extra,
        )

    def has_hook(self, name: str) -> bool:
        return bool(self._hooks[name])

    def callback(self, name: str, trial: Trial | None = None, **info: Any) -> None:
        """Call hook ``name`` of every callback that has it, with Ray's keyword arguments.

        Per-trial hooks get ``iteration``, ``trials`` and ``trial``;
        ``on_step_*`` get ``iteration`` and ``trials``; ``on_experiment_end``
        only what is passed here. (``setup`` is called by the Tuner, before
        the experiment exists.)
        """
        hooks = self._hooks[name]
        if not hooks:
            return
        self.events += 1
        if trial is not None:
            info = {"iteration": self.events, "trials": self.trial_list, "trial": trial, **info}
        elif name.startswith("on_step_"):
            info = {"iteration": self.events, "trials": self.trial_list, **info}
        for fn in hooks:
            fn(**info)

    def scheduler_call(self, kind: str, trial_id: str, payload: Any = None,
                       log: bool = True, trial: Trial | None = None) -> Any:
        """Make one scheduler call, and log it for a restore only once it succeeded.

        ``kind`` is ``"add"``, ``"result"``, ``"complete"`` or ``"remove"``. A
        call that raised changed nothing (the built-in schedulers check
        their input first), so a replay must not make it again. ``trial`` is
        the trial, for a hook of Ray's form (a replay's trial is not in
        :attr:`trials` yet); by default the one of ``trial_id``.
        """
        scheduler = self.scheduler
        if kind == "add":
            # (TrialScheduler's answers bracket 0)
            out = 0 if "on_trial_add" in self._base_hooks else \
                self._hook("on_trial_add", trial_id, trial)
            payload = {"bracket": out if isinstance(out, int) else None}
        elif kind == "result":      # as in Ray: nested metrics flattened ("val/loss")
            out = self._hook("on_trial_result", trial_id, trial, flatten(payload))
        elif kind == "complete":    # (the log keeps the result as reported)
            out = None if "on_trial_complete" in self._base_hooks else \
                self._hook("on_trial_complete", trial_id, trial, flatten(payload))
        elif kind == "remove":
            name = "on_trial_error" if getattr(scheduler, "on_trial_error", None) else \
                "on_trial_remove" if getattr(scheduler, "on_trial_remove", None) else None
            if name == "on_trial_error" and "on_trial_remove" in self._ray_hooks and \
                    getattr(type(scheduler), "on_trial_error", None) is \
                    TrialScheduler.on_trial_error:
                name = "on_trial_remove"    # (the default on_trial_error passes the trial id)
            out = self._hook(name, trial_id, trial) if name is not None else None
        else:
            raise ValueError(f"unknown scheduler call {kind!r}")
        if log and self._log_events:
            self.recorder.add_event(kind, trial_id, payload)
        elif log and self._by_state:
            self.log_scheduler_state()
        return out

    def log_scheduler_state(self) -> None:
        """Log the state of a scheduler restored from its state, if it changed."""
        version = getattr(self.scheduler, "state_version", None)
        if version != self._state_version:
            self._state_version = version
            self.recorder.add_event(SCHEDULER_STATE_EVENT, None, self.scheduler.state_dict())

    def _hook(self, name: str, trial_id: str, trial: Trial | None, *args: Any) -> Any:
        """Call the scheduler's hook ``name`` in its form: fastasha's (the trial id) or Ray's."""
        fn = getattr(self.scheduler, name)
        if name in self._ray_hooks:
            return fn(self._ray_view, self.trials[trial_id] if trial is None else trial, *args)
        return fn(trial_id, *args)

    def request_or_error(self, config: dict) -> tuple[Request, tuple | None]:
        """A trial's resource request, or a placeholder and the error that fails it."""
        try:
            request = self._request_for(config)
        except (TypeError, ValueError) as err:   # a resource function's bad answer
            return Request(0.0, 0.0), (str(err), traceback.format_exc())
        try:
            self.pool.check_fits(request)
        except ValueError as err:
            return request, (str(err), None)
        return request, None

    def _tell_searcher(self, name: str, trial_id: str, *args: Any, **kwargs: Any) -> None:
        """Pass an event to a ``search_alg`` that has the method (as Ray's Searcher)."""
        fn = getattr(self.searcher, name, None) if self.searcher is not None else None
        if fn is not None and not (self.searcher_strangers and
                                   trial_id in self.searcher_strangers):
            fn(trial_id, *args, **kwargs)

    def _searcher_complete(self, trial_id: str, result: dict | None, error: bool) -> None:
        """``on_trial_complete`` to the ``search_alg``, logged while its state is saved."""
        self._tell_searcher("on_trial_complete", trial_id, result=result, error=error)
        if self.log_searcher and trial_id not in self.searcher_strangers:
            # the result is the trial's stored last result (flattened): not logged again
            self.log_searcher_call(SEARCHER_COMPLETE, trial_id, {"error": True} if error else None)

    def log_searcher_call(self, kind: str, trial_id: str, payload: Any = None) -> None:
        """Log a call the ``search_alg`` got (see ``log_searcher``)."""
        self.recorder.add_event(kind, trial_id, payload)
        self.n_searcher_calls += 1

    def start(self, now: float) -> None:
        """Mark the start of the sweep (time budgets count from here)."""
        if self.started_at is None:
            self.started_at = now

    # ------------------------------------------------------------ trial creation

    def new_trial_id(self, index: int) -> str:
        return f"{self.prefix}_{index:05d}"

    def _create_trial(self, now: float | None = None) -> Any:
        """Ask for the next config and create its trial: a Trial, ``_UNFIT`` or None.

        ``now`` (the driver's clock) enables the waiting after a ``None``
        answer (see the class Notes).
        """
        if self.exhausted or self.stopping:
            return None
        if self.total is not None and len(self.order) >= self.total:
            self.exhausted = True
            return None
        if now is not None and now < self._ask_at:
            return None
        index = len(self.order)
        trial_id = self.new_trial_id(index)
        try:
            config = self._suggest(trial_id)
        except StopIteration:
            self.exhausted = True
            return None
        if config is None:
            if now is not None:
                self._not_now(now)
            return None
        if self.log_searcher:
            self.log_searcher_call(SEARCHER_SUGGEST, trial_id)
        self._ask_delay, self._idle_since = 0.0, None
        request, unfit = self.request_or_error(config)
        trial = Trial(trial_id=trial_id, index=index, config=config, request=request,
                      root=self.trials_dir, trainable_name=self.trainable_name)
        self.trials[trial_id] = trial
        self.order.append(trial_id)
        self.counts[PENDING] += 1
        original = self._config_json(config) if self._changes_configs else None
        trial.bracket = self.scheduler_call("add", trial_id)
        if not isinstance(trial.bracket, int):
            trial.bracket = None
        text = self._config_json(trial.config)
        self.recorder.add_trial(trial_id, index, text, trial.bracket, request.as_dict())
        if original is not None and text != original:
            # the scheduler filled the config in (PBT samples the keys of its
            # hyperparam_mutations that the config lacks): a restore compares the
            # search space's config with the original
            self.recorder.add_event(CONFIG_EVENT, trial_id, {
                "config": json.loads(text), "original": json.loads(original)})
        if self._dirname_of is not None:
            trial.dirname = self._trial_dirname(trial)
            self.recorder.add_event(DIRNAME_EVENT, trial_id, trial.dirname)
        if self._name_trial is not None:     # named once, when made, as Ray names a trial
            self._custom_name(trial)
        if unfit is not None:
            self._finish_error(trial, *unfit)
            return _UNFIT
        return trial

    def _not_now(self, now: float) -> None:
        """``suggest`` answered None: when to ask again, or end a sweep nothing can move."""
        self._ask_delay = min(max(2.0 * self._ask_delay, ASK_AGAIN_MIN_S), ASK_AGAIN_MAX_S)
        self._ask_at = now + self._ask_delay
        if self.n_running or self.queue or self.n_ahead:
            self._idle_since = None       # a trial's end may change the answer
            return
        if self._idle_since is None:
            self._idle_since = now
        elif now - self._idle_since >= self.searcher_wait_s:
            self.exhausted = True
            name = type(self.searcher).__name__ if self.searcher is not None else "search"
            warnings.warn(
                f"the search_alg {name} answered None (not now) to suggest() for "
                f"{now - self._idle_since:.1f} s while no trial was running or waiting, so no "
                "trial could change its answer: the sweep ends here (Ray Tune would wait "
                "forever). A searcher ends a sweep by returning Searcher.FINISHED; set the "
                "environment variable FASTASHA_SEARCHER_WAIT_S to wait longer",
                RuntimeWarning, stacklevel=2)

    def _ask_again_now(self) -> None:
        """A trial ended: a searcher that answered None may answer otherwise now."""
        self._ask_at, self._ask_delay = -math.inf, 0.0

    def add_existing(self, trial: Trial) -> None:
        """Register a trial rebuilt by a restore (already recorded in the store)."""
        trial.root, trial.trainable_name = self.trials_dir, self.trainable_name
        self.trials[trial.trial_id] = trial
        self.order.append(trial.trial_id)
        self.counts[trial.status] += 1
        if trial.status == PENDING:
            self.queue.append(trial)
        elif trial.status == PAUSED:
            self.paused[trial.trial_id] = trial
            self._may_pause = True
        self._track_best(trial)
        if trial.status in (TERMINATED, ERROR):
            self._rank_finished(trial)

    def prepare(self, count: int) -> None:
        """Create trials ahead, so that ``count`` wait with their config drawn.

        The driver calls this when it has nothing else to do, so that
        starting a trial when a worker frees up costs no config sampling
        and no storage work. Only for the built-in search space: an adaptive
        ``search_alg`` is asked only when a trial can start, and an unbounded
        sweep (``num_samples=-1``, ended by its time budget) creates none
        ahead, so that it ends with no trial left waiting.
        """
        if self.searcher is not None or self.total is None:
            return
        while len(self.queue) < count and not self.exhausted and not self.stopping:
            trial = self._create_trial()
            if trial is None:
                return
            if trial is not _UNFIT:
                self.queue.append(trial)

    # --------------------------------------------------------------- assignment

    def more_may_come(self) -> bool:
        """Whether any trial may still start (now or after a running one fails)."""
        return not self.stopping and (bool(self.queue) or not self.exhausted or self.n_running > 0
                                      or self.n_ahead > 0 or bool(self.paused))

    def can_start_more(self) -> bool:
        if self.stopping:
            return False
        if self.max_concurrent is not None and self.n_running >= self.max_concurrent:
            return False
        return bool(self.queue) or not self.exhausted or bool(self.paused)

    def assign(self, now: float, prefer_gpus: tuple[str, ...] = (),
               announce: bool = True) -> Trial | None:
        """The next trial to start, with resources reserved; None if none can start now.

        With ``announce=False`` callbacks hear of the start only from
        :meth:`announce_start`, once a worker really gets the trial: one
        assigned to a slot whose process is still starting may go back
        unstarted.
        """
        self.tick(now)
        if not self.can_start_more():
            return None
        if self.paused or self._choose is not None:
            return self._assign_chosen(now, prefer_gpus, announce)
        from_retry = bool(self.queue)
        if from_retry:
            trial = self.queue[0]
        else:
            trial = self._create_fit_trial(now)
        if trial is None:
            return None
        allocation = self.pool.acquire(trial.request, prefer=prefer_gpus)
        if allocation is None:
            if not from_retry:
                self.queue.append(trial)     # created; starts when resources free up
            return None
        if from_retry:
            self.queue.popleft()
        self._start(trial, allocation, now, announce)
        return trial

    def _create_fit_trial(self, now: float) -> Trial | None:
        """:meth:`_create_trial`, past the trials whose request can never fit (they failed)."""
        trial = self._create_trial(now)
        while trial is _UNFIT:
            trial = self._create_trial(now)
        return trial

    def _first_waiting(self) -> Trial | None:
        """Ray's FIFOScheduler's choice: the first PENDING trial, else the PAUSED trial
        created first; None when none waits."""
        if self.queue:
            return self.queue[0]
        return min(self.paused.values(), key=lambda t: t.index) if self.paused else None

    def _assign_chosen(self, now: float, prefer_gpus: tuple[str, ...],
                       announce: bool) -> Trial | None:
        """:meth:`assign` with paused trials, or the scheduler's ``choose_trial_to_run``.

        As in Ray, the candidates are the PENDING and the PAUSED trials: one
        more PENDING trial is created first if none waits, and in a finite
        sweep one more if the scheduler chooses none of those waiting, all
        of which have run before. Without a
        ``choose_trial_to_run`` of its own the scheduler gets FIFO order,
        PENDING before PAUSED, and paused trials in the order they were
        created (Ray's FIFOScheduler). If the scheduler
        chooses none while no trial runs, the first candidate starts all the
        same (with a warning, once): the sweep would wait forever.
        """
        if not self.queue:
            trial = self._create_fit_trial(now)
            if trial is not None:
                self.queue.append(trial)
        trial = self._first_waiting()
        if trial is None:
            return None
        if self._choose is not None:
            chosen = self._choose(self._ray_view)
            # none of the waiting trials (synchronous PBT's are already at the next point):
            # in a finite sweep the trials still to be created are candidates too, as in
            # Ray, which has them created ahead; one more, unless one that has never run
            # waits already (the scheduler passes over such a trial on purpose)
            if chosen is None and self.total is not None and \
                    all(t.result is not None for t in self.queue):
                more = self._create_fit_trial(now)
                if more is not None:
                    self.queue.append(more)
                    chosen = self._choose(self._ray_view)
            if chosen is not None and not (
                    isinstance(chosen, Trial) and self.trials.get(chosen.trial_id) is chosen and
                    (chosen.status == PAUSED or (chosen.status == PENDING and
                                                 chosen in self.queue))):
                raise ValueError(
                    f"{type(self.scheduler).__name__}.choose_trial_to_run returned {chosen!r}; "
                    "it must return one of tune_controller.get_trials() whose status is "
                    "PENDING or PAUSED, or None")
            if chosen is None:
                if self.n_running or self.n_ahead:
                    return None
                # from what waits now: the call may have stopped trials (BOHB's ends a
                # bracket whose trials wait paused), the one picked before among them
                trial = self._first_waiting()
                if trial is None:
                    return None
                if not self._warned_choice:
                    self._warned_choice = True
                    warnings.warn(
                        f"{type(self.scheduler).__name__}.choose_trial_to_run chose no trial "
                        f"while none was running: trial {trial.trial_id} starts all the "
                        "same, or the sweep would wait forever", RuntimeWarning, stacklevel=2)
            else:
                trial = chosen
        allocation = self.pool.acquire(trial.request, prefer=prefer_gpus)
        if allocation is None:
            return None
        if trial.status == PENDING:
            self.queue.remove(trial)
        self._start(trial, allocation, now, announce)
        return trial

    def announce_start(self, trial: Trial) -> None:
        """Tell callbacks that a trial assigned with ``announce=False`` has gone to a worker."""
        self.callback("on_trial_start", trial)

    def _start(self, trial: Trial, allocation: Allocation, now: float,
               announce: bool = True) -> None:
        trial.allocation = allocation
        trial.started_at = now
        trial.stop_reason = None
        trial.pending_error = None
        trial.pausing = False
        self._set_status(trial, RUNNING)
        self._persist(trial)
        if announce:
            self.callback("on_trial_start", trial)

    # ------------------------------------------------------ handing out ahead

    def can_hand_ahead(self) -> bool:
        """Whether trials may be handed to a busy worker before they can start.

        Only for a finite sweep of the built-in search space without
        ``fail_fast``: an adaptive ``search_alg`` must hear how a trial
        ended before it suggests the next, an unbounded sweep creates no
        trial ahead (it must end with none left waiting), and ``fail_fast``
        must be able to stop the sweep before another trial starts. Nor
        once the scheduler may pause trials (it says so with a true
        ``pauses_trials``, or it has paused one): a paused trial resumes
        only when no trial waits to start, and a trial handed to a busy
        worker would wait there, PENDING, while a free slot resumed a
        paused one.
        """
        return (self.searcher is None and self.total is not None and not self.fail_fast
                and not self.stopping and self._choose is None and not self._may_pause)

    def n_waiting(self) -> int:
        """Trials that have not started yet: queued, or still to be created."""
        return len(self.queue) + (self.total - len(self.order) if self.total is not None else 0)

    def take_ahead(self, request: Request) -> Trial | None:
        """The next waiting trial, to follow a running one with the same ``request``.

        It stays PENDING, out of the queue, until :meth:`start_ahead` (the
        worker began it) or :meth:`put_back` (it never will).
        """
        if not self.can_hand_ahead():
            return None
        self.prepare(1)
        if not self.queue or self.queue[0].request != request:
            return None
        self.n_ahead += 1
        return self.queue.popleft()

    def start_ahead(self, trial: Trial, allocation: Allocation, now: float) -> None:
        """A trial handed out ahead has started, on the resources of the one it followed."""
        self.n_ahead -= 1
        self._start(trial, allocation, now)

    def put_back(self, trials: list[Trial]) -> None:
        """Trials handed out ahead that will not run there: first in line again."""
        self.n_ahead -= len(trials)
        for trial in reversed(trials):
            if trial.status == PENDING and trial not in self.queue:
                self.queue.appendleft(trial)

    def fail_unstarted(self, trial: Trial, error: str, now: float) -> None:
        """A waiting trial was found to have run and failed (its start was never reported).

        It starts and fails at once, as if its start had been seen: it counts
        a failure, and is retried under ``max_failures`` like any other.
        """
        if trial in self.queue:
            self.queue.remove(trial)
        self._start(trial, Allocation(0.0), now)
        self._fail(trial, error, None, count=True)

    def give_back(self, allocation: Allocation) -> None:
        """Return resources kept for a trial handed out ahead that will not start."""
        self.pool.release(allocation)

    def release(self, trial: Trial) -> None:
        """Give a trial's resources back (it is no longer running)."""
        if trial.allocation is not None:
            self.pool.release(trial.allocation)
            trial.allocation = None

    def decision_point(self, trial: Trial) -> float:
        """Where the trial's worker must next wait for a verdict."""
        if self.every_report:
            return -math.inf
        return float(self._dp(trial.trial_id))

    def _custom_name(self, trial: Trial) -> str:
        """``trial_name_creator(trial)``, asked once per trial (as Ray names a trial once)."""
        if trial.custom_name is None:
            trial.custom_name = self._trial_name(trial)
        return trial.custom_name

    def _trial_name(self, trial: Trial) -> str:
        """``trial_name_creator(trial)``; its error ends the sweep, with what a trial offers."""
        try:
            return str(self._name_trial(trial))
        except Exception as err:   # noqa: BLE001 - said clearly, then raised
            raise ValueError(
                f"TuneConfig(trial_name_creator=...) raised {type(err).__name__}: {err}; a "
                "trial there has trial_id, trainable_name, config, index, status, "
                "experiment_tag and path"
            ) from err

    def _trial_dirname(self, trial: Trial) -> str:
        """``trial_dirname_creator(trial)``, checked: one folder name, not used before.

        Its error, or a name that cannot be the trial's own folder, ends the
        sweep (as Ray's would fail the trial's creation).
        """
        try:
            name = self._dirname_of(trial)
        except Exception as err:   # noqa: BLE001 - said clearly, then raised
            raise ValueError(
                f"TuneConfig(trial_dirname_creator=...) raised {type(err).__name__}: {err}; a "
                "trial there has trial_id, trainable_name, config, index and experiment_tag"
            ) from err
        problem = None
        if not isinstance(name, str):
            problem = f"returned {name!r} of type {type(name).__name__}, not a str"
        elif not name or name in (".", "..") or "/" in name or os.sep in name or \
                "\0" in name:
            problem = f"returned {name!r}, which is not the name of one folder"
        elif name in self._dirnames or (name in self.trials and name != trial.trial_id):
            problem = (f"returned {name!r} for trial {trial.trial_id} and for another trial "
                       "before it")
        if problem is not None:
            raise ValueError(
                f"TuneConfig(trial_dirname_creator=...) {problem}; each trial needs a folder "
                "of its own: include trial.trial_id in the name, as Ray's docs advise")
        self._dirnames.add(name)
        return name

    def add_dirname(self, trial: Trial) -> None:
        """Count a restored trial's folder name as taken."""
        self._dirnames.add(trial.dirname or trial.trial_id)

    def trial_spec(self, trial: Trial, experiment_name: str, checkpoint_root: str | None,
                   allocation: Allocation | None = None) -> dict:
        """The message that starts ``trial`` in a worker (on ``allocation`` if given)."""
        latest = trial.latest
        alloc = allocation or trial.allocation
        return {
            "trial_id": trial.trial_id,
            # as Ray's context: str(trial), the creator's name or <trainable>_<trial_id>
            "trial_name": str(trial) if self._name_trial is None else self._custom_name(trial),
            "experiment_name": experiment_name,
            "config": trial.config,
            "metric": self.metric,
            "time_attr": self.time_attr,
            "decision_point": self.decision_point(trial),
            "every_report": self.every_report,
            "stop": self.stop,
            "iteration": latest[1] if latest else 0,
            "time_offset": latest[3] if latest else 0.0,
            "checkpoint": latest[0] if latest else None,
            "checkpoint_root": checkpoint_root,
            "trial_dir": checkpoint_root,
            "chdir": self.chdir_to_trial_dir,
            "log_files": self.log_files,
            "resources": trial.request.as_dict(),
            "gpu_ids": list(alloc.gpu_ids) if alloc else [],
            # its PlacementGroupFactory, for get_trial_resources(); None for a dict request
            "placement": trial.request.placement,
        }

    # ------------------------------------------------------------------ results

    def _track_best(self, trial: Trial) -> None:
        """Keep the metric's value of the trial's latest result (for :attr:`best`)."""
        result = trial.result
        if self.metric is None or self.mode is None or not result:
            return
        value = lookup(result, self.metric, None)     # "outer/inner" names a nested value
        if value is None or isinstance(value, (str, bytes)):
            return
        try:
            trial.metric_value = float(value)
        except (TypeError, ValueError):
            return

    def _absorb(self, trial: Trial, rows_json: str, n_rows: int, last: dict | None) -> None:
        if n_rows:
            self.recorder.add_results(trial.trial_id, rows_json, n_rows)
            if trial.run_started != trial.started_at:
                # the first results of a run (a start, a retry, a resume): as
                # _rows.RunTracker, from the head of its first batch
                trial.run_started = trial.started_at
                trial.run_count = 0
                run = head(rows_json)
                trial.run_offset = None if run is None else run[1] - run[0]
            trial.run_count += n_rows
        if last is not None:
            trial.result = last
            trial.since = (trial.run_offset, trial.run_count)
            trial.iteration = last.get("training_iteration", trial.iteration)
            self._track_best(trial)

    def on_report(self, trial_id: str, rows_json: str, n_rows: int, last: dict | None,
                  kind: str, stop_hit: bool, checkpoint: tuple | None, now: float
                  ) -> tuple[bool, float]:
        """A worker flushed results; returns ``(stop, next_decision_point)``.

        ``stop`` is False, True, or ``"PAUSE"`` (true too) when the trial
        is told to pause, so that a class Trainable saves its state as it
        ends, as Ray saves a trial it pauses (not for an exploit, which
        resumes from another trial's checkpoint).
        """
        trial = self.trials.get(trial_id)
        if trial is None or trial.status != RUNNING:
            return True, math.inf
        self._absorb(trial, rows_json, n_rows, last)
        stop = pause = False
        if checkpoint is not None and trial.exploit is not None:
            checkpoint = None   # saved after its PAUSE: it resumes from another trial's
        if checkpoint is not None and last is None and trial.result is not None and \
                trial.pending_error is None:
            # a checkpoint saved once the trial was told to stop (Session.save_after_stop):
            # it belongs to the last result, already here
            self._add_checkpoint(trial, checkpoint, trial.result)
            self._announce_save(trial, checkpoint)
        if checkpoint is not None and last is not None:
            self._add_checkpoint(trial, checkpoint, last)
        if last is not None and trial.pending_error is None:
            # as in Ray Tune: the searcher and the scheduler see nested metrics
            # flattened ("val/loss"; scheduler_call flattens), the stopper and
            # callbacks the result as reported
            try:
                # as in Ray, the stopper sees every result, one that meets a stop
                # criterion or says "done" too (its stop_all() may hinge on it)
                # (with Ray's config and since-restore fields, as Ray's stoppers get it)
                by_stopper = self.stopper is not None and \
                    self.stopper(trial_id, trial.live_result())
                if stop_hit or by_stopper:
                    stop = True
                    trial.stop_reason = "stop criterion"
                    self._complete_in_scheduler(trial, last)
                elif kind == "decide":
                    # with Ray's since-restore fields (logged with it, for a replay), not
                    # its config (the log would hold one per result)
                    decision = self.scheduler_call("result", trial_id,
                                                   trial.live_result(config=False))
                    if decision == "STOP":
                        stop = True
                        trial.stop_reason = "scheduler"
                        self._complete_in_scheduler(trial, last)
                    elif decision == "PAUSE":
                        pause = True
                if not stop:
                    # as in Ray, the searcher hears a result only if it does not stop the
                    # trial (that one reaches it in on_trial_complete)
                    self._tell_searcher("on_trial_result", trial_id, flatten(last))
                if self.stopper is not None and self.stopper.stop_all():
                    self.stop_all("the stopper asked to stop all trials")
            except Exception as err:   # noqa: BLE001 - a bad result fails its trial, not the sweep
                trial.pending_error = (f"{type(err).__name__}: {err}", traceback.format_exc())
                stop = True
            else:
                # after the searcher and the scheduler, as in Ray (a copy, as Ray's: a
                # hook that edits it changes nothing recorded; with Ray's
                # checkpoint_dir_name, set only here); its errors end the sweep
                if self._hooks["on_trial_result"]:
                    self.callback("on_trial_result", trial, result=trial.last_result)
                if checkpoint is not None:
                    self._announce_save(trial, checkpoint)
        self.tick(now)
        if pause and not stop and trial.pending_error is None:
            # its objective ends in report(), as after a STOP; the trial is PAUSED once
            # its worker says it ended (on_end), and resumes from its latest checkpoint
            trial.pausing = True
            trial.stop_reason = "paused"
            stop = True
        elif trial.exploit is not None and not trial.pausing:
            trial.exploit = None     # an exploit is carried out only with a pause
        if self.stopping or trial.pending_error is not None:
            stop = True
        if stop and trial.pausing and trial.exploit is None and trial.pending_error is None:
            return PAUSE_VERDICT, math.inf
        return stop, (math.inf if stop else self.decision_point(trial))

    # ------------------------------------------------------------------- pauses

    def may_start_more_later(self) -> bool:
        """Whether a trial waits to start: queued, paused, or still to be created.

        What a scheduler asks to decide whether to pause a trial for another
        (Ray's PBT pauses a trial at a perturbation point while others are
        PENDING or PAUSED; Ray creates a finite sweep's trials up front, so
        the trials still to be created count here).
        """
        return bool(self.queue) or bool(self.paused) or bool(self.n_ahead) or (
            self.total is not None and not self.exhausted and len(self.order) < self.total)

    def request_exploit(self, trial: Trial, donor_id: str, config: dict,
                        checkpoint: tuple) -> None:
        """Once ``trial`` is paused, give it ``config`` and a copy of ``checkpoint``.

        For a scheduler that has a trial exploit another (PBT) and answers
        PAUSE for it: ``trial`` restarts with ``config`` from a copy of
        ``checkpoint`` (a checkpoint tuple of trial ``donor_id``, as
        ``Trial.latest`` gives it), its iteration and time counting on from
        there.
        """
        if donor_id == trial.trial_id:
            raise ValueError(f"trial {trial.trial_id} cannot exploit itself")
        if not isinstance(config, dict):
            raise TypeError(f"the exploited trial's config must be a dict, got {config!r}")
        trial.exploit = (donor_id, config, tuple(checkpoint))

    def exploit_now(self, trial: Trial) -> None:
        """Carry out at once the exploit requested for a trial that is not running.

        :meth:`request_exploit` takes effect when the trial's pause ends. A
        scheduler that ranks trials already paused, or waiting to start again
        after a failure (synchronous PBT), calls this once it has requested
        (and recorded) the exploit: such a trial has no pause to end.

        Raises
        ------
        ValueError
            If the trial is running or still ending after its PAUSE: its
            exploit is carried out when it ends.
        """
        if trial.exploit is None:
            return
        if trial.status not in (PAUSED, PENDING) or trial.pausing:
            raise ValueError(
                f"trial {trial.trial_id} is {trial.status}{' and pausing' if trial.pausing else ''}:"
                " its exploit is carried out when its pause ends, not now")
        self._apply_exploit(trial)

    def stop_trial(self, trial: Trial) -> None:
        """Ray's ``tune_controller.stop_trial`` for a trial that is not running.

        A PAUSED or PENDING trial (or one pausing: it was answered PAUSE and
        its objective is ending) ends TERMINATED; its scheduler hears
        ``on_trial_remove`` (at once, as in Ray), its searcher and the
        callbacks that it completed. A running trial is stopped by answering
        STOP for its result instead.
        """
        if trial.status in (TERMINATED, ERROR):
            return
        if trial.status == RUNNING and not trial.pausing:
            raise ValueError(
                f"trial {trial.trial_id} is running: a scheduler stops it by answering "
                "TrialScheduler.STOP for one of its results; stop_trial() stops a PAUSED or "
                "PENDING trial")
        trial.stop_reason = "scheduler"
        trial.exploit = None
        if not trial.scheduler_done:
            trial.scheduler_done = True
            self.scheduler_call("remove", trial.trial_id)
        if trial.status == RUNNING:
            trial.pausing = False      # it ends TERMINATED when its worker says it ended
            return
        if trial in self.queue:
            self.queue.remove(trial)
        self._finish_terminated(trial)

    def _pause(self, trial: Trial) -> None:
        """A trial told to pause has ended: PAUSED, with its resources given back."""
        self._may_pause = True
        trial.pausing = False
        self.release(trial)
        if trial.exploit is not None:
            self._apply_exploit(trial)
        self._set_status(trial, PAUSED)
        self._persist(trial)
        self._ask_again_now()

    def _apply_exploit(self, trial: Trial) -> None:
        """Give a paused trial the config and a copy of the checkpoint it exploits."""
        donor_id, config, latest = trial.exploit
        trial.exploit = None
        path, iteration = latest[0], latest[1]
        target = os.path.join(trial.path or os.path.dirname(path),
                              f"checkpoint_{iteration:06d}_from_{donor_id}")
        try:
            tmp = target + ".tmp"
            shutil.rmtree(tmp, ignore_errors=True)
            shutil.copytree(path, tmp)
            shutil.rmtree(target, ignore_errors=True)
            os.replace(tmp, target)
        except OSError as err:
            warnings.warn(f"trial {trial.trial_id} could not copy the checkpoint {path} of "
                          f"trial {donor_id} it was to exploit ({err}); it resumes from its own "
                          "checkpoint with its own config", RuntimeWarning, stacklevel=2)
            failed = getattr(self.scheduler, "exploit_failed", None)
            if failed is not None:      # (PBT: its times go back to the trial's own)
                failed(trial.trial_id)
                if self._by_state:
                    self.log_scheduler_state()
            return
        original = trial.config
        trial.config = config
        # its own checkpoints from the donor's report count on belong to the timeline it
        # leaves: no longer listed, and their folders go (it never resumes from them, and
        # num_to_keep counts only listed ones: kept, they would pile up at every exploit)
        left = [c for c in trial.checkpoints if c[1] >= iteration and c[0] != target]
        trial.checkpoints = [*(c for c in trial.checkpoints if c[1] < iteration),
                             (target, *latest[1:])]
        self.recorder.update_trial(trial.trial_id, config=self._config_json(config),
                                   checkpoints=[list(c) for c in trial.checkpoints],
                                   checkpoint=target)
        self.recorder.add_event(CONFIG_EVENT, trial.trial_id, {
            "config": json.loads(self._config_json(config)),
            "original": json.loads(self._config_json(original))})
        # (a folder another trial is still to copy, as the donor of its own exploit, stays)
        wanted = self._checkpoints_in_use()
        for c in left:
            if c[0] not in wanted:
                self.recorder.remove_checkpoint(trial.trial_id, c[0])
        # written, and the folders removed, now: as it reports again the trial saves
        # folders of the same names (checkpoint_<report count>), which a removal still
        # queued (this one, or num_to_keep's) would take once they are new
        flush = getattr(self.recorder, "flush", None)
        if flush is not None:
            flush()

    def _announce_save(self, trial: Trial, checkpoint: tuple) -> None:
        """Tell callbacks that ``trial`` saved ``checkpoint`` ``(path, iteration)``."""
        self.callback("on_trial_save", trial)
        if self._hooks["on_checkpoint"]:
            self.callback("on_checkpoint", trial, checkpoint=Checkpoint(checkpoint[0]))

    def _complete_in_scheduler(self, trial: Trial, result: dict) -> None:
        if not trial.scheduler_done:
            self.scheduler_call("complete", trial.trial_id, result)
            trial.scheduler_done = True

    def _add_checkpoint(self, trial: Trial, checkpoint: tuple, result: dict) -> None:
        path, iteration = checkpoint
        cfg = self.checkpoint_config
        score = None
        if cfg.checkpoint_score_attribute:       # "outer/inner" names a nested value
            score = lookup(result, cfg.checkpoint_score_attribute, None)
        # (path, report count, score, time_total_s, the result's training_iteration: the
        # objective may report its own, and results are matched with checkpoints by it)
        # a folder saved again (a tune.checkpoint_dir() after the last report, which went
        # with a checkpoint of its own, is saved under the same report) is listed once
        trial.checkpoints = [*(c for c in trial.checkpoints if c[0] != path),
                             (path, iteration, score, result.get("time_total_s", 0.0),
                              result.get("training_iteration", iteration))]
        if len(trial.checkpoints) > 1 and trial.checkpoints[-2][1] > iteration:
            # (never seen: report counts only grow) keep them in report order all the same
            trial.checkpoints.sort(key=lambda c: c[1])
        self._prune_checkpoints(trial)
        latest = trial.latest
        self.recorder.update_trial(trial.trial_id, checkpoints=[list(c) for c in trial.checkpoints],
                                   checkpoint=latest[0] if latest else None)

    def _prune_checkpoints(self, trial: Trial) -> bool:
        """Remove the checkpoints of ``trial`` that ``num_to_keep`` does not keep; True if any."""
        cfg = self.checkpoint_config
        if cfg.num_to_keep is None or len(trial.checkpoints) <= cfg.num_to_keep:
            return False
        # as Ray: the num_to_keep best (by score, else the most recent), and the latest
        # on top of them, so that the trial can resume (num_to_keep + 1 folders at most)
        latest = trial.latest
        order = cfg.checkpoint_score_order if cfg.checkpoint_score_attribute else None
        keep = sorted(trial.checkpoints, key=lambda c: checkpoint_rank(c, order),
                      reverse=True)[: cfg.num_to_keep]
        if latest not in keep:
            keep.append(latest)
        # and those another trial may still copy (PBT's donors): removed once released
        in_use = self._checkpoints_in_use()
        keep.extend(c for c in trial.checkpoints if c[0] in in_use and c not in keep)
        if len(keep) == len(trial.checkpoints):
            return False
        for c in trial.checkpoints:
            if c not in keep:
                self.recorder.remove_checkpoint(trial.trial_id, c[0])
        trial.checkpoints = sorted(keep, key=lambda c: c[1])
        return True

    def _checkpoints_in_use(self) -> set:
        """Checkpoint folders that trials may still copy: those of pending exploits, and
        those the scheduler holds (``checkpoints_in_use()``: PBT's donors' checkpoints)."""
        paths = {t.exploit[2][0] for t in self.running.values() if t.exploit is not None}
        held = getattr(self.scheduler, "checkpoints_in_use", None)
        if held is not None:
            paths.update(held())
        return paths

    # ------------------------------------------------------------------- endings

    def on_end(self, trial_id: str, rows_json: str, n_rows: int, last: dict | None,
               status: str, error: str | None, trace: str | None, now: float) -> None:
        """A worker finished a trial (returned, stopped, or raised)."""
        trial = self.trials.get(trial_id)
        if trial is None or trial.status != RUNNING:
            return
        self._absorb(trial, rows_json, n_rows, last)
        if trial.pending_error is not None:
            status = ERROR
            error, trace = trial.pending_error
        if status == ERROR:
            self._fail(trial, error or "the objective failed", trace, count=True)
        elif trial.pausing and not trial.scheduler_done:
            self._pause(trial)
        else:
            self._finish_terminated(trial)
        self.tick(now)

    def _finish_terminated(self, trial: Trial) -> None:
        """End a trial as TERMINATED: its last result goes to the scheduler as final."""
        if trial.result is not None:
            trial.result = dict(trial.result, done=True)
            try:
                self._complete_in_scheduler(trial, trial.result)
            except Exception as err:   # noqa: BLE001 - the scheduler rejected the final result
                self._finish_error(trial, f"{type(err).__name__}: {err}", traceback.format_exc())
                return
        self.release(trial)
        self._set_status(trial, TERMINATED)
        if self._prune_checkpoints(trial):     # (one its scheduler held till now)
            latest = trial.latest
            self._persist(trial, checkpoints=[list(c) for c in trial.checkpoints],
                          checkpoint=latest[0] if latest else None)
        else:
            self._persist(trial)
        self._ask_again_now()
        if self.searcher is not None:
            final = None if trial.result is None else flatten(trial.result)
            self._searcher_complete(trial.trial_id, final, False)
        self.callback("on_trial_complete", trial)     # after the searcher, as in Ray

    def on_lost(self, trial_id: str, reason: str, count: bool, now: float,
                outcome: str = "RETRY") -> None:
        """A trial's worker vanished.

        ``outcome`` says what becomes of the trial: ``"RETRY"`` (a failure
        if ``count``, retried under ``max_failures``; otherwise back to the
        queue), ``"PENDING"`` (interrupted, or never started: back to the
        queue, to resume later), ``"AGAIN"`` (it ran, but its end was lost
        with its worker: back to the queue, no failure) or ``"TERMINATED"``
        (killed while the sweep was stopping). A
        trial the scheduler had already stopped ends TERMINATED whatever
        happened to its worker: it must not run again.
        """
        trial = self.trials.get(trial_id)
        if trial is None or trial.status != RUNNING:
            return
        if trial.pausing and not trial.scheduler_done:
            # told to pause: its latest checkpoint is kept whatever happened to its worker
            self._pause(trial)
        elif trial.scheduler_done or outcome == "TERMINATED":
            trial.stop_reason = trial.stop_reason or reason
            self._finish_terminated(trial)
        elif outcome == "PENDING":
            self._requeue(trial)
        elif outcome == "AGAIN":          # it ran, but how it ended is lost: run it again
            self._requeue(trial)
            self.callback("on_trial_recover", trial)
        elif count:
            self._fail(trial, reason, None, count=True)
        else:
            # not the trial's fault (its slot went away), unless it keeps happening
            trial.n_lost += 1
            if trial.n_lost >= MAX_LOSSES:
                self._fail(trial, f"{reason}; its worker slot was lost {trial.n_lost} times "
                           "while running it", None, count=True)
            else:
                self._requeue(trial)
                self.callback("on_trial_recover", trial)
        self.tick(now)

    def _requeue(self, trial: Trial) -> None:
        """Back to PENDING (a retry, an interruption): ahead of the trials created after it.

        As Ray's FIFOScheduler, which starts the waiting trial created first: a
        trial that failed and is retried runs again before the trials that
        were created after it and wait.
        """
        trial.pausing, trial.exploit = False, None
        self.release(trial)
        self._set_status(trial, PENDING)
        queue = self.queue
        for k, waiting in enumerate(queue):
            if waiting.index > trial.index:
                queue.insert(k, trial)
                break
        else:
            queue.append(trial)
        self._persist(trial)

    def _fail(self, trial: Trial, error: str, trace: str | None, count: bool) -> None:
        if count:
            trial.n_failures += 1
        # a trial the scheduler stopped is not retried: the error came while it wound down
        retry = not self.stopping and not trial.scheduler_done and (
            self.max_failures == -1 or trial.n_failures <= self.max_failures
        )
        trial.error, trial.traceback = error, trace
        if retry:
            if trial.pausing and trial.exploit is not None:
                # paused for an exploit (PBT), which its scheduler has made and logged: its
                # objective failing as it wound down does not undo it
                self._apply_exploit(trial)
            self._requeue(trial)
            self.callback("on_trial_recover", trial)
            return
        self._finish_error(trial, error, trace)

    def _finish_error(self, trial: Trial, error: str, trace: str | None) -> None:
        trial.error, trial.traceback = error, trace
        trial.pausing, trial.exploit = False, None
        self.release(trial)
        if trial in self.queue:
            self.queue.remove(trial)
        self._set_status(trial, ERROR)
        self._persist(trial)
        if not trial.scheduler_done:
            trial.scheduler_done = True
            self.scheduler_call("remove", trial.trial_id)
        self._ask_again_now()
        if self.searcher is not None:
            self._searcher_complete(trial.trial_id, None, True)
        if self.fail_fast:
            if self.failed_fast is None:       # the error that ended this run
                self.failed_fast = trial
            self.stop_all(f"trial {trial.trial_id} failed and fail_fast={self.fail_fast!r}: "
                          f"{error}")
        self.callback("on_trial_error", trial)

    # ---------------------------------------------------------------- the sweep

    def stop_all(self, message: str) -> None:
        """Start no further trials and stop the running ones at their next report."""
        if not self.stopping:
            self.stopping = True
            self.stop_message = message

    def tick(self, now: float) -> None:
        """Let time pass: enforce the time budget."""
        if self.time_budget_s is not None and self.started_at is not None and \
                now - self.started_at >= self.time_budget_s:
            self.stop_all(f"the time budget of {self.time_budget_s:g} s is spent")

    def poll_stopper(self, now: float) -> None:
        """Ask the stopper's ``stop_all`` between results too (at most every 50 ms).

        Ray asks it on every step of its loop, so a ``TimeoutStopper`` ends
        the sweep on time even while no trial reports.
        """
        if self._stop_all_due is None or now < self._stop_all_due or self.stopping:
            return
        self._stop_all_due = now + 0.05
        try:
            stop = self.stopper.stop_all()
        except Exception as err:   # noqa: BLE001 - as after a result: not the sweep's end
            # (after a result its error fails that trial; here there is none to fail)
            self._stop_all_due = None
            warnings.warn(f"the stopper's stop_all() raised {type(err).__name__}: {err}; it is "
                          "asked again only after results from now on", RuntimeWarning,
                          stacklevel=2)
            return
        if stop:
            self.stop_all("the stopper asked to stop all trials")

    def is_finished(self) -> bool:
        """No trial runs and none can start any more."""
        if self.n_running:
            return False
        if self.stopping:
            return True
        return self.exhausted and not self.queue and not self.n_ahead and not self.paused
