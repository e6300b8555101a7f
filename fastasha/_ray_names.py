"""Attribute lookup shared by the Ray-compatible namespaces :mod:`fastasha.train` and :mod:`fastasha.air`."""

from __future__ import annotations

from typing import Any


def lookup(module: str, name: str, namespace: dict, refused: frozenset, what: str) -> Any:
    """A module ``__getattr__``: ``Result`` on first use, and errors that say why a name is missing.

    ``refused`` are the names of Ray's distributed training that ``module``
    leaves out; ``what`` names that part of Ray in the error.
    """
    if name == "Result":          # loads the results module on first use
        from .results import Result

        namespace["Result"] = Result
        return Result
    if name in refused:
        raise AttributeError(
            f"{module} has no {name!r}: fastasha runs Ray Tune's function and class "
            f"trainables, one process per trial, not {what}. Pass your training function "
            "to tune.Tuner directly and give each trial its resources with "
            "tune.with_resources(fn, {'cpu': n, 'gpu': m})"
        )
    raise AttributeError(f"module {module!r} has no attribute {name!r}")
