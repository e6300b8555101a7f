"""Ray Tune's XGBoost callbacks: report each boosting round to fastasha's ``tune.report``.

A Ray Tune script that tunes ``xgboost.train`` moves over by changing its
imports::

    import xgboost as xgb
    from fastasha import tune
    from fastasha.schedulers import ASHAScheduler
    from fastasha.tune.integration.xgboost import TuneReportCheckpointCallback

    def train_breast_cancer(config):
        ...
        xgb.train(config, train_set, evals=[(test_set, "eval")], verbose_eval=False,
                  callbacks=[TuneReportCheckpointCallback(frequency=1)])

    tuner = tune.Tuner(train_breast_cancer, tune_config=tune.TuneConfig(
        metric="eval-logloss", mode="min", num_samples=10,
        scheduler=ASHAScheduler(max_t=10, grace_period=1, reduction_factor=2)), ...)
    results = tuner.fit()
    model = TuneReportCheckpointCallback.get_model(results.get_best_result().checkpoint)

This module is also ``fastasha.tune.integration.xgboost`` (Ray's
``ray.tune.integration.xgboost``) and ``fastasha.train.xgboost`` (Ray 2.10
and later: ``from ray.train.xgboost import RayTrainReportCallback``).

Each round's results are named ``"<evals name>-<metric>"``: evaluation set
``"eval"`` and metric ``logloss`` give ``"eval-logloss"``. A STOP from the
scheduler raises inside the report of the round it judged, so boosting ends
there (``xgboost.train`` does not catch it) and the trial ends as stopped;
no end checkpoint is saved then, as in Ray.

Ray's ``ray.train.xgboost`` also holds Ray Train's distributed
``XGBoostTrainer`` and its helpers; fastasha has none of them (one process
per trial: call ``xgboost.train`` in the objective).

Importing this module needs xgboost (as importing Ray's does): without it,
the import fails with a ``ModuleNotFoundError`` that says ``pip install xgboost``
(in a clone of fastasha, ``pip install -e ".[xgboost]"``).

References
----------
Arguments, defaults, result names and checkpoint behaviour follow Ray's
``RayTrainReportCallback`` (``python/ray/train/xgboost/_xgboost_utils.py``,
Ray 2.10 and later, which ``ray.tune.integration.xgboost`` also exposes as
``TuneReportCheckpointCallback``) and the Ray API pages
``ray.tune.integration.xgboost.TuneReportCheckpointCallback`` and
``ray.train.xgboost.RayTrainReportCallback`` (docs.ray.io);
``TuneReportCallback`` follows ``ray.tune.integration.xgboost`` of Ray 2.7.
"""

from __future__ import annotations

from typing import Any

from . import _common

try:
    import xgboost
    from xgboost.callback import TrainingCallback
except ModuleNotFoundError as err:
    if err.name is not None and err.name.partition(".")[0] != "xgboost":
        raise                          # xgboost is there but one of its own imports is not
    raise _common.missing_library(err, "xgboost") from err

__all__ = ["RayTrainReportCallback", "TuneReportCallback", "TuneReportCheckpointCallback"]


class _ReportCallback(TrainingCallback):
    """The shared logic of this module's callbacks (see :class:`TuneReportCheckpointCallback`)."""

    CHECKPOINT_NAME = "model.ubj"

    def __init__(
        self,
        metrics: str | list[str] | dict[str, str] | None = None,
        filename: str = CHECKPOINT_NAME,
        frequency: int = 0,
        checkpoint_at_end: bool = True,
        results_postprocessing_fn: _common.PostprocessingFn | None = None,
    ) -> None:
        super().__init__()
        self._options = _common.Options(metrics, filename, frequency, checkpoint_at_end,
                                        results_postprocessing_fn)
        self._results: dict[str, Any] | None = None   # the latest round's, for the end report
        self._saved_last_round = False

    @classmethod
    def get_model(cls, checkpoint: Any, filename: str = CHECKPOINT_NAME) -> xgboost.Booster:
        """The booster saved in ``checkpoint`` by one of these callbacks.

        Parameters
        ----------
        checkpoint : tune.Checkpoint or path-like
            A checkpoint the callback reported, such as
            ``results.get_best_result().checkpoint``.
        filename : str, default="model.ubj"
            The ``filename`` the callback was given.

        Returns
        -------
        xgboost.Booster

        Raises
        ------
        TypeError
            If ``checkpoint`` is ``None`` (the result has no checkpoint) or not a checkpoint.
        FileNotFoundError
            If the checkpoint holds no file ``filename``.
        """
        booster = xgboost.Booster()
        booster.load_model(_common.model_path(checkpoint, filename))
        return booster

    def before_training(self, model: Any) -> Any:
        if self._options.saves and not isinstance(model, xgboost.Booster):
            # xgboost.cv trains one booster per fold, which cannot be saved as one model
            raise TypeError(
                f"{type(self).__name__} cannot save a checkpoint of {type(model).__name__} "
                "(xgboost.cv trains one booster per fold); pass frequency=0 and "
                "checkpoint_at_end=False to report only"
            )
        return model

    def after_iteration(self, model: Any, epoch: int, evals_log: dict) -> bool:
        # evals_log: {data name: {metric name: [value per round]}}; xgboost.cv gives
        # (mean, std) pairs, reported as they are (Ray: see results_postprocessing_fn)
        results = {f"{data}-{metric}": values[-1]
                   for data, by_metric in evals_log.items()
                   for metric, values in by_metric.items()}
        self._results = results
        save = self._options.due(epoch)
        self._saved_last_round = save
        self._options.report(self._options.select(results),
                             model.save_model if save else None)
        return False

    def after_training(self, model: Any) -> Any:
        if self._options.checkpoint_at_end and not self._saved_last_round:
            results = self._options.select(self._results) if self._results else {}
            self._options.report(results, model.save_model)
        return model


class RayTrainReportCallback(_ReportCallback):
    """Report each boosting round of ``xgboost.train`` and save the booster in checkpoints.

    Ray 2.10 and later name it ``ray.train.xgboost.RayTrainReportCallback``.
    Pass it in ``xgboost.train(..., callbacks=[...])`` inside the objective.

    Parameters
    ----------
    metrics : str, list of str or dict, default=None
        What to report of each round's results, which are named
        ``"<evals name>-<metric>"`` (``"eval-logloss"``). ``None``
        reports all of them; a name or a list of names reports those, under
        the same names; a dict ``{"loss": "eval-logloss"}`` reports each
        result under its key. A name that is not among the results makes
        the trial fail with a ``ValueError`` that lists them.
    filename : str, default="model.ubj"
        The booster's file name inside each checkpoint (its suffix picks
        xgboost's format: ``.ubj`` binary JSON, ``.json``).
    frequency : int, default=0
        Save a checkpoint with the report of every ``frequency``-th round
        (rounds ``frequency``, ``2 * frequency``, ... of this
        ``xgboost.train`` call); 0 saves none during training.
    checkpoint_at_end : bool, default=True
        When training ends (all rounds, or xgboost's own early stopping),
        report the last round's results again with a checkpoint, unless
        that round was saved already. Not when the scheduler stopped the
        trial: that ends training inside a report.
    results_postprocessing_fn : callable, default=None
        Called with the dict about to be reported (after ``metrics``
        picked its entries); what it returns is reported instead. Ray
        suggests it for ``xgboost.cv``, whose results are ``(mean, std)``
        pairs.

    Raises
    ------
    TypeError, ValueError
        For an argument of the wrong type or value.

    Notes
    -----
    As in Ray, the end checkpoint is a report of its own: a trial that
    boosts ``n`` rounds with ``frequency=0`` reports ``n + 1`` results, the
    last two with the same values. ``xgboost.cv`` works with
    ``frequency=0, checkpoint_at_end=False`` (its folds' boosters are not
    one model to save).
    """


class TuneReportCheckpointCallback(_ReportCallback):
    """Report each boosting round of ``xgboost.train`` and save the booster in checkpoints.

    Ray's ``ray.tune.integration.xgboost.TuneReportCheckpointCallback``, with
    the arguments and meaning it has from Ray 2.10 on (where it is
    :class:`RayTrainReportCallback`): ``metrics=None``,
    ``filename="model.ubj"``, ``frequency=0``, ``checkpoint_at_end=True``,
    ``results_postprocessing_fn=None``; see :class:`RayTrainReportCallback`
    for each. Load a model from its checkpoint with :meth:`get_model`.

    Scripts written for Ray 2.0-2.9, where ``filename`` defaulted to
    ``"checkpoint"`` and ``frequency`` to 1, run too; pass those values to
    get the same files and checkpoints.
    """


class TuneReportCallback(_common.ReportOnly, TuneReportCheckpointCallback):
    """Report each boosting round of ``xgboost.train``; no checkpoints.

    Ray 2.x's ``ray.tune.integration.xgboost.TuneReportCallback`` (later Ray
    releases deprecate it in favour of
    :class:`TuneReportCheckpointCallback`).

    Parameters
    ----------
    metrics : str, list of str or dict, default=None
        As for :class:`RayTrainReportCallback`.
    results_postprocessing_fn : callable, default=None
        As for :class:`RayTrainReportCallback`.
    """


# Ray Train's distributed XGBoost, which ``ray.train.xgboost`` also holds
_RAY_TRAIN_ONLY = frozenset({"XGBoostTrainer", "XGBoostConfig", "XGBoostCheckpoint",
                             "XGBoostPredictor"})


def __getattr__(name: str) -> Any:
    raise _common.refuse_ray_train(__name__, name, _RAY_TRAIN_ONLY, "XGBoost", "xgboost.train")
