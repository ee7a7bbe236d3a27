"""The HTTP client every source shares: one request, one retry budget, one decoded body.

`SourceClient` is the one place a source request is sent: through the rate
limiter, with one retry budget per request (`connectors.retry` decides, and
caps any single wait at `WAIT_CAP_S`, a server's Retry-After included), and
with every failure turned into an error from `connectors.errors` that names
the service and never the key (messages go through `connectors.redact`, and
no httpx exception is chained to ours).

Its base URL passes `connectors.urls.check_base_url` before the first
request. A response body is read as a stream and refused past
`MAX_RESPONSE_BYTES`, and decoded by `connectors.body`: invalid UTF-8 is
replaced (counted and logged), and malformed, too deeply nested or
too-long-number JSON is a `PayloadError` for that request, never a crash.
What the source classes share on top of it is in `connectors.source`.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from dataclasses import dataclass, field, fields
from typing import Any, Callable, Mapping
from urllib.parse import urlencode

import httpx

from connectors import redact
from connectors.body import MAX_RESPONSE_BYTES, decode_json, decode_text, error_text, read_capped
from connectors.errors import AuthError, ConfigError, NotFound, PayloadError, RequestError, RetriesExhausted
from connectors.ratelimit import RateLimiter
from connectors.retry import WAIT_CAP_S, is_tls_verification_error, retry_delay, server_wait, should_retry
from connectors.urls import check_base_url

logger = logging.getLogger(__name__)

# Connect fast or fail; a page of 100 records may take a while to build.
DEFAULT_TIMEOUT = httpx.Timeout(connect=5.0, read=30.0, write=30.0, pool=30.0)
DEFAULT_MAX_ATTEMPTS = 6
USER_AGENT = "crm-sync/0.1 (+httpx)"

# Header values that are credentials: scrubbed from every message we build.
_SECRET_HEADERS = frozenset({"authorization", "x-api-key", "api-key", "proxy-authorization"})


@dataclass
class ClientStats:
    """Counts for the run summary and the benchmark; updated from many threads."""

    requests: int = 0  # attempts sent, retries included
    retries: int = 0
    throttled: int = 0  # 429 responses received
    server_errors: int = 0  # 5xx responses received
    transport_errors: int = 0  # dropped connections, timeouts
    invalid_utf8_bodies: int = 0  # bodies decoded with U+FFFD replacements
    backoff_s: float = 0.0  # total wait asked for by retries
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, name: str, amount: float = 1) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + amount)

    def as_dict(self) -> dict[str, float]:
        with self._lock:
            return {f.name: getattr(self, f.name) for f in fields(self) if not f.name.startswith("_")}


class SourceClient:
    """JSON over HTTPS to one source: paced, retried, size-capped, and safe to log."""

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
        backoff_cap: float = WAIT_CAP_S,
        sleep: Callable[[float], None] = time.sleep,
        transport: httpx.BaseTransport | None = None,
        max_connections: int = 16,
        auth_hints: Mapping[int, str] | None = None,
        rng: Callable[[], float] = random.random,
        max_response_bytes: int = MAX_RESPONSE_BYTES,
        base_url_variable: str | None = None,
    ) -> None:
        """`base_url_variable` names the setting in errors (default `<SERVICE>_BASE_URL`)."""
        base_url = check_base_url(base_url_variable or f"{service.upper()}_BASE_URL", base_url, service=service)
        if max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        self.service = service
        self.base_url = base_url.rstrip("/")
        self.limiter = limiter
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.max_response_bytes = max_response_bytes
        self.stats = ClientStats()
        self._sleep = sleep
        self._rng = rng
        self._auth_hints = dict(auth_hints or {})
        self._secrets = _secret_values(headers)
        redact.register(*self._secrets)
        # TLS is always verified; a private CA comes in through SSL_CERT_FILE.
        try:
            self._http = httpx.Client(
                base_url=self.base_url,
                headers={"User-Agent": USER_AGENT, "Accept": "application/json", **headers},
                timeout=timeout,
                limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
                transport=transport,
            )
        except Exception as exc:  # a header value httpx refuses: its message may quote it
            raise ConfigError(service, f"cannot build the HTTP client: {self.scrub(redact.describe(exc))}") from None

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
        """`text` with every credential of this client (and every registered secret) replaced."""
        return redact.scrub(text, self._secrets)

    # -- one request, one retry budget ---------------------------------------

    def _request(self, method: str, path: str, *, params: Mapping[str, Any] | None = None, json: Any = None) -> Any:
        params = {k: v for k, v in (params or {}).items() if v is not None}
        last_status: int | None = None
        last_cause = "no attempt made"
        for attempt in range(1, self.max_attempts + 1):
            self.limiter.acquire()
            self.stats.add("requests")
            try:
                response, body = self._send(method, path, params, json)
            except httpx.TransportError as exc:
                self.stats.add("transport_errors")
                last_cause = self._transport_cause(method, path, exc)
                last_status = None
                if attempt < self.max_attempts:
                    self._back_off(method, path, attempt, last_cause, None, None)
                continue
            status = response.status_code
            self._observe_rate_headers(response.headers)
            if 200 <= status < 300:
                return self._decode(method, path, status, body, params)
            if not should_retry(status):
                raise self._status_error(method, path, response, body)
            self.stats.add("throttled" if status == 429 else "server_errors")
            last_status, last_cause = status, f"HTTP {status}: {self._error_message(response, body)}"
            if attempt < self.max_attempts:
                self._back_off(method, path, attempt, last_cause, status, response.headers)
        error = RetriesExhausted(
            self.service, f"{method} {path} failed after {self.max_attempts} attempts; last: {last_cause}"
        )
        error.last_status = last_status  # type: ignore[attr-defined]
        error.attempts = self.max_attempts  # type: ignore[attr-defined]
        raise error

    def _send(self, method: str, path: str, params: Mapping[str, Any], json: Any) -> tuple[httpx.Response, bytes]:
        """One attempt: the response and its body, read as a stream up to the size cap.

        httpx errors other than transport ones (a refused header, a bad URL,
        a body that cannot be decoded) become a ConfigError or PayloadError
        here, scrubbed and unchained: httpx quotes what it refused."""
        try:
            request = self._http.build_request(method, path, params=params or None, json=json)
            response = self._http.send(request, stream=True)
        except httpx.TransportError:
            raise
        except (httpx.HTTPError, httpx.InvalidURL, ValueError, TypeError) as exc:
            raise ConfigError(self.service, f"{method} {path}: {self.scrub(redact.describe(exc))}") from None
        try:
            return response, self._read_capped(method, path, response)
        except httpx.TransportError:
            raise
        except httpx.HTTPError as exc:  # DecodingError: a broken gzip/deflate body
            raise PayloadError(self.service, f"{method} {path}: {self.scrub(redact.describe(exc))}") from None
        finally:
            response.close()

    def _read_capped(self, method: str, path: str, response: httpx.Response) -> bytes:
        """The decoded body; ResponseTooLarge as soon as it passes `max_response_bytes` (not read further)."""
        what = f"the answer to {method} {path} (HTTP {response.status_code})"
        # A compressed body's Content-Length is not its size once decoded: only the stream tells.
        declared = None if "content-encoding" in response.headers else _int(response.headers.get("content-length"))
        return read_capped(response.iter_bytes(), service=self.service, what=what, cap=self.max_response_bytes,
                           declared=declared)

    def _transport_cause(self, method: str, path: str, exc: httpx.TransportError) -> str:
        """The scrubbed cause of a dropped connection, to retry; ConfigError when retrying cannot help."""
        if is_tls_verification_error(exc):
            raise ConfigError(
                self.service,
                f"TLS certificate of {self.base_url} is not trusted; "
                "for a private CA set SSL_CERT_FILE (verification is never turned off)",
            ) from None
        if isinstance(exc, httpx.LocalProtocolError) or not should_retry(exc):  # we sent something invalid
            raise ConfigError(self.service, f"{method} {path}: {self.scrub(redact.describe(exc))}") from None
        return self.scrub(redact.describe(exc)) if str(exc) else f"{type(exc).__name__}: connection failed"

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

    def _decode(self, method: str, path: str, status: int, body: bytes, params: Mapping[str, Any]) -> Any:
        """The JSON of a 2xx body; PayloadError naming the request for any body that is not
        JSON we can hold (`connectors.body.decode_json`). Invalid UTF-8 is replaced by U+FFFD
        (counted, logged) rather than failing the page."""
        if status == 204 or not body:
            return None
        text, replaced = decode_text(body)
        if replaced:
            self.stats.add("invalid_utf8_bodies")
            logger.warning("%s: the answer to %s %s is not valid UTF-8; bad bytes replaced by U+FFFD",
                           self.service, method, path)
        query = f"?{urlencode(params)}" if params else ""
        what = f"the response to {method} {path}{self.scrub(query)} (HTTP {status})"
        return decode_json(text, service=self.service, what=what)

    def _status_error(self, method: str, path: str, response: httpx.Response, body: bytes) -> Exception:
        status = response.status_code
        message = self._error_message(response, body)
        if status in (401, 403):
            hint = self._auth_hints.get(status)
            return AuthError(self.service, status, f"{hint} ({message})" if hint else message)
        if status == 404:
            return NotFound(self.service, status, f"{method} {path}: {message}")
        if 300 <= status < 400:
            location = self.scrub(response.headers.get("location", "?"))
            return RequestError(self.service, status, f"{method} {path} redirected to {location}; check the base URL")
        return RequestError(self.service, status, f"{method} {path}: {message}")

    def _error_message(self, response: httpx.Response, body: bytes) -> str:
        """The service's own error text (`{"error": ...}` in every source), scrubbed."""
        message = error_text(body)
        if message is None:
            text = body.decode("utf-8", "replace").strip()
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

