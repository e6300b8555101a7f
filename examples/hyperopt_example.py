#!/usr/bin/env python
"""HyperOpt's TPE proposes the configs, ASHA stops the weak trials early.

The pattern of Ray Tune's ``hyperopt_example.py``, with fastasha: a
:class:`~fastasha.search.hyperopt.HyperOptSearch` wrapped in a
:class:`~fastasha.search.ConcurrencyLimiter` (TPE learns from finished
trials, so it is given few at a time) and an
:class:`~fastasha.schedulers.AsyncHyperBandScheduler`. The objective is the
one of ``async_hyperband_example.py``: a loss that falls with the steps,
faster for a larger ``width``, and rises with ``height``. Two configs
believed good run first (``points_to_evaluate``).

Needs hyperopt: ``pip install -e ".[hyperopt]"`` from the clone.

    python examples/hyperopt_example.py --smoke-test   # a few seconds
    python examples/hyperopt_example.py                # 200 trials, about 25 s on 2 cores

Each run is a new experiment under ~/fastasha_results (or
$FASTASHA_STORAGE_PATH), named after the objective and the time.
"""

import argparse
import time

from fastasha import tune
from fastasha.schedulers import AsyncHyperBandScheduler
from fastasha.search import ConcurrencyLimiter
from fastasha.search.hyperopt import HyperOptSearch


def loss_at(step: int, width: float, height: float) -> float:
    """The loss a model of this ``width`` and ``height`` has after ``step`` steps."""
    time.sleep(0.01)        # stands for a step of training
    return 1.0 / (0.1 + width * step / 100) + 0.1 * height


def easy_objective(config: dict) -> None:
    """Reports the loss after every step; ASHA may stop the trial at any rung."""
    for step in range(config["steps"]):
        loss = loss_at(step, config["width"], config["height"])
        tune.report({"iterations": step, "mean_loss": loss})


def main() -> None:
    parser = argparse.ArgumentParser(description="HyperOpt's TPE with ASHA")
    parser.add_argument("--smoke-test", action="store_true", help="finish in a few seconds")
    args, _ = parser.parse_known_args()

    best_guesses = [
        {"width": 10.0, "height": 0.0, "activation": "relu"},
        {"width": 1.0, "height": 5.0, "activation": "tanh"},
    ]
    searcher = ConcurrencyLimiter(
        HyperOptSearch(points_to_evaluate=best_guesses, random_state_seed=0), max_concurrent=4)
    tuner = tune.Tuner(
        easy_objective,
        tune_config=tune.TuneConfig(
            metric="mean_loss",
            mode="min",
            search_alg=searcher,
            scheduler=AsyncHyperBandScheduler(grace_period=5, max_t=100),
            num_samples=10 if args.smoke_test else 200,
        ),
        run_config=tune.RunConfig(verbose=1),
        param_space={
            "steps": 20 if args.smoke_test else 100,
            "width": tune.uniform(0, 20),
            "height": tune.uniform(-100, 100),
            "activation": tune.choice(["relu", "tanh"]),
        },
    )
    results = tuner.fit()
    print(f"Best hyperparameters found: {results.get_best_result().config}")


if __name__ == "__main__":
    main()
