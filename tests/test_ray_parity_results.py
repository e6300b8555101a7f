"""What a Ray Tune 2.x user reads from results, as Ray gives it.

* ``Result.best_checkpoints`` in the order of Ray's checkpoint manager
  (``ray/train/_internal/checkpoint_manager.py``): sorted by score, the
  worst first, the ``num_to_keep`` best only (the latest checkpoint, kept
  to resume from, is ``Result.checkpoint``); by time without a score.

The objectives are module-level functions of this module: loky's workers
import it by name (pytest puts ``tests/`` on ``sys.path``).
"""

from __future__ import annotations

import math
import tempfile
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
