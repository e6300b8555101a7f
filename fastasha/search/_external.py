"""What the searchers wrapping an optional library share (Optuna's, HyperOpt's, ...).

Each such searcher imports its library only when it is built
(:func:`import_library`), names the parameters of a nested space
``"outer/inner"`` (:func:`param_name`, :func:`flatten`,
:func:`unflatten`), turns a space of fastasha domains and of the library's
own objects into a flat ``{name: converted}`` (:func:`walk_space`), checks
``points_to_evaluate`` (:func:`check_points`, :func:`split_point`), and
takes its space, metric and mode from the sweep as Ray's searchers do
(:class:`ExternalSearcher`).
"""

from __future__ import annotations

import copy
import pickle
import re
from importlib import import_module
import warnings
from collections.abc import Callable, Collection, Mapping
from typing import Any

from .sample import Domain, Float
from .searcher import Searcher, _check_metric_mode
from .variant_generator import check_points as _check_point_list
from .variant_generator import compile_space, grid_values

__all__ = ["DEFAULT_METRIC", "SEP", "ExternalSearcher", "check_points", "flatten",
           "holds_search", "import_library", "normal_error", "param_name", "sample_from_error",
           "split_point", "unflatten", "walk_space"]

# the separator of nested parameter names inside the library, as in Ray
SEP = "/"
# Ray's name for the metric when only a mode is given (ray.tune.result.DEFAULT_METRIC)
DEFAULT_METRIC = "_metric"


def import_library(module: str, searcher: str, minimum: tuple[int, ...], *,
                   extra: str = "", package: str = "",
                   load: Callable[[str], Any] = import_module) -> Any:
    """The module ``module`` (``minimum`` or newer), or an ImportError that says how to install it.

    Parameters
    ----------
    module : str
        The module to import (``"bayes_opt"``).
    searcher : str
        The searcher's class name, for messages.
    minimum : tuple of int
        The oldest version that works (``(3, 0)``).
    extra : str, optional
        The extra of fastasha that installs it (``bayesopt``: ``pip install
        -e ".[bayesopt]"`` in a clone of fastasha); the module's name when
        empty.
    package : str, optional
        Its name on PyPI (``"bayesian-optimization"``), which the messages
        use; the module's name when empty.
    load : callable, default=importlib.import_module
        ``load(module)`` imports the module (one that works around a
        library's own import failure, say).

    Notes
    -----
    fastasha is not on PyPI, so the messages never say ``pip install
    "fastasha[extra]"`` (pip would look for fastasha there, and fail): they
    give the library's own install command, with the oldest version that
    works, and the extra for a clone of fastasha.
    """
    extra, package = extra or module, package or module
    wanted = ".".join(str(p) for p in minimum)
    requirement = f'"{package}>={wanted}"'
    clone = f'in a clone of fastasha: pip install -e ".[{extra}]"'
    hint = f"pip install {requirement} (or, {clone})"
    try:
        library = load(module)
    except ImportError as err:
        if isinstance(err, ModuleNotFoundError) and err.name == module:
            raise ImportError(
                f"{searcher} needs the optional dependency {package}, which is not installed: "
                f"{hint}") from err
        # installed, but its own import fails (a dependency of it missing or too new)
        raise ImportError(
            f"{searcher} needs {package}, which is installed but fails to import "
            f"({type(err).__name__}: {err}); check that what it depends on is installed and "
            f"fits it ({hint})") from err
    version = str(getattr(library, "__version__", ""))
    found = tuple(int(p) for p in re.findall(r"\d+", version)[:len(minimum)])
    if found < minimum:
        raise ImportError(
            f"{searcher} needs {package} {wanted} or newer, found {version}: "
            f"pip install -U {requirement} (or, {clone})")
    return library


# ------------------------------------------------------------------ the search space

def param_name(path: tuple, searcher: str) -> str:
    """The library's name of the parameter at ``path`` (``"outer/inner"``).

    Raises
    ------
    TypeError
        For a key on the way that is not a str.
    ValueError
        For a key that holds ``"/"``.
    """
    for key in path:
        if not isinstance(key, str):
            raise TypeError(
                f"the search space has a domain under the key {key!r} of type "
                f"{type(key).__name__} (at {list(path)!r}); {searcher} names parameters by "
                "their string keys: use str keys on the way to a domain")
        if SEP in key:
            raise ValueError(
                f"the key {key!r} (at {list(path)!r}) holds {SEP!r}, which {searcher} uses "
                "to name nested parameters ('outer/inner'); rename the key or nest a dict "
                "instead")
    return SEP.join(path)


def sample_from_error(name: str, library: str,
                      use: str = "a domain (uniform, randint, choice, ...)") -> ValueError:
    """The error for a ``sample_from`` function at ``name``, which no library can search.

    ``use`` is what to search instead, among what the library can.
    """
    return ValueError(
        f"{name!r} is a sample_from() function, which {library} cannot search (it draws only "
        f"from distributions); use {use} and compute the derived value inside the objective "
        "from the config")


def normal_error(name: str, domain: Float, why: str) -> ValueError:
    """The error for a ``randn``/``qrandn`` domain at ``name``; ``why``: what the library lacks."""
    kind = "qrandn" if domain.q is not None else "randn"
    return ValueError(
        f"{name!r} is a {kind}() domain, but {why}; use uniform(lower, upper) over the range "
        f"that matters (mean - 3 sd to mean + 3 sd, say: here "
        f"{domain.mean - 3 * domain.sd:g} to {domain.mean + 3 * domain.sd:g})")


def holds_search(obj: Any, is_native: Callable[[Any], bool]) -> bool:
    """Whether ``obj`` holds a domain, a grid search or a library object (``is_native``)."""
    if is_native(obj):
        return True
    if isinstance(obj, dict):
        return grid_values(obj, ()) is not None or \
            any(holds_search(v, is_native) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return any(holds_search(v, is_native) for v in obj)
    return isinstance(obj, Domain)


def walk_space(space: Any, given_as: str, *, searcher: str, library: str, space_takes: str,
               convert: Callable[[Domain, tuple], Any], is_native: Callable[[Any], bool],
               convert_native: Callable[[Any, tuple], Any] | None = None,
               natives_in_param_space: bool = True, keep_constants: bool = False,
               grid_hint: str = "") -> dict:
    """The flat ``{name: converted}`` of a (nested) space of domains and library objects.

    Parameters
    ----------
    space : dict
        The space: ``param_space`` (``given_as="param_space"``) or the
        searcher's ``space=`` (``given_as="space"``).
    given_as : {"param_space", "space"}
        Where it comes from, for messages; constants of ``param_space`` are
        left out (the sweep merges them into every config).
    searcher, library : str
        The searcher's class name and the library's name, for messages.
    space_takes : str
        What ``space=`` may hold (``"domains and Optuna distributions"``),
        for the message that refuses a constant there.
    convert : callable
        ``convert(domain, path)``: the library's object for a domain.
    is_native : callable
        Whether an object is the library's own.
    convert_native : callable, optional
        ``convert_native(obj, path)``: what a library object becomes (it may
        check it); by default it is kept as it is.
    natives_in_param_space : bool, default=True
        Whether library objects are searched in ``param_space`` too;
        otherwise they are searched in ``space=`` only, and are constants
        of ``param_space`` (BayesOpt's ``(low, high)`` is a tuple there).
    keep_constants : bool, default=False
        Whether constants of ``space=`` are kept (as they are, by name);
        otherwise they are refused.
    grid_hint : str, optional
        What to do instead of a grid search, for the message that refuses
        one; by default, ``choice`` or running the grid without the
        searcher.

    Raises
    ------
    TypeError
        If ``space`` is not a dict, or for a key that is not a str on the way
        to a domain.
    ValueError
        For a grid search, a domain inside a list, or a constant in
        ``space=`` (without ``keep_constants``).
    """
    if not isinstance(space, dict):
        raise TypeError(f"{given_as} must be a dict, got {space!r} of type "
                        f"{type(space).__name__}")
    compile_space(space)        # refuses Ray Tune's own objects and eval strings, as sweeps do
    if given_as != "space" and not natives_in_param_space:
        is_native = _nothing
    grid_hint = grid_hint or (f"use choice([...]) to let {library} pick among the values, or "
                              "leave search_alg out to run the grid")
    out: dict = {}

    def constant(path: tuple, value: Any) -> None:
        if given_as != "space":
            return
        if not keep_constants:
            raise ValueError(
                f"space= holds the constant {value!r} at {list(path)!r}; {searcher}(space=...) "
                f"takes only {space_takes}. Put constants in the Tuner's param_space: they are "
                "merged into every config")
        out[param_name(path, searcher)] = value

    def walk(obj: Any, path: tuple) -> None:
        if is_native(obj):
            out[param_name(path, searcher)] = obj if convert_native is None else \
                convert_native(obj, path)
        elif isinstance(obj, Domain):
            out[param_name(path, searcher)] = convert(obj, path)
        elif isinstance(obj, dict) and grid_values(obj, path) is not None:
            raise ValueError(
                f"{param_name(path, searcher)!r} is a grid_search(), which {searcher} cannot "
                f"search ({library} draws configs one by one; it does not cross a grid); "
                f"{grid_hint}")
        elif isinstance(obj, dict):
            for key, value in obj.items():
                walk(value, path + (key,))
        elif isinstance(obj, (list, tuple)) and holds_search(obj, is_native):
            raise ValueError(
                f"the search space has a domain inside the list at {list(path)!r}, which "
                f"{searcher} cannot name; use a dict ({{'0': ..., '1': ...}}) instead")
        else:
            constant(path, obj)

    walk(space, ())
    return out


def _nothing(obj: Any) -> bool:
    """No object is the library's own (:func:`walk_space` in ``param_space``)."""
    return False


def flatten(config: dict, path: tuple = ()) -> dict:
    """``{"a": {"b": 1}}`` as ``{"a/b": 1}``."""
    out = {}
    for key, value in config.items():
        if isinstance(value, dict) and value:
            out.update(flatten(value, path + (key,)))
        else:
            out[SEP.join(str(k) for k in path + (key,))] = value
    return out


def unflatten(params: dict) -> dict:
    """``{"a/b": 1}`` as ``{"a": {"b": 1}}`` (the config a trial gets)."""
    out: dict = {}
    for name, value in params.items():
        *outer, last = name.split(SEP)
        node = out
        for key in outer:
            node = node.setdefault(key, {})
        node[last] = value
    return out


# ----------------------------------------------------------------- points to evaluate

def check_points(points: Any, rewards: Any = None) -> list[dict]:
    """``points_to_evaluate`` as a list of dicts, checked against ``evaluated_rewards``."""
    points = _check_point_list(points)
    if rewards is not None:
        if not isinstance(rewards, (list, tuple)):
            raise TypeError(f"evaluated_rewards must be a list, got {rewards!r} of type "
                            f"{type(rewards).__name__}")
        if len(rewards) != len(points):
            raise ValueError(
                f"evaluated_rewards must give one value per point of points_to_evaluate, got "
                f"{len(rewards)} values for {len(points)} points")
    return points


def split_point(point: dict, names: Collection[str], constants: Mapping | None = None) -> dict:
    """The value ``point`` gives each parameter of ``names``, as ``{name: value}``.

    ``point`` is nested as the config is, or has ``"outer/inner"`` keys; a
    parameter's value may itself be a dict (a category of a choice, say).
    It may also give the constants of ``param_space`` (``constants``, flat
    names), as a whole config copied from an earlier run does, if it gives
    them the values they have. ``constants=None`` means that ``param_space``
    is not known yet (a searcher given ``space=``, a metric and a mode sets
    up in its constructor): the keys of ``point`` that are no parameter are
    then left unchecked, for a second call once it is known.

    Raises
    ------
    ValueError
        If a parameter has no value in ``point``, ``point`` has a key that
        is no parameter, or it gives a constant another value.
    """
    found: dict = {}
    unknown: list[str] = []
    conflicts: list[str] = []

    def other_leaves(key: Any, value: Any, path: tuple) -> None:
        if constants is None:       # checked once param_space is known
            return
        for leaf, given in flatten({key: value}, path).items():
            if leaf not in constants:
                unknown.append(leaf)
            elif not _same_constant(given, constants[leaf]):
                conflicts.append(f"{leaf!r}: {given!r} (param_space: {constants[leaf]!r})")

    def visit(node: dict, path: tuple) -> None:
        for key, value in node.items():
            here = path + (key,)
            full = SEP.join(str(k) for k in here)
            if full in names:
                found[full] = value
            elif isinstance(value, dict) and value and \
                    any(n.startswith(full + SEP) for n in names):
                visit(value, here)
            else:
                other_leaves(key, value, path)

    visit(point, ())
    missing = sorted(set(names) - set(found))
    problems = []
    if missing:
        problems.append(f"missing {missing!r}")
    if unknown:
        problems.append(f"not in the space {sorted(unknown)!r}")
    if conflicts:
        problems.append(f"other values than the constants of param_space: "
                        f"{', '.join(sorted(conflicts))}")
    if problems:
        raise ValueError(
            f"the point {point!r} does not fit the search space: {'; '.join(problems)}. A "
            f"point of points_to_evaluate gives a value to each of {sorted(names)!r} "
            "(nested as in the config); it may give param_space's constants too, with "
            "their own values")
    return {name: found[name] for name in names}


def _same_constant(given: Any, constant: Any) -> bool:
    """Whether a point's value is the constant's (``==``, which may fail or be no bool)."""
    try:
        return bool(given == constant)
    except Exception:        # noqa: BLE001 - numpy arrays and odd types: not the same
        return given is constant


def constant_leaves(config: Any) -> dict:
    """The constants of ``param_space`` by flat name: its leaves that are no domain.

    (A library's own object there, searched like a domain, is listed too;
    harmless: a point's value for a searched name never reaches the check.)
    """
    if not isinstance(config, dict):
        return {}
    return {name: value for name, value in flatten(config).items()
            if not isinstance(value, Domain)}


# ------------------------------------------------------------------------ searcher

class ExternalSearcher(Searcher):
    """A searcher that asks a library for configs: its space, metric and mode, as in Ray.

    A subclass keeps its converted space in ``self._space`` (``None`` until
    known) and the flat params of each running trial it suggested in
    ``self._configs`` (by trial id), and defines the hooks :meth:`_to_space`,
    :meth:`_is_native`, :meth:`_setup`, :meth:`_ask`, :meth:`_state` and
    :meth:`_set_state`, and the class attributes below.
    """

    #: the library's module, and its oldest version that works
    _MODULE = ""
    _MIN_VERSION: tuple[int, ...] = ()
    #: the extra of fastasha that installs it, and its name on PyPI ("": the module's)
    _EXTRA = ""
    _PACKAGE = ""
    #: the attribute that holds the library's module (not pickled)
    _MODULE_ATTR = ""
    #: the attribute that holds the library's state (a study, trials): None until set up
    _STATE_ATTR = ""
    #: the "format" of the state ``save`` writes
    _STATE_FORMAT = ""
    #: whether the library's own objects in param_space are searched (else: constants)
    _NATIVES_IN_PARAM_SPACE = True
    #: the domains to put in param_space, for messages
    _DOMAINS = "tune.uniform(...), tune.choice([...]), ..."
    #: whether the library optimises several metrics at once (Ray's lists of metrics
    #: and modes); one that does not refuses them (:meth:`_refuse_lists`)
    _SEVERAL_METRICS = False

    _space: Any = None
    _configs: dict                  # running trial id -> its params (flat); set by __init__
    _completed: set                 # ids of the trials that ended; set by __init__
    _metric_defaulted = False       # metric set to DEFAULT_METRIC by _fill_metric
    # param_space's constants by flat name (never mutated); None until param_space is
    # known (set_search_properties), or the first suggestion of a searcher used alone
    _constants: dict | None = None

    # ------------------------------------------------------------ hooks

    def _to_space(self, space: Any, given_as: str) -> Any:
        """The converted space of ``space`` (see :func:`walk_space`)."""
        raise NotImplementedError

    def _is_native(self, obj: Any) -> bool:
        """Whether ``obj`` is the library's own search-space object."""
        raise NotImplementedError

    def _setup(self) -> None:
        """Set up the library's state, once the space and the mode are known."""
        raise NotImplementedError

    def _ask(self, trial_id: str) -> dict | str | None:
        """The flat params (``{"outer/inner": value}``) of a new trial ``trial_id``.

        Or what :meth:`suggest` returns instead of a config: ``None`` (ask
        again later) or ``Searcher.FINISHED``.
        """
        raise NotImplementedError

    def _ready(self) -> bool:
        """Whether the library's state is set up."""
        return getattr(self, self._STATE_ATTR, None) is not None

    def _point_names(self) -> Collection[str] | None:
        """The names a point of ``points_to_evaluate`` gives values to (None: not checked).

        :meth:`_check_points_again` checks the points against them once
        ``param_space`` is known.
        """
        raise NotImplementedError

    def _import(self) -> Any:
        """The library's module (:func:`import_library`)."""
        return import_library(self._MODULE, type(self).__name__, self._MIN_VERSION,
                              extra=self._EXTRA, package=self._PACKAGE)

    # ------------------------------------------------------------ shared steps

    def _fill_metric(self) -> None:
        """Refuse a missing mode; a mode alone optimises Ray's ``"_metric"`` (as in Ray)."""
        name = type(self).__name__
        if self.mode is None:
            raise ValueError(
                f"{name} needs a mode ('min' or 'max'): give it to {name}(metric=..., "
                "mode=...) or to TuneConfig(metric=..., mode=...)")
        if self.metric is None and isinstance(self.mode, str):
            self._metric = DEFAULT_METRIC
            self._metric_defaulted = True       # the sweep's metric may still replace it
        _check_metric_mode(self.metric, self.mode)

    def _require_ready(self, what: str) -> None:
        """A RuntimeError unless the searcher has a space, a metric and a mode."""
        name = type(self).__name__
        if self._space is None:
            raise RuntimeError(
                f"{name}.{what} has no search space to work on: give domains in the "
                f"Tuner's param_space, or {name}(space=...)")
        if not self._ready():
            raise RuntimeError(
                f"{name}.{what} needs a metric and a mode: give them to "
                f"{name}(metric=..., mode=...) or to TuneConfig(metric=..., mode=...)")

    def _know_constants(self, config: Any) -> None:
        """Take the constants of ``param_space`` (``config``), which a point may give.

        A searcher set up in its constructor (``space=``, a metric and a
        mode) took its points before ``param_space`` was known, leaving
        their other keys unchecked (:func:`split_point`); they are checked
        here, against these constants.
        """
        unchecked = self._constants is None and self._ready()
        self._constants = constant_leaves(config)
        names = self._point_names() if unchecked else None
        if names is not None:
            for point in getattr(self, "_points_to_evaluate", None) or ():
                split_point(point, names, self._constants)

    def _stray_end(self, trial_id: str, running: Collection[str],
                   completed: Collection[str], stacklevel: int = 3) -> bool:
        """Whether the end of ``trial_id`` is to be ignored (warned of): ended, or unknown.

        A trial that runs is not: its id may have been suggested again after
        it ended (a new trial).
        """
        if trial_id in running:
            return False
        known = "already ended" if trial_id in completed else "was not suggested by it"
        warnings.warn(f"{type(self).__name__} heard the end of trial {trial_id}, which "
                      f"{known}; ignored", UserWarning, stacklevel=stacklevel)
        return True

    def _end_of(self, trial_id: str, running: dict) -> Any:
        """What ``running`` held for trial ``trial_id``, which has ended; None for a stray end.

        The trial leaves ``running`` and ``self._configs`` and joins
        ``self._completed``; the end of a trial that is not running is
        warned of (:meth:`_stray_end`) and ignored. ``running`` holds no
        ``None`` values.
        """
        if self._stray_end(trial_id, running, self._completed, stacklevel=4):
            return None
        value = running.pop(trial_id)     # (first: running may be self._configs itself)
        self._configs.pop(trial_id, None)
        self._completed.add(trial_id)
        return value

    def _state(self) -> dict:
        """What :meth:`save` keeps besides the metric and the mode (picklable values)."""
        raise NotImplementedError

    def _set_state(self, state: dict) -> None:
        """Take back what :meth:`_state` gave (``state`` has the metric and mode too)."""
        raise NotImplementedError

    # -------------------------------------------------------------------- state

    def save(self, checkpoint_path: str) -> None:
        """Pickle the searcher's state (the library's, and the running trials) to a file."""
        state = {"format": self._STATE_FORMAT, "metric": self._metric, "mode": self._mode,
                 **self._state()}
        with open(checkpoint_path, "wb") as f:
            pickle.dump(state, f, protocol=pickle.HIGHEST_PROTOCOL)

    def restore(self, checkpoint_path: str) -> None:
        """Take back the state :meth:`save` wrote (it replaces this searcher's).

        Raises
        ------
        ValueError
            If the file was not written by :meth:`save`.
        """
        with open(checkpoint_path, "rb") as f:
            state = pickle.load(f)
        if not isinstance(state, dict) or state.get("format") != self._STATE_FORMAT:
            raise ValueError(f"{checkpoint_path} is not a state saved by "
                             f"{type(self).__name__}.save")
        self._metric, self._mode = state["metric"], state["mode"]
        self._set_state(state)

    # ------------------------------------------------------------ the sweep's calls

    def set_search_properties(self, metric: str | None, mode: str | None, config: dict,
                              **spec: Any) -> bool:
        """Take the search space from ``param_space`` (``config``), and the metric and mode.

        Without ``space=``, the domains of ``config`` (nested ones too)
        become the searcher's space, and ``metric`` and ``mode``, when
        given, replace the searcher's own (as in Ray). With ``space=``, the
        searcher keeps its space; ``metric`` and ``mode`` fill in only those
        it lacks, ``metric`` also the ``"_metric"`` a searcher given only a
        mode optimises (Ray ignores them here).

        Parameters
        ----------
        metric, mode, config, **spec
            ``TuneConfig.metric``, ``TuneConfig.mode``, the Tuner's
            ``param_space``, and what else the sweep passes (see
            :meth:`Searcher.set_search_properties`; not used).

        Returns
        -------
        bool
            ``True`` when the space was taken from ``config``; ``False``
            when the searcher had ``space=`` (``config`` then holds
            constants only).

        Raises
        ------
        ValueError
            If ``config`` holds domains while ``space=`` was given (the
            space given twice), if neither holds any domain, or for a domain
            the library cannot search.
        """
        name = type(self).__name__
        # a point of points_to_evaluate may give these (a config copied whole)
        self._know_constants(config)
        if self._space is not None:
            is_native = self._is_native if self._NATIVES_IN_PARAM_SPACE else _nothing
            if config and holds_search(config, is_native):
                raise ValueError(
                    f"the search space was given twice: to {name}(space=...) and as "
                    "domains in the Tuner's param_space. Give it once: either drop space= "
                    "(the searcher then takes param_space's domains) or keep only constants "
                    "in param_space")
            if metric and self._metric_defaulted:
                # given only a mode: the sweep's metric, not the "_metric" no result has
                # (no trial would tell the library anything)
                self._metric, self._metric_defaulted = metric, False
            super().set_search_properties(metric, mode, config)
            if not self._ready():
                self._setup()
            return False
        space = self._to_space(config or {}, "param_space")
        if not space:
            raise ValueError(
                f"{name} has no search space: param_space holds no domain and no space= "
                f"was given. Put domains in param_space ({self._DOMAINS}) or pass "
                f"{name}(space=...)")
        previous = (self._metric, self._mode, self._metric_defaulted)
        if metric:
            self._metric = metric
        if mode:
            self._mode = mode
        try:
            self._check_metric_mode()
            self._space = space
            self._setup()
        except (TypeError, ValueError):
            # as it was: a call with what was missing (a mode, say) may follow
            self._metric, self._mode, self._metric_defaulted = previous
            self._space = None
            raise
        return True

    def _check_metric_mode(self) -> None:
        """Ray's rules for the metric and the mode; lists of them only where the library
        optimises several metrics (a subclass may refuse more)."""
        _check_metric_mode(self._metric, self._mode)
        if not self._SEVERAL_METRICS:
            self._refuse_lists()

    def _refuse_lists(self) -> None:
        """A ValueError for a list of metrics or modes, which a library of one objective refuses.

        (The same error from every such searcher: the values are of the right
        types, a list being Ray's form of several objectives, but this
        searcher takes one.)
        """
        if isinstance(self._metric, list) or isinstance(self._mode, list):
            raise ValueError(
                f"{type(self).__name__} optimises one metric, got metric={self._metric!r} and "
                f"mode={self._mode!r}; give one result key and 'min' or 'max' (metric='loss', "
                "mode='min'), or use OptunaSearch, which optimises several")

    def suggest(self, trial_id: str) -> dict | str | None:
        """The config of trial ``trial_id``, asked of the library.

        Asked again with the same id while the trial runs, it gives the same
        config. Nested parameters (``"outer/inner"``) come back as nested
        dicts.

        Raises
        ------
        RuntimeError
            If the searcher has no search space, metric or mode yet.
        """
        params = self._configs.get(trial_id)
        if params is None:
            self._require_ready("suggest")
            if self._constants is None:     # used alone, without a sweep: no constants
                self._know_constants({})
            params = self._ask(trial_id)
            if not isinstance(params, dict):        # None or Searcher.FINISHED
                return params
            self._configs[trial_id] = params
        return unflatten(copy.deepcopy(params))

    # -------------------------------------------------------------------- pickling

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state.pop(self._MODULE_ATTR, None)         # a module does not pickle
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        setattr(self, self._MODULE_ATTR, self._import())
