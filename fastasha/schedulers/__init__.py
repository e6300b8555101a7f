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

# Ray's schedulers that pause trials (or resize them): fastasha cannot pause a trial
_PAUSING = {
    "HyperBandScheduler": "synchronous HyperBand",
    "HyperBandForBOHB": "BOHB's HyperBand",
    "PopulationBasedTraining": "Population Based Training",
    "PopulationBasedTrainingReplay": "Population Based Training",
    "PB2": "Population Based Bandits",
    "ResourceChangingScheduler": "changing a trial's resources",
}


def __getattr__(name: str):
    what = _PAUSING.get(name)
    if what is not None:
        # an ImportError: `from fastasha.schedulers import X` would turn an AttributeError
        # into a bare "cannot import name" (so hasattr() raises for these six names)
        raise ImportError(
            f"fastasha has no {name}: {what} needs to pause trials (or change their resources) "
            "and resume them, which fastasha does not do. Use ASHAScheduler, the "
            "asynchronous successive halving that Ray recommends for early stopping, or "
            "MedianStoppingRule",
            name=__name__,
        )
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
