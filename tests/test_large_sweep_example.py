"""examples/large_sweep.py: a large sweep that a second run continues after a crash.

The example is run as a user runs it, in a process of its own; its driver is
SIGKILLed mid-sweep, and the same command run again must restore the
experiment and finish it, losing nothing.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

TESTS_DIR = Path(__file__).resolve().parent
if str(TESTS_DIR) not in sys.path:   # --import-mode=importlib leaves it out
    sys.path.insert(0, str(TESTS_DIR))

from test_faults import descendants, reaper, wait_for_progress, wait_gone  # noqa: E402,F401

from fastasha import tune  # noqa: E402

EXAMPLE = TESTS_DIR.parent / "examples" / "large_sweep.py"


def _finished(db: Path) -> dict[str, int]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return dict(conn.execute("SELECT trial_id, n_failures FROM trials "
                                 "WHERE status = 'TERMINATED'").fetchall())
    finally:
        conn.close()


def test_a_second_run_finishes_the_sweep_its_killed_first_run_began(tmp_path, reaper):
    command = [sys.executable, str(EXAMPLE), "--trials", "300", "--epochs", "20",
               "--step-ms", "2", "--storage", str(tmp_path), "--name", "big", "--verbose", "0"]
    first = reaper.popen(command)
    db = tmp_path / "big" / "experiment.db"
    wait_for_progress(first, db, 40)
    tree = descendants(first.pid)
    reaper.watch(tree)
    os.kill(first.pid, signal.SIGKILL)
    assert first.wait(timeout=10) == -signal.SIGKILL
    assert not wait_gone(tree, timeout=5.0), "processes of the killed run still run"
    before = _finished(db)
    assert 40 <= len(before) < 300

    second = subprocess.run(command, capture_output=True, text=True, timeout=180)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "Continuing the experiment" in second.stdout
    assert "Trials: 300 (300 TERMINATED)" in second.stdout
    assert "Not finished" not in second.stdout

    grid = tune.ResultGrid.from_path(tmp_path / "big")
    assert len(grid) == 300 and grid.num_terminated == 300 and grid.num_errors == 0
    after = {r.trial_id: r for r in grid}
    for trial_id in before:            # finished before the kill: kept as they were
        assert after[trial_id].metrics["epoch"] >= 5
    # ASHA stopped most trials at its first rung; the best ran to the end
    epochs = [r.metrics["epoch"] for r in grid]
    assert epochs.count(20) < 150 and max(epochs) == 20
    assert grid.get_best_result().metrics["epoch"] == 20

    # once finished, a run only prints the summary; options given now do not apply
    third = subprocess.run([*command, "--trials", "500"], capture_output=True, text=True,
                           timeout=120)
    assert third.returncode == 0, third.stderr[-3000:]
    assert "settings it started with (300 trials)" in third.stdout
    assert "Trials: 300 (300 TERMINATED)" in third.stdout
    assert "Not finished" not in third.stdout
