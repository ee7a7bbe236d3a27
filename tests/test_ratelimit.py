"""RateLimiter: every documented window kept at once, server pauses and
X-RateLimit budgets obeyed, thread-safe; all on a fake clock (exact, instant)."""

from __future__ import annotations

import random
import threading

import pytest

from connectors.ratelimit import MAX_OBSERVED_PAUSE_S, RateLimiter


class FakeTime:
    """A clock that moves only when slept on; remembers each thread's last reading."""

    def __init__(self, start: float = 0.0) -> None:
        self.now = start
        self.sleeps: list[float] = []
        self._lock = threading.Lock()
        self._local = threading.local()

    def clock(self) -> float:
        with self._lock:
            self._local.last = self.now
            return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            self.now += seconds

    @property
    def last_reading(self) -> float:
        return self._local.last


def grant_times(limiter: RateLimiter, fake: FakeTime, n: int) -> list[float]:
    times = []
    for _ in range(n):
        limiter.acquire()
        times.append(fake.last_reading)
    return times


def assert_windows_kept(times: list[float], windows: list[tuple[int, float]]) -> None:
    times = sorted(times)
    for limit, period in windows:
        for i, start in enumerate(times):
            inside = [t for t in times[i:] if t - start < period - 1e-9]
            assert len(inside) <= limit, f"{len(inside)} grants within {period}s from t={start}"


class TestWindows:
    def test_within_limit_no_wait(self) -> None:
        fake = FakeTime()
        limiter = RateLimiter([(3, 1.0)], clock=fake.clock, sleep=fake.sleep)
        assert [limiter.acquire() for _ in range(3)] == [0.0, 0.0, 0.0]
        assert fake.sleeps == []

    def test_waits_exactly_until_the_oldest_grant_expires(self) -> None:
        fake = FakeTime()
        limiter = RateLimiter([(3, 1.0)], clock=fake.clock, sleep=fake.sleep)
        grant_times(limiter, fake, 3)
        assert limiter.acquire() == 1.0
        assert fake.now == 1.0

    def test_burst_and_minute_windows_together(self) -> None:
        # AgentClara-shaped, scaled down: 10 per 60 s and a burst of 3 per 1 s.
        fake = FakeTime()
        windows = [(10, 60.0), (3, 1.0)]
        limiter = RateLimiter(windows, clock=fake.clock, sleep=fake.sleep)
        times = grant_times(limiter, fake, 11)
        assert times == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 60]
        assert_windows_kept(times, windows)

    def test_agentclara_limits_over_many_requests(self) -> None:
        fake = FakeTime()
        windows = [(1000, 60.0), (100, 10.0)]
        limiter = RateLimiter(windows, clock=fake.clock, sleep=fake.sleep)
        times = grant_times(limiter, fake, 1500)
        assert_windows_kept(times, windows)
        # 100 per 10 s is the binding limit for the first minute
        assert times[999] == 90.0 and times[1000] == 100.0

    def test_sliding_invariant_with_random_gaps(self) -> None:
        rng = random.Random(3)
        fake = FakeTime()
        windows = [(5, 2.0), (2, 0.3)]
        limiter = RateLimiter(windows, clock=fake.clock, sleep=fake.sleep)
        times = []
        for _ in range(200):
            fake.now += rng.choice([0.0, 0.0, 0.05, 0.4, 1.3])
            limiter.acquire()
            times.append(fake.last_reading)
        assert_windows_kept(times, windows)

    @pytest.mark.parametrize("windows", [[(0, 1.0)], [(5, 0.0)], [(5, -1.0)]])
    def test_rejects_bad_windows(self, windows: list[tuple[int, float]]) -> None:
        with pytest.raises(ValueError):
            RateLimiter(windows)


class TestServerPause:
    def test_pause_until_holds_the_next_acquire(self) -> None:
        fake = FakeTime()
        limiter = RateLimiter([(100, 1.0)], clock=fake.clock, sleep=fake.sleep)
        limiter.pause_until(5.0)
        assert limiter.acquire() == 5.0
        assert fake.now == 5.0
        assert limiter.acquire() == 0.0

    def test_a_shorter_pause_never_shortens_a_longer_one(self) -> None:
        fake = FakeTime()
        limiter = RateLimiter([(100, 1.0)], clock=fake.clock, sleep=fake.sleep)
        limiter.pause_for(4.0)
        limiter.pause_for(1.0)
        limiter.acquire()
        assert fake.now == 4.0

    def test_pause_holds_every_thread(self) -> None:
        fake = FakeTime()
        limiter = RateLimiter([(100, 1.0)], clock=fake.clock, sleep=fake.sleep)
        limiter.pause_until(3.0)
        readings: list[float] = []

        def worker() -> None:
            limiter.acquire()
            readings.append(fake.last_reading)

        threads = [threading.Thread(target=worker) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(readings) == 4 and min(readings) >= 3.0


class TestObservedBudget:
    WALL = 1_700_000_000.0

    def make(self) -> tuple[RateLimiter, FakeTime]:
        fake = FakeTime()
        limiter = RateLimiter(
            [(1000, 60.0)], clock=fake.clock, sleep=fake.sleep, wall_clock=lambda: self.WALL + fake.now
        )
        return limiter, fake

    def test_spent_budget_waits_for_reset(self) -> None:
        limiter, fake = self.make()
        limiter.observe(1000, 2, self.WALL + 10)
        assert limiter.acquire() == 0.0 and limiter.acquire() == 0.0
        assert limiter.acquire() == 10.0
        assert limiter.server_limit == 1000

    def test_after_reset_the_budget_is_forgotten(self) -> None:
        limiter, fake = self.make()
        limiter.observe(1000, 0, self.WALL + 5)
        limiter.acquire()
        assert fake.now == 5.0
        assert [limiter.acquire() for _ in range(20)] == [0.0] * 20

    def test_late_reply_for_the_same_window_cannot_raise_the_budget(self) -> None:
        limiter, fake = self.make()
        limiter.observe(1000, 1, self.WALL + 30)
        limiter.observe(1000, 50, self.WALL + 30)  # an older reply arriving late
        limiter.acquire()
        assert limiter.acquire() == 30.0

    def test_implausible_reset_is_capped(self) -> None:
        limiter, fake = self.make()
        limiter.observe(1000, 0, self.WALL + 86_400)
        assert limiter.acquire() == MAX_OBSERVED_PAUSE_S

    def test_reset_given_as_delta_seconds(self) -> None:
        limiter, fake = self.make()
        limiter.observe(None, 0, 6)
        assert limiter.acquire() == 6.0

    def test_missing_values_are_ignored(self) -> None:
        limiter, fake = self.make()
        limiter.observe(1000, None, None)
        assert limiter.acquire() == 0.0


class TestThreadSafety:
    def test_concurrent_acquires_keep_every_window(self) -> None:
        fake = FakeTime()
        windows = [(20, 10.0), (4, 1.0)]
        limiter = RateLimiter(windows, clock=fake.clock, sleep=fake.sleep)
        times: list[float] = []
        lock = threading.Lock()

        def worker() -> None:
            for _ in range(25):
                limiter.acquire()
                with lock:
                    times.append(fake.last_reading)

        threads = [threading.Thread(target=worker) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(times) == 100 and limiter.granted == 100
        assert_windows_kept(times, windows)
