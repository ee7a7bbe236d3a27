"""HubSpot's vendor client, its one retry layer, and the error policy of a whole reply.

Everything goes through `hubspot-api-client`. The client's urllib3 `Retry`
is the one retry layer, and it decides with the shared classification of
`connectors.retry`: 429 and 500/502/503/504 and dropped connections are
retried, with the shared wait (`retry_delay`: the server's `Retry-After`
honoured up to `WAIT_CAP_S`, else exponential backoff with full jitter). A
spent *daily* limit is not retried (waiting seconds cannot help). Every
attempt, retries included, first takes a slot from a client-side limiter,
so 429 is a rare event rather than the brake; the limiter's pace is what
HubSpot's own headers say, under the configured window as a cap, and a
daily budget down to its reserve stops the push before HubSpot refuses it
(`connectors.hubspot.pacing`). POST is retried: a batch
upsert or update is idempotent. Creates are not, so their client retries
only 429 (the request was certainly not processed).

`call()` never raises for an HTTP status: it returns a `Reply` for
`settle.py` to read. `check()` turns a reply nobody can settle into the
error the caller acts on: 401/403 `AuthError`, a spent daily limit
`QuotaExhausted`, 429/5xx after the retries `RetriesExhausted`, any other
4xx `RequestError`. No message carries the token.
"""

from __future__ import annotations

import json
import time
from typing import Any, Callable

import urllib3
from hubspot import HubSpot
from hubspot.crm.associations.v4 import exceptions as assoc_exc
from hubspot.crm.contacts import exceptions as contacts_exc
from hubspot.crm.objects.communications import exceptions as comms_exc
from hubspot.crm.objects.meetings import exceptions as meetings_exc
from hubspot.crm.objects.notes import exceptions as notes_exc
from hubspot.crm.properties import exceptions as props_exc
from urllib3.exceptions import MaxRetryError, ResponseError
from urllib3.util.retry import Retry

from connectors import redact
from connectors.errors import (
    AuthError,
    ConfigError,
    ConnectorError,
    QuotaExhausted,
    RequestError,
    ResponseTooLarge,
    RetriesExhausted,
)
from connectors.body import MAX_RESPONSE_BYTES, read_capped
from connectors.hubspot.pacing import Budget, read_budget
from connectors.hubspot.settle import Reply, is_daily_limit
from connectors.ratelimit import RateLimiter
from connectors.retry import RETRY_STATUSES, WAIT_CAP_S, retry_delay, should_retry

SERVICE = "HubSpot"
DEFAULT_BASE_URL = "https://api.hubapi.com"
# (connect, read) seconds for every request.
TIMEOUT = (10.0, 60.0)

_API_EXCEPTIONS = (
    contacts_exc.ApiException, props_exc.ApiException, notes_exc.ApiException,
    comms_exc.ApiException, assoc_exc.ApiException, meetings_exc.ApiException,
)


class _Retry(Retry):
    """urllib3 Retry deciding and waiting as `connectors.retry` does, paced by the limiter.

    A spent daily limit is handed back to the caller at once instead of waited on.
    """

    limiter: RateLimiter | None = None
    wait_cap_s: float = WAIT_CAP_S

    def new(self, **kw: Any) -> "_Retry":
        fresh = super().new(**kw)
        fresh.limiter, fresh.wait_cap_s = self.limiter, self.wait_cap_s
        return fresh

    def is_retry(self, method: str, status_code: int, has_retry_after: bool = False) -> bool:
        return self.total is not False and should_retry(status_code)

    def increment(self, method: str | None = None, url: str | None = None, response: Any = None,
                  error: Exception | None = None, _pool: Any = None, _stacktrace: Any = None) -> "_Retry":
        if response is not None and response.status == 429:
            try:
                body = json.loads(response.data or b"null")
            except (ValueError, RecursionError):  # a body too broken or too deep to read says nothing
                body = None
            if is_daily_limit(429, response.headers, body):
                # Give the 429 back to the caller (raise_on_status=False) instead of waiting.
                raise MaxRetryError(_pool, url or "", ResponseError("daily limit reached"))
        return super().increment(method, url, response, error, _pool, _stacktrace)

    def sleep(self, response: Any = None) -> None:
        headers = dict(response.headers) if response is not None else None
        status = response.status if response is not None else None
        time.sleep(retry_delay(max(1, len(self.history)), headers, base=self.backoff_factor,
                               cap=self.wait_cap_s, status=status))
        if self.limiter is not None:
            self.limiter.acquire()


class _CreateRetry(_Retry):
    """For non-idempotent creates: retry only what was certainly not processed (429, no connection)."""

    def is_retry(self, method: str, status_code: int, has_retry_after: bool = False) -> bool:
        return self.total is not False and status_code == 429


def _json(data: Any) -> Any:
    if isinstance(data, bytes):
        data = data.decode("utf-8", "replace")
    try:
        return json.loads(data) if data else None
    except (ValueError, RecursionError):  # a body too broken or too deep to read says nothing
        return None


class HubSpotTransport:
    """The API objects of one portal (built once: each `client.crm...` access makes a new pool)."""

    def __init__(self, access_token: str, base_url: str, *, limiter: RateLimiter, max_retries: int,
                 backoff_factor: float, wait_cap_s: float = WAIT_CAP_S,
                 timeout: tuple[float, float] = TIMEOUT, ca_cert: str | None = None,
                 max_response_bytes: int = MAX_RESPONSE_BYTES) -> None:
        self._token = access_token
        self._max_response_bytes = max_response_bytes
        self._timeout = timeout
        self.limiter = limiter
        self.budget = Budget()  # what HubSpot's last answer said about the portal's limits
        retry_args = dict(
            total=max_retries, connect=max_retries, read=max_retries, status=max_retries, other=0,
            redirect=0, allowed_methods=None, status_forcelist=RETRY_STATUSES,
            backoff_factor=backoff_factor, respect_retry_after_header=True, raise_on_status=False,
        )
        retry = _Retry(**retry_args)  # type: ignore[arg-type]
        create_retry = _CreateRetry(**{**retry_args, "read": 0})  # type: ignore[arg-type]
        for each in (retry, create_retry):
            each.limiter, each.wait_cap_s = limiter, wait_cap_s
        host = base_url.rstrip("/")
        # verify_ssl stays at its default (True); a private CA comes in as ca_cert or SSL_CERT_FILE.
        extra = {"ssl_ca_cert": ca_cert} if ca_cert else {}
        try:
            client = HubSpot(access_token=access_token, host=host, retry=retry, **extra)
            creator = HubSpot(access_token=access_token, host=host, retry=create_retry, **extra)
        except Exception as exc:  # noqa: BLE001 - its message may quote the configuration
            raise ConfigError(SERVICE, f"cannot build the HubSpot client: {redact.describe(exc)}") from None
        self.contacts = client.crm.contacts.batch_api
        self.properties = client.crm.properties.core_api
        self.groups = client.crm.properties.groups_api
        self.associations = client.crm.associations.v4.batch_api
        # object type -> (batch api for reads and updates, batch api for creates)
        self.engagements = {
            "notes": (client.crm.objects.notes.batch_api, creator.crm.objects.notes.batch_api),
            "communications": (client.crm.objects.communications.batch_api,
                               creator.crm.objects.communications.batch_api),
            "meetings": (client.crm.objects.meetings.batch_api, creator.crm.objects.meetings.batch_api),
        }

    def __repr__(self) -> str:
        return "HubSpotTransport(token=[redacted])"

    def call(self, method: Callable[..., Any], *args: Any) -> Reply:
        """One API call (its retries are urllib3's); never raises for an HTTP status.

        QuotaExhausted before sending when the portal's daily budget is down to its reserve."""
        self._check_daily()
        self.limiter.acquire()
        try:
            raw = method(*args, _preload_content=False, _request_timeout=self._timeout)
        except _API_EXCEPTIONS as exc:
            if not exc.status:  # the client's wrapper of a TLS failure
                raise ConfigError(SERVICE, f"TLS error: {self.scrub(str(exc.reason))}") from None
            return self._paced(Reply(exc.status, _json(exc.body), exc.headers or {}))
        except urllib3.exceptions.HTTPError as exc:
            reason = getattr(exc, "reason", None) or exc
            if isinstance(reason, urllib3.exceptions.SSLError):
                raise ConfigError(SERVICE, f"TLS error (is the CA trusted?): {self.scrub(str(reason))}") from None
            raise RetriesExhausted(SERVICE, f"no answer after retries: {type(reason).__name__}: "
                                            f"{self.scrub(str(reason))}") from None
        except ConnectorError:
            raise
        except Exception as exc:  # noqa: BLE001 - e.g. http.client's "Invalid header value b'Bearer ...'"
            raise ConfigError(SERVICE, f"request refused before it was sent: {self.scrub(redact.describe(exc))}") \
                from None
        try:
            data = read_capped(raw.stream(64 * 1024), service=SERVICE, what=f"a HubSpot answer (HTTP {raw.status})",
                               cap=self._max_response_bytes)
        except (urllib3.exceptions.HTTPError, ResponseTooLarge) as exc:
            raw.close()  # bytes left unread: this connection cannot be reused
            if isinstance(exc, ResponseTooLarge):
                raise
            raise RetriesExhausted(SERVICE, f"answer cut off: {self.scrub(redact.describe(exc))}") from None
        finally:
            raw.release_conn()
        return self._paced(Reply(raw.status, _json(data), raw.headers))

    def _paced(self, reply: Reply) -> Reply:
        """Learn the portal's window and daily budget from the reply's headers (pacing.py)."""
        budget = read_budget(reply.headers)
        if budget.window_max and budget.window_s:
            self.limiter.learn(budget.window_max, budget.window_s, budget.window_remaining)
        if budget.daily_remaining is not None:
            self.budget = budget
        return reply

    def _check_daily(self) -> None:
        budget = self.budget
        if budget.daily_spent():
            raise QuotaExhausted(
                SERVICE,
                f"daily API budget nearly spent: {budget.daily_remaining:,} of {budget.daily:,} calls left "
                f"and {budget.daily_reserve:,} kept for the portal's other apps; stopped before HubSpot "
                "refuses, progress kept: rerun after the portal's midnight reset",
            )

    def check(self, reply: Reply, what: str) -> Reply:
        """The reply if it succeeded; otherwise the error the caller should act on."""
        if 200 <= reply.status < 300:
            return reply
        message = self.scrub(reply.message)
        if reply.status in (401, 403):
            raise AuthError(SERVICE, reply.status, message)
        if reply.status == 429:
            if is_daily_limit(429, reply.headers, reply.body):
                raise QuotaExhausted(SERVICE, f"daily API limit reached while trying to {what}: {message}")
            raise RetriesExhausted(SERVICE, f"still rate limited after retries ({what}): {message}")
        if reply.status >= 500:
            raise RetriesExhausted(SERVICE, f"HTTP {reply.status} after retries ({what}): {message}")
        raise RequestError(SERVICE, reply.status, f"{what}: {message}")

    def scrub(self, text: str) -> str:
        return redact.scrub(text, (self._token,))
