#!/usr/bin/env python
"""A large ASHA sweep that survives crashes: run it again to continue where it stopped.

    python examples/large_sweep.py --trials 20000 --time-budget 600

Every result goes to ``<storage>/<name>/experiment.db`` (SQLite) as the
sweep runs (``--storage`` defaults to ``$FASTASHA_STORAGE_PATH``, else
``~/fastasha_results``; ``--name`` to ``large_sweep``). If the process dies
(a crash, ``kill -9``, a lost machine) or is stopped (Ctrl-C, the time
budget), running the same command again restores the experiment and goes
on: finished trials are kept, trials that were running start again from
their latest checkpoint, ASHA's rungs and the random stream continue
exactly. A continuation keeps the settings the sweep started with (trials,
epochs, time budget, verbosity; it says so): only ``--storage`` and
``--name`` count then, and a budget counts afresh on each run. Once every
trial has finished, running it again only prints the summary.

The objective is a stand-in for training: a noisy learning curve whose
final loss depends on ``lr`` and ``width``, with ``--step-ms`` of sleep per
epoch to stand for the work, and a checkpoint every 10 epochs.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import tempfile
import time
from pathlib import Path

from fastasha import tune
from fastasha.schedulers import AsyncHyperBandScheduler


def train(config: dict) -> None:
    """``config["epochs"]`` epochs of a synthetic learning curve, checkpointed every 10."""
    start = 0
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:          # a restarted trial resumes from its checkpoint
        start = json.loads(Path(checkpoint.path, "state.json").read_text())["epoch"]
    rng = random.Random(f"{config['lr']}-{config['width']}")
    floor = (math.log10(config["lr"]) + 2.5) ** 2 / 4 + 64 / config["width"]
    for epoch in range(start + 1, config["epochs"] + 1):
        time.sleep(config["step_ms"] / 1000)
        loss = floor + 3.0 / epoch + rng.gauss(0, 0.02)
        if epoch % 10 == 0:
            with tempfile.TemporaryDirectory() as d:
                Path(d, "state.json").write_text(json.dumps({"epoch": epoch}))
                tune.report({"loss": loss, "epoch": epoch},
                            checkpoint=tune.Checkpoint.from_directory(d))
        else:
            tune.report({"loss": loss, "epoch": epoch})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20_000, help="number of trials")
    parser.add_argument("--epochs", type=int, default=100, help="max epochs per trial")
    parser.add_argument("--step-ms", type=float, default=5.0, help="work per epoch, in ms")
    parser.add_argument("--time-budget", type=float, default=None,
                        help="stop after this many seconds (run again to continue)")
    parser.add_argument("--storage",
                        default=os.environ.get("FASTASHA_STORAGE_PATH") or "~/fastasha_results",
                        help="where experiments go (default: $FASTASHA_STORAGE_PATH, else "
                             "~/fastasha_results, as for any experiment)")
    parser.add_argument("--name", default="large_sweep", help="the experiment's folder name")
    parser.add_argument("--verbose", type=int, default=1, choices=(0, 1, 2))
    args = parser.parse_args()

    path = Path(args.storage).expanduser() / args.name
    if tune.Tuner.can_restore(path):
        tuner = tune.Tuner.restore(str(path), train)
        print(f"Continuing the experiment in {path} with the settings it started with "
              f"({tuner.tune_config.num_samples} trials); the options given now do not apply")
    else:
        tuner = tune.Tuner(
            train,
            param_space={
                "lr": tune.loguniform(1e-5, 1e-1),
                "width": tune.qrandint(16, 512, 16),
                "epochs": args.epochs,
                "step_ms": args.step_ms,
            },
            tune_config=tune.TuneConfig(
                metric="loss", mode="min", num_samples=args.trials,
                scheduler=AsyncHyperBandScheduler(grace_period=5, max_t=args.epochs),
                time_budget_s=args.time_budget, seed=0,
            ),
            run_config=tune.RunConfig(
                name=args.name, storage_path=str(path.parent), verbose=args.verbose,
                checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
                failure_config=tune.FailureConfig(max_failures=2),
            ),
        )
    try:
        grid = tuner.fit()
    except KeyboardInterrupt:        # Ctrl-C: everything reported so far is saved
        print("Interrupted: run the same command again to continue.", flush=True)
        sys.exit(130)                # the shell's code for a SIGINT

    counts: dict[str, int] = {}
    for result in grid:
        counts[result.status] = counts.get(result.status, 0) + 1
    print(f"Trials: {len(grid)} ({', '.join(f'{n} {s}' for s, n in sorted(counts.items()))})")
    if counts.get("TERMINATED"):
        best = grid.get_best_result()
        print(f"Best loss {best.metrics['loss']:.4f} after {best.metrics['epoch']} epochs, "
              f"config {best.config}")
    if len(grid) < tuner.tune_config.num_samples or counts.get("PENDING") or counts.get("RUNNING"):
        print("Not finished: run the same command again to continue.")
    print(f"Results: tune.ResultGrid.from_path({str(path)!r}).get_dataframe()")


if __name__ == "__main__":
    main()
