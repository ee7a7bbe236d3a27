"""What the four source emulators share beyond the HTTP base in sandbox/http.py.

Kept out of http.py (which other emulators depend on) and out of each
emulator so the rules they have in common are written once: how a Bearer
header is read, how `limit`/`offset` are validated, per-key sliding-window
limits, and a clock that is pinned in tests so timestamps are reproducible.
"""

from __future__ import annotations

import json
import math
import re
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from sandbox.http import App, Request, Response, SlidingWindowLimiter

UTC = timezone.utc

_BEARER = re.compile(r"^\s*Bearer\s+(\S+)\s*$", re.IGNORECASE)


class HttpError(Exception):
    """Raised by a handler to answer `status` in the emulator's own error shape."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class SourceApp(App):
    """An App whose hooks and handlers may raise HttpError.

    Why: handlers stay linear (validate, raise, carry on) and every error
    still goes through the subclass's `error_response`, so the body shape is
    decided in one place per platform.
    """

    retry_after_header = False  # whether the platform's 429 carries Retry-After

    def dispatch(self, request: Request) -> Response:
        try:
            return super().dispatch(request)
        except HttpError as exc:
            return self.error_response(exc.status, exc.message)

    def throttled(self, decision: "RateDecision") -> Response | None:
        """The platform's 429 when `decision` denies the request (with Retry-After if it sends one), else None."""
        if decision.allowed:
            return None
        response = self.throttled_response()
        if self.retry_after_header:
            response.headers["Retry-After"] = str(max(1, round(decision.reset_s + 0.5)))
        return response


class EnvelopedSourceApp(SourceApp):
    """AgentClara's and AgentPro's shared shape: `{"success": true, "data": ...}` or
    `{"success": false, "error": "..."}`, Bearer keys, per-key rate windows.

    Subclasses set `api_keys` and `limits` (KeyedRateLimits), and word
    their 401 in `invalid_key_message`.
    """

    invalid_key_message = "Invalid API key"
    api_keys: Any
    limits: "KeyedRateLimits"

    def error_response(self, status: int, message: str) -> Response:
        return Response(status, {"success": False, "error": message})

    def throttled_response(self) -> Response:
        headers = {"Retry-After": "1"} if self.retry_after_header else {}
        return Response(429, {"success": False, "error": "Rate limit exceeded"}, headers)

    def before(self, request: Request) -> Response | None:
        key = bearer_token(request)
        if key is None or key not in self.api_keys:
            return self.error_response(401, self.invalid_key_message)
        return self.throttled(self.limits.hit(key))

    @staticmethod
    def _ok(data: Any, status: int = 200) -> Response:
        return Response(status, {"success": True, "data": data})


def bearer_token(request: Request) -> str | None:
    """The token of an `Authorization: Bearer ...` header, or None."""
    match = _BEARER.match(request.header("authorization") or "")
    return match.group(1) if match else None


def json_body(request: Request) -> dict[str, Any]:
    """The request's JSON object body; a 400 if it is not one."""
    if not request.body:
        return {}
    try:
        body = json.loads(request.body)
    except ValueError as exc:
        raise HttpError(400, "Invalid JSON body") from exc
    if not isinstance(body, dict):
        raise HttpError(400, "Request body must be a JSON object")
    return body


def int_param(query: Mapping[str, str], name: str, default: int, *, minimum: int) -> int:
    """An integer query parameter; absent or empty means `default`.

    Non-numeric values and values below `minimum` are a 400, as the docs list
    400 for "missing or invalid parameters".
    """
    raw = query.get(name, "").strip()
    if raw == "":
        return default
    if not re.fullmatch(r"[+-]?\d+", raw):
        raise HttpError(400, f"Invalid {name}: must be an integer")
    value = int(raw)
    if value < minimum:
        raise HttpError(400, f"Invalid {name}: must be at least {minimum}")
    return value


def page_args(
    query: Mapping[str, str], *, default_limit: int, max_limit: int
) -> tuple[int, int]:
    """(limit, offset) from a query; a limit above `max_limit` is clamped, not refused."""
    limit = int_param(query, "limit", default_limit, minimum=1)
    offset = int_param(query, "offset", 0, minimum=0)
    return min(limit, max_limit), offset


@dataclass(frozen=True)
class RateDecision:
    """Outcome of one request against a key's windows (the first window reports)."""

    allowed: bool
    limit: int | None
    remaining: int | None
    reset_s: float

    def reset_epoch(self) -> int:
        """Unix time at which a slot frees, as `X-RateLimit-Reset` carries it."""
        return int(math.ceil(time.time() + max(self.reset_s, 0.0)))


class KeyedRateLimits:
    """Independent sliding windows per key (API key, business, workspace).

    `windows` is a list of (limit, seconds); a None limit is lifted, so a
    benchmark can run unthrottled with the same code path.
    """

    def __init__(self, windows: Iterable[tuple[int | None, float]]) -> None:
        self._windows: list[tuple[int, float]] = [
            (limit, seconds) for limit, seconds in windows if limit is not None
        ]
        self._by_key: dict[str, list[SlidingWindowLimiter]] = {}
        self._lock = threading.Lock()

    @property
    def windows(self) -> list[tuple[int, float]]:
        """The enforced (limit, seconds) windows, lifted ones left out."""
        return list(self._windows)

    def hit(self, key: str) -> RateDecision:
        """Count one request for `key`; denied as soon as one window is full."""
        with self._lock:
            limiters = self._by_key.get(key)
            if limiters is None:
                limiters = [SlidingWindowLimiter(n, s) for n, s in self._windows]
                self._by_key[key] = limiters
        if not limiters:
            return RateDecision(True, None, None, 0.0)
        first: RateDecision | None = None
        for limiter in limiters:
            allowed, remaining, reset_s = limiter.hit()
            if not allowed:
                return RateDecision(False, limiter.limit, 0, reset_s)
            if first is None:
                first = RateDecision(True, limiter.limit, remaining, reset_s)
        assert first is not None
        return first


class Clock:
    """'Now' for an emulator.

    Pinned (a `now` was given): seeded data is laid out relative to it and
    every later event gets `now` plus one more second, so tests see the same
    timestamps on every run. Unpinned: wall time, for the demo.
    """

    def __init__(self, now: datetime | None = None) -> None:
        self.pinned = now is not None
        start = now if now is not None else datetime.now(UTC).replace(microsecond=0)
        if start.tzinfo is None:
            start = start.replace(tzinfo=UTC)
        self.start = start.astimezone(UTC)
        self._ticks = 0
        self._lock = threading.Lock()

    def now(self) -> datetime:
        """The time of a new event (strictly increasing when pinned)."""
        if not self.pinned:
            return max(datetime.now(UTC), self.start)
        with self._lock:
            self._ticks += 1
            return self.start + timedelta(seconds=self._ticks)


def iso_z(moment: datetime) -> str:
    """UTC, whole seconds, 'Z' suffix: '2024-03-15T10:30:00Z'."""
    return moment.astimezone(UTC).replace(tzinfo=None, microsecond=0).isoformat() + "Z"


def iso_ms(moment: datetime) -> str:
    """UTC with milliseconds, as JavaScript's toISOString(): '2026-01-15T09:00:00.000Z'."""
    moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.isoformat(timespec="milliseconds") + "Z"


def key_map(
    api_keys: Iterable[str] | Mapping[str, str] | None, default: str, owner: str
) -> dict[str, str]:
    """Normalize `api_keys` to {key: owner}.

    A mapping says which business/workspace a key belongs to (limits and data
    are per owner); a plain set gives every key its own owner.
    """
    if api_keys is None:
        return {default: owner}
    if isinstance(api_keys, Mapping):
        return dict(api_keys)
    if isinstance(api_keys, str):
        return {api_keys: api_keys}
    return {key: key for key in api_keys}
