"""Defects found reviewing the Ray 1.x-2.5 compatibility changes.

Each test reproduces one defect through the public API.
"""

from __future__ import annotations

import numpy as np

from fastasha import tune


def reports_a_longdouble(config):
    tune.report({"loss": np.longdouble(0.25) * config["x"]})


def test_a_longdouble_metric_is_stored_as_a_float(tmp_path):
    """np.longdouble's item() returns a np.longdouble: the results' JSON encoding
    recursed until the worker process died."""
    grid = tune.Tuner(reports_a_longdouble, param_space={"x": 2},
                      run_config=tune.RunConfig(storage_path=str(tmp_path), verbose=0)).fit()
    (result,) = grid
    assert result.status == "TERMINATED", result.error
    assert result.metrics["loss"] == 0.5 and type(result.metrics["loss"]) is float
    assert list(result.metrics_dataframe["loss"]) == [0.5]
