"""Helpers Ray Tune keeps in ``ray.tune.utils`` (``fastasha.tune.utils`` is this module).

:func:`validate_save_restore` checks a :class:`~fastasha.trainable.Trainable`
class's checkpoints by hand, before a sweep relies on them.
"""

from __future__ import annotations

import shutil
from typing import Any

from .trainable import Trainable

__all__ = ["validate_save_restore"]


def validate_save_restore(trainable_cls: type, config: dict | None = None,
                          num_gpus: int = 0) -> bool:
    """Check that a Trainable class resumes from its own checkpoint, as Ray's helper does.

    One instance trains three steps and saves; a second instance restores
    that checkpoint and trains one step, which must be the fourth
    (``training_iteration`` 4). Both run here, in this process, and are
    stopped afterwards; the checkpoint folder is removed.

    Parameters
    ----------
    trainable_cls : type
        A :class:`~fastasha.trainable.Trainable` subclass.
    config : dict, optional
        The config both instances get.
    num_gpus : int, default=0
        Accepted for Ray's signature (Ray places the two instances on GPUs);
        no effect here.

    Returns
    -------
    bool
        True when the checks pass.

    Raises
    ------
    TypeError
        If ``trainable_cls`` is not a Trainable subclass.
    AssertionError
        If a result lacks ``training_iteration`` or the restored instance
        does not continue from the saved one (Ray raises it too).
    """
    if not (isinstance(trainable_cls, type) and issubclass(trainable_cls, Trainable)):
        raise TypeError(f"validate_save_restore checks a tune.Trainable subclass, got "
                        f"{trainable_cls!r}")
    first: Any = trainable_cls(config or {})
    second: Any = None
    folder = None
    try:
        for _ in range(3):
            result = first.train()
        if not result.get("training_iteration"):
            raise AssertionError(f"{trainable_cls.__name__}: its results carry no "
                                 "training_iteration, which the check needs")
        folder = first.save()
        second = trainable_cls(config or {})
        second.restore(folder)
        again = second.train()
        if again.get("training_iteration") != result["training_iteration"] + 1:
            raise AssertionError(
                f"{trainable_cls.__name__} restored from the checkpoint of iteration "
                f"{result['training_iteration']} went on at iteration "
                f"{again.get('training_iteration')!r}, not "
                f"{result['training_iteration'] + 1}: check save_checkpoint and "
                "load_checkpoint"
            )
        return True
    finally:
        first.stop()
        if second is not None:
            second.stop()
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)
