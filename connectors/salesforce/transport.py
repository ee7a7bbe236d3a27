"""Salesforce's vendor client (simple-salesforce over a requests Session) and its one retry loop.

Everything goes through simple-salesforce (no hand-written HTTP). TLS is
always verified: a private CA comes through `ca_bundle` (pinned on the
session, so a machine-wide REQUESTS_CA_BUNDLE cannot override it) or through
REQUESTS_CA_BUNDLE. simple-salesforce's `domain` can only name a
`*.salesforce.com` host, so a full login URL goes to
`SalesforceLogin(scratch_url=...)`.

Errors, by what the caller should do (`translate`): INVALID_SESSION_ID is
`AuthError` at once (no re-login loop); REQUEST_LIMIT_EXCEEDED (a 403) is
`QuotaExhausted`; what the shared classification of `connectors.retry`
calls retriable (429, 500/502/503/504, a dropped connection) is retried with
its backoff under the shared wait cap, then `RetriesExhausted`. No message
carries a token: a library's exception is never chained.

Pace: Salesforce has no short rate window to keep to (its limits are the
org's rolling 24 h API allocation and concurrent long requests), so the
pace is the daily budget that every answer states in `Sforce-Limit-Info:
api-usage=used/total`: once what is left is down to `DAILY_RESERVE_SHARE`
of the total (left to the org's other integrations), the next request is
not sent and `QuotaExhausted` stops the push cleanly, progress kept
(the sink's PartialProgress), before Salesforce refuses with
REQUEST_LIMIT_EXCEEDED.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass, field
from typing import Any, Callable, TypeVar

import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import (
    SalesforceAuthenticationFailed,
    SalesforceBulkV2LoadError,
    SalesforceError,
    SalesforceExpiredSession,
    SalesforceRefusedRequest,
)
from simple_salesforce.login import SalesforceLogin

from connectors import redact
from connectors.errors import (
    AuthError,
    ConfigError,
    ConnectorError,
    PayloadError,
    QuotaExhausted,
    RequestError,
    RetriesExhausted,
    TransientError,
    UnexpectedError,
)
from connectors.retry import WAIT_CAP_S, is_tls_verification_error, retry_delay, should_retry
from connectors.salesforce.settle import first_error
from connectors.salesforce.settings import SERVICE, SalesforceSettings

T = TypeVar("T")

log = logging.getLogger(__name__)


# The share of the org's daily API allocation a push leaves to the org's other integrations.
DAILY_RESERVE_SHARE = 0.01
_API_USAGE = re.compile(r"(?:^|[;,\s])api-usage=(\d+)/(\d+)")


def api_usage(header: str | None) -> tuple[int, int] | None:
    """(used, total) from a `Sforce-Limit-Info` value ("api-usage=10018/100000; api-bursts=1/750"), or None."""
    match = _API_USAGE.search(header or "")
    return (int(match.group(1)), int(match.group(2))) if match else None


class _Session(requests.Session):
    """A requests Session with default timeouts, optionally a pinned CA bundle, and the daily budget.

    requests lets REQUESTS_CA_BUNDLE override `session.verify`; when a CA
    bundle is configured explicitly it is kept instead (verification stays on
    either way), while proxies and the rest still come from the environment.
    Every answer's `Sforce-Limit-Info` is read; a request is not sent once the
    budget is down to its reserve (module docstring).
    """

    def __init__(self, timeout: tuple[float, float], ca_bundle: str | None) -> None:
        super().__init__()
        self._timeout = timeout
        self._pinned = ca_bundle is not None
        self.usage: tuple[int, int] | None = None  # (used, total) as the last answer said
        if ca_bundle is not None:
            self.verify = ca_bundle

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        self._check_budget()
        kwargs.setdefault("timeout", self._timeout)
        response = super().request(method, url, *args, **kwargs)
        self.usage = api_usage(response.headers.get("Sforce-Limit-Info")) or self.usage
        return response

    def _check_budget(self) -> None:
        if self.usage is None:
            return
        used, total = self.usage
        reserve = int(total * DAILY_RESERVE_SHARE)
        if total - used <= reserve:
            raise QuotaExhausted(
                SERVICE,
                f"daily API budget nearly spent (Sforce-Limit-Info: {used:,} of {total:,} used, {reserve:,} kept "
                "for the org's other integrations); stopped before REQUEST_LIMIT_EXCEEDED, progress kept: "
                "resume later")

    def merge_environment_settings(self, url, proxies, stream, verify, cert):  # type: ignore[no-untyped-def]
        merged = super().merge_environment_settings(url, proxies, stream, verify, cert)
        if self._pinned and verify in (None, True):
            merged["verify"] = self.verify
        return merged


def connect(settings: SalesforceSettings) -> Salesforce:
    """Log in (or wrap a token) and return a simple-salesforce client. Reads no environment."""
    settings.validate()
    if settings.ca_bundle is not None:
        try:
            open(settings.ca_bundle, "rb").close()
        except OSError:
            raise ConfigError(SERVICE, f"CA bundle not readable: {settings.ca_bundle}") from None
    session = _Session(settings.timeout_s, settings.ca_bundle)
    if settings.auth_mode == "token":
        token = redact.check_secret("SALESFORCE_ACCESS_TOKEN", settings.access_token, service=SERVICE)
        return call_with_retries(RetryPolicy(attempts=1), "connect", lambda: Salesforce(
            instance_url=settings.instance_url,
            session_id=token,
            version=settings.api_version,
            session=session,
        ))
    password = redact.check_secret("SALESFORCE_PASSWORD", settings.password, service=SERVICE)
    security_token = redact.check_secret("SALESFORCE_SECURITY_TOKEN", settings.security_token, service=SERVICE) \
        if settings.security_token else ""
    login_url = settings.domain.rstrip("/") if settings.domain.startswith("https://") else None
    session_id, instance = call_with_retries(
        RetryPolicy(),
        "login",
        lambda: SalesforceLogin(
            username=settings.username,
            password=password,
            security_token=security_token,
            domain=None if login_url else settings.domain.removesuffix(".salesforce.com"),
            scratch_url=login_url,
            sf_version=settings.api_version,
            session=session,
        ),
    )
    redact.register(session_id)
    return Salesforce(instance=instance, session_id=session_id, version=settings.api_version, session=session)


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries with capped exponential backoff and jitter, for transient failures only."""

    attempts: int = 4
    base_s: float = 0.5
    cap_s: float = WAIT_CAP_S
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False, compare=False)

    def delay(self, attempt: int) -> float:
        """Full-jitter exponential backoff (connectors.retry); Salesforce sends no Retry-After."""
        if self.base_s <= 0:
            return 0.0
        return retry_delay(attempt, base=self.base_s, cap=self.cap_s)


def translate(exc: BaseException, what: str) -> ConnectorError | None:
    """The ConnectorError a simple-salesforce/requests failure stands for, or None if unknown."""
    if isinstance(exc, ConnectorError):
        return exc
    if isinstance(exc, SalesforceAuthenticationFailed):
        return AuthError(SERVICE, 401, f"{what}: login refused ({exc.code}: {exc.auth_message})")
    if isinstance(exc, SalesforceExpiredSession):
        code, message = first_error(exc.content)
        return AuthError(SERVICE, 401, f"{what}: {code}: {message or 'session expired or invalid'}; "
                                       "get a new access token (or check the login) and rerun")
    if isinstance(exc, SalesforceRefusedRequest):
        code, message = first_error(exc.content)
        if code == "REQUEST_LIMIT_EXCEEDED":
            return QuotaExhausted(SERVICE, f"{what}: REQUEST_LIMIT_EXCEEDED: {message}; "
                                           "the org's API allocation is spent, resume later")
        return AuthError(SERVICE, 403, f"{what}: {code}: {message}")
    if isinstance(exc, SalesforceError):
        code, message = first_error(exc.content)
        if should_retry(exc.status):
            return TransientError(SERVICE, f"{what}: HTTP {exc.status} {code}: {message}")
        return RequestError(SERVICE, exc.status, f"{what}: {code}: {message}")
    if isinstance(exc, requests.exceptions.SSLError):
        if is_tls_verification_error(exc) or "certificate verify failed" in str(exc):
            return ConfigError(SERVICE, f"{what}: the server's TLS certificate is not trusted; "
                                        "give its CA through ca_bundle or REQUESTS_CA_BUNDLE")
        return TransientError(SERVICE, f"{what}: TLS error: {type(exc).__name__}")
    if isinstance(exc, (requests.exceptions.ConnectionError, requests.exceptions.Timeout,
                        requests.exceptions.ChunkedEncodingError)):
        return TransientError(SERVICE, f"{what}: connection failed: {type(exc).__name__}")
    if isinstance(exc, requests.exceptions.JSONDecodeError):
        return PayloadError(SERVICE, f"{what}: answer was not JSON")
    if isinstance(exc, SalesforceBulkV2LoadError):
        return RequestError(SERVICE, 400, f"{what}: {redact.scrub(str(exc))}")
    if isinstance(exc, (requests.exceptions.InvalidHeader, requests.exceptions.InvalidURL,
                        requests.exceptions.MissingSchema, requests.exceptions.InvalidSchema)):
        # requests quotes the refused header ("... in header value: 'Bearer <token>'"): never repeat it.
        return ConfigError(SERVICE, f"{what}: the request was refused before it was sent ({type(exc).__name__}); "
                                    "check SALESFORCE_INSTANCE_URL and the credentials for stray characters")
    if isinstance(exc, (requests.exceptions.RequestException, ValueError, TypeError)) and _from_http_library(exc):
        return UnexpectedError(SERVICE, f"{what}: {redact.describe(exc)}")
    return None


def _from_http_library(exc: BaseException) -> bool:
    """True when `exc` was raised inside requests, urllib3, http.client or simple-salesforce."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    module = tb.tb_frame.f_globals.get("__name__", "") if tb is not None else ""
    return isinstance(exc, requests.exceptions.RequestException) or module.split(".")[0] in (
        "requests", "urllib3", "http", "simple_salesforce")


def call_with_retries(policy: RetryPolicy, what: str, fn: Callable[[], T]) -> T:
    """`fn()`, retried while the shared classification says another attempt can help; errors translated."""
    attempt = 0
    while True:
        attempt += 1
        try:
            return fn()
        except Exception as exc:  # noqa: BLE001 - translated or re-raised below
            error = translate(exc, what)
            if error is None:
                raise
            if error is exc:  # already ours: keep its chain as it is
                raise
            # No `from exc`: a simple-salesforce/requests exception carries URLs, headers and bodies,
            # and Dagster serializes the whole chain.
            if not should_retry(error):
                raise redact.wrap(error) from None
            if attempt >= policy.attempts:
                raise redact.wrap(RetriesExhausted(SERVICE, f"{what}: gave up after {attempt} attempts; "
                                                            f"last: {error}")) from None
            log.warning("salesforce: %s failed (%s); retry %d of %d", what, redact.scrub(str(error)), attempt,
                        policy.attempts - 1)
            policy.sleep(policy.delay(attempt))
