"""TuneBOHB: Ray Tune's BOHB searcher, which asks HpBandSter's BOHB for configs.

It has the arguments and behaviour of Ray Tune 2.x's
``ray.tune.search.bohb.TuneBOHB``, so that a Ray script running BOHB
(Bayesian Optimization and HyperBand) runs after changing its imports
(``from fastasha.search.bohb import TuneBOHB``, or
``fastasha.tune.search.bohb``, or Ray 1.x's ``fastasha.tune.suggest.bohb``).
It goes with :class:`~fastasha.schedulers.HyperBandForBOHB`, which runs the
trials in HyperBand's brackets and tells the searcher at which budget (the
bracket's milestone of ``time_attr``) each result was reached: BOHB models
the results of each budget, and proposes configs from the model of the
largest budget that has enough of them.

HpBandSter and ConfigSpace are optional dependencies: this module imports
them only when a :class:`TuneBOHB` is built, so importing ``fastasha.search``
(or this module) never loads them. Install them with
``pip install "hpbandster>=0.7.4" "ConfigSpace>=1.0"`` (or, in a clone of
fastasha, ``pip install -e ".[bohb]"``). HpBandSter 0.7.4 (its last release)
works with ConfigSpace 1.x and numpy 2.

The search space comes from ``param_space`` (as with any fastasha sweep) or
from ``space=``: a ``ConfigSpace.ConfigurationSpace`` of your own (used as
it is, as in Ray), or a dict of fastasha domains. Each domain becomes the
ConfigSpace hyperparameter below, named by its key (``"model/lr"`` for a
nested one), and each value BOHB proposes is turned back into one the
domain gives (its type, its bounds, its steps), so that a trial never sees
a value its domain could not give:

==========================  ==================================================
domain                      ConfigSpace hyperparameter
==========================  ==================================================
``uniform(a, b)``           ``UniformFloatHyperparameter(a, b)`` (``b`` is
                            excluded)
``loguniform(a, b)``        ``UniformFloatHyperparameter(a, b, log=True)``
``randn(m, s)``             ``NormalFloatHyperparameter(m, s)``, between
                            ``m - 6 s`` and ``m + 6 s`` (ConfigSpace 1.x needs
                            bounds; a draw beyond them has odds of 2 in a
                            billion)
``randint(a, b)``           ``UniformIntegerHyperparameter(a, b - 1)``
``lograndint(a, b)``        ``UniformIntegerHyperparameter(a, b - 1, log=True)``
``quniform(a, b, q)``,      the multiples ``k * q`` in the bounds (``b``
``qloguniform(a, b, q)``,   included): ``k`` is a ``UniformIntegerHyperparameter``
``qrandint(a, b, q)``,      (``log=True`` for the log ones), and for ``qrandn``
``qlograndint(a, b, q)``,   a ``NormalIntegerHyperparameter(m / q, s / q)``
``qrandn(m, s, q)``
``choice(cs)``              ``CategoricalHyperparameter`` of the categories'
                            indices: a trial gets the category itself
==========================  ==================================================

A domain with one value only (``qrandint(3, 5, 4)``, ``choice(["a"])``) is
no hyperparameter: its trials all get that value. Refused, with a
``ValueError`` that says what to use instead, as Ray refuses them:
``grid_search`` and ``sample_from`` (and a ``choice`` whose categories hold
domains, a domain inside a list).

Where fastasha differs from Ray:

- ConfigSpace 1.x (the only one that installs with numpy 2) has no
  quantised hyperparameters, nor an unbounded normal one, which Ray's
  conversion asks for: the table above is fastasha's (the quantised domains
  give each multiple of ``q`` the same chance, as fastasha's own draws do;
  Ray's ConfigSpace 0.4 rounded a uniform draw). A ``choice`` gives its
  categories back as they are, numbers and tuples included (ConfigSpace
  would turn ``choice([1, 2.5])`` into floats).
- BOHB draws its random numbers from a generator of its own, seeded by
  ``seed``, so that two sweeps with the same seed that hear the same
  results in the same order suggest the same configs (Ray's seeds the
  space only: BOHB's model-based proposals draw from numpy's global
  generator, and changing it). ConfigSpace's and statsmodels' warnings
  about their deprecated API, which HpBandSter calls, are silenced.
- The sweep's results reach the searcher without Ray's ``hyperband_info``
  (fastasha gives the scheduler and the searcher copies of a result of
  their own): :class:`~fastasha.schedulers.HyperBandForBOHB` tells the
  searcher the budget of each result directly. A result that carries
  Ray's ``hyperband_info`` (from a scheduler of your own that adds it) is
  read as in Ray.
- ``points_to_evaluate`` may be nested dicts, as configs are, and each is
  checked against the space when the searcher is set up (Ray gives them to
  the trials unchecked, and BOHB fails on one that does not fit when it
  hears its result).
- A result whose metric is missing or no number is not given to BOHB (Ray
  raises ``KeyError``), and the first one at a budget is warned of; a NaN
  is, and BOHB counts it as the worst loss.
- When ``space=`` is given, the sweep's ``metric`` and ``mode`` fill in
  those the searcher lacks (Ray leaves the searcher without them, and it
  fails at its first suggestion); a ``param_space`` that holds domains as
  well is refused at once.
- :meth:`TuneBOHB.save` pickles the searcher's state (BOHB's models, the
  running and paused trials, the random state) with ``pickle``, not
  ``cloudpickle``.

Examples
--------
>>> from fastasha import tune
>>> from fastasha.search.bohb import TuneBOHB
>>> searcher = TuneBOHB(metric="loss", mode="min", seed=0,
...                     points_to_evaluate=[{"width": 10.0, "activation": "relu"}])
>>> searcher.set_search_properties(None, None, {"width": tune.uniform(0, 20),
...                                             "activation": tune.choice(["relu", "tanh"])})
True
>>> searcher.suggest("t0")
{'width': 10.0, 'activation': 'relu'}
>>> config = searcher.suggest("t1")
>>> 0 <= config["width"] < 20, config["activation"] in ("relu", "tanh")
(True, True)
"""

from __future__ import annotations

import copy
import math
import numbers
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import import_module, metadata
from types import SimpleNamespace
from typing import Any

import numpy as np

from ._external import (
    ExternalSearcher,
    check_points,
    flatten,
    import_library,
    param_name,
    sample_from_error,
    split_point,
    walk_space,
)
from .sample import Categorical, Domain, Float, Function, Integer
from .variant_generator import _same, compile_space, is_dynamic

__all__ = ["TuneBOHB"]

STATE_FORMAT = "fastasha.bohb_search/1"
SEARCHER = "TuneBOHB"
# a normal domain is searched between mean - NORMAL_SDS * sd and mean + NORMAL_SDS * sd
NORMAL_SDS = 6
# the arguments of HpBandSter's BOHB config generator that bohb_config may give
BOHB_OPTIONS = ("min_points_in_model", "top_n_percent", "num_samples", "random_fraction",
                "bandwidth_factor", "min_bandwidth")
HINT = ('pip install "hpbandster>=0.7.4" "ConfigSpace>=1.0" (or, in a clone of fastasha: '
        'pip install -e ".[bohb]")')


def _load_hpbandster(module: str) -> Any:
    """HpBandSter, with its version (the package has no ``__version__``)."""
    library = import_module(module)
    try:
        version = metadata.version("hpbandster")
    except metadata.PackageNotFoundError:      # not installed by pip: taken as it is
        version = "0.7.4"
    return SimpleNamespace(__version__=version, module=library)


def _import_libraries() -> SimpleNamespace:
    """ConfigSpace and HpBandSter's BOHB class, or an ImportError that says how to install them."""
    import_library("hpbandster", SEARCHER, (0, 7, 4), extra="bohb", package="hpbandster",
                   load=_load_hpbandster)
    cs = import_library("ConfigSpace", SEARCHER, (1, 0), extra="bohb", package="ConfigSpace")
    try:
        generators = import_module("hpbandster.optimizers.config_generators.bohb")
    except ImportError as err:
        raise ImportError(
            f"{SEARCHER} needs hpbandster, whose BOHB fails to import ({type(err).__name__}: "
            f"{err}); check that what it depends on (statsmodels, scipy) is installed: "
            f"{HINT}") from err
    return SimpleNamespace(cs=cs, BOHB=generators.BOHB)


# ------------------------------------------------------------------ the search space

def _k_range(domain: Float | Integer) -> tuple[int, int]:
    """The smallest and largest ``k`` with ``k * q`` in the bounds of a quantised domain."""
    q = domain.q
    if isinstance(domain, Integer):
        return -(-domain.lower // q), domain.upper // q
    return round(domain.lower / q), round(domain.upper / q)


def _normal_bounds(mean: float, sd: float) -> tuple[float, float]:
    return mean - NORMAL_SDS * sd, mean + NORMAL_SDS * sd


def _check_domain(domain: Domain, path: tuple) -> Domain:
    """``domain``, if BOHB can search it (module docstring); else a ValueError or TypeError."""
    name = param_name(path, SEARCHER)
    if isinstance(domain, Function):
        raise sample_from_error(name, "BOHB")
    if isinstance(domain, Categorical):
        for category in domain.categories:
            if is_dynamic(compile_space(category, path, in_choice=True)):
                raise ValueError(
                    f"{name!r} is a choice() whose category {category!r} holds a domain, which "
                    f"{SEARCHER} cannot search (BOHB draws a category as a whole); make the "
                    "inner domains parameters of their own, next to the choice")
        return domain
    if isinstance(domain, (Float, Integer)):
        return domain
    raise TypeError(
        f"{name!r} is a {type(domain).__name__}, a domain {SEARCHER} does not know; use "
        "uniform, quniform, loguniform, randn, randint, qrandint, lograndint or choice")


def _hyperparameter(name: str, domain: Domain, cs: Any) -> Any:
    """The ConfigSpace hyperparameter of a domain (module docstring); None for one value only."""
    if isinstance(domain, Categorical):
        n = len(domain.categories)
        return None if n == 1 else cs.CategoricalHyperparameter(name, choices=list(range(n)))
    q, log = domain.q, domain.sampler == "loguniform"
    if domain.sampler == "normal":
        low, high = _normal_bounds(domain.mean, domain.sd)
        if q is None:
            return cs.NormalFloatHyperparameter(name, mu=domain.mean, sigma=domain.sd,
                                                lower=low, upper=high)
        return cs.NormalIntegerHyperparameter(name, mu=domain.mean / q, sigma=domain.sd / q,
                                              lower=math.floor(low / q),
                                              upper=math.ceil(high / q))
    if q is not None:
        k_lo, k_hi = _k_range(domain)
        return None if k_lo == k_hi else \
            cs.UniformIntegerHyperparameter(name, k_lo, k_hi, log=log)
    if isinstance(domain, Integer):
        if domain.upper - 1 == domain.lower:
            return None
        return cs.UniformIntegerHyperparameter(name, domain.lower, domain.upper - 1, log=log)
    return cs.UniformFloatHyperparameter(name, domain.lower, domain.upper, log=log)


def _plain(value: Any) -> Any:
    """A numpy scalar as the Python number or str it holds; anything else as it is."""
    return value.item() if isinstance(value, np.generic) else value


def _decode(domain: Domain, value: Any) -> Any:
    """The value of ``domain`` that BOHB's ``value`` of its hyperparameter stands for."""
    if isinstance(domain, Categorical):
        return domain.categories[int(value)]
    q = domain.q
    if q is not None:
        k = int(round(value))
        return k * q if isinstance(domain, Integer) else float(k * q)
    if isinstance(domain, Integer):
        return int(min(max(round(value), domain.lower), domain.upper - 1))
    if domain.sampler == "normal":
        return float(value)
    # ConfigSpace's draws include the upper bound, which the domain excludes
    return min(max(float(value), domain.lower), math.nextafter(domain.upper, -math.inf))


def _encode(domain: Domain, value: Any) -> Any:
    """BOHB's value of the hyperparameter of ``domain`` for the config's ``value``.

    None when the domain cannot give ``value``.
    """
    if isinstance(domain, Categorical):
        for i, category in enumerate(domain.categories):
            if _same(category, value):
                return i
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or \
            not math.isfinite(value):
        return None
    q = domain.q
    if isinstance(domain, Integer) and not float(value).is_integer():
        return None
    if domain.sampler == "normal":
        low, high = _normal_bounds(domain.mean, domain.sd)
        if not low <= value <= high:
            return None
        if q is None:
            return float(value)
    elif q is None:
        if isinstance(domain, Integer):
            return int(value) if domain.lower <= value < domain.upper else None
        return float(value) if domain.lower <= value <= domain.upper else None
    ratio = value / q
    k = round(ratio)
    if not math.isclose(ratio, k, abs_tol=1e-9):
        return None
    if domain.sampler != "normal":
        k_lo, k_hi = _k_range(domain)
        if not k_lo <= k <= k_hi:
            return None
    return int(k)


@dataclass
class _Space:
    """A search space for BOHB: the ConfigSpace, and the domains its values stand for.

    ``cs`` is the ``ConfigurationSpace`` BOHB works on. ``domains`` maps
    each searched parameter's name (``"outer/inner"``) to the fastasha
    domain it came from, ``fixed`` each domain of one value only to that
    value; both are empty for a ConfigurationSpace given as ``space=``,
    whose values are the configs' own.
    """

    cs: Any
    domains: dict = field(default_factory=dict)
    fixed: dict = field(default_factory=dict)
    native: bool = False

    def names(self) -> list[str]:
        """Every parameter's name."""
        if self.native:
            return list(self.cs.keys())
        return [*self.domains, *self.fixed]

    def __bool__(self) -> bool:
        return bool(self.names())

    def decode(self, values: dict) -> dict:
        """The flat params of a trial, from BOHB's values of the hyperparameters."""
        if self.native:
            return {name: _plain(value) for name, value in values.items()}
        params = {name: _decode(self.domains[name], values[name]) for name in self.domains
                  if name in values}
        params.update(self.fixed)
        return params

    def encode(self, params: dict, point: dict) -> dict:
        """BOHB's values of the hyperparameters for the flat params of ``point``.

        Raises
        ------
        ValueError
            For a value its domain cannot give.
        """
        if self.native:
            try:
                return dict(_configuration(self.cs, params))
            except (TypeError, ValueError) as err:
                raise ValueError(f"the point {point!r} does not fit the ConfigurationSpace: "
                                 f"{err}; fix the point or the space") from None
        values = {}
        for name, value in params.items():
            if name in self.fixed:
                fits = _same(self.fixed[name], value)
            else:
                values[name] = _encode(self.domains[name], value)
                fits = values[name] is not None
            if not fits:
                raise ValueError(f"the value {value!r} of {name!r} in the point {point!r} is not "
                                 "in its search space; fix the point or widen the domain")
        return values


def _configuration(cs: Any, values: dict) -> Any:
    """``ConfigSpace.Configuration(cs, values)``, which checks the values against ``cs``."""
    from ConfigSpace import Configuration

    return Configuration(cs, values={k: _plain(v) for k, v in values.items()})


def _to_space(space: Any, libs: SimpleNamespace, given_as: str, seed: int | None) -> _Space:
    """The :class:`_Space` of a ConfigurationSpace (a copy), or of a dict of domains."""
    cs = libs.cs
    if isinstance(space, cs.ConfigurationSpace):
        if not list(space.keys()):
            raise ValueError(f"the ConfigurationSpace given to {SEARCHER} has no "
                             "hyperparameter, so there is nothing to search; add some")
        return _Space(copy.deepcopy(space), native=True)
    domains = walk_space(space, given_as, searcher=SEARCHER, library="BOHB",
                         space_takes="domains (or give a ConfigSpace.ConfigurationSpace)",
                         convert=_check_domain, is_native=_never)
    out = _Space(cs.ConfigurationSpace(seed=seed))
    for name, domain in domains.items():
        hyperparameter = _hyperparameter(name, domain, cs)
        if hyperparameter is None:
            out.fixed[name] = domain.categories[0] if isinstance(domain, Categorical) else \
                _decode(domain, _k_range(domain)[0] if domain.q is not None else domain.lower)
        else:
            out.cs.add(hyperparameter)
            out.domains[name] = domain
    if out.fixed and not out.domains:
        raise ValueError(
            f"every domain of the search space has one value only ({sorted(out.fixed)!r}), so "
            f"there is nothing for {SEARCHER} to search; make them constants and leave "
            "search_alg out, or widen a domain")
    return out


def _never(obj: Any) -> bool:
    """No object in a dict space is ConfigSpace's own (a whole ConfigurationSpace only)."""
    return False


class _Job:
    """What HpBandSter's BOHB reads of a finished run: its loss, budget and config."""

    def __init__(self, loss: float, budget: float, config: dict) -> None:
        self.result = {"loss": loss}
        self.kwargs = {"budget": budget, "config": dict(config)}
        self.exception = None


# ------------------------------------------------------------------------ searcher

class TuneBOHB(ExternalSearcher):
    """Suggest configs with BOHB (HpBandSter's), as Ray Tune's ``TuneBOHB``.

    Use it with :class:`~fastasha.schedulers.HyperBandForBOHB`: the
    scheduler pauses each trial at its bracket's milestones and tells this
    searcher the budget (the milestone) of the result it paused it at; the
    searcher gives BOHB that result, and BOHB models the results of each
    budget. :meth:`suggest` asks BOHB for a config: a random one (a third of
    the time, and until a budget has enough results), else the best of
    samples drawn around the good configs of the largest budget modelled.

    The search space is the Tuner's ``param_space`` (its domains; its
    constants are merged into every config), or ``space=`` (see the module
    docstring for how each domain is converted, and what is refused).

    Parameters
    ----------
    space : ConfigSpace.ConfigurationSpace, dict or None, default=None
        The search space, when not taken from ``param_space``: a
        ``ConfigurationSpace`` (used as it is, through a copy; its values are
        the configs' own) or a dict (it may be nested) of fastasha domains.
        ``param_space`` must then hold constants only.
    bohb_config : dict, optional
        Arguments of HpBandSter's BOHB config generator, as in Ray:
        ``min_points_in_model`` (the results a budget needs before it is
        modelled; the number of hyperparameters + 1 by default),
        ``top_n_percent`` (15: the share of good configs in the model),
        ``num_samples`` (64: the samples drawn per proposal),
        ``random_fraction`` (1/3: the share of random configs),
        ``bandwidth_factor`` (3) and ``min_bandwidth`` (0.001).
    metric : str or None, default=None
        The result key to optimise; ``None`` takes ``TuneConfig.metric``.
    mode : {"min", "max"} or None, default=None
        Whether smaller or larger values are better; ``None`` takes
        ``TuneConfig.mode``. A mode without a metric optimises
        ``TuneConfig.metric``, or when there is none Ray's anonymous metric
        ``"_metric"``.
    points_to_evaluate : list of dict, optional
        Configs to run first, in this order, before BOHB proposes any. Each
        gives a value to every parameter of the space, nested as the config
        is, and each value must be one its domain can give.
    seed : int, optional
        Seeds the space's random draws and BOHB's own, so that two sweeps
        with the same seed that hear the same results in the same order
        suggest the same configs. From 0 to 2**32 - 1.
    max_concurrent : int, default=0
        The most trials that run at once (paused ones do not count); 0 (or
        less) for no limit, as in Ray. A
        :class:`~fastasha.search.ConcurrencyLimiter` around the searcher
        sets it (``set_max_concurrency``) instead of limiting it itself, so
        that paused trials make room for new ones there too.

    Raises
    ------
    ImportError
        If hpbandster (0.7.4) or ConfigSpace (1.0 or newer) is not
        installed; the message says how to install them.
    TypeError
        For a ``space`` that is not a ConfigurationSpace or a dict,
        ``bohb_config`` that is not a dict, ``points_to_evaluate`` that is
        not a list of dicts, or a ``seed`` or ``max_concurrent`` that is no
        int.
    ValueError
        For a bad mode, a list of metrics or modes (BOHB optimises one
        metric), a domain BOHB cannot search (see the module docstring), an
        unknown key of ``bohb_config``, a point of ``points_to_evaluate``
        that does not fit the space, or a ``seed`` out of range.

    Notes
    -----
    The sweep saves the searcher with :meth:`save` (a pickle), and
    ``Tuner.restore(path, objective, search_alg=TuneBOHB(...),
    scheduler=HyperBandForBOHB(...))`` continues it from that state: pass a
    searcher built with the same arguments. Pickled state is code: restore
    only experiments you trust. Results the searcher heard after its last
    save (the sweep saves it every few seconds) are not heard again.

    :meth:`on_pause` and :meth:`on_unpause` are Ray's: the scheduler calls
    them when it pauses a trial and when it lets a paused one go on, so that
    ``max_concurrent`` counts the running trials only.

    Examples
    --------
    A ConfigurationSpace of your own, with its metric:

    >>> import ConfigSpace as CS
    >>> from fastasha.search.bohb import TuneBOHB
    >>> space = CS.ConfigurationSpace({"width": (0.0, 20.0), "activation": ["relu", "tanh"]})
    >>> searcher = TuneBOHB(space, metric="loss", mode="min", seed=0)
    >>> config = searcher.suggest("t0")
    >>> sorted(config), config["activation"] in ("relu", "tanh")
    (['activation', 'width'], True)
    """

    _MODULE, _MODULE_ATTR = "hpbandster", "_libs"
    _EXTRA, _PACKAGE = "bohb", "hpbandster"
    _STATE_ATTR, _STATE_FORMAT = "bohber", STATE_FORMAT

    def __init__(self, space: Any = None, bohb_config: dict | None = None,
                 metric: str | None = None, mode: str | None = None,
                 points_to_evaluate: list[dict] | None = None, seed: int | None = None,
                 max_concurrent: int = 0) -> None:
        libs = self._import()
        super().__init__(metric=metric, mode=mode)
        self._check_metric_mode()
        if bohb_config is not None:
            if not isinstance(bohb_config, dict):
                raise TypeError(f"bohb_config must be a dict of arguments of HpBandSter's BOHB "
                                f"or None, got {bohb_config!r} of type "
                                f"{type(bohb_config).__name__}")
            unknown = sorted(str(k) for k in bohb_config if k not in BOHB_OPTIONS)
            if unknown:
                raise ValueError(f"bohb_config has {', '.join(map(repr, unknown))}, which "
                                 f"HpBandSter's BOHB does not take; it takes "
                                 f"{', '.join(BOHB_OPTIONS)}")
        if seed is not None:
            if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
                raise TypeError(f"seed must be an int or None, got {seed!r} of type "
                                f"{type(seed).__name__}")
            if not 0 <= seed < 2**32:
                raise ValueError(f"seed must be from 0 to 2**32 - 1, got {seed!r}")
        _check_max_concurrent(max_concurrent)
        self._points_to_evaluate = check_points(points_to_evaluate)
        self._libs = libs
        self._seed = None if seed is None else int(seed)
        self._bohb_config = dict(bohb_config or {})
        self._max_concurrent = int(max_concurrent)
        self._space: _Space | None = None
        if space is not None and not (isinstance(space, dict) and not space):
            if not isinstance(space, (dict, libs.cs.ConfigurationSpace)):
                raise TypeError(
                    f"space must be a ConfigSpace.ConfigurationSpace, a dict of domains or "
                    f"None, got {space!r} of type {type(space).__name__}")
            self._space = self._to_space(space, "space")
            if not self._space:
                raise ValueError(
                    "space= holds no hyperparameter, so there is nothing to search; add some, "
                    "or leave search_alg out to run the constants once")
        #: HpBandSter's BOHB config generator (Ray's name); None until set up
        self.bohber: Any = None
        # BOHB's numpy random state (it draws from numpy's global generator)
        self._np_state = np.random.RandomState(self._seed).get_state()
        self._encoded: dict[str, dict] = {}      # running or paused trial id -> BOHB's values
        self._configs: dict[str, dict] = {}      # the same trials -> their params (flat)
        self._completed: set[str] = set()
        self._running: set[str] = set()          # suggested, not paused, not ended
        self._paused: set[str] = set()
        self._pending_points: list[tuple[dict, dict]] = []    # (BOHB's values, params)
        self._budgets: dict[str, tuple[Any, dict]] = {}       # from HyperBandForBOHB
        self._warned_no_budget = False
        self._warned_no_metric = False
        # restored, and the sweep's restore replaying the suggestions made after the save:
        # max_concurrent refuses none (see _set_state)
        self._replaying = False
        if self._space is not None and self.mode is not None:
            self._setup()

    # ------------------------------------------------------------------ BOHB's state

    def _import(self) -> SimpleNamespace:
        return _import_libraries()

    def _to_space(self, space: Any, given_as: str) -> _Space:
        return _to_space(space, self._libs, given_as, self._seed)

    def _is_native(self, obj: Any) -> bool:
        return isinstance(obj, self._libs.cs.ConfigurationSpace)

    def _point_names(self) -> list[str]:
        return self._space.names()

    def _setup(self) -> None:
        """Start BOHB's config generator once the space and the mode are known (Ray: at once)."""
        self._fill_metric()
        self._check_metric_mode()
        if self._seed is not None:
            self._space.cs.seed(self._seed)
        with self._library_calls():
            self.bohber = self._libs.BOHB(self._space.cs, **self._bohb_config)
        self._pending_points = [self._point(p) for p in self._points_to_evaluate]

    def _point(self, point: dict) -> tuple[dict, dict]:
        """BOHB's values and the params of a point of ``points_to_evaluate``."""
        params = split_point(flatten(point), self._space.names(), self._constants)
        return self._space.encode(params, point), params

    @contextmanager
    def _library_calls(self) -> Iterator[None]:
        """Run HpBandSter with this searcher's random state, and without its libraries' noise.

        HpBandSter draws from numpy's global generator: the searcher's own
        state takes its place for the call, and the global one is put back
        after it. The deprecation warnings of ConfigSpace 1.x and
        statsmodels about what HpBandSter calls, and numpy's about the
        infinite densities its models handle, are silenced.
        """
        saved = np.random.get_state()
        np.random.set_state(self._np_state)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                warnings.simplefilter("ignore", RuntimeWarning)
                warnings.filterwarnings("ignore", "After 0.17", FutureWarning)
                yield
        finally:
            self._np_state = np.random.get_state()
            np.random.set_state(saved)

    # ------------------------------------------------------------ the sweep's calls

    def set_max_concurrency(self, max_concurrent: int) -> bool:
        """Limit the running trials to ``max_concurrent`` (0: none), as Ray's; returns True.

        A :class:`~fastasha.search.ConcurrencyLimiter` calls this instead of
        limiting the searcher itself: paused trials do not count.
        """
        _check_max_concurrent(max_concurrent)
        self._max_concurrent = int(max_concurrent)
        return True

    def _ask(self, trial_id: str) -> dict | None:
        """The params of a new trial: the next point to evaluate, or BOHB's proposal.

        ``None`` (not now) while ``max_concurrent`` trials run.
        """
        if 0 < self._max_concurrent <= len(self._running) and not self._replaying:
            return None
        if self._pending_points:
            encoded, params = self._pending_points.pop(0)
        else:
            with self._library_calls():
                values, _ = self.bohber.get_config(None)
            encoded = {name: _plain(value) for name, value in values.items()}
            params = self._space.decode(encoded)
        self._encoded[trial_id] = encoded
        self._running.add(trial_id)
        return params

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        """Give BOHB a result reached at a bracket's milestone, with its budget, as Ray does.

        The budget comes from :class:`~fastasha.schedulers.HyperBandForBOHB`
        (or from Ray's ``result["hyperband_info"]["budget"]``, when the
        result carries it). Results between milestones are not given to BOHB.
        The loss is the metric's value, negated for ``mode="max"``; a result
        without the metric, or whose metric is no number, is skipped (the
        first such result at a budget with a warning). The
        first result of a sweep that has no budget information (another
        scheduler than HyperBandForBOHB) is warned of, as in Ray.
        """
        self._replaying = False
        if trial_id not in self._encoded:
            return
        if trial_id not in self._paused:
            self._running.add(trial_id)
        info = result.get("hyperband_info")
        heard = self._budgets.pop(trial_id, None)
        if not isinstance(info, dict) and heard is not None and \
                heard[0] == result.get("training_iteration"):
            info = heard[1]
        if not isinstance(info, dict):
            if not self._warned_no_budget:
                self._warned_no_budget = True
                warnings.warn(
                    f"{SEARCHER} heard a result without BOHB's budget: BOHB learns only from "
                    "the results HyperBandForBOHB pauses trials at. Use "
                    "fastasha.schedulers.HyperBandForBOHB as the scheduler",
                    UserWarning, stacklevel=2)
            return
        budget = info.get("budget")
        if budget is None:
            return
        value = result.get(self.metric)
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            if not self._warned_no_metric:
                self._warned_no_metric = True
                warnings.warn(
                    f"{SEARCHER} heard a result at BOHB's budget {budget} whose metric "
                    f"{self.metric!r} is missing or no number ({value!r}): BOHB learns nothing "
                    "from it, nor from any other such result (Ray raises here). Check the "
                    "metric's name", UserWarning, stacklevel=2)
            return
        loss = float(value) if self.mode == "min" else -float(value)
        with self._library_calls():
            self.bohber.new_result(_Job(loss, budget, self._encoded[trial_id]))

    def on_trial_complete(self, trial_id: str, result: dict | None = None,
                          error: bool = False) -> None:
        """Forget trial ``trial_id``: it ended (BOHB heard its results at the milestones).

        As in Ray, the last result is not given to BOHB. A second call about
        the same trial, or one about a trial this searcher did not suggest,
        is ignored with a warning.
        """
        if self._end_of(trial_id, self._encoded) is None:
            return
        self._running.discard(trial_id)
        self._paused.discard(trial_id)
        self._budgets.pop(trial_id, None)

    def on_pause(self, trial_id: str) -> None:
        """The scheduler paused trial ``trial_id``: it no longer counts as running (Ray's)."""
        self._replaying = False
        if trial_id in self._encoded:
            self._paused.add(trial_id)
            self._running.discard(trial_id)

    def on_unpause(self, trial_id: str) -> None:
        """The scheduler lets paused trial ``trial_id`` go on: it counts as running (Ray's)."""
        self._replaying = False
        if trial_id in self._encoded:
            self._paused.discard(trial_id)
            self._running.add(trial_id)

    def _hear_budget(self, trial_id: str, iteration: Any, info: dict) -> None:
        """What HyperBandForBOHB tells of the result of ``trial_id`` at ``iteration`` (its
        ``training_iteration``): ``info`` is Ray's ``hyperband_info``, with the budget at a
        milestone. :meth:`on_trial_result` of that result reads it."""
        if trial_id in self._encoded:
            self._budgets[trial_id] = (iteration, dict(info))

    # -------------------------------------------------------------------- state

    def _state(self) -> dict:
        """BOHB's generator, the space, the random state, the trials, the points left."""
        return {
            "space": self._space, "bohber": self.bohber, "np_state": self._np_state,
            "encoded": self._encoded, "configs": self._configs, "completed": self._completed,
            "running": self._running, "paused": self._paused,
            "pending_points": self._pending_points, "budgets": self._budgets,
            "max_concurrent": self._max_concurrent, "warned_no_budget": self._warned_no_budget,
        }

    def _set_state(self, state: dict) -> None:
        self._space, self.bohber = state["space"], state["bohber"]
        self._np_state = state["np_state"]
        self._encoded, self._configs = state["encoded"], state["configs"]
        self._completed, self._running = state["completed"], state["running"]
        self._paused, self._pending_points = state["paused"], state["pending_points"]
        self._budgets, self._max_concurrent = state["budgets"], state["max_concurrent"]
        self._warned_no_budget = state["warned_no_budget"]
        # Its running and paused trials are those of the save: Tuner.restore replays the
        # suggestions made after it, but not the pauses between them, so that these would
        # count as running and max_concurrent refuse the later ones, which it let through
        # (a trial the restored searcher does not suggest again never reaches it, and its
        # point of points_to_evaluate goes to another trial). Until the sweep saves the
        # restored state or calls on_pause, on_unpause or on_trial_result (HyperBandForBOHB
        # tells the paused trials when the restore gives it the trials), none is refused.
        self._replaying = True

    def save(self, checkpoint_path: str) -> None:
        """Pickle the searcher's state to a file (see the class Notes)."""
        self._replaying = False      # (the sweep saves the restored state once replayed)
        super().save(checkpoint_path)


def _check_max_concurrent(value: Any) -> None:
    """A TypeError unless ``value`` is an int (any: 0 or less means no limit, as in Ray)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"max_concurrent must be an int (0 for no limit), got {value!r} of "
                        f"type {type(value).__name__}")
