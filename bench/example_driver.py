"""Run ``examples/async_hyperband_example.py`` in this process and time ``Tuner.fit()``.

``bench/test_tuner.py::test_example_acceptance`` starts this script as a
fresh subprocess, so the start-up is cold: no loky worker exists yet. The
example runs unchanged (full run, not ``--smoke-test``); this script only
wraps ``Tuner.fit`` to time it, then writes the figures as JSON::

    FASTASHA_STORAGE_PATH=/tmp/somewhere python bench/example_driver.py OUT.json [SLOTS]

With ``SLOTS`` (the benchmark passes 2), the process first restricts itself
to that many of its CPUs: the Tuner takes its number of slots from the CPU
affinity, so the example runs on 2 slots on any machine.

``OUT.json`` gets the wall and CPU time of ``fit()``, when the first trial
started and the last one completed (from a callback added to the run
config, in seconds after ``fit()`` started), and, for every trial, the
``pid``, ``time_total_s`` and ``training_iteration`` of its last result.
The benchmark derives the busiest worker from them.
"""

from __future__ import annotations

import json
import os
import runpy
import sys
import time
from pathlib import Path

STARTED = time.time()
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "async_hyperband_example.py"


def main() -> None:
    out = Path(sys.argv[1])
    if len(sys.argv) > 2:
        os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:int(sys.argv[2])])
    if not os.environ.get("FASTASHA_STORAGE_PATH"):
        sys.exit("set FASTASHA_STORAGE_PATH: the example would write to ~/fastasha_results")
    from tuner_work import Clock, timed_fit  # bench/ is sys.path[0]

    import fastasha.tuner

    record: dict = {}

    def add_clock(tuner):
        clock = Clock()
        tuner.run_config.callbacks.append(clock)
        return clock

    fastasha.tuner.Tuner.fit = timed_fit(fastasha.tuner.Tuner.fit, add_clock, record, STARTED)
    sys.argv = [str(EXAMPLE)]            # the full run: no --smoke-test
    runpy.run_path(str(EXAMPLE), run_name="__main__")

    grid = record.pop("grid")
    record["trials"] = [
        {"trial_id": r.trial_id, "status": r.status,
         **{k: r.metrics.get(k) for k in ("pid", "time_total_s", "training_iteration")}}
        for r in grid
    ]
    out.write_text(json.dumps(record))


if __name__ == "__main__":
    main()
