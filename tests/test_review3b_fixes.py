"""Fixes from the third review of the day's changes (review3b).

Each test failed before the commit that follows it:

* a ``PlacementGroupFactory`` whose bundles add up to a whole number of
  GPUs or CPUs only up to floating-point rounding (ten bundles of 0.2 GPU)
  was refused as "a fractional GPU request above 1", and its CPUs were
  capped one thread short;
"""

from __future__ import annotations

import os

import pytest

from fastasha import tune

PGF = tune.PlacementGroupFactory


# ------------------------------------------------------------- PGF sums


def report_env(config):
    res = tune.get_context().get_trial_resources()
    tune.report({"cpu": res["cpu"], "gpu": res["gpu"],
                 "cuda": os.environ.get("CUDA_VISIBLE_DEVICES"),
                 "threads": os.environ.get("OMP_NUM_THREADS"),
                 "required_gpu": res.required_resources["GPU"]})


@pytest.mark.parametrize("share, n_bundles", [(0.2, 10), (0.1, 20), (1 / 3, 6), (0.3, 10)])
def test_bundles_that_add_up_to_whole_gpus_run_on_those_gpus(share, n_bundles):
    """Ten workers of 0.2 GPU each ask for 2 GPUs, though 0.2 * 10 is 1.9999999999999998."""
    total = round(share * n_bundles)
    pgf = PGF([{"CPU": share, "GPU": share}] * n_bundles)
    trainable = tune.with_resources(report_env, pgf)
    grid = tune.Tuner(trainable, param_space={},
                      run_config=tune.RunConfig(verbose=0),
                      resources={"cpu": 4, "gpu": [str(g) for g in range(4)]}).fit()
    (result,) = grid
    assert result.status == "TERMINATED", result.error
    m = result.metrics
    assert (m["cpu"], m["gpu"]) == (float(total), float(total))
    assert m["cuda"] == ",".join(str(g) for g in range(total))
    assert m["threads"] == str(total)              # not one short of the CPUs asked for
    # required_resources stays Ray's plain sum
    assert m["required_gpu"] == sum([share] * n_bundles)
