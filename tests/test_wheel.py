"""The wheel as a user gets it: built from a clean copy of the sources,
installed in a fresh venv outside the checkout, claiming only the ``quackml``
name, shipping the sample data, and serving, training and predicting.

Offline and fast: the wheel is built by pip with the build requirements from
pip's configured indexes, installed with ``--no-deps --no-index``, and the
fresh venv reaches the dependencies through a ``.pth`` line naming this
venv's site-packages (a ``.pth`` in that folder is not processed, so nothing
of the development install leaks in: ``import server`` fails there)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import psycopg
import pytest

from tests.conftest import wait_for_state

REPO = Path(__file__).resolve().parent.parent
SOURCES = ("server", "catalog", "automl", "inference")
PACKAGE_FILES = ("pyproject.toml", "README.md", "quackml", *SOURCES, "examples")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the wheel installed; its folder."""
    root = tmp_path_factory.mktemp("wheel")
    source = root / "source"
    source.mkdir()
    for name in PACKAGE_FILES:   # a clean copy: no stale build/ of an earlier run
        path = REPO / name
        if path.is_dir():
            shutil.copytree(path, source / name,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(path, source / name)
    dist = root / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet",
                    "-w", str(dist), str(source)], check=True, timeout=300, cwd=root)
    (wheel,) = dist.glob("quackml-*.whl")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"),
                    "install", "--no-deps", "--no-index", "--quiet", str(wheel)],
                   check=True, timeout=120, cwd=root)
    (site,) = venv.glob("lib/python*/site-packages")
    (site / "quackml-test-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return venv


def _run(venv: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("QUACKML_") and k != "PYTHONPATH"}
    return subprocess.run(list(args), cwd=venv.parent, env=env, capture_output=True,
                          text=True, timeout=60)


def test_wheel_claims_only_quackml_and_holds_every_module(installed: Path) -> None:
    (site,) = installed.glob("lib/python*/site-packages")
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    assert {p.name for p in site.iterdir()} == {
        "quackml", f"quackml-{version}.dist-info", "quackml-test-deps.pth"}
    shipped = {p.relative_to(site / "quackml") for p in (site / "quackml").rglob("*")
               if p.is_file() and "__pycache__" not in p.parts}
    wanted = {p.relative_to(REPO) for name in SOURCES for p in (REPO / name).rglob("*.py")
              if "__pycache__" not in p.parts}
    assert wanted - shipped == set(), "pyproject.toml's package list misses these"
    samples = {p.relative_to(REPO) for p in (REPO / "examples" / "data").glob("*.csv")}
    assert samples and samples <= shipped
    console = {p.relative_to(REPO) for p in (REPO / "server" / "console" / "static").rglob("*")
               if p.is_file()}
    assert console and console <= shipped, "the web console's static files are missing"
    python = str(installed / "bin" / "python")
    generic = _run(installed, python, "-c", "import server")
    assert "No module named 'server'" in generic.stderr, generic.stderr
    out = _run(installed, str(installed / "bin" / "quackml"), "--version")
    assert out.stdout == f"quackml {version}\n", out.stderr


def test_wheel_serves_trains_and_predicts(installed: Path, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("QUACKML_") and k != "PYTHONPATH"}
    proc = subprocess.Popen(
        [str(installed / "bin" / "quackml"), "serve", "--port", "0", "--http-port", "0",
         "--database", str(tmp_path / "db.duckdb"), "--data-dir", str(tmp_path / "data"),
         "--training-workers", "1", "--training-threads", "1"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.search(r"listening on [\d.]+:(\d+)", line)
        assert match, line + (proc.stderr.read() if proc.stderr else "")
        dsn = f"host=127.0.0.1 port={match.group(1)} user=quackml dbname=quackml"
        with psycopg.connect(dsn, autocommit=True) as c:
            # the sample tables come from the wheel's quackml/examples/data
            c.execute("CREATE TABLE churn_train AS SELECT churn, tenure, monthly_charges, "
                      "contract FROM customers WHERE split = 'train'")
            c.execute("CREATE MODEL churn FROM churn_train TARGET churn FUNCTION predict_churn "
                      "IAM_ROLE default SETTINGS (S3_BUCKET 'unused', MAX_RUNTIME 8)")
            assert wait_for_state(c, "churn", timeout=120) == "READY"
            right, total = c.execute(
                "SELECT count(*) FILTER (WHERE predict_churn(tenure, monthly_charges, "
                "contract) = churn), count(*) FROM customers WHERE split = 'test'").fetchone()
        assert total > 1000 and right / total > 0.7, (right, total)
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, out + err
        assert "Traceback" not in out + err, err
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
