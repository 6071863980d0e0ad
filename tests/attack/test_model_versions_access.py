"""Model versions as an attacker tries them: mallory, a non-superuser with CREATE MODEL
(and, later, EXECUTE) on the superuser's model, may not replace, retrain, roll back or
drop versions of it by any spelling; on her own model she may."""

from __future__ import annotations

import time

import psycopg
import pytest

from tests.attack.target import FUNCTION, MALLORY, MODEL, Target, sqlstate
from tests.attack.target import target as target  # the fixture

KMEANS = ("CREATE {verb} MODEL {name} FROM pts FUNCTION {function} IAM_ROLE default AUTO OFF "
          "MODEL_TYPE KMEANS HYPERPARAMETERS DEFAULT EXCEPT (K '{k}') SETTINGS (S3_BUCKET 'b')")

ATTEMPTS = [
    KMEANS.format(verb="OR REPLACE", name=MODEL, function=FUNCTION, k=4),
    f"ALTER MODEL {MODEL} ROLLBACK",
    f"ALTER MODEL {MODEL} ROLLBACK TO VERSION 1",
    f"ALTER MODEL {MODEL} RETRAIN",
    f"ALTER MODEL public.{MODEL} RETRAIN ONLY IF BETTER",
    f"DROP MODEL {MODEL} VERSION 1",
    f'alter /* x */ model "{MODEL}" rollback',
    f"Alter\tModel\n{MODEL.upper()} Retrain",
    f"drop model public.{MODEL} version 1",
]


@pytest.mark.parametrize("attempt", ATTEMPTS)
def test_no_version_statement_on_anothers_model(target: Target, attempt: str) -> None:
    with target.mallory() as conn:
        assert sqlstate(conn, attempt) == "42501", attempt
    with target.admin() as admin:
        rows = admin.execute("SELECT version, active FROM svv_ml_model_versions "
                             f"WHERE model_name = '{MODEL}'").fetchall()
    assert rows == [(1, True)]


def test_execute_grant_does_not_allow_version_changes(target: Target) -> None:
    with target.admin() as admin:
        admin.execute(f"GRANT EXECUTE ON MODEL {MODEL} TO {MALLORY}")
    try:
        with target.mallory() as conn:
            conn.execute(f"SELECT {FUNCTION}(1.0, 2.0)")   # the grant works
            for attempt in ATTEMPTS:
                assert sqlstate(conn, attempt) == "42501", attempt
    finally:
        with target.admin() as admin:
            admin.execute(f"REVOKE EXECUTE ON MODEL {MODEL} FROM {MALLORY}")


def _wait_ready(conn: psycopg.Connection, name: str, version: int) -> None:
    deadline = time.monotonic() + 120
    while True:
        row = conn.execute("SELECT state, decision FROM svv_ml_model_versions WHERE "
                           "model_name = %s AND version = %s", (name, version)).fetchone()
        if row and row[0] != "TRAINING" and not str(row[1]).startswith("pending"):
            assert row[0] == "READY", row
            return
        assert time.monotonic() < deadline
        time.sleep(0.2)


def test_own_model_versions(target: Target) -> None:
    with target.mallory() as conn:
        conn.execute("DROP MODEL IF EXISTS mal_km")
        conn.execute(KMEANS.format(verb="", name="mal_km", function="mal_km_f", k=2))
        _wait_ready(conn, "mal_km", 1)
        conn.execute(KMEANS.format(verb="OR REPLACE", name="mal_km", function="mal_km_f", k=5))
        _wait_ready(conn, "mal_km", 2)
        clusters = {r[0] for r in conn.execute("SELECT mal_km_f(a, b) FROM pts").fetchall()}
        assert len(clusters) == 5   # version 2 serves
        conn.execute("ALTER MODEL mal_km ROLLBACK")
        clusters = {r[0] for r in conn.execute("SELECT mal_km_f(a, b) FROM pts").fetchall()}
        assert len(clusters) == 2   # version 1 again
        created_by = conn.execute("SELECT DISTINCT created_by FROM svv_ml_model_versions "
                                  "WHERE model_name = 'mal_km'").fetchall()
        assert created_by == [(MALLORY,)]
        conn.execute("DROP MODEL mal_km VERSION 2")
        conn.execute("DROP MODEL mal_km")
