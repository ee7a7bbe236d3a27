"""The receiver as a child process: what the demo, the benchmark and the tests start.

`ReceiverProcess` runs `python -m pipelines.webhooks` with the given
environment on a free loopback port and returns once `GET /healthz`
answers 200, the receiver's own signal that it can store events (it
polls the endpoint under a deadline; it never guesses with a sleep).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Mapping

import httpx

from pipelines.webhooks.app import PATH
from pipelines.webhooks.config import HOST, PORT_VARIABLE

ROOT = Path(__file__).resolve().parents[2]
POLL_S = 0.05


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


class ReceiverNotReady(RuntimeError):
    """The receiver exited, or its health endpoint did not answer 200, within the deadline."""


class ReceiverProcess:
    """`python -m pipelines.webhooks` on `port` (a free one by default), its stderr in `log`."""

    def __init__(self, env: Mapping[str, str], *, port: int | None = None, log: IO[bytes] | None = None) -> None:
        self.port = port or free_port()
        self.env = {**os.environ, **env, PORT_VARIABLE: str(self.port)}
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The webhook URL to give AgentClara."""
        return f"http://{HOST}:{self.port}{PATH}"

    @property
    def health_url(self) -> str:
        return f"http://{HOST}:{self.port}/healthz"

    def start(self, *, deadline_s: float = 60.0) -> "ReceiverProcess":
        """Start it and wait until /healthz says 200 (ReceiverNotReady if it exits or the deadline passes)."""
        self.process = subprocess.Popen([sys.executable, "-m", "pipelines.webhooks"], cwd=ROOT, env=self.env,
                                        stdout=subprocess.DEVNULL, stderr=self.log or subprocess.DEVNULL,
                                        start_new_session=True)
        deadline = time.monotonic() + deadline_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ReceiverNotReady(f"the receiver exited with {self.process.returncode} before it was healthy")
            try:
                if httpx.get(self.health_url, timeout=1.0).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(POLL_S)  # between health probes only; readiness is the 200, not the time
        self.stop()
        raise ReceiverNotReady(f"the receiver's {self.health_url} did not answer 200 within {deadline_s:.0f} s")

    def kill(self) -> None:
        """SIGKILL: no shutdown handler runs (the crash a test wants)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def stop(self, *, timeout_s: float = 20.0) -> int:
        """SIGTERM and wait for a clean exit; its exit code (SIGKILL after `timeout_s`)."""
        if self.process is None:
            return 0
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.kill()
        return int(self.process.returncode)

    def __enter__(self) -> "ReceiverProcess":
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()
