"""What the server's worker processes (training, scoring) share."""

from __future__ import annotations

import os
import threading
import time


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
