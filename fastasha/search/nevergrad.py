"""NevergradSearch: Ray Tune's searcher that asks a nevergrad optimizer for configs.

It has the arguments and behaviour of Ray Tune 2.x's
``ray.tune.search.nevergrad.NevergradSearch``, so that a Ray script pairing
ASHA with one of nevergrad's derivative-free optimizers (``OnePlusOne``,
``NGOpt``, ``CMA``, ``DE``, ...) runs after changing its imports
(``from fastasha.search.nevergrad import NevergradSearch``, or
``fastasha.tune.search.nevergrad``, or Ray 1.x's
``fastasha.tune.suggest.nevergrad``). nevergrad is an optional dependency:
this module imports it only when a :class:`NevergradSearch` is built (or
:func:`import_nevergrad` is called), so importing ``fastasha.search`` (or
this module) never loads it. Install it with
``pip install "nevergrad>=1.0"`` (or, in a clone of fastasha,
``pip install -e ".[nevergrad]"``).

How a sweep goes, as in Ray: each suggestion is a candidate the optimizer
is asked for (``optimizer.ask()``), and the end of each trial tells the
optimizer the metric's value in the trial's last result
(``optimizer.tell(candidate, loss)``), negated for ``mode="max"``
(nevergrad minimises). A trial an ASHA scheduler stopped early counts with
its last value.

The search space comes from ``param_space`` (as with any fastasha sweep) or
from ``space=``, and becomes a ``ng.p.Dict`` with one nevergrad parameter
per domain, named by its key (``"model/lr"`` for a nested one). Each value
nevergrad proposes becomes a value of the fastasha domain, as its own
random draws would make it (bounds, steps, ``int`` values), so that a trial
never sees a value its domain could not give:

==========================  ==================================================
domain                      nevergrad parameter, and the config's value
==========================  ==================================================
``uniform(a, b)``           ``ng.p.Scalar(lower=a, upper=b)``, kept below ``b``
``quniform(a, b, q)``       ``ng.p.Scalar(lower=a, upper=b)``, rounded to a
                            multiple of ``q``
``loguniform(a, b)``        ``ng.p.Log(lower=a, upper=b)``, kept below ``b``
``qloguniform(a, b, q)``    ``ng.p.Log(lower=a, upper=b)``, rounded to a
                            multiple of ``q``
``randn(m, s)``             ``ng.p.Scalar(init=m).set_mutation(sigma=s)``:
                            unbounded, starting at ``m``, in steps of ``s``
``qrandn(m, s, q)``         the same, rounded to a multiple of ``q``
``randint(a, b)``           ``ng.p.Scalar(lower=a - 0.5, upper=b - 0.5)
                            .set_integer_casting()``: ``a`` to ``b - 1``,
                            each the nearest int of a range as wide as the
                            others
``qrandint(a, b, q)``       the same over ``k`` from ``lo/q`` to ``hi/q``,
                            times ``q`` (``lo`` and ``hi`` the smallest and
                            largest multiples of ``q`` in ``[a, b]``, ``b``
                            included)
``lograndint(a, b)``        ``ng.p.Log(lower=a, upper=b)``, rounded down
                            (``b`` excluded)
``qlograndint(a, b, q)``    ``ng.p.Log(lower=lo, upper=hi)``, rounded to a
                            multiple of ``q``
``choice(cs)``              ``ng.p.Choice(cs)``; a nevergrad parameter among
                            the categories is searched too
==========================  ==================================================

Refused, with a ``ValueError`` that says what to use instead, as Ray
refuses them: ``grid_search`` and ``sample_from``; and a ``choice`` whose
categories hold domains (see below). A space may also hold nevergrad's own
parameters (``ng.p.Scalar(lower=0, upper=20)``, ``ng.p.Choice(...)``, ...),
which are searched as they are, and ``space=`` may be a whole nevergrad
parametrization, as in Ray: an ``ng.p.Dict`` (its keys name the config's
values) or an ``ng.p.Instrumentation`` of keyword parameters.

Where fastasha differs from Ray:

- Quantised domains keep their step (Ray drops ``q``, with a warning, so
  that values are not multiples of it). Every integer of a ``randint`` or
  ``qrandint`` has a range of nevergrad's values as wide as the others'
  (Ray's ``ng.p.Scalar(lower=a, upper=b - 1)`` gives the end values half
  as much), and ``lograndint`` rounds down, as its random draws do (Ray
  rounds to the nearest).
- ``randn`` and ``qrandn`` start at the mean and step by the standard
  deviation (Ray makes ``ng.p.Scalar`` with infinite bounds of them, whose
  values are NaN).
- A value of ``uniform`` and ``loguniform`` stays below the upper bound,
  which nevergrad may propose itself.
- A ``choice`` whose categories hold domains is refused (Ray hands the
  domain objects to nevergrad as categories, and a trial gets such an
  object); use a nevergrad parametrization for a conditional space, such
  as ``ng.p.Choice([ng.p.Dict(kind="linear"), ng.p.Dict(kind="forest",
  depth=ng.p.Scalar(lower=2, upper=8).set_integer_casting())])``.
- Constants of ``space=`` are kept in the configs (Ray drops them); only
  the keys on the way to a domain must be strings free of ``/`` (Ray
  refuses ``/`` in any key).
- ``optimizer`` may also be the name of an optimizer in nevergrad's
  registry (``"OnePlusOne"``); Ray takes classes and instances only.
- ``points_to_evaluate`` may be nested dicts, as configs are, and each
  point is checked against the space when the searcher is set up; they
  work with an ``ng.p.Instrumentation`` and with an optimizer built on an
  array too (Ray hands each point to nevergrad as one value, which only a
  ``ng.p.Dict`` takes).
- A trial whose last result lacks the metric, or whose metric is no
  number, tells the optimizer nothing, with a warning (Ray raises, which
  ends the sweep). A NaN counts as the worst loss there is, as in Ray
  (where nevergrad clips it to 5e20), with a warning that says so.
- ``seed=`` (a fastasha extension) seeds the parametrization's random
  state, so that two sweeps with the same seed that hear the same results
  in the same order suggest the same configs. Ray has no seed: there, as
  here without one, a native space seeded by the user
  (``space.random_state.seed(0)``) repeats its sweep, and an unseeded one
  draws its state from numpy's global random state, as nevergrad does.
- When ``space=`` is given, the sweep's ``metric`` and ``mode`` fill in
  those the searcher lacks (Ray leaves the searcher without them, and it
  fails at its first suggestion); a ``param_space`` that holds domains as
  well is refused at once (Ray ignores them).
- nevergrad imports bayesian-optimization's ``UtilityFunction`` when it is
  imported, which bayesian-optimization 2.0 removed, and so fails to import
  next to bayesian-optimization 3.x (fastasha's ``bayesopt`` extra): see
  :func:`import_nevergrad`, which fastasha imports it with.

Examples
--------
>>> from fastasha import tune
>>> from fastasha.search.nevergrad import NevergradSearch
>>> searcher = NevergradSearch(optimizer="OnePlusOne", metric="loss", mode="min", seed=0,
...                            points_to_evaluate=[{"model": {"lr": 0.01, "layers": 2}}])
>>> searcher.set_search_properties(None, None, {"model": {"lr": tune.loguniform(1e-4, 1e-1),
...                                                       "layers": tune.randint(1, 5)}})
True
>>> searcher.suggest("t0")
{'model': {'lr': 0.01, 'layers': 2}}
>>> searcher.on_trial_complete("t0", {"loss": 0.5})
>>> config = searcher.suggest("t1")["model"]
>>> 1e-4 <= config["lr"] < 1e-1 and config["layers"] in (1, 2, 3, 4)
True
"""

from __future__ import annotations

import difflib
import inspect
import math
import numbers
import sys
import warnings
from dataclasses import dataclass, field
from importlib import import_module
from typing import Any

import numpy as np

from .._validation import check_int
from ._external import (
    ExternalSearcher,
    check_points,
    holds_search,
    import_library,
    param_name,
    sample_from_error,
    split_point,
    walk_space,
)
from .sample import Categorical, Domain, Float, Function, Integer

__all__ = ["NevergradSearch", "import_nevergrad"]

SEARCHER = "NevergradSearch"
STATE_FORMAT = "fastasha.nevergrad_search/1"
MIN_VERSION = (1, 0)
# the module whose version 2.0 or newer stops `import nevergrad` (nevergrad issue #1701)
CLASHING_MODULE = "bayes_opt"
# what the space's values are read from: a dict, an Instrumentation's keywords, or an
# array (an optimizer built by the user on its own parametrization) named by a list
DICT, KWARGS, NAMES = "dict", "kwargs", "names"
_ABSENT = object()


def import_nevergrad() -> Any:
    """The ``nevergrad`` module, imported, also where ``import nevergrad`` itself fails.

    nevergrad (1.0.12 and older) runs ``from bayes_opt import
    UtilityFunction`` as it is imported, and gets past a missing
    ``bayes_opt`` only: with bayesian-optimization 2.0 or newer installed
    (fastasha's ``bayesopt`` extra installs 3.x), which has no
    ``UtilityFunction``, ``import nevergrad`` raises ``ImportError``
    (nevergrad issue #1701). The import is then done once more with
    ``bayes_opt`` hidden, so that nevergrad loads as it does without
    bayesian-optimization: all of it but its ``BO`` optimizers, which need
    bayesian-optimization 1.x. An ``import nevergrad`` after this call gets
    that module. Call it from the driver's thread: ``bayes_opt`` is hidden
    from every thread while nevergrad is imported.

    Returns
    -------
    module
        ``nevergrad``.

    Raises
    ------
    ImportError
        If nevergrad (1.0 or newer) is not installed, or fails to import for
        another reason; the message says how to install it.

    Examples
    --------
    >>> from fastasha.search.nevergrad import import_nevergrad
    >>> ng = import_nevergrad()
    >>> ng.optimizers.OnePlusOne
    OnePlusOne
    """
    return import_library("nevergrad", SEARCHER, MIN_VERSION, load=_load_past_bayes_opt)


def _load_past_bayes_opt(module: str) -> Any:
    """``import_module(module)``, again with ``bayes_opt`` hidden if that failed on it."""
    try:
        return import_module(module)
    except ImportError as err:
        if err.name != CLASHING_MODULE:
            raise
    hidden = sys.modules.get(CLASHING_MODULE, _ABSENT)
    # None in sys.modules: `from bayes_opt import ...` fails as if it were not installed
    sys.modules[CLASHING_MODULE] = None  # type: ignore[assignment]
    try:
        return import_module(module)
    finally:
        if hidden is _ABSENT:
            sys.modules.pop(CLASHING_MODULE, None)
        else:
            sys.modules[CLASHING_MODULE] = hidden


# ------------------------------------------------------------------ the search space

def _k_bounds(domain: Float | Integer) -> tuple[int, int, int | float]:
    """``(k_lo, k_hi, step)``: the values of an integer or quantised domain are ``k * step``.

    ``k_lo <= k <= k_hi``; the step of an unquantised integer domain is 1
    (``upper`` excluded), that of a quantised one ``q`` (``upper``
    included).
    """
    q = domain.q
    if q is None:
        return domain.lower, domain.upper - 1, 1
    if isinstance(domain, Integer):
        return -(-domain.lower // q), domain.upper // q, q
    return round(domain.lower / q), round(domain.upper / q), q


def _on_log_scale(domain: Float | Integer) -> bool:
    """Whether the domain is searched with ``ng.p.Log``."""
    if domain.sampler != "loguniform":
        return False
    if isinstance(domain, Float) or domain.q is None:
        return True
    k_lo, k_hi, _ = _k_bounds(domain)
    return k_lo < k_hi          # a single multiple has no log range: an int-cast k instead


def _parameter(domain: Domain, path: tuple, ng: Any, domains: dict) -> Any:
    """The nevergrad parameter of a fastasha domain (module docstring); its name -> ``domains``."""
    name = param_name(path, SEARCHER)
    if isinstance(domain, Function):
        raise sample_from_error(name, "nevergrad")
    if isinstance(domain, Categorical):
        searched = [c for c in domain.categories if holds_search(c, _no_parameter)]
        if searched:
            raise ValueError(
                f"{name!r} is a choice() whose category {searched[0]!r} holds a domain, which "
                f"{SEARCHER} cannot search; make the inner domains parameters of their own, "
                "next to the choice, or give space= a nevergrad parametrization with "
                "ng.p.Choice([ng.p.Dict(...), ...])")
        return ng.p.Choice(list(domain.categories))
    if isinstance(domain, Float):
        domains[name] = domain
        if domain.sampler == "normal":
            return ng.p.Scalar(init=domain.mean).set_mutation(sigma=domain.sd)
        scale = ng.p.Log if domain.sampler == "loguniform" else ng.p.Scalar
        return scale(lower=domain.lower, upper=domain.upper)
    if isinstance(domain, Integer):
        domains[name] = domain
        k_lo, k_hi, step = _k_bounds(domain)
        if _on_log_scale(domain):
            return ng.p.Log(lower=k_lo * step, upper=k_hi * step) if domain.q is not None \
                else ng.p.Log(lower=domain.lower, upper=domain.upper)
        # k is the nearest int of nevergrad's value in [k - 0.5, k + 0.5]: each as wide
        return ng.p.Scalar(lower=k_lo - 0.5, upper=k_hi + 0.5).set_integer_casting()
    raise TypeError(
        f"{name!r} is a {type(domain).__name__}, a domain {SEARCHER} does not know; use "
        "uniform, quniform, loguniform, randn, randint, qrandint, lograndint or choice")


def _no_parameter(obj: Any) -> bool:
    """For :func:`holds_search` on a category: its nevergrad parameters are searched anyway."""
    return False


def _value(domain: Float | Integer, raw: Any) -> float | int:
    """The config's value of nevergrad's value ``raw`` of a converted domain.

    As the domain's own draws make a value of the sampler's: kept below an
    excluded upper bound, rounded to the nearest multiple of ``q`` inside
    the bounds, or rounded down for ``lograndint``.
    """
    q = domain.q
    if isinstance(domain, Float):
        x = float(raw)
        if domain.sampler == "normal":
            return x if q is None else float(np.round(x / q) * q)
        if q is None:
            return min(max(x, domain.lower), math.nextafter(domain.upper, -math.inf))
        k_lo, k_hi, _ = _k_bounds(domain)
        return float(min(max(np.round(x / q), k_lo), k_hi) * q)
    k_lo, k_hi, step = _k_bounds(domain)
    if not _on_log_scale(domain):
        k = raw                             # an int-cast k already
    elif q is None:
        k = math.floor(raw)                 # lograndint: rounded down
    else:
        k = np.round(raw / q)
    return int(min(max(k, k_lo), k_hi)) * step


def _from_point(domain: Float | Integer, value: Any) -> tuple[Any, float | int] | None:
    """``(raw, value)`` for a point's ``value`` of a converted domain; None if it cannot give it.

    ``raw`` is nevergrad's value that gives ``value``, and ``value`` the
    config's (an ``int`` for an integer domain, a ``float`` otherwise).
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or \
            not math.isfinite(value):
        return None
    x, q = float(value), domain.q
    if q is not None and not math.isclose(x / q, round(x / q)):
        return None
    if isinstance(domain, Float):
        inside = domain.sampler == "normal" or domain.lower <= x <= domain.upper
        return (x, x) if inside else None
    k_lo, k_hi, step = _k_bounds(domain)
    if not x.is_integer() or not k_lo * step <= x <= k_hi * step:
        return None
    n = int(x)
    return (float(n) if _on_log_scale(domain) else n // step), n


@dataclass
class _Space:
    """A search space for nevergrad: its parametrization, and how a candidate becomes params.

    ``names`` are the config's flat names in order (constants of
    ``space=`` too); ``kind`` says where a candidate's values are:
    ``DICT``, its value (a dict); ``KWARGS``, the keywords of an
    ``Instrumentation``; ``NAMES``, its first positional value, an array
    whose entries ``names`` name. ``domains`` maps the name of a parameter
    converted from a fastasha domain to that domain.
    """

    parametrization: Any
    kind: str
    names: list
    domains: dict = field(default_factory=dict)
    constants: dict = field(default_factory=dict)

    @property
    def searched(self) -> list:
        """The names nevergrad gives values to."""
        return [name for name in self.names if name not in self.constants]

    def params(self, candidate: Any) -> dict:
        """The flat params of a nevergrad candidate (converted domains' values made theirs)."""
        if self.kind == DICT:
            values = dict(candidate.value)
        elif self.kind == KWARGS:
            values = dict(candidate.kwargs)
        else:
            values = dict(zip(self.names, np.asarray(candidate.args[0]).ravel().tolist()))
        for name, domain in self.domains.items():
            values[name] = _value(domain, values[name])
        return {name: self.constants[name] if name in self.constants else values[name]
                for name in self.names}

    def suggestion(self, raw: dict) -> tuple[tuple, dict]:
        """The arguments of ``optimizer.suggest`` for nevergrad's values ``raw`` (by name)."""
        if self.kind == DICT:
            return (raw,), {}
        if self.kind == KWARGS:
            return (), raw
        return (np.array([raw[name] for name in self.names], dtype=float),), {}

    def __bool__(self) -> bool:
        """Whether there is something to search (nevergrad refuses a space without)."""
        return self.parametrization.dimension > 0


def _is_parameter(obj: Any, ng: Any) -> bool:
    return isinstance(obj, ng.p.Parameter)


def _native_space(parametrization: Any, ng: Any, where: str) -> _Space:
    """The :class:`_Space` of a whole nevergrad parametrization (``space=``, an optimizer's)."""
    if isinstance(parametrization, ng.p.Instrumentation):
        args, kwargs = parametrization.value
        if args:
            raise ValueError(
                f"{where} is an ng.p.Instrumentation with {len(args)} positional parameter(s), "
                f"which {SEARCHER} cannot name; give every parameter a keyword "
                "(ng.p.Instrumentation(width=..., height=...)) or use ng.p.Dict(...)")
        return _Space(parametrization, KWARGS, list(kwargs))
    if isinstance(parametrization, ng.p.Dict):
        return _Space(parametrization, DICT, list(parametrization.value))
    raise ValueError(
        f"{where} is a {type(parametrization).__name__}, whose values have no names; a config is "
        "a dict, so give an ng.p.Dict(name=..., ...) or an ng.p.Instrumentation(name=..., ...)"
        ", or pass an optimizer built on it with space=[one name per value] (as in Ray)")


def _to_space(space: Any, ng: Any, given_as: str) -> _Space:
    """The :class:`_Space` of a dict of domains, nevergrad parameters and constants.

    Or, given as ``space=``, of a whole nevergrad parametrization.
    """
    if given_as == "space" and _is_parameter(space, ng):
        return _native_space(space, ng, "space=")
    domains: dict = {}
    entries = walk_space(space, given_as, searcher=SEARCHER, library="nevergrad",
                         space_takes="domains, nevergrad parameters and constants",
                         convert=lambda domain, path: _parameter(domain, path, ng, domains),
                         is_native=lambda obj: _is_parameter(obj, ng), keep_constants=True)
    parameters = {name: e for name, e in entries.items() if _is_parameter(e, ng)}
    constants = {name: e for name, e in entries.items() if name not in parameters}
    return _Space(ng.p.Dict(**parameters), DICT, list(entries), domains, constants)


def _optimizer_kind(optimizer: Any, ng: Any) -> str:
    """``"factory"`` (builds an optimizer on a parametrization) or ``"instance"`` (one built)."""
    base = ng.optimizers.base
    if isinstance(optimizer, base.Optimizer):
        return "instance"
    if isinstance(optimizer, base.ConfiguredOptimizer) or (
            inspect.isclass(optimizer) and issubclass(optimizer, base.Optimizer)):
        return "factory"
    raise TypeError(
        f"optimizer must be a nevergrad optimizer class (ng.optimizers.NGOpt), a configured "
        f"optimizer (ng.optimizers.OnePlusOne), the name of one ('OnePlusOne'), or an optimizer "
        f"built on its own parametrization, got {optimizer!r} of type "
        f"{type(optimizer).__name__}")


def _from_registry(name: str, ng: Any) -> Any:
    """The optimizer that nevergrad's registry has under ``name``."""
    registry = ng.optimizers.registry
    if name in registry:
        return registry[name]
    close = difflib.get_close_matches(name, list(registry), n=5)
    raise ValueError(
        f"nevergrad has no optimizer named {name!r}"
        f"{'; did you mean ' + ', '.join(map(repr, close)) + '?' if close else ''} "
        "(the names are those of ng.optimizers.registry: 'OnePlusOne', 'NGOpt', 'CMA', 'DE', "
        "'PSO', 'RandomSearch', ...)")


# ------------------------------------------------------------------------ searcher

class NevergradSearch(ExternalSearcher):
    """Suggest configs with a nevergrad optimizer, as Ray Tune's ``NevergradSearch``.

    Each trial of the sweep is a candidate of one nevergrad optimizer:
    :meth:`suggest` asks the optimizer for the next one, and
    :meth:`on_trial_complete` tells it the metric's last value as the
    candidate's loss (negated for ``mode="max"``: nevergrad minimises), a
    trial an ASHA scheduler stopped early too, as in Ray. A trial that
    failed tells it nothing, as in Ray.

    The search space is the Tuner's ``param_space`` (its domains; its
    constants are merged into every config), or ``space=`` (see the module
    docstring for how each domain is converted, and what is refused), or
    the parametrization of an optimizer built already.

    Parameters
    ----------
    optimizer : nevergrad optimizer class, configured optimizer, str or optimizer
        The optimizer: a class (``ng.optimizers.NGOpt``,
        ``ng.optimizers.CMA``) or a configured optimizer
        (``ng.optimizers.OnePlusOne``, ``ng.families.ParametrizedOnePlusOne(
        mutation="cauchy")``), built on the search space with
        ``optimizer_kwargs``; or its name in nevergrad's registry
        (``"OnePlusOne"``, a fastasha extension); or an optimizer built
        already on its own parametrization, which is then the search space.
        Required, as in Ray.
    optimizer_kwargs : dict, optional
        The keyword arguments the optimizer is built with besides the
        parametrization (``{"budget": 100, "num_workers": 4}``); not with
        an optimizer built already.
    space : dict, nevergrad parametrization, list of str or None, default=None
        The search space, when not taken from ``param_space``: a dict (it
        may be nested) of fastasha domains, nevergrad parameters
        (``ng.p.Scalar(lower=0, upper=20)``, ...) and constants; or a whole
        nevergrad parametrization, an ``ng.p.Dict`` or an
        ``ng.p.Instrumentation`` of keyword parameters. With an optimizer
        built already: ``None`` (its parametrization is an ``ng.p.Dict`` or
        an ``ng.p.Instrumentation``) or the names of the values of its
        array, in order (as in Ray). ``param_space`` must then hold
        constants only.
    metric : str or None, default=None
        The result key whose value in a trial's last result is its loss;
        ``None``: the sweep's (``TuneConfig.metric``), or Ray's
        ``"_metric"`` where the searcher knows only a mode.
    mode : {"min", "max"} or None, default=None
        ``"max"`` negates the metric's value (nevergrad minimises);
        ``None``: the sweep's (``TuneConfig.mode``).
    points_to_evaluate : list of dict, optional
        Configs to run first, in this order, before the optimizer proposes
        any; the optimizer hears their results as it does its own. Each
        gives a value to every parameter of the space and to nothing else
        (not to constants of ``space=``), nested as the config is, and each
        value must be one its domain (or nevergrad parameter) can give.
    seed : int or None, default=None
        Seeds the parametrization's random state before the optimizer is
        built, so that two sweeps with the same seed that hear the same
        results in the same order suggest the same configs (a fastasha
        extension). Not with an optimizer built already: seed its
        parametrization before building it
        (``parametrization.random_state.seed(0)``).

    Raises
    ------
    ImportError
        If nevergrad (1.0 or newer) is not installed; the message says how
        to install it.
    TypeError
        For an ``optimizer`` or ``space`` of another type, ``optimizer_kwargs``
        that are not a dict (or that the optimizer does not take), a metric
        or mode that is a list, or ``points_to_evaluate`` that is not a list
        of dicts.
    ValueError
        For no ``optimizer``, an unknown optimizer name, a bad mode, a domain
        nevergrad cannot search (see the module docstring), a ``space=``
        without anything to search, ``space=`` or ``optimizer_kwargs`` or
        ``seed`` that do not go with an optimizer built already, or a point
        of ``points_to_evaluate`` that does not fit the space.

    Notes
    -----
    What :meth:`save` pickles is the optimizer itself (its random state
    too), the candidates of the running trials and the points not run
    yet, so that ``Tuner.restore(path, objective,
    search_alg=NevergradSearch(...))`` goes on with the same optimizer;
    the searcher given there must be built with the same arguments. A
    pickle runs code when it is loaded: restore experiments you trust only.

    ``set_max_concurrency`` declines (returns ``False``), as Ray's does: cap
    the trials with ``ConcurrencyLimiter(searcher, max_concurrent=n)`` or
    ``TuneConfig(max_concurrent_trials=n)``, and tell the optimizer with
    ``optimizer_kwargs={"num_workers": n}``. An optimizer such as
    ``NGOpt`` picks its algorithm from the budget: give it
    ``optimizer_kwargs={"budget": ...}`` (it fails without one on some
    spaces).

    Examples
    --------
    A nevergrad parametrization given to the searcher, with its metric:

    >>> from fastasha.search.nevergrad import NevergradSearch, import_nevergrad
    >>> ng = import_nevergrad()
    >>> space = ng.p.Dict(width=ng.p.Scalar(lower=0, upper=20),
    ...                   activation=ng.p.Choice(["relu", "tanh"]))
    >>> searcher = NevergradSearch(ng.optimizers.OnePlusOne, space=space, metric="loss",
    ...                            mode="min", points_to_evaluate=[{"width": 10.0,
    ...                                                             "activation": "relu"}])
    >>> searcher.suggest("t0")
    {'width': 10.0, 'activation': 'relu'}
    >>> searcher.on_trial_complete("t0", {"loss": 0.25})
    """

    _MODULE, _MIN_VERSION, _MODULE_ATTR = "nevergrad", MIN_VERSION, "_ng"
    _STATE_ATTR, _STATE_FORMAT = "_optimizer", STATE_FORMAT
    _DOMAINS = "tune.uniform(...), tune.choice([...]), ng.p.Scalar(...), ..."

    def __init__(self, optimizer: Any = None, optimizer_kwargs: dict | None = None,
                 space: dict | list | Any = None, metric: str | None = None,
                 mode: str | None = None, points_to_evaluate: list[dict] | None = None, *,
                 seed: int | None = None) -> None:
        ng = self._import()
        super().__init__(metric=metric, mode=mode)
        self._check_metric_mode()
        if optimizer is None:
            raise ValueError(
                f"{SEARCHER} needs an optimizer, as in Ray: a nevergrad optimizer such as "
                "ng.optimizers.OnePlusOne or ng.optimizers.NGOpt, its name ('OnePlusOne'), or an "
                "optimizer built on its own parametrization")
        if isinstance(optimizer, str):
            optimizer = _from_registry(optimizer, ng)
        kind = _optimizer_kind(optimizer, ng)
        if optimizer_kwargs is not None and not isinstance(optimizer_kwargs, dict):
            raise TypeError(f"optimizer_kwargs must be a dict such as {{'budget': 100}} or None, "
                            f"got {optimizer_kwargs!r} of type {type(optimizer_kwargs).__name__}")
        if optimizer_kwargs and holds_search(optimizer_kwargs, lambda o: _is_parameter(o, ng)):
            raise ValueError(
                "optimizer_kwargs holds domains: it is what the optimizer is built with "
                "({'budget': 100}), the second argument as in Ray; give the search space as "
                "space=... (NevergradSearch(optimizer, space={...}))")
        if seed is not None:
            seed = check_int("seed", seed, minimum=0)
            if seed >= 2**32:
                raise ValueError(f"seed must be less than 2**32 (numpy's RandomState), got {seed}")
        self._ng = ng
        self._points_to_evaluate = check_points(points_to_evaluate)
        self._optimizer_kwargs = dict(optimizer_kwargs or {})
        self._seed = seed
        self._factory: Any = None           # what builds the optimizer on the space
        self._built: Any = None             # or the optimizer given built already
        self._space: _Space | None = None
        if kind == "instance":
            self._built = optimizer
            self._space = self._instance_space(optimizer, space)
        else:
            self._factory = optimizer
            if isinstance(space, list):
                raise ValueError(
                    "space= is a list of names, which goes with an optimizer built already on "
                    "an array (as in Ray); give the optimizer class together with a dict of "
                    "domains or a nevergrad parametrization instead")
            if space is not None and not (isinstance(space, dict) and not space):
                self._space = _to_space(space, ng, "space")
                if not self._space:
                    raise ValueError(
                        "space= holds no domain and no nevergrad parameter, so there is nothing "
                        "to search; add domains (tune.uniform(...), ng.p.Scalar(...), ...), or "
                        "leave search_alg out to run the constants once")
        self._optimizer: Any = None             # the nevergrad optimizer, once set up
        self._candidates: dict[str, Any] = {}   # running trial id -> its candidate
        self._configs: dict[str, dict] = {}     # running trial id -> its params (flat)
        self._completed: set[str] = set()
        self._pending_points: list[tuple] = []  # points not run yet: (args, kwargs, params)
        self._warned_missing = False
        if self._space is not None and self.mode is not None:
            self._setup()

    def _import(self) -> Any:
        return import_nevergrad()      # past bayes_opt 2.0+, which stops `import nevergrad`

    def _instance_space(self, optimizer: Any, space: Any) -> _Space:
        """The :class:`_Space` of an optimizer built already (``space``: None, or names)."""
        if self._optimizer_kwargs:
            raise ValueError(
                "optimizer_kwargs go with an optimizer class or a configured optimizer, which "
                "NevergradSearch builds; an optimizer built already took its own (as in Ray)")
        if self._seed is not None:
            raise ValueError(
                "seed seeds the parametrization before the optimizer is built, and this one is "
                "built already: seed its parametrization before building it "
                "(parametrization.random_state.seed(0)), or pass the optimizer class")
        if space is None:
            return _native_space(optimizer.parametrization, self._ng,
                                 "the optimizer's parametrization")
        if not isinstance(space, list) or not all(isinstance(n, str) for n in space):
            raise TypeError(
                f"with an optimizer built already, space must be None or a list of names of "
                f"the values of its array (as in Ray), got {space!r}; give the search space "
                "with the optimizer class instead")
        if len(space) != optimizer.dimension or len(set(space)) != len(space):
            raise ValueError(
                f"space= names {len(space)} value(s) {space!r}, but the optimizer's "
                f"parametrization has {optimizer.dimension}; give one distinct name per value")
        return _Space(optimizer.parametrization, NAMES, list(space))

    # ------------------------------------------------------------ the optimizer

    def _to_space(self, space: Any, given_as: str) -> _Space:
        return _to_space(space, self._ng, given_as)

    def _is_native(self, obj: Any) -> bool:
        return _is_parameter(obj, self._ng)

    def _point_names(self) -> Any:
        return self._space.searched

    def _setup(self) -> None:
        """Build the optimizer once the space and the mode are known (Ray: as soon as it can)."""
        self._fill_metric()
        pending = [self._point(p) for p in self._points_to_evaluate]
        optimizer = self._built
        if optimizer is None:
            parametrization = self._space.parametrization
            if self._seed is not None:
                parametrization.random_state = np.random.RandomState(self._seed)
            try:
                optimizer = self._factory(parametrization, **self._optimizer_kwargs)
            except TypeError as err:
                raise TypeError(
                    f"the optimizer {self._factory!r} cannot be built with optimizer_kwargs="
                    f"{self._optimizer_kwargs!r} ({err}); nevergrad's optimizers take budget and "
                    "num_workers") from err
        self._pending_points = pending
        self._optimizer = optimizer

    def _point(self, point: dict) -> tuple[tuple, dict, dict]:
        """``(args, kwargs, params)``: ``optimizer.suggest``'s arguments for ``point``, its params.

        Raises
        ------
        ValueError
            If ``point`` does not give every parameter a value it can take.
        """
        space = self._space
        raw: dict = {}
        params: dict = dict(space.constants)
        for name, value in split_point(point, space.searched, self._constants).items():
            domain = space.domains.get(name)
            found = (value, value) if domain is None else _from_point(domain, value)
            if found is None:
                raise ValueError(f"the value {value!r} of {name!r} in the point {point!r} is not "
                                 "in its search space; fix the point or widen the domain")
            raw[name], params[name] = found
        args, kwargs = space.suggestion(raw)
        # nevergrad's own check, as optimizer.suggest(*args, **kwargs) will set the value
        parametrization = space.parametrization
        new_value = (args, kwargs) if isinstance(parametrization, self._ng.p.Instrumentation) \
            else args[0]
        try:
            parametrization.spawn_child(new_value=new_value)
        except (ValueError, TypeError) as err:
            raise ValueError(f"the point {point!r} does not fit the nevergrad parametrization "
                             f"({err}); fix the point or widen the parameter") from err
        return args, kwargs, {name: params[name] for name in space.names}

    # ------------------------------------------------------------ the sweep's calls

    def _ask(self, trial_id: str) -> dict:
        """The params of a new trial: the next point to evaluate, or the optimizer's candidate."""
        if self._pending_points:
            args, kwargs, params = self._pending_points.pop(0)
            self._optimizer.suggest(*args, **kwargs)        # the next ask gives it
            candidate = self._optimizer.ask()
        else:
            candidate = self._optimizer.ask()
            params = self._space.params(candidate)
        self._candidates[trial_id] = candidate
        return params

    def on_trial_complete(self, trial_id: str, result: dict | None = None,
                          error: bool = False) -> None:
        """Tell the optimizer the metric's value in the last result of trial ``trial_id``.

        The value is the candidate's loss, negated for ``mode="max"``. A
        trial that failed (``error``) tells it nothing, as in Ray. Nothing
        either (Ray raises), with a warning, for a result without the
        metric (warned of once) or with a value that is no number. NaN is
        told as the worst loss there is (``inf``, which nevergrad clips to
        5e20, as it clips Ray's NaN), with a warning. A second call about
        the same trial, or one about a trial this searcher did not suggest,
        is ignored with a warning.
        """
        candidate = self._end_of(trial_id, self._candidates)
        if candidate is None or error:
            return
        value = result.get(self.metric) if result else None
        if value is None:
            if not self._warned_missing:
                self._warned_missing = True
                warnings.warn(
                    f"trial {trial_id} ended without the metric {self.metric!r} in its last "
                    f"result; {SEARCHER} tells the optimizer nothing of it, nor of any other "
                    "trial without it (Ray raises here). Check the metric's name",
                    UserWarning, stacklevel=2)
            return
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            warnings.warn(f"trial {trial_id} ended with {value!r} as its metric {self.metric!r}, "
                          f"which is no number; {SEARCHER} tells the optimizer nothing of it",
                          UserWarning, stacklevel=2)
            return
        loss = float(value) if self.mode == "min" else -float(value)
        said = False
        if math.isnan(loss):
            warnings.warn(f"trial {trial_id} ended with nan as its metric {self.metric!r}; "
                          f"{SEARCHER} tells the optimizer the worst loss there is (as in Ray)",
                          UserWarning, stacklevel=2)
            loss, said = math.inf, True
        with warnings.catch_warnings():
            if said:        # nevergrad's own "clipping very high value" says less
                warnings.simplefilter("ignore", self._ng.errors.LossTooLargeWarning)
            self._optimizer.tell(candidate, loss)

    # -------------------------------------------------------------------- state

    def _state(self) -> dict:
        """The optimizer (its random state too), the running trials' candidates, the points left."""
        return {
            "space": self._space, "optimizer": self._optimizer, "candidates": self._candidates,
            "configs": self._configs, "completed": self._completed,
            "pending_points": self._pending_points, "warned_missing": self._warned_missing,
            "metric_defaulted": self._metric_defaulted,
        }

    def _set_state(self, state: dict) -> None:
        self._space, self._optimizer = state["space"], state["optimizer"]
        self._candidates, self._configs = state["candidates"], state["configs"]
        self._completed, self._pending_points = state["completed"], state["pending_points"]
        self._warned_missing = state["warned_missing"]
        self._metric_defaulted = state["metric_defaulted"]
