"""Live status display of a tuning run, in the style of Ray Tune's console output.

The driver builds a :class:`ProgressSnapshot` (trial counts by status, the best
trial so far, the running and the paused trials) at most a few times a second
and hands it to a :class:`ProgressReporter`, which draws it with :mod:`rich`:

.. code-block:: text

    Trial status: 3 PENDING | 20 RUNNING | 75 TERMINATED | 2 ERROR (100/100 trials)
    Experiment: asha | Total running time: 0:01:23
    Current best trial: trial_00042 with loss=0.1234 at iter 27, params: lr=0.01, model/depth=3
    Running trials (best loss first)
    ╭─────────────┬─────────┬───────┬─────────────┬──────┬────────╮
    │ Trial name  │ status  │ lr    │ model/depth │ iter │   loss │
    ...
    ... and 4980 more running trials

A sweep whose scheduler pauses trials (PBT, HyperBand,
``MedianStoppingRule(hard_stop=False)``) counts them in the status line
(``| 40 PAUSED``) and lists them in the table after the running ones, as
Ray's status table lists them too: best first, and while running trials
would fill the table, in a quarter of its rows (5 of the default 20), with
"... and 4985 more running and 35 more paused trials" below it.

The verbosity levels follow Ray Tune's ``verbose``: 0 prints nothing, 1 shows
the live status table, 2 also prints one line per finished trial, and 3 is
accepted as an alias of 2.

On a terminal the table is redrawn in place (``rich.live.Live``), and the
per-trial lines of ``verbose=2`` wait for its next redraw, which prints them
above it all at once: printing each line as it came would redraw the table
once per trial. When the output is not a terminal (a pipe, a log file,
pytest's capture, CI), nothing is drawn while the run goes on: the final
table is printed once, at :meth:`ProgressReporter.close`, and the per-trial
lines of ``verbose=2`` are plain lines, printed as they come.

A Ray-style progress reporter (``tune.CLIReporter``, see
:mod:`fastasha.progress_reporter`) changes the table through a
:class:`TableLayout`: its metric and parameter columns, running trials then
finished ones (kept by :class:`FinishedRows`), an error table, and, when the
output is not a terminal, a status block printed at every update, as Ray's
reporter prints one every ``max_report_frequency`` seconds.
"""

from __future__ import annotations

import heapq
import math
import numbers
import os
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import islice
from types import TracebackType
from typing import Any

from rich import box
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from ._rows import MISSING, lookup
from ._validation import check_int, check_mode

#: The trial statuses, in the order the status line lists them.
STATUSES = ("PENDING", "RUNNING", "PAUSED", "TERMINATED", "ERROR")

_STATUS_STYLES = {
    "PENDING": "dim",
    "RUNNING": "blue",
    "PAUSED": "yellow",
    "TERMINATED": "green",
    "ERROR": "bold red",
}
_MAX_CELL_CHARS = 24  # config values and column names are cut to this many characters
_MAX_ID_CHARS = 40  # trial ids are cut to this many characters
_MAX_ERROR_CHARS = 200  # the error text of a verbose=2 line is cut to this many characters
_MAX_LEAVES = 64  # config leaves looked at per trial row
_MAX_DEPTH = 8  # nesting depth below which a mapping is shown as one leaf
_MAX_ITEMS = 8  # containers with more items are shown as "<list of n>"


@dataclass(frozen=True)
class TrialRow:
    """What the status display shows of one trial.

    Parameters
    ----------
    trial_id : str
        The id the user sees.
    status : str
        ``"PENDING"``, ``"RUNNING"``, ``"PAUSED"``, ``"TERMINATED"`` or ``"ERROR"``.
        Other strings are displayed as given, without a colour.
    iteration : int or None
        The latest ``training_iteration``; None before the first report.
    metric : float or None
        The latest value of the tuned metric; None if it was not reported yet.
        NaN and infinities are displayed as ``nan``, ``inf`` and ``-inf``.
    config : dict
        The resolved config, flat or nested. Its first few leaves are shown,
        nested keys joined as ``"a/b"``; any object is accepted and shown as a
        truncated ``repr``.
    result : dict or None, default=None
        The latest result, where a :class:`TableLayout`'s metric columns are
        read (not copied: the display only reads it).
    error : str or None, default=None
        The error of a trial that ended in ERROR, for the error table.
    n_failures : int, default=0
        How many times the trial failed, for the error table.
    """

    trial_id: str
    status: str
    iteration: int | None
    metric: float | None
    config: dict
    result: Mapping | None = None
    error: str | None = None
    n_failures: int = 0


@dataclass(frozen=True)
class ProgressSnapshot:
    """The state of a tuning run at one moment, as the driver hands it over.

    Parameters
    ----------
    elapsed_s : float
        Seconds since the run started.
    counts : dict of str to int
        Number of trials by status. Statuses not in :data:`STATUSES` are
        listed after those four when non-zero.
    total : int or None
        The expected number of trials; None when it is open-ended
        (``num_samples=-1``).
    best : TrialRow or None
        The best trial so far by ``metric`` and ``mode``; None if there is none yet.
    running : list of TrialRow
        Running trials. Only the best ``max_rows`` of them are shown (see
        :class:`ProgressReporter`), so the driver may pass all of them or, to
        save work, only the best ``max_rows``: the "... and N more" line counts
        from ``counts["RUNNING"]`` when that is larger than ``len(running)``.
    metric : str or None
        The tuned metric's name.
    mode : {"min", "max"} or None
        Whether smaller or larger values of ``metric`` are better; None leaves
        the running trials in the order given.
    finished : list of TrialRow, default=[]
        Finished trials that a display with a :class:`TableLayout` lists
        after the running ones, in the order to list them (see
        :class:`FinishedRows`); the display may show only the first ones.
    errors : list of TrialRow, default=[]
        Errored trials for the error table of a :class:`TableLayout`, the
        most recent first.
    stop_reason : str or None, default=None
        Why the sweep stopped before its trials were done (its time budget,
        a stopper, ``fail_fast``), for the closing line; None if it did not.
    paused : list of TrialRow, default=[]
        Paused trials, listed after the running ones (see
        :class:`ProgressReporter`); as with ``running``, the driver may pass
        only some of them: the "... and N more" line counts from
        ``counts["PAUSED"]`` when that is larger than ``len(paused)``.

    Raises
    ------
    ValueError
        If ``mode`` is not ``"min"``, ``"max"`` or None.
    """

    elapsed_s: float
    counts: dict[str, int]
    total: int | None
    best: TrialRow | None
    running: list[TrialRow]
    metric: str | None
    mode: str | None
    finished: list[TrialRow] = field(default_factory=list)
    errors: list[TrialRow] = field(default_factory=list)
    stop_reason: str | None = None
    paused: list[TrialRow] = field(default_factory=list)

    def __post_init__(self) -> None:
        check_mode(self.mode)


# The width of the default console when standard output is a file or a pipe (a log):
# lines as long as the tables need, as Ray's reporter prints them, rather than rich's
# 80 columns, which cut trial names and left out config columns.
LOG_WIDTH = 1000


def default_console() -> Console:
    """A console on standard output; in a log, as wide as the tables need.

    On a terminal (or in Jupyter) rich's width is the screen's. Elsewhere
    rich assumes 80 columns unless ``COLUMNS`` is set; then the width is
    ``LOG_WIDTH`` instead, so that a table is printed whole.
    """
    console = Console()
    if not is_live(console) and not os.environ.get("COLUMNS", "").strip().isdigit():
        console = Console(width=LOG_WIDTH)
    return console


def is_live(console: Console) -> bool:
    """Whether ``console`` can redraw in place (a terminal that is not dumb, or Jupyter)."""
    return bool(console.is_jupyter or (console.is_terminal and not console.is_dumb_terminal))


def _check_verbose(verbose: Any) -> int:
    """Return the effective level (0, 1 or 2) of a Ray-style ``verbose`` argument."""
    if isinstance(verbose, bool) or not isinstance(verbose, numbers.Integral):
        raise TypeError(
            f"verbose must be an int (0, 1, 2 or 3), got {verbose!r} of type "
            f"{type(verbose).__name__}; use 0 for no output, 1 for the live status table, "
            "2 to also print a line per finished trial"
        )
    if not 0 <= verbose <= 3:
        raise ValueError(
            f"verbose must be 0, 1, 2 or 3, got {verbose!r}; 0 prints nothing, 1 shows the "
            "live status table, 2 also prints a line per finished trial (3 is an alias of 2)"
        )
    return min(int(verbose), 2)


def _clip(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters, ending in ``...`` when cut."""
    if len(text) <= limit:
        return text
    return text[: max(limit - 3, 0)] + "..."


def _format_metric(value: Any, limit: int = _MAX_CELL_CHARS) -> str:
    """A metric value with 4 significant digits (``0.1235``, ``1.235e+05``, ``nan``, ``-inf``).

    None is shown as ``-``; a value that is not a number as its ``repr``, cut
    to ``limit`` characters.
    """
    if value is None:
        return "-"
    try:
        return f"{float(value):.4g}"
    except Exception:
        return _format_leaf(value, limit)


def _format_leaf(value: Any, limit: int = _MAX_CELL_CHARS) -> str:
    """A short, single-line text for one config value of any type."""
    try:
        if value is None or isinstance(value, (bool, str)):
            text = str(value)
        elif isinstance(value, numbers.Integral):
            text = str(int(value))
        elif isinstance(value, numbers.Real):
            text = f"{float(value):.4g}"
        elif isinstance(value, (list, tuple, set, frozenset)) and len(value) > _MAX_ITEMS:
            text = f"<{type(value).__name__} of {len(value)}>"
        else:
            text = repr(value)
    except Exception:  # a broken __repr__, or an int too long for str()
        text = f"<{type(value).__name__}>"
    return _clip(" ".join(text.split()), limit)


def _value_at(container: Any, key: str) -> Any:
    """``container[key]`` (``"a/b"`` for a nested value); :data:`MISSING` if there is none."""
    if not isinstance(container, Mapping):
        return MISSING
    return lookup(container, key)


def _format_cell(value: Any, limit: int, metric: bool = False) -> str:
    """A table cell: empty for a missing value; numbers as :func:`_format_metric` does."""
    if value is MISSING or value is None:
        return ""
    if metric and not isinstance(value, (numbers.Real, str, bytes)):
        return _clip(_format_metric(value, limit), limit)  # a 0-d array, a framework scalar
    return _format_leaf(value, limit)


def _iter_leaves(config: Mapping, prefix: str = "", depth: int = 0) -> Iterator[tuple[str, Any]]:
    """Yield ``("a/b", value)`` for the leaves of a nested mapping, depth first."""
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value and depth < _MAX_DEPTH:
            yield from _iter_leaves(value, name + "/", depth + 1)
        else:
            yield name, value


def _leaves(config: Any) -> dict[str, Any]:
    """The first ``_MAX_LEAVES`` leaves of ``config``, flattened; {} if it is not a mapping."""
    if not isinstance(config, Mapping):
        return {}
    return dict(islice(_iter_leaves(config), _MAX_LEAVES))


def _format_duration(seconds: Any) -> str:
    """``H:MM:SS`` for a number of seconds; ``?`` if it is not a finite, non-negative number."""
    try:
        seconds = float(seconds)
    except Exception:
        return "?"
    if not math.isfinite(seconds) or seconds < 0:
        return "?"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


def _error_line(error: str) -> str:
    """The line of an error text worth showing: its first non-empty line.

    For a formatted traceback (``Traceback (most recent call last):`` ...) that
    is the last non-empty line instead, which names the exception.
    """
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    if not lines:
        return ""
    if lines[0].startswith("Traceback (most recent call last)"):
        return lines[-1]
    return lines[0]


def _sort_key(mode: str) -> Any:
    """Key that puts the best metric first for ``mode``; None and NaN go last."""
    sign = 1.0 if mode == "min" else -1.0

    def key(row: TrialRow) -> tuple[int, float]:
        try:
            value = float(row.metric)  # type: ignore[arg-type]
        except Exception:
            return (1, 0.0)
        if value != value:
            return (1, 0.0)
        return (0, sign * value)

    return key


def _live_split(n: int, n_running: int, n_paused: int) -> tuple[int, int]:
    """How many of ``n_running`` running and ``n_paused`` paused rows fit ``n`` rows.

    Paused rows take the rows running ones leave, and at least a quarter of
    ``n`` while running ones would fill them all (Ray's table shows 5 rows
    of each status once it would pass 20), so that neither kind hides the
    other whatever the number of trials.
    """
    n_paused_shown = min(n_paused, max(n - n_running, n // 4))
    return min(n_running, n - n_paused_shown), n_paused_shown


#: Result keys every result carries (Ray Tune's and fastasha's automatic fields):
#: never inferred as metric columns.
AUTO_RESULT_KEYS = frozenset((
    "training_iteration", "time_this_iter_s", "time_total_s", "timestamp", "date",
    "trial_id", "hostname", "node_ip", "pid", "done", "episodes_total", "timesteps_total",
    "time_since_restore", "timesteps_since_restore", "iterations_since_restore", "config",
    "checkpoint_dir_name", "experiment_tag",
))


@dataclass(frozen=True)
class TableLayout:
    """What the trial table shows, as a progress reporter (``tune.CLIReporter``) asks.

    Without a layout, :class:`ProgressReporter` shows its own table: the
    running and the paused trials, a few config values, the iteration and
    the tuned metric. With one, the table lists running, paused and then
    finished trials, with the columns below, and an error table follows it.

    Parameters
    ----------
    metric_columns : tuple of (key, header) or None, default=None
        Result keys to show (``"a/b"`` for nested values), with their headers;
        those that no listed row has are left out. None infers them: the
        ``default_columns`` that appear, then up to ``infer_limit`` other
        numeric result keys, the snapshot's metric first.
    default_columns : tuple of (key, header), default=()
        See ``metric_columns``.
    parameter_columns : tuple of (key, header), default=()
        Config keys to show (``"a/b"`` for nested values); empty shows the
        first config leaves that fit the console's width.
    infer_limit : int, default=3
    max_column_length : int, default=20
        Headers and cells are cut to this many characters.
    max_error_rows : int, default=20
        Rows of the error table (0: only the number of errored trials).
    sort_by_metric : bool, default=False
        Running and paused rows best first by the snapshot's metric
        (otherwise in the order given).
    intermediate_tables : bool, default=True
        Whether the tables are drawn before the final display; without them
        only the status lines are.
    """

    metric_columns: tuple[tuple[str, str], ...] | None = None
    default_columns: tuple[tuple[str, str], ...] = ()
    parameter_columns: tuple[tuple[str, str], ...] = ()
    infer_limit: int = 3
    max_column_length: int = 20
    max_error_rows: int = 20
    sort_by_metric: bool = False
    intermediate_tables: bool = True

    def __post_init__(self) -> None:
        check_int("infer_limit", self.infer_limit, minimum=0)
        check_int("max_column_length", self.max_column_length, minimum=4)
        check_int("max_error_rows", self.max_error_rows, minimum=0)


def _is_number(value: Any) -> bool:
    """Whether a result value may be inferred as a metric column (``bool`` is not)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


class FinishedRows:
    """The finished trials a display with a :class:`TableLayout` lists, in bounded memory.

    Keeps the ``n_rows`` most recently finished trials, or with ``metric``,
    ``mode`` and ``sort_by_metric`` the ``n_rows`` best by ``metric``; the
    ``n_errors`` most recent errored trials; and, with ``metric`` and
    ``mode``, the best finished trial. :meth:`add` costs O(1) amortised
    (O(log n_rows) when sorting); memory is O(n_rows + n_errors) rows,
    whatever the number of trials.

    Parameters
    ----------
    n_rows, n_errors : int
    metric : str or None
    mode : {"min", "max"} or None
    sort_by_metric : bool, default=False
    """

    def __init__(self, n_rows: int, n_errors: int, metric: str | None, mode: str | None,
                 sort_by_metric: bool = False) -> None:
        self._n_rows = check_int("n_rows", n_rows, minimum=0)
        check_mode(mode)
        self._key = _sort_key(mode) if metric is not None and mode is not None else None
        self._sorted = bool(sort_by_metric) and self._key is not None
        self._rows: list[TrialRow] | deque[TrialRow] = [] if self._sorted \
            else deque(maxlen=self._n_rows)
        self._errors: deque[TrialRow] = deque(maxlen=check_int("n_errors", n_errors, minimum=0))
        self.best: TrialRow | None = None

    def add(self, row: TrialRow) -> None:
        """Take a trial that has just finished."""
        if row.status == "ERROR" and self._errors.maxlen:
            self._errors.append(row)
        key = self._key
        if key is not None and key(row)[0] == 0 and (self.best is None or key(row) < key(self.best)):
            self.best = row
        if not self._n_rows:
            return
        if self._sorted:
            rows = self._rows
            rows.append(row)
            if len(rows) >= 2 * self._n_rows:
                self._rows = heapq.nsmallest(self._n_rows, rows, key=key)
        else:
            self._rows.append(row)

    def rows(self) -> list[TrialRow]:
        """The kept trials: best first, or the most recently finished first."""
        if self._sorted:
            return heapq.nsmallest(self._n_rows, self._rows, key=self._key)
        return list(reversed(self._rows))

    def errors(self) -> list[TrialRow]:
        """The kept errored trials, the most recent first."""
        return list(reversed(self._errors))


def metric_of(result: Any, metric: str | None) -> float | None:
    """The number ``metric`` names in ``result`` (``"a/b"`` for a nested one), else None."""
    if metric is None or not isinstance(result, Mapping):
        return None
    value = lookup(result, metric, None)
    if value is None or isinstance(value, (str, bytes)):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def best_of(rows: Sequence[TrialRow | None], mode: str | None) -> TrialRow | None:
    """The row with the best ``metric`` for ``mode`` (the first of ties); None if none has one."""
    if mode is None:
        return None
    key = _sort_key(mode)
    best = None
    for row in rows:
        if row is not None and key(row)[0] == 0 and (best is None or key(row) < key(best)):
            best = row
    return best


def snapshot_of_trials(trials: Sequence, *, total: int | None, metric: str | None,
                       mode: str | None, elapsed_s: float, sort_by_metric: bool = False,
                       max_rows: int = 20, max_error_rows: int = 20) -> ProgressSnapshot:
    """A :class:`ProgressSnapshot` of trial objects, as a progress reporter receives them.

    Reads ``trial_id``, ``status``, ``config``, ``last_result`` and, when
    they are there, ``error`` and ``n_failures`` of each trial; O(len(trials)).
    """
    counts: dict[str, int] = {}
    running: list[TrialRow] = []
    paused: list[TrialRow] = []
    finished = FinishedRows(max_rows, max_error_rows, metric, mode, sort_by_metric)
    for trial in trials:
        status = str(getattr(trial, "status", "PENDING"))
        counts[status] = counts.get(status, 0) + 1
        result = getattr(trial, "last_result", None) or None
        iteration = result.get("training_iteration") if isinstance(result, Mapping) else None
        row = TrialRow(str(getattr(trial, "trial_id", trial)), status, iteration,
                       metric_of(result, metric), getattr(trial, "config", None) or {},
                       result=result, error=getattr(trial, "error", None),
                       n_failures=getattr(trial, "n_failures", 0) or 0)
        if status == "RUNNING":
            running.append(row)
        elif status == "PAUSED":
            paused.append(row)
        elif status != "PENDING":
            finished.add(row)
    best = best_of([*running, *paused, finished.best], mode) if metric is not None else None
    return ProgressSnapshot(elapsed_s=elapsed_s, counts=counts, total=total, best=best,
                            running=running, metric=metric, mode=mode,
                            finished=finished.rows(), errors=finished.errors(), paused=paused)


def _check_snapshot(snapshot: Any, expected: str = "a ProgressSnapshot") -> None:
    if not isinstance(snapshot, ProgressSnapshot):
        raise TypeError(f"snapshot must be {expected}, got {type(snapshot).__name__}")


class ProgressReporter:
    """Live status table of a tuning run, drawn with :mod:`rich`.

    Call :meth:`start` once, :meth:`update` with a :class:`ProgressSnapshot` at
    most a few times a second, :meth:`trial_finished` when a trial ends, and
    :meth:`close` at the end; or use the reporter as a context manager, which
    starts it and closes it with the last snapshot seen.

    Parameters
    ----------
    verbose : int
        0 prints nothing. 1 shows the live status table: trial counts by status,
        the best trial so far, and the running and paused trials with their
        latest metric and iteration. 2 also prints a line per finished trial. 3 is accepted as
        an alias of 2, so that Ray Tune scripts run unchanged.
    experiment_name : str, default=""
        Shown in the header and the closing summary when not empty.
    console : rich.console.Console or None, default=None
        Where to write; None writes to standard output (unless ``verbose`` is
        0, in which case nothing is ever written), as wide as the screen on a
        terminal and as wide as the tables need in a log (see
        :func:`default_console`).
    max_rows : int, default=20
        Trials shown in the table: the best running ones by the metric (the
        first ones, in the order given, when the snapshot has no ``mode``),
        then the best paused ones the same way, ``max_rows`` in all, the
        paused ones in at least a quarter of them when there are that many;
        then "... and N more running and M more paused trials".
    max_config_columns : int, default=4
        Config leaves shown as columns, and in the best-trial line.
    metric : str or None, default=None
        Name of the metric in :meth:`trial_finished` lines before the first
        snapshot; afterwards the snapshot's ``metric`` is used.
    layout : TableLayout or None, default=None
        The columns and tables a progress reporter asks for; None shows the
        running trials with a few config values, the iteration and the
        metric. With a layout, the table lists the running trials, the
        paused ones and then the snapshot's ``finished`` ones (``max_rows`` in
        all, the running and paused ones in at least half of them), and when the
        output is not a terminal, every :meth:`update` after :meth:`start`
        prints the display once (``max_rows`` bounds it too).

    Raises
    ------
    TypeError
        If ``verbose`` is not an int (``bool`` is refused), if ``console`` is not
        a ``rich.console.Console``, ``experiment_name`` not a string or
        ``layout`` not a :class:`TableLayout`.
    ValueError
        If ``verbose`` is not 0, 1, 2 or 3, ``max_rows`` is smaller than 1 or
        ``max_config_columns`` is negative.

    Notes
    -----
    On a terminal (or in Jupyter) each :meth:`update` redraws the table in
    place, through ``rich.live.Live`` without a refresh thread. Otherwise
    :meth:`update` only keeps the snapshot, and :meth:`close` prints the final
    table once. While the display is live, ``sys.stdout`` and ``sys.stderr``
    are redirected through the console so that prints from the run appear
    above the table; :meth:`close` (or leaving the ``with`` block) restores them.

    While the display is live, the lines of :meth:`trial_finished` are kept
    until the next :meth:`update` (or :meth:`close`), which prints them above
    the table in one go. Rich redraws a live table after every print: one
    print per finished trial made a 20,000-trial sweep of quick trials at
    ``verbose=2`` on a terminal six times slower than at ``verbose=1`` and
    wrote 27 MB of redrawn tables (measured here).

    One :meth:`update` costs O(len(snapshot.running) + len(snapshot.paused) +
    number of statuses) to pick the rows (``heapq.nsmallest``), plus the drawing of at most
    ``max_rows`` rows and of the finished-trial lines kept since the last
    one. The reporter is not thread-safe: call it from the driver's thread.

    Examples
    --------
    >>> from rich.console import Console
    >>> reporter = ProgressReporter(2, console=Console(width=80), metric="loss")
    >>> reporter.trial_finished(TrialRow("t1", "TERMINATED", 10, 0.123456, {"lr": 0.01}))
    TERMINATED t1 iter=10 loss=0.1235
    >>> reporter.trial_finished(TrialRow("t2", "ERROR", 3, None, {}), error="ValueError: boom")
    ERROR      t2 iter=3 loss=- error: ValueError: boom
    """

    def __init__(
        self,
        verbose: int,
        *,
        experiment_name: str = "",
        console: Console | None = None,
        max_rows: int = 20,
        max_config_columns: int = 4,
        metric: str | None = None,
        layout: TableLayout | None = None,
    ) -> None:
        self._verbose = _check_verbose(verbose)
        if layout is not None and not isinstance(layout, TableLayout):
            raise TypeError(
                f"layout must be a TableLayout or None, got {layout!r} of type "
                f"{type(layout).__name__}"
            )
        self._layout = layout
        self._cell_chars = layout.max_column_length if layout is not None else _MAX_CELL_CHARS
        if not isinstance(experiment_name, str):
            raise TypeError(
                f"experiment_name must be a str, got {experiment_name!r} of type "
                f"{type(experiment_name).__name__}"
            )
        if console is not None and not isinstance(console, Console):
            raise TypeError(
                f"console must be a rich.console.Console or None, got {console!r} of type "
                f"{type(console).__name__}; for example Console(file=open('log.txt', 'w'))"
            )
        self._max_rows = check_int("max_rows", max_rows, minimum=1)
        self._max_columns = check_int("max_config_columns", max_config_columns, minimum=0)
        if metric is not None and not isinstance(metric, str):
            raise TypeError(
                f"metric must be a str or None, got {metric!r} of type {type(metric).__name__}"
            )
        self._experiment_name = experiment_name
        self._metric = metric
        if console is None and self._verbose > 0:
            console = default_console()
        self._console = console
        self._live: Live | None = None
        self._lines: list[Text] = []    # verbose=2 lines for the live display's next redraw
        self._started = False
        self._last: ProgressSnapshot | None = None
        self._closed = False

    @property
    def verbose(self) -> int:
        """The effective verbosity: 0, 1 or 2 (``verbose=3`` gives 2)."""
        return self._verbose

    # -- lifecycle -----------------------------------------------------------------

    def start(self) -> None:
        """Start the live display (a no-op for ``verbose=0`` or when already started).

        Raises
        ------
        RuntimeError
            If the reporter was closed.
        """
        if self._closed:
            raise RuntimeError(
                "this ProgressReporter is closed; create a new one for another run"
            )
        if self._verbose == 0 or self._started:
            return
        self._started = True
        console = self._console
        assert console is not None  # internal invariant: verbose > 0 always has a console
        if not is_live(console):
            return  # not a live terminal: close() prints the final table once
        self._live = Live(
            console=console,
            auto_refresh=False,
            transient=False,
            vertical_overflow="ellipsis",
        )
        self._live.start(refresh=False)
        if self._last is not None:
            self._live.update(self._render(self._last), refresh=True)

    def update(self, snapshot: ProgressSnapshot) -> None:
        """Show ``snapshot``: redraw on a terminal, otherwise only keep it for :meth:`close`.

        Parameters
        ----------
        snapshot : ProgressSnapshot
            The current state of the run. Ignored after :meth:`close`.

        Raises
        ------
        TypeError
            If ``snapshot`` is not a :class:`ProgressSnapshot`.
        """
        _check_snapshot(snapshot)
        if self._closed:
            return
        self._last = snapshot
        if self._live is not None:
            self._print_lines()
            self._live.update(self._render(snapshot), refresh=True)
        elif self._layout is not None and self._started:
            # not a terminal: a reporter's display is printed at each update, as Ray's is
            assert self._console is not None  # internal invariant: started implies verbose > 0
            self._console.print(Group(Text("== Status =="), self._render(snapshot)))

    def render(self, snapshot: ProgressSnapshot, final: bool = False) -> RenderableType:
        """The display of ``snapshot``, to print once; ``final`` always includes the tables.

        Raises
        ------
        TypeError
            If ``snapshot`` is not a :class:`ProgressSnapshot`.
        """
        _check_snapshot(snapshot)
        return self._render(snapshot, final=final)

    def trial_finished(self, row: TrialRow, error: str | None = None) -> None:
        """With ``verbose=2``, print one line for a finished trial.

        The line holds the status, the trial id, the iteration, the metric and,
        when ``error`` is given, its first line (for a formatted traceback, the
        last line, which names the exception). On a terminal it appears above
        the live table at its next redraw (:meth:`update` or :meth:`close`);
        elsewhere it is a plain line, printed at once.

        Parameters
        ----------
        row : TrialRow
            The trial, in its final state.
        error : str or None, default=None
            The error message or formatted traceback of a failed trial.

        Raises
        ------
        TypeError
            If ``row`` is not a :class:`TrialRow`.
        """
        if not isinstance(row, TrialRow):
            raise TypeError(f"row must be a TrialRow, got {type(row).__name__}")
        if self._verbose < 2:
            return
        assert self._console is not None  # internal invariant: verbose > 0 has a console
        metric = self._metric_name()
        status = str(row.status)
        line = Text.assemble(
            (f"{status:<10}", _STATUS_STYLES.get(status, "")),
            " ",
            _clip(str(row.trial_id), _MAX_ID_CHARS),
            f" iter={'-' if row.iteration is None else row.iteration}",
            f" {metric}={_format_metric(row.metric)}",
        )
        if error is not None:
            line.append(" error: ")
            line.append(_clip(_error_line(error), _MAX_ERROR_CHARS), style="red")
        if self._live is not None:
            self._lines.append(line)
        else:
            self._console.print(line, soft_wrap=True)

    def _print_lines(self) -> None:
        """Print the kept :meth:`trial_finished` lines above the live table, in one print.

        The print redraws the table as last drawn (``Live.update`` without a
        refresh does not change what a print redraws), so the caller draws
        the new one after it.
        """
        lines, self._lines = self._lines, []
        if lines:
            assert self._console is not None  # internal invariant: lines imply verbose=2
            self._console.print(Text("\n").join(lines), soft_wrap=True)

    def close(self, snapshot: ProgressSnapshot | None = None) -> None:
        """Stop the live display, print the final table once and a one-line summary.

        With ``verbose=0`` nothing is printed. A second call does nothing.

        Parameters
        ----------
        snapshot : ProgressSnapshot or None, default=None
            The final state of the run; None uses the last snapshot given to
            :meth:`update` (and prints nothing if there was none).

        Raises
        ------
        TypeError
            If ``snapshot`` is neither None nor a :class:`ProgressSnapshot`.
        """
        if snapshot is not None:
            _check_snapshot(snapshot, "a ProgressSnapshot or None")
        if self._closed:
            return
        self._closed = True
        if snapshot is not None:
            self._last = snapshot
        final = self._last
        live, self._live = self._live, None
        if self._verbose == 0:
            return
        console = self._console
        assert console is not None  # internal invariant: verbose > 0 has a console
        renderable: RenderableType | None = None
        try:
            if final is not None:
                renderable = self._render(final, final=True)
        finally:
            if live is not None:
                self._print_lines()     # above the final frame
                if renderable is None:
                    # Nothing to show: stop without leaving (or printing) an empty frame.
                    live.transient = True
                    live.update(Text(""))
                else:
                    live.update(renderable)
                live.stop()  # leaves the final frame in place
            elif renderable is not None:
                console.print(renderable)
        if final is not None:
            console.print(self._summary(final), soft_wrap=True)

    def __enter__(self) -> ProgressReporter:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # -- rendering -----------------------------------------------------------------

    def _metric_name(self) -> str:
        if self._last is not None and self._last.metric is not None:
            return self._last.metric
        return self._metric if self._metric is not None else "metric"

    def _select_live(self, snapshot: ProgressSnapshot, n: int,
                     sort: bool) -> tuple[list[TrialRow], list[TrialRow]]:
        """The running and the paused rows to show, at most ``n`` in all (see
        :func:`_live_split`): each kind the best (stable) with ``sort`` and a metric
        and mode, otherwise the first ones."""
        def pick(rows: Sequence[TrialRow]) -> list[TrialRow]:
            if sort and snapshot.mode is not None and snapshot.metric is not None:
                return heapq.nsmallest(n, rows, key=_sort_key(snapshot.mode))
            return list(islice(rows, n))

        running, paused = pick(snapshot.running), pick(snapshot.paused)
        n_running, n_paused = _live_split(n, len(running), len(paused))
        return running[:n_running], paused[:n_paused]

    @staticmethod
    def _more_live(snapshot: ProgressSnapshot, n_running: int, n_paused: int) -> Text | None:
        """"... and N more running and M more paused trials", for the rows not shown."""
        hidden_running = max(snapshot.counts.get("RUNNING", 0), len(snapshot.running)) - n_running
        hidden_paused = max(snapshot.counts.get("PAUSED", 0), len(snapshot.paused)) - n_paused
        if hidden_running > 0 and hidden_paused > 0:
            return Text(f"... and {hidden_running} more running and {hidden_paused} more "
                        "paused trials")
        if hidden_running > 0:
            return Text(f"... and {hidden_running} more running trials")
        if hidden_paused > 0:
            return Text(f"... and {hidden_paused} more paused trials")
        return None

    def _status_line(self, snapshot: ProgressSnapshot) -> Text:
        counts = snapshot.counts
        # PAUSED only while a trial is paused (most schedulers never pause one), as Ray
        # lists only the statuses that some trial has
        statuses = [s for s in STATUSES if s != "PAUSED" or counts.get(s, 0)] + sorted(
            str(s) for s, n in counts.items() if s not in STATUSES and n
        )
        line = Text("Trial status: ")
        for i, status in enumerate(statuses):
            if i:
                line.append(" | ")
            line.append(f"{counts.get(status, 0)} {status}", style=_STATUS_STYLES.get(status, ""))
        n_trials = sum(counts.values())
        expected = "" if snapshot.total is None else f"/{snapshot.total}"
        line.append(f" ({n_trials}{expected} trials)")
        return line

    def _params(self, config: Any) -> str:
        layout = self._layout
        if layout is not None and layout.parameter_columns:
            return ", ".join(
                f"{_clip(header, self._cell_chars)}="
                f"{_format_cell(_value_at(config, key), self._cell_chars)}"
                for key, header in layout.parameter_columns)
        leaves = _leaves(config)
        shown = [f"{_clip(k, _MAX_CELL_CHARS)}={_format_leaf(v)}"
                 for k, v in islice(leaves.items(), self._max_columns)]
        if len(leaves) > len(shown):
            shown.append("...")
        return ", ".join(shown)

    def _best_line(self, snapshot: ProgressSnapshot) -> Text | None:
        best = snapshot.best
        if best is None:
            return None if snapshot.metric is None else Text("Current best trial: none yet")
        metric = snapshot.metric if snapshot.metric is not None else "metric"
        line = Text("Current best trial: ")
        line.append(_clip(str(best.trial_id), _MAX_ID_CHARS), style="bold")
        line.append(f" with {metric}={_format_metric(best.metric)}")
        if best.iteration is not None:
            line.append(f" at iter {best.iteration}")
        params = self._params(best.config) if self._max_columns else ""
        if params:
            line.append(f", params: {params}")
        return line

    def _table(self, snapshot: ProgressSnapshot, rows: list[TrialRow], title: str) -> Table:
        """The table of ``rows``; config columns that do not fit the console width are left out."""
        has_metric = snapshot.metric is not None
        ids = [_clip(str(row.trial_id), _MAX_ID_CHARS) for row in rows]
        statuses = [str(row.status) for row in rows]
        iterations = ["-" if row.iteration is None else str(row.iteration) for row in rows]
        metrics = [_format_metric(row.metric) for row in rows] if has_metric else []
        metric_name = _clip(snapshot.metric, _MAX_CELL_CHARS) if has_metric else ""

        # Each column takes its text, 2 spaces of padding and 1 border; plus the left border.
        def width(header: str, cells: list[str]) -> int:
            return max([len(header), *map(len, cells)]) + 3

        used = 1 + width("Trial name", ids) + width("status", statuses) + width("iter", iterations)
        if has_metric:
            used += width(metric_name, metrics)
        leaves = [_leaves(row.config) for row in rows]
        columns: list[tuple[str, list[str]]] = []
        seen: set[str] = set()
        available = self._console.width if self._console is not None else 80
        for row_leaves in leaves:
            if len(columns) >= self._max_columns:
                break
            for key in row_leaves:
                if len(columns) >= self._max_columns:
                    break
                if key in seen:
                    continue
                seen.add(key)
                header = _clip(key, _MAX_CELL_CHARS)
                cells = [_format_leaf(lv[key]) if key in lv else "" for lv in leaves]
                if used + width(header, cells) <= available:
                    used += width(header, cells)
                    columns.append((header, cells))

        if snapshot.mode is not None and has_metric:
            both = len(set(statuses)) > 1
            title += f" (best {snapshot.metric} first{' in each' if both else ''})"
        table = Table(title=Text(title), box=box.ROUNDED, title_justify="left")
        table.add_column("Trial name", no_wrap=True, overflow="ellipsis")
        table.add_column("status", no_wrap=True)
        for header, _ in columns:
            table.add_column(Text(header), no_wrap=True, overflow="ellipsis")
        table.add_column("iter", justify="right", no_wrap=True)
        if has_metric:
            table.add_column(Text(metric_name), justify="right", no_wrap=True)
        for i in range(len(rows)):
            cells = [Text(ids[i]), Text(statuses[i], style=_STATUS_STYLES.get(statuses[i], ""))]
            cells += [Text(column_cells[i]) for _, column_cells in columns]
            cells.append(Text(iterations[i]))
            if has_metric:
                cells.append(Text(metrics[i]))
            table.add_row(*cells)
        return table

    # -- the tables of a TableLayout -------------------------------------------------

    def _select_rows(self, snapshot: ProgressSnapshot) -> list[TrialRow]:
        """Running rows, paused ones, then finished ones: ``max_rows`` in all, the running
        and paused ones (shared as :func:`_live_split` says) and the finished ones each at
        least half of them when both have more."""
        layout = self._layout
        assert layout is not None  # internal invariant: called with a layout only
        n = self._max_rows
        finished = snapshot.finished
        running, paused = self._select_live(snapshot, max(n - len(finished), (n + 1) // 2),
                                            sort=layout.sort_by_metric)
        n_finished = min(len(finished), n - len(running) - len(paused))
        return running + paused + list(finished[:n_finished])

    def _metric_columns(self, snapshot: ProgressSnapshot,
                        rows: list[TrialRow]) -> list[tuple[str, str]]:
        """The layout's metric columns that a row has, or those inferred from the rows."""
        layout = self._layout
        assert layout is not None  # internal invariant: called with a layout only
        results = [row.result for row in rows if isinstance(row.result, Mapping)]

        def present(key: str) -> bool:
            return any(lookup(result, key, None) is not None for result in results)

        if layout.metric_columns is not None:
            return [(key, header) for key, header in layout.metric_columns if present(key)]
        columns = [(key, header) for key, header in layout.default_columns if present(key)]
        taken = {key for key, _ in layout.default_columns}
        inferred: list[tuple[str, str]] = []
        metric = snapshot.metric
        if metric is not None and metric not in taken and layout.infer_limit and present(metric):
            inferred.append((metric, metric))
            taken.add(metric)
        for result in results:
            if len(inferred) >= layout.infer_limit:
                break
            for key, value in islice(result.items(), _MAX_LEAVES):
                if len(inferred) >= layout.infer_limit:
                    break
                if isinstance(key, str) and key not in taken and key not in AUTO_RESULT_KEYS \
                        and _is_number(value):
                    inferred.append((key, key))
                    taken.add(key)
        columns += inferred
        # Ray's default header of mean_loss is "loss": a reported "loss" beside it would
        # make two columns of that name, so both are then headed by their keys
        headers = [header for _, header in columns]
        return [(key, key if headers.count(header) > 1 else header) for key, header in columns]

    def _layout_table(self, snapshot: ProgressSnapshot, rows: list[TrialRow]) -> Table:
        layout = self._layout
        assert layout is not None  # internal invariant: called with a layout only
        chars = self._cell_chars
        ids = [_clip(str(row.trial_id), _MAX_ID_CHARS) for row in rows]
        statuses = [str(row.status) for row in rows]
        metrics = [(_clip(header, chars),
                    ["" if row.result is None else
                     _format_cell(_value_at(row.result, key), chars, metric=True)
                     for row in rows])
                   for key, header in self._metric_columns(snapshot, rows)]
        if layout.parameter_columns:
            params = [(_clip(header, chars),
                       [_format_cell(_value_at(row.config, key), chars) for row in rows])
                      for key, header in layout.parameter_columns]
        else:
            params = self._fitting_config_columns(
                rows, ids, statuses, [cells for _, cells in metrics],
                [header for header, _ in metrics])
        title = "Trials"
        if layout.sort_by_metric and snapshot.mode is not None and snapshot.metric is not None:
            title += f" (best {snapshot.metric} first)"
        table = Table(title=Text(title), box=box.ROUNDED, title_justify="left")
        table.add_column("Trial name", no_wrap=True, overflow="ellipsis")
        table.add_column("status", no_wrap=True)
        for header, _ in params:
            table.add_column(Text(header), no_wrap=True, overflow="ellipsis")
        for header, _ in metrics:
            table.add_column(Text(header), justify="right", no_wrap=True, overflow="ellipsis")
        for i in range(len(rows)):
            cells = [Text(ids[i]), Text(statuses[i], style=_STATUS_STYLES.get(statuses[i], ""))]
            cells += [Text(column[i]) for _, column in params]
            cells += [Text(column[i]) for _, column in metrics]
            table.add_row(*cells)
        return table

    def _fitting_config_columns(self, rows: list[TrialRow], ids: list[str], statuses: list[str],
                                metric_cells: list[list[str]], metric_headers: list[str]
                                ) -> list[tuple[str, list[str]]]:
        """Up to ``max_config_columns`` config leaves, those that fit the console's width."""
        def width(header: str, cells: list[str]) -> int:
            return max([len(header), *map(len, cells)]) + 3

        used = 1 + width("Trial name", ids) + width("status", statuses)
        used += sum(width(h, c) for h, c in zip(metric_headers, metric_cells))
        available = self._console.width if self._console is not None else 80
        leaves = [_leaves(row.config) for row in rows]
        columns: list[tuple[str, list[str]]] = []
        seen: set[str] = set()
        for row_leaves in leaves:
            for key in row_leaves:
                if len(columns) >= self._max_columns:
                    return columns
                if key in seen:
                    continue
                seen.add(key)
                header = _clip(key, self._cell_chars)
                cells = [_format_leaf(lv[key], self._cell_chars) if key in lv else ""
                         for lv in leaves]
                if used + width(header, cells) <= available:
                    used += width(header, cells)
                    columns.append((header, cells))
        return columns

    def _error_table(self, snapshot: ProgressSnapshot) -> list[RenderableType]:
        """The number of errored trials and the latest of them (``max_error_rows``)."""
        layout = self._layout
        assert layout is not None  # internal invariant: called with a layout only
        n_errors = max(snapshot.counts.get("ERROR", 0), len(snapshot.errors))
        if not n_errors:
            return []
        parts: list[RenderableType] = [Text(f"Number of errored trials: {n_errors}")]
        rows = snapshot.errors[:layout.max_error_rows]
        if rows:
            table = Table(box=box.ROUNDED)
            table.add_column("Trial name", no_wrap=True, overflow="ellipsis")
            table.add_column("# failures", justify="right", no_wrap=True)
            table.add_column("error", overflow="ellipsis", no_wrap=True)
            for row in rows:
                table.add_row(Text(_clip(str(row.trial_id), _MAX_ID_CHARS)),
                              Text(str(row.n_failures)),
                              Text(_clip(_error_line(row.error or ""), _MAX_ERROR_CHARS),
                                   style="red"))
            parts.append(table)
            if n_errors > len(rows):
                parts.append(Text(f"... and {n_errors - len(rows)} more errored trials"))
        return parts

    def _layout_parts(self, snapshot: ProgressSnapshot) -> list[RenderableType]:
        """The trial table, the "... and N more" line and the error table."""
        rows = self._select_rows(snapshot)
        parts: list[RenderableType] = []
        if rows:
            parts.append(self._layout_table(snapshot, rows))
        shown: dict[str, int] = {}
        for row in rows:
            shown[row.status] = shown.get(row.status, 0) + 1
        statuses = list(STATUSES) + sorted(
            str(s) for s in snapshot.counts if s not in STATUSES)
        hidden = [(status, snapshot.counts.get(status, 0) - shown.get(status, 0))
                  for status in statuses]
        hidden = [(status, n) for status, n in hidden if n > 0]
        if hidden:
            n_hidden = sum(n for _, n in hidden)
            listed = ", ".join(f"{n} {status}" for status, n in hidden)
            parts.append(Text(f"... and {n_hidden} more trials ({listed})"))
        parts += self._error_table(snapshot)
        return parts

    def _render(self, snapshot: ProgressSnapshot, final: bool = False) -> RenderableType:
        """The status display of ``snapshot``; bounded by ``max_rows``, whatever the run size."""
        parts: list[RenderableType] = [self._status_line(snapshot)]
        header = f"Total running time: {_format_duration(snapshot.elapsed_s)}"
        if self._experiment_name:
            header = f"Experiment: {self._experiment_name} | {header}"
        parts.append(Text(header))
        best = self._best_line(snapshot)
        if best is not None:
            parts.append(best)
        if self._layout is not None:
            if final or self._layout.intermediate_tables:
                parts += self._layout_parts(snapshot)
            return Group(*parts)
        running, paused = self._select_live(snapshot, self._max_rows, sort=True)
        if running or paused:
            title = "Running and paused trials" if running and paused else \
                "Running trials" if running else "Paused trials"
            parts.append(self._table(snapshot, running + paused, title))
        more = self._more_live(snapshot, len(running), len(paused))
        if more is not None:
            parts.append(more)
        return Group(*parts)

    def _summary(self, snapshot: ProgressSnapshot) -> Text:
        counts = snapshot.counts
        unfinished = counts.get("RUNNING", 0) + counts.get("PENDING", 0) + \
            counts.get("PAUSED", 0)
        subject = f"Experiment {self._experiment_name!r}" if self._experiment_name else "Tuning"
        verb = "stopped" if unfinished else "finished"
        listed = [s for s in STATUSES if counts.get(s, 0)]
        listed += sorted(str(s) for s, n in counts.items() if s not in STATUSES and n)
        status = ", ".join(f"{counts[s]} {s}" for s in listed) or "no trials"
        n_trials = sum(counts.values())
        expected = "" if snapshot.total is None else f"/{snapshot.total}"
        reason = ""
        if unfinished and snapshot.stop_reason:     # its first line, clipped (fail_fast's
            # holds the trial's error)
            reason = f" ({_clip(snapshot.stop_reason.splitlines()[0], 100)})"
        line = Text(
            f"{subject} {verb} after {_format_duration(snapshot.elapsed_s)}{reason}: {status} "
            f"({n_trials}{expected} trials)."
        )
        best = snapshot.best
        if best is not None:
            metric = snapshot.metric if snapshot.metric is not None else "metric"
            line.append(" Best trial: ")
            line.append(_clip(str(best.trial_id), _MAX_ID_CHARS), style="bold")
            line.append(f" with {metric}={_format_metric(best.metric)}.")
        return line
