"""Search spaces and search algorithms: domains, grid search, variant generation,
searchers, and the JSON form of spaces and configs.

The functions have Ray Tune 2.x's names and meaning (``uniform``,
``loguniform``, ``randint``, ``choice``, ``grid_search``, ``sample_from``,
...). :class:`VariantGenerator` turns a param space into configs, as Ray
Tune's ``BasicVariantGenerator`` does, with one seeded
``numpy.random.Generator`` as its only source of randomness.
:func:`space_to_json`, :func:`space_from_json` and :func:`config_to_json`
give the JSON that the experiment store keeps. :class:`Searcher` and
:class:`ConcurrencyLimiter` are Ray Tune's base class for custom search
algorithms and its wrapper that caps their concurrent trials
(``TuneConfig(search_alg=...)``); :class:`Repeater` is Ray's wrapper that
runs each suggested config several times and tells the searcher the mean. :class:`BasicVariantGenerator`, passed
as a ``search_alg``, sets options of the built-in sampling (points to run
first, a concurrency cap, constant grid draws, the seed), as Ray's
does. Ray's searchers backed by other libraries are in their own modules,
each needing its library (importing this package imports none of them):
``OptunaSearch`` in :mod:`fastasha.search.optuna`, ``HyperOptSearch``
in :mod:`fastasha.search.hyperopt`, ``BayesOptSearch`` in
:mod:`fastasha.search.bayesopt`, ``NevergradSearch`` in
:mod:`fastasha.search.nevergrad` and ``TuneBOHB`` in
:mod:`fastasha.search.bohb`. :func:`create_searcher` builds one from
Ray Tune's name for it (``"optuna"``), as ``TuneConfig(search_alg="optuna")``
and ``tune.run(search_alg=...)`` do with a name.

Examples
--------
>>> from fastasha.search import VariantGenerator, choice, grid_search, loguniform
>>> space = {"lr": loguniform(1e-4, 1e-1), "act": choice(["relu", "tanh"]),
...          "layers": grid_search([1, 2])}
>>> gen = VariantGenerator(space, num_samples=3, seed=0)
>>> gen.total
6
>>> [c["layers"] for c in gen]
[1, 2, 1, 2, 1, 2]
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from .._named import create_by_name
from .basic_variant import BasicVariantGenerator
from .concurrency_limiter import ConcurrencyLimiter
from .repeater import Repeater
from .sample import (
    Categorical,
    Domain,
    Float,
    Function,
    Integer,
    choice,
    grid_search,
    lograndint,
    loguniform,
    qlograndint,
    qloguniform,
    qrandint,
    qrandn,
    quniform,
    randint,
    randn,
    sample_from,
    uniform,
)
from .searcher import Searcher
from .serialize import config_to_json, space_from_json, space_to_json
from .variant_generator import VariantGenerator

__all__ = [
    "BasicVariantGenerator",
    "Categorical",
    "ConcurrencyLimiter",
    "Domain",
    "Float",
    "Function",
    "Integer",
    "Repeater",
    "Searcher",
    "VariantGenerator",
    "choice",
    "config_to_json",
    "create_searcher",
    "grid_search",
    "lograndint",
    "loguniform",
    "qlograndint",
    "qloguniform",
    "qrandint",
    "qrandn",
    "quniform",
    "randint",
    "randn",
    "sample_from",
    "space_from_json",
    "space_to_json",
    "uniform",
]


def _external(module: str, name: str) -> Any:
    """A function that returns the class ``name`` of ``fastasha.search.<module>``, imported then.

    The module imports its library only when the class is built, so an
    uninstalled library gives the class's own ImportError, with how to
    install it.
    """
    return lambda: getattr(import_module(f"{__name__}.{module}"), name)


# Ray's names for the search algorithms fastasha has (ray.tune.search.create_searcher)
_NAMES = {
    "variant_generator": lambda: BasicVariantGenerator,
    "random": lambda: BasicVariantGenerator,
    "optuna": _external("optuna", "OptunaSearch"),
    "hyperopt": _external("hyperopt", "HyperOptSearch"),
    "bayesopt": _external("bayesopt", "BayesOptSearch"),
    "nevergrad": _external("nevergrad", "NevergradSearch"),
    "bohb": _external("bohb", "TuneBOHB"),
}
# Ray's names (in Ray 2.x, some in its earlier releases only) for those fastasha lacks
_MISSING = {
    "ax": "AxSearch (Ax)",
    "hebo": "HEBOSearch (HEBO)",
    "zoopt": "ZOOptSearch (ZOOpt)",
    "vizier": "VizierSearch (Vizier)",
    "skopt": "SkOptSearch (scikit-optimize)",
    "dragonfly": "DragonflySearch (Dragonfly)",
    "sigopt": "SigOptSearch (SigOpt)",
    "blendsearch": "BlendSearch (FLAML)",
    "cfo": "CFO (FLAML)",
}
_WRAPPERS = {"concurrency_limiter": "ConcurrencyLimiter",
             "concurrencylimiter": "ConcurrencyLimiter", "repeater": "Repeater"}


def create_searcher(search_alg: str, **kwargs: Any) -> Any:
    """The search algorithm Ray Tune names ``search_alg``, built with ``kwargs``.

    Ray Tune's ``ray.tune.search.create_searcher``, for the searchers
    fastasha has.

    Parameters
    ----------
    search_alg : str
        One of Ray's names, in any case: ``"variant_generator"`` or
        ``"random"`` (:class:`BasicVariantGenerator`), ``"optuna"``
        (``OptunaSearch``), ``"hyperopt"`` (``HyperOptSearch``),
        ``"bayesopt"`` (``BayesOptSearch``), ``"nevergrad"``
        (``NevergradSearch``, which needs an ``optimizer=``) or ``"bohb"``
        (``TuneBOHB``, with the scheduler ``"hb_bohb"``).
    **kwargs
        The searcher's arguments (``metric``, ``mode``,
        ``points_to_evaluate``, ...). As in Ray, those the chosen class does
        not take are dropped (with a warning here), so that one call can
        switch between searchers.

    Returns
    -------
    BasicVariantGenerator or Searcher

    Raises
    ------
    ValueError
        For Ray's names of searchers fastasha does not have (``"ax"``,
        ``"hebo"``, ``"zoopt"``, ...), for an unknown name (each
        message lists the names above), and for ``ConcurrencyLimiter`` and
        ``Repeater``, which wrap a searcher rather than being one.
    ImportError
        If the searcher's library is not installed (the message says how to
        install it).
    TypeError
        If ``search_alg`` is not a str.

    Examples
    --------
    >>> from fastasha.search import create_searcher
    >>> type(create_searcher("random")).__name__
    'BasicVariantGenerator'
    """
    wrapper = _WRAPPERS.get(search_alg.lower()) if isinstance(search_alg, str) else None
    if wrapper is not None:
        raise ValueError(
            f"{wrapper} wraps a searcher rather than being one, so it has no name: build the "
            f"searcher, then wrap it, e.g. {wrapper}(create_searcher('optuna'), "
            f"{'max_concurrent=4' if wrapper == 'ConcurrencyLimiter' else 'repeat=3'})")
    return create_by_name("searcher", search_alg, _NAMES, _MISSING, kwargs)
