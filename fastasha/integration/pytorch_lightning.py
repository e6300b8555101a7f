"""Ray Tune's PyTorch Lightning callbacks: report to fastasha's ``tune.report`` from ``trainer.fit``.

A Ray Tune script that tunes a ``LightningModule`` moves over by changing
its imports::

    import os
    import lightning.pytorch as pl
    from fastasha import tune
    from fastasha.schedulers import ASHAScheduler
    from fastasha.tune.integration.pytorch_lightning import TuneReportCheckpointCallback

    def train_mnist(config):
        model = LightningMNISTClassifier(config)
        trainer = pl.Trainer(max_epochs=10, enable_progress_bar=False, callbacks=[
            TuneReportCheckpointCallback({"loss": "ptl/val_loss"}, on="validation_end")])
        trainer.fit(model, train_loader, val_loader)

    tuner = tune.Tuner(train_mnist, tune_config=tune.TuneConfig(
        metric="loss", mode="min", num_samples=10,
        scheduler=ASHAScheduler(max_t=10, grace_period=1, reduction_factor=2)), ...)
    best = tuner.fit().get_best_result()
    model = LightningMNISTClassifier.load_from_checkpoint(
        os.path.join(best.checkpoint.path, "checkpoint"))

This module is also ``fastasha.tune.integration.pytorch_lightning`` (Ray's
``ray.tune.integration.pytorch_lightning``). It works with the
``lightning`` package (``import lightning.pytorch as pl``) and, where that
is not installed, with the older ``pytorch_lightning`` one; a trainer of
either takes these callbacks.

Each report holds what the module logged with ``self.log`` and Lightning
keeps in ``trainer.callback_metrics`` at the chosen hook, under the same
names (``"ptl/val_loss"``), as floats. Nothing is reported while Lightning
runs its sanity check of the validation loop before training, so the first
report comes after the first epoch's validation. A STOP from the scheduler
raises inside the report; Lightning runs its ``on_exception`` hooks and
tears the trainer down, lets it through, and the trial ends as stopped.

Importing this module needs PyTorch Lightning (as importing Ray's does):
without it, the import fails with a ``ModuleNotFoundError`` that says
``pip install lightning``.

References
----------
Arguments, defaults, hook names and behaviour follow Ray's
``python/ray/tune/integration/pytorch_lightning.py`` (Ray 2.7 and later,
which reports with ``ray.tune.report(metrics, checkpoint=...)`` and a
``Checkpoint.from_directory`` of a temporary folder that
``trainer.save_checkpoint`` wrote to) and the Ray API pages
``ray.tune.integration.pytorch_lightning.TuneReportCheckpointCallback`` and
``...TuneReportCallback`` (docs.ray.io); the tutorial "Using PyTorch
Lightning with Tune" shows the use above.
"""

from __future__ import annotations

import functools
import inspect
import os
import warnings
from typing import Any

from .._session import TrialStopped
from . import _dl
from ._common import report_with

try:
    from lightning.pytorch import Callback, Trainer
except ModuleNotFoundError as err:
    if err.name is not None and err.name.partition(".")[0] != "lightning":
        if err.name.partition(".")[0] == "torch":
            raise _dl.missing_backend(err, "pytorch_lightning", "torch", "") from err
        raise                            # lightning is there but one of its own imports is not
    try:
        from pytorch_lightning import Callback, Trainer
    except ModuleNotFoundError as err_pl:
        if err_pl.name is not None and err_pl.name.partition(".")[0] != "pytorch_lightning":
            raise
        raise _dl.missing_library(err, "pytorch_lightning", "lightning", "lightning",
                                  torch_first=True) from err

__all__ = ["TuneReportCallback", "TuneReportCheckpointCallback"]

# The hooks of this Lightning release's Callback, less "on_" (Ray takes the same list)
HOOKS = frozenset(name[3:] for name, _ in inspect.getmembers(Callback, inspect.isfunction)
                  if name.startswith("on_"))


def _as_number(value: Any) -> Any:
    """A logged value as Ray reports it: a one-element tensor as its Python number."""
    if hasattr(value, "numel") and hasattr(value, "item"):
        return value.item() if value.numel() == 1 else value.detach().cpu().tolist()
    return value


class _HookCallback(Callback):
    """A Lightning callback whose every hook calls ``_handle(trainer)`` when it is in ``on``."""

    def __init__(self, on: str | list[str] = "validation_end") -> None:
        super().__init__()
        self._on = frozenset(_dl.check_hooks("on", on, HOOKS))

    def _handle(self, trainer: Trainer) -> None:
        raise NotImplementedError


def _make_hook(hook: str) -> Any:
    def on_hook(self: _HookCallback, trainer: Trainer, *args: Any, **kwargs: Any) -> None:
        if hook in self._on:
            self._handle(trainer)

    on_hook.__name__ = on_hook.__qualname__ = f"on_{hook}"
    on_hook.__doc__ = f"Lightning's ``on_{hook}``: report when ``{hook!r}`` is in ``on``."
    return on_hook


for _hook in HOOKS:
    setattr(_HookCallback, f"on_{_hook}", _make_hook(_hook))
del _hook


class TuneReportCheckpointCallback(_HookCallback):
    """Report Lightning's logged metrics at a hook, with a checkpoint of the trainer.

    Ray's ``ray.tune.integration.pytorch_lightning.TuneReportCheckpointCallback``.
    Pass it in ``pl.Trainer(callbacks=[...])`` inside the objective.

    Parameters
    ----------
    metrics : str, list of str or dict, default=None
        What to report of ``trainer.callback_metrics`` (the values logged
        with ``self.log``). ``None`` (or an empty list) reports all of
        them; a name or a list of names reports those, under the same
        names; a dict ``{"loss": "ptl/val_loss"}`` reports each value under
        its key. A name that is not logged at that point is left out with a
        warning (as in Ray); a report with nothing in it is not made.
    filename : str, default="checkpoint"
        The file ``trainer.save_checkpoint`` writes inside each checkpoint
        folder; load it with ``MyModule.load_from_checkpoint(path)`` or
        ``trainer.fit(..., ckpt_path=path)``.
    save_checkpoints : bool, default=True
        Save a checkpoint with every report; ``False`` reports only.
    on : str or list of str, default="validation_end"
        The Lightning hooks (less ``on_``) to report at:
        ``"validation_end"`` reports once per validation run (each epoch,
        by default), ``"train_epoch_end"`` after each training epoch,
        ``"train_batch_end"`` after each batch. Any ``on_*`` hook of
        Lightning's ``Callback`` may be named.

    Raises
    ------
    TypeError, ValueError
        For an argument of the wrong type or value (an unknown hook, say).

    Notes
    -----
    Each report is one ``training_iteration`` for the scheduler, so with
    ``on="validation_end"`` ASHA's ``max_t`` and ``grace_period`` count
    validation runs. Reports with a checkpoint save the whole trainer
    state (model, optimizer, loops), so a trial that resumes from
    ``tune.get_checkpoint()`` can continue with
    ``trainer.fit(model, ..., ckpt_path=os.path.join(checkpoint.path, "checkpoint"))``.
    """

    def __init__(
        self,
        metrics: str | list[str] | dict[str, str] | None = None,
        filename: str = "checkpoint",
        save_checkpoints: bool = True,
        on: str | list[str] = "validation_end",
    ) -> None:
        super().__init__(on=on)
        self._metrics = _dl.check_metrics(metrics, "ptl/val_loss")
        self._filename = _dl.check_filename(filename, "checkpoint")
        if not isinstance(save_checkpoints, bool):
            raise TypeError(
                f"save_checkpoints must be True or False, got {save_checkpoints!r}; Ray 1.x "
                "took on= as the third argument: pass it by name, on='validation_end'"
            )
        self._save_checkpoints = save_checkpoints
        self._warned: set[str] = set()
        self._saving = False      # inside trainer.save_checkpoint (whose hooks may be in `on`)
        self._stopped = False     # a report ended the trial: hooks still called report no more

    def _handle(self, trainer: Trainer) -> None:
        if trainer.sanity_checking or self._saving or self._stopped:
            return
        values, missing = _dl.select(self._metrics, trainer.callback_metrics, _as_number)
        missing = [name for name in missing if name not in self._warned]
        if missing:
            self._warned.update(missing)
            warnings.warn(
                f"{type(self).__name__} leaves out {missing!r}: not in "
                f"trainer.callback_metrics, which holds {sorted(trainer.callback_metrics)!r} "
                "at this hook; log it with self.log(name, value) in the LightningModule",
                stacklevel=2,
            )
        if not values:
            return
        save = functools.partial(self._save, trainer) if self._save_checkpoints else None
        try:
            report_with(values, save)
        except TrialStopped:
            self._stopped = True
            raise

    def _save(self, trainer: Trainer, directory: str) -> None:
        """Save the trainer's checkpoint as ``filename`` in ``directory``."""
        self._saving = True
        try:
            trainer.save_checkpoint(os.path.join(directory, self._filename))
        finally:
            self._saving = False


class TuneReportCallback(TuneReportCheckpointCallback):
    """Report Lightning's logged metrics at a hook; no checkpoints.

    Ray's ``ray.tune.integration.pytorch_lightning.TuneReportCallback``
    (Ray 2.7 and later deprecate it in favour of
    ``TuneReportCheckpointCallback(..., save_checkpoints=False)``, which it is).

    Parameters
    ----------
    metrics : str, list of str or dict, default=None
        As for :class:`TuneReportCheckpointCallback`.
    on : str or list of str, default="validation_end"
        As for :class:`TuneReportCheckpointCallback`.
    """

    def __init__(self, metrics: str | list[str] | dict[str, str] | None = None,
                 on: str | list[str] = "validation_end") -> None:
        super().__init__(metrics=metrics, save_checkpoints=False, on=on)
