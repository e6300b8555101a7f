"""PopulationBasedTraining: Ray Tune's Population Based Training, asynchronous or synchronous.

PBT trains a population of trials side by side. Whenever a trial has run
``perturbation_interval`` more units of ``time_attr`` (after a
``burn_in_period``), it is ranked among the trials that have reached a
perturbation point: a trial in the bottom ``quantile_fraction`` is paused,
and restarts with a copy of the latest checkpoint of a trial drawn from the
top ``quantile_fraction`` and that trial's config, mutated (*exploit and
explore*). More trials than slots are time-shared: at a perturbation point a
trial is paused while others wait, and the trial that has trained least
starts next (:meth:`PopulationBasedTraining.choose_trial_to_run`).

With ``synch=True`` (Ray's synchronous PBT, appendix A.1 of the PBT paper)
the population moves in step instead: every trial is paused at its
perturbation point, and once every trial that has not ended has reached
it, all are ranked together, the bottom quantile exploits the top one,
and all resume towards the next point.

The rules are Ray Tune 2.x's (``ray.tune.schedulers.PopulationBasedTraining``):
the quantiles, the mutations (a list or tuple moves to a neighbouring value,
a search-space domain or function is multiplied by one of the
``perturbation_factors``, each resampled with ``resample_probability``), the
keys of ``hyperparam_mutations`` filled in when a config lacks them, and the
``pbt_global.txt`` / ``pbt_policy_<trial_id>.txt`` logs in the experiment's
folder. Its random draws come from its own generator, which the Tuner seeds
from ``TuneConfig(seed=...)``, so that a seeded sweep given the same results
makes the same decisions (Ray draws from Python's global ``random``).
"""

from __future__ import annotations

import copy
import json
import logging
import math
import os
import random
from collections.abc import Callable, Mapping
from typing import Any, Hashable

from .._rows import lookup
from .._validation import check_mode
from ..search.sample import Domain, Function
from ._base import CONTINUE, DEFAULT_METRIC, PAUSE, _RayMetricMode
from .fifo import FIFOScheduler

__all__ = ["PopulationBasedTraining"]

logger = logging.getLogger(__name__)

_STATE_FORMAT = "fastasha.pbt/1"


class _TrialState:
    """What PBT keeps of one trial (Ray's ``_PBTTrialState``)."""

    __slots__ = ("orig_tag", "last_score", "last_checkpoint", "last_perturbation_time",
                 "last_train_time", "last_iteration")

    def __init__(self, orig_tag: str) -> None:
        self.orig_tag = orig_tag
        self.last_score: float | None = None
        # the trial's latest checkpoint when it was last in the upper quantile
        self.last_checkpoint: list | None = None
        self.last_perturbation_time: float = 0.0
        self.last_train_time: float = 0.0
        self.last_iteration: int = 0

    def as_list(self) -> list:
        return [self.orig_tag, self.last_score, self.last_checkpoint,
                self.last_perturbation_time, self.last_train_time, self.last_iteration]

    @classmethod
    def from_list(cls, values: list) -> _TrialState:
        state = cls(values[0])
        (state.last_score, state.last_checkpoint, state.last_perturbation_time,
         state.last_train_time, state.last_iteration) = values[1:]
        return state


def _check_mutations(mutations: Any, where: str = "hyperparam_mutations") -> None:
    if not isinstance(mutations, Mapping):
        raise TypeError(f"{where} must be a dict of key -> list, tuple, dict, search-space "
                        f"domain or function, got {mutations!r}")
    for key, value in mutations.items():
        if isinstance(value, Function):
            raise ValueError(
                f"{where}[{key!r}] is a tune.sample_from, which PBT cannot perturb (as in "
                "Ray); use a list of values, tune.uniform, tune.loguniform, tune.choice... "
                "or a plain function returning a fresh value")
        if isinstance(value, Mapping):
            _check_mutations(value, f"{where}[{key!r}]")
        elif not isinstance(value, (list, tuple, Domain)) and not callable(value):
            raise TypeError(
                f"{where}[{key!r}] must be a list or tuple of values, a dict of such, a "
                f"search-space domain (tune.uniform(...)) or a function returning a value, "
                f"got {value!r}")
        elif isinstance(value, (list, tuple)) and not value:
            raise ValueError(f"{where}[{key!r}] is an empty {type(value).__name__}: give the "
                             "values the key may take")


def _mutated_only(config: Mapping, mutations: Mapping) -> dict:
    """The part of ``config`` that ``mutations`` names (nested dicts too)."""
    out = {}
    for key, value in config.items():
        if key in mutations:
            if isinstance(value, Mapping) and isinstance(mutations[key], Mapping):
                out[key] = _mutated_only(value, mutations[key])
            else:
                out[key] = value
    return out


class PopulationBasedTraining(_RayMetricMode, FIFOScheduler):
    """Population Based Training (asynchronous or synchronous), with Ray Tune's arguments.

    Parameters
    ----------
    time_attr : str, default="time_total_s"
        The result key that measures a trial's progress; it must grow.
        ``"training_iteration"`` makes the sweep's decisions independent of
        wall-clock time.
    metric : str, optional
        The result key to rank trials by (else ``TuneConfig(metric=...)``).
    mode : {"min", "max"}, optional
        Whether a lower or a higher ``metric`` is better.
    perturbation_interval : float, default=60.0
        A trial is considered for exploitation every this many units of
        ``time_attr``. Each consideration may copy a checkpoint: not too often.
    burn_in_period : float, default=0.0
        No trial is considered before it has run this many units of ``time_attr``.
    hyperparam_mutations : dict, optional
        For each config key to mutate: a list or tuple of the values it may
        take (it moves to a neighbouring one, or is drawn anew), a search-space
        domain (``tune.uniform(0, 1)``; ``tune.choice`` counts as continuous,
        as in Ray) or a function of no arguments (it is multiplied by one of
        ``perturbation_factors``, or drawn anew), or a dict of these for a
        nested config. A key the config lacks is drawn from it when the trial
        is added. ``tune.sample_from`` is refused, as in Ray.
    quantile_fraction : float, default=0.25
        The fraction of ranked trials in the top and bottom quantiles; 0 to
        0.5. 0 means no exploitation.
    resample_probability : float, default=0.25
        The probability that a mutated value is drawn anew instead of perturbed.
    perturbation_factors : tuple of two floats, default=(1.2, 0.8)
        The factors a continuous value is multiplied by (one of them, at random).
    custom_explore_fn : callable, optional
        ``f(config) -> config``, called on the mutated config. One of
        ``hyperparam_mutations`` or ``custom_explore_fn`` is required.
    log_config : bool, default=True
        Append each exploit to ``pbt_global.txt`` and the trials'
        ``pbt_policy_<trial_id>.txt`` in the experiment's folder, as Ray does:
        ``[trial tag, donor tag, trial iteration, donor iteration, old config,
        new config]``, one JSON list a line.
    require_attrs : bool, default=True
        Raise (failing the trial) when a result lacks ``time_attr`` or
        ``metric``; with ``False`` such a result is ignored, with a warning.
    synch : bool, default=False
        ``False``: asynchronous PBT (Ray's default), each trial is ranked on
        its own whenever it reaches a perturbation point. ``True``:
        synchronous PBT, the whole population is ranked at once when every
        trial has reached the same perturbation point (see Notes). It needs
        a finite number of trials (not ``num_samples=-1``).
    seed : int, optional
        Seed of the random draws; by default the Tuner seeds them from
        ``TuneConfig(seed=...)``.

    Notes
    -----
    The trial being exploited is paused and restarts its objective, with
    ``tune.get_checkpoint()`` returning a copy of the donor's checkpoint (in
    its own folder), the new config in ``config``, and its
    ``training_iteration`` counting on from the donor's. The store, the
    :class:`~fastasha.ResultGrid` and ``Result.config`` give a trial's
    latest config. The objective must therefore save its state in
    checkpoints, and read ``tune.get_checkpoint()`` when it starts. A
    trial whose donor has no checkpoint is not exploited.

    ``Tuner.restore`` continues a PBT sweep from the scheduler's state as
    logged at its last decision, with the exploited trials' latest configs
    (as their JSON form keeps them).

    With ``synch=True`` the perturbation points are shared: the first is at
    ``max(perturbation_interval, burn_in_period)`` units of ``time_attr``.
    A trial that reaches a perturbation point is always paused there, and
    ranked nowhere yet. Once every trial that has not ended (``TERMINATED``
    or ``ERROR``), those not started yet included, has reached the point,
    the population is ranked on the scores of their latest perturbation
    points: the top quantile's checkpoints are kept, each trial of the
    bottom quantile exploits one of them, and the next point is set one
    ``perturbation_interval`` further (or at the furthest trial's time, if
    that is later). :meth:`choose_trial_to_run` then resumes only the
    trials that are short of the next point, least trained first, so no
    trial runs past a point before the others have reached it. These are
    Ray's rules, with two differences: a trial that ends while the others
    wait for it ranks them at once (in Ray they can wait for ever,
    ray-project/ray#12122), and a trial behind the population's next point
    (one that ``Tuner.restore(resume_errored=True)`` resumes from an earlier
    point, say) runs on to that point before it is paused and ranked, where
    Ray pauses it, or ranks the population with it, at each point of its
    own. A count such as ``training_iteration`` as
    ``time_attr`` puts every trial exactly on each point. With a
    wall-clock one, such as the default ``"time_total_s"``, each trial
    overshoots a point by up to one result, and all count the next from
    the time of the result that completed the point, as in Ray.

    Examples
    --------
    >>> from fastasha import tune
    >>> from fastasha.schedulers import PopulationBasedTraining
    >>> pbt = PopulationBasedTraining(
    ...     time_attr="training_iteration", metric="loss", mode="min",
    ...     perturbation_interval=4,
    ...     hyperparam_mutations={"lr": tune.loguniform(1e-4, 1e-1),
    ...                           "batch_size": [16, 32, 64]})
    >>> pbt.perturbation_interval
    4.0
    """

    stateless = False
    #: restored from :meth:`state_dict`, logged whenever :attr:`state_version` changes
    restore_by_state = True
    #: it fills in and changes trials' configs
    changes_configs = True

    def __init__(
        self,
        time_attr: str = "time_total_s",
        metric: str | None = None,
        mode: str | None = None,
        perturbation_interval: float = 60.0,
        burn_in_period: float = 0.0,
        hyperparam_mutations: dict | None = None,
        quantile_fraction: float = 0.25,
        resample_probability: float = 0.25,
        perturbation_factors: tuple[float, float] = (1.2, 0.8),
        custom_explore_fn: Callable[[dict], dict] | None = None,
        log_config: bool = True,
        require_attrs: bool = True,
        synch: bool = False,
        seed: int | None = None,
    ) -> None:
        if not isinstance(time_attr, str):
            raise TypeError(f"time_attr must be a string, got {time_attr!r}")
        hyperparam_mutations = {} if hyperparam_mutations is None else hyperparam_mutations
        _check_mutations(hyperparam_mutations)
        if custom_explore_fn is not None and not callable(custom_explore_fn):
            raise TypeError(f"custom_explore_fn must be a function f(config) -> config, got "
                            f"{custom_explore_fn!r}")
        if not hyperparam_mutations and custom_explore_fn is None:
            raise ValueError("PopulationBasedTraining needs hyperparam_mutations or "
                             "custom_explore_fn (or both): they say how to change an "
                             "exploited trial's config")
        self._perturbation_interval = self._number("perturbation_interval",
                                                   perturbation_interval)
        if not self._perturbation_interval > 0:
            raise ValueError(f"perturbation_interval must be > 0, got {perturbation_interval!r}")
        self._burn_in_period = self._number("burn_in_period", burn_in_period)
        quantile_fraction = self._number("quantile_fraction", quantile_fraction)
        if not 0.0 <= quantile_fraction <= 0.5:
            raise ValueError(f"quantile_fraction must be between 0 and 0.5, got "
                             f"{quantile_fraction!r}")
        resample_probability = self._number("resample_probability", resample_probability)
        if not 0.0 <= resample_probability <= 1.0:
            raise ValueError(f"resample_probability must be between 0 and 1, got "
                             f"{resample_probability!r}")
        if not isinstance(perturbation_factors, (list, tuple)) or not perturbation_factors or \
                not all(isinstance(f, (int, float)) and not isinstance(f, bool)
                        for f in perturbation_factors):
            raise TypeError(f"perturbation_factors must be a tuple of numbers such as "
                            f"(1.2, 0.8), got {perturbation_factors!r}")
        for name, flag in (("log_config", log_config), ("require_attrs", require_attrs),
                           ("synch", synch)):
            if not isinstance(flag, bool):
                raise TypeError(f"{name} must be True or False, got {flag!r}")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise TypeError(f"seed must be an int or None, got {seed!r}")
        check_mode(mode)
        super().__init__(metric, mode)
        self._time_attr = time_attr
        self._hyperparam_mutations = hyperparam_mutations
        self._quantile_fraction = quantile_fraction
        self._resample_probability = resample_probability
        self._perturbation_factors = tuple(float(f) for f in perturbation_factors)
        self._custom_explore_fn = custom_explore_fn
        self._log_config = log_config
        self._require_attrs = require_attrs
        self._synch = synch
        self._seed = seed
        self._rng = random.Random(seed)
        self._trial_state: dict[str, _TrialState] = {}
        # a trial's own times, kept while its exploit is carried out (see exploit_failed)
        self._own_times: dict[str, tuple] = {}
        # synchronous PBT: the perturbation point the whole population is heading for
        self._next_sync = max(self._perturbation_interval, self._burn_in_period)
        self._num_checkpoints = 0
        self._num_perturbations = 0
        self._warned: set[str] = set()
        #: changes whenever the state a restore needs changes
        self.state_version = 0
        if self._metric is None and self._mode:
            self._metric = DEFAULT_METRIC

    @staticmethod
    def _number(name: str, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or \
                not math.isfinite(value):
            raise TypeError(f"{name} must be a finite number, got {value!r}")
        return float(value)

    # ----------------------------------------------------------------- properties

    @property
    def time_attr(self) -> str:
        """The result key that measures a trial's progress."""
        return self._time_attr

    @property
    def perturbation_interval(self) -> float:
        """Units of ``time_attr`` between two perturbation points of a trial."""
        return self._perturbation_interval

    @property
    def seed(self) -> int | None:
        """The seed of the random draws, if one was given."""
        return self._seed

    def set_seed(self, seed: int | None) -> None:
        """Reseed the random draws (the Tuner seeds them from ``TuneConfig.seed``)."""
        self._seed = seed
        self._rng = random.Random(seed)

    # ----------------------------------------------------------------- hooks

    def on_trial_add(self, tune_controller: Any, trial: Any) -> None:
        """Register a trial; draw the keys of ``hyperparam_mutations`` its config lacks."""
        if self._metric is None or self._mode is None:
            raise ValueError(
                f"PopulationBasedTraining has no metric ({self._metric!r}) or mode "
                f"({self._mode!r}): pass them to PopulationBasedTraining(metric=..., "
                "mode=...) or to tune.TuneConfig(metric=..., mode=...)")
        controller = getattr(tune_controller, "_controller", None)
        if controller is not None and controller.searcher is not None:
            raise ValueError(
                f"PopulationBasedTraining cannot be used with a search_alg "
                f"({type(controller.searcher).__name__}), as in Ray: it changes the trials' "
                "configs itself. Remove search_alg and give the search space as param_space")
        if self._synch and controller is not None and controller.total is None:
            raise ValueError(
                "PopulationBasedTraining(synch=True) needs a population of known size, but "
                "this sweep has no number of trials (num_samples=-1): trials would keep "
                "coming, and the population would never all reach a perturbation point. "
                "Give TuneConfig(num_samples=...) a number, or use synch=False")
        trial_id = trial.trial_id
        if trial_id in self._trial_state:      # (a restore: known from the loaded state)
            return
        filled = False
        config = trial.config
        if isinstance(config, dict):
            for key, space in self._hyperparam_mutations.items():
                if key not in config:
                    config[key] = self._draw(space)
                    filled = True
        self._trial_state[trial_id] = _TrialState(trial.experiment_tag)
        if filled:
            self.state_version += 1      # the draw moved the generator

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict) -> str:
        """At a perturbation point: rank the trial, and exploit or time-share (PAUSE)."""
        time = result.get(self._time_attr)
        score = lookup(result, self._metric, None)
        for what, key, value in (("time_attr", self._time_attr, time),
                                 ("metric", self._metric, score)):
            if value is None:
                message = (f"PopulationBasedTraining: trial {trial.trial_id}'s result has no "
                           f"{what} {key!r} (it has {sorted(result)}); report it with every "
                           "result")
                if self._require_attrs:
                    raise RuntimeError(message + ", or pass PopulationBasedTraining("
                                       "require_attrs=False) to ignore such results")
                if key not in self._warned:
                    self._warned.add(key)
                    logger.warning(message)
        if time is None or score is None:
            return CONTINUE
        state = self._trial_state[trial.trial_id]
        if time < self._burn_in_period or \
                time - state.last_perturbation_time < self._perturbation_interval or \
                (self._synch and time < self._next_sync):
            # (synchronous: a trial behind the population's point, one resumed from an
            # earlier point, runs on to it; paused short of it, it would be the one trial
            # to resume, and be paused again at its next result)
            return CONTINUE
        state.last_score = self._sign() * float(score)
        state.last_train_time = float(time)
        state.last_iteration = int(result.get("training_iteration", 0) or 0)
        self.state_version += 1
        if self._synch:
            # it waits at the point; the last of the population to reach it ranks them all
            if self._all_reached(tune_controller):
                self._synchronise(tune_controller, float(time))
            return PAUSE
        state.last_perturbation_time = float(time)
        trials = tune_controller.get_trials()
        lower, upper = self._quantiles(trials)
        decision = PAUSE if self._others_wait(tune_controller, trials, trial) else CONTINUE
        if self._checkpoint_or_exploit(tune_controller, trial, trials, lower, upper):
            return PAUSE
        return decision

    def on_trial_complete(self, tune_controller: Any, trial: Any, result: dict) -> None:
        """A trial ended: it no longer counts in the quantiles (as in Ray).

        With ``synch=True``, if it was the last trial the others waited
        for at their perturbation point, they are ranked now.
        """
        self._release(trial.trial_id)
        self._synchronise_without(tune_controller, trial)

    def on_trial_remove(self, tune_controller: Any, trial: Any) -> None:
        """A trial failed or was removed: it no longer counts in the quantiles.

        With ``synch=True``, if it was the last trial the others waited
        for at their perturbation point, they are ranked now.
        """
        self._release(trial.trial_id)
        self._synchronise_without(tune_controller, trial)

    def exploit_failed(self, trial_id: str) -> None:
        """The sweep could not copy the donor's checkpoint: the trial goes on from its own.

        Its perturbation times go back to its own, as if it had not been in
        the lower quantile: left at the donor's, they would make its next
        result a perturbation point again, and a copy that keeps failing (a
        full disk) would pause and restart it at every result.
        """
        own = self._own_times.pop(trial_id, None)
        state = self._trial_state.get(trial_id)
        if own is None or state is None:
            return
        state.last_perturbation_time, state.last_train_time, state.last_iteration = own
        self.state_version += 1

    def _release(self, trial_id: str) -> None:
        """An ended trial is no donor any more: its checkpoint is not held for one."""
        self._own_times.pop(trial_id, None)
        state = self._trial_state.get(trial_id)
        if state is not None and state.last_checkpoint is not None:
            state.last_checkpoint = None
            self.state_version += 1

    def checkpoints_in_use(self) -> set:
        """The checkpoint folders kept for exploits: the trials' latest checkpoints of their
        last time in the upper quantile. The sweep's ``num_to_keep`` does not remove them
        (Ray's PBT failed to restore a checkpoint it removed, ray-project/ray#9036)."""
        return {s.last_checkpoint[0] for s in self._trial_state.values() if s.last_checkpoint}

    def next_decision_point(self, trial_id: Hashable) -> float:
        """The trial's next perturbation point (results before it need no verdict)."""
        state = self._trial_state.get(trial_id)
        if state is None:
            return -math.inf
        return max(self._burn_in_period,
                   state.last_perturbation_time + self._perturbation_interval,
                   self._next_sync if self._synch else -math.inf)

    def choose_trial_to_run(self, tune_controller: Any) -> Any:
        """The PENDING or PAUSED trial that has trained least (``time_attr``), as Ray's.

        Ties go to the trial created first, so that PENDING trials (which
        have trained 0) start before paused ones. With ``synch=True`` only
        the trials short of the population's next perturbation point are
        candidates, as in Ray: those that have reached it wait for the
        others (None when none is short of it).
        """
        best, best_time = None, math.inf
        limit = self._next_sync if self._synch else math.inf
        for trial in tune_controller.get_trials():
            if trial.status in ("PENDING", "PAUSED"):
                state = self._trial_state.get(trial.trial_id)
                t = state.last_train_time if state is not None else 0.0
                if t < best_time and t < limit:
                    best, best_time = trial, t
        return best

    # ----------------------------------------------------------------- internals

    def _sign(self) -> float:
        return 1.0 if self._mode == "max" else -1.0

    def _others_wait(self, tune_controller: Any, trials: list, trial: Any) -> bool:
        """Whether another trial waits to run (PENDING, PAUSED, or still to be created)."""
        controller = getattr(tune_controller, "_controller", None)
        if controller is not None:
            return controller.may_start_more_later()
        return any(t.status in ("PENDING", "PAUSED") for t in trials if t is not trial)

    def _all_reached(self, tune_controller: Any, ending: Any = None) -> bool:
        """Synchronous PBT: whether the population has reached its next perturbation point.

        That is, every trial that has not ended, but ``ending`` (one that is
        ending now), has trained up to the point, and no trial of the sweep
        is still to be created: such a trial has trained 0 (Ray creates them
        all up front; fastasha when a slot can take them).
        """
        controller = getattr(tune_controller, "_controller", None)
        if controller is not None and controller.total is not None and \
                not controller.exhausted and len(controller.order) < controller.total:
            return False
        live = [t for t in tune_controller.get_live_trials() if t is not ending]
        if not live:
            return False
        for trial in live:
            state = self._trial_state.get(trial.trial_id)
            if state is None or state.last_train_time < self._next_sync:
                return False
        return True

    def _synchronise_without(self, tune_controller: Any, ending: Any) -> None:
        """Synchronous PBT: rank the others now if ``ending`` was the last one they waited for.

        The time of such a point is that of the latest perturbation point
        among them (in Ray's ranking, that of the result which completed it).
        """
        if self._synch and self._all_reached(tune_controller, ending):
            live = [t for t in tune_controller.get_live_trials() if t is not ending]
            self._synchronise(tune_controller, max(
                self._trial_state[t.trial_id].last_train_time for t in live), ending)

    def _synchronise(self, tune_controller: Any, time: float, ending: Any = None) -> None:
        """Synchronous PBT: the whole population has reached the point; rank it, exploit.

        As in Ray: every trial's last perturbation time becomes ``time``; the
        trials are taken top quantile first, then the middle, then the
        bottom quantile (so that the top trials' checkpoints are kept before
        the bottom ones draw from them); each bottom trial exploits one of
        the top ones; and the next point is one ``perturbation_interval``
        further, or the time of the furthest trial if that is later.
        Trials not running (all but the one whose result completed the
        point, or one still pausing) are given their exploit at once.
        """
        trials = [t for t in tune_controller.get_live_trials() if t is not ending]
        lower, upper = self._quantiles(trials)
        middle = [t for t in trials if t not in lower and t not in upper]
        exploiting = []
        for trial in upper + middle + lower:
            self._trial_state[trial.trial_id].last_perturbation_time = time
            if self._checkpoint_or_exploit(tune_controller, trial, trials, lower, upper):
                exploiting.append(trial)
        self._next_sync = max(self._next_sync + self._perturbation_interval,
                              *(self._trial_state[t.trial_id].last_train_time for t in trials))
        self.state_version += 1
        # (a running trial, the one whose result completed the point or one whose objective
        # is still ending after its PAUSE, takes its exploit once paused, as in asynchronous
        # PBT; the others are paused, or waiting to start again after a failure)
        controller = tune_controller._controller
        for trial in exploiting:
            if trial.status in ("PAUSED", "PENDING") and not trial.pausing:
                controller.exploit_now(trial)

    def _quantiles(self, trials: list) -> tuple[list, list]:
        """Bottom and top quantiles of the unfinished trials that have a score."""
        ranked = [t for t in trials if not t.is_finished() and
                  self._trial_state.get(t.trial_id) is not None and
                  self._trial_state[t.trial_id].last_score is not None]
        ranked.sort(key=lambda t: self._trial_state[t.trial_id].last_score)
        if len(ranked) <= 1:
            return [], []
        n = int(math.ceil(len(ranked) * self._quantile_fraction))
        if n > len(ranked) / 2:
            n = int(math.floor(len(ranked) / 2))
        return ranked[:n], ranked[len(ranked) - n:] if n else []

    def _checkpoint_or_exploit(self, tune_controller: Any, trial: Any, trials: list,
                               lower: list, upper: list) -> bool:
        """Keep the checkpoint of a top trial; have a bottom one exploit a top one.

        True if ``trial`` is to exploit another (it must then be paused).
        """
        state = self._trial_state[trial.trial_id]
        if trial in upper:
            latest = trial.latest
            state.last_checkpoint = list(latest) if latest else None
            self._num_checkpoints += 1
        else:
            state.last_checkpoint = None
        if trial not in lower:
            return False
        donor = self._rng.choice(upper)
        donor_state = self._trial_state[donor.trial_id]
        if not donor_state.last_checkpoint:
            logger.info("PBT: trial %s has no checkpoint; trial %s does not exploit it",
                        donor.trial_id, trial.trial_id)
            return False
        new_config = self._explore(donor.config)
        controller = getattr(tune_controller, "_controller", None)
        if controller is None:
            raise RuntimeError("PopulationBasedTraining runs only in a fastasha sweep")
        controller.request_exploit(trial, donor.trial_id, new_config,
                                   tuple(donor_state.last_checkpoint))
        if self._log_config:
            self._log_exploit(trial, donor, state, donor_state, new_config)
        logger.info("PBT: trial %s (score %s) exploits trial %s (score %s): %s",
                    trial.trial_id, state.last_score, donor.trial_id, donor_state.last_score,
                    _mutated_only(new_config, self._hyperparam_mutations))
        self._num_perturbations += 1
        self._own_times[trial.trial_id] = (state.last_perturbation_time, state.last_train_time,
                                           state.last_iteration)
        # as in Ray: it goes on from the donor's perturbation time
        state.last_perturbation_time = donor_state.last_perturbation_time
        state.last_train_time = donor_state.last_train_time
        state.last_iteration = donor_state.last_iteration
        return True

    def _draw(self, space: Any) -> Any:
        """A fresh value from one entry of ``hyperparam_mutations``."""
        if isinstance(space, Mapping):
            return {k: self._draw(v) for k, v in space.items()}
        if isinstance(space, (list, tuple)):
            return self._rng.choice(space)
        if isinstance(space, Domain):
            return space.sample(random_state=self._rng.randrange(2 ** 32))
        return space()

    def _explore(self, config: dict) -> dict:
        """A mutated copy of ``config`` (Ray's rules), then ``custom_explore_fn``."""
        new = self._mutate(config, self._hyperparam_mutations)
        if self._custom_explore_fn is not None:
            new = self._custom_explore_fn(new)
            if not isinstance(new, dict):
                raise TypeError(f"custom_explore_fn must return the config (a dict), got "
                                f"{new!r}")
        return new

    def _mutate(self, config: dict, mutations: Mapping) -> dict:
        new = copy.deepcopy(config)
        rng = self._rng
        for key, space in mutations.items():
            if isinstance(space, Mapping):
                new[key] = self._mutate(config.get(key) or {}, space)
            elif isinstance(space, (list, tuple)):
                values = list(space)
                if rng.random() < self._resample_probability or config.get(key) not in values:
                    new[key] = rng.choice(values)
                else:
                    i = values.index(config[key]) + rng.choice((-1, 1))
                    new[key] = values[min(max(i, 0), len(values) - 1)]
            else:
                old = config.get(key)
                if rng.random() < self._resample_probability or \
                        not isinstance(old, (int, float)) or isinstance(old, bool):
                    new[key] = self._draw(space)
                else:
                    new[key] = old * rng.choice(self._perturbation_factors)
                if isinstance(old, int) and not isinstance(old, bool):
                    new[key] = int(new[key])
        return new

    def _log_exploit(self, trial: Any, donor: Any, state: _TrialState, donor_state: _TrialState,
                     new_config: dict) -> None:
        """Append the exploit to pbt_global.txt and both trials' pbt_policy files, as Ray."""
        root = getattr(trial, "root", None)
        if not root:
            return
        folder = os.path.dirname(root)
        iteration = (trial.result or {}).get("training_iteration", 0) if hasattr(
            trial, "result") else 0
        line = json.dumps([state.orig_tag, donor_state.orig_tag, iteration,
                           donor_state.last_iteration, donor.config, new_config],
                          default=repr) + "\n"
        try:
            with open(os.path.join(folder, "pbt_global.txt"), "a") as f:
                f.write(line)
            for who in (trial, donor):
                with open(os.path.join(folder, f"pbt_policy_{who.trial_id}.txt"), "a") as f:
                    f.write(line)
        except OSError as err:       # a log; never the sweep's end
            logger.warning("PBT could not write its log in %s: %s", folder, err)

    # ----------------------------------------------------------------- state

    def state_dict(self) -> dict:
        """JSON-able snapshot: per-trial state, the generator, the counters, and the
        population's next perturbation point (``synch=True``)."""
        version, internal, gauss = self._rng.getstate()
        return {
            "format": _STATE_FORMAT,
            "metric": self._metric, "mode": self._mode,
            "params": self._params(),
            "rng": [version, list(internal), gauss],
            "trials": {k: s.as_list() for k, s in self._trial_state.items()},
            "num_checkpoints": self._num_checkpoints,
            "num_perturbations": self._num_perturbations,
            "next_sync": self._next_sync,
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore a snapshot made by :meth:`state_dict` into a fresh scheduler."""
        if not isinstance(state, dict) or state.get("format") != _STATE_FORMAT:
            raise ValueError("not a PopulationBasedTraining snapshot; pass what state_dict() "
                             "returned")
        for key, value in state["params"].items():
            if self._params().get(key) != value:
                raise ValueError(
                    f"snapshot was made with {key}={value!r} but this scheduler has "
                    f"{key}={self._params().get(key)!r}; build the scheduler with the same "
                    "arguments")
        self._metric = self._metric or state.get("metric")
        self._mode = self._mode or state.get("mode")
        version, internal, gauss = state["rng"]
        self._rng.setstate((version, tuple(internal), gauss))
        self._trial_state = {k: _TrialState.from_list(v) for k, v in state["trials"].items()}
        self._num_checkpoints = state.get("num_checkpoints", 0)
        self._num_perturbations = state.get("num_perturbations", 0)
        self._next_sync = state.get("next_sync", self._next_sync)

    def _params(self) -> dict:
        return {"time_attr": self._time_attr,
                "perturbation_interval": self._perturbation_interval,
                "burn_in_period": self._burn_in_period,
                "quantile_fraction": self._quantile_fraction,
                "resample_probability": self._resample_probability,
                "perturbation_factors": list(self._perturbation_factors),
                "synch": self._synch}

    def debug_string(self) -> str:
        """One line about the scheduler's state, for logs (as Ray's)."""
        return (f"PopulationBasedTraining: {self._num_checkpoints} checkpoints, "
                f"{self._num_perturbations} perturbs")
