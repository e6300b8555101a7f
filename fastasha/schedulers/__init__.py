"""Trial schedulers: decide after each result whether a trial goes on.

``FIFOScheduler`` never stops a trial; ``AsyncHyperBandScheduler`` (alias
``ASHAScheduler``) is Asynchronous Successive Halving and
``MedianStoppingRule`` the median stopping rule, both with Ray Tune's
arguments and decisions. Any object with the :class:`TrialScheduler`
interface can be passed to the Tuner instead.
"""

from ._base import CONTINUE, PAUSE, STOP, Decision, TrialScheduler
from .async_hyperband import AsyncHyperBandScheduler, RungInfo
from .fifo import FIFOScheduler
from .median_stopping_rule import MedianStoppingRule

ASHAScheduler = AsyncHyperBandScheduler

__all__ = [
    "ASHAScheduler",
    "AsyncHyperBandScheduler",
    "CONTINUE",
    "Decision",
    "FIFOScheduler",
    "MedianStoppingRule",
    "PAUSE",
    "RungInfo",
    "STOP",
    "TrialScheduler",
]
