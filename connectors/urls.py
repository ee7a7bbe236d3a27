"""Base URLs: checked once, before the first request, for every source and CRM.

Why: over http:// the key or token in every request's header travels in
clear text. So a base URL is https, or http to a loopback host only
(127.0.0.0/8, ::1, localhost: the local emulators, or a TLS-terminating
sidecar on the same machine), and never carries a user or password (it
would end up in logs).
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from connectors.errors import ConfigError

LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain"})


def is_loopback(host: str) -> bool:
    """True for localhost, 127.0.0.0/8 and ::1: traffic that never leaves the machine."""
    host = host.strip("[]").lower().rstrip(".")
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_base_url(variable: str, url: str | None, *, service: str) -> str:
    """`url` if it is https (or http to a loopback host); ConfigError naming `variable` otherwise.

    Every client calls it when it is built, so a bad setting fails before
    the first request, naming the variable and never echoing a credential."""
    text = (url or "").strip()
    try:
        parts = urlsplit(text)
        host = parts.hostname or ""
        has_credentials = parts.username is not None or parts.password is not None
    except ValueError:
        raise ConfigError(service, f"{variable} is not a valid URL") from None
    if parts.scheme not in ("https", "http") or not host:
        raise ConfigError(service, f"{variable} must be an https:// URL with a host name")
    if has_credentials:
        raise ConfigError(service, f"{variable} must not carry a user name or password; set the credentials "
                                   "in their own variables")
    if parts.scheme == "http" and not is_loopback(host):
        raise ConfigError(service, f"{variable} is http:// to {host}, which would send credentials in clear "
                                   "text: use https:// (http:// is allowed for loopback hosts only: "
                                   "127.0.0.0/8, ::1, localhost)")
    return text
