"""``ray.air.config``'s run configuration names (the objects of :mod:`fastasha.tune`)."""

from ..config import CheckpointConfig, FailureConfig, RunConfig, SyncConfig

__all__ = ["CheckpointConfig", "FailureConfig", "RunConfig", "SyncConfig"]
