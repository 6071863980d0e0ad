"""dbt (dbt-core with dbt-postgres, from its own venv made by `make client-deps`:
.venv-dbt) as its users run it against a QuackML server: `dbt seed` loads a CSV,
`dbt run` builds a table model that calls the prediction function of a model
trained here with CREATE MODEL and a view on top of it, `dbt test` runs the
schema tests, `dbt docs generate` reads the catalog. The project is
tests/clients/dbt/. Its profile names the default database, `quackml`, which dbt
puts in three-part names (quackml.public.churn_scores): the server here runs
with the default database file name, data/quackml.duckdb, as `quackml serve`
does."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from server.listener import Server
from server.settings import Settings
from tests.conftest import REPO, RunningServer, wait_for_state

PROJECT = Path(__file__).parent / "clients" / "dbt"
DBT = Path(os.environ.get("QUACKML_TEST_DBT", REPO / ".venv-dbt" / "bin" / "dbt"))

PROFILE = """\
quackml:
  target: dev
  outputs:
    dev:
      type: postgres
      host: {host}
      port: {port}
      user: tester
      password: ""
      dbname: quackml
      schema: public
      threads: 1
      connect_timeout: 10
"""


@pytest.fixture(scope="module")
def default_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A server whose database file has the default name (current_database() = quackml)."""
    folder = tmp_path_factory.mktemp("quackml-dbt")
    srv = Server(Settings(host="127.0.0.1", port=0, database=str(folder / "quackml.duckdb"),
                          data_dir=str(folder / "data"), samples=True, training_workers=1,
                          training_threads=1))
    srv.start()
    try:
        yield RunningServer("127.0.0.1", srv.port, folder / "data")
    finally:
        srv.stop()


@pytest.fixture
def project(default_server: RunningServer, tmp_path: Path) -> Path:
    assert DBT.exists(), f"{DBT} is missing: make client-deps (dbt's own venv)"
    project = tmp_path / "project"
    shutil.copytree(PROJECT, project, ignore=shutil.ignore_patterns("requirements.txt",
                                                                    "target", "logs"))
    (project / "profiles.yml").write_text(PROFILE.format(host=default_server.host,
                                                         port=default_server.port))
    return project


def dbt(project: Path, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DBT_", "PG"))}
    env.update(DBT_SEND_ANONYMOUS_USAGE_STATS="false", DBT_USE_COLORS="false")
    out = subprocess.run([str(DBT), *args, "--project-dir", str(project), "--profiles-dir",
                          str(project)], cwd=project, env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, f"dbt {' '.join(args)}:\n{out.stdout}\n{out.stderr}"
    return out.stdout


def test_dbt_debug_connects(project: Path) -> None:
    out = dbt(project, "debug")
    assert "Connection test: [OK connection ok]" in out
    assert "All checks passed!" in out


def test_dbt_seed_run_test_docs(default_server: RunningServer, project: Path) -> None:
    with default_server.connect() as c:
        # trains while dbt seeds; `dbt run` needs the prediction function
        c.execute("CREATE MODEL dbt_churn FROM (SELECT tenure, monthly_charges, contract, "
                  "churn FROM customers WHERE split = 'train') TARGET churn "
                  "FUNCTION predict_dbt_churn SETTINGS (MAX_RUNTIME 10)")
        assert "PASS=1 " in dbt(project, "seed")
        assert wait_for_state(c, "dbt_churn") == "READY"
        assert "PASS=2 " in dbt(project, "run")
        assert "PASS=7 " in dbt(project, "test")
        dbt(project, "docs", "generate")

        rows = c.execute("SELECT customer_id, will_churn FROM quackml.public.churn_scores "
                         "ORDER BY customer_id").fetchall()
        assert [r[0] for r in rows] == list(range(1, 9))
        assert all(isinstance(r[1], bool) for r in rows)
        expected = c.execute("SELECT customer_id, predict_dbt_churn(tenure, monthly_charges, "
                             "contract) FROM public.dbt_customers "
                             "ORDER BY customer_id").fetchall()
        assert rows == expected
        assert c.execute("SELECT sum(customers) FROM public.churn_summary").fetchone() == (8,)
    catalog = json.loads((project / "target" / "catalog.json").read_text())
    scores = catalog["nodes"]["model.quackml_dbt.churn_scores"]
    assert list(scores["columns"]) == ["customer_id", "tenure", "will_churn"]
    assert scores["metadata"]["database"] == "quackml"
    assert not catalog.get("errors")
