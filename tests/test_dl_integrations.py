"""Ray's PyTorch Lightning and Keras report callbacks (``fastasha.integration``).

Each sweep runs through ``tune.Tuner`` in real loky worker processes, with
the objectives of tests/objectives_dl.py training a small linear
regression on seeded random data with ``trainer.fit`` or ``model.fit``.
Expected values are recomputed here from the weights the trials saved,
not written down.

The libraries are large (torch), so neither the test extra nor CI installs
them: a test that needs one skips, saying how to install it. The test of
the missing-library message runs everywhere.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")   # before anything imports keras

import objectives_dl as od  # noqa: E402
from fastasha import tune  # noqa: E402
from fastasha.schedulers import ASHAScheduler  # noqa: E402

MODULES = {"lightning": "fastasha.integration.pytorch_lightning",
           "keras": "fastasha.integration.keras"}


def _need(library: str):
    """The fastasha module of ``library``; the test skips when the library is missing."""
    hint = "; CI does not install it"
    if library == "lightning":
        pytest.importorskip("lightning.pytorch", reason="PyTorch Lightning is not installed "
                            "(pip install torch, then pip install -e '.[lightning]')" + hint)
    else:
        for name in ("torch", "keras"):     # torch: the backend these tests run Keras on
            pytest.importorskip(name, reason="Keras or torch, its backend here, is not "
                                "installed (pip install torch, then pip install -e '.[keras]')"
                                + hint)
    return importlib.import_module(MODULES[library])


def _sweep(objective, tmp_path, param_space, **tune_config):
    tuner = tune.Tuner(
        objective,
        param_space={"lr": 0.1, "epochs": 3, "log_dir": str(tmp_path), **param_space},
        tune_config=tune.TuneConfig(**tune_config),
        run_config=tune.RunConfig(storage_path=str(tmp_path), name="sweep", verbose=0),
    )
    return tuner.fit()


def _epochs(tmp_path) -> dict[str, list[int]]:
    """Per trial, how many epochs each attempt started."""
    out: dict[str, list[int]] = {}
    with open(tmp_path / "epochs.jsonl") as f:
        for line in f:
            entry = json.loads(line)
            out.setdefault(entry["trial_id"], []).append(entry["epochs"])
    return out


def _final_weights(tmp_path, trial_id) -> list[np.ndarray]:
    with np.load(tmp_path / f"{trial_id}.npz") as saved:
        return [saved[f"arr_{i}"] for i in range(len(saved.files))]


def _val_loss(weights) -> float:
    _, _, Xv, yv = od.make_data()
    return od.mse(weights, Xv, yv)


def _lightning_weights(checkpoint, filename="checkpoint") -> list[np.ndarray]:
    model = od.LinearRegression.load_from_checkpoint(os.path.join(checkpoint.path, filename),
                                                     weights_only=False)
    return od.lightning_weights(model)


def _keras_weights(module, checkpoint, **kwargs) -> list[np.ndarray]:
    model = module.TuneReportCheckpointCallback.get_model(checkpoint, **kwargs)
    return [np.asarray(w) for w in model.get_weights()]


def _asha_sweep(objective, tmp_path, param_space):
    lrs = [0.1, 0.03, 0.01, 0.003, 0.001, 0.0003]
    return lrs, _sweep(objective, tmp_path,
                       {"lr": tune.grid_search(lrs), "epochs": 8, **param_space},
                       metric="val_loss", mode="min", max_concurrent_trials=2,
                       scheduler=ASHAScheduler(max_t=8, grace_period=1, reduction_factor=2))


def _check_asha(grid, tmp_path, lrs, restore):
    """Every trial ended as stopped or finished, inside fit; ASHA cut the weak ones."""
    assert grid.num_errors == 0 and len(grid) == len(lrs)
    epochs = _epochs(tmp_path)
    reported = {}
    for result in grid:
        assert result.status == "TERMINATED"
        n = result.metrics["training_iteration"]
        reported[result.config["lr"]] = n
        # one report per epoch and no more epochs than reports: a STOP ended fit at once,
        # and nothing was reported during Lightning's sanity check
        assert epochs[result.trial_id] == [n]
        # the latest checkpoint holds the model as training left it
        restored = restore(result.checkpoint)
        final = _final_weights(tmp_path, result.trial_id)
        for got, want in zip(restored, final, strict=True):
            np.testing.assert_array_equal(got, want)
        assert result.metrics["val_loss"] == pytest.approx(_val_loss(final), rel=1e-4)
        assert len(result.best_checkpoints) == n      # a checkpoint with every report
    assert sum(n < 8 for n in reported.values()) >= len(lrs) // 2, reported
    assert reported[0.1] == 8, reported                # the strongest trial is never cut
    assert grid.get_best_result().config["lr"] == 0.1


# ------------------------------------------------------------------ module paths

@pytest.mark.parametrize("library, aliases", [
    ("lightning", ["fastasha.tune.integration.pytorch_lightning"]),
    ("keras", ["fastasha.tune.integration.keras", "fastasha.air.integrations.keras"]),
])
def test_ray_module_paths_are_the_same_module(library, aliases):
    module = _need(library)
    for alias in aliases:
        assert importlib.import_module(alias) is module
    names = {"lightning": ["TuneReportCallback", "TuneReportCheckpointCallback"],
             "keras": ["TuneReportCallback", "TuneReportCheckpointCallback",
                       "ReportCheckpointCallback"]}[library]
    assert sorted(module.__all__) == sorted(names)
    if library == "lightning":
        import lightning.pytorch as pl

        assert all(isinstance(getattr(module, n)(), pl.Callback) for n in names)
    else:
        import keras

        assert all(isinstance(getattr(module, n)(), keras.callbacks.Callback) for n in names)


@pytest.mark.parametrize("library, blocked, install", [
    ("lightning", ["lightning", "lightning.pytorch", "pytorch_lightning"], "lightning"),
    ("keras", ["keras"], "keras"),
])
def test_a_missing_library_says_what_to_install(library, blocked, install, monkeypatch):
    """Runs without the libraries too: that is when a user meets this message."""
    for name in blocked:
        monkeypatch.setitem(sys.modules, name, None)       # makes `import <name>` fail
    module = MODULES[library]
    names = [module, module.replace("fastasha.", "fastasha.tune.")]
    if library == "keras":
        names.append("fastasha.air.integrations.keras")
    for name in names:
        monkeypatch.delitem(sys.modules, name, raising=False)
    for name in names:
        with pytest.raises(ModuleNotFoundError,
                           match=f'pip install {install} .*pip install -e "\\.\\[{install}\\]"'):
            importlib.import_module(name)
    import fastasha.air.integrations  # noqa: F401  (the packages themselves need neither)
    import fastasha.integration  # noqa: F401


@pytest.mark.parametrize("library", ["lightning", "keras"])
def test_a_missing_torch_says_what_to_install(library):
    """torch is installed on its own (to pick its build): its absence gets its own message."""
    _need(library)
    code = f"import sys; sys.modules['torch'] = None\nimport {MODULES[library]}\n"
    env = {**os.environ, "KERAS_BACKEND": "torch"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, timeout=120)
    assert out.returncode != 0
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith("ModuleNotFoundError: ") and "needs torch" in last
    assert "pip install torch" in last
    if library == "keras":
        assert "KERAS_BACKEND=torch" in last


# ------------------------------------------------------------------ PyTorch Lightning

def test_lightning_asha_stops_weak_trials_inside_fit(tmp_path):
    """Ray's tutorial setup: report and checkpoint at each validation end, ASHA on val_loss."""
    _need("lightning")
    lrs, grid = _asha_sweep(od.lightning_objective, tmp_path, {
        "module": "fastasha.tune.integration.pytorch_lightning"})
    _check_asha(grid, tmp_path, lrs, _lightning_weights)
    for result in grid:
        # Lightning's names; the epoch's mean train_loss exists from the 2nd validation on
        # (the first validation runs before the first training epoch ends)
        logged = {"val_loss", "train_loss"} if result.metrics["training_iteration"] > 1 \
            else {"val_loss"}
        assert set(result.metrics) & {"val_loss", "train_loss"} == logged
        assert os.listdir(result.checkpoint.path) == ["checkpoint"]


def test_lightning_metrics_hooks_and_errors(tmp_path):
    _need("lightning")
    cases = [
        {"name": "renamed", "callback": "TuneReportCallback",
         "kwargs": {"metrics": {"loss": "val_loss"}}},
        {"name": "epoch_end", "kwargs": {"metrics": ["train_loss", "not_logged"],
                                         "on": "train_epoch_end", "filename": "trainer.ckpt"}},
        {"name": "two_hooks", "kwargs": {"metrics": "val_loss", "save_checkpoints": False,
                                         "on": ["validation_end", "train_epoch_end"]}},
        {"name": "fails", "fail_at": 1},
    ]
    grid = _sweep(od.lightning_objective, tmp_path,
                  {"case": tune.grid_search(cases), "lr": 0.05})
    by_case = {r.config["case"]["name"]: r for r in grid}
    epochs = _epochs(tmp_path)

    renamed = by_case["renamed"]
    assert renamed.status == "TERMINATED" and renamed.metrics["training_iteration"] == 3
    assert "loss" in renamed.metrics and "val_loss" not in renamed.metrics
    assert renamed.checkpoint is None
    final = _final_weights(tmp_path, renamed.trial_id)
    assert renamed.metrics["loss"] == pytest.approx(_val_loss(final), rel=1e-4)

    epoch_end = by_case["epoch_end"]
    assert epoch_end.status == "TERMINATED" and epoch_end.metrics["training_iteration"] == 3
    # the name that was never logged is left out (with a warning), as in Ray
    assert "train_loss" in epoch_end.metrics and "not_logged" not in epoch_end.metrics
    assert "val_loss" not in epoch_end.metrics
    assert os.listdir(epoch_end.checkpoint.path) == ["trainer.ckpt"]
    for got, want in zip(_lightning_weights(epoch_end.checkpoint, "trainer.ckpt"),
                         _final_weights(tmp_path, epoch_end.trial_id), strict=True):
        np.testing.assert_array_equal(got, want)

    two_hooks = by_case["two_hooks"]
    assert two_hooks.metrics["training_iteration"] == 6 and two_hooks.checkpoint is None
    assert epochs[two_hooks.trial_id] == [3]

    fails = by_case["fails"]
    assert fails.status == "ERROR"
    assert "injected failure in training_step" in str(fails.error)
    assert "Traceback" in fails.error.traceback and "training_step" in fails.error.traceback
    assert fails.metrics["training_iteration"] == 1       # the first epoch's report came


# ------------------------------------------------------------------ Keras

def test_keras_asha_stops_weak_trials_inside_fit(tmp_path):
    """Ray AIR's ReportCheckpointCallback: report and save the model at each epoch end."""
    module = _need("keras")
    lrs, grid = _asha_sweep(od.keras_objective, tmp_path, {
        "module": "fastasha.air.integrations.keras", "callback": "ReportCheckpointCallback"})
    _check_asha(grid, tmp_path, lrs, lambda checkpoint: _keras_weights(module, checkpoint))
    for result in grid:
        assert {"loss", "mae", "val_loss", "val_mae"} <= set(result.metrics)   # Keras's names
        assert os.listdir(result.checkpoint.path) == ["model.keras"]


def test_keras_metrics_frequency_forms_and_errors(tmp_path):
    module = _need("keras")
    cases = [
        {"name": "report_only", "callback": "TuneReportCallback",
         "kwargs": {"metrics": {"err": "val_mae"}}},
        {"name": "frequency", "kwargs": {"metrics": "val_loss", "filename": "checkpoint",
                                         "frequency": 2}},
        {"name": "ray_2_7_form", "kwargs": {"checkpoint_on": "train_end",
                                            "report_metrics_on": "epoch_end"}},
        {"name": "unknown_metric", "kwargs": {"metrics": ["val_nope"]}},
        {"name": "fails", "fail_at": 2},
    ]
    grid = _sweep(od.keras_objective, tmp_path,
                  {"case": tune.grid_search(cases), "epochs": 5, "lr": 0.05,
                   "module": "fastasha.tune.integration.keras"})
    by_case = {r.config["case"]["name"]: r for r in grid}

    report_only = by_case["report_only"]
    assert report_only.status == "TERMINATED" and report_only.checkpoint is None
    assert report_only.metrics["training_iteration"] == 5
    assert "err" in report_only.metrics and "val_mae" not in report_only.metrics

    # Ray 2.6's form: a checkpoint with every 2nd epoch, its file named with ".keras" added
    frequency = by_case["frequency"]
    assert frequency.status == "TERMINATED" and frequency.metrics["training_iteration"] == 5
    saved = []
    for checkpoint, metrics in frequency.best_checkpoints:
        assert os.listdir(checkpoint.path) == ["checkpoint.keras"]
        weights = _keras_weights(module, checkpoint, filename="checkpoint")
        assert metrics["val_loss"] == pytest.approx(_val_loss(weights), rel=1e-4)
        saved.append(metrics["training_iteration"])
    assert sorted(saved) == [2, 4]

    # Ray 2.7's form: reports at each epoch end, and one more with the model when fit ends
    form = by_case["ray_2_7_form"]
    assert form.status == "TERMINATED" and form.metrics["training_iteration"] == 6
    [(checkpoint, metrics)] = form.best_checkpoints
    assert metrics["training_iteration"] == 6
    for got, want in zip(_keras_weights(module, checkpoint),
                         _final_weights(tmp_path, form.trial_id), strict=True):
        np.testing.assert_array_equal(got, want)

    unknown = by_case["unknown_metric"]
    assert unknown.status == "ERROR" and isinstance(unknown.error, ValueError)
    assert "'val_nope'" in str(unknown.error) and "'val_loss'" in str(unknown.error)

    fails = by_case["fails"]
    assert fails.status == "ERROR" and fails.metrics["training_iteration"] == 2
    assert "injected failure in on_epoch_begin" in str(fails.error)
    assert "Traceback" in fails.error.traceback


# ------------------------------------------------------------------ bad arguments

@pytest.mark.parametrize("library, cls, kwargs, error, match", [
    ("lightning", "TuneReportCheckpointCallback", {"on": "epoch_end"}, ValueError,
     "names no hook of this library: 'epoch_end'"),
    ("lightning", "TuneReportCallback", {"on": "on_validation_end"}, ValueError,
     "write 'validation_end'"),
    ("lightning", "TuneReportCallback", {"on": []}, TypeError, "non-empty list"),
    ("lightning", "TuneReportCallback", {"metrics": 3}, TypeError, "metrics must be None"),
    ("lightning", "TuneReportCheckpointCallback", {"metrics": {"loss": 1}}, TypeError,
     "both strings"),
    ("lightning", "TuneReportCheckpointCallback", {"save_checkpoints": "validation_end"},
     TypeError, "pass it by name"),
    ("lightning", "TuneReportCheckpointCallback", {"filename": "a/b.ckpt"}, ValueError,
     "plain file name"),
    ("keras", "TuneReportCallback", {"on": "validation_end"}, ValueError,
     "names no hook of this library"),
    ("keras", "TuneReportCheckpointCallback", {"frequency": -1}, ValueError,
     "frequency must be at least 0"),
    ("keras", "TuneReportCheckpointCallback", {"frequency": [1, 2]}, ValueError,
     "one frequency per hook"),
    ("keras", "TuneReportCheckpointCallback", {"on": "epoch_end", "checkpoint_on": "train_end"},
     TypeError, "not both"),
    ("keras", "TuneReportCheckpointCallback", {"metrics": ["loss", 2]}, TypeError,
     "holds metric names"),
    ("keras", "ReportCheckpointCallback", {"checkpoint_on": "nope"}, ValueError,
     "checkpoint_on names no hook"),
    ("keras", "ReportCheckpointCallback", {"report_metrics_on": 3}, TypeError,
     "report_metrics_on must be a hook name"),
])
def test_bad_arguments_are_refused(library, cls, kwargs, error, match):
    module = _need(library)
    with pytest.raises(error, match=match):
        getattr(module, cls)(**kwargs)


def test_keras_get_model_refuses_what_is_not_a_saved_model(tmp_path):
    module = _need("keras")
    get_model = module.ReportCheckpointCallback.get_model
    with pytest.raises(TypeError, match="got None: this result has no checkpoint"):
        get_model(None)
    with pytest.raises(TypeError, match="needs a tune.Checkpoint"):
        get_model(3)
    checkpoint = tune.Checkpoint.from_directory(tmp_path)
    with pytest.raises(FileNotFoundError, match="not exactly one Keras model file"):
        get_model(checkpoint)
    (tmp_path / "a.keras").write_bytes(b"")
    (tmp_path / "b.keras").write_bytes(b"")
    with pytest.raises(FileNotFoundError, match=r"'a\.keras', 'b\.keras'"):
        get_model(checkpoint)
    with pytest.raises(FileNotFoundError, match=r"no Keras model file 'model\.keras'"):
        get_model(checkpoint, filename="model")
