"""Chatloom's roadmap conversation export, one stream of its spec behind CHATLOOM_CONVERSATIONS:
AgentClara + Chatloom emulators -> daily_sync (Dagster, in process) -> state store -> HubSpot
emulator, over real HTTP.

With the flag, the export is listed (limit + offset, bare `{"conversations", "count"}`),
every conversation lands raw and normalized, one whose visitor an AgentClara contact
already knows is linked to that person and becomes a HubSpot engagement on their
contact. Without it, nothing changes: the export is never requested, nothing lands,
and the run history and summary have no Chatloom conversation step.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

import pytest
import sqlalchemy as sa

from connectors.chatloom import ChatloomSource
from connectors.declared import read_streams
from pipelines.state import StateStore
from pipelines.steps.read import Landing
from pipelines.summary import summarize
from sandbox.agentclara import DEFAULT_KEY as AGENTCLARA_KEY
from sandbox.agentclara import AgentClaraApp
from sandbox.chatloom import DEFAULT_KEY as CHATLOOM_KEY
from sandbox.chatloom import ChatloomApp
from sandbox.http import ServerThread
from sandbox.hubspot import DEFAULT_TOKEN, HubSpotApp
from tests.pipeline_runs import failure_messages, run_daily, step_metadata

PARTITION = "2026-11-22"
EXPORT = "/api/plugin/conversations"


class Box:
    def __init__(self, tmp_path: Path) -> None:
        self.agentclara = AgentClaraApp(contacts=40, conversations=10)
        self.chatloom = ChatloomApp(agents=3, conversations=9, now=datetime(2026, 11, 22, 18, tzinfo=timezone.utc))
        self.hubspot = HubSpotApp()
        self.servers = [ServerThread(app).start() for app in (self.agentclara, self.chatloom, self.hubspot)]
        self.db = f"sqlite:///{tmp_path / 'state.db'}"
        self.env = {
            "SYNC_DATABASE_URL": self.db,
            "AGENTCLARA_API_KEY": AGENTCLARA_KEY, "AGENTCLARA_BASE_URL": self.servers[0].url,
            "CHATLOOM_API_KEY": CHATLOOM_KEY, "CHATLOOM_BASE_URL": self.servers[1].url,
            "HUBSPOT_ACCESS_TOKEN": DEFAULT_TOKEN, "HUBSPOT_BASE_URL": self.servers[2].url,
        }
        self.store = StateStore(self.db)

    def count(self, table: str, stream: str) -> int:
        return self.store.count(table, source="chatloom", stream=stream)

    def export_requests(self) -> int:
        return sum(1 for _, path, _ in list(self.chatloom.request_log) if path == EXPORT)

    def stop(self) -> None:
        for server in self.servers:
            server.stop()


@pytest.fixture
def box(tmp_path: Path) -> Iterator[Box]:
    created = Box(tmp_path)
    yield created
    created.stop()


def test_the_export_pages_with_limit_and_offset_and_is_read_only_when_turned_on(tmp_path: Path) -> None:
    app = ChatloomApp(agents=2, conversations=130)
    store = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
    with ServerThread(app) as server:
        with ChatloomSource(CHATLOOM_KEY, server.url) as source:
            pages = list(source.iter_conversation_pages().pages())
            assert [len(page) for page in pages] == [100, 30]  # a page shorter than the limit is the last
            assert [c["id"] for page in pages for c in page] == app.conversation_ids()
            land = Landing(store, "chatloom")
            read_streams(source, land)
            assert set(land.streams) == {"agents"}  # the flagged stream is not read
        with ChatloomSource(CHATLOOM_KEY, server.url, streams_on=["conversations"]) as source:
            land = Landing(store, "chatloom")
            read_streams(source, land)
            assert land.streams["conversations"].records == 130 == store.count("raw_records", stream="conversations")


def _known_email(store: StateStore) -> tuple[str, str]:
    """An AgentClara person's email and person key, as the store has them after a run."""
    with store.engine.connect() as conn:
        return conn.execute(sa.text(
            "SELECT email, person_key FROM records WHERE source = 'agentclara' AND stream = 'contacts' "
            "AND email IS NOT NULL AND person_key IS NOT NULL ORDER BY record_id LIMIT 1")).one()


def test_with_the_flag_daily_sync_lands_chatloom_conversations_and_links_them(box: Box) -> None:
    env = {**box.env, "CHATLOOM_CONVERSATIONS": "1"}
    first = run_daily(env, PARTITION)
    assert first.success, failure_messages(first)
    listed = len(box.chatloom.conversation_ids())
    assert box.count("raw_records", "conversations") == listed == 9
    assert box.count("records", "conversations") == listed  # every one normalized, none quarantined
    assert step_metadata(first, "chatloom_conversations")["normalized"] == listed
    assert step_metadata(first, "chatloom_raw")["conversations read"] == listed
    assert box.export_requests() == 1  # one page: fewer than the limit

    email, person_key = _known_email(box.store)
    added = box.chatloom.add_conversation(visitor={"name": "A Regular", "email": email.upper()},
                                          started=datetime(2026, 11, 22, 9, tzinfo=timezone.utc))
    second = run_daily(env, PARTITION)
    assert second.success, failure_messages(second)
    with box.store.engine.connect() as conn:
        linked = conn.execute(sa.text("SELECT person_key, event_day FROM records WHERE source = 'chatloom' "
                                      "AND stream = 'conversations' AND record_id = :id"), {"id": added}).one()
    assert tuple(linked) == (person_key, PARTITION)
    contact = box.hubspot.find("contacts", email=email)
    assert contact is not None
    on_contact = [record for kind in ("notes", "communications") for record in box.hubspot.objects(kind)
                  if box.hubspot.associated(kind, record["id"], "contacts") == [contact["id"]]]
    assert any("Happy to help with that." in str(record["properties"]) for record in on_contact)


def test_without_the_flag_nothing_changes(box: Box) -> None:
    result = run_daily(box.env, PARTITION)
    assert result.success, failure_messages(result)
    assert box.export_requests() == 0
    assert box.count("raw_records", "conversations") == box.count("records", "conversations") == 0
    assert box.count("raw_records", "agents") == 2  # the v1 inventory as before (one of three deleted)
    assert "skipped" in step_metadata(result, "chatloom_conversations")
    steps = {row["step"] for row in box.store.run_history(result.run_id)}
    assert "chatloom_raw" in steps and "chatloom_conversations" not in steps
    (chatloom,) = [line for line in summarize(box.store, result.run_id).lines if line.name == "chatloom"]
    assert chatloom.status == "success" and len(chatloom.figures) == 1  # the read line alone, as before
    assert chatloom.figures[0].startswith("agents 2 read") and "conversations" not in chatloom.figures[0]
