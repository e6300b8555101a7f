"""Repeater: run each config a searcher suggests several times, and tell it the mean.

It has the arguments and meaning of Ray Tune 2.x's ``ray.tune.search.Repeater``
(Ray 1.x: ``ray.tune.suggest.Repeater``): wrap a searcher in it and pass the
repeater as ``TuneConfig(search_alg=...)``. Each config the wrapped searcher
suggests runs as a group of ``repeat`` trials, told apart by
``config["__trial_index__"]`` (:data:`TRIAL_INDEX`), and the searcher hears
of the group once, when all of its trials have ended, with the mean of its
metric: the trials differ only in what the objective does with the index
(a seed, a fold), so that the searcher learns from a less noisy value.

Examples
--------
>>> from fastasha.search import Repeater, Searcher
>>> class Counting(Searcher):
...     def __init__(self):
...         super().__init__(metric="loss", mode="min")
...         self.n, self.heard = 0, []
...     def suggest(self, trial_id):
...         self.n += 1
...         return {"x": self.n}
...     def on_trial_complete(self, trial_id, result=None, error=False):
...         self.heard.append((trial_id, result, error))
>>> repeater = Repeater(Counting(), repeat=2)
>>> [repeater.suggest(t) for t in ("a", "b", "c")]
[{'x': 1, '__trial_index__': 0}, {'x': 1, '__trial_index__': 1}, {'x': 2, '__trial_index__': 0}]
>>> repeater.on_trial_complete("a", {"loss": 1.0})
>>> repeater.searcher.heard
[]
>>> repeater.on_trial_complete("b", {"loss": 2.0})
>>> repeater.searcher.heard
[('a', {'loss': 1.5}, False)]
"""

from __future__ import annotations

import copy
import math
import numbers
import warnings
from typing import Any

from .._validation import check_bool, check_int
from ._adapter import SearcherWrapper, call_set_search_properties
from .searcher import Searcher

__all__ = ["TRIAL_INDEX", "Repeater"]

#: The config key that holds a trial's index in its group (0 to ``repeat - 1``), Ray's name.
TRIAL_INDEX = "__trial_index__"


class Repeater(SearcherWrapper):
    """Run each suggested config ``repeat`` times; the searcher hears their mean (Ray's class).

    The first trial of a group gets its config from the wrapped searcher
    (which hears of that trial's id alone); the next ``repeat - 1`` trials
    get the same config without asking it. With ``set_index=True`` each
    trial's config holds its index in the group under ``"__trial_index__"``
    (:data:`TRIAL_INDEX`), ``0`` for the first. Once every trial of the group
    has ended, the wrapped searcher's ``on_trial_complete`` is called once,
    for the first trial's id, with ``{metric: mean}``: the mean of the
    metric over the trials of the group whose last result has it. A trial
    that failed (``error``), or whose last result lacks the metric or holds
    NaN, is left out of the mean, as Ray's ``nanmean`` leaves it out; where
    no trial has the metric, its mean is NaN. For a list of metrics, each is
    averaged on its own. Results during training (``on_trial_result``) are
    not passed on, as in Ray.

    ``TuneConfig(num_samples=...)`` counts trials, not configs: set it to a
    multiple of ``repeat`` (``num_samples=15`` with ``repeat=5`` runs 3
    configs 5 times each). The trials left over (``num_samples % repeat``)
    form a group that never fills, which the wrapped searcher never hears
    of; a warning says so, as Ray's log does. A scheduler that stops trials
    early (ASHA) cuts some trials of a group short and so biases the mean;
    as Ray says, run it without one.

    ``metric``, ``mode`` and the param space reach the wrapped searcher
    through :meth:`set_search_properties`; :attr:`metric` and :attr:`mode`
    are the wrapped searcher's. Wrapped in a
    :class:`~fastasha.search.ConcurrencyLimiter`, the trials of the groups
    are limited; wrapping one, the groups are (the limiter hears of a group
    when it has ended).

    Parameters
    ----------
    searcher : Searcher
        The search algorithm whose suggestions are repeated (an instance of
        a :class:`~fastasha.search.Searcher` subclass).
    repeat : int, default=1
        The trials of each group; at least 1.
    set_index : bool, default=True
        Put each trial's index in its group in its config, under
        ``"__trial_index__"`` (to seed the objective by, say).

    Raises
    ------
    TypeError
        If ``searcher`` is not a ``Searcher`` instance, ``repeat`` is not an
        integer or ``set_index`` not a bool (Ray checks none of them).
    ValueError
        If ``repeat`` is less than 1.

    Warns
    -----
    UserWarning
        When the sweep's ``num_samples`` is not a multiple of ``repeat``.

    Notes
    -----
    Where fastasha differs from Ray:

    - The wrapped searcher hears ``error=True`` only when every trial of
      the group failed, and then with no result, as it would hear of one
      failed trial; otherwise ``error=False`` with the mean. Ray passes on
      the ``error`` of whichever trial of the group ended last (so that
      the searcher may drop the mean of a group because its last trial
      failed, and keep it when an earlier one did), and ``{metric: nan}``.
    - ``set_search_properties`` gives the wrapped searcher ``num_samples``
      as the number of configs it will be asked for,
      ``ceil(num_samples / repeat)`` (Ray passes the sweep's own), so that a
      ``ConcurrencyLimiter(batch=True)`` inside knows its last batch.
    - ``Searcher.FINISHED`` from the wrapped searcher ends the sweep (Ray's
      Repeater fails on it); it is asked only once a group is full.
    - :meth:`on_trial_complete` ignores a trial the repeater did not
      suggest (Ray's logs an error and raises ``KeyError``) and a second
      end of a trial (Ray's counts the later one, and may tell the
      searcher of the group twice). A metric value that is no number is
      left out of the mean (Ray's ``nanmean`` raises on it).
    - Its state (the groups that have not ended) is kept in the experiment
      file as JSON, as a ``ConcurrencyLimiter``'s is, so that
      ``Tuner.restore(..., search_alg=Repeater(fresh, repeat=...))``
      continues the groups; a config that JSON cannot hold (a numpy array,
      an object) leaves the repeater to start afresh on a restore, with a
      warning. Ray pickles it. Groups that have ended are forgotten.

    Examples
    --------
    Three configs, each run by five trials that seed themselves with their
    index::

        def objective(config):
            rng = np.random.default_rng(config["__trial_index__"])
            ...

        tuner = tune.Tuner(objective, param_space={"lr": tune.loguniform(1e-4, 1e-1)},
                           tune_config=tune.TuneConfig(
                               search_alg=Repeater(OptunaSearch(), repeat=5),
                               metric="loss", mode="min", num_samples=15))
    """

    def __init__(self, searcher: Searcher, repeat: int = 1, set_index: bool = True) -> None:
        super().__init__(searcher, "wrap a searcher such as OptunaSearch(...) or a subclass "
                         "of fastasha.search.Searcher of your own")
        self.repeat = check_int("repeat", repeat, minimum=1,
                                hint="; it is the number of trials that run each config")
        self.set_index = check_bool("set_index", set_index)
        # the groups that have not ended, by the id of their first trial
        self._groups: dict[str, _Group] = {}
        self._group_of: dict[str, str] = {}     # trial id -> its group's first trial id
        self._open: str | None = None           # the group that is not full yet
        self._sweep_metric: str | list | None = None    # TuneConfig's, if the searcher has none

    @property
    def metric(self) -> str | list | None:
        metric = self.searcher.metric
        return metric if metric is not None else self._sweep_metric

    def set_search_properties(self, metric: str | None, mode: str | None, config: dict,
                              **spec: Any) -> bool:
        """Pass the sweep's metric, mode and param space on to the wrapped searcher.

        ``num_samples`` reaches it as the number of configs it will be
        asked for (see the Notes of the class); a ``num_samples`` that is
        not a multiple of ``repeat`` is warned of.
        """
        self._sweep_metric = metric
        num_samples = spec.get("num_samples")
        if isinstance(num_samples, numbers.Integral) and not isinstance(num_samples, bool) and \
                num_samples > 0:
            left_over = num_samples % self.repeat
            if left_over:
                lower = num_samples - left_over
                warnings.warn(
                    f"num_samples={num_samples} is not a multiple of Repeater(repeat="
                    f"{self.repeat}): num_samples counts trials, repeats included, so the last "
                    f"{left_over} trial(s) form a group that never fills, and the wrapped "
                    f"searcher never hears of it; set num_samples to "
                    f"{lower or self.repeat} or {lower + self.repeat}",
                    UserWarning, stacklevel=3)
            spec = {**spec, "num_samples": -(-num_samples // self.repeat)}
        return call_set_search_properties(self.searcher.set_search_properties, metric, mode,
                                          config, **spec)

    def suggest(self, trial_id: str) -> dict | str | None:
        """The next trial's config: the open group's, or a new one from the wrapped searcher.

        ``None`` and ``Searcher.FINISHED`` from the wrapped searcher are
        passed on (no group starts).

        Raises
        ------
        TypeError
            If the wrapped searcher suggests something other than a dict,
            ``None`` or ``Searcher.FINISHED``.
        ValueError
            If ``trial_id`` was suggested a config already.
        """
        if trial_id in self._group_of:
            raise ValueError(f"trial id {trial_id!r} was already suggested a config; each "
                             "trial needs an id of its own")
        if self._open is None:
            config = self.searcher.suggest(trial_id)
            if config is None or (isinstance(config, str) and config == Searcher.FINISHED):
                return config
            if not isinstance(config, dict):
                raise TypeError(
                    f"{type(self.searcher).__name__}.suggest({trial_id!r}) returned {config!r} "
                    f"of type {type(config).__name__}; it must return a config dict, None (not "
                    f"now) or Searcher.FINISHED ({Searcher.FINISHED!r})")
            group = _Group(trial_id, copy.deepcopy(config))
            self._groups[trial_id] = group
            self._open = trial_id
        else:
            group = self._groups[self._open]
            group.trials.append(trial_id)
        self._group_of[trial_id] = group.first
        if len(group.trials) >= self.repeat:
            self._open = None
        config = copy.deepcopy(group.config)     # no two trials share a nested value
        if self.set_index:
            config[TRIAL_INDEX] = len(group.trials) - 1
        return config

    def on_trial_complete(self, trial_id: str, result: dict | None = None,
                          error: bool = False) -> None:
        """Keep the trial's metric; once its group has ended, tell the wrapped searcher.

        The searcher hears ``on_trial_complete(first_trial_id, {metric:
        mean}, error=False)``, or ``(first_trial_id, None, error=True)``
        when every trial of the group failed (see the class docstring). A
        trial the repeater did not suggest, or whose end it heard already,
        is ignored.
        """
        first = self._group_of.get(trial_id)
        if first is None:
            return
        group = self._groups[first]
        if trial_id in group.ended:
            return
        group.ended[trial_id] = (_values(result, self.metric), bool(error))
        if len(group.ended) < self.repeat:
            return
        del self._groups[first]
        for member in group.trials:
            del self._group_of[member]
        mean, failed = group.outcome(self.metric)
        self.searcher.on_trial_complete(first, result=mean, error=failed)

    def get_state(self) -> dict:
        """The repeater's own state (its groups, not the wrapped searcher's), as a copy."""
        return copy.deepcopy({
            "repeat": self.repeat, "set_index": self.set_index, "open": self._open,
            "groups": [{"first": g.first, "config": g.config, "trials": g.trials,
                        "ended": {t: [values, error] for t, (values, error) in g.ended.items()}}
                       for g in self._groups.values()],
        })

    def set_state(self, state: dict) -> None:
        """Take back a state from :meth:`get_state`."""
        state = copy.deepcopy(state)
        self.repeat = state["repeat"]
        self.set_index = state["set_index"]
        self._open = state["open"]
        self._groups, self._group_of = {}, {}
        for stored in state["groups"]:
            group = _Group(stored["first"], stored["config"])
            group.trials = list(stored["trials"])
            group.ended = {t: (values, error) for t, (values, error) in stored["ended"].items()}
            self._groups[group.first] = group
            self._group_of.update(dict.fromkeys(group.trials, group.first))


class _Group:
    """The trials that run one suggested config: ids in order, and how those that ended did."""

    def __init__(self, first: str, config: dict) -> None:
        self.first = first
        self.config = config
        self.trials = [first]
        # trial id -> (the numeric, non-NaN metric values of its last result, error)
        self.ended: dict[str, tuple[dict, bool]] = {}

    def outcome(self, metric: str | list | None) -> tuple[dict | None, bool]:
        """``(result, error)`` the wrapped searcher hears once every trial has ended."""
        if all(error for _, error in self.ended.values()) or metric is None:
            return None, all(error for _, error in self.ended.values())
        result = {}
        for name in _names(metric):
            values = [v[name] for v, _ in self.ended.values() if name in v]
            result[name] = math.fsum(values) / len(values) if values else math.nan
        return result, False


def _names(metric: str | list | None) -> list:
    return [] if metric is None else list(metric) if isinstance(metric, list) else [metric]


def _values(result: dict | None, metric: str | list | None) -> dict:
    """The values of ``metric`` in ``result`` that count in a mean: numbers, not NaN."""
    values = {}
    for name in _names(metric):
        value = (result or {}).get(name)
        if isinstance(value, numbers.Real) and not isinstance(value, bool):
            value = float(value)
            if not math.isnan(value):
                values[name] = value
    return values
