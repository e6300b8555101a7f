"""HyperBandScheduler: Ray Tune's synchronous HyperBand, which pauses trials.

Trials fill brackets in turn (a band of brackets ``s = 0, 1, ...``; bracket
``s`` takes ``ceil(s_max_1 / (s + 1) * rf**s)`` trials and gives each
``max_t / rf**s`` units of ``time_attr`` first). A trial that reaches its
bracket's milestone is paused; once every live trial of the bracket has
reached it, the bracket halves: the best ``1/rf`` resume to the next
milestone and the others are stopped. :meth:`HyperBandScheduler.choose_trial_to_run`
starts trials bracket by bracket, the least advanced bracket first. The
rules, their corner cases included (the next milestone is
``min(r * rf, max_t)``, as in Ray since 2.7, whose earlier
``min(r * rf, max_t - milestone)`` kept trials short of ``max_t``;
``stop_last_trials``), are Ray Tune 2.x's
``ray.tune.schedulers.HyperBandScheduler``.
"""

from __future__ import annotations

import math
from typing import Any, Hashable

from .._rows import lookup
from .._validation import check_mode
from ._base import CONTINUE, DEFAULT_METRIC, PAUSE, STOP, _RayMetricMode
from .fifo import FIFOScheduler

__all__ = ["HyperBandScheduler"]

_STATE_FORMAT = "fastasha.hyperband/1"


class _Bracket:
    """One bracket of synchronous successive halving (Ray's ``_Bracket``)."""

    def __init__(self, time_attr: str, max_trials: int, init_t: int, max_t: float, eta: float,
                 s: int, stop_last_trials: bool) -> None:
        self.time_attr = time_attr
        self.live: dict[str, dict | None] = {}   # trial id -> latest result (None: none yet)
        self.all: list[str] = []
        self.n = self.n0 = max_trials
        self.r = init_t
        self.max_t = max_t
        self.cumul_r = init_t
        self.eta = eta
        self.halves = s
        self.total_work = self._total_work(max_trials, init_t, s)
        self.completed = 0.0
        self.stop_last_trials = stop_last_trials
        self.being_processed = False
        self.to_unpause: set[str] = set()

    def _time(self, result: dict | None) -> float:
        return 0.0 if result is None else float(result[self.time_attr])

    def _total_work(self, n: float, r: float, s: int) -> int:
        # (Ray's estimate, used only to order brackets: it caps r at max_t - r0)
        work, first = 0, r
        for _ in range(s + 1):
            work += int(n) * int(r)
            n = int(math.ceil(n / self.eta))
            r = int(min(r * self.eta, self.max_t - first))
        return work

    def filled(self) -> bool:
        return len(self.live) == self.n

    def add(self, trial_id: str) -> None:
        self.live[trial_id] = None
        self.all.append(trial_id)

    def cur_iter_done(self) -> bool:
        return all(self._time(r) >= self.cumul_r for r in self.live.values())

    def finished(self) -> bool:
        return self.stop_last_trials and self.halves == 0 and self.cur_iter_done()

    def continue_trial(self, trial_id: str) -> bool:
        if not self.stop_last_trials and self.halves == 0:
            return True
        return self._time(self.live[trial_id]) < self.cumul_r

    def update(self, trial_id: str, result: dict) -> None:
        self.completed += self._time(result) - self._time(self.live[trial_id])
        self.live[trial_id] = result

    def successive_halving(self, metric: str, sign: float) -> tuple[list, list]:
        if self.halves == 0 and not self.stop_last_trials:
            return list(self.live), []
        self.halves -= 1
        self.n = int(math.ceil(self.n / self.eta))
        self.r = int(min(self.r * self.eta, self.max_t))
        self.cumul_r = self.r          # (the milestones are r0 * rf**k, capped at max_t)
        ranked = sorted(self.live, key=lambda t: sign * float(lookup(self.live[t], metric)))
        # the best n go on; all of them when fewer are live (a bracket not filled, or one
        # that lost trials), as Ray's sorted_trials[-n:]
        cut = max(len(ranked) - self.n, 0)
        return ranked[cut:], ranked[:cut]

    def completion(self) -> float:
        if self.finished():
            return 1.0
        return min(self.completed / self.total_work, 1.0) if self.total_work else 1.0

    def as_dict(self) -> dict:
        return {"live": self.live, "all": self.all, "n": self.n, "n0": self.n0, "r": self.r,
                "cumul_r": self.cumul_r, "halves": self.halves, "completed": self.completed,
                "total_work": self.total_work, "being_processed": self.being_processed,
                "to_unpause": sorted(self.to_unpause)}

    @classmethod
    def from_dict(cls, state: dict, time_attr: str, max_t: float, eta: float,
                  stop_last_trials: bool) -> _Bracket:
        bracket = cls(time_attr, state["n0"], state["r"], max_t, eta, 0, stop_last_trials)
        bracket.live, bracket.all = dict(state["live"]), list(state["all"])
        bracket.n, bracket.r, bracket.cumul_r = state["n"], state["r"], state["cumul_r"]
        bracket.halves, bracket.completed = state["halves"], state["completed"]
        bracket.total_work = state["total_work"]
        bracket.being_processed = state["being_processed"]
        bracket.to_unpause = set(state["to_unpause"])
        return bracket


class HyperBandScheduler(_RayMetricMode, FIFOScheduler):
    """Synchronous HyperBand, with Ray Tune's arguments and decisions.

    Parameters
    ----------
    time_attr : str, default="training_iteration"
        The result key that measures a trial's progress; it must grow.
    metric : str, optional
        The result key trials are compared by (else ``TuneConfig(metric=...)``).
    mode : {"min", "max"}, optional
        Whether a lower or a higher ``metric`` is better.
    max_t : int, default=81
        The most ``time_attr`` a trial gets (at least 1); also sets the number of brackets,
        ``round(log(max_t) / log(reduction_factor)) + 1``.
    reduction_factor : float, default=3
        At each halving, the best ``1/reduction_factor`` of a bracket's trials go on.
    stop_last_trials : bool, default=True
        Stop the trials of a bracket once they reach ``max_t``; with ``False``
        the last ones run on until they end otherwise.

    Notes
    -----
    Trials that pause must save their state in checkpoints and read
    ``tune.get_checkpoint()`` when they start: a paused trial restarts from
    its latest checkpoint (from scratch if it saved none). A sweep should
    have as many trials as the brackets take (``num_samples``) for the
    halvings to happen: a bracket halves only once each of its trials has
    reached its milestone or ended.

    Examples
    --------
    >>> from fastasha.schedulers import HyperBandScheduler
    >>> hb = HyperBandScheduler(metric="loss", mode="min", max_t=9, reduction_factor=3)
    >>> hb.max_t, hb.reduction_factor
    (9, 3)
    """

    stateless = False
    restore_by_state = True

    def __init__(
        self,
        time_attr: str = "training_iteration",
        metric: str | None = None,
        mode: str | None = None,
        max_t: int = 81,
        reduction_factor: float = 3,
        stop_last_trials: bool = True,
    ) -> None:
        if not isinstance(time_attr, str):
            raise TypeError(f"time_attr must be a string, got {time_attr!r}")
        for name, value in (("max_t", max_t), ("reduction_factor", reduction_factor)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or \
                    not math.isfinite(value):
                raise TypeError(f"{name} must be a number, got {value!r}")
        if not max_t > 0:
            raise ValueError(f"max_t must be > 0, got {max_t!r}")
        if max_t < 1:
            # (Ray's looks for a bracket for ever at the first trial)
            raise ValueError(
                f"max_t must be at least 1, got {max_t!r}: a bracket's first milestone is "
                "int(max_t / reduction_factor**s) units of time_attr, 0 in every bracket "
                "below 1; count time_attr in smaller units")
        if not reduction_factor > 1:
            raise ValueError(f"reduction_factor must be > 1, got {reduction_factor!r}")
        if not isinstance(stop_last_trials, bool):
            raise TypeError(f"stop_last_trials must be True or False, got {stop_last_trials!r}")
        check_mode(mode)
        super().__init__(metric, mode)
        if self._metric is None and self._mode:
            self._metric = DEFAULT_METRIC
        self._time_attr = time_attr
        self._eta = reduction_factor
        self._max_t = max_t
        self._s_max_1 = int(round(math.log(max_t) / math.log(reduction_factor))) + 1
        self._stop_last_trials = stop_last_trials
        self._bands: list[list[_Bracket]] = [[]]
        self._trial_bracket: dict[str, _Bracket] = {}
        self._current: _Bracket | None = None
        self._num_stopped = 0
        #: changes whenever the state a restore needs changes
        self.state_version = 0

    @property
    def time_attr(self) -> str:
        """The result key that measures a trial's progress."""
        return self._time_attr

    @property
    def max_t(self) -> int:
        """The most ``time_attr`` a trial gets."""
        return self._max_t

    @property
    def reduction_factor(self) -> float:
        """The fraction ``1/reduction_factor`` of trials that go on at each halving."""
        return self._eta

    def _n0(self, s: int) -> int:
        return int(math.ceil(self._s_max_1 / (s + 1) * self._eta ** s))

    def _r0(self, s: int) -> int:
        return int(self._max_t * self._eta ** (-s))

    def _sign(self) -> float:
        return 1.0 if self._mode == "max" else -1.0

    # ----------------------------------------------------------------- hooks

    def on_trial_add(self, tune_controller: Any, trial: Any) -> None:
        """Put the trial in the current bracket, or in a new one (a new band when full)."""
        if self._metric is None or self._mode is None:
            raise ValueError(
                f"HyperBandScheduler has no metric ({self._metric!r}) or mode "
                f"({self._mode!r}): pass them to HyperBandScheduler(metric=..., mode=...) or "
                "to tune.TuneConfig(metric=..., mode=...)")
        trial_id = trial.trial_id
        if trial_id in self._trial_bracket:      # (a restore: known from the loaded state)
            return
        if self._current is None or self._current.filled():
            while True:
                band = self._bands[-1]
                if len(band) == self._s_max_1:
                    band = []
                    self._bands.append(band)
                s = len(band)
                bracket = _Bracket(self._time_attr, self._n0(s), self._r0(s), self._max_t,
                                   self._eta, s, self._stop_last_trials)
                band.append(bracket)
                self._current = bracket
                if self._r0(s) != 0:
                    break                 # (a bracket too small to run is skipped, as in Ray)
        self._current.add(trial_id)
        self._trial_bracket[trial_id] = self._current
        self.state_version += 1

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict) -> str:
        """Continue below the bracket's milestone; at it, pause or halve the bracket."""
        bracket = self._trial_bracket[trial.trial_id]
        if trial.trial_id not in bracket.live:
            return CONTINUE
        if self._time_attr not in result or lookup(result, self._metric, None) is None:
            raise RuntimeError(
                f"HyperBandScheduler: trial {trial.trial_id}'s result lacks {self._time_attr!r} "
                f"or {self._metric!r} (it has {sorted(result)}); report both with every result")
        bracket.update(trial.trial_id, result)
        bracket.to_unpause.discard(trial.trial_id)     # it was resumed
        self.state_version += 1
        if bracket.continue_trial(trial.trial_id):
            return CONTINUE
        return self._process(tune_controller, bracket, trial.trial_id)

    def _process(self, tune_controller: Any, bracket: _Bracket, current: str | None) -> str:
        """Halve the bracket once every live trial reached its milestone (Ray's rules)."""
        action = PAUSE
        if not bracket.cur_iter_done():
            return action
        controller = tune_controller._controller
        if bracket.finished():
            for trial_id in list(bracket.live):
                trial = controller.trials[trial_id]
                if trial_id != current and (trial.status == "PAUSED" or trial.pausing):
                    controller.stop_trial(trial)
            return STOP
        bracket.being_processed = True
        good, bad = bracket.successive_halving(self._metric, self._sign())
        self._num_stopped += len(bad)
        for trial_id in bad:
            if trial_id == current:
                bracket.live.pop(trial_id, None)
                action = STOP
            else:
                controller.stop_trial(controller.trials[trial_id])
        for trial_id in good:
            trial = controller.trials[trial_id]
            if bracket.continue_trial(trial_id):
                if trial_id == current:
                    action = CONTINUE
                elif trial.status == "PAUSED" or trial.pausing:
                    bracket.to_unpause.add(trial_id)
            elif bracket.finished():
                # already at max_t: the bracket is done with it (Ray's stop_last_trials)
                if trial_id == current:
                    bracket.live.pop(trial_id, None)
                    action = STOP
                elif trial.status == "PAUSED" or trial.pausing:
                    controller.stop_trial(trial)
        # (Ray leaves this set; cleared, a trial that ends early later still lets the
        # bracket halve without it)
        bracket.being_processed = False
        self.state_version += 1
        return action

    def on_trial_remove(self, tune_controller: Any, trial: Any) -> None:
        """A trial ended or was stopped: out of its bracket, which may halve now."""
        bracket = self._trial_bracket.get(trial.trial_id)
        if bracket is None or trial.trial_id not in bracket.live:
            return
        bracket.live.pop(trial.trial_id)
        bracket.to_unpause.discard(trial.trial_id)
        self.state_version += 1
        if bracket.live and not bracket.finished() and not bracket.being_processed:
            self._process(tune_controller, bracket, None)

    def on_trial_complete(self, tune_controller: Any, trial: Any, result: dict) -> None:
        """A trial ended (on its own, or stopped): out of its bracket."""
        self.on_trial_remove(tune_controller, trial)

    def on_trial_error(self, tune_controller: Any, trial: Any) -> None:
        """A trial failed: out of its bracket."""
        self.on_trial_remove(tune_controller, trial)

    def next_decision_point(self, trial_id: Hashable) -> float:
        """The trial's bracket milestone (results below it need no verdict)."""
        bracket = self._trial_bracket.get(trial_id)
        if bracket is None or (not bracket.stop_last_trials and bracket.halves == 0):
            return math.inf if bracket is not None else -math.inf
        return float(bracket.cumul_r)

    def choose_trial_to_run(self, tune_controller: Any) -> Any:
        """A PENDING trial, or a paused one its bracket resumes: least complete bracket first."""
        trials = tune_controller._controller.trials
        for band in self._bands:
            for bracket in sorted(band, key=lambda b: b.completion()):
                for trial_id in bracket.live:
                    trial = trials.get(trial_id)
                    if trial is None:
                        continue
                    if trial.status == "PENDING" or (trial.status == "PAUSED" and
                                                     trial_id in bracket.to_unpause):
                        return trial
        return None

    # ----------------------------------------------------------------- state

    def state_dict(self) -> dict:
        """JSON-able snapshot of the bands, brackets and trials."""
        index = {}
        bands = []
        for b, band in enumerate(self._bands):
            bands.append([bracket.as_dict() for bracket in band])
            for i, bracket in enumerate(band):
                index[id(bracket)] = [b, i]
        return {"format": _STATE_FORMAT, "metric": self._metric, "mode": self._mode,
                "params": {"time_attr": self._time_attr, "max_t": self._max_t,
                           "reduction_factor": self._eta,
                           "stop_last_trials": self._stop_last_trials},
                "bands": bands,
                "trials": {t: index[id(b)] for t, b in self._trial_bracket.items()},
                "current": index[id(self._current)] if self._current is not None else None,
                "num_stopped": self._num_stopped}

    def load_state_dict(self, state: dict) -> None:
        """Restore a snapshot made by :meth:`state_dict` into a fresh scheduler."""
        if not isinstance(state, dict) or state.get("format") != _STATE_FORMAT:
            raise ValueError("not a HyperBandScheduler snapshot; pass what state_dict() "
                             "returned")
        params = state["params"]
        mine = {"time_attr": self._time_attr, "max_t": self._max_t,
                "reduction_factor": self._eta, "stop_last_trials": self._stop_last_trials}
        for key, value in params.items():
            if mine.get(key) != value:
                raise ValueError(f"snapshot was made with {key}={value!r} but this scheduler "
                                 f"has {key}={mine.get(key)!r}; build it with the same arguments")
        self._metric = self._metric or state.get("metric")
        self._mode = self._mode or state.get("mode")
        self._bands = [[_Bracket.from_dict(b, self._time_attr, self._max_t, self._eta,
                                           self._stop_last_trials) for b in band]
                       for band in state["bands"]]
        self._trial_bracket = {t: self._bands[b][i] for t, (b, i) in state["trials"].items()}
        cur = state["current"]
        self._current = self._bands[cur[0]][cur[1]] if cur is not None else None
        self._num_stopped = state["num_stopped"]

    def debug_string(self) -> str:
        """One line per band: its brackets' trials and progress (as Ray's, shorter)."""
        out = f"Using HyperBand: num_stopped={self._num_stopped}"
        for b, band in enumerate(self._bands):
            for i, bracket in enumerate(band):
                out += (f"\nBand {b} bracket {i}: {len(bracket.live)} live of "
                        f"{len(bracket.all)}, milestone {bracket.cumul_r}, "
                        f"{bracket.completion():.0%} done")
        return out
