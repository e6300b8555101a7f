"""Ray Tune's integration callbacks for gradient boosting libraries.

``fastasha.integration.xgboost`` and ``fastasha.integration.lightgbm`` hold
Ray's ``TuneReportCheckpointCallback``, ``TuneReportCallback`` and
``RayTrainReportCallback`` for ``xgboost.train`` and ``lightgbm.train``: each
reports every boosting round with ``tune.report`` (so ASHA can stop a weak
trial after any round) and saves the booster in checkpoints. They are also
importable under Ray's module paths, ``fastasha.tune.integration.xgboost``
and ``fastasha.train.xgboost`` (and the same for ``lightgbm``).

Each submodule needs its library (``pip install "xgboost>=2"`` or
``pip install "lightgbm>=4"``; or, in a clone of fastasha, ``pip install -e
".[xgboost]"`` or ``".[lightgbm]"``); this package itself imports neither.
"""

__all__: list[str] = []
