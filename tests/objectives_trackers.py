"""Module-level objectives for tests/test_trackers.py (MLflow and W&B integrations).

Workers import this small module to run them (see tests/objectives.py). The
losses follow from the config alone, so a test can recompute what each
trial reported; a config with ``fail_at`` raises at that iteration.
"""

from __future__ import annotations

from fastasha import tune


def loss_at(config: dict, step: int) -> float:
    return config["x"] / step + 0.01 * config["model"]["depth"]


def curve(config):
    """Ten reports of a falling loss, a nested value and a key MLflow refuses."""
    for step in range(1, 11):
        if step == config.get("fail_at"):
            raise ValueError(f"failed at step {step}")
        metrics = {"loss": loss_at(config, step), "extra": {"step2": 2 * step}}
        if config.get("odd_key"):
            metrics["odd?key"] = 1.0
        tune.report(metrics)


def curve_with_mlflow(config):
    """Logs to MLflow itself through setup_mlflow, and reports to the sweep."""
    from fastasha.air.integrations.mlflow import setup_mlflow

    settings = config["mlflow"]
    mlflow = setup_mlflow({k: v for k, v in config.items() if k != "mlflow"},
                          tracking_uri=settings["tracking_uri"],
                          experiment_name=settings["experiment_name"],
                          tags={"trial": tune.get_context().get_trial_id()})
    try:
        for step in range(1, 6):
            loss = loss_at(config, step)
            mlflow.log_metric("inner_loss", loss, step=step)
            tune.report({"loss": loss})
    finally:
        # fastasha ends the run when the trial is over, except when the sweep ends before
        # it could (the module docstring of fastasha.air.integrations.mlflow)
        if settings.get("end_run", True):
            mlflow.end_run()


def curve_with_wandb(config):
    """Logs to W&B itself through setup_wandb, and reports to the sweep."""
    from fastasha.air.integrations.wandb import setup_wandb

    # (the mode comes with the config: loky's worker processes may predate the test's
    # WANDB_MODE)
    run = setup_wandb(config, project="inside", dir=config["wandb_dir"], mode="offline")
    try:
        for step in range(1, 6):
            loss = loss_at(config, step)
            run.log({"inner_loss": loss})
            tune.report({"loss": loss})
    finally:
        run.finish()     # (as for MLflow above)
