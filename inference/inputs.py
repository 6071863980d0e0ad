"""Evaluator input straight from the Arrow arguments of a DuckDB vector.

A compiled tree evaluator reads one float64-compatible Arrow column per
feature, by position. :func:`tree_inputs` builds that record batch without
pandas: numeric columns pass through untouched (integers, floats, booleans
and NULLs are read by the evaluator itself), DECIMAL is cast to float64,
categorical columns become the integer codes of the categories fixed at
training, temporal columns become float64 seconds (as in
:mod:`catalog.frames`).

Invariants (they make the evaluator's input the very matrix the library was
given, so its predictions are bit-identical):

- LightGBM (``missing_code=None``): NULL and unseen categories are NULL
  codes, which the evaluator reads as NaN, exactly as LightGBM turns pandas
  code -1 into NaN;
- XGBoost and other code-fitted learners (``missing_code=-1``): NULL and
  unseen categories are the code -1, as ``catalog.artifact.estimator_input``
  gives them;
- nothing raises for NULLs or unseen values; a wrong Arrow type raises
  ``FeatureTypeMismatch`` (42804) as :func:`catalog.frames.to_frame` does.
"""

from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa
import pyarrow.compute as pc

from catalog.frames import FeatureTypeMismatch, flatten, to_frame
from catalog.spec import Column, FeatureKind


def _passes_through(kind: FeatureKind | None, t: pa.DataType) -> bool:
    """A numeric or boolean feature's column the evaluator reads as it is."""
    return (kind is FeatureKind.NUMERIC or kind is FeatureKind.BOOLEAN) and (
        (pa.types.is_floating(t) and t.bit_width == 64) or pa.types.is_integer(t)
        or pa.types.is_boolean(t) or pa.types.is_null(t))


class TreeInputs:
    """Converts a vector's Arrow arguments for one model; built once per model."""

    def __init__(self, features: Sequence[Column],
                 categories: Sequence[tuple[str, ...] | None], missing_code: int | None):
        self._features = tuple(features)
        self._kinds = tuple(f.kind for f in self._features)
        self._categories = tuple(categories)
        self._missing_code = missing_code
        self._names = [f"f{i}" for i in range(len(self._features))]
        self._lookups: list[pc.SetLookupOptions | None] = [
            pc.SetLookupOptions(pa.array(cats, type=pa.string()))
            if f.kind is FeatureKind.CATEGORICAL and cats else None
            for f, cats in zip(self._features, self._categories, strict=True)]
        # Argument types that all pass through untouched (see _passes_through): when a
        # call brings these types again, the per-column checks are skipped (for 20 DOUBLE
        # columns, as DuckDB passes them (one-chunk ChunkedArrays), 14 of 28 us a
        # vector). DuckDB passes the same types at every call of a function.
        self._plain_types: tuple[pa.DataType, ...] | None = None

    def batch(self, args: Sequence[pa.Array | pa.ChunkedArray]) -> pa.RecordBatch:
        if len(args) != len(self._features):
            raise ValueError(f"expected {len(self._features)} arguments, got {len(args)}")
        types = tuple(a.type for a in args)
        if types == self._plain_types:
            arrays = []
            for a in args:
                if isinstance(a, pa.ChunkedArray):
                    if a.num_chunks != 1:
                        break
                    a = a.chunk(0)
                arrays.append(a)
            else:
                return pa.RecordBatch.from_arrays(arrays, names=self._names)
        columns = [self._column(flatten(a), i) for i, a in enumerate(args)]
        batch = pa.RecordBatch.from_arrays(columns, names=self._names)
        if all(_passes_through(k, t) for k, t in zip(self._kinds, types, strict=True)):
            self._plain_types = types
        return batch

    def _column(self, array: pa.Array, i: int) -> pa.Array:
        feature = self._features[i]
        kind = self._kinds[i]
        t = array.type
        if _passes_through(kind, t):
            return array
        if kind is FeatureKind.NUMERIC or kind is FeatureKind.BOOLEAN:
            if pa.types.is_floating(t) or pa.types.is_decimal(t):
                return pc.cast(array, pa.float64(), safe=False)
            raise FeatureTypeMismatch(
                f"feature {feature.name!r} expects {feature.type}, got Arrow type {t}")
        if kind is FeatureKind.CATEGORICAL:
            return self._codes(array, i)
        # Temporal and anything else: the one shared conversion, column by column.
        values = to_frame([array], [feature], [self._categories[i]])[feature.name]
        return pa.array(values.to_numpy(), type=pa.float64(), from_pandas=True)

    def _codes(self, array: pa.Array, i: int) -> pa.Array:
        lookup = self._lookups[i]
        if lookup is None:  # no categories fitted: every value is missing
            if self._missing_code is None:
                return pa.nulls(len(array), pa.int32())
            return pa.array([self._missing_code] * len(array), type=pa.int32())
        t = array.type
        if not (pa.types.is_string(t) or pa.types.is_null(t)):
            if pa.types.is_large_string(t) or pa.types.is_string_view(t):
                array = pc.cast(array, pa.string())
            else:
                try:
                    array = pc.cast(array, pa.string())
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                    feature = self._features[i]
                    raise FeatureTypeMismatch(
                        f"feature {feature.name!r} expects {feature.type}, got Arrow type {t}"
                    ) from exc
        if pa.types.is_null(array.type):
            array = pa.nulls(len(array), pa.string())
        codes = pc.index_in(array, options=lookup)
        if self._missing_code is not None and codes.null_count:
            codes = pc.fill_null(codes, self._missing_code)
        return codes
