"""Record Ray Tune's MedianStoppingRule decisions into ray_median_cases.json.

Run once, with the interpreter that has Ray installed (not part of the test
suite, which only reads the JSON)::

    /work/venv-bench/bin/python tests/data/record_ray_median.py

Each case drives ``ray.tune.schedulers.MedianStoppingRule`` directly with
stand-in trial objects (a ``trial_id`` and a ``status``) and a stand-in
controller whose ``get_live_trials()`` lists the trials waiting to run
(none, except in the cases marked ``waiting``). The calls are those a Tuner
makes: ``on_trial_add``, ``on_trial_result`` for each result,
``on_trial_complete`` with the last result after a STOP or at a trial's
end, ``on_trial_remove`` for a trial that failed. Hand-written cases cover
ties, NaN and infinities, missing keys and restarts; the others are small
simulated sweeps whose stream depends on Ray's answers (a stopped trial
reports no more). Only Ray's answers are recorded, never its code.
"""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import ray
from ray.tune.schedulers import MedianStoppingRule

OUT = Path(__file__).with_name("ray_median_cases.json")


class StandInTrial:
    def __init__(self, trial_id: str) -> None:
        self.trial_id = trial_id
        self.status = "RUNNING"

    def __repr__(self) -> str:
        return self.trial_id


class StandInController:
    def __init__(self, waiting: bool) -> None:
        self.waiting = [StandInTrial("waiting")] if waiting else []
        for t in self.waiting:
            t.status = "PENDING"

    def get_live_trials(self) -> list:
        return list(self.waiting)


def _enc(x):
    if isinstance(x, float) and not math.isfinite(x):
        return repr(x)          # 'nan', 'inf', '-inf'
    return x


def _enc_result(result: dict) -> dict:
    return {k: _enc(v) for k, v in result.items()}


class Recorder:
    def __init__(self, name: str, params: dict, search_properties=None, waiting=False):
        self.case = {"name": name, "params": params, "search_properties": search_properties,
                     "waiting": waiting, "events": []}
        self.sched = MedianStoppingRule(**params)
        if search_properties is not None:
            ok = self.sched.set_search_properties(*search_properties)
            if not ok:
                raise RuntimeError("set_search_properties refused")
        self.controller = StandInController(waiting)
        self.trials: dict[str, StandInTrial] = {}

    def add(self, trial_id: str) -> None:
        trial = StandInTrial(trial_id)
        self.trials[trial_id] = trial
        self.sched.on_trial_add(self.controller, trial)
        self.case["events"].append(["add", trial_id, None, None])

    def result(self, trial_id: str, result: dict) -> str | None:
        """Feed a result; after a STOP the trial completes with it, as in a Tuner.

        A trial that is no longer running gets no more results (Ray's rule
        asserts that a hard-stopped trial reports no more): None.
        """
        trial = self.trials[trial_id]
        if trial.status != "RUNNING":
            return None
        decision = self.sched.on_trial_result(self.controller, trial, dict(result))
        self.case["events"].append(["result", trial_id, _enc_result(result), decision])
        if decision == "STOP":
            self.complete(trial_id, result)
        return decision

    def complete(self, trial_id: str, result: dict) -> None:
        self.sched.on_trial_complete(self.controller, self.trials[trial_id], dict(result))
        self.trials[trial_id].status = "TERMINATED"
        self.case["events"].append(["complete", trial_id, _enc_result(result), None])

    def remove(self, trial_id: str) -> None:
        self.sched.on_trial_remove(self.controller, self.trials[trial_id])
        self.trials[trial_id].status = "ERROR"
        self.case["events"].append(["remove", trial_id, None, None])

    def done(self) -> dict:
        self.case["debug_string"] = self.sched.debug_string()
        return self.case


def hand_cases() -> list[dict]:
    cases = []
    T, M = "training_iteration", "m"

    # four trials in lock step, min mode: the worst is stopped once two others
    # have running means
    r = Recorder("lockstep_min", {"time_attr": T, "metric": M, "mode": "min",
                                  "grace_period": 2, "min_samples_required": 2})
    curves = {"a": [5.0, 4.0, 3.0, 2.0], "b": [6.0, 5.0, 4.5, 4.0],
              "c": [9.0, 8.0, 7.5, 7.0], "d": [4.0, 3.5, 3.2, 3.0]}
    for tid in curves:
        r.add(tid)
    alive = set(curves)
    for i in range(4):
        for tid, curve in curves.items():
            if tid in alive and r.result(tid, {T: i + 1, M: curve[i]}) == "STOP":
                alive.discard(tid)
    for tid in sorted(alive):
        r.complete(tid, {T: 4, M: curves[tid][3], "done": True})
    cases.append(r.done())

    # the same in max mode (negated curves), with min_samples_required=3: the
    # worst trial reports last at each step, so it sees three others
    r = Recorder("lockstep_max", {"time_attr": T, "metric": M, "mode": "max",
                                  "grace_period": 1, "min_samples_required": 3})
    for tid in "dabc":
        r.add(tid)
    alive = set(curves)
    for i in range(4):
        for tid in "dabc":
            curve = curves[tid]
            if tid in alive and r.result(tid, {T: i + 1, M: -curve[i]}) == "STOP":
                alive.discard(tid)
    cases.append(r.done())

    # ties: a best result equal to the median continues, a worse one stops
    for mode, sign in (("min", 1.0), ("max", -1.0)):
        r = Recorder(f"ties_{mode}", {"time_attr": T, "metric": M, "mode": mode,
                                      "grace_period": 1, "min_samples_required": 2})
        for tid in "abcde":
            r.add(tid)
        for tid, v in (("a", 1.0), ("b", 3.0)):
            r.result(tid, {T: 1, M: sign * v})
            r.result(tid, {T: 2, M: sign * v})
        r.result("c", {T: 1, M: sign * 2.0})        # median of a and b: 2.0, equal
        r.result("d", {T: 1, M: sign * 2.0000000000000004})
        r.result("e", {T: 1, M: sign * 1.9999999999999998})
        r.result("c", {T: 2, M: sign * 5.0})        # its best is still 2.0
        cases.append(r.done())

    # NaN and infinities: non-finite running means are left out of the median;
    # a NaN first result is kept as the best by Python's min/max
    r = Recorder("nan_inf", {"time_attr": T, "metric": M, "mode": "min",
                             "grace_period": 1, "min_samples_required": 1})
    for tid in "abcdef":
        r.add(tid)
    nan, inf = math.nan, math.inf
    r.result("a", {T: 1, M: 1.0})
    r.result("a", {T: 2, M: inf})                   # a's running mean at 2: inf
    r.result("b", {T: 1, M: nan})                   # compared with a's 1.0
    r.result("b", {T: 2, M: 0.5})                   # a's mean inf is left out
    r.result("c", {T: 1, M: 2.0})
    r.result("c", {T: 2, M: 0.1})
    r.result("d", {T: 1, M: -inf})
    r.result("d", {T: 2, M: 3.0})
    r.result("e", {T: 1, M: 0.2})
    r.result("e", {T: 2, M: nan})
    r.result("e", {T: 3, M: 0.1})
    r.result("f", {T: 2, M: 1.5})
    r.result("f", {T: 3, M: -1.0})
    cases.append(r.done())

    # results without the metric or time_attr are ignored; grace_period 0
    r = Recorder("missing_keys", {"time_attr": T, "metric": M, "mode": "min",
                                  "grace_period": 0, "min_samples_required": 1})
    for tid in "abc":
        r.add(tid)
    r.result("a", {T: 1, M: 1.0})
    r.result("b", {T: 1})
    r.result("b", {M: 9.0})
    r.result("b", {T: 1, M: 2.0})
    r.result("c", {"other": 1.0, T: 2})
    r.result("c", {T: 1, M: 0.5})
    r.result("a", {T: 2, M: 3.0})
    r.complete("a", {T: 2, M: 3.0, "done": True})
    r.result("b", {T: 2, M: 2.5})
    r.result("c", {T: 2, M: 2.9})
    cases.append(r.done())

    # a trial restarted from an earlier point (a restore from a checkpoint):
    # its time goes back, and its older results still count
    r = Recorder("restart", {"time_attr": T, "metric": M, "mode": "min",
                             "grace_period": 1, "min_samples_required": 2})
    for tid in "abcd":
        r.add(tid)
    for i in range(1, 5):
        r.result("a", {T: i, M: 1.0 / i})
        r.result("b", {T: i, M: 2.0 / i})
    r.result("c", {T: 1, M: 1.5})
    r.result("c", {T: 2, M: 1.2})
    r.result("c", {T: 3, M: 1.0})
    r.result("c", {T: 2, M: 0.9})     # back to 2
    r.result("c", {T: 3, M: 0.8})
    r.result("c", {T: 4, M: 0.7})
    r.result("d", {T: 3, M: 0.6})
    r.result("d", {T: 4, M: 0.65})
    r.remove("b")
    r.result("d", {T: 5, M: 0.1})
    r.result("a", {T: 5, M: 0.3})
    cases.append(r.done())

    # only a mode given: the metric is Ray's anonymous "_metric"
    r = Recorder("mode_only", {"time_attr": T, "grace_period": 1, "min_samples_required": 1},
                 search_properties=[None, "max"])
    for tid in "ab":
        r.add(tid)
    r.result("a", {T: 1, "_metric": 1.0})
    r.result("b", {T: 1, "_metric": 0.5})
    r.result("b", {T: 2, "_metric": 2.0})
    cases.append(r.done())

    # with a trial waiting, Ray answers PAUSE (yield the slot) when samples are
    # short, hard_stop or not; fastasha continues instead (it cannot pause)
    r = Recorder("waiting", {"time_attr": T, "metric": M, "mode": "min",
                             "grace_period": 1, "min_samples_required": 2,
                             "min_time_slice": 2}, waiting=True)
    for tid in "abc":
        r.add(tid)
    for i in range(1, 6):
        r.result("a", {T: i, M: 1.0 / i})
    for i in range(1, 6):
        r.result("b", {T: i, M: 3.0 / i})
    for i in range(1, 6):
        r.result("c", {T: i, M: 2.0 / i})
    cases.append(r.done())
    return cases


def simulated_case(name: str, seed: int, params: dict, n_trials: int, n_slots: int,
                   length: tuple[int, int], float_time: bool, nan_rate: float = 0.0,
                   missing_rate: float = 0.0, error_rate: float = 0.0) -> dict:
    """A small sweep: n_slots trials report in turn; Ray's STOP ends a trial."""
    rng = random.Random(seed)
    T, M = params["time_attr"], params["metric"]
    sign = 1.0 if params["mode"] == "min" else -1.0
    r = Recorder(name, params)
    queue = [f"t{i:02d}" for i in range(n_trials)]
    running: dict[str, dict] = {}
    while queue or running:
        while queue and len(running) < n_slots:
            tid = queue.pop(0)
            r.add(tid)
            running[tid] = {"quality": rng.gauss(0.0, 1.0), "n": rng.randint(*length),
                            "i": 0, "t": 0.0, "last": None}
        tid = rng.choice(sorted(running))
        s = running[tid]
        s["i"] += 1
        s["t"] = round(s["t"] + rng.uniform(5.0, 30.0), 3) if float_time else s["i"]
        value = sign * (s["quality"] + 3.0 / s["i"] + rng.gauss(0.0, 0.3))
        value = round(value, rng.choice([1, 2, 6, 17]))   # ties happen
        if rng.random() < nan_rate:
            value = rng.choice([math.nan, math.inf, -math.inf])
        result = {T: s["t"], M: value}
        if T != "training_iteration":
            result["training_iteration"] = s["i"]
        if rng.random() < missing_rate:
            del result[M]
        if rng.random() < error_rate:
            r.remove(tid)
            del running[tid]
            continue
        decision = r.result(tid, result)
        s["last"] = result
        if decision == "STOP":
            del running[tid]
        elif s["i"] >= s["n"]:
            r.complete(tid, dict(result, done=True))
            del running[tid]
    return r.done()


def simulated_cases() -> list[dict]:
    cases = []
    cases.append(simulated_case(
        "sweep_iterations_min", 1,
        {"time_attr": "training_iteration", "metric": "loss", "mode": "min",
         "grace_period": 3, "min_samples_required": 3},
        n_trials=16, n_slots=4, length=(8, 15), float_time=False))
    cases.append(simulated_case(
        "sweep_iterations_max", 2,
        {"time_attr": "training_iteration", "metric": "acc", "mode": "max",
         "grace_period": 1, "min_samples_required": 2},
        n_trials=20, n_slots=6, length=(3, 12), float_time=False,
        nan_rate=0.03, missing_rate=0.05, error_rate=0.01))
    cases.append(simulated_case(
        "sweep_seconds_defaults", 3,
        {"time_attr": "time_total_s", "metric": "loss", "mode": "min"},
        n_trials=12, n_slots=3, length=(5, 20), float_time=True))
    cases.append(simulated_case(
        "sweep_seconds_max", 4,
        {"time_attr": "time_total_s", "metric": "score", "mode": "max",
         "grace_period": 20.0, "min_samples_required": 1},
        n_trials=15, n_slots=5, length=(4, 16), float_time=True,
        nan_rate=0.02, missing_rate=0.02))
    return cases


def main() -> None:
    cases = hand_cases() + simulated_cases()
    data = {
        "format": {
            "produced_by": (
                "tests/data/record_ray_median.py with Ray " + ray.__version__ +
                ": ray.tune.schedulers.MedianStoppingRule driven with stand-in trials "
                "(trial_id, status) and a stand-in controller"),
            "encoding": ("Strict JSON; NaN and infinities in results are the strings "
                         "'nan', 'inf', '-inf'. Integer-valued numbers (no '.') were "
                         "Python ints."),
            "case": ("{name, params: MedianStoppingRule keyword arguments, "
                     "search_properties: [metric, mode] passed to set_search_properties "
                     "or null, waiting: whether get_live_trials() listed a PENDING trial, "
                     "events, debug_string: Ray's debug_string() after the stream}"),
            "events": ("[kind, trial_id, result, decision]: kind 'add' (on_trial_add), "
                       "'result' (on_trial_result; decision is Ray's answer), 'complete' "
                       "(on_trial_complete), 'remove' (on_trial_remove); result is null "
                       "for add and remove, decision null except for results"),
        },
        "cases": cases,
    }
    text = json.dumps(data, indent=1, allow_nan=False)
    OUT.write_text(text + "\n", encoding="utf-8")
    n = sum(len(c["events"]) for c in cases)
    print(f"wrote {OUT} ({len(cases)} cases, {n} events, {len(text)} bytes)")


if __name__ == "__main__":
    main()
