"""What ``LOCK TABLE`` does in QuackML: it checks, and locks nothing.

DuckDB has no table locks: a transaction reads one snapshot, and a consistent
read is what pg_dump's ``LOCK TABLE ... IN ACCESS SHARE MODE`` is for. The
statement (parsed by ``server.sql.lock``) is checked as PostgreSQL checks it:
only in a transaction block (25P01, the session's), each table must exist
(42P01) and the user needs SELECT on it for ACCESS SHARE mode, DELETE for the
stronger modes (42501). ``probes`` are the statements that check it: the
session runs them through the firewall and DuckDB, and nothing else happens.
"""

from __future__ import annotations

from server.sql.lock import Lock


def probes(lock: Lock) -> tuple[str, ...]:
    """Statements that need the privilege the lock needs and touch no row."""
    if lock.mode == "ACCESS SHARE":
        return tuple(f"SELECT 1 FROM {t} LIMIT 0" for t in lock.tables)
    return tuple(f"DELETE FROM {t} WHERE false" for t in lock.tables)
