"""Ray Train's names that Ray Tune scripts use: ``from fastasha import train``.

From Ray 2.7 to the Ray 2.4x releases, Ray's documentation had Tune
objectives report with ``train.report`` and configure runs with
``train.RunConfig``::

    from ray import train, tune

    def objective(config):
        for step in range(100):
            train.report({"loss": ...})

    tune.Tuner(objective, run_config=train.RunConfig(name="sweep"), ...)

Such a script moves over by changing its import to
``from fastasha import train, tune``. Each name here is the very object of
the same name in :mod:`fastasha.tune`, so the two spellings mix freely:
``train.report`` is ``tune.report``, ``train.RunConfig`` is
``tune.RunConfig``, and so on. (Later Ray releases deprecate
``ray.train.report`` inside Tune in favour of ``ray.tune.report``; here both
are the same function.)

Ray 2.10 and later keep their XGBoost and LightGBM report callbacks in
``ray.train.xgboost`` and ``ray.train.lightgbm``
(``RayTrainReportCallback``); ``fastasha.train.xgboost`` and
``fastasha.train.lightgbm`` are the modules :mod:`fastasha.integration.xgboost`
and :mod:`fastasha.integration.lightgbm` themselves.

Ray Train's distributed trainers (``ScalingConfig``, ``TorchTrainer``,
``XGBoostTrainer``, ``DataParallelTrainer``, ...) are not part of fastasha:
it runs function and class trainables, one process per trial.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from ._ray_names import install_aliases, lookup
from ._session import TrialContext, get_checkpoint, get_context, report
from .checkpoint import Checkpoint
from .config import CheckpointConfig, FailureConfig, RunConfig, SyncConfig

if TYPE_CHECKING:   # loaded on first use (see __getattr__)
    from .results import Result

# Ray's name for what get_context() returns
TrainContext = TrialContext

# The names of Ray Train's distributed training that a script may reach for; asking
# for one says why it is missing instead of a bare AttributeError.
_TRAINERS = frozenset({
    "ScalingConfig", "DataConfig", "Trainer", "BaseTrainer", "DataParallelTrainer",
    "TorchTrainer", "TensorflowTrainer", "HorovodTrainer", "LightGBMTrainer",
    "XGBoostTrainer", "torch", "tensorflow", "lightning", "huggingface", "horovod",
    "backend", "get_dataset_shard",
})

# The submodules of ``ray.train`` that fastasha has: each is the fastasha module
# named here, found on first use by the finder of
# :func:`~fastasha._ray_names.install_aliases`.
_SUBMODULES = {
    "xgboost": "fastasha.integration.xgboost",
    "lightgbm": "fastasha.integration.lightgbm",
}

# A __path__ makes the import system treat this module as a package, so that
# ``import fastasha.train.xgboost`` looks for a submodule; only that finder
# answers for those names (as in fastasha.tune).
__path__: list[str] = []


install_aliases(__name__, _SUBMODULES.get)


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        # the import sets the attribute on this module: later lookups do not come here
        return import_module(f"{__name__}.{name}")
    return lookup(__name__, name, globals(), _TRAINERS, "Ray Train's distributed trainers")


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "Checkpoint",
    "CheckpointConfig",
    "FailureConfig",
    "Result",
    "RunConfig",
    "SyncConfig",
    "TrainContext",
    "TrialContext",
    "get_checkpoint",
    "get_context",
    "report",
]
