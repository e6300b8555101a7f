"""Defects found running fastasha at scale, as a user running a big sweep would;
each test failed before its fix.

Sweeps run in driver processes of their own (a script written to ``tmp_path``),
some on a pseudo-terminal, some killed or interrupted by PID; every process a
test starts is killed by PID at teardown if it is still alive. The sizes are
scaled down to keep the file under 30 s; the full-size runs are described in
the report each test names.
"""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys
import textwrap
import time
from pathlib import Path

TESTS_DIR = Path(__file__).resolve().parent
if str(TESTS_DIR) not in sys.path:   # --import-mode=importlib leaves it out
    sys.path.insert(0, str(TESTS_DIR))

from test_faults import descendants, reaper, wait_gone  # noqa: E402,F401

REPO = TESTS_DIR.parent
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")

# A sweep of quick trials: argv = storage, n trials, verbose
QUICK_SWEEP = textwrap.dedent("""
    import sys
    from fastasha import tune
    from fastasha.schedulers import AsyncHyperBandScheduler

    def objective(config):
        for i in range(4):
            tune.report({"loss": config["x"] + 1.0 / (i + 1)})

    storage, n, verbose = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    tune.Tuner(
        objective, param_space={"x": tune.uniform(0, 1)},
        tune_config=tune.TuneConfig(
            num_samples=n, metric="loss", mode="min", seed=1,
            scheduler=AsyncHyperBandScheduler(grace_period=1, max_t=4, reduction_factor=4)),
        run_config=tune.RunConfig(name="quick", storage_path=storage, verbose=verbose),
    ).fit()
""")


def _env() -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p))
    env.pop("FASTASHA_OVERWRITE", None)
    return env


def _run_on_pty(args: list[str], env: dict[str, str], reaper, timeout: float) -> str:
    """Run ``args`` with a pseudo-terminal as its standard output; what it wrote, decoded."""
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave,
                                env=env, cwd=str(REPO), start_new_session=True)
    finally:
        os.close(slave)
    reaper.watch([(proc.pid, _start_time(proc.pid))])
    out = bytearray()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(master, 1 << 16)
                except OSError:          # EIO: every writer closed the terminal
                    break
                if not chunk:
                    break
                out += chunk
            elif proc.poll() is not None:
                break
        else:
            raise AssertionError(f"the sweep did not end in {timeout} s")
        assert proc.wait(timeout=30) == 0, out.decode(errors="replace")[-3000:]
    finally:
        os.close(master)
    return out.decode(errors="replace")


def _start_time(pid: int) -> str:
    with open(f"/proc/{pid}/stat", encoding="utf-8") as f:
        return f.read().rsplit(")", 1)[1].split()[19]


# -- verbose=2 on a terminal ------------------------------------------------------------


def test_verbose_2_on_a_terminal_does_not_redraw_the_table_per_finished_trial(tmp_path, reaper):
    # Rich redraws a live table after every print: a line per finished trial redrew it
    # once per trial. 20,000 quick trials took 39.7 s of wall (35.9 s of the driver's
    # CPU) instead of 6.6 s at verbose=1, and wrote 27 MB to the terminal.
    script = tmp_path / "quick.py"
    script.write_text(QUICK_SWEEP)
    n = 800
    env = dict(_env(), TERM="xterm-256color", COLUMNS="120", LINES="40")
    out = _run_on_pty([sys.executable, str(script), str(tmp_path), str(n), "2"], env, reaper,
                      timeout=120)
    plain = ANSI.sub("", out)
    finished = re.findall(r"TERMINATED (\w+_\d{5}) iter=\d", plain)
    assert len(finished) == n and len(set(finished)) == n     # one line per trial
    # the table is drawn a few times a second (twice per redraw with lines above it),
    # not once per finished trial
    frames = plain.count("Trial status:")
    assert 2 <= frames < n // 5, frames
    assert f"{n} TERMINATED ({n}/{n} trials)" in plain
    assert len(out) < 400 * n, len(out)
