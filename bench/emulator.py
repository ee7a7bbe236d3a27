"""The AgentClara emulator in its own process, so its CPU and memory are not ours.

The emulator renders ~70 µs of Python per contact; in the client's process it
would compete for the GIL with the pager and show up in the client's RSS.
"""

from __future__ import annotations

from datetime import datetime, timezone
from multiprocessing.connection import Connection

from sandbox.process import ServerProcess, serve_until_stopped

# Pinned so that every run serves exactly the same contacts.
NOW = datetime(2025, 1, 1, tzinfo=timezone.utc)


def _serve(conn: Connection, contacts: int, latency_s: float, limited: bool) -> None:
    from sandbox.agentclara import AgentClaraApp

    limits = {} if limited else {"per_minute": None, "per_10s": None}
    app = AgentClaraApp(contacts=contacts, conversations=0, now=NOW, **limits)
    app.faults.latency_s = latency_s
    serve_until_stopped(conn, app, lambda: dict(app.status_counts))


class EmulatorProcess(ServerProcess):
    """`with EmulatorProcess(...) as emu:` the AgentClara emulator on `emu.url`; `emu.stop()` returns status counts."""

    def __init__(self, contacts: int, *, latency_s: float = 0.0, limited: bool = True) -> None:
        super().__init__("AgentClara", _serve, contacts, latency_s, limited)
