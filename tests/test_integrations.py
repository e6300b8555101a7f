"""Ray Tune's XGBoost and LightGBM report callbacks (``fastasha.integration``).

Each sweep runs through ``tune.Tuner`` in real loky worker processes, with
the objectives of tests/objectives_integrations.py training on small seeded
numpy data. Expected values are recomputed here by training the same
booster directly, not written down.
"""

from __future__ import annotations

import importlib
import json
import os
import sys

import numpy as np
import pytest

import objectives_integrations as oi
from fastasha import tune
from fastasha.schedulers import ASHAScheduler

LIBRARIES = ["xgboost", "lightgbm"]


def _skip_without(library: str):
    pytest.importorskip(library)
    return importlib.import_module(f"fastasha.integration.{library}")


@pytest.fixture(params=LIBRARIES)
def library(request):
    _skip_without(request.param)
    return request.param


# what each library names the results of the objectives' evaluation sets
LOGLOSS = {"xgboost": "eval-logloss", "lightgbm": "eval-binary_logloss"}
ERROR = {"xgboost": "eval-error", "lightgbm": "eval-binary_error"}
ALL_KEYS = {
    "xgboost": {"train-logloss", "train-error", "eval-logloss", "eval-error"},
    "lightgbm": {"eval-binary_logloss", "eval-binary_error"},
}
OBJECTIVE = {"xgboost": oi.xgb_objective, "lightgbm": oi.lgb_objective}
FILENAME = {"xgboost": "model.ubj", "lightgbm": "model.txt"}


def _sweep(library, tmp_path, param_space, **tune_config):
    run_config = tune_config.pop("run_config", {})
    tuner = tune.Tuner(
        OBJECTIVE[library],
        param_space={"eta": 0.3, "rounds": 5, "log_dir": str(tmp_path), **param_space},
        tune_config=tune.TuneConfig(**tune_config),
        run_config=tune.RunConfig(storage_path=str(tmp_path), name="sweep", verbose=0,
                                  **run_config),
    )
    return tuner.fit()


def _attempts(tmp_path) -> dict[str, list[dict]]:
    """The objective's log: per trial, each attempt's start round and rounds trained."""
    out: dict[str, list[dict]] = {}
    with open(tmp_path / "rounds.jsonl") as f:
        for line in f:
            entry = json.loads(line)
            out.setdefault(entry["trial_id"], []).append(entry)
    return out


def _direct(library, rounds, eta=0.3):
    """The booster the objectives train, trained here for ``rounds`` rounds."""
    X, y, Xv, yv = oi.make_data()
    if library == "xgboost":
        import xgboost as xgb

        params = {"objective": "binary:logistic", "eval_metric": ["logloss", "error"],
                  "max_depth": 3, "eta": eta, "nthread": 1, "seed": 0}
        return xgb.train(params, xgb.DMatrix(X, label=y), num_boost_round=rounds)
    import lightgbm as lgb

    params = {"objective": "binary", "metric": ["binary_logloss", "binary_error"],
              "learning_rate": eta, "num_leaves": 7, "min_data_in_leaf": 5, "num_threads": 1,
              "verbose": -1, "seed": 0}
    return lgb.train(params, lgb.Dataset(X, label=y), num_boost_round=rounds)


def _predict(library, booster):
    _, _, Xv, _ = oi.make_data()
    if library == "xgboost":
        import xgboost as xgb

        return booster.predict(xgb.DMatrix(Xv))
    return booster.predict(Xv)


def _rounds(library, booster) -> int:
    return booster.num_boosted_rounds() if library == "xgboost" else booster.current_iteration()


# ------------------------------------------------------------------ module paths

@pytest.mark.parametrize("lib", LIBRARIES)
def test_ray_module_paths_are_the_same_module(lib):
    module = _skip_without(lib)
    assert importlib.import_module(f"fastasha.tune.integration.{lib}") is module
    assert importlib.import_module(f"fastasha.train.{lib}") is module
    from fastasha import train

    assert getattr(train, lib) is module and tune.integration.__name__ == "fastasha.integration"
    for name in ("TuneReportCheckpointCallback", "TuneReportCallback", "RayTrainReportCallback"):
        assert issubclass(getattr(module, name), type(getattr(module, name)(metrics=None)))
    trainer = "XGBoostTrainer" if lib == "xgboost" else "LightGBMTrainer"
    with pytest.raises(AttributeError, match=f"no '{trainer}'.*one process per trial"):
        getattr(module, trainer)


@pytest.mark.parametrize("lib", LIBRARIES)
def test_a_missing_library_says_what_to_install(lib, monkeypatch):
    monkeypatch.setitem(sys.modules, lib, None)        # makes `import <lib>` fail
    for name in (f"fastasha.integration.{lib}", f"fastasha.train.{lib}",
                 f"fastasha.tune.integration.{lib}"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    for name in (f"fastasha.integration.{lib}", f"fastasha.train.{lib}",
                 f"fastasha.tune.integration.{lib}"):
        with pytest.raises(ModuleNotFoundError,
                           match=f'pip install {lib} .*pip install -e "\\.\\[{lib}\\]"'):
            importlib.import_module(name)
    import fastasha.integration  # noqa: F401  (the package itself needs neither library)


# ------------------------------------------------------------------ sweeps

def test_asha_stops_weak_trials_inside_boosting(library, tmp_path):
    """Ray's tutorial setup: report every round, checkpoint every round, ASHA on the loss."""
    module = {"xgboost": "fastasha.tune.integration.xgboost",
              "lightgbm": "fastasha.train.lightgbm"}[library]
    callback = {"xgboost": "TuneReportCheckpointCallback",
                "lightgbm": "RayTrainReportCallback"}[library]
    etas = [0.5, 0.3, 0.1, 0.03, 0.01, 0.003, 0.001, 0.0003]
    grid = _sweep(library, tmp_path,
                  {"eta": tune.grid_search(etas), "rounds": 16, "module": module,
                   "callback": callback, "kwargs": {"frequency": 1}},
                  metric=LOGLOSS[library], mode="min", max_concurrent_trials=2,
                  scheduler=ASHAScheduler(max_t=16, grace_period=2, reduction_factor=2))
    assert grid.num_errors == 0 and len(grid) == len(etas)
    attempts = _attempts(tmp_path)
    reported = {}
    for result in grid:
        assert result.status == "TERMINATED"
        n = result.metrics["training_iteration"]
        reported[result.config["eta"]] = n
        # the booster ran exactly the rounds it reported: a STOP ended boosting at once
        assert [a["rounds"] for a in attempts[result.metrics["trial_id"]]] == [n]
        assert set(result.metrics) >= ALL_KEYS[library]
    stopped = [eta for eta, n in reported.items() if n < 16]
    assert len(stopped) >= len(etas) // 2, reported
    assert reported[0.5] == 16      # the first and strongest trial is never cut

    best = grid.get_best_result()
    # which of the two strongest etas wins depends on whether eta=0.3 reached a rung
    # before or after eta=0.5 (the two run side by side): either way, the lowest loss
    lowest = min(grid, key=lambda r: r.metrics[LOGLOSS[library]])
    assert best.trial_id == lowest.trial_id and best.config["eta"] in (0.5, 0.3)
    cls = getattr(importlib.import_module(module), callback)
    model = cls.get_model(best.checkpoint)
    assert _rounds(library, model) == best.metrics["training_iteration"]
    _, _, _, yv = oi.make_data()
    assert oi.log_loss(yv, _predict(library, model)) == \
        pytest.approx(best.metrics[LOGLOSS[library]], rel=1e-5)


def test_metric_names_and_the_metrics_argument(library, tmp_path):
    logloss, error = LOGLOSS[library], ERROR[library]
    forms = [None, logloss, [logloss, error], {"loss": logloss, "err": error}]
    grid = _sweep(library, tmp_path, {
        "rounds": 3, "callback": "TuneReportCallback",
        "kwargs": tune.grid_search([{"metrics": m} for m in forms]),
    })
    assert grid.num_errors == 0
    by_form = {json.dumps(r.config["kwargs"]["metrics"]): r.metrics for r in grid}
    expected = {
        json.dumps(None): ALL_KEYS[library],
        json.dumps(logloss): {logloss},
        json.dumps([logloss, error]): {logloss, error},
        json.dumps({"loss": logloss, "err": error}): {"loss", "err"},
    }
    for form, keys in expected.items():
        metrics = by_form[form]
        assert metrics["training_iteration"] == 3, form
        # exactly the chosen results, under the chosen names
        assert set(metrics) & (ALL_KEYS[library] | {"loss", "err"}) == keys, form
    everything = by_form[json.dumps(None)]
    renamed = by_form[json.dumps({"loss": logloss, "err": error})]
    assert renamed["loss"] == everything[logloss] and renamed["err"] == everything[error]
    # the value of the round reported: the loss of the booster after 3 rounds
    _, _, _, yv = oi.make_data()
    direct = oi.log_loss(yv, _predict(library, _direct(library, 3)))
    assert everything[logloss] == pytest.approx(direct, rel=1e-5)


def test_lightgbm_names_unnamed_validation_sets_valid_0(tmp_path):
    _skip_without("lightgbm")
    grid = _sweep("lightgbm", tmp_path, {"rounds": 2, "valid_names": None,
                                         "callback": "TuneReportCallback"})
    assert grid.num_errors == 0
    metrics = grid[0].metrics
    assert "valid_0-binary_logloss" in metrics and "valid_0-binary_error" in metrics
    assert "eval-binary_logloss" not in metrics


def test_checkpoints_at_frequency_and_at_end(library, tmp_path):
    rounds = 7
    options = [
        {"frequency": 3},                                    # 3, 6 and the end
        {"frequency": 7},                                    # the end only, saved once
        {"frequency": 0},                                    # the end only
        {"frequency": 2, "checkpoint_at_end": False, "filename": "booster.json"},
        {"frequency": 0, "checkpoint_at_end": False},        # none
    ]
    grid = _sweep(library, tmp_path, {
        "rounds": rounds, "kwargs": tune.grid_search(options)})
    assert grid.num_errors == 0
    # xgboost reports the end checkpoint on its own (as Ray does); LightGBM with the last round
    extra = 1 if library == "xgboost" else 0
    expected = {   # (frequency, at end): (reports, [(training_iteration, rounds) per checkpoint])
        (3, True): (rounds + extra, [(3, 3), (6, 6), (rounds + extra, rounds)]),
        (7, True): (rounds, [(rounds, rounds)]),
        (0, True): (rounds + extra, [(rounds + extra, rounds)]),
        (2, False): (rounds, [(2, 2), (4, 4), (6, 6)]),
        (0, False): (rounds, []),
    }
    module = importlib.import_module(f"fastasha.integration.{library}")
    _, _, _, yv = oi.make_data()
    for result in grid:
        kwargs = result.config["kwargs"]
        key = (kwargs["frequency"], kwargs.get("checkpoint_at_end", True))
        filename = kwargs.get("filename", FILENAME[library])
        saved = []
        for checkpoint, metrics in result.best_checkpoints:
            assert os.listdir(checkpoint.path) == [filename]
            model = module.TuneReportCheckpointCallback.get_model(checkpoint, filename=filename)
            saved.append((metrics["training_iteration"], _rounds(library, model)))
            assert metrics[LOGLOSS[library]] == \
                pytest.approx(oi.log_loss(yv, _predict(library, model)), rel=1e-5)
            # the model predicts as the booster trained directly for as many rounds
            np.testing.assert_allclose(_predict(library, model),
                                       _predict(library, _direct(library, saved[-1][1])),
                                       rtol=1e-6)
        assert (result.metrics["training_iteration"], saved) == expected[key], key
        if not saved:
            assert result.checkpoint is None
            with pytest.raises(TypeError, match="has no checkpoint"):
                module.TuneReportCheckpointCallback.get_model(result.checkpoint)


def test_a_failed_trial_continues_from_its_checkpoint(library, tmp_path):
    rounds, fail_at = 10, 5
    grid = _sweep(library, tmp_path,
                  {"rounds": rounds, "fail_at": fail_at, "kwargs": {"frequency": 2}},
                  metric=LOGLOSS[library], mode="min",
                  run_config={"failure_config": tune.FailureConfig(max_failures=1)})
    assert grid.num_errors == 0
    result = grid[0]
    # the first attempt failed after round 5; the retry loaded round 4's checkpoint
    assert [(a["start"], a["rounds"]) for a in _attempts(tmp_path)[result.metrics["trial_id"]]] \
        == [(0, fail_at), (4, rounds - 4)]
    assert result.metrics["training_iteration"] == rounds
    module = importlib.import_module(f"fastasha.integration.{library}")
    model = module.TuneReportCheckpointCallback.get_model(result.checkpoint)
    assert _rounds(library, model) == rounds
    np.testing.assert_allclose(_predict(library, model),
                               _predict(library, _direct(library, rounds)), rtol=1e-6)


def test_results_postprocessing_fn_and_errors_inside_the_trial(library, tmp_path):
    logloss = LOGLOSS[library]
    grid = _sweep(library, tmp_path, {"rounds": 3, "kwargs": tune.grid_search([
        {"results_postprocessing_fn": oi.add_score},
        {"results_postprocessing_fn": oi.not_a_dict},
        {"metrics": ["eval-auc"]},
    ])})
    by_case = {}
    for result in grid:
        kwargs = result.config["kwargs"]
        fn = kwargs.get("results_postprocessing_fn")
        by_case["metrics" if fn is None else fn.__name__] = result
    scored = by_case["add_score"]
    assert scored.status == "TERMINATED"
    assert scored.metrics["score"] == pytest.approx(1.0 - scored.metrics[logloss])
    # the end checkpoint's result went through it too
    assert scored.best_checkpoints and all(
        m["score"] == pytest.approx(1.0 - m[logloss]) for _, m in scored.best_checkpoints)
    assert by_case["not_a_dict"].status == "ERROR"
    assert isinstance(by_case["not_a_dict"].error, TypeError)
    assert "results_postprocessing_fn must return a dict" in str(by_case["not_a_dict"].error)
    unknown = by_case["metrics"]
    assert unknown.status == "ERROR" and isinstance(unknown.error, ValueError)
    assert "'eval-auc'" in str(unknown.error) and logloss in str(unknown.error)


def test_xgboost_cv_reports_only(tmp_path):
    _skip_without("xgboost")
    grid = tune.Tuner(
        oi.xgb_cv_objective,
        param_space={"eta": 0.3, "rounds": 3, "kwargs": tune.grid_search([
            {}, {"frequency": 0, "checkpoint_at_end": False,
                 "results_postprocessing_fn": oi.cv_means}])},
        run_config=tune.RunConfig(storage_path=str(tmp_path), name="cv", verbose=0),
    ).fit()
    saving, reporting = sorted(grid, key=lambda r: len(r.config["kwargs"]))
    assert saving.status == "ERROR" and isinstance(saving.error, TypeError)
    assert "checkpoint_at_end=False" in str(saving.error)
    assert reporting.status == "TERMINATED" and reporting.metrics["training_iteration"] == 3
    import xgboost as xgb

    X, y, _, _ = oi.make_data()
    params = {"objective": "binary:logistic", "eval_metric": "logloss", "max_depth": 3,
              "eta": 0.3, "nthread": 1, "seed": 0}
    direct = xgb.cv(params, xgb.DMatrix(X, label=y), num_boost_round=3, nfold=3, seed=0,
                    as_pandas=False)
    for key in ("test-logloss-mean", "test-logloss-std", "train-logloss-mean"):
        assert reporting.metrics[key] == pytest.approx(direct[key][-1]), key


# ------------------------------------------------------------------ bad arguments

@pytest.mark.parametrize("lib", LIBRARIES)
@pytest.mark.parametrize("kwargs, error, match", [
    ({"metrics": 3}, TypeError, "metrics must be None"),
    ({"metrics": ["eval-logloss", 2]}, TypeError, "holds result names"),
    ({"metrics": {"loss": 1}}, TypeError, "both strings"),
    ({"frequency": -1}, ValueError, "frequency must be at least 0"),
    ({"frequency": 1.5}, TypeError, "frequency must be an integer"),
    ({"filename": ""}, ValueError, "plain file name"),
    ({"filename": "sub/model.ubj"}, ValueError, "plain file name"),
    ({"filename": None}, TypeError, "filename must be a string"),
    ({"checkpoint_at_end": "yes"}, TypeError, "checkpoint_at_end must be True or False"),
    ({"results_postprocessing_fn": 3}, TypeError, "results_postprocessing_fn must be"),
])
def test_bad_arguments_are_refused(lib, kwargs, error, match):
    module = _skip_without(lib)
    with pytest.raises(error, match=match):
        module.TuneReportCheckpointCallback(**kwargs)
    if set(kwargs) <= {"metrics", "results_postprocessing_fn"}:
        with pytest.raises(error, match=match):
            module.TuneReportCallback(**kwargs)


@pytest.mark.parametrize("lib", LIBRARIES)
def test_get_model_refuses_what_is_not_a_saved_booster(lib, tmp_path):
    module = _skip_without(lib)
    cls = module.RayTrainReportCallback
    with pytest.raises(TypeError, match="got None: this result has no checkpoint"):
        cls.get_model(None)
    with pytest.raises(TypeError, match="needs a tune.Checkpoint"):
        cls.get_model(3)
    (tmp_path / "other.bin").write_bytes(b"")
    with pytest.raises(FileNotFoundError, match=r"no booster file 'model\.\w+'.*other\.bin"):
        cls.get_model(tune.Checkpoint.from_directory(tmp_path))
