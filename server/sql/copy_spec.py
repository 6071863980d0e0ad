"""COPY ... FROM STDIN / TO STDOUT, read from tokens: the ``CopySpec``.

``parse`` recognises a COPY whose source or destination is the client
(STDIN / STDOUT) and returns a ``CopySpec``: the target exactly as written
(``table``, ``table (cols)`` or ``(query)``), the direction and the options
in both the parenthesised and the legacy (``CSV HEADER``) spellings, and the
DuckDB statements that load or read it. Columns whose PostgreSQL text form
DuckDB does not cast (arrays ``{1,2}``, bytea ``\\x4142``) are read as VARCHAR
and converted by :func:`conversion` in the loading statement. The data
formats themselves are ``server.postgres.copy``'s.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlglot.tokens import Token, TokenType

from server.errors import FeatureNotSupported, SyntaxError_
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
                f"HEADER {'true' if self.header else 'false'}, ALLOW_QUOTED_NULLS false, "
                "AUTO_DETECT false)")

    @property
    def table_name(self) -> str:
        """The table's name as PostgreSQL's CONTEXT lines show it (no schema, no quotes)."""
        name = self.target.split("(", 1)[0].strip()
        last = re.split(r'\.(?=(?:[^"]*"[^"]*")*[^"]*$)', name)[-1]
        return last[1:-1].replace('""', '"') if last.startswith('"') else last

    def load_sql(self, path: str) -> str:
        """DuckDB statement that loads the client's rows from ``path``."""
        return f"COPY {self.target} FROM {_literal(path)} {self.duckdb_options()}"

    def insert_sql(self, path: str, types: Sequence[str], csv: CopySpec | None = None) -> str:
        """DuckDB statement that loads ``path`` (CSV as ``csv`` describes, this
        spec by default) read as VARCHAR, each column converted to its type."""
        select = ", ".join(conversion(f"c{i}", t) for i, t in enumerate(types))
        source = _read_text(path, types, csv or self)
        return f"INSERT INTO {self.target} SELECT {select} FROM {source}"

    def check_sql(self, path: str, types: Sequence[str], csv: CopySpec | None = None) -> str:
        """A query over the rows ``insert_sql`` loads, in file order: each column's text,
        then for each column whether its conversion fails."""
        texts = ", ".join(f"c{i}" for i in range(len(types)))
        fails = ", ".join(f"TRY({conversion(f'c{i}', t)}) IS NULL AND c{i} IS NOT NULL"
                          for i, t in enumerate(types))
        return f"SELECT {texts}, {fails} FROM {_read_text(path, types, csv or self)}"

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


def _read_text(path: str, types: Sequence[str], csv: CopySpec) -> str:
    """read_csv of ``path`` (as ``csv`` describes it) with every column as VARCHAR."""
    quote = csv.quote if csv.format is CopyFormat.CSV else ""
    escape = csv.escape if csv.format is CopyFormat.CSV else ""
    columns = ", ".join(f"'c{i}': 'VARCHAR'" for i in range(len(types)))
    return (f"read_csv({_literal(path)}, columns={{{columns}}}, "
            f"delim={_literal(csv.delimiter)}, quote={_literal(quote)}, "
            f"escape={_literal(escape)}, nullstr={_literal(csv.null)}, "
            f"header={'true' if csv.header else 'false'}, allow_quoted_nulls=false, "
            "auto_detect=false)")


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
