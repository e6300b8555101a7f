"""What a Ray Tune 2.x user reads from results, as Ray gives it.

* ``Result.best_checkpoints`` in the order of Ray's checkpoint manager
  (``ray/train/_internal/checkpoint_manager.py``): sorted by score, the
  worst first, the ``num_to_keep`` best only (the latest checkpoint, kept
  to resume from, is ``Result.checkpoint``); by time without a score.
* ``checkpoint_dir_name`` (and ``should_checkpoint``) in the results
  callbacks get, as Ray's ``train.report`` sets them on every result.
* Callback states: the experiment keeps those of its latest ``fit()``.

The objectives are module-level functions of this module: loky's workers
import it by name (pytest puts ``tests/`` on ``sys.path``).
"""

from __future__ import annotations

import math
import tempfile
import warnings
from pathlib import Path

import pytest

from fastasha import tune

SCORES = [0.5, 0.9, 0.1, 0.7, 0.3]


def saves_scores(config):
    """Reports ``config["scores"]`` as ``score``, one checkpoint each holding its step."""
    for step, score in enumerate(config["scores"], start=1):
        with tempfile.TemporaryDirectory() as d:
            Path(d, "step").write_text(str(step))
            tune.report({"score": score}, checkpoint=tune.Checkpoint.from_directory(d))


def _fit(tmp_path: Path, scores: list, checkpoint_config: tune.CheckpointConfig,
         callbacks: list | None = None) -> tune.ResultGrid:
    return tune.Tuner(
        saves_scores, param_space={"scores": scores},
        run_config=tune.RunConfig(storage_path=str(tmp_path), name="exp", verbose=0,
                                  checkpoint_config=checkpoint_config, callbacks=callbacks),
    ).fit()


def _steps(pairs) -> list[int]:
    return [int(Path(c.path, "step").read_text()) for c, _ in pairs]


def _on_disk(result) -> list[int]:
    return sorted(int(Path(p, "step").read_text()) for p in Path(result.path).iterdir()
                  if p.name.startswith("checkpoint_"))


# ------------------------------------------------------ 1. best_checkpoints

@pytest.mark.parametrize(("config", "best", "on_disk"), [
    # the 3 best by score, the worst first; the latest (step 5, 0.3) is on disk to
    # resume from, but not among them
    (tune.CheckpointConfig(num_to_keep=3, checkpoint_score_attribute="score",
                           checkpoint_score_order="max"), [1, 4, 2], [1, 2, 4, 5]),
    # "min": the lowest is the best, and comes last; the latest is one of the best
    (tune.CheckpointConfig(num_to_keep=2, checkpoint_score_attribute="score",
                           checkpoint_score_order="min"), [5, 3], [3, 5]),
    # nothing deleted: all of them, still by score
    (tune.CheckpointConfig(checkpoint_score_attribute="score"), [3, 5, 1, 4, 2],
     [1, 2, 3, 4, 5]),
    # no score: the most recent, oldest first
    (tune.CheckpointConfig(num_to_keep=2), [4, 5], [4, 5]),
])
def test_best_checkpoints_come_in_rays_order(tmp_path, config, best, on_disk):
    grid = _fit(tmp_path, SCORES, config)
    path = grid.experiment_path
    results = [grid[0], tune.ResultGrid.from_path(path)[0],
               tune.Result.from_path(grid[0].path),
               tune.Tuner.restore(path, saves_scores).get_results()[0]]
    for result in results:
        pairs = result.best_checkpoints
        assert _steps(pairs) == best
        # each with the result it was saved with
        assert [m["score"] for _, m in pairs] == [SCORES[s - 1] for s in best]
        assert [m["training_iteration"] for _, m in pairs] == best
        assert int(Path(result.checkpoint.path, "step").read_text()) == 5
    assert _on_disk(grid[0]) == on_disk


def test_nan_scores_rank_lowest_and_equals_by_when_they_were_saved(tmp_path):
    # Ray ranks a NaN score below -inf, and inserts a checkpoint after those that
    # score the same: equals come in the order they were saved
    scores = [1.0, math.nan, 1.0, math.nan, 0.5]
    config = tune.CheckpointConfig(checkpoint_score_attribute="score")
    grid = _fit(tmp_path, scores, config)
    assert _steps(grid[0].best_checkpoints) == [2, 4, 5, 1, 3]
    assert _steps(tune.ResultGrid.from_path(grid.experiment_path)[0].best_checkpoints) == \
        [2, 4, 5, 1, 3]


def test_get_best_checkpoint_chooses_among_the_best_checkpoints(tmp_path):
    config = tune.CheckpointConfig(num_to_keep=3, checkpoint_score_attribute="score",
                                   checkpoint_score_order="max")
    result = _fit(tmp_path, SCORES, config)[0]
    # the worst kept by score is step 1 (0.5): the latest, step 5 (0.3), is worse, but
    # it is not among best_checkpoints, as in Ray
    assert int(Path(result.get_best_checkpoint("score", "min").path, "step").read_text()) == 1
    assert int(Path(result.get_best_checkpoint("score", "max").path, "step").read_text()) == 2


# --------------------------------------- 2. checkpoint_dir_name in callbacks

CHECKPOINT_STEPS = (2, 4)


def saves_at_some_steps(config):
    """Four reports; a checkpoint with those of :data:`CHECKPOINT_STEPS`."""
    for step in range(1, 5):
        if step in CHECKPOINT_STEPS:
            with tempfile.TemporaryDirectory() as d:
                Path(d, "step").write_text(str(step))
                tune.report({"loss": 1.0 / step}, checkpoint=tune.Checkpoint.from_directory(d))
        else:
            tune.report({"loss": 1.0 / step})


class Seen(tune.Callback):
    """Records what callbacks see of results."""

    def __init__(self) -> None:
        self.results: list[dict] = []
        self.completed: dict | None = None

    def on_trial_result(self, iteration, trials, trial, result, **info):
        self.results.append(dict(result))
        result["checkpoint_dir_name"] = "edited"      # a copy: changes nothing recorded

    def on_trial_complete(self, iteration, trials, trial, **info):
        self.completed = trial.last_result


def test_callbacks_see_rays_checkpoint_dir_name(tmp_path):
    seen = Seen()
    grid = tune.Tuner(
        saves_at_some_steps,
        run_config=tune.RunConfig(storage_path=str(tmp_path), name="exp", verbose=0,
                                  callbacks=[seen]),
    ).fit()
    result = grid[0]
    names = [r["checkpoint_dir_name"] for r in seen.results]
    assert [r["training_iteration"] for r in seen.results] == [1, 2, 3, 4]
    assert [n is None for n in names] == [s not in CHECKPOINT_STEPS for s in range(1, 5)]
    for step, name, r in zip(range(1, 5), names, seen.results):
        if name is not None:       # the checkpoint's folder in the trial's, saved then
            assert r["should_checkpoint"] is True
            assert Path(result.path, name, "step").read_text() == str(step)
        else:
            assert "should_checkpoint" not in r
    # trial.last_result has it too, and so has Result.metrics: the same name
    assert seen.completed["checkpoint_dir_name"] == names[-1] == \
        result.metrics["checkpoint_dir_name"]
    assert seen.completed["loss"] == 0.25
    # what was recorded is as before: the folders the results read give
    assert [r["checkpoint_dir_name"] for r in result.history()] == names
    assert [r["checkpoint_dir_name"] for r in
            tune.ResultGrid.from_path(grid.experiment_path)[0].history()] == names


# ---------------------------------------------------------- 3. callback states

class Tally(tune.Callback):
    """Counts the results it heard; its state survives a restore."""

    def __init__(self) -> None:
        self.results = 0
        self.at_setup: int | None = None

    def setup(self, stop=None, num_samples=None, total_num_samples=None, **info):
        self.at_setup = self.results

    def on_trial_result(self, iteration, trials, trial, result, **info):
        self.results += 1

    def get_state(self):
        return {"results": self.results}

    def set_state(self, state):
        self.results = state["results"]


class Quiet(tune.Callback):
    """A callback without state."""

    def on_trial_start(self, iteration, trials, trial, **info):
        pass


def reports_twice(config):
    for step in range(2):
        tune.report({"loss": config["x"] + step})


def _tally_tuner(tmp_path: Path, callbacks: list) -> tune.Tuner:
    return tune.Tuner(reports_twice, param_space={"x": tune.grid_search([1, 2])},
                      run_config=tune.RunConfig(storage_path=str(tmp_path), name="cb",
                                                verbose=0, callbacks=callbacks))


@pytest.mark.parametrize("between", [None, [Quiet()]])
def test_a_fit_whose_callbacks_keep_no_state_drops_the_saved_states(tmp_path, between):
    grid = _tally_tuner(tmp_path, [Tally()]).fit()
    path = grid.experiment_path

    kept = Tally()      # a restore with it gets its state back: 2 trials, 2 results each
    tune.Tuner.restore(path, reports_twice, callbacks=[kept]).fit()
    assert kept.at_setup == 4

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")      # (the restore says the run had callbacks)
        tune.Tuner.restore(path, reports_twice, callbacks=between).fit()
    # that fit() gave the state to no callback: it is gone, not given back later
    later = Tally()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tune.Tuner.restore(path, reports_twice, callbacks=[later]).fit()
    assert later.at_setup == 0
    assert not [w for w in caught if "state" in str(w.message)]


def test_a_state_given_to_no_callback_is_dropped_with_a_warning(tmp_path):
    grid = _tally_tuner(tmp_path, [Tally()]).fit()

    class Other(Tally):
        pass

    with pytest.warns(UserWarning, match="Tally at place 0.*drops it from the experiment"):
        tune.Tuner.restore(grid.experiment_path, reports_twice, callbacks=[Other()]).fit()
    # the Other's own state replaced it: a Tally at place 0 gets nothing
    again = Tally()
    with pytest.warns(UserWarning, match="Other at place 0"):
        tune.Tuner.restore(grid.experiment_path, reports_twice, callbacks=[again]).fit()
    assert again.at_setup == 0
