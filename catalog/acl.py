"""Owners of SQL objects and privileges on tables and schemas, in the security catalog.

PostgreSQL's model, kept where no SQL can write it (``catalog.db``):

- ``owners``: who owns a table, view, macro, sequence, type or schema, by its
  DuckDB path (database, schema, name; a schema has an empty name). The
  creator owns what a non-superuser creates; an object with no row (created by
  a superuser, or before ownership existed) belongs to the bootstrap superuser;
- ``table_grants``: SELECT, INSERT, UPDATE, DELETE, TRUNCATE on a table or view
  to a user, a role, or PUBLIC;
- ``schema_grants``: USAGE and CREATE on a schema. A new catalog grants both on
  ``main`` (PostgreSQL's ``public``) to PUBLIC, as PostgreSQL did before 15.

Names are kept as DuckDB reports them in plans; lookups are case-insensitive,
as DuckDB's name resolution is.
"""

from __future__ import annotations

from dataclasses import dataclass

from catalog.db import CatalogDB

_DDL = """
CREATE TABLE IF NOT EXISTS owners (
    database_name TEXT NOT NULL COLLATE NOCASE,
    schema_name   TEXT NOT NULL COLLATE NOCASE,
    name          TEXT NOT NULL COLLATE NOCASE,   -- '' for a schema
    kind          TEXT NOT NULL,                  -- table | view | macro | sequence | ...
    owner         TEXT NOT NULL,
    PRIMARY KEY (database_name, schema_name, name)
);
CREATE TABLE IF NOT EXISTS table_grants (
    database_name TEXT NOT NULL COLLATE NOCASE,
    schema_name   TEXT NOT NULL COLLATE NOCASE,
    name          TEXT NOT NULL COLLATE NOCASE,
    privilege     TEXT NOT NULL,                  -- SELECT | INSERT | UPDATE | DELETE | TRUNCATE
    grantee       TEXT NOT NULL,
    grantee_type  TEXT NOT NULL,                  -- user | role | public
    PRIMARY KEY (database_name, schema_name, name, privilege, grantee, grantee_type)
);
CREATE TABLE IF NOT EXISTS schema_grants (
    database_name TEXT NOT NULL COLLATE NOCASE,
    schema_name   TEXT NOT NULL COLLATE NOCASE,
    privilege     TEXT NOT NULL,                  -- USAGE | CREATE
    grantee       TEXT NOT NULL,
    grantee_type  TEXT NOT NULL,
    PRIMARY KEY (database_name, schema_name, privilege, grantee, grantee_type)
);
"""

Path = tuple[str, str, str]   # database, schema, name


@dataclass(frozen=True)
class TableGrant:
    path: Path
    privilege: str
    grantee: str
    grantee_type: str


class Acl:
    """Owners and table/schema privileges; identities are a user and the roles they hold."""

    def __init__(self, db: CatalogDB, database: str, bootstrap: str):
        self._db = db
        self.bootstrap = bootstrap
        db.script(_DDL)
        if not db.query("SELECT 1 FROM schema_grants LIMIT 1") and \
                not db.query("SELECT 1 FROM owners LIMIT 1"):
            for privilege in ("USAGE", "CREATE"):
                db.execute("INSERT OR IGNORE INTO schema_grants VALUES (?, 'main', ?, "
                           "'public', 'public')", (database, privilege))

    # -- owners ----------------------------------------------------------------------------
    def owner(self, path: Path) -> str:
        rows = self._db.query("SELECT owner FROM owners WHERE database_name = ? "
                              "AND schema_name = ? AND name = ?", path)
        return str(rows[0][0]) if rows else self.bootstrap

    def set_owner(self, path: Path, kind: str, owner: str, replace: bool = True) -> None:
        verb = "INSERT OR REPLACE" if replace else "INSERT OR IGNORE"
        self._db.execute(f"{verb} INTO owners VALUES (?, ?, ?, ?, ?)", (*path, kind, owner))

    def forget(self, path: Path) -> None:
        """An object was dropped: its owner and grants go with it (a schema: all inside)."""
        with self._db.transaction():
            if path[2]:
                for table in ("owners", "table_grants"):
                    self._db.execute(f"DELETE FROM {table} WHERE database_name = ? "
                                     "AND schema_name = ? AND name = ?", path)
            else:
                for table in ("owners", "table_grants", "schema_grants"):
                    self._db.execute(f"DELETE FROM {table} WHERE database_name = ? "
                                     "AND schema_name = ?", path[:2])

    def rename(self, path: Path, new_name: str) -> None:
        with self._db.transaction():
            for table in ("owners", "table_grants"):
                self._db.execute(f"UPDATE {table} SET name = ? WHERE database_name = ? "
                                 "AND schema_name = ? AND name = ?", (new_name, *path))

    def forget_user(self, name: str) -> None:
        """DROP USER: their grants go; what they own passes to the bootstrap superuser."""
        with self._db.transaction():
            for table in ("table_grants", "schema_grants"):
                self._db.execute(f"DELETE FROM {table} WHERE grantee = ?", (name,))
            self._db.execute("UPDATE owners SET owner = ? WHERE owner = ?",
                             (self.bootstrap, name))

    # -- grants ----------------------------------------------------------------------------
    def grant_table(self, path: Path, privilege: str, grantee: str, grantee_type: str,
                    revoke: bool) -> None:
        if revoke:
            self._db.execute("DELETE FROM table_grants WHERE database_name = ? AND "
                             "schema_name = ? AND name = ? AND privilege = ? AND grantee = ? "
                             "AND grantee_type = ?", (*path, privilege, grantee, grantee_type))
        else:
            self._db.execute("INSERT OR IGNORE INTO table_grants VALUES (?, ?, ?, ?, ?, ?)",
                             (*path, privilege, grantee, grantee_type))

    def grant_schema(self, database: str, schema: str, privilege: str, grantee: str,
                     grantee_type: str, revoke: bool) -> None:
        if revoke:
            self._db.execute("DELETE FROM schema_grants WHERE database_name = ? AND "
                             "schema_name = ? AND privilege = ? AND grantee = ? "
                             "AND grantee_type = ?",
                             (database, schema, privilege, grantee, grantee_type))
        else:
            self._db.execute("INSERT OR IGNORE INTO schema_grants VALUES (?, ?, ?, ?, ?)",
                             (database, schema, privilege, grantee, grantee_type))

    def has_table(self, identities: list[str], path: Path, privilege: str) -> bool:
        if self.owner(path) in identities:
            return True
        marks = ", ".join("?" for _ in identities)
        rows = self._db.query(
            "SELECT 1 FROM table_grants WHERE database_name = ? AND schema_name = ? "
            "AND name = ? AND privilege = ? "
            f"AND (grantee_type = 'public' OR grantee IN ({marks})) LIMIT 1",
            (*path, privilege, *identities))
        return bool(rows)

    def has_schema(self, identities: list[str], database: str, schema: str,
                   privilege: str) -> bool:
        if self.owner((database, schema, "")) in identities:
            return True
        marks = ", ".join("?" for _ in identities)
        rows = self._db.query(
            "SELECT 1 FROM schema_grants WHERE database_name = ? AND schema_name = ? "
            f"AND privilege = ? AND (grantee_type = 'public' OR grantee IN ({marks})) LIMIT 1",
            (database, schema, privilege, *identities))
        return bool(rows)

    def table_grants(self) -> list[TableGrant]:
        return [TableGrant((str(d), str(s), str(n)), str(p), str(g), str(t))
                for d, s, n, p, g, t in self._db.query(
                    "SELECT database_name, schema_name, name, privilege, grantee, grantee_type "
                    "FROM table_grants ORDER BY 1, 2, 3, 5, 4")]

    def owners(self) -> list[tuple[Path, str, str]]:
        return [((str(d), str(s), str(n)), str(k), str(o)) for d, s, n, k, o in
                self._db.query("SELECT database_name, schema_name, name, kind, owner "
                               "FROM owners ORDER BY 1, 2, 3")]
