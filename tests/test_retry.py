"""The retry policy: which outcomes are retried, how long to wait, and the one
retry budget of SourceClient, driven through httpx.MockTransport (no server,
no real sleeping: the sleep and the limiter's clock are fakes)."""

from __future__ import annotations

import ssl
from email.utils import format_datetime
from datetime import datetime, timezone

import httpx
import pytest

from connectors.errors import (
    AuthError,
    NotFound,
    PayloadError,
    RequestError,
    RetriesExhausted,
    TransientError,
)
from connectors.http import SourceClient
from connectors.ratelimit import RateLimiter
from connectors.retry import WAIT_CAP_S, retry_delay, server_wait, should_retry

NOW = 1_700_000_000.0
SECRET = "sk_live_secret_key_123456"


class TestShouldRetry:
    @pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
    def test_retried_statuses(self, status: int) -> None:
        assert should_retry(status)

    @pytest.mark.parametrize("status", [200, 301, 400, 401, 403, 404, 409, 422, 501, 505])
    def test_final_statuses(self, status: int) -> None:
        assert not should_retry(status)

    @pytest.mark.parametrize(
        "exc",
        [
            httpx.ConnectError("refused"),
            httpx.ReadTimeout("slow"),
            httpx.ConnectTimeout("slow"),
            httpx.RemoteProtocolError("dropped"),
            httpx.ReadError("reset"),
            TransientError("x", "outage"),
        ],
    )
    def test_retried_exceptions(self, exc: BaseException) -> None:
        assert should_retry(exc)

    def test_not_retried_exceptions(self) -> None:
        assert not should_retry(ValueError("bug"))
        assert not should_retry(httpx.UnsupportedProtocol("ftp://"))
        tls = httpx.ConnectError("[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed")
        assert not should_retry(tls)
        wrapped = httpx.ConnectError("handshake")
        wrapped.__cause__ = ssl.SSLCertVerificationError("self-signed")
        assert not should_retry(wrapped)

    def test_bool_is_a_caller_bug(self) -> None:
        with pytest.raises(TypeError):
            should_retry(True)


class TestBackoff:
    @pytest.mark.parametrize(
        "attempt, ceiling", [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (5, 8.0), (7, 30.0), (20, 30.0)]
    )
    def test_full_jitter_bounds(self, attempt: int, ceiling: float) -> None:
        top = retry_delay(attempt, None, base=0.5, cap=30.0, rng=lambda: 1.0)
        bottom = retry_delay(attempt, None, base=0.5, cap=30.0, rng=lambda: 0.0)
        middle = retry_delay(attempt, None, base=0.5, cap=30.0, rng=lambda: 0.5)
        assert (bottom, middle, top) == (0.0, ceiling / 2, ceiling)

    def test_attempt_counts_from_one(self) -> None:
        with pytest.raises(ValueError):
            retry_delay(0, None)


class TestServerWait:
    def delay(self, headers: dict[str, str], status: int | None = 429, cap: float = 30.0) -> float:
        return retry_delay(1, headers, base=0.5, cap=cap, rng=lambda: 0.25, now=lambda: NOW, status=status)

    def test_retry_after_seconds(self) -> None:
        assert self.delay({"Retry-After": "3"}) == 3.0
        assert self.delay({"retry-after": "1.5"}) == 1.5

    def test_retry_after_is_capped(self) -> None:
        assert self.delay({"Retry-After": "120"}, cap=30.0) == 30.0

    def test_retry_after_http_date(self) -> None:
        when = datetime.fromtimestamp(NOW + 10, tz=timezone.utc)
        assert self.delay({"Retry-After": format_datetime(when, usegmt=True)}) == pytest.approx(10.0)

    def test_retry_after_date_in_the_past_means_now(self) -> None:
        when = datetime.fromtimestamp(NOW - 100, tz=timezone.utc)
        assert self.delay({"Retry-After": format_datetime(when, usegmt=True)}) == 0.0

    def test_retry_after_ms(self) -> None:
        assert self.delay({"retry-after-ms": "250"}) == 0.25

    def test_garbage_falls_back_to_backoff(self) -> None:
        assert self.delay({"Retry-After": "soon"}) == 0.25 * 0.5

    def test_rate_limit_reset_epoch_when_window_spent(self) -> None:
        headers = {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int(NOW + 7))}
        assert self.delay(headers, status=500) == pytest.approx(7.0)

    def test_rate_limit_reset_on_429_even_without_remaining(self) -> None:
        assert self.delay({"X-RateLimit-Reset": str(int(NOW + 4))}, status=429) == pytest.approx(4.0)

    def test_rate_limit_reset_ignored_on_500_with_budget_left(self) -> None:
        headers = {"X-RateLimit-Remaining": "12", "X-RateLimit-Reset": str(int(NOW + 50))}
        assert self.delay(headers, status=500) == 0.25 * 0.5

    def test_rate_limit_reset_as_delta(self) -> None:
        assert self.delay({"X-RateLimit-Reset": "12"}, status=429) == 12.0

    def test_retry_after_beats_reset(self) -> None:
        headers = {"Retry-After": "2", "X-RateLimit-Reset": str(int(NOW + 40)), "X-RateLimit-Remaining": "0"}
        assert self.delay(headers) == 2.0

    def test_no_headers(self) -> None:
        assert server_wait(None, now=NOW) is None
        assert server_wait({}, now=NOW) is None


class FakeTime:
    """A clock that only moves when someone sleeps; records every sleep."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def scripted(responses: list) -> tuple[httpx.MockTransport, list[httpx.Request]]:
    """A transport answering from a list (an httpx.Response, or an exception to raise)."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        item = responses[min(len(seen), len(responses)) - 1]
        if isinstance(item, Exception):
            raise item
        return item

    return httpx.MockTransport(handler), seen


def make_client(transport: httpx.MockTransport, fake: FakeTime, **options) -> SourceClient:
    limiter = RateLimiter([(1000, 60.0)], clock=fake.clock, sleep=fake.sleep)
    return SourceClient(
        service="demo",
        base_url="https://api.example.test",
        headers={"Authorization": f"Bearer {SECRET}"},
        limiter=limiter,
        sleep=fake.sleep,
        transport=transport,
        rng=lambda: 0.5,
        **options,
    )


OK = httpx.Response(200, json={"ok": True})


class TestRetryLoop:
    @pytest.mark.parametrize("failures_before_success", [0, 1, 2, 5])
    @pytest.mark.parametrize("failure", ["500", "503", "drop", "timeout"])
    def test_retries_then_succeeds(self, failures_before_success: int, failure: str) -> None:
        bad = {
            "500": httpx.Response(500, json={"error": "boom"}),
            "503": httpx.Response(503, text="unavailable"),
            "drop": httpx.RemoteProtocolError("Server disconnected"),
            "timeout": httpx.ReadTimeout("read timed out"),
        }[failure]
        transport, seen = scripted([bad] * failures_before_success + [OK])
        fake = FakeTime()
        client = make_client(transport, fake, max_attempts=6)
        assert client.get_json("/x") == {"ok": True}
        assert len(seen) == failures_before_success + 1
        assert client.stats.requests == failures_before_success + 1
        assert client.stats.retries == failures_before_success
        # our own backoff (rng=0.5): 0.25, 0.5, 1.0, 2.0, 4.0
        assert fake.sleeps == [0.5 * 0.5 * 2**i for i in range(failures_before_success)]

    def test_budget_is_max_attempts_then_retries_exhausted(self) -> None:
        transport, seen = scripted([httpx.Response(502, json={"error": "bad gateway"})])
        client = make_client(transport, FakeTime(), max_attempts=4)
        with pytest.raises(RetriesExhausted) as info:
            client.get_json("/x")
        assert len(seen) == 4
        assert info.value.last_status == 502
        assert "HTTP 502" in str(info.value) and "bad gateway" in str(info.value)
        assert "demo" in str(info.value)

    def test_exhausted_by_transport_errors_names_the_cause(self) -> None:
        transport, seen = scripted([httpx.ConnectError("connection refused")])
        client = make_client(transport, FakeTime(), max_attempts=3)
        with pytest.raises(RetriesExhausted, match="ConnectError") as info:
            client.get_json("/x")
        assert len(seen) == 3 and info.value.last_status is None
        assert client.stats.transport_errors == 3

    def test_429_pauses_the_limiter_for_retry_after(self) -> None:
        throttled = httpx.Response(429, headers={"Retry-After": "2"}, json={"error": "slow down"})
        transport, _ = scripted([throttled, OK])
        fake = FakeTime()
        client = make_client(transport, fake)
        assert client.get_json("/x") == {"ok": True}
        assert fake.sleeps == [2.0]  # slept by the limiter, so every thread waits
        assert client.stats.throttled == 1 and client.stats.retries == 1

    def test_retry_after_is_capped_by_backoff_cap(self) -> None:
        throttled = httpx.Response(429, headers={"Retry-After": "3600"})
        transport, _ = scripted([throttled, OK])
        fake = FakeTime()
        make_client(transport, fake, backoff_cap=30.0).get_json("/x")
        assert fake.sleeps == [30.0]

    def test_by_default_the_cap_is_the_one_every_transport_shares(self) -> None:
        throttled = httpx.Response(429, headers={"Retry-After": "3600"})
        transport, _ = scripted([throttled, OK])
        fake = FakeTime()
        client = make_client(transport, fake)
        client.get_json("/x")
        assert client.backoff_cap is WAIT_CAP_S and fake.sleeps == [WAIT_CAP_S]

    @pytest.mark.parametrize("status", [401, 403])
    def test_auth_errors_are_not_retried(self, status: int) -> None:
        transport, seen = scripted([httpx.Response(status, json={"error": f"Invalid API key {SECRET}"})])
        client = make_client(transport, FakeTime())
        with pytest.raises(AuthError) as info:
            client.get_json("/x")
        assert len(seen) == 1
        message = str(info.value)
        assert "demo" in message and str(status) in message
        assert SECRET not in message  # even when the server echoes it
        assert info.value.status == status

    def test_other_4xx_carry_the_body_message(self) -> None:
        transport, seen = scripted([httpx.Response(400, json={"success": False, "error": "Missing field: x"})])
        with pytest.raises(RequestError, match="Missing field: x") as info:
            make_client(transport, FakeTime()).get_json("/x")
        assert len(seen) == 1 and info.value.status == 400

    def test_404_is_not_found(self) -> None:
        transport, _ = scripted([httpx.Response(404, json={"error": "Conversation not found"})])
        with pytest.raises(NotFound, match="Conversation not found"):
            make_client(transport, FakeTime()).get_json("/conversations/c1")

    def test_malformed_json_is_a_payload_error(self) -> None:
        transport, seen = scripted([httpx.Response(200, content=b"{not json")])
        with pytest.raises(PayloadError) as info:
            make_client(transport, FakeTime()).get_json("/contacts")
        assert len(seen) == 1
        assert "demo" in str(info.value) and "/contacts" in str(info.value) and "200" in str(info.value)

    def test_every_attempt_goes_through_the_limiter(self) -> None:
        transport, _ = scripted([httpx.Response(500), httpx.Response(500), OK])
        fake = FakeTime()
        client = make_client(transport, fake)
        client.get_json("/x")
        assert client.limiter.granted == 3

    def test_repr_hides_the_key(self) -> None:
        transport, _ = scripted([OK])
        client = make_client(transport, FakeTime())
        assert SECRET not in repr(client)
        assert "demo" in repr(client)
