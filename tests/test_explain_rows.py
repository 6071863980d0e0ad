"""Per-row explanations over the wire: ``f_explain(...)`` and ``f_explain_top(..., k)``.

For the exact methods (TreeSHAP of LightGBM and XGBoost, linear models) the
attributions plus the baseline equal the raw prediction within 1e-6 on every
test row, and the raw prediction is the library's own raw score, computed
here from the artifact the server stores (outside QuackML's explain code)."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import psycopg
import pyarrow as pa
import pytest

from catalog.artifact import ModelArtifact, read_artifact
from catalog.estimators import LightGBMBooster
from catalog.preprocessing import PreprocessedEstimator
from tests.conftest import RunningServer

FEATURES = ("tenure", "contract", "monthly_charges", "total_charges", "internet_service",
            "payment_method", "senior_citizen")
COLUMNS = ", ".join(FEATURES)
MULTI = COLUMNS.replace("contract, ", "")
NUMERIC = "tenure, monthly_charges, total_charges, senior_citizen"
TRAIN = f"SELECT {COLUMNS}, churn FROM customers WHERE split = 'train'"
TEST = "FROM customers WHERE split = 'test'"

MODELS = {
    # AUTO ON, LightGBM only (the guidance MODEL_TYPE cannot name LightGBM; a short
    # budget on wa_churn picks it): checked below through the stored artifact
    "ex_auto": f"CREATE MODEL ex_auto FROM ({TRAIN}) TARGET churn FUNCTION ex_auto_f "
               "SETTINGS (MAX_RUNTIME 20)",
    # AUTO OFF takes numeric features only
    "ex_xgb": f"CREATE MODEL ex_xgb FROM (SELECT {NUMERIC}, churn FROM customers WHERE "
              "split = 'train') TARGET churn FUNCTION ex_xgb_f AUTO OFF "
              "MODEL_TYPE XGBOOST OBJECTIVE 'binary:logistic' "
              "HYPERPARAMETERS DEFAULT EXCEPT (NUM_ROUND '40', MAX_DEPTH '5')",
    "ex_linear": f"CREATE MODEL ex_linear FROM ({TRAIN}) TARGET churn FUNCTION ex_linear_f "
                 "MODEL_TYPE LINEAR_LEARNER SETTINGS (MAX_RUNTIME 20)",
    "ex_multi": f"CREATE MODEL ex_multi FROM (SELECT {MULTI}, "
                "contract FROM customers WHERE split = 'train') TARGET contract "
                "FUNCTION ex_multi_f MODEL_TYPE XGBOOST SETTINGS (MAX_RUNTIME 20)",
    "ex_reg": "CREATE MODEL ex_reg FROM (SELECT tenure, contract, internet_service, "
              "monthly_charges FROM customers WHERE split = 'train') TARGET monthly_charges "
              "FUNCTION ex_reg_f MODEL_TYPE MLP SETTINGS (MAX_RUNTIME 20)",
}


@pytest.fixture(scope="module")
def models(server: RunningServer) -> Iterator[psycopg.Connection]:
    with server.connect() as conn:
        for name, sql in MODELS.items():
            conn.execute(f"DROP MODEL IF EXISTS {name}")
            conn.execute(sql)
        deadline = time.monotonic() + 300
        for name in MODELS:
            while dict(conn.execute(f"SHOW MODEL {name}").fetchall())["Model State"] \
                    == "TRAINING":
                assert time.monotonic() < deadline, f"{name} still training"
                time.sleep(0.3)
            assert dict(conn.execute(f"SHOW MODEL {name}").fetchall())["Model State"] \
                == "READY", name
        yield conn
        for name in MODELS:
            conn.execute(f"DROP MODEL IF EXISTS {name}")


def stored_artifact(server: RunningServer, model: str) -> ModelArtifact:
    """The active version's artifact, read from the data directory as the server stores it."""
    (path,) = [p for p in (server.data_dir / "models").glob(f"*/{model}/v*/artifact.json")]
    return read_artifact(str(path), hashlib.sha256(Path(path).read_bytes()).hexdigest())


def explained(conn: psycopg.Connection, function: str, features: tuple[str, ...],
              k: int = 100) -> list[tuple[object, ...]]:
    """Per test row: the feature values, then the explanation's fields, the sum of all its
    attributions and the number of attributions."""
    args = ", ".join(features)
    return conn.execute(
        f"SELECT {args}, e.method, e.label, e.space, e.prediction, e.baseline, "
        "list_sum([a.attribution FOR a IN e.attributions]), len(e.attributions), "
        "[abs(a.attribution) FOR a IN e.attributions] "
        f"FROM (SELECT *, {function}_explain_top({args}, {k}) AS e {TEST}) "
        f"ORDER BY {args}").fetchall()


def library_of(estimator: object) -> str:
    if isinstance(estimator, LightGBMBooster):   # how artifacts store LightGBM models
        return "lightgbm"
    return type(estimator).__module__.split(".")[0]


def library_raw(artifact: ModelArtifact, rows: list[tuple[object, ...]]) -> np.ndarray:
    """The library's raw score (log-odds / margin) for the rows' feature values."""
    n = len(artifact.features)
    columns = [pa.array([r[i] for r in rows]) for i in range(n)]
    frame = artifact.frame(columns)
    estimator = artifact.estimator
    if isinstance(estimator, PreprocessedEstimator):
        estimator = estimator.estimator
        frame = artifact.estimator.preprocessor.transform(frame)
    x = artifact.model_input(frame)
    module = library_of(estimator)
    if module == "lightgbm":
        return np.asarray(estimator.predict(x, raw_score=True), dtype=np.float64)
    if module == "xgboost":
        return np.asarray(estimator.predict(x, output_margin=True), dtype=np.float64)
    return np.asarray(estimator.decision_function(x), dtype=np.float64)


@pytest.mark.parametrize(("model", "method", "library"), [
    ("ex_xgb", "tree_shap", "xgboost"), ("ex_linear", "linear", "sklearn"),
    # AUTO ON picks its learner (MODEL_TYPE cannot name LightGBM): LightGBM or XGBoost
    # on a short budget (both exact), or a scikit-learn forest, explained by occlusion;
    # LightGBM is checked for sure with an imported model (tests/test_create_model_byom.py)
    ("ex_auto", "tree_shap", "lightgbm")])
def test_exact_attributions_sum_to_the_raw_prediction(models: psycopg.Connection,
                                                      server: RunningServer, model: str,
                                                      method: str, library: str) -> None:
    artifact = stored_artifact(server, model)
    estimator = artifact.estimator
    if isinstance(estimator, PreprocessedEstimator):
        estimator = estimator.estimator
    if model == "ex_auto" and artifact.learner in ("rf", "extra_tree"):
        features = tuple(f.name for f in artifact.features)
        rows = explained(models, f"{model}_f", features)
        assert {r[len(features)] for r in rows} == {"approximate: occlusion"}
        return
    if model == "ex_auto":   # LightGBM or one of FLAML's XGBoost learners: both exact
        assert library_of(estimator) in (library, "xgboost"), artifact.learner
    else:
        assert library_of(estimator) == library, artifact.learner
    features = tuple(f.name for f in artifact.features)
    rows = explained(models, f"{model}_f", features)
    assert len(rows) > 1000
    n = len(features)
    got = np.array([r[n + 3] for r in rows], dtype=np.float64)
    baseline = np.array([r[n + 4] for r in rows], dtype=np.float64)
    total = np.array([r[n + 5] for r in rows], dtype=np.float64)
    assert {r[n] for r in rows} == {method}
    assert {r[n + 2] for r in rows} == {"log-odds"}
    assert {r[n + 1] for r in rows} == {artifact.labels[1]}   # the second label's log-odds
    assert {r[n + 6] for r in rows} == {n}                    # every feature, k = 100
    assert np.ptp(baseline) == 0.0                           # one expected value
    np.testing.assert_allclose(total + baseline, got, rtol=0, atol=1e-6)
    # XGBoost's own margin is float32 arithmetic: equal to its precision
    np.testing.assert_allclose(got, library_raw(artifact, rows),
                               rtol=1e-6 if library_of(estimator) == "xgboost" else 0, atol=1e-6)
    for r in rows[:50]:   # ordered by absolute value
        assert r[n + 7] == sorted(r[n + 7], reverse=True)


def test_multiclass_explains_the_predicted_class(models: psycopg.Connection,
                                                 server: RunningServer) -> None:
    artifact = stored_artifact(server, "ex_multi")
    features = tuple(f.name for f in artifact.features)
    rows = explained(models, "ex_multi_f", features)
    n = len(features)
    predicted = models.execute(
        f"SELECT ex_multi_f({', '.join(features)}) {TEST} ORDER BY {', '.join(features)}"
    ).fetchall()
    assert [r[n + 1] for r in rows] == [p[0] for p in predicted]
    assert {r[n] for r in rows} == {"tree_shap"} and {r[n + 2] for r in rows} == {"raw score"}
    got = np.array([r[n + 3] for r in rows], dtype=np.float64)
    total = np.array([r[n + 5] + r[n + 4] for r in rows], dtype=np.float64)
    np.testing.assert_allclose(total, got, rtol=0, atol=1e-6)
    margins = library_raw(artifact, rows).reshape(len(rows), -1)
    np.testing.assert_allclose(got, margins.max(axis=1), rtol=1e-6, atol=1e-6)   # float32


def test_default_k_nulls_and_approximation(models: psycopg.Connection) -> None:
    conn = models
    row = conn.execute(
        "SELECT len(e.attributions), e.method FROM (SELECT ex_multi_f_explain("
        f"{MULTI}) AS e {TEST} LIMIT 1)").fetchone()
    assert row == (5, "tree_shap")
    top = conn.execute("SELECT len((ex_xgb_f_explain_top(tenure, monthly_charges, "
                       "total_charges, senior_citizen, k)).attributions) FROM (VALUES "
                       "(1, 50.0, 50.0, 0, 0), (2, 20.0, 40.0, 1, 2), (3, 9.0, 27.0, 0, 9)) "
                       "t(tenure, monthly_charges, total_charges, senior_citizen, k) "
                       "ORDER BY tenure").fetchall()
    assert top == [(0,), (2,), (4,)]   # k per row; more than the features gives them all
    # NULL features are explained (the model's missing values), never an error
    nulls = conn.execute("SELECT (ex_auto_f_explain(NULL, NULL, NULL, NULL, NULL, NULL, "
                         "NULL)).prediction").fetchone()
    assert nulls is not None and nulls[0] is not None
    # MLP: labelled as an approximation, a regression value
    reg = conn.execute("SELECT e.method, e.space, e.label, len(e.attributions) FROM (SELECT "
                       "ex_reg_f_explain(tenure, contract, internet_service) AS e "
                       f"{TEST} LIMIT 5)").fetchall()
    assert set(reg) == {("approximate: occlusion", "value", None, 3)}
    for sql, state in ((f"SELECT ex_xgb_f_explain_top({NUMERIC}, -1)", "22023"),
                       (f"SELECT ex_xgb_f_explain_top({NUMERIC}, NULL)", "22023")):
        with pytest.raises(psycopg.Error) as info:
            conn.execute(sql + f" {TEST} LIMIT 1")
        assert info.value.sqlstate == state, sql
    names = {r[0] for r in conn.execute(
        "SELECT proname FROM pg_proc WHERE proname LIKE 'ex_xgb_f%'").fetchall()}
    assert names == {"ex_xgb_f", "ex_xgb_f_probabilities", "ex_xgb_f_explain",
                     "ex_xgb_f_explain_top"}


@pytest.mark.skipif(shutil.which("psql") is None, reason="psql is installed by `make test`")
def test_psql_shows_the_struct(models: psycopg.Connection, server: RunningServer) -> None:
    out = subprocess.run(
        ["psql", "-h", server.host, "-p", str(server.port), "-U", "tester", "-d", "quackml",
         "-X", "-A", "-t", "-c",
         f"SELECT ex_xgb_f_explain_top({NUMERIC}, 2) {TEST} LIMIT 1"],
        capture_output=True, text=True, timeout=60,
        env={"PGCONNECT_TIMEOUT": "10", "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    text = out.stdout.strip()
    assert text.startswith('{"method": "tree_shap", "label": '), text
    assert '"space": "log-odds", "prediction": ' in text
    assert '"attributions": [{"feature": ' in text and text.count('"feature"') == 2


def test_preprocessed_tree_model_attributes_to_input_features() -> None:
    """PREPROCESSORS: a column set's model columns (one-hot, PCA) are summed back to
    one attribution named after the set; TreeSHAP stays exact (in process: the
    transformation is what the server runs, and training one takes no budget)."""
    import lightgbm as lgb

    from catalog.frames import fit_categories
    from catalog.preprocessing import ColumnSet, FramePreprocessor
    from catalog.spec import Column, ProblemType
    from inference.explain import Explainer

    rng = np.random.default_rng(3)
    n = 600
    features = (Column("a", "DOUBLE"), Column("b", "DOUBLE"), Column("c", "VARCHAR"),
                Column("d", "DOUBLE"))
    table = pa.table({"a": rng.normal(size=n), "b": rng.normal(size=n),
                      "c": rng.choice(["x", "y", "z"], n), "d": rng.normal(size=n)})
    categories = fit_categories(table, features)
    columns = [table.column(f.name) for f in features]
    artifact = ModelArtifact(features, Column("y", "BOOLEAN"), ProblemType.BINARY,
                             (False, True), categories, None, "none", 0.0)
    frame = artifact.frame(columns)
    pre = FramePreprocessor([ColumnSet(("a", "b"), ("Imputer", "PCA")),
                             ColumnSet(("c",), ("OneHotEncoder",))])
    x = pre.fit_transform(frame)
    y = (table.column("a").to_numpy() + (table.column("c").to_numpy() == "x")) > 0.5
    model = lgb.LGBMClassifier(n_estimators=20, num_leaves=7, verbose=-1).fit(x, y)
    artifact.estimator = PreprocessedEstimator(pre, model, False)
    explainer = Explainer(artifact)
    assert explainer.groups == ["a+b", "c", "d"]
    result = explainer.explain(columns)
    assert result.method == "tree_shap" and result.attributions.shape == (n, 3)
    raw = model.predict(x, raw_score=True)
    np.testing.assert_allclose(result.prediction, raw, rtol=0, atol=1e-9)
    np.testing.assert_allclose(result.attributions.sum(axis=1) + result.baseline, raw,
                               rtol=0, atol=1e-9)


@pytest.mark.skipif(shutil.which("psql") is None, reason="psql is installed by `make test`")
def test_psql_df_lists_the_explain_functions(models: psycopg.Connection,
                                             server: RunningServer) -> None:
    out = subprocess.run(
        ["psql", "-h", server.host, "-p", str(server.port), "-U", "tester", "-d", "quackml",
         "-X", "-A", "-t", "-c", r"\df ex_xgb_f*"],
        capture_output=True, text=True, timeout=60,
        env={"PGCONNECT_TIMEOUT": "10", "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    lines = {line.split("|")[1]: line.split("|")[2:4] for line in out.stdout.splitlines()}
    assert lines["ex_xgb_f_explain"][0] == "record", out.stdout
    assert lines["ex_xgb_f_explain_top"][1].endswith("senior_citizen double precision, "
                                                     "k bigint"), out.stdout
