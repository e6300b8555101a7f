"""``search_alg=BasicVariantGenerator(...)``: Ray Tune's default search algorithm, passed explicitly.

Its options (points_to_evaluate, max_concurrent, constant_grid_search,
random_state) steer fastasha's own sampling of the param space. The
expected trial lists follow the semantics Ray Tune documents for it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import joblib
import numpy as np
import pytest
from fastasha.tune.search.basic_variant import BasicVariantGenerator as RayPath

from fastasha import tune
from fastasha.search import BasicVariantGenerator, VariantGenerator, grid_search, randint, uniform


def record(config):
    tune.report({"score": 0.0})


def sweep(tmp_path, space, name="bvg", **tune_config):
    with joblib.parallel_config(backend="threading"):
        return tune.Tuner(record, param_space=space,
                          tune_config=tune.TuneConfig(**tune_config),
                          run_config=tune.RunConfig(name=name, storage_path=str(tmp_path),
                                                    verbose=0)).fit()


def configs(grid):
    return [r.config for r in sorted(grid, key=lambda r: r.metrics["trial_id"])]


def test_importable_where_ray_users_look():
    assert RayPath is BasicVariantGenerator and tune.search.BasicVariantGenerator is RayPath


def test_points_run_first_and_each_replaces_one_sample(tmp_path):
    # the example of Ray's documentation: 4 samples give 6 trials
    space = {"a": grid_search([1, 2]), "b": randint(0, 3)}
    points = [{"a": 2, "b": 2}, {"a": 1}, {"b": 2}]
    got = configs(sweep(tmp_path, space, num_samples=4, seed=0,
                        search_alg=BasicVariantGenerator(points_to_evaluate=points)))
    assert len(got) == 6
    assert got[0] == {"a": 2, "b": 2}
    assert got[1]["a"] == 1 and got[1]["b"] in (0, 1, 2)
    assert got[2:4] == [{"a": 1, "b": 2}, {"a": 2, "b": 2}]     # the open grid is crossed
    assert [c["a"] for c in got[4:]] == [1, 2]                   # one sample of the space
    assert all(c["b"] in (0, 1, 2) for c in got[4:])


def test_more_points_than_samples_all_run(tmp_path):
    points = [{"x": 0.1}, {"x": 0.2}, {"x": 0.3}]
    got = configs(sweep(tmp_path, {"x": uniform(0, 1)}, num_samples=2,
                        search_alg=BasicVariantGenerator(points_to_evaluate=points)))
    assert got == points


def test_nested_points_set_only_the_keys_they_name():
    space = {"model": {"width": randint(8, 64), "depth": grid_search([1, 2])}, "lr": 0.1}
    with pytest.warns(UserWarning, match=r"sets config\['model'\]\['depth'\] to 3, outside "
                                         r"the grid_search values \[1, 2\]"):
        gen = VariantGenerator(space, 1, 0, points_to_evaluate=[{"model": {"depth": 3}}])
    first = next(gen)
    assert first["model"]["depth"] == 3 and 8 <= first["model"]["width"] < 64
    assert first["lr"] == 0.1
    assert gen.total == 1      # the point took the only sample


@pytest.mark.parametrize("point, message", [
    ({"c": 1}, r"sets config\['c'\], which is not in the param_space"),
    ({"a": {"deeper": 1}}, None),          # a value replacing a domain: allowed, as in Ray
])
def test_points_must_name_paths_of_the_space(point, message):
    space = {"a": uniform(0, 1), "b": 2}
    if message is None:
        assert next(VariantGenerator(space, 1, 0, points_to_evaluate=[point]))["a"] == \
            {"deeper": 1}
    else:
        with pytest.raises(ValueError, match=message):
            VariantGenerator(space, 1, 0, points_to_evaluate=[point])


def test_out_of_range_points_warn_and_run(tmp_path):
    with pytest.warns(UserWarning, match=r"config\['x'\] to 5.*outside \[0.0, 1.0\]") as seen:
        got = configs(sweep(tmp_path, {"x": uniform(0, 1)}, num_samples=1,
                            search_alg=BasicVariantGenerator(points_to_evaluate=[{"x": 5}])))
    assert got == [{"x": 5}]
    # the warning points at the caller's line (here: sweep's fit()), not into fastasha
    assert [w.filename for w in seen] == [__file__]


def test_constant_grid_search_keeps_the_draws_of_a_sample(tmp_path):
    space = {"a": grid_search([1, 2, 3]), "b": uniform(0, 1), "c": {"d": randint(0, 10**9)}}
    got = configs(sweep(tmp_path, space, num_samples=2, seed=4,
                        search_alg=BasicVariantGenerator(constant_grid_search=True)))
    assert [c["a"] for c in got] == [1, 2, 3, 1, 2, 3]
    first, second = got[:3], got[3:]
    assert len({(c["b"], c["c"]["d"]) for c in first}) == 1
    assert len({(c["b"], c["c"]["d"]) for c in second}) == 1
    assert first[0]["b"] != second[0]["b"]
    # without it every grid combination draws anew
    got = configs(sweep(tmp_path, space, name="fresh", num_samples=2, seed=4))
    assert len({c["b"] for c in got}) == 6


def test_random_state_seeds_like_tune_config_seed(tmp_path):
    space = {"x": uniform(0, 1), "n": randint(0, 100)}
    by_state = configs(sweep(tmp_path, space, name="state", num_samples=5,
                             search_alg=BasicVariantGenerator(random_state=11)))
    by_seed = configs(sweep(tmp_path, space, name="seed", num_samples=5, seed=11))
    other = configs(sweep(tmp_path, space, name="other", num_samples=5,
                          search_alg=BasicVariantGenerator(random_state=12)))
    assert by_state == by_seed and by_state != other


def test_a_numpy_generator_as_random_state_is_reproducible(tmp_path):
    import numpy as np

    space = {"x": uniform(0, 1)}
    runs = [configs(sweep(tmp_path, space, name=f"g{i}", num_samples=3,
                          search_alg=BasicVariantGenerator(
                              random_state=np.random.default_rng(5)))) for i in range(2)]
    assert runs[0] == runs[1]


@pytest.mark.parametrize("state", [2, np.int64(2)])
def test_two_different_seeds_are_refused(state):
    with pytest.raises(ValueError, match="both seed the sampling"):
        tune.Tuner(record, param_space={"x": uniform(0, 1)},
                   tune_config=tune.TuneConfig(seed=1, search_alg=BasicVariantGenerator(
                       random_state=state)))


class Concurrency(tune.Callback):
    def __init__(self):
        self.lock = threading.Lock()
        self.running = 0
        self.most = 0

    def on_trial_start(self, iteration, trials, trial, **info):
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)

    def on_trial_complete(self, iteration, trials, trial, **info):
        with self.lock:
            self.running -= 1


def sleepy(config):
    time.sleep(0.05)
    tune.report({"score": config["x"]})


@pytest.mark.parametrize("max_concurrent, max_trials, expected", [
    (1, None, 1), (2, None, 2), (3, 1, 1), (0, None, 4)])
def test_max_concurrent_caps_running_trials(tmp_path, max_concurrent, max_trials, expected):
    seen = Concurrency()
    with joblib.parallel_config(backend="threading"):
        grid = tune.Tuner(
            sleepy, param_space={"x": uniform(0, 1)},
            tune_config=tune.TuneConfig(num_samples=8, max_concurrent_trials=max_trials,
                                        search_alg=BasicVariantGenerator(
                                            max_concurrent=max_concurrent)),
            run_config=tune.RunConfig(name="cap", storage_path=str(tmp_path), verbose=0,
                                      callbacks=[seen]),
            resources={"cpu": 4},
        ).fit()
    assert len(grid) == 8 and grid.num_errors == 0
    assert seen.most == expected


@pytest.mark.parametrize("kwargs, error, match", [
    ({"points_to_evaluate": {"x": 1}}, TypeError, "points_to_evaluate must be a list of"),
    ({"points_to_evaluate": [1]}, TypeError, r"points_to_evaluate\[0\] must be a dict"),
    ({"max_concurrent": -1}, ValueError, "max_concurrent must be at least 0"),
    ({"max_concurrent": 1.5}, TypeError, "max_concurrent must be an integer"),
    ({"constant_grid_search": "yes"}, TypeError, "constant_grid_search must be True or False"),
    ({"random_state": "seed"}, TypeError, "random_state must be an int seed"),
    ({"random_state": -3}, ValueError, "random_state must be at least 0"),
])
def test_bad_arguments_are_refused(kwargs, error, match):
    with pytest.raises(error, match=match):
        BasicVariantGenerator(**kwargs)


def test_a_limiter_cannot_wrap_it():
    with pytest.raises(TypeError, match="max_concurrent_trials"):
        tune.search.ConcurrencyLimiter(BasicVariantGenerator(), max_concurrent=2)


DRIVER = """
import sys, time
from fastasha import tune
from fastasha.search import BasicVariantGenerator, grid_search, uniform

def slow(config):
    for step in range(3):
        time.sleep(0.02)
        tune.report({"score": config["x"]})

if __name__ == "__main__":
    tune.Tuner(slow, param_space={"x": uniform(0, 1), "g": grid_search([1, 2])},
               tune_config=tune.TuneConfig(num_samples=30, seed=3, search_alg=BasicVariantGenerator(
                   points_to_evaluate=[{"x": 0.5, "g": 1}, {"x": 0.25}],
                   constant_grid_search=True, max_concurrent=2)),
               run_config=tune.RunConfig(name="killed", storage_path=sys.argv[1], verbose=0),
               ).fit()
"""


def test_a_killed_sweep_restores_with_the_same_options(tmp_path):
    script = tmp_path / "driver.py"
    script.write_text(DRIVER)
    proc = subprocess.Popen([sys.executable, str(script), str(tmp_path)],
                            start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    experiment = tmp_path / "killed"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:      # until some trials have finished
            if (experiment / "experiment.db").exists() and _finished(experiment) >= 6:
                break
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert 6 <= _finished(experiment) < 59, "the driver was not killed mid-sweep"
    restored = tune.Tuner.restore(str(experiment), _slow)
    grid = restored.fit()
    assert len(grid) == 3 + 28 * 2 and grid.num_errors == 0
    got = configs(grid)
    assert got[0] == {"x": 0.5, "g": 1}
    assert got[1:3] == [{"x": 0.25, "g": 1}, {"x": 0.25, "g": 2}]
    for first, second in zip(got[3::2], got[4::2]):    # constant across each grid pair
        assert (first["g"], second["g"]) == (1, 2) and first["x"] == second["x"]


def _slow(config):
    for step in range(3):
        time.sleep(0.02)
        tune.report({"score": config["x"]})


def _finished(experiment: Path) -> int:
    import sqlite3

    try:
        with sqlite3.connect(f"file:{experiment / 'experiment.db'}?mode=ro", uri=True) as db:
            return db.execute("SELECT COUNT(*) FROM trials WHERE status = 'TERMINATED'"
                              ).fetchone()[0]
    except sqlite3.Error:
        return 0
