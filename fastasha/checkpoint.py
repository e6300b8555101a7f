"""Checkpoints: a directory of files a trial saves and resumes from."""

from __future__ import annotations

import json
import math
import numbers
import os
import pickle
import shutil
import tempfile
import weakref
from pathlib import Path
from typing import Any, Sequence

# Ray's file for a checkpoint's metadata (Checkpoint.set_metadata), in its folder
METADATA_FILE = ".metadata.json"
# The file a dict checkpoint (Checkpoint.from_dict) keeps its dict in, and the one a
# class Trainable's save_checkpoint keeps the dict it returns in (fastasha.trainable).
DICT_FILE = "checkpoint_dict.pkl"
TRAINABLE_DICT_FILE = "_fastasha_checkpoint.pkl"
# The temporary folders of this process's dict checkpoints still alive: folder -> pid
# of the process that made it (a forked child inherits its parent's entries).
_dict_folders: dict[str, int] = {}


def checkpoint_rank(entry: Sequence, order: str | None) -> tuple:
    """How good a kept checkpoint is, as Ray's checkpoint manager ranks it: bigger is better.

    ``entry`` is a trial's record of one checkpoint, ``(path, report count,
    score, ...)``. With ``order`` (``CheckpointConfig.checkpoint_score_order``,
    ``"max"`` or ``"min"``: there is a ``checkpoint_score_attribute``) the
    score ranks it; a score that is not a real number (missing, NaN, a
    string) ranks below every real one, as Ray ranks NaN below ``-inf``.
    Equals, and every checkpoint when ``order`` is None, rank by recency:
    the later saved is the better (Ray inserts a checkpoint after those that
    score the same, and keeps the most recent without a score attribute).
    """
    if order is None:
        return (entry[1],)
    score = entry[2]
    ok = isinstance(score, numbers.Real) and not math.isnan(score)
    return (ok, (score if order == "max" else -score) if ok else 0.0, entry[1])


def checkpoint_fields(result: dict, latest: Sequence | None) -> dict[str, Any]:
    """Ray's ``checkpoint_dir_name`` of a trial's newest ``result`` (and ``should_checkpoint``).

    ``latest`` is the trial's latest checkpoint record, ``(path, report
    count, score, time_total_s, training_iteration)`` (older records lack the
    last two); ``result`` was saved with it if both name the same report.
    Ray's ``train.report`` sets these keys on every result it reports: the
    folder's name (and ``should_checkpoint``) with a checkpoint, else None.
    """
    if latest is not None and len(latest) > 4 and \
            latest[4] == result.get("training_iteration") and \
            latest[3] == result.get("time_total_s"):
        return {"checkpoint_dir_name": os.path.basename(os.path.normpath(latest[0])),
                "should_checkpoint": True}
    return {"checkpoint_dir_name": None}


def _remove_dict_folder(directory: str) -> None:
    _dict_folders.pop(directory, None)
    shutil.rmtree(directory, ignore_errors=True)


def remove_dict_folders() -> None:
    """Remove the folders of the dict checkpoints this process made and still holds.

    For a process about to end with ``os._exit`` (a trial process), which
    skips the finalizers that would remove them at exit.
    """
    pid = os.getpid()
    for directory, owner in list(_dict_folders.items()):
        if owner == pid:
            _remove_dict_folder(directory)


class Checkpoint:
    """A directory holding a trial's saved state (as Ray Tune's ``tune.Checkpoint``).

    In the objective::

        with tempfile.TemporaryDirectory() as d:
            torch.save(model.state_dict(), os.path.join(d, "model.pt"))
            tune.report({"loss": loss}, checkpoint=tune.Checkpoint.from_directory(d))

    The directory is copied into the experiment when ``report`` is called,
    so it may be deleted afterwards. ``tune.get_checkpoint()`` returns the
    latest checkpoint of a trial that resumes after a failure or a restore.

    Scripts written for Ray 2.0-2.6 save small state as a dict instead:
    ``Checkpoint.from_dict({"step": step})`` and, on resume,
    ``checkpoint.to_dict()``. Here such a checkpoint is a directory as well,
    holding the pickled dict in one file.

    Ray 1.x handed checkpoints out as paths (``analysis.best_checkpoint``,
    ``trial.checkpoint.value``): a checkpoint is an ``os.PathLike`` of its
    directory, so ``os.path.join(checkpoint, "model.pt")`` works, and
    :attr:`value` and :attr:`local_path` are the path as a string.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = os.fspath(path)
        if not isinstance(self.path, str):
            raise TypeError(f"a checkpoint's path must be a str or os.PathLike, got {path!r}")

    def __fspath__(self) -> str:
        return self.path

    @property
    def value(self) -> str:
        """The directory's path (Ray 1.x's ``trial.checkpoint.value``)."""
        return self.path

    @property
    def local_path(self) -> str:
        """The directory's path (Ray 1.x's ``TrialCheckpoint.local_path``)."""
        return self.path

    def to_air_checkpoint(self) -> Checkpoint:
        """This checkpoint (Ray 2.0-2.4 converted its trial checkpoints with this)."""
        return self

    @classmethod
    def from_directory(cls, path: str | os.PathLike) -> Checkpoint:
        """A checkpoint of the files in ``path`` (an existing directory)."""
        p = Path(path)
        if not p.is_dir():
            raise ValueError(f"Checkpoint.from_directory needs an existing directory, got {str(path)!r}")
        return cls(p)

    @classmethod
    def from_dict(cls, data: dict) -> Checkpoint:
        """A checkpoint of ``data`` (Ray 2.0-2.6's dict checkpoints); read it with :meth:`to_dict`.

        The dict is pickled into a temporary directory, which is removed
        when the returned checkpoint is garbage-collected (``report`` copies
        it into the experiment first), or when the process exits, a trial
        process included.
        """
        if not isinstance(data, dict):
            raise TypeError(f"Checkpoint.from_dict needs a dict, got {type(data).__name__}; "
                            "save other objects with Checkpoint.from_directory")
        directory = tempfile.mkdtemp(prefix="fastasha_checkpoint_")
        try:
            with open(os.path.join(directory, DICT_FILE), "wb") as f:
                pickle.dump(data, f, protocol=pickle.HIGHEST_PROTOCOL)
        except BaseException:
            shutil.rmtree(directory, ignore_errors=True)
            raise
        checkpoint = cls(directory)
        _dict_folders[directory] = os.getpid()
        weakref.finalize(checkpoint, _remove_dict_folder, directory)
        return checkpoint

    def to_dict(self) -> dict[str, Any]:
        """The dict a checkpoint holds: made by :meth:`from_dict`, or returned by a
        class Trainable's ``save_checkpoint``."""
        for name in (DICT_FILE, TRAINABLE_DICT_FILE):
            path = os.path.join(self.path, name)
            if os.path.isfile(path):
                with open(path, "rb") as f:
                    return pickle.load(f)
        raise ValueError(
            f"{self.path} holds no dict checkpoint (it was not made with "
            "Checkpoint.from_dict, nor by a save_checkpoint that returned a dict); read its "
            "files with as_directory() instead"
        )

    def to_directory(self, path: str | os.PathLike | None = None) -> str:
        """Copy the checkpoint to ``path`` (a new temporary directory by default)."""
        target = Path(path) if path is not None else Path(tempfile.mkdtemp(prefix="checkpoint_"))
        shutil.copytree(self.path, target, dirs_exist_ok=True)
        return str(target)

    def as_directory(self):
        """Context manager giving the checkpoint's directory (read it, don't change it)."""
        from contextlib import nullcontext

        return nullcontext(self.path)

    @property
    def filesystem(self):
        """``pyarrow.fs.LocalFileSystem()``, as Ray's (needs pyarrow): checkpoints are local."""
        from .results import _local_filesystem

        return _local_filesystem()

    def get_metadata(self) -> dict[str, Any]:
        """The metadata stored with this checkpoint (``{}`` if none), as in Ray 2.7+.

        It is kept in ``.metadata.json`` in the checkpoint's folder, as Ray
        keeps it, so it travels with the folder: set it before passing the
        checkpoint to ``tune.report``, which copies the folder.
        """
        path = os.path.join(self.path, METADATA_FILE)
        if not os.path.isfile(path):
            return {}
        with open(path, encoding="utf-8") as f:
            return json.load(f)

    def set_metadata(self, metadata: dict[str, Any]) -> None:
        """Store ``metadata`` (a dict JSON can hold) with this checkpoint, replacing any.

        Raises
        ------
        TypeError
            If ``metadata`` is not a dict, or JSON cannot hold it.
        """
        if not isinstance(metadata, dict):
            raise TypeError(f"a checkpoint's metadata is a dict, got {type(metadata).__name__}")
        try:
            text = json.dumps(metadata)
        except (TypeError, ValueError) as err:
            raise TypeError(f"a checkpoint's metadata must be JSON: {err}") from None
        path = os.path.join(self.path, METADATA_FILE)
        partial = f"{path}.{os.getpid()}.tmp"
        with open(partial, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(partial, path)       # a reader sees the old metadata or the new, whole

    def update_metadata(self, metadata: dict[str, Any]) -> None:
        """Add ``metadata``'s keys to the metadata stored with this checkpoint."""
        if not isinstance(metadata, dict):
            raise TypeError(f"a checkpoint's metadata is a dict, got {type(metadata).__name__}")
        self.set_metadata({**self.get_metadata(), **metadata})

    def __repr__(self) -> str:
        return f"Checkpoint(path={self.path!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Checkpoint) and other.path == self.path

    def __hash__(self) -> int:
        return hash(self.path)
