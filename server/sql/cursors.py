"""SQL cursors: DECLARE / FETCH / MOVE / CLOSE, read from tokens.

``parse`` returns what the statement asks; ``server.postgres.cursors`` runs it.
"""

from __future__ import annotations

from dataclasses import dataclass

from server.errors import FeatureNotSupported, SyntaxError_
from server.sql.text import Statement, split


@dataclass(frozen=True)
class Declare:
    name: str
    query: Statement
    hold: bool


@dataclass(frozen=True)
class Fetch:
    name: str
    count: int | None     # None: ALL
    move: bool            # MOVE: skip rows, return none


@dataclass(frozen=True)
class CloseCursor:
    name: str | None      # None: ALL


CursorStatement = Declare | Fetch | CloseCursor


def parse(stmt: Statement) -> CursorStatement | None:
    words = stmt.words(1)
    if not words or words[0] not in ("DECLARE", "FETCH", "MOVE", "CLOSE"):
        return None
    tokens = stmt.tokens
    texts = [t.text for t in tokens]
    upper = [t.upper() for t in texts]
    if upper[0] == "CLOSE":
        if len(texts) != 2:
            raise SyntaxError_("CLOSE needs a cursor name or ALL")
        return CloseCursor(None if upper[1] == "ALL" else texts[1])
    if upper[0] == "DECLARE":
        if "CURSOR" not in upper or len(texts) < 2:
            return None   # not a cursor declaration: let DuckDB report it
        options = upper[2:upper.index("CURSOR")]
        if "SCROLL" in options and "NO" not in options:
            raise FeatureNotSupported("SCROLL cursors are not supported (forward only)")
        rest = upper[upper.index("CURSOR") + 1:]
        hold = rest[:2] == ["WITH", "HOLD"]
        for_at = upper.index("FOR", upper.index("CURSOR"))
        query_start = tokens[for_at].end + 1 - stmt.offset
        inner = split(stmt.text[query_start:])
        if len(inner) != 1:
            raise SyntaxError_("DECLARE CURSOR needs one query after FOR")
        return Declare(texts[1], inner[0], hold)
    # FETCH / MOVE [direction] [count] [FROM | IN] name
    move = upper[0] == "MOVE"
    if len(texts) < 2:
        raise SyntaxError_(f"{upper[0]} needs a cursor name")
    name = texts[-1]
    body = upper[1:-1]
    if body and body[-1] in ("FROM", "IN"):
        body = body[:-1]
    count: int | None = 1
    if body and body[0] in ("FORWARD", "NEXT"):
        body = body[1:]
    if body == ["ALL"]:
        count = None
    elif len(body) == 1 and body[0].isdigit():
        count = int(body[0])
    elif body:
        raise FeatureNotSupported(f"{upper[0]} {' '.join(body)} is not supported "
                                  "(cursors are forward only)")
    return Fetch(name, count, move)
