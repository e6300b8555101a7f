"""Module-level objectives for tests/test_tuner.py.

Worker processes (joblib's loky backend) receive an objective pickled by
reference, module name and function name, and import this module to run it:
pytest puts ``tests/`` on ``sys.path`` and loky passes ``sys.path`` on to its
workers. Keeping the objectives here, away from the test module, means a
worker imports only this small module, not pytest and the tests.

Everything here is deterministic given the config, so a test can compute
what each trial must have reported.
"""

from __future__ import annotations

import os
import time

import numpy as np

from fastasha import tune

# The report sequences of the ResultGrid scope test: each scope of
# get_best_result(metric="score", mode="max") picks a different one.
# 12 reports: "last-10" covers positions 2..11, "last-5" positions 7..11.
SCOPE_SEQUENCES = {
    "last": [0.0] * 11 + [40.0],               # last 40, avg 3.33, l5 8, l10 4, max 40
    "avg": [45.0, 45.0] + [0.0] * 10,          # last 0, avg 7.5, l5 0, l10 0, max 45
    "last-5-avg": [0.0] * 7 + [13.0] * 4 + [0.0],   # l5 10.4, l10 5.2, avg 4.33, max 13
    "last-10-avg": [0.0] * 2 + [12.0] * 5 + [0.0] * 5,   # l10 6, avg 5, l5 0, max 12
    "all": [60.0] + [0.0] * 11,                # max 60, avg 5, others 0
}


def steps(config):
    """``config["n"]`` reports of ``loss = x * step`` (step = 1..n)."""
    for step in range(1, config["n"] + 1):
        tune.report({"loss": config["x"] * step, "step": step})


def sleepy_steps(config):
    """Like :func:`steps`, sleeping ``config["sleep"]`` seconds before each report."""
    for step in range(1, config["n"] + 1):
        time.sleep(config["sleep"])
        tune.report({"loss": config["x"] * step, "step": step})


def bursts(config):
    """``config["n"]`` bursts of 3 quick reports, sleeping ``config["sleep"]`` s after each."""
    for step in range(config["n"]):
        for i in range(3):
            tune.report({"loss": config["x"] * step, "step": 3 * step + i + 1})
        time.sleep(config["sleep"])


def overriding_auto_keys(config):
    """Reports values under the names of automatic fields."""
    for step in range(1, 4):
        tune.report({"loss": float(step), "hostname": "my-host", "pid": -step,
                     "time_total_s": 1000.0 + step})


def asha_loss(config, step):
    """The loss a trial of :func:`asha_objective` reports at ``step`` (1-based)."""
    rng = np.random.default_rng([int(config["seed"]), step])
    return float(config["base"] + 0.5 * rng.random())


def asha_objective(config):
    """Reports ``asha_loss`` for up to 99 steps, trying to swallow every exception.

    A STOP must still end it inside ``report()``: the marker file written
    after the loop must never appear for a stopped trial.
    """
    for step in range(1, 100):
        try:
            tune.report({"loss": asha_loss(config, step)})
        except Exception:   # noqa: BLE001, S110 - on purpose: a STOP must not be swallowed
            pass
    trial_id = tune.get_context().get_trial_id()
    with open(os.path.join(config["marker_dir"], trial_id), "w") as f:
        f.write("code after the loop ran")


def score_steps(config):
    """Reports ``score = step`` (step = 1..n) ``config["n"]`` times."""
    for step in range(1, config["n"] + 1):
        tune.report({"score": float(step)})


def nested_steps(config):
    """Reports ``{"val": {"loss": x / step}, "train": {...}}``, and ``val_acc`` every 3rd step."""
    for step in range(1, config["n"] + 1):
        result = {"val": {"loss": config["x"] / step}, "train": {"loss": 1.0 / step, "step": step}}
        if step % 3 == 0:
            result["val_acc"] = step / config["n"]
        tune.report(result)


def _rebuild_only_in(pid):
    if os.getpid() != pid:
        raise AttributeError("cannot be rebuilt in this process (as a class from the "
                             "driver's __main__ would)")
    return OnlyInDriver()


class OnlyInDriver:
    """A config value that cannot be unpickled in any process but the one that made it."""

    def __reduce__(self):
        return (_rebuild_only_in, (os.getpid(),))


def reports_its_name(config):
    tune.report({"loss": 0.0, "name": str(config["v"])})


class OutOfBudget(Exception):
    """A user's own exception class, with an __init__ of its own."""

    def __init__(self, needed, have):
        super().__init__(f"needed {needed}, have {have}")


def raises_kind(config):
    tune.report({"loss": 1.0})
    kind = config["kind"]
    if kind == "value":
        raise ValueError("bad value")
    if kind == "key":
        raise KeyError("missing")
    if kind == "os":
        raise FileNotFoundError(2, "no such file")
    if kind == "own":
        raise OutOfBudget(3, 1)
    if kind == "chained":
        try:
            raise ValueError("inner")
        except ValueError as err:
            raise RuntimeError("outer") from err


def fails_for(config):
    """Reports twice, then raises for ``x == config["bad"]``."""
    for step in range(1, 4):
        tune.report({"loss": config["x"] * step})
        if step == 2 and config["x"] == config["bad"]:
            raise ValueError(f"boom at x={config['x']}")


def reports_other_key(config):
    """Reports ``acc`` only (a sweep tuned on ``loss`` must fail it)."""
    tune.report({"acc": 0.5})


def scope_sequence(config):
    """Reports ``SCOPE_SEQUENCES[config["name"]]`` as ``score`` (and its negation)."""
    for value in SCOPE_SEQUENCES[config["name"]]:
        tune.report({"score": value, "neg": -value})


def echo_config(config):
    """Reports the config it received under ``seen``."""
    tune.report({"loss": 0.0, "seen": config})


def with_data(config, data, offset):
    """Reports a checksum of a large array passed with ``tune.with_parameters``."""
    tune.report({"total": float(data.sum()) + offset, "n": int(data.size), "x": config["x"]})


def ranks_and_name(config):
    """Reports the context's name and (Ray Train's) ranks."""
    ctx = tune.get_context()
    tune.report({"loss": 0.0, "name": ctx.get_trial_name(),
                 "ranks": [ctx.get_world_rank(), ctx.get_local_rank(), ctx.get_node_rank(),
                           ctx.get_world_size(), ctx.get_local_world_size()]})


def context_reporter(config):
    """Reports what ``tune.get_context()`` says inside the trial."""
    ctx = tune.get_context()
    tune.report({
        "ctx_trial_id": ctx.get_trial_id(),
        "ctx_trial_name": ctx.get_trial_name(),
        "ctx_experiment": ctx.get_experiment_name(),
        "ctx_resources": ctx.get_trial_resources(),
    })


def returns_dict(config):
    """Reports twice, then returns a final result (Ray's function API)."""
    for step in range(1, 3):
        tune.report({"loss": float(step)})
    return {"loss": 99.0, "final": True}


def only_returns(config):
    """Never calls report; returns its only result."""
    return {"loss": config["x"] * 2}


def returns_value(config):
    """Ray's function API: a number returned is the result ``{"_metric": value}``."""
    tune.report({"_metric": 1.0})
    return config["x"] * 3


def yields_results(config):
    """Ray's function API: a generator objective; each yield is a report, falsy ones none."""
    yield {"loss": 3.0}
    yield None
    yield 2.0
    tune.report({"loss": 1.0})
    yield {"loss": 0.5}


def returns_other(config):
    """Returns what Ray's function API refuses (not a dict, not a number)."""
    tune.report({"loss": 1.0})
    return config["what"]


def timed_steps(config):
    """Reports ``t0`` (entry time) and ``t`` (report time) every ``sleep`` seconds."""
    t0 = time.time()
    for _ in range(config["n"]):
        time.sleep(config["sleep"])
        tune.report({"t0": t0, "t": time.time()})


def x_steps(config):
    """Reports ``x`` and ``step`` six times."""
    for step in range(1, 7):
        tune.report({"x": config["x"], "step": step})


def checkpointing(config):
    """Reports ``config["n"]`` times, each with the directory ``config["dir"]`` as checkpoint."""
    for step in range(1, config["n"] + 1):
        tune.report({"loss": float(step)},
                    checkpoint=tune.Checkpoint.from_directory(config["dir"]))


def fails_once(config):
    """Raises on its first attempt (it claims the file ``config["marker"]``), then reports once."""
    try:
        os.close(os.open(config["marker"], os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        tune.report({"loss": 1.0})
        return
    raise RuntimeError("the first attempt fails")


def short_trial(config):
    """A trial of a few milliseconds; the one with ``config["die"]`` kills its own process."""
    if config.get("die"):
        import signal

        os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(config.get("sleep", 0.0))
    for i in range(config.get("reports", 1)):
        tune.report({"loss": config["x"] + i})


def two_cpus(config):
    """A resource request made by a function of the config."""
    return {"cpu": 2}


def explode():
    """Unpickling a :class:`Poison` calls this: the config cannot be rebuilt."""
    raise ValueError("this config cannot be rebuilt here")


class Poison:
    """A config value that pickles fine and fails to unpickle."""

    def __reduce__(self):
        return (explode, ())


def reports_keywords(config):
    """Ray Tune 2.6 and earlier: the metrics as keywords, with a checkpoint on the last."""
    import tempfile

    for step in range(config["steps"]):
        if step == config["steps"] - 1:
            with tempfile.TemporaryDirectory() as d:
                with open(f"{d}/step", "w") as f:
                    f.write(str(step))
                tune.report(loss=1.0 / (step + 1), step=step,
                            checkpoint=tune.Checkpoint.from_directory(d))
        else:
            tune.report(loss=1.0 / (step + 1), step=step)


def reports_dict_and_keywords(config):
    tune.report({"loss": 1.0}, acc=0.5)


def reports_nothing_given(config):
    tune.report()


def saves_each_step(config):
    """A checkpoint with every report; reports its working directory and trial folder."""
    import os
    import tempfile

    checkpoint = tune.get_checkpoint()
    start = 0
    if checkpoint is not None:
        with open(os.path.join(checkpoint.path, "step")) as f:
            start = int(f.read()) + 1
    for step in range(start, config["steps"]):
        with tempfile.TemporaryDirectory() as d:
            with open(os.path.join(d, "step"), "w") as f:
                f.write(str(step))
            tune.report({"loss": float(step), "cwd": os.path.basename(os.getcwd()),
                         "trial_dir": tune.get_context().get_trial_dir()},
                        checkpoint=tune.Checkpoint.from_directory(d))


def saves_then_fails_once(config):
    """saves_each_step, but the first attempt fails after its second step's checkpoint."""
    import os

    marker = os.path.join(config["dir"], f"failed-{config['x']}")
    if not os.path.exists(marker) and tune.get_checkpoint() is None:
        config = dict(config, steps=2)
        saves_each_step(config)
        open(marker, "w").close()
        raise RuntimeError("the first attempt fails")
    saves_each_step(config)


def returns_array(config):
    """Returns what has no truth value (a numpy array of several values)."""
    import numpy as np

    tune.report({"loss": 1.0})
    return np.array([1.0, 2.0])


def reports_cpu_policy(config):
    """Report the Linux CPU scheduling policy of the process the trial runs in, and its pid."""
    tune.report({"policy": os.sched_getscheduler(0), "own_pid": os.getpid()})
