"""Live status display of a tuning run, in the style of Ray Tune's console output.

The driver builds a :class:`ProgressSnapshot` (trial counts by status, the best
trial so far, the running trials) at most a few times a second and hands it to
a :class:`ProgressReporter`, which draws it with :mod:`rich`:

.. code-block:: text

    Trial status: 3 PENDING | 20 RUNNING | 75 TERMINATED | 2 ERROR (100/100 trials)
    Experiment: asha | Total running time: 0:01:23
    Current best trial: trial_00042 with loss=0.1234 at iter 27, params: lr=0.01, model/depth=3
    Running trials (best loss first)
    ╭─────────────┬─────────┬───────┬─────────────┬──────┬────────╮
    │ Trial name  │ status  │ lr    │ model/depth │ iter │   loss │
    ...
    ... and 4980 more running trials

The verbosity levels follow Ray Tune's ``verbose``: 0 prints nothing, 1 shows
the live status table, 2 also prints one line per finished trial, and 3 is
accepted as an alias of 2.

On a terminal the table is redrawn in place (``rich.live.Live``). When the
output is not a terminal (a pipe, a log file, pytest's capture, CI), nothing is
drawn while the run goes on: the final table is printed once, at
:meth:`ProgressReporter.close`, and the per-trial lines of ``verbose=2`` are
plain lines.
"""

from __future__ import annotations

import heapq
import math
import numbers
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import islice
from types import TracebackType
from typing import Any

from rich import box
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from ._validation import check_int, check_mode

#: The trial statuses, in the order the status line lists them.
STATUSES = ("PENDING", "RUNNING", "TERMINATED", "ERROR")

_STATUS_STYLES = {
    "PENDING": "dim",
    "RUNNING": "blue",
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
        ``"PENDING"``, ``"RUNNING"``, ``"TERMINATED"`` or ``"ERROR"``. Other
        strings are displayed as given, without a colour.
    iteration : int or None
        The latest ``training_iteration``; None before the first report.
    metric : float or None
        The latest value of the tuned metric; None if it was not reported yet.
        NaN and infinities are displayed as ``nan``, ``inf`` and ``-inf``.
    config : dict
        The resolved config, flat or nested. Its first few leaves are shown,
        nested keys joined as ``"a/b"``; any object is accepted and shown as a
        truncated ``repr``.
    """

    trial_id: str
    status: str
    iteration: int | None
    metric: float | None
    config: dict


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

    def __post_init__(self) -> None:
        check_mode(self.mode)


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


def _format_metric(value: Any) -> str:
    """A metric value with 4 significant digits (``0.1235``, ``1.235e+05``, ``nan``, ``-inf``).

    None is shown as ``-``; a value that is not a number as its truncated ``repr``.
    """
    if value is None:
        return "-"
    try:
        return f"{float(value):.4g}"
    except Exception:
        return _format_leaf(value)


def _format_leaf(value: Any) -> str:
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
    return _clip(" ".join(text.split()), _MAX_CELL_CHARS)


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
        the best trial so far, and the running trials with their latest metric
        and iteration. 2 also prints a line per finished trial. 3 is accepted as
        an alias of 2, so that Ray Tune scripts run unchanged.
    experiment_name : str, default=""
        Shown in the header and the closing summary when not empty.
    console : rich.console.Console or None, default=None
        Where to write; None creates a ``Console()`` on standard output (unless
        ``verbose`` is 0, in which case nothing is ever written).
    max_rows : int, default=20
        Running trials shown in the table: the best ``max_rows`` by the metric
        (all of them in the order given when the snapshot has no ``mode``),
        followed by "... and N more running trials".
    max_config_columns : int, default=4
        Config leaves shown as columns, and in the best-trial line.
    metric : str or None, default=None
        Name of the metric in :meth:`trial_finished` lines before the first
        snapshot; afterwards the snapshot's ``metric`` is used.

    Raises
    ------
    TypeError
        If ``verbose`` is not an int (``bool`` is refused), if ``console`` is not
        a ``rich.console.Console`` or ``experiment_name`` not a string.
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

    One :meth:`update` costs O(len(snapshot.running) + number of statuses) to
    pick the rows (``heapq.nsmallest``), plus the drawing of at most
    ``max_rows`` rows; it does no work per finished trial. The reporter is not
    thread-safe: call it from the driver's thread.

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
    ) -> None:
        self._verbose = _check_verbose(verbose)
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
            console = Console()
        self._console = console
        self._live: Live | None = None
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
        if not (console.is_jupyter or (console.is_terminal and not console.is_dumb_terminal)):
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
        if not isinstance(snapshot, ProgressSnapshot):
            raise TypeError(
                f"snapshot must be a ProgressSnapshot, got {type(snapshot).__name__}"
            )
        if self._closed:
            return
        self._last = snapshot
        if self._live is not None:
            self._live.update(self._render(snapshot), refresh=True)

    def trial_finished(self, row: TrialRow, error: str | None = None) -> None:
        """With ``verbose=2``, print one line for a finished trial.

        The line holds the status, the trial id, the iteration, the metric and,
        when ``error`` is given, its first line (for a formatted traceback, the
        last line, which names the exception). On a terminal it appears above
        the live table; elsewhere it is a plain line.

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
        self._console.print(line, soft_wrap=True)

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
        if snapshot is not None and not isinstance(snapshot, ProgressSnapshot):
            raise TypeError(
                f"snapshot must be a ProgressSnapshot or None, got {type(snapshot).__name__}"
            )
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
                renderable = self._render(final)
        finally:
            if live is not None:
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

    def _select_running(self, snapshot: ProgressSnapshot) -> list[TrialRow]:
        """The running rows to show: the best ``max_rows`` (stable), or the first ones."""
        running: Sequence[TrialRow] = snapshot.running
        if snapshot.mode is None or snapshot.metric is None:
            return list(islice(running, self._max_rows))
        return heapq.nsmallest(self._max_rows, running, key=_sort_key(snapshot.mode))

    def _status_line(self, snapshot: ProgressSnapshot) -> Text:
        counts = snapshot.counts
        statuses = list(STATUSES) + sorted(
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

    def _table(self, snapshot: ProgressSnapshot, rows: list[TrialRow]) -> Table:
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

        title = "Running trials"
        if snapshot.mode is not None and has_metric:
            title += f" (best {snapshot.metric} first)"
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

    def _render(self, snapshot: ProgressSnapshot) -> RenderableType:
        """The status display of ``snapshot``; bounded by ``max_rows``, whatever the run size."""
        parts: list[RenderableType] = [self._status_line(snapshot)]
        header = f"Total running time: {_format_duration(snapshot.elapsed_s)}"
        if self._experiment_name:
            header = f"Experiment: {self._experiment_name} | {header}"
        parts.append(Text(header))
        best = self._best_line(snapshot)
        if best is not None:
            parts.append(best)
        rows = self._select_running(snapshot)
        if rows:
            parts.append(self._table(snapshot, rows))
        n_running = max(snapshot.counts.get("RUNNING", 0), len(snapshot.running))
        if n_running > len(rows):
            parts.append(Text(f"... and {n_running - len(rows)} more running trials"))
        return Group(*parts)

    def _summary(self, snapshot: ProgressSnapshot) -> Text:
        counts = snapshot.counts
        unfinished = counts.get("RUNNING", 0) + counts.get("PENDING", 0)
        subject = f"Experiment {self._experiment_name!r}" if self._experiment_name else "Tuning"
        verb = "stopped" if unfinished else "finished"
        listed = [s for s in STATUSES if counts.get(s, 0)]
        listed += sorted(str(s) for s, n in counts.items() if s not in STATUSES and n)
        status = ", ".join(f"{counts[s]} {s}" for s in listed) or "no trials"
        n_trials = sum(counts.values())
        expected = "" if snapshot.total is None else f"/{snapshot.total}"
        line = Text(
            f"{subject} {verb} after {_format_duration(snapshot.elapsed_s)}: {status} "
            f"({n_trials}{expected} trials)."
        )
        best = snapshot.best
        if best is not None:
            metric = snapshot.metric if snapshot.metric is not None else "metric"
            line.append(" Best trial: ")
            line.append(_clip(str(best.trial_id), _MAX_ID_CHARS), style="bold")
            line.append(f" with {metric}={_format_metric(best.metric)}.")
        return line
