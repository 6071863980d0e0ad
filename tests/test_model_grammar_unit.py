"""The model lifecycle statements' grammar, without a server (fast)."""

from __future__ import annotations

import pytest

from server.errors import InvalidParameterValue, SyntaxError_
from server.sql import ml_grammar as g
from server.sql.text import split


def parse(text: str) -> g.MLStatement:
    stmt = split(text)[0]
    assert g.is_ml_statement(stmt)
    return g.parse(stmt)


def test_versions() -> None:
    assert parse("DROP MODEL m VERSION 2") == g.DropModel(g.QualifiedName(None, "m"), False, 2)
    assert parse("drop model if exists s.m") == g.DropModel(g.QualifiedName("s", "m"), True)
    assert parse("ALTER MODEL m ROLLBACK") == g.RollbackModel(g.QualifiedName(None, "m"), None)
    assert parse("ALTER MODEL s.m ROLLBACK TO VERSION 3") == \
        g.RollbackModel(g.QualifiedName("s", "m"), 3)
    assert parse("ALTER MODEL m RETRAIN") == g.RetrainModel(g.QualifiedName(None, "m"), False)
    assert parse("alter model m retrain only if better") == \
        g.RetrainModel(g.QualifiedName(None, "m"), True)
    create = parse("CREATE OR REPLACE MODEL m FROM t TARGET y FUNCTION f")
    assert isinstance(create, g.CreateModel) and create.or_replace


def test_evaluate_and_export() -> None:
    e = parse("EVALUATE MODEL m ON (SELECT * FROM t WHERE (a) > 1) WITH THRESHOLD 0.3 ROC CURVE")
    assert e == g.EvaluateModel(g.QualifiedName(None, "m"), "SELECT * FROM t WHERE (a) > 1",
                                0.3, g.EvaluateOutput.ROC_CURVE)
    assert parse("EVALUATE MODEL m CONFUSION MATRIX") == \
        g.EvaluateModel(g.QualifiedName(None, "m"), None, None,
                        g.EvaluateOutput.CONFUSION_MATRIX)
    assert parse("EXPORT MODEL m VERSION 2 FORMAT onnx") == \
        g.ExportModel(g.QualifiedName(None, "m"), 2, "ONNX")
    explained = parse("EXPLAIN CREATE MODEL m FROM t TARGET y FUNCTION f")
    assert isinstance(explained, g.ExplainCreateModel)
    assert explained.create.target == "y"


@pytest.mark.parametrize(("text", "error"), [
    ("DROP MODEL m VERSION 0", SyntaxError_),
    ("DROP MODEL m VERSION x", SyntaxError_),
    ("ALTER MODEL m", SyntaxError_),
    ("ALTER MODEL m ROLLBACK TO 2", SyntaxError_),
    ("ALTER MODEL m RETRAIN ONLY", SyntaxError_),
    ("EVALUATE MODEL m WITH THRESHOLD 1.5", InvalidParameterValue),
    ("EVALUATE MODEL m ON ()", SyntaxError_),
    ("EXPORT MODEL m FORMAT PICKLE", SyntaxError_),
    ("EXPORT MODEL m", SyntaxError_),
])
def test_errors(text: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        parse(text)


def test_explain_of_other_statements_is_not_a_model_statement() -> None:
    assert not g.is_ml_statement(split("EXPLAIN SELECT 1")[0])
    assert not g.is_ml_statement(split("ALTER TABLE model ADD x int")[0])
