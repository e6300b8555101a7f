"""Module-level objectives for tests/test_dl_integrations.py (Lightning and Keras callbacks).

Workers import this small module to run them (see tests/objectives.py).
Each objective trains a one-layer linear regression on the same seeded
numpy data, with the report callback built from the config, and writes
what it saw to ``config["log_dir"]``: a line per attempt in
``epochs.jsonl`` (the trial, how many epochs training started), and the
model's final weights in ``<trial id>.npz``, saved also when a STOP or an
error ended training.
"""

from __future__ import annotations

import json
import os
from importlib import import_module

import numpy as np

from fastasha import tune

N_FEATURES = 4
BATCH_SIZE = 16


def make_data(seed: int = 0, n_train: int = 64, n_valid: int = 32):
    """A seeded linear regression problem: float32 (X_train, y_train, X_valid, y_valid)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_train + n_valid, N_FEATURES)).astype(np.float32)
    w = np.linspace(-1.0, 2.0, N_FEATURES, dtype=np.float32)
    y = (X @ w + rng.normal(scale=0.1, size=len(X))).astype(np.float32)
    return X[:n_train], y[:n_train], X[n_train:], y[n_train:]


def mse(model_weights: list[np.ndarray], X: np.ndarray, y: np.ndarray) -> float:
    """The mean squared error of a linear model given as [kernel (4, 1), bias (1,)]."""
    kernel, bias = model_weights
    return float(np.mean(((X @ kernel.reshape(-1) + bias.reshape(())) - y) ** 2))


def _log(config: dict, weights: list[np.ndarray], **entry) -> None:
    trial_id = tune.get_context().get_trial_id()
    entry["trial_id"] = trial_id
    with open(os.path.join(config["log_dir"], "epochs.jsonl"), "a") as f:
        f.write(json.dumps(entry) + "\n")
    np.savez(os.path.join(config["log_dir"], f"{trial_id}.npz"), *weights)


def _callback(config: dict, default_module: str):
    module = import_module(config.get("module", default_module))
    cls = getattr(module, config.get("callback", "TuneReportCheckpointCallback"))
    return cls(**config.get("kwargs", {}))


# ------------------------------------------------------------------ PyTorch Lightning

def lightning_weights(module) -> list[np.ndarray]:
    """[kernel (4, 1), bias (1,)] of a LinearRegression module (Keras's layout)."""
    return [module.layer.weight.detach().cpu().numpy().T.copy(),
            module.layer.bias.detach().cpu().numpy().copy()]


try:          # the test module skips the Lightning tests when it is missing
    import lightning.pytorch as pl
    import torch
except ImportError:
    pl = None

if pl is not None:
    class LinearRegression(pl.LightningModule):
        """y = x @ w + b, trained with SGD on the mean squared error."""

        def __init__(self, lr: float = 0.05, fail_at: int | None = None) -> None:
            super().__init__()
            self.save_hyperparameters()
            self.layer = torch.nn.Linear(N_FEATURES, 1)

        def _loss(self, batch):
            x, y = batch
            return torch.nn.functional.mse_loss(self.layer(x).squeeze(-1), y)

        def training_step(self, batch, batch_idx):
            if self.current_epoch == self.hparams.fail_at:
                raise RuntimeError("injected failure in training_step")
            loss = self._loss(batch)
            self.log("train_loss", loss, on_step=False, on_epoch=True)
            return loss

        def validation_step(self, batch, batch_idx):
            self.log("val_loss", self._loss(batch))

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)


def lightning_objective(config: dict) -> None:
    config = {**config, **config.get("case", {})}   # a test's case: callback, kwargs, fail_at
    torch.set_num_threads(1)
    torch.manual_seed(0)
    X, y, Xv, yv = make_data()
    train = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(torch.from_numpy(X), torch.from_numpy(y)),
        batch_size=BATCH_SIZE)
    valid = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(torch.from_numpy(Xv), torch.from_numpy(yv)),
        batch_size=BATCH_SIZE)

    class Counter(pl.Callback):
        epochs = 0

        def on_train_epoch_start(self, trainer, pl_module):
            self.epochs += 1

    model = LinearRegression(lr=config["lr"], fail_at=config.get("fail_at"))
    counter = Counter()
    trainer = pl.Trainer(
        max_epochs=config["epochs"], accelerator="cpu", devices=1, logger=False,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
        callbacks=[counter, _callback(config, "fastasha.integration.pytorch_lightning")])
    try:
        trainer.fit(model, train, valid)
    finally:
        _log(config, lightning_weights(model), epochs=counter.epochs)


# ------------------------------------------------------------------ Keras

def keras_objective(config: dict) -> None:
    config = {**config, **config.get("case", {})}
    os.environ.setdefault("KERAS_BACKEND", "torch")
    import keras
    import torch

    torch.set_num_threads(1)
    keras.utils.set_random_seed(0)
    X, y, Xv, yv = make_data()

    class Counter(keras.callbacks.Callback):
        epochs = 0

        def on_epoch_begin(self, epoch, logs=None):
            self.epochs += 1
            if epoch == config.get("fail_at"):
                raise RuntimeError("injected failure in on_epoch_begin")

    model = keras.Sequential([keras.Input((N_FEATURES,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(config["lr"]), loss="mse", metrics=["mae"])
    counter = Counter()
    try:
        model.fit(X, y, epochs=config["epochs"], batch_size=BATCH_SIZE,
                  validation_data=(Xv, yv), verbose=0,
                  callbacks=[counter, _callback(config, "fastasha.integration.keras")])
    finally:
        _log(config, [np.asarray(w) for w in model.get_weights()], epochs=counter.epochs)
