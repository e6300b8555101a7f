"""Review of session 15's merged work: defects found, each with the test that shows it.

The objectives are module-level functions of this module: loky's workers
import it by name (pytest puts ``tests/`` on ``sys.path``).
"""

from __future__ import annotations

import pytest

from fastasha import tune


def falls_with_x(config):
    """Eight reports of ``x / step``: the smallest ``x`` is the best at every step."""
    for step in range(1, 9):
        tune.report({"loss": config["x"] / step})


# ----------------------------------- 1. a TuneConfig with names, used by several fits

def test_each_fit_of_a_tune_config_with_a_scheduler_name_gets_a_fresh_scheduler(tmp_path):
    # Ray builds the scheduler from its name in each tune.run; one TuneConfig used for
    # two sweeps (a loop over data sets, say) must not carry the first sweep's rungs
    # into the second, where they would stop trials the second sweep alone keeps
    config = tune.TuneConfig(metric="loss", mode="min", scheduler="async_hyperband",
                             max_concurrent_trials=1)

    def sweep(name):
        return tune.Tuner(
            falls_with_x, param_space={"x": tune.grid_search([8.0, 4.0, 2.0, 1.0])},
            tune_config=config,
            run_config=tune.RunConfig(storage_path=str(tmp_path), name=name, verbose=0)).fit()

    first = sweep("first")
    second = sweep("second")
    iterations = [sorted(r.metrics["training_iteration"] for r in grid)
                  for grid in (first, second)]
    # one trial at a time, each better than all before it: ASHA stops none
    assert iterations[0] == [8, 8, 8, 8]
    assert iterations[1] == iterations[0]
    # the scheduler a fit ran with is the TuneConfig's, as with an object
    assert config.scheduler.metric == "loss"


@pytest.mark.parametrize("name", ["hyperopt", "optuna"])
def test_a_tune_config_with_a_searcher_name_serves_several_fits(tmp_path, name):
    # the second fit got the first fit's searcher, which had taken the first space, and
    # was refused as if the user had passed space= to it
    pytest.importorskip(name)
    config = tune.TuneConfig(metric="loss", mode="min", search_alg=name, num_samples=2)
    for run in ("a", "b"):
        grid = tune.Tuner(
            falls_with_x, param_space={"x": tune.uniform(1.0, 2.0)}, tune_config=config,
            run_config=tune.RunConfig(storage_path=str(tmp_path), name=run, verbose=0,
                                      stop={"training_iteration": 1})).fit()
        assert len(grid) == 2 and all(1.0 <= r.config["x"] <= 2.0 for r in grid)
