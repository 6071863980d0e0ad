"""One Settings object for the server.

Precedence: defaults, then ``QUACKML_*`` environment variables, then CLI
flags. Nothing else in the project reads ``os.environ``. The ``SETTINGS``
table below feeds ``quackml serve --help`` and the README's settings table
(a test checks that the README lists them all).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from typing import NoReturn
from urllib.parse import urlsplit


def _cores() -> int:
    return os.cpu_count() or 1


@dataclass(frozen=True)
class Setting:
    name: str           # attribute of Settings; CLI flag is --name-with-dashes
    env: str            # QUACKML_NAME
    parse: Callable[[str], object]
    help: str


def _bool(text: str) -> bool:
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"not a boolean: {text!r}")


def _int_at_least(low: int) -> Callable[[str], int]:
    """An integer parser that refuses values below ``low``."""
    def parse(text: str) -> int:
        try:
            value = int(text.strip())
        except ValueError:
            raise ValueError(f"not an integer: {text!r}") from None
        if value < low:
            raise ValueError(f"must be at least {low}: {text!r}")
        return value
    return parse


def _port(text: str) -> int:
    value = _int_at_least(0)(text)
    if value > 65535:
        raise ValueError(f"not a TCP port (0-65535): {text!r}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text.strip())
    except ValueError:
        raise ValueError(f"not a number of seconds: {text!r}") from None
    if not value > 0:
        raise ValueError(f"must be more than 0 seconds: {text!r}")
    return value


def _log_level(text: str) -> str:
    value = text.strip().upper()
    if value not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ValueError(f"not a log level (DEBUG, INFO, WARNING, ERROR): {text!r}")
    return value


def _memory(text: str) -> str:
    """A DuckDB memory size (8GB, 512MB, 80%), checked by DuckDB's own parser;
    empty keeps the default."""
    value = text.strip()
    if value:
        import duckdb

        try:
            duckdb.connect(":memory:", config={"memory_limit": value}).close()
        except duckdb.Error:
            raise ValueError(f"not a memory size (e.g. 8GB, 512MB, 80%): {text!r}") from None
    return value


def _auth(text: str) -> str:
    value = text.strip().lower()
    if value not in ("trust", "scram-sha-256", "md5", "password"):
        raise ValueError(f"not an authentication method (trust, scram-sha-256, md5, "
                         f"password): {text!r}")
    return value


def _queue_full(text: str) -> str:
    value = text.strip().lower()
    if value not in ("error", "wait"):
        raise ValueError(f"not a queue policy (error, wait): {text!r}")
    return value


def _scoring_pool(text: str) -> str:
    value = text.strip().lower()
    if value not in ("auto", "on", "off"):
        raise ValueError(f"not a scoring pool mode (auto, on, off): {text!r}")
    return value


def _url_prefixes(text: str) -> str:
    """Comma-separated http(s) URL prefixes, each with a host (empty: none)."""
    for prefix in (p.strip() for p in text.split(",")):
        if not prefix:
            continue
        try:
            parts = urlsplit(prefix)
            parts.port  # noqa: B018 -- raises ValueError for a bad port
        except ValueError as exc:
            raise ValueError(f"not a URL: {prefix!r} ({exc})") from None
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http:// or https:// URL with a host: {prefix!r}")
    return text.strip()


def _training_backend(text: str) -> str:
    value = text.strip().lower()
    if value not in ("local", "ray"):
        raise ValueError(f"not a training backend (local, ray): {text!r}")
    return value


def _ray_address(text: str) -> str:
    """A Ray cluster address: host:port of its head (GCS), or ray://host:port (Ray
    Client); empty: none."""
    value = text.strip()
    if not value:
        return value
    rest = value[len("ray://"):] if value.lower().startswith("ray://") else value
    host, sep, port = rest.rpartition(":")
    if not sep or not host or "/" in rest:
        raise ValueError(f"not a Ray address (host:port or ray://host:port): {text!r}")
    try:
        number = int(port)
    except ValueError:
        raise ValueError(f"not a Ray address (host:port or ray://host:port): {text!r}") from None
    if not 0 < number <= 65535:
        raise ValueError(f"not a TCP port (1-65535) in the Ray address: {text!r}")
    return value


def _help(setting: Setting, defaults: object) -> str:
    """The --help line of a setting (argparse reads % as a format: escaped)."""
    text = f"{setting.help} (env {setting.env}; default {getattr(defaults, setting.name)})"
    return text.replace("%", "%%")


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 5433
    http_port: int = 5434
    database: str = "./data/quackml.duckdb"
    data_dir: str = "./data"
    samples: bool = True
    training_workers: int = max(1, _cores() - 1)
    training_threads: int = max(1, _cores() // max(1, _cores() - 1))
    duckdb_threads: int = 0
    model_cache_mb: int = 1024
    scoring_workers: int = min(2, _cores())
    scoring_pool: str = "auto"
    log_level: str = "INFO"
    auth: str = "trust"
    superuser: str = "quackml"
    superuser_password: str = ""
    tls_cert: str = ""
    tls_key: str = ""
    tls_required_remote: bool = True
    max_connections: int = 100
    superuser_reserved_connections: int = 3
    max_startup_connections: int = 64
    authentication_timeout: float = 60.0
    statement_timeout_ms: int = 0
    memory_limit: str = ""
    session_memory_limit: str = ""
    lock_configuration: bool = True
    training_queue_size: int = 16
    training_queue_full: str = "error"
    training_queue_per_user: int = 4
    max_runtime_limit: int = 0
    sagemaker_allowed_urls: str = ""
    file_dir: str = ""
    training_backend: str = "local"
    ray_address: str = ""


SETTINGS: tuple[Setting, ...] = (
    Setting("host", "QUACKML_HOST", str, "address to listen on (loopback by default)"),
    Setting("port", "QUACKML_PORT", _port, "TCP port; 0 picks a free port"),
    Setting("http_port", "QUACKML_HTTP_PORT", _port,
            "TCP port of the web console (docs/console.md), on the same --host; 0 turns "
            "it off"),
    Setting("database", "QUACKML_DATABASE", str,
            "DuckDB database file, or :memory: for a throwaway database"),
    Setting("data_dir", "QUACKML_DATA_DIR", str,
            "folder for model artifacts and training snapshots"),
    Setting("samples", "QUACKML_SAMPLES", _bool,
            "load sample tables (customers, credit, hpc, diamonds) into a new database"),
    Setting("training_workers", "QUACKML_TRAINING_WORKERS", _int_at_least(1),
            "training jobs that run at once, each in its own process (default cores - 1)"),
    Setting("training_threads", "QUACKML_TRAINING_THREADS", _int_at_least(1),
            "threads each training job may use"),
    Setting("duckdb_threads", "QUACKML_DUCKDB_THREADS", _int_at_least(0),
            "DuckDB worker threads; 0 keeps DuckDB's default (all cores)"),
    Setting("model_cache_mb", "QUACKML_MODEL_CACHE_MB", _int_at_least(0),
            "memory bound of the loaded-model cache shared by all sessions"),
    Setting("scoring_workers", "QUACKML_SCORING_WORKERS", _int_at_least(0),
            "processes that score scikit-learn models for the prediction functions "
            "(default min(2, cores)); 0 scores every model in the server process"),
    Setting("scoring_pool", "QUACKML_SCORING_POOL", _scoring_pool,
            "which library-scored models use those processes: auto (the measured default "
            "per model kind), on (all), off (none)"),
    Setting("log_level", "QUACKML_LOG_LEVEL", _log_level, "DEBUG, INFO, WARNING or ERROR"),
    Setting("auth", "QUACKML_AUTH", _auth,
            "client authentication: trust (loopback only), scram-sha-256, md5 or password"),
    Setting("superuser", "QUACKML_SUPERUSER", str,
            "bootstrap superuser created on first start"),
    Setting("superuser_password", "QUACKML_SUPERUSER_PASSWORD", str,
            "password of the bootstrap superuser (stored as a SCRAM-SHA-256 verifier)"),
    Setting("tls_cert", "QUACKML_TLS_CERT", str,
            "PEM certificate file; with --tls-key, SSLRequest is answered with TLS"),
    Setting("tls_key", "QUACKML_TLS_KEY", str, "PEM private key file of --tls-cert"),
    Setting("tls_required_remote", "QUACKML_TLS_REQUIRED_REMOTE", _bool,
            "refuse non-TLS connections from non-loopback addresses"),
    Setting("max_connections", "QUACKML_MAX_CONNECTIONS", _int_at_least(1),
            "client connections at once; more are refused with 53300"),
    Setting("superuser_reserved_connections", "QUACKML_SUPERUSER_RESERVED_CONNECTIONS",
            _int_at_least(0),
            "of max_connections, slots only superusers may take; others get 53300 "
            "(at most max_connections - 1 are reserved)"),
    Setting("max_startup_connections", "QUACKML_MAX_STARTUP_CONNECTIONS", _int_at_least(1),
            "connections that have not finished start-up and authentication at once; "
            "more get FATAL 53300 and are closed"),
    Setting("authentication_timeout", "QUACKML_AUTHENTICATION_TIMEOUT", _seconds,
            "seconds a client has to finish start-up and authentication (TLS handshake "
            "included); then the connection is closed"),
    Setting("statement_timeout_ms", "QUACKML_STATEMENT_TIMEOUT_MS", _int_at_least(0),
            "cancel statements running longer than this (57014); 0 means no limit"),
    Setting("memory_limit", "QUACKML_MEMORY_LIMIT", _memory,
            "DuckDB's memory_limit for the whole server (e.g. 8GB); past it statements "
            "fail with 53200; empty keeps DuckDB's default (80% of RAM)"),
    Setting("session_memory_limit", "QUACKML_SESSION_MEMORY_LIMIT", _memory,
            "memory each session's sorts and hash tables may use before they spill to "
            "disk (DuckDB's per-connection operator_memory_limit, e.g. 1GB); empty: no "
            "per-session limit"),
    Setting("lock_configuration", "QUACKML_LOCK_CONFIGURATION", _bool,
            "lock DuckDB's configuration at start-up (docs/security.md), so no SQL, a "
            "superuser's included, changes a DuckDB setting; off lets superusers SET "
            "threads, memory_limit ... at run time (non-superusers are refused either "
            "way). Never locked while --session-memory-limit is set"),
    Setting("training_queue_size", "QUACKML_TRAINING_QUEUE_SIZE", _int_at_least(0),
            "training jobs that may wait for a free worker"),
    Setting("training_queue_full", "QUACKML_TRAINING_QUEUE_FULL", _queue_full,
            "when the queue is full: error (CREATE MODEL fails with 53000) or wait"),
    Setting("training_queue_per_user", "QUACKML_TRAINING_QUEUE_PER_USER", _int_at_least(0),
            "training jobs (running and queued) one non-superuser may have at once; more "
            "fail with 53000; 0: no per-user limit"),
    Setting("max_runtime_limit", "QUACKML_MAX_RUNTIME_LIMIT", _int_at_least(0),
            "largest MAX_RUNTIME (seconds) a CREATE MODEL may ask for (more fails with 22023; "
            "no MAX_RUNTIME given trains for at most this long); 0: no limit"),
    Setting("sagemaker_allowed_urls", "QUACKML_SAGEMAKER_ALLOWED_URLS", _url_prefixes,
            "comma-separated URL prefixes that superusers may name in CREATE MODEL ... "
            "SAGEMAKER; empty: none (the server calls no remote endpoint)"),
    Setting("file_dir", "QUACKML_FILE_DIR", str,
            "the operator's import/export folder: the only place server-side files are read "
            "from or written to by SQL (model files of CREATE MODEL ... FROM 'file'); "
            "empty: none"),
    Setting("training_backend", "QUACKML_TRAINING_BACKEND", _training_backend,
            "where CREATE MODEL's AUTO ON searches run: local (worker processes on this "
            "machine) or ray (the Ray cluster at --ray-address; docs/scale-out.md)"),
    Setting("ray_address", "QUACKML_RAY_ADDRESS", _ray_address,
            "the Ray cluster of --training-backend ray: host:port of its head, this machine "
            "being one of its nodes, or ray://host:port (Ray Client)"),
)


def from_environment(env: Mapping[str, str], base: Settings | None = None) -> Settings:
    settings = base or Settings()
    changes: dict[str, object] = {}
    for s in SETTINGS:
        if s.env in env:
            try:
                changes[s.name] = s.parse(env[s.env])
            except ValueError as exc:
                raise SystemExit(f"quackml: bad value for {s.env}: {exc}; "
                                 f"see quackml serve --help") from None
    return replace(settings, **changes)  # type: ignore[arg-type]


class OneLineParser(argparse.ArgumentParser):
    """Usage errors (a bad flag or value) in one line with a hint, exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message}; see {self.prog} --help\n")


def _flag_type(parse: Callable[[str], object]) -> Callable[[str], object]:
    """argparse shows the message of an ArgumentTypeError (not of a ValueError)."""
    def checked(text: str) -> object:
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    return checked


def add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = Settings()
    for s in SETTINGS:
        flag = "--" + s.name.replace("_", "-")
        if s.parse is _bool:
            parser.add_argument(flag, dest=s.name, action=argparse.BooleanOptionalAction,
                                default=None,
                                help=_help(s, defaults))
        else:
            parser.add_argument(flag, dest=s.name, type=_flag_type(s.parse), default=None,
                                help=_help(s, defaults))


def serve_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    """The parser of ``quackml serve``'s flags (a subcommand parser of the CLI, or
    a parser of its own)."""
    parser = parser or OneLineParser(prog="quackml serve")
    add_arguments(parser)
    return parser


def from_arguments(args: argparse.Namespace, env: Mapping[str, str]) -> Settings:
    """Settings from defaults, then the environment, then parsed CLI flags."""
    settings = from_environment(env)
    changes = {f.name: getattr(args, f.name) for f in fields(Settings)
               if getattr(args, f.name, None) is not None}
    return check_consistent(replace(settings, **changes))


def check_consistent(settings: Settings) -> Settings:
    """Settings that are valid one by one but not together: one line, exit code 2."""
    if settings.training_backend == "ray":
        if not settings.ray_address:
            raise SystemExit("quackml: --training-backend ray needs the cluster's address: "
                             "set --ray-address / QUACKML_RAY_ADDRESS (e.g. ray-head:6379)")
        import importlib.util
        if importlib.util.find_spec("ray") is None:
            raise SystemExit("quackml: --training-backend ray needs Ray installed: "
                             "pip install 'quackml[ray]'")
    return settings


def load(argv: Sequence[str] | None, env: Mapping[str, str]) -> Settings:
    """Settings from defaults, then the environment, then CLI flags ``argv``."""
    return from_arguments(serve_parser().parse_args(argv), env)
