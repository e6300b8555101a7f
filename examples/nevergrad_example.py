#!/usr/bin/env python
"""nevergrad's (1+1) evolution strategy proposes the configs, ASHA stops the weak trials early.

The pattern of Ray Tune's ``nevergrad_example.py``, with fastasha: a
:class:`~fastasha.search.nevergrad.NevergradSearch` with
``ng.optimizers.OnePlusOne`` (each candidate a mutation of the best config
so far), wrapped in a :class:`~fastasha.search.ConcurrencyLimiter` (the
optimizer learns from finished trials, so it is given few at a time), and
an :class:`~fastasha.schedulers.AsyncHyperBandScheduler`. The objective is
the one of ``async_hyperband_example.py``: a loss that falls with the
steps, faster for a larger ``width``, and rises with ``height``. A config
believed good runs first (``points_to_evaluate``).

Needs nevergrad: ``pip install -e ".[nevergrad]"`` from the clone.

    python examples/nevergrad_example.py --smoke-test   # a few seconds
    python examples/nevergrad_example.py                # 100 trials, about 35 s on 2 cores

Each run is a new experiment under ~/fastasha_results (or
$FASTASHA_STORAGE_PATH), named after the objective and the time.
"""

import argparse
import time

from fastasha import tune
from fastasha.schedulers import AsyncHyperBandScheduler
from fastasha.search import ConcurrencyLimiter
from fastasha.search.nevergrad import NevergradSearch, import_nevergrad

# `import nevergrad as ng`, also where bayesian-optimization 2.0 or newer (installed by
# the bayesopt and test extras) makes that import fail
ng = import_nevergrad()


def loss_at(step: int, width: float, height: float) -> float:
    """The loss a model of this ``width`` and ``height`` has after ``step`` steps."""
    return 1.0 / (0.1 + width * step / 100) + 0.1 * height


def easy_objective(config: dict) -> None:
    """Reports the loss after every step; ASHA may stop the trial at any rung."""
    for step in range(config["steps"]):
        time.sleep(0.01)        # stands for a step of training
        tune.report({"iterations": step,
                     "mean_loss": loss_at(step, config["width"], config["height"])})


def main() -> None:
    parser = argparse.ArgumentParser(description="nevergrad's OnePlusOne with ASHA")
    parser.add_argument("--smoke-test", action="store_true", help="finish in a few seconds")
    args, _ = parser.parse_known_args()

    # the space could also be given to the searcher as nevergrad's own:
    # space=ng.p.Dict(width=ng.p.Scalar(lower=0, upper=20),
    #                 height=ng.p.Scalar(lower=-100, upper=100),
    #                 activation=ng.p.Choice(["relu", "tanh"]))
    searcher = NevergradSearch(
        optimizer=ng.optimizers.OnePlusOne,
        points_to_evaluate=[{"width": 10.0, "height": 0.0, "activation": "relu"}],
    )
    searcher = ConcurrencyLimiter(searcher, max_concurrent=4)
    tuner = tune.Tuner(
        easy_objective,
        tune_config=tune.TuneConfig(
            metric="mean_loss",
            mode="min",
            search_alg=searcher,
            scheduler=AsyncHyperBandScheduler(grace_period=5, max_t=100),
            num_samples=10 if args.smoke_test else 100,
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
