"""The Ray-Tune-compatible namespace: ``from fastasha import tune``.

A Ray Tune script moves over by changing its imports::

    from fastasha import tune
    from fastasha.schedulers import AsyncHyperBandScheduler

The module paths under ``ray.tune`` work under ``fastasha.tune`` as well:
``fastasha.tune.schedulers``, ``fastasha.tune.search``,
``fastasha.tune.stopper``, ``fastasha.tune.progress_reporter``,
``fastasha.tune.logger``, ``fastasha.tune.result`` and
``fastasha.tune.integration`` (and their submodules, such as
``fastasha.tune.integration.xgboost``) are the modules
``fastasha.schedulers``, ``fastasha.search``, ``fastasha.stopper``,
``fastasha.progress_reporter``, ``fastasha.logger``, ``fastasha.result``
and ``fastasha.integration`` themselves, so
``from fastasha.tune.stopper import TrialPlateauStopper`` and
``tune.schedulers.ASHAScheduler`` give the same objects as the short paths.
Ray 1.x's ``ray.tune.suggest`` (``suggest.optuna``, ``suggest.suggestion``,
...) is ``fastasha.search`` too. ``fastasha.tune.experiment`` (and
``experiment.trial``, and Ray 1.x's ``trial``) holds ``Trial``.

The modules of ``ray.tune`` that scripts import single names from are there
too: ``fastasha.tune.tuner`` (``Tuner``),
``tune_config`` (``TuneConfig``, ``RunConfig``), ``result_grid``
(``ResultGrid``, ``Result``), ``trainable`` (``Trainable``), ``callback``
(``Callback``), ``error`` (``TuneError``) and ``registry``
(``register_trainable``), each the fastasha module that holds the name,
so ``from fastasha.tune.tuner import Tuner`` is ``tune.Tuner``.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

# What an objective calls in its trial (the report API) is imported at once;
# the rest loads on first use. A slot's worker imports this module before it
# forks its trial processes, so that each finds the report API loaded: the
# configs, callbacks, stoppers, reporters and resource requests of the
# driver's side are left out of it (about 4 ms of a cold worker's start),
# and so are numpy, joblib and SQLite.
from ._ray_names import install_aliases
from ._session import (
    TrialContext,
    TrialStopped,
    checkpoint_dir,
    get_checkpoint,
    get_context,
    is_session_enabled,
    report,
)
from .checkpoint import Checkpoint

# Ray's name for what get_context() returns
TuneContext = TrialContext

if TYPE_CHECKING:   # what the lazy names are, for type checkers and IDEs
    from . import integration, logger, progress_reporter, schedulers, search, stopper
    from ._resources import PlacementGroupFactory
    from ._trainable import register_trainable, with_parameters, with_resources
    from .air.session import get_trial_dir, get_trial_id, get_trial_name, get_trial_resources
    from .callback import Callback
    from .config import CheckpointConfig, FailureConfig, RunConfig, SyncConfig, TuneConfig
    from .progress_reporter import CLIReporter, JupyterNotebookReporter, ProgressReporter
    from .stopper import FunctionStopper, MaximumIterationStopper, Stopper
    from .analysis import ExperimentAnalysis, run
    from .schedulers import create_scheduler
    from .results import Result, ResultGrid, TrialError, TuneError
    from .search import (
        choice,
        create_searcher,
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
    from .trainable import Trainable
    from .tuner import Tuner

_LAZY = {
    "PlacementGroupFactory": "fastasha._resources",
    "register_trainable": "fastasha._trainable",
    "with_parameters": "fastasha._trainable",
    "with_resources": "fastasha._trainable",
    "get_trial_dir": "fastasha.air.session",
    "get_trial_id": "fastasha.air.session",
    "get_trial_name": "fastasha.air.session",
    "get_trial_resources": "fastasha.air.session",
    "Callback": "fastasha.callback",
    **{name: "fastasha.config" for name in (
        "CheckpointConfig", "FailureConfig", "RunConfig", "SyncConfig", "TuneConfig")},
    **{name: "fastasha.progress_reporter" for name in (
        "CLIReporter", "JupyterNotebookReporter", "ProgressReporter")},
    **{name: "fastasha.stopper" for name in (
        "FunctionStopper", "MaximumIterationStopper", "Stopper")},
    "Tuner": "fastasha.tuner",
    "Result": "fastasha.results",
    "ResultGrid": "fastasha.results",
    "TrialError": "fastasha.results",
    "TuneError": "fastasha.results",
    "Trainable": "fastasha.trainable",
    "ExperimentAnalysis": "fastasha.analysis",
    "Analysis": "fastasha.analysis",
    "run": "fastasha.analysis",
    "create_scheduler": "fastasha.schedulers",
    "create_searcher": "fastasha.search",
    **{name: "fastasha.search" for name in (
        "choice", "grid_search", "lograndint", "loguniform", "qlograndint", "qloguniform",
        "qrandint", "qrandn", "quniform", "randint", "randn", "sample_from", "uniform")},
}


# The submodules a Ray user imports from ``ray.tune``; each is the fastasha
# module of the same name, found by the finder that
# :func:`~fastasha._ray_names.install_aliases` installs, on first use.
_SUBMODULES = ("schedulers", "search", "stopper", "progress_reporter", "logger", "integration",
               "result", "analysis", "utils", "experiment", "tuner", "trainable", "callback")

# A __path__ makes the import system treat this module as a package, so that
# ``import fastasha.tune.search`` looks for a submodule instead of failing with
# "'fastasha.tune' is not a package". The list is empty: no file is found
# under it, and only that finder answers for these names.
__path__: list[str] = []


# Ray 1.x's module paths of what Ray 2.0 moved: ``ray.tune.suggest`` became
# ``ray.tune.search`` (``suggest.suggestion`` held Searcher and ConcurrencyLimiter), and
# ``ray.tune.trial`` (the Trial class) became ``ray.tune.experiment.trial``; and Ray's
# modules whose names fastasha keeps elsewhere (``from ray.tune.tune_config import
# TuneConfig``, ``from ray.tune.result_grid import ResultGrid``, ...)
_RENAMED = {"suggest.suggestion": "search", "suggest": "search", "trial": "experiment.trial",
            "tune_config": "config", "result_grid": "results", "error": "results",
            "registry": "_trainable"}


def _real_name(name: str) -> str | None:
    """``fastasha.<name>`` for an alias (``schedulers``, ``search.sample``, ...), else None."""
    for old, new in _RENAMED.items():
        if name == old or name.startswith(old + "."):
            name = new + name[len(old):]
            break
    else:
        if name.partition(".")[0] not in _SUBMODULES:
            return None
    real = f"{__package__}.{name}"
    from importlib.util import find_spec  # only when an alias is imported

    try:
        return real if find_spec(real) is not None else None
    except ModuleNotFoundError:
        return None


install_aliases(__name__, _real_name)


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES or name in _RENAMED:
        # the import sets the attribute on this module: later lookups do not come here
        return import_module(f"{__name__}.{name}")
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'fastasha.tune' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "Analysis",
    "CLIReporter",
    "Callback",
    "Checkpoint",
    "CheckpointConfig",
    "ExperimentAnalysis",
    "FailureConfig",
    "FunctionStopper",
    "JupyterNotebookReporter",
    "MaximumIterationStopper",
    "PlacementGroupFactory",
    "ProgressReporter",
    "Result",
    "ResultGrid",
    "RunConfig",
    "Stopper",
    "SyncConfig",
    "TrialContext",
    "TuneContext",
    "TrialError",
    "Trainable",
    "TrialStopped",
    "TuneConfig",
    "TuneError",
    "Tuner",
    "checkpoint_dir",
    "choice",
    "create_scheduler",
    "create_searcher",
    "get_checkpoint",
    "get_context",
    "get_trial_dir",
    "get_trial_id",
    "get_trial_name",
    "get_trial_resources",
    "grid_search",
    "integration",
    "is_session_enabled",
    "logger",
    "lograndint",
    "loguniform",
    "progress_reporter",
    "qlograndint",
    "qloguniform",
    "qrandint",
    "qrandn",
    "quniform",
    "randint",
    "randn",
    "register_trainable",
    "report",
    "run",
    "sample_from",
    "schedulers",
    "search",
    "stopper",
    "uniform",
    "with_parameters",
    "with_resources",
]
