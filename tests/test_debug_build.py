"""The compiled modules built with bounds checking (FASTASHA_CYTHON_DEBUG=1) pass the replay.

The release build turns bounds and wrap-around checks off. This test builds
the extension once more with them on, in a temporary copy of the package,
and replays every recorded Ray stream plus random streams through it in a
subprocess: an out-of-bounds access there raises instead of corrupting
memory silently.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("Cython")

ROOT = Path(__file__).resolve().parent.parent

REPLAY = textwrap.dedent('''
    import json, math, sys
    import numpy as np
    import fastasha, fastasha._rungs
    assert fastasha.__file__.startswith(sys.argv[1]), fastasha.__file__
    from fastasha.schedulers import AsyncHyperBandScheduler
    from fastasha._reference import ReferenceASHA
    cases = json.load(open(sys.argv[2]))["cases"]
    for case in cases:
        s = AsyncHyperBandScheduler(metric="m", **case["params"])
        for tid, b in case["trial_bracket"].items():
            s.on_trial_add(tid, bracket=b)
        for kind, tid, t, v, decision in case["events"]:
            result = {"training_iteration": t, "m": math.nan if v == "nan" else v}
            if kind == "result":
                assert s.on_trial_result(tid, result) == decision, case["name"]
            else:
                s.on_trial_complete(tid, result)
    rng = np.random.default_rng(0)
    for trial_count in (1, 7, 300, 3000):
        s = AsyncHyperBandScheduler(metric="m", mode="max", max_t=50, grace_period=1,
                                    reduction_factor=3, brackets=3, seed=1)
        ref = ReferenceASHA(1, 50, 3, 3)
        brackets = s.add_trials(np.arange(trial_count))
        for i, b in enumerate(brackets):
            ref.add(i, int(b))
        ids = rng.integers(0, trial_count, 20 * trial_count)
        times = rng.integers(1, 60, ids.size).astype(float)
        values = rng.choice([0.0, 1.0, 2.0, np.nan, np.inf], ids.size)
        got = s.on_results(ids, times, values)
        want = [ref.report(int(i), t, v) for i, t, v in zip(ids, times, values)]
        assert got.tolist() == want
    from fastasha._fastpath import pack_columns
    from fastasha._rows import pack_columns_py
    for n in (1, 2, 50):
        for row in ({"a": 1.5}, {"a": 1.5, "b": -(2 ** 63)}, {"a": 2 ** 63}, {"a": True}, {}):
            entries = [(1e9 + i, dict(row)) for i in range(n)]
            assert pack_columns(entries) == pack_columns_py(entries), (n, row)
    print("ok")
''')


def test_debug_build_replays_every_stream(tmp_path):
    work = tmp_path / "build"
    shutil.copytree(ROOT / "fastasha", work / "fastasha",
                    ignore=shutil.ignore_patterns("*.so", "*.pyd", "__pycache__"))
    shutil.copytree(ROOT / "src", work / "src", ignore=shutil.ignore_patterns("*.c", "*.html"))
    shutil.copy(ROOT / "setup.py", work / "setup.py")
    env = dict(os.environ, FASTASHA_CYTHON_DEBUG="1")
    build = subprocess.run([sys.executable, "setup.py", "build_ext", "--inplace"], cwd=work,
                           env=env, capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stderr[-3000:]
    for name in ("_rungs", "_fastpath"):
        assert list((work / "fastasha").glob(f"{name}*.so")) or \
            list((work / "fastasha").glob(f"{name}*.pyd"))
    run = subprocess.run(
        [sys.executable, "-c", REPLAY, str(work), str(ROOT / "tests" / "data" / "ray_asha_cases.json")],
        cwd=work, env=dict(os.environ, PYTHONPATH=str(work)), capture_output=True, text=True,
        timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.strip() == "ok"
