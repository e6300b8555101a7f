"""The Ray-Tune-compatible namespace: ``from fastasha import tune``.

A Ray Tune script moves over by changing its imports::

    from fastasha import tune
    from fastasha.schedulers import AsyncHyperBandScheduler
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

# Light names are imported at once; the rest load on first use, so that a
# worker process unpickling an objective that refers to ``tune`` imports only
# what ``tune.report`` needs (numpy, joblib and SQLite stay out of it).
from ._session import TrialContext, TrialStopped, get_checkpoint, get_context, report
from ._trainable import with_parameters, with_resources
from .callback import Callback
from .checkpoint import Checkpoint
from .config import CheckpointConfig, FailureConfig, RunConfig, TuneConfig
from .stopper import FunctionStopper, MaximumIterationStopper, Stopper

if TYPE_CHECKING:   # what the lazy names are, for type checkers and IDEs
    from . import schedulers
    from .results import Result, ResultGrid, TrialError
    from .search import (
        choice,
        grid_search,
        lograndint,
        loguniform,
        qlograndint,
        qloguniform,
        qrandint,
        qrandn,
        quniform,
        randint,
        randn,
        sample_from,
        uniform,
    )
    from .tuner import Tuner

    ExperimentAnalysis = ResultGrid.from_path

_LAZY = {
    "Tuner": "fastasha.tuner",
    "Result": "fastasha.results",
    "ResultGrid": "fastasha.results",
    "TrialError": "fastasha.results",
    **{name: "fastasha.search" for name in (
        "choice", "grid_search", "lograndint", "loguniform", "qlograndint", "qloguniform",
        "qrandint", "qrandn", "quniform", "randint", "randn", "sample_from", "uniform")},
}


def __getattr__(name: str) -> Any:
    if name == "schedulers":
        return import_module("fastasha.schedulers")
    if name == "ExperimentAnalysis":
        return import_module("fastasha.results").ResultGrid.from_path
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'fastasha.tune' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "Callback",
    "Checkpoint",
    "CheckpointConfig",
    "ExperimentAnalysis",
    "FailureConfig",
    "FunctionStopper",
    "MaximumIterationStopper",
    "Result",
    "ResultGrid",
    "RunConfig",
    "Stopper",
    "TrialContext",
    "TrialError",
    "TrialStopped",
    "TuneConfig",
    "Tuner",
    "choice",
    "get_checkpoint",
    "get_context",
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
    "report",
    "sample_from",
    "schedulers",
    "uniform",
    "with_parameters",
    "with_resources",
]
