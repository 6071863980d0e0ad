"""The import rules of DESIGN.md, checked on the source: a test fails when an import
breaks the layering (module-level and function-level imports alike)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("server", "catalog", "automl", "inference")


def imports_of(path: Path) -> set[str]:
    """Every module a file imports, anywhere in it (``from x import y`` gives x and x.y)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def project_imports(path: Path) -> set[str]:
    return {m for m in imports_of(path) if m.split(".")[0] in PACKAGES}


def modules(folder: str) -> list[Path]:
    return sorted((REPO / folder).rglob("*.py"))


def _module_name(path: Path) -> str:
    return ".".join(path.relative_to(REPO).with_suffix("").parts)


def _allowed(imported: str, prefixes: tuple[str, ...]) -> bool:
    return any(imported == p or imported.startswith(p + ".") for p in prefixes)


# (folder, what its modules may import from the four packages)
RULES = [
    # the pure layers: nothing else of the server but errors
    ("server/protocol", ("server.protocol", "server.errors")),
    ("server/sql", ("server.sql", "server.errors", "catalog.spec")),
    # the PostgreSQL emulation: over the pure layers, never the session or the engine
    ("server/postgres", ("server.postgres", "server.protocol", "server.sql", "server.errors",
                         "catalog", "inference.functions")),
    # the security layer: decisions and DDL over the catalog, the sql layer and results
    ("server/security", ("server.security", "server.errors", "server.sql", "server.protocol",
                         "server.results", "server.settings", "catalog", "inference.functions",
                         "server.engine")),
    # the model statements: handlers get a Caller (cursor, user, privileges), never the
    # session; the engine is named for types only (checked below)
    ("server/models", ("server.models", "server.security.privileges", "server.sql",
                       "server.errors", "server.protocol", "server.results", "server.engine",
                       "catalog", "automl", "inference")),
    # the web console: pages answered by running statements in a Session as the user
    ("server/console", ("server.console", "server.session", "server.engine", "server.settings",
                        "server.security.auth", "server.errors", "server.results",
                        "server.sql.text", "automl.progress")),
    # packages below the server
    ("catalog", ("catalog",)),
    ("automl", ("automl", "catalog")),
    ("inference", ("inference", "catalog")),
]


@pytest.mark.parametrize(("folder", "allowed"), RULES, ids=[r[0] for r in RULES])
def test_layering(folder: str, allowed: tuple[str, ...]) -> None:
    broken = [f"{_module_name(path)} imports {imported}"
              for path in modules(folder)
              for imported in sorted(project_imports(path))
              if not _allowed(imported, allowed)]
    assert broken == []


@pytest.mark.parametrize(("folder", "late"), [
    ("server/security", ("server.engine",)),
    ("server/models", ("server.engine",))])
def test_server_modules_named_only_for_types(folder: str, late: tuple[str, ...]) -> None:
    """security/ and models/ name the engine only under TYPE_CHECKING: never at module
    level (the engine imports them)."""
    for path in modules(folder):
        tree = ast.parse(path.read_text())
        for node in tree.body:
            if isinstance(node, ast.ImportFrom) and node.module in late:
                raise AssertionError(f"{_module_name(path)} imports {node.module} at "
                                     "module level")


def test_connection_does_not_import_the_listener() -> None:
    assert not any(m.startswith("server.listener")
                   for m in project_imports(REPO / "server" / "connection.py"))


def test_the_rules_can_fail(tmp_path: Path) -> None:
    """The scanner sees imports in functions too (a check that cannot fail is no check)."""
    sample = tmp_path / "sample.py"
    sample.write_text("def f():\n    from server.session import Session\n    return Session\n")
    assert "server.session" in project_imports(sample)
    assert not _allowed("server.session", ("server.sql", "server.errors"))


def runtime_imports(path: Path) -> set[str]:
    """The project modules a file imports when it runs: anywhere in it, functions
    included, except under ``if TYPE_CHECKING:`` (imports for annotations only)."""
    tree = ast.parse(path.read_text(), str(path))
    typing_only: set[int] = set()
    for node in ast.walk(tree):
        test = node.test if isinstance(node, ast.If) else None
        if (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
                (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"):
            typing_only.update(id(sub) for n in node.body for sub in ast.walk(n))  # type: ignore[attr-defined]
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {m for m in found if m.split(".")[0] in PACKAGES}


def import_cycles(files: dict[str, Path]) -> list[list[str]]:
    """The strongly connected groups (more than one module) of the runtime import graph."""
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        deps = set()
        for imported in runtime_imports(path):
            while imported and imported not in files:
                imported = imported.rpartition(".")[0]
            if imported and imported != name and not name.startswith(imported + "."):
                deps.add(imported)
        graph[name] = deps
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(v: str) -> None:   # Tarjan's algorithm
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                cycles.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return cycles


def _project_files() -> dict[str, Path]:
    files = {}
    for package in PACKAGES:
        for path in modules(package):
            name = _module_name(path).removesuffix(".__init__")
            files[name] = path
    return files


def test_no_import_cycles() -> None:
    """No module imports, even inside a function, a module that imports it back (imports
    under TYPE_CHECKING are for annotations and do not count)."""
    assert import_cycles(_project_files()) == []


def test_the_cycle_check_can_fail(tmp_path: Path) -> None:
    for name, body in (("a", "def f():\n    from server.b import g\n"),
                       ("b", "from server.a import f\n"),
                       ("c", "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                             "    from server.a import f\n")):
        (tmp_path / f"{name}.py").write_text(body)
    files = {f"server.{n}": tmp_path / f"{n}.py" for n in "abc"}
    assert import_cycles(files) == [["server.a", "server.b"]]
