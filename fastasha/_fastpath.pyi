"""Type stub of the compiled per-report path (src/_fastpath.pyx)."""

import threading
from typing import Any

local: threading.local

class Recorder:
    iteration: int
    decision_point: float
    due: float
    last: float
    fast: bool
    stop_requested: bool
    buffer: list[tuple[float, dict]]

DEFAULT_METRIC: str

def report(metrics: dict[str, Any] | None = None, *, checkpoint: Any = None,
           **keywords: Any) -> None: ...
def own_session(session: Any) -> None: ...
def take_all(buffer: list[tuple[float, dict[str, Any]]]) -> list[tuple[float, dict[str, Any]]]: ...
def pack_columns(
    entries: list[tuple[float, dict[str, Any]]],
) -> tuple[tuple[str, ...], str, list[bytes]] | None: ...
