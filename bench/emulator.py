"""The AgentClara emulator in its own process, so its CPU and memory are not ours.

The emulator renders ~70 µs of Python per contact; in the client's process it
would compete for the GIL with the pager and show up in the client's RSS.
"""

from __future__ import annotations

import multiprocessing as mp
from datetime import datetime, timezone
from multiprocessing.connection import Connection
from typing import Callable

# Pinned so that every run serves exactly the same contacts.
NOW = datetime(2025, 1, 1, tzinfo=timezone.utc)


def _serve(conn: Connection, contacts: int, latency_s: float, limited: bool) -> None:
    from sandbox.agentclara import AgentClaraApp
    from sandbox.http import ServerThread

    limits = {} if limited else {"per_minute": None, "per_10s": None}
    app = AgentClaraApp(contacts=contacts, conversations=0, now=NOW, **limits)
    app.faults.latency_s = latency_s
    with ServerThread(app) as server:
        conn.send(server.url)
        conn.recv()  # any message: stop
        conn.send(dict(app.status_counts))


class ServerProcess:
    """An emulator served from a child process: `with` it, read `url`; `stop()` returns status counts.

    `serve(conn, *args)` runs in the child: it sends its URL, waits for any
    message, then sends its answers counted by HTTP status.
    """

    def __init__(self, name: str, serve: Callable[..., None], *args: object) -> None:
        ctx = mp.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=serve, args=(child, *args), daemon=True)
        self._proc.start()
        if not self._conn.poll(60):
            self._proc.kill()
            raise RuntimeError(f"the {name} emulator did not start within 60 s")
        self.url: str = self._conn.recv()
        self.status_counts: dict[int, int] = {}

    def stop(self) -> dict[int, int]:
        """Stop serving; the server's responses by HTTP status."""
        if self._proc.is_alive():
            self._conn.send("stop")
            if self._conn.poll(30):
                self.status_counts = self._conn.recv()
            self._proc.join(10)
            if self._proc.is_alive():
                self._proc.kill()
        return self.status_counts

    def __enter__(self) -> "ServerProcess":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class EmulatorProcess(ServerProcess):
    """`with EmulatorProcess(...) as emu:` the AgentClara emulator on `emu.url`."""

    def __init__(self, contacts: int, *, latency_s: float = 0.0, limited: bool = True) -> None:
        super().__init__("AgentClara", _serve, contacts, latency_s, limited)
