"""Prediction functions registered in DuckDB as vectorized Arrow UDFs.

Functions are registered once on the shared database connection and are
visible from every session's cursor. DuckDB calls them with whole vectors
(2,048 rows) of Arrow arrays; NULL arguments reach the model as missing
values (``null_handling="special"``). For a classifier ``f`` returns the
label in the target's type and ``f_probabilities`` returns
``STRUCT(probabilities DOUBLE[], labels T[])`` sorted highest first.

Each call asks the model cache for the loaded model (a short lookup under
the cache's lock) and runs its evaluator on the Arrow arguments with no lock
held: compiled evaluators release the GIL, so DuckDB's threads score at once.
"""

from __future__ import annotations

import hashlib
import inspect
import threading
from collections.abc import Callable, Sequence

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from duckdb.sqltypes import DuckDBPyType

from catalog.artifact import ModelArtifact
from catalog.errors import ModelNotReady
from catalog.files import (
    EXPLAIN_SUFFIX,
    EXPLAIN_TOP_SUFFIX,
    PROBABILITIES_SUFFIX,
    all_function_names,
    function_names,
)
from catalog.frames import flatten
from catalog.spec import Column, FeatureKind, ProblemType
from inference.cache import LoadedModel, ModelCache
from inference.errors import InvalidTopK, WrongProblemType
from inference.explain import DEFAULT_TOP_K, explain_type, explanation_arrow


def _arrow_type(duckdb_type: str) -> pa.DataType:
    """The Arrow type DuckDB expects back for a return type."""
    probe = duckdb.connect(":memory:")
    try:
        return probe.sql(f"SELECT NULL::{duckdb_type} AS v").to_arrow_table().schema[0].type
    finally:
        probe.close()


def _argument_type(feature: Column) -> str:
    """The type a function argument is declared with for a feature. A numeric feature
    takes DOUBLE, the widest of its kind: DuckDB then casts any integer, decimal or
    float argument to it implicitly, as PostgreSQL casts a smallint, integer or numeric
    argument (``f(5)`` with a SMALLINT feature, an INTEGER column for a DOUBLE one);
    DuckDB casts no wider type to a narrower one, so a SMALLINT parameter would refuse
    the INTEGER a client's ``5`` binds as. Every evaluator reads numeric features as
    float64 (``catalog.frames``, ``inference.inputs``), so scores are unchanged."""
    return "DOUBLE" if feature.kind is FeatureKind.NUMERIC else feature.type


def predict_arrow(model: LoadedModel, args: Sequence[pa.Array],
                  out_type: pa.DataType) -> pa.Array:
    artifact = model.artifact
    raw = model.evaluator.predict(args)
    if artifact.problem_type is ProblemType.REGRESSION:
        values = np.asarray(raw, dtype=np.float64)
        if pa.types.is_integer(out_type):
            values = np.rint(values)
        return pa.array(values).cast(out_type, safe=False)
    if len(raw) <= 16:   # point queries: a list costs less than a take kernel
        return pa.array([artifact.labels[i] for i in np.asarray(raw).tolist()], type=out_type)
    labels = model.labels_arrow.get(out_type)
    if labels is None:
        labels = model.labels_arrow[out_type] = pa.array(list(artifact.labels), type=out_type)
    return labels.take(pa.array(np.asarray(raw, dtype=np.int64)))


def explain_arrow(model: LoadedModel, args: Sequence[pa.Array], k: pa.Array | None,
                  label_type: pa.DataType) -> pa.Array:
    """``f_explain`` / ``f_explain_top``: one library call for the whole vector."""
    explainer = model.explainer()
    explanation = explainer.explain(args)
    n = len(explanation.prediction)
    if k is None:
        top = np.full(n, DEFAULT_TOP_K, dtype=np.int64)
    else:
        k_values = pc.cast(flatten(k), pa.int64())
        if k_values.null_count:
            raise InvalidTopK("k must not be NULL")
        top = np.asarray(k_values.to_numpy(zero_copy_only=False), dtype=np.int64)
        if n and top.min() < 0:
            raise InvalidTopK("k must not be negative")
    return explanation_arrow(model.artifact, explanation, top, explainer.groups, label_type)


def decision_probabilities(artifact: ModelArtifact, proba: np.ndarray) -> np.ndarray:
    """Probabilities whose highest entry is the predicted label.

    A binary model tuned for F1 predicts the positive label at a threshold t
    other than 0.5. Its positive-class probability p is mapped monotonically
    (piecewise linear, t -> 0.5, 0 -> 0, 1 -> 1) so that element 0 of the
    sorted result is always the label the prediction function returns.
    """
    proba = np.asarray(proba, dtype=np.float64)
    t = artifact.threshold
    if t is None or proba.shape[1] != 2 or not 0.0 < t < 1.0:
        return proba
    pos = artifact.positive_index
    p = proba[:, pos]
    scaled = np.where(p < t, p * (0.5 / t), 0.5 + (p - t) * (0.5 / (1.0 - t)))
    out = np.empty_like(proba)
    out[:, pos] = scaled
    out[:, 1 - pos] = 1.0 - scaled
    return out


def probabilities_arrow(model: LoadedModel, args: Sequence[pa.Array],
                        label_type: pa.DataType) -> pa.Array:
    artifact = model.artifact
    if artifact.problem_type is ProblemType.REGRESSION:
        raise WrongProblemType("probabilities are only defined for classification models")
    proba = decision_probabilities(artifact, model.evaluator.predict_proba(args))
    n, k = proba.shape
    order = np.argsort(-proba, axis=1, kind="stable")
    sorted_p = np.take_along_axis(proba, order, axis=1).ravel()
    labels = pa.array(list(artifact.labels), type=label_type).take(pa.array(order.ravel()))
    offsets = pa.array(np.arange(0, n * k + 1, k, dtype=np.int32))
    return pa.StructArray.from_arrays(
        [pa.ListArray.from_arrays(offsets, pa.array(sorted_p)),
         pa.ListArray.from_arrays(offsets, labels)],
        names=["probabilities", "labels"])


class PredictionFunctions:
    """Registers and removes a model's functions on the shared connection.

    A DuckDB connection runs one call at a time ("connection is busy with another
    call" otherwise): the training pool's thread registers a model as it becomes
    READY while session threads drop or replace others, so every change to the
    shared connection's functions holds ``_lock``."""

    def __init__(self, con: duckdb.DuckDBPyConnection, cache: ModelCache):
        self._con = con
        self._lock = threading.RLock()
        self._cache = cache
        self._registered: set[str] = set()
        self._lowered: frozenset[str] = frozenset()   # the same names, lower case

    def names(self, function_name: str, classification: bool) -> list[str]:
        return function_names(function_name, classification)

    def register(self, function_name: str, features: Sequence[Column], returns: str,
                 classification: bool) -> None:
        with self._lock:
            self._register(function_name, features, returns, classification)

    def _register(self, function_name: str, features: Sequence[Column], returns: str,
                  classification: bool) -> None:
        params = [duckdb.sqltype(_argument_type(c)) for c in features]
        out_type = _arrow_type(returns)
        cache = self._cache

        def predict(*args: pa.Array) -> pa.Array:
            return predict_arrow(cache.get(function_name), args, out_type)

        self._create(function_name, predict, params, duckdb.sqltype(returns))
        if classification:
            def probabilities(*args: pa.Array) -> pa.Array:
                return probabilities_arrow(cache.get(function_name), args, out_type)

            struct = f"STRUCT(probabilities DOUBLE[], labels {returns}[])"
            self._create(function_name + PROBABILITIES_SUFFIX, probabilities, params,
                         duckdb.sqltype(struct))

        def explain(*args: pa.Array) -> pa.Array:
            return explain_arrow(cache.get(function_name), args, None, out_type)

        def explain_top(*args: pa.Array) -> pa.Array:
            return explain_arrow(cache.get(function_name), args[:-1], args[-1], out_type)

        explained = duckdb.sqltype(explain_type(returns))
        self._create(function_name + EXPLAIN_SUFFIX, explain, params, explained)
        self._create(function_name + EXPLAIN_TOP_SUFFIX, explain_top,
                     [*params, duckdb.sqltype("BIGINT")], explained)

    def register_forecast(self, function_name: str, returns: str) -> None:
        """A FORECAST model's function: no arguments, the stored forecast rows as a list
        of structs (``FORECAST(m)`` is ``unnest(m(), recursive := true)``). The rows are
        read once per artifact (checked against its sha256) and kept."""
        cache = self._cache
        kept: dict[tuple[str, str], list[dict[str, object]]] = {}

        def rows() -> list[dict[str, object]]:
            entry = cache.ready_entry(function_name)
            assert entry.artifact_path is not None and entry.artifact_sha256 is not None
            key = (entry.artifact_path, entry.artifact_sha256)
            found = kept.get(key)
            if found is None:
                with open(entry.artifact_path, "rb") as f:
                    data = f.read()
                if hashlib.sha256(data).hexdigest() != entry.artifact_sha256:
                    raise ModelNotReady(f"the forecast of {function_name} does not match "
                                        "its checksum")
                table = pq.read_table(pa.BufferReader(data))
                if '"time" DATE' in returns:
                    table = table.set_column(1, "time", table.column("time").cast(pa.date32()))
                found = table.to_pylist()
                kept.clear()
                kept[key] = found
            return found

        with self._lock:
            if function_name in self._registered:
                self._con.remove_function(function_name)
                self._registered.discard(function_name)
            self._con.create_function(function_name, rows, [], duckdb.sqltype(returns),  # type: ignore[call-overload]
                                      type="native", exception_handling="default",
                                      side_effects=True)
            self._registered.add(function_name)
            self._lowered = frozenset(n.lower() for n in self._registered)

    def _create(self, name: str, fn: Callable[..., pa.Array], params: list[DuckDBPyType],
                returns: DuckDBPyType) -> None:
        # DuckDB checks the Python function's arity against the parameter list.
        fn.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
            [inspect.Parameter(f"arg{i}", inspect.Parameter.POSITIONAL_ONLY)
             for i in range(len(params))])
        with self._lock:
            self._create_locked(name, fn, params, returns)

    def _create_locked(self, name: str, fn: Callable[..., pa.Array],
                       params: list[DuckDBPyType], returns: DuckDBPyType) -> None:
        if name in self._registered:
            self._con.remove_function(name)
            self._registered.discard(name)
        # side_effects: DuckDB never evaluates the call while binding or planning (constant
        # folding), so a model never runs before the privilege check, and the call stays
        # in the plan the check reads (server.security.firewall)
        self._con.create_function(name, fn, params, returns, type="arrow",  # type: ignore[call-overload]
                                  null_handling="special", exception_handling="default",
                                  side_effects=True)
        self._registered.add(name)
        self._lowered = frozenset(n.lower() for n in self._registered)

    def unregister(self, function_name: str) -> None:
        with self._lock:
            for name in all_function_names(function_name):
                if name in self._registered:
                    self._con.remove_function(name)
                    self._registered.discard(name)
            self._lowered = frozenset(n.lower() for n in self._registered)

    def any_registered(self) -> bool:
        return bool(self._registered)

    def is_registered(self, name: str) -> bool:
        return name in self._registered

    def is_model_function(self, name: str) -> bool:
        """Whether calling ``name`` (DuckDB names are case-insensitive) calls a model."""
        return name.lower() in self._lowered
