"""The Ray-Tune-compatible namespace: ``from fastasha import tune``.

A Ray Tune script moves over by changing its imports::

    from fastasha import tune
    from fastasha.schedulers import AsyncHyperBandScheduler
"""

from . import schedulers
from ._session import TrialContext, TrialStopped, get_checkpoint, get_context, report
from ._trainable import with_parameters, with_resources
from .checkpoint import Checkpoint
from .config import CheckpointConfig, FailureConfig, RunConfig, TuneConfig
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
from .stopper import FunctionStopper, MaximumIterationStopper, Stopper
from .tuner import Tuner

ExperimentAnalysis = ResultGrid.from_path

__all__ = [
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
