"""How the Tuner talks to a ``search_alg``: setup, suggestions and what it listens to.

A ``search_alg`` is a :class:`~fastasha.search.Searcher` or any object with
``suggest(trial_id)`` (the optional methods are looked up by name). The
Tuner calls :func:`tell_search_properties` once, before the first trial,
and turns ``suggest`` into the controller's ``suggest(trial_id) -> dict |
None`` (``StopIteration`` at the end) with :class:`Suggestions`.
"""

from __future__ import annotations

import copy
import inspect
from typing import Any

from .searcher import Searcher
from .variant_generator import compile_space, is_dynamic

__all__ = ["Suggestions", "call_set_search_properties", "hears_results",
           "tell_search_properties"]


def _takes_spec(fn: Any) -> bool:
    """Whether ``fn`` accepts ``**spec`` (Ray's newer ``set_search_properties`` signature)."""
    try:
        parameters = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)


def call_set_search_properties(fn: Any, metric: str | None, mode: str | None, config: dict,
                               **spec: Any) -> Any:
    """``fn(metric, mode, config, **spec)``, or without ``spec`` for Ray's older signature."""
    return fn(metric, mode, config, **spec) if _takes_spec(fn) else fn(metric, mode, config)


def tell_search_properties(searcher: Any, metric: str | None, mode: str | None,
                           param_space: dict, **spec: Any) -> bool:
    """Call ``searcher.set_search_properties`` as Ray does; whether it took ``param_space``.

    ``spec`` is passed on when the method accepts ``**spec`` (as Ray passes
    ``stop``, ``time_budget_s`` and ``num_samples``); an older signature
    ``(metric, mode, config)`` gets the three alone.

    Raises
    ------
    ValueError
        If the searcher did not take its space from ``param_space`` (no
        such method, or it returned ``False``) while ``param_space`` holds
        domains or grid searches: nothing would ever sample them. Ray
        raises here too.
    """
    fn = getattr(searcher, "set_search_properties", None)
    accepted = fn is not None and bool(call_set_search_properties(fn, metric, mode,
                                                                  param_space, **spec))
    if not accepted and param_space and is_dynamic(compile_space(param_space)):
        raise ValueError(
            f"param_space holds domains or grid searches, but the search_alg "
            f"{type(searcher).__name__} did not take its search space from it (its "
            "set_search_properties returned False), so nothing would sample them. Give the "
            "search space to the searcher instead, and keep only constants in param_space "
            "(they are merged into every suggested config)"
        )
    return accepted


class SearcherWrapper(Searcher):
    """The base of the searchers that wrap another one (``ConcurrencyLimiter``,
    ``Repeater``): the wrapped searcher is :attr:`searcher`, whose mode and saved state
    are the wrapper's (the wrapper's own state goes through ``get_state``).

    Raises
    ------
    TypeError
        For a ``searcher`` that is not a :class:`Searcher` instance, saying what to
        pass (``instead``: the wrapper's own advice).
    """

    def __init__(self, searcher: Any, instead: str) -> None:
        wrapper = type(self).__name__
        if isinstance(searcher, type) and issubclass(searcher, Searcher):
            raise TypeError(f"{wrapper} needs a searcher instance, got the class "
                            f"{searcher.__name__}; pass {searcher.__name__}(...)")
        if not isinstance(searcher, Searcher):
            raise TypeError(
                f"{wrapper} needs a fastasha.search.Searcher instance, got {searcher!r} of "
                f"type {type(searcher).__name__}; {instead}"
            )
        self.searcher = searcher
        super().__init__()

    @property
    def mode(self) -> str | list | None:
        return self.searcher.mode

    def save(self, checkpoint_path: str) -> None:
        """Save the wrapped searcher's state (as in Ray, not the wrapper's own).

        A sweep keeps the wrapper's own state (its ``get_state``) in the
        experiment file, as JSON, and gives it back with ``set_state`` on
        ``Tuner.restore``, as Ray keeps it with its experiment.
        """
        self.searcher.save(checkpoint_path)

    def restore(self, checkpoint_path: str) -> None:
        """Restore the wrapped searcher's state."""
        self.searcher.restore(checkpoint_path)


def hears_results(searcher: Any) -> bool:
    """Whether the searcher does something with ``on_trial_result``.

    For a :class:`~fastasha.search.Searcher`, whether it overrides the
    method (a :class:`~fastasha.search.ConcurrencyLimiter` asks the searcher
    it wraps); for another object, whether it has the method. Only then
    must every report of the objective reach the driver.
    """
    if isinstance(searcher, Searcher):
        return searcher._hears_results()
    return callable(getattr(searcher, "on_trial_result", None))


def _merge(base: dict, update: dict) -> dict:
    """``base`` with ``update`` laid over it, dict into dict (as Ray's ``merge_dicts``).

    New dicts are made along the merged paths; other values are shared, not
    copied (neither is changed afterwards).
    """
    merged = dict(base)
    for key, value in update.items():
        old = merged.get(key)
        merged[key] = _merge(old, value) if isinstance(old, dict) and isinstance(value, dict) \
            else value
    return merged


class Suggestions:
    """``suggest(trial_id) -> dict | None`` for the controller, from a ``search_alg``.

    A config the searcher suggests is laid over ``param_space`` (as in Ray:
    its constants reach every trial); :attr:`Searcher.FINISHED` raises
    ``StopIteration``; ``None`` passes through ("not now").

    Parameters
    ----------
    searcher : object
        The ``search_alg``.
    param_space : dict
        The Tuner's ``param_space``.
    """

    def __init__(self, searcher: Any, param_space: dict) -> None:
        self.searcher = searcher
        self.param_space = param_space

    def __call__(self, trial_id: str) -> dict | None:
        config = self.searcher.suggest(trial_id)
        if config is None:
            return None
        if isinstance(config, str) and config == Searcher.FINISHED:
            raise StopIteration
        if not isinstance(config, dict):
            raise TypeError(
                f"{type(self.searcher).__name__}.suggest({trial_id!r}) returned {config!r} of "
                f"type {type(config).__name__}; it must return a config dict, None (not now) "
                f"or Searcher.FINISHED ({Searcher.FINISHED!r}: no further trials)"
            )
        # a deep copy, as Ray's: no two trials (nor param_space) share a nested value
        return copy.deepcopy(_merge(self.param_space, config)) if self.param_space else config
