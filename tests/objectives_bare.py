"""An objective whose module imports nothing from fastasha (see tests/test_worker_start.py).

A trial process that finds ``fastasha.tune`` loaded already got it from its
supervisor, which imports it once per worker process before it forks.
"""

from __future__ import annotations

import sys


def note_preloaded(config: dict) -> None:
    preloaded = "fastasha.tune" in sys.modules
    from fastasha import tune

    tune.report({"preloaded": int(preloaded)})
