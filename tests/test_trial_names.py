"""What callbacks see of a trial's name and status, as Ray's ``Trial`` offers them."""

from __future__ import annotations

from fastasha import tune
from fastasha.tune.experiment import Trial


def steps(config):
    for i in range(3):
        tune.report({"loss": config["x"] * i})


class Seen(tune.Callback):
    """Records ``str(trial)`` and the statuses counted the way Ray's reporter guide does."""

    def __init__(self):
        self.names = {}
        self.finished = []

    def on_trial_start(self, iteration, trials, trial, **info):
        self.names[trial.trial_id] = (str(trial), repr(trial))

    def on_trial_complete(self, iteration, trials, trial, **info):
        self.finished.append(sum(t.status == Trial.TERMINATED for t in trials))


def _fit(tmp_path, **tune_config):
    seen = Seen()
    grid = tune.Tuner(steps, param_space={"x": tune.grid_search([1.0, 2.0, 3.0])},
                      tune_config=tune.TuneConfig(**tune_config),
                      run_config=tune.RunConfig(storage_path=str(tmp_path), verbose=0,
                                                callbacks=[seen])).fit()
    return grid, seen


def test_trial_names_its_statuses_as_rays_does(tmp_path):
    assert (Trial.PENDING, Trial.RUNNING, Trial.PAUSED, Trial.TERMINATED, Trial.ERROR) == \
        ("PENDING", "RUNNING", "PAUSED", "TERMINATED", "ERROR")
    grid, seen = _fit(tmp_path)
    assert sorted(seen.finished) == [1, 2, 3]
    assert grid.num_terminated == 3


def test_str_of_a_trial_is_the_trainable_and_its_id_as_in_ray(tmp_path):
    grid, seen = _fit(tmp_path)
    assert seen.names == {r.trial_id: (f"steps_{r.trial_id}",) * 2 for r in grid}


def test_str_of_a_trial_is_the_name_trial_name_creator_gave_it(tmp_path):
    asked = []

    def name(trial):
        asked.append(trial.trial_id)
        return f"x={trial.config['x']}"

    grid, seen = _fit(tmp_path, trial_name_creator=name)
    assert sorted(n for n, _ in seen.names.values()) == ["x=1.0", "x=2.0", "x=3.0"]
    assert sorted(asked) == sorted(r.trial_id for r in grid)     # once per trial



class CartPole:
    """Stands in for an RL environment class passed as ``config["env"]``."""


def test_str_of_a_trial_names_its_env_as_rays_does(tmp_path):
    """Ray puts ``config["env"]`` (a name, or a class's name) in the name, ``/`` made ``_``."""
    seen = Seen()
    grid = tune.Tuner(steps, param_space={"x": 1.0,
                                          "env": tune.grid_search(["ALE/Pong-v5", CartPole])},
                      run_config=tune.RunConfig(storage_path=str(tmp_path), verbose=0,
                                                callbacks=[seen])).fit()
    ids = sorted(r.trial_id for r in grid)
    assert sorted(n for n, _ in seen.names.values()) == \
        sorted([f"steps_ALE_Pong-v5_{ids[0]}", f"steps_CartPole_{ids[1]}"])
