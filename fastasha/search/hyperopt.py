"""HyperOptSearch: Ray Tune's searcher that asks HyperOpt's TPE for configs.

It has the arguments and behaviour of Ray Tune 2.x's
``ray.tune.search.hyperopt.HyperOptSearch``, so that a Ray script pairing
ASHA with HyperOpt's Tree-structured Parzen Estimator runs after changing
its imports (``from fastasha.search.hyperopt import HyperOptSearch``, or
``fastasha.tune.search.hyperopt``, or Ray 1.x's
``fastasha.tune.suggest.hyperopt``). HyperOpt is an optional dependency:
this module imports it only when a :class:`HyperOptSearch` is built, so
importing ``fastasha.search`` (or this module) never loads it. Install it
with ``pip install "hyperopt>=0.2.7"`` (or, in a clone of fastasha,
``pip install -e ".[hyperopt]"``).

The search space comes from ``param_space`` (as with any fastasha sweep) or
from ``space=``, and each fastasha domain becomes the HyperOpt expression
below, named by its key (``"model/lr"`` for a nested one). The random
draws of each expression are those of the fastasha domain (bounds, steps,
``int`` values, every value of a ``randint`` equally likely), and a value
TPE proposes is moved onto the nearest one the domain can give, so that a
trial never sees a value its domain could not give:

==========================  ==================================================
domain                      HyperOpt expression
==========================  ==================================================
``uniform(a, b)``           ``hp.uniform(name, a, b)``
``quniform(a, b, q)``       ``hp.quniform(name, a, b, q)``
``loguniform(a, b)``        ``hp.loguniform(name, log(a), log(b))``
``qloguniform(a, b, q)``    ``hp.qloguniform(name, log(a), log(b), q)``
``randn(m, s)``             ``hp.normal(name, m, s)``
``qrandn(m, s, q)``         ``hp.qnormal(name, m, s, q)``
``randint(a, b)``           ``int(hp.quniform(name, a - 0.5, b - 0.5, 1))``:
                            ``a`` to ``b - 1``, each as likely
``qrandint(a, b, q)``       ``int(hp.quniform(name, lo - q/2, hi + q/2, q))``,
                            ``lo`` and ``hi`` the smallest and largest
                            multiples of ``q`` in ``[a, b]`` (``b`` included)
``lograndint(a, b)``        ``int(hp.loguniform(name, log(a), log(b)))``
                            (``b`` excluded)
``qlograndint(a, b, q)``    ``int(hp.qloguniform(name, log(lo), log(hi), q))``
``choice(cs)``              ``hp.choice(name, cs)``; a category that is or
                            holds domains is searched too, its domains named
                            ``name/i`` (``i`` the category's index) and
                            ``name/i/key``
==========================  ==================================================

Refused, with a ``ValueError`` that says what to use instead, as Ray
refuses them: ``grid_search`` and ``sample_from``. A ``space=`` may also
hold HyperOpt's own expressions (``hp.uniform("width", 0, 20)``,
``hp.choice(...)`` with nested dicts, ...) and constants, as in Ray; they
are used as they are.

Where fastasha differs from Ray:

- ``randint``, ``qrandint`` and ``lograndint`` draw what fastasha's domains
  draw (above). Ray's conversions (``hp.uniformint(name, a, b - 1)``,
  ``int(hp.quniform(name, a, b - 1, q))``, ``int(hp.qloguniform(name,
  log(a), log(b - 1), 1))``) make the end values less likely, and a
  ``qrandint`` may never give ``b`` (``qrandint(0, 10, 2)`` stops at 8) or
  give a multiple of ``q`` below ``a`` (``qrandint(1, 10, 3)`` gives 0).
- A category of a ``choice`` that holds domains keeps its type: a dict
  stays a dict with its constants (Ray turns a category list of domains
  into a dict with int keys, and a dict without domains into ``{}``), and
  its domains are named after the category's index (``name/i/key``), so
  that two categories may use the same keys (Ray names them ``name/key``,
  and HyperOpt then refuses the space). A domain inside a list is refused
  (as by ``OptunaSearch``; use a dict).
- Only the keys on the way to a domain or a HyperOpt expression must be
  strings free of ``/``.
- ``points_to_evaluate`` may be nested dicts, as configs are; the value of
  a ``choice`` is the category itself (Ray's as well), also a category
  holding domains (a dict with their values), which Ray cannot take. Each
  point is checked against the space when the searcher is set up.
- A trial whose last result lacks the metric counts as the worst there
  is, as one without any result does in Ray too, and the first is warned
  of (Ray raises ``RuntimeError``, which ends the sweep). A trial whose
  metric is NaN or no number is left out of TPE's model, with a warning,
  as a failed one is (Ray gives NaN to HyperOpt, whose TPE then skips the
  trial, and fails on a value that is no number).
- When ``space=`` is given, the sweep's ``metric`` and ``mode`` fill in
  those the searcher lacks (Ray leaves the searcher without them, and it
  fails at its first suggestion); a ``param_space`` that holds domains as
  well is refused at once.
- :meth:`HyperOptSearch.save` keeps the running trials and the
  ``points_to_evaluate`` not run yet, so that ``Tuner.restore`` continues
  the sweep where it was (Ray's state has only HyperOpt's ``Trials`` and
  the random state).
- The sweep's results along the way do not reach the searcher (Ray's only
  notes their time), so the objective's reports do not wait for the driver.

Examples
--------
A conditional space: the depth is searched only for the forest.

>>> from fastasha import tune
>>> from fastasha.search.hyperopt import HyperOptSearch
>>> space = {"model": tune.choice([{"kind": "linear"},
...                                {"kind": "forest", "depth": tune.randint(2, 9)}])}
>>> searcher = HyperOptSearch(metric="loss", mode="min", random_state_seed=0,
...                           points_to_evaluate=[{"model": {"kind": "forest", "depth": 4}}])
>>> searcher.set_search_properties(None, None, space)
True
>>> searcher.suggest("t0")
{'model': {'kind': 'forest', 'depth': 4}}
>>> searcher.on_trial_complete("t0", {"loss": 0.5})
>>> searcher.suggest("t1")["model"]["kind"] in ("linear", "forest")
True
"""

from __future__ import annotations

import math
import numbers
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._external import (
    ExternalSearcher,
    check_points,
    holds_search,
    param_name,
    sample_from_error,
    split_point,
    walk_space,
)
from .sample import Categorical, Domain, Float, Function, Integer
from .variant_generator import _same

__all__ = ["HyperOptSearch"]

STATE_FORMAT = "fastasha.hyperopt_search/1"
# TPE gets a seed of its own for each suggestion, drawn below this (as in Ray)
SEED_BOUND = 2**31 - 1
SEARCHER = "HyperOptSearch"


def _identity(config: dict) -> dict:
    """The objective a HyperOpt ``Domain`` holds; never called (the sweep runs the trials)."""
    return config


# ------------------------------------------------------------------ the search space

@dataclass
class _Space:
    """A search space for HyperOpt: its entries by name, and the domains they came from.

    ``entries`` maps each parameter's name (``"outer/inner"``) to a HyperOpt
    expression (an ``Apply``) or, in a ``space=``, to a constant; ``domains``
    maps the label of each HyperOpt parameter converted from a fastasha
    domain to that domain.
    """

    entries: dict
    domains: dict = field(default_factory=dict)

    def expressions(self, apply: type) -> dict:
        """The entries that HyperOpt evaluates (not the constants)."""
        return {name: e for name, e in self.entries.items() if isinstance(e, apply)}

    def __bool__(self) -> bool:
        return bool(self.entries)


def _k_range(domain: Integer | Float) -> tuple[int, int]:
    """The smallest and largest ``k`` with ``k * q`` in the bounds of a quantised domain."""
    q = domain.q
    if isinstance(domain, Integer):
        return -(-domain.lower // q), domain.upper // q
    return round(domain.lower / q), round(domain.upper / q)


def _expression(domain: Domain, path: tuple, hpo: Any, domains: dict) -> Any:
    """The HyperOpt expression of a fastasha domain (module docstring), labelled by ``path``."""
    label = param_name(path, SEARCHER)
    hp, scope = hpo.hp, hpo.pyll.scope
    q = getattr(domain, "q", None)
    if isinstance(domain, Function):
        raise sample_from_error(label, "HyperOpt")
    if isinstance(domain, Categorical):
        return hp.choice(label, [_category(c, path + (str(i),), hpo, domains)
                                 for i, c in enumerate(domain.categories)])
    if isinstance(domain, Float):
        domains[label] = domain
        if domain.sampler == "normal":
            return hp.normal(label, domain.mean, domain.sd) if q is None else \
                hp.qnormal(label, domain.mean, domain.sd, q)
        if domain.sampler == "loguniform":
            low, high = math.log(domain.lower), math.log(domain.upper)
            return hp.loguniform(label, low, high) if q is None else \
                hp.qloguniform(label, low, high, q)
        return hp.uniform(label, domain.lower, domain.upper) if q is None else \
            hp.quniform(label, domain.lower, domain.upper, q)
    if isinstance(domain, Integer):
        domains[label] = domain
        if q is None and domain.sampler == "loguniform":
            raw = hp.loguniform(label, math.log(domain.lower), math.log(domain.upper))
        elif q is None:
            raw = hp.quniform(label, domain.lower - 0.5, domain.upper - 0.5, 1)
        else:
            k_lo, k_hi = _k_range(domain)
            if domain.sampler == "loguniform" and k_lo < k_hi:
                raw = hp.qloguniform(label, math.log(k_lo * q), math.log(k_hi * q), q)
            else:
                raw = hp.quniform(label, k_lo * q - q / 2, k_hi * q + q / 2, q)
        return scope.int(raw)
    raise TypeError(
        f"{label!r} is a {type(domain).__name__}, a domain HyperOptSearch does not know; use "
        "uniform, quniform, loguniform, randn, randint, qrandint, lograndint or choice")


def _category(category: Any, path: tuple, hpo: Any, domains: dict) -> Any:
    """One option of a ``choice``: its domains converted, its constants kept as they are."""
    apply = hpo.pyll.Apply
    if isinstance(category, apply):
        return category
    if isinstance(category, Domain):
        return _expression(category, path, hpo, domains)
    is_native = lambda obj: isinstance(obj, apply)  # noqa: E731
    if isinstance(category, dict) and holds_search(category, is_native):
        # built here, not by HyperOpt's as_apply, which would sort the keys
        args = []
        for key, value in category.items():
            param_name(path + (key,), SEARCHER)         # a str key without "/"
            args.append((key, hpo.pyll.as_apply(_category(value, path + (key,), hpo, domains))))
        return hpo.pyll.Apply("dict", [], args, len(args))
    if isinstance(category, (list, tuple)) and holds_search(category, is_native):
        raise ValueError(
            f"the search space has a domain inside the list at {list(path)!r}, which "
            f"{SEARCHER} cannot name; use a dict ({{'0': ..., '1': ...}}) instead")
    # a Literal, so that HyperOpt gives the category itself back (it would rebuild a
    # list as a tuple)
    return hpo.pyll.Literal(category)


def _to_space(space: Any, hpo: Any, given_as: str) -> _Space:
    """The :class:`_Space` of a space of domains, HyperOpt expressions (and constants)."""
    domains: dict = {}
    entries = walk_space(space, given_as, searcher=SEARCHER, library="HyperOpt",
                         space_takes="domains, HyperOpt expressions and constants",
                         convert=lambda domain, path: _expression(domain, path, hpo, domains),
                         is_native=lambda obj: isinstance(obj, hpo.pyll.Apply),
                         keep_constants=True)
    return _Space(entries, domains)


def _make_domain(space: _Space, hpo: Any) -> Any:
    """HyperOpt's ``Domain`` of the space's expressions; a ValueError for a label used twice."""
    try:
        return hpo.Domain(_identity, space.expressions(hpo.pyll.Apply))
    except hpo.exceptions.DuplicateLabel as err:
        raise ValueError(
            f"two parameters of the search space have the HyperOpt label {err.args[0]!r}; "
            "give each hp.* expression a label of its own (fastasha's domains are labelled "
            "by their keys, 'outer/inner')") from err


# ------------------------------------------------------------------- values

def _snap(domain: Float | Integer, raw: float) -> float:
    """The value HyperOpt drew for a converted domain, moved onto one the domain gives.

    TPE's truncated draws (and float rounding) may land on an excluded
    bound or just outside; this keeps the trial's config in its domain.
    """
    raw = float(raw)
    q = domain.q
    if isinstance(domain, Integer) and q is None:
        if domain.sampler == "loguniform":      # the value is int(raw): raw < upper
            return min(max(raw, domain.lower), math.nextafter(domain.upper, 0.0))
        return float(min(max(round(raw), domain.lower), domain.upper - 1))
    if domain.sampler == "normal":
        return raw if q is None else float(np.round(raw / q) * q)
    if q is None:
        return min(max(raw, domain.lower), math.nextafter(domain.upper, -math.inf))
    k_lo, k_hi = _k_range(domain)
    return float(min(max(int(np.round(raw / q)), k_lo), k_hi) * q)


def _raw_of(domain: Float | Integer, value: Any) -> float | None:
    """The value of HyperOpt's parameter that gives ``value``, or None if the domain cannot."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    raw = float(value)
    if not math.isfinite(raw):
        return None
    q = domain.q
    if isinstance(domain, Integer):
        if not raw.is_integer():
            return None
        if q is None:
            return raw if domain.lower <= value < domain.upper else None
        return raw if domain.lower <= value <= domain.upper and int(value) % q == 0 else None
    if q is not None and not math.isclose(raw / q, round(raw / q)):
        return None
    if domain.sampler == "normal":
        return raw
    return raw if domain.lower <= raw <= domain.upper else None


class _Unassignable(Exception):
    """An expression whose value cannot be traced back to its parameters."""


def _assign(node: Any, value: Any, vals: dict, domains: dict) -> bool:
    """Whether the expression ``node`` can give ``value``; its labels' values go to ``vals``.

    Follows the shapes HyperOpt's ``hp`` functions build: a parameter
    (``hyperopt_param``, under ``float`` or ``int``), ``hp.choice``
    (``switch``, the first option that fits), dicts, lists and literals.

    Raises
    ------
    _Unassignable
        For any other expression (``hp.uniform(...) * 2``, say).
    """
    name = node.name
    if name == "literal":
        return _same(node.obj, value)
    if name in ("float", "int") and len(node.pos_args) == 1 and not node.named_args:
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or \
                (name == "int" and not float(value).is_integer()):
            return False
        return _assign(node.pos_args[0], value, vals, domains)
    if name == "hyperopt_param":
        label = node.arg["label"].obj
        domain = domains.get(label)
        if domain is not None:
            raw = _raw_of(domain, value)
        else:       # HyperOpt's own parameter (or the index of a choice): any number
            raw = None if isinstance(value, bool) or not isinstance(value, numbers.Real) \
                else value
        if raw is None or (label in vals and vals[label] != raw):
            return False
        vals[label] = raw
        return True
    if name == "switch":
        index, *options = node.pos_args
        for i, option in enumerate(options):
            tried = dict(vals)
            if _assign(option, value, tried, domains) and _assign(index, i, tried, domains):
                vals.update(tried)
                return True
        return False
    if name == "dict" and not node.pos_args:
        args = dict(node.named_args)
        return isinstance(value, dict) and set(value) == set(args) and \
            all(_assign(args[key], value[key], vals, domains) for key in args)
    if name == "pos_args":
        return isinstance(value, (list, tuple)) and len(value) == len(node.pos_args) and \
            all(_assign(a, v, vals, domains) for a, v in zip(node.pos_args, value))
    raise _Unassignable(name)


# ------------------------------------------------------------------------ searcher

class HyperOptSearch(ExternalSearcher):
    """Suggest configs with HyperOpt's TPE, as Ray Tune's ``HyperOptSearch``.

    Each trial of the sweep is a trial of one HyperOpt ``Trials`` object:
    :meth:`suggest` asks ``hyperopt.tpe.suggest`` for the next config (its
    first ``n_initial_points`` draws are random, as ``hyperopt.rand``
    draws), and :meth:`on_trial_complete` gives HyperOpt the metric's last
    value as the trial's loss (negated for ``mode="max"``: HyperOpt
    minimises), a trial an ASHA scheduler stopped early too, as in Ray. A
    trial that failed (or whose metric is NaN) is marked failed in
    ``Trials``, which TPE leaves out; one that ended without the metric
    counts as the worst there is.

    The search space is the Tuner's ``param_space`` (its domains; its
    constants are merged into every config), or ``space=`` (see the module
    docstring for how each domain is converted, and what is refused).

    Parameters
    ----------
    space : dict or None, default=None
        The search space, when not taken from ``param_space``: a dict (it may
        be nested) of fastasha domains (``tune.uniform(...)``, ...), of
        HyperOpt expressions (``hp.uniform("width", 0, 20)``,
        ``hp.choice(...)``, ...) and of constants. ``param_space`` must then
        hold constants only.
    metric : str or None, default=None
        The result key to optimise; ``None`` takes ``TuneConfig.metric``.
    mode : {"min", "max"} or None, default=None
        Whether smaller or larger values are better; ``None`` takes
        ``TuneConfig.mode``. A mode without a metric optimises
        ``TuneConfig.metric``, or when there is none Ray's anonymous metric
        ``"_metric"``.
    points_to_evaluate : list of dict, optional
        Configs to run first, in this order, before TPE proposes any. Each
        gives a value to every parameter of the space (constants of
        ``space=`` may be left out), nested as the config is, and each value
        must be one its domain can give (for a ``choice``, one of its
        categories). They count among the ``n_initial_points``.
    n_initial_points : int or None, default=20
        How many trials are drawn at random before TPE models the results
        (HyperOpt's ``n_startup_jobs``; ``None``: HyperOpt's default, 20).
        Every trial suggested so far counts, running or finished, failed
        ones aside.
    random_state_seed : int or None, default=None
        Seeds the searcher, so that two sweeps with the same seed that hear
        the same results in the same order suggest the same configs.
    gamma : float or None, default=0.25
        TPE's share of the best trials that make its model of good configs
        (the best ``ceil(gamma * sqrt(n))`` of ``n``, at most 25);
        ``None``: HyperOpt's default, 0.25.

    Raises
    ------
    ImportError
        If hyperopt (0.2.7 or newer) is not installed; the message says how
        to install it.
    TypeError
        For a ``space`` that is not a dict, ``points_to_evaluate`` that is
        not a list of dicts, or an argument of the wrong type.
    ValueError
        For a bad mode, a list of metrics or modes (HyperOpt optimises one
        metric), a domain HyperOpt cannot search (see the module
        docstring), a ``space=`` without anything to search, a point of
        ``points_to_evaluate`` that does not fit the space, ``n_initial_points``
        or ``random_state_seed`` below 0, or ``gamma`` not greater than 0.

    Notes
    -----
    The sweep saves the searcher with :meth:`save` (a pickle of HyperOpt's
    ``Trials`` and the random state, as in Ray), and ``Tuner.restore(path,
    objective, search_alg=HyperOptSearch(...))`` continues it from that
    state: pass a searcher built with the same arguments. Pickled state is
    code: restore only experiments you trust.

    As in Ray, ``set_max_concurrency`` returns ``False``: wrap the searcher
    in a :class:`~fastasha.search.ConcurrencyLimiter` (or set
    ``TuneConfig(max_concurrent_trials=...)``) to cap its trials. TPE
    proposes each config from the trials finished so far (it counts the
    running ones as bad), so many trials at once make its suggestions
    closer to random.

    As in Ray (and in HyperOpt's own ``fmin``), TPE does not learn from a
    failed trial: it is no bad result to TPE, which may go on proposing
    configs where trials fail. An objective that reports a bad value of the
    metric there instead (``float("inf")`` for ``mode="min"``) steers TPE
    away.

    Examples
    --------
    A space of HyperOpt expressions given to the searcher, with its metric:

    >>> from hyperopt import hp
    >>> from fastasha.search.hyperopt import HyperOptSearch
    >>> space = {"x": hp.uniform("x", -1.0, 1.0), "act": hp.choice("act", ["relu", "tanh"])}
    >>> searcher = HyperOptSearch(space, metric="loss", mode="min", random_state_seed=0,
    ...                           points_to_evaluate=[{"x": 0.5, "act": "tanh"}])
    >>> searcher.suggest("t0")
    {'x': 0.5, 'act': 'tanh'}
    >>> searcher.on_trial_complete("t0", {"loss": 0.25})
    """

    _MODULE, _MIN_VERSION, _MODULE_ATTR = "hyperopt", (0, 2, 7), "_hpo"
    _STATE_ATTR, _STATE_FORMAT = "_trials", STATE_FORMAT

    def __init__(self, space: dict | None = None, metric: str | None = None,
                 mode: str | None = None, points_to_evaluate: list[dict] | None = None,
                 n_initial_points: int | None = 20, random_state_seed: int | None = None,
                 gamma: float | None = 0.25) -> None:
        hpo = self._import()
        super().__init__(metric=metric, mode=mode)
        self._check_metric_mode()
        if n_initial_points is not None:
            _check_count("n_initial_points", n_initial_points,
                         "; it is how many random trials come before TPE's (20 by default)")
        if random_state_seed is not None:
            _check_count("random_state_seed", random_state_seed, "")
        if gamma is not None:
            if isinstance(gamma, bool) or not isinstance(gamma, numbers.Real):
                raise TypeError(f"gamma must be a number or None, got {gamma!r} of type "
                                f"{type(gamma).__name__}")
            if not (math.isfinite(gamma) and gamma > 0):
                raise ValueError(f"gamma must be greater than 0, got {gamma!r}; it is the "
                                 "share of the best trials in TPE's model (0.25 by default)")
        self._points_to_evaluate = check_points(points_to_evaluate)
        self._hpo = hpo
        self._space: _Space | None = None
        if space is not None and not (isinstance(space, dict) and not space):
            self._space = _to_space(space, hpo, "space")
            if not self._space.expressions(hpo.pyll.Apply):
                raise ValueError(
                    "space= holds no domain and no HyperOpt expression, so there is nothing to "
                    "search; add domains (tune.uniform(...), hp.uniform(...), ...), or leave "
                    "search_alg out to run the constants once")
            _make_domain(self._space, hpo)          # refuses a label used twice, now
        self._n_initial_points = None if n_initial_points is None else int(n_initial_points)
        self._gamma = None if gamma is None else float(gamma)
        self._rng = np.random.default_rng(random_state_seed)
        self._domain: Any = None                # HyperOpt's Domain, rebuilt from the space
        self._trials: Any = None                # HyperOpt's Trials
        self._live: dict[str, dict] = {}        # running trial id -> its HyperOpt trial
        self._configs: dict[str, dict] = {}     # running trial id -> its params (flat)
        self._completed: set[str] = set()
        self._pending_points: list[dict] = []   # points_to_evaluate not run yet (labels)
        self._warned_missing = False
        if self._space is not None and self.mode is not None:
            self._setup()

    # ------------------------------------------------------------ HyperOpt's state

    def _to_space(self, space: Any, given_as: str) -> _Space:
        return _to_space(space, self._hpo, given_as)

    def _is_native(self, obj: Any) -> bool:
        return isinstance(obj, self._hpo.pyll.Apply)

    def _point_names(self) -> dict:
        return self._space.expressions(self._hpo.pyll.Apply)

    def _setup(self) -> None:
        """Start HyperOpt's trials once the space and the mode are known (Ray: at once)."""
        self._fill_metric()
        self._domain = _make_domain(self._space, self._hpo)
        self._trials = self._hpo.Trials()
        self._pending_points = [self._point_vals(p) for p in self._points_to_evaluate]

    def _point_vals(self, point: dict) -> dict:
        """The values of HyperOpt's parameters (by label) that give the config ``point``."""
        expressions = self._space.expressions(self._hpo.pyll.Apply)
        vals: dict = {}
        for name, value in split_point(point, expressions, self._constants).items():
            try:
                fits = _assign(expressions[name], value, vals, self._space.domains)
            except _Unassignable as err:
                raise ValueError(
                    f"points_to_evaluate cannot give {name!r} a value: its HyperOpt expression "
                    f"computes it ({err.args[0]}(...)), and only hp.* parameters, hp.choice and "
                    "the dicts and lists around them can be set; search a plain hp.* parameter "
                    "and compute the rest in the objective, or drop points_to_evaluate") from None
            if not fits:
                raise ValueError(f"the value {value!r} of {name!r} in the point {point!r} is not "
                                 "in its search space; fix the point or widen the domain")
        return vals

    def _new_trial(self, tid: int, vals: dict) -> dict:
        """A new HyperOpt trial document for the labels' values ``vals`` (a point)."""
        domain = self._domain
        misc = {"tid": tid, "cmd": domain.cmd, "workdir": domain.workdir,
                "idxs": {label: [tid] if label in vals else [] for label in domain.params},
                "vals": {label: [vals[label]] if label in vals else []
                         for label in domain.params}}
        return self._trials.new_trial_docs([tid], [None], [domain.new_result()], [misc])[0]

    # ------------------------------------------------------------ the sweep's calls

    def _ask(self, trial_id: str) -> dict:
        """The params of a new trial: the next point to evaluate, or TPE's proposal."""
        hpo = self._hpo
        tid = self._trials.new_trial_ids(1)[0]
        if self._pending_points:
            doc = self._new_trial(tid, self._pending_points.pop(0))
        else:
            options = {} if self._n_initial_points is None else \
                {"n_startup_jobs": self._n_initial_points}
            if self._gamma is not None:
                options["gamma"] = self._gamma
            seed = int(self._rng.integers(SEED_BOUND))
            doc = hpo.tpe.suggest([tid], self._domain, self._trials, seed, verbose=False,
                                  **options)[0]
            for label, values in doc["misc"]["vals"].items():
                if values and label in self._space.domains:
                    values[0] = _snap(self._space.domains[label], values[0])
        self._trials.insert_trial_docs([doc])
        self._trials.refresh()
        doc = self._trials.trials[-1]       # the stored copy
        if doc["tid"] != tid:
            raise RuntimeError(f"unreachable: HyperOpt stored trial {doc['tid']} last, not {tid}")
        vals = {label: values[0] for label, values in doc["misc"]["vals"].items() if values}
        found = hpo.space_eval(self._domain.expr, vals)
        self._live[trial_id] = doc
        return {name: found[name] if name in found else value
                for name, value in self._space.entries.items()}

    def on_trial_complete(self, trial_id: str, result: dict | None = None,
                          error: bool = False) -> None:
        """Give HyperOpt the end of trial ``trial_id``: its loss, or that it failed, as Ray does.

        The metric's value in ``result`` becomes the trial's loss (negated
        for ``mode="max"``). The trial is marked failed, which leaves it
        out of TPE's model, when ``error`` is true (as in Ray, even with a
        value), and, with a warning, when the metric is NaN or no number
        (TPE skips a NaN loss in Ray). A trial without the metric (or
        without any result) ends with no loss, which TPE counts as the
        worst there is, as Ray's does a trial that ends without a result;
        the first such trial is warned of (Ray raises when a result lacks
        the metric). A second call about the same trial, or one about a
        trial this searcher did not suggest, is ignored with a warning.
        """
        doc = self._end_of(trial_id, self._live)
        if doc is None:
            return
        base = self._hpo.base
        value = result.get(self.metric) if result else None
        if error:
            self._fail(doc, "the trial failed")
        elif value is None:
            if not self._warned_missing:
                self._warned_missing = True
                warnings.warn(
                    f"trial {trial_id} ended without the metric {self.metric!r} in its last "
                    "result; HyperOptSearch counts it, and any other trial without it, as the "
                    "worst there is (Ray raises here). Check the metric's name",
                    UserWarning, stacklevel=2)
            # no loss: TPE takes it as infinitely bad, as a trial Ray's searcher heard
            # nothing of
            doc["state"] = base.JOB_STATE_DONE
            doc["result"] = {"status": base.STATUS_FAIL}
        elif isinstance(value, bool) or not isinstance(value, numbers.Real) or \
                math.isnan(value):
            warnings.warn(f"trial {trial_id} ended with {value!r} as its metric "
                          f"{self.metric!r}, which TPE cannot rank; HyperOptSearch leaves it "
                          "out of TPE's model, as a failed trial", UserWarning, stacklevel=2)
            self._fail(doc, f"no usable value of {self.metric!r}")
        else:
            doc["state"] = base.JOB_STATE_DONE
            doc["result"] = {"loss": float(value) if self.mode == "min" else -float(value),
                             "status": base.STATUS_OK}
        self._trials.refresh()

    def _fail(self, doc: dict, why: str) -> None:
        """Mark a HyperOpt trial failed: TPE leaves it out (nor does it count it as random)."""
        doc["state"] = self._hpo.base.JOB_STATE_ERROR
        doc["misc"]["error"] = ("fastasha", why)

    # -------------------------------------------------------------------- state

    def _state(self) -> dict:
        """HyperOpt's trials, the space, the random state, the running trials, the points left."""
        return {
            "space": self._space, "trials": self._trials, "rng": self._rng, "live": self._live,
            "configs": self._configs, "completed": self._completed,
            "pending_points": self._pending_points, "warned_missing": self._warned_missing,
        }

    def _set_state(self, state: dict) -> None:
        self._space, self._trials, self._rng = state["space"], state["trials"], state["rng"]
        self._live, self._configs = state["live"], state["configs"]
        self._completed, self._pending_points = state["completed"], state["pending_points"]
        self._warned_missing = state["warned_missing"]
        self._domain = None if self._space is None else _make_domain(self._space, self._hpo)

    def __getstate__(self) -> dict:
        state = super().__getstate__()
        state.pop("_domain", None)      # rebuilt from the space
        return state

    def __setstate__(self, state: dict) -> None:
        super().__setstate__(state)
        self._domain = None if self._space is None else _make_domain(self._space, self._hpo)


def _check_count(name: str, value: Any, hint: str) -> None:
    """A TypeError unless ``value`` is an int, a ValueError if it is below 0."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int or None, got {value!r} of type "
                        f"{type(value).__name__}")
    if value < 0:
        raise ValueError(f"{name} must be 0 or more, got {value!r}{hint}")
