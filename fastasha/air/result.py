"""``ray.air.result.Result``: :class:`fastasha.results.Result` itself."""

from ..results import Result

__all__ = ["Result"]
