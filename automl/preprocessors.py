"""The PREPROCESSORS option: parse and check the JSON, before any training.

``'none'`` means no preprocessing; otherwise a JSON array of
``{"ColumnSet": [columns...], "Transformers": [names...]}`` where ``"*"``
stands for every feature column. Unknown transformers, unknown columns, the
target column and a column in two sets are errors; so is invalid JSON (the
message gives the character position).
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from automl.errors import InvalidOption, UnknownColumn
from catalog.preprocessing import TRANSFORMERS, ColumnSet
from catalog.spec import Column, FeatureKind

KMEANS_TRANSFORMERS = ("StandardScaler", "MinMax", "NumericPassthrough")
_NUMERIC_ONLY = ("Normalizer", "PCA", "StandardScaler", "MinMax", "DateTimeVectorizer")


def parse_preprocessors(text: str | None, features: Sequence[Column], target: str | None,
                        allowed: Sequence[str] = TRANSFORMERS) -> tuple[ColumnSet, ...]:
    """The column sets of a PREPROCESSORS value; () for None or 'none'."""
    if text is None or text.strip().lower() == "none":
        return ()
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidOption(
            f"PREPROCESSORS is not valid JSON: {exc.msg} at character {exc.pos + 1}",
            hint='expected [{"ColumnSet": ["col", ...], "Transformers": ["Name", ...]}, ...]',
        ) from None
    if not isinstance(document, list):
        raise InvalidOption("PREPROCESSORS must be a JSON array of column sets")
    by_name = {c.name: c for c in features}
    by_lower = {c.name.lower(): c for c in features}
    used: dict[str, int] = {}
    sets: list[ColumnSet] = []
    for i, item in enumerate(document):
        if not (isinstance(item, dict) and isinstance(item.get("ColumnSet"), list)
                and isinstance(item.get("Transformers"), list) and item["Transformers"]):
            raise InvalidOption(
                f"PREPROCESSORS element {i + 1} must be an object with a ColumnSet array and a "
                "non-empty Transformers array")
        transformers = []
        for name in item["Transformers"]:
            canonical = _transformer(name, allowed)
            transformers.append(canonical)
        columns: list[Column] = []
        for raw in item["ColumnSet"]:
            if raw == "*":
                columns.extend(features)
                continue
            if not isinstance(raw, str):
                raise InvalidOption(f"PREPROCESSORS ColumnSet entries must be strings: {raw!r}")
            if target is not None and raw.lower() == target.lower():
                raise InvalidOption(
                    f"PREPROCESSORS names the target column {raw!r}; only feature columns can "
                    "be preprocessed")
            column = by_name.get(raw) or by_lower.get(raw.lower())
            if column is None:
                raise UnknownColumn(
                    f"PREPROCESSORS names column {raw!r}, which is not a feature column",
                    detail="feature columns: " + ", ".join(c.name for c in features))
            columns.append(column)
        for column in columns:
            if column.name in used:
                raise InvalidOption(
                    f"column {column.name!r} is in PREPROCESSORS column sets {used[column.name]} "
                    f"and {i + 1}; a column may be in one set only")
            used[column.name] = i + 1
            if column.kind is FeatureKind.CATEGORICAL and any(
                    t in _NUMERIC_ONLY for t in transformers) and not any(
                    t in ("OneHotEncoder", "OrdinalEncoder") for t in transformers[:1]):
                raise InvalidOption(
                    f"transformer {transformers[0]} needs numbers; column {column.name!r} is "
                    f"{column.type}", hint="encode it first (OneHotEncoder or OrdinalEncoder)")
        if columns:
            sets.append(ColumnSet(tuple(c.name for c in columns), tuple(transformers)))
    return tuple(sets)


def _transformer(name: object, allowed: Sequence[str]) -> str:
    lookup = {t.lower(): t for t in TRANSFORMERS}
    canonical = lookup.get(str(name).lower()) if isinstance(name, str) else None
    if canonical is None:
        raise InvalidOption(f"unknown PREPROCESSORS transformer {name!r}",
                            hint="one of " + ", ".join(TRANSFORMERS))
    if canonical not in allowed:
        raise InvalidOption(f"transformer {canonical} cannot be used here",
                            hint="use one of " + ", ".join(allowed))
    return canonical
