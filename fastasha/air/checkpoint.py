"""``ray.air.checkpoint.Checkpoint``: :class:`fastasha.checkpoint.Checkpoint` itself."""

from ..checkpoint import Checkpoint

__all__ = ["Checkpoint"]
