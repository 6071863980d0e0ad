"""PostgreSQL DDL that DuckDB lacks, as DuckDB statements: auto-increment columns and
what ``pg_dump`` writes.

Read from the statement's tokens (``server.sql.text``); every piece of the client's
text that needs no change is kept as written. ``translate`` returns None for a
statement that needs nothing (the usual case), else a ``Translation``: the DuckDB
statements to run, in one transaction, for it.

- ``serial``, ``bigserial``, ``smallserial`` (and ``serial2/4/8``) columns and
  ``GENERATED { ALWAYS | BY DEFAULT } AS IDENTITY [ ( sequence options ) ]`` (in
  CREATE TABLE, or added by ``ALTER TABLE ... ALTER COLUMN c ADD GENERATED ...`` as
  pg_dump writes identity columns): a sequence named as PostgreSQL names it
  (``<table>_<column>_seq``, numbered when taken), bounded by the column's type,
  and a ``DEFAULT nextval(...)`` with ``NOT NULL`` on the column.
- Ownership: a sequence owned by a column (serial, identity, ``ALTER SEQUENCE ...
  OWNED BY t.c``, ``CREATE SEQUENCE ... OWNED BY``) carries a marker in its DuckDB
  comment (``{"quackml_owned_by": [table, column], "identity": ...}``), so that it
  survives a restart (DuckDB's own ``OWNED BY`` does not). ``DROP TABLE`` drops the
  sequences its table owns; ``pg_get_serial_sequence`` reads the marker. A user's own
  ``COMMENT ON SEQUENCE`` replaces it (the sequence is then no longer owned).
- ``GENERATED ALWAYS`` identity: an INSERT that gives the column a value other than
  ``DEFAULT`` is refused with 428C9 unless it says ``OVERRIDING SYSTEM VALUE``; so is
  an UPDATE that sets it. (A marker counts only where the column it names takes its
  default from the sequence: anyone may comment a sequence of theirs.)
- ``ALTER TABLE ... ADD [COLUMN] c serial`` (or an identity) fills the rows from a new
  owned sequence; ``TRUNCATE ... RESTART IDENTITY`` and ``ALTER SEQUENCE s RESTART
  [WITH n]`` set sequences back with ``setval`` (DuckDB has neither clause).
- pg_dump's spelling: ``CREATE SEQUENCE ... AS integer ... CACHE 1`` (DuckDB has
  neither clause: the type becomes the bound), ``ALTER TABLE ONLY`` (no inheritance:
  ONLY is dropped), ``CREATE INDEX ... USING btree`` (DuckDB's index is an ART),
  ``nextval('public.s'::regclass)`` (sequence functions take the name), the ``public``
  schema (DuckDB's ``main``), ``ALTER TABLE ... ADD [CONSTRAINT c] FOREIGN KEY``
  (DuckDB cannot add one to an existing table: a notice says the key is not enforced).
- ``PREPARE name (types) AS statement``: each ``$n`` of the statement becomes
  ``CAST($n AS type)`` (DuckDB's PREPARE takes no type list).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import duckdb
from sqlglot.tokens import Token, TokenType

from server.errors import ServerError
from server.postgres import rebuild
from server.sql import ml_grammar, multi, sequences
from server.sql.text import Statement, closing_paren, split, top_level_items

SERIALS = {"serial": "INTEGER", "serial4": "INTEGER", "bigserial": "BIGINT",
           "serial8": "BIGINT", "smallserial": "SMALLINT", "serial2": "SMALLINT"}
# integer types and the bounds of a sequence of that type
_BOUNDS = {"smallint": 32767, "int2": 32767, "integer": 2147483647, "int": 2147483647,
           "int4": 2147483647, "bigint": None, "int8": None}
_SEQUENCE_FUNCTIONS = {"nextval", "currval", "setval"}
_TABLE_CONSTRAINTS = {"CONSTRAINT", "PRIMARY", "UNIQUE", "FOREIGN", "CHECK", "EXCLUDE", "LIKE"}
_MARKER_KEY = "quackml_owned_by"
# index access methods DuckDB's ART index stands in for
_INDEX_METHODS = {"btree", "hash", "art"}
# words that make a statement worth reading (besides its first word)
_TRIGGERS = {"public", *_SEQUENCE_FUNCTIONS}   # pg_get_serial_sequence: in setval


class GeneratedAlways(ServerError):
    sqlstate = "428C9"


@dataclass(frozen=True)
class Owner:
    """A sequence's owning column (names lower-case unless quoted), and the kind of
    identity it serves: 'always', 'by default', or None (serial, OWNED BY)."""
    table: str
    column: str
    identity: str | None = None

    def marker(self) -> str:
        return json.dumps({_MARKER_KEY: [self.table, self.column], "identity": self.identity})


def read_marker(comment: str | None) -> Owner | None:
    if not comment or not comment.startswith('{"' + _MARKER_KEY):
        return None
    try:
        data = json.loads(comment)
        table, column = data[_MARKER_KEY]
        return Owner(str(table), str(column), data.get("identity"))
    except (ValueError, TypeError, KeyError):
        return None


@dataclass(frozen=True)
class OwnedSequence:
    schema: str
    name: str
    owner: Owner
    database: str = ""    # "temp" for a temporary sequence
    start: int = 1


class Catalog(Protocol):
    """What the translation asks of the database."""
    def current_schema(self) -> str: ...
    def sequence_exists(self, schema: str | None, name: str) -> bool: ...
    def sequence_start(self, schema: str | None, name: str) -> int | None: ...
    def table_exists(self, schema: str | None, name: str) -> bool: ...
    def owned_sequences(self) -> Sequence[OwnedSequence]: ...
    def column_type(self, schema: str | None, table: str, column: str) -> str | None: ...
    def column_position(self, schema: str | None, table: str, column: str) -> int | None: ...
    def dependents(self, schema: str | None, table: str) -> rebuild.Dependents: ...


@dataclass(frozen=True)
class Translation:
    statements: tuple[str, ...]
    tag: str | None                 # None: one statement, tagged as it runs
    notices: tuple[str, ...] = ()
    # statements (by index) skipped with a notice when the user may not run them:
    # the drops of owned sequences that come with a DROP TABLE
    optional: frozenset[int] = field(default_factory=frozenset)


def translate(stmt: Statement, catalog: Catalog, check: bool = True) -> Translation | None:
    """The DuckDB statements for ``stmt``, or None: it needs none. ``check``: refuse
    (428C9) an INSERT of a value into a GENERATED ALWAYS identity column."""
    tokens = stmt.tokens
    if not tokens:
        return None
    first = tokens[0].text.upper()
    if first == "INSERT" and check:
        check_insert(stmt, catalog)
    elif first == "UPDATE" and check:
        check_update(stmt, catalog)
    words = stmt.words(3)
    if first not in ("CREATE", "ALTER", "DROP", "PREPARE", "TRUNCATE"):
        lowered = stmt.text.lower()   # a search of the text first: a big INSERT is fast
        if not any(w in lowered for w in _TRIGGERS) or \
                not any(t.text.lower() in _TRIGGERS for t in tokens):
            return None
    if ml_grammar.is_ml_statement(stmt):
        return None   # models have schemas of their own (public is public there)
    text = _common(stmt, catalog)
    if text is not None:
        pieces = split(text)
        if len(pieces) != 1:
            return None
        stmt = pieces[0]
        tokens = stmt.tokens
    result: Translation | None = None
    if first == "CREATE":
        result = _create(stmt, catalog)
    elif words[:2] == ("ALTER", "TABLE"):
        result = _alter_table(stmt, catalog)
    elif words[:2] == ("ALTER", "SEQUENCE"):
        result = _alter_sequence(stmt, catalog)
    elif words[:2] == ("DROP", "TABLE"):
        result = _drop_table(stmt, catalog)
    elif first == "PREPARE":
        result = _prepare(stmt)
    elif first == "TRUNCATE":
        result = _truncate(stmt, catalog)
    if result is None and text is not None:
        return Translation((stmt.text,), None)
    return result


# -- edits on the text --------------------------------------------------------------
Edit = tuple[int, int, str]   # (start, end inclusive, replacement), absolute positions


def _apply(stmt: Statement, edits: Sequence[Edit]) -> str:
    out: list[str] = []
    pos = 0
    for start, end, replacement in sorted(edits, key=lambda e: (e[0], e[1])):
        out.append(stmt.text[pos:start - stmt.offset])
        out.append(replacement)
        pos = end + 1 - stmt.offset
    out.append(stmt.text[pos:])
    return "".join(out)


def _between(stmt: Statement, first: Token, last: Token) -> str:
    return stmt.text[first.start - stmt.offset:last.end - stmt.offset + 1]


def _common(stmt: Statement, catalog: Catalog) -> str | None:
    """The text with the rewrites any statement may need: ``public.x`` -> ``main.x``,
    ``nextval('public.s'::regclass)`` -> ``nextval('main.s')``,
    ``setval(pg_get_serial_sequence('t', 'c'), ...)`` -> ``setval('main.t_c_seq', ...)``,
    ``ALTER TABLE ONLY`` -> ``ALTER TABLE``, ``USING btree`` dropped from CREATE INDEX.
    None: unchanged."""
    tokens = stmt.tokens
    edits: list[Edit] = []
    n = len(tokens)
    for i, tok in enumerate(tokens):
        low = tok.text.lower()
        prev = tokens[i - 1] if i else None
        nxt = tokens[i + 1] if i + 1 < n else None
        if low == "public" and tok.token_type is not TokenType.STRING and \
                nxt is not None and nxt.token_type is TokenType.DOT and \
                (prev is None or prev.token_type is not TokenType.DOT):
            edits.append((tok.start, tok.end, "main"))
        elif low in _SEQUENCE_FUNCTIONS and nxt is not None and \
                nxt.token_type is TokenType.L_PAREN and i + 2 < n and \
                tokens[i + 2].token_type is TokenType.STRING:
            arg = tokens[i + 2]
            name = arg.text
            if name.lower().startswith("public."):
                edits.append((arg.start, arg.end, _literal("main." + name[len("public."):])))
            if i + 4 < n and tokens[i + 3].token_type is TokenType.DCOLON and \
                    tokens[i + 4].text.lower() == "regclass":
                edits.append((tokens[i + 3].start, tokens[i + 4].end, ""))
        elif low in _SEQUENCE_FUNCTIONS and nxt is not None and \
                nxt.token_type is TokenType.L_PAREN and i + 7 < n and \
                tokens[i + 2].text.lower() == "pg_get_serial_sequence" and \
                [t.token_type for t in tokens[i + 3:i + 8]] == [
                    TokenType.L_PAREN, TokenType.STRING, TokenType.COMMA, TokenType.STRING,
                    TokenType.R_PAREN]:
            # setval(pg_get_serial_sequence('t', 'c'), ...) (Django's sequence reset):
            # DuckDB's sequence functions take a constant name
            found = _serial_sequence(catalog, tokens[i + 4].text, tokens[i + 6].text)
            if found is not None:
                edits.append((tokens[i + 2].start, tokens[i + 7].end,
                              _literal(_sequence_reference(found))))
    words = stmt.words(4)
    if words[:2] == ("ALTER", "TABLE"):
        i = 4 if words[2:4] == ("IF", "EXISTS") else 2
        if i < n and tokens[i].text.upper() == "ONLY":
            edits.append((tokens[i].start, tokens[i].end, ""))
    if words[:1] == ("CREATE",) and "INDEX" in stmt.words(3):
        for i, tok in enumerate(tokens[:-2]):
            if tok.text.upper() == "USING" and tokens[i + 1].text.lower() in _INDEX_METHODS \
                    and tokens[i + 2].token_type is TokenType.L_PAREN:
                edits.append((tok.start, tokens[i + 1].end, ""))
                break
    return _apply(stmt, edits) if edits else None


def _serial_sequence(catalog: Catalog, table: str, column: str) -> OwnedSequence | None:
    """What pg_get_serial_sequence(table, column) names (its arguments as text)."""
    parts = [p[1:-1].replace('""', '"') if p.startswith('"') and p.endswith('"') else p.lower()
             for p in table.split(".")]
    if not parts or len(parts) > 2:
        return None
    name = _QName(parts[0] if len(parts) == 2 else None, parts[-1], 0)
    return next((seq for seq in catalog.owned_sequences()
                 if _owns(name, seq, catalog) and seq.owner.column.lower() == column.lower()),
                None)


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _ident(name: str) -> str:
    """A name as SQL: quoted unless it is a plain lower-case identifier."""
    if name.isidentifier() and name == name.lower() and name.isascii():
        return name
    return '"' + name.replace('"', '""') + '"'


def _name_of(tok: Token) -> str:
    """An identifier's name: as written if quoted, else lower case (PostgreSQL folds)."""
    return tok.text if tok.token_type is TokenType.IDENTIFIER else tok.text.lower()


@dataclass(frozen=True)
class _QName:
    schema: str | None
    name: str
    end: int            # index of the name's last token

    @property
    def sql(self) -> str:
        return (f"{_ident(self.schema)}." if self.schema else "") + _ident(self.name)


def _qualified_name(tokens: Sequence[Token], i: int) -> _QName | None:
    """A possibly schema-qualified name starting at tokens[i]."""
    if i >= len(tokens):
        return None
    parts = [_name_of(tokens[i])]
    j = i
    while j + 2 < len(tokens) and tokens[j + 1].token_type is TokenType.DOT:
        parts.append(_name_of(tokens[j + 2]))
        j += 2
    if len(parts) == 1:
        return _QName(None, parts[0], j)
    return _QName(parts[-2], parts[-1], j)


# -- sequences ----------------------------------------------------------------------
@dataclass
class _SequenceOptions:
    """PostgreSQL sequence options as DuckDB takes them."""
    kept: list[str] = field(default_factory=list)
    type_bound: int | None = None   # the largest value of the AS type, if bounded
    has_max: bool = False
    has_min: bool = False
    negative: bool = False
    name: _QName | None = None      # SEQUENCE NAME (identity options)
    owned_by: tuple[str, str] | None = None
    owned_none: bool = False

    def sql(self) -> str:
        parts = list(self.kept)
        if self.type_bound is not None:
            if self.negative and not self.has_min:
                parts.append(f"MINVALUE {-self.type_bound - 1}")
            elif not self.negative and not self.has_max:
                parts.append(f"MAXVALUE {self.type_bound}")
        return " ".join(parts)


def _number(tokens: Sequence[Token], i: int) -> tuple[str, int]:
    """A signed number at tokens[i]: its text and the index after it."""
    sign = ""
    if i < len(tokens) and tokens[i].token_type in (TokenType.DASH, TokenType.PLUS):
        sign = "-" if tokens[i].token_type is TokenType.DASH else ""
        i += 1
    if i >= len(tokens) or tokens[i].token_type is not TokenType.NUMBER:
        raise ServerError("syntax error in sequence options: a number is needed",
                          sqlstate="42601")
    return sign + tokens[i].text, i + 1


def _sequence_options(tokens: Sequence[Token], bound: int | None = None) -> _SequenceOptions:
    opts = _SequenceOptions(type_bound=bound)
    i = 0
    n = len(tokens)
    while i < n:
        word = tokens[i].text.upper()
        nxt = tokens[i + 1].text.upper() if i + 1 < n else ""
        if word == "AS" and i + 1 < n:
            type_name = tokens[i + 1].text.lower()
            if type_name not in _BOUNDS:
                raise ServerError("only smallint, integer and bigint are allowed as a "
                                  "sequence's type", sqlstate="22023")
            opts.type_bound = _BOUNDS[type_name]
            i += 2
        elif word == "INCREMENT":
            i += 2 if nxt == "BY" else 1
            value, i = _number(tokens, i)
            opts.negative = value.startswith("-")
            opts.kept.append(f"INCREMENT BY {value}")
        elif word in ("MINVALUE", "MAXVALUE"):
            value, i = _number(tokens, i + 1)
            opts.kept.append(f"{word} {value}")
            opts.has_min |= word == "MINVALUE"
            opts.has_max |= word == "MAXVALUE"
        elif word == "NO" and nxt in ("MINVALUE", "MAXVALUE", "CYCLE"):
            if nxt == "CYCLE":
                opts.kept.append("NO CYCLE")
            i += 2
        elif word == "START":
            i += 2 if nxt == "WITH" else 1
            value, i = _number(tokens, i)
            opts.kept.append(f"START WITH {value}")
        elif word == "CACHE":
            _, i = _number(tokens, i + 1)   # DuckDB's sequences have no cache
        elif word == "CYCLE":
            opts.kept.append("CYCLE")
            i += 1
        elif word == "SEQUENCE" and nxt == "NAME":
            opts.name = _qualified_name(tokens, i + 2)
            if opts.name is None:
                raise ServerError("SEQUENCE NAME needs a name", sqlstate="42601")
            i = opts.name.end + 1
        elif word == "OWNED" and nxt == "BY":
            if i + 2 < n and tokens[i + 2].text.upper() == "NONE":
                opts.owned_none = True
                i += 3
                continue
            target = _qualified_name(tokens, i + 2)
            parts = [_name_of(t) for t in tokens[i + 2:(target.end + 1) if target else n]
                     if t.token_type is not TokenType.DOT]
            if target is None or len(parts) < 2:
                raise ServerError("OWNED BY needs a table.column", sqlstate="42601")
            opts.owned_by = (parts[-2], parts[-1])
            i = target.end + 1
        else:
            raise ServerError(f"sequence option {tokens[i].text} is not supported",
                              sqlstate="0A000")
    return opts


def _comment(sequence: str, owner: Owner | None) -> str:
    value = "NULL" if owner is None else _literal(owner.marker())
    return f"COMMENT ON SEQUENCE {sequence} IS {value}"


def _free_name(catalog: Catalog, schema: str | None, table: str, column: str,
               taken: set[str]) -> str:
    """PostgreSQL's name for a column's sequence (ChooseRelationName):
    <table>_<column>_seq, then ..._seq1, ..._seq2 while taken."""
    k = 0
    while True:
        name = _object_name(table, column, "seq" if k == 0 else f"seq{k}")
        if name not in taken and not catalog.sequence_exists(schema, name):
            taken.add(name)
            return name
        k += 1


def _object_name(name1: str, name2: str, label: str) -> str:
    """PostgreSQL's makeObjectName: name1_name2_label within 63 bytes, the longer of the
    two names cut first (at a character boundary)."""
    first, second = name1.encode(), name2.encode()
    available = 63 - (len(label.encode()) + 2)
    n1, n2 = len(first), len(second)
    while n1 + n2 > available:
        if n1 > n2:
            n1 -= 1
        else:
            n2 -= 1
    return (f"{first[:n1].decode(errors='ignore')}_{second[:n2].decode(errors='ignore')}"
            f"_{label}")


@dataclass(frozen=True)
class _AutoColumn:
    column: str
    sequence: str               # SQL name, qualified as the table is
    create: str                 # CREATE SEQUENCE ...
    default: str                # DEFAULT nextval('...') NOT NULL
    identity: str | None


def _auto_column(catalog: Catalog, table: _QName, column: str, type_name: str,
                 identity: str | None, option_tokens: Sequence[Token], temp: bool,
                 taken: set[str]) -> _AutoColumn:
    opts = _sequence_options(option_tokens, _BOUNDS.get(type_name.lower()))
    if opts.name is not None:
        seq = _QName(opts.name.schema or table.schema, opts.name.name, 0)
    else:
        seq = _QName(table.schema, _free_name(catalog, table.schema, table.name, column,
                                              taken), 0)
    create = f"CREATE {'TEMP ' if temp else ''}SEQUENCE {seq.sql} {opts.sql()}".rstrip()
    reference = (f"{seq.schema}." if seq.schema else "") + _ident(seq.name)
    return _AutoColumn(column, seq.sql, create, f"DEFAULT nextval({_literal(reference)})",
                       identity)


def _identity_span(tokens: Sequence[Token], i: int) -> tuple[str, int, int, int] | None:
    """``GENERATED {ALWAYS | BY DEFAULT} AS IDENTITY [( options )]`` at tokens[i]: its
    kind, the index of its last token, and the options' range (start, end exclusive)."""
    words = [t.text.upper() for t in tokens[i:i + 5]]
    if words[:2] == ["GENERATED", "ALWAYS"] and words[2:4] == ["AS", "IDENTITY"]:
        kind, last = "always", i + 3
    elif words[:3] == ["GENERATED", "BY", "DEFAULT"] and words[3:5] == ["AS", "IDENTITY"]:
        kind, last = "by default", i + 4
    else:
        return None
    if last + 1 < len(tokens) and tokens[last + 1].token_type is TokenType.L_PAREN:
        close = closing_paren(tuple(tokens), last + 1)
        if close is None:
            raise ServerError("unterminated identity options", sqlstate="42601")
        return kind, close, last + 2, close
    return kind, last, last + 1, last + 1


# -- CREATE ---------------------------------------------------------------------------
def _create(stmt: Statement, catalog: Catalog) -> Translation | None:
    tokens = stmt.tokens
    words = [t.text.upper() for t in tokens[:6]]
    if "SEQUENCE" in words[:4]:
        return _create_sequence(stmt)
    if "TABLE" not in words[:4]:
        return None
    if not any(t.text.lower() in SERIALS or t.text.upper() == "IDENTITY" for t in tokens):
        return None
    temp = bool({"TEMP", "TEMPORARY"} & set(words[:4]))
    i = words.index("TABLE") + 1
    if_not_exists = [t.text.upper() for t in tokens[i:i + 3]] == ["IF", "NOT", "EXISTS"]
    if if_not_exists:
        i += 3
    table = _qualified_name(tokens, i)
    if table is None or table.end + 1 >= len(tokens) or \
            tokens[table.end + 1].token_type is not TokenType.L_PAREN:
        return None
    open_ = table.end + 1
    close = closing_paren(tokens, open_)
    if close is None:
        return None
    if if_not_exists and catalog.table_exists(table.schema, table.name):
        return Translation((), "CREATE TABLE",
                           (f'relation "{table.name}" already exists, skipping',))
    edits: list[Edit] = []
    autos: list[_AutoColumn] = []
    taken: set[str] = set()
    for start, end in _elements(tokens, open_ + 1, close):
        element = tokens[start:end]
        if len(element) < 2 or element[0].text.upper().split()[0] in _TABLE_CONSTRAINTS:
            continue
        found = _auto_column_edit(catalog, table, element, temp, taken, not_null=True)
        if found is not None:
            edits.append(found[0])
            autos.append(found[1])
    if not autos:
        return None
    statements = [a.create for a in autos]
    statements.append(_apply(stmt, edits))
    statements.extend(_comment(a.sequence, Owner(table.name, a.column, a.identity))
                      for a in autos)
    return Translation(tuple(statements), "CREATE TABLE")


def _auto_column_edit(catalog: Catalog, table: _QName, element: Sequence[Token], temp: bool,
                      taken: set[str], not_null: bool) -> tuple[Edit, _AutoColumn] | None:
    """A column definition (name, type, constraints) with a serial type or an identity:
    the edit that gives it its sequence's default, and the sequence."""
    column = _name_of(element[0])
    type_tok = element[1]
    constraint = " NOT NULL" if not_null else ""
    serial = SERIALS.get(type_tok.text.lower())
    if serial is not None and (len(element) == 2 or
                               element[2].token_type is not TokenType.DOT):
        auto = _auto_column(catalog, table, column, serial, None, (), temp, taken)
        return (type_tok.start, type_tok.end, f"{serial}{constraint} {auto.default}"), auto
    for k in range(2, len(element)):
        span = _identity_span(element, k)
        if span is not None:
            kind, last, o_start, o_end = span
            auto = _auto_column(catalog, table, column, type_tok.text, kind,
                                element[o_start:o_end], temp, taken)
            return (element[k].start, element[last].end,
                    f"{constraint.strip()} {auto.default}".strip()), auto
    return None


def _elements(tokens: Sequence[Token], start: int, end: int) -> list[tuple[int, int]]:
    """Comma-separated elements of tokens[start:end] at depth 0, as index ranges."""
    return top_level_items(tokens, start, end)


def _create_sequence(stmt: Statement) -> Translation | None:
    tokens = stmt.tokens
    words = [t.text.upper() for t in tokens]
    k = words.index("SEQUENCE")
    if not {"AS", "CACHE", "OWNED"} & set(words[k:]):
        return None   # DuckDB takes it as written
    i = k + 1
    if words[i:i + 3] == ["IF", "NOT", "EXISTS"]:
        i += 3
    name = _qualified_name(tokens, i)
    if name is None:
        return None
    opts = _sequence_options(tokens[name.end + 1:])
    head = _between(stmt, tokens[0], tokens[name.end])
    statements = [f"{head} {opts.sql()}".rstrip()]
    if opts.owned_by is not None:
        statements.append(_comment(name.sql, Owner(*opts.owned_by)))
    return Translation(tuple(statements), "CREATE SEQUENCE")


# -- ALTER -----------------------------------------------------------------------------
def _alter_sequence(stmt: Statement, catalog: Catalog) -> Translation | None:
    tokens = stmt.tokens
    i = 2
    if [t.text.upper() for t in tokens[2:4]] == ["IF", "EXISTS"]:
        i = 4
    name = _qualified_name(tokens, i)
    if name is None:
        return None
    if [t.text.upper() for t in tokens[name.end + 1:name.end + 3]] != ["OWNED", "BY"]:
        return _restart_sequence(stmt, catalog, name)
    opts = _sequence_options(tokens[name.end + 1:])
    owner = None if opts.owned_none or opts.owned_by is None else Owner(*opts.owned_by)
    return Translation((_comment(name.sql, owner),), "ALTER SEQUENCE")


def _alter_table(stmt: Statement, catalog: Catalog) -> Translation | None:
    tokens = stmt.tokens
    i = 2
    if [t.text.upper() for t in tokens[2:4]] == ["IF", "EXISTS"]:
        i = 4
    table = _qualified_name(tokens, i)
    if table is None:
        return None
    rest = tokens[table.end + 1:]
    words = [t.text.upper() for t in rest]
    change = rebuild.change_of(words, rest)
    if change is not None:   # DuckDB refuses it on a table with indexes or referenced
        dependents = catalog.dependents(table.schema, table.name)
        if dependents:
            rebuilt = rebuild.statements(table.schema or catalog.current_schema(), stmt.text,
                                         dependents, change)
            if rebuilt is not None:
                return Translation(rebuilt, "ALTER TABLE")
        return None
    # ADD [CONSTRAINT name] FOREIGN KEY ...
    if words[:1] == ["ADD"]:
        j = 1
        constraint = ""
        if words[1:2] == ["CONSTRAINT"] and len(rest) > 2:
            constraint = f' "{_name_of(rest[2])}"'
            j = 3
        if words[j:j + 1] == ["FOREIGN KEY"] or words[j:j + 2] == ["FOREIGN", "KEY"]:
            return Translation((), "ALTER TABLE", (
                f"foreign key constraint{constraint} on \"{table.name}\" is not enforced: "
                "DuckDB cannot add a foreign key to an existing table (declare it in "
                "CREATE TABLE to have it checked)",))
        return _add_column(stmt, catalog, table, rest)
    # ALTER [COLUMN] c ADD GENERATED ... AS IDENTITY [( options )]
    if words[:1] != ["ALTER"]:
        return None
    j = 2 if words[1:2] == ["COLUMN"] else 1
    if j + 1 >= len(rest) or words[j + 1] != "ADD":
        return None
    span = _identity_span(rest, j + 2)
    if span is None:
        return None
    kind, _, o_start, o_end = span
    column = _name_of(rest[j])
    type_name = catalog.column_type(table.schema, table.name, column) or "bigint"
    auto = _auto_column(catalog, table, column, type_name, kind, rest[o_start:o_end],
                        False, set())
    return Translation((auto.create,
                        f"ALTER TABLE {table.sql} ALTER COLUMN {_ident(column)} SET "
                        + auto.default.removesuffix(" NOT NULL"),
                        _comment(auto.sequence, Owner(table.name, column, kind))),
                       "ALTER TABLE")


def _add_column(stmt: Statement, catalog: Catalog, table: _QName,
                rest: Sequence[Token]) -> Translation | None:
    """``ADD [COLUMN] [IF NOT EXISTS] c serial | c type GENERATED ... AS IDENTITY``: the
    existing rows get values from the new sequence. DuckDB cannot add NOT NULL in the
    transaction that filled the column: the column is left nullable."""
    words = [t.text.upper() for t in rest[:5]]
    j = 2 if words[1:2] == ["COLUMN"] else 1
    if words[j:j + 3] == ["IF", "NOT", "EXISTS"]:
        j += 3
    element = rest[j:]
    if len(element) < 2:
        return None
    found = _auto_column_edit(catalog, table, element, False, set(), not_null=False)
    if found is None:
        return None
    edit, auto = found
    return Translation((auto.create, _apply(stmt, [edit]),
                        _comment(auto.sequence, Owner(table.name, auto.column, auto.identity))),
                       "ALTER TABLE")


# -- TRUNCATE ... RESTART IDENTITY, ALTER SEQUENCE ... RESTART ---------------------------
_TRUNCATE_OPTIONS = {"RESTART", "CONTINUE", "IDENTITY", "CASCADE", "RESTRICT"}


def _truncate(stmt: Statement, catalog: Catalog) -> Translation | None:
    """TRUNCATE with PostgreSQL's options (DuckDB takes none); RESTART IDENTITY sets the
    sequences the tables own back to their start."""
    tokens = stmt.tokens
    several = multi.split_objects(stmt)
    if several is not None:
        texts = several.statements
    else:
        i = 1
        while i < len(tokens) and tokens[i].text.upper() in ("TABLE", "ONLY"):
            i += 1
        name = _qualified_name(tokens, i)
        if name is None:
            return None
        if any(t.text.upper() not in _TRUNCATE_OPTIONS for t in tokens[name.end + 1:]):
            return None   # DuckDB says what it does not take
        texts = (f"TRUNCATE {_between(stmt, tokens[i], tokens[name.end])}",)
    statements = list(texts)
    if any(t.text.upper() == "RESTART" for t in tokens):
        owned = catalog.owned_sequences()
        for text in texts:
            table = _qualified_name(split(text)[0].tokens, 1)
            statements.extend(
                f"SELECT setval({_literal(_sequence_reference(seq))}, {seq.start}, false)"
                for seq in owned if table is not None and _owns(table, seq, catalog))
    return Translation(tuple(statements), "TRUNCATE TABLE")


def _owns(table: _QName, seq: OwnedSequence, catalog: Catalog) -> bool:
    """Whether the sequence belongs to the table (an unqualified name is in the current
    schema; PostgreSQL's public is DuckDB's main)."""
    if seq.owner.table.lower() != table.name.lower():
        return False
    schema = (table.schema or catalog.current_schema()).lower()
    return ("main" if schema == "public" else schema) == seq.schema.lower()


def _sequence_reference(seq: OwnedSequence) -> str:
    """A sequence's name as nextval()/setval() take it."""
    where = "temp." if seq.database == "temp" else ""
    return f"{where}{_ident(seq.schema)}.{_ident(seq.name)}"


def _restart_sequence(stmt: Statement, catalog: Catalog, name: _QName) -> Translation | None:
    """``ALTER SEQUENCE s RESTART [[WITH] n]`` (DuckDB's ALTER SEQUENCE cannot)."""
    rest = [t.text.upper() for t in stmt.tokens[name.end + 1:]]
    if rest[:1] != ["RESTART"]:
        return None
    value = rest[2:] if rest[1:2] == ["WITH"] else rest[1:]
    if value:
        start, end = _number(stmt.tokens[name.end + 1:], len(rest) - len(value))
        if end != len(rest):
            return None
    else:
        found = catalog.sequence_start(name.schema, name.name)
        if found is None:
            raise ServerError(f'relation "{name.name}" does not exist', sqlstate="42P01")
        start = str(found)
    return Translation((f"SELECT setval({_literal(name.sql)}, {start}, false)",),
                       "ALTER SEQUENCE")


# -- DROP TABLE ------------------------------------------------------------------------
def _drop_table(stmt: Statement, catalog: Catalog) -> Translation | None:
    owned = catalog.owned_sequences()
    if not owned:
        return None
    several = multi.split_objects(stmt)
    texts = several.statements if several is not None else (stmt.text,)
    statements: list[str] = []
    optional: set[int] = set()
    for text in texts:
        statements.append(text)
        tokens = split(text)[0].tokens
        i = 4 if [t.text.upper() for t in tokens[2:4]] == ["IF", "EXISTS"] else 2
        table = _qualified_name(tokens, i)
        if table is None:
            continue
        for seq in owned:
            if _owns(table, seq, catalog):
                optional.add(len(statements))
                statements.append(f"DROP SEQUENCE IF EXISTS {_sequence_reference(seq)}")
    if not optional:
        return None
    return Translation(tuple(statements), "DROP TABLE", optional=frozenset(optional))


# -- INSERT into GENERATED ALWAYS identity columns -------------------------------------
def check_insert(stmt: Statement, catalog: Catalog) -> None:
    """428C9 for an INSERT that gives a GENERATED ALWAYS identity column a value."""
    always = [s for s in catalog.owned_sequences() if s.owner.identity == "always"]
    if not always:
        return
    tokens = stmt.tokens
    if stmt.words(2) != ("INSERT", "INTO"):
        return
    table = _qualified_name(tokens, 2)
    if table is None:
        return
    columns = [s.owner.column for s in always if _owns(table, s, catalog)]
    if not columns:
        return
    words = [t.text.upper() for t in tokens]
    if "OVERRIDING" in words and words[words.index("OVERRIDING") + 1:][:1] == ["SYSTEM"]:
        return
    i = table.end + 1
    if i < len(tokens) and words[i] == "AS":
        i += 2
    elif i < len(tokens) and tokens[i].token_type in (TokenType.VAR, TokenType.IDENTIFIER) \
            and words[i] not in ("VALUES", "SELECT", "DEFAULT", "OVERRIDING", "WITH"):
        i += 1   # an alias
    named: list[str] | None = None
    if i < len(tokens) and tokens[i].token_type is TokenType.L_PAREN:
        close = closing_paren(tokens, i)
        if close is not None and words[i + 1] not in ("SELECT", "WITH", "VALUES"):
            named = [_name_of(tokens[a]) for a, _ in _elements(tokens, i + 1, close)]
            i = close + 1
    if i < len(tokens) and words[i] == "DEFAULT":
        return   # DEFAULT VALUES
    for column in columns:
        position = None
        if named is not None:
            lowered = [c.lower() for c in named]
            if column.lower() not in lowered:
                continue
            position = lowered.index(column.lower())
        if _values_all_default(tokens, words, i, position, catalog, table, column):
            continue
        raise GeneratedAlways(
            f'cannot insert a non-DEFAULT value into column "{column}"',
            detail=f'Column "{column}" is an identity column defined as GENERATED ALWAYS.',
            hint="Use OVERRIDING SYSTEM VALUE to override.")


def check_update(stmt: Statement, catalog: Catalog) -> None:
    """428C9 for an UPDATE that sets a GENERATED ALWAYS identity column to a value."""
    always = [s for s in catalog.owned_sequences() if s.owner.identity == "always"]
    if not always:
        return
    tokens = stmt.tokens
    i = 2 if len(tokens) > 1 and tokens[1].text.upper() == "ONLY" else 1
    table = _qualified_name(tokens, i)
    if table is None:
        return
    columns = {s.owner.column.lower() for s in always if _owns(table, s, catalog)}
    if not columns:
        return
    words = [t.text.upper() for t in tokens]
    if "SET" not in words:
        return
    start = words.index("SET") + 1
    end = next((k for k in range(start, len(tokens)) if words[k] in ("FROM", "WHERE",
                                                                       "RETURNING")),
               len(tokens))
    for a, b in _elements(tokens, start, end):
        item = tokens[a:b]
        if len(item) >= 3 and item[1].token_type is TokenType.EQ and \
                _name_of(item[0]).lower() in columns and \
                not (len(item) == 3 and item[2].text.upper() == "DEFAULT"):
            column = _name_of(item[0])
            raise GeneratedAlways(
                f'column "{column}" can only be updated to DEFAULT',
                detail=f'Column "{column}" is an identity column defined as GENERATED '
                       "ALWAYS.")


def _values_all_default(tokens: Sequence[Token], words: Sequence[str], i: int,
                        position: int | None, catalog: Catalog, table: _QName,
                        column: str) -> bool:
    """Whether every VALUES row gives the column DEFAULT (position None: the column's
    place in the table, which the rows fill in order)."""
    if i >= len(tokens) or words[i] != "VALUES":
        return False
    if position is None:
        position = catalog.column_position(table.schema, table.name, column)
        if position is None:
            return False
    j = i + 1
    while j < len(tokens) and tokens[j].token_type is TokenType.L_PAREN:
        close = closing_paren(tuple(tokens), j)
        if close is None:
            return False
        items = _elements(tokens, j + 1, close)
        if position >= len(items):
            return False
        a, b = items[position]
        if b - a != 1 or words[a] != "DEFAULT":
            return False
        j = close + 1
        if j < len(tokens) and tokens[j].token_type is TokenType.COMMA:
            j += 1
        else:
            break
    return True


# -- PREPARE name (types) AS ---------------------------------------------------------
def _prepare(stmt: Statement) -> Translation | None:
    tokens = stmt.tokens
    if len(tokens) < 4 or tokens[2].token_type is not TokenType.L_PAREN:
        return None
    close = closing_paren(tokens, 2)
    if close is None or close + 1 >= len(tokens) or tokens[close + 1].text.upper() != "AS":
        return None
    types = [_between(stmt, tokens[a], tokens[b - 1])
             for a, b in _elements(tokens, 3, close) if b > a]
    body = tokens[close + 2:]
    edits: list[Edit] = [(tokens[2].start, tokens[close].end, "")]
    for k, tok in enumerate(body[:-1]):
        nxt = body[k + 1]
        if tok.token_type is TokenType.PARAMETER and nxt.token_type is TokenType.NUMBER \
                and nxt.start == tok.end + 1:
            n = int(nxt.text)
            if 1 <= n <= len(types):
                edits.append((tok.start, nxt.end, f"CAST(${n} AS {types[n - 1]})"))
    return Translation((_apply(stmt, edits),), None)


# -- the database, as the translation asks it -------------------------------------------
class DuckDBCatalog:
    """``Catalog`` over a session's DuckDB cursor; the owned sequences are read once per
    DDL generation (``generation()``)."""

    def __init__(self, cursor: duckdb.DuckDBPyConnection, generation: Callable[[], object]):
        self._cursor = cursor
        self._generation = generation
        self._owned: tuple[object, tuple[OwnedSequence, ...]] | None = None

    def current_schema(self) -> str:
        rows = self._cursor.execute("SELECT current_schema()").fetchall()
        return str(rows[0][0]) if rows else "main"

    def _schema(self, schema: str | None) -> str:
        return schema if schema is not None else self.current_schema()

    def sequence_exists(self, schema: str | None, name: str) -> bool:
        rows = self._cursor.execute(
            "SELECT count(*) FROM duckdb_sequences() WHERE database_name = current_database() "
            "AND lower(schema_name) = lower(?) AND lower(sequence_name) = lower(?)",
            [self._schema(schema), name]).fetchall()
        return bool(rows[0][0])

    def sequence_start(self, schema: str | None, name: str) -> int | None:
        rows = self._cursor.execute(
            "SELECT start_value FROM duckdb_sequences() WHERE database_name IN "
            "(current_database(), 'temp') AND lower(schema_name) = lower(?) "
            "AND lower(sequence_name) = lower(?) ORDER BY database_name = 'temp' DESC",
            [self._schema(schema), name]).fetchall()
        return int(str(rows[0][0])) if rows else None

    def table_exists(self, schema: str | None, name: str) -> bool:
        rows = self._cursor.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database() "
            "AND lower(schema_name) = lower(?) AND lower(table_name) = lower(?)",
            [self._schema(schema), name]).fetchall()
        return bool(rows[0][0])

    def owned_sequences(self) -> Sequence[OwnedSequence]:
        generation = self._generation()
        if self._owned is not None and self._owned[0] == generation:
            return self._owned[1]
        # a marker counts where the column it names takes its default from the sequence:
        # the table's owner chose that (anyone may write any comment on a sequence of theirs)
        rows = self._cursor.execute(
            "SELECT s.schema_name, s.sequence_name, s.comment, s.database_name, s.start_value "
            "FROM duckdb_sequences() s WHERE s.database_name IN (current_database(), 'temp') "
            "AND s.comment LIKE ? AND EXISTS ("
            "SELECT 1 FROM duckdb_columns() c WHERE c.database_name = s.database_name "
            "AND c.schema_name = s.schema_name AND lower(c.table_name) = "
            f"lower(json_extract_string(s.comment, '$.{_MARKER_KEY}[0]')) "
            "AND lower(c.column_name) = "
            f"lower(json_extract_string(s.comment, '$.{_MARKER_KEY}[1]')) "
            f"AND {sequences.default_uses('c.column_default', 's.sequence_name')})",
            ['{"' + _MARKER_KEY + '%']).fetchall()
        owned = tuple(OwnedSequence(str(s), str(n), o, str(d), int(str(v)))
                      for s, n, c, d, v in rows if (o := read_marker(c)) is not None)
        self._owned = (generation, owned)
        return owned

    def _column(self, schema: str | None, table: str, column: str) -> tuple[object, ...] | None:
        # fetchall: a result left unread blocks the session's next statement
        rows = self._cursor.execute(
            "SELECT data_type, column_index FROM duckdb_columns() "
            "WHERE database_name = current_database() AND lower(schema_name) = lower(?) "
            "AND lower(table_name) = lower(?) AND lower(column_name) = lower(?)",
            [self._schema(schema), table, column]).fetchall()
        return tuple(rows[0]) if rows else None

    def column_type(self, schema: str | None, table: str, column: str) -> str | None:
        row = self._column(schema, table, column)
        return None if row is None else str(row[0]).lower()

    def column_position(self, schema: str | None, table: str, column: str) -> int | None:
        row = self._column(schema, table, column)
        return None if row is None else int(str(row[1])) - 1

    def _indexes(self, schema: str, table: str) -> tuple[rebuild.Index, ...]:
        rows = self._cursor.execute(
            "SELECT index_name, sql, comment FROM duckdb_indexes() WHERE database_name = "
            "current_database() AND lower(schema_name) = lower(?) AND lower(table_name) = "
            "lower(?) AND sql IS NOT NULL ORDER BY index_oid", [schema, table]).fetchall()
        return tuple(rebuild.Index(str(n), str(s), None if c is None else str(c))
                     for n, s, c in rows)

    def _referencing(self, schema: str, table: str) -> list[tuple[str, str]]:
        rows = self._cursor.execute(
            "SELECT DISTINCT schema_name, table_name FROM duckdb_constraints() "
            "WHERE constraint_type = 'FOREIGN KEY' AND database_name = current_database() "
            "AND lower(schema_name) = lower(?) AND lower(referenced_table) = lower(?) "
            "ORDER BY ALL", [schema, table]).fetchall()
        return [(str(s), str(t)) for s, t in rows]

    def dependents(self, schema: str | None, table: str) -> rebuild.Dependents:
        schema = self._schema(schema)
        referencing = []
        for s, t in self._referencing(schema, table):
            if t.lower() == table.lower():
                return rebuild.Dependents((), (rebuild.Referencing(
                    s, t, "", None, (), (), True),))   # references itself
            ((sql, comment),) = self._cursor.execute(
                "SELECT sql, comment FROM duckdb_tables() WHERE database_name = "
                "current_database() AND schema_name = ? AND table_name = ?", [s, t]).fetchall()
            columns = self._cursor.execute(
                "SELECT column_name, comment FROM duckdb_columns() WHERE database_name = "
                "current_database() AND schema_name = ? AND table_name = ? AND comment IS NOT "
                "NULL ORDER BY column_index", [s, t]).fetchall()
            referencing.append(rebuild.Referencing(
                s, t, str(sql), None if comment is None else str(comment),
                tuple((str(c), str(x)) for c, x in columns), self._indexes(s, t),
                bool(self._referencing(s, t))))
        return rebuild.Dependents(self._indexes(schema, table), tuple(referencing))

