"""A model artifact in a form other tools load: EXPORT MODEL's three formats.

- NATIVE: a tar of the learner library's own model file (LightGBM text, XGBoost
  UBJSON, as the library saves them) and ``quackml.json``, the input encoding (feature
  order, types, the category lists whose positions are the codes), the labels and the
  decision threshold. With the library and the JSON the predictions are identical.
- ONNX: one ONNX model that takes the features by name (numbers as float, categories
  as strings) and does the encoding itself (the category mapping is an ONNX
  LabelEncoder), the trees (onnxmltools for LightGBM and XGBoost, skl2onnx for
  scikit-learn's random forests and extra trees), then the labels: outputs ``label``
  (the decision threshold applied) and ``probabilities`` (in label order) for
  classifiers, ``variable`` for regression.
- MLFLOW: a tar of an MLflow model directory: the ONNX model with MLflow's ``onnx``
  flavour and its ``python_function`` loader, so ``mlflow.pyfunc.load_model`` loads it
  without QuackML (written by hand, a small YAML file: the server does not need MLflow).

Everything is built in memory; the server writes no file.
"""

from __future__ import annotations

import io
import json
import math
import platform
import tarfile
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from catalog.artifact import ModelArtifact
from catalog.errors import CatalogError
from catalog.estimators import HardLabelClassifier, LightGBMBooster
from catalog.spec import Column, FeatureKind, ProblemType

NATIVE_JSON = "quackml.json"
ONNX_FILE = "model.onnx"
ONNX_OPSET = 15   # the highest onnxmltools' LightGBM converter supports
ONNX_ML_OPSET = 2   # LabelEncoder with string keys and float values


class NotExportable(CatalogError):
    """The model cannot be exported in this format."""

    sqlstate = "0A000"


@dataclass(frozen=True)
class Booster:
    """The tree model inside an artifact, as its library keeps it."""

    library: str           # "lightgbm" or "xgboost"
    model: Any             # lightgbm.Booster or xgboost.Booster
    hard_labels: bool      # XGBoost binary:hinge / multi:softmax: predicts label indices
    estimator: Any         # the scikit-learn wrapper (XGBoost), for onnxmltools


def booster_of(artifact: ModelArtifact, formats: str, forests: bool = False) -> Booster:
    """The LightGBM or XGBoost booster of a trained model (with ``forests``, a
    scikit-learn random forest or extra-trees model too: ONNX has them, NATIVE not),
    or NotExportable naming what exports."""
    estimator = artifact.estimator
    hard = isinstance(estimator, HardLabelClassifier)
    if hard:
        estimator = estimator.estimator
    kind = type(estimator).__module__.split(".")[0]
    if isinstance(estimator, LightGBMBooster) or kind == "lightgbm":
        return Booster("lightgbm", estimator.booster_, hard, estimator)
    if kind == "xgboost" and hasattr(estimator, "get_booster"):
        return Booster("xgboost", estimator.get_booster(), hard, estimator)
    if forests and kind == "sklearn" and type(estimator).__name__ in _FORESTS:
        return Booster("sklearn", None, False, estimator)
    if type(estimator).__name__ == "PreprocessedEstimator":
        name = "a model with PREPROCESSORS"
    elif artifact.learner:
        name = f"a {artifact.learner} model"
    else:
        name = f"a {type(estimator).__name__} model"
    exports = ("NATIVE exports LightGBM and XGBoost models; ONNX and MLFLOW those and "
               "random forest (rf) and extra trees (extra_tree) models")
    raise NotExportable(f"{name} cannot be exported as {formats}",
                        hint=f"{exports}, trained by CREATE MODEL without PREPROCESSORS "
                             "(SHOW MODEL names the learner)")


_FORESTS = ("RandomForestClassifier", "RandomForestRegressor", "ExtraTreesClassifier",
            "ExtraTreesRegressor")


def _encoding(column: Column, category_codes: bool) -> str:
    kind = column.kind
    if kind is FeatureKind.NUMERIC:
        return "number"
    if kind is FeatureKind.BOOLEAN:
        return "boolean: 1.0 for true, 0.0 for false"
    if kind is FeatureKind.TEMPORAL:
        if column.type.upper().startswith("TIME") and "STAMP" not in column.type.upper():
            return "time: seconds since midnight"
        return "date/timestamp: seconds since 1970-01-01 00:00:00 UTC"
    missing = "-1" if category_codes else "missing (NaN)"
    return (f"category: the position of the value in 'categories' (0-based); NULL and "
            f"values not in the list are {missing}")


def native_manifest(artifact: ModelArtifact, booster: Booster, model_file: str,
                    about: dict[str, Any]) -> dict[str, Any]:
    codes = artifact.category_codes
    features = []
    for column, categories in zip(artifact.features, artifact.categories, strict=True):
        entry: dict[str, Any] = {"name": column.name, "type": column.type,
                                 "encoding": _encoding(column, codes)}
        if categories is not None:
            entry["categories"] = list(categories)
        features.append(entry)
    classification = artifact.problem_type.is_classification
    if not classification:
        output = "the library's prediction is the predicted value"
    elif booster.hard_labels:
        output = "the library's prediction is the index of the predicted label in 'labels'"
    elif len(artifact.labels) == 2:
        output = ("the library's prediction is the probability of labels[1]; the predicted "
                  "label is labels[positive_index] when the probability of that label is >= "
                  "threshold, else the other label (argmax when threshold is null)")
    else:
        output = ("the library's prediction is one probability per label, in the order of "
                  "'labels'; the predicted label is the most probable one")
    return {
        **about,
        "library": booster.library,
        "model_file": model_file,
        "problem_type": artifact.problem_type.value,
        "target": {"name": artifact.target.name, "type": artifact.target.type},
        "features": features,
        "input": ("one float64 row per prediction, the features in this order, encoded as "
                  "'encoding' says; NULL is missing (NaN)"),
        "missing_category_code": -1 if codes else None,
        "labels": [_json_label(v) for v in artifact.labels],
        "threshold": artifact.threshold,
        "positive_index": artifact.positive_index,
        "output": output,
        "learner": artifact.learner,
    }


def _json_label(value: object) -> object:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def native(artifact: ModelArtifact, about: dict[str, Any]) -> bytes:
    """NATIVE: a tar of the library's model file and quackml.json."""
    booster = booster_of(artifact, "NATIVE")
    if booster.library == "lightgbm":
        model_file = "model.txt"
        data = str(booster.model.model_to_string(num_iteration=None)).encode("utf-8")
    else:
        model_file = "model.ubj"
        data = bytes(booster.model.save_raw(raw_format="ubj"))
    manifest = native_manifest(artifact, booster, model_file, about)
    return tar_of({model_file: data,
                   NATIVE_JSON: json.dumps(manifest, indent=1).encode("utf-8")})


def tar_of(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    now = int(time.time())
    with tarfile.open(fileobj=out, mode="w") as tar:
        folders = sorted({name.rsplit("/", 1)[0] for name in files if "/" in name})
        for folder in folders:
            info = tarfile.TarInfo(folder)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, now
            tar.addfile(info)
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, now
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


# -- ONNX --------------------------------------------------------------------------

def onnx_model(artifact: ModelArtifact, formats: str = "ONNX") -> Any:
    """The ONNX model (an onnx.ModelProto) with the encoding, the trees and the labels."""
    booster = booster_of(artifact, formats, forests=True)
    if booster.hard_labels:
        raise NotExportable(f"an XGBoost model with a hard-label objective cannot be exported "
                            f"as {formats}", hint="use FORMAT NATIVE")
    import onnx
    from onnx import TensorProto, helper

    n = len(artifact.features)
    trees = _convert_trees(booster, n, artifact.problem_type)
    codes_missing = -1.0 if artifact.category_codes else math.nan
    nodes: list[Any] = []
    inputs, columns = [], []
    initializers: list[Any] = []
    for i, (column, categories) in enumerate(zip(artifact.features, artifact.categories,
                                                 strict=True)):
        name = f"feature_{i}"
        if categories is not None:
            inputs.append(helper.make_tensor_value_info(column.name, TensorProto.STRING,
                                                        [None, 1]))
            nodes.append(helper.make_node(
                "LabelEncoder", [column.name], [name], domain="ai.onnx.ml",
                keys_strings=list(categories),
                values_floats=[float(c) for c in range(len(categories))],
                default_float=codes_missing))
        else:
            inputs.append(helper.make_tensor_value_info(column.name, TensorProto.FLOAT,
                                                        [None, 1]))
            nodes.append(helper.make_node("Identity", [column.name], [name]))
        columns.append(name)
    nodes.append(helper.make_node("Concat", columns, ["tree_input"], axis=1))
    # the converted trees, their input renamed to ours and their names prefixed
    tree_graph = trees.graph
    prefix = "trees_"
    renamed = {tree_graph.input[0].name: "tree_input"}
    for node in tree_graph.node:
        new = helper.make_node(node.op_type, [renamed.get(x, prefix + x) for x in node.input],
                               [prefix + x for x in node.output],
                               name=prefix + node.name if node.name else None,
                               domain=node.domain)
        new.attribute.extend(node.attribute)
        nodes.append(new)
    for init in tree_graph.initializer:
        copy = onnx.TensorProto()
        copy.CopyFrom(init)
        copy.name = prefix + init.name
        initializers.append(copy)
    outputs = []
    if artifact.problem_type.is_classification:
        proba = prefix + tree_graph.output[1].name
        nodes.append(helper.make_node("Identity", [proba], ["probabilities"]))
        outputs.append(helper.make_tensor_value_info("probabilities", TensorProto.FLOAT,
                                                     [None, len(artifact.labels)]))
        label_nodes, label_inits, label_out = _label_nodes(artifact, "probabilities")
        nodes += label_nodes
        initializers += label_inits
        outputs.insert(0, label_out)
    else:
        value = prefix + tree_graph.output[0].name
        nodes.append(helper.make_node("Reshape", [value, "variable_shape"], ["variable"]))
        initializers.append(helper.make_tensor("variable_shape", TensorProto.INT64, [2],
                                               [-1, 1]))
        outputs.append(helper.make_tensor_value_info("variable", TensorProto.FLOAT, [None, 1]))
    graph = helper.make_graph(nodes, "quackml", inputs, outputs, initializers)
    ml_opset = max([ONNX_ML_OPSET] + [o.version for o in trees.opset_import
                                      if o.domain == "ai.onnx.ml"])
    model = helper.make_model(graph, producer_name="QuackML", opset_imports=[
        helper.make_opsetid("", ONNX_OPSET), helper.make_opsetid("ai.onnx.ml", ml_opset)])
    model.ir_version = min(model.ir_version, 9)
    onnx.checker.check_model(model)
    return model


def _convert_trees(booster: Booster, n: int, problem: ProblemType) -> Any:
    from onnxmltools.convert import convert_lightgbm, convert_xgboost
    from onnxmltools.convert.common.data_types import FloatTensorType

    initial = [("input", FloatTensorType([None, n]))]
    if booster.library == "sklearn":
        from skl2onnx import convert_sklearn
        from skl2onnx.common.data_types import FloatTensorType as SklFloatTensorType

        converted = convert_sklearn(booster.estimator,
                                    initial_types=[("input", SklFloatTensorType([None, n]))],
                                    target_opset={"": ONNX_OPSET, "ai.onnx.ml": 3},
                                    options={id(booster.estimator): {"zipmap": False}}
                                    if problem.is_classification else None)
        _route_missing(converted, booster.estimator)
        return converted
    if booster.library == "lightgbm":
        return convert_lightgbm(booster.model, initial_types=initial, target_opset=ONNX_OPSET,
                                zipmap=False)
    # onnxmltools reads the features by XGBoost's default names f0, f1, ...: a copy
    # of the model without the column names it was fitted with
    plain = booster.model.copy()
    plain.feature_names = None
    plain.feature_types = None
    wrapper = type(booster.estimator)()
    wrapper.load_model(bytearray(plain.save_raw(raw_format="ubj")))
    return convert_xgboost(wrapper, initial_types=initial, target_opset=ONNX_OPSET)


def _route_missing(model: Any, forest: Any) -> None:
    """Send a missing value (NaN) down the branch scikit-learn sends it
    (``tree_.missing_go_to_left``), which skl2onnx leaves out: without it onnxruntime
    sends NaN to the false (right) branch everywhere."""
    from onnx import helper

    trees = [estimator.tree_ for estimator in forest.estimators_]
    for node in model.graph.node:
        if not node.op_type.startswith("TreeEnsemble"):
            continue
        attributes = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        tracks = []
        for tree, node_id, mode in zip(attributes["nodes_treeids"], attributes["nodes_nodeids"],
                                       attributes["nodes_modes"], strict=True):
            left = getattr(trees[tree], "missing_go_to_left", None)
            tracks.append(int(mode != b"LEAF" and left is not None and bool(left[node_id])))
        kept = [a for a in node.attribute if a.name != "nodes_missing_value_tracks_true"]
        del node.attribute[:]
        node.attribute.extend(kept)
        node.attribute.append(helper.make_attribute("nodes_missing_value_tracks_true", tracks))


def _label_nodes(artifact: ModelArtifact, proba: str) -> tuple[list[Any], list[Any], Any]:
    """Nodes from the probabilities to the label value, as QuackML decides it: the
    threshold on the positive label's probability (binary) or the argmax."""
    from onnx import TensorProto, helper

    labels = artifact.labels
    nodes, inits = [], []
    if artifact.threshold is not None and len(labels) == 2:
        positive = artifact.positive_index
        inits += [helper.make_tensor("positive_col", TensorProto.INT64, [1], [positive]),
                  helper.make_tensor("threshold", TensorProto.FLOAT, [],
                                     [float(np.float32(artifact.threshold))]),
                  helper.make_tensor("index_if_true", TensorProto.INT64, [], [positive]),
                  helper.make_tensor("index_if_false", TensorProto.INT64, [], [1 - positive])]
        nodes += [helper.make_node("Gather", [proba, "positive_col"], ["positive_p"], axis=1),
                  helper.make_node("GreaterOrEqual", ["positive_p", "threshold"],
                                   ["is_positive"]),
                  helper.make_node("Where", ["is_positive", "index_if_true", "index_if_false"],
                                   ["label_index_2d"]),
                  helper.make_node("Squeeze", ["label_index_2d", "squeeze_axes"],
                                   ["label_index"])]
        inits.append(helper.make_tensor("squeeze_axes", TensorProto.INT64, [1], [1]))
    else:
        nodes.append(helper.make_node("ArgMax", [proba], ["label_index"], axis=1, keepdims=0))
    values: list[Any] = list(labels)
    if all(isinstance(v, bool) for v in values):
        tensor = helper.make_tensor("label_values", TensorProto.BOOL, [len(values)], values)
        elem = TensorProto.BOOL
    elif all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        tensor = helper.make_tensor("label_values", TensorProto.INT64, [len(values)], values)
        elem = TensorProto.INT64
    elif all(isinstance(v, float) for v in values):
        tensor = helper.make_tensor("label_values", TensorProto.DOUBLE, [len(values)], values)
        elem = TensorProto.DOUBLE
    else:
        encoded: list[Any] = [str(v).encode("utf-8") for v in values]
        tensor = helper.make_tensor("label_values", TensorProto.STRING, [len(values)], encoded)
        elem = TensorProto.STRING
    inits.append(tensor)
    nodes.append(helper.make_node("Gather", ["label_values", "label_index"], ["label"], axis=0))
    return nodes, inits, helper.make_tensor_value_info("label", elem, [None])


def onnx_bytes(artifact: ModelArtifact, about: dict[str, Any]) -> bytes:
    """ONNX: the model, with ``about`` (model name, version, ...) as its metadata."""
    from onnx import helper

    model = onnx_model(artifact)
    helper.set_model_props(model, {"quackml": json.dumps(about)})
    return bytes(model.SerializeToString())


# -- MLflow ------------------------------------------------------------------------

def mlflow_tar(artifact: ModelArtifact, about: dict[str, Any], folder: str) -> bytes:
    """MLFLOW: an MLflow model directory ``folder/`` as a tar: the ONNX model with the
    ``onnx`` flavour, loaded by ``mlflow.pyfunc.load_model`` through mlflow.onnx (which
    needs onnx and onnxruntime where it is loaded)."""
    model = onnx_model(artifact, "MLFLOW")
    import onnx

    data = bytes(model.SerializeToString())
    inputs = []
    for column, categories in zip(artifact.features, artifact.categories, strict=True):
        inputs.append({"type": "tensor", "name": column.name, "tensor-spec": {
            "dtype": "object" if categories is not None else "float32", "shape": [-1, 1]}})
    outputs = [{"type": "tensor", "name": o.name, "tensor-spec": {
        "dtype": _numpy_name(o.type.tensor_type.elem_type),
        "shape": [-1] + [-1 for _ in o.type.tensor_type.shape.dim[1:]]}}
        for o in model.graph.output]
    mlmodel = "\n".join([
        "artifact_path: model",
        "flavors:",
        "  onnx:",
        "    code: null",
        f"    data: {ONNX_FILE}",
        "    providers:",
        "    - CPUExecutionProvider",
        f"    onnx_version: {onnx.__version__}",
        "  python_function:",
        f"    data: {ONNX_FILE}",
        "    env:",
        "      virtualenv: python_env.yaml",
        "      conda: conda.yaml",
        "    loader_module: mlflow.onnx",
        f"    python_version: '{platform.python_version()}'",
        f"model_uuid: {about.get('uuid', '')}",
        f"utc_time_created: '{time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime())}'",
        "signature:",
        f"  inputs: {_yaml_text(json.dumps(inputs))}",
        f"  outputs: {_yaml_text(json.dumps(outputs))}",
        "metadata:",
        f"  quackml: {_yaml_text(json.dumps(about))}",
        "",
    ])
    requirements = "onnx\nonnxruntime\n"
    conda = (f"channels:\n- conda-forge\ndependencies:\n- python={platform.python_version()}\n"
             "- pip\n- pip:\n"
             "  - mlflow\n  - onnx\n  - onnxruntime\nname: mlflow-env\n")
    python_env = (f"python: {platform.python_version()}\nbuild_dependencies:\n- pip\n"
                  "dependencies:\n- -r requirements.txt\n")
    return tar_of({f"{folder}/MLmodel": mlmodel.encode("utf-8"),
                   f"{folder}/{ONNX_FILE}": data,
                   f"{folder}/requirements.txt": requirements.encode("utf-8"),
                   f"{folder}/conda.yaml": conda.encode("utf-8"),
                   f"{folder}/python_env.yaml": python_env.encode("utf-8")})


def _yaml_text(text: str) -> str:
    """A YAML single-quoted scalar (a quote inside is doubled)."""
    return "'" + text.replace("'", "''") + "'"


def _numpy_name(elem_type: int) -> str:
    from onnx import TensorProto

    names: dict[int, str] = {TensorProto.FLOAT: "float32", TensorProto.DOUBLE: "float64",
                             TensorProto.INT64: "int64", TensorProto.BOOL: "bool",
                             TensorProto.STRING: "object"}
    return names.get(elem_type, "float32")
