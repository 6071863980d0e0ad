"""HYPERPARAMETERS and PREPROCESSORS checks without a server (fast, exhaustive)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from automl.errors import InvalidOption, UnknownColumn
from automl.hyperparams import XGB_OBJECTIVES, resolve_kmeans, resolve_xgboost, xgboost_problem
from automl.preprocessors import KMEANS_TRANSFORMERS, parse_preprocessors
from catalog.frames import fit_categories, to_frame
from catalog.preprocessing import TRANSFORMERS, FramePreprocessor
from catalog.spec import Column, ProblemType

RANGES = {"max_depth": (0, 10), "min_child_weight": (0, 120), "subsample": (0.5, 1),
          "gamma": (0, 5), "alpha": (0, 1000), "eta": (0.1, 0.5),
          "colsample_bylevel": (0.1, 1), "colsample_bynode": (0.1, 1),
          "colsample_bytree": (0.5, 1), "lambda": (0, 1000), "max_delta_step": (0, 10)}
DEFAULTS = {"num_round": "100", "tree_method": "auto", "max_depth": "6",
            "min_child_weight": "1", "subsample": "1", "gamma": "0", "alpha": "0",
            "eta": "0.3", "colsample_bylevel": "1", "colsample_bynode": "1",
            "colsample_bytree": "1", "lambda": "1", "max_delta_step": "0"}


def test_xgboost_defaults_and_objectives() -> None:
    assert resolve_xgboost((), "binary:logistic") == DEFAULTS
    assert len(XGB_OBJECTIVES) == 8
    assert xgboost_problem("'multi:softmax'") == ("multi:softmax", ProblemType.MULTICLASS)
    assert xgboost_problem("REG:Tweedie")[1] is ProblemType.REGRESSION
    values = resolve_xgboost((("NUM_CLASS", "3"), ("num_round", "7")), "multi:softmax")
    assert values["num_class"] == "3" and values["num_round"] == "7"


@pytest.mark.parametrize(("key", "bounds"), sorted(RANGES.items()))
def test_xgboost_ranges_name_key_and_range(key: str, bounds: tuple[float, float]) -> None:
    low, high = bounds
    resolve_xgboost(((key, str(low)),), "binary:logistic")
    resolve_xgboost(((key, str(high)),), "binary:logistic")
    step = 1 if key == "max_depth" else 0.01
    for bad in (low - step, high + step):
        with pytest.raises(InvalidOption) as info:
            resolve_xgboost(((key.upper(), str(bad)),), "binary:logistic")
        assert key.upper() in info.value.message
        assert f"[{low:g}, {high:g}]" in info.value.message
        assert info.value.sqlstate == "22023"


def test_xgboost_key_errors() -> None:
    with pytest.raises(InvalidOption, match="NUM_CLASS"):
        resolve_xgboost((), "multi:softmax")
    with pytest.raises(InvalidOption, match="NO_SUCH"):
        resolve_xgboost((("no_such", "1"),), "binary:logistic")
    with pytest.raises(InvalidOption, match="TREE_METHOD"):
        resolve_xgboost((("tree_method", "gpu"),), "binary:logistic")
    with pytest.raises(InvalidOption, match="OBJECTIVE"):
        xgboost_problem(None)


def test_kmeans_hyperparameters() -> None:
    assert resolve_kmeans((("K", "4"),), 6) == {"feature_dim": "6", "k": "4", "epochs": "1",
                                                 "init_method": "random"}
    with pytest.raises(InvalidOption, match="K"):
        resolve_kmeans((), 6)


FEATURES = (Column("a", "DOUBLE"), Column("b", "VARCHAR"), Column("t", "TIMESTAMP"),
            Column("n", "INTEGER"))


def test_preprocessors_parse() -> None:
    assert parse_preprocessors(None, FEATURES, "y") == ()
    assert parse_preprocessors("none", FEATURES, "y") == ()
    sets = parse_preprocessors('[{"ColumnSet": ["*"], "Transformers": ["Imputer"]}]',
                               FEATURES[:1], "y")
    assert sets[0].columns == ("a",)
    cases = [
        ('[{"ColumnSet": ["a"], "Transformers": ["Nope"]}]', InvalidOption, "Nope"),
        ('[{"ColumnSet": ["zz"], "Transformers": ["Imputer"]}]', UnknownColumn, "zz"),
        ('[{"ColumnSet": ["y"], "Transformers": ["Imputer"]}]', InvalidOption, "target"),
        ('[{"ColumnSet": ["a"], "Transformers": ["Imputer"]}, '
         '{"ColumnSet": ["a"], "Transformers": ["MinMax"]}]', InvalidOption, "one set"),
        ('[{"ColumnSet": ["a"], "Transformers": ["Imputer"]', InvalidOption, "character 50"),
        ('{"ColumnSet": ["a"]}', InvalidOption, "array"),
        ('[{"ColumnSet": ["b"], "Transformers": ["StandardScaler"]}]', InvalidOption,
         "needs numbers"),
    ]
    for text, cls, needle in cases:
        with pytest.raises(cls) as info:
            parse_preprocessors(text, FEATURES, "y")
        assert needle in info.value.message, (text, info.value.message)
    with pytest.raises(InvalidOption, match="OneHotEncoder"):
        parse_preprocessors('[{"ColumnSet": ["a"], "Transformers": ["OneHotEncoder"]}]',
                            FEATURES, None, KMEANS_TRANSFORMERS)


def test_every_transformer_fits_and_replays() -> None:
    rng = np.random.default_rng(0)
    n = 200
    table = pa.table({
        "a": pa.array(np.where(rng.random(n) < 0.1, None, rng.normal(size=n)).tolist(),
                      pa.float64()),
        "b": pa.array([None if i % 17 == 0 else f"c{i % 5}" for i in range(n)]),
        "t": pa.array(np.arange(n) * 86_400_000_000, pa.timestamp("us")),
        "n": pa.array(rng.integers(0, 100, n), pa.int32()),
    })
    frame = to_frame([table.column(f.name) for f in FEATURES], FEATURES,
                     fit_categories(table, FEATURES))
    for name in TRANSFORMERS:
        columns = {"OneHotEncoder": '"b"', "OrdinalEncoder": '"b"',
                   "DateTimeVectorizer": '"t"'}.get(name, '"a", "n"')
        sets = parse_preprocessors(
            f'[{{"ColumnSet": [{columns}], "Transformers": ["{name}"]}}]', FEATURES, None)
        pre = FramePreprocessor(sets)
        fitted = pre.fit_transform(frame)
        replay = pre.transform(frame.iloc[:50])
        assert isinstance(fitted, pd.DataFrame)
        pd.testing.assert_frame_equal(fitted.iloc[:50], replay, check_exact=False)
        assert set(frame.columns) - set(sets[0].columns) <= set(fitted.columns), name
