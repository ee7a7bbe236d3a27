"""The HubSpot emulator in its own process, beside bench/emulator.py's AgentClara one.

Why a process: the emulator's Python would otherwise share the GIL, CPU and
RSS of the client being measured. It counts what it answers by status, so
every tool's requests and 429s are counted the same way, by the server.
"""

from __future__ import annotations

from multiprocessing.connection import Connection

from bench.emulator import ServerProcess


def _serve(conn: Connection, per_10s: int) -> None:
    from sandbox.http import ServerThread
    from sandbox.hubspot import HubSpotApp

    app = HubSpotApp(per_10s=per_10s, daily_limit=10_000_000)
    with ServerThread(app) as server:
        conn.send(server.url)
        conn.recv()  # any message: stop
        conn.send(dict(app.status_counts))


class HubSpotProcess(ServerProcess):
    """`with HubSpotProcess(190) as hs:` the HubSpot emulator on `hs.url`; `hs.stop()` returns status counts."""

    def __init__(self, per_10s: int) -> None:
        super().__init__("HubSpot", _serve, per_10s)
