"""Ray Tune's resource requests: ``tune.PlacementGroupFactory`` and ``"memory"``.

What Ray 2.60 does was checked by running it: a PlacementGroupFactory drops
zero amounts and an empty first bundle (``head_bundle_is_empty``), sums its
bundles in ``required_resources``, compares by bundles, strategy and the
further ``placement_group()`` arguments, and is what
``tune.get_context().get_trial_resources()`` returns in a trial (a dict
request ``{"cpu": 1}`` reads there as the bundle ``[{"CPU": 1.0}]``).

The sweeps reuse the helpers of ``tests/test_resources.py``: each trial
records the wall-clock interval it ran in, and the largest number of
overlapping intervals is the number of trials that ran at once; the first
trials wait (up to a deadline) until the expected number has started, so
that a late worker process still counts. Memory is declared, so the tests
do not depend on this machine's.
"""

from __future__ import annotations

import pickle
import time

import joblib
import pytest
from test_resources import (
    finished_metrics,
    fit,
    intervals,
    max_overlap,
    record,
    wait_for_others,
)

from fastasha import tune
from fastasha._resources import detect_memory

PGF = tune.PlacementGroupFactory
GB = 1e9


# ---------------------------------------------------------------- objectives

def report_resources(config):
    """Report what get_trial_resources() answers, the interval the trial ran in."""
    start = time.time()
    if config.get("meet"):
        wait_for_others(config["meet"], config["expected"])
    time.sleep(0.2)
    res = tune.get_context().get_trial_resources()
    expected = PGF(config["bundles"], config.get("strategy", "PACK")) \
        if config.get("bundles") else None
    tune.report({
        "start": start,
        "end": time.time(),
        "is_pgf": isinstance(res, tune.PlacementGroupFactory),
        "required": res.required_resources,
        "bundles": res.bundles,
        "strategy": res.strategy,
        "head_empty": res.head_bundle_is_empty,
        "head_cpus": res.head_cpus,
        "equals_expected": expected is not None and res == expected and expected == res,
        "as_dict": dict(res),
        "cpu_key": res["cpu"],
    })


def two_bundles_for_even_trials(config):
    if config["i"] % 2 == 0:
        return PGF([{"CPU": 1}, {"CPU": 1, "memory": GB}])
    return {"cpu": 1}


def memory_by_function(config):
    return {"cpu": 1, "memory": 2 * GB}


def pgf_with_memory_by_function(config):
    return PGF([{"CPU": 1, "memory": GB}, {"memory": GB}], strategy="SPREAD")


def too_many_gpus_for_trial_one(config):
    return PGF([{"GPU": 1}, {"GPU": 0.5}]) if config["i"] == 1 else PGF([{"CPU": 1}])


# ------------------------------------------------- PlacementGroupFactory itself

@pytest.mark.parametrize("bundles, required, kept, head_empty, head_cpus", [
    ([{"CPU": 1, "GPU": 0.5}, {"CPU": 2}, {"CPU": 2}],
     {"CPU": 5.0, "GPU": 0.5}, [{"CPU": 1.0, "GPU": 0.5}, {"CPU": 2.0}, {"CPU": 2.0}], False, 1.0),
    ([{}, {"CPU": 2}, {"CPU": 2}], {"CPU": 4.0}, [{"CPU": 2.0}, {"CPU": 2.0}], True, 0.0),
    ([{"CPU": 0, "GPU": 0}, {"CPU": 3}], {"CPU": 3.0}, [{"CPU": 3.0}], True, 0.0),
    ([{"cpu": 1, "gpu": 1, "memory": 2e9}], {"CPU": 1.0, "GPU": 1.0, "memory": 2e9},
     [{"CPU": 1.0, "GPU": 1.0, "memory": 2e9}], False, 1.0),
    ([{"CPU": 1, "GPU": 0}, {"memory": GB}, {"memory": GB}], {"CPU": 1.0, "memory": 2e9},
     [{"CPU": 1.0}, {"memory": GB}, {"memory": GB}], False, 1.0),
    ([{"CPU": 1}, {}], {"CPU": 1.0}, [{"CPU": 1.0}, {}], False, 1.0),   # only the head is dropped
    ([{"CPU": 0}, {"GPU": 0}], {}, [{}], True, 0.0),    # accepted by Ray too: asks for nothing
])
def test_pgf_sums_its_bundles_in_ray_spelling(bundles, required, kept, head_empty, head_cpus):
    pgf = PGF(bundles)
    assert pgf.required_resources == required
    assert pgf.bundles == kept
    assert pgf.head_bundle_is_empty is head_empty
    assert pgf.head_cpus == head_cpus
    assert pgf.strategy == "PACK"
    pgf.bundles[0]["CPU"] = 99          # a copy, as in Ray
    assert pgf.bundles == kept


@pytest.mark.parametrize("strategy", ["PACK", "SPREAD", "STRICT_PACK", "STRICT_SPREAD"])
def test_pgf_keeps_each_of_rays_strategies(strategy):
    assert PGF([{"CPU": 1}], strategy).strategy == strategy
    assert PGF([{"CPU": 1}], strategy=strategy).strategy == strategy


def test_pgf_equality_and_hash_follow_rays():
    a = PGF([{"CPU": 1, "GPU": 0.5}, {"CPU": 2}])
    same = PGF([{"CPU": 1.0, "GPU": 0.5, "memory": 0}, {"cpu": 2}], strategy="PACK")
    assert a == same and hash(a) == hash(same)
    assert len({a, same}) == 1
    assert a != PGF([{"CPU": 1, "GPU": 0.5}, {"CPU": 2}], strategy="SPREAD")
    assert a != PGF([{"CPU": 2}, {"CPU": 1, "GPU": 0.5}])        # bundle order counts
    assert PGF([{"CPU": 1}]) != PGF([{}, {"CPU": 1}])            # so does an empty head
    # further placement_group() arguments: bound by name, as in Ray
    assert PGF([{"CPU": 1}], "PACK", "pg") == PGF([{"CPU": 1}], "PACK", name="pg")
    assert PGF([{"CPU": 1}], "PACK", name="pg") != PGF([{"CPU": 1}])
    assert a != {"CPU": 3.0, "GPU": 0.5} and a != "PACK"


def test_pgf_repr_makes_an_equal_object_and_it_pickles():
    for pgf in (PGF([{}, {"CPU": 2, "memory": GB}], strategy="STRICT_SPREAD"),
                PGF([{"CPU": 1}], "PACK", name="x", lifetime="detached")):
        again = eval(repr(pgf), {"PlacementGroupFactory": PGF})
        assert again == pgf and repr(again) == repr(pgf)
        assert pickle.loads(pickle.dumps(pgf)) == pgf
    assert repr(PGF([{"CPU": 1}])) == "PlacementGroupFactory([{'CPU': 1.0}], strategy='PACK')"


@pytest.mark.parametrize("args, kwargs, error, match", [
    (([],), {}, ValueError, r"needs at least one bundle, got \[\]"),
    (([{}],), {}, ValueError, r"whose only bundle asks for nothing \(\[\{\}\]\) is refused, as in Ray"),
    (({"CPU": 1},), {}, TypeError, r"bundles must be a list of dicts like"),
    (("CPU",), {}, TypeError, r"bundles must be a list of dicts"),
    (([{"CPU": 1}, 2],), {}, TypeError, r"bundle 1 must be a dict like .* got 2 of type int"),
    (([{"CPU": 1, "custom_resource": 2}],), {}, ValueError,
     (r"unknown resource 'custom_resource' in bundle 0 .*fastasha schedules 'cpu', 'gpu' and "
      r"'memory' \(bytes\) only")),
    (([{"CPU": 1}, {"GPU": -1}],), {}, ValueError, r"resource 'GPU' must not be negative, got -1"),
    (([{"CPU": "1"}],), {}, TypeError, r"resource 'CPU' must be a finite number, got '1'"),
    (([{"memory": float("inf")}],), {}, TypeError, r"resource 'memory' must be a finite number"),
    (([{"CPU": 1, "cpu": 2}],), {}, ValueError, r"resource 'cpu' is given twice in bundle 0"),
    (([{"CPU": 1}], "pack"), {}, ValueError,
     r"strategy must be one of 'PACK', 'SPREAD', 'STRICT_PACK', 'STRICT_SPREAD', got 'pack'"),
    (([{"CPU": 1}],), {"strategy": None}, ValueError, r"strategy must be one of .* got None"),
    (([{"CPU": 1}],), {"no_such": 1}, TypeError,
     r"unexpected argument 'no_such'; Ray's placement_group\(\) takes name, lifetime"),
    (([{"CPU": 1}], "PACK", "a", None, None, None, None, "extra"), {}, TypeError,
     r"takes at most 7 positional arguments"),
    (([{"CPU": 1}], "PACK", "a"), {"name": "b"}, TypeError, r"two values for 'name'"),
])
def test_pgf_rejects_what_cannot_be_scheduled(args, kwargs, error, match):
    with pytest.raises(error, match=match):
        PGF(*args, **kwargs)


def test_pgf_is_where_ray_users_import_it():
    from fastasha.tune import PlacementGroupFactory

    assert PlacementGroupFactory is tune.PlacementGroupFactory
    assert "PlacementGroupFactory" in tune.__all__


# ------------------------------------------------------- with_resources

def test_with_resources_takes_a_pgf_and_asks_for_its_sum():
    wrapped = tune.with_resources(record, PGF([{"CPU": 1, "GPU": 0.5}, {"CPU": 2, "memory": GB}]))
    request = wrapped.request_for({"i": 0})
    assert (request.cpu, request.gpu, request.memory) == (3.0, 0.5, GB)


@pytest.mark.parametrize("resources, match", [
    (PGF([{"GPU": 1}, {"GPU": 0.5}]),
     r"fractional GPU request must be at most 1, got gpu=1.5 \(the sum of the bundles"),
    ({"cpu": 1, "memory": -5}, r"resource 'memory' must not be negative, got -5"),
])
def test_with_resources_refuses_a_sum_one_process_cannot_hold(resources, match):
    with pytest.raises(ValueError, match=match):
        tune.with_resources(record, resources)


def test_pgf_trials_pack_by_their_sum_and_see_their_pgf(tmp_path):
    """Two bundles of 1 CPU are 2 CPUs: on 4 declared CPUs, 2 trials at once."""
    bundles = [{"CPU": 1}, {"CPU": 1}]
    grid = fit(tune.with_resources(record, PGF(bundles, strategy="STRICT_SPREAD")), 5,
               {"cpu": 4}, meet=(tmp_path / "meet", 2))
    metrics = finished_metrics(grid)
    assert max_overlap(intervals(metrics)) == 2
    assert {m["OMP_NUM_THREADS"] for m in metrics} == {"2"}     # the trial's sum of CPUs
    assert {m["context_cpu"] for m in metrics} == {2.0}


def test_get_trial_resources_is_the_trials_pgf():
    """In a trial process (loky), as in Ray: the PGF asked for; still readable as a dict."""
    bundles = [{}, {"CPU": 1, "memory": GB}, {"CPU": 0.5}]
    trainable = tune.with_resources(report_resources, PGF(bundles, strategy="SPREAD"))
    grid = tune.Tuner(trainable, param_space={"bundles": bundles, "strategy": "SPREAD"},
                      run_config=tune.RunConfig(verbose=0),
                      resources={"cpu": 2, "memory": 4 * GB}).fit()
    (m,) = finished_metrics(grid)
    assert m["is_pgf"] and m["equals_expected"]
    assert m["required"] == {"CPU": 1.5, "memory": GB}
    assert m["bundles"] == [{"CPU": 1.0, "memory": GB}, {"CPU": 0.5}]
    assert (m["strategy"], m["head_empty"], m["head_cpus"]) == ("SPREAD", True, 0.0)
    assert m["as_dict"] == {"cpu": 1.5, "gpu": 0.0, "memory": GB}
    assert m["cpu_key"] == 1.5


def test_get_trial_resources_of_a_dict_request_is_one_bundle():
    """Ray turns ``{"cpu": 1}`` into ``[{"CPU": 1.0}]``; the dict view is fastasha's old answer."""
    grid = fit(tune.with_resources(report_resources, {"cpu": 1, "gpu": 0}), 1, {"cpu": 2})
    (m,) = finished_metrics(grid)
    assert m["is_pgf"]
    assert (m["required"], m["bundles"]) == ({"CPU": 1.0}, [{"CPU": 1.0}])
    assert (m["strategy"], m["head_empty"], m["head_cpus"]) == ("PACK", False, 1.0)
    assert m["as_dict"] == {"cpu": 1.0, "gpu": 0.0}
    assert m["cpu_key"] == 1.0


def test_resource_function_may_return_a_pgf_or_a_dict():
    grid = fit(tune.with_resources(report_resources, two_bundles_for_even_trials), 4,
               {"cpu": 4, "memory": 4 * GB}, backend="threading")
    for r, m in zip(grid, finished_metrics(grid)):
        if r.config["i"] % 2 == 0:
            assert m["required"] == {"CPU": 2.0, "memory": GB}
            assert m["bundles"] == [{"CPU": 1.0}, {"CPU": 1.0, "memory": GB}]
            assert m["as_dict"] == {"cpu": 2.0, "gpu": 0.0, "memory": GB}
        else:
            assert m["bundles"] == [{"CPU": 1.0}]
            assert m["as_dict"] == {"cpu": 1.0, "gpu": 0.0}


def test_resource_function_pgf_that_cannot_run_fails_only_its_trial():
    grid = fit(tune.with_resources(record, too_many_gpus_for_trial_one), 3, {"cpu": 2, "gpu": 2},
               backend="threading")
    assert {r.config["i"]: r.status for r in grid} == {0: "TERMINATED", 1: "ERROR",
                                                      2: "TERMINATED"}
    with pytest.raises(tune.TrialError, match=r"fractional GPU request must be at most 1"):
        raise grid[1].error


def test_callbacks_see_the_trials_placement_group_factory():
    seen = []

    class Seen(tune.Callback):
        def on_trial_start(self, iteration, trials, trial, **info):
            seen.append(trial.placement_group_factory)

    pgf = PGF([{"CPU": 1}, {"memory": GB}])
    with joblib.parallel_config(backend="threading"):
        tune.Tuner(tune.with_resources(record, pgf), param_space={"i": 0},
                   run_config=tune.RunConfig(verbose=0, callbacks=[Seen()]),
                   resources={"cpu": 1, "memory": GB}).fit()
    assert seen == [pgf]
    assert seen[0].required_resources == {"CPU": 1.0, "memory": GB}


# ------------------------------------------------------------------- memory

def test_memory_requests_pack_into_declared_memory(tmp_path):
    """4 CPUs and 4 GB declared, 1 CPU and 2 GB per trial: memory allows 2 at once."""
    grid = fit(tune.with_resources(record, {"cpu": 1, "memory": 2 * GB}), 5,
               {"cpu": 4, "memory": 4 * GB}, meet=(tmp_path / "meet", 2))
    metrics = finished_metrics(grid)
    assert max_overlap(intervals(metrics)) == 2
    assert {m["OMP_NUM_THREADS"] for m in metrics} == {"1"}      # memory does not change the env


@pytest.mark.parametrize("request_fn", [memory_by_function, pgf_with_memory_by_function])
def test_memory_holds_back_trials_beyond_the_slot_count(tmp_path, request_fn):
    """A resource function gives a slot per CPU (4); the pool still lets only 2 run."""
    grid = fit(tune.with_resources(record, request_fn), 5, {"cpu": 4, "memory": 4 * GB},
               backend="threading", meet=(tmp_path / "meet", 2))
    assert max_overlap(intervals(finished_metrics(grid))) == 2


@pytest.mark.parametrize("declared, request_, match", [
    ({"cpu": 4, "memory": 4 * GB}, {"cpu": 1, "memory": 8 * GB},
     (r"a trial asks for 8e\+09 bytes of memory but only 4e\+09 are available; lower the "
      r"request .* resources=\{'cpu': \.\.\., 'gpu': \.\.\., 'memory': \.\.\.\}")),
    ({"cpu": 4, "memory": 4 * GB}, PGF([{"CPU": 1, "memory": 3 * GB}, {"memory": 3 * GB}]),
     r"asks for 6e\+09 bytes of memory but only 4e\+09"),
    ({"cpu": 2}, PGF([{"CPU": 2}, {"CPU": 1}]), r"asks for 3 CPU\(s\) but only 2 are available"),
    ({"cpu": 2}, {"cpu": 1, "memory": 1e30}, r"asks for 1e\+30 bytes of memory"),   # detected
])
def test_request_that_never_fits_fails_before_anything_runs(tmp_path, declared, request_, match):
    with pytest.raises(ValueError, match=match):
        fit(tune.with_resources(record, request_), 2, declared, storage=tmp_path / "root")
    assert not (tmp_path / "root").exists()


@pytest.mark.parametrize("memory", [0, -1, "4GB", True, float("inf"), float("nan")])
def test_bad_declared_memory_fails_before_anything_runs(tmp_path, memory):
    with pytest.raises(ValueError, match=r"resources\['memory'\] must be a number of bytes "
                                         r"greater than 0, got"):
        fit(record, 2, {"cpu": 2, "memory": memory}, storage=tmp_path / "root")
    assert not (tmp_path / "root").exists()


def test_detected_memory_respects_a_smaller_cgroup_v2_limit(tmp_path):
    physical = detect_memory(cgroup_root=str(tmp_path / "none"),
                             proc_cgroup=str(tmp_path / "none"))
    assert 0 < physical < float("inf")
    proc = tmp_path / "cgroup"
    root = tmp_path / "fs"
    (root / "user" / "job").mkdir(parents=True)
    proc.write_text("1:memory:/elsewhere\n0::/user/job\n")

    def detect():
        return detect_memory(cgroup_root=str(root), proc_cgroup=str(proc))

    assert detect() == physical                                    # no memory.max anywhere
    (root / "user" / "job" / "memory.max").write_text("max\n")
    assert detect() == physical                                    # "max": no limit
    (root / "user" / "job" / "memory.max").write_text(f"{int(physical) * 2}\n")
    assert detect() == physical                                    # larger: physical wins
    (root / "user" / "job" / "memory.max").write_text("3000000000\n")
    assert detect() == 3e9
    (root / "user" / "memory.max").write_text("2000000000\n")      # a parent's limit counts
    assert detect() == 2e9
    proc.write_text("4:memory:/user/job\n")                        # cgroup v1 only: not read
    assert detect() == physical


def test_tune_run_takes_a_pgf_as_resources_per_trial():
    with joblib.parallel_config(backend="threading"):
        analysis = tune.run(report_resources, config={"bundles": [{"CPU": 1}, {"CPU": 1}]},
                            resources_per_trial=PGF([{"CPU": 1}, {"CPU": 1}]), verbose=0)
    (trial,) = analysis.trials
    assert trial.last_result["equals_expected"]
    assert trial.last_result["required"] == {"CPU": 2.0}
