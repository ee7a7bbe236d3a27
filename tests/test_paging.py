"""OffsetPager against fake fetch functions over an in-memory list that can
change between calls: stop rules, the page-size ceiling, de-duplication,
shifts from inserts and deletes (with skipped records recovered), a server
that ignores `offset`, and concurrent prefetch that keeps page order."""

from __future__ import annotations

import threading
from typing import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.errors import PaginationLoop, PayloadError
from connectors.paging import OffsetPager


class FakeList:
    """A server-side list; `before[n]` mutates it just before answering call n (0-based)."""

    def __init__(self, n: int, prefix: str = "r") -> None:
        self.records = [{"id": f"{prefix}{i}", "n": i} for i in range(n)]
        self.calls: list[tuple[int, int]] = []
        self.before: dict[int, Callable[[list[dict]], None]] = {}
        self.lock = threading.Lock()

    def __call__(self, offset: int, limit: int) -> list[dict]:
        with self.lock:
            index = len(self.calls)
            self.calls.append((offset, limit))
            hook = self.before.get(index)
            if hook:
                hook(self.records)
            return [dict(r) for r in self.records[offset : offset + limit]]

    def ids(self) -> list[str]:
        return [r["id"] for r in self.records]


def collect(pager: OffsetPager) -> list[str]:
    ids = [r["id"] for page in pager.pages() for r in page]
    assert len(ids) == len(set(ids)), "a record was yielded twice"
    return ids


def pager(fetch, **kw) -> OffsetPager:
    kw.setdefault("page_size", 100)
    kw.setdefault("max_page_size", 100)
    return OffsetPager(fetch, **kw)


class TestStopRules:
    def test_short_page_is_the_last(self) -> None:
        data = FakeList(250)
        p = pager(data, overlap=5)
        assert collect(p) == data.ids()
        assert data.calls == [(0, 100), (95, 100), (190, 100)]
        assert p.stats.complete and p.stats.truncated is None
        assert p.stats.pages_fetched == 3 and p.stats.records_yielded == 250

    def test_empty_first_page(self) -> None:
        data = FakeList(0)
        p = pager(data)
        assert collect(p) == []
        assert data.calls == [(0, 100)] and p.stats.complete

    def test_list_ending_on_a_page_boundary(self) -> None:
        data = FakeList(195)
        p = pager(data, overlap=5)
        assert collect(p) == data.ids()
        # the last page holds only the overlap: short, so the end (and no gap)
        assert data.calls == [(0, 100), (95, 100), (190, 100)] and p.stats.complete
        assert p.stats.duplicates_dropped == 0 and p.stats.recovery_passes == 0

    def test_single_short_page_needs_no_offset(self) -> None:
        data = FakeList(40)
        p = pager(data)
        assert collect(p) == data.ids()
        assert len(data.calls) == 1 and p.stats.offset_honoured is None

    def test_offset_honoured_is_reported(self) -> None:
        p = pager(FakeList(300))
        collect(p)
        assert p.stats.offset_honoured is True


class TestPageSizeCeiling:
    @pytest.mark.parametrize("page_size", [100, 101, 500, 10_000])
    def test_never_asks_above_the_documented_maximum(self, page_size: int) -> None:
        data = FakeList(1000)
        p = pager(data, page_size=page_size, max_page_size=100)
        assert collect(p) == data.ids()
        assert max(limit for _, limit in data.calls) == 100

    def test_smaller_page_size_is_used_as_is(self) -> None:
        data = FakeList(60)
        collect(pager(data, page_size=25, max_page_size=100))
        assert {limit for _, limit in data.calls} == {25}

    @pytest.mark.parametrize("overlap", [-1, 100, 150])
    def test_overlap_must_be_below_the_limit(self, overlap: int) -> None:
        with pytest.raises(ValueError):
            pager(FakeList(1), overlap=overlap)


class TestDedupe:
    def test_repeats_across_pages_are_dropped(self) -> None:
        r = [{"id": f"r{i}"} for i in range(30)]
        pages = {  # limit 10, overlap 2: offsets 0, 8, 16, 24; r3 and r5 come back mid-page
            0: r[0:10],
            8: r[8:11] + [r[3]] + r[11:17],
            16: r[15:19] + [r[5]] + r[19:24],
            24: r[22:30],
        }
        p = OffsetPager(lambda offset, limit: pages.get(offset, []), page_size=10, max_page_size=10, overlap=2)
        assert collect(p) == [f"r{i}" for i in range(30)]
        assert p.stats.duplicates_dropped == 2  # r3 and r5; the planned overlap is not counted

    def test_repeat_inside_one_page(self) -> None:
        page = [{"id": "a"}, {"id": "b"}, {"id": "a"}]
        p = OffsetPager(lambda o, l: page if o == 0 else [], page_size=10, max_page_size=10)
        assert collect(p) == ["a", "b"]
        assert p.stats.duplicates_dropped == 1

    def test_records_without_id_are_kept_and_counted(self) -> None:
        page = [{"id": "a"}, {"name": "no id"}]
        p = OffsetPager(lambda o, l: page if o == 0 else [], page_size=10, max_page_size=10)
        assert [r.get("id") for pg in p.pages() for r in pg] == ["a", None]
        assert p.stats.records_without_id == 1

    def test_malformed_pages_raise(self) -> None:
        with pytest.raises(PayloadError):
            list(OffsetPager(lambda o, l: {"data": []}, page_size=10, max_page_size=10).pages())

    def test_items_that_are_not_objects_are_yielded_for_quarantine(self) -> None:
        # issue 9: one bad item never stops its page (normalization quarantines it)
        page = ["x", {"id": "a"}, 7, {"id": ["a list"]}, None]
        p = OffsetPager(lambda o, l: page if o == 0 else [], page_size=10, max_page_size=10)
        assert [item for pg in p.pages() for item in pg] == page
        assert p.stats.records_without_id == 4 and p.stats.complete


def insert_front(n: int, tag: str) -> Callable[[list[dict]], None]:
    def hook(records: list[dict]) -> None:
        records[0:0] = [{"id": f"{tag}{i}"} for i in range(n)]

    return hook


def delete_range(start: int, stop: int) -> Callable[[list[dict]], None]:
    def hook(records: list[dict]) -> None:
        del records[start:stop]

    return hook


class TestShifts:
    def test_no_change_no_shift(self) -> None:
        p = pager(FakeList(1000))
        collect(p)
        assert p.stats.shifts_detected == 0 and p.stats.recovery_passes == 0

    @pytest.mark.parametrize("inserted", [1, 3, 7, 95, 250])
    def test_inserts_at_the_front_yield_no_duplicates(self, inserted: int) -> None:
        data = FakeList(500)
        original = data.ids()
        data.before[2] = insert_front(inserted, "new")
        p = pager(data, overlap=5)
        ids = collect(p)
        assert set(original) <= set(ids)
        assert p.stats.shifts_detected >= 1 and p.stats.complete

    def test_inserts_before_every_page(self) -> None:
        data = FakeList(800)
        original = data.ids()
        for call in range(1, 40):
            data.before[call] = insert_front(3, f"new{call}-")
        p = pager(data, overlap=5)
        ids = collect(p)
        assert set(original) <= set(ids) and p.stats.complete

    @pytest.mark.parametrize("deleted", [2, 5, 20, 99, 150, 400])
    def test_deletes_during_paging_skipped_records_are_recovered(self, deleted: int) -> None:
        data = FakeList(1000)
        # after two pages, records already read vanish from the head
        data.before[2] = delete_range(0, deleted)
        p = pager(data, overlap=5)
        ids = collect(p)
        survivors = data.ids()
        assert set(survivors) <= set(ids), sorted(set(survivors) - set(ids), key=lambda s: int(s[1:]))
        assert p.stats.complete
        if deleted > 5:  # beyond the overlap: a skip was possible and was recovered
            assert p.stats.recovery_passes >= 1

    def test_catch_up_after_a_long_step_back_is_not_a_loop(self) -> None:
        data = FakeList(5000)
        data.before[30] = delete_range(0, 1500)  # deep into the list, far behind us
        p = pager(data, overlap=5, max_stale_pages=3)
        ids = collect(p)
        assert set(data.ids()) <= set(ids)
        assert p.stats.recovery_passes == 1 and p.stats.complete

    def test_list_shrinks_below_the_next_offset(self) -> None:
        data = FakeList(200)
        data.before[2] = delete_range(0, 50)  # the page at 190 comes back empty
        p = pager(data, overlap=5)
        ids = collect(p)
        assert set(data.ids()) <= set(ids)
        assert p.stats.recovery_passes == 1 and p.stats.complete

    def test_deletes_and_inserts_mixed(self) -> None:
        data = FakeList(1200)
        for call in (2, 5, 8, 11):
            data.before[call] = delete_range(0, 30) if call % 2 else insert_front(4, f"n{call}-")
        original = data.ids()
        p = pager(data, overlap=5)
        ids = collect(p)
        assert set(original) & set(data.ids()) <= set(ids)
        assert p.stats.complete

    @pytest.mark.parametrize("overlap", [5, None])  # None: the default, one record growing to 5
    @pytest.mark.parametrize("seed", range(6))
    def test_never_silently_short(self, seed: int, overlap: int | None) -> None:
        """Whatever the churn, either every surviving record is read or the listing says it may be short."""
        import random

        rng = random.Random(seed)
        data = FakeList(1500)
        original = data.ids()
        for call in range(1, 60):
            roll = rng.random()
            if roll < 0.3:
                data.before[call] = delete_range(rng.randrange(0, 800), rng.randrange(800, 900))
            elif roll < 0.6:
                data.before[call] = insert_front(rng.randrange(1, 150), f"n{call}-")
        p = pager(data, overlap=overlap, concurrency=1 + seed % 3)
        ids = collect(p)
        missing = set(original) & set(data.ids()) - set(ids)
        assert not missing or not p.stats.complete

    def test_recovery_budget_spent_marks_truncated(self) -> None:
        data = FakeList(2000)
        for call in range(1, 500):
            data.before[call] = delete_range(0, 40)  # the list keeps sliding under us
        p = pager(data, overlap=5, max_recoveries=2)
        collect(p)
        assert p.stats.recovery_passes == 2
        assert p.stats.unrecovered_gaps >= 1
        assert not p.stats.complete and "skipped" in (p.stats.truncated or "")

    def test_overlap_zero_disables_shift_checks(self) -> None:
        data = FakeList(250)
        p = pager(data, overlap=0)
        assert collect(p) == data.ids()
        assert data.calls == [(0, 100), (100, 100), (200, 100)]


class TestDefaultOverlap:
    """Not given, the overlap is one record until a recovery pass shows the list changing, then 5."""

    @settings(max_examples=150, deadline=None)
    @given(
        size=st.integers(0, 700),
        page_size=st.integers(2, 60),
        churn=st.dictionaries(st.integers(1, 40), st.tuples(st.booleans(), st.integers(0, 700), st.integers(1, 30))),
        concurrency=st.integers(1, 3),
    )
    def test_whatever_the_churn_nothing_twice_and_never_silently_short(
        self, size: int, page_size: int, churn: dict[int, tuple[bool, int, int]], concurrency: int
    ) -> None:
        data = FakeList(size)
        original = data.ids()
        for call, (delete, at, count) in churn.items():
            data.before[call] = delete_range(at, at + count) if delete else insert_front(count, f"n{call}-")
        p = pager(data, page_size=page_size, max_page_size=page_size, on_loop="stop", concurrency=concurrency)
        ids = collect(p)  # asserts no record twice
        missing = set(original) & set(data.ids()) - set(ids)
        # (inserts of exactly one stride before two pages in a row look like a server ignoring `offset`:
        # the listing then stops as a loop, truncated, never complete)
        assert not missing or not p.stats.complete

    def test_a_list_that_holds_still_costs_one_record_per_page(self) -> None:
        data = FakeList(250)
        p = pager(data)
        assert collect(p) == data.ids()
        assert data.calls == [(0, 100), (99, 100), (198, 100)] and p.overlap == 1
        assert p.stats.shifts_detected == 0 and p.stats.duplicates_dropped == 0

    @pytest.mark.parametrize("concurrency", [1, 4])
    def test_a_deletion_is_recovered_and_grows_the_overlap_for_the_rest(self, concurrency: int) -> None:
        data = FakeList(1000)
        data.before[2] = delete_range(0, 1)  # one read record gone: the third page shares nothing
        p = pager(data, concurrency=concurrency)
        ids = collect(p)
        assert set(data.ids()) <= set(ids) and p.stats.complete
        assert p.stats.recovery_passes == 1 and p.overlap == 5
        offsets = [offset for offset, _ in data.calls]
        back = next(i for i in range(1, len(offsets)) if offsets[i] < offsets[i - 1])
        assert offsets[back] == 99  # the step back, at the stride it had (+ requests sent ahead before it)
        after = sorted(offsets[back:])
        assert {b - a for a, b in zip(after, after[1:])} == {95}  # then on at the grown one

    def test_a_list_that_keeps_changing_needs_one_recovery_not_one_per_deletion(self) -> None:
        data = FakeList(3000)
        for call in range(2, 60):
            data.before[call] = delete_range(0, 3)  # three read records gone before every page
        p = pager(data, max_recoveries=2)
        ids = collect(p)
        assert set(data.ids()) <= set(ids)
        assert p.stats.recovery_passes == 1 and p.stats.complete  # 3 deletions: within the grown overlap

    def test_a_small_page_grows_to_a_quarter_of_it(self) -> None:
        data = FakeList(200)
        data.before[2] = delete_range(0, 1)
        p = pager(data, page_size=12, max_page_size=12)
        assert set(data.ids()) <= set(collect(p)) and p.overlap == 3

    def test_a_page_of_one_record_has_no_overlap(self) -> None:
        data = FakeList(3)
        p = pager(data, page_size=1, max_page_size=1)
        assert collect(p) == data.ids() and p.overlap == 0


def ignores_offset(records: list[dict]) -> Callable[[int, int], list[dict]]:
    calls: list[int] = []

    def fetch(offset: int, limit: int) -> list[dict]:
        calls.append(offset)
        return [dict(r) for r in records[:limit]]

    fetch.calls = calls  # type: ignore[attr-defined]
    return fetch


class TestLoopDetection:
    def test_raises_when_offset_is_ignored(self) -> None:
        fetch = ignores_offset([{"id": f"r{i}"} for i in range(300)])
        p = pager(fetch)
        pages = p.pages()
        assert len(next(pages)) == 100  # the first page streams out before the loop shows
        with pytest.raises(PaginationLoop, match="ignore `offset`"):
            next(pages)
        assert p.stats.loop_detected and p.stats.offset_honoured is False

    def test_stop_mode_keeps_one_page_and_marks_truncated(self) -> None:
        fetch = ignores_offset([{"id": f"r{i}"} for i in range(300)])
        p = pager(fetch, on_loop="stop")
        ids = collect(p)
        assert ids == [f"r{i}" for i in range(100)]
        assert not p.stats.complete and "offset" in p.stats.truncated
        assert len(fetch.calls) == 3  # page one, the repeat, and one confirmation

    def test_no_false_alarm_when_the_list_fits_one_page(self) -> None:
        fetch = ignores_offset([{"id": f"r{i}"} for i in range(60)])
        p = pager(fetch, on_loop="raise")
        assert len(collect(p)) == 60 and p.stats.complete

    def test_a_list_that_never_advances_is_a_loop(self) -> None:
        base = [{"id": f"r{i}"} for i in range(10)]

        def rotating(offset: int, limit: int) -> list[dict]:
            k = (offset // 8) % 10
            return [dict(r) for r in base[k:] + base[:k]][:limit]

        p = OffsetPager(rotating, page_size=10, max_page_size=10, overlap=2, max_stale_pages=5)
        with pytest.raises(PaginationLoop, match="not advancing"):
            collect(p)

    def test_max_pages_truncates(self) -> None:
        p = pager(FakeList(1000), max_pages=3)
        assert len(collect(p)) == 100 + 99 + 99  # the default overlap of one record
        assert not p.stats.complete and "max_pages" in p.stats.truncated

    def test_pages_only_once(self) -> None:
        p = pager(FakeList(10))
        collect(p)
        with pytest.raises(RuntimeError):
            list(p.pages())


class TestConcurrency:
    @pytest.mark.parametrize("concurrency", [2, 4, 8])
    def test_same_records_in_the_same_order(self, concurrency: int) -> None:
        sequential = collect(pager(FakeList(2345)))
        data = FakeList(2345)
        p = pager(data, concurrency=concurrency)
        assert collect(p) == sequential
        assert p.stats.complete and max(l for _, l in data.calls) == 100

    def test_fetches_really_overlap(self) -> None:
        data = FakeList(1000)
        meet = threading.Barrier(2, timeout=10)  # the 2nd and 3rd pages must be in flight together

        def fetch(offset: int, limit: int) -> list[dict]:
            if offset in (95, 190):
                meet.wait()
            return data(offset, limit)

        p = pager(fetch, concurrency=2)
        assert collect(p) == data.ids()

    def test_page_order_kept_when_later_pages_arrive_first(self) -> None:
        data = FakeList(400)
        later_done = threading.Event()

        def fetch(offset: int, limit: int) -> list[dict]:
            if offset == 95:
                assert later_done.wait(timeout=10)  # answer page 2 only after page 3
            page = data(offset, limit)
            if offset == 190:
                later_done.set()
            return page

        p = pager(fetch, concurrency=4)
        assert collect(p) == data.ids()
        assert p.stats.shifts_detected == 0

    def test_short_list_costs_one_request(self) -> None:
        data = FakeList(30)
        collect(pager(data, concurrency=8))
        assert len(data.calls) == 1

    @pytest.mark.parametrize("concurrency", [2, 4])
    def test_shifts_recovered_under_concurrency(self, concurrency: int) -> None:
        data = FakeList(3000)
        original = data.ids()
        data.before[3] = insert_front(12, "new")
        data.before[6] = delete_range(0, 60)
        data.before[9] = delete_range(500, 520)
        p = pager(data, concurrency=concurrency)
        ids = collect(p)
        deleted = set(original) - set(data.ids())
        assert set(original) - deleted <= set(ids)
        assert p.stats.complete

    def test_a_fetch_error_propagates_and_stops(self) -> None:
        data = FakeList(1000)

        def fetch(offset: int, limit: int) -> list[dict]:
            if offset == 285:
                raise PayloadError("demo", "bad page")
            return data(offset, limit)

        p = pager(fetch, concurrency=4, overlap=5)
        got: list[str] = []
        with pytest.raises(PayloadError, match="bad page"):
            for page in p.pages():
                got.extend(r["id"] for r in page)
        assert got == data.ids()[:290]  # pages before the bad one, in order
        assert not p.stats.complete
