"""Checkpoints: a directory of files a trial saves and resumes from."""

from __future__ import annotations

import os
from pathlib import Path


class Checkpoint:
    """A directory holding a trial's saved state (as Ray Tune's ``tune.Checkpoint``).

    In the objective::

        with tempfile.TemporaryDirectory() as d:
            torch.save(model.state_dict(), os.path.join(d, "model.pt"))
            tune.report({"loss": loss}, checkpoint=tune.Checkpoint.from_directory(d))

    The directory is copied into the experiment when ``report`` is called,
    so it may be deleted afterwards. ``tune.get_checkpoint()`` returns the
    latest checkpoint of a trial that resumes after a failure or a restore.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = str(path)

    @classmethod
    def from_directory(cls, path: str | os.PathLike) -> Checkpoint:
        """A checkpoint of the files in ``path`` (an existing directory)."""
        p = Path(path)
        if not p.is_dir():
            raise ValueError(f"Checkpoint.from_directory needs an existing directory, got {str(path)!r}")
        return cls(p)

    def to_directory(self, path: str | os.PathLike | None = None) -> str:
        """Copy the checkpoint to ``path`` (a new temporary directory by default)."""
        import shutil
        import tempfile

        target = Path(path) if path is not None else Path(tempfile.mkdtemp(prefix="checkpoint_"))
        shutil.copytree(self.path, target, dirs_exist_ok=True)
        return str(target)

    def as_directory(self):
        """Context manager giving the checkpoint's directory (read it, don't change it)."""
        from contextlib import nullcontext

        return nullcontext(self.path)

    def __repr__(self) -> str:
        return f"Checkpoint(path={self.path!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Checkpoint) and other.path == self.path

    def __hash__(self) -> int:
        return hash(self.path)
