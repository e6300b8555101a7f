"""Module-level objectives for tests/test_integrations.py (XGBoost and LightGBM callbacks).

Workers import this small module to run them (see tests/objectives.py).
Each objective trains on the same seeded numpy data, with the report
callback built from the config, and appends what it saw to a log file in
``config["log_dir"]``: the trial, the round it started from, and how many
rounds the booster really ran in this attempt (counted by a callback placed
before the report callback, so a STOP inside a report counts its round).
"""

from __future__ import annotations

import json
import os
from importlib import import_module

import numpy as np

from fastasha import tune


def make_data(seed: int = 0, n_train: int = 400, n_valid: int = 200, n_features: int = 8):
    """A seeded binary classification problem: (X_train, y_train, X_valid, y_valid)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_train + n_valid, n_features))
    w = np.linspace(-1.0, 1.0, n_features)
    y = (X @ w + rng.normal(scale=1.0, size=len(X)) > 0).astype(np.float64)
    return X[:n_train], y[:n_train], X[n_train:], y[n_train:]


def log_loss(y: np.ndarray, p: np.ndarray) -> float:
    p = np.clip(np.asarray(p, dtype=np.float64), 1e-15, 1 - 1e-15)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def add_score(results: dict) -> dict:
    """A results_postprocessing_fn: adds 1 - (the eval set's log loss) as "score"."""
    loss = next(v for k, v in results.items() if k.startswith("eval-") and k.endswith("logloss"))
    return {**results, "score": 1.0 - loss}


def not_a_dict(results: dict) -> list:
    """A results_postprocessing_fn that returns the wrong type."""
    return list(results)


def cv_means(results: dict) -> dict:
    """A results_postprocessing_fn for xgboost.cv, whose results are (mean, std) pairs."""
    out = {}
    for key, (mean, std) in results.items():
        out[f"{key}-mean"], out[f"{key}-std"] = mean, std
    return out


def _log(config: dict, **entry) -> None:
    entry["trial_id"] = tune.get_context().get_trial_id()
    with open(os.path.join(config["log_dir"], "rounds.jsonl"), "a") as f:
        f.write(json.dumps(entry) + "\n")


def _callback(config: dict, default_module: str):
    module = import_module(config.get("module", default_module))
    cls = getattr(module, config.get("callback", "TuneReportCheckpointCallback"))
    return cls, cls(**config.get("kwargs", {}))


def xgb_objective(config: dict) -> None:
    import xgboost as xgb

    class Counter(xgb.callback.TrainingCallback):
        rounds = 0

        def after_iteration(self, model, epoch, evals_log):
            self.rounds += 1
            return False

    class FailAt(xgb.callback.TrainingCallback):
        def after_iteration(self, model, epoch, evals_log):
            if model.num_boosted_rounds() == config.get("fail_at"):
                raise RuntimeError("injected failure")
            return False

    X, y, Xv, yv = make_data()
    dtrain, dvalid = xgb.DMatrix(X, label=y), xgb.DMatrix(Xv, label=yv)
    params = {"objective": "binary:logistic", "eval_metric": ["logloss", "error"],
              "max_depth": 3, "eta": config["eta"], "nthread": 1, "seed": 0}
    cls, callback = _callback(config, "fastasha.integration.xgboost")
    booster, start = None, 0
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        booster = cls.get_model(checkpoint, **config.get("load", {}))
        start = booster.num_boosted_rounds()
    counter = Counter()
    callbacks = [counter, callback] + ([FailAt()] if checkpoint is None else [])
    try:
        xgb.train(params, dtrain, num_boost_round=config["rounds"] - start,
                  evals=[(dtrain, "train"), (dvalid, "eval")], verbose_eval=False,
                  xgb_model=booster, callbacks=callbacks)
    finally:
        _log(config, start=start, rounds=counter.rounds)


def xgb_cv_objective(config: dict) -> None:
    import xgboost as xgb

    X, y, _, _ = make_data()
    params = {"objective": "binary:logistic", "eval_metric": "logloss", "max_depth": 3,
              "eta": config["eta"], "nthread": 1, "seed": 0}
    _, callback = _callback(config, "fastasha.integration.xgboost")
    xgb.cv(params, xgb.DMatrix(X, label=y), num_boost_round=config["rounds"], nfold=3,
           seed=0, callbacks=[callback])


def lgb_objective(config: dict) -> None:
    import lightgbm as lgb

    class Counter:
        rounds = 0

        def __call__(self, env):
            self.rounds += 1

    def fail_at(env):
        if env.iteration + 1 == config.get("fail_at"):
            raise RuntimeError("injected failure")

    X, y, Xv, yv = make_data()
    dtrain = lgb.Dataset(X, label=y)
    dvalid = lgb.Dataset(Xv, label=yv, reference=dtrain)
    params = {"objective": "binary", "metric": ["binary_logloss", "binary_error"],
              "learning_rate": config["eta"], "num_leaves": 7, "min_data_in_leaf": 5,
              "num_threads": 1, "verbose": -1, "seed": 0}
    cls, callback = _callback(config, "fastasha.integration.lightgbm")
    booster, start = None, 0
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        booster = cls.get_model(checkpoint, **config.get("load", {}))
        start = booster.current_iteration()
    counter = Counter()
    callbacks = [counter, callback] + ([fail_at] if checkpoint is None else [])
    valid_names = config.get("valid_names", ["eval"])
    try:
        lgb.train(params, dtrain, num_boost_round=config["rounds"] - start,
                  valid_sets=[dvalid], valid_names=valid_names, init_model=booster,
                  callbacks=callbacks)
    finally:
        _log(config, start=start, rounds=counter.rounds)
