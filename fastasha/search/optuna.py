"""OptunaSearch: Ray Tune's searcher that asks an Optuna study (TPE by default) for configs.

It has the arguments and behaviour of Ray Tune 2.x's
``ray.tune.search.optuna.OptunaSearch``, so that a Ray script pairing ASHA
with Optuna's TPE sampler runs after changing its imports
(``from fastasha.search.optuna import OptunaSearch``, or
``fastasha.tune.search.optuna``). Optuna is an optional dependency: this
module imports it only when an :class:`OptunaSearch` is built, so importing
``fastasha.search`` (or this module) never loads it. Install it with
``pip install "optuna>=3.4"`` (or, in a clone of fastasha, ``pip install -e
".[optuna]"``).

The search space comes from ``param_space`` (as with any fastasha sweep) or
from ``space=``, and each fastasha domain becomes the Optuna distribution
Ray Tune converts it to:

==========================  ==================================================
domain                      Optuna distribution
==========================  ==================================================
``uniform(a, b)``           ``FloatDistribution(a, b)``
``quniform(a, b, q)``       ``FloatDistribution(a, b, step=q)``
``loguniform(a, b)``        ``FloatDistribution(a, b, log=True)``
``qloguniform(a, b, q)``    ``FloatDistribution(a, b, log=True)``: Optuna has no
                            quantised log scale, so ``q`` is dropped, with a
                            warning (as in Ray)
``randint(a, b)``           ``IntDistribution(a, b - 1)`` (``b`` is excluded)
``qrandint(a, b, q)``       ``IntDistribution(lo, hi, step=q)``, ``lo`` and ``hi``
                            the smallest and largest multiples of ``q`` in
                            ``[a, b]`` (``b`` is included)
``lograndint(a, b)``        ``IntDistribution(a, b - 1, log=True)``
``qlograndint(a, b, 1)``    ``IntDistribution(a, b, log=True)``
``choice(cs)``              ``CategoricalDistribution(cs)``
==========================  ==================================================

Refused, with a ``ValueError`` that says what to use instead, as Ray
refuses them: ``randn`` and ``qrandn`` (Optuna has no normal
distribution), ``qlograndint`` with ``q > 1`` (no quantised log scale for
ints), ``grid_search`` and ``sample_from``. Nested dicts are searched too:
their parameters are named with ``/`` (``"model/lr"``) inside the study, and
configs come back nested, as in Ray.

Where fastasha differs from Ray:

- ``qrandint`` with bounds that are not multiples of ``q`` draws multiples of
  ``q`` (fastasha's meaning of the domain); Ray's conversion draws
  ``a, a + q, ...``. ``qlograndint(a, b, 1)`` includes ``b`` (Ray's
  conversion drops it).
- A domain inside a ``choice``, or inside a list, is refused (Ray passes it
  to Optuna as an opaque category, or fails with a ``TypeError``).
- Only the keys on the way to a domain must be free of ``/`` (Ray refuses
  ``/`` in any key of the space).
- ``points_to_evaluate`` may be nested dicts, as configs are (Ray enqueues
  them as given, so a nested point is ignored by Optuna).
- When ``space=`` is given, the sweep's ``metric`` and ``mode`` fill in those
  the searcher lacks (Ray leaves the searcher without them, and it fails at
  its first suggestion; a searcher given only a mode there optimises
  ``"_metric"``, and the first result without it fails the sweep); a
  ``param_space`` that holds domains as well is refused at once.
- The sweep's results reach :meth:`OptunaSearch.on_trial_result` as in Ray,
  so every report of the objective waits for the driver (as with a
  ``Stopper``); a result without the metric or ``training_iteration`` is
  skipped (Ray raises ``KeyError``).
- A final value Optuna refuses (NaN) ends the Optuna trial ``FAIL``, with a
  warning (Ray warns and leaves it ``RUNNING`` in the study for ever).

Examples
--------
>>> from fastasha import tune
>>> from fastasha.search.optuna import OptunaSearch
>>> searcher = OptunaSearch(metric="loss", mode="min", seed=0)
>>> searcher.set_search_properties(None, None, {"lr": tune.loguniform(1e-4, 1e-1),
...                                             "layers": tune.randint(1, 5)})
True
>>> config = searcher.suggest("t0")
>>> sorted(config), 1e-4 <= config["lr"] <= 1e-1, config["layers"] in (1, 2, 3, 4)
(['layers', 'lr'], True, True)
>>> searcher.on_trial_complete("t0", {"loss": 0.5})
"""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Callable
from typing import Any

from ._external import (
    ExternalSearcher,
    check_points,
    flatten,
    normal_error,
    param_name,
    sample_from_error,
    split_point,
    walk_space,
)
from .sample import Categorical, Domain, Float, Function, Integer
from .variant_generator import compile_space, is_dynamic

__all__ = ["OptunaSearch"]

STATE_FORMAT = "fastasha.optuna_search/1"


# ------------------------------------------------------------------ the search space

def _convert_domain(domain: Domain, path: tuple, ot: Any) -> Any:
    """The Optuna distribution of a fastasha domain, with Ray's meaning (module docstring)."""
    name = param_name(path, "OptunaSearch")
    dist = ot.distributions
    if isinstance(domain, Function):
        raise sample_from_error(name, "Optuna")
    if isinstance(domain, Categorical):
        for category in domain.categories:
            if is_dynamic(compile_space(category, path, in_choice=True)):
                raise ValueError(
                    f"{name!r} is a choice() whose category {category!r} holds a domain, which "
                    "OptunaSearch cannot search (Optuna draws a category as a whole); make the "
                    "inner domains parameters of their own, next to the choice")
        return dist.CategoricalDistribution(domain.categories)
    if isinstance(domain, Float):
        if domain.sampler == "normal":
            raise normal_error(name, domain, "Optuna has no normal distribution")
        log = domain.sampler == "loguniform"
        if log and domain.q is not None:
            warnings.warn(
                f"{name!r} is a qloguniform() domain, but Optuna has no quantised log scale: "
                f"OptunaSearch searches loguniform({domain.lower:g}, {domain.upper:g}), and its "
                f"values are not rounded to q={domain.q:g} (as in Ray). Use loguniform() to "
                "silence this, or round in the objective", UserWarning, stacklevel=4)
            return dist.FloatDistribution(domain.lower, domain.upper, log=True)
        return dist.FloatDistribution(domain.lower, domain.upper, log=log, step=domain.q)
    if isinstance(domain, Integer):
        log = domain.sampler == "loguniform"
        q = domain.q
        if q is None:                       # randint, lograndint: upper excluded
            return dist.IntDistribution(domain.lower, domain.upper - 1, log=log)
        if log and q != 1:
            raise ValueError(
                f"{name!r} is qlograndint({domain.lower}, {domain.upper}, {q}), but Optuna has "
                "no log-scaled integers with a step other than 1; use "
                f"lograndint({domain.lower}, {domain.upper + 1}) (every integer, log scale) "
                f"or qrandint({domain.lower}, {domain.upper}, {q}) (multiples of {q}, uniform)")
        low, high = -(-domain.lower // q) * q, (domain.upper // q) * q    # upper included
        return dist.IntDistribution(low, high, log=log, step=q)
    raise TypeError(
        f"{name!r} is a {type(domain).__name__}, a domain OptunaSearch does not know; use "
        "uniform, quniform, loguniform, randint, qrandint, lograndint or choice")


def _to_distributions(space: Any, ot: Any, given_as: str) -> dict:
    """The flat ``{name: distribution}`` of a space of domains and Optuna distributions."""
    return walk_space(space, given_as, searcher="OptunaSearch", library="Optuna",
                      space_takes="domains and Optuna distributions",
                      convert=lambda domain, path: _convert_domain(domain, path, ot),
                      is_native=lambda obj: isinstance(obj, ot.distributions.BaseDistribution))


# ------------------------------------------------------------------------ searcher

class OptunaSearch(ExternalSearcher):
    """Suggest configs with an Optuna sampler (TPE by default), as Ray Tune's ``OptunaSearch``.

    Each trial of the sweep is a trial of one Optuna study: :meth:`suggest`
    asks the study for the next config (``study.ask``), :meth:`on_trial_result`
    reports the metric's values along the way (``trial.report`` at each
    ``training_iteration``), and :meth:`on_trial_complete` tells the study
    how the trial ended: ``COMPLETE`` with the metric's last value (a trial
    an ASHA scheduler stopped early too, as in Ray), ``FAIL`` when the trial
    failed, ``PRUNED`` when its last result lacks the metric. Optuna's own
    pruners are not used (``NopPruner``): the scheduler stops trials.

    The search space is the Tuner's ``param_space`` (its domains; its
    constants are merged into every config), or ``space=`` (see the module
    docstring for how each domain is converted, and what is refused).

    Parameters
    ----------
    space : dict, callable or None, default=None
        The search space, when not taken from ``param_space``: a dict (it may
        be nested) of fastasha domains (``tune.uniform(...)``, ...) or of
        Optuna distributions (``optuna.distributions.FloatDistribution``,
        ...), or Optuna's define-by-run function ``space(trial)``, which
        calls ``trial.suggest_*`` and returns ``None`` or a dict of
        constants to add to the config. Do no work in it: it runs in the
        driver. ``param_space`` must then hold constants only.
    metric : str, list of str or None, default=None
        The result key to optimise; ``None`` takes ``TuneConfig.metric``. A
        list asks for multi-objective optimisation (its values are then not
        reported along the way, as in Ray); give it here, not to
        ``TuneConfig``.
    mode : {"min", "max"}, list of them or None, default=None
        Whether smaller or larger values are better (a list for a list of
        metrics); ``None`` takes ``TuneConfig.mode``. A mode without a
        metric optimises ``TuneConfig.metric``, or when there is none Ray's
        anonymous metric ``"_metric"``.
    points_to_evaluate : list of dict, optional
        Configs to run first, before the sampler proposes any (Optuna's
        ``enqueue_trial``, at the first suggestion). Each gives a value to every parameter of the
        space, nested as the config is, and each value must lie in its
        domain.
    sampler : optuna.samplers.BaseSampler, optional
        The sampler (seeded already); ``None`` is
        ``optuna.samplers.TPESampler(seed=seed)``.
    study_name : str, optional
        The study's name (``"optuna"`` when ``None``), as in Ray.
    storage : optuna.storages.BaseStorage or str, optional
        Where the study lives; ``None`` keeps it in memory (in the saved
        state of the sweep, for a restore). With another storage, the study
        there may know more trials than a restore of the sweep does.
    seed : int, optional
        Seeds the default TPE sampler, so that two sweeps with the same seed
        that hear the same results in the same order suggest the same
        configs. Ignored, with a warning, when ``sampler`` is given.
    evaluated_rewards : list, optional
        The metric's values of ``points_to_evaluate``, already known: the
        points are then added to the study as finished trials instead of
        being run (one value each, a list of values for a list of metrics).

    Raises
    ------
    ImportError
        If optuna (3.4 or newer) is not installed; the message says how to
        install it.
    TypeError
        For a ``space`` that is not a dict or a function, a ``sampler`` that
        is not an Optuna sampler, or ``points_to_evaluate`` /
        ``evaluated_rewards`` that are not lists (of dicts).
    ValueError
        For a bad metric or mode, a domain Optuna cannot search (see the
        module docstring), a point of ``points_to_evaluate`` that does not
        fit the space, or ``evaluated_rewards`` of another length than
        ``points_to_evaluate``.

    Notes
    -----
    The sweep saves the searcher with :meth:`save` (a pickle of the study, as
    in Ray), and ``Tuner.restore(path, objective,
    search_alg=OptunaSearch(...))`` continues it from that state: pass a
    searcher built with the same arguments. Pickled state is code: restore
    only experiments you trust.

    As in Ray, ``set_max_concurrency`` returns ``False``: wrap the searcher
    in a :class:`~fastasha.search.ConcurrencyLimiter` (or set
    ``TuneConfig(max_concurrent_trials=...)``) to cap its trials. TPE
    proposes each config from the trials finished so far, so many trials
    at once make its early suggestions closer to random.

    Optuna logs each new study and each finished trial at its ``INFO``
    level; ``optuna.logging.set_verbosity(optuna.logging.WARNING)`` silences
    that.

    Examples
    --------
    A space of Optuna distributions given to the searcher, with its metric:

    >>> import optuna
    >>> from fastasha.search.optuna import OptunaSearch
    >>> space = {"x": optuna.distributions.FloatDistribution(-1.0, 1.0)}
    >>> searcher = OptunaSearch(space, metric="loss", mode="min", seed=0,
    ...                         points_to_evaluate=[{"x": 0.5}])
    >>> searcher.suggest("t0")
    {'x': 0.5}
    >>> searcher.on_trial_complete("t0", {"loss": 0.25})
    """

    def __init__(self, space: dict | Callable | None = None, metric: str | list | None = None,
                 mode: str | list | None = None, points_to_evaluate: list[dict] | None = None,
                 sampler: Any = None, study_name: str | None = None, storage: Any = None,
                 seed: int | None = None, evaluated_rewards: list | None = None) -> None:
        ot = self._import()
        super().__init__(metric=metric, mode=mode)
        if sampler is not None and not isinstance(sampler, ot.samplers.BaseSampler):
            raise TypeError(
                f"sampler must be an Optuna sampler (an optuna.samplers.BaseSampler such as "
                f"optuna.samplers.TPESampler(seed=0)), got {sampler!r} of type "
                f"{type(sampler).__name__}")
        if seed is not None:
            if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
                raise TypeError(f"seed must be an int or None, got {seed!r} of type "
                                f"{type(seed).__name__}")
            if sampler is not None:
                warnings.warn(
                    "OptunaSearch got both a sampler and a seed; the seed only seeds the default "
                    "TPE sampler, so it is ignored: seed the sampler you pass instead "
                    "(TPESampler(seed=...))", UserWarning, stacklevel=2)
        if study_name is not None and not isinstance(study_name, str):
            raise TypeError(f"study_name must be a str or None, got {study_name!r}")
        if storage is not None and not isinstance(storage, (str, ot.storages.BaseStorage)):
            raise TypeError(
                f"storage must be an optuna.storages.BaseStorage, a database URL or None, got "
                f"{storage!r} of type {type(storage).__name__}")
        self._points_to_evaluate = check_points(points_to_evaluate, evaluated_rewards)
        self._evaluated_rewards = list(evaluated_rewards) if evaluated_rewards else None
        if space is None or (isinstance(space, dict) and not space):
            self._space: dict | Callable | None = None
        elif isinstance(space, dict):
            self._space = _to_distributions(space, ot, "space")
        elif callable(space):
            if self._evaluated_rewards is not None:
                raise TypeError(
                    "evaluated_rewards needs a space of domains or Optuna distributions, not a "
                    "define-by-run function (as in Ray); give space as a dict, or run the "
                    "points (points_to_evaluate without evaluated_rewards)")
            self._space = space
        else:
            raise TypeError(
                f"space must be a dict of domains or Optuna distributions, a define-by-run "
                f"function or None, got {space!r} of type {type(space).__name__}")
        self._sampler = sampler
        self._seed = None if seed is None else int(seed)
        self._study_name = study_name or "optuna"
        self._storage = storage
        self._ot = ot
        self._study: Any = None
        self._trials: dict[str, Any] = {}       # running trial id -> optuna Trial
        self._configs: dict[str, dict] = {}     # running trial id -> its params (flat)
        self._last_step: dict[str, int] = {}    # running trial id -> last step reported
        self._completed: set[str] = set()
        self._metric_defaulted = False          # metric set to DEFAULT_METRIC by _fill_metric
        self._pending_points: list[dict] = []   # points_to_evaluate not enqueued yet (flat)
        if self._space is not None and self.mode is not None:
            self._setup()

    # ---------------------------------------------------------------- the study

    _MODULE, _MIN_VERSION, _MODULE_ATTR = "optuna", (3, 4), "_ot"
    _STATE_ATTR, _STATE_FORMAT = "_study", STATE_FORMAT
    _SEVERAL_METRICS = True     # lists of metrics and modes: a multi-objective study

    def _to_space(self, space: Any, given_as: str) -> dict:
        return _to_distributions(space, self._ot, given_as)

    def _is_native(self, obj: Any) -> bool:
        return isinstance(obj, self._ot.distributions.BaseDistribution)

    def _point_names(self) -> dict | None:
        # (a define-by-run space names its parameters only as it runs: points unchecked)
        return self._space if isinstance(self._space, dict) else None

    def _setup(self) -> None:
        """Create the study once the space and the mode are known (Ray: as soon as it can)."""
        ot = self._ot
        self._fill_metric()
        if isinstance(self.mode, list):
            if self.metric is None:
                raise ValueError("mode is a list (several objectives), so metric must be the "
                                 "list of their result keys; give OptunaSearch(metric=[...])")
            if "obs" in self.mode:
                raise ValueError(f"OptunaSearch optimises every metric of a list: each mode "
                                 f"must be 'min' or 'max', got {self.mode!r}")
            directions = {"directions": ["minimize" if m == "min" else "maximize"
                                         for m in self.mode]}
        else:
            directions = {"direction": "minimize" if self.mode == "min" else "maximize"}
        sampler = self._sampler if self._sampler is not None else \
            ot.samplers.TPESampler(seed=self._seed)
        self._study = ot.create_study(storage=self._storage, sampler=sampler,
                                      pruner=ot.pruners.NopPruner(),
                                      study_name=self._study_name, load_if_exists=True,
                                      **directions)
        if not self._points_to_evaluate:
            return
        points = [flatten(p) for p in self._points_to_evaluate]
        if isinstance(self._space, dict):
            points = [self._check_point(point) for point in points]
        if self._evaluated_rewards is not None:
            for point, reward in zip(points, self._evaluated_rewards):
                self.add_evaluated_point(point, reward)
        else:
            # enqueued at the first suggestion, not here: a Tuner.restore builds a fresh
            # searcher, whose points would otherwise go into a persistent storage's study
            # once more before restore() takes back the study that has them already
            self._pending_points = points

    def _check_point(self, point: dict) -> dict:
        """The params of the flat ``point`` (param_space's constants left out).

        A ValueError unless it gives every parameter a value of its domain.
        """
        space = self._space
        params = split_point(point, space, self._constants)
        for name, value in params.items():
            dist = space[name]
            try:
                inside = dist._contains(dist.to_internal_repr(value))
            except (TypeError, ValueError):
                inside = False
            if not inside:
                raise ValueError(f"the value {value!r} of {name!r} in the point {point!r} is not "
                                 f"in its search space {dist!r}; fix the point or widen the "
                                 "domain")
        return params

    def _ask(self, trial_id: str) -> dict:
        """The params of a new trial, asked of the study (``study.ask``).

        Raises
        ------
        TypeError
            If a define-by-run ``space`` returns something else than ``None``
            or a dict with str keys.
        """
        if getattr(self, "_pending_points", None):
            points, self._pending_points = self._pending_points, []
            for point in points:
                self._study.enqueue_trial(point)
        if callable(self._space):
            trial = self._study.ask()
            constants = self._space(trial)
            if constants is not None and (not isinstance(constants, dict) or not all(
                    isinstance(k, str) for k in constants)):
                raise TypeError(
                    f"the define-by-run space function returned {constants!r}; it must "
                    "return None or a dict with str keys (constants to add to the config)")
            params = {**trial.params, **(constants or {})}
        else:
            trial = self._study.ask(fixed_distributions=self._space)
            params = dict(trial.params)
        self._trials[trial_id] = trial
        return params

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        """Report the metric's value at the result's ``training_iteration`` to the study.

        Skipped, as in Ray, with several metrics. Skipped too (Ray raises)
        for a result without the metric or ``training_iteration``, with a
        value that is not a number, or at a step already reported (a retried
        trial reports its steps again).
        """
        if isinstance(self.metric, list):
            return
        trial = self._trials.get(trial_id)
        if trial is None:
            return
        value = result.get(self.metric)
        step = result.get("training_iteration")
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or \
                isinstance(step, bool) or not isinstance(step, numbers.Integral):
            return
        if step <= self._last_step.get(trial_id, -1):
            return
        self._last_step[trial_id] = int(step)
        trial.report(float(value), int(step))

    def on_trial_complete(self, trial_id: str, result: dict | None = None,
                          error: bool = False) -> None:
        """Tell the study how trial ``trial_id`` ended (``study.tell``), as Ray does.

        ``COMPLETE`` with the metric's value in ``result`` (a list of values
        for a list of metrics); without it, ``FAIL`` when ``error`` is
        true and ``PRUNED`` otherwise. A value Optuna refuses (NaN, say)
        makes the trial ``FAIL``, with a warning (Ray's warns and leaves it
        ``RUNNING`` in the study). A second call about
        the same trial, or one about a trial this searcher did not suggest,
        is ignored with a warning.
        """
        trial = self._end_of(trial_id, self._trials)
        if trial is None:
            return
        self._last_step.pop(trial_id, None)
        value: Any = None
        if result:
            if isinstance(self.metric, list):
                values = [result.get(m) for m in self.metric]
                value = None if any(v is None for v in values) else values
            else:
                value = result.get(self.metric)
        state = self._ot.trial.TrialState
        if value is not None:
            outcome = state.COMPLETE
        else:
            outcome = state.FAIL if error else state.PRUNED
        try:
            self._study.tell(trial, value, state=outcome)
        except Exception as err:        # noqa: BLE001 - as Ray: warn, the sweep goes on
            # Optuna refuses a NaN (or a value that is no number) with COMPLETE and leaves
            # the trial RUNNING; it ends FAIL instead, as Study.optimize ends such a trial
            failed = outcome is state.COMPLETE
            if failed:
                try:
                    self._study.tell(trial, state=state.FAIL)
                except Exception:       # noqa: BLE001 - the trial ended after all
                    failed = False
            warnings.warn(f"Optuna did not take the end of trial {trial_id} ({type(err).__name__}"
                          f": {err}){'; it is FAIL in the study' if failed else ''}",
                          UserWarning, stacklevel=2)

    def add_evaluated_point(self, parameters: dict, value: float | list | None,
                            error: bool = False, pruned: bool = False,
                            intermediate_values: list[float] | None = None) -> None:
        """Add a config evaluated outside the sweep to the study, as a finished trial.

        Parameters
        ----------
        parameters : dict
            The config (nested as the config is, or with ``"outer/inner"``
            names); it gives a value to every parameter of the space.
        value : float, list of float or None
            The metric's value (one per metric for a list); ignored when
            ``error`` is true.
        error : bool, default=False
            The evaluation failed: the trial is ``FAIL``.
        pruned : bool, default=False
            It was stopped early: the trial is ``PRUNED``.
        intermediate_values : list of float, optional
            The values along the way, at steps 0, 1, ... (as in Ray).

        Raises
        ------
        TypeError
            With a define-by-run ``space`` (as in Ray).
        RuntimeError
            If the searcher has no search space, metric or mode yet.
        ValueError
            If ``parameters`` do not fit the space.
        """
        if callable(self._space):
            raise TypeError(
                "add_evaluated_point needs a space of domains or Optuna distributions, not a "
                "define-by-run function (as in Ray); give space as a dict")
        self._require_ready("add_evaluated_point")
        point = self._check_point(flatten(parameters))
        state = self._ot.trial.TrialState
        outcome = state.FAIL if error else state.PRUNED if pruned else state.COMPLETE
        values: dict[str, Any] = {}
        if outcome is not state.FAIL:
            values = {"values": list(value)} if isinstance(value, (list, tuple)) else \
                {"value": value}
        steps = dict(enumerate(intermediate_values)) if intermediate_values else None
        trial = self._ot.trial.create_trial(state=outcome, params=point,
                                            distributions=self._space,
                                            intermediate_values=steps, **values)
        self._study.add_trial(trial)

    # -------------------------------------------------------------------- state

    def _state(self) -> dict:
        """The study (sampler and trials included) and the running trials.

        A define-by-run ``space`` is not saved: the searcher that restores
        keeps its own.
        """
        return {
            "space": None if callable(self._space) else self._space,
            "study": self._study, "trials": self._trials, "configs": self._configs,
            "last_step": self._last_step, "completed": self._completed,
            "pending_points": getattr(self, "_pending_points", []),
        }

    def _set_state(self, state: dict) -> None:
        if not callable(self._space) or state["space"] is not None:
            self._space = state["space"]
        self._study = state["study"]
        self._trials, self._configs = state["trials"], state["configs"]
        self._last_step, self._completed = state["last_step"], state["completed"]
        # the points the saved study has not been given yet (none: it has them all)
        self._pending_points = state.get("pending_points", [])
