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
:mod:`fastasha.search.bayesopt` and ``NevergradSearch`` in
:mod:`fastasha.search.nevergrad`.

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
