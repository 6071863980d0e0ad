"""Fair use and bring-your-own-model files, tried as an attacker would (issue 10, item 9):
a per-user share of the training queue (53000), a server-wide MAX_RUNTIME limit (22023),
SAGEMAKER endpoints for superusers and listed URLs only (42501), and model files read
only from inside --file-dir by superusers and FILEACCESS users (42501, without the
server's paths in the message). Real servers on 127.0.0.1:0, psycopg over TCP."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import numpy as np
import psycopg
import pytest
import xgboost as xgb

from server.listener import Server
from server.settings import Settings
from tests import onnx_models

ADMIN, ADMIN_PW = "admin", "adm1n-pw"
USERS = {"alice": "alice-pw", "bob": "bob-pw", "carol": "carol-pw", "fanny": "fanny-pw"}
PER_USER = 2
RUNTIME_LIMIT = 30
# 600 rows a regression trains on; MAX_RUNTIME keeps each job short
TRAIN = ("FROM (SELECT i::DOUBLE AS x, (i % 7)::DOUBLE AS z, i * 0.5 + (i % 7) AS y "
         "FROM range(600) t(i)) TARGET y")


class _Endpoint(BaseHTTPRequestHandler):
    """A remote model: CSV rows in, the sum of each row's fields out, one per line."""
    calls: ClassVar[list[str]] = []

    def do_POST(self) -> None:
        type(self).calls.append(self.path)
        body = self.rfile.read(int(self.headers["Content-Length"])).decode()
        out = [str(sum(float(v) for v in line.split(","))) for line in body.strip().split("\n")]
        payload = ("\n".join(out) + "\n").encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/csv")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: object) -> None:
        pass


@dataclass
class Fair:
    port: int
    folder: Path
    file_dir: Path
    outside: Path
    endpoint: str

    def connect(self, user: str) -> psycopg.Connection:
        password = ADMIN_PW if user == ADMIN else USERS[user]
        return psycopg.connect(host="127.0.0.1", port=self.port, user=user, password=password,
                               dbname="quackml", connect_timeout=10, autocommit=True)


def _model_file(path: Path) -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    booster = xgb.train({"max_depth": 2}, xgb.DMatrix(X, label=X.sum(axis=1)),
                        num_boost_round=5)
    booster.save_model(str(path))


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
def fair(tmp_path_factory: pytest.TempPathFactory, endpoint: str) -> Iterator[Fair]:
    folder = tmp_path_factory.mktemp("fair")
    file_dir, outside = folder / "files", folder / "outside"
    file_dir.mkdir()
    outside.mkdir()
    _model_file(file_dir / "model.json")
    _model_file(outside / "model.json")
    onnx_models.linear_matrix(file_dir / "model.onnx")
    (file_dir / "link.json").symlink_to(outside / "model.json")
    (file_dir / "linked_dir").symlink_to(outside, target_is_directory=True)
    srv = Server(Settings(
        host="127.0.0.1", port=0, database=str(folder / "db.duckdb"),
        data_dir=str(folder / "data"), samples=False, training_workers=1, training_threads=1,
        auth="scram-sha-256", superuser=ADMIN, superuser_password=ADMIN_PW,
        training_queue_per_user=PER_USER, max_runtime_limit=RUNTIME_LIMIT,
        file_dir=str(file_dir), sagemaker_allowed_urls=f"https://models.example/, {endpoint}"))
    srv.start()
    try:
        state = Fair(srv.port, folder, file_dir, outside, endpoint)
        with state.connect(ADMIN) as c:
            for user, password in USERS.items():
                extra = " FILEACCESS" if user == "fanny" else ""
                c.execute(f"CREATE USER {user} PASSWORD '{password}'{extra}")
            c.execute("GRANT CREATE MODEL TO " + ", ".join(USERS))
        yield state
    finally:
        srv.stop()


def _error(conn: psycopg.Connection, sql: str) -> psycopg.Error:
    with pytest.raises(psycopg.Error) as info:
        conn.execute(sql)
    assert conn.execute("SELECT 1").fetchone() == (1,)   # the session goes on
    return info.value


def _show(conn: psycopg.Connection, model: str) -> dict[str, str]:
    return {str(k): str(v) for k, v in conn.execute(f"SHOW MODEL {model}").fetchall()}


def _create(name: str, runtime: int | None = 20) -> str:
    settings = f" SETTINGS (MAX_RUNTIME {runtime})" if runtime is not None else ""
    return f"CREATE MODEL {name} {TRAIN} FUNCTION {name}_f{settings}"


# -- the training queue: a share per user -----------------------------------------
def test_one_user_cannot_fill_the_training_queue(fair: Fair) -> None:
    with fair.connect("alice") as alice, fair.connect("bob") as bob:
        for i in range(PER_USER):   # one runs, the other waits for the single worker
            alice.execute(_create(f"alice_q{i}"))
        exc = _error(alice, _create("alice_over"))
        assert exc.sqlstate == "53000", exc
        assert f"training_queue_per_user is {PER_USER}" in str(exc)
        assert exc.diag.message_hint is not None and \
            "--training-queue-per-user" in exc.diag.message_hint
        # refused before any work: no model, no folder
        assert _error(alice, "SHOW MODEL alice_over").sqlstate == "42704"
        assert not list((fair.folder / "data").rglob("alice_over"))
        # another user still gets a place in the queue
        bob.execute(_create("bob_q0"))
        assert _show(bob, "bob_q0")["Model State"] == "TRAINING"
        # a slot given back (DROP MODEL cancels the job) is alice's again
        alice.execute("DROP MODEL alice_q1")
        alice.execute(_create("alice_q2"))
        for name in ("alice_q0", "alice_q2"):
            alice.execute(f"DROP MODEL {name}")
        bob.execute("DROP MODEL bob_q0")


def test_superusers_are_exempt_from_the_per_user_share(fair: Fair) -> None:
    """As from PostgreSQL's per-role CONNECTION LIMIT; the queue's own bound holds."""
    with fair.connect(ADMIN) as admin:
        names = [f"admin_q{i}" for i in range(PER_USER + 1)]
        for name in names:
            admin.execute(_create(name))
        for name in names:
            admin.execute(f"DROP MODEL {name}")


# -- MAX_RUNTIME: a server-wide maximum -------------------------------------------
def test_max_runtime_over_the_limit_is_refused(fair: Fair) -> None:
    with fair.connect("carol") as carol:
        exc = _error(carol, _create("carol_long", RUNTIME_LIMIT + 1))
        assert exc.sqlstate == "22023", exc
        assert f"limit of {RUNTIME_LIMIT} seconds" in str(exc)
        assert exc.diag.message_hint == f"lower MAX_RUNTIME to {RUNTIME_LIMIT} or less"
        assert _error(carol, "SHOW MODEL carol_long").sqlstate == "42704"


def test_default_max_runtime_is_lowered_to_the_limit_with_a_notice(fair: Fair) -> None:
    with fair.connect("carol") as carol:
        notices: list[str] = []
        carol.add_notice_handler(lambda diag: notices.append(diag.message_primary or ""))
        carol.execute(_create("carol_default", None))
        assert any(f"at most {RUNTIME_LIMIT} seconds" in n for n in notices), notices
        assert _show(carol, "carol_default")["Max Runtime"] == str(RUNTIME_LIMIT)
        carol.execute("DROP MODEL carol_default")
        carol.execute(_create("carol_exact", RUNTIME_LIMIT))   # the limit itself is fine
        carol.execute("DROP MODEL carol_exact")


# -- SAGEMAKER: superusers, listed URLs -------------------------------------------
def _sagemaker(name: str, url: str) -> str:
    return (f"CREATE MODEL {name} FUNCTION {name}_f (float8, float8) RETURNS float8 "
            f"SAGEMAKER '{url}'")


def test_sagemaker_needs_a_superuser(fair: Fair) -> None:
    for user in ("alice", "fanny"):   # FILEACCESS does not open the network
        with fair.connect(user) as c:
            assert _error(c, _sagemaker("remote_mine", fair.endpoint)).sqlstate == "42501"
            assert _error(c, _sagemaker("remote_mine", "http://169.254.169.254/")).sqlstate \
                == "42501"


def test_sagemaker_url_must_be_on_the_allow_list(fair: Fair) -> None:
    port = int(fair.endpoint.rsplit(":", 1)[1].split("/")[0])
    other_port = port + 1 if port < 65535 else port - 1
    disguised = [
        "http://169.254.169.254/latest/meta-data/",                     # not listed
        f"http://127.0.0.1:{port}@10.0.0.1:{port}/invocations",         # userinfo
        f"http://127.0.0.1:{port}/invocations@10.0.0.1/",               # "@" in the path
        f"http://127.0.0.1.evil.example:{port}/invocations",           # suffix host
        f"http://localhost:{port}/invocations",                         # another name
        f"http://127.0.0.1:{other_port}/invocations",                   # other port
        f"https://127.0.0.1:{port}/invocations",                        # other scheme
        f"http://127.0.0.1:{port}/invocationsx",                        # not at a /
        f"http://127.0.0.1:{port}/invocations/../admin",                # dot segments
        f"http://127.0.0.1:{port}/invocations/%2e%2e/admin",
        f"http://127.0.0.1:{port}\\@10.0.0.1/invocations",               # backslash
        f"http://127.0.0.1:{port}#@10.0.0.1/invocations",                # fragment
        "http://models.example/",                                       # https listed
        "https://models.example.evil.example/",
        "https://models.example:8443/",
        "https://user@models.example/",
    ]
    with fair.connect(ADMIN) as admin:
        for url in disguised:
            exc = _error(admin, _sagemaker("remote_bad", url))
            assert exc.sqlstate == "42501", (url, exc)
            assert exc.diag.message_hint is not None and \
                "--sagemaker-allowed-urls" in exc.diag.message_hint, url
        # a listed endpoint, also below its path, really predicts
        _Endpoint.calls.clear()
        admin.execute(_sagemaker("remote_ok", fair.endpoint))
        admin.execute(_sagemaker("remote_sub", fair.endpoint + "/v2"))
        assert admin.execute("SELECT remote_ok_f(1.5, 2), remote_sub_f(1, 1)").fetchone() == \
            (3.5, 2.0)
        assert sorted(_Endpoint.calls) == ["/invocations", "/invocations/v2"]
        admin.execute("DROP MODEL remote_ok")
        admin.execute("DROP MODEL remote_sub")


def test_defaults_allow_no_endpoint_and_no_model_file(tmp_path: Path, endpoint: str) -> None:
    """With no --sagemaker-allowed-urls and no --file-dir, not even a superuser (every
    client under trust) makes the server call an address or read a file."""
    srv = Server(Settings(host="127.0.0.1", port=0, database=str(tmp_path / "db.duckdb"),
                          data_dir=str(tmp_path / "data"), samples=False, training_workers=1,
                          training_threads=1))
    _model_file(tmp_path / "model.json")
    srv.start()
    try:
        with psycopg.connect(host="127.0.0.1", port=srv.port, user="anyone",
                             dbname="quackml", autocommit=True) as c:
            exc = _error(c, _sagemaker("remote_default", endpoint))
            assert exc.sqlstate == "42501" and exc.diag.message_hint is not None
            assert "--sagemaker-allowed-urls" in exc.diag.message_hint
            exc = _error(c, f"CREATE MODEL byom_default FROM '{tmp_path / 'model.json'}' "
                            "FUNCTION byom_default_f (float8, float8, float8) RETURNS float8")
            assert exc.sqlstate == "42501" and exc.diag.message_hint is not None
            assert "--file-dir" in exc.diag.message_hint
    finally:
        srv.stop()


# -- bring-your-own model files: only inside --file-dir ---------------------------
def _byom(name: str, path: str) -> str:
    return (f"CREATE MODEL {name} FROM '{path}' FUNCTION {name}_f (float8, float8, float8) "
            "RETURNS float8")


def _server_paths(fair: Fair) -> list[str]:
    return [str(fair.folder), str(fair.folder.resolve())]


def test_fileaccess_user_imports_a_model_from_the_file_dir(fair: Fair) -> None:
    with fair.connect("fanny") as fanny:
        fanny.execute(_byom("fanny_model", "model.json"))
        rows = _show(fanny, "fanny_model")
        assert rows["Model State"] == "READY" and rows["Model File"] == "model.json"
        assert fanny.execute("SELECT fanny_model_f(0.1, 0.2, 0.3)").fetchone() is not None
        fanny.execute("DROP MODEL fanny_model")
        exc = _error(fanny, _byom("fanny_missing", "no_such.json"))
        assert exc.sqlstate == "58P01" and "no_such.json" in str(exc)
        assert not any(p in str(exc) for p in _server_paths(fair))


def test_model_file_paths_cannot_leave_the_file_dir(fair: Fair) -> None:
    escapes = [
        str(fair.outside / "model.json"),               # absolute, outside
        "../outside/model.json",                        # .. out of the folder
        "linked_dir/../../outside/model.json",
        "link.json",                                    # a symlink that leads out
        "linked_dir/model.json",                        # through a symlinked folder
        str(fair.folder / "db.duckdb"),                 # the server's own database
        "../db.duckdb",
        "../data",                                      # the server's data dir
        str(fair.folder / "data"),
        "/etc/passwd",
        ".",
    ]
    for user in ("fanny", ADMIN):   # the folder binds superusers too
        with fair.connect(user) as c:
            for path in escapes:
                exc = _error(c, _byom("byom_escape", path))
                assert exc.sqlstate == "42501", (user, path, exc)
                if user != ADMIN:
                    text = " ".join(filter(None, (str(exc), exc.diag.message_hint,
                                                  exc.diag.message_detail)))
                    hidden = [p for p in _server_paths(fair) if not path.startswith(p)]
                    assert not any(p in text for p in hidden), (path, text)


def test_model_files_need_fileaccess(fair: Fair) -> None:
    with fair.connect("alice") as alice:
        for path in ("model.json", str(fair.file_dir / "model.json"), "../db.duckdb"):
            exc = _error(alice, _byom("alice_byom", path))
            assert exc.sqlstate == "42501", (path, exc)
            text = " ".join(filter(None, (str(exc), exc.diag.message_hint)))
            assert str(fair.file_dir) not in text.replace(path, ""), text
    with fair.connect(ADMIN) as admin:
        admin.execute("ALTER USER alice FILEACCESS")
    try:
        with fair.connect("alice") as alice:
            alice.execute(_byom("alice_byom", "model.json"))
            alice.execute("DROP MODEL alice_byom")
    finally:
        with fair.connect(ADMIN) as admin:
            admin.execute("ALTER USER alice NOFILEACCESS")


def test_onnx_model_files_need_fileaccess(fair: Fair) -> None:
    """An ONNX model file follows the same rules as the other model files."""
    with fair.connect("alice") as alice:
        for path in ("model.onnx", str(fair.file_dir / "model.onnx")):
            exc = _error(alice, _byom("alice_onnx", path))
            assert exc.sqlstate == "42501", (path, exc)
    with fair.connect("fanny") as fanny:
        fanny.execute(_byom("fanny_onnx", "model.onnx"))
        assert fanny.execute("SELECT fanny_onnx_f(1, 2, 3)").fetchone() is not None
        fanny.execute("DROP MODEL fanny_onnx")
