"""Run ``examples/async_hyperband_example.py`` under Ray Tune and time ``Tuner.fit()``.

The twin of ``bench/example_driver.py``, for ``bench/test_rivals.py``'s
``test_ray_example``. The example is Ray's own, with its two import lines
pointed at fastasha; this script points them back at Ray (``from ray
import tune``, ``from ray.tune.schedulers import AsyncHyperBandScheduler``)
and runs the rest unchanged, as ``__main__`` (full run, not
``--smoke-test``)::

    FASTASHA_STORAGE_PATH=/tmp/somewhere python bench/ray_example_driver.py OUT.json [SLOTS]

The storage path goes to Ray as ``RAY_STORAGE`` (the example sets no
``storage_path``; Ray's default is ``~/ray_results``). With ``SLOTS`` (the
benchmark passes 2), the process restricts itself to that many CPUs and
starts a new local Ray instance with ``ray.init(address="local",
num_cpus=SLOTS)`` before the example runs, timed on its own
(``ray_init_s``): Ray runs a trial per CPU, so 2 at a time. Without it,
``fit()`` starts Ray itself, as in the plain example.

``OUT.json`` gets the same fields as ``example_driver.py``'s: the wall and
CPU time of ``fit()``, when the first trial started and the last one
completed, and each trial's ``pid``, ``time_total_s`` and
``training_iteration`` from its last result, with ``status`` TERMINATED
or ERROR (Ray's ``Result`` has no status; ERROR when it holds an error).
"""

from __future__ import annotations

import json
import os
import sys
import time
import warnings
from pathlib import Path

STARTED = time.time()
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "async_hyperband_example.py"
IMPORTS = {
    "from fastasha import tune\n": "from ray import tune\n",
    "from fastasha.schedulers import AsyncHyperBandScheduler\n":
        "from ray.tune.schedulers import AsyncHyperBandScheduler\n",
}


def ray_source() -> str:
    """The example's text with Ray's imports; fails if it no longer has fastasha's two."""
    text = EXAMPLE.read_text()
    for ours, rays in IMPORTS.items():
        if text.count(ours) != 1:
            sys.exit(f"{EXAMPLE} no longer has the line {ours!r} once; update {__file__}")
        text = text.replace(ours, rays)
    assert "fastasha" not in text.split('if __name__ == "__main__":')[0].replace(
        "now point at fastasha", ""), "the example imports more of fastasha than this script knows"
    return text


def main() -> None:
    out = Path(sys.argv[1])
    storage = os.environ.get("FASTASHA_STORAGE_PATH")
    if not storage:
        sys.exit("set FASTASHA_STORAGE_PATH: Ray would write to ~/ray_results")
    os.environ["RAY_STORAGE"] = storage
    warnings.filterwarnings("ignore", message=".*RAY_STORAGE.*")
    source = ray_source()

    import ray
    import ray.tune
    from rivals_work import ray_clock  # bench/ is sys.path[0]
    from tuner_work import timed_fit

    record: dict = {"ray_init_s": 0.0}
    if len(sys.argv) > 2:
        slots = int(sys.argv[2])
        os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:slots])
        t0 = time.perf_counter()
        ray.init(address="local", num_cpus=slots)
        record["ray_init_s"] = time.perf_counter() - t0

    def add_clock(tuner):
        clock = ray_clock()
        run_config = tuner._local_tuner.get_run_config()
        run_config.callbacks = [*(run_config.callbacks or []), clock]
        return clock

    ray.tune.Tuner.fit = timed_fit(ray.tune.Tuner.fit, add_clock, record, STARTED)
    sys.argv = [str(EXAMPLE)]            # the full run: no --smoke-test
    exec(compile(source, str(EXAMPLE), "exec"), {"__name__": "__main__", "__file__": str(EXAMPLE)})

    grid = record.pop("grid")
    record["trials"] = [
        {"trial_id": r.metrics.get("trial_id"),
         "status": "ERROR" if r.error else "TERMINATED",
         **{k: r.metrics.get(k) for k in ("pid", "time_total_s", "training_iteration")}}
        for r in grid
    ]
    record["ray_version"] = ray.__version__
    ray.shutdown()
    out.write_text(json.dumps(record))


if __name__ == "__main__":
    main()
