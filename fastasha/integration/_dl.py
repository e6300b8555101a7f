"""What the PyTorch Lightning and Keras report callbacks share: options, metric selection, reports.

Both callbacks are called at hooks of the library's training loop (named
as the library names them, less the ``on_`` prefix), pick the values the
user asked for from what the library holds at that point
(``trainer.callback_metrics``, Keras ``logs``), and hand them to
``tune.report``, with a checkpoint folder holding the saved model when
one is due.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from typing import Any


def check_metrics(metrics: Any, example: str) -> list[tuple[str, str]] | None:
    """``metrics`` as Ray takes it: ``None``, a name, a list of names or ``{report name: name}``.

    Returns ``None`` (report everything) or ``(name to report, name in the
    library's results)`` pairs. An empty list or dict means everything, as
    in Ray. ``example`` is a metric name of the library for the messages.
    """
    if metrics is None:
        return None
    if isinstance(metrics, str):
        return [(metrics, metrics)]
    if isinstance(metrics, Mapping):
        bad = [(k, v) for k, v in metrics.items()
               if not isinstance(k, str) or not isinstance(v, str)]
        if bad:
            raise TypeError(
                f"metrics as a dict maps the names to report to the library's metric names, "
                f"both strings, got {bad[0]!r}; e.g. metrics={{'loss': {example!r}}}"
            )
        return list(metrics.items()) or None
    if isinstance(metrics, (list, tuple)):
        bad = [m for m in metrics if not isinstance(m, str)]
        if bad:
            raise TypeError(f"metrics as a list holds metric names (strings), got {bad[0]!r} "
                            f"in {metrics!r}; e.g. metrics=[{example!r}]")
        return [(m, m) for m in metrics] or None
    raise TypeError(
        f"metrics must be None (report every metric), a metric name, a list of names or a "
        f"dict {{name to report: metric name}}, got {metrics!r} of type "
        f"{type(metrics).__name__}; e.g. metrics={{'loss': {example!r}}}"
    )


def check_hooks(name: str, on: Any, allowed: Iterable[str]) -> list[str]:
    """``on`` as Ray takes it: one hook name or a list of them, without the ``on_`` prefix."""
    allowed = sorted(allowed)
    hooks = [on] if isinstance(on, str) else on
    if not isinstance(hooks, (list, tuple)) or not hooks or \
            not all(isinstance(h, str) for h in hooks):
        raise TypeError(f"{name} must be a hook name or a non-empty list of hook names, got "
                        f"{on!r}; e.g. {name}='epoch_end'. The hooks: {', '.join(allowed)}")
    for hook in hooks:
        if hook not in allowed:
            hint = ""
            if hook.startswith("on_") and hook[3:] in allowed:
                hint = f" (write {hook[3:]!r}: hook names go without the 'on_')"
            raise ValueError(f"{name} names no hook of this library: {hook!r}{hint}; "
                             f"the hooks are {', '.join(allowed)}")
    return list(dict.fromkeys(hooks))


def check_filename(filename: Any, example: str) -> str:
    """A plain, non-empty file name (the model's file inside the checkpoint folder)."""
    if not isinstance(filename, str):
        raise TypeError(f"filename must be a string, got {filename!r} of type "
                        f"{type(filename).__name__}")
    if not filename or filename in (".", "..") or "/" in filename or os.sep in filename:
        raise ValueError(f"filename must be a plain file name such as {example!r} (the "
                         f"model's file inside the checkpoint folder), got {filename!r}")
    return filename


def select(selection: list[tuple[str, str]] | None, values: Mapping[str, Any],
           convert: Callable[[Any], Any]) -> tuple[dict[str, Any], list[str]]:
    """The dict to report from ``values``, and the selected names that ``values`` lacks."""
    if selection is None:
        return {key: convert(value) for key, value in values.items()}, []
    chosen, missing = {}, []
    for name, key in selection:
        if key in values:
            chosen[name] = convert(values[key])
        else:
            missing.append(key)
    return chosen, missing


def missing_library(err: ModuleNotFoundError, module: str, package: str, extra: str,
                    torch_first: bool = False) -> ModuleNotFoundError:
    """The error for importing ``fastasha.integration.<module>`` without its library.

    ``torch_first`` adds that torch is best installed on its own first
    (``pip install lightning`` would pull in a default build of torch).
    """
    torch = "; install torch first (pip install torch) to choose its build" if torch_first else ""
    return ModuleNotFoundError(
        f"fastasha.integration.{module} needs {package}, which is not installed ({err}); "
        f"install it with  pip install {package}  (or, in a clone of fastasha, "
        f"pip install -e \".[{extra}]\"){torch}",
        name=err.name,
    )


def missing_backend(err: ModuleNotFoundError, module: str, backend: str,
                    hint: str) -> ModuleNotFoundError:
    """The error for importing ``fastasha.integration.<module>`` without the library's backend."""
    return ModuleNotFoundError(
        f"fastasha.integration.{module} needs {backend}, which is not installed ({err}); "
        f"install it with  pip install {backend}{hint}",
        name=err.name,
    )
