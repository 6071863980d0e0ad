"""SQL cursors: DECLARE / FETCH / MOVE / CLOSE, read from tokens.

``parse`` returns what the statement asks (a ``Fetch`` carries its direction
and count as PostgreSQL reads them); ``server.postgres.cursors`` runs it.
"""

from __future__ import annotations

from dataclasses import dataclass

from server.errors import SyntaxError_
from server.sql.text import Statement, split


@dataclass(frozen=True)
class Declare:
    name: str
    query: Statement
    hold: bool
    scroll: bool = False


@dataclass(frozen=True)
class Fetch:
    name: str
    count: int | None     # rows (negative: backward); None: ALL forward, see ``direction``
    move: bool            # MOVE: skip rows, return none
    # forward (count rows; None: ALL), backward (count rows; None: ALL), absolute or
    # relative (count is the position)
    direction: str = "forward"


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
        scroll = "SCROLL" in options and "NO" not in options
        rest = upper[upper.index("CURSOR") + 1:]
        hold = rest[:2] == ["WITH", "HOLD"]
        for_at = upper.index("FOR", upper.index("CURSOR"))
        query_start = tokens[for_at].end + 1 - stmt.offset
        inner = split(stmt.text[query_start:])
        if len(inner) != 1:
            raise SyntaxError_("DECLARE CURSOR needs one query after FOR")
        return Declare(texts[1], inner[0], hold, scroll)
    # FETCH / MOVE [direction] [count] [FROM | IN] name
    move = upper[0] == "MOVE"
    if len(texts) < 2:
        raise SyntaxError_(f"{upper[0]} needs a cursor name")
    name = texts[-1]
    body = upper[1:-1]
    if body and body[-1] in ("FROM", "IN"):
        body = body[:-1]
    direction, count = _direction(body, upper[0])
    return Fetch(name, count, move, direction)


def _direction(body: list[str], verb: str) -> tuple[str, int | None]:
    """(direction, count) of FETCH's words between the verb and the cursor name."""
    words = list(body)
    if len(words) >= 2 and words[-2] in ("-", "+"):   # a signed count: two tokens
        words[-2:] = [words[-2].replace("+", "") + words[-1]]
    head = words[0] if words else ""
    number = words[1] if len(words) == 2 else None

    def integer(word: str | None) -> int:
        try:
            return int(word or "")
        except ValueError:
            raise SyntaxError_(f"{verb} {' '.join(body)}: a count is needed") from None

    match words:
        case [] | ["NEXT"] | ["FORWARD"]:
            return "forward", 1
        case ["PRIOR"] | ["BACKWARD"]:
            return "backward", 1
        case ["FIRST"]:
            return "absolute", 1
        case ["LAST"]:
            return "absolute", -1
        case ["ALL"] | ["FORWARD", "ALL"]:
            return "forward", None
        case ["BACKWARD", "ALL"]:
            return "backward", None
        case ["ABSOLUTE" | "RELATIVE", _]:
            return head.lower(), integer(number)
        case ["FORWARD" | "BACKWARD", _]:
            n = integer(number)
            return ("forward", n) if (head == "FORWARD") == (n >= 0) else ("backward", abs(n))
        case [_]:
            n = integer(head)
            return ("forward", n) if n >= 0 else ("backward", -n)
    raise SyntaxError_(f"{verb} {' '.join(body)} is not a FETCH direction")
