"""Errors grouped by what the caller should do about them.

Every error names the service and what happened; none ever carries a key,
token or password. `retriable` tells the retry policy whether another
attempt can help.
"""

from __future__ import annotations

from typing import Any, Sequence


class ConnectorError(Exception):
    """Base of every error raised by a source client or CRM sink."""

    retriable = False

    def __init__(self, service: str, message: str) -> None:
        self.service = service
        super().__init__(f"{service}: {message}")


class ConfigError(ConnectorError):
    """Settings are missing or malformed (wrong key prefix, bad URL, a control character
    in a secret, http:// to a remote host): fix config, rerun. Names the variable, never its value."""


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


class ResponseTooLarge(PayloadError):
    """A response body passed the size cap (connectors.body.MAX_RESPONSE_BYTES); it was not read further."""


class ListingDeadlineExceeded(ConnectorError):
    """A listing ran past its overall deadline; what it landed before is kept (a historical load resumes)."""

    def __init__(self, service: str, listing: str, deadline_s: float) -> None:
        self.listing = listing
        self.deadline_s = deadline_s
        super().__init__(service, f"listing {listing} stopped after its deadline of {deadline_s:,.0f} s "
                                  "(SYNC_LISTING_DEADLINE_SECONDS); what it read so far is kept")


class RequestError(ConnectorError):
    """The service rejected the request itself (400/404/...): a bug or bad input, not retried."""

    def __init__(self, service: str, status: int, message: str) -> None:
        self.status = status
        super().__init__(service, f"HTTP {status}: {message}")


class UnexpectedError(ConnectorError):
    """A client library failed in a way no group here covers (a bug, ours or its): not retried.
    Its message is scrubbed and the library's exception is not chained (it may quote headers)."""


class QuotaExhausted(ConnectorError):
    """A daily or org-wide quota is spent: stop cleanly, keep progress, resume later."""


class PartialProgress(ConnectorError):
    """A sink stopped part-way (quota, retries, auth): `cause` is why, `outcomes` what finished before.

    The one way a batch sink hands back what it settled before a stop, so the
    caller records that progress and then raises `cause` (what it acts on).
    `pending_keys` are the inputs not attempted. The cause is kept as an
    attribute, not chained, so no vendor exception travels with it.
    """

    def __init__(self, cause: ConnectorError, outcomes: Sequence[Any] = (),
                 pending_keys: Sequence[str] = ()) -> None:
        self.cause = cause
        self.outcomes = list(outcomes)
        self.pending_keys = list(pending_keys)
        self.retriable = cause.retriable
        super().__init__(cause.service, str(cause).removeprefix(f"{cause.service}: "))


class NotFound(RequestError):
    """404: the record is gone (deleted between a listing and a read): skip it, do not fail the run."""


class PaginationLoop(PayloadError):
    """The service answered a later page with records already seen (it ignores `offset`)."""
