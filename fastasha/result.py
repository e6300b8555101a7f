"""The names of result keys and files, as Ray Tune's ``ray.tune.result`` spells them.

Ray scripts import these constants (``from ray.tune.result import
SHOULD_CHECKPOINT``); ``fastasha.tune.result`` is this module, so such an
import moves over with the rest. Every result fastasha records carries
:data:`TRAINING_ITERATION`, :data:`TIME_THIS_ITER_S`, :data:`TIME_TOTAL_S`,
:data:`TIMESTAMP`, :data:`DATE`, :data:`TRIAL_ID`, :data:`HOSTNAME`,
:data:`PID` and :data:`DONE`; :class:`~fastasha.results.Result` adds
:data:`TIME_SINCE_RESTORE`, :data:`ITERATIONS_SINCE_RESTORE`,
:data:`EXPERIMENT_TAG` and the ``config``. The other keys are names Ray's
documentation and examples give metrics by convention; fastasha does not
fill them in. (Ray also adds ``node_ip``: fastasha does not.)

A class trainable whose ``step()`` returns ``{SHOULD_CHECKPOINT: True, ...}``
is checkpointed with that result, as in Ray. A callback cannot ask for a
checkpoint this way: it sees a copy of the result, after the trial has
moved on.

:data:`DEFAULT_RESULTS_DIR` is where fastasha keeps experiments when
``RunConfig(storage_path=...)`` is not given: ``$FASTASHA_STORAGE_PATH``,
else ``~/fastasha_results`` (Ray's is ``~/ray_results``), as it was when
this module was imported; :func:`default_results_dir` reads it anew.
"""

from __future__ import annotations

import os

from ._fastpath import DEFAULT_METRIC
from .logger import EXPR_PARAM_FILE, EXPR_PARAM_PICKLE_FILE, EXPR_PROGRESS_FILE, EXPR_RESULT_FILE

# filled in for every result
TRAINING_ITERATION = "training_iteration"
TIME_THIS_ITER_S = "time_this_iter_s"
TIME_TOTAL_S = "time_total_s"
TIMESTAMP = "timestamp"
DATE = "date"
TRIAL_ID = "trial_id"
HOSTNAME = "hostname"
PID = "pid"
DONE = "done"
# filled in by Result.metrics and the data frames
TIME_SINCE_RESTORE = "time_since_restore"
ITERATIONS_SINCE_RESTORE = "iterations_since_restore"
EXPERIMENT_TAG = "experiment_tag"
CONFIG_PREFIX = "config"

# a step() result with this key set checkpoints the class trainable
SHOULD_CHECKPOINT = "should_checkpoint"

# names by convention only (and DEFAULT_METRIC, the key of Ray 2.6's tune.report(value))
NODE_IP = "node_ip"
MEAN_LOSS = "mean_loss"
MEAN_ACCURACY = "mean_accuracy"
EPISODE_REWARD_MEAN = "episode_reward_mean"
EPISODES_THIS_ITER = "episodes_this_iter"
EPISODES_TOTAL = "episodes_total"
TIMESTEPS_THIS_ITER = "timesteps_this_iter"
TIMESTEPS_TOTAL = "timesteps_total"

DEFAULT_RESULT_KEYS = (TRAINING_ITERATION, TIME_TOTAL_S, MEAN_ACCURACY, MEAN_LOSS)

STORAGE_ENV = "FASTASHA_STORAGE_PATH"


def default_results_dir() -> str:
    """Where experiments go without ``RunConfig(storage_path=...)``, read now.

    ``$FASTASHA_STORAGE_PATH``, else ``~/fastasha_results``.
    """
    return os.path.expanduser(os.environ.get(STORAGE_ENV) or "~/fastasha_results")


DEFAULT_RESULTS_DIR = default_results_dir()

__all__ = [
    "CONFIG_PREFIX", "DATE", "DEFAULT_METRIC", "DEFAULT_RESULTS_DIR", "DEFAULT_RESULT_KEYS",
    "DONE", "EPISODES_THIS_ITER", "EPISODES_TOTAL", "EPISODE_REWARD_MEAN", "EXPERIMENT_TAG",
    "EXPR_PARAM_FILE", "EXPR_PARAM_PICKLE_FILE", "EXPR_PROGRESS_FILE", "EXPR_RESULT_FILE",
    "HOSTNAME", "ITERATIONS_SINCE_RESTORE", "MEAN_ACCURACY", "MEAN_LOSS", "NODE_IP", "PID",
    "SHOULD_CHECKPOINT", "STORAGE_ENV", "TIMESTAMP", "TIMESTEPS_THIS_ITER", "TIMESTEPS_TOTAL",
    "TIME_SINCE_RESTORE", "TIME_THIS_ITER_S", "TIME_TOTAL_S", "TRAINING_ITERATION", "TRIAL_ID",
    "default_results_dir",
]
