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


def test_serve_help_lists_every_setting() -> None:
    """`quackml serve --help` runs (a literal % in a help text once crashed it)."""
    import subprocess
    import sys

    from server.settings import SETTINGS

    out = subprocess.run([sys.executable, "-m", "server", "serve", "--help"], cwd=REPO,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    for setting in SETTINGS:
        assert "--" + setting.name.replace("_", "-") in out.stdout, setting.name


def test_help_and_version() -> None:
    """`quackml --help`, `quackml --version`; no command prints the usage (exit 2)."""
    import re
    import subprocess
    import sys

    def quackml(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "server", *args], cwd=REPO,
                              capture_output=True, text=True, timeout=60)

    top = quackml("--help")
    assert top.returncode == 0, top.stderr
    assert "serve" in top.stdout and "--version" in top.stdout
    version = quackml("--version")
    assert version.returncode == 0, version.stderr
    assert re.fullmatch(r"quackml \S+.*\n", version.stdout), version.stdout
    bare = quackml()
    assert bare.returncode == 2 and "usage: quackml" in bare.stderr
