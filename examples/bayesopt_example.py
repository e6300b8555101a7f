#!/usr/bin/env python
"""Bayesian optimisation under ASHA: BayesOptSearch proposes configs, ASHA stops weak trials.

The objective has the shape of examples/async_hyperband_example.py (a loss
that falls with the steps, faster for a larger width, and grows with the
height). BayesOptSearch needs the optional bayesian-optimization package:

    pip install -e ".[bayesopt]"                       # from the clone
    python examples/bayesopt_example.py --smoke-test   # a few seconds
    python examples/bayesopt_example.py                # 60 trials, about 20 s on 2 cores

The best config lies in a corner of the space (the largest width, the
smallest height): once the 10 random trials have ended, the GP's proposals
gather there. Should it propose one config more than ``patience=5``
times, the sweep ends early, as Ray's does.

Each run is a new experiment under ~/fastasha_results (or
$FASTASHA_STORAGE_PATH), named after the objective and the time.
"""

import argparse
import time

from fastasha import tune
from fastasha.schedulers import AsyncHyperBandScheduler
from fastasha.search import ConcurrencyLimiter
from fastasha.search.bayesopt import BayesOptSearch


def loss_at(step: int, width: float, height: float) -> float:
    """The loss after ``step`` steps: falls like 1/step, slope set by the width."""
    return 1.0 / (0.1 + width * step / 100) + height / 10


def easy_objective(config: dict) -> None:
    for step in range(config["steps"]):
        time.sleep(0.01)        # a training step
        tune.report({"iterations": step,
                     "mean_loss": loss_at(step, config["width"], config["height"])})


def main() -> None:
    parser = argparse.ArgumentParser(description="BayesOptSearch with ASHA")
    parser.add_argument("--smoke-test", action="store_true", help="a short run, for testing")
    args, _ = parser.parse_known_args()

    # upper confidence bound: the GP's mean plus kappa standard deviations
    searcher = BayesOptSearch(utility_kwargs={"kind": "ucb", "kappa": 2.5, "xi": 0.0},
                              random_search_steps=4 if args.smoke_test else 10)
    # the GP proposes from the trials ended so far: keep a few running at once
    searcher = ConcurrencyLimiter(searcher, max_concurrent=4)

    tuner = tune.Tuner(
        easy_objective,
        param_space={
            "steps": 100,
            "width": tune.uniform(0, 20),
            "height": tune.uniform(-100, 100),
        },
        tune_config=tune.TuneConfig(
            metric="mean_loss",
            mode="min",
            search_alg=searcher,
            scheduler=AsyncHyperBandScheduler(grace_period=5, max_t=100),
            num_samples=10 if args.smoke_test else 60,
        ),
        run_config=tune.RunConfig(
            stop={"training_iteration": 10 if args.smoke_test else 100},
            verbose=1,
        ),
    )
    results = tuner.fit()
    print(f"Best hyperparameters found: {results.get_best_result().config}")


if __name__ == "__main__":
    main()
