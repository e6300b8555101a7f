"""A sweep run as a driver process of its own, for ``tests/test_faults.py``.

Not a test module (pytest collects ``test_*.py`` only). The fault tests run

    python tests/fault_driver.py fit <storage_path> <name> <verbose>
    python tests/fault_driver.py restore <experiment_path>

and kill or interrupt it by PID; they import it too, for the objective and
the sweep's settings, to restore the experiment in the test process.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time

from fastasha import tune
from fastasha.schedulers import AsyncHyperBandScheduler

NUM_SAMPLES = 12
N_SLOTS = 2
SEED = 7
STEP_S = 0.1
CHECKPOINT_EVERY = 3
SCHEDULER_ARGS = {"metric": "loss", "mode": "min", "max_t": 9, "grace_period": 1,
                  "reduction_factor": 3, "brackets": 2}


def loss_of(x: float, iteration: int) -> float:
    """The objective's loss: deterministic, so a rerun reports the same values."""
    return x * 10.0 / iteration


def objective(config: dict) -> None:
    """Up to ``max_t`` reports, a checkpoint every ``CHECKPOINT_EVERY`` of them."""
    start = 0
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with open(os.path.join(checkpoint.path, "iteration"), encoding="utf-8") as f:
            start = int(f.read())
    for iteration in range(start + 1, SCHEDULER_ARGS["max_t"] + 1):
        time.sleep(STEP_S)
        metrics = {"loss": loss_of(config["x"], iteration), "resumed_from": start}
        if iteration % CHECKPOINT_EVERY == 0:
            with tempfile.TemporaryDirectory() as folder:   # report() copies it
                with open(os.path.join(folder, "iteration"), "w", encoding="utf-8") as f:
                    f.write(str(iteration))
                tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(folder))
        else:
            tune.report(metrics)


def make_tuner(storage_path: str, name: str, verbose: int = 0) -> tune.Tuner:
    return tune.Tuner(
        objective,
        param_space={"x": tune.uniform(0.0, 1.0)},
        tune_config=tune.TuneConfig(num_samples=NUM_SAMPLES, seed=SEED,
                                    scheduler=AsyncHyperBandScheduler(**SCHEDULER_ARGS)),
        run_config=tune.RunConfig(storage_path=storage_path, name=name, verbose=verbose),
        resources={"cpu": N_SLOTS},
    )


def main(argv: list[str]) -> int:
    if len(argv) == 4 and argv[0] == "fit":
        _, storage_path, name, verbose = argv
        grid = make_tuner(storage_path, name, int(verbose)).fit()
    elif len(argv) == 2 and argv[0] == "restore":
        grid = tune.Tuner.restore(argv[1], objective).fit()
    else:
        print("usage: fault_driver.py fit <storage_path> <name> <verbose>\n"
              "       fault_driver.py restore <experiment_path>", file=sys.stderr)
        return 2
    print(f"finished: {len(grid)} trials", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
