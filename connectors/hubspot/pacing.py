"""HubSpot's pace, read from its own answers: the portal's window and its daily budget.

Every HubSpot answer says the portal's budget: `X-HubSpot-RateLimit-Max`
requests per `-Interval-Milliseconds`, `-Remaining` of them left in the
rolling window, and for private apps `-Daily` / `-Daily-Remaining`. So the
tier is learned, never configured: the limiter paces at what the portal
says (`RateLimiter.learn`), under `HUBSPOT_REQUESTS_PER_10S` as an upper
cap the user may set to leave room for other apps; the requests that other
apps of the portal have made in the window (the server's count beyond ours)
are left to them. The legacy `-Secondly` headers are not followed: current
private-app limits are per 10 s, and a per-second window would spread the
10-s burst for nothing.

The daily limit is shared by every app of the account and resets at
midnight in the portal's time zone: waiting seconds cannot help. A push
stops (QuotaExhausted, which the sink turns into PartialProgress with what
finished) once `-Daily-Remaining` is down to `DAILY_RESERVE_SHARE` of
`-Daily`, before HubSpot answers 429, and leaves that share to the other apps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

# The share of the portal's daily limit a push leaves to the portal's other apps.
DAILY_RESERVE_SHARE = 0.01


@dataclass(frozen=True)
class Budget:
    """What one answer said; None where it said nothing."""

    window_max: int | None = None
    window_s: float | None = None
    window_remaining: int | None = None
    daily: int | None = None
    daily_remaining: int | None = None

    @property
    def daily_reserve(self) -> int:
        """Calls left to the other apps of the portal: a share of the daily limit."""
        return int((self.daily or 0) * DAILY_RESERVE_SHARE)

    def daily_spent(self) -> bool:
        """Is the daily budget down to the reserve (the next call may be refused until midnight)?"""
        return self.daily_remaining is not None and self.daily_remaining <= self.daily_reserve


def read_budget(headers: Mapping[str, str] | None) -> Budget:
    """The rate-limit headers of one answer (names compared case-insensitively; junk ignored)."""
    found = {str(name).lower(): value for name, value in (headers or {}).items()}

    def number(name: str) -> int | None:
        raw = found.get(f"x-hubspot-ratelimit-{name}")
        try:
            value = int(float(str(raw).strip())) if raw is not None else None
        except ValueError:
            return None
        return value if value is not None and value >= 0 else None

    interval_ms = number("interval-milliseconds")
    return Budget(
        window_max=number("max"),
        window_s=interval_ms / 1000.0 if interval_ms else None,
        window_remaining=number("remaining"),
        daily=number("daily"),
        daily_remaining=number("daily-remaining"),
    )
