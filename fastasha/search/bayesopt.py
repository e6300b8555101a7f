"""BayesOptSearch: Ray Tune's searcher that asks a Gaussian process for configs.

It has the arguments and behaviour of Ray Tune 2.x's
``ray.tune.search.bayesopt.BayesOptSearch``, so that a Ray script pairing
ASHA with Bayesian optimisation runs after changing its imports
(``from fastasha.search.bayesopt import BayesOptSearch``, or
``fastasha.tune.search.bayesopt``; Ray 1.x's ``ray.tune.suggest.bayesopt``
is ``fastasha.tune.suggest.bayesopt``). The Gaussian process (GP) and its
acquisition function come from the package ``bayesian-optimization``
(``import bayes_opt``), an optional dependency: this module imports it only
when a :class:`BayesOptSearch` is built, so importing ``fastasha.search``
(or this module) never loads it. Install it with
``pip install "bayesian-optimization>=3"`` (versions 3.x are supported; or,
in a clone of fastasha, ``pip install -e ".[bayesopt]"``).

How a sweep goes, as in Ray: the first ``random_search_steps`` trials (the
``points_to_evaluate`` first, then random draws) run without waiting for
each other; once every one of them has ended, their results reach the GP
together, and from then on each suggestion maximises the acquisition
function (the upper confidence bound by default) of a GP fitted to every
result so far. A trial's result is the metric's value in its last result,
negated for ``mode="min"`` (the GP maximises).

BayesOpt searches continuous ranges only. The search space comes from
``param_space`` (as with any fastasha sweep) or from ``space=``, and each
parameter becomes the range Ray Tune makes of it:

==============================  ===============================================
parameter                       the range BayesOpt searches
==============================  ===============================================
``uniform(a, b)``               ``(a, b)``
``quniform(a, b, q)``           ``(a, b)``: BayesOpt has no steps, so ``q`` is
                                dropped, with a warning, and values are not
                                rounded (as in Ray)
``loguniform(a, b)``            ``(a, b)`` on a linear scale: BayesOpt has no
                                log scale, so it is dropped, with a warning (as
                                in Ray); search the exponent instead
                                (``uniform(log10(a), log10(b))``)
``qloguniform(a, b, q)``        ``(a, b)``, both dropped, with one warning
``(low, high)`` in ``space=``   ``(low, high)``, BayesOpt's own form (as in Ray)
==============================  ===============================================

Refused, with a ``ValueError`` that says what to use instead, as Ray
refuses them: ``randint``, ``qrandint``, ``lograndint`` and
``qlograndint`` (integers), ``choice``, ``grid_search`` and
``sample_from``; and ``randn`` / ``qrandn`` (see below). Nested dicts are
searched too: their parameters are named with ``/`` (``"model/lr"``)
inside the GP, and configs come back nested, as in Ray. A GP may propose
a range's upper bound itself.

Where fastasha differs from Ray:

- bayesian-optimization 3.x is used (Ray builds 1.x's ``UtilityFunction``,
  which 2.0 removed, so it needs 1.4.3 or older). ``utility_kwargs`` keep
  Ray's meaning: ``kind="ucb"`` is ``UpperConfidenceBound(kappa=kappa)``,
  ``"ei"`` is ``ExpectedImprovement(xi=xi)``, ``"poi"`` is
  ``ProbabilityOfImprovement(xi=xi)``. A key left out takes Ray's default
  (Ray passes the dict on as it is, and 1.x fails without all three);
  ``kappa_decay`` and ``kappa_decay_delay`` are accepted with a warning and
  have no effect, as in Ray (where only bayes_opt's own ``maximize`` loop
  decays kappa).
- ``randn`` and ``qrandn`` are refused: a normal distribution has no
  bounds (Ray warns, drops the sampler, and fails inside bayes_opt).
- A trial of the first phase that fails or reports no usable value counts
  as ended: the GP starts once all of them ended (Ray waits for a result
  from each, so one failed random trial stalls its sweep for good). While
  it waits, the searcher draws nothing (Ray draws a config at every
  suggestion and drops it, so that its configs depend on how often it is
  asked), and it never drops a point of ``points_to_evaluate``: with more
  points than ``random_search_steps``, the first phase is the points (Ray
  drops one at every suggestion it answers ``None`` meanwhile).
- A result without the metric, or with a value that is no number, gives
  the GP nothing (Ray raises ``KeyError``); NaN and infinite values give it
  nothing either, as in Ray.
- Configs are duplicates (``skip_duplicate``, ``patience``) when they agree
  to 1e-5 of each parameter's range (Ray: to 5 decimal places, so that in a
  range such as ``(1e-6, 1e-4)`` most configs are duplicates of each
  other). After skipping a duplicate of the GP's while trials run, the
  searcher proposes nothing until one of them ends, and so counts nothing
  towards ``patience`` meanwhile (Ray asks the GP again at every
  suggestion, so that one slow trial can exhaust ``patience`` and end the
  sweep). Such a skipped proposal leaves the GP's random state as it was,
  so that ``Tuner.restore`` of a killed sweep, which replays only the
  suggestions that made trials, gets the same configs again. A config the
  GP already has a result for is not registered
  again (Ray's bayes_opt raises ``NotUniqueError``, which ends the sweep,
  when ``skip_duplicate=False`` runs a config twice).
- ``points_to_evaluate`` may be nested dicts, as configs are, and each must
  give every parameter a number inside its range (Ray passes them to
  bayes_opt as given, where a nested or partial point fails).
- When ``space=`` is given, the sweep's ``metric`` and ``mode`` fill in those
  the searcher lacks (Ray leaves the searcher without them, and it fails at
  its first suggestion); a ``param_space`` that holds domains as well is
  refused at once.
- ``analysis=`` takes fastasha's ``ExperimentAnalysis`` (or a
  ``ResultGrid``): the GP gets each trial's best value of the metric, as
  in Ray, and a trial whose config does not give every parameter a number
  inside its range is left out, with a warning (Ray fails on it).
- ``patience=None`` never ends the sweep (Ray fails on ``None``).

Examples
--------
>>> from fastasha import tune
>>> from fastasha.search.bayesopt import BayesOptSearch
>>> searcher = BayesOptSearch(metric="loss", mode="min", random_search_steps=2)
>>> searcher.set_search_properties(None, None, {"model": {"lr": tune.uniform(0.0, 0.1)},
...                                             "batch": 32})
True
>>> config = searcher.suggest("t0")
>>> sorted(config), 0.0 <= config["model"]["lr"] <= 0.1
(['model'], True)
>>> searcher.on_trial_complete("t0", {"loss": 0.5})
"""

from __future__ import annotations

import math
import numbers
import warnings
from typing import Any

from .._rows import flatten
from .._validation import check_bool, check_choice, check_int, check_real
from ._external import (
    ExternalSearcher,
    check_points,
    normal_error,
    param_name,
    sample_from_error,
    split_point,
    unflatten,
    walk_space,
)
from ._external import flatten as flatten_config
from .sample import Categorical, Domain, Float, Function, Integer
from .searcher import Searcher

__all__ = ["BayesOptSearch"]

SEARCHER = "BayesOptSearch"
STATE_FORMAT = "fastasha.bayesopt_search/2"
# what save() keeps besides the metric and the mode: what the searcher learnt (its
# arguments come with the searcher restored)
STATE_ATTRIBUTES = ("_metric_defaulted", "_space", "optimizer", "_pending_points", "_configs",
                    "_completed", "_counts", "_n_first", "_first_ids", "_n_first_started",
                    "_n_first_ended", "_buffer", "_n_ended", "_stale_at")
# Ray's utility_kwargs defaults (those of bayes_opt 1.x's UtilityFunction)
DEFAULT_UTILITY = {"kind": "ucb", "kappa": 2.576, "xi": 0.0}
UTILITY_KINDS = ("ucb", "ei", "poi")
# bayes_opt 1.x's decay arguments, which Ray passes on and which have no effect there
IGNORED_UTILITY_KEYS = ("kappa_decay", "kappa_decay_delay")
# configs that agree to this many decimals of each parameter's range are duplicates
DUPLICATE_DIGITS = 5


# ------------------------------------------------------------------ the search space

def _convert_domain(domain: Domain, path: tuple) -> tuple[float, float]:
    """The range BayesOpt searches for a fastasha domain, with Ray's meaning (module docstring)."""
    name = param_name(path, SEARCHER)
    if isinstance(domain, Float):
        if domain.sampler == "normal":
            raise normal_error(name, domain, "BayesOpt searches bounded ranges and a normal "
                                             "distribution has no bounds")
        lower, upper = float(domain.lower), float(domain.upper)
        dropped = []
        if domain.sampler == "loguniform":
            dropped.append("its log scale (search the exponent instead: uniform("
                           f"{math.log10(lower):g}, {math.log10(upper):g}) and 10 ** x in the "
                           "objective)")
        if domain.q is not None:
            dropped.append(f"its step q={domain.q:g} (values are not rounded; round them in the "
                           "objective)")
        if dropped:
            kind = ("q" if domain.q is not None else "") + (
                "loguniform" if domain.sampler == "loguniform" else "uniform")
            warnings.warn(
                f"{name!r} is a {kind}() domain, but BayesOpt searches plain ranges: "
                f"BayesOptSearch searches uniform({lower:g}, {upper:g}) and drops "
                f"{' and '.join(dropped)}, as Ray does. Use uniform() to silence this",
                UserWarning, stacklevel=7)
        return lower, upper
    if isinstance(domain, Integer):
        raise ValueError(
            f"{name!r} is an integer domain (randint, qrandint, lograndint, qlograndint), but "
            "BayesOpt searches continuous ranges only; use uniform("
            f"{domain.lower}, {domain.upper}) and round the value in the objective, or "
            "OptunaSearch, which searches integers")
    if isinstance(domain, Categorical):
        raise ValueError(
            f"{name!r} is a choice() domain, but BayesOpt searches continuous ranges only; use "
            "OptunaSearch, which searches categories, or a range whose value the objective maps "
            f"to a category (uniform(0, {len(domain.categories)}), then int(x) as an index)")
    if isinstance(domain, Function):
        raise sample_from_error(name, "BayesOpt", use="uniform(lower, upper)")
    raise TypeError(
        f"{name!r} is a {type(domain).__name__}, a domain BayesOptSearch does not know; use "
        "uniform(lower, upper)")


def _is_pair(obj: Any) -> bool:
    """Whether ``obj`` is Ray's ``(low, high)``: two real numbers in a tuple or list."""
    return isinstance(obj, (tuple, list)) and len(obj) == 2 and all(
        isinstance(v, numbers.Real) and not isinstance(v, bool) for v in obj)


def _pair_bounds(pair: Any, path: tuple) -> tuple[float, float]:
    """The range of a ``(low, high)`` of ``space=``, checked."""
    low, high = float(pair[0]), float(pair[1])
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise ValueError(
            f"the range {tuple(pair)!r} of {param_name(path, SEARCHER)!r} in space= must be two "
            "finite numbers (low, high) with low < high")
    return low, high


def _to_bounds(space: Any, given_as: str) -> dict[str, tuple[float, float]]:
    """The flat ``{name: (low, high)}`` of a space of domains (and, in ``space=``, pairs)."""
    return walk_space(space, given_as, searcher=SEARCHER, library="BayesOpt",
                      space_takes="ranges: (low, high) pairs of numbers and uniform(low, high) "
                                  "domains",
                      convert=_convert_domain, is_native=_is_pair, convert_native=_pair_bounds,
                      natives_in_param_space=False,
                      grid_hint="leave search_alg out to run the grid, or search a range "
                                "uniform(lower, upper) instead")


def _utility(utility_kwargs: Any) -> dict:
    """Ray's ``utility_kwargs``, checked, with Ray's defaults for the keys left out."""
    if utility_kwargs is None:
        return dict(DEFAULT_UTILITY)
    if not isinstance(utility_kwargs, dict):
        raise TypeError(
            f"utility_kwargs must be a dict such as {DEFAULT_UTILITY!r} or None, got "
            f"{utility_kwargs!r} of type {type(utility_kwargs).__name__}")
    known = (*DEFAULT_UTILITY, *IGNORED_UTILITY_KEYS)
    unknown = sorted(str(k) for k in utility_kwargs if k not in known)
    if unknown:
        raise ValueError(
            f"utility_kwargs has the unknown key(s) {unknown!r}; its keys are 'kind' ('ucb', "
            "'ei' or 'poi'), 'kappa' (for 'ucb') and 'xi' (for 'ei' and 'poi')")
    ignored = [k for k in IGNORED_UTILITY_KEYS if k in utility_kwargs]
    if ignored:
        warnings.warn(
            f"utility_kwargs {ignored!r} have no effect: Ray's BayesOptSearch passes them to "
            "bayes_opt, which decays kappa only in its own maximize() loop, and neither Ray nor "
            "fastasha runs that loop; leave them out to silence this", UserWarning, stacklevel=3)
    utility = {**DEFAULT_UTILITY, **{k: v for k, v in utility_kwargs.items()
                                     if k in DEFAULT_UTILITY}}
    check_choice("utility_kwargs['kind']", utility["kind"], UTILITY_KINDS,
                 hint=" ('ucb': upper confidence bound, 'ei': expected improvement, 'poi': "
                      "probability of improvement)")
    for key in ("kappa", "xi"):
        value = check_real(f"utility_kwargs[{key!r}]", utility[key])
        if not value >= 0 or not math.isfinite(value):
            raise ValueError(f"utility_kwargs[{key!r}] must be a finite number of 0 or more, "
                             f"got {utility[key]!r}")
        utility[key] = value
    return utility


def _acquisition(utility: dict, byo: Any) -> Any:
    """The bayes_opt 3.x acquisition function of a checked ``utility`` (Ray's meaning)."""
    acq = byo.acquisition
    if utility["kind"] == "ucb":
        return acq.UpperConfidenceBound(kappa=utility["kappa"])
    if utility["kind"] == "ei":
        return acq.ExpectedImprovement(xi=utility["xi"])
    return acq.ProbabilityOfImprovement(xi=utility["xi"])


# ------------------------------------------------------------------------ searcher

class BayesOptSearch(ExternalSearcher):
    """Suggest configs with Bayesian optimisation (a GP), as Ray Tune's ``BayesOptSearch``.

    The first ``random_search_steps`` trials are ``points_to_evaluate`` and
    random draws; once they have all ended, a Gaussian process fitted to
    every result so far proposes each further config, the maximum of its
    acquisition function (see the module docstring for the whole story,
    how each domain is converted, and what is refused). Results reach the
    GP in :meth:`on_trial_complete` only: an ASHA scheduler's early stops
    count with their last value, as in Ray.

    Parameters
    ----------
    space : dict or None, default=None
        The search space, when not taken from ``param_space``: a dict (it may
        be nested) of BayesOpt ranges ``(low, high)`` (Ray's form) or of
        fastasha ``uniform(low, high)`` domains. ``param_space`` must then
        hold constants only.
    metric : str or None, default=None
        The result key to optimise (one: the GP models one value per
        config); ``None`` takes ``TuneConfig.metric``.
    mode : {"min", "max"} or None, default=None
        Whether smaller or larger values are better (the GP maximises, so
        ``"min"`` gives it the values negated); ``None`` takes
        ``TuneConfig.mode``. A mode alone optimises ``TuneConfig.metric``,
        or Ray's anonymous ``"_metric"`` when the sweep has none.
    points_to_evaluate : list of dict, optional
        Configs to run first, in order, before any random draw. Each gives
        a number inside its range to every parameter of the space, nested
        as the config is. They count among the ``random_search_steps``.
    utility_kwargs : dict, optional
        The acquisition function: ``{"kind": "ucb", "kappa": 2.576, "xi":
        0.0}`` when ``None`` (Ray's defaults, which also fill in the keys
        left out). ``"ucb"`` (upper confidence bound, ``mean + kappa *
        sd``: a larger ``kappa`` explores more), ``"ei"`` (expected
        improvement) or ``"poi"`` (probability of improvement), both over
        the best value by at least ``xi``.
    random_state : int or None, default=42
        Seeds the random draws and the GP's fitting, so that two sweeps
        with the same seed that hear the same results in the same order
        suggest the same configs; ``None`` draws a seed.
    random_search_steps : int, default=10
        How many trials (``points_to_evaluate`` included) run before the GP
        takes over; they run without waiting for each other's results, and
        the GP waits for all of them.
    verbose : int, default=0
        bayes_opt's verbosity: 1 or 2 print each result the GP gets.
    patience : int or None, default=5
        The sweep ends (``Searcher.FINISHED``, with a warning) once a config
        has been proposed more than ``patience`` times, the GP having
        converged there (see ``skip_duplicate`` for what counts as the same
        config); ``None``: never.
    skip_duplicate : bool, default=True
        Whether a config proposed before is skipped: ``suggest`` answers
        ``None`` and is asked again later (once a running trial has ended,
        if any runs: with no news, the GP would propose the same).
        Configs are the same when they agree to 1e-5 of each parameter's
        range.
    analysis : ExperimentAnalysis or ResultGrid, optional
        An earlier experiment to start from: each of its trials' configs
        with the best value of ``metric`` it reported goes to the GP before
        the first suggestion (see :meth:`register_analysis`).

    Raises
    ------
    ImportError
        If bayesian-optimization (3.0 or newer) is not installed; the
        message says how to install it.
    TypeError
        For arguments of the wrong type: a ``space`` that is not a dict,
        ``points_to_evaluate`` that are not a list of dicts, a seed or a
        count that is not an int, ...
    ValueError
        For a bad metric or mode (a list of them too: BayesOpt optimises one
        metric), a domain BayesOpt cannot search (see the module
        docstring), a point of ``points_to_evaluate`` that does not fit the
        space, unknown ``utility_kwargs``, or a negative count.

    Notes
    -----
    The sweep saves the searcher with :meth:`save` (a pickle of the GP and
    of what the searcher knows of the trials, as in Ray), and
    ``Tuner.restore(path, objective, search_alg=BayesOptSearch(...))``
    continues it from that state: pass a searcher built with the same
    arguments. Pickled state is code: restore only experiments you trust.

    As in Ray, ``set_max_concurrency`` returns ``False``: wrap the searcher
    in a :class:`~fastasha.search.ConcurrencyLimiter` (Ray's example uses
    ``max_concurrent=4``), or set ``TuneConfig(max_concurrent_trials=...)``.
    The GP proposes each config from the trials ended so far, so many
    trials at once propose the same config more often (a duplicate, which
    ``skip_duplicate`` skips).

    Examples
    --------
    A space in BayesOpt's own form given to the searcher, with its metric:

    >>> from fastasha.search.bayesopt import BayesOptSearch
    >>> searcher = BayesOptSearch({"width": (0, 20), "height": (-100, 100)}, metric="mean_loss",
    ...                           mode="min", points_to_evaluate=[{"width": 10, "height": 0}])
    >>> searcher.suggest("t0")
    {'width': 10.0, 'height': 0.0}
    >>> searcher.on_trial_complete("t0", {"mean_loss": 0.25})
    """

    _MODULE, _MIN_VERSION, _MODULE_ATTR = "bayes_opt", (3, 0), "_byo"
    _EXTRA, _PACKAGE = "bayesopt", "bayesian-optimization"
    _STATE_ATTR, _STATE_FORMAT = "optimizer", STATE_FORMAT
    _NATIVES_IN_PARAM_SPACE = False         # a (low, high) there is a constant tuple
    _DOMAINS = "tune.uniform(low, high)"

    def __init__(self, space: dict | None = None, metric: str | None = None,
                 mode: str | None = None, points_to_evaluate: list[dict] | None = None,
                 utility_kwargs: dict | None = None, random_state: int | None = 42,
                 random_search_steps: int = 10, verbose: int = 0, patience: int | None = 5,
                 skip_duplicate: bool = True, analysis: Any = None) -> None:
        byo = self._import()
        super().__init__(metric=metric, mode=mode)
        self._check_metric_mode()
        self._utility = _utility(utility_kwargs)
        if random_state is not None:
            random_state = check_int("random_state", random_state, minimum=0)
            if random_state >= 2**32:
                raise ValueError(f"random_state must be less than 2**32 (numpy's RandomState), "
                                 f"got {random_state}")
        self._random_state = random_state
        self._random_search_steps = check_int("random_search_steps", random_search_steps,
                                              minimum=0)
        self._verbose = check_int("verbose", verbose, minimum=0)
        self._patience = None if patience is None else \
            check_int("patience", patience, minimum=1, hint=" (or None: never end the sweep)")
        self._skip_duplicate = check_bool("skip_duplicate", skip_duplicate)
        if analysis is not None:
            _analysis_trials(analysis)          # the type, at once
        self._analysis = analysis
        self._points_to_evaluate = check_points(points_to_evaluate)
        self._byo = byo
        if space is None or (isinstance(space, dict) and not space):
            self._space: dict[str, tuple[float, float]] | None = None
        else:
            self._space = _to_bounds(space, "space")
        #: the ``bayes_opt.BayesianOptimization`` (its GP and the results it has), as in Ray;
        #: ``None`` until the space and the mode are known
        self.optimizer: Any = None
        self._metric_defaulted = False      # metric set to DEFAULT_METRIC by _fill_metric
        self._pending_points: list[dict] = []    # points_to_evaluate not suggested yet (flat)
        self._configs: dict[str, dict] = {}      # running trial id -> its params (flat)
        self._completed: set[str] = set()
        self._counts: dict[tuple, int] = {}      # how often each config was proposed
        self._n_first = 0                        # trials in the first phase (before the GP)
        self._first_ids: set[str] = set()        # running trials of the first phase
        self._n_first_started = 0
        self._n_first_ended = 0
        self._buffer: list[tuple[dict, float]] = []   # first-phase results for the GP
        self._n_ended = 0                        # trials heard ended: news for the GP
        self._stale_at: int | None = None        # _n_ended when the GP last proposed a duplicate
        if self._space is not None and self.mode is not None:
            self._setup()

    # ------------------------------------------------------------ the optimizer

    def _to_space(self, space: Any, given_as: str) -> dict[str, tuple[float, float]]:
        return _to_bounds(space, given_as)

    def _is_native(self, obj: Any) -> bool:
        return _is_pair(obj)

    def _point_names(self) -> dict[str, tuple[float, float]]:
        return self._space

    def _setup(self) -> None:
        """Build the optimizer once the space and the mode are known (Ray: as soon as it can)."""
        self._fill_metric()
        self._check_metric_mode()
        points = [self._check_point(p) for p in self._points_to_evaluate]
        self.optimizer = self._byo.BayesianOptimization(
            f=None, pbounds=dict(self._space),
            acquisition_function=_acquisition(self._utility, self._byo),
            random_state=self._random_state, verbose=self._verbose)
        self._pending_points = points
        self._n_first = max(self._random_search_steps, len(points))
        if self._analysis is not None:
            self.register_analysis(self._analysis)

    def _check_point(self, point: dict) -> dict[str, float]:
        """The params of ``point`` (nested, or flat); a ValueError unless each is in its range."""
        params = split_point(point, self._space, self._constants)
        for name, value in params.items():
            low, high = self._space[name]
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or \
                    not low <= value <= high:
                raise ValueError(f"the value {value!r} of {name!r} in the point {point!r} is not "
                                 f"a number in its range [{low:g}, {high:g}]; fix the point or "
                                 "widen the range")
        return {name: float(value) for name, value in params.items()}

    def _target(self, value: Any) -> float | None:
        """What the GP maximises for a metric's value (None for no number, NaN or infinity)."""
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or \
                not math.isfinite(value):
            return None
        return float(value) if self.mode == "max" else -float(value)

    def _register(self, params: dict, target: float) -> None:
        """Give the GP a result, unless it has one for exactly these params already."""
        space = self.optimizer.space
        if tuple(params[k] for k in space.keys) in space:    # bayes_opt would refuse it
            return
        self.optimizer.register(params=params, target=target)

    def _duplicate_key(self, params: dict) -> tuple:
        return tuple(round((params[name] - low) / (high - low), DUPLICATE_DIGITS)
                     for name, (low, high) in self._space.items())

    def _finished(self) -> bool:
        return self._patience is not None and bool(self._counts) and \
            max(self._counts.values()) > self._patience

    # ------------------------------------------------------------ the sweep's calls

    def suggest(self, trial_id: str) -> dict | str | None:
        """The config of trial ``trial_id``: a point, a random draw or the GP's proposal.

        Asked again with the same id while the trial runs, it gives the
        same config. Nested parameters (``"outer/inner"``) come back as
        nested dicts.

        Returns
        -------
        dict, None or Searcher.FINISHED
            The config; ``None`` while the first phase waits for its
            trials to end, for a duplicate that ``skip_duplicate`` skips,
            and after one while no running trial has ended since;
            ``FINISHED`` once a config was proposed more than ``patience``
            times.

        Raises
        ------
        RuntimeError
            If the searcher has no search space, metric or mode yet.
        """
        return super().suggest(trial_id)

    def _ask(self, trial_id: str) -> dict | str | None:
        """The params of a new trial (see :meth:`suggest`), or ``None`` or ``FINISHED``."""
        if self._finished():
            return Searcher.FINISHED
        first_phase = self._n_first_ended < self._n_first
        if first_phase and self._n_first_started >= self._n_first:
            return None             # the GP waits for every trial of the first phase
        from_gp = not self._pending_points
        if from_gp and self._configs and self._stale_at == self._n_ended:
            return None             # it would propose its duplicate again: wait for news
        if from_gp:
            # the random state the GP's proposal uses (bayes_opt draws everything from it)
            rng = self.optimizer._random_state
            drawn_from = rng.get_state()
            params = {name: float(value) for name, value in self.optimizer.suggest().items()}
        else:
            params = self._pending_points.pop(0)
        key = self._duplicate_key(params)
        seen = key in self._counts
        self._counts[key] = self._counts.get(key, 0) + 1
        if self._finished():
            warnings.warn(
                f"BayesOptSearch ends the sweep: it proposed the config {unflatten(params)!r} "
                f"{self._counts[key]} times, more than patience={self._patience} (the GP has "
                "converged there, as Ray's would). Pass a larger patience (or None), or more "
                "random_search_steps, to search on", UserWarning, stacklevel=4)
            return Searcher.FINISHED
        if seen and self._skip_duplicate:
            if from_gp and self._configs:
                self._stale_at = self._n_ended
                # undone: a sweep logs only the suggestions that made a trial, and a restore
                # replays those from the saved state; had this one moved the random state,
                # the replay's GP would propose other configs than the trials ran with
                rng.set_state(drawn_from)
            return None
        if first_phase:
            self._n_first_started += 1
            self._first_ids.add(trial_id)
        return params

    def on_trial_complete(self, trial_id: str, result: dict | None = None,
                          error: bool = False) -> None:
        """Give the GP the metric's value in the last result of trial ``trial_id``.

        As in Ray: nothing for a trial that failed (``error``), and nothing
        for a value that is NaN or infinite; nothing either (Ray raises) for
        a result without the metric. The value is negated for
        ``mode="min"``. A trial of the first phase waits, with its value,
        until every trial of that phase has ended. A second call about the
        same trial, or one about a trial this searcher did not suggest, is
        ignored with a warning.
        """
        params = self._end_of(trial_id, self._configs)
        if params is None:
            return
        self._n_ended += 1
        target = None if error or not result else self._target(result.get(self.metric))
        if trial_id not in self._first_ids:
            if target is not None:
                self._register(params, target)
            return
        self._first_ids.discard(trial_id)
        self._n_first_ended += 1
        if target is not None:
            self._buffer.append((params, target))
        if self._n_first_ended >= self._n_first:
            for first, value in self._buffer:
                self._register(first, value)
            self._buffer = []

    def register_analysis(self, analysis: Any) -> None:
        """Give the GP the trials of an earlier experiment (Ray's ``register_analysis``).

        Each trial's config goes to the GP with the best value of the
        searcher's metric among the trial's results (by its mode), as in
        Ray. Trials without a finite value are left out, and so are those
        whose config does not give every parameter of the space a number
        inside its range (with a warning that counts them).

        Parameters
        ----------
        analysis : ExperimentAnalysis or ResultGrid
            The experiment (``tune.ExperimentAnalysis(path)``,
            ``ResultGrid.from_path(path)``, or what ``tune.run`` and
            ``Tuner.fit`` return).

        Raises
        ------
        TypeError
            For anything else.
        RuntimeError
            If the searcher has no search space, metric or mode yet.
        """
        trials = _analysis_trials(analysis)
        self._require_ready("register_analysis")
        unfit = 0
        for trial in trials:
            targets = [self._target(flatten(row).get(self.metric)) for row in trial.history()]
            targets = [t for t in targets if t is not None]
            if not targets:
                continue
            config = flatten_config(trial.config or {})
            try:
                params = self._check_point({name: config.get(name) for name in self._space})
            except ValueError:
                unfit += 1
                continue
            self._register(params, max(targets))
        if unfit:
            warnings.warn(
                f"{unfit} trial(s) of the analysis were left out: their configs do not give "
                f"every parameter of {sorted(self._space)!r} a number inside its range",
                UserWarning, stacklevel=2)

    # -------------------------------------------------------------------- state

    def _state(self) -> dict:
        """The optimizer (GP, results, random state) and the trials' story."""
        return {name: getattr(self, name) for name in STATE_ATTRIBUTES}

    def _set_state(self, state: dict) -> None:
        for name in STATE_ATTRIBUTES:
            setattr(self, name, state[name])


def _analysis_trials(analysis: Any) -> list:
    """The trials (``Result`` objects) of an ``ExperimentAnalysis`` or a ``ResultGrid``."""
    from ..analysis import ExperimentAnalysis
    from ..results import ResultGrid

    if isinstance(analysis, ExperimentAnalysis):
        return analysis.trials
    if isinstance(analysis, ResultGrid):
        return list(analysis)
    raise TypeError(
        f"analysis must be a fastasha ExperimentAnalysis (tune.ExperimentAnalysis(path)) or a "
        f"ResultGrid (ResultGrid.from_path(path)), got {analysis!r} of type "
        f"{type(analysis).__name__}")
