"""An emulator served from a child process, so that its CPU, GIL and memory are not the client's.

In the client's process the emulator's handler threads compete with the client
for the GIL: on a loaded machine they note arrivals late and bunched, and a
server that counts rate windows then sees bursts the client never sent. Tests
and benchmarks that judge pacing on the server serve it from here.
"""

from __future__ import annotations

import multiprocessing as mp
from multiprocessing.connection import Connection
from typing import Any, Callable


class ServerProcess:
    """An emulator in a spawned child: `with` it, read `url`; `stop()` returns the child's report.

    `serve(conn, *args)` runs in the child and must be importable by name. It
    sends its URL, waits for any message, then sends one picklable report of
    what it answered (status counts, an arrival log) and returns.
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
        self.report: Any = None

    def stop(self) -> Any:
        """Stop serving; what the child reported (None if it had died)."""
        if self._proc.is_alive():
            self._conn.send("stop")
            if self._conn.poll(30):
                self.report = self._conn.recv()
            self._proc.join(10)
            if self._proc.is_alive():
                self._proc.kill()
        return self.report

    def __enter__(self) -> "ServerProcess":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve_until_stopped(conn: Connection, app: Any, report: Callable[[], Any]) -> None:
    """The child's side: serve `app` on loopback, send its URL, then `report()` when told to stop."""
    from sandbox.http import ServerThread

    with ServerThread(app) as server:
        conn.send(server.url)
        conn.recv()  # any message: stop
        conn.send(report())
