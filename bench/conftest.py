"""Fixtures shared by the benchmarks: throughput figures and a summary table.

pytest-benchmark's table gives the time of one timed call (a whole sweep,
say). A benchmark that handles many items per call (reports, results)
passes its item count to the ``throughput`` fixture; one that times a
single call can pass it to ``per_call``. Both put the derived figures into
``benchmark.extra_info`` (so they land in ``--benchmark-json`` dumps) and
into a table printed at the end of the run, per benchmark group, computed
from the median round:

- ``ns/item`` and ``M items/s``;
- ``vs ref``: speed-up over the implementation named ``"reference"`` at
  the same size, when the group has one;
- ``vs small N``: cost per item relative to the same implementation at its
  smallest size (1.00 = flat scaling).

Benchmarks whose figures are not a cost per item (the Tuner and soak
suites: ratios against a baseline, start-up, memory) pass a row of named
figures to the ``summary`` fixture instead. It puts them into
``extra_info`` too and prints one table per title at the end of the run.
"""

from __future__ import annotations

import compileall
import os
from collections import defaultdict
from pathlib import Path

import pytest

_THROUGHPUT: dict[str, list[dict]] = defaultdict(list)
_PER_CALL: dict[str, list[dict]] = defaultdict(list)
_SUMMARY: dict[str, list[dict]] = defaultdict(list)


def pytest_configure(config):
    """Write the bytecode of fastasha and of ``bench/`` before anything is timed.

    The worker processes that a cold sweep starts import fastasha (and
    ``bench/tuner_work.py``, as joblib's baseline does). An installed copy
    has its bytecode (pip compiles it; otherwise the first import writes it),
    but with ``PYTHONDONTWRITEBYTECODE`` set, as on some CI machines, every
    new worker would compile the sources again, about 10 ms of each cold
    start that no user pays. joblib's own modules come compiled from their
    wheel. ``__pycache__`` folders are git-ignored.
    """
    import fastasha

    for folder in (Path(fastasha.__file__).parent, Path(__file__).parent):
        if os.access(folder, os.W_OK):
            compileall.compile_dir(str(folder), quiet=1)


@pytest.fixture
def throughput():
    """``throughput(benchmark, impl, n, items, unit="report")`` after the benchmark ran."""

    def record(benchmark, impl: str, n: int, items: int, unit: str = "report") -> None:
        stats = benchmark.stats
        if not stats:            # --benchmark-disable / --benchmark-skip
            return
        median = stats.stats.median         # per iteration already
        benchmark.extra_info.update({
            "impl": impl, "n": n, f"n_{unit}s": items,
            f"ns_per_{unit}": median / items * 1e9,
            f"{unit}s_per_s": items / median,
        })
        _THROUGHPUT[benchmark.group or ""].append(
            {"impl": impl, "n": n, "items": items, "unit": unit, "median": median,
             "rounds": stats.stats.rounds})

    return record


@pytest.fixture
def per_call():
    """``per_call(benchmark, case, calls=1)``: ``calls`` calls per timed iteration."""

    def record(benchmark, case: str, calls: int = 1) -> None:
        stats = benchmark.stats
        if not stats:
            return
        ns = stats.stats.median / calls * 1e9
        benchmark.extra_info.update(case=case, ns_per_call=ns)
        _PER_CALL[benchmark.group or ""].append(
            {"case": case, "ns": ns, "rounds": stats.stats.rounds,
             "iterations": stats.iterations})

    return record


@pytest.fixture
def summary():
    """``summary(benchmark, title, row, extra_info=True)``: a row of figures for table ``title``.

    ``row`` maps column names to numbers or strings, in column order. The
    figures go into a table printed at the end of the run (rows of one title
    share its columns) and, unless ``extra_info=False`` (for a benchmark that
    adds several rows and stores them itself), into ``benchmark.extra_info``.
    """

    def record(benchmark, title: str, row: dict, extra_info: bool = True) -> None:
        if extra_info:
            benchmark.extra_info.update(row)
        _SUMMARY[title].append(dict(row))

    return record


def _fmt(value) -> str:
    if isinstance(value, bool) or value is None:
        return "" if value is None else str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        size = abs(value)
        if size >= 1000:
            return f"{value:,.0f}"
        if size >= 100:
            return f"{value:.1f}"
        if size >= 1 or size == 0:
            return f"{value:.2f}"
        return f"{value:.3g}"
    return str(value)


def _summary_table(tr, title: str, rows: list[dict]) -> None:
    tr.write_sep("-", title)
    columns: list[str] = []
    for row in rows:
        columns += [c for c in row if c not in columns]
    cells = [[_fmt(row.get(c)) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    tr.write_line("  ".join(c.rjust(w) for c, w in zip(columns, widths)))
    for r in cells:
        tr.write_line("  ".join(v.rjust(w) for v, w in zip(r, widths)))


def _throughput_table(tr, group: str, rows: list[dict]) -> None:
    unit = rows[0]["unit"]
    tr.write_sep("-", f"{group}: cost per {unit} (median round)")
    ref = {r["n"]: r["median"] / r["items"] for r in rows if r["impl"] == "reference"}
    smallest = {}
    for r in sorted(rows, key=lambda r: r["n"]):
        smallest.setdefault(r["impl"], (r["n"], r["median"] / r["items"]))
    tr.write_line(f"{'impl':<15} {'N':>10} {unit + 's':>10} {'rounds':>6} {'median s':>10} "
                  f"{'ns/' + unit:>11} {'M ' + unit + 's/s':>13} {'vs ref':>8} "
                  f"{'vs small N':>18}")
    for r in sorted(rows, key=lambda r: (r["n"], r["median"] / r["items"])):
        per = r["median"] / r["items"]
        vs_ref = ""
        if r["n"] in ref:
            x = ref[r["n"]] / per
            vs_ref = f"{x:.0f}x" if x >= 10 else f"{x:.2f}x"
        n0, per0 = smallest[r["impl"]]
        vs_n0 = f"{per / per0:.2f} (N={n0:,})" if r["n"] != n0 else ""
        tr.write_line(
            f"{r['impl']:<15} {r['n']:>10,} {r['items']:>10,} {r['rounds']:>6} "
            f"{r['median']:>10.4f} {per * 1e9:>11.1f} {1 / per / 1e6:>13.3f} {vs_ref:>8} "
            f"{vs_n0:>18}")


@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter):
    tr = terminalreporter
    for group, rows in _THROUGHPUT.items():
        _throughput_table(tr, group, rows)
    for group, rows in _PER_CALL.items():
        tr.write_sep("-", f"{group}: one call (median)")
        tr.write_line(f"{'case':<24} {'ns/call':>9} {'rounds':>8} {'iterations':>10}")
        for c in rows:
            tr.write_line(f"{c['case']:<24} {c['ns']:>9.1f} {c['rounds']:>8} "
                          f"{c['iterations']:>10}")
    for title, rows in _SUMMARY.items():
        _summary_table(tr, title, rows)
