"""Progress reporters with Ray Tune's names: ``CLIReporter``, ``JupyterNotebookReporter``.

Ray Tune scripts configure the console output with a reporter::

    from fastasha import tune

    reporter = tune.CLIReporter(metric_columns={"loss": "loss", "val/acc": "acc"},
                                parameter_columns=["lr", "model/depth"],
                                max_progress_rows=10, sort_by_metric=True)
    tuner = tune.Tuner(objective, param_space=space,
                       tune_config=tune.TuneConfig(metric="loss", mode="min"),
                       run_config=tune.RunConfig(progress_reporter=reporter))

(or ``tune.run(..., progress_reporter=reporter)``). The module is also
importable as ``fastasha.tune.progress_reporter``, like
``ray.tune.progress_reporter``.

:class:`CLIReporter` and :class:`JupyterNotebookReporter` take Ray Tune 2.x's
constructor arguments and configure fastasha's own status display (see
:mod:`fastasha._progress`): which metric and parameter columns the trial table
shows (nested values named ``"a/b"``), how many rows, how often it is redrawn
(``max_report_frequency``), whether finished trials are listed best first
(``sort_by_metric``) and how many errored trials are listed. On a terminal the
display is redrawn in place; written to a file or a pipe, it prints a status
block every ``max_report_frequency`` seconds, as Ray's does (with the trial
table when ``print_intermediate_tables`` asks for it), and the final table at
the end.

Any other :class:`ProgressReporter` subclass (or a ``CLIReporter`` subclass
that overrides ``should_report`` or ``report``) is called the way Ray Tune's
legacy output engine calls it: ``setup(start_time=..., total_samples=...,
metric=..., mode=...)`` once before the first trial, then, in the driver and
at most four times a second, ``should_report(trials, done=False)`` and, when
that returns True, ``report(trials, done, *sys_info)``; at the end (or after
Ctrl-C) ``should_report(trials, done=True)`` and ``report(trials, True,
*sys_info)``. ``trials`` are the trials of the sweep in creation order (what
callbacks get, see :mod:`fastasha.callback`; finished ones keep their
``config`` and ``last_result`` for the reporter), and ``sys_info`` is the
scheduler's ``debug_string()`` and a line of resource use. As with a callback,
an exception raised by the reporter ends the sweep with that exception, after
what was reported so far is saved.

Differences from Ray Tune 2.x:

- Ray's default output engine (``RAY_AIR_NEW_OUTPUT=1``, the default since
  Ray 2.5) ignores ``progress_reporter`` with a warning; fastasha honours it,
  as Ray's legacy engine (``RAY_AIR_NEW_OUTPUT=0``) does.
- With ``verbose=0`` the reporter is not used at all: nothing is printed and
  none of its methods is called (Ray calls ``setup`` but never ``report``).
- A reporter's own ``metric`` and ``mode`` may be given together with
  ``TuneConfig(metric=..., mode=...)``; they then choose the "best trial" of
  the display only (Ray's legacy engine raises ``ValueError``).
- The table has no ``loc`` (node address) column; it shows the running
  trials first, then the paused ones, then the finished ones that fastasha
  keeps for it: the most recent ones, or with ``sort_by_metric=True`` the
  best ones (and the running and paused ones best first too). Ray lists
  every trial, oldest first, cut to ``max_progress_rows`` fairly between
  statuses.
- ``total_samples`` is replaced by the sweep's own count when it starts, as
  in Ray; ``JupyterNotebookReporter(overwrite=...)`` has no effect (rich
  redraws the cell's output in place).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from ._validation import check_bool, check_int, check_mode, check_real

#: The lowest refresh interval of the display, in seconds: a smaller
#: ``max_report_frequency`` is raised to it, so that drawing cannot crowd out the driver.
MIN_REPORT_INTERVAL = 0.1


class ProgressReporter:
    """Base class of progress reporters (Ray Tune's ``tune.ProgressReporter``).

    Subclass it and implement :meth:`should_report` and :meth:`report`; the
    driver calls them as the module docstring describes. :meth:`setup` is
    optional.
    """

    def setup(self, start_time: float | None = None, total_samples: int | None = None,
              metric: str | None = None, mode: str | None = None, **kwargs: Any) -> None:
        """Called once before the first trial starts; does nothing by default.

        Parameters
        ----------
        start_time : float or None
            ``time.time()`` when the sweep started.
        total_samples : int or None
            The number of trials the sweep will create (None when it runs
            until its time budget).
        metric, mode : str or None
            The tuned metric and mode (``TuneConfig``), None if there is none.
        """

    def should_report(self, trials: Sequence, done: bool = False) -> bool:
        """Whether :meth:`report` should be called now; ``done`` is True for the last call."""
        raise NotImplementedError

    def report(self, trials: Sequence, done: bool, *sys_info: str) -> None:
        """Report the progress of ``trials``; ``done`` is True for the last call."""
        raise NotImplementedError


def _check_columns(name: str, columns: Any) -> list[str] | dict[str, str]:
    """A copy of a ``metric_columns``/``parameter_columns`` argument, or a clear error."""
    if isinstance(columns, Mapping):
        for key, header in columns.items():
            if not isinstance(key, str) or not isinstance(header, str):
                raise TypeError(
                    f"{name} must map column names to the headers to show (strings), got "
                    f"{key!r}: {header!r}; for example {{'val/loss': 'loss'}}"
                )
        return dict(columns)
    if isinstance(columns, (str, bytes)) or not isinstance(columns, (list, tuple)):
        raise TypeError(
            f"{name} must be a list of names or a dict of name -> header, got {columns!r}"
            + (f"; put it in a list: [{columns!r}]" if isinstance(columns, str) else "")
        )
    for key in columns:
        if not isinstance(key, str):
            raise TypeError(f"{name} must hold names (strings), got {key!r} in {columns!r}")
    if len(set(columns)) != len(columns):
        raise ValueError(f"{name} names a column twice: {list(columns)!r}")
    return list(columns)


def _column_items(columns: list[str] | dict[str, str]) -> tuple[tuple[str, str], ...]:
    """``(key, header)`` pairs of a column list or dict."""
    if isinstance(columns, dict):
        return tuple(columns.items())
    return tuple((key, key) for key in columns)


class TuneReporterBase(ProgressReporter):
    """Common base of :class:`CLIReporter` and :class:`JupyterNotebookReporter`.

    Parameters
    ----------
    metric_columns : list of str, dict of str to str, or None, default=None
        Result keys shown as columns (``"a/b"`` names the nested value
        ``result["a"]["b"]``); a dict maps each key to the header shown.
        Columns that no listed trial has reported are left out. None shows
        Ray's default columns that appear (``training_iteration`` as
        ``iter``, ``time_total_s``, ``mean_loss``, ``mean_accuracy``, ...) and
        up to ``infer_limit`` other numeric metrics, the tuned one first.
    parameter_columns : list of str, dict of str to str, or None, default=None
        Config keys shown as columns (``"a/b"`` for nested ones), in this
        order; a dict maps each key to its header. None (or empty) shows the
        first few config values that fit the console's width.
    total_samples : int or None, default=None
        Replaced by the sweep's number of trials when it starts (as in Ray).
    max_progress_rows : int, default=20
        Rows of the trial table; the rest are counted in a "... and N more"
        line.
    max_error_rows : int, default=20
        Errored trials listed below the table (0 lists none).
    max_column_length : int, default=20
        Headers and values longer than this are cut, ending in ``...``.
    max_report_frequency : float, default=5
        Seconds between two redraws of the display (at least
        :data:`MIN_REPORT_INTERVAL`); between two calls of
        :meth:`report` for a reporter of your own.
    infer_limit : int, default=3
        How many metrics to show without ``metric_columns``.
    print_intermediate_tables : bool or None, default=None
        Whether the trial table is shown while the sweep runs, or only the
        status lines (the final table is always printed). None shows it on a
        terminal, and in a log file or pipe with ``verbose=2`` (or 3).
    metric : str or None, default=None
        The metric that picks the "current best trial"; by default the
        tuned one (``TuneConfig.metric``).
    mode : {"min", "max"} or None, default=None
        With ``metric``: whether smaller or larger values are better; by
        default ``TuneConfig.mode``.
    sort_by_metric : bool, default=False
        List trials best first by ``metric``; otherwise running trials in the
        order they started, then the most recently finished ones.

    Raises
    ------
    TypeError, ValueError
        For an argument of the wrong type or out of range.
    """

    #: Result keys shown when present and no ``metric_columns`` are given, with their headers.
    DEFAULT_COLUMNS: ClassVar[dict[str, str]] = {
        "mean_accuracy": "acc",
        "mean_loss": "loss",
        "training_iteration": "iter",
        "time_total_s": "total time (s)",
        "timesteps_total": "ts",
        "episode_reward_mean": "reward",
    }

    def __init__(
        self,
        *,
        metric_columns: list[str] | dict[str, str] | None = None,
        parameter_columns: list[str] | dict[str, str] | None = None,
        total_samples: int | None = None,
        max_progress_rows: int = 20,
        max_error_rows: int = 20,
        max_column_length: int = 20,
        max_report_frequency: float = 5,
        infer_limit: int = 3,
        print_intermediate_tables: bool | None = None,
        metric: str | None = None,
        mode: str | None = None,
        sort_by_metric: bool = False,
    ) -> None:
        self._metrics_override = metric_columns is not None
        self._metric_columns: list[str] | dict[str, str] = (
            _check_columns("metric_columns", metric_columns) if metric_columns is not None
            else dict(self.DEFAULT_COLUMNS))
        self._parameter_columns: list[str] | dict[str, str] = (
            _check_columns("parameter_columns", parameter_columns)
            if parameter_columns is not None else [])
        if total_samples is not None:
            check_int("total_samples", total_samples, minimum=0)
        self._total_samples = total_samples
        self._max_progress_rows = check_int(
            "max_progress_rows", max_progress_rows, minimum=1,
            hint="; the table always has a limit, so that it stays readable for any "
                 "number of trials")
        self._max_error_rows = check_int("max_error_rows", max_error_rows, minimum=0)
        self._max_column_length = check_int("max_column_length", max_column_length, minimum=4)
        frequency = check_real("max_report_frequency", max_report_frequency)
        if not frequency >= 0 or math.isinf(frequency):
            raise ValueError(
                f"max_report_frequency must be a number of seconds, at least 0, got "
                f"{max_report_frequency!r}"
            )
        self._max_report_frequency = frequency
        self._infer_limit = check_int("infer_limit", infer_limit, minimum=0)
        if print_intermediate_tables is not None:
            check_bool("print_intermediate_tables", print_intermediate_tables,
                       hint=" or None")
        self._print_intermediate_tables = print_intermediate_tables
        if metric is not None and not isinstance(metric, str):
            raise TypeError(f"metric must be the name of a result key (a string) or None, "
                            f"got {metric!r}")
        self._metric = metric
        self._mode = check_mode(mode)
        self._sort_by_metric = check_bool("sort_by_metric", sort_by_metric)
        self._start_time = time.time()
        self._last_report_time = 0.0

    # -- Ray's methods ---------------------------------------------------------------

    def setup(self, start_time: float | None = None, total_samples: int | None = None,
              metric: str | None = None, mode: str | None = None, **kwargs: Any) -> None:
        """Take the sweep's start time, number of trials, metric and mode."""
        self.set_start_time(start_time)
        self.set_total_samples(total_samples)
        self.set_search_properties(metric, mode)

    def set_search_properties(self, metric: str | None, mode: str | None) -> bool:
        """Use ``metric``/``mode`` unless the reporter was given its own.

        Unlike Ray's legacy engine, a reporter that has its own ``metric`` or
        ``mode`` keeps them instead of raising ``ValueError``.
        """
        if self._metric is None and metric is not None:
            self._metric = metric
        if self._mode is None and mode is not None:
            self._mode = check_mode(mode)
        return True

    def set_total_samples(self, total_samples: int | None) -> None:
        self._total_samples = total_samples

    def set_start_time(self, timestamp: float | None = None) -> None:
        self._start_time = time.time() if timestamp is None else float(timestamp)

    def should_report(self, trials: Sequence, done: bool = False) -> bool:
        """True at most once every ``max_report_frequency`` seconds, and when ``done``."""
        now = time.time()
        if now - self._last_report_time > self._max_report_frequency:
            self._last_report_time = now
            return True
        return bool(done)

    def add_metric_column(self, metric: str, representation: str | None = None) -> None:
        """Add a metric column (header ``representation``, by default ``metric``).

        Raises
        ------
        ValueError
            If the column is there already, or ``representation`` differs from
            ``metric`` while the columns were given as a list.
        """
        self._add_column("metric", self._metric_columns, metric, representation)
        self._metrics_override = True

    def add_parameter_column(self, parameter: str, representation: str | None = None) -> None:
        """Add a config column (header ``representation``, by default ``parameter``).

        Raises
        ------
        ValueError
            As :meth:`add_metric_column`.
        """
        self._add_column("parameter", self._parameter_columns, parameter, representation)

    @staticmethod
    def _add_column(kind: str, columns: list[str] | dict[str, str], name: Any,
                    representation: Any) -> None:
        if not isinstance(name, str):
            raise TypeError(f"the {kind} must be a name (a string), got {name!r}")
        if representation is not None and not isinstance(representation, str):
            raise TypeError(f"representation must be a string or None, got {representation!r}")
        if name in columns:
            raise ValueError(f"the {kind} column {name!r} is shown already")
        if isinstance(columns, dict):
            columns[name] = representation or name
        elif representation is not None and representation != name:
            raise ValueError(
                f"representation={representation!r} cannot differ from the {kind} name "
                f"{name!r}: this reporter's {kind} columns were given as a list; give them "
                f"as a dict of name -> header to rename columns"
            )
        else:
            columns.append(name)

    def report(self, trials: Sequence, done: bool, *sys_info: str) -> None:
        """Print the status display of ``trials`` once (not in place).

        The driver does not call this for a stock reporter: it keeps a live
        display configured by the reporter instead. It is called for a
        subclass that overrides :meth:`should_report`, and by a subclass's
        own ``report`` through ``super().report(...)``.
        """
        from ._progress import ProgressReporter as Display
        from ._progress import default_console, snapshot_of_trials

        console = default_console()
        display = Display(1, console=console, max_rows=self._max_progress_rows,
                          layout=self._layout(verbose=1, live=console.is_terminal))
        snapshot = snapshot_of_trials(trials, total=self._total_samples,
                                      metric=self._metric, mode=self._mode,
                                      elapsed_s=time.time() - self._start_time,
                                      sort_by_metric=self._sort_by_metric,
                                      max_rows=self._max_progress_rows,
                                      max_error_rows=self._max_error_rows)
        for line in sys_info:
            console.print(line, markup=False, highlight=False, soft_wrap=True)
        console.print(display.render(snapshot, final=bool(done)))

    # -- for fastasha's display ------------------------------------------------------

    @property
    def metric(self) -> str | None:
        """The reporter's own metric (or the tuned one after :meth:`setup`)."""
        return self._metric

    @property
    def mode(self) -> str | None:
        """The reporter's own mode (or the tuned one after :meth:`setup`)."""
        return self._mode

    @property
    def max_progress_rows(self) -> int:
        return self._max_progress_rows

    @property
    def max_report_frequency(self) -> float:
        return self._max_report_frequency

    @property
    def sort_by_metric(self) -> bool:
        return self._sort_by_metric

    @property
    def max_error_rows(self) -> int:
        return self._max_error_rows

    def _layout(self, verbose: int, live: bool) -> Any:
        """The :class:`fastasha._progress.TableLayout` this reporter asks for."""
        from ._progress import TableLayout

        intermediate = self._print_intermediate_tables
        if intermediate is None:
            intermediate = live or verbose >= 2
        return TableLayout(
            metric_columns=_column_items(self._metric_columns) if self._metrics_override
            else None,
            default_columns=tuple(self.DEFAULT_COLUMNS.items()),
            parameter_columns=_column_items(self._parameter_columns),
            infer_limit=self._infer_limit,
            max_column_length=self._max_column_length,
            max_error_rows=self._max_error_rows,
            sort_by_metric=self._sort_by_metric,
            intermediate_tables=bool(intermediate),
        )

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(metric_columns={self._metric_columns!r}, "
                f"parameter_columns={self._parameter_columns!r}, "
                f"max_progress_rows={self._max_progress_rows}, "
                f"max_report_frequency={self._max_report_frequency:g})")


class CLIReporter(TuneReporterBase):
    """The status display on a terminal or in a log (Ray Tune's ``tune.CLIReporter``).

    Takes the arguments of :class:`TuneReporterBase`, all keyword-only, as in
    Ray. Pass it as ``RunConfig(progress_reporter=...)`` or
    ``tune.run(..., progress_reporter=...)``.

    Examples
    --------
    >>> from fastasha import tune
    >>> reporter = tune.CLIReporter(metric_columns=["loss"], max_progress_rows=5)
    >>> reporter.add_metric_column("val/acc")
    >>> reporter.add_parameter_column("lr")
    >>> reporter
    CLIReporter(metric_columns=['loss', 'val/acc'], parameter_columns=['lr'], \
max_progress_rows=5, max_report_frequency=5)
    """


class JupyterNotebookReporter(TuneReporterBase):
    """The status display in a notebook (Ray Tune's ``tune.JupyterNotebookReporter``).

    The same display as :class:`CLIReporter`: rich detects the notebook and
    redraws the cell's output in place.

    Parameters
    ----------
    overwrite : bool, default=True
        Accepted for Ray scripts; no effect.
    **kwargs
        The arguments of :class:`TuneReporterBase`.
    """

    def __init__(self, *, overwrite: bool = True, **kwargs: Any) -> None:
        self._overwrite = check_bool("overwrite", overwrite)
        super().__init__(**kwargs)


def is_stock_reporter(reporter: Any) -> bool:
    """Whether ``reporter`` only configures fastasha's display (it overrides nothing Ray calls)."""
    cls = type(reporter)
    return isinstance(reporter, TuneReporterBase) and \
        cls.report is TuneReporterBase.report and \
        cls.should_report is TuneReporterBase.should_report


def check_progress_reporter(reporter: Any) -> Any:
    """``RunConfig.progress_reporter``, or a clear error for what cannot be one."""
    if reporter is None or isinstance(reporter, ProgressReporter):
        return reporter
    if isinstance(reporter, type):
        raise TypeError(
            f"progress_reporter must be a reporter object, got the class {reporter.__name__}; "
            f"pass an instance, for example {reporter.__name__}()"
        )
    module = type(reporter).__module__ or ""
    if module == "ray" or module.startswith("ray."):
        raise TypeError(
            f"progress_reporter is Ray's {type(reporter).__name__}; use fastasha's, with the "
            f"same arguments: from fastasha import tune; tune.{type(reporter).__name__}(...)"
        )
    if not (callable(getattr(reporter, "should_report", None))
            and callable(getattr(reporter, "report", None))):
        raise TypeError(
            f"progress_reporter must be a tune.CLIReporter, a tune.JupyterNotebookReporter or "
            f"a tune.ProgressReporter subclass with should_report() and report(), got "
            f"{reporter!r}"
        )
    return reporter


class ReporterCalls:
    """Calls a reporter of the user's own as Ray's legacy engine does; see the module docstring.

    It stands in the driver where the status display goes: the driver calls
    :meth:`update` with the sweep's trials at each progress tick.

    Parameters
    ----------
    reporter : ProgressReporter
        Has ``should_report(trials, done=False)`` and ``report(trials, done, *sys_info)``.
    sys_info : callable
        Returns the ``sys_info`` strings; called only before a report.
    lines : object or None
        A display whose ``trial_finished(row, error)`` prints the per-trial
        lines of ``verbose=2``; None prints none.
    """

    def __init__(self, reporter: Any, sys_info: Any, lines: Any = None) -> None:
        self.reporter = reporter
        self.sys_info = sys_info
        self.lines = lines

    def start(self) -> None:
        """Nothing to start: the reporter draws when it reports."""

    def update(self, trials: Sequence) -> None:
        if self.reporter.should_report(trials, done=False):
            self.reporter.report(trials, False, *self.sys_info())

    def trial_finished(self, row: Any, error: str | None = None) -> None:
        if self.lines is not None:
            self.lines.trial_finished(row, error)

    def close(self, trials: Sequence) -> None:
        """The last report, with ``done=True``."""
        if self.reporter.should_report(trials, done=True):
            self.reporter.report(trials, True, *self.sys_info())

