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
- As in Ray, the sweep saves the searcher's state with
  :meth:`Searcher.save_to_dir` (which calls the searcher's own ``save``)
  next to the experiment file, and ``Tuner.restore(path, trainable,
  search_alg=...)`` hands a fresh searcher of the same kind that state
  with :meth:`Searcher.restore_from_dir` (which calls its ``restore``).
  Ray unpickles the searcher from the experiment instead, so it needs no
  ``search_alg=``; fastasha keeps no code in the experiment file. A
  searcher whose ``save`` is not implemented is not saved (a warning says
  so), and ``Tuner.restore`` refuses its experiment (Ray logs the error and
  starts the experiment over).

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

import glob
import os
import uuid
import warnings
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
    #: The name of the file :meth:`save_to_dir` writes, ``{}`` being the
    #: session string (Ray's pattern).
    CKPT_FILE_TMPL = "searcher-state-{}.pkl"

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

        Parameters
        ----------
        parameters : dict
            The config that was evaluated.
        value : float
            The value of the searcher's metric it reached.
        error : bool, default=False
            Whether its evaluation failed.
        pruned : bool, default=False
            Whether it was stopped early (by a scheduler, say).
        intermediate_values : list of float, optional
            The metric's values along the way, where known.

        Raises
        ------
        NotImplementedError
            Unless a subclass supports it (as in Ray).
        """
        raise NotImplementedError(f"{type(self).__name__} does not support add_evaluated_point")

    def add_evaluated_trials(self, trials_or_analysis: Any, metric: str) -> None:
        """Tell the searcher about trials evaluated outside the sweep, as Ray does.

        Each trial goes to :meth:`add_evaluated_point` with its config and
        the value of ``metric`` in its last result; ``error`` is whether it
        ended ``ERROR``, ``pruned`` whether it ended ``TERMINATED`` without
        finishing (its last result has no true ``"done"``). Trials whose last
        result lacks ``metric`` are left out.

        Parameters
        ----------
        trials_or_analysis : Result, ResultGrid, ExperimentAnalysis or list
            A trial (a :class:`~fastasha.results.Result`, or a trial as
            callbacks get it), a list of them, an ``ExperimentAnalysis`` or
            a ``ResultGrid`` (a fastasha extension; Ray takes its
            ``Trial`` objects and ``ExperimentAnalysis``).
        metric : str
            The result key whose value is passed on; a nested one is named
            ``"outer/inner"``.

        Raises
        ------
        NotImplementedError
            If the searcher does not override :meth:`add_evaluated_point`.
        TypeError
            For anything else than the inputs above (Ray raises
            ``NotImplementedError`` here).

        Warns
        -----
        UserWarning
            When no trial that finished reported ``metric`` (a misspelt
            name, say), as in Ray.
        """
        from .._rows import flatten

        if type(self).add_evaluated_point is Searcher.add_evaluated_point:
            raise NotImplementedError(
                f"{type(self).__name__} does not support add_evaluated_point, which "
                "add_evaluated_trials passes each trial to")
        trials = _trials_of(trials_or_analysis)
        any_finished = False
        for trial in trials:
            status = getattr(trial, "status", None)
            last = flatten(dict(getattr(trial, "last_result", None) or {}))
            done = bool(last.get("done", False))
            if metric in last and status == "TERMINATED" and done:
                any_finished = True
            if metric not in last:
                continue
            self.add_evaluated_point(parameters=trial.config, value=last[metric],
                                     error=status == "ERROR",
                                     pruned=status == "TERMINATED" and not done,
                                     intermediate_values=None)
        if not any_finished:
            warnings.warn(
                f"no trial that finished reported the metric {metric!r}; check its name (a "
                "nested one is written 'outer/inner')", UserWarning, stacklevel=2)

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

    def save_to_dir(self, checkpoint_dir: str, session_str: str = "default") -> None:
        """Save the searcher's state in ``checkpoint_dir`` with :meth:`save`, as Ray does.

        :meth:`save` writes to a hidden temporary file in ``checkpoint_dir``,
        which then replaces ``CKPT_FILE_TMPL.format(session_str)`` there in
        one rename: a save that fails or is killed leaves the previous file
        as it was. A searcher whose :meth:`save` raises
        ``NotImplementedError`` is not saved, with a warning.

        The sweep calls this on the searcher a ``ConcurrencyLimiter`` wraps
        (not on the limiter): at the start of ``fit()``, every
        ``FASTASHA_SEARCHER_SAVE_S`` seconds at most while it runs, and at
        its end. fastasha passes a ``session_str`` that counts the saves
        (``"00000003"``), so that the newest file sorts last; Ray passes the
        session's start time.

        Parameters
        ----------
        checkpoint_dir : str
            The folder to save in: the experiment's, in a sweep.
        session_str : str, default="default"
            Names the file (see ``CKPT_FILE_TMPL``).

        Warns
        -----
        UserWarning
            When :meth:`save` is not implemented (nothing is saved then).
        """
        file_name = self.CKPT_FILE_TMPL.format(session_str)
        tmp_path = os.path.join(checkpoint_dir, f".{uuid.uuid4().hex}-tmp-{file_name}")
        try:
            self.save(tmp_path)
        except NotImplementedError:
            _remove_quietly(tmp_path)
            warnings.warn(
                f"{type(self).__name__} does not implement save(checkpoint_path), so its "
                "state is not saved and Tuner.restore cannot continue this sweep; implement "
                "save() and restore() to make it restorable", UserWarning, stacklevel=2)
            return
        except BaseException:
            _remove_quietly(tmp_path)
            raise
        if os.path.exists(tmp_path):
            os.replace(tmp_path, os.path.join(checkpoint_dir, file_name))

    def restore_from_dir(self, checkpoint_dir: str) -> None:
        """Take back the state :meth:`save_to_dir` saved in ``checkpoint_dir``, as Ray does.

        Calls :meth:`restore` with the newest file named after
        ``CKPT_FILE_TMPL`` there (the last in sort order). ``Tuner.restore``
        calls it on the fresh searcher passed as ``search_alg=`` (on the
        one a ``ConcurrencyLimiter`` wraps), after ``set_search_properties``.

        Parameters
        ----------
        checkpoint_dir : str
            The folder :meth:`save_to_dir` saved in (an experiment's).

        Raises
        ------
        RuntimeError
            If ``checkpoint_dir`` holds no such file (as in Ray).
        """
        pattern = os.path.join(glob.escape(checkpoint_dir), self.CKPT_FILE_TMPL.format("*"))
        found = glob.glob(pattern)
        if not found:
            raise RuntimeError(
                f"{type(self).__name__} found no saved state in {checkpoint_dir} (no file "
                f"named like {self.CKPT_FILE_TMPL.format('*')!r})")
        self.restore(max(found))

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


def _remove_quietly(path: str) -> None:
    try:
        os.remove(path)
    except OSError:
        pass


def _trials_of(trials_or_analysis: Any) -> list:
    """The trials ``add_evaluated_trials`` was given, as a list."""
    from ..analysis import ExperimentAnalysis
    from ..results import ResultGrid

    given = trials_or_analysis
    if isinstance(given, (list, tuple)):
        return list(given)
    if isinstance(given, ExperimentAnalysis):
        return given.trials
    if isinstance(given, ResultGrid):
        return list(given)
    if all(hasattr(given, name) for name in ("config", "last_result", "status")):
        return [given]
    raise TypeError(
        f"add_evaluated_trials takes a trial (a Result), a list of them, a ResultGrid or an "
        f"ExperimentAnalysis, got {given!r} of type {type(given).__name__}")
