"""Building a scheduler or a searcher from Ray Tune's name for it.

What :func:`fastasha.schedulers.create_scheduler` and
:func:`fastasha.search.create_searcher` share: the lookup of a name (in
lower case, as Ray does), the errors for Ray's names fastasha lacks and for
unknown ones, and the keyword arguments handed to the class. Like Ray's
functions, they drop the keyword arguments the chosen class does not take,
so that one call can switch between classes (``create_scheduler(name,
metric="loss", mode="min", max_t=100)`` with ``"fifo"`` as well as with
``"async_hyperband"``); fastasha warns about what it drops, where Ray is
silent.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Callable, Mapping
from typing import Any

from ._validation import user_stacklevel


def create_by_name(kind: str, name: Any, known: Mapping[str, Callable[[], type]],
                   missing: Mapping[str, str], kwargs: dict[str, Any]) -> Any:
    """An instance of the class Ray names ``name``, built with ``kwargs``.

    Parameters
    ----------
    kind : str
        ``"scheduler"`` or ``"searcher"``, for messages.
    name : str
        The name, in any case (``"ASYNC_HYPERBAND"`` works).
    known : mapping of str to callable
        The names fastasha has; each value returns the class (it imports
        the class's module only when called).
    missing : mapping of str to str
        Ray's names that fastasha lacks, each with why or what it is.
    kwargs : dict
        The keyword arguments; those the class does not take are dropped,
        with a warning.

    Raises
    ------
    TypeError
        If ``name`` is not a str.
    ValueError
        For one of Ray's names that fastasha lacks, and for an unknown name;
        both messages list the names fastasha knows.
    """
    if not isinstance(name, str):
        raise TypeError(f"the {kind} name must be a str such as {next(iter(known))!r}, got "
                        f"{name!r} of type {type(name).__name__}")
    key = name.lower()
    names = ", ".join(repr(n) for n in known)
    if key in missing:
        raise ValueError(
            f"{name!r} is Ray Tune's name for {missing[key]}, which is not available in "
            f"fastasha; the {kind}s fastasha has are {names}")
    if key not in known:
        raise ValueError(f"unknown {kind} name {name!r}; the names fastasha knows are {names}")
    cls = known[key]()
    return cls(**_accepted(cls, kind, name, kwargs))


def _accepted(cls: type, kind: str, name: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    """The part of ``kwargs`` that ``cls`` takes; warns about the rest, which is dropped."""
    parameters = inspect.signature(cls).parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return dict(kwargs)
    takes = {p.name for p in parameters
             if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)}
    dropped = [k for k in kwargs if k not in takes]
    if dropped:
        warnings.warn(
            f"create_{kind}({name!r}) ignored {', '.join(dropped)}: {cls.__name__} takes no such "
            f"argument{'s' if len(dropped) > 1 else ''} (Ray's create_{kind} drops them too); "
            f"{cls.__name__} takes {', '.join(sorted(takes)) or 'none'}",
            UserWarning, stacklevel=user_stacklevel())
    return {k: v for k, v in kwargs.items() if k in takes}
