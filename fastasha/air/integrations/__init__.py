"""Ray AIR's framework integrations that Ray Tune scripts of Ray 2.x import.

``fastasha.air.integrations.keras`` is :mod:`fastasha.integration.keras`
itself (Ray's ``ray.air.integrations.keras``, whose
``ReportCheckpointCallback`` reports from ``model.fit``); it needs Keras
(``pip install keras``). Ray AIR's logger integrations (``mlflow``,
``wandb``, ``comet``) are not part of fastasha.
"""

from __future__ import annotations

from ..._ray_names import install_aliases

# The submodules of ``ray.air.integrations`` that fastasha has: each is the fastasha
# module named here, found on first use by the finder of
# :func:`~fastasha._ray_names.install_aliases` (as in fastasha.train).
_SUBMODULES = {"keras": "fastasha.integration.keras"}

install_aliases(__name__, _SUBMODULES.get)

__all__: list[str] = []
