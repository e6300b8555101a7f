"""HyperBandForBOHB: Ray Tune's HyperBand for BOHB, which pauses trials for TuneBOHB.

The scheduler of BOHB (Bayesian Optimization and HyperBand), to use with
:class:`~fastasha.search.bohb.TuneBOHB`. It is
:class:`~fastasha.schedulers.HyperBandScheduler` with Ray Tune 2.x's changes
for BOHB (``ray.tune.schedulers.HyperBandForBOHB``):

- Each band fills its largest bracket first (the one with the most
  halvings, whose trials start at the smallest milestone), then the smaller
  ones; a bracket too small to run (a first milestone below 1) is skipped.
- A trial that reaches its bracket's milestone is paused while the bracket
  may still take trials, or while another of its trials is not paused: new
  trials, which the searcher proposes from what the paused ones reached,
  join the bracket being filled. The bracket halves when its last trial
  reaches the milestone with all the others paused there.
- :meth:`HyperBandForBOHB.choose_trial_to_run` starts the trials waiting
  in the brackets, in bracket order; when no trial runs and none waits, it
  halves the brackets whose trials are paused (the sweep has no more trials
  to give them), so that their best trials go on.
- The searcher hears the budget of each result at a milestone (Ray's
  ``result["hyperband_info"]["budget"]``, the milestone), and when the
  scheduler pauses a trial and lets a paused one go on (Ray's
  ``searcher.on_pause`` and ``on_unpause``), so that ``TuneBOHB`` learns
  from the paused trials' results and its ``max_concurrent`` counts the
  running trials only.

Where fastasha differs from Ray:

- A bracket that can take no more trials (the sweep has created its last
  trial, or the bracket lost a trial that ended early) halves as soon as
  all its trials are paused at the milestone, and one whose trials are all
  paused at ``max_t`` stops them then; Ray pauses the last trial too and
  waits until no trial of the whole sweep runs (the choice of the trials
  that go on is the same, and they go on without a restart).
- The scheduler's state is saved with the experiment, so that
  ``Tuner.restore`` continues a sweep with paused trials (Ray's ``save``
  and ``restore`` raise ``NotImplementedError``); the restored searcher,
  whose saved state may be older, hears again which trials are paused.
- With another searcher than ``TuneBOHB`` it runs as well, the searcher
  hearing of pauses only if it has ``on_pause`` and ``on_unpause`` (Ray
  calls them on any searcher, and fails without them).
"""

from __future__ import annotations

from typing import Any, Hashable

from .._rows import lookup
from ._base import CONTINUE, PAUSE
from .hyperband import _STATE_FORMAT as _HYPERBAND_FORMAT
from .hyperband import HyperBandScheduler, _Bracket

__all__ = ["HyperBandForBOHB"]

_STATE_FORMAT = "fastasha.hb_bohb/1"


def _searcher(tune_controller: Any) -> Any:
    """The sweep's searcher that hears of pauses: the ``search_alg``, or the one it wraps
    (a ``ConcurrencyLimiter``'s or a ``Repeater``'s ``searcher``)."""
    searcher = getattr(getattr(tune_controller, "_controller", None), "searcher", None)
    while searcher is not None and not hasattr(searcher, "on_pause"):
        searcher = getattr(searcher, "searcher", None)
    return searcher


def _is_paused(trial: Any) -> bool:
    """Paused, or pausing (answered PAUSE, its objective still ending)."""
    return trial.status == "PAUSED" or bool(getattr(trial, "pausing", False))


class HyperBandForBOHB(HyperBandScheduler):
    """HyperBand for BOHB, with Ray Tune's arguments and decisions.

    The arguments are :class:`~fastasha.schedulers.HyperBandScheduler`'s,
    and so is what they mean; see the module docstring for how this
    scheduler differs (largest bracket first, trials paused until their
    bracket is full, the searcher told of budgets and pauses).

    Parameters
    ----------
    time_attr : str, default="training_iteration"
        The result key that measures a trial's progress (BOHB's budget); it
        must grow.
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
    As with ``HyperBandScheduler``, paused trials restart from their latest
    checkpoint: the objective must save its state in checkpoints and read
    ``tune.get_checkpoint()`` when it starts.

    Examples
    --------
    >>> from fastasha.schedulers import HyperBandForBOHB
    >>> bohb = HyperBandForBOHB(metric="loss", mode="min", max_t=9, reduction_factor=3)
    >>> bohb.max_t, bohb.reduction_factor
    (9, 3)
    """

    _processing = False        # (a halving stops trials: their removal must not start another)

    def on_trial_add(self, tune_controller: Any, trial: Any) -> None:
        """Put the trial in the bracket being filled, or in the next one: largest first."""
        name = type(self).__name__
        if self._metric is None or self._mode is None:
            raise ValueError(
                f"{name} has no metric ({self._metric!r}) or mode ({self._mode!r}): pass them "
                f"to {name}(metric=..., mode=...) or to tune.TuneConfig(metric=..., mode=...)")
        trial_id = trial.trial_id
        if trial_id in self._trial_bracket:      # (a restore: known from the loaded state)
            # the searcher's state is older than this one (saved every few seconds, and its
            # replay has no pauses): tell it again which of its trials are paused
            bracket = self._trial_bracket[trial_id]
            if trial_id in bracket.live and trial.status in ("PAUSED", "PENDING"):
                paused = trial.status == "PAUSED" and trial_id not in bracket.to_unpause
                self._tell(tune_controller, "on_pause" if paused else "on_unpause", trial_id)
            return
        if self._current is None or self._current.filled():
            while True:
                band = self._bands[-1]
                if len(band) == self._s_max_1:
                    band = []
                    self._bands.append(band)
                s = self._s_max_1 - 1 - len(band)      # Ray's BOHB: the largest bracket first
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
        """Continue below the milestone; at it, pause the trial until its bracket can halve.

        The searcher hears the result's budget (the milestone) when the
        trial reached it, as Ray's ``result["hyperband_info"]``.
        """
        trial_id = trial.trial_id
        info: dict = {}
        result["hyperband_info"] = info       # (Ray's; this copy of the result is the scheduler's)
        bracket = self._trial_bracket[trial_id]
        if trial_id not in bracket.live:
            self._tell_budget(tune_controller, trial_id, result, info)
            return CONTINUE
        if self._time_attr not in result or lookup(result, self._metric, None) is None:
            raise RuntimeError(
                f"{type(self).__name__}: trial {trial_id}'s result lacks {self._time_attr!r} "
                f"or {self._metric!r} (it has {sorted(result)}); report both with every result")
        bracket.update(trial_id, result)
        bracket.to_unpause.discard(trial_id)     # it was resumed
        self.state_version += 1
        if bracket.continue_trial(trial_id):
            self._tell_budget(tune_controller, trial_id, result, info)
            return CONTINUE
        info["budget"] = bracket.cumul_r
        self._tell_budget(tune_controller, trial_id, result, info)
        if self._may_grow(tune_controller, bracket) or \
                not self._all_paused(tune_controller, bracket, but=trial_id):
            self._tell(tune_controller, "on_pause", trial_id)
            return PAUSE
        action = self._process(tune_controller, bracket, trial_id)
        if action == PAUSE:
            self._tell(tune_controller, "on_pause", trial_id)
        return action

    def _may_grow(self, tune_controller: Any, bracket: _Bracket) -> bool:
        """Whether trials may still join ``bracket``: it is being filled, and the sweep will
        create more trials."""
        if bracket is not self._current or bracket.filled():
            return False
        controller = tune_controller._controller
        return not (controller.exhausted or controller.stopping or (
            controller.total is not None and len(controller.order) >= controller.total))

    def _all_paused(self, tune_controller: Any, bracket: _Bracket, but: str | None) -> bool:
        """Whether every live trial of ``bracket`` (``but`` aside) is paused."""
        trials = tune_controller._controller.trials
        return all(_is_paused(trials[t]) for t in bracket.live if t != but and t in trials)

    def _process(self, tune_controller: Any, bracket: _Bracket, current: str | None) -> str:
        """HyperBand's halving; the searcher hears of the paused trials it lets go on."""
        before = set(bracket.to_unpause)
        self._processing = True
        try:
            action = super()._process(tune_controller, bracket, current)
        finally:
            self._processing = False
        for trial_id in sorted(bracket.to_unpause - before):
            self._tell(tune_controller, "on_unpause", trial_id)
        return action

    def on_trial_remove(self, tune_controller: Any, trial: Any) -> None:
        """A trial ended or was stopped: out of its bracket, which may halve (or end) now.

        A bracket that gets no more trials and whose other trials are all
        paused at ``max_t`` stops them now (HyperBand's halving when they
        are paused at an earlier milestone).
        """
        bracket = self._trial_bracket.get(trial.trial_id)
        super().on_trial_remove(tune_controller, trial)
        if bracket is not None and bracket.live and bracket.finished() and \
                not self._processing and not self._may_grow(tune_controller, bracket) and \
                self._all_paused(tune_controller, bracket, but=None):
            self._process(tune_controller, bracket, None)

    def _tell(self, tune_controller: Any, event: str, trial_id: str) -> None:
        """``searcher.on_pause(trial_id)`` or ``on_unpause``, if the searcher has it."""
        fn = getattr(_searcher(tune_controller), event, None)
        if callable(fn):
            fn(trial_id)

    def _tell_budget(self, tune_controller: Any, trial_id: str, result: dict,
                     info: dict) -> None:
        """Tell a TuneBOHB the result's ``hyperband_info``, which its copy of the result lacks."""
        fn = getattr(_searcher(tune_controller), "_hear_budget", None)
        if callable(fn):
            fn(trial_id, result.get("training_iteration"), info)

    def next_decision_point(self, trial_id: Hashable) -> float:
        """The trial's bracket milestone (results below it need no verdict), as HyperBand's."""
        return super().next_decision_point(trial_id)

    def choose_trial_to_run(self, tune_controller: Any) -> Any:
        """A waiting trial, in bracket order; when none runs, halve the brackets of paused ones.

        A trial waits when it is ``PENDING``, or ``PAUSED`` with its bracket
        letting it go on. When no trial runs and none waits, each bracket
        with paused trials halves (it gets no more trials), in order, until
        one lets a trial go on; that trial (or the first waiting one) is
        returned.
        """
        controller = tune_controller._controller
        trials = controller.trials
        chosen = self._waiting(trials)
        if chosen is not None or controller.running:
            return chosen
        for band in self._bands:
            for bracket in band:
                if any(trials[t].status == "PAUSED" for t in bracket.live if t in trials):
                    self._process(tune_controller, bracket, None)
                    chosen = self._waiting(trials)
                    if chosen is not None:
                        return chosen
        return None

    def _waiting(self, trials: dict) -> Any:
        """The first trial that may start, bracket by bracket (Ray's BOHB: in bracket order)."""
        for band in self._bands:
            for bracket in band:
                for trial_id in bracket.live:
                    trial = trials.get(trial_id)
                    if trial is not None and (trial.status == "PENDING" or (
                            trial.status == "PAUSED" and trial_id in bracket.to_unpause)):
                        return trial
        return None

    # ----------------------------------------------------------------- state

    def state_dict(self) -> dict:
        """JSON-able snapshot of the bands, brackets and trials."""
        return {**super().state_dict(), "format": _STATE_FORMAT}

    def load_state_dict(self, state: dict) -> None:
        """Restore a snapshot made by :meth:`state_dict` into a fresh scheduler."""
        if not isinstance(state, dict) or state.get("format") != _STATE_FORMAT:
            raise ValueError("not a HyperBandForBOHB snapshot; pass what state_dict() "
                             "returned")
        super().load_state_dict({**state, "format": _HYPERBAND_FORMAT})

    def debug_string(self) -> str:
        """One line per band: its brackets' trials and progress (as Ray's, shorter)."""
        return "Using HyperBandForBOHB" + super().debug_string()[len("Using HyperBand"):]
