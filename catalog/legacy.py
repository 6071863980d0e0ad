"""Moving a catalog kept by earlier versions inside the DuckDB database into ``catalog.db``.

Versions before the security catalog kept ``models``, ``meta``, ``users``,
``role_members`` and ``privileges`` in a schema ``quackml`` of the user's
DuckDB database, where SQL could reach them. At the first start of this
version the rows are copied into the SQLite catalog in one transaction, then
the old schema is dropped. A crash in between leaves both copies; the next
start copies again only if the SQLite catalog has no models and no users yet,
so nothing is lost or doubled.
"""

from __future__ import annotations

import logging

import duckdb

from catalog.db import CatalogDB

log = logging.getLogger("quackml.catalog")

SCHEMA = "quackml"
# legacy table -> its table in the security catalog (a legacy model is its one version)
_TABLES = {"models": "model_versions", "meta": "meta", "users": "users",
           "role_members": "role_members", "privileges": "privileges"}


def migrate(con: duckdb.DuckDBPyConnection, db: CatalogDB) -> bool:
    """Copy a legacy in-database catalog into ``db`` and drop it; whether one was found."""
    cursor = con.cursor()
    try:
        database = str(cursor.execute("SELECT current_database()").fetchall()[0][0])
        present = {str(r[0]) for r in cursor.execute(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = ? AND schema_name = ?",
            [database, SCHEMA]).fetchall()}
        if not present:
            return False
        qualified = '"' + database.replace('"', '""') + '".' + SCHEMA
        empty = all(int(str(db.query(f"SELECT count(*) FROM {t}")[0][0])) == 0
                    for t in ("model_versions", "users"))
        if empty:
            with db.transaction():
                for table, into in _TABLES.items():
                    if table not in present:
                        continue
                    target = {str(r[1]) for r in db.query(f"PRAGMA table_info({into})")}
                    result = cursor.execute(f"SELECT * FROM {qualified}.{table}")
                    names = [d[0] for d in result.description or ()]
                    keep = [i for i, n in enumerate(names) if n in target]
                    columns = ", ".join(names[i] for i in keep)
                    marks = ", ".join("?" for _ in keep)
                    for row in result.fetchall():
                        values = [_plain(row[i]) for i in keep]
                        db.execute(f"INSERT OR REPLACE INTO {into} ({columns}) "
                                   f"VALUES ({marks})", values)
            log.info("moved the catalog out of the DuckDB database into %s", db.path)
        for view in ("svv_ml_model_privileges", "svv_ml_model_info", "stv_ml_model_info"):
            cursor.execute(f"DROP VIEW IF EXISTS {view}")
        cursor.execute(f"DROP SCHEMA {qualified} CASCADE")
        cursor.execute("CHECKPOINT")
        return True
    finally:
        cursor.close()


def _plain(value: object) -> object:
    """A DuckDB value as SQLite stores it (datetimes as ISO text, booleans as 0/1)."""
    isoformat = getattr(value, "isoformat", None)
    if callable(isoformat):
        return isoformat()
    if isinstance(value, bool):
        return int(value)
    return value
