"""Ray AIR's names that Ray Tune scripts of Ray 2.0-2.6 use: ``from fastasha import air``.

Those releases configured runs with ``air.RunConfig`` and reported from the
objective through ``ray.air.session``::

    from ray import air, tune
    from ray.air import session

    def objective(config):
        for step in range(100):
            session.report({"loss": ...})

    tune.Tuner(objective, run_config=air.RunConfig(name="sweep"), ...)

Such a script moves over by changing its imports to
``from fastasha import air, tune`` and ``from fastasha.air import session``.
Each name is the very object of the same name in :mod:`fastasha.tune`
(``air.RunConfig`` is ``tune.RunConfig``, ``air.session.report`` is
``tune.report``), and ``air.Checkpoint`` reads and writes Ray 2.0-2.6's
dict checkpoints (``Checkpoint.from_dict``, ``to_dict``) as well as
directories. ``fastasha.air.config``, ``fastasha.air.checkpoint``,
``fastasha.air.result`` and ``fastasha.air.session`` are importable as in
Ray. Ray AIR's distributed training (``ScalingConfig``, ``DatasetConfig``,
trainers) is not part of fastasha.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from .._ray_names import lookup
from . import session
from .checkpoint import Checkpoint

if TYPE_CHECKING:   # loaded on first use (see __getattr__)
    from ..results import Result
    from .config import CheckpointConfig, FailureConfig, RunConfig, SyncConfig

_TRAINING = frozenset({"ScalingConfig", "DatasetConfig", "DataConfig", "BaseTrainer",
                       "Trainer", "AirTrainer"})
# loaded on first use: a trial process that imports ``air.session`` to report
# needs none of the run's configuration
_CONFIGS = frozenset({"CheckpointConfig", "FailureConfig", "RunConfig", "SyncConfig"})


def __getattr__(name: str) -> Any:
    if name in _CONFIGS or name == "config":
        # (import_module, not "from . import config", which asks this very
        # function for the attribute first); the import sets ``config`` here too
        config = import_module(f"{__name__}.config")
        if name == "config":
            return config
        value = globals()[name] = getattr(config, name)
        return value
    return lookup(__name__, name, globals(), _TRAINING, "Ray AIR's distributed training")


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "Checkpoint",
    "CheckpointConfig",
    "FailureConfig",
    "Result",
    "RunConfig",
    "SyncConfig",
    "session",
]
