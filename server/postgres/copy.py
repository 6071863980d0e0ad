"""COPY ... FROM STDIN / TO STDOUT: PostgreSQL's data formats, run by DuckDB.

The statement is read by ``server.sql.copy_spec`` (a ``CopySpec``).

COPY FROM STDIN: rows from the client are appended to a temporary file as
CopyData arrives (:class:`CopyInWriter`, which stops at PostgreSQL's ``\\.``
end-of-data line), so the data set is never held in memory, and loaded on
CopyDone in one statement (all rows or none). A row DuckDB's reader refuses
is reported as PostgreSQL reports it (:func:`row_error`): one line, and the
line number, column and value as the error's CONTEXT.

PostgreSQL's text format is DuckDB's CSV with a tab delimiter, ``\\N`` for NULL and no quoting, so
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

import re
import struct
from collections.abc import Callable, Iterator, Sequence
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from server.errors import DataException
from server.protocol import codec
from server.protocol.types import decode_param
from server.sql.copy_spec import CopyFormat, CopySpec

# -- text and CSV, written and read as PostgreSQL does ------------------------

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

    def __init__(self, spec: CopySpec, names: Sequence[str]):
        self._spec = spec
        self._names = names
        self._ncols = len(names)
        self.lines_read = 0

    def columns(self, text: str) -> list[pa.Array]:
        """The columns of ``text``: whole lines, each ending in a newline."""
        spec, ncols = self._spec, self._ncols
        lines = text.split("\n")
        lines.pop()  # after the final newline
        lines = [line[:-1] if line.endswith("\r") else line for line in lines]
        first_line = self.lines_read + 1
        self.lines_read += len(lines)
        arr = pc.replace_substring(pa.array(lines, pa.string()), "\\\\", _BACKSLASH)
        arr = pc.replace_substring(arr, "\\" + spec.delimiter, _DELIMITER)
        fields = pc.split_pattern(arr, spec.delimiter)
        counts = pc.list_value_length(fields).to_numpy(zero_copy_only=False)
        bad = np.flatnonzero(counts != ncols)
        if bad.size:
            raise column_count_error(spec, self._names, first_line + int(bad[0]),
                                     lines[bad[0]], int(counts[bad[0]]))
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


class CopyInWriter:
    """COPY FROM STDIN data as CopyData brings it, appended to the file DuckDB loads.

    Text and CSV data end at a line holding only ``\\.`` (PostgreSQL's end-of-data
    marker, which psql sends): the marker and everything after it are ignored, as
    PostgreSQL 15 does. A marker split across CopyData messages is found too. (In
    the text format PostgreSQL also takes ``\\.`` inside a line as the end, or
    refuses it as a corrupt marker; here it is data there, decoded as ``.``.)
    For the text format, notes whether the data holds backslash escapes."""

    def __init__(self, spec: CopySpec, file: BinaryIO):
        self._file = file
        self._marker = spec.format is not CopyFormat.BINARY
        self._text = spec.format is CopyFormat.TEXT
        self._null = spec.null.encode()
        self._held = b""          # the start of a line that may be the marker
        self._line_start = True   # the next byte starts a line
        self.ended = False        # the marker was seen
        self.escapes = False

    def write(self, data: bytes) -> None:
        if self.ended:
            return
        if not self._marker:
            self._file.write(data)
            return
        data, self._held = self._held + data, b""
        keep = len(data)
        pos = data.find(b"\\.")
        while pos != -1:
            if (pos == 0 and self._line_start) or (pos > 0 and data[pos - 1] == 0x0A):
                after = data[pos + 2:pos + 4]
                if after[:1] == b"\n" or after == b"\r\n":
                    keep, self.ended = pos, True
                    break
                if after in (b"", b"\r"):   # the line goes on in the next CopyData
                    keep, self._held = pos, data[pos:]
                    break
            pos = data.find(b"\\.", pos + 1)
        else:
            if data.endswith(b"\\") and ((len(data) == 1 and self._line_start)
                                          or data[-2:-1] == b"\n"):
                keep, self._held = len(data) - 1, b"\\"
        self._keep(data[:keep])
        if self._held:
            self._line_start = True

    def _keep(self, chunk: bytes) -> None:
        if not chunk:
            return
        self._file.write(chunk)
        self._line_start = chunk.endswith(b"\n")
        if self._text and not self.escapes:
            self.escapes = has_escapes(chunk, self._null)

    def finish(self) -> None:
        """At CopyDone: the held start of a line is data, but for a text-format marker
        without its newline (which PostgreSQL refuses as corrupt: it ends the data
        here); in CSV it is data, as in PostgreSQL. The file is closed."""
        held, self._held = self._held, b""
        if not (self._text and held in (b"\\.", b"\\.\r")):
            self._keep(held)
        self.close()

    def close(self) -> None:
        self._file.close()


# -- a bad row, reported as PostgreSQL reports it -----------------------------

# PostgreSQL's input functions name their type so in "invalid input syntax for type ..."
_INPUT_NAMES = {"SMALLINT": "smallint", "INTEGER": "integer", "BIGINT": "bigint",
                "FLOAT": "real", "DOUBLE": "double precision", "BOOLEAN": "boolean",
                "TIMESTAMP": "timestamp", "TIMESTAMP WITH TIME ZONE": "timestamp with time zone",
                "TIME": "time", "TIME WITH TIME ZONE": "time with time zone", "BLOB": "bytea",
                "VARCHAR": "character varying"}
_CSV_ROW = re.compile(r"CSV Error on Line: (?P<line>\d+)\nOriginal Line: (?P<text>[^\n]*)")
_CSV_VALUE = re.compile(r'Error when converting column "(?P<column>[^"]*)"\. '
                        r"Could not convert string \"(?P<value>.*?)\" to '", re.S)
_CSV_COUNT = re.compile(r"Expected Number of Columns: (?P<expected>\d+) Found: (?P<found>\d+)")


def _input_name(duckdb_type: str) -> str:
    if duckdb_type.startswith("DECIMAL"):
        return "numeric"
    return _INPUT_NAMES.get(duckdb_type, duckdb_type.lower())


def column_count_error(spec: CopySpec, names: Sequence[str], line: int, text: str,
                       found: int) -> DataException:
    """PostgreSQL's 22P04 for a line with too few or too many fields."""
    message = f'missing data for column "{names[found]}"' if found < len(names) else \
        "extra data after last expected column"
    return DataException(message, sqlstate="22P04",
                         context=f'COPY {spec.table_name}, line {line}: "{text}"')


def first_failing(rows: pa.RecordBatchReader) -> tuple[int, int, str] | None:
    """(row number from 1, column, its text) of the first value whose conversion fails,
    from the batches of ``CopySpec.check_sql``."""
    seen = 0
    for batch in rows:
        ncols = batch.num_columns // 2
        fails = [batch.column(ncols + j).to_numpy(zero_copy_only=False) for j in range(ncols)]
        bad = np.flatnonzero(np.logical_or.reduce(fails))
        if bad.size:
            row = int(bad[0])
            col = next(j for j in range(ncols) if fails[j][row])
            return seen + row + 1, col, str(batch.column(col)[row].as_py())
        seen += batch.num_rows
    return None


def row_error(spec: CopySpec, names: Sequence[str], types: Sequence[str], text: str,
              cast_sqlstate: Callable[[str, str], str]) -> DataException | None:
    """PostgreSQL's error for the row where DuckDB's CSV reader stopped (its message
    ``text``): one line naming the type and value, and a CONTEXT with the line number,
    the column and the value. ``cast_sqlstate(value, duckdb_type)``: the SQLSTATE of
    casting ``value``. None when ``text`` names no row."""
    row = _CSV_ROW.search(text)
    if row is None:
        return None
    line = int(row.group("line"))
    where = f"COPY {spec.table_name}, line {line}"
    count = _CSV_COUNT.search(text)
    if count is not None:
        return column_count_error(spec, names, line, row.group("text"),
                                  min(int(count.group("found")), len(names) + 1))
    bad = _CSV_VALUE.search(text)
    if bad is None:
        if "Invalid unicode" in text:
            return DataException('invalid byte sequence for encoding "UTF8"',
                                 sqlstate="22021", context=where)
        reason = "unterminated CSV quoted field" if "unterminated quote" in text else \
            next((s.strip() for s in text[row.end():].splitlines() if s.strip()),
                 "bad COPY data")
        return DataException(reason, sqlstate="22P04", context=f'{where}: "{row.group("text")}"')
    column, value = bad.group("column"), bad.group("value")
    index = names.index(column) if column in names else \
        int(column[1:]) if re.fullmatch(r"c\d+", column) else None
    if index is None or index >= len(names):
        return None
    code = cast_sqlstate(value, types[index])
    type_name = _input_name(types[index])
    if code == "22003":
        message = "numeric field overflow" if type_name == "numeric" else \
            f'value "{value}" is out of range for type {type_name}'
    elif code == "22008":
        message = f'date/time field value out of range: "{value}"'
    else:
        code = code if code.startswith("22") else "22P02"
        message = f'invalid input syntax for type {type_name}: "{value}"'
    return DataException(message, sqlstate=code, context=f"COPY {spec.table_name}, line {line}, "
                                                         f'column {names[index]}: "{value}"')


def transcode_text(spec: CopySpec, names: Sequence[str], source: BinaryIO, target: BinaryIO,
                   chunk_bytes: int = 8 << 20) -> CopySpec:
    """Rewrite COPY text data as CSV (decoded, re-quoted); the spec to read it with."""
    ncols = len(names)
    csv = CopySpec(spec.target, True, CopyFormat.CSV, ",", "", False, '"', '"')
    decoder = TextDecoder(spec, names)
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
                line = decoder.lines_read + body.count(b"\n", 0, exc.start) + 1
                raise DataException(
                    f'invalid byte sequence for encoding "UTF8": 0x{body[exc.start]:02x}',
                    sqlstate="22021", context=f"COPY {spec.table_name}, line {line}") from exc
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
