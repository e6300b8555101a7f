"""What the XGBoost and LightGBM report callbacks share: options, metric selection, reports.

Both callbacks turn a library's evaluation results into one flat dict per
boosting round, keyed ``"<data name>-<metric name>"`` as Ray names them,
pick the entries the user asked for, and hand them to ``tune.report``,
with a checkpoint folder holding the saved booster when one is due.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Mapping
from typing import Any

from .._session import report
from .._validation import check_bool, check_int
from ..checkpoint import Checkpoint

PostprocessingFn = Callable[[dict[str, Any]], dict[str, Any]]


def check_metrics(metrics: Any) -> list[str] | dict[str, str] | None:
    """``metrics`` as Ray takes it: ``None``, a name, a list of names or ``{report name: name}``.

    A single name becomes a one-item list, as in Ray.
    """
    if metrics is None:
        return None
    if isinstance(metrics, str):
        return [metrics]
    if isinstance(metrics, Mapping):
        bad = [(k, v) for k, v in metrics.items()
               if not isinstance(k, str) or not isinstance(v, str)]
        if bad:
            raise TypeError(
                f"metrics as a dict maps the names to report to the library's result names, "
                f"both strings, got {bad[0]!r}; e.g. metrics={{'loss': 'eval-logloss'}}"
            )
        return dict(metrics)
    if isinstance(metrics, (list, tuple)):
        bad = [m for m in metrics if not isinstance(m, str)]
        if bad:
            raise TypeError(f"metrics as a list holds result names (strings), got {bad[0]!r} "
                            f"in {metrics!r}; e.g. metrics=['eval-logloss', 'eval-error']")
        return list(metrics)
    raise TypeError(
        f"metrics must be None (report every result), a result name, a list of names or a "
        f"dict {{name to report: result name}}, got {metrics!r} of type {type(metrics).__name__}"
    )


def check_filename(filename: Any) -> str:
    """A plain, non-empty file name (the booster's file inside the checkpoint folder)."""
    if not isinstance(filename, str):
        raise TypeError(f"filename must be a string, got {filename!r} of type "
                        f"{type(filename).__name__}")
    if not filename or filename in (".", "..") or "/" in filename or os.sep in filename:
        raise ValueError(f"filename must be a plain file name such as 'model.ubj' (the "
                         f"booster's file inside the checkpoint folder), got {filename!r}")
    return filename


def check_postprocessing(fn: Any) -> PostprocessingFn | None:
    if fn is not None and not callable(fn):
        raise TypeError(f"results_postprocessing_fn must be a function taking and returning "
                        f"a dict of results, or None, got {fn!r} of type {type(fn).__name__}")
    return fn


class Options:
    """The checked arguments that Ray's XGBoost and LightGBM callbacks take."""

    def __init__(self, metrics: Any, filename: Any, frequency: Any, checkpoint_at_end: Any,
                 results_postprocessing_fn: Any) -> None:
        self.metrics = check_metrics(metrics)
        self.filename = check_filename(filename)
        self.frequency = check_int(
            "frequency", frequency, minimum=0,
            hint="; it is the number of boosting rounds between checkpoints, 0 for none")
        self.checkpoint_at_end = check_bool("checkpoint_at_end", checkpoint_at_end)
        self.results_postprocessing_fn = check_postprocessing(results_postprocessing_fn)

    @property
    def saves(self) -> bool:
        """Whether any checkpoint may be saved."""
        return self.frequency > 0 or self.checkpoint_at_end

    def due(self, round_index: int) -> bool:
        """Whether a checkpoint goes with the report of round ``round_index`` (0-based)."""
        return self.frequency > 0 and (round_index + 1) % self.frequency == 0

    def select(self, results: dict[str, Any]) -> dict[str, Any]:
        """The dict to report: the chosen entries of ``results``, then the post-processing."""
        if self.metrics is None:
            chosen = dict(results)
        else:
            pairs = self.metrics.items() if isinstance(self.metrics, dict) else \
                ((name, name) for name in self.metrics)
            chosen = {}
            for name, key in pairs:
                if key not in results:
                    raise ValueError(
                        f"metrics asks for {key!r}, which is not among this round's "
                        f"evaluation results {sorted(results)!r}; results are named "
                        "'<data name>-<metric name>' after the evaluation sets and metrics "
                        "given to the library"
                    )
                chosen[name] = results[key]
        fn = self.results_postprocessing_fn
        if fn is not None:
            chosen = fn(chosen)
            if not isinstance(chosen, Mapping):
                raise TypeError(f"results_postprocessing_fn must return a dict of results, "
                                f"got {chosen!r} of type {type(chosen).__name__}")
        return dict(chosen)

    def report(self, results: dict[str, Any], save: Callable[[str], Any] | None = None) -> None:
        """Report ``results``; with ``save``, first save the booster into a checkpoint.

        ``save(path)`` writes the booster to ``path``. The temporary folder
        is copied into the experiment by ``tune.report`` and removed
        afterwards, also when the report ends the trial.
        """
        report_with(results, None if save is None else
                    lambda directory: save(os.path.join(directory, self.filename)),
                    prefix="fastasha_booster_")


def report_with(metrics: dict[str, Any], save: Callable[[str], Any] | None,
                prefix: str = "fastasha_model_") -> None:
    """Report ``metrics``; with ``save``, first let ``save(folder)`` write a checkpoint.

    The temporary folder is copied into the experiment by ``tune.report``
    and removed afterwards, also when the report ends the trial.
    """
    if save is None:
        report(metrics)
        return
    with tempfile.TemporaryDirectory(prefix=prefix) as directory:
        save(directory)
        report(metrics, checkpoint=Checkpoint.from_directory(directory))


def checkpoint_folder(checkpoint: Any, how_to_save: str) -> str:
    """The folder of ``checkpoint`` (a ``tune.Checkpoint`` or a path), checked to exist.

    ``how_to_save`` ends the message for a result without a checkpoint.
    """
    if isinstance(checkpoint, Checkpoint):
        directory = checkpoint.path
    elif isinstance(checkpoint, (str, os.PathLike)):
        directory = os.fspath(checkpoint)
    elif checkpoint is None:
        raise TypeError(
            "get_model needs a checkpoint, got None: this result has no checkpoint. Pick a "
            "result that has one (ResultGrid.get_best_result().checkpoint, "
            f"Result.best_checkpoints), or {how_to_save}"
        )
    else:
        raise TypeError(f"get_model needs a tune.Checkpoint (or its folder), got "
                        f"{checkpoint!r} of type {type(checkpoint).__name__}")
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"checkpoint folder {directory!r} does not exist")
    return directory


def model_path(checkpoint: Any, filename: Any) -> str:
    """The path of the booster file ``filename`` in ``checkpoint``, checked to exist."""
    filename = check_filename(filename)
    directory = checkpoint_folder(
        checkpoint, "save one with the callback's frequency=N or checkpoint_at_end=True")
    path = os.path.join(directory, filename)
    if not os.path.isfile(path):
        held = sorted(os.listdir(directory))
        raise FileNotFoundError(
            f"no booster file {filename!r} in checkpoint {directory!r} (it holds {held!r}); "
            "pass get_model the filename= the callback was given"
        )
    return path


def missing_library(err: ModuleNotFoundError, library: str) -> ModuleNotFoundError:
    """The error for ``import fastasha.integration.<library>`` without ``library`` installed."""
    return ModuleNotFoundError(
        f"fastasha.integration.{library} needs {library}, which is not installed ({err}); "
        f'install it with  pip install {library}  (or, in a clone of fastasha, '
        f'pip install -e ".[{library}]")',
        name=library,
    )


class ReportOnly:
    """Mixin of the ``TuneReportCallback`` classes: report each round, save no checkpoint.

    Put it first among the bases, before the library's
    ``TuneReportCheckpointCallback``, whose ``__init__`` it calls.
    """

    def __init__(self, metrics: Any = None,
                 results_postprocessing_fn: PostprocessingFn | None = None) -> None:
        super().__init__(metrics=metrics, frequency=0,    # type: ignore[call-arg]
                         checkpoint_at_end=False,
                         results_postprocessing_fn=results_postprocessing_fn)


def refuse_ray_train(module: str, name: str, refused: frozenset, library: str,
                     train: str) -> AttributeError:
    """The module ``__getattr__``'s error: Ray Train's distributed names, or no such name."""
    if name in refused:
        return AttributeError(
            f"{module} has no {name!r}: fastasha runs one process per trial, not Ray "
            f"Train's distributed {library}. Call {train} in the objective with "
            "callbacks=[TuneReportCheckpointCallback(...)], and load a model with "
            "TuneReportCheckpointCallback.get_model(checkpoint)"
        )
    return AttributeError(f"module {module!r} has no attribute {name!r}")
