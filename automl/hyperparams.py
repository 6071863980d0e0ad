"""AUTO OFF settings: XGBoost objectives and the HYPERPARAMETERS of XGBOOST and KMEANS.

:func:`resolve_xgboost` and :func:`resolve_kmeans` turn ``HYPERPARAMETERS
DEFAULT EXCEPT (key 'value', ...)`` into the full, checked set of values
(Redshift's defaults for the keys not given). The server calls them before
training starts, so a bad value is an error of the CREATE MODEL statement
(22023 naming the key and its range); the worker calls them again to build
the learner.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from automl.errors import InvalidOption
from catalog.spec import ProblemType

# The XGBoost objectives AUTO OFF accepts and the problem each one solves.
XGB_OBJECTIVES: dict[str, ProblemType] = {
    "reg:squarederror": ProblemType.REGRESSION,
    "reg:squaredlogerror": ProblemType.REGRESSION,
    "reg:logistic": ProblemType.REGRESSION,
    "reg:pseudohubererror": ProblemType.REGRESSION,
    "reg:tweedie": ProblemType.REGRESSION,
    "binary:logistic": ProblemType.BINARY,
    "binary:hinge": ProblemType.BINARY,
    "multi:softmax": ProblemType.MULTICLASS,
}

# The training metric SHOW MODEL reports for each problem (XGBoost's names).
# The learners the AUTO ON search tries (FLAML's names), and the ones a MODEL_TYPE
# narrows it to (the custom ones are automl.learners.CUSTOM_LEARNERS). Kept here, free
# of FLAML, so that EXPLAIN CREATE MODEL can name them without loading it.
LEARNERS = ("lgbm", "xgboost", "xgb_limitdepth", "rf", "extra_tree")
MODEL_TYPE_LEARNERS = {
    "XGBOOST": ("xgboost", "xgb_limitdepth"),
    "MLP": ("mlp",),
    "LINEAR_LEARNER": ("linear_learner",),
}


def search_learners(model_type: str | None) -> tuple[str, ...]:
    """The learners an AUTO ON search with this MODEL_TYPE tries."""
    return MODEL_TYPE_LEARNERS.get(model_type or "", LEARNERS)


TRAIN_METRICS = {
    ProblemType.REGRESSION: "train:rmse",
    ProblemType.BINARY: "train:error",
    ProblemType.MULTICLASS: "train:merror",
}


@dataclass(frozen=True)
class _Key:
    kind: str                 # "int", "float" or "choice"
    default: str | None       # None: no default (required or optional)
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()


_XGB_KEYS: dict[str, _Key] = {
    "num_round": _Key("int", "100", 1, 10_000),
    "num_class": _Key("int", None, 2, 256),
    "tree_method": _Key("choice", "auto", choices=("auto", "exact", "approx", "hist")),
    "max_depth": _Key("int", "6", 0, 10),
    "min_child_weight": _Key("float", "1", 0, 120),
    "subsample": _Key("float", "1", 0.5, 1),
    "gamma": _Key("float", "0", 0, 5),
    "alpha": _Key("float", "0", 0, 1000),
    "eta": _Key("float", "0.3", 0.1, 0.5),
    "colsample_bylevel": _Key("float", "1", 0.1, 1),
    "colsample_bynode": _Key("float", "1", 0.1, 1),
    "colsample_bytree": _Key("float", "1", 0.5, 1),
    "lambda": _Key("float", "1", 0, 1000),
    "max_delta_step": _Key("float", "0", 0, 10),
}

_KMEANS_KEYS: dict[str, _Key] = {
    "k": _Key("int", None, 1, 2_147_483_647),
    "epochs": _Key("int", "1", 1, 10_000),
    "init_method": _Key("choice", "random", choices=("random", "kmeans++")),
}


def xgboost_problem(objective: str | None) -> tuple[str, ProblemType]:
    """The normalized objective and its problem type; OBJECTIVE is required."""
    if objective is None:
        raise InvalidOption(
            "AUTO OFF with MODEL_TYPE XGBOOST needs an OBJECTIVE",
            hint="one of " + ", ".join(XGB_OBJECTIVES),
        )
    key = objective.strip().strip("'\"").lower()
    if key not in XGB_OBJECTIVES:
        raise InvalidOption(
            f"OBJECTIVE {objective!r} is not an XGBoost objective QuackML supports",
            hint="one of " + ", ".join(XGB_OBJECTIVES),
        )
    return key, XGB_OBJECTIVES[key]


def resolve_xgboost(pairs: Sequence[tuple[str, str]], objective: str) -> dict[str, str]:
    """Every XGBoost hyperparameter with its value (given or default), checked."""
    values = _resolve(pairs, _XGB_KEYS, "XGBOOST")
    if objective == "multi:softmax" and "num_class" not in values:
        raise InvalidOption(
            "OBJECTIVE 'multi:softmax' needs HYPERPARAMETERS DEFAULT EXCEPT (NUM_CLASS 'n')",
            hint="NUM_CLASS is the number of distinct target values",
        )
    if objective != "multi:softmax":
        values.pop("num_class", None)
    return values


def resolve_kmeans(pairs: Sequence[tuple[str, str]], feature_dim: int) -> dict[str, str]:
    """Every KMEANS hyperparameter with its value, plus ``feature_dim``; K is required."""
    values = _resolve(pairs, _KMEANS_KEYS, "KMEANS")
    if "k" not in values:
        raise InvalidOption(
            "MODEL_TYPE KMEANS needs HYPERPARAMETERS DEFAULT EXCEPT (K 'n')",
            hint="K is the number of clusters",
        )
    return {"feature_dim": str(feature_dim), **values}


def _resolve(pairs: Sequence[tuple[str, str]], keys: dict[str, _Key],
             model_type: str) -> dict[str, str]:
    given: dict[str, str] = {}
    for raw_key, raw_value in pairs:
        key = raw_key.lower()
        if key not in keys:
            raise InvalidOption(
                f"unknown hyperparameter {raw_key.upper()} for MODEL_TYPE {model_type}",
                hint="known: " + ", ".join(k.upper() for k in keys),
            )
        if key in given:
            raise InvalidOption(f"hyperparameter {raw_key.upper()} given twice")
        given[key] = _check(key, raw_value.strip().strip("'\""), keys[key])
    values = {k: v.default for k, v in keys.items() if v.default is not None}
    values.update(given)
    return values


def _check(key: str, value: str, spec: _Key) -> str:
    if spec.kind == "choice":
        if value.lower() not in spec.choices:
            raise InvalidOption(
                f"hyperparameter {key.upper()} must be one of {', '.join(spec.choices)}; "
                f"got {value!r}")
        return value.lower()
    number: float
    try:
        number = int(value) if spec.kind == "int" else float(value)
    except ValueError:
        what = "an integer" if spec.kind == "int" else "a number"
        assert spec.low is not None and spec.high is not None
        raise InvalidOption(
            f"hyperparameter {key.upper()} must be {what} in range "
            f"[{_num(spec.low)}, {_num(spec.high)}]; got {value!r}") from None
    assert spec.low is not None and spec.high is not None
    if not spec.low <= number <= spec.high:
        raise InvalidOption(
            f"hyperparameter {key.upper()} = {value} is out of range "
            f"[{_num(spec.low)}, {_num(spec.high)}]")
    return value


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)
