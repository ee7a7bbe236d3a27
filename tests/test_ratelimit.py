"""RateLimiter: every documented window kept at once, server pauses and
X-RateLimit budgets obeyed, thread-safe; all on a fake clock (exact, instant)."""

from __future__ import annotations

import random
import threading

import pytest

from connectors.ratelimit import MAX_OBSERVED_PAUSE_S, WINDOW_MARGIN_S, RateLimiter


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
        limiter = RateLimiter([(3, 1.0)], clock=fake.clock, sleep=fake.sleep, margin_s=0)
        assert [limiter.acquire() for _ in range(3)] == [0.0, 0.0, 0.0]
        assert fake.sleeps == []

    def test_waits_exactly_until_the_oldest_grant_expires(self) -> None:
        fake = FakeTime()
        limiter = RateLimiter([(3, 1.0)], clock=fake.clock, sleep=fake.sleep, margin_s=0)
        grant_times(limiter, fake, 3)
        assert limiter.acquire() == 1.0
        assert fake.now == 1.0

    def test_burst_and_minute_windows_together(self) -> None:
        # AgentClara-shaped, scaled down: 10 per 60 s and a burst of 3 per 1 s.
        fake = FakeTime()
        windows = [(10, 60.0), (3, 1.0)]
        limiter = RateLimiter(windows, clock=fake.clock, sleep=fake.sleep, margin_s=0)
        times = grant_times(limiter, fake, 11)
        assert times == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 60]
        assert_windows_kept(times, windows)

    def test_agentclara_limits_over_many_requests(self) -> None:
        fake = FakeTime()
        windows = [(1000, 60.0), (100, 10.0)]
        limiter = RateLimiter(windows, clock=fake.clock, sleep=fake.sleep, margin_s=0)
        times = grant_times(limiter, fake, 1500)
        assert_windows_kept(times, windows)
        # 100 per 10 s is the binding limit for the first minute
        assert times[999] == 90.0 and times[1000] == 100.0

    def test_sliding_invariant_with_random_gaps(self) -> None:
        rng = random.Random(3)
        fake = FakeTime()
        windows = [(5, 2.0), (2, 0.3)]
        limiter = RateLimiter(windows, clock=fake.clock, sleep=fake.sleep, margin_s=0)
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
        limiter = RateLimiter([(100, 1.0)], clock=fake.clock, sleep=fake.sleep, margin_s=0)
        limiter.pause_until(5.0)
        assert limiter.acquire() == 5.0
        assert fake.now == 5.0
        assert limiter.acquire() == 0.0

    def test_a_shorter_pause_never_shortens_a_longer_one(self) -> None:
        fake = FakeTime()
        limiter = RateLimiter([(100, 1.0)], clock=fake.clock, sleep=fake.sleep, margin_s=0)
        limiter.pause_for(4.0)
        limiter.pause_for(1.0)
        limiter.acquire()
        assert fake.now == 4.0

    def test_pause_holds_every_thread(self) -> None:
        fake = FakeTime()
        limiter = RateLimiter([(100, 1.0)], clock=fake.clock, sleep=fake.sleep, margin_s=0)
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
            [(1000, 60.0)], clock=fake.clock, sleep=fake.sleep, margin_s=0, wall_clock=lambda: self.WALL + fake.now
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
        limiter = RateLimiter(windows, clock=fake.clock, sleep=fake.sleep, margin_s=0)
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


class TestOneMargin:
    """The one safety margin: every window kept WINDOW_MARGIN_S longer, the burst spent at once."""

    def test_the_burst_goes_at_once_then_the_sustained_rate(self) -> None:
        # AgentClara's documented windows, unpadded: 100 at t=0, then one
        # period plus the margin later the next 100, never more than 100 in a window.
        fake = FakeTime()
        windows = [(1000, 60.0), (100, 10.0)]
        limiter = RateLimiter(windows, clock=fake.clock, sleep=fake.sleep)
        times = grant_times(limiter, fake, 250)
        assert times[:100] == [0.0] * 100
        assert times[100] == pytest.approx(10.0 + WINDOW_MARGIN_S)
        assert times[200] == pytest.approx(2 * (10.0 + WINDOW_MARGIN_S))
        assert_windows_kept(times, [(limit, period + WINDOW_MARGIN_S) for limit, period in windows])

    def test_every_window_gets_the_same_margin(self) -> None:
        fake = FakeTime()
        limiter = RateLimiter([(2, 1.0), (3, 60.0)], clock=fake.clock, sleep=fake.sleep, margin_s=0.25)
        times = grant_times(limiter, fake, 4)
        assert times == [0.0, 0.0, 1.25, 60.25]
        assert limiter.windows == ((2, 1.0), (3, 60.0))  # the documented figures, unpadded

    def test_a_negative_margin_is_refused(self) -> None:
        with pytest.raises(ValueError):
            RateLimiter([(1, 1.0)], margin_s=-0.1)


class TestLearnedWindow:
    """A window the server publishes is the pace; the configured one of that period is its cap."""

    def make(self, windows=((250, 10.0),)) -> tuple[RateLimiter, FakeTime]:
        fake = FakeTime()
        return RateLimiter(list(windows), clock=fake.clock, sleep=fake.sleep, margin_s=0), fake

    def test_a_learned_limit_under_the_cap_is_the_pace(self) -> None:
        limiter, fake = self.make()
        assert limiter.learn(190, 10.0) == 190
        times = grant_times(limiter, fake, 200)
        assert times[189] == 0.0 and times[190] == 10.0
        assert limiter.pace == ((190, 10.0),)

    def test_the_cap_bounds_a_larger_learned_limit(self) -> None:
        limiter, fake = self.make(((100, 10.0),))
        assert limiter.learn(190, 10.0) == 100
        times = grant_times(limiter, fake, 101)
        assert times[99] == 0.0 and times[100] == 10.0

    def test_other_apps_share_is_left_to_them(self) -> None:
        limiter, fake = self.make()
        grant_times(limiter, fake, 10)
        # The server counts 60 in its window, we sent 10: others sent 50.
        assert limiter.learn(190, 10.0, remaining=130) == 140
        # They stop: the window is ours again.
        assert limiter.learn(190, 10.0, remaining=180) == 190

    def test_a_new_period_becomes_a_window_of_its_own(self) -> None:
        limiter, fake = self.make(((1000, 60.0),))
        grant_times(limiter, fake, 3)
        assert limiter.learn(5, 1.0) == 5
        times = grant_times(limiter, fake, 3)
        assert times == [0.0, 0.0, 1.0]  # 3 already in this second, so the 3rd waits
        assert (5, 1.0) in limiter.pace

    @pytest.mark.parametrize("limit, period", [(0, 10.0), (10, 0.0)])
    def test_nonsense_is_ignored(self, limit: int, period: float) -> None:
        limiter, _ = self.make()
        assert limiter.learn(limit, period) == 0
        assert limiter.pace == ((250, 10.0),)
