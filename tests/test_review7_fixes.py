"""Defects found reviewing trial folders, ``chdir_to_trial_dir`` and ``log_to_file``.

Each test reproduces one defect through the public API. Trials that print run
in forked trial processes (the default loky backend), where ``log_to_file``
swaps the process's fds 1 and 2 around each trial.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from fastasha import tune


def _c_stream(fd: int):
    """A stdio stream of the C library on ``fd``, as a compiled extension has (buffered
    whatever the Python settings: ``PYTHONUNBUFFERED`` does not reach it)."""
    import ctypes

    libc = ctypes.CDLL(None)
    libc.fdopen.restype = ctypes.c_void_p
    libc.fdopen.argtypes = [ctypes.c_int, ctypes.c_char_p]
    libc.fputs.argtypes = [ctypes.c_char_p, ctypes.c_void_p]
    stream = libc.fdopen(fd, b"w")
    return lambda text: libc.fputs(text.encode(), stream)


def prints_through_c(config):
    _c_stream(1)(f"c {config['i']}\n")       # like printf: the C library's stdout buffer
    tune.report({"i": config["i"]})


def writes_a_c_log(config):
    folder = tune.get_context().get_trial_dir()
    fd = os.open(os.path.join(folder, "c.log"), os.O_WRONLY | os.O_CREAT, 0o600)
    _c_stream(fd)(f"c {config['i']}\n")      # a C library's log file, closed at exit()
    tune.report({"i": config["i"]})


def replaces_stdout(config):
    import io

    sys.stdout.reconfigure(write_through=False)   # as without PYTHONUNBUFFERED
    print(f"before {config['i']}")
    sys.stdout = io.StringIO()          # never put back
    tune.report({"i": config["i"]})


def silences_then_fails(config):
    if config["i"] == 0:
        with open(os.devnull, "w") as sys.stdout:   # closed, and never put back
            raise RuntimeError("failed while silenced")
    tune.report({"i": config["i"]})


def _fit(tmp_path, objective, n, **run_config):
    return tune.Tuner(
        objective, param_space={"i": tune.grid_search(list(range(n)))},
        tune_config=tune.TuneConfig(max_concurrent_trials=1),    # one process runs them all
        run_config=tune.RunConfig(storage_path=str(tmp_path), name="r7", verbose=0,
                                  **run_config),
    ).fit()


def test_log_to_file_keeps_the_c_librarys_buffered_output(tmp_path):
    """The C library's stdout buffer was never flushed: a compiled extension's printf
    output went into a later trial's file, or was lost when the process exited."""
    grid = _fit(tmp_path, prints_through_c, 3, log_to_file=True)
    assert grid.num_errors == 0
    for result in grid:
        assert Path(result.path, "stdout").read_text() == f"c {result.config['i']}\n"


def test_a_trial_process_flushes_the_c_library_when_it_exits(tmp_path):
    """os._exit skipped the C library's flush at exit: a file a C library wrote
    through stdio (without closing it) stayed empty."""
    grid = _fit(tmp_path, writes_a_c_log, 2)
    assert grid.num_errors == 0
    for result in grid:
        assert Path(result.path, "c.log").read_text() == f"c {result.config['i']}\n"


def test_log_to_file_flushes_the_original_stdout_of_an_objective_that_replaced_it(tmp_path):
    """Only the current sys.stdout was flushed: what the original one held was lost."""
    grid = _fit(tmp_path, replaces_stdout, 1, log_to_file=True)
    assert grid.num_errors == 0
    assert Path(grid[0].path, "stdout").read_text() == "before 0\n"


def test_log_to_file_survives_an_objective_that_left_sys_stdout_closed(tmp_path):
    """Flushing a closed sys.stdout raised ValueError before the fds were swapped: every
    later trial of the process failed, printing or not."""
    grid = _fit(tmp_path, silences_then_fails, 3, log_to_file=True)
    assert [r.status for r in grid] == ["ERROR", "TERMINATED", "TERMINATED"], \
        [r.error for r in grid]
    assert "failed while silenced" in str(grid[0].error)


def counts_fds(config):
    i = config["i"]
    if i == 0:    # the next trial's stderr file cannot be opened: a folder has its name
        context = tune.get_context()
        trial_id = context.get_trial_id()
        following = f"{trial_id[:-5]}{int(trial_id[-5:]) + 1:05d}"
        os.makedirs(os.path.join(os.path.dirname(context.get_trial_dir()), following,
                                 "err.txt"))
    tune.report({"i": i, "fds": len(os.listdir("/proc/self/fd"))})


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts fds in /proc")
def test_log_to_file_that_cannot_open_its_second_file_changes_nothing(tmp_path):
    """stdout was swapped before the stderr file was opened: when that failed, fd 1
    stayed in the failed trial's file and two fds leaked, in every such trial."""
    grid = _fit(tmp_path, counts_fds, 3, log_to_file=("out.txt", "err.txt"))
    assert [r.status for r in grid] == ["TERMINATED", "ERROR", "TERMINATED"], \
        [r.error for r in grid]
    assert "err.txt" in str(grid[1].error)
    assert grid[2].metrics["fds"] == grid[0].metrics["fds"]
