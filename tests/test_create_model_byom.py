"""Bring your own model, written the way the Redshift ML docs write it: a local XGBoost
or LightGBM model file (imported, READY at once) and a remote endpoint (an HTTP server
started by the test that takes CSV rows and answers one value per line).

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
import psycopg
import pytest
import xgboost as xgb

from server.listener import Server
from server.settings import Settings
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
    (folder / "junk.bin").write_bytes(b"\x00\x01 not a model")
    files["junk"] = folder / "junk.bin"
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
def server(tmp_path_factory: pytest.TempPathFactory, model_files: dict[str, Path],
           endpoint: str) -> Iterator[RunningServer]:
    """A trust-auth server (every client a superuser) whose --file-dir holds the model
    files and whose --sagemaker-allowed-urls lists the test endpoint and a closed port."""
    folder = tmp_path_factory.mktemp("byom-server")
    srv = Server(Settings(host="127.0.0.1", port=0, database=str(folder / "db.duckdb"),
                          data_dir=str(folder / "data"), samples=False, training_workers=1,
                          training_threads=1, file_dir=str(model_files["json"].parent),
                          sagemaker_allowed_urls=f"{endpoint}, http://127.0.0.1:9/nothing"))
    srv.start()
    try:
        yield RunningServer("127.0.0.1", srv.port, folder / "data")
    finally:
        srv.stop()


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
