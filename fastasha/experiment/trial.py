"""Ray Tune's ``ray.tune.experiment.trial`` path of :class:`~fastasha.experiment.Trial`."""

from __future__ import annotations

from .._controller import Trial

__all__ = ["Trial"]
