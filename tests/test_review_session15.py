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


# ------------------------------- 2. get_results() after a fit() that created nothing

class FailsAtSetup(tune.Callback):
    """A callback whose setup raises, before the experiment is created; ``before`` runs
    first (another sweep that starts meanwhile)."""

    def __init__(self, before=None) -> None:
        self.before = before

    def setup(self, **info):
        if self.before is not None:
            self.before()
        raise RuntimeError("setup failed")


def _failing_fit(tuner: tune.Tuner) -> None:
    with pytest.raises(RuntimeError, match="setup failed"):
        tuner.fit()


def test_get_results_after_a_failed_fit_never_gives_the_experiment_it_did_not_replace(
        tmp_path):
    old = tune.Tuner(falls_with_x, param_space={"x": 1.0},
                     run_config=tune.RunConfig(storage_path=str(tmp_path), name="exp",
                                               verbose=0)).fit()
    assert len(old) == 1
    tuner = tune.Tuner(falls_with_x, param_space={"x": tune.grid_search([2.0, 3.0])},
                       run_config=tune.RunConfig(storage_path=str(tmp_path), name="exp",
                                                 verbose=0, overwrite=True,
                                                 callbacks=[FailsAtSetup()]))
    _failing_fit(tuner)
    # the fit() replaced nothing: the experiment there is the old one, not its results
    with pytest.raises(RuntimeError, match="no results yet"):
        tuner.get_results()
    assert len(tune.ResultGrid.from_path(old.experiment_path)) == 1


def test_get_results_after_a_failed_fit_never_gives_a_sweep_that_took_its_name(
        tmp_path, monkeypatch):
    import time

    # every generated name of this test falls in the same second
    monkeypatch.setattr(time, "strftime", lambda fmt, *args: "2020-01-02_03-04-05")

    def another_sweep():       # an unnamed sweep of the same objective starts meanwhile
        tune.Tuner(falls_with_x, param_space={"x": 1.0},
                   run_config=tune.RunConfig(storage_path=str(tmp_path), verbose=0)).fit()

    tuner = tune.Tuner(falls_with_x, param_space={"x": tune.grid_search([2.0, 3.0])},
                       run_config=tune.RunConfig(storage_path=str(tmp_path), verbose=0,
                                                 callbacks=[FailsAtSetup(another_sweep)]))
    _failing_fit(tuner)
    assert [p.name for p in tmp_path.iterdir()] == ["falls_with_x_2020-01-02_03-04-05"]
    with pytest.raises(RuntimeError, match="no results yet"):
        tuner.get_results()
