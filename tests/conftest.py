"""Shared test setup: the Ray Tune conformance fixture.

A test that takes a ``ray_asha_case`` argument runs once per case of
``tests/data/ray_asha_cases.json``, with the case name as the test id.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import pytest

DATA_DIR = Path(__file__).parent / "data"


@functools.cache
def _ray_asha_cases() -> dict:
    with open(DATA_DIR / "ray_asha_cases.json", encoding="utf-8") as f:
        return json.load(f)


@pytest.fixture(scope="session")
def ray_asha_fixture() -> dict:
    """The whole conformance file (recorded from Ray Tune 2.53), parsed."""
    return _ray_asha_cases()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "ray_asha_case" in metafunc.fixturenames:
        cases = _ray_asha_cases()["cases"]
        metafunc.parametrize("ray_asha_case", cases, ids=[c["name"] for c in cases])


@pytest.fixture(autouse=True)
def _experiments_in_tmp(tmp_path_factory, monkeypatch):
    """Experiments that name no storage_path go to a temporary folder, never ~.

    And a developer's ``FASTASHA_OVERWRITE=1`` does not change what the tests see.
    """
    monkeypatch.setenv("FASTASHA_STORAGE_PATH", str(tmp_path_factory.mktemp("fastasha_results")))
    monkeypatch.delenv("FASTASHA_OVERWRITE", raising=False)
