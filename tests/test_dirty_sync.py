"""Broken items in a page, end to end (issue 9): the AgentClara emulator serves a
contacts listing with the broken items of tests/test_dirty_data.py spliced in
across a page boundary -> real HTTP (httpx) -> `daily_sync` in process ->
state store (SQLite and PostgreSQL) -> HubSpot emulator (hubspot-api-client).

Every good contact still reaches HubSpot, the broken ones are counted as
quarantined with their reasons (asset metadata and the run summary), and
the listing is complete: one bad item costs nothing but itself.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Iterator

import pytest
import sqlalchemy as sa

from pipelines.state import StateStore
from pipelines.state.tables import records
from pipelines.summary import summarize
from sandbox.agentclara import AgentClaraApp
from sandbox.http import ServerThread
from sandbox.hubspot import DEFAULT_TOKEN, HubSpotApp
from connectors.agentclara import normalize as agentclara
from schemas.errors import InvalidRecord
from tests.pipeline_runs import failure_messages, run_daily, step_metadata
from tests.test_dirty_data import DIRTY

PARTITION = "2026-11-22"
CONTACTS = 220
BAD_AT = 90  # listing position of the first bad item: the bad run covers the page boundary (99, shared by pages 1 and 2)


@pytest.fixture
def platforms(tmp_path: Path) -> Iterator[tuple[AgentClaraApp, HubSpotApp, list[ServerThread]]]:
    clara = AgentClaraApp(contacts=CONTACTS, conversations=10)
    hubspot = HubSpotApp()
    servers = [ServerThread(clara).start(), ServerThread(hubspot).start()]
    yield clara, hubspot, servers
    for server in servers:
        server.stop()


def _seeded_good(clara: AgentClaraApp) -> set[str]:
    """Ids of the seeded contacts that normalize (the seed is messy on purpose: some never do)."""
    good = set()
    for contact_id in clara.contact_ids():
        try:
            agentclara.normalize_contact(clara.get_contact(contact_id))
        except InvalidRecord:
            continue
        good.add(contact_id)
    return good


def test_bad_items_in_a_page_are_quarantined_and_every_good_contact_reaches_hubspot(platforms, store_url: str) -> None:
    clara, hubspot, servers = platforms
    seeded_good = _seeded_good(clara)
    clara.inject_bad_contacts([item for item, _ in DIRTY.values()], at=BAD_AT)
    env = {"SYNC_DATABASE_URL": store_url, "AGENTCLARA_API_KEY": "ac_sandbox_key",
           "AGENTCLARA_BASE_URL": servers[0].url, "HUBSPOT_ACCESS_TOKEN": DEFAULT_TOKEN,
           "HUBSPOT_BASE_URL": servers[1].url}

    result = run_daily(env, PARTITION)
    assert result.success, failure_messages(result)
    read = step_metadata(result, "agentclara_contacts_raw")
    assert read["status"] == "success" and read["complete"] is True
    assert (read["shifts"], read["recovery_passes"]) == (0, 0)  # bad items still mark their page positions
    assert read["contacts read"] >= CONTACTS + len(DIRTY)

    store = StateStore(store_url)
    with store.engine.connect() as conn:
        normalized = {row.record_id: row.data for row in conn.execute(
            sa.select(records.c.record_id, records.c.data).where(
                records.c.source == "agentclara", records.c.stream == "contacts"))}
    dirty_good = {want.get("source_id") or item["id"] for item, want in DIRTY.values() if isinstance(want, dict)}
    assert seeded_good | dirty_good <= {data["source_id"] for data in normalized.values()}

    # Every person reached HubSpot, the dirty-but-usable ones with their cleaned text.
    emails = {c["properties"].get("email") for c in hubspot.contacts()}
    assert len(hubspot.contacts()) == store.count("persons") and set(hubspot.upserted.values()) == {1}
    for item, want in DIRTY.values():
        if isinstance(want, dict) and want.get("email", item["email"]):
            assert want.get("email", item["email"]) in emails, item["id"]
    cleaned = next(c for c in hubspot.contacts() if c["properties"].get("email") == "p14@example.com")
    assert cleaned["properties"]["firstname"] == "Jane" and cleaned["properties"]["lastname"] == "Doe"

    # The bad ones are counted, by reason, in the asset's metadata and the run's summary.
    contacts = step_metadata(result, "agentclara_contacts")
    bad = Counter(want for _, want in DIRTY.values() if isinstance(want, str))
    for reason, n in bad.items():
        if reason != "no_valid_email_or_phone":  # the seed has its own of those
            assert contacts["quarantine reasons"].get(reason) == n, reason
    assert contacts["quarantined"] == store.count("quarantine", source="agentclara", stream="contacts")
    summary = "\n".join(summarize(store, result.run_id).text())
    assert f"malformed_payload: {bad['malformed_payload']}" in summary
    assert f"invalid_id: {bad['invalid_id']}" in summary
