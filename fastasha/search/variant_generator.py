"""VariantGenerator: turns a param space into a lazy stream of resolved configs.

The param space is compiled once into a small tree of nodes (constants,
containers, domains, grids, functions). Compiling validates the whole space,
so an invalid space fails in the constructor, before any trial runs. Each
config is then produced by (1) choosing a value for every grid search,
(2) walking the tree, drawing every random domain, and (3) calling the
``sample_from`` functions, which can read everything resolved before them.
"""

from __future__ import annotations

import copy
import itertools
import math
import numbers
from collections.abc import Iterator
from typing import Any

import numpy as np

from .._validation import check_bool, check_int, user_stacklevel
from ._spec import ConfigView, Pending, Spec, UnresolvedDependency, path_str, plain_copy
from .sample import Categorical, Domain, Function, as_options

__all__ = ["VariantGenerator"]


# --------------------------------------------------------------------------- compiled nodes


class _Const:
    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


class _Dict:
    __slots__ = ("keys", "children")

    def __init__(self, keys: tuple, children: tuple) -> None:
        self.keys = keys
        self.children = children


class _Seq:
    __slots__ = ("children", "is_tuple")

    def __init__(self, children: tuple, is_tuple: bool) -> None:
        self.children = children
        self.is_tuple = is_tuple


class _Sample:
    __slots__ = ("domain",)

    def __init__(self, domain: Domain) -> None:
        self.domain = domain


class _Choice:
    __slots__ = ("domain", "options")

    def __init__(self, domain: Categorical, options: tuple) -> None:
        self.domain = domain
        self.options = options


class _Func:
    __slots__ = ("domain", "path")

    def __init__(self, domain: Function, path: tuple) -> None:
        self.domain = domain
        self.path = path


class _Grid:
    __slots__ = ("options", "path")

    def __init__(self, options: tuple, path: tuple) -> None:
        self.options = options
        self.path = path


def grid_values(obj: Any, path: tuple) -> list | None:
    """The values of a ``{"grid_search": values}`` marker, or None if ``obj`` is not one.

    A marker is a dict with the single key ``"grid_search"``, as in Ray Tune.
    """
    if isinstance(obj, dict) and len(obj) == 1 and "grid_search" in obj:
        return as_options(f"grid_search values at {path_str(path)}", obj["grid_search"])
    return None


def _check_plain(obj: Any, path: tuple) -> None:
    """Refuse values that look like search-space syntax fastasha does not run."""
    if isinstance(obj, dict) and len(obj) == 1 and isinstance(obj.get("eval"), str):
        raise ValueError(
            f"{path_str(path)} is Ray Tune's string expression {obj!r}; fastasha does not "
            "evaluate strings (it would run code from the config). Write it as "
            "sample_from(lambda spec: ...) instead"
        )
    module = getattr(type(obj), "__module__", "") or ""
    if module.startswith("ray.tune"):
        raise TypeError(
            f"{path_str(path)} holds a Ray Tune object ({type(obj).__name__}); build the "
            "search space with fastasha's functions (fastasha.search.uniform, choice, "
            "grid_search, ...) instead of ray.tune's"
        )


def compile_space(obj: Any, path: tuple = (), in_choice: bool = False) -> Any:
    """Compile a (part of a) param space into nodes, validating it on the way.

    Parameters
    ----------
    obj : object
        The param space, or a part of it.
    path : tuple, default=()
        Position of ``obj`` in the config, for messages and grid order.
    in_choice : bool, default=False
        Whether ``obj`` is (inside) a category of a ``choice``, where grid
        searches are not allowed.

    Raises
    ------
    TypeError, ValueError
        For malformed grid markers, grid searches inside ``choice``, Ray
        Tune objects and string expressions.
    """
    if isinstance(obj, Domain):
        if isinstance(obj, Function):
            return _Func(obj, path)
        if isinstance(obj, Categorical):
            options = []
            for category in obj.categories:
                node = compile_space(category, path, in_choice=True)
                options.append(node if is_dynamic(node) else _Const(category))
            return _Choice(obj, tuple(options))
        return _Sample(obj)
    values = grid_values(obj, path)
    if values is not None:
        if in_choice:
            raise ValueError(
                f"{path_str(path)} has a grid_search inside a choice(); the number of "
                "configs would depend on random draws. Move the grid_search out of the "
                "choice, or make the choice itself a grid_search"
            )
        return _Grid(tuple(compile_space(v, path, in_choice) for v in values), path)
    _check_plain(obj, path)
    if isinstance(obj, dict):
        keys = tuple(obj)
        return _Dict(keys, tuple(compile_space(obj[k], path + (k,), in_choice) for k in keys))
    if isinstance(obj, (list, tuple)):
        return _Seq(tuple(compile_space(v, path + (i,), in_choice) for i, v in enumerate(obj)),
                    isinstance(obj, tuple))
    return _Const(obj)


def is_dynamic(node: Any) -> bool:
    """Whether a compiled (part of a) space holds a domain, grid search or function."""
    t = type(node)
    if t is _Const:
        return False
    if t is _Dict or t is _Seq:
        return any(is_dynamic(c) for c in node.children)
    return True


def _count(node: Any) -> int:
    """Number of configs one pass over the grid gives: grids multiply, grid values add."""
    t = type(node)
    if t is _Dict or t is _Seq:
        return math.prod(_count(c) for c in node.children)
    if t is _Grid:
        return sum(_count(o) for o in node.options)
    return 1


def _outer_grids(node: Any, out: list) -> list:
    """Grids of ``node`` that are not inside another grid's values (choices hold none)."""
    t = type(node)
    if t is _Grid:
        out.append(node)
    elif t is _Dict or t is _Seq:
        for c in node.children:
            _outer_grids(c, out)
    return out


def _flat_fields(node: Any) -> tuple | None:
    """``(key, node)`` of a space that is one dict of constants, domains and choices
    among constants (the common space, resolved without recursion); None for any other."""
    if type(node) is not _Dict:
        return None
    for child in node.children:
        t = type(child)
        if t is _Choice:
            if any(type(option) is not _Const for option in child.options):
                return None
        elif t is not _Const and t is not _Sample:
            return None
    return tuple(zip(node.keys, node.children))


def _key_order(key: Any) -> tuple:
    # Ray sorts grid paths as tuples; this gives the same order for str dict keys
    # and int list indices, and a defined order for keys of mixed types.
    if isinstance(key, numbers.Real):
        return (0, key)
    if isinstance(key, str):
        return (1, key)
    return (2, type(key).__name__, repr(key))


def _path_order(grid: _Grid) -> tuple:
    return tuple(_key_order(k) for k in grid.path)


def _grid_choices(grids: list) -> Iterator[dict]:
    """Every combination of values of ``grids``, as ``{id(grid): value index}``.

    Grids are ordered by path and the first varies fastest; grids inside the
    chosen values are crossed within each combination, varying faster still.
    """
    if not grids:
        yield {}
        return
    grids = sorted(grids, key=_path_order)
    sizes = [len(g.options) for g in reversed(grids)]
    for reversed_combo in itertools.product(*(range(s) for s in sizes)):
        combo = reversed_combo[::-1]
        chosen = {id(g): i for g, i in zip(grids, combo)}
        inner: list = []
        for g, i in zip(grids, combo):
            _outer_grids(g.options[i], inner)
        if not inner:
            yield chosen
        else:
            for sub in _grid_choices(inner):
                yield {**chosen, **sub}


def _set_path(obj: Any, path: tuple, value: Any) -> Any:
    """Put ``value`` at ``path`` in ``obj``; tuples on the way are rebuilt."""
    if not path:
        return value
    key = path[0]
    child = _set_path(obj[key], path[1:], value)
    if isinstance(obj, tuple):
        return obj[:key] + (child,) + obj[key + 1:]
    obj[key] = child
    return obj


def check_points(points: Any) -> list[dict]:
    """``points_to_evaluate`` (configs to run first) as a deep-copied list of dicts.

    ``None`` gives ``[]``; anything but a list or tuple of dicts is a TypeError.
    """
    if points is None:
        return []
    if not isinstance(points, (list, tuple)):
        raise TypeError(f"points_to_evaluate must be a list of (partial) config dicts, got "
                        f"{points!r} of type {type(points).__name__}")
    for i, point in enumerate(points):
        if not isinstance(point, dict):
            raise TypeError(f"points_to_evaluate[{i}] must be a dict (a partial config), got "
                            f"{point!r} of type {type(point).__name__}")
    return copy.deepcopy(list(points))


def _preset_space(space: dict, point: dict, index: int) -> dict:
    """``space`` with the values of ``point`` put in place (Ray's ``points_to_evaluate``).

    ``point`` is a (partial) config: its values replace the domains, grid
    searches or constants at the same paths, nested dicts followed key by
    key. A path that ``space`` lacks is an error; a value a domain or grid
    could not give is kept, with a warning (as Ray logs one).
    """

    def put(target: dict, values: dict, path: tuple) -> dict:
        out = dict(target)
        for key, value in values.items():
            here = path + (key,)
            if key not in target:
                raise ValueError(
                    f"points_to_evaluate[{index}] sets {path_str(here)}, which is not in the "
                    "param_space; add it to the param_space passed to tune.Tuner, or remove it "
                    "from the point"
                )
            current = target[key]
            if isinstance(value, dict) and isinstance(current, dict) and \
                    grid_values(current, here) is None:
                out[key] = put(current, value, here)
                continue
            _warn_if_outside(current, value, here, index)
            out[key] = value
        return out

    return put(space, point, ())


def _warn_if_outside(current: Any, value: Any, path: tuple, index: int) -> None:
    """Warn when a preset value is one the space at ``path`` could not have given."""
    import warnings

    grid = grid_values(current, path)
    if grid is not None:
        outside = not any(_same(value, v) for v in grid)
        allowed = f"the grid_search values {grid!r}"
    elif isinstance(current, Categorical):
        outside = not any(_same(value, v) for v in current.categories)
        allowed = f"the choice {list(current.categories)!r}"
    elif isinstance(current, Domain):
        lower, upper = getattr(current, "lower", None), getattr(current, "upper", None)
        outside = lower is not None and isinstance(value, numbers.Real) and \
            not lower <= value <= upper
        allowed = f"[{lower}, {upper}]"
    else:
        outside = not _same(value, current)
        allowed = f"the constant {current!r}"
    if outside:
        warnings.warn(f"points_to_evaluate[{index}] sets {path_str(path)} to {value!r}, "
                      f"outside {allowed}; the point runs with it all the same",
                      UserWarning, stacklevel=user_stacklevel())


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except Exception:   # noqa: BLE001 - e.g. numpy arrays: compared as different
        return False


# --------------------------------------------------------------------------- generator


# values drawn per domain and call (see VariantGenerator._draw)
_CHUNK = 64


class VariantGenerator:
    """Lazy stream of resolved configs from a param space, like Ray Tune's BasicVariantGenerator.

    For each of ``num_samples`` repetitions, every combination of the
    ``grid_search`` values is produced, and every random domain is drawn
    anew for each config. ``{"a": grid_search([1, 2]), "b": grid_search([3,
    4, 5])}`` with ``num_samples=2`` therefore gives 2 * 3 * 2 = 12 configs.

    Parameters
    ----------
    param_space : dict
        The search space: dicts, lists and tuples nested at will, holding
        constants, domains (:func:`~fastasha.search.uniform`, ...),
        ``grid_search`` markers and :func:`~fastasha.search.sample_from`
        functions. A grid value may hold domains and further grid searches;
        a ``choice`` category may hold domains and functions, but no grid
        search.
    num_samples : int, default=1
        Number of repetitions of the grid (or of samples, without a grid);
        ``-1`` repeats forever, for a caller that stops on a time budget.
    seed : int or None, default=None
        Seed of ``np.random.default_rng(seed)``, the only source of
        randomness (``None``: fresh entropy, not reproducible). The same
        ``(param_space, num_samples, seed)`` always gives the same configs.
    points_to_evaluate : list of dict or None, default=None
        Configs to run first, as Ray Tune's ``BasicVariantGenerator`` does:
        each (partial) config replaces one of the ``num_samples``
        repetitions. Its values are put in place of the domains and grid
        searches at the same paths; what it leaves open is drawn, and grid
        searches it leaves open are crossed, so one point can give several
        configs. The remaining ``num_samples - len(points_to_evaluate)``
        repetitions (none if that is below 1) cover the whole space.
    constant_grid_search : bool, default=False
        Draw the random domains once per repetition and keep their values
        for every grid combination of it (Ray's ``constant_grid_search``).
        ``sample_from`` functions still run for each combination, since
        they may read grid values (Ray runs those that can first, once).

    Raises
    ------
    TypeError
        If ``param_space`` is not a dict, ``num_samples`` or ``seed`` is not
        an int, a grid marker's values are not a list, or the space holds
        Ray Tune domain objects.
    ValueError
        If ``num_samples`` is 0 or below -1, ``seed`` is negative, a grid
        search is empty or inside a ``choice``, the space uses Ray's
        ``{"eval": "..."}`` string expressions, or a point of
        ``points_to_evaluate`` sets a path the space lacks.

    Notes
    -----
    The constructor walks the whole space and validates it, but calls no
    ``sample_from`` function and draws nothing.

    *Grid order.* The grid searches are ordered by their path in the config
    (paths compared as tuples of keys; list positions by index) and the
    first one in that order varies fastest, as in Ray Tune's
    ``BasicVariantGenerator``: ``{"b": grid_search([1, 2]), "a":
    grid_search(["x", "y"])}`` gives ``a, b`` = ``x,1  y,1  x,2  y,2``.
    Grid searches found inside a chosen grid value are crossed within each
    combination of the outer ones.

    *Resolution order within a config.* Grid values are put in place
    first; random domains are drawn in the order of the config (dict
    insertion order, depth first; a drawn ``choice`` category is resolved
    where it lands); then the ``sample_from`` functions run in config order,
    and a function that reads a value another function has not produced yet
    is retried after it. Functions that wait on each other in a cycle raise
    ``ValueError``.

    Containers of the space are rebuilt for every config (dicts, including
    dict subclasses, become plain dicts; lists and tuples stay lists and
    tuples); leaf constants and drawn categories are the original objects.

    An error inside a ``sample_from`` function is raised as ``ValueError``
    (the original exception as its ``__cause__``) and ends the stream.
    The generator is not thread-safe.

    Examples
    --------
    >>> from fastasha.search import VariantGenerator, grid_search, uniform
    >>> space = {"a": grid_search([1, 2]), "b": grid_search(["x", "y"]), "lr": uniform(0, 1)}
    >>> gen = VariantGenerator(space, num_samples=1, seed=0)
    >>> gen.total
    4
    >>> [(c["a"], c["b"]) for c in gen]
    [(1, 'x'), (2, 'x'), (1, 'y'), (2, 'y')]
    >>> gen.n_generated
    4
    """

    def __init__(self, param_space: dict, num_samples: int = 1, seed: int | None = None, *,
                 points_to_evaluate: list | None = None,
                 constant_grid_search: bool = False) -> None:
        if not isinstance(param_space, dict):
            raise TypeError(
                f"param_space must be a dict, got {param_space!r} of type "
                f"{type(param_space).__name__}; pass a dict such as {{'lr': uniform(0, 1)}}"
            )
        if isinstance(num_samples, bool) or not isinstance(num_samples, numbers.Integral):
            raise TypeError(
                f"num_samples must be an integer, got {num_samples!r} of type "
                f"{type(num_samples).__name__}"
            )
        if num_samples == 0 or num_samples < -1:
            raise ValueError(
                f"num_samples must be a positive integer, or -1 for an unlimited number of "
                f"samples, got {num_samples!r}"
            )
        if seed is not None:
            check_int("seed", seed, minimum=0, hint="; pass a non-negative int, or None")
        points = check_points(points_to_evaluate)
        check_bool("constant_grid_search", constant_grid_search)
        self._num_samples = int(num_samples)
        self._seed = None if seed is None else int(seed)
        self._root = compile_space(param_space)
        self._grid_count = _count(self._root)
        # (compiled space, repetitions): one per point, then the whole space
        presets = [compile_space(_preset_space(param_space, p, i)) for i, p in enumerate(points)]
        rest = -1 if self._num_samples == -1 else max(0, self._num_samples - len(points))
        self._phases = [(root, 1) for root in presets] + [(self._root, rest)]
        self._preset_count = sum(_count(root) for root in presets)
        self._constant = constant_grid_search
        self._memo: dict | None = None     # a repetition's draws, with constant_grid_search
        self._rng = np.random.default_rng(self._seed)
        self._buffers: dict[int, list] = {}
        self._n_generated = 0
        self._stream = self._generate()

    # ------------------------------------------------------------ properties

    @property
    def num_samples(self) -> int:
        """Number of repetitions of the grid; -1 for unlimited."""
        return self._num_samples

    @property
    def seed(self) -> int | None:
        """The seed given to ``np.random.default_rng``."""
        return self._seed

    @property
    def total(self) -> int | None:
        """Number of configs the generator gives in all; ``None`` for ``num_samples=-1``."""
        if self._num_samples == -1:
            return None
        return self._preset_count + self._phases[-1][1] * self._grid_count

    @property
    def n_generated(self) -> int:
        """Number of configs given so far."""
        return self._n_generated

    # ------------------------------------------------------------ iteration

    def next_config(self) -> dict:
        """Resolve and return the next config.

        Returns
        -------
        dict
            A config with plain values in place of every domain, grid
            marker and function.

        Raises
        ------
        StopIteration
            When all ``total`` configs have been given.
        ValueError
            If a ``sample_from`` function fails or functions depend on each
            other in a cycle; the stream ends there.
        """
        config = next(self._stream)
        self._n_generated += 1
        return config

    def __iter__(self) -> VariantGenerator:
        return self

    def __next__(self) -> dict:
        return self.next_config()

    def __repr__(self) -> str:
        return (f"VariantGenerator(num_samples={self._num_samples}, seed={self._seed}, "
                f"total={self.total}, n_generated={self._n_generated})")

    # ------------------------------------------------------------ internals

    def _generate(self) -> Iterator[dict]:
        for root, count in self._phases:
            fields = None if self._constant else _flat_fields(root)
            if fields is not None:
                yield from self._flat_configs(fields, count)
                continue
            grids = _outer_grids(root, [])
            for _ in itertools.count() if count == -1 else range(count):
                self._memo = {} if self._constant else None
                for chosen in _grid_choices(grids):
                    yield self._resolve_config(root, chosen)

    def _flat_configs(self, fields: tuple, count: int) -> Iterator[dict]:
        """The configs of a flat space (see ``_flat_fields``): what ``_resolve_config``
        gives, with the same draws in the same order."""
        draw = self._draw_new
        for _ in itertools.count() if count == -1 else range(count):
            config = {}
            for key, node in fields:
                t = type(node)
                if t is _Const:
                    config[key] = node.value
                elif t is _Sample:
                    config[key] = draw(node, False)
                else:
                    config[key] = node.options[draw(node, True)].value
            yield config

    def _resolve_config(self, root: Any, chosen: dict) -> dict:
        pending: list = []
        config = self._resolve(root, chosen, pending)
        if pending:
            self._run_functions(config, pending)
        return config

    def _resolve(self, node: Any, chosen: dict, pending: list) -> Any:
        t = type(node)
        if t is _Const:
            return node.value
        if t is _Dict:
            return {k: self._resolve(c, chosen, pending) for k, c in zip(node.keys, node.children)}
        if t is _Seq:
            items = [self._resolve(c, chosen, pending) for c in node.children]
            return tuple(items) if node.is_tuple else items
        if t is _Sample:
            return self._draw(node, False)
        if t is _Choice:
            index = self._draw(node, True)
            return self._resolve(node.options[index], chosen, pending)
        if t is _Grid:
            return self._resolve(node.options[chosen[id(node)]], chosen, pending)
        if t is _Func:
            pending.append(node)
            return Pending(node.path)
        raise RuntimeError(f"unreachable: unknown search-space node {node!r}")

    def _draw(self, node: Any, indices: bool) -> Any:
        # Values are drawn _CHUNK at a time per domain: one vectorised call
        # instead of one per config. The chunks are drawn at fixed points of
        # the stream, so the configs depend on the seed alone.
        if self._memo is not None:      # constant_grid_search: once per repetition
            if id(node) not in self._memo:
                self._memo[id(node)] = self._draw_new(node, indices)
            return self._memo[id(node)]
        return self._draw_new(node, indices)

    def _draw_new(self, node: Any, indices: bool) -> Any:
        buffer = self._buffers.get(id(node))
        if not buffer:
            domain = node.domain
            drawn = domain.sample_indices(self._rng, _CHUNK) if indices else \
                domain.draw(self._rng, _CHUNK)
            buffer = self._buffers[id(node)] = list(reversed(drawn))
        return buffer.pop()

    def _run_functions(self, config: dict, pending: list) -> None:
        spec = Spec(config, self._rng)
        todo = pending
        while todo:
            waiting = []
            for node in todo:
                try:
                    value = node.domain.call(spec)
                    if isinstance(value, ConfigView):  # e.g. lambda spec: spec.config.model
                        value = plain_copy(value)
                except UnresolvedDependency as dep:
                    waiting.append((node, dep))
                    continue
                except Exception as err:
                    raise ValueError(
                        f"the sample_from function at {path_str(node.path)} raised "
                        f"{type(err).__name__}: {err}"
                    ) from err
                _set_path(config, node.path, value)
            if len(waiting) == len(todo):
                reads = "; ".join(
                    f"{path_str(node.path)} reads {path_str(dep.path)}" for node, dep in waiting
                )
                raise ValueError(
                    f"sample_from functions wait on each other in a cycle ({reads}); none of "
                    "them can run first. Make one of them independent of the others"
                )
            todo = [node for node, _ in waiting]
