"""The paginator's decision as a pure function: (state, offset, page) in, new
records and the next step out (Continue, Stop with a reason, Jump), with no
fetch, no thread and no server. One test class per rule of
`connectors.paging.decide` (the driver around it is tests/test_paging.py)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from connectors.paging import (
    NO_ID_MARKER,
    Continue,
    Jump,
    PageRules,
    PageState,
    Stop,
    StopReason,
    decide,
    marker,
    markers,
)

RULES = PageRules(limit=10, overlap=2, max_recoveries=3, max_stale_pages=2)


def recs(start: int, stop: int) -> list[dict]:
    return [{"id": f"r{i}"} for i in range(start, stop)]


def after(*pages: tuple[int, list[dict]], rules: PageRules = RULES) -> tuple[PageState, set]:
    """The state and seen set after feeding `pages` (offset, records) in order."""
    state, seen = PageState(rules), set()
    for offset, page in pages:
        decision = decide(state, offset, page, seen=seen)
        state = decision.state
        seen.update(decision.markers)
    return state, seen


class TestEmptyPage:
    def test_an_empty_first_page_ends_the_listing(self) -> None:
        decision = decide(PageState(RULES), 0, [])
        assert decision.step == Stop(StopReason.EMPTY_PAGE) and decision.records == []

    def test_an_empty_page_past_a_full_one_is_a_possible_gap_not_the_end(self) -> None:
        # a normal last page still holds the overlap, so an empty one means the list shrank
        state, seen = after((0, recs(0, 10)))
        decision = decide(state, 8, [], seen=seen)
        assert decision.step == Jump(0)

    def test_without_overlap_an_empty_page_is_the_end(self) -> None:
        rules = PageRules(limit=10, overlap=0)
        state, seen = after((0, recs(0, 10)), rules=rules)
        assert decide(state, 10, [], seen=seen).step == Stop(StopReason.EMPTY_PAGE)


class TestShortPage:
    def test_a_full_page_continues_one_stride_on(self) -> None:
        decision = decide(PageState(RULES), 0, recs(0, 10))
        assert decision.step == Continue(8)
        assert [r["id"] for r in decision.records] == [f"r{i}" for i in range(10)]

    def test_a_short_page_is_the_last(self) -> None:
        state, seen = after((0, recs(0, 10)))
        decision = decide(state, 8, recs(8, 13), seen=seen)
        assert decision.step == Stop(StopReason.SHORT_PAGE)
        assert [r["id"] for r in decision.records] == ["r10", "r11", "r12"]  # r8, r9: the planned overlap

    def test_the_page_size_is_the_limit_not_what_the_server_sends(self) -> None:
        assert decide(PageState(RULES), 0, recs(0, 9)).step == Stop(StopReason.SHORT_PAGE)
        assert decide(PageState(RULES), 0, recs(0, 11)).step == Continue(8)


class TestOffsetIgnored:
    def test_two_repeats_in_a_row_stop_as_a_loop(self) -> None:
        first = recs(0, 10)
        state, seen = after((0, first), (8, first))  # one repeat: may be an insert of one stride
        assert state.repeat_run == 1
        decision = decide(state, 16, first, seen=seen)
        assert decision.step == Stop(StopReason.OFFSET_IGNORED) and decision.step.reason.is_loop
        assert decision.records == []

    def test_one_repeat_alone_goes_on(self) -> None:
        first = recs(0, 10)
        state, seen = after((0, first))
        decision = decide(state, 8, first, seen=seen)
        assert decision.step == Continue(16) and decision.state.repeat_run == 1

    def test_a_fresh_page_resets_the_count(self) -> None:
        first = recs(0, 10)
        state, _ = after((0, first), (8, first), (16, recs(16, 26)))
        assert state.repeat_run == 0


class TestNotAdvancing:
    def test_pages_bringing_nothing_new_past_the_budget_are_a_loop(self) -> None:
        base = recs(0, 10)
        rotated = [base[(i + 3) % 10] for i in range(10)]  # the same records, other order: no repeat
        state, seen = after((0, base))
        steps = []
        for n in range(1, 4):
            decision = decide(state, 8 * n, rotated if n % 2 else base[::-1], seen=seen)
            state = decision.state
            steps.append(decision.step)
        assert steps[:2] == [Continue(16), Continue(24)]  # max_stale_pages=2
        assert steps[2] == Stop(StopReason.NOT_ADVANCING) and steps[2].reason.is_loop
        assert state.stale == 3

    def test_the_catch_up_after_a_recovery_is_not_stale(self) -> None:
        state = replace(PageState(RULES), gap_offset=40)
        seen = {f"r{i}" for i in range(10)}
        decision = decide(state, 24, recs(0, 10), seen=seen)
        assert decision.state.stale == 0 and decision.step == Continue(32)


class TestShiftDetection:
    def test_the_planned_overlap_is_no_shift_and_no_duplicate(self) -> None:
        state, seen = after((0, recs(0, 10)))
        decision = decide(state, 8, recs(8, 18), seen=seen)
        assert not decision.events.shift and decision.events.duplicates == 0
        assert decision.state.anchor == frozenset(markers(recs(8, 18)))

    def test_an_insert_shows_as_a_shifted_overlap_and_its_repeats_are_dropped(self) -> None:
        state, seen = after((0, recs(0, 10)))
        # one record inserted at the front: the page at 8 starts at r7
        decision = decide(state, 8, recs(7, 17), seen=seen)
        assert decision.events.shift and decision.step == Continue(16)
        assert [r["id"] for r in decision.records] == [f"r{i}" for i in range(10, 17)]
        assert decision.events.duplicates == 3  # r7, r8, r9: no planned overlap to excuse them

    def test_a_page_pushed_behind_the_frontier_keeps_the_anchor(self) -> None:
        state, seen = after((0, recs(0, 10)), (8, recs(8, 18)))
        # many inserts at the front: the page at 16 holds old records and two new ones
        decision = decide(state, 16, [{"id": "n0"}, {"id": "n1"}] + recs(0, 8), seen=seen)
        assert decision.state.anchor == state.anchor and decision.events.shift
        assert [r["id"] for r in decision.records] == ["n0", "n1"]

    def test_without_overlap_no_check(self) -> None:
        rules = PageRules(limit=10, overlap=0)
        state, seen = after((0, recs(0, 10)), rules=rules)
        decision = decide(state, 10, recs(50, 60), seen=seen)
        assert decision.step == Continue(20) and not decision.events.shift


class TestSkippedRecordsReRead:
    def test_a_page_sharing_nothing_steps_back_a_stride(self) -> None:
        state, seen = after((0, recs(0, 10)), (8, recs(8, 18)))
        decision = decide(state, 16, recs(30, 40), seen=seen)  # records deleted: r18.. may be skipped
        assert decision.step == Jump(8) and decision.records == []
        assert decision.events.shift and decision.events.recovery
        assert decision.state.seeking and decision.state.gap_offset == 16 and decision.state.recoveries == 1

    def test_still_past_the_frontier_doubles_the_step(self) -> None:
        state, seen = after((0, recs(0, 10)), (8, recs(8, 18)), (16, recs(30, 40)))
        decision = decide(state, 8, recs(40, 50), seen=seen)
        assert decision.step == Jump(0) and not decision.events.shift  # 8 - 16, floored at 0
        assert decision.state.seek_step == 16

    def test_the_page_that_overlaps_again_is_taken_and_reading_goes_forward(self) -> None:
        state, seen = after((0, recs(0, 10)), (8, recs(8, 18)), (16, recs(30, 40)))
        decision = decide(state, 8, recs(17, 27), seen=seen)
        assert decision.step == Continue(16) and not decision.state.seeking
        assert [r["id"] for r in decision.records] == [f"r{i}" for i in range(18, 27)]

    def test_the_recovery_budget_spent_takes_the_page_and_flags_it(self) -> None:
        state, seen = after((0, recs(0, 10)))
        state = replace(state, recoveries=RULES.max_recoveries)
        decision = decide(state, 8, recs(30, 40), seen=seen)
        assert decision.step == Continue(16) and len(decision.records) == 10
        assert decision.events.unrecovered_gap and decision.events.shift and not decision.events.recovery


class TestTheOverlapGrows:
    GROWING = PageRules(limit=10, overlap=1, max_recoveries=3, grow_to=3)

    def test_the_first_recovery_grows_the_overlap_and_steps_back_at_the_old_stride(self) -> None:
        state, seen = after((0, recs(0, 10)), (9, recs(9, 19)), rules=self.GROWING)
        decision = decide(state, 18, recs(30, 40), seen=seen)  # r19.. may be skipped
        assert decision.step == Jump(9) and decision.events.recovery
        assert decision.state.rules.overlap == 3 and decision.state.rules.grow_to is None

    def test_reading_goes_forward_at_the_grown_stride_and_plans_the_grown_overlap(self) -> None:
        state, seen = after((0, recs(0, 10)), (9, recs(9, 19)), (18, recs(30, 40)), rules=self.GROWING)
        back = decide(state, 9, recs(17, 27), seen=seen)  # two deleted: the page overlaps again
        assert back.step == Continue(16)  # 9 + (10 - 3)
        seen.update(back.markers)
        on = decide(back.state, 16, recs(24, 34), seen=seen)
        assert on.step == Continue(23) and not on.events.shift and on.events.duplicates == 0

    def test_an_insert_does_not_grow_it(self) -> None:
        state, seen = after((0, recs(0, 10)), rules=self.GROWING)
        decision = decide(state, 9, recs(8, 18), seen=seen)  # one record inserted before
        assert decision.events.shift and decision.state.rules.overlap == 1

    def test_grown_rules_stay_grown(self) -> None:
        grown = self.GROWING.grown()
        assert (grown.overlap, grown.stride, grown.grow_to) == (3, 7, None) and grown.grown() == grown
        assert RULES.grown() == RULES


class TestMarkers:
    def test_an_id_is_a_non_blank_string_or_an_integer(self) -> None:
        assert marker({"id": "a"}) == "a" and marker({"id": 7}) == 7
        for unusable in ({"id": ""}, {"id": True}, {"id": 1.0}, {"id": None}, {"id": ["a"]}, {}, "x", 7, None):
            assert str(marker(unusable)).startswith(NO_ID_MARKER), unusable

    def test_items_without_id_are_yielded_and_deduplicated_by_content(self) -> None:
        page = ["x", {"id": "a"}, {"name": "n"}, "x", None]
        decision = decide(PageState(RULES), 0, page)
        assert decision.records == ["x", {"id": "a"}, {"name": "n"}, None]
        assert decision.events.without_id == 3 and decision.events.duplicates == 1

    def test_an_item_nested_deeper_than_repr_can_go_is_fingerprinted_not_raised(self) -> None:
        deep: list = []
        inner = deep
        for _ in range(50_000):
            inner.append([])
            inner = inner[0]
        page = [{"x": deep}, {"x": [deep]}]
        decision = decide(PageState(RULES), 0, page)
        assert decision.records == page and decision.events.without_id == 2
        assert all(str(m).startswith(NO_ID_MARKER) for m in decision.markers)

    def test_the_markers_of_the_yielded_records_are_handed_back(self) -> None:
        page = [{"id": "a"}, {"id": "b"}, {"id": "a"}]
        decision = decide(PageState(RULES), 0, page, seen={"b"})
        assert decision.markers == ("a",) and decision.records == [{"id": "a"}]

    def test_offset_honoured_needs_a_new_record_with_an_id_past_offset_0(self) -> None:
        assert not decide(PageState(RULES), 0, recs(0, 3)).events.offset_honoured
        state, seen = after((0, recs(0, 10)))
        assert decide(state, 8, recs(8, 12), seen=seen).events.offset_honoured
        assert not decide(state, 8, recs(8, 10) + ["x"], seen=seen).events.offset_honoured


class TestPurity:
    def test_the_inputs_are_not_changed_and_the_answer_repeats(self) -> None:
        state, seen = after((0, recs(0, 10)))
        frozen_seen = set(seen)
        page = recs(8, 18)
        one, two = decide(state, 8, page, seen=seen), decide(state, 8, page, seen=seen)
        assert one == two and seen == frozen_seen and page == recs(8, 18)
        with pytest.raises(AttributeError):
            state.stale = 5  # type: ignore[misc]

    def test_a_resumed_state_checks_its_first_page_against_the_checkpoint(self) -> None:
        anchor = tuple(f"r{i}" for i in range(10, 20))
        state = PageState.resumed(RULES, 20, anchor)
        assert decide(state, 18, recs(18, 28), seen=set(anchor)).step == Continue(26)
        assert decide(state, 18, recs(40, 50), seen=set(anchor)).step == Jump(10)

    @pytest.mark.parametrize("limit, overlap", [(0, 0), (10, 10), (10, -1)])
    def test_rules_are_checked(self, limit: int, overlap: int) -> None:
        with pytest.raises(ValueError):
            PageRules(limit=limit, overlap=overlap)

    @pytest.mark.parametrize("grow_to", [0, 10])
    def test_the_grown_overlap_is_checked(self, grow_to: int) -> None:
        with pytest.raises(ValueError):
            PageRules(limit=10, overlap=1, grow_to=grow_to)
