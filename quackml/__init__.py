"""``quackml``: the one top-level name the installed distribution claims.

The code lives in the repository's top-level folders ``server/``,
``catalog/``, ``automl/`` and ``inference/`` (DESIGN.md's layout), which
import one another by those names. The wheel installs them *inside* this
package (``site-packages/quackml/server``, ``.../quackml/catalog``, ...; see
``[tool.setuptools]`` in pyproject.toml), so nothing named ``server`` or
``inference`` lands in site-packages where it would clash with other
distributions. ``main`` (the ``quackml`` console script, ``python -m
quackml``) puts that folder first on ``sys.path`` of the quackml process
only; worker processes inherit it (multiprocessing passes ``sys.path`` to
spawned children).

In a source checkout (``pip install -e .``, ``python -m server``) this folder
sits beside ``server/`` and the same code runs unchanged.
"""

from __future__ import annotations

import sys
from pathlib import Path


def code_root() -> Path:
    """The folder holding ``server/``, ``catalog/``, ...: this package's own folder
    in an installed wheel, the repository root in a source checkout."""
    here = Path(__file__).resolve().parent
    return here if (here / "server" / "__init__.py").is_file() else here.parent


def main() -> int:
    root = str(code_root())
    if sys.path[:1] != [root]:
        sys.path.insert(0, root)
    from server.cli import main as cli_main

    return cli_main()
