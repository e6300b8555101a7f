"""Module-level objectives for tests/test_review_trackers.py (workers import them)."""

from __future__ import annotations

import os

from fastasha import tune


def writes_a_file(config):
    """Five reports; a file in the trial's folder for MLflowLoggerCallback(save_artifact=True)."""
    folder = tune.get_context().get_trial_dir()
    for step in range(1, 6):
        with open(os.path.join(folder, "notes.txt"), "w") as f:
            f.write(f"step {step}\n")
        tune.report({"loss": config["x"] / step})


def deletes_its_run(config):
    """Reports; a trial with ``delete`` first waits for its MLflow run (the callback's writer
    makes it within a second or so) and deletes it, as a user might in MLflow's UI."""
    if config["delete"]:
        import time

        import mlflow

        client = mlflow.MlflowClient(config["uri"])
        experiment = client.get_experiment_by_name(config["experiment"]).experiment_id
        name = f"deletes_its_run_{tune.get_context().get_trial_id()}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            runs = client.search_runs([experiment], f"tags.trial_name = '{name}'")
            if runs:
                client.delete_run(runs[0].info.run_id)
                break
            time.sleep(0.1)
    for step in range(1, 6):
        tune.report({"loss": config["x"] / step})


def waits_for_its_metric(config):
    """Reports once, then watches MLflow for that result (the callback's writer sends what
    waits at most a second or so later), and reports how long it took to show."""
    import time

    import mlflow

    tune.report({"loss": 1.0})
    client = mlflow.MlflowClient(config["uri"])
    experiment = client.get_experiment_by_name(config["experiment"]).experiment_id
    name = f"waits_for_its_metric_{tune.get_context().get_trial_id()}"
    started = time.monotonic()
    seen = None
    while time.monotonic() - started < 15:
        runs = client.search_runs([experiment], f"tags.trial_name = '{name}'")
        if runs and "loss" in runs[0].data.metrics:
            seen = time.monotonic() - started
            break
        time.sleep(0.1)
    tune.report({"loss": 0.5, "seen_after": -1.0 if seen is None else seen})
