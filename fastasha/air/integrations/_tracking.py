"""What the MLflow and Weights & Biases integrations share.

Install hints that work for a package that is not on PyPI, argument checks,
the experiment name of a trial, and :func:`at_trial_end`, which ends a
tracker's run when the trial that opened it (``setup_mlflow``,
``setup_wandb``) ends.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Callable

from ..._session import at_trial_end as _session_at_trial_end


def missing(library: str, package: str, extra: str, what: str, err: ImportError) -> ImportError:
    """The ``ImportError`` for a tracking library that is not installed.

    fastasha is not on PyPI: the hint names the library's own package, and
    the extra of a clone.
    """
    return ImportError(
        f"{what} needs {library}, which is not installed ({err}): pip install \"{package}\" "
        f"(or, in a clone of fastasha: pip install -e \".[{extra}]\")"
    )


def check_optional_str(name: str, value: Any) -> str | None:
    if value is not None and not isinstance(value, str):
        raise TypeError(f"{name} must be a string or None, got {value!r} of type "
                        f"{type(value).__name__}")
    return value


def check_tags(name: str, tags: Any) -> dict[str, str] | None:
    """``None`` or a dict with string keys (values are sent as text)."""
    if tags is None:
        return None
    if not isinstance(tags, Mapping):
        raise TypeError(f"{name} must be a dict of tag names to values, or None, got {tags!r} "
                        f"of type {type(tags).__name__}; e.g. {name}={{'team': 'vision'}}")
    bad = [k for k in tags if not isinstance(k, str)]
    if bad:
        raise TypeError(f"{name}' keys must be strings, got {bad[0]!r}")
    return dict(tags)


def check_config(config: Any, what: str) -> dict:
    """The ``config`` given to ``setup_mlflow`` / ``setup_wandb`` as a dict (None: empty)."""
    if config is None:
        return {}
    if not isinstance(config, Mapping):
        raise TypeError(f"{what}(config=...) takes the trial's config dict, got {config!r} of "
                        f"type {type(config).__name__}")
    return dict(config)


def experiment_name(trial: Any) -> str | None:
    """The name of the experiment ``trial`` belongs to (Ray's ``trial.experiment_dir_name``).

    fastasha's trials live in ``<storage_path>/<name>/trials``.
    """
    name = getattr(trial, "experiment_dir_name", None)
    if name:
        return name
    root = getattr(trial, "root", None)
    if not root:
        return None
    return os.path.basename(os.path.dirname(os.path.normpath(root))) or None


def at_trial_end(fn: Callable[[], Any]) -> bool:
    """Call ``fn()`` when the trial running in this thread is over; False outside a trial.

    fastasha's trial processes run one trial after another and leave with
    ``os._exit``, so no ``atexit`` handler (MLflow and W&B end their runs
    there) runs at a trial's end. ``fn`` runs in the trial's thread once its
    objective has returned or raised (stopped, failed or not), before the
    driver hears that the trial ended, and so before its process can exit
    (:func:`fastasha._session.at_trial_end`); an error in ``fn`` becomes a
    warning.
    """
    return _session_at_trial_end(fn)
