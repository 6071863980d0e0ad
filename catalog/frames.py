"""The one conversion from Arrow columns to a model's input frame.

Training (from the Parquet snapshot) and prediction (from the Arrow arrays a
DuckDB vectorized UDF receives, 2,048 rows at a time, possibly of a cast
type) both go through :func:`to_frame`, so a model always sees the same
encoding of the same value.

Invariants:

- one column per feature, named after the feature, in feature order;
- NUMERIC (including DECIMAL) and BOOLEAN become float64, NULL -> NaN;
- CATEGORICAL becomes a pandas Categorical with exactly the categories fixed
  at training; NULL and values unseen at training are missing, never errors;
- TEMPORAL becomes float64 seconds since the Unix epoch (DATE, TIMESTAMP,
  TIMESTAMP WITH TIME ZONE) or since midnight (TIME);
- the work is vectorized (pyarrow.compute and NumPy): no per-row Python.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from catalog.errors import CatalogError
from catalog.spec import Column, FeatureKind

Categories = tuple[str, ...] | None

_SECONDS_PER_UNIT = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}
_SECONDS_PER_DAY = 86_400.0


class FeatureTypeMismatch(CatalogError):
    """An argument's Arrow type cannot be read as the feature's kind."""

    sqlstate = "42804"  # datatype_mismatch


def to_frame(
    columns: Sequence[pa.Array | pa.ChunkedArray],
    features: Sequence[Column],
    categories: Sequence[Categories],
) -> pd.DataFrame:
    """Build the model input frame from one Arrow array per feature."""
    if not len(columns) == len(features) == len(categories):
        raise ValueError(
            f"to_frame needs one column and one category entry per feature: got "
            f"{len(columns)} columns, {len(features)} features, {len(categories)} category entries"
        )
    data: dict[str, np.ndarray | pd.Categorical] = {}
    n_rows: int | None = None
    for array, feature, cats in zip(columns, features, categories, strict=True):
        values = _convert(flatten(array), feature, cats)
        if n_rows is not None and len(values) != n_rows:
            raise ValueError(f"column {feature.name!r} has {len(values)} rows, expected {n_rows}")
        n_rows = len(values)
        data[feature.name] = values
    return pd.DataFrame(data, copy=False)


def fit_categories(table: pa.Table, features: Sequence[Column]) -> tuple[Categories, ...]:
    """The sorted distinct non-NULL values of each categorical feature; None for others."""
    result: list[Categories] = []
    for feature in features:
        if feature.kind is not FeatureKind.CATEGORICAL:
            result.append(None)
            continue
        strings = _as_strings(flatten(table.column(feature.name)), feature)
        distinct = pc.unique(strings).drop_null()
        ordered = pc.take(distinct, pc.array_sort_indices(distinct))
        result.append(tuple(ordered.to_pylist()))
    return tuple(result)


def flatten(array: pa.Array | pa.ChunkedArray) -> pa.Array:
    """One contiguous, dictionary-decoded array."""
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks() if array.num_chunks != 1 else array.chunk(0)
    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    return array


def _convert(array: pa.Array, feature: Column, cats: Categories) -> np.ndarray | pd.Categorical:
    kind = feature.kind
    if kind is FeatureKind.NUMERIC or kind is FeatureKind.BOOLEAN:
        return _to_float(array, feature)
    if kind is FeatureKind.CATEGORICAL:
        if cats is None:
            raise ValueError(f"categorical feature {feature.name!r} has no fitted categories")
        return _to_categorical(array, feature, cats)
    if kind is FeatureKind.TEMPORAL:
        return _to_seconds(array, feature)
    raise FeatureTypeMismatch(f"feature {feature.name!r} has unsupported type {feature.type}")


def _to_float(array: pa.Array, feature: Column) -> np.ndarray:
    t = array.type
    if not (pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t)
            or pa.types.is_boolean(t) or pa.types.is_null(t)):
        raise FeatureTypeMismatch(
            f"feature {feature.name!r} expects {feature.type}, got Arrow type {t}"
        )
    floats = pc.cast(array, pa.float64(), safe=False)
    return _float_numpy(floats)


def _float_numpy(floats: pa.Array) -> np.ndarray:
    if floats.null_count:
        floats = pc.fill_null(floats, np.nan)
    return np.asarray(floats.to_numpy(zero_copy_only=False), dtype=np.float64)


def _as_strings(array: pa.Array, feature: Column) -> pa.Array:
    t = array.type
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return array if pa.types.is_string(t) else pc.cast(array, pa.string())
    if pa.types.is_null(t):
        return pa.nulls(len(array), pa.string())
    try:
        return pc.cast(array, pa.string())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise FeatureTypeMismatch(
            f"feature {feature.name!r} expects {feature.type}, got Arrow type {t}"
        ) from exc


def _to_categorical(array: pa.Array, feature: Column, cats: tuple[str, ...]) -> pd.Categorical:
    strings = _as_strings(array, feature)
    dtype = pd.CategoricalDtype(pd.Index(list(cats), dtype=object))
    if not cats:
        return pd.Categorical.from_codes(np.full(len(strings), -1, dtype=np.int8), dtype=dtype)
    codes = pc.index_in(strings, value_set=pa.array(cats, type=pa.string()))
    codes_np = pc.fill_null(codes, -1).to_numpy(zero_copy_only=False)
    return pd.Categorical.from_codes(codes_np, dtype=dtype)


def _to_seconds(array: pa.Array, feature: Column) -> np.ndarray:
    t = array.type
    if pa.types.is_timestamp(t):
        scale = _SECONDS_PER_UNIT[t.unit]
    elif pa.types.is_date32(t):
        scale = _SECONDS_PER_DAY
    elif pa.types.is_date64(t):
        scale = _SECONDS_PER_UNIT["ms"]
    elif pa.types.is_time32(t) or pa.types.is_time64(t):
        scale = _SECONDS_PER_UNIT[t.unit]
    elif pa.types.is_null(t):
        return np.full(len(array), np.nan)
    else:
        raise FeatureTypeMismatch(
            f"feature {feature.name!r} expects {feature.type}, got Arrow type {t}"
        )
    integers = pc.cast(array, pa.int64() if t.bit_width == 64 else pa.int32())
    return _float_numpy(pc.multiply(pc.cast(integers, pa.float64()), scale))


def estimator_input(frame: pd.DataFrame, category_codes: bool) -> pd.DataFrame:
    """The frame as the estimator was fitted on it: unchanged, or with each categorical
    column replaced by its integer codes (-1 for missing) when ``category_codes``."""
    if not category_codes:
        return frame
    cat_columns = [c for c in frame.columns if isinstance(frame[c].dtype, pd.CategoricalDtype)]
    if not cat_columns:
        return frame
    codes = frame.copy()
    for column in cat_columns:
        codes[column] = frame[column].cat.codes
    return codes
