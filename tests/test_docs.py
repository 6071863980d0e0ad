"""The README tells the truth about settings and SQLSTATEs."""

from __future__ import annotations

import re
from pathlib import Path

import psycopg
import pytest

from server.settings import SETTINGS
from tests.conftest import RunningServer

REPO = Path(__file__).resolve().parent.parent
README = (REPO / "README.md").read_text()


def test_readme_lists_every_setting() -> None:
    for s in SETTINGS:
        assert f"`{s.env}`" in README, s.env
        assert f"`--{s.name.replace('_', '-')}`" in README, s.name


def _documented_sqlstates() -> set[str]:
    section = README.split("## SQLSTATEs", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"`([0-9A-Z]{5})`", section))


# One statement per SQLSTATE that a plain client can provoke; each must be
# documented in the README.
PROVOKE = {
    "42601": "SELEC 1",
    "42P01": "SELECT * FROM docs_no_such_table",
    "42703": "SELECT no_col FROM (SELECT 1 AS a)",
    "42883": "SELECT abs(1, 2, 3)",
    "42P07": "CREATE TABLE docs_dup (a INT); CREATE TABLE docs_dup (a INT)",
    "42704": "DROP MODEL docs_no_such_model",
    "22P02": "SELECT CAST('x' AS INTEGER)",
    "22003": "SELECT 2147483647::INTEGER + 1::INTEGER",
    "22012": "SELECT 1 / 0",
    "22023": "CREATE MODEL docs_m FROM customers TARGET churn FUNCTION docs_f "
             "SETTINGS (MAX_RUNTIME -1)",
    "22000": "CREATE MODEL docs_m FROM (SELECT * FROM customers LIMIT 10) TARGET churn "
             "FUNCTION docs_f",
    "23505": "CREATE TABLE docs_pk (a INT PRIMARY KEY); INSERT INTO docs_pk VALUES (1), (1)",
    "23502": "CREATE TABLE docs_nn (a INT NOT NULL); INSERT INTO docs_nn VALUES (NULL)",
    "0A000": "CREATE MODEL docs_m FROM customers TARGET churn FUNCTION docs_f AUTO OFF",
    "42804": "CREATE MODEL docs_m FROM (SELECT [1, 2] AS l, churn FROM customers) "
             "TARGET churn FUNCTION docs_f",
}


@pytest.mark.parametrize("sqlstate", sorted(PROVOKE))
def test_documented_sqlstate_is_what_the_server_sends(server: RunningServer,
                                                      sqlstate: str) -> None:
    assert sqlstate in _documented_sqlstates()
    with server.connect() as c:
        with pytest.raises(psycopg.Error) as info:
            c.execute(PROVOKE[sqlstate])
        assert info.value.sqlstate == sqlstate, info.value
        assert c.execute("SELECT 1").fetchone() == (1,)


def test_every_documented_sqlstate_is_emitted_somewhere() -> None:
    sources = "\n".join(p.read_text() for pkg in ("server", "catalog", "automl", "inference")
                        for p in (REPO / pkg).rglob("*.py"))
    for code in _documented_sqlstates():
        assert f'"{code}"' in sources, code
