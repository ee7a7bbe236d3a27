"""The HubSpot emulator in its own process, beside bench/emulator.py's AgentClara one.

Why a process: the emulator's Python would otherwise share the GIL, CPU and
RSS of the client being measured. It counts what it answers by status, so
every tool's requests and 429s are counted the same way, by the server.
"""

from __future__ import annotations

import multiprocessing as mp
from multiprocessing.connection import Connection


def _serve(conn: Connection, per_10s: int) -> None:
    from sandbox.http import ServerThread
    from sandbox.hubspot import HubSpotApp

    app = HubSpotApp(per_10s=per_10s, daily_limit=10_000_000)
    with ServerThread(app) as server:
        conn.send(server.url)
        conn.recv()  # any message: stop
        conn.send(dict(app.status_counts))


class HubSpotProcess:
    """`with HubSpotProcess(190) as hs:` serves on `hs.url`; `hs.stop()` returns status counts."""

    def __init__(self, per_10s: int) -> None:
        ctx = mp.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_serve, args=(child, per_10s), daemon=True)
        self._proc.start()
        if not self._conn.poll(60):
            self._proc.kill()
            raise RuntimeError("the HubSpot emulator did not start within 60 s")
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

    def __enter__(self) -> "HubSpotProcess":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
