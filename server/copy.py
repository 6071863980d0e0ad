"""COPY ... FROM STDIN / TO STDOUT, read from tokens and run by DuckDB.

``parse`` recognises a COPY whose source or destination is the client
(STDIN / STDOUT) and returns a ``CopySpec``: the target exactly as written
(``table``, ``table (cols)`` or ``(query)``), the direction and the options
in both the parenthesised and the legacy (``CSV HEADER``) spellings.

The data travels through a temporary file on the server, so neither
direction holds the whole data set in memory: rows from the client are
appended to it as CopyData arrives and DuckDB's CSV reader loads it on
CopyDone; for TO STDOUT DuckDB's CSV writer fills it and the connection
sends it in chunks. PostgreSQL's text format is DuckDB's CSV with a tab
delimiter, ``\\N`` for NULL and no quoting (backslash escapes inside values
are not decoded; see the README).

The binary format is decoded and encoded here: incoming tuples are decoded
with the Bind parameter decoders (``server.pgtypes``) into column batches;
outgoing tuples are the binary DataRow bodies of ``server.protocol.codec``
(a binary COPY tuple and a DataRow have the same layout), re-tagged.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import BinaryIO

from sqlglot.tokens import Token, TokenType

from server.errors import DataException, FeatureNotSupported, SyntaxError_
from server.pgtypes import decode_param
from server.sqltext import Statement


class CopyFormat(enum.Enum):
    TEXT = "text"
    CSV = "csv"
    BINARY = "binary"


@dataclass(frozen=True)
class CopySpec:
    target: str            # as written: table, table (cols) or (query)
    from_client: bool      # FROM STDIN (True) or TO STDOUT (False)
    format: CopyFormat
    delimiter: str
    null: str
    header: bool
    quote: str
    escape: str
    columns: tuple[str, ...] = field(default_factory=tuple)  # listed columns, if any

    def duckdb_options(self) -> str:
        quote = self.quote if self.format is CopyFormat.CSV else ""
        escape = self.escape if self.format is CopyFormat.CSV else ""
        return (f"(FORMAT csv, DELIMITER {_literal(self.delimiter)}, NULL {_literal(self.null)}, "
                f"QUOTE {_literal(quote)}, ESCAPE {_literal(escape)}, "
                f"HEADER {'true' if self.header else 'false'})")

    def load_sql(self, path: str) -> str:
        """DuckDB statement that loads the client's rows from ``path``."""
        return f"COPY {self.target} FROM {_literal(path)} {self.duckdb_options()}"

    def dump_sql(self, path: str) -> str:
        """DuckDB statement that writes the rows for the client to ``path``."""
        return f"COPY {self.target} TO {_literal(path)} {self.duckdb_options()}"

    def select_sql(self) -> str:
        """A query with the target's rows."""
        if self.target.startswith("("):
            return f"SELECT * FROM {self.target} AS q"
        if self.columns:
            table = self.target[:self.target.index("(")]
            return f"SELECT {', '.join(self.columns)} FROM {table}"
        return f"SELECT * FROM {self.target}"

    def probe_sql(self) -> str:
        """A query with the target's columns and no rows (for the column count)."""
        if self.target.startswith("("):
            return f"SELECT * FROM {self.target} AS q LIMIT 0"
        if self.columns:
            table = self.target[:self.target.index("(")]
            return f"SELECT {', '.join(self.columns)} FROM {table} LIMIT 0"
        return f"SELECT * FROM {self.target} LIMIT 0"


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def parse(stmt: Statement) -> CopySpec | None:
    """The COPY's spec when it reads from STDIN or writes to STDOUT, else None."""
    tokens = stmt.tokens
    if not tokens or tokens[0].token_type is not TokenType.COPY:
        return None
    depth = 0
    for i, tok in enumerate(tokens):
        if tok.token_type is TokenType.L_PAREN:
            depth += 1
        elif tok.token_type is TokenType.R_PAREN:
            depth -= 1
        elif depth == 0 and i > 1 and tok.text.upper() in ("STDIN", "STDOUT") and \
                tokens[i - 1].text.upper() in ("FROM", "TO"):
            from_client = tok.text.upper() == "STDIN"
            if from_client != (tokens[i - 1].text.upper() == "FROM"):
                raise SyntaxError_(f"COPY {tokens[i - 1].text} {tok.text} is not valid",
                                   position=tok.start + 1)
            target_tokens = tokens[1:i - 1]
            target = stmt.text[tokens[1].start - stmt.offset:tokens[i - 1].start - stmt.offset]
            return _spec(target.strip(), from_client, target_tokens, tokens[i + 1:])
    return None


def _columns(target_tokens: tuple[Token, ...]) -> tuple[str, ...]:
    if not target_tokens or target_tokens[0].token_type is TokenType.L_PAREN:
        return ()
    inside = False
    names = []
    for tok in target_tokens:
        if tok.token_type is TokenType.L_PAREN:
            inside = True
        elif inside and tok.token_type not in (TokenType.COMMA, TokenType.R_PAREN):
            names.append('"' + tok.text.replace('"', '""') + '"')
    return tuple(names)


def _spec(target: str, from_client: bool, target_tokens: tuple[Token, ...],
          rest: tuple[Token, ...]) -> CopySpec:
    options: dict[str, str] = {}
    toks = list(rest)
    if toks and toks[0].text.upper() == "WITH":
        toks = toks[1:]
    if toks and toks[0].token_type is TokenType.L_PAREN:
        # (FORMAT csv, HEADER true, DELIMITER ',', ...)
        current: list[Token] = []
        for tok in toks[1:]:
            if tok.token_type in (TokenType.COMMA, TokenType.R_PAREN):
                if current:
                    key = current[0].text.lower()
                    options[key] = current[1].text if len(current) > 1 else "true"
                current = []
            else:
                current.append(tok)
    else:
        # legacy: [BINARY] [DELIMITER [AS] 'x'] [NULL [AS] 'x'] [CSV [HEADER] [QUOTE ...]]
        i = 0
        while i < len(toks):
            word = toks[i].text.lower()
            if word in ("binary", "csv"):
                options["format"] = word
            elif word == "header":
                options["header"] = "true"
            elif word in ("delimiter", "null", "quote", "escape"):
                i += 1
                if i < len(toks) and toks[i].text.upper() == "AS":
                    i += 1
                if i >= len(toks):
                    raise SyntaxError_(f"COPY option {word.upper()} needs a value")
                options[word] = toks[i].text
            else:
                raise FeatureNotSupported(f"COPY option {toks[i].text} is not supported")
            i += 1
    fmt_name = options.pop("format", "text").lower()
    try:
        fmt = CopyFormat(fmt_name)
    except ValueError:
        raise SyntaxError_(f'COPY format "{fmt_name}" not recognized') from None
    csv = fmt is CopyFormat.CSV
    header = options.pop("header", "false").lower() in ("true", "on", "1", "match")
    if header and not csv:
        raise FeatureNotSupported("COPY HEADER available only in CSV mode", sqlstate="0A000")
    quote = options.pop("quote", '"')
    spec = CopySpec(target, from_client, fmt,
                    delimiter=options.pop("delimiter", "," if csv else "\t"),
                    null=options.pop("null", "" if csv else "\\N"),
                    header=header,
                    quote=quote,
                    escape=options.pop("escape", quote),
                    columns=_columns(target_tokens))
    options.pop("encoding", None)
    if options:
        raise FeatureNotSupported(f"COPY option {next(iter(options)).upper()} is not supported")
    return spec


BINARY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
BINARY_HEADER = BINARY_SIGNATURE + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
BINARY_TRAILER = b"\xff\xff"
_I16 = struct.Struct(">h")
_I32 = struct.Struct(">i")


def read_binary(f: BinaryIO, oids: Sequence[int],
                batch_rows: int = 65_536) -> Iterator[list[list[object]]]:
    """Decode a binary COPY stream into batches of columns (lists of values)."""
    header = f.read(len(BINARY_SIGNATURE) + 8)
    if not header.startswith(BINARY_SIGNATURE):
        raise DataException("COPY file signature not recognized", sqlstate="22P04")
    (ext_len,) = _I32.unpack(header[-4:])
    f.read(ext_len)
    ncols = len(oids)
    columns: list[list[object]] = [[] for _ in range(ncols)]
    rows = 0
    while True:
        raw = f.read(2)
        if len(raw) < 2:
            break   # no trailer: PostgreSQL accepts end of data here too
        (count,) = _I16.unpack(raw)
        if count == -1:
            break
        if count != ncols:
            raise DataException(f"row field count is {count}, expected {ncols}",
                                sqlstate="22P04")
        for i in range(ncols):
            (size,) = _I32.unpack(f.read(4))
            columns[i].append(None if size < 0 else decode_param(f.read(size), oids[i], 1))
        rows += 1
        if rows == batch_rows:
            yield columns
            columns = [[] for _ in range(ncols)]
            rows = 0
    if rows:
        yield columns


def binary_copy_data(datarows: bytes, first: bool) -> bytes:
    """CopyData messages, one per tuple, from binary DataRow messages (same
    bodies, tag 'D' becomes 'd'); the first carries the file header."""
    buf = bytearray(datarows)
    pos = 0
    n = len(buf)
    while pos < n:
        buf[pos] = 0x64   # 'd'
        pos += 1 + int.from_bytes(buf[pos + 1:pos + 5], "big")
    if first and buf:
        # the header travels inside the first tuple's CopyData
        size = int.from_bytes(buf[1:5], "big") + len(BINARY_HEADER)
        buf[1:5] = size.to_bytes(4, "big")
        buf[5:5] = BINARY_HEADER
    return bytes(buf)
