"""The HubSpot emulator in its own process, beside bench/emulator.py's AgentClara one.

Why a process: the emulator's Python would otherwise share the GIL, CPU and
RSS of the client being measured. It counts what it answers by status, so
every tool's requests and 429s are counted the same way, by the server.
"""

from __future__ import annotations

from multiprocessing.connection import Connection

from sandbox.process import ServerProcess, serve_until_stopped


def _serve(conn: Connection, per_10s: int) -> None:
    from sandbox.hubspot import HubSpotApp

    app = HubSpotApp(per_10s=per_10s, daily_limit=10_000_000)
    serve_until_stopped(conn, app, lambda: dict(app.status_counts))


class HubSpotProcess(ServerProcess):
    """`with HubSpotProcess(190) as hs:` the HubSpot emulator on `hs.url`; `hs.stop()` returns status counts."""

    def __init__(self, per_10s: int) -> None:
        super().__init__("HubSpot", _serve, per_10s)
