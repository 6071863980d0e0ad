"""What the server's worker processes (training, scoring) share.

Ctrl-C in a terminal sends SIGINT to the whole process group: to the server
and to every worker it spawned. Only the server acts on it (an orderly stop
that kills or closes its workers); a worker that took it too would die with a
KeyboardInterrupt traceback wherever it was, often in the middle of importing
scikit-learn. ``quackml serve`` therefore ignores SIGINT at the operating
system level and takes it with ``sigwait`` (``server.cli``): a spawned
interpreter inherits the ignored disposition and Python then leaves it
ignored, so the signal cannot interrupt a worker even while it boots.
``ignore_interrupts`` says the same in the worker itself, for servers started
some other way (in-process, in tests).
"""

from __future__ import annotations

import os
import signal
import threading
import time


def ignore_interrupts() -> None:
    """In a worker: ignore SIGINT (the server stops its workers)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def exit_with_parent(server_pid: int, interval_s: float = 0.5) -> None:
    """Exit this process at once when the server process ``server_pid`` is gone.

    A worker orphaned by ``kill -9`` of the server has no one to answer, and
    a restarted server must not race it for the same files."""

    def watch() -> None:
        while True:
            if os.getppid() != server_pid:
                os._exit(3)
            time.sleep(interval_s)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()
