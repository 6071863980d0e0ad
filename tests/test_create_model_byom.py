"""Bring your own model, written the way the Redshift ML docs write it: a local XGBoost
or LightGBM model file (imported, READY at once, then compiled and served like a trained
booster), an ONNX model file (scored with onnxruntime) and a remote endpoint (an HTTP
server started by the test that takes CSV rows and answers one value per line).

The server of this module has a --file-dir (the model files are read from there) and
lists the test's endpoint in --sagemaker-allowed-urls; tests/attack/test_fair_use.py
shows what happens outside both."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import lightgbm as lgb
import numpy as np
import onnxruntime as ort
import pandas as pd
import psycopg
import pytest
import xgboost as xgb

from server.listener import Server
from server.settings import Settings
from tests import onnx_models
from tests.conftest import RunningServer


def _data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(600, 3))
    y = 3 * X[:, 0] - 2 * X[:, 1] + X[:, 2]
    return X, y


@pytest.fixture(scope="module")
def model_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("byom")   # the server's --file-dir
    X, y = _data()
    booster = xgb.train({"max_depth": 3, "eta": 0.3}, xgb.DMatrix(X, label=y),
                        num_boost_round=20)
    files = {"json": folder / "model.json", "ubj": folder / "model.ubj",
             "lgbm": folder / "model.txt"}
    booster.save_model(str(files["json"]))
    booster.save_model(str(files["ubj"]))
    lgb.train({"objective": "regression", "verbose": -1, "num_leaves": 7},
              lgb.Dataset(X, label=y), num_boost_round=20).save_model(str(files["lgbm"]))
    # trained on a named frame (an int column among them): XGBoost checks the names
    frame = pd.DataFrame({"x1": X[:, 0], "x2": X[:, 1], "x3": np.round(X[:, 2]).astype(int)})
    files["named"] = folder / "named.json"
    xgb.XGBRegressor(n_estimators=20, max_depth=3).fit(frame, y).get_booster().save_model(
        str(files["named"]))
    (folder / "junk.bin").write_bytes(b"\x00\x01 not a model")
    files["junk"] = folder / "junk.bin"
    files["onnx_linear"] = onnx_models.linear_matrix(folder / "linear.onnx")
    files["onnx_columns"] = onnx_models.per_column(folder / "columns.onnx")
    files["onnx_string"] = onnx_models.string_output(folder / "string.onnx")
    files["onnx_not"] = onnx_models.negation(folder / "negation.onnx")
    files["onnx_external"] = onnx_models.external_data(folder / "external.onnx")
    return files


@pytest.mark.parametrize("kind", ["json", "ubj", "lgbm"])
def test_local_model_file_is_ready_at_once(conn: psycopg.Connection, server: RunningServer,
                                           model_files: dict[str, Path], kind: str) -> None:
    path = model_files[kind]
    # a name relative to --file-dir, or an absolute path inside it
    name = str(path) if kind == "json" else path.name
    conn.execute(f"""
        CREATE MODEL byom_{kind}
        FROM '{name}'
        FUNCTION byom_{kind}_predict (float8, float8, float8)
        RETURNS float8
        IAM_ROLE default
        SETTINGS (S3_BUCKET 'your-bucket')""")
    values = dict(conn.execute(f"SHOW MODEL byom_{kind}").fetchall())
    assert values["Model State"] == "READY"
    assert values["Function Parameter Types"] == "float8 float8 float8"
    assert values["Model File"] == name
    assert values["Model Type"] == ("imported lightgbm" if kind == "lgbm" else "imported xgboost")
    assert "HYPERPARAMETERS:" not in values
    X, _ = _data()
    rows = conn.execute(
        f"SELECT byom_{kind}_predict(a, b, c) FROM (VALUES (%s, %s, %s), (%s, %s, %s)) t(a, b, c)",
        [*X[0].tolist(), *X[1].tolist()]).fetchall()
    if kind == "lgbm":
        expected = lgb.Booster(model_file=str(path)).predict(X[:2])
    else:
        booster = xgb.Booster()
        booster.load_model(str(path))
        expected = booster.predict(xgb.DMatrix(X[:2]))
    assert np.allclose([r[0] for r in rows], expected, rtol=1e-6)
    # The model was copied into the artifact store: removing the file changes nothing.
    copy = path.with_suffix(".moved")
    path.rename(copy)
    try:
        assert conn.execute(f"SELECT byom_{kind}_predict(0.1, 0.2, 0.3)").fetchone() is not None
    finally:
        copy.rename(path)
    folders = list((server.data_dir / "models" / "public").glob(f"byom_{kind}/*/artifact.json"))
    assert len(folders) == 1


def test_local_model_errors(conn: psycopg.Connection, model_files: dict[str, Path]) -> None:
    cases = [
        (f"CREATE MODEL byom_bad FROM '{model_files['junk']}' FUNCTION byom_bad_f (float8) "
         "RETURNS float8", "22023"),
        (f"CREATE MODEL byom_bad FROM '{model_files['json']}' FUNCTION byom_bad_f (float8) "
         "RETURNS float8", "22023"),  # the model takes 3 features
        ("CREATE MODEL byom_bad FROM 'no_such_model.json' FUNCTION byom_bad_f (float8) "
         "RETURNS float8", "58P01"),
        ("CREATE MODEL byom_bad FROM '/no/such/model.json' FUNCTION byom_bad_f (float8) "
         "RETURNS float8", "42501"),   # outside --file-dir
        (f"CREATE MODEL byom_bad FROM '{model_files['json']}' FUNCTION byom_bad_f "
         "(float8, float8, nosuchtype) RETURNS float8", "42704"),
        (f"CREATE MODEL byom_bad FROM '{model_files['json']}' FUNCTION byom_bad_f", "42601"),
    ]
    for sql, sqlstate in cases:
        with pytest.raises(psycopg.Error) as info:
            conn.execute(sql)
        assert info.value.sqlstate == sqlstate, (sql, info.value)
        assert conn.execute("SELECT 1").fetchone() == (1,)


class _Endpoint(BaseHTTPRequestHandler):
    batches: ClassVar[list[int]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"])).decode()
        lines = body.strip().split("\n")
        type(self).batches.append(len(lines))
        # One value per line: the sum of the fields, an empty field counting as 100.
        out = [str(sum(float(v) if v else 100.0 for v in line.split(","))) for line in lines]
        payload = ("\n".join(out) + "\n").encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/csv")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Endpoint)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/invocations"
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture(scope="module")
def byom_server(tmp_path_factory: pytest.TempPathFactory, model_files: dict[str, Path],
                endpoint: str) -> Iterator[Server]:
    """A trust-auth server (every client a superuser) whose --file-dir holds the model
    files and whose --sagemaker-allowed-urls lists the test endpoint and a closed port."""
    folder = tmp_path_factory.mktemp("byom-server")
    srv = Server(Settings(host="127.0.0.1", port=0, database=str(folder / "db.duckdb"),
                          data_dir=str(folder / "data"), samples=False, training_workers=1,
                          training_threads=1, file_dir=str(model_files["json"].parent),
                          sagemaker_allowed_urls=f"{endpoint}, http://127.0.0.1:9/nothing"))
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def server(byom_server: Server) -> RunningServer:
    return RunningServer("127.0.0.1", byom_server.port,
                         Path(byom_server.settings.data_dir))


def test_imported_boosters_are_compiled(conn: psycopg.Connection, byom_server: Server,
                                        model_files: dict[str, Path]) -> None:
    """An imported booster goes through the compiled evaluator (verified bit for bit
    against the library by inference.compiled.verify when it was compiled), and its
    predictions over the wire are the library's own, exactly."""
    X = np.random.default_rng(5).normal(size=(3000, 3))
    X[::7, 1] = np.nan
    conn.execute("CREATE TABLE byom_rows (i INTEGER, a DOUBLE, b DOUBLE, c DOUBLE)")
    with conn.cursor().copy("COPY byom_rows FROM STDIN") as copy:
        for i, row in enumerate(X):
            copy.write_row([i, *(None if np.isnan(v) else float(v) for v in row)])
    assert byom_server.engine is not None
    for kind in ("ubj", "lgbm", "named"):
        path = model_files[kind]
        conn.execute(f"CREATE MODEL byomc_{kind} FROM '{path.name}' "
                     f"FUNCTION byomc_{kind}_f (float8, float8, float8) RETURNS float8")
        loaded = byom_server.engine.cache.prepare(f"byomc_{kind}_f", timeout=300)
        assert loaded.evaluator.kind == "lignum-compiled", loaded.compile_error
        rows = conn.execute(f"SELECT byomc_{kind}_f(a, b, c) FROM byom_rows "
                            "ORDER BY i").fetchall()
        if kind == "lgbm":
            expected = lgb.Booster(model_file=str(path)).predict(X)
        else:
            booster = xgb.Booster()
            booster.load_model(str(path))
            expected = booster.predict(xgb.DMatrix(X, missing=np.nan,
                                                   feature_names=booster.feature_names))
        assert [r[0] for r in rows] == np.asarray(expected, dtype=np.float64).tolist()
        conn.execute(f"DROP MODEL byomc_{kind}")
    conn.execute("DROP TABLE byom_rows")


def _onnx_run(path: Path, feed: dict[str, np.ndarray]) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    out = session.run([session.get_outputs()[0].name], feed)[0]
    return np.asarray(out, dtype=np.float64).reshape(-1)


def test_onnx_model(conn: psycopg.Connection, model_files: dict[str, Path]) -> None:
    """An ONNX model file: imported, READY at once, scored with onnxruntime over several
    DuckDB vectors; the predictions over the wire are onnxruntime's own on the file."""
    conn.execute("""
        CREATE MODEL byom_onnx
        FROM 'linear.onnx'
        FUNCTION byom_onnx_f (float8, float8, int4)
        RETURNS float8
        IAM_ROLE default""")
    values = dict(conn.execute("SHOW MODEL byom_onnx").fetchall())
    assert values["Model State"] == "READY"
    assert values["Model Type"] == "imported onnx"
    X = np.random.default_rng(1).normal(size=(5000, 3))
    X[:, 2] = np.round(X[:, 2] * 10)
    conn.execute("CREATE TABLE onnx_rows (i INTEGER, a DOUBLE, b DOUBLE, k INTEGER)")
    with conn.cursor().copy("COPY onnx_rows FROM STDIN") as copy:
        for i, row in enumerate(X):
            copy.write_row([i, float(row[0]), float(row[1]), int(row[2])])
    rows = conn.execute("SELECT byom_onnx_f(a, b, k) FROM onnx_rows ORDER BY i").fetchall()
    expected = _onnx_run(model_files["onnx_linear"], {"X": X.astype(np.float32)})
    assert [r[0] for r in rows] == expected.tolist()
    # one input per argument, an integer one among them
    conn.execute("CREATE MODEL byom_onnx_cols FROM 'columns.onnx' "
                 "FUNCTION byom_onnx_cols_f (float8, int8) RETURNS float8")
    rows = conn.execute("SELECT byom_onnx_cols_f(a, k) FROM onnx_rows ORDER BY i").fetchall()
    expected = _onnx_run(model_files["onnx_columns"],
                         {"a": X[:, 0].copy(), "k": X[:, 2].astype(np.int64)})
    assert [r[0] for r in rows] == expected.tolist()
    with pytest.raises(psycopg.Error) as info:
        conn.execute("SELECT byom_onnx_cols_f(1.5, NULL)")
    assert info.value.sqlstate == "22004"
    assert conn.execute("SELECT 1").fetchone() == (1,)
    # a boolean input and output
    conn.execute("CREATE MODEL byom_onnx_not FROM 'negation.onnx' "
                 "FUNCTION byom_onnx_not_f (boolean) RETURNS boolean")
    rows = conn.execute("SELECT byom_onnx_not_f(b) FROM (VALUES (1, true), (2, false)) "
                        "t(i, b) ORDER BY i").fetchall()
    assert rows == [(False,), (True,)]
    conn.execute("DROP TABLE onnx_rows")


def test_onnx_classifier_from_sklearn(conn: psycopg.Connection,
                                      model_files: dict[str, Path]) -> None:
    """A scikit-learn classifier converted by skl2onnx: its first output (the label) is
    the prediction; the probabilities output (a sequence of maps) is never computed."""
    skl2onnx = pytest.importorskip("skl2onnx")
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.linear_model import LogisticRegression

    X, y = _data()
    classifier = LogisticRegression().fit(X, (y > 0).astype(np.int64))
    onx = skl2onnx.convert_sklearn(classifier, initial_types=[("X", FloatTensorType([None, 3]))],
                                   target_opset=17)
    path = model_files["json"].parent / "classifier.onnx"
    path.write_bytes(onx.SerializeToString())
    conn.execute("CREATE MODEL byom_onnx_clf FROM 'classifier.onnx' "
                 "FUNCTION byom_onnx_clf_f (float8, float8, float8) RETURNS int4")
    rows = conn.execute(
        "SELECT byom_onnx_clf_f(a, b, c) FROM (VALUES " +
        ", ".join(f"({i}, {a!r}, {b!r}, {c!r})" for i, (a, b, c) in enumerate(X[:200].tolist())) +
        ") t(i, a, b, c) ORDER BY i").fetchall()
    expected = _onnx_run(path, {"X": X[:200].astype(np.float32)})
    assert [r[0] for r in rows] == expected.astype(np.int64).tolist()


def test_onnx_model_errors(conn: psycopg.Connection, model_files: dict[str, Path]) -> None:
    cases = [
        # not a model of any kind
        ("junk.bin", "(float8)", "float8", "22023", "ONNX"),
        # the model takes [N, 3]; FUNCTION declares 2 arguments
        ("linear.onnx", "(float8, float8)", "float8", "22023", "[N, 3]"),
        # two inputs; FUNCTION declares 3 arguments
        ("columns.onnx", "(float8, float8, float8)", "float8", "22023", "2 inputs"),
        # an int64 input for a float8 argument
        ("columns.onnx", "(float8, float8)", "float8", "42804", "int64"),
        # a boolean input for a float8 argument
        ("negation.onnx", "(float8)", "boolean", "42804", "bool"),
        # a string output
        ("string.onnx", "(float8)", "float8", "42804", "tensor(string)"),
        # a float output for RETURNS boolean
        ("linear.onnx", "(float8, float8, float8)", "boolean", "42804", "tensor(float)"),
        # weights in an external file
        ("external.onnx", "(float8, float8, float8)", "float8", "22023", "external"),
    ]
    for name, args, returns, sqlstate, text in cases:
        sql = f"CREATE MODEL byom_onnx_bad FROM '{name}' FUNCTION byom_onnx_bad_f {args} " \
              f"RETURNS {returns}"
        with pytest.raises(psycopg.Error) as info:
            conn.execute(sql)
        assert info.value.sqlstate == sqlstate, (sql, info.value)
        assert text in str(info.value), (sql, info.value)
        assert str(model_files["json"].parent) not in str(info.value)  # no server paths
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_remote_model_in_batches(conn: psycopg.Connection, endpoint: str) -> None:
    conn.execute(f"""
        CREATE MODEL remote_adder
        FUNCTION remote_add (int4, float8)
        RETURNS float8
        SAGEMAKER '{endpoint}'
        IAM_ROLE default
        SETTINGS (MAX_BATCH_ROWS 100)""")
    values = dict(conn.execute("SHOW MODEL remote_adder").fetchall())
    assert values["Model State"] == "READY"
    assert values["Endpoint"] == endpoint and values["Model Type"] == "sagemaker"
    _Endpoint.batches.clear()
    rows = conn.execute("SELECT i, remote_add(i::INTEGER, i / 2.0) FROM range(1000) t(i) "
                        "ORDER BY i").fetchall()
    assert [r[1] for r in rows] == [i + i / 2 for i in range(1000)]
    assert max(_Endpoint.batches) <= 100 and sum(_Endpoint.batches) == 1000
    assert conn.execute("SELECT remote_add(NULL, 1.5)").fetchone() == (101.5,)


def test_remote_model_errors(conn: psycopg.Connection) -> None:
    with pytest.raises(psycopg.errors.InvalidParameterValue):
        conn.execute("CREATE MODEL remote_bad FUNCTION remote_bad_f (int4) RETURNS float8 "
                     "SAGEMAKER 'my-endpoint-name'")
    conn.execute("CREATE MODEL remote_down FUNCTION remote_down_f (int4) RETURNS float8 "
                 "SAGEMAKER 'http://127.0.0.1:9/nothing'")
    with pytest.raises(psycopg.Error) as info:
        conn.execute("SELECT remote_down_f(1)")
    assert "remote model" in str(info.value)
    assert conn.execute("SELECT 1").fetchone() == (1,)
    conn.execute("DROP MODEL remote_down")


@pytest.mark.parametrize("kind", ["lgbm", "json"])
def test_imported_model_rows_are_explained(conn: psycopg.Connection,
                                           model_files: dict[str, Path], kind: str) -> None:
    """f_explain of an imported booster: exact TreeSHAP in the booster's raw space; the
    attributions plus the baseline are the library's own prediction (regression)."""
    conn.execute(f"DROP MODEL IF EXISTS byom_ex_{kind}")
    conn.execute(f"CREATE MODEL byom_ex_{kind} FROM '{model_files[kind].name}' "
                 f"FUNCTION byom_ex_{kind}_f (float8, float8, float8) RETURNS float8")
    X, _ = _data()
    values = ", ".join(f"({a!r}, {b!r}, {c!r}, {i})" for i, (a, b, c) in enumerate(X.tolist()))
    rows = conn.execute(
        "SELECT e.method, e.space, e.prediction, e.baseline, len(e.attributions), "
        "list_sum([a.attribution FOR a IN e.attributions]) FROM (SELECT i, "
        f"byom_ex_{kind}_f_explain_top(a, b, c, 3) AS e FROM (VALUES {values}) t(a, b, c, i)) "
        "ORDER BY i").fetchall()
    if kind == "lgbm":
        expected = lgb.Booster(model_file=str(model_files[kind])).predict(X)
    else:
        booster = xgb.Booster()
        booster.load_model(str(model_files[kind]))
        expected = booster.predict(xgb.DMatrix(X), output_margin=True)
    assert {r[:2] for r in rows} == {("tree_shap", "raw score")}
    assert {r[4] for r in rows} == {3}
    got = np.array([r[2] for r in rows])
    np.testing.assert_allclose(np.array([r[3] + r[5] for r in rows]), got, rtol=0, atol=1e-6)
    # XGBoost's margin is float32 arithmetic
    np.testing.assert_allclose(got, expected, rtol=1e-6 if kind == "json" else 0, atol=1e-6)
    conn.execute(f"DROP MODEL byom_ex_{kind}")
