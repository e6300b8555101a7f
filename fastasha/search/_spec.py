"""What a ``sample_from`` function receives: the spec and a guarded view of the config.

A config is resolved in two passes (see :class:`~fastasha.search.VariantGenerator`):
first constants, grid values and random domains, then the ``sample_from``
functions. During the second pass the config holds a :class:`Pending`
placeholder wherever a function has not run yet, and reading one through
:class:`ConfigView` raises :class:`UnresolvedDependency`, so that the
generator can run that function later, once the value it needs exists.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Hashable

import numpy as np


def path_str(path: tuple) -> str:
    """``("a", 0, "b")`` -> ``"config['a'][0]['b']"``, for error messages."""
    return "config" + "".join(f"[{k!r}]" for k in path)


class Pending:
    """Placeholder for the value of a ``sample_from`` function that has not run yet."""

    __slots__ = ("path",)

    def __init__(self, path: tuple) -> None:
        self.path = path

    def __repr__(self) -> str:
        return f"<pending sample_from at {path_str(self.path)}>"


class UnresolvedDependency(Exception):
    """A ``sample_from`` function read a value that another function has not produced yet.

    Internal signal of :class:`~fastasha.search.VariantGenerator`: the function
    is retried after the others have run. It derives from ``Exception`` (as
    Ray Tune's ``RecursiveDependencyError`` does).
    """

    def __init__(self, path: tuple) -> None:
        super().__init__(f"{path_str(path)} is not resolved yet")
        self.path = path


def _contains_pending(value: Any) -> bool:
    if isinstance(value, Pending):
        return True
    if isinstance(value, dict):
        return any(_contains_pending(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(_contains_pending(v) for v in value)
    return False


def plain_copy(value: Any, path: tuple = ()) -> Any:
    """A copy of ``value`` with every :class:`ConfigView` turned back into a dict.

    Dicts, lists and tuples are rebuilt, other objects kept. Used on the
    return value of a ``sample_from`` function, which may hand back a view
    (``lambda spec: spec.config.model``). Raises :class:`UnresolvedDependency`
    if the value still holds a :class:`Pending` placeholder.
    """
    if isinstance(value, ConfigView):
        return plain_copy(value._data, value._path)
    if isinstance(value, Pending):
        raise UnresolvedDependency(value.path)
    if isinstance(value, dict):
        return {k: plain_copy(v, path + (k,)) for k, v in value.items()}
    if isinstance(value, list):
        return [plain_copy(v, path + (i,)) for i, v in enumerate(value)]
    if isinstance(value, tuple):
        return tuple(plain_copy(v, path + (i,)) for i, v in enumerate(value))
    return value


class ConfigView(Mapping):
    """Read-only view of a config being resolved, with attribute and item access.

    ``view.alpha`` and ``view["alpha"]`` both give the value of key
    ``"alpha"``; a nested dict comes back as another view, so
    ``view.model.depth`` works. Keys that are also names of ``Mapping``
    methods (``keys``, ``items``, ``values``, ``get``) and keys that are not
    identifiers are reached with item access only.

    Parameters
    ----------
    data : dict
        The dict to view; it is not copied, so later changes show.
    path : tuple, default=()
        Position of ``data`` in the config, for error messages.

    Raises
    ------
    KeyError, AttributeError
        For a missing key (item and attribute access respectively); the
        message lists the keys that exist.
    """

    __slots__ = ("_data", "_path")

    def __init__(self, data: dict, path: tuple = ()) -> None:
        self._data = data
        self._path = path

    def __getitem__(self, key: Hashable) -> Any:
        try:
            value = self._data[key]
        except KeyError:
            raise KeyError(
                f"{path_str(self._path)} has no key {key!r}; its keys are {list(self._data)!r}"
            ) from None
        path = self._path + (key,)
        if isinstance(value, dict):
            return ConfigView(value, path)
        if _contains_pending(value):
            raise UnresolvedDependency(path)
        return value

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        try:
            return self[name]
        except KeyError as err:
            raise AttributeError(err.args[0]) from None

    def __iter__(self) -> Iterator:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return f"ConfigView({self._data!r})"


class Spec(ConfigView):
    """The argument of a ``sample_from`` function; serves both of Ray Tune's styles.

    Older Ray Tune passes a spec, read as ``spec.config.alpha`` or
    ``spec["config"]["alpha"]``; newer Ray Tune passes the config itself,
    read as ``config["alpha"]`` or ``config.alpha``. A :class:`Spec` is a
    :class:`ConfigView` of the config resolved so far, so the second style
    works directly, and its ``config`` attribute (and its ``"config"`` item,
    unless the config has a key ``"config"``) is the same view, so the first
    style works too.

    Parameters
    ----------
    data : dict
        The config being resolved; it is not copied.
    rng : numpy.random.Generator
        The generator's random number generator.

    Attributes
    ----------
    config : ConfigView
        The config resolved so far: every constant, grid value and random
        domain of this config, and the ``sample_from`` values already
        computed.
    rng : numpy.random.Generator
        Drawing from it (instead of the global ``np.random``) keeps a
        function's values reproducible under the generator's ``seed``. A
        fastasha addition; a config key ``"rng"`` is still reachable as
        ``spec["rng"]``.
    """

    __slots__ = ("_rng",)

    def __init__(self, data: dict, rng: np.random.Generator) -> None:
        super().__init__(data)
        self._rng = rng

    @property
    def config(self) -> ConfigView:
        return ConfigView(self._data)

    @property
    def rng(self) -> np.random.Generator:
        return self._rng

    def __getitem__(self, key: Hashable) -> Any:
        if key == "config" and "config" not in self._data:
            return self.config
        return super().__getitem__(key)

    def __repr__(self) -> str:
        return f"Spec({self._data!r})"
