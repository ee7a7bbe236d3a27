"""Errors grouped by what the caller should do about them.

Every error names the service and what happened; none ever carries a key,
token or password. `retriable` tells the retry policy whether another
attempt can help.
"""

from __future__ import annotations


class ConnectorError(Exception):
    """Base of every error raised by a source client or CRM sink."""

    retriable = False

    def __init__(self, service: str, message: str) -> None:
        self.service = service
        super().__init__(f"{service}: {message}")


class ConfigError(ConnectorError):
    """Settings are missing or malformed (wrong key prefix, bad URL): fix config, rerun."""


class AuthError(ConnectorError):
    """The service refused the credentials (401/403, expired session). Never retried."""

    def __init__(self, service: str, status: int, message: str) -> None:
        self.status = status
        super().__init__(service, f"authentication failed (HTTP {status}): {message}")


class TransientError(ConnectorError):
    """Outage, 5xx, 429 or dropped connection: another attempt may succeed."""

    retriable = True


class RetriesExhausted(ConnectorError):
    """A transient failure outlasted the retry budget; progress so far is kept."""


class PayloadError(ConnectorError):
    """The service answered, but not in the documented shape."""


class RequestError(ConnectorError):
    """The service rejected the request itself (400/404/...): a bug or bad input, not retried."""

    def __init__(self, service: str, status: int, message: str) -> None:
        self.status = status
        super().__init__(service, f"HTTP {status}: {message}")


class QuotaExhausted(ConnectorError):
    """A daily or org-wide quota is spent: stop cleanly, keep progress, resume later."""


class NotFound(RequestError):
    """404: the record is gone (deleted between a listing and a read): skip it, do not fail the run."""


class PaginationLoop(PayloadError):
    """The service answered a later page with records already seen (it ignores `offset`)."""
