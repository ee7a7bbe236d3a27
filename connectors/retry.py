"""When to retry a request, and how long to wait first.

Pure functions over a status code (or exception) and response headers, in
the manner of openai-python's `_should_retry` / `_calculate_retry_timeout`,
so the policy is tested without a server or a clock. Every transport uses
them: the sources' loop in `connectors.http.SourceClient` and each CRM's
transport (`connectors/<crm>/transport.py`, a urllib3 `Retry` subclass or a
plain loop around a vendor SDK): one classification, one cap on any
single wait (`WAIT_CAP_S`, a server's `Retry-After` included), one budget
per request, never stacked with retries elsewhere.
"""

from __future__ import annotations

import random
import ssl
import time
from email.utils import parsedate_to_datetime
from typing import Callable, Mapping

import httpx

# 429 is the documented "slow down" of every source; 5xx other than these
# (501 Not Implemented, 505...) will not get better by asking again.
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})

# The longest single wait before a retry, whatever the server asks: past it,
# giving up (and resuming on the next run) beats holding a worker.
WAIT_CAP_S = 30.0

# Values of X-RateLimit-Reset below this are read as "seconds from now"
# rather than a Unix timestamp (some servers send a delta; 10^9 s is 2001).
_EPOCH_THRESHOLD = 1_000_000_000


def should_retry(outcome: int | BaseException) -> bool:
    """True when another attempt can help: 429, 500/502/503/504, a dropped
    connection or a timeout. Never 401/403 (the key is wrong) or other 4xx
    (the request is wrong), nor a TLS verification failure (the CA is wrong)."""
    if isinstance(outcome, bool):  # bool is an int; a caller bug, not a status
        raise TypeError("should_retry takes a status code or an exception")
    if isinstance(outcome, int):
        return outcome in RETRY_STATUSES
    if isinstance(outcome, httpx.UnsupportedProtocol):
        return False  # a malformed base URL: config, not weather
    if isinstance(outcome, httpx.TransportError):
        return not is_tls_verification_error(outcome)
    return bool(getattr(outcome, "retriable", False))


def is_tls_verification_error(exc: BaseException) -> bool:
    """True when a connection failed because the server's certificate was not trusted."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ssl.SSLCertVerificationError):
            return True
        if "CERTIFICATE_VERIFY_FAILED" in str(current):
            return True
        current = current.__cause__ or current.__context__
    return False


def seconds_until_reset(value: float, now: float) -> float:
    """Seconds until an X-RateLimit-Reset value: a Unix timestamp, or (small values) a delta."""
    if value < _EPOCH_THRESHOLD:
        return max(0.0, value)
    return max(0.0, value - now)


def server_wait(
    headers: Mapping[str, str] | None,
    *,
    now: float,
    status: int | None = None,
) -> float | None:
    """How long the server asked us to wait, in seconds, or None if it did not say.

    Reads `Retry-After-Ms`, `Retry-After` (seconds or an HTTP date) and, when
    the window is spent (`X-RateLimit-Remaining: 0`, or a 429),
    `X-RateLimit-Reset`. A reset header on an ordinary 500 is not a request
    to wait until the next window, so it is ignored there.
    """
    if not headers:
        return None
    lowered = {k.lower(): v for k, v in headers.items()}
    millis = _number(lowered.get("retry-after-ms"))
    if millis is not None:
        return max(0.0, millis / 1000.0)
    retry_after = lowered.get("retry-after")
    if retry_after is not None:
        seconds = _number(retry_after)
        if seconds is not None:
            return max(0.0, seconds)
        try:
            when = parsedate_to_datetime(retry_after)
        except (TypeError, ValueError, IndexError):
            when = None
        if when is not None and when.tzinfo is not None:
            return max(0.0, when.timestamp() - now)
    reset = _number(lowered.get("x-ratelimit-reset"))
    remaining = _number(lowered.get("x-ratelimit-remaining"))
    if reset is not None and (status == 429 or remaining == 0):
        return seconds_until_reset(reset, now)
    return None


def retry_delay(
    attempt: int,
    headers: Mapping[str, str] | None = None,
    *,
    base: float = 0.5,
    cap: float = WAIT_CAP_S,
    rng: Callable[[], float] = random.random,
    now: Callable[[], float] = time.time,
    status: int | None = None,
) -> float:
    """Seconds to wait before retry number `attempt` (1 for the first retry).

    The server's own instruction wins, capped at `cap`; otherwise exponential
    backoff with full jitter: uniform in [0, min(cap, base * 2**(attempt-1))],
    so that many clients that failed together do not retry together.
    """
    if attempt < 1:
        raise ValueError("attempt counts retries from 1")
    asked = server_wait(headers, now=now(), status=status)
    if asked is not None:
        return min(asked, cap)
    ceiling = min(cap, base * (2 ** (attempt - 1)))
    return rng() * ceiling


def _number(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        number = float(value.strip())
    except (AttributeError, ValueError):
        return None
    if number != number or number in (float("inf"), float("-inf")):
        return None
    return number
