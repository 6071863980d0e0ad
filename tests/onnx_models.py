"""Small ONNX models for the bring-your-own-model tests, built by hand with
``onnx.helper`` (no converter needed): each is a few nodes whose output the
tests compare with onnxruntime's own run of the same file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
WEIGHTS = np.array([[1.5], [-2.0], [0.25]], dtype=np.float32)
BIAS = np.array([0.5], dtype=np.float32)


def _save(graph: onnx.GraphProto, path: Path) -> Path:
    model = helper.make_model(graph, opset_imports=[helper.make_operatorsetid("", OPSET)],
                              producer_name="quackml-tests")
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save_model(model, str(path))
    return path


def linear_matrix(path: Path, features: int = 3) -> Path:
    """One float input [N, features] -> tanh(X @ W + b) as float [N, 1]."""
    weights = WEIGHTS[:features]
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["X", "W"], ["XW"]),
         helper.make_node("Add", ["XW", "B"], ["Z"]),
         helper.make_node("Tanh", ["Z"], ["Y"])],
        "linear", [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["N", features])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, ["N", 1])],
        [numpy_helper.from_array(weights, "W"), numpy_helper.from_array(BIAS, "B")])
    return _save(graph, path)


def per_column(path: Path) -> Path:
    """Inputs a (double [N]) and k (int64 [N]) -> a * 2 + k as double [N]."""
    graph = helper.make_graph(
        [helper.make_node("Cast", ["k"], ["kd"], to=TensorProto.DOUBLE),
         helper.make_node("Mul", ["a", "two"], ["a2"]),
         helper.make_node("Add", ["a2", "kd"], ["y"])],
        "columns", [helper.make_tensor_value_info("a", TensorProto.DOUBLE, ["N"]),
                    helper.make_tensor_value_info("k", TensorProto.INT64, ["N"])],
        [helper.make_tensor_value_info("y", TensorProto.DOUBLE, ["N"])],
        [numpy_helper.from_array(np.array(2.0), "two")])
    return _save(graph, path)


def negation(path: Path) -> Path:
    """One boolean input [N] -> its negation, boolean [N]."""
    graph = helper.make_graph(
        [helper.make_node("Not", ["b"], ["nb"])],
        "negation", [helper.make_tensor_value_info("b", TensorProto.BOOL, ["N"])],
        [helper.make_tensor_value_info("nb", TensorProto.BOOL, ["N"])])
    return _save(graph, path)


def string_output(path: Path) -> Path:
    """One float input [N, 1] -> a string label per row (not a number)."""
    graph = helper.make_graph(
        [helper.make_node("Cast", ["X"], ["S"], to=TensorProto.STRING)],
        "labels", [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["N", 1])],
        [helper.make_tensor_value_info("S", TensorProto.STRING, ["N", 1])])
    return _save(graph, path)


def external_data(path: Path) -> Path:
    """The linear model with its weights in a file beside it (external data)."""
    linear_matrix(path)
    model = onnx.load_model(str(path))
    onnx.save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                    location=path.name + ".data", size_threshold=0)
    return path
