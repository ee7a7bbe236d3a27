"""A throwaway certificate authority for the HTTPS emulators.

Real clients verify TLS, and so do ours: the sandbox never asks anyone to
turn verification off. Instead this module makes one private CA per process
(trustme), a server certificate for `localhost`, `127.0.0.1` and `::1`
signed by it, and writes the CA's PEM to a temporary file, so a client can
trust the sandbox the standard way:

    from sandbox import tls
    ServerThread(app, ssl_context=tls.server_context())
    os.environ["REQUESTS_CA_BUNDLE"] = tls.ca_path()      # requests
    os.environ["SSL_CERT_FILE"] = tls.ca_path()           # httpx
    # or: session.verify = tls.ca_path()

Everything is made once per process, on first use; the PEM file is removed
when the process exits.
"""

from __future__ import annotations

import atexit
import os
import ssl
import tempfile
import threading

import trustme

SERVER_NAMES = ("localhost", "127.0.0.1", "::1")

_lock = threading.Lock()
_ca: trustme.CA | None = None
_server_cert: trustme.LeafCert | None = None
_ca_path: str | None = None


def authority() -> trustme.CA:
    """The process-wide sandbox CA (created on first call)."""
    global _ca
    with _lock:
        if _ca is None:
            _ca = trustme.CA(organization_name="crm-sync sandbox")
        return _ca


def _leaf() -> trustme.LeafCert:
    global _server_cert
    ca = authority()
    with _lock:
        if _server_cert is None:
            _server_cert = ca.issue_cert(*SERVER_NAMES)
        return _server_cert


def server_context() -> ssl.SSLContext:
    """A server-side SSLContext presenting the sandbox certificate."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    _leaf().configure_cert(context)
    return context


def ca_path() -> str:
    """Path of a PEM file holding the sandbox CA, for REQUESTS_CA_BUNDLE / SSL_CERT_FILE / verify=."""
    global _ca_path
    ca = authority()
    with _lock:
        if _ca_path is None:
            fd, path = tempfile.mkstemp(prefix="crm-sync-sandbox-ca-", suffix=".pem")
            with os.fdopen(fd, "wb") as handle:
                handle.write(ca.cert_pem.bytes())
            atexit.register(_remove, path)
            _ca_path = path
        return _ca_path


def client_context() -> ssl.SSLContext:
    """A client-side SSLContext that trusts the sandbox CA (for httpx's verify=)."""
    context = ssl.create_default_context()
    authority().configure_trust(context)
    return context


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
