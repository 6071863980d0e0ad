"""Authentication, users and roles, model privileges, file access and TLS,
through real clients (psycopg, psql, a raw socket) against servers started
with security settings."""

from __future__ import annotations

import shutil
import socket
import ssl
import struct
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from server.listener import Server
from server.settings import Settings

PSQL = shutil.which("psql")
OPENSSL = shutil.which("openssl")
ADMIN, ADMIN_PW = "admin", "adm1n-pw"


@dataclass
class Secured:
    port: int
    folder: Path
    server: Server

    def dsn(self, user: str, password: str | None = None, **extra: str) -> str:
        parts = {"host": "127.0.0.1", "port": str(self.port), "user": user,
                 "dbname": "quackml", "connect_timeout": "10", **extra}
        if password is not None:
            parts["password"] = password
        return " ".join(f"{k}={v}" for k, v in parts.items())

    def connect(self, user: str, password: str, **extra: str) -> psycopg.Connection:
        return psycopg.connect(self.dsn(user, password, **extra), autocommit=True)


def start(folder: Path, **settings: object) -> Server:
    srv = Server(Settings(host="127.0.0.1", port=0, database=str(folder / "db.duckdb"),
                          data_dir=str(folder / "data"), samples=False, training_workers=1,
                          training_threads=1, superuser=ADMIN, superuser_password=ADMIN_PW,
                          **settings))  # type: ignore[arg-type]
    srv.start()
    return srv


def connect_as(srv: Server, user: str, password: str) -> psycopg.Connection:
    """An autocommit connection to ``srv`` as ``user``, with a password."""
    return psycopg.connect(f"host=127.0.0.1 port={srv.port} user={user} "
                           f"password={password} dbname=quackml", autocommit=True)


def make_certs(folder: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a server certificate for localhost / 127.0.0.1."""
    assert OPENSSL is not None
    ca_key, ca, key, csr, cert = (folder / n for n in
                                  ("ca.key", "ca.pem", "server.key", "server.csr",
                                   "server.pem"))
    ext = folder / "ext.cnf"
    ext.write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")

    def run(*args: str) -> None:
        subprocess.run([OPENSSL, *args], check=True, capture_output=True, timeout=60)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(ca_key), "-out",
        str(ca), "-days", "2", "-subj", "/CN=QuackML test CA")
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr),
        "-subj", "/CN=localhost")
    run("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key),
        "-CAcreateserial", "-out", str(cert), "-days", "2", "-extfile", str(ext))
    return ca, cert, key


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Secured]:
    folder = tmp_path_factory.mktemp("secured")
    if OPENSSL is not None:
        _ca, cert, key = make_certs(folder)
        srv = start(folder, auth="scram-sha-256", tls_cert=str(cert), tls_key=str(key))
    else:
        srv = start(folder, auth="scram-sha-256")
    try:
        yield Secured(srv.port, folder, srv)
    finally:
        srv.stop()


def admin(s: Secured) -> psycopg.Connection:
    return s.connect(ADMIN, ADMIN_PW)


def sqlstate_of(s: Secured, user: str, sql: str, password: str) -> str | None:
    with s.connect(user, password) as c:
        try:
            c.execute(sql)
        except psycopg.Error as exc:
            return exc.sqlstate
    return None


# -- authentication --------------------------------------------------------------
def test_scram_login_and_current_user(secured: Secured) -> None:
    with admin(secured) as c:
        assert c.execute("SELECT current_user, session_user").fetchone() == (ADMIN, ADMIN)
        assert c.info.parameter_status("is_superuser") == "on"


def test_wrong_password_and_unknown_user_fail_alike(secured: Secured) -> None:
    messages = []
    for user, password in ((ADMIN, "wrong"), ("nobody_here", "wrong"), (ADMIN, "")):
        with pytest.raises(psycopg.OperationalError) as info:
            psycopg.connect(secured.dsn(user, password))
        messages.append(str(info.value).replace(user, "USER"))
    assert "password authentication failed" in messages[0]
    assert messages[0] == messages[1]


def raw_startup(port: int, user: str) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    body = struct.pack("!i", 196608) + b"user\x00" + user.encode() + b"\x00" + \
        b"database\x00quackml\x00\x00"
    sock.sendall(struct.pack("!i", len(body) + 4) + body)
    return sock


def read_message(sock: socket.socket) -> tuple[bytes, bytes]:
    def exactly(n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = sock.recv(n - len(data))
            assert chunk, "connection closed"
            data += chunk
        return data
    head = exactly(5)
    return head[:1], exactly(struct.unpack("!i", head[1:])[0] - 4)


def error_code(body: bytes) -> str:
    for part in body.split(b"\x00"):
        if part.startswith(b"C"):
            return part[1:].decode()
    raise AssertionError(body)


def test_cleartext_password_method_and_28P01(tmp_path: Path) -> None:
    srv = start(tmp_path, auth="password")
    try:
        for password, expected in ((b"nope", "28P01"), (ADMIN_PW.encode(), None)):
            sock = raw_startup(srv.port, ADMIN)
            tag, body = read_message(sock)
            assert tag == b"R" and struct.unpack("!i", body)[0] == 3   # cleartext
            sock.sendall(b"p" + struct.pack("!i", len(password) + 5) + password + b"\x00")
            tag, body = read_message(sock)
            if expected is None:
                assert tag == b"R" and struct.unpack("!i", body)[0] == 0
            else:
                assert tag == b"E" and error_code(body) == expected
            sock.close()
        with psycopg.connect(f"host=127.0.0.1 port={srv.port} user={ADMIN} "
                             f"password={ADMIN_PW} dbname=quackml") as c:
            assert c.execute("SELECT current_user").fetchone() == (ADMIN,)
    finally:
        srv.stop()


def test_md5_setting_asks_for_scram(tmp_path: Path) -> None:
    """Passwords are kept as SCRAM verifiers only: md5 falls back to SCRAM, as
    PostgreSQL does for SCRAM-stored passwords."""
    srv = start(tmp_path, auth="md5")
    try:
        sock = raw_startup(srv.port, ADMIN)
        tag, body = read_message(sock)
        assert tag == b"R" and struct.unpack("!i", body[:4])[0] == 10
        assert b"SCRAM-SHA-256" in body
        sock.close()
    finally:
        srv.stop()


def test_users_roles_alter_and_drop(secured: Secured) -> None:
    with admin(secured) as c:
        c.execute("CREATE USER carol PASSWORD 'first-pw'")
        with pytest.raises(psycopg.Error) as info:
            c.execute("CREATE USER carol PASSWORD 'x'")
        assert info.value.sqlstate == "42710"
        c.execute("CREATE ROLE nologin_role")
    with secured.connect("carol", "first-pw") as c:
        assert c.execute("SELECT current_user").fetchone() == ("carol",)
        assert c.info.parameter_status("is_superuser") == "off"
        c.execute("ALTER USER carol PASSWORD 'second-pw'")   # a user may change their own
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(secured.dsn("carol", "first-pw"))
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(secured.dsn("nologin_role", ""))
    secured.connect("carol", "second-pw").close()
    with admin(secured) as c:
        c.execute("DROP USER carol")
        with pytest.raises(psycopg.Error) as info:
            c.execute("DROP USER carol")
        assert info.value.sqlstate == "42704"
        c.execute("DROP USER IF EXISTS carol")
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(secured.dsn("carol", "second-pw"))


@pytest.mark.skipif(PSQL is None, reason="psql is installed by `make test`")
def test_psql_with_pgpassword(secured: Secured) -> None:
    assert PSQL is not None
    env = {"PATH": "/usr/bin:/bin", "PGPASSWORD": ADMIN_PW, "PGCONNECT_TIMEOUT": "10"}
    cmd = [PSQL, "-h", "127.0.0.1", "-p", str(secured.port), "-U", ADMIN, "-d", "quackml",
           "-X", "-A", "-t", "-c", "SELECT current_user"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ADMIN
    env["PGPASSWORD"] = "wrong"
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=env)
    assert out.returncode != 0 and "password authentication failed" in out.stderr


# -- file and catalog access: tests/attack/test_firewall.py ------------------------------
def _user_exists(s: Secured, name: str) -> bool:
    assert s.server.engine is not None
    return s.server.engine.users.get(name) is not None


def test_non_superuser_plain_sql_and_copy_stdout_work(secured: Secured) -> None:
    with admin(secured) as c:
        if not _user_exists(secured, "dave"):
            c.execute("CREATE USER dave PASSWORD 'd-pw'")
    with secured.connect("dave", "d-pw") as c:
        c.execute("CREATE OR REPLACE TABLE dave_t AS SELECT range AS i FROM range(3)")
        assert c.execute("SELECT sum(i) FROM dave_t").fetchone() == (3,)
        with c.cursor().copy("COPY dave_t TO STDOUT") as copy:
            assert len(list(copy.rows())) == 3
        c.execute("SELECT * FROM svv_ml_model_info").fetchall()
        c.execute("SET search_path = public")          # client parameters stay settable
        assert c.execute("SHOW search_path").fetchone() == ("public",)
        c.execute("SET VARIABLE dave_var = 1")
        # the security catalog is in no schema of the database (docs/security.md)
        c.execute("SET search_path = quackml, public")
        with pytest.raises(psycopg.Error) as info:
            c.execute("SELECT * FROM users")
        assert info.value.sqlstate == "42P01"


# -- model privileges ------------------------------------------------------------
KMEANS = ("CREATE MODEL {name} FROM pts FUNCTION {fn} IAM_ROLE default AUTO OFF "
          "MODEL_TYPE KMEANS HYPERPARAMETERS DEFAULT EXCEPT (K '3') "
          "SETTINGS (S3_BUCKET 'owner-only-bucket')")


def wait_ready(c: psycopg.Connection, model: str) -> None:
    deadline = time.monotonic() + 120
    while dict(c.execute(f"SHOW MODEL {model}").fetchall())["Model State"] == "TRAINING":
        assert time.monotonic() < deadline
        time.sleep(0.2)


def test_model_privileges(secured: Secured) -> None:
    with admin(secured) as c:
        for user in ("erin", "frank"):
            c.execute(f"CREATE USER {user} PASSWORD '{user}-pw'")
        c.execute("CREATE ROLE analysts")
        c.execute("GRANT ROLE analysts TO frank")
        c.execute("CREATE TABLE pts AS SELECT (i % 7)::DOUBLE AS a, (i % 13)::DOUBLE AS b "
                  "FROM range(600) t(i)")
        c.execute("GRANT SELECT ON pts TO erin, frank")   # table privileges as in PostgreSQL
    erin = secured.connect("erin", "erin-pw")
    frank = secured.connect("frank", "frank-pw")
    try:
        create = KMEANS.format(name="erin_km", fn="erin_km_f")
        with pytest.raises(psycopg.Error) as info:
            erin.execute(create)
        assert info.value.sqlstate == "42501"
        with admin(secured) as c:
            c.execute("GRANT CREATE MODEL TO erin")
        erin.execute(create)
        wait_ready(erin, "erin_km")
        assert erin.execute("SELECT erin_km_f(1.0, 2.0)").fetchone() is not None
        shown = dict(erin.execute("SHOW MODEL erin_km").fetchall())
        assert shown["S3 Bucket"] == "owner-only-bucket"

        # frank: no privilege yet
        for sql in ("SELECT erin_km_f(1.0, 2.0)", "SELECT explain_model('erin_km')",
                    "SELECT erin_km_f_explain(1.0, 2.0)",
                    "SELECT erin_km_f_explain_top(1.0, 2.0, 3)",
                    "WITH s AS (SELECT erin_km_f_explain(a, b) AS e FROM pts) SELECT * FROM s",
                    "DROP MODEL erin_km", "GRANT EXECUTE ON MODEL erin_km TO frank",
                    KMEANS.format(name="frank_km", fn="frank_km_f")):
            with pytest.raises(psycopg.Error) as info:
                frank.execute(sql)
            assert info.value.sqlstate == "42501", sql
        shown = dict(frank.execute("SHOW MODEL erin_km").fetchall())
        assert "S3 Bucket" not in shown and "IAM Role" not in shown

        # the owner grants EXECUTE to a role frank holds
        erin.execute("GRANT EXECUTE ON MODEL erin_km TO ROLE analysts")
        assert frank.execute("SELECT erin_km_f(1.0, 2.0)").fetchone() is not None
        # past the privilege check: k-means rows have no explanation
        with pytest.raises(psycopg.Error) as info:
            frank.execute("SELECT erin_km_f_explain(1.0, 2.0)")
        assert info.value.sqlstate == "0A000"
        assert "S3 Bucket" in dict(frank.execute("SHOW MODEL erin_km").fetchall())
        rows = erin.execute("SELECT model_name, privilege_type, identity_name, identity_type "
                            "FROM svv_ml_model_privileges").fetchall()
        assert rows == [("erin_km", "EXECUTE", "analysts", "role")]
        with pytest.raises(psycopg.Error) as info:
            frank.execute("DROP MODEL erin_km")       # EXECUTE does not give DROP
        assert info.value.sqlstate == "42501"

        erin.execute("REVOKE ALL PRIVILEGES ON MODEL erin_km FROM ROLE analysts")
        with pytest.raises(psycopg.Error) as info:
            frank.execute("SELECT erin_km_f(1.0, 2.0)")
        assert info.value.sqlstate == "42501"
        erin.execute("GRANT ALL ON MODEL erin_km TO PUBLIC")
        assert frank.execute("SELECT erin_km_f(1.0, 2.0)").fetchone() is not None
        # past the privilege check: k-means rows have no explanation
        with pytest.raises(psycopg.Error) as info:
            frank.execute("SELECT erin_km_f_explain(1.0, 2.0)")
        assert info.value.sqlstate == "0A000"

        with admin(secured) as c:
            c.execute("REVOKE CREATE MODEL FROM erin")
        with pytest.raises(psycopg.Error) as info:
            erin.execute(KMEANS.format(name="erin_km2", fn="erin_km2_f"))
        assert info.value.sqlstate == "42501"
        erin.execute("DROP MODEL erin_km")             # the owner may drop
        assert erin.execute("SELECT count(*) FROM svv_ml_model_privileges").fetchone() == (0,)
    finally:
        erin.close()
        frank.close()


# -- TLS ---------------------------------------------------------------------------
needs_tls = pytest.mark.skipif(OPENSSL is None, reason="the openssl CLI makes test certificates")


@needs_tls
def test_tls_require_and_verify_full_psycopg(secured: Secured) -> None:
    ca = secured.folder / "ca.pem"
    for extra in ({"sslmode": "require"},
                  {"sslmode": "verify-full", "sslrootcert": str(ca), "host": "localhost",
                   "hostaddr": "127.0.0.1"}):
        with secured.connect(ADMIN, ADMIN_PW, **extra) as c:
            assert c.pgconn.ssl_in_use
            assert c.execute("SELECT current_user").fetchone() == (ADMIN,)
    with pytest.raises(psycopg.OperationalError):   # a certificate not signed by this CA
        psycopg.connect(secured.dsn(ADMIN, ADMIN_PW, sslmode="verify-full",
                                    sslrootcert=str(secured.folder / "server.pem"),
                                    host="localhost", hostaddr="127.0.0.1"))
    with secured.connect(ADMIN, ADMIN_PW, sslmode="disable") as c:   # loopback: allowed
        assert not c.pgconn.ssl_in_use


@needs_tls
@pytest.mark.skipif(PSQL is None, reason="psql is installed by `make test`")
def test_tls_verify_full_psql(secured: Secured) -> None:
    assert PSQL is not None
    conninfo = (f"host=localhost hostaddr=127.0.0.1 port={secured.port} user={ADMIN} "
                f"dbname=quackml sslmode=verify-full sslrootcert={secured.folder / 'ca.pem'}")
    out = subprocess.run([PSQL, conninfo, "-X", "-A", "-t", "-c", "\\conninfo"],
                         capture_output=True, text=True, timeout=60,
                         env={"PATH": "/usr/bin:/bin", "PGPASSWORD": ADMIN_PW})
    assert out.returncode == 0, out.stderr
    assert "SSL connection" in out.stdout


@needs_tls
def test_bytes_after_ssl_request_are_refused(secured: Secured) -> None:
    sock = socket.create_connection(("127.0.0.1", secured.port), timeout=10)
    ssl_request = struct.pack("!ii", 8, 80877103)
    sock.sendall(ssl_request + b"Q\x00\x00\x00\x0dSELECT 1\x00")   # injected plaintext
    data = sock.recv(1)
    if data == b"S":   # the server read the SSLRequest alone: it must see the extra bytes
        tag, body = read_message(sock)
        assert tag == b"E" and error_code(body) == "08P01"
    else:
        assert data == b"E"
    sock.close()


@needs_tls
def test_ssl_handshake_with_python_client(secured: Secured) -> None:
    context = ssl.create_default_context(cafile=str(secured.folder / "ca.pem"))
    sock = socket.create_connection(("127.0.0.1", secured.port), timeout=10)
    sock.sendall(struct.pack("!ii", 8, 80877103))
    assert sock.recv(1) == b"S"
    with context.wrap_socket(sock, server_hostname="localhost") as tls:
        assert tls.version() in ("TLSv1.2", "TLSv1.3")


def _non_loopback_address() -> str | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("10.255.255.255", 1))
            address = str(probe.getsockname()[0])
        except OSError:
            return None
    return None if address.startswith("127.") else address


def test_remote_clients_need_tls_and_no_trust(tmp_path: Path) -> None:
    address = _non_loopback_address()
    if address is None:
        pytest.skip("no non-loopback address on this machine")
    for auth, needle in (("scram-sha-256", "must use TLS"), ("trust", "loopback")):
        srv = Server(Settings(host="0.0.0.0", port=0, database=str(tmp_path / f"{auth}.duckdb"),
                              data_dir=str(tmp_path / "data"), samples=False,
                              training_workers=1, auth=auth, superuser_password=ADMIN_PW,
                              tls_required_remote=auth != "trust"))
        srv.start()
        try:
            with pytest.raises(psycopg.OperationalError, match=needle):
                psycopg.connect(f"host={address} port={srv.port} user=x password=y "
                                "dbname=quackml sslmode=disable connect_timeout=10")
        finally:
            srv.stop()


# -- artifacts -----------------------------------------------------------------------
def test_tampered_artifact_is_XX001_and_never_loaded(secured: Secured) -> None:
    with admin(secured) as c:
        c.execute("CREATE TABLE IF NOT EXISTS pts2 AS SELECT (i % 5)::DOUBLE AS a, "
                  "(i % 11)::DOUBLE AS b FROM range(600) t(i)")
        c.execute(KMEANS.format(name="tamper_km", fn="tamper_km_f").replace("FROM pts",
                                                                            "FROM pts2"))
        wait_ready(c, "tamper_km")
        engine = secured.server.engine
        assert engine is not None
        record = engine.store.get("public", "tamper_km")
        assert record is not None and record.artifact_file is not None
        artifact = engine.files(record).folder / record.artifact_file
        with artifact.open("ab") as f:
            f.write(b"tampered")
        # the READY model was loaded already: evict it, as a restart or the cache bound would
        engine.cache.remove(record.function_name)
        engine.publish(record)
        with pytest.raises(psycopg.Error) as info:
            c.execute("SELECT tamper_km_f(1.0, 2.0)")
        assert info.value.sqlstate == "XX001"
        assert c.execute("SELECT 1").fetchone() == (1,)


# -- FILEACCESS ----------------------------------------------------------------------
# -- model functions through views and macros ------------------------------------------
def test_views_and_macros_do_not_bypass_execute(secured: Secured) -> None:
    with admin(secured) as c:
        c.execute("CREATE USER gina PASSWORD 'g-pw'")
        c.execute("CREATE TABLE IF NOT EXISTS pts3 AS SELECT (i % 3)::DOUBLE AS a, "
                  "(i % 17)::DOUBLE AS b FROM range(600) t(i)")
        c.execute("GRANT SELECT ON pts3 TO gina")
        c.execute(KMEANS.format(name="adm_km", fn="adm_km_f").replace("FROM pts", "FROM pts3"))
        wait_ready(c, "adm_km")
    gina = secured.connect("gina", "g-pw")
    try:
        assert gina.execute("SELECT count(*) FROM pts3").fetchone() == (600,)
        with admin(secured) as c:   # made after gina's session started
            c.execute("CREATE VIEW km_view AS SELECT adm_km_f(a, b) AS cluster FROM pts3")
            c.execute("CREATE VIEW km_view2 AS SELECT count(*) AS n FROM km_view")
            c.execute("CREATE MACRO km_macro(x, y) AS adm_km_f(x, y)")
            c.execute("CREATE MACRO km_outer(x) AS km_macro(x, 1.0) + 0")
            c.execute("CREATE MACRO km_table() AS TABLE SELECT * FROM km_view2")
            c.execute("CREATE VIEW km_explained AS SELECT explain_model('adm_km') AS e")
            c.execute("BEGIN")
            c.execute("CREATE VIEW km_late AS SELECT adm_km_f(1.0, 2.0) AS cluster")
            assert gina.execute("SELECT 1").fetchone() == (1,)   # checked meanwhile
            c.execute("COMMIT")
            c.execute("CREATE VIEW km_before_rename AS SELECT adm_km_f(a, b) FROM pts3")
            c.execute("ALTER VIEW km_before_rename RENAME TO km_renamed")
            c.execute("CREATE SCHEMA IF NOT EXISTS gina_s")
            c.execute("CREATE VIEW gina_s.km_hidden AS SELECT adm_km_f(a, b) FROM pts3")
        through = ["SELECT * FROM km_renamed", "SELECT * FROM gina_s.km_hidden",
                   "SELECT * FROM km_view", "SELECT n FROM km_view2",
                   "SELECT km_macro(1.0, 2.0)", "SELECT km_outer(1.0)",
                   "SELECT * FROM km_table()", "SELECT * FROM km_explained",
                   "SELECT * FROM km_late", "SELECT * FROM pts3 WHERE a IN (SELECT cluster "
                   "FROM main.km_view)",
                   "CREATE TEMP VIEW gina_v AS SELECT * FROM km_view"]
        for sql in through:
            with pytest.raises(psycopg.Error) as info:
                gina.execute(sql)
            assert info.value.sqlstate == "42501", sql
            assert "no EXECUTE privilege on model public.adm_km" in str(info.value), sql
        # a view over no model stays usable
        with admin(secured) as c:
            c.execute("CREATE VIEW plain_view AS SELECT a FROM pts3")
        assert gina.execute("SELECT count(*) FROM plain_view").fetchone() == (600,)

        with admin(secured) as c:
            c.execute("GRANT EXECUTE ON MODEL adm_km TO gina")
        assert gina.execute("SELECT count(*) FROM km_view").fetchone() == (600,)
        assert gina.execute("SELECT n FROM km_view2").fetchone() == (600,)
        assert gina.execute("SELECT km_macro(1.0, 2.0)").fetchone() is not None
        assert gina.execute("SELECT km_outer(1.0)").fetchone() is not None
        assert gina.execute("SELECT * FROM km_table()").fetchone() == (600,)
        assert gina.execute("SELECT * FROM km_late").fetchone() is not None
        assert gina.execute("SELECT e FROM km_explained").fetchone() is not None

        with admin(secured) as c:
            c.execute("REVOKE EXECUTE ON MODEL adm_km FROM gina")
        with pytest.raises(psycopg.Error) as info:
            gina.execute("SELECT * FROM km_table()")
        assert info.value.sqlstate == "42501"
    finally:
        gina.close()


def test_probabilities_function_needs_execute(secured: Secured) -> None:
    """A classifier's second function, f_probabilities, is the model's too."""
    with admin(secured) as c:
        c.execute("CREATE USER jack PASSWORD 'j-pw'")
        c.execute("CREATE TABLE IF NOT EXISTS cls_t AS SELECT (i % 7)::DOUBLE AS a, "
                  "(i % 13)::DOUBLE AS b, (i % 7) > 3 AS y FROM range(600) t(i)")
        c.execute("GRANT SELECT ON cls_t TO jack")
        c.execute("CREATE MODEL cls_m FROM cls_t TARGET y FUNCTION cls_f IAM_ROLE default "
                  "AUTO OFF MODEL_TYPE XGBOOST "
                  "OBJECTIVE 'binary:logistic' SETTINGS (S3_BUCKET 'b', MAX_RUNTIME 60)")
        wait_ready(c, "cls_m")
        assert c.execute("SELECT cls_f_probabilities(1.0, 2.0)").fetchone() is not None
    with secured.connect("jack", "j-pw") as jack:
        for sql in ("SELECT cls_f(1.0, 2.0)", "SELECT cls_f_probabilities(1.0, 2.0)",
                    "SELECT (cls_f_probabilities(a, b)).labels FROM cls_t"):
            with pytest.raises(psycopg.Error) as info:
                jack.execute(sql)
            assert info.value.sqlstate == "42501", sql
        with admin(secured) as c:
            c.execute("GRANT EXECUTE ON MODEL cls_m TO jack")
        assert jack.execute("SELECT len((cls_f_probabilities(1.0, 2.0)).labels)"
                            ).fetchone() == (2,)
