"""The work of ``bench/test_rivals.py``: ``tuner_work.objective``'s loop for Optuna and Ray Tune.

fastasha's objective (``bench/tuner_work.py``) makes ``reports`` reports of
``loss = x * i`` for i = 0, 1, ... and does nothing else. The functions here
do the same in each rival's own API. This module imports neither rival at
module level, so that it imports where either is missing; Ray's trial
processes receive :func:`ray_objective` pickled by value (the benchmark
registers this module with Ray's cloudpickle), so they need not find it on
their path.
"""

from __future__ import annotations

from collections.abc import Callable


def optuna_objective(reports: int) -> Callable:
    """An Optuna objective: ``reports`` steps of ``trial.report`` and ``trial.should_prune``.

    ``x`` is drawn with ``trial.suggest_float("x", 0, 1)`` (``tune.uniform(0, 1)``
    in fastasha). Step ``i`` is reported at step ``i + 1``, fastasha's
    ``training_iteration`` for the same report, so that Optuna's rungs at
    ``min_resource * reduction_factor**k`` fall on the same reports as
    ASHA's milestones. A pruned trial raises ``optuna.TrialPruned``; a trial
    that runs all its steps returns its last value.
    """
    import optuna

    pruned = optuna.TrialPruned

    def objective(trial) -> float:
        x = trial.suggest_float("x", 0.0, 1.0)
        for i in range(reports):
            trial.report(x * i, i + 1)
            if trial.should_prune():
                raise pruned()
        return x * (reports - 1)

    return objective


def ray_objective(config: dict) -> None:
    """A Ray Tune function trainable: ``config["reports"]`` calls of ``ray.tune.report``."""
    from ray import tune

    x = config["x"]
    for i in range(config["reports"]):
        tune.report({"loss": x * i})


def ray_clock():
    """``tuner_work.Clock`` as a ``ray.tune.Callback``: Ray calls every hook of its callbacks."""
    from ray.tune import Callback
    from tuner_work import Clock

    class RayClock(Clock, Callback):
        pass

    return RayClock()
