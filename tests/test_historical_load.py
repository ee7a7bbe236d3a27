"""historical_load resumes where it was killed: sandbox AgentClara -> state store
-> HubSpot sandbox, over real HTTP, through Dagster.

Unit tests first, on fake fetch functions: the size probe (`estimate_size`)
and its request count; a pager's checkpoint (saved only once the consumer
has kept the page; resumed at the checkpoint minus the overlap; lists that
moved between the runs); the progress line. Then the round trip: a child
process runs historical_load until the emulator holds its page requests
past an offset, the child is killed, and an in-process run continues from
the checkpoint: it asks for nothing before it, lands every contact once,
sends HubSpot each person once, and clears the checkpoints. A daily run
next to a checkpoint neither uses nor clears it.

Run as a module, it is the kill test's child: `python -m tests.test_historical_load ENV_JSON`.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Iterator, Mapping

import dagster as dg
import pytest

from connectors.paging import OffsetPager, PagerStats, ResumePoint, estimate_size
from pipelines.definitions import build_definitions
from pipelines.state import StateStore
from pipelines.steps.checkpoint import HistoricalCheckpoints, Progress, checkpoint_name, saved_checkpoints
from sandbox.agentclara import AgentClaraApp
from sandbox.agentpro import DEFAULT_KEY as AGENTPRO_KEY
from sandbox.agentpro import AgentProApp
from sandbox.clairo import DEFAULT_KEY as CLAIRO_KEY
from sandbox.clairo import ClairoApp
from sandbox.http import Request, Response, ServerThread
from sandbox.hubspot import DEFAULT_TOKEN, HubSpotApp

# -- the size probe -------------------------------------------------------------


class Listing:
    """A server-side list of `n` records behind `fetch(offset, limit)`; counts calls."""

    def __init__(self, n: int, *, ignores_offset: bool = False) -> None:
        self.n, self.ignores_offset = n, ignores_offset
        self.calls: list[tuple[int, int]] = []
        self.lock = threading.Lock()
        self.ids = [f"r{i}" for i in range(n)]

    def __call__(self, offset: int, limit: int) -> list[dict]:
        with self.lock:
            self.calls.append((offset, limit))
            if self.ignores_offset:
                offset = 0
            return [{"id": rid} for rid in self.ids[offset : offset + limit]]


SIZES = [0, 1, 2, 3, 7, 100, 1000, 3001, 65_536, 123_457, 1_000_000]


class TestEstimateSize:
    @pytest.mark.parametrize("n", SIZES)
    def test_exact_with_about_two_log2_n_requests(self, n: int) -> None:
        listing = Listing(n)
        estimate = estimate_size(listing, precision=0)
        assert estimate.total == n
        assert estimate.requests <= 2 * math.log2(n + 1) + 3
        assert {limit for _, limit in listing.calls} == {1}

    @pytest.mark.parametrize("n", SIZES)
    def test_within_the_precision_with_fewer_requests(self, n: int) -> None:
        estimate = estimate_size(Listing(n), precision=0.01)
        assert estimate.total is not None and abs(estimate.total - n) <= max(1, 0.01 * n)
        assert estimate.low <= n <= estimate.high  # type: ignore[operator]
        assert estimate.requests <= 2 * math.log2(n + 1) + 3

    @pytest.mark.parametrize("n, start", [(10_000, 4_000), (10_000, 9_999), (10_000, 10_000), (3_000, 8_000)])
    def test_starting_from_a_known_offset(self, n: int, start: int) -> None:
        """A resumed listing probes from its checkpoint (which may lie past a list that shrank)."""
        listing = Listing(n)
        estimate = estimate_size(listing, start=start, precision=0)
        assert estimate.total == n
        assert listing.calls[0] == (start, 1)

    def test_a_server_that_ignores_offset_gets_no_estimate(self) -> None:
        estimate = estimate_size(Listing(500, ignores_offset=True))
        assert estimate.total is None and estimate.requests == 2

    def test_a_list_that_never_ends_gets_no_estimate(self) -> None:
        endless = lambda offset, limit: [{"id": f"r{offset}"}]  # noqa: E731
        estimate = estimate_size(endless, max_requests=30)
        assert estimate.total is None and estimate.requests == 30

    def test_the_pager_probes_before_paging_when_asked(self) -> None:
        listing = Listing(2_500)
        pager = OffsetPager(listing, page_size=100, max_page_size=100, estimate=True)
        assert sum(len(page) for page in pager) == 2_500
        probes = [call for call in listing.calls if call[1] == 1]
        assert listing.calls[: len(probes)] == probes  # all of them before the first page
        assert pager.stats.probe_requests == len(probes) and 0.98 * 2_500 <= pager.stats.estimated_total <= 1.02 * 2_500  # type: ignore[operator]

    def test_no_probe_by_default(self) -> None:
        listing = Listing(300)
        pager = OffsetPager(listing, page_size=100, max_page_size=100)
        list(pager)
        assert all(limit == 100 for _, limit in listing.calls) and pager.stats.estimated_total is None


# -- resuming a pager -------------------------------------------------------------


class MemoryCheckpoint:
    """A ListingCheckpoint in a dict, as the store keeps it (JSON round trip included)."""

    def __init__(self) -> None:
        self.value: dict[str, Any] | None = None
        self.saved: list[int] = []
        self.began: PagerStats | None = None

    def load(self) -> ResumePoint | None:
        return ResumePoint.from_json(self.value)

    def begin(self, stats: PagerStats) -> None:
        self.began = stats

    def save(self, point: ResumePoint) -> None:
        self.value = json.loads(json.dumps(point.as_json()))
        self.saved.append(point.offset)

    @property
    def offset(self) -> int | None:
        return None if self.value is None else self.value["offset"]


class MutableListing(Listing):
    def insert(self, at: int, count: int, prefix: str = "new") -> None:
        with self.lock:
            self.ids[at:at] = [f"{prefix}{len(self.ids)}_{i}" for i in range(count)]

    def delete(self, start: int, count: int) -> None:
        with self.lock:
            del self.ids[start : start + count]


def pager_on(listing: Listing, checkpoint: MemoryCheckpoint, **kw: Any) -> OffsetPager:
    kw.setdefault("page_size", 100)
    kw.setdefault("max_page_size", 100)
    kw.setdefault("overlap", 5)
    return OffsetPager(listing, checkpoint=checkpoint, **kw)


def land_until(pager: OffsetPager, landed: list[str], *, pages: int | None = None) -> None:
    """Consume pages like the Landing does; stop (as a kill would) while holding page `pages`+1."""
    for count, page in enumerate(pager, start=1):
        if pages is not None and count > pages:
            pager.close()
            return  # this page was never kept
        landed.extend(r["id"] for r in page)


class TestResume:
    def test_the_checkpoint_moves_only_once_the_consumer_asks_for_more(self) -> None:
        checkpoint = MemoryCheckpoint()
        pager = pager_on(Listing(1_000), checkpoint)
        next(pager)
        assert checkpoint.offset is None  # page 1 handed out, not yet kept
        next(pager)
        assert checkpoint.offset == 100  # page 1 (offsets 0..99) kept
        next(pager)
        assert checkpoint.offset == 195
        pager.close()
        assert checkpoint.saved == [100, 195]

    def test_a_listing_with_the_default_overlap_resumes_with_the_grown_one(self) -> None:
        checkpoint, listing = MemoryCheckpoint(), Listing(600)
        checkpoint.save(ResumePoint(300, tuple(listing.ids[200:300]), 300))
        pager = pager_on(listing, checkpoint, overlap=None)  # one record, five after a shift
        landed: list[str] = []
        land_until(pager, landed)
        assert landed == listing.ids[300:] and listing.calls[0] == (295, 100) and pager.overlap == 5

    @pytest.mark.parametrize("concurrency", [1, 4])
    def test_a_killed_listing_resumes_at_its_checkpoint_minus_the_overlap(self, concurrency: int) -> None:
        listing = Listing(3_000)
        checkpoint = MemoryCheckpoint()
        landed: list[str] = []
        land_until(pager_on(listing, checkpoint, concurrency=concurrency), landed, pages=12)
        assert checkpoint.offset == 11 * 95 + 100 == len(landed)
        assert checkpoint.value["records"] == len(landed)  # type: ignore[index]
        listing.calls.clear()

        second = pager_on(listing, checkpoint, concurrency=concurrency)
        land_until(second, landed)
        assert listing.calls[0] == (checkpoint.saved[11] - 5, 100)
        assert min(offset for offset, _ in listing.calls) == 1_140
        offsets = [offset for offset, _ in listing.calls]
        assert len(offsets) == len(set(offsets))  # none asked twice
        assert len(offsets) <= math.ceil((3_000 - 1_140 - 5) / 95) + concurrency - 1  # + prefetch past the end
        assert landed == listing.ids  # each record once, in order
        assert second.stats.resumed_from == 1_145 and second.stats.complete
        assert second.stats.shifts_detected == 0 and not second.stats.resume_restarted
        assert checkpoint.offset == 3_000 and checkpoint.value["records"] == 3_000  # type: ignore[index]

    def test_a_finished_listing_resumes_with_one_request(self) -> None:
        listing = Listing(950)
        checkpoint = MemoryCheckpoint()
        land_until(pager_on(listing, checkpoint), [])
        listing.calls.clear()
        again: list[str] = []
        land_until(pager_on(listing, checkpoint), again)
        assert again == [] and listing.calls == [(945, 100)]

    @pytest.mark.parametrize("inserted", [1, 50, 150, 400, 1_500])
    def test_inserts_before_the_checkpoint_between_runs(self, inserted: int) -> None:
        listing = MutableListing(2_000)
        original = list(listing.ids)
        checkpoint = MemoryCheckpoint()
        landed: list[str] = []
        land_until(pager_on(listing, checkpoint), landed, pages=8)
        listing.insert(300, inserted)
        second = pager_on(listing, checkpoint)
        land_until(second, landed)
        assert set(original) <= set(landed)
        # Found the checkpoint's page further on; the few older records that share
        # its first page with it are landed again (an idempotent upsert).
        assert len(landed) - len(set(landed)) < 100
        assert not second.stats.resume_restarted
        assert second.stats.start_offset >= second.stats.resumed_from - 5 + max(0, inserted - 200)  # type: ignore[operator]

    @pytest.mark.parametrize("deleted", [3, 40, 90, 300, 700])
    def test_deletes_before_the_checkpoint_between_runs(self, deleted: int) -> None:
        listing = MutableListing(2_000)
        checkpoint = MemoryCheckpoint()
        landed: list[str] = []
        land_until(pager_on(listing, checkpoint), landed, pages=8)
        listing.delete(0, deleted)
        live = list(listing.ids)
        second = pager_on(listing, checkpoint)
        land_until(second, landed)
        assert set(live) <= set(landed)  # nothing the deletes pulled back under the checkpoint is skipped
        assert not second.stats.resume_restarted and second.stats.complete
        assert second.stats.start_offset <= second.stats.resumed_from - 5 - deleted + 95  # type: ignore[operator]
        if deleted >= 5:
            assert second.stats.shifts_detected == 1 and second.stats.recovery_passes == 0

    def test_a_list_that_moved_too_far_is_read_again_from_the_start(self) -> None:
        listing = MutableListing(2_000)
        checkpoint = MemoryCheckpoint()
        landed: list[str] = []
        land_until(pager_on(listing, checkpoint), landed, pages=8)
        listing.insert(0, 10_000)  # further than the 41-page search reaches
        second = pager_on(listing, checkpoint)
        again: list[str] = []
        land_until(second, again)
        assert set(listing.ids) == set(again)  # the whole listing, read again
        assert second.stats.pages_fetched == 41 + math.ceil((12_000 - 5) / 95)
        assert second.stats.resume_restarted and second.stats.complete
        assert checkpoint.value["records"] == len(again)  # type: ignore[index]  # counted afresh

    def test_an_unreadable_checkpoint_starts_over(self) -> None:
        listing = Listing(300)
        checkpoint = MemoryCheckpoint()
        checkpoint.value = {"offset": "twelve"}
        landed: list[str] = []
        land_until(pager_on(listing, checkpoint), landed)
        assert listing.calls[0] == (0, 100) and landed == listing.ids

    def test_a_consumer_that_fails_keeps_the_page_before(self) -> None:
        checkpoint = MemoryCheckpoint()
        pager = pager_on(Listing(1_000), checkpoint)
        with pytest.raises(RuntimeError):
            for count, _page in enumerate(pager, start=1):
                if count == 4:
                    raise RuntimeError("the store went away")
        assert checkpoint.offset == 2 * 95 + 100


class TestProgress:
    def test_the_line_says_landed_rate_total_and_time_remaining(self) -> None:
        progress = Progress("AgentClara contacts", started=100.0, offset=30_000, landed=20_000, estimated_total=100_000)
        line = progress.line(now=120.0)
        assert "20,000 records landed this run" in line and "1,000 records/s" in line
        assert "of ~100,000 estimated, 30%" in line and "about 1 min 10 s remaining" in line

    def test_without_an_estimate(self) -> None:
        line = Progress("Clairo briefs", started=0.0, offset=500, landed=500).line(now=10.0)
        assert "total unknown" in line and "remaining" not in line

    def test_logged_every_interval_with_the_estimate(self, tmp_path: Path) -> None:
        now = [0.0]
        lines: list[str] = []
        log = type("Log", (), {"info": lambda self, m: lines.append(m), "warning": lambda self, m: lines.append(m)})()
        store = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
        checkpoints = HistoricalCheckpoints(store, "agentclara", label="AgentClara", log=log, every_s=10.0,
                                            clock=lambda: now[0])
        pager = checkpoints.attach("contacts", OffsetPager(Listing(1_000), page_size=100, max_page_size=100,
                                                           stream="contacts"))
        for _page in pager:
            now[0] += 4.0  # a page every 4 s: a line every third page
        assert lines[0] == (f"AgentClara contacts: about {pager.stats.estimated_total:,} records in the listing "
                            f"(estimated with {pager.stats.probe_requests} probe requests)")
        progress = [line for line in lines[1:] if "landed this run" in line]
        assert len(progress) == 3 and "remaining" in progress[0]
        assert saved_checkpoints(store) == {"historical:agentclara:contacts": {
            "offset": 1_000, "anchor": [f"r{i}" for i in range(990, 1_000)], "records": 1_000, "run_id": None}}
        metadata = checkpoints.metadata()
        assert metadata["contacts estimated total"] == pager.stats.estimated_total
        assert metadata["contacts checkpoint offset"] == 1_000

    def test_the_last_line_gives_the_rate_up_to_the_listings_last_page(self, tmp_path: Path) -> None:
        """A listing that ended long before the load did is not shown slowing down in its last line."""
        now = [0.0]
        lines: list[str] = []
        log = type("Log", (), {"info": lambda self, m: lines.append(m), "warning": lambda self, m: lines.append(m)})()
        store = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
        checkpoints = HistoricalCheckpoints(store, "agentclara", label="AgentClara", log=log, estimate=False,
                                            every_s=1_000.0, clock=lambda: now[0])
        pager = checkpoints.attach("contacts", OffsetPager(Listing(1_000), page_size=100, max_page_size=100,
                                                           stream="contacts"))
        for _page in pager:
            now[0] += 1.0  # ~100 records a second while it pages
        now[0] += 600.0  # then the load goes on with other listings
        checkpoints.log_done()
        rate = int(re.search(r"([\d,]+) records/s", lines[-1]).group(1).replace(",", ""))
        assert 90 <= rate <= 110, lines[-1]


    # Eight pages kept at the fresh listing's stride (99: one record of overlap) end at 7 * 99 + 100 = 793.
    @pytest.mark.parametrize("inserted, said", [
        (0, "resuming AgentClara contacts from offset 793 (793 records landed by an earlier run"),
        (400, "AgentClara contacts: the listing moved since the last run; its checkpoint's page is now at offset"),
        (10_000, "AgentClara contacts: the checkpoint's page is no longer near offset 793"),
    ])
    def test_a_resume_says_where_it_starts(self, tmp_path: Path, inserted: int, said: str) -> None:
        lines: list[str] = []
        log = type("Log", (), {"info": lambda self, m: lines.append(m), "warning": lambda self, m: lines.append(m)})()
        store = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
        listing = MutableListing(2_000)

        def attached() -> OffsetPager:
            checkpoints = HistoricalCheckpoints(store, "agentclara", label="AgentClara", log=log, estimate=False)
            pager = OffsetPager(listing, page_size=100, max_page_size=100, stream="contacts")
            return checkpoints.attach("contacts", pager)  # type: ignore[return-value]

        land_until(attached(), [], pages=8)
        listing.insert(0, inserted)
        land_until(attached(), [])
        assert any(line.startswith(said) for line in lines), lines
        assert store.get_checkpoint("historical:agentclara:contacts")["offset"] == 2_000 + inserted


# -- through Dagster, killed and resumed ------------------------------------------

CONTACTS = 2_000
GATE = 1_000  # page requests at or past this offset are held until the child is killed
# A fresh listing's pages start at 0, 99, 198, ... (one record of overlap): the last one below the
# gate is at 990 and ends at 1090. Resumed, the listing pages with the grown overlap of 5 (stride 95).
CHECKPOINT_AT_KILL = (GATE // 99) * 99 + 100


class GatedAgentClara(AgentClaraApp):
    """Holds contact page requests at offset >= `gate` (size probes pass); logs every list request."""

    def __init__(self, gate: int | None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.gate = gate
        self.holding = threading.Event()
        self.release = threading.Event()
        self.listed: list[tuple[int, int]] = []  # (offset, limit) of every GET /contacts, in arrival order

    def dispatch(self, request: Request) -> Response:
        if request.method == "GET" and request.path.rstrip("/") == "/contacts":
            offset, limit = int(request.query.get("offset", 0)), int(request.query.get("limit", 25))
            self.listed.append((offset, limit))
            if self.gate is not None and limit > 1 and offset >= self.gate:
                self.holding.set()
                self.release.wait(timeout=60)
                return self.error_response(503, "released after the client was killed")
        return super().dispatch(request)

    def pages_asked(self, since: int = 0) -> list[int]:
        return [offset for offset, limit in self.listed[since:] if limit > 1]


class Sandbox:
    def __init__(self, tmp_path: Path, contacts: int = CONTACTS, gate: int | None = None,
                 conversations: int = 0) -> None:
        # Server-side limits lifted: the client's own pacing is not what this is about.
        self.agentclara = GatedAgentClara(gate, contacts=contacts, conversations=conversations, per_minute=None,
                                          per_10s=None)
        self.hubspot = HubSpotApp()
        self.servers = [ServerThread(self.agentclara).start(), ServerThread(self.hubspot).start()]
        self.db = f"sqlite:///{tmp_path / 'state.db'}"
        self.env = {
            "SYNC_DATABASE_URL": self.db,
            "AGENTCLARA_API_KEY": "ac_sandbox_key",
            "AGENTCLARA_BASE_URL": self.servers[0].url,
            "HUBSPOT_ACCESS_TOKEN": DEFAULT_TOKEN,
            "HUBSPOT_BASE_URL": self.servers[1].url,
        }
        self.store = StateStore(self.db)

    def landed_ids(self) -> list[str]:
        import sqlalchemy as sa

        with self.store.engine.connect() as conn:
            return [row[0] for row in conn.execute(sa.text(
                "SELECT record_id FROM raw_records WHERE source = 'agentclara' AND stream = 'contacts'"))]

    def stop(self) -> None:
        self.agentclara.release.set()
        for server in self.servers:
            server.stop()


def run_historical(env: Mapping[str, str], instance: dg.DagsterInstance | None = None) -> dg.ExecuteInProcessResult:
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        job = build_definitions(env).resolve_job_def("historical_load")
        return job.execute_in_process(instance=instance or dg.DagsterInstance.ephemeral(), raise_on_error=False)
    finally:
        os.environ.clear()
        os.environ.update(saved)


def log_messages(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    return [entry.user_message for entry in instance.all_logs(run_id)]


def op_metadata(result: dg.ExecuteInProcessResult, step: str) -> dict[str, Any]:
    (event,) = [e for e in result.all_events if e.is_successful_output and e.step_key == step]
    return {k: v.value for k, v in event.event_specific_data.metadata.items()}


def wait_for(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.fixture
def gated(tmp_path: Path) -> Iterator[Sandbox]:
    box = Sandbox(tmp_path, gate=GATE)
    yield box
    box.stop()


def test_a_load_killed_halfway_resumes_from_its_checkpoint(gated: Sandbox) -> None:
    box, name = gated, checkpoint_name("agentclara", "contacts")
    env = {**os.environ, **box.env, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    child = subprocess.Popen([sys.executable, "-m", "tests.test_historical_load", json.dumps(box.env)],
                             env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert box.agentclara.holding.wait(timeout=120), "the child never reached the gate"
        # Every page below the gate is answered; the child lands them, then waits on the held one.
        wait_for(lambda: (box.store.get_checkpoint(name) or {}).get("offset") == CHECKPOINT_AT_KILL, 30,
                 f"the checkpoint to reach {CHECKPOINT_AT_KILL}")
    finally:
        child.kill()
        child.wait()
    assert len(set(box.landed_ids())) == CHECKPOINT_AT_KILL
    assert box.hubspot.upserted == {}  # killed while loading: nothing pushed yet
    assert box.store.get_checkpoint(name)["records"] == CHECKPOINT_AT_KILL

    box.agentclara.gate = None
    box.agentclara.release.set()
    before = len(box.agentclara.listed)
    instance = dg.DagsterInstance.ephemeral()
    result = run_historical(box.env, instance)
    assert result.success

    # The second run asked for no page before the checkpoint (minus the 5-record overlap).
    asked = box.agentclara.pages_asked(since=before)
    assert min(asked) == CHECKPOINT_AT_KILL - 5 and 0 not in asked
    # the pages from there to the end, plus what the pager's 8 workers asked for past the end
    assert len(asked) <= math.ceil((CONTACTS - CHECKPOINT_AT_KILL) / 95) + 8 < CONTACTS / 95
    probes = [offset for offset, limit in box.agentclara.listed[before:] if limit == 1]
    assert probes and min(probes) >= CHECKPOINT_AT_KILL - 5  # the size probe starts there too
    assert f"resuming AgentClara contacts from offset {CHECKPOINT_AT_KILL}" in "\n".join(
        log_messages(instance, result.run_id))

    # Every contact landed once; HubSpot got each person once.
    landed = box.landed_ids()
    assert sorted(landed) == sorted(box.agentclara.contact_ids()) and len(landed) == CONTACTS
    persons = box.store.count("persons")
    assert len(box.hubspot.contacts()) == persons > 0
    assert set(box.hubspot.upserted.values()) == {1}

    # The estimate and the resume point are in the load op's metadata; the checkpoints are gone.
    metadata = op_metadata(result, "load_agentclara")
    assert metadata["contacts resumed from offset"] == CHECKPOINT_AT_KILL
    assert 0.9 * CONTACTS <= metadata["contacts estimated total"] <= 1.1 * CONTACTS
    assert metadata["contacts records landed this run"] == CONTACTS - CHECKPOINT_AT_KILL
    assert saved_checkpoints(box.store) == {}


def test_a_daily_run_neither_uses_nor_clears_a_checkpoint(tmp_path: Path) -> None:
    from tests.pipeline_runs import run_daily

    box = Sandbox(tmp_path, contacts=300)
    try:
        name = checkpoint_name("agentclara", "contacts")
        box.store.set_checkpoint(name, {"offset": 200, "anchor": ["cust_x"], "records": 200})
        assert run_daily(box.env, "2026-11-22").success
        assert box.agentclara.pages_asked()[0] == 0
        assert all(limit > 1 for _, limit in box.agentclara.listed)  # no size probe either
        assert box.store.get_checkpoint(name) == {"offset": 200, "anchor": ["cust_x"], "records": 200}
    finally:
        box.stop()


def test_a_failed_load_keeps_its_checkpoints_and_a_successful_one_clears_them(tmp_path: Path) -> None:
    box = Sandbox(tmp_path, contacts=250)
    try:
        box.env["HUBSPOT_ACCESS_TOKEN"] = "wrong-token-0123456789"
        failed = run_historical(box.env)
        assert not failed.success
        name = checkpoint_name("agentclara", "contacts")
        assert box.store.get_checkpoint(name)["offset"] == 250
        box.env["HUBSPOT_ACCESS_TOKEN"] = DEFAULT_TOKEN
        before = len(box.agentclara.listed)
        assert run_historical(box.env).success
        assert box.agentclara.pages_asked(since=before) == [245]  # one page: the listing was done
        assert saved_checkpoints(box.store) == {}
    finally:
        box.stop()


def test_a_load_brings_every_conversation_as_one_activity_on_its_contact(tmp_path: Path) -> None:
    box = Sandbox(tmp_path, contacts=150, conversations=120)
    try:
        assert run_historical(box.env).success
        stored = {row.record_id: row for chunk in box.store.iter_conversations() for row in chunk}
        # Every conversation there is, whatever its day: no window in a historical load.
        assert set(stored) == set(box.agentclara.conversation_ids())
        linked = {cid: row for cid, row in stored.items() if row.person_key}
        assert linked
        engagements = box.hubspot.notes() + box.hubspot.communications()
        note_ids = {note["id"] for note in box.hubspot.notes()}
        by_key = {e["properties"]["agent_sync_activity_key"]: e for e in engagements}
        assert len(by_key) == len(engagements) == len(linked)
        for cid, row in linked.items():
            engagement = by_key[f"agentclara:{cid}"]
            contact_id = box.store.sync_rows("hubspot", "contact", [row.person_key])[row.person_key].crm_id
            kind = "notes" if engagement["id"] in note_ids else "communications"
            assert box.hubspot.associated(kind, engagement["id"], "contacts") == [contact_id]

        assert run_historical(box.env).success  # a second load sends nothing new
        assert len(box.hubspot.notes() + box.hubspot.communications()) == len(engagements)
        assert not box.hubspot.requests("POST", "/batch/update")
    finally:
        box.stop()


def test_every_sources_listings_are_checkpointed(tmp_path: Path) -> None:
    """Clairo and AgentPro listings are tracked like AgentClara's: a failed load keeps where each one stopped."""
    clairo, agentpro = ClairoApp(briefs=130, conversations=40, per_minute=None), \
        AgentProApp(chatbots=2, conversations=120, per_minute=None, per_second=None)
    servers = [ServerThread(clairo).start(), ServerThread(agentpro).start(), ServerThread(HubSpotApp()).start()]
    store_url = f"sqlite:///{tmp_path / 'state.db'}"
    env = {
        "SYNC_DATABASE_URL": store_url,
        "CLAIRO_API_KEY": CLAIRO_KEY, "CLAIRO_BASE_URL": servers[0].url + ClairoApp.BASE_PATH,
        "AGENTPRO_API_KEY": AGENTPRO_KEY, "AGENTPRO_BASE_URL": servers[1].url,
        "HUBSPOT_ACCESS_TOKEN": "wrong-token-0123456789", "HUBSPOT_BASE_URL": servers[2].url,
    }
    try:
        assert not run_historical(env).success  # loaded, then the push failed: checkpoints kept
        saved = saved_checkpoints(StateStore(store_url))
        expected = {checkpoint_name("clairo", "briefs"): 130,
                    checkpoint_name("clairo", "conversations"): len(list(clairo.conversation_ids()))}
        for bot in agentpro.chatbots:
            expected[checkpoint_name("agentpro", f"conversations[chatbot={bot['id']}]")] = len(
                list(agentpro.conversation_ids(bot["id"])))
        assert {name: value["records"] for name, value in saved.items()} == expected
    finally:
        for server in servers:
            server.stop()


if __name__ == "__main__":  # the kill test's child: env as JSON
    outcome = run_historical(json.loads(sys.argv[1]))
    sys.exit(0 if outcome.success else 1)
