"""EXPLAIN CREATE MODEL over the wire: the plan (problem type and why, column roles,
preprocessing, rows and MAX_CELLS sampling, learners, budget, queue), nothing recorded
or written, and the same errors as CREATE MODEL, privileges included."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from catalog.files import MODELS_FOLDER
from server.listener import Server
from tests.conftest import RunningServer
from tests.test_security import ADMIN, ADMIN_PW, connect_as, start

TRAIN = "SELECT tenure, contract, monthly_charges, churn FROM customers WHERE split = 'train'"
EXPLAIN = ("EXPLAIN CREATE MODEL dry_m FROM ({query}) TARGET churn FUNCTION dry_f "
           "SETTINGS (MAX_RUNTIME 10, MAX_CELLS 2000)")


def plan(conn: psycopg.Connection, sql: str) -> dict[str, str]:
    cur = conn.execute(sql)
    assert cur.description is not None
    assert [d.name for d in cur.description] == ["Key", "Value"]
    return dict(cur.fetchall())


def nothing_recorded(conn: psycopg.Connection, data_dir: Path, name: str) -> None:
    assert name not in {r[1] for r in conn.execute("SHOW MODEL ALL")}
    assert conn.execute("SELECT count(*) FROM svv_ml_model_versions WHERE model_name = %s",
                        (name,)).fetchone() == (0,)
    models = data_dir / MODELS_FOLDER
    assert not [p for p in models.rglob("*") if name in str(p.relative_to(models))]
    functions = conn.execute("SELECT count(*) FROM duckdb_functions() WHERE "
                             "function_name LIKE 'dry%'").fetchone()
    assert functions == (0,)


def test_auto_on_plan(server: RunningServer) -> None:
    with server.connect() as conn:
        rows = plan(conn, EXPLAIN.format(query=TRAIN))
        assert rows["Action"] == "CREATE MODEL public.dry_m (version 1)"
        assert rows["Functions"] == "dry_f, dry_f_probabilities"
        assert rows["Problem Type"] == "BINARY_CLASSIFICATION"
        assert rows["Problem Type Reason"] == \
            "detected: a boolean target with 2 distinct values"
        assert rows["Objective"] == "F1 (the default)"
        assert rows["Column churn"] == "target, BOOLEAN"
        assert rows["Column contract"] == "feature, VARCHAR (categorical)"
        assert rows["Column tenure"].startswith("feature, ")
        assert rows["Preprocessing categorical"].startswith("contract: automatic")
        train_rows = conn.execute(f"SELECT count(*) FROM ({TRAIN})").fetchone()
        assert train_rows is not None
        assert rows["Training Rows"] == str(train_rows[0])
        # 2000 cells over 4 columns: 500 rows, fewer than the query gives
        assert rows["Sampling"] == \
            "sampled to 500 rows (MAX_CELLS 2000 / 4 columns = 500 rows)"
        assert rows["Learners"].startswith("LightGBM, XGBoost")
        assert rows["Budget"] == "MAX_RUNTIME 10 s"
        assert "training would start at once" in rows["Queue"]
        nothing_recorded(conn, server.data_dir, "dry_m")


def test_detection_reasons_and_other_kinds(server: RunningServer) -> None:
    with server.connect() as conn:
        rows = plan(conn, "EXPLAIN CREATE MODEL dry_r FROM (SELECT tenure, contract, "
                          "monthly_charges FROM customers) TARGET tenure FUNCTION dry_rf "
                          "PREPROCESSORS '[{\"ColumnSet\": [\"monthly_charges\"], "
                          "\"Transformers\": [\"StandardScaler\"]}]'")
        assert rows["Problem Type"] == "REGRESSION"
        assert rows["Problem Type Reason"].startswith("detected: an integer target with ")
        assert rows["Functions"] == "dry_rf"
        assert rows["Preprocessing Set 1"] == "monthly_charges: StandardScaler"
        assert rows["Sampling"].startswith("not sampled")
        rows = plan(conn, "EXPLAIN CREATE MODEL dry_x FROM (SELECT tenure, monthly_charges, "
                          "churn::INTEGER AS churn FROM customers) TARGET churn "
                          "FUNCTION dry_xf AUTO OFF MODEL_TYPE XGBOOST "
                          "OBJECTIVE 'binary:logistic' HYPERPARAMETERS DEFAULT")
        assert rows["Problem Type"] == "BINARY_CLASSIFICATION"
        assert rows["Problem Type Reason"].startswith("from OBJECTIVE 'binary:logistic'")
        assert rows["Learners"].startswith("XGBoost, with the HYPERPARAMETERS")
        assert "num_round = " in rows["Hyperparameters"]
        rows = plan(conn, "EXPLAIN CREATE MODEL dry_k FROM (SELECT tenure, monthly_charges "
                          "FROM customers) FUNCTION dry_kf AUTO OFF MODEL_TYPE KMEANS "
                          "HYPERPARAMETERS DEFAULT EXCEPT (K '3')")
        assert rows["Problem Type"] == "clustering"
        assert rows["Learners"] == "k-means (scikit-learn)"
        assert "k = 3" in rows["Hyperparameters"]
        rows = plan(conn, "EXPLAIN CREATE MODEL dry_p FROM (SELECT tenure, churn FROM "
                          "customers) TARGET churn FUNCTION dry_pf MODEL_TYPE MLP "
                          "PROBLEM_TYPE BINARY_CLASSIFICATION OBJECTIVE 'AUC'")
        assert rows["Problem Type Reason"].startswith("PROBLEM_TYPE given")
        assert rows["Objective"] == "AUC"
        assert rows["Learners"].startswith("MLP")
        for name in ("dry_r", "dry_x", "dry_k", "dry_p"):
            nothing_recorded(conn, server.data_dir, name)


BAD = [
    # (statement tail after "CREATE MODEL", SQLSTATE)
    (f"dry_e FROM ({TRAIN}) TARGET nosuch FUNCTION dry_ef", "42703"),
    ("dry_e FROM (SELECT tenure, churn FROM customers LIMIT 20) TARGET churn "
     "FUNCTION dry_ef", "22000"),
    (f"dry_e FROM ({TRAIN}) TARGET churn FUNCTION dry_ef PREPROCESSORS '[{{'", "22023"),
    (f"dry_e FROM ({TRAIN}) TARGET churn FUNCTION dry_ef HYPERPARAMETERS DEFAULT", "0A000"),
    (f"dry_e FROM ({TRAIN}) TARGET churn FUNCTION dry_ef PROBLEM_TYPE REGRESSION", None),
    ("dry_e FROM no_such_table TARGET churn FUNCTION dry_ef", "42P01"),
    (f"dry_e FROM ({TRAIN}) TARGET churn FUNCTION abs", "42723"),
    ("dry_e FROM 'model.txt' FUNCTION dry_ef(float8) RETURNS float8", None),
]


@pytest.mark.parametrize(("tail", "sqlstate"), BAD)
def test_same_errors_as_create_model(server: RunningServer, tail: str,
                                     sqlstate: str | None) -> None:
    with server.connect() as conn:
        with pytest.raises(psycopg.Error) as explained:
            conn.execute("EXPLAIN CREATE MODEL " + tail)
        if tail.startswith("dry_e FROM 'model.txt'"):   # nothing to plan for these
            assert explained.value.sqlstate == "0A000"
            return
        with pytest.raises(psycopg.Error) as created:
            conn.execute("CREATE MODEL " + tail)
        assert explained.value.sqlstate == created.value.sqlstate
        assert sqlstate is None or created.value.sqlstate == sqlstate
        assert explained.value.diag.message_primary == created.value.diag.message_primary
        nothing_recorded(conn, server.data_dir, "dry_e")


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start(tmp_path_factory.mktemp("dry_secured"), auth="scram-sha-256", max_runtime_limit=30)
    yield srv
    srv.stop()


def error_of(conn: psycopg.Connection, sql: str) -> tuple[str | None, str | None]:
    try:
        conn.execute(sql)
    except psycopg.Error as exc:
        return exc.sqlstate, exc.diag.message_primary
    return None, None


def test_privileges_and_budget_as_create_model(secured: Server) -> None:
    with connect_as(secured, ADMIN, ADMIN_PW) as admin:
        admin.execute("CREATE USER dry_u PASSWORD 'dry-pw'")
        admin.execute("CREATE TABLE dry_t AS SELECT (i % 7)::DOUBLE AS a, "
                      "(i % 2 = 0) AS y FROM range(600) t(i)")
        admin.execute("CREATE TABLE dry_secret AS SELECT * FROM dry_t")
        admin.execute("GRANT SELECT ON dry_t TO dry_u")
        with connect_as(secured, "dry_u", "dry-pw") as user:
            statements = [
                "CREATE MODEL dry_m FROM dry_t TARGET y FUNCTION dry_f",
                "CREATE MODEL dry_m FROM dry_t TARGET y FUNCTION dry_f "
                "SETTINGS (MAX_RUNTIME 60)",
                "CREATE MODEL dry_m FROM dry_secret TARGET y FUNCTION dry_f",
            ]
            expected = ["42501", "42501", "42501"]
            for sql, sqlstate in zip(statements, expected, strict=True):
                errors = []
                for prefix in ("EXPLAIN ", ""):
                    errors.append(error_of(user, prefix + sql))
                assert errors[0] == errors[1] and errors[0][0] == sqlstate, (sql, errors)
            admin.execute("GRANT CREATE MODEL TO dry_u")
            for sql, sqlstate in zip(statements[1:], ("22023", "42501"), strict=True):
                errors = []
                for prefix in ("EXPLAIN ", ""):
                    errors.append(error_of(user, prefix + sql))
                assert errors[0] == errors[1] and errors[0][0] == sqlstate, (sql, errors)
            # the default MAX_RUNTIME is lowered to the server's limit, with a NOTICE
            notices: list[str] = []
            user.add_notice_handler(lambda d: notices.append(str(d.message_primary)))
            rows = dict(user.execute("EXPLAIN " + statements[0]).fetchall())
            assert rows["Budget"] == \
                "MAX_RUNTIME 30 s (the server's max_runtime_limit is 30 s)"
            assert any("max_runtime_limit" in n for n in notices)
            assert user.execute("SELECT count(*) FROM svv_ml_model_versions").fetchone() == \
                (0,)
