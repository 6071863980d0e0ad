"""EVALUATE MODEL m [ON (query)] [WITH THRESHOLD x] [CONFUSION MATRIX | ROC CURVE].

One row of metrics named as BigQuery ML.EVALUATE names them, so that users can
move between the two:

- classification: precision, recall, accuracy, f1_score, log_loss, roc_auc
  (binary: of the artifact's positive label; multiclass: macro averages,
  roc_auc one-vs-rest). The probabilities scored are the ones the model's
  ``f_probabilities`` function serves (inference.functions
  decision_probabilities: for a binary model tuned for F1, its positive-class
  probability mapped monotonically so that its threshold sits at 0.5), so
  that WITH THRESHOLD x and the ROC CURVE's thresholds mean what they mean
  on ``f_probabilities``'s output: the positive label is predicted when its
  probability is >= x. Without WITH THRESHOLD the labels are the model's own
  (its ``f``);
- regression: mean_absolute_error, mean_squared_error, mean_squared_log_error
  (NULL when a true or predicted value is <= -1, where log(1 + y) is
  undefined), median_absolute_error, r2_score, explained_variance;
- k-means: davies_bouldin_index, mean_squared_distance (in the space the
  clusters were fitted in: after PREPROCESSORS and the mean imputation).

The metrics are scikit-learn's (``sklearn.metrics``): well-kept, and the very
functions training measured the holdout with. The rows are the ON query's,
run as the caller (checked like CREATE MODEL's FROM query), or without ON
the validation holdout training kept beside the artifact (catalog.files
HOLDOUT_FILE), so that the metric the model was selected by comes back as it
was measured. The model is the active version's artifact, read as it is
stored (catalog.artifact.read_artifact), not SQL built from strings.

``CONFUSION MATRIX``: the expected label, then one count column per label the
model predicts. ``ROC CURVE`` (binary classifiers): threshold, recall,
false_positive_rate, true_positives, false_positives, true_negatives,
false_negatives, one row per threshold where the curve turns
(``sklearn.metrics.roc_curve``), as BigQuery ML.ROC_CURVE shapes it.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from sklearn import metrics

from automl import forecast
from catalog.artifact import ModelArtifact, read_artifact
from catalog.preprocessing import PreprocessedEstimator
from catalog.spec import ModelState
from catalog.store import ModelRecord
from inference.functions import decision_probabilities
from server.errors import (
    DataException,
    DatatypeMismatch,
    FeatureNotSupported,
    InvalidParameterValue,
    NotInPrerequisiteState,
    SyntaxError_,
    UndefinedColumn,
)
from server.models.caller import Caller
from server.models.lifecycle import model_or_error, refuse_forecast
from server.protocol.types import Oid
from server.results import Column as ResultColumn
from server.results import Rows
from server.sql.ml_grammar import EvaluateModel, EvaluateOutput, QualifiedName
from server.sql.text import split

if TYPE_CHECKING:
    from server.engine import Engine

CLASSIFICATION_METRICS = ("precision", "recall", "accuracy", "f1_score", "log_loss", "roc_auc")
REGRESSION_METRICS = ("mean_absolute_error", "mean_squared_error", "mean_squared_log_error",
                      "median_absolute_error", "r2_score", "explained_variance")
KMEANS_METRICS = ("davies_bouldin_index", "mean_squared_distance")
#: a FORECAST model's metrics (SHOW MODEL's backtest ones) and automl.forecast's keys
FORECAST_METRICS = ("rmse", "wape", "mape", "mase", "average_weighted_quantile_loss",
                    "interval_coverage")
FORECAST_KEYS = ("RMSE", "WAPE", "MAPE", "MASE", "AverageWeightedQuantileLoss",
                 forecast.COVERAGE)
ROC_COLUMNS = (("threshold", Oid.FLOAT8), ("recall", Oid.FLOAT8),
               ("false_positive_rate", Oid.FLOAT8), ("true_positives", Oid.INT8),
               ("false_positives", Oid.INT8), ("true_negatives", Oid.INT8),
               ("false_negatives", Oid.INT8))


@dataclass(frozen=True)
class _Rows:
    """The rows to evaluate on: the feature columns and the target (None for k-means)."""

    features: list[pa.ChunkedArray]
    target: pa.ChunkedArray | None
    source: str   # "the ON query" or "the holdout rows"


def evaluate_model(engine: Engine, stmt: EvaluateModel, caller: Caller) -> Rows:
    record = model_or_error(engine, stmt.name)
    caller.privileges.require_execute(record)
    if record.model_type == "FORECAST":
        return _evaluate_forecast(engine, record, stmt, caller)
    artifact = _artifact(engine, record)
    _check_output(record, artifact, stmt.threshold, stmt.output)
    data = _rows(engine, record, artifact, stmt, caller)
    return _evaluate(record, artifact, data, stmt.threshold, stmt.output)


def _artifact(engine: Engine, record: ModelRecord) -> ModelArtifact:
    refuse_forecast(record)
    if record.state is not ModelState.READY:
        raise NotInPrerequisiteState(
            f'model "{record.qualified_name}" is not ready (state {record.state.value})')
    if not record.artifact_file or not record.artifact_sha256:
        raise FeatureNotSupported(
            f'model "{record.qualified_name}" is a remote SAGEMAKER model: '
            "QuackML holds no artifact to evaluate")
    return read_artifact(str(engine.files(record).folder / record.artifact_file),
                         record.artifact_sha256)


def _is_kmeans(record: ModelRecord) -> bool:
    return record.model_type == "KMEANS"


def _check_output(record: ModelRecord, artifact: ModelArtifact, threshold: float | None,
                  output: str) -> None:
    kmeans = _is_kmeans(record)
    classifier = artifact.problem_type.is_classification and not kmeans
    binary = classifier and len(artifact.labels) == 2
    if threshold is not None and not binary:
        raise InvalidParameterValue(
            "WITH THRESHOLD applies to binary classifiers only: model "
            f'"{record.qualified_name}" is ' + ("a k-means model" if kmeans else
                                                "a regression model" if not classifier else
                                                f"a {len(artifact.labels)}-class classifier"))
    if output != EvaluateOutput.METRICS and not classifier:
        raise FeatureNotSupported(
            f"{output.upper()} is for classifiers: model "
            f'"{record.qualified_name}" is ' + ("a k-means model" if kmeans
                                                else "a regression model"))
    if output == EvaluateOutput.ROC_CURVE:
        if not binary:
            raise FeatureNotSupported(
                f'ROC CURVE is for binary classifiers: model "{record.qualified_name}" has '
                f"{len(artifact.labels)} classes", hint="use CONFUSION MATRIX")
        if threshold is not None:
            raise InvalidParameterValue("ROC CURVE covers every threshold: it takes no "
                                        "WITH THRESHOLD")


def _evaluate(record: ModelRecord, artifact: ModelArtifact, data: _Rows,
              threshold: float | None, output: str) -> Rows:
    frame = artifact.frame(data.features)
    if _is_kmeans(record):
        return _kmeans_metrics(artifact, frame)
    assert data.target is not None
    target = data.target
    keep = pc.is_valid(target)
    if pa.types.is_floating(target.type):
        keep = pc.and_(keep, pc.invert(pc.is_nan(target)))
    if not pc.all(keep).as_py():   # rows without a target value say nothing about the model
        frame = frame[np.asarray(keep.to_numpy(zero_copy_only=False), dtype=bool)]
        target = target.filter(keep)
    if len(frame) == 0:
        raise DataException(f"{data.source} have no row with a non-NULL target "
                            f'"{artifact.target.name}" to evaluate on')
    if not artifact.problem_type.is_classification:
        return _regression_metrics(artifact, frame, target)
    evaluation = _Classification(artifact, frame, target, threshold)
    if output == EvaluateOutput.CONFUSION_MATRIX:
        return evaluation.confusion_matrix()
    if output == EvaluateOutput.ROC_CURVE:
        return evaluation.roc_curve()
    return evaluation.metrics()


# -- the function form ----------------------------------------------------------------
FUNCTION_NAME = "evaluate_model"
ALL_METRICS = CLASSIFICATION_METRICS + REGRESSION_METRICS + KMEANS_METRICS + FORECAST_METRICS
FUNCTION_TYPE = "STRUCT(" + ", ".join(f"{name} DOUBLE" for name in ALL_METRICS) + ")"


def register_evaluate_model(engine: Engine) -> None:
    """``evaluate_model('[schema.]model', 'query')``: EVALUATE MODEL m ON (query) as a scalar
    function returning one STRUCT of every metric (NULL where the model has none), for
    ``SELECT unnest(evaluate_model(...))`` in FROM and CREATE TABLE AS.

    DuckDB's Python API registers no table functions (see docs/sql.md), so this is a
    scalar function running ``query`` on a connection of its own. Nothing here checks
    privileges: for non-superusers the firewall does, before the statement runs
    (EXECUTE on the model, and the query, both constants, checked as the user's own)."""

    def evaluate(name: str, query: str) -> dict[str, float | None]:
        schema, _, model = name.rpartition(".")
        record = model_or_error(engine, QualifiedName(schema or None, model))
        forecasting = record.model_type == "FORECAST"
        artifact = None if forecasting else _artifact(engine, record)
        cursor = engine.con.cursor()
        try:
            _check_query(cursor, query)
            table = cursor.sql(query).to_arrow_table()
        finally:
            cursor.close()
        if artifact is None:
            result = _forecast_metrics(engine, record, table, "the query")
        else:
            data = _columns(table, artifact, _is_kmeans(record), "the query")
            result = _evaluate(record, artifact, data, None, EvaluateOutput.METRICS)
        values: dict[str, float | None] = dict.fromkeys(ALL_METRICS)
        for column, value in zip(result.columns, result.rows[0], strict=True):
            values[column.name] = None if value is None else float(value)
        return values

    engine.con.create_function(FUNCTION_NAME, evaluate,
                               [duckdb.sqltype("VARCHAR"), duckdb.sqltype("VARCHAR")],
                               duckdb.sqltype(FUNCTION_TYPE), side_effects=True)


def _check_query(cursor: duckdb.DuckDBPyConnection, query: str) -> None:
    """One query (SELECT, VALUES, FROM ...): nothing else may run as the rows."""
    parsed = cursor.extract_statements(query)
    if len(parsed) != 1 or parsed[0].type is not duckdb.StatementType.SELECT:
        raise SyntaxError_("syntax error: EVALUATE MODEL ... ON and evaluate_model() take one "
                           "query (SELECT, VALUES, FROM ...)")


# -- the rows -------------------------------------------------------------------
def _rows(engine: Engine, record: ModelRecord, artifact: ModelArtifact, stmt: EvaluateModel,
          caller: Caller) -> _Rows:
    kmeans = _is_kmeans(record)
    if stmt.query is None:
        return _holdout(engine, record, artifact, kmeans)
    return _columns(_on_query(stmt.query, caller), artifact, kmeans, "the ON query")


def _on_query(text: str, caller: Caller) -> pa.Table:
    """The ON query's rows, run as the caller."""
    # PostgreSQL's names (public, the client's database name) made DuckDB's
    query = caller.duckdb_text(split(text)[0])
    _check_query(caller.cursor, query)
    # the ON query runs as the user: checked as any statement of theirs
    caller.privileges.check_sql(caller.cursor, query)
    return caller.cursor.sql(query).to_arrow_table()


def _holdout(engine: Engine, record: ModelRecord, artifact: ModelArtifact,
             kmeans: bool) -> _Rows:
    kind = ("a KMEANS model" if kmeans else "a bring-your-own model" if record.bring_your_own
            else "an AUTO OFF model" if not record.auto else None)
    if kind is not None:
        raise FeatureNotSupported(
            f'model "{record.qualified_name}" is {kind}: it kept no validation holdout rows '
            "to evaluate on", hint="give the rows: EVALUATE MODEL m ON (SELECT ...)")
    path = engine.files(record).holdout
    try:
        table = pq.read_table(path)
    except FileNotFoundError:
        raise NotInPrerequisiteState(
            f'version {record.version} of model "{record.qualified_name}" was trained before '
            "QuackML kept the validation holdout rows",
            hint="give the rows: EVALUATE MODEL m ON (SELECT ...), or retrain it") from None
    return _columns(table, artifact, kmeans, "the holdout rows")


def _columns(table: pa.Table, artifact: ModelArtifact, kmeans: bool, source: str) -> _Rows:
    """The feature columns and the target, found by name (exactly, else ignoring case)."""
    names = table.column_names

    def find(name: str, role: str) -> pa.ChunkedArray:
        exact = [i for i, n in enumerate(names) if n == name]
        loose = [i for i, n in enumerate(names) if n.lower() == name.lower()]
        found = exact or loose
        if len(found) != 1:
            raise UndefinedColumn(
                f'{role} "{name}" does not exist in {source}' if not found else
                f'{role} "{name}" is ambiguous in {source}',
                detail="columns: " + ", ".join(names),
                hint="the rows need every feature column and the target column, by name")
        return table.column(found[0])

    features = [find(c.name, "feature column") for c in artifact.features]
    target = None if kmeans else find(artifact.target.name, "target column")
    return _Rows(features, target, source)


# -- FORECAST ---------------------------------------------------------------------
def _evaluate_forecast(engine: Engine, record: ModelRecord, stmt: EvaluateModel,
                       caller: Caller) -> Rows:
    """A FORECAST model's stored forecast against the actuals of the ON query, or without
    ON the backtest metrics measured at training (automl.forecast's forecast.json)."""
    kind = f'model "{record.qualified_name}" is a FORECAST model'
    if stmt.threshold is not None:
        raise InvalidParameterValue(f"WITH THRESHOLD applies to binary classifiers only: "
                                    f"{kind}")
    if stmt.output != EvaluateOutput.METRICS:
        raise FeatureNotSupported(f"{stmt.output.upper()} is for classifiers: {kind}")
    if stmt.query is None:
        meta = _forecast_meta(engine, record)
        notice = (f"the backtest of {meta.get('method')} measured at training (each "
                  "series' last HORIZON steps); give the actuals with ON (SELECT id, time, "
                  "value ...) to score the forecast")
        return _metric_row(_forecast_names(meta.get("backtest", {})), [notice])
    return _forecast_metrics(engine, record, _on_query(stmt.query, caller), "the ON query")


def _forecast_meta(engine: Engine, record: ModelRecord) -> dict[str, Any]:
    if record.state is not ModelState.READY:
        raise NotInPrerequisiteState(
            f'model "{record.qualified_name}" is not ready (state {record.state.value})')
    with open(engine.files(record).folder / forecast.META_FILE, encoding="utf-8") as f:
        meta: dict[str, Any] = json.load(f)
    return meta


def _forecast_metrics(engine: Engine, record: ModelRecord, table: pa.Table,
                      source: str) -> Rows:
    """The actuals (the training query's columns: id, time, then the TARGET by name; more
    columns are ignored) against the stored forecast, joined on (id, time)."""
    meta = _forecast_meta(engine, record)
    assert record.artifact_file and record.artifact_sha256 and record.target
    path = engine.files(record).folder / record.artifact_file
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != record.artifact_sha256:
        raise NotInPrerequisiteState(f'the forecast of model "{record.qualified_name}" does '
                                     "not match its checksum")
    rows = pq.read_table(pa.BufferReader(data)).to_pandas()
    names = table.column_names
    target = ([i for i, n in enumerate(names) if n == record.target]
              or [i for i, n in enumerate(names) if n.lower() == record.target.lower()])
    has_id = len(record.features) == 2
    others = [i for i in range(len(names)) if i not in target]
    if len(target) != 1 or len(others) < 1 + has_id:
        raise UndefinedColumn(
            f'{source} needs the target column "{record.target}" and, before it, '
            + ("the id and the timestamp columns" if has_id else "the timestamp column"),
            detail="columns: " + ", ".join(names),
            hint="the training query's columns, in its order: "
            + ", ".join(c.name for c in record.features) + f", {record.target}")
    value = table.column(target[0])
    if not (pa.types.is_integer(value.type) or pa.types.is_floating(value.type)
            or pa.types.is_decimal(value.type) or pa.types.is_null(value.type)):
        raise DatatypeMismatch(f'target column "{names[target[0]]}" in {source} has type '
                               f"{value.type}: the actuals must be numeric")
    frame = pa.table({"id": table.column(others[0]) if has_id
                      else pa.nulls(table.num_rows, pa.string()),
                      "time": table.column(others[has_id]),
                      "y": pc.cast(value, pa.float64())}).to_pandas()
    if not has_id:
        frame["id"] = ""
    opts = forecast.options(record.settings.horizon, record.settings.frequency,
                            record.settings.percentiles, record.objective)
    values, notices = forecast.evaluate(rows, frame, opts, meta.get(forecast.SCALES_KEY))
    return _metric_row(_forecast_names(values), notices)


def _forecast_names(values: dict[str, float]) -> dict[str, float | None]:
    """automl.forecast's metric names as EVALUATE MODEL's columns (NaN: NULL)."""
    out: dict[str, float | None] = {}
    for column, key in zip(FORECAST_METRICS, FORECAST_KEYS, strict=True):
        value = values.get(key)
        out[column] = None if value is None or math.isnan(value) else float(value)
    return out


# -- classification ---------------------------------------------------------------
class _Classification:
    """Labels as indices into ``artifact.labels``; a true value the model never saw
    gets an index past them (it counts, and is always mispredicted)."""

    def __init__(self, artifact: ModelArtifact, frame: Any, target: pa.ChunkedArray,
                 threshold: float | None):
        self.artifact = artifact
        labels = list(artifact.labels)
        index: dict[object, int] = {}
        for i, label in enumerate(labels):
            index.setdefault(_key(label), i)
        self.names = [_text(label) for label in labels]
        truth = []
        for value in target.to_pylist():
            key = _key(value)
            if key not in index:
                index[key] = len(self.names)
                self.names.append(_text(value))
            truth.append(index[key])
        self.n_labels = len(labels)
        self.y = np.asarray(truth, dtype=np.int64)
        raw = artifact.predict_proba_frame(frame)
        # the probabilities the model's _probabilities function serves
        self.proba = decision_probabilities(artifact, raw)
        self.binary = self.n_labels == 2
        self.positive = artifact.positive_index
        if threshold is None:   # the model's own decision, as its function makes it
            if self.binary and artifact.threshold is not None:
                self.predicted = np.where(raw[:, self.positive] >= artifact.threshold,
                                          self.positive, 1 - self.positive).astype(np.int64)
            else:
                self.predicted = np.argmax(raw, axis=1).astype(np.int64)
        else:
            self.predicted = np.where(self.proba[:, self.positive] >= threshold,
                                      self.positive, 1 - self.positive).astype(np.int64)
        self.unseen = len(self.names) > self.n_labels

    def metrics(self) -> Rows:
        y, predicted = self.y, self.predicted
        notices: list[str] = []
        if self.binary:
            kwargs: dict[str, Any] = {"pos_label": self.positive, "average": "binary"}
        else:
            kwargs = {"labels": list(range(self.n_labels)), "average": "macro"}
        values: dict[str, float | None] = {
            "precision": metrics.precision_score(y, predicted, zero_division=0, **kwargs),
            "recall": metrics.recall_score(y, predicted, zero_division=0, **kwargs),
            "accuracy": metrics.accuracy_score(y, predicted),
            "f1_score": metrics.f1_score(y, predicted, zero_division=0, **kwargs),
            "log_loss": None,
            "roc_auc": None,
        }
        if self.unseen:
            notices.append("log_loss and roc_auc are NULL: the rows have target values the "
                           "model was not trained on (" + ", ".join(self.names[self.n_labels:])
                           + ")")
        else:
            values["log_loss"] = metrics.log_loss(y, self.proba,
                                                  labels=list(range(self.n_labels)))
            present = np.unique(y)
            if self.binary and len(present) == 2:
                values["roc_auc"] = metrics.roc_auc_score(y == self.positive,
                                                          self.proba[:, self.positive])
            elif not self.binary and len(present) == self.n_labels:
                values["roc_auc"] = metrics.roc_auc_score(y, self.proba, multi_class="ovr",
                                                          average="macro",
                                                          labels=list(range(self.n_labels)))
            else:
                notices.append("roc_auc is NULL: the rows do not hold every label")
        return _metric_row(values, notices)

    def confusion_matrix(self) -> Rows:
        every = list(range(len(self.names)))
        counts = metrics.confusion_matrix(self.y, self.predicted, labels=every)
        columns = [ResultColumn("expected_label", Oid.TEXT)] + [
            ResultColumn(name, Oid.INT8) for name in self.names[:self.n_labels]]
        present = set(np.unique(self.y).tolist())
        rows = [[self.names[i]] + [str(int(c)) for c in counts[i, :self.n_labels]]
                for i in every if i < self.n_labels or i in present]
        return Rows(columns, rows, f"SELECT {len(rows)}")

    def roc_curve(self) -> Rows:
        is_positive = self.y == self.positive
        p = self.proba[:, self.positive]
        positives = int(is_positive.sum())
        negatives = len(is_positive) - positives
        if positives == 0 or negatives == 0:
            raise DataException("ROC CURVE needs rows of both labels: the rows hold only "
                                + self.names[self.positive if negatives == 0 else
                                             1 - self.positive])
        fpr, tpr, thresholds = metrics.roc_curve(is_positive, p)
        # the counts behind each point ("positive when p >= threshold"): roc_curve
        # divides them by the totals
        tp = np.rint(tpr * positives).astype(np.int64)
        fp = np.rint(fpr * negatives).astype(np.int64)
        rows = [[_float(t), _float(r), _float(f), str(a), str(b), str(negatives - b),
                 str(positives - a)]
                for t, r, f, a, b in zip(thresholds, tpr, fpr, tp, fp, strict=True)]
        columns = [ResultColumn(name, oid) for name, oid in ROC_COLUMNS]
        return Rows(columns, rows, f"SELECT {len(rows)}")


def _text(label: object) -> str:
    """A label as PostgreSQL prints it (booleans: true, false)."""
    if isinstance(label, bool):
        return "true" if label else "false"
    return str(label)


def _key(value: object) -> object:
    """A label's identity: its value (the ON query's 1 matches a label 1.0 or Decimal 1)."""
    return value


# -- regression and k-means ---------------------------------------------------------
def _regression_metrics(artifact: ModelArtifact, frame: Any, target: pa.ChunkedArray) -> Rows:
    try:
        y = np.asarray(pc.cast(target, pa.float64()).to_numpy(), dtype=np.float64)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise DataException(f'target column "{artifact.target.name}" is not numeric: '
                            f"{target.type}") from exc
    predicted = artifact.predict_frame(frame)
    notices: list[str] = []
    msle: float | None = None
    if (y > -1).all() and (predicted > -1).all():
        msle = metrics.mean_squared_log_error(y, predicted)
    else:
        notices.append("mean_squared_log_error is NULL: it is undefined when a true or "
                       "predicted value is <= -1")
    values: dict[str, float | None] = {
        "mean_absolute_error": metrics.mean_absolute_error(y, predicted),
        "mean_squared_error": metrics.mean_squared_error(y, predicted),
        "mean_squared_log_error": msle,
        "median_absolute_error": metrics.median_absolute_error(y, predicted),
        "r2_score": metrics.r2_score(y, predicted) if len(y) > 1 else None,
        "explained_variance": metrics.explained_variance_score(y, predicted)
        if len(y) > 1 else None,
    }
    return _metric_row(values, notices)


def kmeans_space(artifact: ModelArtifact, frame: Any) -> tuple[np.ndarray, Any]:
    """The rows in the space the clusters were fitted in, and the fitted KMeans."""
    estimator = artifact.estimator
    if isinstance(estimator, PreprocessedEstimator):
        frame = estimator.preprocessor.transform(frame)
        estimator = estimator.estimator
    x = np.asarray(estimator[:-1].transform(frame), dtype=np.float64)
    return x, estimator[-1]


def _kmeans_metrics(artifact: ModelArtifact, frame: Any) -> Rows:
    if len(frame) == 0:
        raise DataException("the rows to evaluate on are empty")
    x, kmeans = kmeans_space(artifact, frame)
    clusters = kmeans.predict(x)
    centers = kmeans.cluster_centers_[clusters]
    notices: list[str] = []
    dbi: float | None = None
    if 1 < len(np.unique(clusters)) < len(x):
        dbi = metrics.davies_bouldin_score(x, clusters)
    else:
        notices.append("davies_bouldin_index is NULL: the rows fall in fewer than two "
                       "clusters")
    values: dict[str, float | None] = {
        "davies_bouldin_index": dbi,
        "mean_squared_distance": float(np.mean(np.sum((x - centers) ** 2, axis=1))),
    }
    return _metric_row(values, notices)


def _metric_row(values: dict[str, float | None], notices: list[str]) -> Rows:
    columns = [ResultColumn(name, Oid.FLOAT8) for name in values]
    row = [None if v is None else _float(float(v)) for v in values.values()]
    return Rows(columns, [row], "SELECT 1", tuple(notices))


def _float(value: float) -> str:
    """float8's text (PostgreSQL prints the shortest text that reads back the same)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return repr(float(value))
