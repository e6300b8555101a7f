"""Ray Tune's user guides and examples, run with fastasha imports: what broke, with its test.

Each test follows a snippet of Ray Tune's documentation (its user guides,
``doc/source/tune/doc_code`` and ``python/ray/tune/examples``) with only
the imports changed, as README's "Moving a Ray Tune script" says, and
checks what the guide says should happen.

The objectives and trainables are module-level: loky's workers import this
module by name (pytest puts ``tests/`` on ``sys.path``).
"""

from __future__ import annotations

import importlib

import pytest

from fastasha import tune


class QuadraticTrainable(tune.Trainable):
    """The trainable of Ray's "Reusing Actors" snippet (Tune Trainable class API)."""

    def setup(self, config):
        self.config = config
        self.max_steps = 5
        self.step_count = 0

    def step(self):
        loss = (self.config["hparam1"] - 3) ** 2 + (self.config["hparam2"] - 5) ** 2
        metrics = {"loss": loss}
        self.step_count += 1
        if self.step_count > self.max_steps:
            metrics["done"] = True
        return metrics

    def reset_config(self, new_config):
        self.config = new_config
        return True


# ------------------------------------------------ 1. Ray's module paths of single names

@pytest.mark.parametrize("ray_module, names", [
    ("tuner", ["Tuner"]),
    ("tune_config", ["TuneConfig", "RunConfig"]),
    ("result_grid", ["ResultGrid", "Result"]),
    ("trainable", ["Trainable"]),
    ("callback", ["Callback"]),
    ("error", ["TuneError"]),
    ("registry", ["register_trainable"]),
])
def test_rays_modules_of_single_names_import_under_fastasha_tune(ray_module, names):
    # scripts write "from ray.tune.tuner import Tuner" (Ray's own Trainable guide does),
    # "from ray.tune.tune_config import TuneConfig", "from ray.tune.result_grid import
    # ResultGrid" ...; each must give the object tune.<name> is
    module = importlib.import_module(f"fastasha.tune.{ray_module}")
    for name in names:
        assert getattr(module, name) is getattr(tune, name)


def test_the_reuse_actors_snippet_of_rays_trainable_guide_runs_with_its_imports(tmp_path):
    from fastasha.tune.tuner import Tuner     # the snippet's own import, moved over

    tuner_with_reuse = Tuner(
        QuadraticTrainable,
        param_space={"hparam1": tune.uniform(-10, 10), "hparam2": tune.uniform(-10, 10)},
        tune_config=tune.TuneConfig(num_samples=4, max_concurrent_trials=1,
                                    reuse_actors=True),
        run_config=tune.RunConfig(verbose=0, storage_path=str(tmp_path),
                                  checkpoint_config=tune.CheckpointConfig(
                                      checkpoint_at_end=False)),
    )
    grid = tuner_with_reuse.fit()
    assert grid.num_errors == 0
    # step() says done after max_steps + 1 steps
    assert [r.metrics["training_iteration"] for r in grid] == [6, 6, 6, 6]


def test_an_unknown_module_under_fastasha_tune_is_still_an_import_error():
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("fastasha.tune.no_such_module")
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("fastasha.tune.tuner.no_such_module")


# ------------------------- 2. FAQ "reproducible runs": np.random.seed before the sweep

def seeded_result(config):
    """The FAQ's train_func: the trial seeds numpy from its config."""
    import numpy as np

    np.random.seed(config["seed"])
    tune.report({"result": np.random.uniform(0, 100, size=1).item()})


def _faq_sweep(tmp_path, name, search_alg=None):
    return tune.Tuner(
        seeded_result,
        tune_config=tune.TuneConfig(num_samples=6, search_alg=search_alg),
        param_space={"seed": tune.randint(0, 1000), "lr": tune.loguniform(1e-4, 1e-1)},
        run_config=tune.RunConfig(name=name, storage_path=str(tmp_path), verbose=0),
    ).fit()


def test_np_random_seed_before_a_sweep_makes_its_configs_reproducible_as_rays_faq_says(
        tmp_path):
    # Ray's FAQ: "Set seed for Ray Tune's random search. If you remove this line, you
    # will get different configurations each time you run the script."
    import numpy as np

    from fastasha.search import BasicVariantGenerator

    runs = []
    for name in ("first", "second"):
        np.random.seed(1234)
        grid = _faq_sweep(tmp_path, name, search_alg=BasicVariantGenerator())
        runs.append([(r.config["seed"], r.config["lr"], r.metrics["result"]) for r in grid])
    assert runs[0] == runs[1]
    np.random.seed(1234)
    without_searcher = _faq_sweep(tmp_path, "third")
    assert [(r.config["seed"], r.config["lr"]) for r in without_searcher] == \
        [(seed, lr) for seed, lr, _ in runs[0]]
    # the global state goes on from there: the next sweep draws other configs
    other = _faq_sweep(tmp_path, "fourth")
    assert [r.config["seed"] for r in other] != [seed for seed, _, _ in runs[0]]


# ----------------------- 3. FAQ "no chdir": TUNE_ORIG_WORKING_DIR, the driver's folder

def reads_from_the_original_working_dir(config):
    """The FAQ's train_func: reads a relative path, checks TUNE_ORIG_WORKING_DIR."""
    import os
    from pathlib import Path

    from fastasha import train

    with open("./read.txt", encoding="utf-8") as f:
        text = f.read()
    assert os.getcwd() == os.environ["TUNE_ORIG_WORKING_DIR"]
    trial_dir = Path(train.get_context().get_trial_dir())
    trial_dir.mkdir(parents=True, exist_ok=True)
    (trial_dir / "write.txt").write_text("trial saved artifact", encoding="utf-8")
    train.report({"text": text, "orig": os.environ["TUNE_ORIG_WORKING_DIR"]})


def goes_to_the_original_working_dir(config):
    """What scripts written for Ray do first: go back to the driver's folder."""
    import os

    os.chdir(os.environ["TUNE_ORIG_WORKING_DIR"])
    with open("read.txt", encoding="utf-8") as f:
        tune.report({"text": f.read()})


@pytest.mark.parametrize("backend", ["loky", "threading"])
def test_trials_find_the_drivers_folder_in_tune_orig_working_dir(tmp_path, monkeypatch,
                                                                  backend):
    import joblib

    first, second = tmp_path / "first", tmp_path / "second"
    for folder in (first, second):
        folder.mkdir()
        (folder / "read.txt").write_text(folder.name, encoding="utf-8")
    # worker processes started before any fit, elsewhere, which the fits may reuse
    monkeypatch.delenv("TUNE_ORIG_WORKING_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    with joblib.parallel_config(backend=backend):
        joblib.Parallel(n_jobs=2)(joblib.delayed(abs)(i) for i in range(4))
    for folder in (first, second):      # the second fit may reuse the first's workers
        monkeypatch.chdir(folder)
        with joblib.parallel_config(backend=backend):
            grid = tune.Tuner(
                reads_from_the_original_working_dir,
                param_space={"x": tune.grid_search([1, 2])},
                tune_config=tune.TuneConfig(chdir_to_trial_dir=False),
                run_config=tune.RunConfig(storage_path=str(tmp_path / "results"),
                                          name=f"{backend}_{folder.name}", verbose=0),
            ).fit()
        assert grid.errors == []
        assert [r.metrics["text"] for r in grid] == [folder.name] * 2
        assert [r.metrics["orig"] for r in grid] == [str(folder)] * 2
        assert all((tmp_path / "results" / f"{backend}_{folder.name}" / "trials" /
                    r.trial_id / "write.txt").exists() for r in grid)


def test_a_trial_in_its_own_folder_goes_back_with_tune_orig_working_dir(tmp_path,
                                                                        monkeypatch):
    (tmp_path / "read.txt").write_text("data", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    grid = tune.Tuner(
        goes_to_the_original_working_dir,
        tune_config=tune.TuneConfig(chdir_to_trial_dir=True),
        run_config=tune.RunConfig(storage_path=str(tmp_path / "results"), verbose=0),
    ).fit()
    assert grid.errors == [] and grid[0].metrics["text"] == "data"
