"""Module-level objective and searcher for tests/test_repeater.py.

Worker processes (joblib's loky backend) import the objective by module and
name; keeping it here means they import this small module, not pytest and
the tests. The searcher lives in the driver only; it is here so that the
killed-driver test's driver process (tests/test_repeater.py run as a script)
and the test that restores its sweep use the same class.
"""

from __future__ import annotations

import json
import time

from fastasha import tune
from fastasha.search import Searcher
from fastasha.search.repeater import TRIAL_INDEX


def loss_of(x: float, index: int) -> float:
    """The loss :func:`indexed` reports: deterministic in the config."""
    return 10.0 * x + index


def indexed(config: dict) -> None:
    """``config.get("steps", 1)`` reports of ``loss_of(x, __trial_index__)``.

    Sleeps ``config.get("sleep", 0)`` s before each report, and reports
    ``start`` (when it began) and ``now``. A trial whose index is in
    ``config["drop"]`` reports no ``loss``; one whose index is in
    ``config["fail"]`` (or whose x is in ``config["fail_x"]``) raises after
    its reports (which do hold a loss).
    """
    index = config.get(TRIAL_INDEX, 0)
    start = time.time()
    for _ in range(config.get("steps", 1)):
        time.sleep(config.get("sleep", 0.0))
        metrics = {"start": start, "now": time.time(), "index": index}
        if index not in config.get("drop", ()):
            metrics["loss"] = loss_of(config["x"], index)
        tune.report(metrics)
    if index in config.get("fail", ()) or config["x"] in config.get("fail_x", ()):
        raise ValueError(f"trial index {index} fails")


class FromList(Searcher):
    """Suggests ``{"x": x}`` for each x of a list, then FINISHED; records what it hears.

    Saves and restores itself as JSON.
    """

    def __init__(self, xs: list, metric: str | list | None = None,
                 mode: str | list | None = None) -> None:
        super().__init__(metric=metric, mode=mode)
        self.remaining = list(xs)
        self.suggested: dict[str, float] = {}     # trial id -> x
        self.heard: list[list] = []               # [trial id, result, error], in order
        self.restored = False

    def suggest(self, trial_id: str) -> dict | str:
        if not self.remaining:
            return Searcher.FINISHED
        x = self.remaining.pop(0)
        self.suggested[trial_id] = x
        return {"x": x}

    def on_trial_complete(self, trial_id: str, result: dict | None = None,
                          error: bool = False) -> None:
        self.heard.append([trial_id, result, error])

    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "w", encoding="utf-8") as f:
            json.dump({"remaining": self.remaining, "suggested": self.suggested,
                       "heard": self.heard}, f)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, encoding="utf-8") as f:
            state = json.load(f)
        self.remaining, self.suggested = state["remaining"], state["suggested"]
        self.heard = state["heard"]
        self.restored = True
