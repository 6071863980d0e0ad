"""Estimators for bring-your-own models: an imported booster or ONNX file, or a remote
endpoint.

All are held by a REGRESSION-shaped ``ModelArtifact`` whose target is the
RETURNS type: ``predict`` returns one float64 per row, which the prediction
function casts to that type.

- :class:`ImportedBooster` keeps the bytes of the XGBoost (JSON or UBJ) or
  LightGBM (text) model file the server copied into the artifact store; the
  artifact's sha256 covers them, so only a checked copy is ever scored.
  It is compiled and served like a trained booster (inference.evaluators
  tree_library).
- :class:`OnnxModel` keeps the bytes of an ONNX model and scores it with
  onnxruntime, one run per call (a DuckDB vector); its input and output
  signature was checked against FUNCTION and RETURNS when it was imported.
- :class:`RemoteEndpoint` posts CSV rows (NULL as an empty field) to an HTTP
  URL in batches of at most ``max_batch_rows`` and reads one value per line.
"""

from __future__ import annotations

import io
import math
import urllib.error
import urllib.request
from typing import Any

import numpy as np
import pandas as pd

from catalog.errors import (
    ImportedModelError,
    ImportedModelMismatch,
    ImportedModelNullInput,
    RemoteModelError,
)

REMOTE_TIMEOUT_S = 60.0


def detect_library(data: bytes) -> str:
    """'xgboost', 'lightgbm' or 'onnx' from the file's content (XGBoost JSON or UBJ,
    LightGBM text, or an ONNX ModelProto with a graph)."""
    head = data[:256].lstrip()
    if head.startswith(b"tree\n") or head.startswith(b"tree\r\n"):
        return "lightgbm"
    if head.startswith(b"{"):
        return "xgboost"  # XGBoost JSON; UBJSON objects start with "{" as well
    if _onnx_model(data) is not None:
        return "onnx"
    raise ImportedModelError(
        "the model file is neither an XGBoost JSON/UBJ model, a LightGBM text model nor "
        "an ONNX model")


def _onnx_model(data: bytes) -> Any:
    """The parsed ONNX ModelProto when ``data`` is one (an IR version and a graph with
    nodes), else None. Parsing builds data only; nothing of the model runs."""
    import onnx
    from google.protobuf.message import DecodeError

    try:
        model = onnx.load_model_from_string(data)
    except (DecodeError, ValueError, RuntimeError):
        return None
    if model.ir_version <= 0 or not model.HasField("graph") or not model.graph.node:
        return None
    return model


class ImportedBooster:
    """A booster loaded from a model file's bytes; predicts from the numeric frame."""

    def __init__(self, library: str, data: bytes, n_features: int):
        self.library = library
        self.data = data
        self.n_features = n_features
        self._booster: Any = None
        self.check()

    def __getstate__(self) -> dict[str, Any]:
        return {"library": self.library, "data": self.data, "n_features": self.n_features}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._booster = None

    def _load(self) -> Any:
        if self._booster is None:
            if self.library == "lightgbm":
                import lightgbm as lgb

                self._booster = lgb.Booster(model_str=self.data.decode("utf-8"))
            else:
                import xgboost as xgb

                booster = xgb.Booster()
                booster.load_model(bytearray(self.data))
                self._booster = booster
        return self._booster

    def check(self) -> None:
        """Load the booster and check its feature count against the FUNCTION's arguments."""
        import lightgbm as lgb
        import xgboost as xgb

        try:
            booster = self._load()
        except (xgb.core.XGBoostError, lgb.basic.LightGBMError, ValueError,
                UnicodeDecodeError) as exc:
            raise ImportedModelError(
                f"the model file cannot be loaded as a {self.library} model: "
                f"{str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__}"
            ) from None
        expected = (booster.num_feature() if self.library == "lightgbm"
                    else booster.num_features())
        if expected != self.n_features:
            raise ImportedModelError(
                f"the model takes {expected} features; FUNCTION declares {self.n_features} "
                "argument types")

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        booster = self._load()
        values = frame.to_numpy(dtype=np.float64, na_value=np.nan)
        if self.library == "lightgbm":
            raw = booster.predict(values)
            return np.asarray(raw, dtype=np.float64).reshape(len(frame), -1)[:, 0]
        import xgboost as xgb

        # A model trained on a named frame checks the names: the arguments are its
        # features by position, so they take the model's own names (and types).
        types = booster.feature_types
        out = booster.predict(xgb.DMatrix(
            values, missing=np.nan, feature_names=booster.feature_names, feature_types=types,
            enable_categorical=bool(types) and "c" in types))
        return np.asarray(out, dtype=np.float64).reshape(len(frame), -1)[:, 0]


# ONNX tensor element types QuackML feeds and reads, as NumPy types.
ONNX_TENSOR_TYPES: dict[str, Any] = {
    "tensor(float)": np.float32, "tensor(double)": np.float64,
    "tensor(float16)": np.float16,
    "tensor(int8)": np.int8, "tensor(int16)": np.int16, "tensor(int32)": np.int32,
    "tensor(int64)": np.int64, "tensor(uint8)": np.uint8, "tensor(uint16)": np.uint16,
    "tensor(uint32)": np.uint32, "tensor(uint64)": np.uint64, "tensor(bool)": np.bool_,
}


def _type_class(duckdb_type: str) -> str:
    """'boolean', 'integer' or 'float' (floating point and DECIMAL) for a DuckDB type."""
    t = duckdb_type.upper()
    if t == "BOOLEAN":
        return "boolean"
    if t.endswith("INT") or t in ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT",
                                  "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT", "UHUGEINT"):
        return "integer"
    return "float"


def _value_class(dtype: Any) -> str:
    kind = np.dtype(dtype).kind
    return {"b": "boolean", "i": "integer", "u": "integer"}.get(kind, "float")


class OnnxModel:
    """An ONNX model scored with onnxruntime.

    Inputs, in one of two shapes: one tensor of shape (rows, k) taking all k
    arguments in order, or k tensors of shape (rows,) or (rows, 1), one per
    argument. The first output is the prediction: one number (or boolean) per
    row, shape (rows,) or (rows, 1); other outputs (a classifier's probabilities)
    are not computed. NULL arguments are NaN for floating-point inputs and an
    error for integer and boolean ones.
    """

    library = "onnx"

    def __init__(self, data: bytes, n_features: int):
        self.data = data
        self.n_features = n_features
        self._session: Any = None
        # (input name, NumPy type, argument indices, rank) per input
        self._feeds: list[tuple[str, Any, list[int], int]] = []
        self._output = ""

    def __getstate__(self) -> dict[str, Any]:
        return {"data": self.data, "n_features": self.n_features}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._session = None
        self._feeds = []
        self._output = ""

    def _load(self) -> Any:
        if self._session is not None:
            return self._session
        model = _onnx_model(self.data)
        if model is None:
            raise ImportedModelError("the model file is not an ONNX model")
        if _uses_external_data(model):
            raise ImportedModelError(
                "the ONNX model keeps tensors in external files; QuackML imports "
                "self-contained models only",
                hint="save it with all tensors inside the file (onnx.save_model with "
                     "save_as_external_data=False)")
        import onnxruntime as ort

        options = ort.SessionOptions()
        # DuckDB already calls the function from one thread per vector.
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 3
        try:
            session = ort.InferenceSession(self.data, options,
                                           providers=["CPUExecutionProvider"])
        except _ort_errors() as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            raise ImportedModelError(
                f"onnxruntime cannot load the ONNX model: {first or type(exc).__name__}"
            ) from None
        self._feeds = self._plan(session)
        outputs = session.get_outputs()
        if not outputs:
            raise ImportedModelError("the ONNX model has no output")
        first_output = outputs[0]
        if first_output.type not in ONNX_TENSOR_TYPES or not _one_per_row(first_output.shape):
            raise ImportedModelMismatch(
                f"the ONNX model's first output {first_output.name!r} is "
                f"{first_output.type} of shape {_shape_text(first_output.shape)}; QuackML "
                "needs one number or boolean per row: a tensor of shape [N] or [N, 1]")
        self._output = first_output.name
        self._session = session
        return session

    def _plan(self, session: Any) -> list[tuple[str, Any, list[int], int]]:
        inputs = session.get_inputs()
        n = self.n_features
        for i in inputs:
            if i.type not in ONNX_TENSOR_TYPES:
                raise ImportedModelMismatch(
                    f"ONNX input {i.name!r} is {i.type}; QuackML feeds numeric and boolean "
                    "tensors only")
        if len(inputs) == 1 and n > 1:
            shape = inputs[0].shape
            width = shape[1] if shape is not None and len(shape) == 2 else None
            if shape is None or len(shape) != 2 or (isinstance(width, int) and width != n):
                raise ImportedModelError(
                    f"the ONNX model's input {inputs[0].name!r} has shape "
                    f"{_shape_text(shape)}; FUNCTION declares {n} argument types, so it "
                    f"needs shape [N, {n}]")
            return [(inputs[0].name, ONNX_TENSOR_TYPES[inputs[0].type], list(range(n)), 2)]
        if len(inputs) != n:
            raise ImportedModelError(
                f"the ONNX model takes {len(inputs)} inputs; FUNCTION declares {n} "
                "argument types",
                hint="the model needs one input of shape [N, k] for k arguments, or one "
                     "input of shape [N] or [N, 1] per argument")
        feeds = []
        for index, i in enumerate(inputs):
            if not _one_per_row(i.shape):
                raise ImportedModelError(
                    f"the ONNX model's input {i.name!r} has shape {_shape_text(i.shape)}; "
                    "one input per argument needs shape [N] or [N, 1]")
            feeds.append((i.name, ONNX_TENSOR_TYPES[i.type], [index], len(i.shape)))
        return feeds

    def check(self, argument_types: list[str], returns: str) -> None:
        """Load the model and check its signature against FUNCTION's argument types and
        RETURNS; then score two probe rows. Raises ImportedModelError (22023: arity,
        shapes, unreadable) or ImportedModelMismatch (42804: types)."""
        if len(argument_types) != self.n_features:
            raise ValueError("argument types and n_features disagree")
        session = self._load()
        for name, dtype, indices, _ in self._feeds:
            wanted = _value_class(dtype)
            for index in indices:
                given = _type_class(argument_types[index])
                if (wanted == "integer" and given == "float") or \
                        (wanted == "boolean" and given != "boolean"):
                    raise ImportedModelMismatch(
                        f"ONNX input {name!r} is {np.dtype(dtype).name}; FUNCTION argument "
                        f"{index + 1} is {argument_types[index]}",
                        hint="declare an integer (or boolean) argument type for an integer "
                             "input, boolean for a boolean input")
        output_type = session.get_outputs()[0].type
        if _type_class(returns) == "boolean" and output_type != "tensor(bool)":
            raise ImportedModelMismatch(
                f"the ONNX model's output {self._output!r} is {output_type}; RETURNS "
                f"{returns} needs tensor(bool)")
        probe = np.zeros((2, self.n_features), dtype=np.float64)
        try:
            out = self._run(probe)
        except _ort_errors() as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            raise ImportedModelError(
                f"the ONNX model fails on a probe row: {first or type(exc).__name__}") from None
        if out.shape != (2,):
            raise ImportedModelMismatch(
                f"the ONNX model answered {out.size} values for 2 rows; QuackML needs one "
                "number per row")

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return self._run(frame.to_numpy(dtype=np.float64, na_value=np.nan))

    def _run(self, values: np.ndarray) -> np.ndarray:
        """One onnxruntime run for all rows (NULL as NaN in ``values``)."""
        session = self._load()
        feed = {}
        for name, dtype, indices, rank in self._feeds:
            columns = values[:, indices]
            if np.dtype(dtype).kind != "f" and np.isnan(columns).any():
                raise ImportedModelNullInput(
                    f"a NULL argument for the ONNX model's {np.dtype(dtype).name} input "
                    f"{name!r}, which has no missing value")
            array = np.ascontiguousarray(columns.astype(dtype))
            feed[name] = array if rank == 2 else array.reshape(-1)
        out = session.run([self._output], feed)[0]
        return np.asarray(out, dtype=np.float64).reshape(len(values), -1)[:, 0] \
            if len(values) else np.empty(0, dtype=np.float64)


def _ort_errors() -> tuple[type[BaseException], ...]:
    """onnxruntime's exception types (they derive from Exception directly)."""
    from onnxruntime.capi import onnxruntime_pybind11_state as state

    names = ("Fail", "InvalidArgument", "InvalidGraph", "InvalidProtobuf", "NoSuchFile",
             "NoModel", "ModelLoaded", "NotImplemented", "RuntimeException", "EPFail")
    found = tuple(getattr(state, n) for n in names if hasattr(state, n))
    return (*found, RuntimeError, ValueError, TypeError)


def _one_per_row(shape: Any) -> bool:
    """A shape of one value per row: [N] or [N, 1] (N symbolic or any number)."""
    if shape is None:
        return False
    if len(shape) == 1:
        return True
    return len(shape) == 2 and (shape[1] == 1 or not isinstance(shape[1], int))


def _shape_text(shape: Any) -> str:
    if shape is None:
        return "unknown"
    return "[" + ", ".join("N" if not isinstance(d, int) else str(d) for d in shape) + "]"


def _uses_external_data(model: Any) -> bool:
    """True when any tensor of the model (graph, subgraphs, attributes) is stored in an
    external file: such a model would make onnxruntime read files of the server."""
    from onnx import TensorProto

    def tensors_of(graph: Any) -> Any:
        yield from graph.initializer
        for sparse in graph.sparse_initializer:
            yield sparse.values
            yield sparse.indices
        for node in graph.node:
            for attr in node.attribute:
                if attr.HasField("t"):
                    yield attr.t
                yield from attr.tensors
                if attr.HasField("g"):
                    yield from tensors_of(attr.g)
                for sub in attr.graphs:
                    yield from tensors_of(sub)

    graphs = [model.graph]
    for function in model.functions:
        for node in function.node:
            for attr in node.attribute:
                if attr.HasField("t") and attr.t.data_location == TensorProto.EXTERNAL:
                    return True
    return any(t.data_location == TensorProto.EXTERNAL or len(t.external_data) > 0
               for g in graphs for t in tensors_of(g))


class RemoteEndpoint:
    """An HTTP endpoint that takes CSV rows and answers one value per line."""

    def __init__(self, url: str, max_batch_rows: int, timeout_s: float = REMOTE_TIMEOUT_S):
        self.url = url
        self.max_batch_rows = max_batch_rows
        self.timeout_s = timeout_s

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        out = np.empty(len(frame), dtype=np.float64)
        values = frame.to_numpy(dtype=np.float64, na_value=np.nan)
        step = max(1, self.max_batch_rows)
        for start in range(0, len(values), step):
            batch = values[start:start + step]
            out[start:start + len(batch)] = self._call(batch)
        return out

    def _call(self, batch: np.ndarray) -> np.ndarray:
        text = io.StringIO()
        for row in batch:
            text.write(",".join(_csv_value(float(v)) for v in row))
            text.write("\n")
        request = urllib.request.Request(self.url, data=text.getvalue().encode("utf-8"),
                                         headers={"Content-Type": "text/csv"}, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                body = response.read().decode("utf-8")
        except (urllib.error.URLError, OSError) as exc:
            raise RemoteModelError(f"remote model {self.url} failed: {exc}") from None
        lines = [line.strip() for line in body.strip().splitlines()]
        if len(lines) != len(batch):
            raise RemoteModelError(
                f"remote model {self.url} answered {len(lines)} values for {len(batch)} rows")
        try:
            return np.array([float(v) if v else np.nan for v in lines], dtype=np.float64)
        except ValueError:
            raise RemoteModelError(f"remote model {self.url} answered a non-numeric value") \
                from None


def _csv_value(v: float) -> str:
    if math.isnan(v):
        return ""
    if v.is_integer() and abs(v) < 1e15:
        return str(int(v))
    return repr(v)
