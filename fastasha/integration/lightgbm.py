"""Ray Tune's LightGBM callbacks: report each boosting round to fastasha's ``tune.report``.

A Ray Tune script that tunes ``lightgbm.train`` moves over by changing its
imports::

    import lightgbm as lgb
    from fastasha import tune
    from fastasha.tune.integration.lightgbm import TuneReportCheckpointCallback

    def train_breast_cancer(config):
        ...
        lgb.train(config, train_set, valid_sets=[test_set], valid_names=["eval"],
                  callbacks=[TuneReportCheckpointCallback({"binary_error": "eval-binary_error"},
                                                          frequency=1)])

This module is also ``fastasha.tune.integration.lightgbm`` (Ray's
``ray.tune.integration.lightgbm``) and ``fastasha.train.lightgbm`` (Ray 2.10
and later: ``from ray.train.lightgbm import RayTrainReportCallback``).

Each round's results are named ``"<valid name>-<metric>"``: LightGBM names
validation sets ``valid_0``, ``valid_1``, ... unless ``valid_names`` says
otherwise, so metric ``binary_logloss`` on the first one is
``"valid_0-binary_logloss"``. Results of ``lightgbm.cv`` carry a mean and a
standard deviation, reported as ``"valid-<metric>-mean"`` and
``"valid-<metric>-stdv"``. A STOP from the scheduler raises inside the report
of the round it judged, so boosting ends there (``lightgbm.train`` catches
only its own early-stopping exception) and the trial ends as stopped.

Importing this module needs lightgbm (as importing Ray's does): without it,
the import fails with a ``ModuleNotFoundError`` that says ``pip install lightgbm``
(in a clone of fastasha, ``pip install -e ".[lightgbm]"``).

References
----------
Arguments, defaults, result names and checkpoint behaviour follow Ray's
``RayTrainReportCallback`` (``python/ray/train/lightgbm/_lightgbm_utils.py``,
Ray 2.10 and later, which ``ray.tune.integration.lightgbm`` also exposes as
``TuneReportCheckpointCallback``) and the Ray API pages
``ray.tune.integration.lightgbm.TuneReportCheckpointCallback``,
``ray.tune.integration.lightgbm.TuneReportCallback`` and
``ray.train.lightgbm.RayTrainReportCallback`` (docs.ray.io).
"""

from __future__ import annotations

from typing import Any

from . import _common

try:
    import lightgbm
except ModuleNotFoundError as err:
    if err.name is not None and err.name.partition(".")[0] != "lightgbm":
        raise                          # lightgbm is there but one of its own imports is not
    raise _common.missing_library(err, "lightgbm") from err

__all__ = ["RayTrainReportCallback", "TuneReportCallback", "TuneReportCheckpointCallback"]


def _round_results(evaluation_result_list: Any) -> dict[str, Any]:
    """One round's results, keyed ``"<data name>-<metric>"`` (``-mean``/``-stdv`` for cv).

    Entries are ``(data name, metric, value, is_higher_better)``, plus the
    standard deviation for ``lightgbm.cv``; from lightgbm 4.7 on they are
    ``lightgbm.EvalResult`` tuples, whose length says the same.
    """
    results: dict[str, Any] = {}
    for entry in evaluation_result_list or ():
        data_name, metric, value = tuple(entry)[:3]
        if len(entry) > 4 and entry[4] is not None:
            results[f"{data_name}-{metric}-mean"] = value
            results[f"{data_name}-{metric}-stdv"] = entry[4]
        else:
            results[f"{data_name}-{metric}"] = value
    return results


class _ReportCallback:
    """The shared logic of this module's callbacks (see :class:`TuneReportCheckpointCallback`)."""

    CHECKPOINT_NAME = "model.txt"

    def __init__(
        self,
        metrics: str | list[str] | dict[str, str] | None = None,
        filename: str = CHECKPOINT_NAME,
        frequency: int = 0,
        checkpoint_at_end: bool = True,
        results_postprocessing_fn: _common.PostprocessingFn | None = None,
    ) -> None:
        self._options = _common.Options(metrics, filename, frequency, checkpoint_at_end,
                                        results_postprocessing_fn)

    @classmethod
    def get_model(cls, checkpoint: Any, filename: str = CHECKPOINT_NAME) -> lightgbm.Booster:
        """The booster saved in ``checkpoint`` by one of these callbacks.

        Parameters
        ----------
        checkpoint : tune.Checkpoint or path-like
            A checkpoint the callback reported, such as
            ``results.get_best_result().checkpoint``.
        filename : str, default="model.txt"
            The ``filename`` the callback was given.

        Returns
        -------
        lightgbm.Booster

        Raises
        ------
        TypeError
            If ``checkpoint`` is ``None`` (the result has no checkpoint) or not a checkpoint.
        FileNotFoundError
            If the checkpoint holds no file ``filename``.
        """
        return lightgbm.Booster(model_file=_common.model_path(checkpoint, filename))

    def __call__(self, env: Any) -> None:
        options = self._options
        results = options.select(_round_results(env.evaluation_result_list))
        # the end checkpoint goes with the last round's report (no report of its own)
        save = options.due(env.iteration) or \
            (options.checkpoint_at_end and env.iteration == env.end_iteration - 1)
        options.report(results, env.model.save_model if save else None)


class RayTrainReportCallback(_ReportCallback):
    """Report each boosting round of ``lightgbm.train`` and save the booster in checkpoints.

    Ray 2.10 and later name it ``ray.train.lightgbm.RayTrainReportCallback``.
    Pass it in ``lightgbm.train(..., callbacks=[...])`` inside the objective.

    Parameters
    ----------
    metrics : str, list of str or dict, default=None
        What to report of each round's results, which are named
        ``"<valid name>-<metric>"`` (``"valid_0-binary_logloss"``, or
        ``"eval-binary_logloss"`` with ``valid_names=["eval"]``). ``None``
        reports all of them; a name or a list of names reports those, under
        the same names; a dict ``{"loss": "eval-binary_logloss"}`` reports
        each result under its key. A name that is not among the results
        makes the trial fail with a ``ValueError`` that lists them.
    filename : str, default="model.txt"
        The booster's file name inside each checkpoint (LightGBM's text
        model format).
    frequency : int, default=0
        Save a checkpoint with the report of every ``frequency``-th round
        (counted from the first round of the model, so a model continued
        with ``init_model=`` keeps its count); 0 saves none during training.
    checkpoint_at_end : bool, default=True
        Save a checkpoint with the report of the last of the
        ``num_boost_round`` rounds. Not when training ends earlier, by the
        scheduler's STOP or by LightGBM's early stopping (as in Ray).
    results_postprocessing_fn : callable, default=None
        Called with the dict about to be reported (after ``metrics``
        picked its entries); what it returns is reported instead.

    Raises
    ------
    TypeError, ValueError
        For an argument of the wrong type or value.
    """


class TuneReportCheckpointCallback(_ReportCallback):
    """Report each boosting round of ``lightgbm.train`` and save the booster in checkpoints.

    Ray's ``ray.tune.integration.lightgbm.TuneReportCheckpointCallback``, with
    the arguments and meaning it has from Ray 2.10 on (where it is
    :class:`RayTrainReportCallback`): ``metrics=None``,
    ``filename="model.txt"``, ``frequency=0``, ``checkpoint_at_end=True``,
    ``results_postprocessing_fn=None``; see :class:`RayTrainReportCallback`
    for each. Load a model from its checkpoint with :meth:`get_model`.

    Scripts written for Ray 2.0-2.9, where ``filename`` defaulted to
    ``"checkpoint"`` and ``frequency`` to 5, run too; pass those values to
    get the same files and checkpoints.
    """


class TuneReportCallback(_common.ReportOnly, TuneReportCheckpointCallback):
    """Report each boosting round of ``lightgbm.train``; no checkpoints.

    Ray 2.x's ``ray.tune.integration.lightgbm.TuneReportCallback`` (later Ray
    releases deprecate it in favour of
    :class:`TuneReportCheckpointCallback`).

    Parameters
    ----------
    metrics : str, list of str or dict, default=None
        As for :class:`RayTrainReportCallback`.
    results_postprocessing_fn : callable, default=None
        As for :class:`RayTrainReportCallback`.
    """


# Ray Train's distributed LightGBM, which ``ray.train.lightgbm`` also holds
_RAY_TRAIN_ONLY = frozenset({"LightGBMTrainer", "LightGBMConfig", "LightGBMCheckpoint",
                             "LightGBMPredictor"})


def __getattr__(name: str) -> Any:
    raise _common.refuse_ray_train(__name__, name, _RAY_TRAIN_ONLY, "LightGBM", "lightgbm.train")
