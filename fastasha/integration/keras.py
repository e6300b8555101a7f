"""Ray's Keras callbacks: report to fastasha's ``tune.report`` from ``model.fit``.

A Ray Tune script that tunes a Keras model moves over by changing its
imports::

    import keras
    from fastasha import tune
    from fastasha.schedulers import ASHAScheduler
    from fastasha.tune.integration.keras import TuneReportCheckpointCallback

    def train_mnist(config):
        model = build_model(config)
        model.fit(x_train, y_train, epochs=10, validation_data=(x_test, y_test), verbose=0,
                  callbacks=[TuneReportCheckpointCallback({"mean_accuracy": "val_accuracy"})])

    tuner = tune.Tuner(train_mnist, tune_config=tune.TuneConfig(
        metric="mean_accuracy", mode="max", num_samples=10,
        scheduler=ASHAScheduler(max_t=10, grace_period=1)), ...)
    best = tuner.fit().get_best_result()
    model = TuneReportCheckpointCallback.get_model(best.checkpoint)

This module is also ``fastasha.tune.integration.keras`` (Ray's
``ray.tune.integration.keras``: ``TuneReportCallback`` and
``TuneReportCheckpointCallback``) and ``fastasha.air.integrations.keras``
(Ray 2.x's ``ray.air.integrations.keras``: ``ReportCheckpointCallback``).

Each report holds the Keras ``logs`` of the chosen hook under Keras's
names: at ``"epoch_end"``, the training metrics (``"loss"``,
``"accuracy"``) and, with validation data, the same with a ``"val_"``
prefix. A checkpoint holds the whole model, written by ``model.save`` as
one ``.keras`` file (Keras 3's format), as Ray 2.7 and later write it;
load it with :meth:`get_model` or ``keras.models.load_model``. A STOP from
the scheduler raises inside the report, which ends ``model.fit`` there
(Keras does not catch it), and the trial ends as stopped.

The callbacks are Keras 3 callbacks (``keras.callbacks.Callback``), for any
of its backends; this package is tested with ``KERAS_BACKEND=torch``.
Importing this module needs Keras and its backend: without them, the
import fails with a ``ModuleNotFoundError`` that says what to install.

References
----------
Arguments, defaults, hook names and behaviour follow Ray's
``python/ray/air/integrations/keras.py`` and
``python/ray/train/tensorflow/keras.py`` (``ReportCheckpointCallback``:
``checkpoint_on``, ``report_metrics_on``, ``metrics``; metrics are
reported with every checkpoint), Ray's ``python/ray/tune/integration/keras.py``
of Ray 1.x to 2.6 (``TuneReportCallback``, ``TuneReportCheckpointCallback``
with ``metrics``, ``filename``, ``frequency``, ``on``) and of Ray 2.7 and
later (``TuneReportCheckpointCallback`` with the arguments of
``ReportCheckpointCallback``), and Ray's tutorial "Using Keras & TensorFlow
with Tune".
"""

from __future__ import annotations

import os
from collections import Counter
from typing import Any

from .._session import TrialStopped
from .._validation import check_int
from . import _dl
from ._common import checkpoint_folder, report_with

try:
    import keras
except ModuleNotFoundError as err:
    _top = (err.name or "").partition(".")[0]
    if _top == "keras":
        raise _dl.missing_library(err, "keras", "keras", "keras") from err
    if _top in ("torch", "tensorflow", "jax"):
        _chosen = os.environ.get("KERAS_BACKEND")
        raise _dl.missing_backend(
            err, "keras", _top,
            f", the backend Keras runs on (KERAS_BACKEND={_chosen})" if _chosen else
            ", the backend Keras runs on when KERAS_BACKEND is unset; or install torch "
            "and set KERAS_BACKEND=torch") from err
    raise                                # keras is there but one of its own imports is not

__all__ = ["ReportCheckpointCallback", "TuneReportCallback", "TuneReportCheckpointCallback"]

# Keras's callback hooks, less "on_"; "batch_begin"/"batch_end" are Keras's old names of
# "train_batch_begin"/"train_batch_end" (the hooks of Ray's callbacks)
HOOKS = frozenset({
    "epoch_begin", "epoch_end", "train_begin", "train_end", "test_begin", "test_end",
    "predict_begin", "predict_end", "train_batch_begin", "train_batch_end",
    "test_batch_begin", "test_batch_end", "predict_batch_begin", "predict_batch_end",
    "batch_begin", "batch_end",
})
# the suffixes Keras 3's model.save writes; a filename without one gets ".keras"
MODEL_SUFFIXES = (".keras", ".h5", ".hdf5")
MODEL_FILE = "model.keras"


def _as_number(value: Any) -> Any:
    """A logged value as a Python number where it is a one-element array or tensor."""
    size = value.numel() if hasattr(value, "numel") else getattr(value, "size", None)
    if size == 1 and hasattr(value, "item"):
        return value.item()
    return value


def _model_file(filename: Any) -> str:
    filename = _dl.check_filename(filename, MODEL_FILE)
    return filename if filename.endswith(MODEL_SUFFIXES) else filename + ".keras"


class _ReportCallback(keras.callbacks.Callback):
    """The shared logic of this module's callbacks.

    ``report_on`` are the hooks to report at; ``checkpoint_every`` maps a
    hook to ``n``: save a checkpoint with every ``n``-th call of that hook
    (``n`` = 0: never). A hook whose checkpoint is due reports too.
    """

    def __init__(self, metrics: Any, report_on: list[str], checkpoint_every: dict[str, int],
                 filename: str = MODEL_FILE) -> None:
        super().__init__()
        self._metrics = _dl.check_metrics(metrics, "val_loss")
        self._report_on = frozenset(report_on)
        self._checkpoint_every = {h: n for h, n in checkpoint_every.items() if n > 0}
        self._filename = _model_file(filename)
        self._calls: Counter[str] = Counter()
        self._stopped = False     # a report ended the trial: hooks still called report no more

    @classmethod
    def get_model(cls, checkpoint: Any, filename: str | None = None, **kwargs: Any) -> Any:
        """The Keras model saved in ``checkpoint`` by one of these callbacks.

        Parameters
        ----------
        checkpoint : tune.Checkpoint or path-like
            A checkpoint the callback reported, such as
            ``results.get_best_result().checkpoint``.
        filename : str, default=None
            The model's file in the checkpoint (the callback's ``filename``,
            ``".keras"`` added as the callback adds it); ``None`` takes the
            one ``.keras``/``.h5`` file the checkpoint holds.
        **kwargs
            Passed to ``keras.models.load_model`` (``custom_objects=``,
            ``compile=``).

        Returns
        -------
        keras.Model

        Raises
        ------
        TypeError
            If ``checkpoint`` is ``None`` (the result has no checkpoint) or not a checkpoint.
        FileNotFoundError
            If the checkpoint holds no such model file (or, with ``filename=None``,
            not exactly one).
        """
        directory = checkpoint_folder(checkpoint, "let the callback save checkpoints")
        held = sorted(os.listdir(directory))
        if filename is None:
            found = [name for name in held if name.endswith(MODEL_SUFFIXES)]
            if len(found) != 1:
                raise FileNotFoundError(
                    f"checkpoint {directory!r} holds {held!r}, not exactly one Keras model "
                    "file (.keras, .h5): pass get_model the filename= to load"
                )
            name = found[0]
        else:
            name = _model_file(filename)
            if name not in held:
                raise FileNotFoundError(
                    f"no Keras model file {name!r} in checkpoint {directory!r} (it holds "
                    f"{held!r}); pass get_model the filename= the callback was given"
                )
        return keras.models.load_model(os.path.join(directory, name), **kwargs)

    def _handle(self, hook: str, logs: dict | None) -> None:
        if self._stopped:
            return
        self._calls[hook] += 1
        every = self._checkpoint_every.get(hook, 0)
        save = every > 0 and self._calls[hook] % every == 0
        if not save and hook not in self._report_on:
            return
        logs = logs or {}
        values, missing = _dl.select(self._metrics, logs, _as_number)
        if missing:
            raise ValueError(
                f"metrics asks for {missing[0]!r}, which is not among the Keras logs at "
                f"{hook!r}: {sorted(logs)!r}; metrics computed on validation data are "
                "named 'val_<name>', and only the epoch hooks see them"
            )
        try:
            report_with(values, self._save if save else None)
        except TrialStopped:
            self._stopped = True
            raise

    def _save(self, directory: str) -> None:
        self.model.save(os.path.join(directory, self._filename))

    # Keras's hooks; each reports (or saves) when it is chosen
    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._handle("epoch_begin", logs)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self._handle("epoch_end", logs)

    def on_train_begin(self, logs: dict | None = None) -> None:
        self._handle("train_begin", logs)

    def on_train_end(self, logs: dict | None = None) -> None:
        self._handle("train_end", logs)

    def on_test_begin(self, logs: dict | None = None) -> None:
        self._handle("test_begin", logs)

    def on_test_end(self, logs: dict | None = None) -> None:
        self._handle("test_end", logs)

    def on_predict_begin(self, logs: dict | None = None) -> None:
        self._handle("predict_begin", logs)

    def on_predict_end(self, logs: dict | None = None) -> None:
        self._handle("predict_end", logs)

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        self._handle("train_batch_begin", logs)
        self._handle("batch_begin", logs)

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self._handle("train_batch_end", logs)
        self._handle("batch_end", logs)

    def on_test_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        self._handle("test_batch_begin", logs)

    def on_test_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self._handle("test_batch_end", logs)

    def on_predict_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        self._handle("predict_batch_begin", logs)

    def on_predict_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self._handle("predict_batch_end", logs)


class ReportCheckpointCallback(_ReportCallback):
    """Report Keras's logs at chosen hooks, and save the model in checkpoints.

    Ray 2.x's ``ray.air.integrations.keras.ReportCheckpointCallback`` (Ray
    2.7 and later also ``ray.train.tensorflow.keras.ReportCheckpointCallback``).
    Pass it in ``model.fit(..., callbacks=[...])`` inside the objective.

    Parameters
    ----------
    checkpoint_on : str or list of str, default="epoch_end"
        The Keras hooks (less ``on_``) at which to report with a checkpoint
        of the model, saved as ``model.keras``: ``"epoch_end"``,
        ``"train_batch_end"``, ``"train_end"``, ... (see :data:`HOOKS`).
    report_metrics_on : str or list of str, default="epoch_end"
        The hooks at which to report. A hook in ``checkpoint_on`` reports
        too, whether or not it is named here (as in Ray).
    metrics : str, list of str or dict, default=None
        What to report of the hook's ``logs``. ``None`` reports all of
        them; a name or a list of names reports those, under the same
        names; a dict ``{"mean_accuracy": "val_accuracy"}`` reports each
        value under its key. A name that is not in the logs makes the
        trial fail with a ``ValueError`` that lists them.

    Raises
    ------
    TypeError, ValueError
        For an argument of the wrong type or value (an unknown hook, say).
    """

    def __init__(
        self,
        checkpoint_on: str | list[str] = "epoch_end",
        report_metrics_on: str | list[str] = "epoch_end",
        metrics: str | list[str] | dict[str, str] | None = None,
    ) -> None:
        checkpoint_on = _dl.check_hooks("checkpoint_on", checkpoint_on, HOOKS)
        report_metrics_on = _dl.check_hooks("report_metrics_on", report_metrics_on, HOOKS)
        super().__init__(metrics, report_metrics_on, dict.fromkeys(checkpoint_on, 1))


class TuneReportCheckpointCallback(_ReportCallback):
    """Report Keras's logs at chosen hooks, and save the model every ``frequency`` calls.

    Ray's ``ray.tune.integration.keras.TuneReportCheckpointCallback`` in both
    of its forms:

    - Ray 1.x to 2.6: ``TuneReportCheckpointCallback(metrics=None,
      filename="checkpoint", frequency=1, on="epoch_end")``;
    - Ray 2.7 and later: the arguments of :class:`ReportCheckpointCallback`,
      ``checkpoint_on=``, ``report_metrics_on=`` and ``metrics=`` (given by
      name here, as Ray's examples give them).

    Parameters
    ----------
    metrics : str, list of str or dict, default=None
        As for :class:`ReportCheckpointCallback`.
    filename : str, default="model.keras"
        The model's file in each checkpoint. Keras 3 saves whole models
        only as ``.keras`` (or legacy ``.h5``) files, so a name without
        either suffix gets ``.keras``: Ray 2.6's default ``"checkpoint"``
        (a TensorFlow SavedModel folder then) is ``checkpoint.keras`` here.
    frequency : int or list of int, default=1
        Save a checkpoint with every ``frequency``-th call of each hook in
        ``on`` (0: never); a list gives one frequency per hook of ``on``.
    on : str or list of str, default="epoch_end"
        The Keras hooks (less ``on_``) at which to report.
    checkpoint_on, report_metrics_on : str or list of str, default=None
        Ray 2.7's form, keyword only: as for
        :class:`ReportCheckpointCallback`; not together with ``on`` or
        ``frequency``.

    Raises
    ------
    TypeError, ValueError
        For an argument of the wrong type or value, or a mix of the two forms.
    """

    def __init__(
        self,
        metrics: str | list[str] | dict[str, str] | None = None,
        filename: str = MODEL_FILE,
        frequency: int | list[int] | None = None,
        on: str | list[str] | None = None,
        *,
        checkpoint_on: str | list[str] | None = None,
        report_metrics_on: str | list[str] | None = None,
    ) -> None:
        if checkpoint_on is not None or report_metrics_on is not None:
            if on is not None or frequency is not None:
                raise TypeError(
                    "pass either on= and frequency= (Ray 2.6 and earlier) or checkpoint_on= "
                    "and report_metrics_on= (Ray 2.7 and later), not both: got "
                    f"on={on!r}, frequency={frequency!r}, checkpoint_on={checkpoint_on!r}, "
                    f"report_metrics_on={report_metrics_on!r}"
                )
            checkpoint = _dl.check_hooks("checkpoint_on", checkpoint_on or "epoch_end", HOOKS)
            report_on = _dl.check_hooks("report_metrics_on", report_metrics_on or "epoch_end",
                                        HOOKS)
            super().__init__(metrics, report_on, dict.fromkeys(checkpoint, 1), filename)
            return
        report_on = _dl.check_hooks("on", "epoch_end" if on is None else on, HOOKS)
        frequency = 1 if frequency is None else frequency
        if isinstance(frequency, (list, tuple)):
            if not isinstance(on, (list, tuple)) or len(frequency) != len(report_on):
                raise ValueError(
                    f"frequency as a list gives one frequency per hook of on, which must "
                    f"then be a list of as many hooks; got frequency={frequency!r}, on={on!r}"
                )
            every = [check_int("frequency", n, minimum=0) for n in frequency]
        else:
            every = [check_int("frequency", frequency, minimum=0,
                               hint="; it is the number of calls of a hook between "
                                    "checkpoints, 0 for none")] * len(report_on)
        super().__init__(metrics, report_on, dict(zip(report_on, every)), filename)


class TuneReportCallback(_ReportCallback):
    """Report Keras's logs at chosen hooks; no checkpoints.

    Ray 1.x to 2.6's ``ray.tune.integration.keras.TuneReportCallback``
    (Ray 2.7 and later refuse it in favour of
    :class:`ReportCheckpointCallback`).

    Parameters
    ----------
    metrics : str, list of str or dict, default=None
        As for :class:`ReportCheckpointCallback`.
    on : str or list of str, default="epoch_end"
        The Keras hooks (less ``on_``) at which to report.
    """

    def __init__(self, metrics: str | list[str] | dict[str, str] | None = None,
                 on: str | list[str] = "epoch_end") -> None:
        super().__init__(metrics, _dl.check_hooks("on", on, HOOKS), {})
