"""The ``quackml`` command line: ``quackml serve [flags]``, ``--help``, ``--version``.

SIGTERM or SIGINT (Ctrl-C, which the terminal sends to the whole process
group) shuts down gracefully (``Server.stop``) with one line per phase; a
second one ends the process at once. Both signals are blocked in every
thread and taken by ``sigwait`` in the main thread, and SIGINT's disposition
is "ignore": worker processes inherit that, so Ctrl-C reaches only the
server, which stops them (``catalog.workers``). On Linux a blocked signal is
kept pending even when ignored, so ``sigwait`` still receives it.

The start-up failures an operator can fix (a bad setting value, the port in
use, the database held by another process, a folder that is not writable)
print one line with a hint and exit with status 1 (2 for a bad flag); so does a
first start with password authentication and no superuser password; other
errors keep their traceback, as bugs should.
"""

from __future__ import annotations

import argparse
import errno
import logging
import os
import re
import signal
import socket
import sys
from collections.abc import Sequence
from typing import NoReturn

from server import settings as settings_mod
from server.settings import Settings


def version() -> str:
    """The installed distribution's version (the source tree alone has none)."""
    from importlib import metadata

    try:
        return metadata.version("quackml")
    except metadata.PackageNotFoundError:
        return "unknown (not installed)"


def parser() -> argparse.ArgumentParser:
    top = settings_mod.OneLineParser(
        prog="quackml",
        description="QuackML: in-database machine learning that speaks the PostgreSQL "
                    "wire protocol, over an embedded DuckDB database.",
        epilog="Run 'quackml serve --help' for the server's settings.")
    top.add_argument("--version", action="version", version=f"quackml {version()}")
    commands = top.add_subparsers(dest="command", metavar="COMMAND")
    serve = commands.add_parser(
        "serve", help="start the server (PostgreSQL wire protocol over DuckDB)",
        description="Start the QuackML server. Every flag also reads its QUACKML_* "
                    "environment variable; a flag wins over the environment.")
    settings_mod.serve_parser(serve)
    return top


def startup_failure(exc: BaseException, cfg: Settings) -> str | None:
    """One line with a hint for a start-up failure the operator can fix; None
    for anything else (a bug keeps its traceback)."""
    code = exc.errno if isinstance(exc, OSError) else None
    text = str(exc)
    if code == errno.EADDRINUSE:
        return (f"quackml: port {cfg.port} on {cfg.host} is already in use (another QuackML "
                f"or PostgreSQL server?); stop it or choose another port with --port or "
                f"QUACKML_PORT (0 picks a free one)")
    # socket.create_server re-raises getaddrinfo's errors (negative EAI_* codes) as OSError
    unknown_host = isinstance(exc, socket.gaierror) or (code is not None and code < 0)
    if unknown_host or code in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT):
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        return (f"quackml: cannot listen on {cfg.host}:{cfg.port} ({reason}); choose an "
                f"address of this machine with --host or QUACKML_HOST")
    import duckdb  # not at the top: main blocks Ctrl-C before anything heavy is imported

    from server.engine import StartupRefused

    if isinstance(exc, StartupRefused):
        return f"quackml: {exc}"

    if isinstance(exc, duckdb.IOException) and "Could not set lock" in text:
        holder = re.search(r"\(PID (\d+)\)", text)
        by = f" by process {holder.group(1)}" if holder else ""
        return (f"quackml: the database {cfg.database} is in use{by}: is another QuackML "
                f"server running on it? Stop it, or choose another file with --database "
                f"or QUACKML_DATABASE")
    filename = getattr(exc, "filename", None)
    if code == errno.EACCES and filename is None:   # bind() names no file
        return (f"quackml: not allowed to listen on port {cfg.port} (ports below 1024 need "
                f"privileges); choose another with --port or QUACKML_PORT")
    denied = code in (errno.EACCES, errno.EPERM, errno.EROFS) or (
        isinstance(exc, duckdb.IOException) and "Permission denied" in text)
    if denied:
        return (f"quackml: cannot write to {filename or cfg.database} (permission denied or "
                f"read-only file system): the data directory {cfg.data_dir} and the database "
                f"{cfg.database} must be writable by this user; fix the permissions, or choose "
                f"other places with --data-dir / QUACKML_DATA_DIR and --database / "
                f"QUACKML_DATABASE")
    if code in (errno.ENOTDIR, errno.EEXIST):
        return (f"quackml: cannot create the folder {filename}: a file is in the way; choose "
                f"another place with --data-dir / QUACKML_DATA_DIR or --database")
    return None


def main(argv: Sequence[str] | None = None) -> int:
    # First, before any import of weight and before any thread starts (every
    # thread inherits the mask): a Ctrl-C from now on waits for sigwait below.
    signals = {signal.SIGINT, signal.SIGTERM}
    signal.pthread_sigmask(signal.SIG_BLOCK, signals)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    cli = parser()
    args = cli.parse_args(sys.argv[1:] if argv is None else argv)
    if args.command is None:
        cli.print_help(sys.stderr)
        return 2
    cfg = settings_mod.from_arguments(args, os.environ)
    logging.basicConfig(level=cfg.log_level,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from server.listener import Server

    server = Server(cfg)
    try:
        server.start()   # a signal meanwhile waits, and stops the server once it is up
    except Exception as exc:
        line = startup_failure(exc, cfg)
        if line is None:
            raise
        print(line, file=sys.stderr, flush=True)
        return 1
    console = None
    if cfg.http_port:
        from server.console.web import Console

        assert server.engine is not None
        console = Console(server.engine, cfg, server.auth_secret)
        try:
            console.start()
        except OSError as exc:
            server.stop()
            if exc.errno == errno.EADDRINUSE:
                print(f"quackml: port {cfg.http_port} on {cfg.host} (the web console) is "
                      f"already in use; choose another with --http-port or QUACKML_HTTP_PORT "
                      f"(0 turns the console off)", file=sys.stderr, flush=True)
            else:
                print(f"quackml: cannot serve the web console on {cfg.host}:{cfg.http_port} "
                      f"({exc.strerror or exc}); choose another port with --http-port "
                      f"(0 turns it off)", file=sys.stderr, flush=True)
            return 1
    print(f"QuackML listening on {cfg.host}:{server.port} (database {cfg.database}, "
          f"data dir {cfg.data_dir})", flush=True)
    print(f"Connect with: psql -h {cfg.host} -p {server.port} -U {cfg.superuser} quackml",
          flush=True)
    if console is not None:
        print(f"Web console: {console.url}", flush=True)
    received = signal.sigwait(signals)
    for sig in signals:   # a second signal ends the process at once
        signal.signal(sig, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, signals)

    def phase(line: str) -> None:
        print(f"QuackML shutdown: {line}", flush=True)

    phase(f"{signal.Signals(received).name} received; cancelling running statements")
    if console is not None:
        console.stop()
        phase("web console stopped")
    server.stop(report=phase)
    phase("stopped")
    _exit_after_stop()


def _exit_after_stop() -> NoReturn:
    """End the process once the orderly stop is done (database checkpointed and
    closed, workers stopped), without the interpreter's teardown: native
    libraries torn down while a finished client's thread still holds their
    objects abort the process ("terminate called without an active exception",
    status -6) or hang it. Measured with a client connected at Ctrl-C after it
    ran prediction functions: 2 runs of 3 aborted, and before these changes the
    server hung. Nothing is left to save at this point."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)

if __name__ == "__main__":
    raise SystemExit(main())
