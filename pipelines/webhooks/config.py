"""The receiver's settings from the environment: port and secret, checked like every other setting."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping

from connectors.errors import ConfigError
from connectors.redact import check_secret

PORT_VARIABLE = "SYNC_WEBHOOK_PORT"
SECRET_VARIABLE = "SYNC_WEBHOOK_SECRET"
DEFAULT_PORT = 8787
HOST = "127.0.0.1"  # loopback only: put a TLS-terminating proxy in front to take deliveries from outside
SERVICE = "webhooks"


@dataclass(frozen=True)
class ReceiverSettings:
    """Where the receiver listens and the secret it checks signatures with (None: unchecked)."""

    port: int = DEFAULT_PORT
    secret: str | None = None

    def __repr__(self) -> str:
        return f"ReceiverSettings(port={self.port}, secret={'set' if self.secret else 'unset'})"

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> "ReceiverSettings":
        """SYNC_WEBHOOK_PORT (1-65535, default 8787) and SYNC_WEBHOOK_SECRET (optional; stripped
        with a warning, refused with a ConfigError naming it when it holds a control character)."""
        raw = (env.get(PORT_VARIABLE) or "").strip()
        if raw and not (raw.isdigit() and 0 < int(raw) < 65536):
            raise ConfigError(SERVICE, f"{PORT_VARIABLE} must be a port number from 1 to 65535; got {raw!r}")
        value = env.get(SECRET_VARIABLE)
        secret = check_secret(SECRET_VARIABLE, value, service=SERVICE) if value else None
        return cls(port=int(raw) if raw else DEFAULT_PORT, secret=secret)
