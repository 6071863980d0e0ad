"""EXPORT MODEL over the wire, each form loaded outside QuackML and checked against the
model's own predictions through SQL on the test split: NATIVE with LightGBM/XGBoost
and its JSON (identical), ONNX with onnxruntime (labels identical, values within 1e-5),
MLFLOW with mlflow.pyfunc.load_model; errors and privileges."""

from __future__ import annotations

import datetime
import io
import json
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pytest

from server.listener import Server
from tests.conftest import RunningServer
from tests.test_psql import PSQL, psql
from tests.test_security import ADMIN, ADMIN_PW, connect_as, start

CLS_FEATURES = ("tenure", "contract", "monthly_charges", "internet_service")
REG_FEATURES = ("tenure", "senior_citizen", "total_charges")
MODELS = {
    # AUTO ON with categorical features, narrowed to XGBoost (without MODEL_TYPE the
    # search may pick a scikit-learn forest, which exports to no format; LightGBM's
    # export is tested on an artifact below, test_lightgbm_artifact)
    "exp_cls": (f"CREATE MODEL exp_cls FROM (SELECT {', '.join(CLS_FEATURES)}, churn "
                "FROM customers WHERE split = 'train') TARGET churn FUNCTION exp_cls_f "
                "MODEL_TYPE XGBOOST SETTINGS (MAX_RUNTIME 15)"),
    # AUTO OFF: one XGBoost regression model
    "exp_reg": (f"CREATE MODEL exp_reg FROM (SELECT {', '.join(REG_FEATURES)}, "
                "monthly_charges FROM customers WHERE split = 'train') "
                "TARGET monthly_charges FUNCTION exp_reg_f AUTO OFF MODEL_TYPE XGBOOST "
                "OBJECTIVE 'reg:squarederror' HYPERPARAMETERS DEFAULT EXCEPT (NUM_ROUND '40')"),
}


@pytest.fixture(scope="module")
def models(server: RunningServer) -> Iterator[dict[str, str]]:
    """The two models, READY; name -> learner."""
    with server.connect() as conn:
        for name, sql in MODELS.items():
            conn.execute(f"DROP MODEL IF EXISTS {name}")
            conn.execute(sql)
        deadline = time.monotonic() + 300
        learners = {}
        for name in MODELS:
            while True:
                state, learner = conn.execute(
                    "SELECT state, learner FROM svv_ml_model_versions WHERE model_name = %s",
                    (name,)).fetchone() or (None, None)
                if state != "TRAINING":
                    break
                assert time.monotonic() < deadline
                time.sleep(0.5)
            assert state == "READY", name
            learners[name] = str(learner)
        yield learners
        for name in MODELS:
            conn.execute(f"DROP MODEL IF EXISTS {name}")


def export(conn: psycopg.Connection, sql: str) -> bytes:
    cur = conn.execute(sql)
    assert cur.description is not None and [d.name for d in cur.description] == ["model"]
    assert cur.description[0].type_code == 17   # bytea
    rows = cur.fetchall()
    assert len(rows) == 1
    return bytes(rows[0][0])


def untar(data: bytes, folder: Path) -> list[str]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(folder, filter="data")
        return tar.getnames()


def split_rows(conn: psycopg.Connection, features: tuple[str, ...],
              function: str) -> tuple[dict[str, list[Any]], list[Any]]:
    """The test split's feature values by column and the model's predictions through SQL."""
    args = ", ".join(features)
    rows = conn.execute(f"SELECT {args}, {function}({args}) FROM customers "
                        "WHERE split = 'test'").fetchall()
    columns = {f: [r[i] for r in rows] for i, f in enumerate(features)}
    return columns, [r[-1] for r in rows]


def native_input(manifest: dict[str, Any], columns: dict[str, list[Any]]) -> np.ndarray:
    """The library's input built from quackml.json alone."""
    features = manifest["features"]
    X = np.empty((len(next(iter(columns.values()))), len(features)))
    missing = manifest["missing_category_code"]
    for j, feature in enumerate(features):
        values = columns[feature["name"]]
        if "categories" in feature:
            position = {v: i for i, v in enumerate(feature["categories"])}
            X[:, j] = [position.get(v, np.nan if missing is None else missing) for v in values]
        else:
            X[:, j] = [encode(v) for v in values]
    return X


def encode(value: Any) -> float:
    """A number, boolean or date as docs/sql.md says the exports take it."""
    if value is None:
        return np.nan
    if isinstance(value, datetime.date):
        return float((value - datetime.date(1970, 1, 1)).days * 86400)
    return float(value)


def native_predict(folder: Path, columns: dict[str, list[Any]]) -> tuple[dict[str, Any],
                                                                           np.ndarray]:
    manifest = json.loads((folder / "quackml.json").read_text())
    X = native_input(manifest, columns)
    model_file = folder / manifest["model_file"]
    if manifest["library"] == "lightgbm":
        import lightgbm as lgb

        return manifest, np.asarray(lgb.Booster(model_file=str(model_file)).predict(X))
    import xgboost as xgb

    booster = xgb.Booster(model_file=str(model_file))
    names = [f["name"] for f in manifest["features"]]
    return manifest, np.asarray(booster.predict(xgb.DMatrix(X, feature_names=names)))


def labels_of(manifest: dict[str, Any], p: np.ndarray) -> list[Any]:
    """The predicted labels from the library's binary probabilities, as quackml.json says."""
    labels, positive = manifest["labels"], manifest["positive_index"]
    proba = np.vstack((1.0 - p, p)).transpose()
    threshold = manifest["threshold"]
    if threshold is None:
        index = np.argmax(proba, axis=1)
    else:
        index = np.where(proba[:, positive] >= threshold, positive, 1 - positive)
    return [labels[i] for i in index]


def onnx_feed(columns: dict[str, list[Any]], categorical: set[str]) -> dict[str, np.ndarray]:
    feed = {}
    for name, values in columns.items():
        if name in categorical:
            feed[name] = np.array(["" if v is None else v for v in values],
                                  dtype=object).reshape(-1, 1)
        else:
            feed[name] = np.array([encode(v) for v in values],
                                  dtype=np.float32).reshape(-1, 1)
    return feed


def test_native_classifier_identical(server: RunningServer, models: dict[str, str],
                                     tmp_path: Path) -> None:
    with server.connect() as conn:
        names = untar(export(conn, "EXPORT MODEL exp_cls FORMAT NATIVE"), tmp_path)
        columns, predicted = split_rows(conn, CLS_FEATURES, "exp_cls_f")
    assert models["exp_cls"] in ("xgboost", "xgb_limitdepth")
    assert sorted(names) == ["model.ubj", "quackml.json"]
    manifest, p = native_predict(tmp_path, columns)
    assert manifest["model"] == "public.exp_cls" and manifest["model_version"] == 1
    assert manifest["labels"] == [False, True]
    assert labels_of(manifest, p) == predicted


def test_native_regression_identical(server: RunningServer, models: dict[str, str],
                                     tmp_path: Path) -> None:
    with server.connect() as conn:
        names = untar(export(conn, "EXPORT MODEL exp_reg VERSION 1 FORMAT NATIVE"), tmp_path)
        columns, predicted = split_rows(conn, REG_FEATURES, "exp_reg_f")
    assert sorted(names) == ["model.ubj", "quackml.json"]
    manifest, values = native_predict(tmp_path, columns)
    assert manifest["library"] == "xgboost" and manifest["problem_type"] == "REGRESSION"
    assert values.astype(np.float64).tolist() == predicted   # identical


def test_onnx(server: RunningServer, models: dict[str, str], tmp_path: Path) -> None:
    import onnxruntime as ort

    with server.connect() as conn:
        reg = export(conn, "EXPORT MODEL exp_reg FORMAT ONNX")
        columns, predicted = split_rows(conn, REG_FEATURES, "exp_reg_f")
        (value,) = ort.InferenceSession(reg).run(None, onnx_feed(columns, set()))
        np.testing.assert_allclose(value[:, 0], predicted, rtol=1e-5)
        cls = export(conn, "EXPORT MODEL exp_cls FORMAT ONNX")
        untar(export(conn, "EXPORT MODEL exp_cls FORMAT NATIVE"), tmp_path)
        columns, predicted = split_rows(conn, CLS_FEATURES, "exp_cls_f")
    session = ort.InferenceSession(cls)
    assert [o.name for o in session.get_outputs()] == ["label", "probabilities"]
    label, proba = session.run(None, onnx_feed(columns, {"contract", "internet_service"}))
    assert label.tolist() == predicted
    _, p = native_predict(tmp_path, columns)
    np.testing.assert_allclose(proba[:, 1], p, atol=1e-5)


def test_mlflow(server: RunningServer, models: dict[str, str], tmp_path: Path) -> None:
    import mlflow.pyfunc as mlflow_pyfunc
    with server.connect() as conn:
        names = untar(export(conn, "EXPORT MODEL exp_reg FORMAT MLFLOW"), tmp_path)
        assert "exp_reg_v1/MLmodel" in names
        columns, predicted = split_rows(conn, REG_FEATURES, "exp_reg_f")
    model = mlflow_pyfunc.load_model(str(tmp_path / "exp_reg_v1"))
    out = model.predict(onnx_feed(columns, set()))
    np.testing.assert_allclose(np.asarray(out["variable"])[:, 0], predicted, rtol=1e-5)


@pytest.mark.skipif(PSQL is None, reason="psql is installed by `make test`")
def test_psql_saves_the_bytes(server: RunningServer, models: dict[str, str]) -> None:
    """psql -At prints a bytea as \\x and hex: `| sed 's/^\\\\x//' | xxd -r -p > m.tar`."""
    out = psql(server, "-A", "-t", "-c", "EXPORT MODEL exp_reg FORMAT NATIVE")
    assert out.returncode == 0, out.stderr
    text = out.stdout.strip()
    assert text.startswith("\\x")
    with server.connect() as conn:
        assert bytes.fromhex(text[2:])[:512] == \
            export(conn, "EXPORT MODEL exp_reg FORMAT NATIVE")[:512]   # the tar header
    with tarfile.open(fileobj=io.BytesIO(bytes.fromhex(text[2:]))) as tar:
        assert sorted(tar.getnames()) == ["model.ubj", "quackml.json"]
    # EXPLAIN CREATE MODEL over the simple query protocol, as psql shows it
    out = psql(server, "-c", "EXPLAIN " + MODELS["exp_reg"].replace("exp_reg", "exp_dry"))
    assert out.returncode == 0, out.stderr
    assert " Problem Type " in out.stdout and "| REGRESSION" in out.stdout


def test_explain_create_or_replace(server: RunningServer, models: dict[str, str]) -> None:
    """EXPLAIN CREATE OR REPLACE MODEL of a trained model plans its next version and
    adds none; without OR REPLACE it fails as CREATE MODEL does."""
    sql = MODELS["exp_reg"].replace("CREATE MODEL", "CREATE OR REPLACE MODEL")
    with server.connect() as conn:
        rows = dict(conn.execute("EXPLAIN " + sql).fetchall())
        assert rows["Action"] == ("CREATE OR REPLACE MODEL public.exp_reg: a new version; "
                                  "version 1 serves until it is READY")
        assert conn.execute("SELECT count(*) FROM svv_ml_model_versions WHERE "
                            "model_name = 'exp_reg'").fetchone() == (1,)
        errors = []
        for prefix in ("EXPLAIN ", ""):
            with pytest.raises(psycopg.Error) as info:
                conn.execute(prefix + MODELS["exp_reg"])
            errors.append((info.value.sqlstate, info.value.diag.message_primary))
        assert errors[0] == errors[1] and errors[0][0] == "42710"


def test_unknown_model_and_version(server: RunningServer, models: dict[str, str]) -> None:
    with server.connect() as conn:
        for sql in ("EXPORT MODEL exp_nosuch FORMAT ONNX",
                    "EXPORT MODEL exp_reg VERSION 7 FORMAT ONNX"):
            with pytest.raises(psycopg.Error) as info:
                conn.execute(sql)
            assert info.value.sqlstate == "42704", sql


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start(tmp_path_factory.mktemp("export_secured"), auth="scram-sha-256")
    yield srv
    srv.stop()


def test_owner_only_and_kmeans(secured: Server) -> None:
    with connect_as(secured, ADMIN, ADMIN_PW) as admin:
        admin.execute("CREATE USER exp_u PASSWORD 'exp-pw'")
        admin.execute("CREATE TABLE exp_pts AS SELECT (i % 7)::DOUBLE AS a, "
                      "(i % 13)::DOUBLE AS b FROM range(600) t(i)")
        admin.execute("CREATE MODEL exp_km FROM exp_pts FUNCTION exp_km_f AUTO OFF "
                      "MODEL_TYPE KMEANS HYPERPARAMETERS DEFAULT EXCEPT (K '3')")
        with pytest.raises(psycopg.Error) as info:
            admin.execute("EXPORT MODEL exp_km FORMAT ONNX")   # still training
        assert info.value.sqlstate == "55000"
        deadline = time.monotonic() + 120
        while admin.execute("SELECT state FROM svv_ml_model_versions WHERE "
                            "model_name = 'exp_km'").fetchone() == ("TRAINING",):
            assert time.monotonic() < deadline
            time.sleep(0.2)
        admin.execute("GRANT EXECUTE ON MODEL exp_km TO exp_u")
        with connect_as(secured, "exp_u", "exp-pw") as user:
            assert user.execute("SELECT exp_km_f(1.0, 2.0)").fetchone() is not None
            with pytest.raises(psycopg.Error) as info:
                user.execute("EXPORT MODEL exp_km FORMAT NATIVE")
            assert info.value.sqlstate == "42501"
            assert "only the owner or a superuser" in info.value.diag.message_primary
        for fmt in ("ONNX", "MLFLOW", "NATIVE"):
            with pytest.raises(psycopg.Error) as info:
                admin.execute(f"EXPORT MODEL exp_km FORMAT {fmt}")
            assert info.value.sqlstate == "0A000"
            message = str(info.value.diag.message_primary)
            assert message.startswith("a kmeans model cannot be exported as"), message
            assert "LightGBM and XGBoost" in str(info.value.diag.message_hint)


# -- LightGBM, on an artifact as training writes it (no search to pick the learner) --
WA_CHURN = Path(__file__).resolve().parents[1] / "examples" / "data" / "wa_churn.csv"


def with_gaps(table: Any) -> Any:
    """wa_churn with NULLs in a number, a category and a date, an unseen category value
    in the test split, and a BOOLEAN and a DATE column: the exports must treat them as
    QuackML does."""
    import pyarrow as pa

    rows = np.arange(table.num_rows)
    charges = table.column("monthly_charges").to_pylist()
    contract = table.column("contract").to_pylist()
    split = table.column("split").to_pylist()
    charges = [None if i % 7 == 0 else v for i, v in zip(rows, charges, strict=True)]
    contract = [None if i % 11 == 0 else "Weekly" if i % 13 == 0 and s == "test" else v
                for i, v, s in zip(rows, contract, split, strict=True)]
    table = table.set_column(table.schema.get_field_index("monthly_charges"),
                             "monthly_charges", pa.array(charges, pa.float64()))
    table = table.set_column(table.schema.get_field_index("contract"), "contract",
                             pa.array(contract, pa.string()))
    # a BOOLEAN and a DATE feature
    partner = [v == 1 for v in table.column("partner").to_pylist()]
    since = [None if i % 17 == 0 else
             datetime.date(2015, 1, 1) + datetime.timedelta(days=int(i * 37 % 3000))
             for i in rows]
    table = table.append_column("partner_b", pa.array(partner, pa.bool_()))
    return table.append_column("since", pa.array(since, pa.date32()))


@pytest.mark.parametrize("learner", ["lgbm", "rf", "extra_tree"])
@pytest.mark.parametrize("problem", ["BINARY", "MULTICLASS", "REGRESSION"])
def test_artifact_exports(learner: str, problem: str, tmp_path: Path) -> None:
    """A LightGBM model fitted on the model input frame (pandas categories), or a
    scikit-learn forest on its category codes, as FLAML fits them, written and read back
    as an artifact: NATIVE identical to QuackML's scoring (LightGBM; 0A000 for forests),
    ONNX within 1e-5 with the same labels, MLFLOW the same as ONNX."""
    import lightgbm as lgb
    import onnxruntime as ort
    import pyarrow.csv as pacsv
    from sklearn.ensemble import (
        ExtraTreesClassifier,
        ExtraTreesRegressor,
        RandomForestClassifier,
        RandomForestRegressor,
    )

    from catalog import export as formats
    from catalog.artifact import ModelArtifact, estimator_input, read_artifact, write_artifact
    from catalog.frames import fit_categories
    from catalog.spec import Column, ProblemType

    table = pacsv.read_csv(WA_CHURN)
    features = (Column("tenure", "BIGINT"), Column("contract", "VARCHAR"),
                Column("monthly_charges", "DOUBLE"), Column("payment_method", "VARCHAR"),
                Column("partner_b", "BOOLEAN"), Column("since", "DATE"))
    categories = fit_categories(table, features)
    table = with_gaps(table)
    train = table.filter(table.column("split").to_numpy(zero_copy_only=False) == "train")
    test = table.filter(table.column("split").to_numpy(zero_copy_only=False) == "test")
    probe = ModelArtifact(features, Column("t", "VARCHAR"), ProblemType.REGRESSION, (),
                          categories, None, "", 0.0)
    frame = probe.frame([train.column(c.name) for c in features])
    kind = ProblemType[problem]
    labels: tuple[object, ...] = ()
    threshold = None
    if kind is ProblemType.BINARY:
        target, labels, threshold = Column("churn", "VARCHAR"), ("No", "Yes"), 0.35
        y = np.array([labels.index(v) for v in train.column("churn").to_pylist()])
        model: Any = lgb.LGBMClassifier(n_estimators=25, verbose=-1)
    elif kind is ProblemType.MULTICLASS:
        target = Column("internet_service", "VARCHAR")
        labels = tuple(sorted(set(train.column("internet_service").to_pylist())))
        y = np.array([labels.index(v) for v in train.column("internet_service").to_pylist()])
        model = lgb.LGBMClassifier(n_estimators=25, verbose=-1)
    else:
        target = Column("total_charges", "DOUBLE")
        y = np.nan_to_num(np.asarray(train.column("total_charges").to_numpy(
            zero_copy_only=False), dtype=np.float64))
        model = lgb.LGBMRegressor(n_estimators=25, verbose=-1)
    codes = learner != "lgbm"
    if codes:
        forests = {"rf": (RandomForestClassifier, RandomForestRegressor),
                   "extra_tree": (ExtraTreesClassifier, ExtraTreesRegressor)}[learner]
        model = forests[0 if kind.is_classification else 1](n_estimators=12, max_depth=8,
                                                             random_state=0)
    model.fit(estimator_input(frame, codes), y)
    written = ModelArtifact(features, target, kind, labels, categories, model, "m", 0.5,
                            threshold=threshold, category_codes=codes, learner=learner)
    sha = write_artifact(written, str(tmp_path / "artifact.json"))
    artifact = read_artifact(str(tmp_path / "artifact.json"), sha)
    test_frame = artifact.frame([test.column(c.name) for c in features])
    columns = {c.name: test.column(c.name).to_pylist() for c in features}
    categorical = {c.name for c, cats in zip(features, categories, strict=True) if cats}

    if codes:
        with pytest.raises(formats.NotExportable) as info:
            formats.native(artifact, {})
        assert str(info.value) == f"a {learner} model cannot be exported as NATIVE"
    else:
        native = tmp_path / "native"
        untar(formats.native(artifact, {"model": "public.m"}), native)
        manifest, p = native_predict(native, columns)
        assert manifest["library"] == "lightgbm"
    session = ort.InferenceSession(formats.onnx_bytes(artifact, {}))
    outputs = session.run(None, onnx_feed(columns, categorical))
    if kind is ProblemType.REGRESSION:
        expected = artifact.predict_frame(test_frame)
        if not codes:
            assert p.tolist() == expected.tolist()        # identical
        np.testing.assert_allclose(outputs[0][:, 0], expected, rtol=1e-5)
    else:
        proba = artifact.predict_proba_frame(test_frame)
        expected_labels = artifact.decode(artifact.predict_frame(test_frame))
        if codes:
            pass
        elif kind is ProblemType.BINARY:
            assert p.tolist() == proba[:, 1].tolist()   # identical
            assert labels_of(manifest, p) == expected_labels
        else:
            assert p.tolist() == proba.tolist()
        assert outputs[0].tolist() == expected_labels
        np.testing.assert_allclose(outputs[1], proba, atol=1e-5)
    import mlflow.pyfunc as mlflow_pyfunc
    untar(formats.mlflow_tar(artifact, {}, "m_v1"), tmp_path / "mlflow")
    out = mlflow_pyfunc.load_model(str(tmp_path / "mlflow" / "m_v1")).predict(
        onnx_feed(columns, categorical))
    for name, value in zip([o.name for o in session.get_outputs()], outputs, strict=True):
        assert np.asarray(out[name]).tolist() == value.tolist()
