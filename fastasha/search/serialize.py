"""JSON for search spaces and resolved configs, so the experiment store never needs pickle.

:func:`space_to_json` describes a param space with plain JSON values, and
:func:`space_from_json` rebuilds an equivalent space from that description:
a :class:`~fastasha.search.VariantGenerator` over the rebuilt space gives the
same configs for the same seed. :func:`config_to_json` writes a resolved
config as JSON text and never fails, whatever the config holds.

The space description is a dict ``{"format": "fastasha.search_space/1",
"space": node}``, where every node is an object with one key:

=======================================  =====================================
node                                     stands for
=======================================  =====================================
``{"const": v}``                         ``v``: None, bool, int, float or str
``{"numpy": [dtype, v]}``                ``numpy.dtype(dtype).type(v)``: a numpy
                                         bool, integer or float scalar
``{"dict": [[key, node], ...]}``         a dict, in order; keys are JSON scalars
``{"list": [node, ...]}``                a list
``{"tuple": [node, ...]}``               a tuple
``{"grid_search": [node, ...]}``         a ``grid_search`` marker
``{"float": {field: value, ...}}``       a :class:`~fastasha.search.Float`
``{"integer": {field: value, ...}}``     a :class:`~fastasha.search.Integer`
``{"categorical": [node, ...]}``         a :class:`~fastasha.search.Categorical`
=======================================  =====================================
"""

from __future__ import annotations

import enum
import json
import math
from dataclasses import fields
from typing import Any

import numpy as np

from .._json import encoder
from .sample import Categorical, Domain, Float, Integer
from .variant_generator import compile_space, grid_values

SPACE_FORMAT = "fastasha.search_space/1"
_SCALARS = (type(None), bool, int, float, str)
# the numpy scalar types a description may name (never an arbitrary dtype string)
_NUMPY_TYPES = frozenset(np.dtype(t).name for t in (
    np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32,
    np.uint64, np.float16, np.float32, np.float64))
_FLOAT_FIELDS = tuple(f.name for f in fields(Float))
_INTEGER_FIELDS = tuple(f.name for f in fields(Integer))

__all__ = ["config_to_json", "space_from_json", "space_to_json"]


class _Undescribable(Exception):
    """The space holds something JSON cannot describe."""


# --------------------------------------------------------------------------- spaces


def _encode(obj: Any) -> dict:
    t = type(obj)
    if t is Float:
        return {"float": {name: getattr(obj, name) for name in _FLOAT_FIELDS}}
    if t is Integer:
        return {"integer": {name: getattr(obj, name) for name in _INTEGER_FIELDS}}
    if t is Categorical:
        return {"categorical": [_encode(c) for c in obj.categories]}
    if isinstance(obj, Domain):  # sample_from functions and user-defined domains
        raise _Undescribable
    values = grid_values(obj, ())
    if values is not None:
        return {"grid_search": [_encode(v) for v in values]}
    if isinstance(obj, dict):
        pairs = []
        for key, value in obj.items():
            if type(key) not in _SCALARS:
                raise _Undescribable
            pairs.append([key, _encode(value)])
        return {"dict": pairs}
    if isinstance(obj, list):
        return {"list": [_encode(v) for v in obj]}
    if isinstance(obj, tuple):
        return {"tuple": [_encode(v) for v in obj]}
    if t in _SCALARS:
        return {"const": obj}
    if isinstance(obj, (np.bool_, np.integer, np.floating)) and obj.dtype.name in _NUMPY_TYPES:
        # np.linspace / np.arange grids: kept with their type (float32 stays float32); not
        # np.longdouble, whose item() is no Python number
        return {"numpy": [obj.dtype.name, obj.item()]}
    raise _Undescribable


def space_to_json(param_space: dict) -> dict | None:
    """Describe a param space with JSON values, or return None if it cannot be described.

    Parameters
    ----------
    param_space : dict
        A search space, as given to :class:`~fastasha.search.VariantGenerator`.

    Returns
    -------
    dict or None
        A description that ``json.dumps`` can write, or ``None`` if the
        space holds a ``sample_from`` function, a constant or category that
        is not None, bool, int, float, str, a numpy bool, integer or float
        scalar, or a dict, list or tuple of those, or a dict key of another
        type.

    Raises
    ------
    TypeError, ValueError
        If the space is invalid (as the ``VariantGenerator`` constructor).

    Examples
    --------
    >>> from fastasha.search import space_to_json, uniform
    >>> space_to_json({"lr": uniform(0, 1), "epochs": 10})["space"]["dict"][1]
    ['epochs', {'const': 10}]
    >>> space_to_json({"f": object()}) is None
    True
    """
    if not isinstance(param_space, dict):
        raise TypeError(
            f"param_space must be a dict, got {param_space!r} of type "
            f"{type(param_space).__name__}"
        )
    compile_space(param_space)
    try:
        return {"format": SPACE_FORMAT, "space": _encode(param_space)}
    except _Undescribable:
        return None


def _bad(where: str, node: Any, expected: str) -> ValueError:
    return ValueError(
        f"not a fastasha search-space description at {where}: expected {expected}, "
        f"got {node!r}; pass the dict returned by space_to_json()"
    )


def _decode_list(where: str, node: Any, kind: str) -> list:
    value = node[kind]
    if not isinstance(value, list):
        raise _bad(where, node, f"a list after {kind!r}")
    return [_decode(f"{where}.{kind}[{i}]", v) for i, v in enumerate(value)]


def _decode_fields(where: str, node: Any, kind: str, names: tuple) -> dict:
    value = node[kind]
    if not isinstance(value, dict) or not set(value) <= set(names):
        raise _bad(where, node, f"an object with some of the fields {list(names)} after {kind!r}")
    return value


def _numpy_scalar(value: Any) -> Any:
    """The numpy scalar ``[type name, number]`` describes, or None if it describes none.

    The number must be of the type's kind and in its range: an integer is
    never wrapped, nor a finite float turned into an infinity (a float is
    rounded to the type, as ``numpy.float32(0.1)`` is).
    """
    if not (isinstance(value, list) and len(value) == 2 and isinstance(value[0], str)
            and value[0] in _NUMPY_TYPES):
        return None
    dtype, number = np.dtype(value[0]), value[1]
    if type(number) is not {"b": bool, "i": int, "u": int, "f": float}[dtype.kind]:
        return None
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        return dtype.type(number) if info.min <= number <= info.max else None
    with np.errstate(over="ignore"):
        scalar = dtype.type(number)
    return None if math.isfinite(number) and not np.isfinite(scalar) else scalar


def _decode(where: str, node: Any) -> Any:
    if not isinstance(node, dict) or len(node) != 1:
        raise _bad(where, node, "an object with one key such as {'const': ...}")
    (kind,) = node
    if kind == "const":
        value = node["const"]
        if type(value) not in _SCALARS:
            raise _bad(where, node, "a JSON scalar after 'const'")
        return value
    if kind == "numpy":
        scalar = _numpy_scalar(node["numpy"])
        if scalar is None:
            raise _bad(where, node, "[a numpy bool, integer or float type name, a number "
                                    "of that type] after 'numpy'")
        return scalar
    if kind == "dict":
        pairs = node["dict"]
        if not isinstance(pairs, list):
            raise _bad(where, node, "a list of [key, node] pairs after 'dict'")
        out = {}
        for i, pair in enumerate(pairs):
            if not (isinstance(pair, list) and len(pair) == 2 and type(pair[0]) in _SCALARS):
                raise _bad(f"{where}.dict[{i}]", pair, "a [key, node] pair with a scalar key")
            out[pair[0]] = _decode(f"{where}.dict[{i}]", pair[1])
        return out
    if kind == "list":
        return _decode_list(where, node, "list")
    if kind == "tuple":
        return tuple(_decode_list(where, node, "tuple"))
    if kind == "grid_search":
        return {"grid_search": _decode_list(where, node, "grid_search")}
    if kind == "categorical":
        return Categorical(_decode_list(where, node, "categorical"))
    if kind == "float":
        return Float(**_decode_fields(where, node, "float", _FLOAT_FIELDS))
    if kind == "integer":
        return Integer(**_decode_fields(where, node, "integer", _INTEGER_FIELDS))
    raise _bad(where, node, "one of the keys const, numpy, dict, list, tuple, grid_search, "
                            "float, integer, categorical")


def space_from_json(obj: dict | str) -> dict:
    """Rebuild a param space from the description made by :func:`space_to_json`.

    Parameters
    ----------
    obj : dict or str
        The description, or its JSON text.

    Returns
    -------
    dict
        A param space equivalent to the one described: for the same
        ``num_samples`` and ``seed``, a
        :class:`~fastasha.search.VariantGenerator` gives the same configs.

    Raises
    ------
    TypeError
        If ``obj`` is neither a dict nor a str.
    ValueError
        If ``obj`` is not such a description (wrong format tag, unknown or
        malformed node), or describes an invalid domain.

    Examples
    --------
    >>> from fastasha.search import space_from_json, space_to_json, uniform
    >>> space_from_json(space_to_json({"lr": uniform(0, 1)}))
    {'lr': Float(lower=0.0, upper=1.0, sampler='uniform', q=None, base=None, mean=None, sd=None)}
    """
    if isinstance(obj, str):
        try:
            obj = json.loads(obj)
        except json.JSONDecodeError as err:
            raise ValueError(f"obj is not valid JSON text ({err}); pass the output of "
                             "json.dumps(space_to_json(space))") from err
    if not isinstance(obj, dict):
        raise TypeError(
            f"obj must be the dict returned by space_to_json() or its JSON text, got "
            f"{obj!r} of type {type(obj).__name__}"
        )
    if obj.get("format") != SPACE_FORMAT or set(obj) != {"format", "space"}:
        raise ValueError(
            f"obj is not a fastasha search-space description: expected the keys 'format' "
            f"(= {SPACE_FORMAT!r}) and 'space', got keys {list(obj)!r} with format "
            f"{obj.get('format')!r}; pass the dict returned by space_to_json()"
        )
    space = _decode("space", obj["space"])
    if not isinstance(space, dict):
        raise _bad("space", obj["space"], "a 'dict' node at the top")
    return space


# --------------------------------------------------------------------------- configs


def _repr(obj: Any) -> dict:
    try:
        text = repr(obj)
    except Exception:
        text = f"<{type(obj).__name__} object; repr() failed>"
    return {"__repr__": text}


def _plain_key(key: Any) -> Any:
    if type(key) in _SCALARS:
        return key
    if isinstance(key, np.generic):
        value = _plain(key, set())
        if type(value) in _SCALARS:
            return value
    try:
        return repr(key)
    except Exception:
        return f"<{type(key).__name__} object; repr() failed>"


def _plain(obj: Any, active: set) -> Any:
    """``obj`` with everything JSON cannot hold converted; ``active`` guards against cycles."""
    t = type(obj)
    if t in _SCALARS:
        return obj
    if isinstance(obj, np.generic):
        if isinstance(obj, np.bool_):
            return bool(obj)
        if isinstance(obj, np.integer):
            return int(obj)
        if isinstance(obj, np.floating):
            return float(obj)
        if isinstance(obj, np.str_):
            return str(obj)
        return _repr(obj)
    if isinstance(obj, enum.Enum):
        return _repr(obj)
    if isinstance(obj, (dict, list, tuple, np.ndarray)):
        ident = id(obj)
        if ident in active:
            return {"__repr__": "<cycle>"}
        active.add(ident)
        try:
            if isinstance(obj, dict):
                return {_plain_key(k): _plain(v, active) for k, v in obj.items()}
            if isinstance(obj, np.ndarray):
                try:
                    items = obj.tolist()
                except Exception:
                    return _repr(obj)
                if not isinstance(items, list):  # a 0-d array gives a scalar
                    return _plain(items, active)
                obj = items
            return [_plain(v, active) for v in obj]
        finally:
            active.discard(ident)
    if isinstance(obj, int):
        return int(obj)
    if isinstance(obj, float):
        return float(obj)
    if isinstance(obj, str):
        return str(obj)
    return _repr(obj)


_PLAIN_SCALARS = frozenset(_SCALARS)
# one encoder for every config (json.dumps with separators= builds one per call); what
# it encodes never holds itself: a flat config of scalars, or what _plain made
_compact = encoder(separators=(",", ":"), acyclic=True)


def is_plain(obj: Any, depth: int = 0) -> bool:
    """Whether ``obj`` is built of dicts with string keys, lists and JSON scalars only.

    Such a config is rebuilt exactly from its JSON text (:func:`config_to_json`)
    and in any process; anything else (a tuple, a numpy value, a class, a
    function) is not.
    """
    tp = type(obj)
    if tp in _PLAIN_SCALARS:
        return True
    if depth > 20:
        return False
    # (loops, not all() over a generator: this runs twice a trial)
    if tp is dict:
        for k, v in obj.items():
            if type(k) is not str or (type(v) not in _PLAIN_SCALARS and
                                      not is_plain(v, depth + 1)):
                return False
        return True
    if tp is list:
        for v in obj:
            if type(v) not in _PLAIN_SCALARS and not is_plain(v, depth + 1):
                return False
        return True
    return False


def config_to_json(config: Any) -> str:
    """JSON text of a resolved config; never raises.

    Values JSON cannot hold are converted: numpy scalars to Python numbers
    (bool, int, float, str), numpy arrays and tuples to lists, dict keys
    that are not JSON scalars to their ``repr``, and anything else to
    ``{"__repr__": repr(obj)}`` (enums included). NaN and infinities are
    written as Python's ``json`` writes them (``NaN``, ``Infinity``). Keys
    keep their insertion order, so equal configs give equal text.

    Parameters
    ----------
    config : dict
        A resolved config (any object is accepted).

    Returns
    -------
    str
        Compact JSON text.

    Examples
    --------
    >>> import numpy as np
    >>> from fastasha.search import config_to_json
    >>> config_to_json({"lr": np.float64(0.5), "sizes": (1, 2), "f": float("nan")})
    '{"lr":0.5,"sizes":[1,2],"f":NaN}'
    """
    if type(config) is dict:
        for k, v in config.items():
            if type(k) is not str or type(v) not in _PLAIN_SCALARS:
                break
        else:
            return _compact(config)   # flat and plain: the common case
    try:
        return _compact(_plain(config, set()))
    except (RecursionError, ValueError, TypeError):  # absurdly deep nesting, exotic keys
        return json.dumps(_repr(config))
