"""ConcurrencyLimiter: cap the trials a searcher has running at once.

It has the arguments and behaviour of Ray Tune 2.x's
``ray.tune.search.ConcurrencyLimiter``: wrap a searcher in it and pass the
limiter as ``TuneConfig(search_alg=...)``.

Examples
--------
>>> from fastasha.search import ConcurrencyLimiter, Searcher
>>> class Counting(Searcher):
...     def __init__(self):
...         super().__init__()
...         self.n = 0
...     def suggest(self, trial_id):
...         self.n += 1
...         return {"x": self.n}
>>> limiter = ConcurrencyLimiter(Counting(), max_concurrent=2)
>>> [limiter.suggest(t) for t in ("a", "b", "c")]
[{'x': 1}, {'x': 2}, None]
>>> limiter.on_trial_complete("a", {"loss": 1.0})
>>> limiter.suggest("c")
{'x': 3}
"""

from __future__ import annotations

import copy
from typing import Any

from .._validation import check_bool, check_int
from ._adapter import SearcherWrapper, call_set_search_properties
from .searcher import Searcher

__all__ = ["ConcurrencyLimiter"]


class ConcurrencyLimiter(SearcherWrapper):
    """Let a searcher have at most ``max_concurrent`` trials live at once (Ray's class).

    A trial is live from the suggestion that created it until
    ``on_trial_complete`` about it. While ``max_concurrent`` trials are
    live, :meth:`suggest` answers ``None`` without asking the wrapped
    searcher, and the sweep asks again once a trial ends. With
    ``batch=True`` a trial stays live until ``max_concurrent`` trials have
    ended: their completions then reach the wrapped searcher together, and
    only then does it suggest again (a searcher that fits a model per
    batch). The batch has ``max_concurrent`` trials however many run at once
    (on fewer slots, the trials of a batch run one after another), as in
    Ray, whose sweep suggests ``max_concurrent`` trials ahead, pending,
    where fastasha asks for a config only when a trial can start. A batch
    that cannot fill is passed on once its trials have ended: after the
    wrapped searcher answered ``None`` or ``FINISHED``, and the last one of
    the sweep's ``num_samples`` (a sweep stopped early, by its time budget
    or a stopper, may not pass on its last batch). A searcher whose
    ``set_max_concurrency(max_concurrent)`` returns ``True`` limits itself:
    the limiter then only passes calls through.

    ``metric``, ``mode`` and the param space reach the wrapped searcher
    through :meth:`set_search_properties`; :attr:`metric` and :attr:`mode`
    are the wrapped searcher's.

    Parameters
    ----------
    searcher : Searcher
        The search algorithm to limit (an instance of a
        :class:`~fastasha.search.Searcher` subclass).
    max_concurrent : int
        The most trials live at once; at least 1.
    batch : bool, default=False
        Suggest in batches of ``max_concurrent`` trials, and pass on their
        completions once all of them have ended.

    Raises
    ------
    TypeError
        If ``searcher`` is not a ``Searcher`` instance (Ray raises a
        ``RuntimeError`` here), or ``max_concurrent`` is not an integer.
    ValueError
        If ``max_concurrent`` is less than 1 (Ray: an ``AssertionError``).

    Notes
    -----
    ``TuneConfig(max_concurrent_trials=n)`` caps the running trials of any
    sweep; as in Ray, giving it together with a limiter whose
    ``max_concurrent`` differs is an error.
    """

    def __init__(self, searcher: Searcher, max_concurrent: int, batch: bool = False) -> None:
        super().__init__(searcher, "subclass fastasha.search.Searcher, or cap the sweep with "
                         "TuneConfig(max_concurrent_trials=...) instead")
        self.max_concurrent = check_int("max_concurrent", max_concurrent, minimum=1,
                                        hint="; it is the most trials running at once")
        self.batch = check_bool("batch", batch)
        self.live_trials: set[str] = set()
        self._n_unfinished = 0             # live trials that have not ended yet
        self._ended: dict[str, tuple] = {}  # batch mode: (result, error) held back
        # batch mode: the batch cannot fill (the wrapped searcher's latest answer was None
        # or FINISHED, or the sweep's num_samples are all suggested)
        self._unfilled = False
        self._num_samples: int | None = None    # the sweep's, from set_search_properties
        self._n_suggested = 0                   # configs suggested in this sweep
        self._limit = not searcher.set_max_concurrency(self.max_concurrent)

    @property
    def metric(self) -> str | list | None:
        return self.searcher.metric

    def set_max_concurrency(self, max_concurrent: int) -> bool:
        """Change the limit; ``True``: this limiter enforces it."""
        self.max_concurrent = check_int("max_concurrent", max_concurrent, minimum=1)
        return True

    def set_search_properties(self, metric: str | None, mode: str | None, config: dict,
                              **spec: Any) -> bool:
        """Pass the sweep's metric, mode and param space on to the wrapped searcher."""
        self._limit = not self.searcher.set_max_concurrency(self.max_concurrent)
        num_samples = spec.get("num_samples")
        self._num_samples = num_samples if isinstance(num_samples, int) and \
            not isinstance(num_samples, bool) and num_samples > 0 else None
        self._n_suggested = 0
        return call_set_search_properties(self.searcher.set_search_properties, metric, mode,
                                          config, **spec)

    def suggest(self, trial_id: str) -> dict | str | None:
        """The wrapped searcher's suggestion, or ``None`` while the limit is reached."""
        if not self._limit:
            return self.searcher.suggest(trial_id)
        if trial_id in self.live_trials:
            raise ValueError(f"trial id {trial_id!r} was already suggested a config; each "
                             "trial needs an id of its own")
        if len(self.live_trials) >= self.max_concurrent:
            return None
        suggestion = self.searcher.suggest(trial_id)
        if self.batch and _declined(suggestion) and self._ended and not self._n_unfinished:
            # the part of the batch that ended is all the searcher will get: pass it on,
            # and ask again (it may have waited for just that)
            self._pass_on_batch()
            if suggestion is None:
                suggestion = self.searcher.suggest(trial_id)
        if _declined(suggestion):
            self._unfilled = True
        else:
            self.live_trials.add(trial_id)
            self._n_unfinished += 1
            self._n_suggested += 1
            self._unfilled = self._num_samples is not None and \
                self._n_suggested >= self._num_samples
        return suggestion

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        self.searcher.on_trial_result(trial_id, result)

    def on_trial_complete(self, trial_id: str, result: dict | None = None,
                          error: bool = False) -> None:
        """Free the trial's place (in batch mode, once the whole batch ended).

        As in Ray, a trial the limiter did not suggest is not passed on.
        """
        if not self._limit:
            self.searcher.on_trial_complete(trial_id, result=result, error=error)
            return
        if trial_id not in self.live_trials or trial_id in self._ended:
            return
        self._n_unfinished -= 1
        if not self.batch:
            self.live_trials.discard(trial_id)
            self.searcher.on_trial_complete(trial_id, result=result, error=error)
            return
        self._ended[trial_id] = (result, error)
        # a batch is max_concurrent trials (Ray suggests them all ahead), passed on once
        # all have ended; one that cannot fill, once the trials it has ended
        if self._n_unfinished == 0 and (len(self._ended) >= self.max_concurrent or
                                        self._unfilled):
            self._pass_on_batch()

    def _pass_on_batch(self) -> None:
        """Pass the ended trials of the batch on to the wrapped searcher; a new batch begins."""
        ended, self._ended = self._ended, {}
        self._unfilled = False
        for ended_id, (ended_result, ended_error) in ended.items():
            self.live_trials.discard(ended_id)
            self.searcher.on_trial_complete(ended_id, result=ended_result, error=ended_error)

    def add_evaluated_point(self, parameters: dict, value: float, error: bool = False,
                            pruned: bool = False,
                            intermediate_values: list[float] | None = None) -> None:
        return self.searcher.add_evaluated_point(parameters, value, error, pruned,
                                                 intermediate_values)

    def get_state(self) -> dict:
        """The limiter's own state (not the wrapped searcher's), as a copy."""
        return copy.deepcopy({
            "max_concurrent": self.max_concurrent, "batch": self.batch,
            "live_trials": set(self.live_trials), "n_unfinished": self._n_unfinished,
            "ended": self._ended, "limit": self._limit, "unfilled": self._unfilled,
            "num_samples": self._num_samples, "n_suggested": self._n_suggested,
        })

    def set_state(self, state: dict) -> None:
        """Take back a state from :meth:`get_state`."""
        state = copy.deepcopy(state)
        self.max_concurrent = state["max_concurrent"]
        self.batch = state["batch"]
        self.live_trials = set(state["live_trials"])
        self._n_unfinished = state["n_unfinished"]
        self._ended = state["ended"]
        self._limit = state["limit"]
        self._unfilled = state.get("unfilled", False)
        self._num_samples = state.get("num_samples")
        self._n_suggested = state.get("n_suggested", 0)

    def _hears_results(self) -> bool:
        if type(self).on_trial_result is not ConcurrencyLimiter.on_trial_result:
            return True
        return self.searcher._hears_results()


def _declined(suggestion: Any) -> bool:
    """Whether a suggestion is ``None`` or ``Searcher.FINISHED`` rather than a config."""
    return suggestion is None or (isinstance(suggestion, str) and
                                  suggestion == Searcher.FINISHED)
