"""The HTTP client every source shares, and the small base the sources build on.

`SourceClient` is the one place a source request is sent: through the rate
limiter, with one retry budget per request (`connectors.retry` decides), and
with every failure turned into an error from `connectors.errors` that names
the service and never the key. `SourceBase` holds what the four source
classes share: the client, the pager factory, envelope unwrapping and stats.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Callable, ClassVar, Iterator, Literal, Mapping, Sequence

import httpx

from connectors.errors import (
    AuthError,
    ConfigError,
    NotFound,
    PayloadError,
    RequestError,
    RetriesExhausted,
)
from connectors.paging import Fetch, OffsetPager, PagerStats
from connectors.ratelimit import RateLimiter
from connectors.retry import is_tls_verification_error, retry_delay, server_wait, should_retry

logger = logging.getLogger(__name__)

# Connect fast or fail; a page of 100 records may take a while to build.
DEFAULT_TIMEOUT = httpx.Timeout(connect=5.0, read=30.0, write=30.0, pool=30.0)
DEFAULT_MAX_ATTEMPTS = 6
USER_AGENT = "crm-sync/0.1 (+httpx)"

# Header values that are credentials: scrubbed from every message we build.
_SECRET_HEADERS = frozenset({"authorization", "x-api-key", "api-key", "proxy-authorization"})
_REDACTED = "[redacted]"


@dataclass
class ClientStats:
    """Counts for the run summary and the benchmark; updated from many threads."""

    requests: int = 0  # attempts sent, retries included
    retries: int = 0
    throttled: int = 0  # 429 responses received
    server_errors: int = 0  # 5xx responses received
    transport_errors: int = 0  # dropped connections, timeouts
    backoff_s: float = 0.0  # total wait asked for by retries
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, name: str, amount: float = 1) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + amount)

    def as_dict(self) -> dict[str, float]:
        with self._lock:
            return {f.name: getattr(self, f.name) for f in fields(self) if not f.name.startswith("_")}


class SourceClient:
    """JSON over HTTPS to one source: paced, retried, and safe to log."""

    def __init__(
        self,
        *,
        service: str,
        base_url: str,
        headers: Mapping[str, str],
        limiter: RateLimiter,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        backoff_base: float = 0.5,
        backoff_cap: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
        transport: httpx.BaseTransport | None = None,
        max_connections: int = 16,
        auth_hints: Mapping[int, str] | None = None,
        rng: Callable[[], float] = random.random,
    ) -> None:
        if not base_url.startswith(("https://", "http://")):
            raise ConfigError(service, f"base URL must start with https:// (got {base_url!r})")
        if max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        self.service = service
        self.base_url = base_url.rstrip("/")
        self.limiter = limiter
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.stats = ClientStats()
        self._sleep = sleep
        self._rng = rng
        self._auth_hints = dict(auth_hints or {})
        self._secrets = _secret_values(headers)
        # TLS is always verified; a private CA comes in through SSL_CERT_FILE.
        self._http = httpx.Client(
            base_url=self.base_url,
            headers={"User-Agent": USER_AGENT, "Accept": "application/json", **headers},
            timeout=timeout,
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
            transport=transport,
        )

    def __repr__(self) -> str:
        return f"SourceClient(service={self.service!r}, base_url={self.base_url!r})"

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "SourceClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def get_json(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        """GET `path` and return its decoded JSON body."""
        return self._request("GET", path, params=params)

    def post_json(self, path: str, json: Any) -> Any:
        """POST a JSON body to `path` and return the decoded JSON answer.

        Retried like a GET (after a 5xx or a dropped connection the server may
        have acted already): use it for idempotent calls only."""
        return self._request("POST", path, json=json)

    def scrub(self, text: str) -> str:
        """`text` with every credential of this client replaced."""
        for secret in self._secrets:
            text = text.replace(secret, _REDACTED)
        return text

    # -- one request, one retry budget ---------------------------------------

    def _request(self, method: str, path: str, *, params: Mapping[str, Any] | None = None, json: Any = None) -> Any:
        params = {k: v for k, v in (params or {}).items() if v is not None}
        last_status: int | None = None
        last_cause = "no attempt made"
        for attempt in range(1, self.max_attempts + 1):
            self.limiter.acquire()
            self.stats.add("requests")
            try:
                response = self._http.request(method, path, params=params or None, json=json)
            except httpx.TransportError as exc:
                self.stats.add("transport_errors")
                if is_tls_verification_error(exc):
                    raise ConfigError(
                        self.service,
                        f"TLS certificate of {self.base_url} is not trusted; "
                        "for a private CA set SSL_CERT_FILE (verification is never turned off)",
                    ) from None
                if not should_retry(exc):
                    raise ConfigError(self.service, f"{method} {path}: {type(exc).__name__}: {self.scrub(str(exc))}") from None
                last_status, last_cause = None, f"{type(exc).__name__}: {self.scrub(str(exc)) or 'connection failed'}"
                if attempt < self.max_attempts:
                    self._back_off(method, path, attempt, last_cause, None, None)
                continue
            status = response.status_code
            self._observe_rate_headers(response.headers)
            if 200 <= status < 300:
                return self._decode(method, path, response)
            if not should_retry(status):
                raise self._status_error(method, path, response)
            self.stats.add("throttled" if status == 429 else "server_errors")
            last_status, last_cause = status, f"HTTP {status}: {self._error_message(response)}"
            if attempt < self.max_attempts:
                self._back_off(method, path, attempt, last_cause, status, response.headers)
        error = RetriesExhausted(
            self.service, f"{method} {path} failed after {self.max_attempts} attempts; last: {last_cause}"
        )
        error.last_status = last_status  # type: ignore[attr-defined]
        error.attempts = self.max_attempts  # type: ignore[attr-defined]
        raise error

    def _back_off(
        self,
        method: str,
        path: str,
        attempt: int,
        cause: str,
        status: int | None,
        headers: httpx.Headers | None,
    ) -> None:
        """Wait before the next attempt. When the server said how long (Retry-After,
        X-RateLimit-Reset) or said 429, every thread waits (the limiter pauses);
        our own backoff after a 5xx or a dropped connection holds this thread only."""
        delay = retry_delay(
            attempt, headers, base=self.backoff_base, cap=self.backoff_cap, rng=self._rng, status=status
        )
        self.stats.add("retries")
        self.stats.add("backoff_s", delay)
        logger.info("%s: %s %s -> %s; retry %d/%d in %.2fs", self.service, method, path, cause, attempt, self.max_attempts - 1, delay)
        asked = headers is not None and server_wait(headers, now=time.time(), status=status) is not None
        if status == 429 or asked:
            self.limiter.pause_for(delay)
        else:
            self._sleep(delay)

    def _observe_rate_headers(self, headers: httpx.Headers) -> None:
        remaining = _int(headers.get("x-ratelimit-remaining"))
        reset = _float(headers.get("x-ratelimit-reset"))
        limit = _int(headers.get("x-ratelimit-limit"))
        if remaining is not None or limit is not None:
            self.limiter.observe(limit, remaining, reset)

    def _decode(self, method: str, path: str, response: httpx.Response) -> Any:
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise PayloadError(
                self.service, f"malformed JSON in the response to {method} {path} (HTTP {response.status_code})"
            ) from None

    def _status_error(self, method: str, path: str, response: httpx.Response) -> Exception:
        status = response.status_code
        message = self._error_message(response)
        if status in (401, 403):
            hint = self._auth_hints.get(status)
            return AuthError(self.service, status, f"{hint} ({message})" if hint else message)
        if status == 404:
            return NotFound(self.service, status, f"{method} {path}: {message}")
        if 300 <= status < 400:
            location = response.headers.get("location", "?")
            return RequestError(self.service, status, f"{method} {path} redirected to {location}; check the base URL")
        return RequestError(self.service, status, f"{method} {path}: {message}")

    def _error_message(self, response: httpx.Response) -> str:
        """The service's own error text (`{"error": ...}` in every source), scrubbed."""
        message: str | None = None
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict):
            error = body.get("error") or body.get("message")
            if isinstance(error, dict):
                error = error.get("message") or error
            if error:
                message = str(error)
        if message is None:
            text = response.text.strip()
            message = text[:200] if text else (response.reason_phrase or "no error message")
        return self.scrub(message[:500])


def _secret_values(headers: Mapping[str, str]) -> tuple[str, ...]:
    secrets: set[str] = set()
    for name, value in headers.items():
        if name.lower() in _SECRET_HEADERS and value:
            secrets.add(value)
            scheme, _, token = value.partition(" ")
            if token.strip():
                secrets.add(token.strip())
    return tuple(sorted((s for s in secrets if len(s) >= 4), key=len, reverse=True))


def _int(value: str | None) -> int | None:
    number = _float(value)
    return None if number is None else int(number)


def _float(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        return None


def check_api_key(service: str, api_key: str | None, *, prefix: str = "", env_var: str = "") -> str:
    """The key, stripped; ConfigError (without the key in it) when missing or malformed."""
    where = f" (set {env_var})" if env_var else ""
    if not api_key or not api_key.strip():
        raise ConfigError(service, f"API key is missing{where}")
    key = api_key.strip()
    if prefix and not key.startswith(prefix):
        raise ConfigError(service, f"API key must start with {prefix!r}{where}; the one given does not")
    if any(ch.isspace() for ch in key):
        raise ConfigError(service, f"API key contains whitespace{where}")
    return key


# -- shared by the four source classes ---------------------------------------


@dataclass(frozen=True)
class SourceStats:
    """One source's traffic and listing health, for the run summary and the benchmark."""

    requests: int = 0
    retries: int = 0
    throttled: int = 0  # 429s received
    server_errors: int = 0
    transport_errors: int = 0
    pages: int = 0
    records: int = 0
    duplicates: int = 0
    shifts: int = 0
    recovery_passes: int = 0
    truncated: Mapping[str, str] = field(default_factory=dict)  # listing -> why it may be short
    warnings: tuple[str, ...] = ()

    @property
    def complete(self) -> bool:
        """False when any listing may have been cut short: the pipeline flags it."""
        return not self.truncated

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["truncated"] = dict(self.truncated)
        data["warnings"] = list(self.warnings)
        data["complete"] = self.complete
        return data


class SourceBase:
    """A source: one SourceClient, listings through OffsetPager, stats over both."""

    name: ClassVar[str] = "source"

    def __init__(
        self,
        *,
        base_url: str,
        headers: Mapping[str, str],
        limits: Sequence[tuple[int, float]],
        concurrency: int,
        limiter: RateLimiter | None = None,
        auth_hints: Mapping[int, str] | None = None,
        **client_options: Any,
    ) -> None:
        if concurrency < 1:
            raise ConfigError(self.name, "concurrency must be >= 1")
        self.concurrency = concurrency
        self.limiter = limiter if limiter is not None else RateLimiter(limits)
        self.client = SourceClient(
            service=self.name,
            base_url=base_url,
            headers=headers,
            limiter=self.limiter,
            # A listing's page fetches and its detail fetches run at once:
            # one connection each, so no thread waits on (or races for) another's.
            max_connections=max(2 * concurrency, 4),
            auth_hints=auth_hints,
            **client_options,
        )
        self._listings: list[tuple[str, PagerStats]] = []
        self._warnings: list[str] = []
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.client.base_url!r})"

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> "SourceBase":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def stats(self) -> SourceStats:
        """A snapshot of requests, retries, 429s and every listing's paging counts so far."""
        traffic = self.client.stats.as_dict()
        with self._lock:
            listings = list(self._listings)
            warnings = tuple(self._warnings)
        truncated = {stream: s.truncated for stream, s in listings if s.truncated}
        return SourceStats(
            requests=int(traffic["requests"]),
            retries=int(traffic["retries"]),
            throttled=int(traffic["throttled"]),
            server_errors=int(traffic["server_errors"]),
            transport_errors=int(traffic["transport_errors"]),
            pages=sum(s.pages_fetched for _, s in listings),
            records=sum(s.records_yielded for _, s in listings),
            duplicates=sum(s.duplicates_dropped for _, s in listings),
            shifts=sum(s.shifts_detected for _, s in listings),
            recovery_passes=sum(s.recovery_passes for _, s in listings),
            truncated=truncated,
            warnings=warnings,
        )

    def listing(self, stream: str) -> PagerStats | None:
        """The paging stats of the latest listing of `stream` (e.g. 'contacts')."""
        with self._lock:
            for name, stats in reversed(self._listings):
                if name == stream:
                    return stats
        return None

    def _paged(
        self,
        stream: str,
        fetch: Fetch,
        *,
        page_size: int,
        max_page_size: int,
        on_loop: Literal["raise", "stop"] = "raise",
        key: str | None = None,
    ) -> OffsetPager:
        """One listing, de-duplicated and shift-checked (see connectors.paging), not started yet.

        Handed out unstarted so that a historical load can make it resumable
        (`OffsetPager.track`: a checkpoint under `key`, default `stream`, and
        a size estimate) without the read function knowing.
        """
        pager = OffsetPager(
            fetch,
            page_size=page_size,
            max_page_size=max_page_size,
            concurrency=self.concurrency,
            on_loop=on_loop,
            service=self.name,
            stream=stream,
            key=key,
        )
        with self._lock:
            self._listings.append((stream, pager.stats))
        return pager

    def _warn(self, message: str) -> None:
        logger.warning("%s: %s", self.name, message)
        with self._lock:
            self._warnings.append(message)

    def _unwrap(self, body: Any, path: str) -> Any:
        """`data` of a `{"success": true, "data": ...}` envelope; its `error` raised otherwise."""
        if not isinstance(body, dict) or "success" not in body:
            raise PayloadError(self.name, f"{path}: expected a {{'success', 'data'}} envelope, got {_shape(body)}")
        if body["success"] is not True:
            error = body.get("error") or "success is false and no error was given"
            if isinstance(error, dict):
                error = error.get("message") or error
            raise RequestError(self.name, 200, f"{path}: {self.client.scrub(str(error))}")
        if "data" not in body:
            raise PayloadError(self.name, f"{path}: envelope has no 'data'")
        return body["data"]

    def _member(self, body: Any, key: str, path: str, kind: type = list) -> Any:
        """`body[key]`, checked to be a `kind` (bare `{"agents": [...]}` answers)."""
        if not isinstance(body, dict) or not isinstance(body.get(key), kind):
            raise PayloadError(self.name, f"{path}: expected {{{key!r}: {kind.__name__}}}, got {_shape(body)}")
        return body[key]

    def _expect(self, value: Any, kind: type, path: str) -> Any:
        if not isinstance(value, kind):
            raise PayloadError(self.name, f"{path}: expected a {kind.__name__}, got {_shape(value)}")
        return value


def _shape(value: Any) -> str:
    """A short description of a payload's shape, never its content (which may hold PII)."""
    if isinstance(value, dict):
        keys = ", ".join(sorted(map(str, value))[:8])
        return f"an object with keys [{keys}]"
    return f"a {type(value).__name__}"
