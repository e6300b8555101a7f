"""Small ``check_*`` helpers shared by the public modules.

Each helper raises ``ValueError`` or ``TypeError`` with a message that names
the argument, shows the value received and says what to pass instead.
"""

from __future__ import annotations

import math
import numbers
import os
from typing import Any


def check_real(name: str, value: Any) -> float:
    """Return ``value`` as a float, or raise ``TypeError`` if it is not a real number."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r} of type {type(value).__name__}")
    return float(value)


def check_positive(name: str, value: Any, hint: str = "") -> float:
    """A real number greater than 0."""
    x = check_real(name, value)
    if not x > 0 or math.isnan(x):
        raise ValueError(f"{name} must be greater than 0, got {value!r}{hint}")
    return x


def check_int(name: str, value: Any, minimum: int | None = None, hint: str = "") -> int:
    """An integer (``bool`` excluded), at least ``minimum`` when given."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r} of type {type(value).__name__}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value!r}{hint}")
    return int(value)


def check_bool(name: str, value: Any, hint: str = "") -> bool:
    """``True`` or ``False`` (numpy booleans too); no strings or numbers.

    A flag read from a command line or the environment arrives as a string,
    and ``"false"`` is truthy: refusing it beats doing the opposite.
    """
    if isinstance(value, bool) or type(value).__name__ == "bool_":
        return bool(value)
    raise TypeError(f"{name} must be True or False, got {value!r} of type "
                    f"{type(value).__name__}{hint}")


def check_choice(name: str, value: Any, options: tuple, hint: str = "") -> Any:
    """One of ``options``."""
    if value not in options:
        listed = ", ".join(repr(o) for o in options)
        raise ValueError(f"{name} must be one of {listed}, got {value!r}{hint}")
    return value


def check_mode(mode: Any, allow_none: bool = True) -> str | None:
    """``"min"``, ``"max"`` or (when allowed) ``None``."""
    if mode is None and allow_none:
        return None
    return check_choice("mode", mode, ("min", "max"))


def metric_value(metric: str, value: Any, trial_id: Any) -> float:
    """Convert a reported metric to float; ``TypeError`` for None and non-numbers.

    Python and numpy numbers, and objects with ``__float__`` (0-d arrays,
    framework scalars), are accepted; strings, ``None`` and containers are not.
    """
    tp = type(value)
    if tp is float or tp is int:
        return float(value)
    if value is None or isinstance(value, (str, bytes)) or not hasattr(value, "__float__"):
        raise TypeError(
            f"metric {metric!r} of trial {trial_id!r} must be a number, got {value!r} "
            f"of type {tp.__name__}; report a float, for example float(loss)"
        )
    return float(value)


def time_value(time_attr: str, value: Any, trial_id: Any) -> float:
    """Convert a reported time attribute to float; it must be a number and not NaN."""
    tp = type(value)
    if tp is int or tp is float:
        t = float(value)
    elif value is None or isinstance(value, (str, bytes)) or not hasattr(value, "__float__"):
        raise TypeError(
            f"time_attr {time_attr!r} of trial {trial_id!r} must be a number, got {value!r} "
            f"of type {tp.__name__}"
        )
    else:
        t = float(value)
    if t != t:
        raise ValueError(
            f"time_attr {time_attr!r} of trial {trial_id!r} is NaN; report a number that "
            "counts training progress, such as the iteration"
        )
    return t


def seconds_from_env(name: str, default: float) -> float:
    """The environment variable ``name`` as seconds greater than 0; ``default`` if unset.

    ``ValueError`` naming the variable if it is set to anything else.
    """
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not value > 0:
        raise ValueError(f"the environment variable {name} must be a number of seconds "
                         f"greater than 0, got {text!r}")
    return value


def user_stacklevel() -> int:
    """The ``stacklevel`` of a warning raised here that points at the first frame outside fastasha.

    For warnings raised deep inside fastasha, reached from different calls
    (``Tuner(...)``, ``fit()``, ``Tuner.restore``), where no fixed number fits.
    """
    import sys

    package = os.path.dirname(os.path.abspath(__file__)) + os.sep
    frame, level = sys._getframe(1), 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(package):
        frame, level = frame.f_back, level + 1
    return level
