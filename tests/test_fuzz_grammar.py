"""Hostile ML statements: random clause orders, unterminated strings, huge
numbers and deeply nested JSON in PREPROCESSORS. Every failure must be a
SQLSTATE error of the documented kinds, never XX000 or a dropped
connection, and the session must stay usable."""

from __future__ import annotations

import psycopg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import RunningServer

HUGE = st.sampled_from(["99999999999999999999999999999999", "-1", "1e308", "1e999", "0",
                        "NaN", "-0.0", "18446744073709551616", "3.5"])


def _deep_json(depth: int) -> str:
    return "[" * depth + "]" * depth


CLAUSES = st.sampled_from([
    "FROM (SELECT * FROM customers LIMIT 10)", "FROM customers_fz_missing", "FROM (SELECT",
    "TARGET churn", "TARGET", "FUNCTION f_fz", "FUNCTION", "FUNCTION f_fz(INT, TEXT)",
    "IAM_ROLE default", "IAM_ROLE 'arn:aws:iam::1:role/x'", "AUTO OFF", "AUTO ON",
    "MODEL_TYPE xgboost", "MODEL_TYPE kmeans", "MODEL_TYPE nonsense",
    "PROBLEM_TYPE binary_classification", "PROBLEM_TYPE regression", "OBJECTIVE 'f1'",
    "OBJECTIVE 'nope", "HYPERPARAMETERS DEFAULT", "HYPERPARAMETERS DEFAULT EXCEPT (K '3')",
    "HYPERPARAMETERS DEFAULT EXCEPT (NUM_ROUND '10'", "SETTINGS (MAX_RUNTIME 5)",
    "SETTINGS (", "RETURNS VARCHAR", "'unterminated", "\"unterminated", "$$never closed",
    "(", ")", ";", ",", "--", "/*", "PREPROCESSORS 'none'",
])


@st.composite
def statement(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["create", "create", "create", "show", "drop", "explain"]))
    if kind == "show":
        return "SHOW MODEL " + draw(st.sampled_from(["m_fz", "", "'x", "a.b.c.d", "ALL"]))
    if kind == "drop":
        return "DROP MODEL " + draw(st.sampled_from(["m_fz", "", "IF EXISTS m_fz", "'x"]))
    if kind == "explain":
        return "SELECT EXPLAIN_MODEL(" + draw(st.sampled_from(["'m_fz'", "", "'x", "1"])) + ")"
    parts = draw(st.lists(CLAUSES, max_size=8))
    if draw(st.booleans()):
        parts.append(f"SETTINGS (MAX_RUNTIME {draw(HUGE)}, MAX_CELLS {draw(HUGE)})")
    if draw(st.booleans()):
        depth = draw(st.sampled_from([1, 50, 1000, 100_000]))
        parts.append(f"PREPROCESSORS '{_deep_json(depth)}'")
    if draw(st.booleans()):
        parts = draw(st.permutations(parts))
    return "CREATE MODEL m_fz " + " ".join(parts)


ALLOWED_CLASSES = {"42", "22", "0A", "55", "53", "54", "57"}


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(sql=statement())
def test_ml_statements_fail_with_sqlstates(server: RunningServer, sql: str) -> None:
    with server.connect() as c:
        try:
            c.execute(sql)
        except psycopg.Error as exc:
            code = exc.sqlstate
            assert code is not None and code[:2] in ALLOWED_CLASSES, (sql[:300], code, exc)
        finally:
            c.execute("DROP MODEL IF EXISTS m_fz")   # in case a statement was valid
        assert c.execute("SELECT 1").fetchone() == (1,)
