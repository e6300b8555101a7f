"""fastasha: hyperparameter tuning with Asynchronous Successive Halving.

``from fastasha import tune`` gives a Ray-Tune-compatible namespace
(``tune.Tuner``, ``tune.TuneConfig``, ``tune.report``, ``tune.uniform``, ...);
``from fastasha.schedulers import AsyncHyperBandScheduler`` the ASHA scheduler.
"""

try:
    # the compiled parts; nothing works without them
    from . import _fastpath, _rungs  # noqa: F401
except ImportError as err:  # pragma: no cover - exercised by hand on broken builds
    raise ImportError(
        "fastasha's compiled core (fastasha._rungs, fastasha._fastpath) is not built or "
        f"does not load ({err}). Build it from the source tree with\n"
        '    pip install -e ".[test]"\n'
        "(needs a C compiler; Cython and numpy are installed as build dependencies), "
        "or install a fastasha wheel."
    ) from err

__version__ = "0.1.0"

__all__ = ["__version__"]
