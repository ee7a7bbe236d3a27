"""One person across platforms: contacts from AgentClara, Clairo briefs and
AgentPro visitors resolved together (docs/identity.md).

First through the state store (raw payloads as each API returns them ->
the normalizers -> identity in SQL -> merged persons, on SQLite and
PostgreSQL, checked against the in-memory reference rule), then through the
real pipeline: the emulators, daily_sync in Dagster, and the contacts and
`agent_sync_sources` that reach the HubSpot emulator.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

import httpx

from pipelines.sources import CONTACT_SOURCES
from pipelines.state import StateStore
from pipelines.steps.normalize import NORMALIZERS, normalize_pending
from pipelines.steps.persons import rebuild_persons
from sandbox.clairo import DEFAULT_KEY as CLAIRO_KEY
from schemas.identity import group_persons
from schemas.registry import current_version
from tests.pipeline_runs import failure_messages, run_daily
from tests.test_sources_pipeline import PARTITION, Platforms

SHARED = "+12025550188"


def agentclara(record_id: str, *, email: str | None = None, phone: str | None = None,
               name: str = "Sam Mobile", updated: str = "2026-11-20T10:00:00Z") -> tuple[str, str, dict[str, Any]]:
    payload = {"id": record_id, "name": name, "email": email, "phone": phone, "tags": ["sms"],
               "created_at": "2026-01-05T09:00:00Z", "updated_at": updated}
    return "agentclara", "contacts", payload


def clairo(brief_id: str, answers: dict[str, str], created: str = "2026-11-21T12:00:00.000Z") -> tuple[str, str, dict[str, Any]]:
    payload = {"id": brief_id, "agentId": "cm_agent", "conversationId": f"{brief_id}_conv",
               "summary": "A lead.", "createdAt": created, "answers": answers}
    return "clairo", "briefs", payload


def agentpro(conversation_id: str, *, email: str | None = None, phone: str | None = None,
             name: str | None = None, updated: str = "2026-11-19T08:00:00.000Z") -> tuple[str, str, dict[str, Any]]:
    payload = {"id": conversation_id, "chatbotId": "bot-1", "sessionId": f"sess-{conversation_id}",
               "visitorName": name, "visitorEmail": email, "visitorPhone": phone, "channel": "web",
               "createdAt": "2026-11-19T07:55:00.000Z", "updatedAt": updated, "messageCount": 2}
    return "agentpro", "visitors", payload


def land(store: StateStore, records: Iterable[tuple[str, str, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """Raw payloads in, every source normalized, identities resolved: persons by key."""
    for source, stream, payload in records:
        store.save_raw(source, stream, [(payload["id"], payload)])
    for source in CONTACT_SOURCES:
        normalize_pending(store, source.name, source.contact_stream)
    rebuild_persons(store)
    return {key: person for chunk in store.iter_persons() for key, person in chunk}


def reference(records: Iterable[tuple[str, str, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """The same records through schemas.identity's in-memory reference rule."""
    return group_persons(NORMALIZERS[(source, stream)](payload) for source, stream, payload in records)


def test_an_sms_contact_and_a_clairo_lead_with_its_phone_are_one_person(store_url: str) -> None:
    records = [
        agentclara("cust_sms1", phone="(202) 555-0147"),
        clairo("cm_brief1", {"name": "Sam Mobile", "Email address": "Sam@Example.com",
                             "Phone number": "+1 202 555 0147", "company": "Acme", "budget": "$500/mo"}),
    ]
    store = StateStore(store_url)
    persons = land(store, records)
    assert list(persons) == ["email:sam@example.com"]
    person = persons["email:sam@example.com"]
    assert person["source_ids"] == {"agentclara": ["cust_sms1"], "clairo": ["cm_brief1"]}
    assert (person["phone"], person["company"], person["tags"]) == ("+12025550147", "Acme", ["sms"])
    assert persons == reference(records)
    # Both sit in the one canonical stream; each raw row is marked done under its own raw stream.
    assert store.count("records", stream="contacts") == 2
    assert not list(store.iter_pending_raw("clairo", "briefs", current_version("contact")))


def test_a_lead_whose_answers_lose_email_and_phone_leaves_the_person(store_url: str) -> None:
    store = StateStore(store_url)
    brief = {"name": "Sam Mobile", "email": "sam@example.com", "phone": "+1 202 555 0147"}
    land(store, [agentclara("cust_sms1", phone="(202) 555-0147"), clairo("cm_brief1", brief)])
    persons = land(store, [clairo("cm_brief1", {"name": "Sam Mobile", "email": "prefer not to say"})])
    assert store.quarantine_reasons("clairo") == {"no_valid_email_or_phone": 1}
    assert store.count("records", source="clairo") == 0
    assert list(persons) == ["phone:+12025550147"]  # the SMS contact stands alone again


def test_an_email_less_record_whose_phone_two_emailed_people_share_stays_its_own_person(store_url: str) -> None:
    records = [
        agentclara("cust_shared", phone=SHARED, name="Front Desk"),
        clairo("cm_ann", {"name": "Ann Lee", "email": "ann@example.com", "phone": SHARED}),
        agentpro("conv-bob", email="bob@example.com", phone="(202) 555-0188", name="Bob Stone"),
    ]
    persons = land(StateStore(store_url), records)
    assert set(persons) == {"email:ann@example.com", "email:bob@example.com", f"phone:{SHARED}"}
    assert persons[f"phone:{SHARED}"]["source_ids"] == {"agentclara": ["cust_shared"]}
    assert persons[f"phone:{SHARED}"]["email"] is None
    assert persons["email:ann@example.com"]["source_ids"] == {"clairo": ["cm_ann"]}
    assert persons == reference(records)


def test_two_emails_sharing_a_phone_never_merge(store_url: str) -> None:
    records = [
        clairo("cm_ann", {"name": "Ann Lee", "email": "ann@example.com", "phone": SHARED}),
        agentclara("cust_bob", email="bob@example.com", phone=SHARED, name="Bob Stone"),
    ]
    persons = land(StateStore(store_url), records)
    assert set(persons) == {"email:ann@example.com", "email:bob@example.com"}
    assert all(p["phone"] == SHARED and len(p["source_ids"]) == 1 for p in persons.values())
    assert persons == reference(records)


def test_an_agentpro_visitor_with_the_same_email_in_another_case_merges(store_url: str) -> None:
    records = [
        agentclara("cust_cara", email="cara@example.com", name="Cara Diaz"),
        agentpro("conv-1", email="Cara@Example.COM", name="Cara"),
        agentpro("conv-2", email="CARA@EXAMPLE.COM", name="Cara Diaz", updated="2026-11-22T08:00:00.000Z"),
    ]
    persons = land(StateStore(store_url), records)
    assert list(persons) == ["email:cara@example.com"]
    assert persons["email:cara@example.com"]["source_ids"] == {
        "agentclara": ["cust_cara"], "agentpro": ["email:cara@example.com"]}
    assert persons == reference(records)


def test_a_second_owner_of_the_phone_splits_the_email_less_record_off_on_the_next_run(store_url: str) -> None:
    store = StateStore(store_url)
    first = land(store, [agentclara("cust_sms1", phone=SHARED),
                         clairo("cm_ann", {"email": "ann@example.com", "phone": SHARED})])
    assert first["email:ann@example.com"]["source_ids"] == {"agentclara": ["cust_sms1"], "clairo": ["cm_ann"]}
    second = land(store, [agentpro("conv-bob", email="bob@example.com", phone=SHARED)])
    assert set(second) == {"email:ann@example.com", "email:bob@example.com", f"phone:{SHARED}"}
    assert second["email:ann@example.com"]["source_ids"] == {"clairo": ["cm_ann"]}
    assert second[f"phone:{SHARED}"]["source_ids"] == {"agentclara": ["cust_sms1"]}


def test_one_person_across_platforms_through_the_pipeline_to_hubspot(tmp_path: Path) -> None:
    box = Platforms(tmp_path)
    try:
        sms = box.agentclara.insert_contacts(1, at="end", name="Sam Mobile", email=None, phone="(202) 555-0147")[0]
        front_desk = box.agentclara.insert_contacts(1, at="end", name="Front Desk", email=None, phone="202-555-0188")[0]
        cara = box.agentclara.insert_contacts(1, at="end", name="Cara Diaz", email="cara.case@example.com", phone=None)[0]
        bot = box.agentpro.chatbots[0]["id"]
        box.agentpro.add_conversation(bot, visitor_email="bob.shared@example.com", visitor_phone=SHARED)
        box.agentpro.add_conversation(bot, visitor_email="Cara.Case@Example.COM", visitor_name="Cara")
        box.agentpro.add_conversation(bot, visitor_email="CARA.CASE@EXAMPLE.COM", visitor_name="Cara Diaz")
        clairo_url = box.env["CLAIRO_BASE_URL"]
        sam_brief = discover(clairo_url, ["Sam Mobile", "sam.mobile@example.com", "+1 202 555 0147", "Acme", "12", "$500"])
        discover(clairo_url, ["Ann Lee", "ann.shared@example.com", "+1 (202) 555-0188", "Lee & Co", "3", "€200"])

        result = run_daily(box.env, PARTITION)
        assert result.success, failure_messages(result)
        hubspot = box.hubspot

        def sources(**match: str) -> set[str]:
            found = hubspot.find(**match)
            assert found is not None, match
            return set(found["properties"]["agent_sync_sources"].split(";"))

        # AgentClara over SMS (phone only) + a Clairo brief by email with that phone: one contact, both ids.
        sam = hubspot.find(email="sam.mobile@example.com")
        assert sam["properties"]["phone"] == "+12025550147"
        assert sources(email="sam.mobile@example.com") == {f"agentclara:{sms}", f"clairo:{sam_brief}"}
        carrying_sms = [c["id"] for c in hubspot.contacts()
                        if f"agentclara:{sms}" in c["properties"].get("agent_sync_sources", "")]
        assert carrying_sms == [sam["id"]]
        # A phone two emailed people share: both stay themselves, the phone-only record stands alone.
        (ann,) = sources(email="ann.shared@example.com")
        assert ann.startswith("clairo:")
        assert sources(email="bob.shared@example.com") == {"agentpro:email:bob.shared@example.com"}
        assert sources(agent_sync_person_key=f"phone:{SHARED}") == {f"agentclara:{front_desk}"}
        # The same email typed in another case on AgentPro: one contact.
        assert sources(email="cara.case@example.com") == {f"agentclara:{cara}", "agentpro:email:cara.case@example.com"}
        emails = [c["properties"].get("email") for c in hubspot.contacts() if c["properties"].get("email")]
        assert len(emails) == len(set(emails))
        # The sandbox's own scripted overlaps (SMS regulars who filed a Clairo brief) merged too.
        both = [p for chunk in box.store.iter_persons() for _, p in chunk
                if {"agentclara", "clairo"} <= set(p["source_ids"])]
        assert len(both) >= 3
    finally:
        box.stop()


def discover(base_url: str, answers: list[str]) -> str:
    """Answer the Lead Qualifier's questions through Clairo's API; returns the brief it files."""
    with httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {CLAIRO_KEY}"}, timeout=10) as client:
        agents = client.get("/agents").json()["agents"]
        lead = next(a for a in agents if a["name"] == "Lead Qualifier")
        conversation_id = None
        for answer in answers:
            body = {"agentId": lead["id"], "message": answer, **({"conversationId": conversation_id} if conversation_id else {})}
            conversation_id = client.post("/discover", json=body).json()["conversationId"]
        brief = client.get("/briefs", params={"limit": 1}).json()["briefs"][0]
    assert brief["conversationId"] == conversation_id
    return brief["id"]

