"""Review of the BOHB pair (HyperBandForBOHB, TuneBOHB) against Ray Tune 2.x: one test
per defect found, each a real sweep through the public API (loky workers).

The objective is pause_objectives.stepper: its loss is ``x / step`` and it checkpoints
every step, so a smaller ``x`` is better at every milestone and each halving is known
from the trials' configs.
"""

from __future__ import annotations

import pytest

pytest.importorskip("hpbandster", reason="BOHB needs hpbandster: pip install -e '.[bohb]'")
pytest.importorskip("ConfigSpace")

import pause_objectives as po  # noqa: E402
import review_bohb_objectives as rbo  # noqa: E402

from fastasha import tune  # noqa: E402
from fastasha.schedulers import HyperBandForBOHB, HyperBandScheduler  # noqa: E402
from fastasha.search.bohb import TuneBOHB  # noqa: E402


def _reached(grid):
    """Each trial's last training_iteration, by its x."""
    return {r.config["x"]: r.metrics["training_iteration"] for r in grid}


# ------------------------------------------------- a bracket with fewer trials than it takes

def test_bohb_bracket_with_fewer_trials_than_its_halving_keeps_lets_them_all_go_on(tmp_path):
    # max_t=9, rf=3: the largest bracket takes 9 trials from milestone 1, and its first
    # halving keeps ceil(9 / 3) = 3 of them. With 2 trials (num_samples=2, as a short
    # Ray sweep has) both go on to 3, as in Ray (sorted_trials[-3:] is both); then the
    # best one of them goes on to 9
    grid = tune.Tuner(
        po.stepper, param_space={"x": tune.uniform(1.0, 10.0), "n_steps": 9},
        tune_config=tune.TuneConfig(
            scheduler=HyperBandForBOHB(max_t=9, reduction_factor=3), search_alg=TuneBOHB(seed=0),
            metric="loss", mode="min", num_samples=2, max_concurrent_trials=2),
        run_config=tune.RunConfig(name="few", storage_path=str(tmp_path), verbose=0)).fit()
    assert [r.status for r in grid] == ["TERMINATED"] * 2
    assert [n for _, n in sorted(_reached(grid).items())] == [9, 3]


def test_hyperband_last_bracket_with_fewer_trials_than_its_halving_keeps_lets_all_go_on(
        tmp_path):
    # max_t=9, rf=3: brackets of 3 (run to 9), 5 (from 3) and 9 trials (from 1); 10 trials
    # leave 2 in the last one, whose first halving keeps ceil(9 / 3) = 3: both go on to 3
    xs = [float(i) for i in range(1, 11)]
    grid = tune.Tuner(
        po.stepper, param_space={"x": tune.grid_search(xs), "n_steps": 9},
        tune_config=tune.TuneConfig(
            scheduler=HyperBandScheduler(max_t=9, reduction_factor=3), metric="loss",
            mode="min", max_concurrent_trials=2),
        run_config=tune.RunConfig(name="hb", storage_path=str(tmp_path), verbose=0)).fit()
    reached = _reached(grid)
    assert [r.status for r in grid] == ["TERMINATED"] * 10
    # bracket 2 (x 9 and 10): both reach 3, the better one 9
    assert (reached[9.0], reached[10.0]) == (9, 3)
    # bracket 1 (x 4-8) keeps ceil(5 / 3) = 2 at 3, whose next milestone is max_t
    assert [reached[x] for x in (4.0, 5.0, 6.0, 7.0, 8.0)] == [9, 9, 3, 3, 3]


def test_rays_bohb_example_keeps_its_trials_as_ray_does(tmp_path):
    # Ray's python/ray/tune/examples/bohb_example.py with fastasha's imports (seeded, no
    # sleep, its experiment in tmp_path). max_t=100, rf=4:
    # its 10 trials all go to the largest bracket (64 trials from milestone 1), whose
    # halvings keep 16 (all 10), 4 and 1; with stop_last_trials=False the last one runs on
    # to the stop criterion
    from fastasha import air
    from fastasha.search import ConcurrencyLimiter

    config = {"iterations": 100, "width": tune.uniform(0, 20), "height": tune.uniform(-100, 100),
              "activation": tune.choice(["relu", "tanh"])}
    bohb_hyperband = HyperBandForBOHB(time_attr="training_iteration", max_t=100,
                                      reduction_factor=4, stop_last_trials=False)
    bohb_search = ConcurrencyLimiter(TuneBOHB(seed=0), max_concurrent=4)
    grid = tune.Tuner(
        rbo.SigmoidTrainable,
        run_config=air.RunConfig(name="bohb_test", stop={"training_iteration": 100},
                                 storage_path=str(tmp_path), verbose=0),
        tune_config=tune.TuneConfig(metric="episode_reward_mean", mode="max",
                                    scheduler=bohb_hyperband, search_alg=bohb_search,
                                    num_samples=10),
        param_space=config).fit()
    assert [r.status for r in grid] == ["TERMINATED"] * 10 and grid.num_errors == 0
    reached = sorted(r.metrics["training_iteration"] for r in grid)
    assert reached == [4] * 6 + [16] * 3 + [100]
    curves = {r.metrics["trial_id"]: r.metrics_dataframe for r in grid}
    for frame in curves.values():         # paused trials went on from where they paused
        assert list(frame["training_iteration"]) == list(range(1, len(frame) + 1))

    def best_at(step, trial_ids, n):
        reward = {t: float(curves[t]["episode_reward_mean"].iloc[step - 1]) for t in trial_ids}
        return set(sorted(reward, key=reward.get)[-n:])

    on_to_16 = {t for t, f in curves.items() if len(f) >= 16}
    assert on_to_16 == best_at(4, curves, 4)
    assert {t for t, f in curves.items() if len(f) == 100} == best_at(16, on_to_16, 1)


# ------------------------------------------------------- a metric the results do not have

def test_a_searcher_metric_the_results_lack_is_warned_of_once(tmp_path):
    # TuneBOHB(space, metric="mean_loss") (as in Ray 1.x's bohb_example) while the trials
    # report "loss", which the scheduler ranks: BOHB heard nothing, so that the sweep ran
    # as a random search and said nothing (Ray's TuneBOHB raises KeyError at the first
    # milestone). (With param_space the sweep's metric replaces the searcher's.)
    searcher = TuneBOHB({"x": tune.uniform(1.0, 10.0)}, metric="mean_loss", mode="min", seed=0)
    with pytest.warns(UserWarning, match=r"TuneBOHB heard a result at BOHB's budget 1 whose "
                                         r"metric 'mean_loss' is missing or no number.*Check "
                                         r"the metric's name") as caught:
        grid = tune.Tuner(
            po.stepper, param_space={"n_steps": 4},
            tune_config=tune.TuneConfig(
                scheduler=HyperBandForBOHB(metric="loss", mode="min", max_t=4,
                                           reduction_factor=2),
                search_alg=searcher, num_samples=4, max_concurrent_trials=1),
            run_config=tune.RunConfig(name="metric", storage_path=str(tmp_path),
                                      verbose=0)).fit()
    assert [r.status for r in grid] == ["TERMINATED"] * 4
    assert len([w for w in caught if "mean_loss" in str(w.message)]) == 1
    assert not searcher.bohber.losses


# ------------------------------------------------------------- a restore after a kill


def test_a_sweep_restored_after_the_driver_was_killed_counts_its_paused_trials_as_paused(
        tmp_path):
    # TuneBOHB(max_concurrent=2) on one slot: x=1 and x=2 pause at milestone 1 of the
    # largest bracket (4 trials), x=3 is running when the driver is killed. The searcher's
    # saved state is from before any pause, so the restored one counts x=1 and x=2 as
    # running: unless it hears they are paused, it suggests no 4th trial, and the bracket
    # halves with 3 trials when nothing runs
    marker = tmp_path / "held"
    po.kill_when(rbo.__file__, [tmp_path, "killed", marker], lambda: marker.exists() and
                 po.statuses(tmp_path / "killed") == ["PAUSED", "PAUSED", "RUNNING"],
                 "two trials paused and the third running", timeout=60)
    grid = tune.Tuner.restore(str(tmp_path / "killed"), rbo.holding_stepper,
                              search_alg=rbo.searcher(), scheduler=rbo.scheduler()).fit()
    results = sorted(grid, key=lambda r: r.metrics["trial_id"])
    assert [r.status for r in results] == ["TERMINATED"] * 10 and grid.num_errors == 0
    assert [r.config["x"] for r in results[:4]] == [1.0, 2.0, 3.0, 4.0]
    # Ray's BOHB brackets, largest first: 4 trials from milestone 1 (halved to 2, then 1),
    # 3 from 2 (halved to 2), 3 run to 4
    for bracket, expected in ((results[:4], [4, 2, 1, 1]), (results[4:7], [4, 4, 2]),
                              (results[7:], [4, 4, 4])):
        by_x = sorted(bracket, key=lambda r: r.config["x"])
        assert [r.metrics["training_iteration"] for r in by_x] == expected


# ------------------------------------------------------------------- max_t below 1

@pytest.mark.parametrize("cls", [HyperBandForBOHB, HyperBandScheduler])
@pytest.mark.parametrize("max_t", [0.9, 0.2])
def test_a_max_t_below_one_is_refused_with_what_to_do(cls, max_t):
    # every bracket's first milestone, int(max_t / rf**s), would be 0: the first trial's
    # on_trial_add looked for a bracket for ever (0.9), or failed with ZeroDivisionError
    # (BOHB) or OverflowError (HyperBand) after a while (0.2)
    with pytest.raises(ValueError, match=rf"max_t must be at least 1, got {max_t}: .*"
                                         "time_attr"):
        cls(metric="loss", mode="min", max_t=max_t)
