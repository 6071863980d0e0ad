"""psql 15 backslash commands and client parameters, through pg_catalog emulation."""

from __future__ import annotations

import pytest

from tests.conftest import RunningServer
from tests.test_psql import PSQL, psql

pytestmark = pytest.mark.skipif(PSQL is None, reason="psql is installed by `make test`")


def ok(server: RunningServer, *args: str) -> str:
    out = psql(server, *args)
    assert out.returncode == 0, out.stderr
    assert "ERROR" not in out.stderr, out.stderr
    return out.stdout


def test_list_relations(server: RunningServer) -> None:
    ok(server, "-c", "CREATE OR REPLACE TABLE bs_items (id INTEGER NOT NULL, label VARCHAR, "
                     "price DOUBLE)", "-c", "CREATE OR REPLACE VIEW bs_view AS SELECT 1 AS x")
    out = ok(server, "-c", r"\dt")
    assert "customers" in out and "bs_items" in out and "table" in out
    assert "bs_view" not in out
    assert "models" not in out      # the reserved model catalog is not listed
    out = ok(server, "-c", r"\d")
    assert "bs_view" in out and "view" in out


def test_describe_table(server: RunningServer) -> None:
    ok(server, "-c", "CREATE OR REPLACE TABLE bs_desc (id INTEGER PRIMARY KEY, "
                     "label VARCHAR, amount DECIMAL(10,2))")
    out = ok(server, "-c", r"\d bs_desc")
    assert 'Table "public.bs_desc"' in out
    assert "character varying" in out and "numeric(10,2)" in out
    assert '"bs_desc_id_pkey" PRIMARY KEY, btree (id)' in out
    out = ok(server, "-c", r"\d+ bs_desc", "-c", "CREATE OR REPLACE VIEW bs_v AS SELECT 1 AS x",
             "-c", r"\d+ bs_v", "-c", r"\di")
    assert "Storage" in out and "View definition:" in out
    assert "bs_desc_id_pkey" in out
    lines = {line.split("|")[0].strip(): line for line in out.splitlines() if "|" in line}
    assert "not null" in lines["id"]
    assert "label" in lines


def test_schemas_databases_roles(server: RunningServer) -> None:
    assert "public" in ok(server, "-c", r"\dn")
    assert "quackml" in ok(server, "-A", "-t", "-c", r"\du")
    out = ok(server, "-A", "-t", "-c", r"\l")
    assert "UTF8" in out


def test_functions_listed(server: RunningServer) -> None:
    # prediction functions are listed the same way (they are DuckDB functions
    # named in the model catalog); a user macro stands in for one here
    ok(server, "-c", "CREATE OR REPLACE MACRO bs_double(x) AS x * 2")
    out = ok(server, "-c", r"\df")
    assert "List of functions" in out
    assert "bs_double" in out
    assert "abs" not in out.split()     # DuckDB's built-ins are not listed


def test_expanded_and_timing(server: RunningServer) -> None:
    out = ok(server, "-c", r"\x", "-c", "SELECT 1 AS a, 'b' AS b", "-c", r"\timing",
             "-c", "SELECT 2 AS c")
    assert "-[ RECORD 1 ]" in out and "a | 1" in out
    assert "Time:" in out


def test_version_and_settings(server: RunningServer) -> None:
    out = ok(server, "-A", "-t", "-c", "SELECT version()")
    assert out.startswith("PostgreSQL 15.")
    out = ok(server, "-A", "-t", "-c", "SHOW DateStyle", "-c", "SET extra_float_digits = 3",
             "-c", "SELECT current_setting('extra_float_digits')",
             "-c", "SET application_name TO 'bs test'", "-c", "SHOW application_name",
             "-c", "RESET application_name", "-c", "SHOW application_name",
             "-c", "SET search_path TO public", "-c", "SELECT count(*) FROM customers")
    lines = out.splitlines()
    assert lines[0] == "ISO, MDY"
    assert "3" in lines
    assert "bs test" in lines
    out = psql(server, "-c", "SET DateStyle = 'German'")
    assert "ERROR:  0A000" in out.stderr


def test_copy_in_and_out(server: RunningServer, tmp_path) -> None:  # type: ignore[no-untyped-def]
    text = tmp_path / "rows.txt"
    text.write_text("1\tx y\tt\n2\t\\N\tf\n")
    csv = tmp_path / "rows.csv"
    csv.write_text('a,b,c\n3,"q,r",true\n4,,false\n')
    out_csv = tmp_path / "out.csv"
    out = ok(server, "-c", "CREATE OR REPLACE TABLE bs_copy (a INTEGER, b VARCHAR, c BOOLEAN)",
             "-c", rf"\copy bs_copy from '{text}'",
             "-c", rf"\copy bs_copy from '{csv}' csv header",
             "-c", rf"\copy (SELECT * FROM bs_copy ORDER BY a) to '{out_csv}' csv header",
             "-c", r"\copy (SELECT a FROM bs_copy ORDER BY a) to stdout")
    assert out.count("COPY 2") == 2
    assert out.splitlines()[-4:] == ["1", "2", "3", "4"]
    assert out_csv.read_text().splitlines() == [
        "a,b,c", "1,x y,t", "2,,f", '3,"q,r",t', "4,,f"]   # PostgreSQL's booleans


def test_du_lists_users_roles_and_membership(server: RunningServer) -> None:
    ok(server, "-c", "DROP USER IF EXISTS du_alice", "-c", "DROP ROLE IF EXISTS du_team",
       "-c", "CREATE USER du_alice PASSWORD 'pw'", "-c", "CREATE ROLE du_team",
       "-c", "GRANT du_team TO du_alice")
    rows = {line.split("|")[0]: line.split("|")[1:]
            for line in ok(server, "-A", "-t", "-c", r"\du").splitlines()}
    assert rows["du_alice"] == ["", "{du_team}"]
    assert rows["du_team"] == ["Cannot login", "{}"]
    assert "Superuser" in rows["quackml"][0]
    ok(server, "-c", "DROP USER du_alice", "-c", "DROP ROLE du_team")
    assert "du_alice" not in ok(server, "-A", "-t", "-c", r"\du")
