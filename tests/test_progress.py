"""Tests for fastasha._progress: the live status display."""

from __future__ import annotations

import io
import math
import re

import pytest
from rich.console import Console

from fastasha._progress import ProgressReporter, ProgressSnapshot, TrialRow

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def make_console(terminal: bool) -> tuple[Console, io.StringIO]:
    buf = io.StringIO()
    return Console(file=buf, force_terminal=terminal, width=120), buf


def closed_with(snapshot, max_rows: int) -> str:
    """What a verbose=1 reporter showing ``max_rows`` rows prints when closed on ``snapshot``."""
    console, buf = make_console(False)
    ProgressReporter(1, console=console, max_rows=max_rows).close(snapshot)
    return buf.getvalue()


def plain(buf: io.StringIO) -> str:
    """The captured text without colours and cursor movements."""
    return ANSI.sub("", buf.getvalue())


def running_row(i: int, metric: float | None) -> TrialRow:
    return TrialRow(
        f"trial_{i:05d}",
        "RUNNING",
        i % 50,
        metric,
        {"lr": 10.0 ** -(i % 5), "model": {"depth": i % 8}},
    )


def make_snapshot(
    n_trials: int = 100,
    n_running: int = 3,
    mode: str | None = "min",
    best_metric: float | None = 0.0123456,
    total: int | None = None,
    running: list[TrialRow] | None = None,
) -> ProgressSnapshot:
    if running is None:
        running = [running_row(i, 1.0 + i) for i in range(n_running)]
    n_error = 1
    n_pending = 2
    counts = {
        "PENDING": n_pending,
        "RUNNING": n_running,
        "TERMINATED": n_trials - n_running - n_error - n_pending,
        "ERROR": n_error,
    }
    best = None
    if best_metric is not None:
        config = {"lr": 0.01, "model": {"depth": 3}}
        best = TrialRow("trial_best", "TERMINATED", 27, best_metric, config)
    return ProgressSnapshot(
        elapsed_s=83.4,
        counts=counts,
        total=n_trials if total is None else total,
        best=best,
        running=running,
        metric="loss",
        mode=mode,
    )


# -- verbose=0 ---------------------------------------------------------------------------


@pytest.mark.parametrize("terminal", [False, True])
def test_verbose_0_writes_nothing(terminal):
    console, buf = make_console(terminal)
    reporter = ProgressReporter(0, console=console)
    reporter.start()
    reporter.update(make_snapshot())
    reporter.trial_finished(TrialRow("t1", "TERMINATED", 3, 0.5, {}))
    reporter.trial_finished(TrialRow("t2", "ERROR", 1, None, {}), error="ValueError: boom")
    reporter.close(make_snapshot())
    assert buf.getvalue() == ""
    assert reporter.verbose == 0


# -- verbose=1 ---------------------------------------------------------------------------


def test_verbose_1_non_terminal_prints_only_at_close():
    console, buf = make_console(False)
    reporter = ProgressReporter(1, console=console, experiment_name="asha_exp")
    reporter.start()
    for _ in range(5):
        reporter.update(make_snapshot())
    reporter.trial_finished(TrialRow("t1", "TERMINATED", 3, 0.5, {}))  # verbose=1: no line
    assert buf.getvalue() == ""
    reporter.close(make_snapshot())
    out = buf.getvalue()
    assert out.count("Trial status:") == 1  # the final table, once
    assert "2 PENDING | 3 RUNNING | 94 TERMINATED | 1 ERROR (100/100 trials)" in out
    assert "asha_exp" in out
    assert "0:01:23" in out
    assert "trial_best" in out and "loss=0.01235" in out
    for i in range(3):
        assert f"trial_{i:05d}" in out
    assert "model/depth" in out
    assert "more running trials" not in out
    last = out.strip().splitlines()[-1]
    assert last.startswith("Experiment 'asha_exp' stopped after 0:01:23")
    assert "Best trial: trial_best with loss=0.01235" in last


def test_verbose_1_terminal_shows_final_table():
    console, buf = make_console(True)
    with ProgressReporter(1, console=console) as reporter:
        reporter.update(make_snapshot(n_running=2))
        reporter.update(make_snapshot(n_running=3))
    out = plain(buf)
    assert "Trial status: 2 PENDING | 3 RUNNING" in out
    assert "trial_00002" in out and "trial_best" in out
    assert out.count("Tuning stopped after") == 1


def test_finished_run_summary():
    console, buf = make_console(False)
    snapshot = ProgressSnapshot(
        elapsed_s=3725.0,
        counts={"PENDING": 0, "RUNNING": 0, "TERMINATED": 9, "ERROR": 1},
        total=10,
        best=TrialRow("t7", "TERMINATED", 4, 0.25, {"lr": 0.1}),
        running=[],
        metric="acc",
        mode="max",
    )
    reporter = ProgressReporter(1, console=console)
    reporter.start()
    reporter.close(snapshot)
    out = buf.getvalue()
    assert "Running trials" not in out  # no running rows, no empty table
    assert out.strip().splitlines()[-1] == (
        "Tuning finished after 1:02:05: 9 TERMINATED, 1 ERROR (10/10 trials). "
        "Best trial: t7 with acc=0.25."
    )


@pytest.mark.parametrize("terminal", [False, True])
@pytest.mark.parametrize("mode", ["min", "max"])
def test_many_trials_output_stays_bounded(terminal, mode):
    n_running = 5_000
    # metrics are a permutation of 0..4999, so the best 20 are known
    running = [running_row(i, float((i * 7919) % n_running)) for i in range(n_running)]
    snapshot = make_snapshot(n_trials=10_000, n_running=n_running, mode=mode, running=running)
    console, buf = make_console(terminal)
    with ProgressReporter(1, console=console) as reporter:
        for _ in range(3):
            reporter.update(snapshot)
    out = plain(buf)
    assert "... and 4980 more running trials" in out
    assert "5000 RUNNING" in out and "(10000/10000 trials)" in out
    # 3 redraws on a terminal, each well under 40 lines; one final table otherwise
    assert len(out.splitlines()) < (120 if terminal else 40)
    final = out[out.rindex("Trial status:"):]
    shown = set(re.findall(r"trial_\d{5}", final))
    assert len(shown) == 20
    order = sorted(running, key=lambda r: r.metric, reverse=(mode == "max"))
    assert shown == {r.trial_id for r in order[:20]}


def test_running_list_may_be_truncated_by_driver():
    running = [running_row(i, float(i)) for i in range(20)]
    snapshot = ProgressSnapshot(
        elapsed_s=1.0,
        counts={"RUNNING": 5_000, "TERMINATED": 10},
        total=None,
        best=None,
        running=running,
        metric="loss",
        mode="min",
    )
    console, buf = make_console(False)
    reporter = ProgressReporter(1, console=console)
    reporter.close(snapshot)
    out = buf.getvalue()
    assert "... and 4980 more running trials" in out
    assert "(5010 trials)" in out  # no expected total
    assert "Current best trial: none yet" in out


def test_max_rows_and_order_without_mode():
    running = [running_row(i, float(-i)) for i in range(10)]
    snapshot = make_snapshot(n_running=10, mode=None, running=running)
    out = closed_with(snapshot, max_rows=4)
    shown = re.findall(r"trial_\d{5}", out)
    assert shown == [f"trial_{i:05d}" for i in range(4)]  # order given by the driver
    assert "... and 6 more running trials" in out


def test_nan_inf_and_none_metrics_are_formatted_and_nan_sorts_last():
    values = [math.nan, math.inf, -math.inf, 123456.0, 0.123456789, None]
    running = [running_row(i, v) for i, v in enumerate(values)]
    snapshot = make_snapshot(n_running=len(values), running=running, best_metric=math.nan)
    console, buf = make_console(False)
    ProgressReporter(1, console=console).close(snapshot)
    out = buf.getvalue()
    for text in ["nan", "inf", "-inf", "1.235e+05", "0.1235"]:
        assert re.search(rf"\s{re.escape(text)} │", out), text
    assert "loss=nan" in out
    rows = re.findall(r"(trial_\d{5}) .*", out)
    assert rows == ["trial_00002", "trial_00004", "trial_00003", "trial_00001",
                    "trial_00000", "trial_00005"]


class LongRepr:
    def __repr__(self) -> str:
        return "LongRepr(" + "x" * 500 + ")"


class BrokenRepr:
    def __repr__(self) -> str:
        raise RuntimeError("no repr")


def test_config_leaves_of_any_type():
    config = {
        "opt": {"name": "adam", "betas": {"b1": 0.9}},
        "obj": LongRepr(),
        "layers": list(range(1000)),
        "broken": BrokenRepr(),
    }
    running = [TrialRow("t0", "RUNNING", 1, 0.5, config)]
    snapshot = make_snapshot(n_running=1, running=running)
    buf = io.StringIO()
    ProgressReporter(1, console=Console(file=buf, width=200), max_config_columns=5).close(snapshot)
    out = buf.getvalue()
    assert "opt/name" in out and "opt/betas/b1" in out and "adam" in out
    assert "LongRepr(xxx" in out and "x" * 100 not in out
    assert "<list of 1000>" in out
    assert "<BrokenRepr>" in out


def test_config_columns_that_do_not_fit_are_left_out():
    config = {f"param_{k}": "v" * 20 for k in range(4)}
    running = [TrialRow("t0", "RUNNING", 12, 0.123456, config)]
    snapshot = make_snapshot(n_running=1, running=running)
    buf = io.StringIO()
    ProgressReporter(1, console=Console(file=buf, width=70)).close(snapshot)
    out = buf.getvalue()
    assert "param_0" in out and "param_3" not in out
    assert re.search(r"│ t0 +│ RUNNING │ .*│ +12 │ +0.1235 │", out)  # id, iter and metric intact
    assert max(len(line) for line in out.splitlines() if "│" in line) <= 70


def test_markup_in_ids_is_shown_literally():
    running = [TrialRow("t[bold]x[/bold]", "RUNNING", 1, 0.5, {"k": "[red]v"})]
    snapshot = make_snapshot(n_running=1, running=running)
    console, buf = make_console(False)
    ProgressReporter(2, console=console).close(snapshot)
    out = buf.getvalue()
    assert "t[bold]x[/bold]" in out and "[red]v" in out


# -- lifecycle ---------------------------------------------------------------------------


@pytest.mark.parametrize("terminal", [False, True])
def test_context_manager_closes_with_last_snapshot_on_error(terminal):
    console, buf = make_console(terminal)
    with pytest.raises(KeyError):
        with ProgressReporter(1, console=console) as reporter:
            reporter.update(make_snapshot(n_running=1))
            reporter.update(make_snapshot(n_running=2))
            raise KeyError("driver failed")
    out = plain(buf)
    assert "2 RUNNING" in out
    assert out.count("Tuning stopped after") == 1


def test_close_is_idempotent_and_works_without_start():
    console, buf = make_console(False)
    reporter = ProgressReporter(1, console=console)
    reporter.update(make_snapshot())
    reporter.close()
    reporter.close(make_snapshot())
    out = buf.getvalue()
    assert out.count("Trial status:") == 1
    assert out.count("Tuning stopped after") == 1
    reporter.update(make_snapshot())  # ignored after close
    assert buf.getvalue() == out


@pytest.mark.parametrize("terminal", [False, True])
def test_no_snapshot_prints_nothing(terminal):
    console, buf = make_console(terminal)
    with ProgressReporter(1, console=console):
        pass
    assert plain(buf).strip() == ""


def test_start_after_close_raises():
    reporter = ProgressReporter(1, console=make_console(False)[0])
    reporter.close()
    with pytest.raises(RuntimeError, match="ProgressReporter is closed"):
        reporter.start()


# -- verbose=2 ---------------------------------------------------------------------------


@pytest.mark.parametrize("verbose", [2, 3])
def test_verbose_2_one_line_per_finished_trial(verbose):
    console, buf = make_console(False)
    reporter = ProgressReporter(verbose, console=console, metric="loss")
    assert reporter.verbose == 2
    reporter.start()
    reporter.trial_finished(TrialRow("t1", "TERMINATED", 10, 0.123456, {"lr": 0.1}))
    reporter.trial_finished(TrialRow("t2", "TERMINATED", None, None, {}))
    reporter.trial_finished(
        TrialRow("t3", "ERROR", 3, math.inf, {}), error="ValueError: bad lr\nmore detail"
    )
    traceback = (
        'Traceback (most recent call last):\n  File "x.py", line 1\nZeroDivisionError: oops\n'
    )
    reporter.trial_finished(TrialRow("t4", "ERROR", 1, 2.0, {}), error=traceback)
    reporter.trial_finished(TrialRow("t5", "ERROR", 1, 2.0, {}), error="E" * 1000)
    lines = buf.getvalue().splitlines()
    assert len(lines) == 5
    assert lines[0].split() == ["TERMINATED", "t1", "iter=10", "loss=0.1235"]
    assert lines[1].split() == ["TERMINATED", "t2", "iter=-", "loss=-"]
    assert lines[2].split() == [
        "ERROR", "t3", "iter=3", "loss=inf", "error:", "ValueError:", "bad", "lr"
    ]
    assert lines[3].endswith("error: ZeroDivisionError: oops")
    assert "EEE..." in lines[4] and len(lines[4]) < 300
    reporter.close(make_snapshot())
    assert buf.getvalue().count("Trial status:") == 1


def test_verbose_2_metric_name_from_snapshot():
    console, buf = make_console(False)
    reporter = ProgressReporter(2, console=console)
    reporter.trial_finished(TrialRow("t1", "TERMINATED", 1, 0.5, {}))
    reporter.update(make_snapshot())
    reporter.trial_finished(TrialRow("t2", "TERMINATED", 1, 0.5, {}))
    lines = buf.getvalue().splitlines()
    assert lines[0].endswith("metric=0.5")
    assert lines[1].endswith("loss=0.5")


def test_verbose_2_terminal_lines_appear_with_table():
    console, buf = make_console(True)
    with ProgressReporter(2, console=console) as reporter:
        reporter.update(make_snapshot())
        reporter.trial_finished(TrialRow("t_done", "TERMINATED", 5, 0.75, {}))
    out = plain(buf)
    assert re.search(r"TERMINATED t_done iter=5 loss=0.75", out)
    assert "Trial status:" in out


# -- validation --------------------------------------------------------------------------


@pytest.mark.parametrize("verbose", [True, False, 1.0, "1", None])
def test_verbose_wrong_type(verbose):
    with pytest.raises(TypeError, match=r"verbose must be an int \(0, 1, 2 or 3\)"):
        ProgressReporter(verbose)


@pytest.mark.parametrize("verbose", [-1, 4, 10])
def test_verbose_out_of_range(verbose):
    with pytest.raises(ValueError, match=r"verbose must be 0, 1, 2 or 3, got"):
        ProgressReporter(verbose)


def test_other_argument_errors():
    with pytest.raises(TypeError, match="console must be a rich.console.Console"):
        ProgressReporter(1, console="stdout")
    with pytest.raises(TypeError, match="experiment_name must be a str"):
        ProgressReporter(1, experiment_name=3)
    with pytest.raises(TypeError, match="metric must be a str or None"):
        ProgressReporter(1, metric=1)
    with pytest.raises(ValueError, match="max_rows must be at least 1"):
        ProgressReporter(1, max_rows=0)
    with pytest.raises(ValueError, match="max_config_columns must be at least 0"):
        ProgressReporter(1, max_config_columns=-1)
    reporter = ProgressReporter(1, console=make_console(False)[0])
    with pytest.raises(TypeError, match="snapshot must be a ProgressSnapshot"):
        reporter.update({"counts": {}})
    with pytest.raises(TypeError, match="row must be a TrialRow"):
        reporter.trial_finished("t1")
    with pytest.raises(TypeError, match="snapshot must be a ProgressSnapshot or None"):
        reporter.close("done")


def test_snapshot_mode_is_checked():
    with pytest.raises(ValueError, match="mode must be one of 'min', 'max'"):
        ProgressSnapshot(0.0, {}, None, None, [], "loss", "best")


# -- standard output that is a log, not a terminal ---------------------------------------


def _long_config_objective(config):
    from fastasha import tune

    tune.report({"loss": config["learning_rate"]})


def test_a_log_gets_the_whole_table(tmp_path, capsys, monkeypatch):
    # rich assumes 80 columns when stdout is not a terminal; Ray's reporter prints the
    # whole table to a log, and so does fastasha: whole trial names, every column asked for
    from fastasha import tune

    monkeypatch.delenv("COLUMNS", raising=False)
    names = ["learning_rate", "weight_decay", "hidden_units", "dropout_rate", "momentum"]
    grid = tune.Tuner(
        _long_config_objective,
        param_space={name: tune.uniform(0.1, 0.2) for name in names},
        tune_config=tune.TuneConfig(metric="loss", mode="min", num_samples=3),
        run_config=tune.RunConfig(
            storage_path=str(tmp_path), name="log", verbose=1,
            progress_reporter=tune.CLIReporter(parameter_columns=names, metric_columns=["loss"])),
    ).fit()
    out = capsys.readouterr().out
    table = out[out.rindex("╭"):out.rindex("╯")]
    header = r"│ Trial name +│ status +│ " + " +│ ".join(names) + r" +│ +loss │"
    assert re.search(header, table)
    for result in grid:
        assert re.search(rf"│ {result.trial_id} +│ TERMINATED +│", table)
    assert "…" not in table
    assert max(len(line) for line in table.splitlines()) > 80
    # the closing line is one line, however long
    best = grid.get_best_result()
    assert re.search(rf"^Experiment 'log' finished .* Best trial: {best.trial_id} with loss=",
                     out, re.MULTILINE)


def test_the_log_width_gives_way_to_columns(monkeypatch):
    from fastasha._progress import LOG_WIDTH, default_console

    monkeypatch.delenv("COLUMNS", raising=False)
    assert default_console().width == LOG_WIDTH
    monkeypatch.setenv("COLUMNS", "100")
    assert default_console().width == 100


def _reports_every_tenth_of_a_second(config):
    import time

    from fastasha import tune

    for step in range(300):
        tune.report({"loss": config["x"] / (step + 1)})
        time.sleep(0.1)


def test_the_last_line_says_why_a_sweep_stopped(tmp_path, capsys):
    # "Experiment 'x' stopped after 0:00:01" did not say that the time budget ended it
    from fastasha import tune

    tune.Tuner(
        _reports_every_tenth_of_a_second,
        param_space={"x": tune.grid_search([1.0, 2.0, 3.0, 4.0])},
        tune_config=tune.TuneConfig(metric="loss", mode="min", time_budget_s=1.0),
        run_config=tune.RunConfig(storage_path=str(tmp_path), name="budget", verbose=1),
        resources={"cpu": 2},
    ).fit()
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("Experiment 'budget' stopped after 0:00:0"), last
    assert "(the time budget of 1 s is spent)" in last, last


# -- paused trials (PBT, HyperBand, MedianStoppingRule(hard_stop=False)) ------------------


def paused_row(i: int, metric: float | None) -> TrialRow:
    return TrialRow(f"pause_{i:05d}", "PAUSED", 3, metric, {"lr": 0.1, "model": {"depth": 2}})


def paused_snapshot(running: list[TrialRow], paused: list[TrialRow], n_terminated: int = 10,
                    n_paused: int | None = None, mode: str | None = "min") -> ProgressSnapshot:
    n_paused = len(paused) if n_paused is None else n_paused
    counts = {"PENDING": 0, "RUNNING": len(running), "PAUSED": n_paused,
              "TERMINATED": n_terminated, "ERROR": 0}
    return ProgressSnapshot(
        elapsed_s=12.0, counts=counts, total=sum(counts.values()), best=None, running=running,
        metric="loss", mode=mode, paused=paused)


def table_rows(out: str) -> list[list[str]]:
    """The (trial name, status) of each row of the last table printed."""
    final = out[out.rindex("Trial status:"):]
    return re.findall(r"│ ((?:trial|pause)_\d{5}) +│ (\w+) +│", final)


@pytest.mark.parametrize("verbose", [1, 2])
def test_paused_trials_are_counted_and_listed_after_the_running_ones(verbose):
    running = [running_row(i, 10.0 - i) for i in range(3)]
    paused = [paused_row(i, v) for i, v in enumerate([7.0, 2.0, 5.0])]
    console, buf = make_console(False)
    ProgressReporter(verbose, console=console).close(paused_snapshot(running, paused))
    out = buf.getvalue()
    # counted between RUNNING and TERMINATED, as Ray's status line counts them
    assert "Trial status: 0 PENDING | 3 RUNNING | 3 PAUSED | 10 TERMINATED | 0 ERROR " \
           "(16/16 trials)" in out
    assert "Running and paused trials (best loss first in each)" in out
    # each kind best first: the running ones, then the paused ones
    assert table_rows(out) == [("trial_00002", "RUNNING"), ("trial_00001", "RUNNING"),
                               ("trial_00000", "RUNNING"), ("pause_00001", "PAUSED"),
                               ("pause_00002", "PAUSED"), ("pause_00000", "PAUSED")]
    assert "more running" not in out and "more paused" not in out
    # a paused trial is not finished: the sweep "stopped", with them still paused
    assert out.strip().splitlines()[-1].startswith(
        "Tuning stopped after 0:00:12: 3 RUNNING, 3 PAUSED, 10 TERMINATED (16/16 trials).")


def test_without_paused_trials_the_status_line_and_table_are_as_before():
    console, buf = make_console(False)
    ProgressReporter(1, console=console).close(paused_snapshot([running_row(0, 1.0)], []))
    out = buf.getvalue()
    assert "Trial status: 0 PENDING | 1 RUNNING | 10 TERMINATED | 0 ERROR" in out
    assert "PAUSED" not in out and "Running trials (best loss first)" in out


@pytest.mark.parametrize("terminal", [False, True])
@pytest.mark.parametrize("verbose", [1, 2])
def test_10000_trials_with_thousands_paused_stay_readable(terminal, verbose):
    # 5,000 running and 4,000 paused trials, metrics permutations: the best of each known
    running = [running_row(i, float((i * 7919) % 5_000)) for i in range(5_000)]
    paused = [paused_row(i, float((i * 104_729) % 4_000)) for i in range(4_000)]
    snapshot = paused_snapshot(running, paused, n_terminated=1_000)
    console, buf = make_console(terminal)
    with ProgressReporter(verbose, console=console) as reporter:
        for _ in range(3):
            reporter.update(snapshot)
    out = plain(buf)
    assert "5000 RUNNING | 4000 PAUSED | 1000 TERMINATED" in out and "(10000/10000" in out
    assert len(out.splitlines()) < (120 if terminal else 40)
    # 20 rows: the 15 best running trials, then the 5 best paused ones (Ray's table shows
    # 5 rows of a status once it would pass 20)
    rows = table_rows(out)
    assert [status for _, status in rows] == ["RUNNING"] * 15 + ["PAUSED"] * 5
    best_running = sorted(running, key=lambda r: r.metric)[:15]
    best_paused = sorted(paused, key=lambda r: r.metric)[:5]
    assert [t for t, _ in rows] == [r.trial_id for r in best_running + best_paused]
    assert "... and 4985 more running and 3995 more paused trials" in out


def test_paused_trials_take_the_rows_the_running_ones_leave():
    running = [running_row(i, float(i)) for i in range(2)]
    paused = [paused_row(i, float(i)) for i in range(100)]
    out = closed_with(paused_snapshot(running, paused), max_rows=10)
    assert [status for _, status in table_rows(out)] == ["RUNNING"] * 2 + ["PAUSED"] * 8
    assert "... and 92 more paused trials" in out and "more running" not in out


def test_only_paused_trials_and_a_list_cut_short_by_the_driver():
    # nothing runs (the sweep was stopped, or every slot waits); the driver passed only
    # the first 20 of the 500 paused trials, so the count comes from counts["PAUSED"]
    paused = [paused_row(i, float(-i)) for i in range(20)]
    snapshot = paused_snapshot([], paused, n_paused=500, mode=None)
    out = closed_with(snapshot, max_rows=4)
    assert "Paused trials" in out and "Running" not in out
    assert "(best" not in out                     # no mode: in the order given
    assert [t for t, _ in table_rows(out)] == [f"pause_{i:05d}" for i in range(4)]
    assert "... and 496 more paused trials" in out


def test_with_one_row_running_trials_come_first():
    running = [running_row(i, float(i)) for i in range(3)]
    paused = [paused_row(i, float(i)) for i in range(3)]
    out = closed_with(paused_snapshot(running, paused), max_rows=1)
    assert table_rows(out) == [("trial_00000", "RUNNING")]
    assert "... and 2 more running and 3 more paused trials" in out


def test_a_live_terminal_shows_trials_as_they_pause_and_resume():
    console, buf = make_console(True)
    with ProgressReporter(1, console=console) as reporter:
        reporter.update(paused_snapshot([running_row(0, 1.0)], [paused_row(7, 3.0)]))
        first = plain(buf)
        reporter.update(paused_snapshot([running_row(0, 1.0), running_row(7, 3.0)], []))
    assert re.search(r"│ pause_00007 +│ PAUSED +│", first)
    assert "1 RUNNING | 1 PAUSED" in first
    last = plain(buf)[len(first):]
    assert "2 RUNNING | 10 TERMINATED" in last and "PAUSED" not in last


def test_a_cut_short_median_sweep_shows_its_paused_trials(tmp_path, capsys):
    # MedianStoppingRule(hard_stop=False) pauses the three poor trials at iteration 3; the
    # stopper ends the sweep before they resume, so the final display lists them
    import median_pause_objectives as mpo
    import pause_objectives as po

    from fastasha import tune
    from fastasha.schedulers import MedianStoppingRule

    grid = tune.Tuner(
        mpo.checkpointed_curve,
        param_space={"q": tune.grid_search([3.0, 1.0, 0.0, 4.0, 2.6, 5.0])},
        tune_config=tune.TuneConfig(
            metric="loss", mode="min", max_concurrent_trials=1,
            scheduler=MedianStoppingRule(time_attr="training_iteration", grace_period=3,
                                         min_samples_required=2, hard_stop=False)),
        run_config=tune.RunConfig(storage_path=str(tmp_path), name="median", verbose=2,
                                  stop=po.StopAllAfter(3 * mpo.N_STEPS + 9)),
    ).fit()
    out = capsys.readouterr().out
    ids = {r.config["q"]: r.metrics["trial_id"] for r in grid}
    assert "Trial status: 0 PENDING | 0 RUNNING | 3 PAUSED | 3 TERMINATED | 0 ERROR " \
           "(6/6 trials)" in out
    assert "Paused trials (best loss first)" in out
    # best first: 2.6 + 1/3, 4.0 + 1/3, 5.0 + 1/3, each at iteration 3
    rows = re.findall(r"│ (\w+) +│ PAUSED +│ ([\d.]+) +│ +(\d+) │ +([\d.]+) │", out)
    assert rows == [(ids[2.6], "2.6", "3", "2.933"), (ids[4.0], "4", "3", "4.333"),
                    (ids[5.0], "5", "3", "5.333")]
    # verbose=2's lines are for the finished trials only
    assert sorted(re.findall(r"^TERMINATED (\w+) iter=20 ", out, re.MULTILINE)) == \
        sorted(ids[q] for q in (3.0, 1.0, 0.0))
    assert not re.search(r"^PAUSED ", out, re.MULTILINE)
    last = out.strip().splitlines()[-1]
    assert last.startswith("Experiment 'median' stopped after ")
    assert "3 PAUSED, 3 TERMINATED (6/6 trials)" in last
