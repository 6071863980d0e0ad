"""SET / SHOW / RESET of PostgreSQL client parameters, read from tokens.

Clients set parameters DuckDB does not have (``DateStyle``,
``extra_float_digits``, ``application_name`` ...) and read them back with
SHOW or ``current_setting``. ``parse`` recognises those statements by their
tokens and returns a typed action for the session; a statement about any
other parameter returns None and goes to DuckDB as written (DuckDB's own
settings, such as ``threads``, keep working). Which names are client
parameters is the caller's (``server.postgres.catalog.CLIENT_PARAMS``): this module
only reads tokens.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from sqlglot.tokens import TokenType

from server.errors import InvalidParameterValue
from server.sql.text import Statement

_ALIASES = {"time zone": "timezone", "names": "client_encoding",
            "transaction isolation level": "transaction_isolation",
            "session authorization": "session_authorization"}


_TRANSACTION_FORMS = (
    (("session", "characteristics", "as", "transaction", "isolation", "level"),
     "default_transaction_isolation"),
    (("characteristics", "as", "transaction", "isolation", "level"),
     "default_transaction_isolation"),
    (("transaction", "isolation", "level"), "transaction_isolation"),
    (("transaction", "read"), "transaction_read_only"),
)


@dataclass(frozen=True)
class SetParam:
    name: str            # lower-case PostgreSQL name
    value: str | None    # None: back to the default (SET x TO DEFAULT)


@dataclass(frozen=True)
class ShowParam:
    name: str            # lower-case; "all" for SHOW ALL


@dataclass(frozen=True)
class ResetParam:
    name: str            # lower-case; "all" for RESET ALL


ParamAction = SetParam | ShowParam | ResetParam


def _words(stmt: Statement) -> tuple[str, list[str], int] | None:
    """SET/SHOW/RESET, the lower-case words of the name and the index after them."""
    tokens = stmt.tokens
    if not tokens:
        return None
    verb = tokens[0].text.upper()
    if verb not in ("SET", "SHOW", "RESET"):
        return None
    i = 1
    if verb == "SET" and i < len(tokens) and tokens[i].text.upper() in ("SESSION", "LOCAL"):
        i += 1
        if i < len(tokens) and tokens[i].text.upper() == "AUTHORIZATION":
            i -= 1
    words: list[str] = []
    while i < len(tokens) and tokens[i].text.upper() not in ("TO", "=") and \
            tokens[i].token_type is not TokenType.EQ and \
            tokens[i].token_type is not TokenType.STRING:
        words.append(tokens[i].text.lower())
        i += 1
    return verb, words, i


def setting_name(stmt: Statement, client_params: Collection[str]) -> tuple[str, str] | None:
    """(verb, name) of a SET / RESET / SHOW of one setting that is not a client parameter
    (DuckDB's own, or none at all); None for other statements, for DuckDB's
    ``SET VARIABLE`` / ``SET GLOBAL`` and for PostgreSQL's dotted custom names."""
    found = _words(stmt)
    if found is None or parse(stmt, client_params) is not None:
        return None
    verb, words, _ = found
    if len(words) != 1 or "." in words[0] or words[0] in ("all", "tables", "databases"):
        return None
    return verb, words[0].strip('"')


def parse(stmt: Statement, client_params: Collection[str]) -> ParamAction | None:
    """The SET/SHOW/RESET of one of ``client_params`` (lower-case names) that
    ``stmt`` is, else None."""
    found = _words(stmt)
    if found is None:
        return None
    verb, words, i = found
    tokens = stmt.tokens
    if verb == "SET":
        # SET [SESSION CHARACTERISTICS AS] TRANSACTION ISOLATION LEVEL x | READ ONLY/WRITE:
        # the level is recorded; DuckDB gives every transaction snapshot isolation
        for prefix, param in _TRANSACTION_FORMS:
            if words[:len(prefix)] == list(prefix) and len(words) > len(prefix):
                value = " ".join(words[len(prefix):])
                if param == "transaction_read_only":
                    value = "on" if value == "only" else "off"
                return SetParam(param, value)
    name = " ".join(words)
    name = _ALIASES.get(name, name)
    if verb == "SHOW":
        return ShowParam(name) if (name in client_params or name == "all") \
            and i == len(tokens) else None
    if verb == "RESET":
        return ResetParam(name) if name in client_params or name == "all" else None
    if name not in client_params:
        return None
    if i < len(tokens) and tokens[i].token_type is not TokenType.STRING:
        i += 1  # TO or =
    groups: list[str] = [""]
    for tok in tokens[i:]:
        if tok.token_type is TokenType.COMMA:
            groups.append("")
        else:
            groups[-1] += tok.text
    if i >= len(tokens):   # (an empty string '' is a value: SET default_tablespace = '')
        raise InvalidParameterValue(f"SET {name} needs a value", sqlstate="42601")
    if len(groups) == 1 and tokens[i].token_type is not TokenType.STRING and \
            groups[0].upper() in ("DEFAULT", "LOCAL"):
        return SetParam(name, None)
    return SetParam(name, ", ".join(groups))
