"""``ray.air.session``: reporting from inside a trial, as Ray 2.0-2.6 scripts do it.

``session.report`` is ``tune.report`` and ``session.get_checkpoint`` is
``tune.get_checkpoint``; the ``get_*`` functions answer what
``tune.get_context()`` answers, and ``None`` (the rank and size functions:
0 and 1) outside a trial.
"""

from __future__ import annotations

from typing import Any

from .._session import get_checkpoint, get_context, report


def get_trial_id() -> str | None:
    """The current trial's id."""
    return get_context().get_trial_id()


def get_trial_name() -> str | None:
    """The current trial's name."""
    return get_context().get_trial_name()


def get_experiment_name() -> str | None:
    """The name of the experiment the current trial belongs to."""
    return get_context().get_experiment_name()


def get_trial_dir() -> str | None:
    """The current trial's own folder in the experiment (created on first use)."""
    return get_context().get_trial_dir()


def get_trial_resources() -> Any:
    """What the current trial asked for (see ``TrialContext.get_trial_resources``)."""
    return get_context().get_trial_resources()


# A fastasha trial is one process: rank 0 of 1, as Ray answers for a Tune trial.
def get_world_rank() -> int:
    return 0


def get_local_rank() -> int:
    return 0


def get_node_rank() -> int:
    return 0


def get_world_size() -> int:
    return 1


def get_local_world_size() -> int:
    return 1


def get_dataset_shard(dataset_name: str | None = None) -> Any:
    """Not available: Ray Datasets shards belong to Ray AIR's distributed trainers."""
    raise RuntimeError(
        "session.get_dataset_shard() serves Ray AIR trainers, which fastasha does not run; "
        "load the data inside the objective, or pass it with tune.with_parameters(fn, data=...)"
    )


__all__ = [
    "get_checkpoint",
    "get_dataset_shard",
    "get_experiment_name",
    "get_local_rank",
    "get_local_world_size",
    "get_node_rank",
    "get_trial_dir",
    "get_trial_id",
    "get_trial_name",
    "get_trial_resources",
    "get_world_rank",
    "get_world_size",
    "report",
]
