"""Ray Tune's progress reporters: ``tune.CLIReporter``, ``RunConfig(progress_reporter=...)``.

Sweeps run with joblib's threading backend (the objectives live here) and write
to a captured standard output, which is not a terminal: the display prints a
status block per refresh and the final table at the end.
"""

from __future__ import annotations

import os
import re
import time
from types import SimpleNamespace

import joblib
import pytest

from fastasha import tune

# Ray 2.60's keyword arguments of tune.CLIReporter, with their defaults
RAY_CLI_REPORTER_DEFAULTS = {
    "metric_columns": None, "parameter_columns": None, "total_samples": None,
    "max_progress_rows": 20, "max_error_rows": 20, "max_column_length": 20,
    "max_report_frequency": 5, "infer_limit": 3, "print_intermediate_tables": None,
    "metric": None, "mode": None, "sort_by_metric": False,
}


def objective(config):
    for step in range(1, 4):
        tune.report({"loss": config["x"] * step, "val": {"acc": config["x"] / 10},
                     "note": "text"})
    if config["x"] == 13:
        raise ValueError("thirteen is unlucky")


def slow_objective(config):
    for step in range(1, 9):
        time.sleep(0.1)
        tune.report({"loss": float(step)})


def fit(tmp_path, reporter, *, verbose=1, name="exp", trainable=objective, xs=(1, 2, 3, 4, 5),
        **tune_config):
    tune_config.setdefault("metric", "loss")
    tune_config.setdefault("mode", "min")
    with joblib.parallel_config(backend="threading"):
        return tune.Tuner(
            trainable,
            param_space={"x": tune.grid_search(list(xs)), "model": {"depth": 7, "width": 64}},
            tune_config=tune.TuneConfig(**tune_config),
            run_config=tune.RunConfig(storage_path=str(tmp_path), name=name, verbose=verbose,
                                      progress_reporter=reporter),
        ).fit()


def final_table(out: str) -> list[str]:
    """The lines of the last trial table that was printed (header row first)."""
    lines = out.splitlines()
    top = max(i for i, line in enumerate(lines) if line.startswith("╭"))
    bottom = next(i for i in range(top, len(lines)) if lines[i].startswith("╰"))
    return [line for line in lines[top + 1:bottom] if not line.startswith("├")]


def cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip("│").split("│")]


@pytest.fixture(autouse=True)
def wide_console(monkeypatch):
    monkeypatch.setenv("COLUMNS", "160")      # rich's width when the output is not a terminal


# -- the classes ---------------------------------------------------------------------------


def test_ray_names_and_module_paths():
    from fastasha.tune.progress_reporter import CLIReporter, JupyterNotebookReporter

    assert CLIReporter is tune.CLIReporter
    assert JupyterNotebookReporter is tune.JupyterNotebookReporter
    assert tune.progress_reporter.ProgressReporter is tune.ProgressReporter
    assert issubclass(tune.CLIReporter, tune.ProgressReporter)
    assert issubclass(tune.JupyterNotebookReporter, tune.ProgressReporter)


@pytest.mark.parametrize("cls", ["CLIReporter", "JupyterNotebookReporter"])
def test_constructor_takes_ray_keywords(cls):
    import inspect

    params = inspect.signature(getattr(tune, cls)).parameters
    if cls == "CLIReporter":
        assert {name: p.default for name, p in params.items()} == RAY_CLI_REPORTER_DEFAULTS
        assert all(p.kind is p.KEYWORD_ONLY for p in params.values())
    reporter = getattr(tune, cls)(**{**RAY_CLI_REPORTER_DEFAULTS, "metric_columns": ["a"],
                                     "parameter_columns": {"lr": "LR"}, "metric": "a",
                                     "mode": "max", "sort_by_metric": True,
                                     "max_report_frequency": 0.5, "total_samples": 10})
    assert reporter.metric == "a" and reporter.mode == "max" and reporter.sort_by_metric
    with pytest.raises(TypeError, match="positional argument"):
        getattr(tune, cls)(["loss"])          # keyword-only, as in Ray


@pytest.mark.parametrize("kwargs, error, match", [
    ({"metric_columns": "loss"}, TypeError, r"list of names.*\['loss'\]"),
    ({"metric_columns": [1]}, TypeError, "must hold names"),
    ({"metric_columns": ["a", "a"]}, ValueError, "names a column twice"),
    ({"parameter_columns": {"lr": 3}}, TypeError, "headers to show"),
    ({"max_progress_rows": 0}, ValueError, "max_progress_rows must be at least 1"),
    ({"max_progress_rows": 2.5}, TypeError, "max_progress_rows must be an integer"),
    ({"max_error_rows": -1}, ValueError, "max_error_rows must be at least 0"),
    ({"max_column_length": 2}, ValueError, "max_column_length must be at least 4"),
    ({"max_report_frequency": -1}, ValueError, "max_report_frequency must be a number of sec"),
    ({"max_report_frequency": "5"}, TypeError, "max_report_frequency must be a real number"),
    ({"infer_limit": -1}, ValueError, "infer_limit must be at least 0"),
    ({"total_samples": -3}, ValueError, "total_samples must be at least 0"),
    ({"print_intermediate_tables": "yes"}, TypeError, "print_intermediate_tables must be True"),
    ({"metric": 3}, TypeError, "metric must be the name"),
    ({"mode": "best"}, ValueError, "mode must be one of 'min', 'max'"),
    ({"sort_by_metric": 1}, TypeError, "sort_by_metric must be True or False"),
])
def test_bad_arguments_are_refused_clearly(kwargs, error, match):
    with pytest.raises(error, match=match):
        tune.CLIReporter(**kwargs)


def test_jupyter_reporter_overwrite():
    assert tune.JupyterNotebookReporter(overwrite=False, max_progress_rows=3).max_progress_rows == 3
    with pytest.raises(TypeError, match="overwrite must be True or False"):
        tune.JupyterNotebookReporter(overwrite="no")


def test_add_columns_as_in_ray():
    listed = tune.CLIReporter(metric_columns=["loss"], parameter_columns=["lr"])
    listed.add_metric_column("val/acc")
    listed.add_parameter_column("model/depth", "model/depth")
    with pytest.raises(ValueError, match="shown already"):
        listed.add_metric_column("loss")
    with pytest.raises(ValueError, match="cannot differ.*give them as a dict"):
        listed.add_parameter_column("momentum", "mom")
    with pytest.raises(TypeError, match="must be a name"):
        listed.add_metric_column(3)
    named = tune.CLIReporter(metric_columns={"loss": "L"})
    named.add_metric_column("val/acc", "acc")
    named.add_metric_column("step")
    assert "metric_columns={'loss': 'L', 'val/acc': 'acc', 'step': 'step'}" in repr(named)
    assert "metric_columns=['loss', 'val/acc']" in repr(listed)
    assert "parameter_columns=['lr', 'model/depth']" in repr(listed)


# -- RunConfig and tune.run -----------------------------------------------------------------


def test_run_config_checks_the_reporter():
    with pytest.raises(TypeError, match=r"got the class CLIReporter; pass an instance"):
        tune.RunConfig(progress_reporter=tune.CLIReporter)
    with pytest.raises(TypeError, match="should_report"):
        tune.RunConfig(progress_reporter=object())
    ray_like = type("CLIReporter", (), {"__module__": "ray.tune.progress_reporter",
                                        "should_report": lambda self, t, done=False: True,
                                        "report": lambda self, t, done, *info: None})()
    with pytest.raises(TypeError, match=r"Ray's CLIReporter; use fastasha's.*tune.CLIReporter"):
        tune.RunConfig(progress_reporter=ray_like)
    duck = SimpleNamespace(should_report=lambda trials, done=False: False,
                           report=lambda trials, done, *info: None)
    assert tune.RunConfig(progress_reporter=duck).progress_reporter is duck


def test_cluster_keywords_accepted_only_at_their_defaults(tmp_path):
    rc = tune.RunConfig(storage_filesystem=None, sync_config=None, log_to_file=False)
    assert rc.log_to_file is False
    with pytest.raises(TypeError, match=r"RunConfig: sync_config must be a tune.SyncConfig"):
        tune.RunConfig(sync_config=object())
    with pytest.raises(TypeError, match=r"RunConfig\(storage_filesystem="
                                        r"\.\.\.\).*mounted folder"):
        tune.RunConfig(log_to_file="out.txt", storage_filesystem=object())
    with pytest.raises(TypeError, match=r"log_to_file must be True/False, a file name, or a pair"):
        tune.RunConfig(log_to_file=("a", "b", "c"))
    with pytest.raises(ValueError, match=r"log_to_file names a file in the trial's folder"):
        tune.RunConfig(log_to_file="../out.txt")
    # tune.run refuses the same settings with the same words
    with pytest.raises(TypeError, match=r"tune.run: sync_config must be a tune.SyncConfig"):
        tune.run(objective, config={"x": 1}, sync_config=object(), storage_path=str(tmp_path))
    assert not any(tmp_path.iterdir())            # refused before anything was created


def test_tune_run_takes_a_progress_reporter(tmp_path, capsys):
    reporter = tune.CLIReporter(metric_columns={"val/acc": "accuracy"}, parameter_columns=["x"])
    with joblib.parallel_config(backend="threading"):
        analysis = tune.run(objective, config={"x": tune.grid_search([1, 2])}, metric="loss",
                            mode="min", storage_path=str(tmp_path), progress_reporter=reporter)
    assert analysis.best_config == {"x": 1}
    header = cells(final_table(capsys.readouterr().out)[0])
    assert header == ["Trial name", "status", "x", "accuracy"]


# -- what the display shows ---------------------------------------------------------------


def test_table_shows_the_configured_columns_and_rows(tmp_path, capsys):
    reporter = tune.CLIReporter(metric_columns={"loss": "L", "val/acc": "acc", "missing": "M"},
                                parameter_columns={"model/depth": "depth", "x": "x"},
                                max_progress_rows=3, sort_by_metric=True)
    fit(tmp_path, reporter, xs=(4, 2, 5, 1, 3))
    out = capsys.readouterr().out
    table = final_table(out)
    # the configured columns, in order; one no trial reported is left out (as in Ray)
    assert cells(table[0]) == ["Trial name", "status", "depth", "x", "L", "acc"]
    rows = [cells(line) for line in table[1:]]
    assert len(rows) == 3                                          # max_progress_rows
    assert [row[3] for row in rows] == ["1", "2", "3"]             # best loss first
    assert [row[4] for row in rows] == ["3", "6", "9"]             # the last loss: x * 3
    assert [row[5] for row in rows] == ["0.1", "0.2", "0.3"]       # val/acc, nested
    assert {row[2] for row in rows} == {"7"}                       # model/depth, nested
    assert "... and 2 more trials (2 TERMINATED)" in out
    assert "Trials (best loss first)" in out
    assert re.search(r"Current best trial: \S+ with loss=3 at iter 3, params: depth=7, x=1",
                     out)


def test_default_columns_are_inferred_as_in_ray(tmp_path, capsys):
    fit(tmp_path, tune.CLIReporter(infer_limit=1))
    header = cells(final_table(capsys.readouterr().out)[0])
    # Ray's default columns that appear, then infer_limit other metrics (the tuned one
    # first); strings and automatic result keys are never inferred
    assert header[:2] == ["Trial name", "status"]
    assert header[-3:] == ["iter", "total time (s)", "loss"]
    assert "note" not in header and "val/acc" not in header


def test_errored_trials_are_listed(tmp_path, capsys):
    fit(tmp_path, tune.CLIReporter(max_error_rows=1, max_progress_rows=2), xs=(1, 13))
    out = capsys.readouterr().out
    assert "Number of errored trials: 1" in out
    assert re.search(r"│ \S+_00001 +│ +1 │ ValueError: thirteen is unlucky", out)


def test_reporter_metric_picks_the_best_trial(tmp_path, capsys):
    # tuned on loss (min); the reporter's own metric and mode choose the best trial shown
    reporter = tune.CLIReporter(metric="val/acc", mode="max", parameter_columns=["x"])
    fit(tmp_path, reporter, xs=(1, 3, 2))
    out = capsys.readouterr().out
    assert re.search(r"Current best trial: \S+ with val/acc=0.3 at iter 3, params: x=3", out)
    assert re.search(r"Best trial: \S+ with val/acc=0.3\.", out)


def test_refresh_interval_is_max_report_frequency(tmp_path, capsys):
    # the output is not a terminal: each refresh prints a status block, as Ray's reporter does
    fit(tmp_path, tune.CLIReporter(max_report_frequency=0.1, print_intermediate_tables=True),
        name="often", trainable=slow_objective, xs=(1,))
    often = capsys.readouterr().out
    fit(tmp_path, tune.CLIReporter(max_report_frequency=600), name="rarely",
        trainable=slow_objective, xs=(1,))
    rarely = capsys.readouterr().out
    assert often.count("== Status ==") >= 3          # 0.8 s of trial, a block every 0.1 s
    assert rarely.count("== Status ==") == 1         # the first one only; then the final table
    assert often.count("│ Trial name") > 1           # intermediate tables were asked for
    assert rarely.count("│ Trial name") == 1         # (verbose=1 in a log: only the final one)


def test_display_stays_bounded_for_10000_trials(capsys):
    trials = [SimpleNamespace(trial_id=f"t{i:05d}",
                              status=("RUNNING", "TERMINATED", "ERROR", "PENDING")[i % 4],
                              config={"lr": i / 1e4, "deep": {"layers": i % 7}},
                              last_result={"loss": (i * 7919) % 10_000 / 100,
                                           "training_iteration": i % 50},
                              error="ValueError: bad" if i % 4 == 2 else None, n_failures=1)
              for i in range(10_000)]
    reporter = tune.CLIReporter(metric="loss", mode="min", sort_by_metric=True,
                                max_progress_rows=10, max_error_rows=3)
    started = time.perf_counter()
    reporter.report(trials, True)
    elapsed = time.perf_counter() - started
    out = capsys.readouterr().out
    assert len(out.splitlines()) < 40
    assert "Trial status: 2500 PENDING | 2500 RUNNING | 2500 TERMINATED | 2500 ERROR" in out
    # 5 running rows, then the 5 best finished ones (TERMINATED or ERROR)
    assert "... and 9990 more trials (2500 PENDING, 2495 RUNNING, 2498 TERMINATED, " \
           "2497 ERROR)" in out
    assert "Number of errored trials: 2500" in out and "... and 2497 more errored trials" in out
    assert re.search(r"Current best trial: t\d+ with loss=0 ", out)
    assert elapsed < 2.0


def test_paused_trials_are_listed_between_the_running_and_the_finished_ones(capsys):
    # Ray's reporter lists every status; fastasha's lists running, paused, then finished
    # trials, the first two in at least half of max_progress_rows
    statuses = ["TERMINATED", "PAUSED", "RUNNING", "PAUSED", "TERMINATED", "RUNNING", "PAUSED",
                "PAUSED", "TERMINATED", "PAUSED"]
    trials = [SimpleNamespace(trial_id=f"t{i}", status=status, config={"x": i},
                              last_result={"loss": float(10 - i), "training_iteration": 3})
              for i, status in enumerate(statuses)]
    tune.CLIReporter(metric="loss", mode="min", max_progress_rows=6).report(trials, True)
    out = capsys.readouterr().out
    assert "Trial status: 0 PENDING | 2 RUNNING | 5 PAUSED | 3 TERMINATED | 0 ERROR" in out
    rows = [cells(line)[:2] for line in final_table(out)[1:]]
    # in the order given (no sort_by_metric): the 2 running, 1 paused, then 3 finished
    # (the most recent first)
    assert rows == [["t2", "RUNNING"], ["t5", "RUNNING"], ["t1", "PAUSED"],
                    ["t8", "TERMINATED"], ["t4", "TERMINATED"], ["t0", "TERMINATED"]]
    assert "... and 4 more trials (4 PAUSED)" in out
    # a paused trial counts for the best one, as every trial does in Ray's display
    assert "Current best trial: t9 with loss=1 " in out


def test_paused_trials_of_10000_keep_the_table_bounded(capsys):
    trials = [SimpleNamespace(trial_id=f"t{i:05d}",
                              status=("RUNNING", "PAUSED", "TERMINATED", "PAUSED")[i % 4],
                              config={"lr": i / 1e4},
                              last_result={"loss": (i * 7919) % 10_000 / 100,
                                           "training_iteration": i % 50})
              for i in range(10_000)]
    tune.CLIReporter(metric="loss", mode="min", sort_by_metric=True,
                     max_progress_rows=20).report(trials, True)
    out = capsys.readouterr().out
    assert len(out.splitlines()) < 40
    assert "Trial status: 0 PENDING | 2500 RUNNING | 5000 PAUSED | 2500 TERMINATED" in out
    rows = [cells(line)[:2] for line in final_table(out)[1:]]
    # 10 live rows (15 running and 5 paused would leave the finished ones none): the 8
    # best running, the 2 best paused, then the 10 best finished
    assert [status for _, status in rows] == ["RUNNING"] * 8 + ["PAUSED"] * 2 + \
        ["TERMINATED"] * 10

    def best(status, n):
        chosen = [t for t in trials if t.status == status]
        return [t.trial_id for t in sorted(chosen, key=lambda t: t.last_result["loss"])[:n]]
    assert [t for t, _ in rows] == best("RUNNING", 8) + best("PAUSED", 2) + \
        best("TERMINATED", 10)
    assert "... and 9980 more trials (2492 RUNNING, 4998 PAUSED, 2490 TERMINATED)" in out


# -- a reporter of one's own ----------------------------------------------------------------


class Recorder(tune.ProgressReporter):
    def __init__(self):
        self.setups, self.reports = [], []

    def setup(self, start_time=None, total_samples=None, metric=None, mode=None, **kwargs):
        self.setups.append({"total_samples": total_samples, "metric": metric, "mode": mode})

    def should_report(self, trials, done=False):
        return True

    def report(self, trials, done, *sys_info):
        self.reports.append({
            "done": done, "sys_info": sys_info,
            "trials": [(t.trial_id, t.status, t.config, t.last_result.get("loss"))
                       for t in trials]})


def test_custom_reporter_is_called_as_ray_calls_it(tmp_path, capsys):
    recorder = Recorder()
    fit(tmp_path, recorder, xs=(1, 2, 3))
    assert recorder.setups == [{"total_samples": 3, "metric": "loss", "mode": "min"}]
    assert recorder.reports and all(len(r["sys_info"]) == 2 for r in recorder.reports)
    assert "Logical resource usage" in recorder.reports[-1]["sys_info"][1]
    assert [r["done"] for r in recorder.reports] == [False] * (len(recorder.reports) - 1) + [True]
    last = sorted(recorder.reports[-1]["trials"])
    # finished trials keep their config and last result for the reporter
    assert [(status, config["x"], loss) for _, status, config, loss in last] == \
        [("TERMINATED", 1, 3), ("TERMINATED", 2, 6), ("TERMINATED", 3, 9)]
    assert "Trial status" not in capsys.readouterr().out     # it replaces fastasha's display


def test_custom_reporter_error_ends_the_sweep_like_a_callback_error(tmp_path):
    class Broken(Recorder):
        def report(self, trials, done, *sys_info):
            raise RuntimeError("the reporter broke")

    with pytest.raises(RuntimeError, match="the reporter broke"):
        fit(tmp_path, Broken(), name="broken", trainable=slow_objective, xs=(1, 2))
    # what was reported is saved, and the sweep can be resumed
    assert tune.Tuner.can_restore(tmp_path / "broken")


@pytest.mark.parametrize("make", [lambda: tune.CLIReporter(max_report_frequency=0), Recorder])
def test_verbose_0_with_a_reporter_prints_nothing(tmp_path, capsys, make):
    reporter = make()
    fit(tmp_path, reporter, verbose=0, xs=(1, 13))
    assert capsys.readouterr().out == ""
    if isinstance(reporter, Recorder):                 # as in Ray: never asked to report
        assert reporter.reports == [] and reporter.setups == []


def leads_then_falls(config):
    """Trial 'a' leads (0.9), waits until 'b' has finished at 0.5, then ends at 0.1."""
    flags = config["flags"]
    if config["who"] == "a":
        tune.report({"acc": 0.9})
        time.sleep(0.7)          # past the periodic flush: the driver sees 0.9 now
        open(f"{flags}/a_led", "w").close()
        deadline = time.monotonic() + 20
        while not os.path.exists(f"{flags}/b_done") and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.3)          # b's end has reached the driver
        tune.report({"acc": 0.1})
    else:
        deadline = time.monotonic() + 20
        while not os.path.exists(f"{flags}/a_led") and time.monotonic() < deadline:
            time.sleep(0.02)
        tune.report({"acc": 0.5})
        open(f"{flags}/b_done", "w").close()


def test_a_leader_that_falls_behind_a_finished_trial_is_not_the_best(tmp_path, capsys):
    """As in Ray's display: the best is taken from every trial's latest result."""
    grid = tune.Tuner(
        leads_then_falls,
        param_space={"who": tune.grid_search(["a", "b"]), "flags": str(tmp_path)},
        tune_config=tune.TuneConfig(metric="acc", mode="max"),
        run_config=tune.RunConfig(storage_path=str(tmp_path), name="lead", verbose=1),
        resources={"cpu": 2},
    ).fit()
    assert (tmp_path / "a_led").exists() and (tmp_path / "b_done").exists()
    best = grid.get_best_result()
    assert best.config["who"] == "b"
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert f"Best trial: {best.trial_id} with acc=0.5" in last, last
