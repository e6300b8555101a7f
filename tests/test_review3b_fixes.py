"""Fixes from the third review of the day's changes (review3b).

Each test failed before the commit that follows it:

* a ``PlacementGroupFactory`` whose bundles add up to a whole number of
  GPUs or CPUs only up to floating-point rounding (ten bundles of 0.2 GPU)
  was refused as "a fractional GPU request above 1", and its CPUs were
  capped one thread short;
* a process forked right after ``fit()`` returned (``multiprocessing``'s
  fork context, ``os.fork``), while the experiment file was still being
  closed in the background, inherited the experiment's lock and held it
  for as long as it lived: no restore or overwrite of that experiment,
  in this process or another, until the child ended;
* another process that opened the experiment to write (``Tuner.restore``,
  ``overwrite=True``) while the process whose ``fit()`` had returned was
  still closing the file was told that the experiment was "in use by
  another fastasha run" instead of waiting for the close.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time

import pytest

from fastasha import tune
from fastasha._storage import ExperimentStore

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


# ------------------------------------------------- fork after fit


def three_reports(config):
    for i in range(3):
        tune.report({"loss": config["x"] + i})


@pytest.fixture
def slow_background_close(monkeypatch):
    """A background close that takes 0.5 s (a checkpoint of a large log, a slow disk)."""
    close_now = ExperimentStore._close_now

    def slow(self, closing_key=None):
        if closing_key is not None:
            time.sleep(0.5)
        close_now(self, closing_key)

    monkeypatch.setattr(ExperimentStore, "_close_now", slow)


def _sweep(tmp_path) -> tune.Tuner:
    return tune.Tuner(three_reports, param_space={"x": tune.grid_search([1, 2, 3])},
                      tune_config=tune.TuneConfig(metric="loss", mode="min"),
                      run_config=tune.RunConfig(name="exp", storage_path=str(tmp_path),
                                                verbose=0),
                      resources={"cpu": 2})


def test_a_process_forked_right_after_fit_does_not_hold_the_experiment(
        tmp_path, slow_background_close):
    assert _sweep(tmp_path).fit().num_terminated == 3
    pid = os.fork()          # at once: the file is still being closed
    if pid == 0:
        time.sleep(3)         # a worker of a multiprocessing pool, busy with other work
        os._exit(0)
    try:
        again = tune.Tuner.restore(str(tmp_path / "exp"), three_reports).fit()
        assert again.num_terminated == 3
    finally:
        os.kill(pid, 9)
        os.waitpid(pid, 0)


def test_another_process_waits_for_a_run_that_is_closing_its_file(tmp_path,
                                                                   slow_background_close):
    script = textwrap.dedent(f"""
        from fastasha import tune

        def three_reports(config):
            for i in range(3):
                tune.report({{"loss": config["x"] + i}})

        grid = tune.Tuner.restore({str(tmp_path / "exp")!r}, three_reports).fit()
        print(grid.num_terminated)
    """)
    assert _sweep(tmp_path).fit().num_terminated == 3
    # started at once, while this process still holds the lock to close the file
    other = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    out, err = other.communicate(timeout=120)
    assert other.returncode == 0, err
    assert out.strip() == "3"
