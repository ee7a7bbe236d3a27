"""Measurement 1: how close a slow source is read to its documented rate ceiling.

AgentClara allows 1,000 requests a minute and 100 in any 10 s; the second
binds, so a long read can average at most 10 requests/s. At 150 ms a
request a sequential client cannot exceed ~6.7/s; the pager's concurrent
fetches under the shared limiter should reach the ceiling without 429s.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import httpx

from bench.emulator import EmulatorProcess
from connectors.agentclara import DOCUMENTED_LIMITS, AgentClaraSource
from sandbox.agentclara import DEFAULT_KEY

LATENCY_S = 0.15
BURST_WINDOW_S = 10.0  # the binding window: 100 requests in any 10 s
CEILING_RPS = min(limit / period for limit, period in DOCUMENTED_LIMITS)  # 10/s


class _SendLog(httpx.HTTPTransport):
    """The default transport, noting when each attempt leaves (to find the sustained rate)."""

    def __init__(self, max_connections: int) -> None:
        limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
        super().__init__(limits=limits)
        self.sent: list[float] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(time.monotonic())  # list.append is atomic: safe from pager threads
        return super().handle_request(request)


@dataclass
class ThroughputResult:
    label: str
    concurrency: int
    contacts: int
    records: int  # contacts read (de-duplicated)
    requests: int  # attempts sent, retries included
    wall_s: float
    sustained_rps: float | None  # over whole 10 s windows after the first; None if too short
    client_429: int  # 429s the client saw (SourceClient stats `throttled`)
    server_429: int  # 429s the emulator answered
    complete: bool
    server_statuses: dict[int, int] = field(default_factory=dict)

    @property
    def overall_rps(self) -> float:
        return self.requests / self.wall_s

    @property
    def ratio(self) -> float:
        """Achieved over the ceiling: the sustained rate when measured, else the overall one."""
        return (self.sustained_rps if self.sustained_rps is not None else self.overall_rps) / CEILING_RPS


def sustained_rate(sent: list[float]) -> float | None:
    """Requests per second over whole 10 s windows, the first window left out.

    The first window holds the one-off burst of 100 the limit allows up
    front, which would flatter a short read; after it, a client at the
    ceiling sends exactly 100 per window. Needs a read of 20 s or more.
    """
    if len(sent) < 2:
        return None
    sent = sorted(sent)
    start = sent[0]
    windows = math.floor((sent[-1] - start) / BURST_WINDOW_S)
    if windows < 2:
        return None
    lo, hi = start + BURST_WINDOW_S, start + windows * BURST_WINDOW_S
    return sum(lo <= t < hi for t in sent) / (hi - lo)


def measure(contacts: int, concurrency: int, label: str) -> ThroughputResult:
    """Read every contact from an emulator at 150 ms latency with the documented limits."""
    with EmulatorProcess(contacts, latency_s=LATENCY_S, limited=True) as emulator:
        transport = _SendLog(max(concurrency, 4))
        source = AgentClaraSource(DEFAULT_KEY, emulator.url, concurrency=concurrency, transport=transport)
        started = time.monotonic()
        records = sum(len(page) for page in source.iter_contact_pages())
        wall = time.monotonic() - started
        source.close()
        statuses = emulator.stop()
    stats = source.stats
    return ThroughputResult(
        label=label,
        concurrency=concurrency,
        contacts=contacts,
        records=records,
        requests=stats.requests,
        wall_s=wall,
        sustained_rps=sustained_rate(transport.sent),
        client_429=stats.throttled,
        server_429=statuses.get(429, 0),
        complete=stats.complete and records == contacts,
        server_statuses=statuses,
    )
