"""Search-space domains and the Ray-Tune-named functions that build them.

A domain says which values a hyperparameter may take and how to draw them.
There are four kinds, all frozen dataclasses: :class:`Float`,
:class:`Integer`, :class:`Categorical` and :class:`Function` (a
``sample_from`` callable). Each has a vectorised ``sample(rng, n)`` that
draws ``n`` values with an explicit :class:`numpy.random.Generator` and
returns them as a list of plain Python objects (``float``, ``int`` or the
categories themselves, never numpy scalars). Domains are checked when they
are built, so an invalid one fails at once, not in the middle of a sweep.

Users build domains with the Ray Tune 2.x functions :func:`uniform`,
:func:`quniform`, :func:`loguniform`, :func:`qloguniform`, :func:`randn`,
:func:`qrandn`, :func:`randint`, :func:`qrandint`, :func:`lograndint`,
:func:`qlograndint`, :func:`choice` and :func:`sample_from`;
:func:`grid_search` returns Ray's ``{"grid_search": [...]}`` marker.

Bounds, as in Ray Tune's documentation:

============================  ==============  ==============================
function                      upper bound     values
============================  ==============  ==============================
``uniform``, ``loguniform``   exclusive       floats in ``[lower, upper)``
``quniform``, ``qloguniform`` inclusive       multiples of ``q``
``randn``, ``qrandn``         unbounded       floats (multiples of ``q``)
``randint``, ``lograndint``   exclusive       ints in ``[lower, upper)``
``qrandint``, ``qlograndint`` inclusive       int multiples of ``q``
============================  ==============  ==============================

Quantised values are ``round(value / q) * q`` (numpy's ``round``), as in
Ray Tune.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Iterable, Mapping, Set
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._validation import check_choice, check_int, check_real
from ._spec import Spec

FLOAT_SAMPLERS = ("uniform", "loguniform", "normal")
INTEGER_SAMPLERS = ("uniform", "loguniform")
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

__all__ = [
    "Categorical",
    "Domain",
    "Float",
    "Function",
    "Integer",
    "choice",
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
    "uniform",
]


# --------------------------------------------------------------------------- checks


def _finite(name: str, value: Any, hint: str = "") -> float:
    x = check_real(name, value)
    if not math.isfinite(x):
        raise ValueError(f"{name} must be a finite number, got {value!r}{hint}")
    return x


def _positive(name: str, value: Any, hint: str) -> float:
    x = _finite(name, value, hint)
    if not x > 0:
        raise ValueError(f"{name} must be greater than 0, got {value!r}{hint}")
    return x


def _check_order(lower: Any, upper: Any) -> None:
    if not lower < upper:
        raise ValueError(
            f"lower must be less than upper, got lower={lower!r}, upper={upper!r}; "
            "swap them if they are reversed, or use a constant instead of a domain "
            "if they are equal"
        )


def _check_base(base: Any) -> float:
    b = _finite("base", base)
    if not b > 0 or b == 1:
        raise ValueError(
            f"base must be greater than 0 and not 1, got base={base!r}; the base does not "
            "change a log-uniform distribution, so leave it at the default 10"
        )
    return b


def _log_base(sampler: str, base: Any, lower: Any, shown_lower: Any, zero_hint: str) -> float | None:
    """The base of a log-uniform domain (10 by default); a base for any other sampler is an error.

    ``lower`` is the checked lower bound, ``shown_lower`` the value as given
    (for the message); ``zero_hint`` says what to use for a range with 0.
    """
    if sampler != "loguniform":
        if base is not None:
            raise ValueError(
                f"base is only used with sampler='loguniform', got base={base!r} "
                f"with sampler={sampler!r}; leave it as None"
            )
        return None
    if not lower > 0:
        raise ValueError(
            f"lower must be greater than 0 for a log-uniform domain, got "
            f"lower={shown_lower!r}; {zero_hint}"
        )
    return _check_base(10.0 if base is None else base)


def _check_int64(name: str, value: Any) -> int:
    x = check_int(name, value)
    if not INT64_MIN <= x <= INT64_MAX:
        raise ValueError(
            f"{name} must fit in a 64-bit signed integer, got {value!r}; "
            f"use a value between {INT64_MIN} and {INT64_MAX}"
        )
    return x


def _check_rng(rng: Any) -> None:
    if not isinstance(rng, np.random.Generator):
        raise TypeError(
            f"rng must be a numpy.random.Generator, got {rng!r} of type "
            f"{type(rng).__name__}; create one with np.random.default_rng(seed)"
        )


def _check_n(n: Any) -> int:
    return check_int("n", n, minimum=0, hint="; it is the number of values to draw")


def _as_generator(random_state: Any) -> np.random.Generator:
    """The generator of Ray's ``random_state``: None, a seed, a Generator or a RandomState."""
    if random_state is None:
        return np.random.default_rng()
    if isinstance(random_state, np.random.Generator):
        return random_state
    if isinstance(random_state, np.random.RandomState):
        return np.random.default_rng(random_state.randint(0, 2**32, dtype=np.uint64))
    if isinstance(random_state, (int, np.integer)) and not isinstance(random_state, bool):
        if random_state < 0:
            raise ValueError(f"random_state must be a seed of at least 0, got {random_state}")
        return np.random.default_rng(int(random_state))
    raise TypeError(
        f"random_state must be None, a seed (int), a numpy.random.Generator or a "
        f"numpy.random.RandomState, got {random_state!r} of type {type(random_state).__name__}"
    )


def as_options(name: str, values: Any) -> list:
    """Return ``values`` as a new non-empty list; used for categories and grid values.

    Lists, tuples, ranges, 1-d or n-d numpy arrays (converted with
    ``tolist()``, so the items are plain Python objects) and other iterables
    are accepted. Strings, mappings and sets are refused: they are almost
    always a mistake, and a set has no fixed order, so sampling from it would
    not be reproducible.
    """
    if isinstance(values, np.ndarray) and values.ndim > 0:
        out = values.tolist()
    elif isinstance(values, (str, bytes, bytearray)):
        raise TypeError(
            f"{name} must be a list of options, got the string {values!r}; "
            f"pass [{values!r}] for a single option"
        )
    elif isinstance(values, Mapping):
        raise TypeError(
            f"{name} must be a list of options, got a mapping {values!r}; "
            "pass list(d.values()) or list(d) to choose among its values or keys"
        )
    elif isinstance(values, Set):
        raise TypeError(
            f"{name} must be a list of options, got a set {values!r}; sets have no fixed "
            "order, so the draws would not be reproducible: pass sorted(values) or a list"
        )
    elif isinstance(values, Iterable):
        out = list(values)
    else:
        raise TypeError(
            f"{name} must be a list of options, got {values!r} of type "
            f"{type(values).__name__}; pass a list such as [1, 2, 3]"
        )
    if not out:
        raise ValueError(f"{name} must not be empty, got {values!r}; give at least one option")
    return out


def _multiple_index(name: str, value: float, q: float) -> int:
    """``value / q`` as an int, or a ValueError if ``value`` is not a multiple of ``q``.

    Tolerance as in Ray Tune: ``math.isclose(value / q, round(value / q))``.
    """
    ratio = value / q
    k = round(ratio)
    if not math.isclose(ratio, k):
        below, above = math.floor(ratio) * q, math.ceil(ratio) * q
        raise ValueError(
            f"{name}={value!r} is not a multiple of q={q!r} ({name} / q = {ratio!r}); "
            f"quantised domains need bounds that are multiples of q, such as "
            f"{name}={below:.12g} or {name}={above:.12g}"
        )
    return k


# --------------------------------------------------------------------------- domains


@dataclass(frozen=True)
class Domain:
    """Base class of the search-space domains.

    A domain is immutable and knows how to draw values with an explicit
    random number generator. Subclasses implement :meth:`draw`;
    :meth:`sample` takes Ray Tune's arguments as well.
    """

    def sample(self, config: Any = None, size: int = 1, random_state: Any = None) -> Any:
        """Draw values: Ray Tune's ``sample()``, or fastasha's ``sample(rng, n)``.

        Parameters
        ----------
        config : dict, list of dict, None or numpy.random.Generator, default=None
            As in Ray Tune, the config a ``sample_from`` function sees
            (``spec.config``; the function reads it in either of Ray's
            styles, see :func:`sample_from`), or a list of ``size`` configs,
            one for each value; other domains ignore it. A
            ``numpy.random.Generator`` here means ``sample(rng, n)``: the same
            as :meth:`draw`, a list of ``n`` values.
        size : int, default=1
            How many values to draw.
        random_state : None, int, numpy.random.Generator or numpy.random.RandomState
            The source of randomness, as in Ray Tune: a seed, a generator
            (drawn from), a ``RandomState`` (a seed is drawn from it), or
            None for fresh entropy (fastasha never uses numpy's global
            random state).

        Returns
        -------
        object or list
            One value when ``size`` is 1, else a list of ``size`` values, as
            in Ray Tune (``sample(rng, n)`` always gives a list).

        Examples
        --------
        >>> randint(1, 10).sample(random_state=0) in range(1, 10)
        True
        >>> len(uniform(0, 1).sample(size=3))
        3
        """
        if isinstance(config, np.random.Generator):        # sample(rng, n)
            if random_state is not None:
                raise TypeError("sample(rng, n) takes no random_state: the rng is the source "
                                "of randomness")
            return self.draw(config, size)
        size = check_int("size", size, minimum=1, hint="; it is the number of values to draw")
        many = isinstance(config, list)         # Ray's: one config per value
        for item in config if many else [config]:
            if item is not None and not isinstance(item, Mapping):
                raise TypeError(
                    f"sample() takes the config dict (or None) first, as in Ray Tune (or a "
                    f"list of them, one per value), or a numpy.random.Generator as in "
                    f"sample(rng, n); got "
                    f"{item!r} of type {type(item).__name__}. Pass a seed as "
                    "sample(random_state=seed)"
                )
        if many and len(config) != size:
            raise ValueError(f"sample() got {len(config)} configs for size={size}; give one "
                             "config per value, or a single config dict for all of them")
        configs = [None if c is None else dict(c) for c in config] if many else \
            None if config is None else dict(config)
        values = self._draw_in(_as_generator(random_state), size, configs)
        return values[0] if size == 1 else values

    def _draw_in(self, rng: np.random.Generator, n: int, config: dict | list | None) -> list:
        """:meth:`draw` for :meth:`sample` (a ``sample_from`` function sees ``config``, or
        ``config[i]`` for its ``i``-th value)."""
        return self.draw(rng, n)

    def draw(self, rng: np.random.Generator, n: int) -> list:
        """Draw ``n`` values with ``rng``; implemented by every subclass.

        Parameters
        ----------
        rng : numpy.random.Generator
            Source of randomness; the global numpy RNG is never used.
        n : int
            Number of values, at least 0.

        Returns
        -------
        list
            ``n`` plain Python values.
        """
        raise NotImplementedError(f"{type(self).__name__} does not implement draw()")


@dataclass(frozen=True)
class Float(Domain):
    """A float hyperparameter: uniform, log-uniform or normal, optionally quantised.

    Build one with :func:`uniform`, :func:`quniform`, :func:`loguniform`,
    :func:`qloguniform`, :func:`randn` or :func:`qrandn`.

    Parameters
    ----------
    lower, upper : float or None, default=None
        Bounds of the ``"uniform"`` and ``"loguniform"`` samplers, finite
        with ``lower < upper`` (and ``lower > 0`` for ``"loguniform"``);
        ``None`` for ``"normal"``. Without ``q`` the values lie in
        ``[lower, upper)``; with ``q`` in ``[lower, upper]``, both bounds
        included, and the bounds must be multiples of ``q``.
    sampler : {"uniform", "loguniform", "normal"}, default="uniform"
        The distribution.
    q : float or None, default=None
        Quantisation step: values are ``round(x / q) * q``, where ``x`` is
        drawn from the sampler between the bounds.
    base : float or None, default=None
        Logarithm base of ``"loguniform"`` (10 when ``None``); it does not
        change the distribution and is kept for Ray Tune compatibility. Must
        be ``None`` for the other samplers.
    mean, sd : float or None, default=None
        Mean and standard deviation of ``"normal"`` (0 and 1 when
        ``None``); must be ``None`` for the other samplers.

    Raises
    ------
    TypeError
        If a bound, ``q``, ``base``, ``mean`` or ``sd`` is not a real number.
    ValueError
        For an unknown sampler, a non-finite number, ``lower >= upper``,
        ``lower <= 0`` with ``"loguniform"``, ``q <= 0``, ``sd <= 0``, a bound
        that is not a multiple of ``q``, or a parameter the sampler does not
        use.

    Examples
    --------
    >>> import numpy as np
    >>> from fastasha.search import Float
    >>> d = Float(0.0, 1.0, sampler="uniform", q=0.25)
    >>> values = d.sample(np.random.default_rng(0), 1000)
    >>> sorted(set(values))
    [0.0, 0.25, 0.5, 0.75, 1.0]
    """

    lower: float | None = None
    upper: float | None = None
    sampler: str = "uniform"
    q: float | None = None
    base: float | None = None
    mean: float | None = None
    sd: float | None = None

    def __post_init__(self) -> None:
        check_choice("sampler", self.sampler, FLOAT_SAMPLERS)
        setattr_ = object.__setattr__
        if self.sampler == "normal":
            if self.lower is not None or self.upper is not None:
                raise ValueError(
                    f"lower and upper must be None for sampler='normal', got "
                    f"lower={self.lower!r}, upper={self.upper!r}; a normal distribution is "
                    "unbounded: use randn(mean, sd), or uniform(lower, upper) for bounds"
                )
            _log_base(self.sampler, self.base, None, None, "")
            setattr_(self, "mean", _finite("mean", 0.0 if self.mean is None else self.mean))
            setattr_(self, "sd", _positive(
                "sd", 1.0 if self.sd is None else self.sd,
                "; it is the standard deviation of the normal distribution"))
        else:
            if self.mean is not None or self.sd is not None:
                raise ValueError(
                    f"mean and sd are only used with sampler='normal', got mean={self.mean!r}, "
                    f"sd={self.sd!r} with sampler={self.sampler!r}; leave them as None"
                )
            lower = _finite("lower", self.lower)
            upper = _finite("upper", self.upper)
            _check_order(self.lower, self.upper)
            setattr_(self, "base", _log_base(
                self.sampler, self.base, lower, self.lower,
                "pass the value itself, not its logarithm, or use uniform() for a range "
                "that includes 0"))
            setattr_(self, "lower", lower)
            setattr_(self, "upper", upper)
        if self.q is not None:
            q = _positive("q", self.q, "; it is the step that values are rounded to")
            if self.sampler != "normal":
                _multiple_index("lower", self.lower, q)
                _multiple_index("upper", self.upper, q)
            setattr_(self, "q", q)

    def draw(self, rng: np.random.Generator, n: int) -> list[float]:
        """Draw ``n`` floats with ``rng``.

        Parameters
        ----------
        rng : numpy.random.Generator
            Source of randomness.
        n : int
            Number of values, at least 0.

        Returns
        -------
        list of float
            Python floats. Without ``q``: in ``[lower, upper)`` for the
            bounded samplers. With ``q``: ``round(x / q) * q``, which reaches
            both bounds (up to the rounding of ``k * q`` in float64).

        Raises
        ------
        TypeError
            If ``rng`` is not a ``numpy.random.Generator`` or ``n`` not an int.
        ValueError
            If ``n < 0``.
        """
        _check_rng(rng)
        n = _check_n(n)
        q = self.q
        if self.sampler == "normal":
            x = rng.normal(self.mean, self.sd, n)
            return (np.round(x / q) * q).tolist() if q is not None else x.tolist()
        if q is None:
            lo, hi = self.lower, self.upper
        else:
            k_lo = _multiple_index("lower", self.lower, q)
            k_hi = _multiple_index("upper", self.upper, q)
            lo, hi = k_lo * q, k_hi * q
        if self.sampler == "uniform":
            x = rng.uniform(lo, hi, n)
        else:
            x = np.exp(rng.uniform(math.log(lo), math.log(hi), n))
        if q is None:
            # float rounding can land exactly on (or, for exp, past) a bound
            x = np.clip(x, lo, np.nextafter(hi, -np.inf))
            return x.tolist()
        return (np.clip(np.round(x / q), k_lo, k_hi) * q).tolist()


@dataclass(frozen=True)
class Integer(Domain):
    """An integer hyperparameter: uniform or log-uniform, optionally quantised.

    Build one with :func:`randint`, :func:`qrandint`, :func:`lograndint` or
    :func:`qlograndint`.

    Parameters
    ----------
    lower, upper : int
        Bounds, with ``lower < upper`` (and ``lower > 0`` for
        ``"loguniform"``), within the 64-bit signed range.
    sampler : {"uniform", "loguniform"}, default="uniform"
        The distribution.
    q : int or None, default=None
        ``None``: values lie in ``[lower, upper)``, upper bound excluded
        (:func:`randint`, :func:`lograndint`). An int ``q >= 1``: values are
        the multiples of ``q`` in ``[lower, upper]``, upper bound included
        (:func:`qrandint`, :func:`qlograndint`); there must be at least one.
    base : float or None, default=None
        Logarithm base of ``"loguniform"`` (10 when ``None``); it does not
        change the distribution. Must be ``None`` for ``"uniform"``.

    Raises
    ------
    TypeError
        If ``lower``, ``upper`` or ``q`` is not an int, or ``base`` not a real.
    ValueError
        For an unknown sampler, ``lower >= upper``, ``lower <= 0`` with
        ``"loguniform"``, ``q < 1``, no multiple of ``q`` between the bounds,
        or a bound outside the 64-bit range.

    Examples
    --------
    >>> import numpy as np
    >>> from fastasha.search import Integer
    >>> sorted(set(Integer(1, 4).sample(np.random.default_rng(0), 100)))
    [1, 2, 3]
    >>> sorted(set(Integer(1, 4, q=1).sample(np.random.default_rng(0), 100)))
    [1, 2, 3, 4]
    """

    lower: int
    upper: int
    sampler: str = "uniform"
    q: int | None = None
    base: float | None = None

    def __post_init__(self) -> None:
        check_choice("sampler", self.sampler, INTEGER_SAMPLERS)
        setattr_ = object.__setattr__
        lower = _check_int64("lower", self.lower)
        upper = _check_int64("upper", self.upper)
        _check_order(self.lower, self.upper)
        setattr_(self, "base", _log_base(self.sampler, self.base, lower, self.lower,
                                         "use randint() for a range that includes 0"))
        setattr_(self, "lower", lower)
        setattr_(self, "upper", upper)
        if self.q is not None:
            q = check_int("q", self.q, minimum=1,
                          hint="; it is the step that values are multiples of")
            if -(-lower // q) > upper // q:
                raise ValueError(
                    f"there is no multiple of q={q} between lower={lower} and upper={upper}; "
                    "widen the bounds or use a smaller q"
                )
            setattr_(self, "q", q)

    def draw(self, rng: np.random.Generator, n: int) -> list[int]:
        """Draw ``n`` ints with ``rng``.

        Parameters
        ----------
        rng : numpy.random.Generator
            Source of randomness.
        n : int
            Number of values, at least 0.

        Returns
        -------
        list of int
            Python ints. Without ``q``: in ``[lower, upper)``; ``"uniform"``
            gives each the same chance, ``"loguniform"`` floors a log-uniform
            draw. With ``q``: multiples of ``q`` in ``[lower, upper]``;
            ``"uniform"`` gives each multiple the same chance,
            ``"loguniform"`` rounds a log-uniform draw between the smallest
            and the largest multiple to the nearest multiple.

        Raises
        ------
        TypeError
            If ``rng`` is not a ``numpy.random.Generator`` or ``n`` not an int.
        ValueError
            If ``n < 0``.
        """
        _check_rng(rng)
        n = _check_n(n)
        q = self.q
        if q is None:
            if self.sampler == "uniform":
                return rng.integers(self.lower, self.upper, n).tolist()
            x = np.exp(rng.uniform(math.log(self.lower), math.log(self.upper), n))
            return np.clip(np.floor(x), self.lower, self.upper - 1).astype(np.int64).tolist()
        k_lo, k_hi = -(-self.lower // q), self.upper // q
        if self.sampler == "uniform":
            k = rng.integers(k_lo, k_hi + 1, n)
        else:
            x = np.exp(rng.uniform(math.log(k_lo * q), math.log(k_hi * q), n))
            k = np.clip(np.round(x / q), k_lo, k_hi).astype(np.int64)
        return [int(i) * q for i in k.tolist()]


@dataclass(frozen=True)
class Categorical(Domain):
    """A choice among categories, each equally likely; see :func:`choice`.

    Parameters
    ----------
    categories : sequence
        The options, at least one; stored as a tuple. Any objects may be
        categories, and a drawn value is the category object itself (not a
        copy, and never converted to a numpy type). Inside a search space a
        category may itself hold domains, which are then resolved too.

    Raises
    ------
    TypeError
        If ``categories`` is a string, mapping, set or not iterable.
    ValueError
        If ``categories`` is empty.

    Examples
    --------
    >>> import numpy as np
    >>> from fastasha.search import Categorical
    >>> Categorical(["relu", "tanh"]).sample(np.random.default_rng(0), 4)
    ['tanh', 'tanh', 'tanh', 'relu']
    """

    categories: tuple

    def __post_init__(self) -> None:
        object.__setattr__(self, "categories", tuple(as_options("categories", self.categories)))

    def sample_indices(self, rng: np.random.Generator, n: int) -> list[int]:
        """Draw ``n`` category indices; :meth:`draw` uses the same draws.

        Parameters
        ----------
        rng : numpy.random.Generator
            Source of randomness.
        n : int
            Number of indices, at least 0.

        Returns
        -------
        list of int
            Indices into ``categories``.
        """
        _check_rng(rng)
        n = _check_n(n)
        return rng.integers(0, len(self.categories), n).tolist()

    def draw(self, rng: np.random.Generator, n: int) -> list:
        """Draw ``n`` categories with ``rng``, each equally likely.

        Parameters
        ----------
        rng : numpy.random.Generator
            Source of randomness.
        n : int
            Number of values, at least 0.

        Returns
        -------
        list
            The category objects themselves.
        """
        categories = self.categories
        return [categories[i] for i in self.sample_indices(rng, n)]


@dataclass(frozen=True)
class Function(Domain):
    """A value computed by a user function; see :func:`sample_from`.

    Parameters
    ----------
    func : callable
        Called with one argument, a spec that reads the config resolved so
        far in both of Ray Tune's styles (``spec.config.x``,
        ``spec["config"]["x"]``, ``config["x"]``, ``config.x``) and has the
        generator's random number generator as ``spec.rng``; or with none
        if it takes no arguments.

    Raises
    ------
    TypeError
        If ``func`` is not callable.
    ValueError
        If ``func`` cannot be called with one argument or with none.
    """

    func: Callable[..., Any]
    pass_spec: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        func = self.func
        if not callable(func):
            raise TypeError(
                f"func must be callable, got {func!r} of type {type(func).__name__}; "
                "pass a function such as lambda spec: spec.config.x * 2"
            )
        try:
            sig = inspect.signature(func)
        except (TypeError, ValueError):  # some builtins have no signature
            pass_spec = True
        else:
            try:
                sig.bind(None)
                pass_spec = True
            except TypeError:
                try:
                    sig.bind()
                except TypeError as err:
                    raise ValueError(
                        f"func must take one argument (the spec) or none, got {func!r} with "
                        f"signature {sig}; write it as lambda spec: ..."
                    ) from err
                pass_spec = False
        object.__setattr__(self, "pass_spec", pass_spec)

    def call(self, spec: Spec) -> Any:
        """Call ``func`` with ``spec`` (or without arguments if it takes none).

        Parameters
        ----------
        spec : Spec
            The spec to pass.

        Returns
        -------
        object
            Whatever ``func`` returns, unchanged.
        """
        return self.func(spec) if self.pass_spec else self.func()

    def _draw_in(self, rng: np.random.Generator, n: int, config: dict | list | None) -> list:
        if isinstance(config, list):
            return [self.draw(rng, 1, c)[0] for c in config]
        return self.draw(rng, n, config)

    def draw(self, rng: np.random.Generator, n: int, config: dict | None = None) -> list:
        """Call ``func`` ``n`` times, with a spec over ``config``.

        Parameters
        ----------
        rng : numpy.random.Generator
            Given to the function as ``spec.rng``.
        n : int
            Number of calls, at least 0.
        config : dict or None, default=None
            What ``spec.config`` shows; an empty config when ``None``.

        Returns
        -------
        list
            The ``n`` return values.
        """
        _check_rng(rng)
        n = _check_n(n)
        spec = Spec({} if config is None else config, rng)
        return [self.call(spec) for _ in range(n)]


# --------------------------------------------------------------------------- Ray Tune names


def uniform(lower: float, upper: float) -> Float:
    """A float drawn uniformly from ``[lower, upper)``.

    Parameters
    ----------
    lower : float
        Lower bound, included.
    upper : float
        Upper bound, excluded; must be greater than ``lower``.

    Returns
    -------
    Float

    Raises
    ------
    TypeError
        If a bound is not a real number.
    ValueError
        If a bound is not finite or ``lower >= upper``.

    Examples
    --------
    >>> import numpy as np
    >>> from fastasha.search import uniform
    >>> values = uniform(-5, -1).sample(np.random.default_rng(0), 1000)
    >>> all(-5 <= v < -1 for v in values)
    True
    """
    return Float(lower, upper, "uniform")


def quniform(lower: float, upper: float, q: float) -> Float:
    """A float drawn uniformly between the bounds and rounded to a multiple of ``q``.

    The value is ``round(x / q) * q`` with ``x`` uniform on
    ``[lower, upper]``, so both bounds can come out (each half as often as
    an inner multiple). The bounds must be multiples of ``q``, as in Ray
    Tune.

    Parameters
    ----------
    lower, upper : float
        Bounds, both included; ``lower < upper``.
    q : float
        Step, greater than 0.

    Returns
    -------
    Float

    Raises
    ------
    TypeError
        If an argument is not a real number.
    ValueError
        If ``lower >= upper``, ``q <= 0``, a value is not finite, or a bound
        is not a multiple of ``q``.

    Examples
    --------
    >>> import numpy as np
    >>> from fastasha.search import quniform
    >>> values = quniform(0, 1, 0.5).sample(np.random.default_rng(0), 100)
    >>> sorted(set(values))
    [0.0, 0.5, 1.0]
    """
    return Float(lower, upper, "uniform", q=q)


def loguniform(lower: float, upper: float, base: float = 10) -> Float:
    """A float drawn log-uniformly from ``[lower, upper)``.

    ``log(value)`` is uniform, so each order of magnitude is equally likely:
    ``loguniform(1e-4, 1)`` gives a value below ``1e-2`` half of the time.

    Parameters
    ----------
    lower : float
        Lower bound, included; greater than 0.
    upper : float
        Upper bound, excluded; greater than ``lower``.
    base : float, default=10
        Logarithm base. It does not change the distribution (log-uniform is
        the same in every base) and is accepted for Ray Tune compatibility.

    Returns
    -------
    Float

    Raises
    ------
    TypeError
        If an argument is not a real number.
    ValueError
        If ``lower <= 0``, ``lower >= upper``, a value is not finite, or
        ``base`` is not positive or is 1.

    Examples
    --------
    >>> import numpy as np
    >>> from fastasha.search import loguniform
    >>> values = loguniform(1e-4, 1).sample(np.random.default_rng(0), 10_000)
    >>> round(sum(v < 1e-2 for v in values) / len(values), 1)
    0.5
    """
    return Float(lower, upper, "loguniform", base=base)


def qloguniform(lower: float, upper: float, q: float, base: float = 10) -> Float:
    """A float drawn log-uniformly between the bounds and rounded to a multiple of ``q``.

    Parameters
    ----------
    lower, upper : float
        Bounds, both included; ``0 < lower < upper``, both multiples of ``q``.
    q : float
        Step, greater than 0.
    base : float, default=10
        Logarithm base; does not change the distribution.

    Returns
    -------
    Float

    Raises
    ------
    TypeError
        If an argument is not a real number.
    ValueError
        As for :func:`loguniform`, and if ``q <= 0`` or a bound is not a
        multiple of ``q``.
    """
    return Float(lower, upper, "loguniform", q=q, base=base)


def randn(mean: float = 0.0, sd: float = 1.0) -> Float:
    """A float drawn from the normal distribution with ``mean`` and ``sd``.

    Parameters
    ----------
    mean : float, default=0.0
        Mean.
    sd : float, default=1.0
        Standard deviation, greater than 0.

    Returns
    -------
    Float

    Raises
    ------
    TypeError
        If an argument is not a real number.
    ValueError
        If an argument is not finite or ``sd <= 0``.
    """
    return Float(sampler="normal", mean=mean, sd=sd)


def qrandn(mean: float, sd: float, q: float) -> Float:
    """A normal float rounded to a multiple of ``q``.

    Parameters
    ----------
    mean : float
        Mean.
    sd : float
        Standard deviation, greater than 0.
    q : float
        Step, greater than 0.

    Returns
    -------
    Float

    Raises
    ------
    TypeError
        If an argument is not a real number.
    ValueError
        If an argument is not finite, ``sd <= 0`` or ``q <= 0``.
    """
    return Float(sampler="normal", mean=mean, sd=sd, q=q)


def randint(lower: int, upper: int) -> Integer:
    """An int drawn uniformly from ``lower`` (included) to ``upper`` (excluded).

    Parameters
    ----------
    lower : int
        Lower bound, included.
    upper : int
        Upper bound, excluded; greater than ``lower``.

    Returns
    -------
    Integer

    Raises
    ------
    TypeError
        If a bound is not an int.
    ValueError
        If ``lower >= upper`` or a bound does not fit in 64 bits.

    Examples
    --------
    >>> import numpy as np
    >>> from fastasha.search import randint
    >>> sorted(set(randint(0, 3).sample(np.random.default_rng(0), 100)))
    [0, 1, 2]
    """
    return Integer(lower, upper, "uniform")


def qrandint(lower: int, upper: int, q: int = 1) -> Integer:
    """An int multiple of ``q`` drawn uniformly from ``lower`` to ``upper``, both included.

    Every multiple of ``q`` in ``[lower, upper]`` is equally likely.

    Parameters
    ----------
    lower : int
        Lower bound, included.
    upper : int
        Upper bound, included (!); greater than ``lower``.
    q : int, default=1
        Step, at least 1.

    Returns
    -------
    Integer

    Raises
    ------
    TypeError
        If an argument is not an int.
    ValueError
        If ``lower >= upper``, ``q < 1`` or no multiple of ``q`` lies
        between the bounds.

    Examples
    --------
    >>> import numpy as np
    >>> from fastasha.search import qrandint
    >>> sorted(set(qrandint(0, 10, 5).sample(np.random.default_rng(0), 100)))
    [0, 5, 10]
    """
    return Integer(lower, upper, "uniform", q=q)


def lograndint(lower: int, upper: int, base: float = 10) -> Integer:
    """An int drawn log-uniformly from ``lower`` (included) to ``upper`` (excluded).

    The value is ``floor(x)`` with ``log(x)`` uniform between
    ``log(lower)`` and ``log(upper)``.

    Parameters
    ----------
    lower : int
        Lower bound, included; at least 1.
    upper : int
        Upper bound, excluded; greater than ``lower``.
    base : float, default=10
        Logarithm base; does not change the distribution.

    Returns
    -------
    Integer

    Raises
    ------
    TypeError
        If a bound is not an int or ``base`` not a real number.
    ValueError
        If ``lower <= 0``, ``lower >= upper``, or ``base`` is not positive
        or is 1.
    """
    return Integer(lower, upper, "loguniform", base=base)


def qlograndint(lower: int, upper: int, q: int, base: float = 10) -> Integer:
    """An int multiple of ``q`` drawn log-uniformly from ``lower`` to ``upper``, both included.

    The value is ``round(x / q) * q`` with ``log(x)`` uniform between the
    logarithms of the smallest and the largest multiple of ``q`` in
    ``[lower, upper]``.

    Parameters
    ----------
    lower : int
        Lower bound, included; at least 1.
    upper : int
        Upper bound, included (!); greater than ``lower``.
    q : int
        Step, at least 1.
    base : float, default=10
        Logarithm base; does not change the distribution.

    Returns
    -------
    Integer

    Raises
    ------
    TypeError
        If an argument is not an int (``base``: a real number).
    ValueError
        As for :func:`lograndint`, and if ``q < 1`` or no multiple of ``q``
        lies between the bounds.
    """
    return Integer(lower, upper, "loguniform", q=q, base=base)


def choice(categories: Iterable) -> Categorical:
    """One of ``categories``, each equally likely.

    Parameters
    ----------
    categories : list, tuple, range or numpy array
        The options, at least one. The drawn value is the option object
        itself; a numpy array is converted with ``tolist()`` first, so its
        options are plain Python values.

    Returns
    -------
    Categorical

    Raises
    ------
    TypeError
        If ``categories`` is a string, mapping, set or not iterable.
    ValueError
        If ``categories`` is empty.

    Examples
    --------
    >>> import numpy as np
    >>> from fastasha.search import choice
    >>> sorted(set(choice(["a", "b"]).sample(np.random.default_rng(0), 50)))
    ['a', 'b']
    """
    return Categorical(categories)


def grid_search(values: Iterable) -> dict[str, list]:
    """Mark a hyperparameter for grid search over ``values``: ``{"grid_search": [...]}``.

    Every value is tried, crossed with every value of every other grid
    search, and the whole grid is repeated ``num_samples`` times (see
    :class:`~fastasha.search.VariantGenerator`).

    Parameters
    ----------
    values : list, tuple, range or numpy array
        The values, at least one; a numpy array is converted with
        ``tolist()``. A value may itself hold domains or grid searches.

    Returns
    -------
    dict
        ``{"grid_search": list(values)}``, Ray Tune's marker.

    Raises
    ------
    TypeError
        If ``values`` is a string, mapping, set or not iterable.
    ValueError
        If ``values`` is empty.

    Examples
    --------
    >>> from fastasha.search import grid_search
    >>> grid_search((1, 2))
    {'grid_search': [1, 2]}
    """
    return {"grid_search": as_options("values", values)}


def sample_from(func: Callable[..., Any]) -> Function:
    """A value computed by ``func`` from the rest of the config.

    ``func`` is called once per config, after every constant, grid value and
    random domain of that config has been resolved, with a ``spec`` whose
    ``config`` shows them, with attribute or item access
    (``spec.config.alpha``, ``spec.config["alpha"]``, ``spec["config"]``).
    As newer Ray Tune versions pass the config itself, the spec also reads
    as the config (``config["alpha"]``, ``config.alpha``), so functions
    written in either style work. A function may read the value of another
    ``sample_from``; the generator then runs that one first. A function that
    takes no argument is called without one.

    Parameters
    ----------
    func : callable
        ``func(spec) -> value`` or ``func() -> value``. To keep its values
        reproducible, draw random numbers from ``spec.rng`` (a fastasha
        addition) rather than from the global ``np.random``.

    Returns
    -------
    Function

    Raises
    ------
    TypeError
        If ``func`` is not callable.
    ValueError
        If ``func`` can be called neither with one argument nor with none.

    Examples
    --------
    >>> from fastasha.search import VariantGenerator, sample_from
    >>> space = {"alpha": 0.5, "beta": sample_from(lambda spec: spec.config.alpha * 2)}
    >>> VariantGenerator(space, num_samples=1, seed=0).next_config()
    {'alpha': 0.5, 'beta': 1.0}
    """
    return Function(func)
