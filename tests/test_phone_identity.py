"""A phone is an identity only when it is a real number (docs/identity.md, "Which records take part").

Five strangers who typed the placeholder `555-CALL-NOW`, and five who typed
the docs' fictional `+1 555 0100`, stay separate outcomes: quarantined when
that phone was all they gave, one person each when they gave an email. It
is checked from raw AgentClara payloads through the normalizers and the
state store (SQLite and PostgreSQL, against the in-memory reference rule),
then through `daily_sync` to the HubSpot and Salesforce emulators over
HTTP. A store written by the old rule (a person keyed by the placeholder,
its CRM records synced) is resolved again on the next run from the kept
raw payloads: nothing is sent for the old key, its CRM records stay as they
are, and the run's report lists them. Last, hypothesis draws contacts: no
two different valid emails ever share a person, no invalid phone ever keys
or joins one.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import phonenumbers
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from simple_salesforce import Salesforce

from pipelines.state import StateStore
from pipelines.state.store import Normalized
from pipelines.state.tables import records
from connectors.clairo import brief_contact as clairo_brief_contact
from pipelines.steps.normalize import normalize_pending
from pipelines.steps.persons import rebuild_persons
from pipelines.summary import summarize
from sandbox.seed import PLACEHOLDER_PHONES, PeoplePool, format_phone
from connectors.agentclara import normalize as agentclara
from connectors.agentpro import normalize as agentpro
from schemas.errors import InvalidRecord
from schemas.fields import normalize_phone
from schemas.identity import canonical_person_key, group_persons, merge_person
from tests.pipeline_runs import step_metadata
from tests.test_cross_source import agentclara as agentclara_raw
from tests.test_cross_source import land
from tests.test_rekey import DAYS, Box, box  # noqa: F401  (box: the fixture, with HubSpot and Salesforce)

NAMES = ("Ada Byrne", "Bo Chen", "Cy Diaz", "Di Evans", "Ed Fox")
PLACEHOLDERS = ("555-CALL-NOW", "+1 555 0100")
# What contact v2 made of "555-CALL-NOW": keypad digits, a full-length +1 number.
LETTERS_E164 = "+15552255669"
OLD_KEY = f"phone:{LETTERS_E164}"
LEFT = "CRM records left behind (their person no longer exists)"
STRANGERS_DOMAIN = "strangers.example.org"  # no seeded person has it


def strangers(phone: str, *, emailed: bool) -> list[tuple[str, str, dict[str, Any]]]:
    """Five AgentClara contacts with different names and the same placeholder phone."""
    tag = "".join(ch for ch in phone if ch.isalnum()).lower()
    return [agentclara_raw(f"cust_{tag}_{'e' if emailed else 'n'}{i}", name=name, phone=phone,
                           email=f"{name.split()[0].lower()}.{tag}@example.com" if emailed else None)
            for i, name in enumerate(NAMES)]


@pytest.mark.parametrize("phone", PLACEHOLDERS)
def test_five_strangers_with_a_placeholder_phone_stay_five_outcomes(store_url: str, phone: str) -> None:
    alone, emailed = strangers(phone, emailed=False), strangers(phone, emailed=True)
    store = StateStore(store_url)
    persons = land(store, alone + emailed)

    assert store.quarantine_reasons("agentclara") == {"no_valid_email_or_phone": 5}
    assert sorted(persons) == sorted(f"email:{payload['email']}" for _, _, payload in emailed)
    for _, _, payload in emailed:
        person = persons[f"email:{payload['email']}"]
        assert person["source_ids"] == {"agentclara": [payload["id"]]} and person["phone"] is None
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(records.c.phone, records.c.data).where(records.c.stream == "contacts")).all()
    assert [(r.phone, r.data["warnings"]) for r in rows] == [(None, ["invalid_phone"])] * 5
    assert persons == group_persons(canonical([payload for _, _, payload in alone + emailed]))


def test_an_email_less_placeholder_does_not_join_the_one_emailed_person_who_typed_it(store_url: str) -> None:
    records = [agentclara_raw("cust_fay", name="Fay Gill", email="fay@example.com", phone="555-CALL-NOW"),
               agentclara_raw("cust_gus", name="Gus Hale", phone="555-CALL-NOW")]
    store = StateStore(store_url)
    persons = land(store, records)
    assert list(persons) == ["email:fay@example.com"]
    assert persons["email:fay@example.com"]["source_ids"] == {"agentclara": ["cust_fay"]}
    assert store.quarantine_reasons("agentclara") == {"no_valid_email_or_phone": 1}


# --- every normalizer that reads a phone -------------------------------------------

AGENTPRO = {"id": "conv-1", "chatbotId": "bot-1", "visitorName": "Ada Byrne", "channel": "web",
            "createdAt": "2026-11-19T07:55:00Z", "updatedAt": "2026-11-19T08:00:00Z"}
CLAIRO = {"id": "cm_1", "agentId": "cm_agent", "conversationId": "cm_1_conv", "createdAt": "2026-11-21T12:00:00Z"}
NORMALIZE_CONTACT = {
    "agentclara contact": lambda phone, email: agentclara.normalize_contact(
        {"id": "cust_1", "name": "Ada Byrne", "phone": phone, "email": email}),
    "agentclara conversation's customer": lambda phone, email: agentclara.contact_from_conversation(
        {"id": "conv_1", "customer_id": "cust_1", "customer_phone": phone, "customer_email": email}),
    "agentpro visitor": lambda phone, email: agentpro.contact_from_conversation(
        {**AGENTPRO, "visitorPhone": phone, "visitorEmail": email}),
    "clairo brief, by alias": lambda phone, email: clairo_brief_contact(
        {**CLAIRO, "answers": {"Phone number": phone, **({"email": email} if email else {})}}),
    "clairo brief, by shape": lambda phone, email: clairo_brief_contact(
        {**CLAIRO, "answers": {"anything else?": phone, **({"email": email} if email else {})}}),
}


@pytest.mark.parametrize("phone", [*PLACEHOLDERS, "+15551234567", "1-800-FLOWERS"])
@pytest.mark.parametrize("normalize", NORMALIZE_CONTACT.values(), ids=NORMALIZE_CONTACT.keys())
def test_no_normalizer_keeps_a_placeholder_phone(normalize: Any, phone: str) -> None:
    with pytest.raises(InvalidRecord) as caught:
        normalize(phone, None)
    assert caught.value.reason == "no_valid_email_or_phone"
    contact = normalize(phone, "ada@example.com")
    assert contact["phone"] is None and canonical_person_key(contact["email"], contact["phone"]) == "email:ada@example.com"
    assert contact["source_id"] != f"phone:{LETTERS_E164}"  # the AgentPro visitor key is never the placeholder
    assert normalize("+1 (415) 555-2671", None)["phone"] == "+14155552671"


@pytest.mark.parametrize("phone", [*PLACEHOLDERS, "+15551234567"])
def test_a_conversation_s_phone_hint_is_never_a_placeholder(phone: str) -> None:
    assert agentclara.normalize_conversation(
        {"id": "conv_1", "customer_phone": phone, "timestamp": "2026-11-20T10:00:00Z"})["phone"] is None
    assert agentpro.normalize_conversation({**AGENTPRO, "visitorPhone": phone})["contact_source_id"] is None


# --- a store written by the old rule ----------------------------------------------


def write_old_rule(store: StateStore, ids: list[str], crm_ids: dict[str, str]) -> None:
    """What contact v2 left in a store: the strangers' records keyed by their shared placeholder, synced.

    Their raw payloads are the ones landed (marked normalized by v2); their
    records carry the phone v2 made of `555-CALL-NOW` and one person key;
    that person exists, and each target's sync row holds its CRM record.
    """
    with store.engine.connect() as conn:
        hashes = dict(conn.execute(sa.text(
            "SELECT record_id, payload_hash FROM raw_records WHERE source = 'agentclara' AND stream = 'contacts'"
        )).all())
    payloads = store.raw_payloads("agentclara", "contacts", ids)
    old = []
    for record_id in ids:
        as_v3 = agentclara.normalize_contact({**payloads[record_id], "phone": "+14155552671"})
        data = {**as_v3, "version": 2, "phone": LETTERS_E164, "warnings": []}
        old.append(Normalized("agentclara", "contacts", record_id, data, hashes[record_id], phone=LETTERS_E164,
                              person_key=OLD_KEY, link_id=record_id))
    store.save_normalized(2, old, [])
    store.save_persons([(OLD_KEY, merge_person(OLD_KEY, [n.data for n in old]))])
    for target, crm_id in crm_ids.items():
        store.record_sync(target, "contact", [(OLD_KEY, "synced-by-v2", True, crm_id, None, None, False)])


def test_an_old_rule_person_is_resolved_again_from_the_kept_payloads(store_url: str) -> None:
    """No source is called: re-normalizing the kept raw payloads (what each run does for an older version)."""
    store = StateStore(store_url)
    alone = strangers("555-CALL-NOW", emailed=False)
    land(store, alone)
    ids = [payload["id"] for _, _, payload in alone]
    write_old_rule(store, ids, {"hubspot": "901", "salesforce": "00Q901"})
    assert store.quarantine_reasons("agentclara") == {}

    normalize_pending(store, "agentclara", "contacts")
    stats = rebuild_persons(store)

    assert store.quarantine_reasons("agentclara") == {"no_valid_email_or_phone": 5}
    assert store.count("persons") == 0
    assert stats.as_metadata()[LEFT] == [f"hubspot 901: was {OLD_KEY}", f"salesforce 00Q901: was {OLD_KEY}"]
    assert {t: store.sync_rows(t, "contact", [OLD_KEY])[OLD_KEY].crm_id for t in ("hubspot", "salesforce")} == {
        "hubspot": "901", "salesforce": "00Q901"}  # kept: not lost, and no person has the key to send it
    assert rebuild_persons(store).as_metadata()[LEFT] == []  # reported once, by the run that left them


def test_old_records_of_a_source_not_normalized_this_run_key_no_one(store_url: str) -> None:
    """rebuild_persons alone (a `renormalize` of another source): the stored v2 records are migrated first."""
    store = StateStore(store_url)
    alone = strangers("555-CALL-NOW", emailed=False)
    land(store, alone)
    write_old_rule(store, [payload["id"] for _, _, payload in alone], {"hubspot": "901"})

    stats = rebuild_persons(store)

    assert stats.upgraded == 5 and store.count("persons") == 0
    assert stats.as_metadata()[LEFT] == [f"hubspot 901: was {OLD_KEY}"]
    with store.engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT schema_version, phone, person_key FROM records")).all()
    assert [tuple(row) for row in rows] == [(3, None, None)] * 5
    assert len(list(store.iter_pending_raw("agentclara", "contacts", 3))) == 1  # the raw payloads still wait


# --- through daily_sync, to HubSpot and Salesforce ------------------------------------


def insert_strangers(box: Box, phone: str, *, emailed: bool) -> list[str]:
    ids = []
    for name in NAMES:
        email = f"{name.split()[0].lower()}.{len(phone)}@{STRANGERS_DOMAIN}" if emailed else None
        ids += box.agentclara.insert_contacts(1, at="end", name=name, email=email, phone=phone)
    return ids


def test_five_strangers_through_daily_sync_are_five_outcomes_in_the_crms(box: Box) -> None:  # noqa: F811
    alone = [i for phone in PLACEHOLDERS for i in insert_strangers(box, phone, emailed=False)]
    emailed = [i for phone in PLACEHOLDERS for i in insert_strangers(box, phone, emailed=True)]
    box.run(DAYS[0])

    with box.store.engine.connect() as conn:
        quarantined = dict(conn.execute(sa.text(
            "SELECT record_id, reason FROM quarantine WHERE source = 'agentclara'")).all())
    assert all(quarantined.get(i) == "no_valid_email_or_phone" for i in alone), quarantined
    carriers = {i: [c["id"] for c in box.hubspot.contacts()
                    if f"agentclara:{i}" in (c["properties"].get("agent_sync_sources") or "").split(";")]
                for i in alone + emailed}
    assert all(not carriers[i] for i in alone)
    assert all(len(carriers[i]) == 1 for i in emailed) and len({carriers[i][0] for i in emailed}) == 10
    keys = [c["properties"].get("agent_sync_person_key") or "" for c in box.hubspot.contacts()]
    assert not [key for key in keys if key.startswith("phone:") and not real_number(key[6:])]
    leads = box.salesforce.records("Lead")
    assert not [lead for lead in leads if str(lead.get("Agent_Contact_Id__c")).startswith("phone:+1555")]
    assert len([lead for lead in leads if (lead.get("Email") or "").endswith(STRANGERS_DOMAIN)]) == 10


def seed_old_crm_records(box: Box, ids: list[str]) -> dict[str, str]:
    """The HubSpot contact and Salesforce Lead the old rule made of the strangers (through each CRM's API)."""
    sources = ";".join(f"agentclara:{i}" for i in ids)
    hubspot_id = box.hubspot.seed_contact({"agent_sync_person_key": OLD_KEY, "phone": LETTERS_E164,
                                           "agent_sync_sources": sources, "firstname": "Ada", "lastname": "Byrne"})
    sf = Salesforce(instance_url=box.env["SALESFORCE_INSTANCE_URL"], session_id=box.env["SALESFORCE_ACCESS_TOKEN"])
    sf.restful("composite/sobjects/Lead/Agent_Contact_Id__c", method="PATCH", json={"allOrNone": True, "records": [
        {"attributes": {"type": "Lead"}, "Agent_Contact_Id__c": OLD_KEY, "LastName": "Byrne",
         "Company": "[not provided]", "Phone": LETTERS_E164}]})
    return {"hubspot": hubspot_id, "salesforce": box.salesforce.find("Lead", "Agent_Contact_Id__c", OLD_KEY)["Id"]}


def test_an_old_rule_store_is_resolved_again_by_the_next_daily_sync(box: Box) -> None:  # noqa: F811
    ids = insert_strangers(box, "555-CALL-NOW", emailed=False)
    box.run(DAYS[0])
    crm_ids = seed_old_crm_records(box, ids)
    write_old_rule(box.store, ids, crm_ids)
    with box.store.engine.begin() as conn:  # every contact normalized by v2, as in a store from before v3
        stored = conn.execute(sa.text("UPDATE raw_records SET normalized_version = 2 "
                                      "WHERE source = 'agentclara' AND stream = 'contacts'")).rowcount
    before = (box.hubspot.find(agent_sync_person_key=OLD_KEY), box.salesforce.find("Lead", "Id", crm_ids["salesforce"]))
    counts = (len(box.hubspot.contacts()), len(box.salesforce.records("Lead")))

    second = box.run(DAYS[1])

    contacts = step_metadata(second, "agentclara_contacts")  # every one normalized again, from the kept payloads
    assert contacts["normalized"] + contacts["quarantined"] == stored and contacts["quarantined"] >= 5
    left = [f"{target} {crm_ids[target]}: was {OLD_KEY}" for target in ("hubspot", "salesforce")]
    assert box.store.count("persons", person_key=OLD_KEY) == 0
    assert sorted(step_metadata(second, "persons")[LEFT]) == left
    report = "\n".join(summarize(box.store, second.run_id).text())
    assert "CRM records left behind, their person no longer exists" in report and all(line in report for line in left)
    # Nothing sent for the old key, nothing else sent twice; the CRM records are left exactly as they were.
    assert box.hubspot.upserted[OLD_KEY] == 0 and box.salesforce.upsert_count("Lead", OLD_KEY) == 1
    assert (box.hubspot.find(agent_sync_person_key=OLD_KEY), box.salesforce.find("Lead", "Id", crm_ids["salesforce"])) \
        == before
    assert (len(box.hubspot.contacts()), len(box.salesforce.records("Lead"))) == counts
    for target in ("hubspot", "salesforce"):
        metadata = step_metadata(second, f"{target}_contacts")
        assert (metadata["created"], metadata["updated"]) == (0, 0), (target, metadata)
        assert box.store.sync_rows(target, "contact", [OLD_KEY])[OLD_KEY].crm_id == crm_ids[target]


# --- properties --------------------------------------------------------------------

EMAILS = [f"p{i}@example.com" for i in range(4)] + ["not-an-email", None]
PHONES = ["+14155552671", "(415) 555-2671", "+12125550100", "+44 20 7946 0958", "555-CALL-NOW",
          "+1 555 0100", "+15551234567", "1-800-FLOWERS", "12345", "+1 415 555 CALL", None]


@st.composite
def raw_contacts(draw: st.DrawFn) -> list[dict[str, Any]]:
    rows = draw(st.lists(st.tuples(st.sampled_from(EMAILS), st.sampled_from(PHONES) | st.text(max_size=16)),
                         min_size=1, max_size=12))
    return [{"id": f"c{i}", "name": f"Person {i}", "email": email, "phone": phone, "tags": [],
             "updated_at": f"2026-11-{10 + i:02d}T00:00:00Z"} for i, (email, phone) in enumerate(rows)]


def canonical(payloads: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found = []
    for payload in payloads:
        try:
            found.append(agentclara.normalize_contact(payload))
        except InvalidRecord:
            pass
    return found


def assert_the_rule_holds(persons: dict[str, dict[str, Any]], payloads: list[dict[str, Any]]) -> None:
    emails = {p["id"]: agentclara.normalize_contact({**p, "phone": "+14155552671"})["email"] for p in payloads}
    for key, person in persons.items():
        members = person["source_ids"].get("agentclara", [])
        assert len({emails[m] for m in members if emails[m]}) <= 1, (key, members)
        kind, _, value = key.partition(":")
        assert kind == "email" or real_number(value), key
        assert person["phone"] is None or real_number(person["phone"]), person


def real_number(e164: str) -> bool:
    """The rule's oracle, straight from libphonenumber (not through the code under test)."""
    return phonenumbers.is_valid_number(phonenumbers.parse(e164, None)) and e164 not in LETTER_NUMBERS


# What libphonenumber makes of the letter placeholders PHONES holds: valid or not, never an identity.
LETTER_NUMBERS = {"+15552255669", "+18003569377", "+14155552255"}


@settings(max_examples=150, deadline=None)
@given(raw_contacts())
def test_reference_rule_never_merges_two_emails_nor_keys_an_invalid_phone(payloads: list[dict[str, Any]]) -> None:
    assert_the_rule_holds(group_persons(canonical(payloads)), payloads)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw_contacts())
def test_the_store_never_merges_two_emails_nor_keys_an_invalid_phone(payloads: list[dict[str, Any]]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        store = StateStore(f"sqlite:///{Path(folder) / 'state.db'}")
        try:
            persons = land(store, [("agentclara", "contacts", p) for p in payloads])
            assert_the_rule_holds(persons, payloads)
            assert persons == group_persons(canonical(payloads))
        finally:
            store.dispose()


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="0123456789+-(). extCALNOWflowers", max_size=24))
@example("555-CALL-NOW")
@example("1-800-FLOWERS")
@example("+1 555 0100")
@example("+1 (415) 555-2671 ext. 12")
def test_a_phone_that_is_kept_is_a_real_number_typed_in_digits(text: str) -> None:
    phone = normalize_phone(text)
    assert phone is None or phonenumbers.is_valid_number(phonenumbers.parse(phone, None))
    letters = sum(ch.isalpha() for ch in text.lower().replace("ext", ""))
    assert phone is None or letters < 3, (text, phone)


# --- the sandbox's seeded people ------------------------------------------------------


def test_the_sandbox_seeds_real_numbers_for_people_and_placeholders_that_key_no_one() -> None:
    pool = PeoplePool()
    people = [pool.person(i) for i in [*range(2000), *range(1_000_000, 1_000_500)]]
    assert {p.country for p in people} == {"US", "CA", "GB", "AU", "DE", "FR"}
    assert all(normalize_phone(p.phone, None) == p.phone for p in people)
    written = [(p, format_phone(p, style)) for p in people[:300]
               for style in (range(8) if p.country in ("US", "CA") else (0, 1, 3))]  # "+cc ..." styles abroad
    assert all(normalize_phone(text, p.country) == p.phone for p, text in written)
    assert [normalize_phone(text) for text in PLACEHOLDER_PHONES] == [None] * len(PLACEHOLDER_PHONES)
    assert "555-CALL-NOW" in PLACEHOLDER_PHONES
