"""The README's user story through a real server: CREATE MODEL, SHOW MODEL,
predictions inside queries, DROP MODEL, and the ML error paths."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator

import psycopg
import pytest

from tests.conftest import RunningServer, wait_for_state

CHURN_FEATURES = ("female, senior_citizen, partner, dependents, tenure, phone_service, "
                  "multiple_lines, internet_service, online_security, online_backup, "
                  "device_protection, tech_support, streaming_tv, streaming_movies, contract, "
                  "paperless_billing, payment_method, monthly_charges, total_charges")


@pytest.fixture(scope="session")
def churn_model(server: RunningServer) -> Iterator[str]:
    """One trained churn model shared by the tests of this session."""
    with server.connect() as c:
        c.execute(
            f"CREATE MODEL customer_churn FROM (SELECT {CHURN_FEATURES}, churn FROM customers "
            "WHERE split = 'train') TARGET churn FUNCTION predict_churn "
            "IAM_ROLE default SETTINGS (S3_BUCKET 'unused', MAX_RUNTIME 20)")
        assert wait_for_state(c, "customer_churn") == "READY"
    yield "customer_churn"


def test_customers_sample_table_is_loaded(conn: psycopg.Connection) -> None:
    n, churners = conn.execute("SELECT count(*), count(*) FILTER (WHERE churn) "
                               "FROM customers").fetchone()  # type: ignore[misc]
    assert n == 7043
    assert churners == 1869


def test_user_story_accuracy(conn: psycopg.Connection, churn_model: str) -> None:
    acc, n = conn.execute(
        f"SELECT avg(CASE WHEN predict_churn({CHURN_FEATURES}) = churn THEN 1 ELSE 0 END), "
        "count(*) FROM customers WHERE split = 'test'").fetchone()  # type: ignore[misc]
    assert n == 1409
    assert acc >= 0.77


def test_show_model_rows(conn: psycopg.Connection, churn_model: str) -> None:
    cur = conn.execute("SHOW MODEL customer_churn")
    assert [d.name for d in cur.description] == ["Key", "Value"]
    rows = cur.fetchall()
    keys = [k for k, _ in rows]
    values = dict(rows)
    for key in ("Model Name", "Schema Name", "Owner", "Creation Time", "Model State",
                "Training Job Status", "validation:f1", "Estimated Cost", "TRAINING DATA:",
                "Query", "Target Column", "PARAMETERS:", "Model Type", "Problem Type",
                "Objective", "AutoML Job Name", "Function Name", "Function Parameters",
                "Function Parameter Types", "IAM Role", "S3 Bucket", "KMS Key", "Max Runtime"):
        assert key in keys, key
    assert keys.index("Model State") < keys.index("Training Job Status") < \
        keys.index("validation:f1") < keys.index("TRAINING DATA:") < keys.index("PARAMETERS:")
    assert values["Model State"] == "READY"
    assert values["Problem Type"] == "BINARY_CLASSIFICATION"
    assert 0.4 < float(values["validation:f1"]) <= 1.0
    assert values["Target Column"] == "churn"
    assert values["Function Parameters"].split() == [c.strip() for c in
                                                     CHURN_FEATURES.split(",")]
    types = values["Function Parameter Types"].split()
    assert len(types) == 19
    assert set(types) <= {"int2", "int4", "int8", "float8", "varchar", "bool", "numeric"}
    assert values["IAM Role"] == "default"
    assert values["S3 Bucket"] == "unused"
    assert values["Max Runtime"] == "20"
    assert values["Owner"] == "tester"
    all_models = conn.execute("SHOW MODEL ALL").fetchall()
    assert ("public", "customer_churn") in all_models


def test_predictions_in_where_ctas_and_probabilities(conn: psycopg.Connection,
                                                     churn_model: str) -> None:
    conn.execute("CREATE OR REPLACE TABLE churn_scored AS SELECT tenure, "
                 f"predict_churn({CHURN_FEATURES}) AS p FROM customers WHERE split = 'test'")
    n, positives = conn.execute("SELECT count(*), count(*) FILTER (WHERE p) "
                                "FROM churn_scored").fetchone()  # type: ignore[misc]
    assert n == 1409
    assert 0 < positives < n
    where_count = conn.execute(
        f"SELECT count(*) FROM customers WHERE split = 'test' AND predict_churn({CHURN_FEATURES})"
    ).fetchone()
    assert where_count == (positives,)
    cur = conn.execute(f"SELECT predict_churn_probabilities({CHURN_FEATURES}), "
                       f"predict_churn({CHURN_FEATURES}) FROM customers WHERE split = 'test' "
                       "LIMIT 50")
    for probs, label in cur.fetchall():
        obj = json.loads(probs) if isinstance(probs, str) else probs
        p = obj["probabilities"]
        assert obj["labels"][0] == label
        assert p == sorted(p, reverse=True)
        assert abs(sum(p) - 1.0) < 1e-6
        assert set(obj["labels"]) == {True, False}


def test_prediction_with_parameters_and_nulls(conn: psycopg.Connection,
                                              churn_model: str) -> None:
    placeholders = ", ".join(["%s"] * 19)
    row = conn.execute(
        f"SELECT {CHURN_FEATURES} FROM customers WHERE split = 'test' LIMIT 1").fetchone()
    assert row is not None
    direct = conn.execute(f"SELECT predict_churn({placeholders})", list(row)).fetchone()
    inline = conn.execute(
        f"SELECT predict_churn({CHURN_FEATURES}) FROM customers WHERE split = 'test' LIMIT 1"
    ).fetchone()
    assert direct == inline
    nulls = conn.execute(f"SELECT predict_churn({', '.join(['NULL'] * 19)})").fetchone()
    assert nulls is not None and isinstance(nulls[0], bool)


def test_prediction_from_another_session(server: RunningServer, churn_model: str) -> None:
    results: list[object] = []

    def score() -> None:
        with server.connect() as c:
            results.append(c.execute(
                f"SELECT sum(CASE WHEN predict_churn({CHURN_FEATURES}) THEN 1 ELSE 0 END) "
                "FROM customers").fetchone())

    threads = [threading.Thread(target=score) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 4 and len(set(results)) == 1


def test_wrong_arguments_name_the_signature(conn: psycopg.Connection,
                                            churn_model: str) -> None:
    with pytest.raises(psycopg.errors.UndefinedFunction) as info:
        conn.execute("SELECT predict_churn(1, 2)")
    assert "predict_churn(" in str(info.value)
    assert conn.execute("SELECT 1").fetchone() == (1,)


def test_create_model_errors(conn: psycopg.Connection, churn_model: str) -> None:
    cases = [
        ("CREATE MODEL m1 FROM customers TARGET churn FUNCTION f1 SETTINGS (MAX_RUNTIME",
         "42601"),
        ("CREATE MODEL m1 FROM (SELECT * FROM no_such_table) TARGET churn FUNCTION f1",
         "42P01"),
        ("CREATE MODEL m1 FROM customers TARGET no_such_column FUNCTION f1", "42703"),
        ("CREATE MODEL customer_churn FROM customers TARGET churn FUNCTION f2", "42710"),
        ("CREATE MODEL m1 FROM customers TARGET churn FUNCTION predict_churn", "42723"),
        ("CREATE MODEL m1 FROM (SELECT * FROM customers LIMIT 499) TARGET churn FUNCTION f1",
         "22000"),
        ("CREATE MODEL m1 FROM customers TARGET churn FUNCTION f1 SETTINGS (MAX_RUNTIME 0)",
         "22023"),
        ("CREATE MODEL m1 FROM customers TARGET churn FUNCTION f1 SETTINGS (NO_SUCH 1)",
         "22023"),
    ]
    for sql, sqlstate in cases:
        with pytest.raises(psycopg.Error) as info:
            conn.execute(sql)
        assert info.value.sqlstate == sqlstate, (sql, info.value)
        assert conn.execute("SELECT 1").fetchone() == (1,)
    bad = "CREATE MODEL m1 FROM customers TARGETT churn FUNCTION f1"
    with pytest.raises(psycopg.errors.SyntaxError) as info:
        conn.execute(bad)
    assert info.value.diag.statement_position == str(bad.index("TARGETT") + 1)
    names = [r[1] for r in conn.execute("SHOW MODEL ALL").fetchall()]
    assert "m1" not in names


def test_drop_missing_model(conn: psycopg.Connection) -> None:
    with pytest.raises(psycopg.errors.UndefinedObject):
        conn.execute("DROP MODEL no_such_model")
    conn.execute("DROP MODEL IF EXISTS no_such_model")
    with pytest.raises(psycopg.errors.UndefinedObject):
        conn.execute("SHOW MODEL no_such_model")


def test_training_lifecycle_progress_not_ready_and_drop(conn: psycopg.Connection,
                                                        server: RunningServer) -> None:
    conn.execute("CREATE MODEL diamond_price FROM (SELECT carat, cut, color, clarity, depth, "
                 "\"table\", x, y, z, price FROM diamonds WHERE split = 'train') TARGET price "
                 "FUNCTION predict_price SETTINGS (MAX_RUNTIME 30)")
    values = dict(conn.execute("SHOW MODEL diamond_price").fetchall())
    assert values["Model State"] == "TRAINING"
    assert values["Problem Type"] == "REGRESSION"
    with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState) as info:
        conn.execute("SELECT predict_price(carat, cut, color, clarity, depth, \"table\", x, y, "
                     "z) FROM diamonds LIMIT 1")
    assert "TRAINING" in str(info.value)
    deadline = time.monotonic() + 60
    status = ""
    while time.monotonic() < deadline:
        status = dict(conn.execute("SHOW MODEL diamond_price").fetchall())["Training Job Status"]
        if "trials" in status and not status.startswith("0 trials"):
            break
        time.sleep(0.5)
    assert "s budget" in status and "trials" in status, status
    folders = list((server.data_dir / "models" / "public").glob("diamond_price*"))
    assert folders
    conn.execute("DROP MODEL diamond_price")
    assert not any(f.exists() for f in folders)
    with pytest.raises(psycopg.errors.UndefinedFunction):
        conn.execute("SELECT predict_price(1.0, 'Ideal', 'E', 'SI2', 61.5, 55.0, 3.9, 3.9, 2.4)")
    assert "diamond_price" not in [r[1] for r in conn.execute("SHOW MODEL ALL").fetchall()]
