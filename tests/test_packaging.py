"""The four top-level packages import from this repository, never from the
unrelated PyPI distributions that share their names (``automl``, ``inference``)."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("name", ["server", "catalog", "automl", "inference"])
def test_package_imports_from_repo(name: str) -> None:
    module = importlib.import_module(name)
    assert module.__file__ is not None
    assert Path(module.__file__).resolve().parent == REPO / name
