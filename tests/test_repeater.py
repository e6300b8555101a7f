"""Repeater (fastasha/search/repeater.py): Ray Tune's wrapper that repeats each config.

Sweeps run on joblib's default backend (loky), with the objective and the
list searcher of tests/repeater_objectives.py. What the wrapped searcher
heard is read from the list searcher's record, or from Optuna's study
through Optuna's public API. The killed-driver test runs the sweep in a
process of its own (this file, run as a script), SIGKILLs it by PID, and
kills its worker processes by PID too.
"""

from __future__ import annotations

import doctest
import math
import os
import signal
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

TESTS_DIR = Path(__file__).resolve().parent
if str(TESTS_DIR) not in sys.path:   # --import-mode=importlib leaves it out
    sys.path.insert(0, str(TESTS_DIR))

import repeater_objectives as objs  # noqa: E402  (tests/repeater_objectives.py)
import test_faults  # noqa: E402  (the /proc readers of the fault tests)
from repeater_objectives import FromList, indexed, loss_of  # noqa: E402
from searcher_helpers import StopAllAfter  # noqa: E402

import fastasha.search.repeater  # noqa: E402
from fastasha import tune  # noqa: E402
from fastasha.search import ConcurrencyLimiter, Repeater, Searcher  # noqa: E402
from fastasha.search.repeater import TRIAL_INDEX  # noqa: E402

XS = [0.1, 0.2, 0.3]


def _fit(tmp_path, name, search_alg, num_samples, cpu=2, stop=None, **constants):
    return tune.Tuner(
        indexed, param_space=constants,
        tune_config=tune.TuneConfig(metric="loss", mode="min", search_alg=search_alg,
                                    num_samples=num_samples),
        run_config=tune.RunConfig(storage_path=str(tmp_path), name=name, verbose=0, stop=stop),
        resources={"cpu": cpu}).fit()


def _groups(grid, repeat):
    """The grid's trials in groups of ``repeat``, in the order the trials were created."""
    results = sorted(grid, key=lambda r: r.trial_id)
    return [results[i:i + repeat] for i in range(0, len(results), repeat)]


def _mean_loss(group):
    """The mean the searcher must hear: of the trials that ended well with a loss."""
    losses = [r.metrics["loss"] for r in group if r.status == "TERMINATED" and "loss" in r.metrics]
    return sum(losses) / len(losses)


def _check_groups(grid, repeat, searcher, n_groups):
    """Each group ran one config ``repeat`` times, indexed 0..repeat-1; its first trial
    got the config from the searcher, which heard of it once, with the group's mean loss."""
    groups = _groups(grid, repeat)
    assert len(groups) == n_groups and all(len(g) == repeat for g in groups)
    for group in groups:
        assert len({r.config["x"] for r in group}) == 1
        assert [r.config[TRIAL_INDEX] for r in group] == list(range(repeat))
        assert [r.metrics["index"] for r in group] == list(range(repeat))  # the objective saw it
        assert searcher.suggested[group[0].trial_id] == group[0].config["x"]
    assert sorted(searcher.suggested) == sorted(g[0].trial_id for g in groups)
    heard = {trial_id: (result, error) for trial_id, result, error in searcher.heard}
    assert len(heard) == len(searcher.heard) == n_groups        # once per group
    for group in groups:
        result, error = heard[group[0].trial_id]
        assert result == {"loss": pytest.approx(_mean_loss(group))} and error is False


# ------------------------------------------------------------------------ groups

def test_each_config_runs_repeat_times_and_the_searcher_hears_the_mean(tmp_path):
    searcher = FromList(XS)
    grid = _fit(tmp_path, "three", Repeater(searcher, repeat=3), num_samples=9)
    assert [r.status for r in grid] == ["TERMINATED"] * 9
    _check_groups(grid, 3, searcher, n_groups=3)
    for group in _groups(grid, 3):     # the objective's losses: 10 x + index
        x = group[0].config["x"]
        assert [r.metrics["loss"] for r in group] == [loss_of(x, i) for i in range(3)]
    assert searcher.metric == "loss"   # TuneConfig's metric reached the wrapped searcher


def test_repeat_1_passes_every_trial_on(tmp_path):
    searcher = FromList(XS)
    grid = _fit(tmp_path, "one", Repeater(searcher), num_samples=3)
    _check_groups(grid, 1, searcher, n_groups=3)
    assert [r.config[TRIAL_INDEX] for r in grid] == [0, 0, 0]


def test_without_set_index_the_configs_are_the_searchers(tmp_path):
    searcher = FromList(XS)
    grid = _fit(tmp_path, "noindex", Repeater(searcher, repeat=2, set_index=False),
                num_samples=6)
    results = sorted(grid, key=lambda r: r.trial_id)
    assert [r.config for r in results] == [{"x": x} for x in XS for _ in range(2)]
    heard = {trial_id: result for trial_id, result, _ in searcher.heard}
    for first, second in zip(results[::2], results[1::2]):
        assert heard[first.trial_id] == {"loss": loss_of(first.config["x"], 0)}
        assert second.trial_id not in searcher.suggested


def test_the_ray_import_paths_give_the_same_class():
    from fastasha.tune.search import Repeater as ray2
    from fastasha.tune.search.repeater import TRIAL_INDEX as ray_index
    from fastasha.tune.suggest import Repeater as ray1
    from fastasha.tune.suggest.repeater import Repeater as ray1_module

    assert ray2 is ray1 is ray1_module is tune.search.Repeater is Repeater
    assert ray_index == "__trial_index__" and issubclass(Repeater, Searcher)


def test_the_module_examples_run():
    failed, attempted = doctest.testmod(fastasha.search.repeater)
    assert attempted and not failed


# ------------------------------------------------------------------------ errors

def test_failed_trials_are_left_out_of_the_mean(tmp_path):
    # one trial at a time; x=0.1 and 0.2: index 2, the group's last trial to end, fails
    # (after reporting a loss); x=0.3: every trial fails
    searcher = FromList(XS)
    grid = _fit(tmp_path, "errors", Repeater(searcher, repeat=3), num_samples=9, cpu=1,
                fail=[2], fail_x=[0.3])
    groups = _groups(grid, 3)
    assert [[r.status for r in g] for g in groups] == \
        [["TERMINATED", "TERMINATED", "ERROR"]] * 2 + [["ERROR"] * 3]
    assert groups[0][2].metrics["loss"] == loss_of(0.1, 2)    # it reported, then failed
    assert searcher.heard == [       # the mean of indices 0 and 1, not a failure (Ray: error)
        [groups[0][0].trial_id, {"loss": pytest.approx(loss_of(0.1, 0.5))}, False],
        [groups[1][0].trial_id, {"loss": pytest.approx(loss_of(0.2, 0.5))}, False],
        [groups[2][0].trial_id, None, True],      # as the searcher hears of one failed trial
    ]


def test_trials_without_the_metric_are_left_out_of_the_mean(tmp_path):
    # the metric is the searcher's own (a sweep tuned on it would fail such a trial)
    searcher = FromList(XS[:1], metric="loss", mode="min")
    grid = tune.Tuner(indexed, param_space={"drop": [1]},
                      tune_config=tune.TuneConfig(search_alg=Repeater(searcher, 3),
                                                  num_samples=3),
                      run_config=tune.RunConfig(storage_path=str(tmp_path), name="drop",
                                                verbose=0)).fit()
    first = min(r.trial_id for r in grid)
    assert [r.status for r in grid] == ["TERMINATED"] * 3
    assert sorted("loss" in r.metrics for r in grid) == [False, True, True]
    assert searcher.heard == [[first, {"loss": pytest.approx(loss_of(0.1, 1))}, False]]


def test_a_group_without_the_metric_is_heard_with_nan():
    repeater = Repeater(FromList(XS, metric="loss", mode="min"), repeat=2)
    repeater.suggest("a"), repeater.suggest("b")
    repeater.on_trial_complete("a", {"other": 1.0})
    repeater.on_trial_complete("b", None, error=True)
    [(first, result, error)] = repeater.searcher.heard
    assert first == "a" and math.isnan(result["loss"]) and error is False


def test_what_is_no_number_is_left_out_and_each_end_counts_once():
    repeater = Repeater(FromList(XS, metric="loss", mode="min"), repeat=4)
    for trial_id in "abcd":
        repeater.suggest(trial_id)
    repeater.on_trial_complete("a", {"loss": 2.0})
    repeater.on_trial_complete("a", {"loss": 100.0})          # heard already: ignored
    repeater.on_trial_complete("stranger", {"loss": 100.0})   # not suggested: ignored
    repeater.on_trial_complete("b", {"loss": float("nan")})
    repeater.on_trial_complete("c", {"loss": "high"})
    assert repeater.searcher.heard == []
    repeater.on_trial_complete("d", {"loss": 4.0})
    assert repeater.searcher.heard == [["a", {"loss": 3.0}, False]]
    repeater.on_trial_complete("d", {"loss": 4.0})            # its group ended: ignored
    assert len(repeater.searcher.heard) == 1


def test_a_list_of_metrics_is_averaged_metric_by_metric():
    repeater = Repeater(FromList(XS, metric=["loss", "acc"], mode=["min", "max"]), repeat=2)
    repeater.suggest("a"), repeater.suggest("b")
    repeater.on_trial_complete("a", {"loss": 1.0, "acc": 0.5})
    repeater.on_trial_complete("b", {"loss": 3.0})
    assert repeater.searcher.heard == [["a", {"loss": 2.0, "acc": 0.5}, False]]


# ------------------------------------------------------------------ num_samples

def test_a_num_samples_that_is_no_multiple_of_repeat_is_warned_of(tmp_path):
    searcher = FromList(XS)
    with pytest.warns(UserWarning, match=r"num_samples=5 is not a multiple of Repeater\(repeat="
                                         r"2\).*the last 1 trial\(s\).*set num_samples to 4 or 6"):
        grid = _fit(tmp_path, "leftover", Repeater(searcher, repeat=2), num_samples=5)
    assert len(grid) == 5
    first_ids = sorted(r.trial_id for r in grid if r.config[TRIAL_INDEX] == 0)
    assert sorted(searcher.suggested) == first_ids
    # the group of the trial left over never filled: the searcher never hears of it
    assert sorted(h[0] for h in searcher.heard) == first_ids[:2]


def test_finished_from_the_searcher_ends_the_sweep_after_its_last_group(tmp_path):
    searcher = FromList(XS[:2])
    grid = _fit(tmp_path, "finished", Repeater(searcher, repeat=3), num_samples=99)
    _check_groups(grid, 3, searcher, n_groups=2)


# ------------------------------------------------------------- with other wrappers

def _most_at_once(grid):
    """The most trials whose reporting spans (start to last report) overlap."""
    events = sorted([(r.metrics["start"], 1) for r in grid] + [(r.metrics["now"], -1)
                                                               for r in grid])
    running = most = 0
    for _, step in events:
        running += step
        most = max(most, running)
    return most


def test_a_concurrency_limiter_around_it_limits_the_trials(tmp_path):
    searcher = FromList(XS[:2])
    limiter = ConcurrencyLimiter(Repeater(searcher, repeat=3), max_concurrent=2)
    grid = _fit(tmp_path, "outer", limiter, num_samples=6, cpu=4, steps=3, sleep=0.1)
    _check_groups(grid, 3, searcher, n_groups=2)
    assert _most_at_once(grid) <= 2
    assert limiter.get_state()["live_trials"] == set()


@pytest.mark.parametrize("batch", [False, True])
def test_a_concurrency_limiter_inside_limits_the_groups(tmp_path, batch):
    searcher = FromList(XS)
    inner = ConcurrencyLimiter(searcher, max_concurrent=1 if not batch else 2, batch=batch)
    grid = _fit(tmp_path, "inner", Repeater(inner, repeat=2), num_samples=6, cpu=4, steps=2,
                sleep=0.05)
    # every group was passed on: with batch=True, the last batch holds one group (the
    # limiter knows it cannot fill: it hears num_samples as 3 configs)
    _check_groups(grid, 2, searcher, n_groups=3)
    if not batch:       # one group at a time: a group starts once the one before ended
        groups = _groups(grid, 2)
        for before, after in zip(groups, groups[1:]):
            assert min(r.metrics["start"] for r in after) >= \
                max(r.metrics["now"] for r in before)


def test_with_optuna_the_study_gets_one_trial_per_group_with_the_mean(tmp_path):
    optuna = pytest.importorskip("optuna")
    from fastasha.search.optuna import OptunaSearch

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = optuna.storages.InMemoryStorage()
    searcher = OptunaSearch(storage=storage, study_name="s", seed=3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")     # the study takes every group's end
        grid = tune.Tuner(
            indexed, param_space={"x": tune.uniform(0.0, 1.0)},
            tune_config=tune.TuneConfig(metric="loss", mode="min", num_samples=8,
                                        search_alg=Repeater(searcher, repeat=2)),
            run_config=tune.RunConfig(storage_path=str(tmp_path), name="optuna",
                                      verbose=0)).fit()
    groups = _groups(grid, 2)
    study = optuna.load_study(study_name="s", storage=storage)
    assert len(study.trials) == 4
    for trial, group in zip(study.trials, groups):
        assert trial.state == optuna.trial.TrialState.COMPLETE
        assert trial.params["x"] == group[0].config["x"] == group[1].config["x"]
        assert [r.config[TRIAL_INDEX] for r in group] == [0, 1]
        assert trial.value == pytest.approx(_mean_loss(group))


def test_with_hyperopt_each_group_is_one_evaluation(tmp_path):
    pytest.importorskip("hyperopt")
    from fastasha.search.hyperopt import HyperOptSearch

    class Heard(HyperOptSearch):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.heard = []

        def on_trial_complete(self, trial_id, result=None, error=False):
            self.heard.append((trial_id, result, error))
            super().on_trial_complete(trial_id, result=result, error=error)

    searcher = Heard(random_state_seed=5, n_initial_points=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")     # HyperOpt takes every group's end
        grid = tune.Tuner(
            indexed, param_space={"x": tune.uniform(0.0, 1.0)},
            tune_config=tune.TuneConfig(metric="loss", mode="min", num_samples=9,
                                        search_alg=Repeater(searcher, repeat=3)),
            run_config=tune.RunConfig(storage_path=str(tmp_path), name="hyperopt",
                                      verbose=0)).fit()
    groups = _groups(grid, 3)
    assert [len({r.config["x"] for r in g}) for g in groups] == [1, 1, 1]
    assert len({g[0].config["x"] for g in groups}) == 3
    assert searcher.heard == [(g[0].trial_id, {"loss": pytest.approx(_mean_loss(g))}, False)
                              for g in groups]


# ----------------------------------------------------------------------- restore

def test_a_stopped_sweep_restored_finishes_its_groups(tmp_path):
    first = FromList(XS)
    half = _fit(tmp_path, "stopped", Repeater(first, repeat=3), num_samples=9, cpu=1,
                stop=StopAllAfter(4))
    assert len(half) in (4, 5)           # stopped inside the second group
    with pytest.raises(ValueError, match=r"Repeater wrapping FromList.*"
                                         r"search_alg=Repeater\(FromList\(\.\.\.\), \.\.\.\)"):
        tune.Tuner.restore(half.experiment_path, indexed)
    fresh = FromList(XS)
    with warnings.catch_warnings():
        warnings.simplefilter("error")   # the same configs again, nothing unsaved
        grid = tune.Tuner.restore(half.experiment_path, indexed,
                                  search_alg=Repeater(fresh, repeat=3)).fit()
    assert fresh.restored
    _check_groups(grid, 3, fresh, n_groups=3)
    assert {r.trial_id: r.config for r in grid if r.trial_id in
            {h.trial_id for h in half}} == {r.trial_id: r.config for r in half}


def test_get_state_and_set_state_carry_the_open_groups_over():
    repeater = Repeater(FromList(XS, metric="loss", mode="min"), repeat=3)
    for trial_id in "abcd":
        repeater.suggest(trial_id)
    repeater.on_trial_complete("a", {"loss": 1.0})
    repeater.on_trial_complete("d", {"loss": 5.0})
    fresh = Repeater(FromList(XS[2:], metric="loss", mode="min"), repeat=3)   # (as restored)
    fresh.set_state(repeater.get_state())
    assert fresh.suggest("e") == {"x": 0.2, TRIAL_INDEX: 1}     # the open group, not a new one
    for trial_id, loss in (("b", 2.0), ("c", 3.0), ("e", 7.0), ("f", 9.0)):
        if trial_id == "f":
            assert fresh.suggest("f") == {"x": 0.2, TRIAL_INDEX: 2}
        fresh.on_trial_complete(trial_id, {"loss": loss})
    assert fresh.searcher.heard == [["a", {"loss": 2.0}, False], ["d", {"loss": 7.0}, False]]
    assert fresh.suggest("g") == {"x": 0.3, TRIAL_INDEX: 0}


def _reap(procs, trees):
    for tree in trees:
        for identity in tree:
            if test_faults._alive(identity):
                try:
                    os.kill(identity[0], signal.SIGKILL)
                except ProcessLookupError:
                    pass
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)
        for pipe in (proc.stdout, proc.stderr):
            pipe.close()


@pytest.fixture
def driver_process():
    """Starts this file as a sweep's driver; kills it and its workers by PID at teardown."""
    procs, trees = [], []

    def start(storage, name, save_s):
        env = dict(os.environ, FASTASHA_SEARCHER_SAVE_S=str(save_s))
        proc = subprocess.Popen([sys.executable, __file__, str(storage), name], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        procs.append(proc)
        return proc

    yield start, trees
    _reap(procs, trees)


def _driver_search_alg(searcher):
    return ConcurrencyLimiter(Repeater(searcher, repeat=3), max_concurrent=2)


@pytest.mark.parametrize("save_s", [1000.0, 0.05], ids=["saved_at_start", "saved_often"])
def test_a_killed_driver_continues_its_groups(tmp_path, driver_process, save_s):
    start, trees = driver_process
    path = tmp_path / "killed"
    proc = start(tmp_path, "killed", save_s)
    test_faults.wait_for_progress(proc, path / "experiment.db", n_finished=2)
    tree = test_faults.descendants(proc.pid)
    trees.append(tree)
    assert tree, "the driver has no worker processes"
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait(timeout=10) == -signal.SIGKILL
    for pid, _ in tree:       # its workers, by PID (the restore must not share the sweep)
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    assert not test_faults.wait_gone(tree, timeout=5.0)

    stored = tune.ResultGrid.from_path(path)
    assert 3 <= len(stored) < 9
    assert any(r.status in ("RUNNING", "PENDING") for r in stored)
    fresh = FromList(XS)
    search_alg = _driver_search_alg(fresh)
    with warnings.catch_warnings():
        warnings.simplefilter("error")   # the same configs again, nothing unsaved
        grid = tune.Tuner.restore(str(path), indexed, search_alg=search_alg).fit()
    assert fresh.restored
    assert [r.status for r in grid] == ["TERMINATED"] * 9
    _check_groups(grid, 3, fresh, n_groups=3)
    assert [r.trial_id for r in grid][:len(stored)] == [r.trial_id for r in stored]
    assert search_alg.get_state()["live_trials"] == set()


# ------------------------------------------------------------------------ refusals

@pytest.mark.parametrize("repeat, error, match", [
    (0, ValueError, r"repeat must be at least 1, got 0; it is the number of trials"),
    (-2, ValueError, "repeat must be at least 1, got -2"),
    (2.0, TypeError, "repeat must be an integer, got 2.0 of type float"),
    ("3", TypeError, "repeat must be an integer, got '3' of type str"),
    (True, TypeError, "repeat must be an integer, got True of type bool"),
])
def test_a_bad_repeat_is_refused(repeat, error, match):
    with pytest.raises(error, match=match):
        Repeater(FromList(XS), repeat=repeat)


def test_what_is_not_a_searcher_instance_is_refused():
    with pytest.raises(TypeError, match=r"needs a searcher instance, got the class FromList; "
                                        r"pass FromList\(\.\.\.\)"):
        Repeater(FromList, repeat=2)
    with pytest.raises(TypeError, match="needs a fastasha.search.Searcher instance, got "
                                        "{'x': 1} of type dict; wrap a searcher"):
        Repeater({"x": 1}, repeat=2)
    with pytest.raises(TypeError, match="set_index must be True or False, got 'yes'"):
        Repeater(FromList(XS), repeat=2, set_index="yes")


def test_a_wrapped_searcher_without_suggest_is_refused_before_the_sweep(tmp_path):
    class NoSuggest(Searcher):
        pass

    for search_alg in (Repeater(NoSuggest(), 2),
                       ConcurrencyLimiter(Repeater(NoSuggest(), 2), max_concurrent=1)):
        with pytest.raises(TypeError, match="search_alg NoSuggest does not define suggest"):
            tune.Tuner(indexed, tune_config=tune.TuneConfig(search_alg=search_alg))


def test_a_suggestion_that_is_no_dict_is_refused():
    class Listy(Searcher):
        def suggest(self, trial_id):
            return [1, 2]

    with pytest.raises(TypeError, match=r"Listy.suggest\('a'\) returned \[1, 2\] of type list; "
                                        "it must return a config dict"):
        Repeater(Listy(), 2).suggest("a")
    repeater = Repeater(FromList(XS), 2)
    repeater.suggest("a")
    with pytest.raises(ValueError, match="trial id 'a' was already suggested a config"):
        repeater.suggest("a")


if __name__ == "__main__":       # the driver of the killed-driver test
    storage, name = sys.argv[1:3]
    tune.Tuner(
        objs.indexed, param_space={"steps": 3, "sleep": 0.1},
        tune_config=tune.TuneConfig(metric="loss", mode="min", num_samples=9,
                                    search_alg=_driver_search_alg(FromList(XS))),
        run_config=tune.RunConfig(storage_path=storage, name=name, verbose=0),
        resources={"cpu": 2}).fit()
