"""COPY ... FROM STDIN / TO STDOUT, read from tokens and run by DuckDB.

``parse`` recognises a COPY whose source or destination is the client
(STDIN / STDOUT) and returns a ``CopySpec``: the target exactly as written
(``table``, ``table (cols)`` or ``(query)``), the direction and the options
in both the parenthesised and the legacy (``CSV HEADER``) spellings.

COPY FROM STDIN: rows from the client are appended to a temporary file as
CopyData arrives, so the data set is never held in memory, and loaded on
CopyDone in one statement (all rows or none). PostgreSQL's text format is
DuckDB's CSV with a tab delimiter, ``\\N`` for NULL and no quoting, so
DuckDB's CSV reader takes it directly unless it holds backslash escapes;
then :class:`TextDecoder` decodes it column-wise with Arrow kernels, chunk by
chunk, into a CSV file DuckDB reads. Columns whose PostgreSQL text form
DuckDB does not cast (arrays ``{1,2}``, bytea ``\\x4142``) are read as
VARCHAR and converted by :func:`conversion` in the loading statement.

COPY TO STDOUT streams the query's Arrow batches: every value is rendered by
the same text encoders as a DataRow (``server.protocol.codec``), so ``t``/``f``,
``{1,2}``, ``NaN`` and timestamps read as PostgreSQL writes them, then
escaped (text) or quoted (CSV) and sent one CopyData per row.

The binary format is decoded and encoded here: incoming tuples are decoded
with the Bind parameter decoders (``server.protocol.types``) into column batches;
outgoing tuples are the binary DataRow bodies of ``server.protocol.codec``
(a binary COPY tuple and a DataRow have the same layout), re-tagged.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from sqlglot.tokens import Token, TokenType

from server.errors import DataException, FeatureNotSupported, SyntaxError_
from server.protocol import codec
from server.protocol.types import decode_param
from server.sql.text import Statement


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
                f"HEADER {'true' if self.header else 'false'}, ALLOW_QUOTED_NULLS false)")

    def load_sql(self, path: str) -> str:
        """DuckDB statement that loads the client's rows from ``path``."""
        return f"COPY {self.target} FROM {_literal(path)} {self.duckdb_options()}"

    def insert_sql(self, path: str, types: Sequence[str], csv: CopySpec | None = None) -> str:
        """DuckDB statement that loads ``path`` (CSV as ``csv`` describes, this
        spec by default) read as VARCHAR, each column converted to its type."""
        csv = csv or self
        quote = csv.quote if csv.format is CopyFormat.CSV else ""
        escape = csv.escape if csv.format is CopyFormat.CSV else ""
        columns = ", ".join(f"'c{i}': 'VARCHAR'" for i in range(len(types)))
        select = ", ".join(conversion(f"c{i}", t) for i, t in enumerate(types))
        return (f"INSERT INTO {self.target} SELECT {select} FROM read_csv({_literal(path)}, "
                f"columns={{{columns}}}, delim={_literal(csv.delimiter)}, "
                f"quote={_literal(quote)}, escape={_literal(escape)}, "
                f"nullstr={_literal(csv.null)}, header={'true' if csv.header else 'false'}, "
                "allow_quoted_nulls=false, auto_detect=false)")

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



# -- text and CSV, written and read as PostgreSQL does ------------------------

def _is_list_type(duckdb_type: str) -> bool:
    return duckdb_type.endswith("]")


def needs_conversion(types: Sequence[str]) -> bool:
    """Whether a column's PostgreSQL text form is not what DuckDB's cast reads."""
    return any(_is_list_type(t) or t == "BLOB" for t in types)


def conversion(column: str, duckdb_type: str) -> str:
    """SQL turning the PostgreSQL text form in VARCHAR ``column`` into ``duckdb_type``."""
    if _is_list_type(duckdb_type):
        # {1,2} -> [1,2]; quoted elements keep their braces: only the outer pair changes
        braces = (f"CASE WHEN contains({column}, '\"') THEN '[' || {column}[2:-2] || ']' "
                  f"ELSE replace(replace({column}, '{{', '['), '}}', ']') END")
        return f"CAST({braces} AS {duckdb_type})"
    if duckdb_type == "BLOB":
        return (f"CASE WHEN starts_with({column}, '\\x') THEN unhex(substr({column}, 3)) "
                f"ELSE CAST({column} AS BLOB) END")
    return f"CAST({column} AS {duckdb_type})"


def _contains_any(values: pa.Array, chars: Sequence[str]) -> pa.Array:
    """Per value: whether it holds any of ``chars`` (one regex pass)."""
    pattern = "[" + "".join(f"\\x{{{ord(ch):x}}}" for ch in chars) + "]"
    found = pc.match_substring_regex(values, pattern)
    return pc.fill_null(found, False) if found.null_count else found


# every character the text of a number, date, time or boolean can hold
_PLAIN_CHARS = "0123456789+-.:eE NaInfitytfBC"


def _plain_type(t: pa.DataType) -> bool:
    pt = pa.types
    return bool(pt.is_integer(t) or pt.is_floating(t) or pt.is_decimal(t) or pt.is_boolean(t)
                or pt.is_date(t) or pt.is_timestamp(t) or pt.is_time(t))


class RowEncoder:
    """Rows of Arrow batches as PostgreSQL's COPY text or CSV lines."""

    def __init__(self, spec: CopySpec, schema: pa.Schema):
        self._spec = spec
        self._names = schema.names
        self._encoders = [codec.text_encoder(f.type) for f in schema]
        # columns whose text never needs escaping or quoting: numbers, dates, booleans
        plain = not (set(spec.delimiter + spec.quote) & set(_PLAIN_CHARS)) and (
            spec.format is not CopyFormat.CSV or spec.null == "")
        self._plain = [plain and _plain_type(f.type) for f in schema]

    def header(self) -> bytes | None:
        if not self._spec.header:
            return None
        names = self._field(pa.array(self._names, pa.string()))
        return "".join(self._join([pa.array([v]) for v in names.to_pylist()]).to_pylist()).encode()

    def lines(self, batch: pa.RecordBatch) -> pa.Array:
        """One string per row, newline included."""
        columns = [self._plain_field(enc(batch.column(i))) if self._plain[i] else
                   self._field(enc(batch.column(i))) for i, enc in enumerate(self._encoders)]
        return self._join(columns)

    def _plain_field(self, text: pa.Array) -> pa.Array:
        return pc.fill_null(text, self._spec.null) if text.null_count else text

    def _join(self, columns: list[pa.Array]) -> pa.Array:
        joined = columns[0] if len(columns) == 1 else \
            pc.binary_join_element_wise(*columns, self._spec.delimiter)
        return pc.binary_join_element_wise(joined, pa.scalar("\n"), "")

    def _field(self, text: pa.Array) -> pa.Array:
        spec = self._spec
        text = text.cast(pa.string())
        if spec.format is CopyFormat.CSV:
            specials = [spec.delimiter, spec.quote, "\r", "\n"]
            need = pc.or_(_contains_any(text, specials),
                          pc.fill_null(pc.equal(text, spec.null), False))
            if pc.any(need).as_py():
                inner = pc.replace_substring(text, spec.quote, spec.escape + spec.quote)
                quoted = pc.binary_join_element_wise(pa.scalar(spec.quote), inner,
                                                     pa.scalar(spec.quote), "")
                text = pc.if_else(need, quoted, text)
        else:
            specials = ["\\", "\n", "\r", "\t", spec.delimiter]
            if pc.any(_contains_any(text, specials)).as_py():
                for raw, escaped in (("\\", "\\\\"), ("\n", "\\n"), ("\r", "\\r"),
                                     ("\t", "\\t")):
                    text = pc.replace_substring(text, raw, escaped)
                if spec.delimiter not in "\\\n\r\t":
                    text = pc.replace_substring(text, spec.delimiter, "\\" + spec.delimiter)
        return pc.fill_null(text, spec.null) if text.null_count else text


_SIMPLE_ESCAPES = (("\\t", "\t"), ("\\n", "\n"), ("\\r", "\r"), ("\\b", "\b"),
                   ("\\f", "\f"), ("\\v", "\v"))
_BACKSLASH = "\x00"    # stands for an escaped backslash while decoding (NUL is never in text)
_DELIMITER = "\x01"    # stands for an escaped delimiter while decoding


def _decode_rest(value: str) -> str:
    """Octal (\\123), hex (\\x41) and other backslash escapes of one value."""
    out = []
    i, n = 0, len(value)
    while i < n:
        ch = value[i]
        if ch != "\\" or i + 1 == n:
            out.append(ch)
            i += 1
            continue
        nxt = value[i + 1]
        if nxt in "01234567":
            j = i + 1
            while j < min(i + 4, n) and value[j] in "01234567":
                j += 1
            out.append(chr(int(value[i + 1:j], 8) & 0xFF))
            i = j
        elif nxt == "x" and i + 2 < n and value[i + 2] in "0123456789abcdefABCDEF":
            j = i + 2
            while j < min(i + 4, n) and value[j] in "0123456789abcdefABCDEF":
                j += 1
            out.append(chr(int(value[i + 2:j], 16)))
            i = j
        else:
            out.append(nxt)
            i += 2
    return "".join(out)


class TextDecoder:
    """PostgreSQL COPY text lines to VARCHAR columns (escapes decoded, NULLs
    found), column-wise over Arrow arrays."""

    def __init__(self, spec: CopySpec, ncols: int):
        self._spec = spec
        self._ncols = ncols
        self.lines_read = 0
        self.ended = False   # the end-of-data marker was read

    def columns(self, text: str) -> list[pa.Array]:
        """The columns of ``text``: whole lines, each ending in a newline."""
        spec, ncols = self._spec, self._ncols
        lines = text.split("\n")
        lines.pop()  # after the final newline
        lines = [line[:-1] if line.endswith("\r") else line for line in lines]
        if self.ended:
            return [pa.array([], pa.string()) for _ in range(ncols)]
        if "\\." in lines:   # the end-of-data marker: what follows it is not data
            lines = lines[:lines.index("\\.")]
            self.ended = True
        first_line = self.lines_read + 1
        self.lines_read += len(lines)
        arr = pc.replace_substring(pa.array(lines, pa.string()), "\\\\", _BACKSLASH)
        arr = pc.replace_substring(arr, "\\" + spec.delimiter, _DELIMITER)
        fields = pc.split_pattern(arr, spec.delimiter)
        counts = pc.list_value_length(fields).to_numpy(zero_copy_only=False)
        bad = np.flatnonzero(counts != ncols)
        if bad.size:
            line = first_line + int(bad[0])
            what = "missing data for column" if counts[bad[0]] < ncols else \
                "extra data after last expected column"
            raise DataException(f"COPY from stdin, line {line}: {what}", sqlstate="22P04")
        flat = pc.list_flatten(fields)
        is_null = pc.equal(flat, spec.null)
        for escaped, raw in _SIMPLE_ESCAPES:
            flat = pc.replace_substring(flat, escaped, raw)
        rest = pc.match_substring(flat, "\\").to_numpy(zero_copy_only=False)
        if rest.any():
            values = flat.to_pylist()
            for i in np.flatnonzero(rest):
                values[i] = _decode_rest(values[i])
            flat = pa.array(values, pa.string())
        flat = pc.replace_substring(flat, _DELIMITER, spec.delimiter)
        flat = pc.replace_substring(flat, _BACKSLASH, "\\")
        flat = pc.if_else(is_null, pa.scalar(None, pa.string()), flat)
        total = len(lines) * ncols
        return [flat.take(pa.array(np.arange(j, total, ncols))) for j in range(ncols)]


def has_escapes(chunk: bytes, null: bytes) -> bool:
    """Whether COPY text data holds a backslash other than in NULL markers."""
    backslashes = chunk.count(b"\\")
    return backslashes > 0 and backslashes != chunk.count(null) * null.count(b"\\")


def transcode_text(spec: CopySpec, ncols: int, source: BinaryIO, target: BinaryIO,
                   chunk_bytes: int = 8 << 20) -> CopySpec:
    """Rewrite COPY text data as CSV (decoded, re-quoted); the spec to read it with."""
    csv = CopySpec(spec.target, True, CopyFormat.CSV, ",", "", False, '"', '"')
    decoder = TextDecoder(spec, ncols)
    schema = pa.schema([(f"c{i}", pa.string()) for i in range(ncols)])
    encoder = RowEncoder(csv, schema)
    tail = b""
    while True:
        chunk = source.read(chunk_bytes)
        data = tail + chunk
        if chunk:
            cut = data.rfind(b"\n") + 1   # whole lines now, the rest with the next chunk
        else:
            if data and not data.endswith(b"\n"):
                data += b"\n"              # the last line may lack its newline
            cut = len(data)
        body, tail = data[:cut], data[cut:]
        if body:
            try:
                text = body.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise DataException(f"invalid byte sequence for encoding \"UTF8\": {exc}",
                                    sqlstate="22021") from exc
            columns = decoder.columns(text)
            if columns and len(columns[0]):
                lines = encoder.lines(pa.RecordBatch.from_arrays(columns, schema=schema))
                target.write(codec.values_bytes(lines))
        if not chunk:
            return csv


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
