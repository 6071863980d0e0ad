"""How each kind of estimator is stored in an artifact, without pickle.

:func:`encode` turns a fitted estimator into a JSON description (a small tree
of ``{"kind": ...}`` objects) plus the files it names; :func:`decode` is its
inverse. Every file is in a format whose reader builds data, never runs code:

=========================================================  =====================================
estimator                                                  stored as
=========================================================  =====================================
LightGBM scikit-learn estimators, ``LightGBMBooster``      LightGBM model text (``.txt``)
XGBoost scikit-learn estimators                            XGBoost UBJSON (``.ubj``)
scikit-learn estimators and pipelines                      skops (``.skops``)
``HardLabelClassifier``, ``PreprocessedEstimator``,        JSON fields, plus the files of what
``RemoteEndpoint``                                         they wrap
``ImportedBooster``                                        the imported model file's bytes
                                                           (XGBoost JSON/UBJ, LightGBM text)
``OnnxModel``                                              the imported ONNX file's bytes
                                                           (``.onnx``, protobuf: data only)
=========================================================  =====================================

Invariants:

- anything else is refused when written (``TypeError``): a new kind of
  estimator gets a format here, never a pickle;
- a skops file may hold skops' default types and :data:`TRUSTED_SKOPS_TYPES`
  only. Writing checks it (so training fails, not scoring); reading refuses
  a file naming any other type before anything is built from it, and passes
  skops exactly that list (never ``trusted=True``);
- :func:`decode` is handed only bytes whose sha256 matched the manifest
  (catalog.artifact); what it cannot decode raises ArtifactCorrupt.
"""

from __future__ import annotations

import zipfile
from collections.abc import Mapping
from typing import Any

from catalog.errors import ArtifactCorrupt, CatalogError
from catalog.estimators import HardLabelClassifier, LightGBMBooster
from catalog.imported import ImportedBooster, OnnxModel, RemoteEndpoint
from catalog.preprocessing import ColumnSet, FramePreprocessor, PreprocessedEstimator

# The types QuackML's scikit-learn objects hold beyond those skops trusts by default
# (scikit-learn estimators, NumPy arrays, ...): tree structures of forests, the MLP's
# optimizer, the column selectors of automl.learners, dtypes, and catalog's own
# DateTimeVectorizer (see catalog.preprocessing).
TRUSTED_SKOPS_TYPES: tuple[str, ...] = (
    "catalog.preprocessing.DateTimeVectorizer",
    "numpy.dtype",
    "numpy.floating",
    "numpy.integer",
    "sklearn.compose._column_transformer.make_column_selector",
    "sklearn.neural_network._stochastic_optimizers.AdamOptimizer",
    "sklearn.tree._tree.Tree",
)

Spec = dict[str, Any]  # one node of the JSON description


class PartFiles:
    """The files of one artifact being written: file name -> bytes. Names are
    ``<stem>.<role>.<extension>``, so several artifacts can share a folder."""

    def __init__(self, stem: str):
        self.stem = stem
        self.files: dict[str, bytes] = {}

    def add(self, role: str, extension: str, data: bytes) -> str:
        name = f"{self.stem}.{role}.{extension}"
        if name in self.files:
            raise ValueError(f"two artifact parts named {name}")
        self.files[name] = data
        return name


# -- writing -------------------------------------------------------------------------

def encode(estimator: Any, files: PartFiles, role: str = "estimator") -> Spec:
    """The JSON description of ``estimator``; its files go into ``files``."""
    if isinstance(estimator, PreprocessedEstimator):
        sets = []
        for i, (column_set, categorical, pipeline) in enumerate(estimator.preprocessor.fitted):
            sets.append({
                "columns": list(column_set.columns),
                "transformers": list(column_set.transformers),
                "categorical": categorical,
                "pipeline": (None if pipeline is None
                             else files.add(f"preprocessor{i}", "skops", _skops_bytes(pipeline))),
            })
        return {"kind": "preprocessed", "category_codes": estimator.category_codes,
                "sets": sets, "estimator": encode(estimator.estimator, files, role)}
    if isinstance(estimator, HardLabelClassifier):
        return {"kind": "hard_label", "n_classes": estimator.n_classes,
                "estimator": encode(estimator.estimator, files, role)}
    if isinstance(estimator, ImportedBooster):
        extension = "txt" if estimator.library == "lightgbm" else "xgb"
        return {"kind": "imported_booster", "library": estimator.library,
                "n_features": estimator.n_features,
                "file": files.add(role, extension, bytes(estimator.data))}
    if isinstance(estimator, OnnxModel):
        return {"kind": "onnx", "n_features": estimator.n_features,
                "file": files.add(role, "onnx", bytes(estimator.data))}
    if isinstance(estimator, RemoteEndpoint):
        return {"kind": "remote", "url": estimator.url,
                "max_batch_rows": estimator.max_batch_rows, "timeout_s": estimator.timeout_s}
    if isinstance(estimator, LightGBMBooster):
        return {"kind": "lightgbm", "classifier": estimator.classifier,
                "file": files.add(role, "txt", _lightgbm_text(estimator.booster_))}
    library = type(estimator).__module__.split(".")[0]
    if library == "lightgbm":
        import lightgbm as lgb

        if isinstance(estimator, lgb.LGBMModel):
            return {"kind": "lightgbm", "classifier": isinstance(estimator, lgb.LGBMClassifier),
                    "file": files.add(role, "txt", _lightgbm_text(estimator.booster_))}
    if library == "xgboost":
        import xgboost as xgb

        if isinstance(estimator, xgb.XGBClassifier | xgb.XGBRegressor):
            data = bytes(estimator.get_booster().save_raw(raw_format="ubj"))
            return {"kind": "xgboost", "classifier": isinstance(estimator, xgb.XGBClassifier),
                    "enable_categorical": bool(estimator.enable_categorical),
                    "file": files.add(role, "ubj", data)}
    if library == "sklearn":
        return {"kind": "sklearn", "file": files.add(role, "skops", _skops_bytes(estimator))}
    raise TypeError(f"QuackML cannot store a {type(estimator).__module__}."
                    f"{type(estimator).__qualname__} without pickle")


def _lightgbm_text(booster: Any) -> bytes:
    # num_iteration=None keeps the best iteration when there is one, as predict does.
    return str(booster.model_to_string(num_iteration=None)).encode("utf-8")


def _skops_bytes(obj: Any) -> bytes:
    import skops.io as sio

    data: bytes = sio.dumps(obj, compression=zipfile.ZIP_DEFLATED)
    unknown = sorted(set(sio.get_untrusted_types(data=data)) - set(TRUSTED_SKOPS_TYPES))
    if unknown:
        raise TypeError(f"{type(obj).__name__} holds types QuackML does not load back: "
                        f"{', '.join(unknown)}")
    return data


# -- reading -------------------------------------------------------------------------

def decode(spec: Spec, files: Mapping[str, bytes]) -> Any:
    """The estimator ``spec`` describes, built from ``files`` (checked bytes)."""
    match spec["kind"]:
        case "preprocessed":
            fitted = []
            for entry in spec["sets"]:
                column_set = ColumnSet(tuple(str(c) for c in entry["columns"]),
                                       tuple(str(t) for t in entry["transformers"]))
                pipeline = (None if entry["pipeline"] is None
                            else _skops_load(entry["pipeline"], files))
                fitted.append((column_set, bool(entry["categorical"]), pipeline))
            preprocessor = FramePreprocessor([column_set for column_set, _, _ in fitted])
            preprocessor.fitted = fitted
            return PreprocessedEstimator(preprocessor, decode(spec["estimator"], files),
                                         bool(spec["category_codes"]))
        case "hard_label":
            return HardLabelClassifier(decode(spec["estimator"], files), int(spec["n_classes"]))
        case "imported_booster":
            try:
                return ImportedBooster(str(spec["library"]), _file(spec, files),
                                       int(spec["n_features"]))
            except CatalogError as exc:
                raise ArtifactCorrupt(f"the imported model cannot be read: {exc}") from None
        case "onnx":
            # Loaded (onnxruntime session) at the first prediction; checked at import.
            return OnnxModel(_file(spec, files), int(spec["n_features"]))
        case "remote":
            return RemoteEndpoint(str(spec["url"]), int(spec["max_batch_rows"]),
                                  float(spec["timeout_s"]))
        case "lightgbm":
            import lightgbm as lgb

            try:
                booster = lgb.Booster(model_str=_file(spec, files).decode("utf-8"))
            except (lgb.basic.LightGBMError, UnicodeDecodeError) as exc:
                raise ArtifactCorrupt(f"the LightGBM model cannot be read: {exc}") from None
            return LightGBMBooster(booster, bool(spec["classifier"]))
        case "xgboost":
            import xgboost as xgb

            model = xgb.XGBClassifier() if spec["classifier"] else xgb.XGBRegressor()
            try:
                model.load_model(bytearray(_file(spec, files)))
            except xgb.core.XGBoostError as exc:
                raise ArtifactCorrupt(f"the XGBoost model cannot be read: {exc}") from None
            model.set_params(enable_categorical=bool(spec["enable_categorical"]))
            return model
        case "sklearn":
            return _skops_load(spec["file"], files)
    raise ArtifactCorrupt(f"the artifact holds an estimator of unknown kind {spec['kind']!r}")


def _file(spec: Spec, files: Mapping[str, bytes]) -> bytes:
    return _named(spec["file"], files)


def _named(name: object, files: Mapping[str, bytes]) -> bytes:
    if not isinstance(name, str) or name not in files:
        raise ArtifactCorrupt(f"the artifact names a file its manifest does not list: {name!r}")
    return files[name]


def _skops_load(name: object, files: Mapping[str, bytes]) -> Any:
    import skops.io as sio

    data = _named(name, files)
    try:
        unknown = sorted(set(sio.get_untrusted_types(data=data)) - set(TRUSTED_SKOPS_TYPES))
    except (zipfile.BadZipFile, ValueError, KeyError) as exc:
        raise ArtifactCorrupt(f"artifact file {name} is not a skops file: {exc}") from None
    if unknown:
        raise ArtifactCorrupt(
            f"artifact file {name} holds types this server does not load: {', '.join(unknown)}",
            hint="retrain the model (DROP MODEL, then CREATE MODEL)")
    return sio.loads(data, trusted=list(TRUSTED_SKOPS_TYPES))
