"""Population Based Training of a toy objective whose best learning rate changes.

The shape of Ray Tune's ``pbt_function.py`` example, with fastasha imports:
the objective keeps its state (the "accuracy" it has reached) in a
checkpoint at every step and reads ``tune.get_checkpoint()`` when it
starts, so that a trial PBT pauses resumes where it was, and a trial that
exploits another goes on from that trial's state with a mutated learning
rate. The best learning rate falls as accuracy rises, so a good schedule
of learning rates beats any fixed one.

Run it with ``python examples/pbt_example.py`` (``--smoke-test`` for a
quick run, ``--synch`` for synchronous PBT: the population is ranked as a
whole once every trial has reached the same perturbation point).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile

from fastasha import tune
from fastasha.schedulers import PopulationBasedTraining


def train_toy(config: dict) -> None:
    """Climb towards accuracy 100; the learning rate that works best falls as it rises."""
    accuracy, step = 0.0, 0
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with open(os.path.join(checkpoint.path, "state.json")) as f:
            state = json.load(f)
        accuracy, step = state["accuracy"], state["step"]
    while True:
        step += 1
        lr = config["lr"]
        best_lr = 0.01 * max(0.05, 1.0 - accuracy / 100.0)
        # progress is fastest at the best learning rate; far off it, accuracy falls
        closeness = max(-1.0, 1.0 - abs(lr - best_lr) / best_lr)
        accuracy = min(100.0, max(0.0, accuracy + 5.0 * closeness))
        with tempfile.TemporaryDirectory() as folder:
            with open(os.path.join(folder, "state.json"), "w") as f:
                json.dump({"accuracy": accuracy, "step": step}, f)
            tune.report({"mean_accuracy": accuracy, "cur_lr": lr, "step": step},
                        checkpoint=tune.Checkpoint.from_directory(folder))


def main(smoke_test: bool = False, storage_path: str | None = None,
         synch: bool = False) -> tune.ResultGrid:
    pbt = PopulationBasedTraining(
        time_attr="training_iteration",
        perturbation_interval=4,
        synch=synch,
        hyperparam_mutations={
            # a distribution to resample from, and perturbations of x1.2 and x0.8
            "lr": tune.uniform(0.0001, 0.02),
            # a list: moved to a neighbouring value
            "some_other_factor": [1, 2],
        },
    )
    tuner = tune.Tuner(
        train_toy,
        param_space={"lr": tune.uniform(0.0001, 0.02), "some_other_factor": 1},
        tune_config=tune.TuneConfig(
            scheduler=pbt, metric="mean_accuracy", mode="max",
            num_samples=4 if smoke_test else 8, seed=0,
        ),
        run_config=tune.RunConfig(
            name="pbt_example", storage_path=storage_path,
            stop={"mean_accuracy": 96, "training_iteration": 20 if smoke_test else 100},
            verbose=1,
        ),
    )
    grid = tuner.fit()
    best = grid.get_best_result()
    print(f"best trial {best.metrics['trial_id']}: mean_accuracy "
          f"{best.metrics['mean_accuracy']:.1f} with config {best.config}")
    return grid


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke-test", action="store_true", help="a quick, small run")
    parser.add_argument("--storage-path", default=None, help="where the experiment goes")
    parser.add_argument("--synch", action="store_true",
                        help="synchronous PBT: rank the whole population at each point")
    args = parser.parse_args()
    main(smoke_test=args.smoke_test, storage_path=args.storage_path, synch=args.synch)
