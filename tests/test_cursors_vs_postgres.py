"""SQL cursors side by side with PostgreSQL 15: a SCROLL cursor moves both ways
(FETCH NEXT/PRIOR/FIRST/LAST/ABSOLUTE/RELATIVE/FORWARD/BACKWARD, counts and ALL,
MOVE) over the same rows with the same results and tags; a cursor declared without
SCROLL refuses to move back with PostgreSQL's 55000; psycopg's scrollable named
cursors work."""

from __future__ import annotations

import psycopg

from tests.conftest import RunningServer

MOVES = [
    "FETCH NEXT FROM c", "FETCH 2 FROM c", "FETCH PRIOR FROM c", "FETCH FIRST FROM c",
    "FETCH PRIOR FROM c", "FETCH PRIOR FROM c", "FETCH NEXT FROM c", "FETCH LAST FROM c",
    "FETCH NEXT FROM c", "FETCH NEXT FROM c", "FETCH BACKWARD 3 FROM c", "FETCH ABSOLUTE 2 c",
    "FETCH ABSOLUTE -2 IN c", "FETCH ABSOLUTE 0 c", "FETCH ABSOLUTE 99 c", "FETCH PRIOR c",
    "FETCH RELATIVE -2 c", "FETCH RELATIVE 0 c", "FETCH RELATIVE 1 c", "FETCH RELATIVE 9 c",
    "FETCH BACKWARD ALL c", "FETCH FORWARD ALL c", "FETCH -2 c", "FETCH FORWARD 0 c",
    "FETCH BACKWARD 0 c", "MOVE FIRST c", "FETCH 1 c", "MOVE FORWARD 3 c", "FETCH c",
    "MOVE BACKWARD ALL c", "MOVE ABSOLUTE 3 c", "MOVE RELATIVE 10 c", "MOVE ALL IN c",
    "FETCH FORWARD -1 c", "MOVE LAST IN c", "FETCH ALL c", "MOVE -2 c", "FETCH ALL c",
]


def outcome(conn: psycopg.Connection, sql: str) -> object:
    try:
        cur = conn.execute(sql)
    except psycopg.Error as exc:
        conn.rollback()
        return ("error", exc.sqlstate)
    return (cur.statusmessage, cur.fetchall() if cur.description else None)


def test_scroll_cursor_moves_as_postgres(server: RunningServer, pg: str) -> None:
    query = "SELECT i, 'row ' || i AS label FROM generate_series(1, 6) AS g(i) ORDER BY i"
    with psycopg.connect(pg) as p, psycopg.connect(server.dsn()) as q:
        for conn in (p, q):
            conn.execute(f"DECLARE c SCROLL CURSOR FOR {query}")
        for sql in MOVES:
            assert outcome(q, sql) == outcome(p, sql), sql


def test_forward_only_cursor_moves_forward_only(server: RunningServer, pg: str) -> None:
    """Without SCROLL, a direction that needs to go back fails with 55000; ABSOLUTE and
    RELATIVE ahead of the position move on."""
    query = "SELECT i FROM generate_series(1, 5) AS g(i) ORDER BY i"
    for sql in ("FETCH PRIOR FROM c", "FETCH BACKWARD 1 FROM c", "FETCH FIRST FROM c",
                "FETCH ABSOLUTE 1 FROM c", "MOVE -1 c", "FETCH 0 FROM c", "FETCH LAST FROM c",
                "FETCH RELATIVE 2 FROM c", "FETCH ABSOLUTE 4 FROM c", "FETCH ABSOLUTE 9 FROM c",
                "MOVE RELATIVE 3 IN c"):
        seen = []
        for dsn in (pg, server.dsn()):
            with psycopg.connect(dsn) as conn:
                conn.execute(f"DECLARE c NO SCROLL CURSOR FOR {query}")
                conn.execute("FETCH 2 FROM c")
                seen.append(outcome(conn, sql))
                if seen[-1][0] != "error":
                    seen.append(outcome(conn, "FETCH NEXT FROM c"))
        assert seen[len(seen) // 2:] == seen[:len(seen) // 2], sql


def test_psycopg_scrollable_named_cursor(server: RunningServer) -> None:
    with psycopg.connect(server.dsn()) as q, q.cursor("scrolly", scrollable=True) as cur:
        cur.execute("SELECT i FROM range(10) t(i) ORDER BY i")
        assert cur.fetchmany(3) == [(0,), (1,), (2,)]
        cur.scroll(-2)
        assert cur.fetchone() == (1,)
        cur.scroll(7, mode="absolute")
        assert cur.fetchall() == [(7,), (8,), (9,)]
        cur.scroll(0, mode="absolute")
        assert cur.fetchone() == (0,)
