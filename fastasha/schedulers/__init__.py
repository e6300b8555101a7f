"""Trial schedulers: decide after each result whether a trial goes on.

``FIFOScheduler`` never stops a trial; ``AsyncHyperBandScheduler`` (alias
``ASHAScheduler``) is Asynchronous Successive Halving,
``MedianStoppingRule`` the median stopping rule, ``HyperBandScheduler``
synchronous HyperBand (which pauses trials until their bracket halves),
``HyperBandForBOHB`` its variant for BOHB (with
:class:`~fastasha.search.bohb.TuneBOHB`), and ``PopulationBasedTraining``
Population Based Training (which pauses trials and has them exploit
others), all with Ray Tune's arguments and decisions.
Any object with the :class:`TrialScheduler` interface can be passed to the
Tuner instead. :func:`create_scheduler`
builds one from Ray Tune's name for it (``"async_hyperband"``), as
``TuneConfig(scheduler="async_hyperband")`` and ``tune.run(scheduler=...)``
do with a name.
"""

from __future__ import annotations

from typing import Any

from .._named import create_by_name
from ._base import CONTINUE, PAUSE, STOP, Decision, TrialScheduler
from .async_hyperband import AsyncHyperBandScheduler, RungInfo
from .fifo import FIFOScheduler
from .hb_bohb import HyperBandForBOHB
from .hyperband import HyperBandScheduler
from .median_stopping_rule import MedianStoppingRule
from .pbt import PopulationBasedTraining

ASHAScheduler = AsyncHyperBandScheduler

__all__ = [
    "ASHAScheduler",
    "AsyncHyperBandScheduler",
    "CONTINUE",
    "Decision",
    "FIFOScheduler",
    "HyperBandForBOHB",
    "HyperBandScheduler",
    "MedianStoppingRule",
    "PAUSE",
    "PopulationBasedTraining",
    "RungInfo",
    "STOP",
    "TrialScheduler",
    "create_scheduler",
]

# Ray's schedulers fastasha does not have (all pause trials or change their resources)
_PAUSING = {
    "PopulationBasedTrainingReplay": "replaying a Population Based Training schedule",
    "PB2": "Population Based Bandits",
    "ResourceChangingScheduler": "changing a trial's resources",
}

# Ray's names for the schedulers fastasha has (ray.tune.schedulers.create_scheduler), and
# "asha", fastasha's own
_NAMES = {
    "fifo": lambda: FIFOScheduler,
    "async_hyperband": lambda: AsyncHyperBandScheduler,
    "asynchyperband": lambda: AsyncHyperBandScheduler,
    "asha": lambda: AsyncHyperBandScheduler,
    "median_stopping_rule": lambda: MedianStoppingRule,
    "medianstopping": lambda: MedianStoppingRule,
    "pbt": lambda: PopulationBasedTraining,
    "hyperband": lambda: HyperBandScheduler,
    "hb_bohb": lambda: HyperBandForBOHB,
}
# Ray's names for the schedulers fastasha lacks
_MISSING = {
    "pbt_replay": "PopulationBasedTrainingReplay (which pauses trials and changes their configs)",
    "pb2": "PB2 (Population Based Bandits, which pauses trials and changes their configs)",
    "resource_changing": "ResourceChangingScheduler (which changes a trial's resources)",
}


def create_scheduler(scheduler: str, **kwargs: Any) -> TrialScheduler:
    """The scheduler Ray Tune names ``scheduler``, built with ``kwargs``.

    Ray Tune's ``ray.tune.schedulers.create_scheduler``, for the schedulers
    fastasha has.

    Parameters
    ----------
    scheduler : str
        One of Ray's names, in any case: ``"fifo"`` (:class:`FIFOScheduler`),
        ``"async_hyperband"`` or ``"asynchyperband"``
        (:class:`AsyncHyperBandScheduler`; ``"asha"`` too, a fastasha
        extension), ``"median_stopping_rule"`` or ``"medianstopping"``
        (:class:`MedianStoppingRule`), ``"pbt"``
        (:class:`PopulationBasedTraining`), ``"hyperband"``
        (:class:`HyperBandScheduler`), ``"hb_bohb"``
        (:class:`HyperBandForBOHB`).
    **kwargs
        The scheduler's arguments (``metric``, ``mode``, ``max_t``, ...).
        As in Ray, those the chosen class does not take are dropped (with a
        warning here), so that one call can switch between schedulers.

    Returns
    -------
    TrialScheduler

    Raises
    ------
    ValueError
        For Ray's names of schedulers fastasha does not have
        (``"pbt_replay"``, ``"pb2"``, ``"resource_changing"``), and for an
        unknown name; the message lists the names above.
    TypeError
        If ``scheduler`` is not a str.

    Examples
    --------
    >>> from fastasha.schedulers import create_scheduler
    >>> asha = create_scheduler("async_hyperband", grace_period=2, max_t=50)
    >>> type(asha).__name__, asha.grace_period, asha.max_t
    ('AsyncHyperBandScheduler', 2, 50)
    """
    return create_by_name("scheduler", scheduler, _NAMES, _MISSING, kwargs)


def __getattr__(name: str):
    what = _PAUSING.get(name)
    if what is not None:
        # an ImportError: `from fastasha.schedulers import X` would turn an AttributeError
        # into a bare "cannot import name" (so hasattr() raises for these names)
        raise ImportError(
            f"fastasha has no {name} ({what}). It has PopulationBasedTraining and "
            "HyperBandScheduler, which pause and resume trials, ASHAScheduler, the "
            "asynchronous successive halving that Ray recommends for early stopping, and "
            "MedianStoppingRule",
            name=__name__,
        )
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
