"""Searcher: the base class of search algorithms that propose trial configs.

It has the interface and meaning of Ray Tune 2.x's ``ray.tune.search.Searcher``,
so that a custom searcher written for Ray runs after changing its imports
(``from fastasha.search import Searcher``, or ``fastasha.tune.search``). Pass
an instance as ``TuneConfig(search_alg=...)``. The searcher lives in the
driver process, and the sweep talks to it as Ray's does:

- ``set_search_properties(metric, mode, param_space, **spec)`` once, before
  the first trial (``spec`` holds ``stop``, ``time_budget_s`` and
  ``num_samples``);
- ``suggest(trial_id)`` whenever a trial could start. It returns a config
  dict (merged into the constants of ``param_space``, as in Ray), ``None``
  for "not now" (it is asked again later: at once after a trial ends,
  otherwise on a timer), or :attr:`Searcher.FINISHED` (no trial will
  follow; the sweep ends once the running ones do). At most
  ``num_samples`` trials are created in all (``-1``: no limit);
- ``on_trial_result(trial_id, result)`` for results (nested metrics
  flattened, ``"val/loss"``), and ``on_trial_complete(trial_id, result,
  error)`` once per trial when it ends.

Where fastasha differs from Ray:

- ``set_search_properties`` of the base class fills in ``metric`` and
  ``mode`` where the searcher has none, so that a subclass can read
  ``self.metric`` given only to ``TuneConfig``. (Ray's ignores them.) It
  still returns ``False``: the base class does not take its search space
  from ``config``.
- ``on_trial_complete`` of the base class does nothing (Ray's raises
  ``NotImplementedError``, which ends the sweep at the first trial that
  completes).
- A searcher that keeps answering ``None`` while no trial runs or waits
  cannot change its mind because of a trial; Ray then waits forever. Here
  the sweep ends with a ``RuntimeWarning`` once it has answered ``None``
  that way for ``FASTASHA_SEARCHER_WAIT_S`` seconds (default 10).
- After a ``None``, ``suggest`` may be asked again with the same trial id
  (Ray makes a new id for every call).
- The searcher's state is not saved with the experiment, so
  ``Tuner.restore`` refuses an experiment that used one; ``save`` and
  ``restore`` are for the user to call (Ray's ``save_to_dir``,
  ``restore_from_dir`` and ``add_evaluated_trials`` are not here).

Examples
--------
>>> from fastasha.search import Searcher
>>> class FromList(Searcher):
...     def __init__(self, configs, metric=None, mode=None):
...         super().__init__(metric=metric, mode=mode)
...         self.configs = list(configs)
...         self.scores = {}
...     def suggest(self, trial_id):
...         return self.configs.pop(0) if self.configs else Searcher.FINISHED
...     def on_trial_complete(self, trial_id, result=None, error=False):
...         if result and not error:
...             self.scores[trial_id] = result[self.metric]
>>> searcher = FromList([{"lr": 0.1}, {"lr": 0.01}])
>>> searcher.set_search_properties("loss", "min", {})
False
>>> searcher.metric, searcher.mode
('loss', 'min')
>>> searcher.suggest("t0"), searcher.suggest("t1"), searcher.suggest("t2")
({'lr': 0.1}, {'lr': 0.01}, 'FINISHED')
"""

from __future__ import annotations

from typing import Any

__all__ = ["Searcher"]

_MODES = ("min", "max")
_LIST_MODES = ("min", "max", "obs")


def _check_metric_mode(metric: Any, mode: Any) -> None:
    """Ray's rules for a searcher's metric and mode (one each, or lists of equal length)."""
    if metric is not None and not isinstance(metric, (str, list)):
        raise TypeError(f"metric must be a result key (str) or a list of them, got {metric!r}")
    if mode is None:
        return
    if isinstance(mode, str):
        if mode not in _MODES:
            raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
        if isinstance(metric, list):
            raise TypeError(f"metric and mode must both be strings or both lists, got "
                            f"metric={metric!r} and mode={mode!r}")
        return
    if not isinstance(mode, list):
        raise TypeError(f"mode must be 'min', 'max' or a list of them, got {mode!r}")
    bad = [m for m in mode if m not in _LIST_MODES]
    if bad:
        raise ValueError(f"each mode of a list must be 'min', 'max' or 'obs', got {bad[0]!r} "
                         f"in {mode!r}")
    if isinstance(metric, str):
        raise TypeError(f"metric and mode must both be strings or both lists, got "
                        f"metric={metric!r} and mode={mode!r}")
    if metric is not None and len(metric) != len(mode):
        raise ValueError(f"metric and mode must have the same length, got {len(metric)} "
                         f"metrics and {len(mode)} modes")


class Searcher:
    """Base class of search algorithms (Ray Tune's ``Searcher``).

    A subclass overrides :meth:`suggest` and usually :meth:`on_trial_complete`;
    one that defines ``__init__`` calls ``super().__init__(metric=..., mode=...)``.
    See the module docstring for when the sweep calls each method.

    Parameters
    ----------
    metric : str, list of str or None, default=None
        The result key to optimise; ``None`` takes the one given to
        ``TuneConfig`` (see :meth:`set_search_properties`).
    mode : {"min", "max"}, list or None, default=None
        Whether smaller or larger values of ``metric`` are better (a list,
        with ``"obs"`` allowed, for a list of metrics).

    Raises
    ------
    ValueError, TypeError
        For a mode other than ``"min"`` or ``"max"``, or a metric and a mode
        that do not match (one a list, the other not; lists of different
        lengths).
    """

    #: What :meth:`suggest` returns when no further trial will come.
    FINISHED = "FINISHED"

    def __init__(self, metric: str | list | None = None, mode: str | list | None = None) -> None:
        _check_metric_mode(metric, mode)
        self._metric = metric
        self._mode = mode

    @property
    def metric(self) -> str | list | None:
        """The result key this searcher optimises (``None`` until known)."""
        return getattr(self, "_metric", None)     # a subclass may skip super().__init__

    @property
    def mode(self) -> str | list | None:
        """``"min"`` or ``"max"`` (``None`` until known)."""
        return getattr(self, "_mode", None)

    def set_search_properties(self, metric: str | None, mode: str | None, config: dict,
                              **spec: Any) -> bool:
        """Hear the sweep's metric, mode and param space, before the first trial.

        The base class fills in ``metric`` and ``mode`` where the searcher
        has none of its own (it never replaces one), and ignores
        ``config``. A subclass that builds its search space from ``config``
        overrides this and returns ``True`` once it did.

        Parameters
        ----------
        metric : str or None
            ``TuneConfig.metric``.
        mode : {"min", "max"} or None
            ``TuneConfig.mode``.
        config : dict
            The ``param_space`` given to the Tuner.
        **spec
            ``stop``, ``time_budget_s`` and ``num_samples`` (as in Ray);
            more keys may come.

        Returns
        -------
        bool
            Whether the searcher took its search space from ``config``;
            always ``False`` here, as in Ray. When it is ``False`` and
            ``config`` holds domains or grid searches, the Tuner raises a
            ``ValueError``: the searcher would never sample them.
        """
        if self.metric is None and metric is not None:
            self._metric = metric
        if self.mode is None and mode is not None:
            self._mode = mode
        return False

    def suggest(self, trial_id: str) -> dict | str | None:
        """The config of the next trial.

        Parameters
        ----------
        trial_id : str
            The id the sweep gives the trial; later calls about it use it.
            After a ``None``, the next call may come with the same id.

        Returns
        -------
        dict, None or Searcher.FINISHED
            A config; ``None`` for "not now, ask again later"; or
            :attr:`FINISHED` when no further trial will come.
        """
        raise NotImplementedError(f"{type(self).__name__} must define suggest(trial_id)")

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        """A result of a running trial (its metric may be missing or NaN). Does nothing here.

        A searcher that overrides this sees every result, which makes every
        report of the objective wait for the driver (as a ``Stopper`` does).
        """

    def on_trial_complete(self, trial_id: str, result: dict | None = None,
                          error: bool = False) -> None:
        """A trial ended: ``result`` is its last result (``None`` if it had none or failed).

        ``error`` is ``True`` when the trial failed for good (after its
        retries). Does nothing here (Ray's base class raises
        ``NotImplementedError``).
        """

    def add_evaluated_point(self, parameters: dict, value: float, error: bool = False,
                            pruned: bool = False,
                            intermediate_values: list[float] | None = None) -> None:
        """Tell the searcher about a point evaluated outside the sweep.

        Raises
        ------
        NotImplementedError
            Unless a subclass supports it (as in Ray).
        """
        raise NotImplementedError(f"{type(self).__name__} does not support add_evaluated_point")

    def set_max_concurrency(self, max_concurrent: int) -> bool:
        """Whether the searcher limits its concurrent trials itself (to ``max_concurrent``).

        :class:`~fastasha.search.ConcurrencyLimiter` calls this on the searcher
        it wraps: ``False`` (the answer here) lets the limiter do it.
        """
        return False

    def save(self, checkpoint_path: str) -> None:
        """Save the searcher's state to the file ``checkpoint_path``.

        Raises
        ------
        NotImplementedError
            Unless a subclass implements it (as in Ray).
        """
        raise NotImplementedError(f"{type(self).__name__} does not implement save()")

    def restore(self, checkpoint_path: str) -> None:
        """Load the state :meth:`save` wrote to ``checkpoint_path``.

        Raises
        ------
        NotImplementedError
            Unless a subclass implements it (as in Ray).
        """
        raise NotImplementedError(f"{type(self).__name__} does not implement restore()")

    def get_state(self) -> dict:
        """The searcher's state as a dict.

        Raises
        ------
        NotImplementedError
            Unless a subclass implements it (as in Ray).
        """
        raise NotImplementedError(f"{type(self).__name__} does not implement get_state()")

    def set_state(self, state: dict) -> None:
        """Take back a state from :meth:`get_state`.

        Raises
        ------
        NotImplementedError
            Unless a subclass implements it (as in Ray).
        """
        raise NotImplementedError(f"{type(self).__name__} does not implement set_state()")

    def _hears_results(self) -> bool:
        """Whether results must reach :meth:`on_trial_result` (it is overridden)."""
        return type(self).on_trial_result is not Searcher.on_trial_result
