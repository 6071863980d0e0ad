"""The ML statement grammar: a recursive-descent parser over sqlglot tokens.

Recognises CREATE [OR REPLACE] MODEL, SHOW MODEL, DROP MODEL [VERSION n],
ALTER MODEL ... ROLLBACK/RETRAIN, EVALUATE MODEL, EXPORT MODEL and EXPLAIN
CREATE MODEL (see docs/sql.md). Anything else is not an ML statement and goes to DuckDB as
written. Errors are ``SyntaxError_`` (42601) or ``InvalidParameterValue``
(22023) with the 1-based character position in the query string. Keywords
are case-insensitive; clauses may come in any order but each at most once.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlglot.tokens import Token, TokenType

from catalog.spec import ProblemType, Settings
from server.errors import InvalidParameterValue, SyntaxError_
from server.sql.text import Statement


@dataclass(frozen=True)
class QualifiedName:
    schema: str | None
    name: str

    def __str__(self) -> str:
        return f"{self.schema}.{self.name}" if self.schema else self.name


@dataclass(frozen=True)
class CreateModel:
    name: QualifiedName
    or_replace: bool
    source_query: str | None
    source_table: QualifiedName | None
    source_file: str | None
    target: str | None
    function: QualifiedName
    function_arg_types: tuple[str, ...] | None
    returns: str | None
    sagemaker: str | None
    iam_role: str | None
    settings: Settings
    auto: bool | None
    model_type: str | None
    problem_type: ProblemType | None
    objective: str | None
    preprocessors: str | None
    hyperparameters: tuple[tuple[str, str], ...] | None
    text: str = field(repr=False, default="")


@dataclass(frozen=True)
class ShowModel:
    name: QualifiedName | None  # None: SHOW MODEL ALL


@dataclass(frozen=True)
class DropModel:
    name: QualifiedName
    if_exists: bool
    version: int | None = None   # DROP MODEL m VERSION n: one inactive version


@dataclass(frozen=True)
class RollbackModel:
    """ALTER MODEL m ROLLBACK [TO VERSION n] (None: the version active before)."""
    name: QualifiedName
    version: int | None


@dataclass(frozen=True)
class RetrainModel:
    """ALTER MODEL m RETRAIN [ONLY IF BETTER]."""
    name: QualifiedName
    only_if_better: bool


class EvaluateOutput:
    METRICS = "metrics"
    CONFUSION_MATRIX = "confusion matrix"
    ROC_CURVE = "roc curve"


@dataclass(frozen=True)
class EvaluateModel:
    """EVALUATE MODEL m [ON (query)] [WITH THRESHOLD x] [CONFUSION MATRIX | ROC CURVE]."""
    name: QualifiedName
    query: str | None
    threshold: float | None
    output: str = EvaluateOutput.METRICS


@dataclass(frozen=True)
class ExportModel:
    """EXPORT MODEL m [VERSION n] FORMAT { ONNX | MLFLOW | NATIVE }."""
    name: QualifiedName
    version: int | None
    format: str


@dataclass(frozen=True)
class ExplainCreateModel:
    """EXPLAIN CREATE MODEL ...: the plan, nothing trained."""
    create: CreateModel


MLStatement = (CreateModel | ShowModel | DropModel | RollbackModel | RetrainModel
               | EvaluateModel | ExportModel | ExplainCreateModel)
EXPORT_FORMATS = ("ONNX", "MLFLOW", "NATIVE")

MODEL_TYPES = ("XGBOOST", "MLP", "LINEAR_LEARNER", "KMEANS", "FORECAST")
_PROBLEM_TYPES = {p.value: p for p in ProblemType}


_MODEL_VERBS = (("CREATE", "MODEL"), ("SHOW", "MODEL"), ("DROP", "MODEL"), ("ALTER", "MODEL"),
                ("EVALUATE", "MODEL"), ("EXPORT", "MODEL"))


def is_ml_statement(stmt: Statement) -> bool:
    w = stmt.words(5)
    if w[:1] == ("EXPLAIN",):
        w = w[1:]
    if w[:2] in _MODEL_VERBS:
        return True
    return w[:4] == ("CREATE", "OR", "REPLACE", "MODEL")


def parse(stmt: Statement) -> MLStatement:
    """Parse an ML statement (``is_ml_statement(stmt)`` must be true)."""
    return _Parser(stmt).statement()


class _Parser:
    def __init__(self, stmt: Statement):
        self.stmt = stmt
        self.tokens = stmt.tokens
        self.i = 0

    # -- token helpers -------------------------------------------------
    def peek(self, k: int = 0) -> Token | None:
        j = self.i + k
        return self.tokens[j] if j < len(self.tokens) else None

    def word(self, k: int = 0) -> str | None:
        t = self.peek(k)
        return t.text.upper() if t is not None and t.token_type not in _LITERALS else None

    def at(self, *words: str) -> bool:
        return all(self.word(k) == w for k, w in enumerate(words))

    def accept(self, *words: str) -> bool:
        if self.at(*words):
            self.i += len(words)
            return True
        return False

    def error(self, message: str, tok: Token | None = None, cls: type = SyntaxError_) -> Exception:
        tok = tok if tok is not None else self.peek()
        if tok is None:
            end = self.stmt.offset + len(self.stmt.text)
            return cls(f"{message} at end of input", position=end + 1)
        return cls(f'{message} at or near "{tok.text}"', position=tok.start + 1)

    def expect(self, *words: str) -> None:
        for w in words:
            if self.word() != w:
                raise self.error(f"syntax error: expected {w}")
            self.i += 1

    def expect_type(self, ttype: TokenType, what: str) -> Token:
        t = self.peek()
        if t is None or t.token_type is not ttype:
            raise self.error(f"syntax error: expected {what}")
        self.i += 1
        return t

    def identifier(self, what: str) -> str:
        t = self.peek()
        if t is None or t.token_type in _NOT_NAMES:
            raise self.error(f"syntax error: expected {what}")
        self.i += 1
        return t.text if t.token_type is TokenType.IDENTIFIER else t.text.lower()

    def qualified(self, what: str) -> QualifiedName:
        first = self.identifier(what)
        if self.peek() is not None and self.peek().token_type is TokenType.DOT:  # type: ignore[union-attr]
            self.i += 1
            return QualifiedName(first, self.identifier(what))
        return QualifiedName(None, first)

    def string(self, what: str) -> str:
        t = self.peek()
        if t is None or t.token_type not in (TokenType.STRING, TokenType.HEREDOC_STRING):
            raise self.error(f"syntax error: expected {what} as a quoted string")
        self.i += 1
        return t.text

    def scalar(self, what: str) -> tuple[str, Token]:
        """A setting value: a number, a quoted string or a bare word."""
        t = self.peek()
        if t is None or t.token_type in (TokenType.COMMA, TokenType.R_PAREN, TokenType.L_PAREN):
            raise self.error(f"syntax error: expected a value for {what}")
        self.i += 1
        if t.token_type is TokenType.DASH:
            n = self.expect_type(TokenType.NUMBER, "a number")
            return "-" + n.text, t
        return t.text, t

    def end(self) -> None:
        if self.peek() is not None:
            raise self.error("syntax error: unexpected token")

    # -- statements ----------------------------------------------------
    def statement(self) -> MLStatement:
        if self.accept("SHOW", "MODEL"):
            if self.accept("ALL"):
                self.end()
                return ShowModel(None)
            name = self.qualified("a model name")
            self.end()
            return ShowModel(name)
        if self.accept("DROP", "MODEL"):
            if_exists = self.accept("IF", "EXISTS")
            name = self.qualified("a model name")
            version = self.version_number() if self.accept("VERSION") else None
            self.end()
            return DropModel(name, if_exists, version)
        if self.accept("ALTER", "MODEL"):
            return self.alter_model()
        if self.accept("EVALUATE", "MODEL"):
            return self.evaluate_model()
        if self.accept("EXPORT", "MODEL"):
            return self.export_model()
        if self.accept("EXPLAIN"):
            return ExplainCreateModel(self.create_statement())
        return self.create_statement()

    def create_statement(self) -> CreateModel:
        or_replace = self.accept("CREATE", "OR", "REPLACE", "MODEL")
        if not or_replace:
            self.expect("CREATE", "MODEL")
        return self.create_model(or_replace)

    def version_number(self) -> int:
        text, tok = self.scalar("a version number")
        if not text.isdigit() or int(text) < 1:
            raise self.error("syntax error: a version number is a positive integer", tok)
        return int(text)

    def alter_model(self) -> RollbackModel | RetrainModel:
        name = self.qualified("a model name")
        if self.accept("ROLLBACK"):
            version = None
            if self.accept("TO"):
                self.expect("VERSION")
                version = self.version_number()
            self.end()
            return RollbackModel(name, version)
        if self.accept("RETRAIN"):
            better = self.accept("ONLY", "IF", "BETTER")
            self.end()
            return RetrainModel(name, better)
        raise self.error("syntax error: ALTER MODEL takes ROLLBACK [TO VERSION n] or "
                         "RETRAIN [ONLY IF BETTER]")

    def evaluate_model(self) -> EvaluateModel:
        name = self.qualified("a model name")
        query = threshold = None
        if self.accept("ON"):
            query = self.parenthesised_text()
        if self.accept("WITH", "THRESHOLD"):
            text, tok = self.scalar("a threshold")
            try:
                threshold = float(text)
            except ValueError:
                raise self.error("syntax error: THRESHOLD takes a number", tok) from None
            if not 0.0 <= threshold <= 1.0:
                raise self.error("THRESHOLD must be between 0 and 1", tok,
                                 InvalidParameterValue)
        output = EvaluateOutput.METRICS
        if self.accept("CONFUSION", "MATRIX"):
            output = EvaluateOutput.CONFUSION_MATRIX
        elif self.accept("ROC", "CURVE"):
            output = EvaluateOutput.ROC_CURVE
        self.end()
        return EvaluateModel(name, query, threshold, output)

    def export_model(self) -> ExportModel:
        name = self.qualified("a model name")
        version = self.version_number() if self.accept("VERSION") else None
        self.expect("FORMAT")
        fmt = self.word()
        if fmt not in EXPORT_FORMATS:
            raise self.error("syntax error: FORMAT takes " + ", ".join(EXPORT_FORMATS))
        self.i += 1
        self.end()
        return ExportModel(name, version, fmt)

    def create_model(self, or_replace: bool) -> CreateModel:
        name = self.qualified("a model name")
        c: dict[str, object] = {}
        seen: dict[str, Token] = {}
        while self.peek() is not None:
            tok = self.peek()
            assert tok is not None
            clause = self.word()
            if clause not in _CLAUSES:
                raise self.error("syntax error: unexpected token in CREATE MODEL")
            if clause in seen:
                raise self.error(f"syntax error: {clause} given twice")
            seen[clause] = tok
            self.i += 1
            getattr(self, "clause_" + clause.lower())(c)
        if "FUNCTION" not in c and str(c.get("MODEL_TYPE", "")).upper() == "FORECAST":
            # Redshift's FORECAST models have no FUNCTION: SELECT FORECAST(model) reads them
            c["FUNCTION"] = name
        if "FUNCTION" not in c:
            raise self.error("syntax error: CREATE MODEL needs a FUNCTION clause", None)
        if "FROM" not in c and "SAGEMAKER" not in c:
            raise self.error("syntax error: CREATE MODEL needs a FROM clause", None)
        return CreateModel(
            name=name, or_replace=or_replace,
            source_query=c.get("source_query"),  # type: ignore[arg-type]
            source_table=c.get("source_table"),  # type: ignore[arg-type]
            source_file=c.get("source_file"),  # type: ignore[arg-type]
            target=c.get("TARGET"),  # type: ignore[arg-type]
            function=c["FUNCTION"],  # type: ignore[arg-type]
            function_arg_types=c.get("arg_types"),  # type: ignore[arg-type]
            returns=c.get("RETURNS"),  # type: ignore[arg-type]
            sagemaker=c.get("SAGEMAKER"),  # type: ignore[arg-type]
            iam_role=c.get("IAM_ROLE"),  # type: ignore[arg-type]
            settings=c.get("SETTINGS", Settings()),  # type: ignore[arg-type]
            auto=c.get("AUTO"),  # type: ignore[arg-type]
            model_type=c.get("MODEL_TYPE"),  # type: ignore[arg-type]
            problem_type=c.get("PROBLEM_TYPE"),  # type: ignore[arg-type]
            objective=c.get("OBJECTIVE"),  # type: ignore[arg-type]
            preprocessors=c.get("PREPROCESSORS"),  # type: ignore[arg-type]
            hyperparameters=c.get("HYPERPARAMETERS"),  # type: ignore[arg-type]
            text=self.stmt.text,
        )

    # -- clauses -------------------------------------------------------
    def clause_from(self, c: dict[str, object]) -> None:
        c["FROM"] = True
        t = self.peek()
        if t is None:
            raise self.error(
                "syntax error: expected a table, a (query) or a 'model file' after FROM")
        if t.token_type is TokenType.L_PAREN:
            c["source_query"] = self.parenthesised_text()
        elif t.token_type is TokenType.STRING:
            self.i += 1
            c["source_file"] = t.text
        else:
            c["source_table"] = self.qualified("a table name")

    def parenthesised_text(self) -> str:
        open_tok = self.expect_type(TokenType.L_PAREN, "(")
        depth = 1
        while depth:
            t = self.peek()
            if t is None:
                raise self.error("syntax error: unbalanced parentheses", open_tok)
            if t.token_type is TokenType.L_PAREN:
                depth += 1
            elif t.token_type is TokenType.R_PAREN:
                depth -= 1
            self.i += 1
        close_tok = self.tokens[self.i - 1]
        base = self.stmt.offset
        inner = self.stmt.text[open_tok.end + 1 - base: close_tok.start - base].strip()
        if not inner:
            raise self.error("syntax error: empty query", close_tok)
        return inner

    def clause_target(self, c: dict[str, object]) -> None:
        t = self.peek()
        if t is not None and t.token_type is TokenType.STRING:
            self.i += 1
            c["TARGET"] = t.text
        else:
            c["TARGET"] = self.identifier("a target column")

    def clause_function(self, c: dict[str, object]) -> None:
        c["FUNCTION"] = self.qualified("a function name")
        t = self.peek()
        if t is not None and t.token_type is TokenType.L_PAREN:
            start = self.i
            self.parenthesised_text_or_empty()
            types = self._split_types(start)
            c["arg_types"] = types

    def parenthesised_text_or_empty(self) -> None:
        depth = 0
        while True:
            t = self.peek()
            if t is None:
                raise self.error("syntax error: unbalanced parentheses")
            self.i += 1
            if t.token_type is TokenType.L_PAREN:
                depth += 1
            elif t.token_type is TokenType.R_PAREN:
                depth -= 1
                if depth == 0:
                    return

    def _split_types(self, start: int) -> tuple[str, ...]:
        toks = self.tokens[start + 1: self.i - 1]
        parts: list[list[Token]] = [[]]
        depth = 0
        for t in toks:
            if t.token_type is TokenType.COMMA and depth == 0:
                parts.append([])
                continue
            depth += t.token_type is TokenType.L_PAREN
            depth -= t.token_type is TokenType.R_PAREN
            parts[-1].append(t)
        base = self.stmt.offset
        out = []
        for p in parts:
            if not p:
                if len(parts) == 1:
                    return ()
                raise self.error("syntax error: empty argument type")
            out.append(self.stmt.text[p[0].start - base: p[-1].end + 1 - base])
        return tuple(out)

    def clause_returns(self, c: dict[str, object]) -> None:
        first = self.peek()
        if first is None:
            raise self.error("syntax error: expected a type after RETURNS")
        start = self.i
        self.i += 1
        if self.peek() is not None and self.peek().token_type is TokenType.L_PAREN:  # type: ignore[union-attr]
            self.parenthesised_text_or_empty()
        while self.word() in ("PRECISION", "VARYING"):
            self.i += 1
        base = self.stmt.offset
        c["RETURNS"] = self.stmt.text[self.tokens[start].start - base:
                                      self.tokens[self.i - 1].end + 1 - base]

    def clause_sagemaker(self, c: dict[str, object]) -> None:
        c["SAGEMAKER"] = self.string("an endpoint")
        if self.peek() is not None and self.peek().token_type is TokenType.COLON:  # type: ignore[union-attr]
            self.i += 1
            c["SAGEMAKER"] = f"{c['SAGEMAKER']}:{self.string('a model name')}"

    def clause_iam_role(self, c: dict[str, object]) -> None:
        if self.accept("DEFAULT"):
            c["IAM_ROLE"] = "default"
        else:
            c["IAM_ROLE"] = self.string("an IAM role ARN or DEFAULT")

    def clause_auto(self, c: dict[str, object]) -> None:
        if self.accept("ON"):
            c["AUTO"] = True
        elif self.accept("OFF"):
            c["AUTO"] = False
        else:
            raise self.error("syntax error: expected ON or OFF after AUTO")

    def clause_model_type(self, c: dict[str, object]) -> None:
        value, tok = self.scalar("MODEL_TYPE")
        if value.upper() not in MODEL_TYPES:
            raise self.error(f"invalid MODEL_TYPE; expected one of {', '.join(MODEL_TYPES)}",
                             tok, InvalidParameterValue)
        c["MODEL_TYPE"] = value.upper()

    def _maybe_parenthesised(self, what: str) -> tuple[str, Token]:
        paren = self.peek() is not None and self.peek().token_type is TokenType.L_PAREN  # type: ignore[union-attr]
        if paren:
            self.i += 1
        value, tok = self.scalar(what)
        if paren:
            self.expect_type(TokenType.R_PAREN, ")")
        return value, tok

    def clause_problem_type(self, c: dict[str, object]) -> None:
        value, tok = self._maybe_parenthesised("PROBLEM_TYPE")
        p = _PROBLEM_TYPES.get(value.upper())
        if p is None:
            raise self.error("invalid PROBLEM_TYPE; expected REGRESSION, BINARY_CLASSIFICATION "
                             "or MULTICLASS_CLASSIFICATION", tok, InvalidParameterValue)
        c["PROBLEM_TYPE"] = p

    def clause_objective(self, c: dict[str, object]) -> None:
        value, _ = self._maybe_parenthesised("OBJECTIVE")
        c["OBJECTIVE"] = value

    def clause_preprocessors(self, c: dict[str, object]) -> None:
        c["PREPROCESSORS"] = self.string("the PREPROCESSORS JSON or 'none'")

    def clause_hyperparameters(self, c: dict[str, object]) -> None:
        self.expect("DEFAULT")
        pairs: list[tuple[str, str]] = []
        if self.accept("EXCEPT"):
            self.expect_type(TokenType.L_PAREN, "(")
            while True:
                key = self.identifier("a hyperparameter name")
                value, _ = self.scalar(key)
                pairs.append((key.lower(), value))
                if self.peek() is not None and self.peek().token_type is TokenType.COMMA:  # type: ignore[union-attr]
                    self.i += 1
                    continue
                self.expect_type(TokenType.R_PAREN, ")")
                break
        c["HYPERPARAMETERS"] = tuple(pairs)

    def clause_settings(self, c: dict[str, object]) -> None:
        self.expect_type(TokenType.L_PAREN, "(")
        values: dict[str, object] = {}
        while True:
            key_tok = self.peek()
            key = self.identifier("a setting name").upper()
            assert key_tok is not None
            if key not in _SETTINGS:
                raise self.error(f"unknown setting {key}", key_tok, InvalidParameterValue)
            if key in values:
                raise self.error(f"setting {key} given twice", key_tok)
            value, tok = self.scalar(key)
            values[key] = self._setting_value(key, value, tok)
            if self.peek() is not None and self.peek().token_type is TokenType.COMMA:  # type: ignore[union-attr]
                self.i += 1
                continue
            self.expect_type(TokenType.R_PAREN, ")")
            break
        c["SETTINGS"] = Settings(
            s3_bucket=values.get("S3_BUCKET"),  # type: ignore[arg-type]
            kms_key_id=values.get("KMS_KEY_ID"),  # type: ignore[arg-type]
            tags=values.get("TAGS"),  # type: ignore[arg-type]
            s3_garbage_collect=values.get("S3_GARBAGE_COLLECT", True),  # type: ignore[arg-type]
            max_cells=values.get("MAX_CELLS", 1_000_000),  # type: ignore[arg-type]
            max_runtime=values.get("MAX_RUNTIME", 5400),  # type: ignore[arg-type]
            max_batch_rows=values.get("MAX_BATCH_ROWS", 2_147_483_647),  # type: ignore[arg-type]
            horizon=values.get("HORIZON"),  # type: ignore[arg-type]
            frequency=values.get("FREQUENCY"),  # type: ignore[arg-type]
            percentiles=values.get("PERCENTILES"),  # type: ignore[arg-type]
        )

    def _setting_value(self, key: str, value: str, tok: Token) -> object:
        kind = _SETTINGS[key]
        if kind == "int":
            try:
                number = int(value)
            except ValueError:
                raise self.error(f"{key} must be a positive integer", tok,
                                 InvalidParameterValue) from None
            if number <= 0 or number > 2_147_483_647:
                raise self.error(f"{key} must be between 1 and 2147483647", tok,
                                 InvalidParameterValue)
            return number
        if kind == "bool":
            if value.upper() not in ("ON", "OFF", "TRUE", "FALSE"):
                raise self.error(f"{key} must be ON or OFF", tok, InvalidParameterValue)
            return value.upper() in ("ON", "TRUE")
        return value


_CLAUSES = ("FROM", "TARGET", "FUNCTION", "RETURNS", "SAGEMAKER", "IAM_ROLE", "AUTO",
            "MODEL_TYPE", "PROBLEM_TYPE", "OBJECTIVE", "PREPROCESSORS", "HYPERPARAMETERS",
            "SETTINGS")
_SETTINGS = {"S3_BUCKET": "str", "KMS_KEY_ID": "str", "TAGS": "str",
             "S3_GARBAGE_COLLECT": "bool", "MAX_CELLS": "int", "MAX_RUNTIME": "int",
             "HORIZON": "int", "FREQUENCY": "str", "PERCENTILES": "str", "MAX_BATCH_ROWS": "int"}
_LITERALS = (TokenType.STRING, TokenType.NUMBER, TokenType.HEREDOC_STRING,
             TokenType.IDENTIFIER)
_NOT_NAMES = (TokenType.STRING, TokenType.NUMBER, TokenType.HEREDOC_STRING, TokenType.COMMA,
              TokenType.L_PAREN, TokenType.R_PAREN, TokenType.DOT, TokenType.SEMICOLON,
              TokenType.DASH, TokenType.STAR)
