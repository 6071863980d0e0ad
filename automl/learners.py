"""scikit-learn learners for MODEL_TYPE MLP and LINEAR_LEARNER, as FLAML custom learners.

FLAML hands these learners the frame with categorical columns replaced by
their integer codes (see ``SKLearnEstimator``); every numeric column of the
model input is float64 (see catalog.frames), so the integer columns are
exactly the categorical ones. Each learner fits a plain scikit-learn
``Pipeline``: one-hot for the categorical codes, median imputation and
standard scaling for the numbers, then the model. Only that fitted Pipeline
goes into the artifact (as skops); it loads without ``automl`` or ``flaml``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from flaml import tune
from flaml.automl.model import SKLearnEstimator
from sklearn.compose import ColumnTransformer, TransformedTargetRegressor, make_column_selector
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

MAX_ONE_HOT = 50  # categories per column; rarer ones share one "infrequent" column

# FLAML's keys that are not model parameters.
_FLAML_KEYS = ("n_jobs", "random_state", "random_seed", "FLAML_sample_size", "task")


def _inputs() -> ColumnTransformer:
    return ColumnTransformer(
        [("categorical", OneHotEncoder(handle_unknown="infrequent_if_exist",
                                       max_categories=MAX_ONE_HOT, sparse_output=False),
          make_column_selector(dtype_include=np.integer)),
         ("numeric", Pipeline([("impute", SimpleImputer(strategy="median",
                                                        keep_empty_features=True)),
                               ("scale", StandardScaler())]),
          make_column_selector(dtype_include=np.floating))],
        remainder="drop")


def _pipeline(model: Any) -> Pipeline:
    return Pipeline([("inputs", _inputs()), ("model", model)])


def _clean(params: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in params.items() if k not in _FLAML_KEYS}


def _is_classification(task: Any) -> bool:
    if isinstance(task, str):
        return task in ("binary", "multiclass", "classification")
    return bool(task.is_classification())


def mlp_pipeline(classification: bool, **params: Any) -> Pipeline:
    params = _clean(params)
    width = int(params.pop("width"))
    layers = int(params.pop("layers"))
    cls = MLPClassifier if classification else MLPRegressor
    model = cls(hidden_layer_sizes=(width,) * layers, max_iter=200, early_stopping=True,
                n_iter_no_change=10, random_state=0, **params)
    if classification:
        return _pipeline(model)
    # Targets such as prices are far from unit scale; the network learns the standardized
    # target and predicts on the original scale.
    return _pipeline(TransformedTargetRegressor(regressor=model, transformer=StandardScaler()))


def linear_pipeline(classification: bool, **params: Any) -> Pipeline:
    params = _clean(params)
    if classification:
        return _pipeline(LogisticRegression(C=float(params["C"]), max_iter=1000))
    return _pipeline(Ridge(alpha=float(params["alpha"])))


class MLPLearner(SKLearnEstimator):
    """scikit-learn's multi-layer perceptron (MODEL_TYPE MLP)."""

    @classmethod
    def search_space(cls, data_size: Any, task: Any, **params: Any) -> dict[str, Any]:
        return {
            "width": {"domain": tune.lograndint(lower=8, upper=256), "init_value": 32,
                      "low_cost_init_value": 8},
            "layers": {"domain": tune.choice([1, 2]), "init_value": 1,
                       "low_cost_init_value": 1},
            "alpha": {"domain": tune.loguniform(lower=1e-6, upper=1e-1), "init_value": 1e-4},
            "learning_rate_init": {"domain": tune.loguniform(lower=1e-4, upper=1e-1),
                                   "init_value": 1e-3},
        }

    @classmethod
    def cost_relative2lgbm(cls) -> float:
        return 20.0

    def __init__(self, task: Any = "binary", **config: Any):
        super().__init__(task, **config)
        classification = _is_classification(self._task)
        self.estimator_class = lambda **p: mlp_pipeline(classification, **p)


class LinearLearner(SKLearnEstimator):
    """Regularized linear models (MODEL_TYPE LINEAR_LEARNER): logistic regression for
    classification, ridge regression for regression; the search tunes the penalty."""

    @classmethod
    def search_space(cls, data_size: Any, task: Any, **params: Any) -> dict[str, Any]:
        if _is_classification(task):
            return {"C": {"domain": tune.loguniform(lower=1e-3, upper=1e3), "init_value": 1.0}}
        return {"alpha": {"domain": tune.loguniform(lower=1e-4, upper=1e4), "init_value": 1.0}}

    @classmethod
    def cost_relative2lgbm(cls) -> float:
        return 5.0

    def __init__(self, task: Any = "binary", **config: Any):
        super().__init__(task, **config)
        classification = _is_classification(self._task)
        self.estimator_class = lambda **p: linear_pipeline(classification, **p)


# The scikit-learn learners, registered with FLAML by name (automl.hyperparams lists
# which MODEL_TYPE uses which learner).
CUSTOM_LEARNERS: dict[str, type[SKLearnEstimator]] = {
    "mlp": MLPLearner,
    "linear_learner": LinearLearner,
}
