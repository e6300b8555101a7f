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

Ray Train's distributed trainers (``ScalingConfig``, ``TorchTrainer``,
``DataParallelTrainer``, ...) are not part of fastasha: it runs function and
class trainables, one process per trial.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._ray_names import lookup
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
    "XGBoostTrainer", "torch", "tensorflow", "lightning", "huggingface", "xgboost",
    "lightgbm", "horovod", "backend", "get_dataset_shard",
})


def __getattr__(name: str) -> Any:
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
