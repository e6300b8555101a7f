"""Ray AIR's integrations that Ray Tune scripts of Ray 2.x import.

``fastasha.air.integrations.mlflow`` (Ray's ``ray.air.integrations.mlflow``)
holds ``MLflowLoggerCallback``, which logs every trial as an MLflow run from
the driver, and ``setup_mlflow``, which starts an MLflow run inside the
objective; it needs MLflow (``pip install mlflow-skinny``).
``fastasha.air.integrations.wandb`` (``ray.air.integrations.wandb``) holds
``WandbLoggerCallback`` and ``setup_wandb``, the same for Weights & Biases
(``pip install wandb``). In a clone of fastasha, ``pip install -e
".[mlflow]"`` or ``".[wandb]"`` installs them. Ray 1.x's paths,
``fastasha.tune.integration.mlflow`` and ``fastasha.tune.integration.wandb``,
are these modules too.

``fastasha.air.integrations.keras`` is :mod:`fastasha.integration.keras`
itself (Ray's ``ray.air.integrations.keras``, whose
``ReportCheckpointCallback`` reports from ``model.fit``); it needs Keras
(``pip install keras``). Ray AIR's Comet integration (``comet``) is not part
of fastasha.
"""

from __future__ import annotations

from ..._ray_names import install_aliases

# The submodules of ``ray.air.integrations`` that live elsewhere in fastasha: each is
# the fastasha module named here, found on first use by the finder of
# :func:`~fastasha._ray_names.install_aliases` (as in fastasha.train). ``mlflow`` and
# ``wandb`` are files of this package.
_SUBMODULES = {"keras": "fastasha.integration.keras"}

install_aliases(__name__, _SUBMODULES.get)

__all__: list[str] = []
