"""Objectives for the trial-end tests of tests/test_trackers.py: tracking runs the
objective starts and never ends itself (no ``try: ... finally:``).

Module level, so that loky workers import them by name (see tests/objectives.py).
"""

from __future__ import annotations

import time

from fastasha import tune


def mlflow_left_open(config):
    """Logs to its own MLflow run (setup_mlflow) and leaves it to fastasha to end."""
    from fastasha.air.integrations.mlflow import setup_mlflow

    settings = config["mlflow"]
    mlflow = setup_mlflow({"x": config["x"]}, tracking_uri=settings["tracking_uri"],
                          experiment_name=settings["experiment_name"],
                          tags={"trial": tune.get_context().get_trial_id()})
    for step in range(1, 4):
        time.sleep(0.1)     # (long enough for the worker's flush thread to see the trial)
        mlflow.log_metric("inner_loss", config["x"] / step, step=step)
        tune.report({"loss": config["x"] / step})


def wandb_left_open(config):
    """Logs to its own W&B run (setup_wandb) and leaves it to fastasha to finish."""
    from fastasha.air.integrations.wandb import setup_wandb

    run = setup_wandb({"x": config["x"]}, project="left-open", dir=config["wandb_dir"],
                      mode="offline")
    for step in range(1, 4):
        time.sleep(0.1)
        run.log({"inner_loss": config["x"] / step})
        tune.report({"loss": config["x"] / step})
