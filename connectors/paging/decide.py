"""The paginator's one decision, as a pure function: state and page in, next step out.

`decide(state, offset, page, seen=...)` looks at one page of an offset
listing and says which of its records are new and what to do next:

- `Continue(next_offset)`: the page was full and in place; read on.
- `Stop(reason)`: the listing is done (`EMPTY_PAGE`, `SHORT_PAGE`) or looping
  (`OFFSET_IGNORED`: two pages in a row repeat pages from other offsets;
  `NOT_ADVANCING`: too many pages in a row brought nothing new). The driver
  raises `PaginationLoop` ("Loop detected in pagination", as Meltano's
  `advance()`) or, asked to, stops and marks the listing truncated.
- `Jump(offset)`: the page shares no id with what was read, so records
  between may have been skipped (the list shifted under us): step back and
  re-read from there (a *recovery pass*, doubling the step while the page
  found is still past the frontier). The first one grows the overlap
  (`PageRules.grow_to`): the pages after it start at the new stride.

Nothing here does I/O or mutates its inputs, so each rule is unit-tested by
feeding pages to it (tests/test_paging.py). The state is a frozen dataclass;
`decide` returns the next one. The ids already yielded (`seen`) are the one
exception to "everything in the state": a listing may hold millions, and
copying them per page would be quadratic, so `decide` only reads them and
hands back the markers of the records it lets through, which the driver adds.

An item without a usable id (not an object, an id missing, null, a list) is
never an error: it is marked by a fingerprint of its content (`marker`),
which de-duplicates it and keeps the overlap check working across a run of
them; the consumer keeps it and normalization quarantines it.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Container, Hashable, NamedTuple, Sequence, Union

# The prefix of an item without a usable id: its position marker here, its raw key in the store.
from schemas.raw import NO_ID_PREFIX as NO_ID_MARKER


# A listing starts with one shared record per page boundary (1 % extra requests at limit=100): that is
# enough to see any shift, and a static list costs no more. A deletion behind the frontier then needs a
# recovery pass; after the first one the list is known to be changing, and the overlap grows to
# DEFAULT_OVERLAP (5 % extra), which absorbs up to four deletions per page without one.
START_OVERLAP = 1
DEFAULT_OVERLAP = 5
DEFAULT_MAX_RECOVERIES = 10
# Pages in a row that bring nothing new before we call it a loop. Only a
# broken server or a burst of thousands of inserts mid-listing gets here.
DEFAULT_MAX_STALE_PAGES = 100

Markers = tuple[Hashable, ...]


# -- the steps --------------------------------------------------------------


class StopReason(enum.Enum):
    """Why a listing stops: the end (`EMPTY_PAGE`, `SHORT_PAGE`) or a loop (`is_loop`)."""

    EMPTY_PAGE = "empty page"
    SHORT_PAGE = "short page"
    OFFSET_IGNORED = "offset ignored"  # pages repeat pages from other offsets
    NOT_ADVANCING = "not advancing"  # too many pages in a row brought nothing new

    @property
    def is_loop(self) -> bool:
        return self in (StopReason.OFFSET_IGNORED, StopReason.NOT_ADVANCING)


@dataclass(frozen=True)
class Continue:
    """Read the page at `next_offset` (the driver has usually fetched it already)."""

    next_offset: int


@dataclass(frozen=True)
class Stop:
    reason: StopReason


@dataclass(frozen=True)
class Jump:
    """Re-read from `offset`: the page just seen lies past a possible gap."""

    offset: int


Step = Union[Continue, Stop, Jump]


# -- the state --------------------------------------------------------------


@dataclass(frozen=True)
class PageRules:
    """What stays fixed over one listing."""

    limit: int  # records asked per page; a shorter page is the last
    overlap: int = 0  # records shared by consecutive pages: the shift detector
    id_key: str = "id"
    max_recoveries: int = DEFAULT_MAX_RECOVERIES
    max_stale_pages: int = DEFAULT_MAX_STALE_PAGES
    grow_to: int | None = None  # the overlap from the first recovery pass on (None: it stays)

    def __post_init__(self) -> None:
        if self.limit < 1:
            raise ValueError("limit must be >= 1")
        if not 0 <= self.overlap < self.limit:
            raise ValueError(f"overlap must be in [0, {self.limit}) for limit {self.limit}")
        if self.grow_to is not None and not self.overlap <= self.grow_to < self.limit:
            raise ValueError(f"grow_to must be in [{self.overlap}, {self.limit}) for overlap {self.overlap}")

    def grown(self) -> "PageRules":
        """The rules once the list has been seen changing: the larger overlap, for good."""
        if self.grow_to is None or self.grow_to == self.overlap:
            return self
        return replace(self, overlap=self.grow_to, grow_to=None)

    @property
    def stride(self) -> int:
        """How far apart consecutive pages start."""
        return self.limit - self.overlap


@dataclass(frozen=True)
class PageState:
    """Where one listing stands between two pages.

    Invariant: every marker the driver holds as seen lies at or before the
    frontier page (`anchor`). So a page sharing one with it cannot have
    skipped anything, and a page past a possible gap is not yielded: the
    forward re-read after the step back reads it again, in order.
    """

    rules: PageRules
    anchor: frozenset[Hashable] | None = None  # markers of the frontier page
    anchor_tail: Markers = ()  # its last `overlap` markers: the next page's planned head
    first: Markers | None = None  # markers of the page at offset 0
    prev: tuple[int, Markers] | None = None  # the previous page: (offset, markers)
    repeat_run: int = 0  # pages in a row that repeat a page from another offset
    seeking: bool = False  # stepping back after a possible gap
    seek_step: int = 0  # how far the latest step back went
    gap_offset: int = -1  # where the latest recovery began
    stale: int = 0  # pages in a row that brought nothing new
    recoveries: int = 0  # recovery passes begun (bounded by `max_recoveries`)
    position: tuple[int, Markers] | None = None  # end offset of the last accepted page, and its markers

    @classmethod
    def resumed(cls, rules: PageRules, offset: int, anchor: Markers) -> "PageState":
        """The state of a listing resumed at `offset`, whose page ending there held `anchor`."""
        return cls(rules, position=(offset, anchor)).with_frontier(anchor)

    def with_frontier(self, markers: Markers) -> "PageState":
        """This state with `markers` as the frontier page."""
        tail = markers[-self.rules.overlap :] if self.rules.overlap else ()
        return replace(self, anchor=frozenset(markers), anchor_tail=tail)


@dataclass(frozen=True)
class PageEvents:
    """What one page showed, for the listing's stats."""

    duplicates: int = 0  # repeats beyond the planned overlap
    without_id: int = 0  # new items marked by content
    shift: bool = False  # the overlap with the frontier page was not as planned
    recovery: bool = False  # a recovery pass began here
    unrecovered_gap: bool = False  # a possible skip, with the recovery budget spent
    offset_honoured: bool = False  # a page past 0 brought a new record with an id


class Decision(NamedTuple):
    records: list[Any]  # to yield, in page order
    step: Step
    state: PageState  # the state for the next page
    markers: Markers = ()  # of `records`: the driver adds them to what it has seen
    events: PageEvents = PageEvents()


# -- ids and markers --------------------------------------------------------


def record_id(record: Any, id_key: str = "id") -> Hashable | None:
    """The item's id, or None. Only non-blank strings and integers are ids (`1`, `1.0` and
    `True` are one dict key: no two records should share a position for that)."""
    rid = record.get(id_key) if isinstance(record, Mapping) else None
    if isinstance(rid, bool) or not isinstance(rid, (str, int)) or rid == "":
        return None
    return rid


def marker(record: Any, id_key: str = "id") -> Hashable:
    """What de-duplicates an item and marks its position: its id, or for an item without one
    (not an object, a missing or unusable id) a fingerprint of its content. Such items are
    yielded like any other, never raised on: the consumer keeps them by content
    (pipelines/steps/ingest.py) and normalization quarantines them. A fingerprint keeps the
    overlap check working across a run of them at a page boundary."""
    rid = record_id(record, id_key)
    if rid is not None:
        return rid
    try:
        text = repr(record)
    except RecursionError:  # nested deeper than repr can go from this thread's stack
        text = _flat_repr(record)
    return NO_ID_MARKER + hashlib.sha1(text.encode("utf-8", "surrogatepass"), usedforsecurity=False).hexdigest()


def _flat_repr(value: Any) -> str:
    """A repr-like text of `value` built without recursion (lists, tuples and dicts walked
    with an explicit stack), so an item nested thousands deep still gets a fingerprint."""
    parts: list[str] = []
    stack: list[Any] = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, _Text):
            parts.append(item)
        elif isinstance(item, Mapping):
            stack.append(_Text("}"))
            for key, inner in reversed(list(item.items())):
                stack.extend((_Text(", "), inner, _Text(f"{key!r}: ")))
            stack.append(_Text("{"))
        elif isinstance(item, (list, tuple)):
            stack.append(_Text("]"))
            for inner in reversed(item):
                stack.extend((_Text(", "), inner))
            stack.append(_Text("["))
        else:
            parts.append(repr(item))
    return "".join(parts)


class _Text(str):
    """A piece of `_flat_repr`'s output, told apart from a string value still to be repr'd."""


def markers(page: Sequence[Any], id_key: str = "id") -> Markers:
    """The position markers of a page's items (`marker`), in order."""
    return tuple(marker(item, id_key) for item in page)


# -- the decision -----------------------------------------------------------


def decide(state: PageState, offset: int, page: Sequence[Any], *, seen: Container[Hashable] = frozenset()) -> Decision:
    """The records of `page` (read at `offset`) not yielded before, and the next step.

    `seen`: the markers yielded so far in this listing (read, never changed).
    The rules, in order: two repeats in a row of pages from other offsets
    stop it (`OFFSET_IGNORED`); a page sharing nothing with what was read
    jumps back (`_past_frontier`); otherwise its new records are taken
    (`_take`), and a short or empty page ends the listing, while too many
    pages in a row with nothing new are a loop (`NOT_ADVANCING`).
    """
    ids = markers(page, state.rules.id_key)
    repeat = offset > 0 and bool(ids) and _repeats(state, offset, ids)
    state = replace(state, repeat_run=state.repeat_run + 1 if repeat else 0, prev=(offset, ids))
    if state.repeat_run >= 2:  # one repeat alone can be an insert of exactly one stride
        return Decision([], Stop(StopReason.OFFSET_IGNORED), state)
    # (an empty page is checked too: a normal last page still holds the overlap)
    anchored = state.anchor is not None and state.rules.overlap > 0
    has_seen = any(i in seen for i in ids)
    budget_spent = False
    if anchored and not has_seen and offset > 0:
        jumped = _past_frontier(state, offset)
        if jumped is not None:
            return jumped
        budget_spent = True  # take the page as it is; the driver marks the listing truncated
    decision = _take(state, offset, page, ids, seen, anchored=anchored, has_seen=has_seen)
    if budget_spent:
        decision = decision._replace(events=replace(decision.events, shift=True, unrecovered_gap=True))
    return decision


def _repeats(state: PageState, offset: int, ids: Markers) -> bool:
    """Is this exactly a page we already had from another offset?"""
    if state.first is not None and ids == state.first:
        return True
    return state.prev is not None and ids == state.prev[1] and offset != state.prev[0]


def _past_frontier(state: PageState, offset: int) -> Decision | None:
    """Nothing on this page was read before: it lies past the frontier, and records between
    may have been skipped. Step back (doubling the step while seeking); None when the
    recovery budget is spent (the page is then taken as it is, the listing truncated)."""
    if state.seeking:
        step = state.seek_step * 2
        return Decision([], Jump(max(0, offset - step)), replace(state, seek_step=step))
    if state.recoveries >= state.rules.max_recoveries:
        return None
    stride = state.rules.stride  # back to where the page before began; forward again at the grown stride
    state = replace(state, rules=state.rules.grown(), recoveries=state.recoveries + 1, gap_offset=offset,
                    seeking=True, seek_step=stride)
    return Decision([], Jump(max(0, offset - stride)), state, events=PageEvents(shift=True, recovery=True))


def _take(
    state: PageState, offset: int, page: Sequence[Any], ids: Markers, seen: Container[Hashable],
    *, anchored: bool, has_seen: bool,
) -> Decision:
    """The page's new records, the frontier moved on, and Continue or Stop."""
    rules = state.rules
    k = rules.overlap
    planned = anchored and not state.seeking and len(ids) >= k and ids[:k] == state.anchor_tail
    shift = anchored and has_seen and not state.seeking and not planned
    records, added, duplicates, without_id, with_id = _dedupe(page, ids, seen, rules.id_key, skip=k if planned else 0)
    if not anchored or state.seeking or not has_seen or any(i in state.anchor for i in ids):  # type: ignore[operator]
        state = state.with_frontier(ids)
    # else: inserts pushed this page behind the frontier; keep the anchor
    state = replace(state, seeking=False)
    if offset == 0 and state.first is None:
        state = replace(state, first=ids)
    if ids:
        state = replace(state, position=(offset + len(page), ids))
    # Pages that bring nothing new, outside the catch-up after a recovery.
    state = replace(state, stale=0 if records or offset <= state.gap_offset else state.stale + 1)
    events = PageEvents(duplicates, without_id, shift=shift, offset_honoured=offset > 0 and with_id)
    if state.stale > rules.max_stale_pages:
        step: Step = Stop(StopReason.NOT_ADVANCING)
    elif len(page) >= rules.limit:
        step = Continue(offset + rules.stride)
    else:
        step = Stop(StopReason.SHORT_PAGE if page else StopReason.EMPTY_PAGE)
    return Decision(records, step, state, added, events)


def _dedupe(
    page: Sequence[Any], ids: Markers, seen: Container[Hashable], id_key: str, *, skip: int
) -> tuple[list[Any], Markers, int, int, bool]:
    """Items not yielded before (nor earlier on this page), their markers, the duplicates
    beyond the first `skip` (the planned overlap), how many new ones have no id, and
    whether any new one has an id."""
    records: list[Any] = []
    added: dict[Hashable, None] = {}
    duplicates = without_id = 0
    with_id = False
    for index, (item, mark) in enumerate(zip(page, ids)):
        if mark in seen or mark in added:
            if index >= skip:
                duplicates += 1
            continue
        if record_id(item, id_key) is None:
            without_id += 1
        else:
            with_id = True
        added[mark] = None
        records.append(item)
    return records, tuple(added), duplicates, without_id, with_id
