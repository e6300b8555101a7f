"""Defects found reviewing the Ray 1.x-2.5 compatibility changes.

Each test reproduces one defect through the public API.
"""

from __future__ import annotations

import numpy as np

from fastasha import tune


def reports_a_longdouble(config):
    tune.report({"loss": np.longdouble(0.25) * config["x"]})


def test_a_longdouble_metric_is_stored_as_a_float(tmp_path):
    """np.longdouble's item() returns a np.longdouble: the results' JSON encoding
    recursed until the worker process died."""
    grid = tune.Tuner(reports_a_longdouble, param_space={"x": 2},
                      run_config=tune.RunConfig(storage_path=str(tmp_path), verbose=0)).fit()
    (result,) = grid
    assert result.status == "TERMINATED", result.error
    assert result.metrics["loss"] == 0.5 and type(result.metrics["loss"]) is float
    assert list(result.metrics_dataframe["loss"]) == [0.5]


def test_run_config_takes_local_dir_and_storage_path_naming_one_folder(tmp_path, monkeypatch):
    """Ray 2.0-2.5 scripts may pass both; the same folder spelled two ways is no conflict."""
    import os
    from pathlib import Path

    import pytest

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    for storage_path, local_dir in [(str(tmp_path), str(tmp_path) + "/"),
                                    ("runs", str(tmp_path / "runs")),
                                    ("~/runs", Path(tmp_path, "runs")),
                                    (f"file://{tmp_path}", str(tmp_path))]:
        config = tune.RunConfig(storage_path=storage_path, local_dir=local_dir)
        assert config.storage_path == os.fspath(local_dir) and config.local_dir is None
    with pytest.raises(ValueError, match="local_dir is Ray 2.0-2.5's name of storage_path"):
        tune.RunConfig(storage_path=str(tmp_path), local_dir=str(tmp_path / "other"))


class ReturnsItsResolvedFile(tune.Trainable):
    """Ray's examples return os.path.join(checkpoint_dir, ...); some resolve it first."""

    def setup(self, config):
        self.x = config.get("x", 0)

    def step(self):
        self.x += 1
        return {"x": self.x}

    def save_checkpoint(self, checkpoint_dir):
        from pathlib import Path

        path = Path(checkpoint_dir, "model.txt").resolve()
        path.write_text(str(self.x))
        return path

    def load_checkpoint(self, checkpoint_path):
        from pathlib import Path

        self.x = int(Path(checkpoint_path).read_text())


def test_save_checkpoint_may_return_its_file_resolved_through_a_symlink(tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "link").symlink_to(real)
    trainable = ReturnsItsResolvedFile({"x": 4})
    trainable.train()
    folder = trainable.save(str(tmp_path / "link" / "checkpoint"))
    again = ReturnsItsResolvedFile({})
    again.restore(folder)
    assert again.x == 5
