"""What every source class shares: one client, listings through the pager, stats, envelopes.

A source (`connectors/<platform>/`) is a `SourceBase` subclass that knows
its paths and envelope; everything else is here. Each listing is handed out
as an unstarted `OffsetPager` (`_paged`), so a historical load can make it
resumable without the read function knowing, and each listing stops after
`DEFAULT_LISTING_DEADLINE_S` (6 h; `SYNC_LISTING_DEADLINE_SECONDS`) with
`ListingDeadlineExceeded`, its progress kept.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar, Literal, Mapping, Sequence

from connectors import redact
from connectors.errors import ConfigError, ListingDeadlineExceeded, PayloadError, RequestError
from connectors.http import SourceClient
from connectors.paging import Fetch, OffsetPager, PagerStats
from connectors.ratelimit import RateLimiter

logger = logging.getLogger(__name__)

# Overall deadline of one listing (all its pages): a historical load of a big
# account at the documented rate limits takes hours (bench/HISTORICAL.md: 2.8 h
# for 100,000 conversations); past 6 h something is wrong, and a historical
# load resumes from its checkpoint on the next run.
DEFAULT_LISTING_DEADLINE_S = 6 * 3600.0


def check_api_key(service: str, api_key: str | None, *, prefix: str = "", env_var: str = "") -> str:
    """The key through the one secret check (`redact.check_secret`), then its documented prefix.

    ConfigError naming `env_var`, never the key, when missing or malformed."""
    variable = env_var or f"the {service} API key"
    if not api_key or not api_key.strip():
        raise ConfigError(service, f"API key is missing (set {variable})")
    key = redact.check_secret(variable, api_key, service=service)
    if prefix and not key.startswith(prefix):
        raise ConfigError(service, f"API key must start with {prefix!r} (set {variable}); the one given does not")
    return key


@dataclass(frozen=True)
class SourceStats:
    """One source's traffic and listing health, for the run summary and the benchmark."""

    requests: int = 0
    retries: int = 0
    throttled: int = 0  # 429s received
    server_errors: int = 0
    transport_errors: int = 0
    invalid_utf8_bodies: int = 0  # bodies decoded with U+FFFD replacements
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
        listing_deadline_s: float = DEFAULT_LISTING_DEADLINE_S,
        **client_options: Any,
    ) -> None:
        """`listing_deadline_s`: the overall deadline of each listing (see `_paged`)."""
        if concurrency < 1:
            raise ConfigError(self.name, "concurrency must be >= 1")
        if not listing_deadline_s > 0:
            raise ConfigError(self.name, "SYNC_LISTING_DEADLINE_SECONDS must be > 0")
        self.concurrency = concurrency
        self.listing_deadline_s = listing_deadline_s
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
            invalid_utf8_bodies=int(traffic["invalid_utf8_bodies"]),
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
            self._in_time(stream, fetch),
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

    def _in_time(self, stream: str, fetch: Fetch) -> Fetch:
        """`fetch`, refusing to start a page request once the listing is past its deadline.

        The clock starts at the listing's first request. Raising from the
        fetch stops the pager like any source error: the pages landed so far
        are kept (and checkpointed in a historical load, which resumes)."""
        started: list[float] = []

        def fetch_in_time(offset: int, limit: int) -> list:
            now = time.monotonic()
            if not started:
                started.append(now)
            elif now - started[0] > self.listing_deadline_s:
                raise ListingDeadlineExceeded(self.name, stream, self.listing_deadline_s)
            return fetch(offset, limit)

        return fetch_in_time

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
