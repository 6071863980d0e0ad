"""The ``quackml`` command line: ``quackml serve [flags]``.

SIGTERM or SIGINT shuts down gracefully (``Server.stop``); a second one ends
the process at once.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence

from server import settings as settings_mod


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print("usage: quackml serve [--help] [flags]\n\n"
              "Start the QuackML server (PostgreSQL wire protocol over DuckDB).")
        return 0 if args else 2
    if args[0] != "serve":
        print(f"quackml: unknown command {args[0]!r}; try 'quackml serve --help'",
              file=sys.stderr)
        return 2
    cfg = settings_mod.load(args[1:], os.environ)
    logging.basicConfig(level=cfg.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from server.listener import Server

    server = Server(cfg)
    server.start()
    print(f"QuackML listening on {cfg.host}:{server.port} (database {cfg.database}, "
          f"data dir {cfg.data_dir})", flush=True)
    print(f"Connect with: psql -h {cfg.host} -p {server.port} -U quackml quackml", flush=True)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_DFL)   # a second signal ends the process at once
    print("QuackML shutting down: cancelling queries, 57P01 to clients, stopping "
          "training workers, checkpointing", flush=True)
    server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
