"""Ray Tune's integration callbacks for gradient boosting and deep learning libraries.

``fastasha.integration.xgboost`` and ``fastasha.integration.lightgbm`` hold
Ray's ``TuneReportCheckpointCallback``, ``TuneReportCallback`` and
``RayTrainReportCallback`` for ``xgboost.train`` and ``lightgbm.train``: each
reports every boosting round with ``tune.report`` (so ASHA can stop a weak
trial after any round) and saves the booster in checkpoints. They are also
importable under Ray's module paths, ``fastasha.tune.integration.xgboost``
and ``fastasha.train.xgboost`` (and the same for ``lightgbm``).

``fastasha.integration.pytorch_lightning`` and ``fastasha.integration.keras``
hold Ray's callbacks for ``Trainer.fit`` and ``Model.fit``, which report at
the hooks they are given (epoch ends, by default) and save checkpoints; they
are importable as ``fastasha.tune.integration.pytorch_lightning``,
``fastasha.tune.integration.keras`` and ``fastasha.air.integrations.keras``
too.

Each submodule needs its library (``pip install "xgboost>=2"``,
``pip install "lightgbm>=4"``, ``pip install "lightning>=2"`` or
``pip install "keras>=3"``, the last two once torch is installed (Keras may
run on tensorflow or jax instead); or, in a clone of
fastasha, ``pip install -e ".[xgboost]"``, ``".[lightgbm]"``,
``".[lightning]"`` or ``".[keras]"``); this package itself imports none.

``fastasha.integration.mlflow`` and ``fastasha.integration.wandb`` (so
``fastasha.tune.integration.mlflow`` and ``.wandb``, Ray 1.x's paths) are
:mod:`fastasha.air.integrations.mlflow` and
:mod:`fastasha.air.integrations.wandb`, Ray's experiment-tracking callbacks.
"""

from __future__ import annotations

from .._ray_names import install_aliases

# Ray 1.x's ``ray.tune.integration.mlflow`` and ``.wandb``: the very modules of Ray
# 2.x's paths, found on first use by the finder of install_aliases
_SUBMODULES = {"mlflow": "fastasha.air.integrations.mlflow",
               "wandb": "fastasha.air.integrations.wandb"}

install_aliases(__name__, _SUBMODULES.get)

__all__: list[str] = []
