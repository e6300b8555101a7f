"""Ray Tune's ``ray.tune.experiment``: the ``Trial`` that callbacks and name creators get.

``fastasha.tune.experiment`` is this package (and
``fastasha.tune.experiment.trial`` its module ``trial``), so that a script's
``from ray.tune.experiment import Trial``, often there for type hints of a
``Callback`` or a ``trial_name_creator``, moves over with its other imports.
fastasha's :class:`Trial` has the attributes Ray's callbacks read
(``trial_id``, ``config``, ``status``, ``last_result``, ``path``,
``checkpoint``, ``trainable_name``, ...); it is made by the Tuner, never by
user code. Ray's ``Experiment`` (for ``tune.run_experiments``) is not here.
"""

from __future__ import annotations

from .._controller import Trial

__all__ = ["Trial"]
