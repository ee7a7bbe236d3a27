"""Conversations in the state store, without any server: how a conversation finds its
person, the roll-ups folded into persons, the store's own v1 -> v2 upgrade, how a
newest-first listing is cut to a run's window, and contact v2 made current by
re-normalizing a store written with contact v1 through the `renormalize` job
(no source is called: none is even running).
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any, Iterable

import dagster as dg
import pytest
import sqlalchemy as sa

from pipelines.partitions import ReadWindow
from pipelines.renormalize import run as run_renormalize
from pipelines.sources import newest_first_in_window
from pipelines.state import StateStore
from pipelines.state import migrations, tables
from pipelines.steps.normalize import NORMALIZERS, normalize_conversations, normalize_pending
from pipelines.steps.persons import rebuild_persons
from schemas.contact import V1_KEYS
from schemas.errors import InvalidRecord
from schemas.hashing import content_hash
from schemas.identity import merge_person
from schemas.registry import current_version

SMS = "+12025550147"
CONTACT_VERSION = current_version("contact")


def agentclara_contact(cid: str, *, email: str | None = None, phone: str | None = None) -> dict[str, Any]:
    return {"id": cid, "name": "Sam Mobile", "email": email, "phone": phone,
            "created_at": "2026-11-01T10:00:00Z", "updated_at": "2026-11-01T10:00:00Z"}


def agentclara_conversation(cid: str, customer: str | None, *, channel: str = "sms", day: str = "2026-11-09",
                            email: str | None = None, phone: str | None = None) -> dict[str, Any]:
    return {"id": cid, "customer_id": customer, "customer_email": email, "customer_phone": phone,
            "channel": channel, "subject": "Booking", "timestamp": f"{day}T09:00:00Z", "status": "open",
            "messages": [{"id": f"{cid}_1", "sender": "customer", "content": "Hi", "timestamp": f"{day}T09:00:00Z"},
                         {"id": f"{cid}_2", "sender": "assistant", "content": "Hello!",
                          "timestamp": f"{day}T09:05:00Z"}]}


def clairo_brief(bid: str, conversation_id: str, answers: dict[str, str]) -> dict[str, Any]:
    return {"id": bid, "agentId": "cm_agent", "conversationId": conversation_id,
            "createdAt": "2026-11-08T16:00:00.000Z", "answers": answers}


def clairo_conversation(cid: str, *, day: str = "2026-11-08") -> dict[str, Any]:
    return {"id": cid, "agentId": "cm_agent", "status": "COMPLETED", "createdAt": f"{day}T15:50:00.000Z",
            "updatedAt": f"{day}T16:00:00.000Z",
            "messages": [{"role": "assistant", "content": "Your email?", "createdAt": f"{day}T15:50:00.000Z"},
                         {"role": "user", "content": "bo@example.com", "createdAt": f"{day}T16:00:00.000Z"}]}


def agentpro_visitor(cid: str, *, email: str | None = None, phone: str | None = None,
                     channel: str = "whatsapp", messages: bool = False) -> dict[str, Any]:
    item = {"id": cid, "chatbotId": "bot-1", "sessionId": f"sess-{cid}", "visitorName": "Ann Lee",
            "visitorEmail": email, "visitorPhone": phone, "channel": channel,
            "createdAt": "2026-11-07T08:00:00.000Z", "updatedAt": "2026-11-07T08:03:00.000Z", "messageCount": 2}
    if messages:
        item["messages"] = [{"id": "m1", "role": "user", "content": "Order status?", "createdAt": "2026-11-07T08:00:00.000Z"},
                            {"id": "m2", "role": "assistant", "content": "Shipped.", "createdAt": "2026-11-07T08:03:00.000Z"}]
    return item


RAW = [  # (source, raw stream, payload): every kind of link
    ("agentclara", "contacts", agentclara_contact("cust_ann", email="ann@example.com", phone=SMS)),
    ("agentclara", "contacts", agentclara_contact("cust_bad")),  # neither email nor phone: quarantined
    ("agentclara", "conversations", agentclara_conversation("conv_1", "cust_ann")),  # by customer_id
    ("agentclara", "conversations", agentclara_conversation("conv_2", "cust_bad", phone=SMS)),  # by phone hint
    ("agentclara", "conversations", agentclara_conversation("conv_3", "cust_gone", channel="email",
                                                            email="Ann@Example.com")),  # by email hint
    ("agentclara", "conversations", agentclara_conversation("conv_4", "cust_nobody", phone="+12025550199")),
    ("clairo", "briefs", clairo_brief("cm_b1", "cm_c1", {"email": "bo@example.com", "name": "Bo Li"})),
    ("clairo", "conversations", clairo_conversation("cm_c1")),  # the brief's conversation
    ("clairo", "conversations", clairo_conversation("cm_c2")),  # a support chat: nobody's
    ("agentpro", "visitors", agentpro_visitor("conv-ap1", email="ann@example.com")),
    ("agentpro", "conversations", agentpro_visitor("conv-ap1", email="ann@example.com", messages=True)),
]


def land(store: StateStore, raw: Iterable[tuple[str, str, dict[str, Any]]]) -> None:
    for source, stream, payload in raw:
        store.save_raw(source, stream, [(payload["id"], payload)])


def normalize_all(store: StateStore) -> None:
    for source, stream in NORMALIZERS:
        normalize_pending(store, source, stream)
    for source in ("agentclara", "clairo", "agentpro"):
        normalize_conversations(store, source, "conversations")


def persons_of(store: StateStore) -> dict[str, dict[str, Any]]:
    return {key: person for chunk in store.iter_persons() for key, person in chunk}


def links(store: StateStore) -> dict[str, str | None]:
    return {f"{row.source}:{row.record_id}": row.person_key
            for chunk in store.iter_conversations() for row in chunk}


def test_conversations_find_their_person_and_roll_up_into_it(store_url: str) -> None:
    store = StateStore(store_url)
    land(store, RAW)
    normalize_all(store)
    stats = rebuild_persons(store)
    assert links(store) == {
        "agentclara:conv_1": "email:ann@example.com",
        "agentclara:conv_2": "email:ann@example.com",  # its contact is quarantined; the phone has one owner
        "agentclara:conv_3": "email:ann@example.com",
        "agentclara:conv_4": None,  # nobody has that phone: it waits
        "agentpro:conv-ap1": "email:ann@example.com",
        "clairo:cm_c1": "email:bo@example.com",
        "clairo:cm_c2": None,
    }
    assert (stats.linked, stats.unlinked) == (5, 2)
    persons = persons_of(store)
    ann = persons["email:ann@example.com"]
    assert (ann["conversation_count"], ann["channels"], ann["last_seen_at"]) == (
        4, ["email", "sms", "whatsapp"], "2026-11-09T09:05:00+00:00")
    assert ann["preferred_channel"] == "email"  # email and sms both last active at 09:05 on the 9th: by name
    bo = persons["email:bo@example.com"]
    assert (bo["conversation_count"], bo["channels"], bo["preferred_channel"]) == (1, ["webchat"], "webchat")
    days = store.conversation_days(None, ("2026-11-07", "2026-11-09"))
    assert days == {"2026-11-07": 1, "2026-11-08": 2, "2026-11-09": 4}

    # The person appears later: the waiting conversation is linked, the roll-up follows.
    land(store, [("agentclara", "contacts", agentclara_contact("cust_new", phone="+12025550199"))])
    normalize_all(store)
    stats = rebuild_persons(store)
    assert links(store)["agentclara:conv_4"] == "phone:+12025550199"
    assert (stats.linked, stats.unlinked) == (6, 1)
    assert persons_of(store)["phone:+12025550199"]["conversation_count"] == 1


def test_a_person_without_stored_conversations_keeps_what_its_contacts_say(store_url: str) -> None:
    store = StateStore(store_url)
    land(store, [("agentpro", "visitors", agentpro_visitor("conv-x", phone="+447911123456"))])
    normalize_all(store)
    rebuild_persons(store)
    person = persons_of(store)["phone:+447911123456"]
    # The visitor record says where and when it was seen; no conversation is stored to count.
    assert (person["preferred_channel"], person["channels"], person["last_seen_at"], person["conversation_count"]) == (
        "whatsapp", ["whatsapp"], "2026-11-07T08:03:00+00:00", 0)


def v1_store(url: str) -> sa.Engine:
    """A store as the project's store v1 created it: no conversation columns, no run_days, no moved_from."""
    v1 = sa.MetaData()
    for table in tables.metadata.sorted_tables:
        if table.name == "run_days":
            continue
        columns = [c._copy() for c in table.columns
                   if not (table.name == "records" and c.name in tables.RECORDS_V2_COLUMNS)
                   and not (table.name == "sync_state" and c.name == "moved_from")]
        copy = sa.Table(table.name, v1, *columns)
        for index in table.indexes:
            if index.name not in tables.RECORDS_V2_INDEXES:
                sa.Index(index.name, *(copy.c[c.name] for c in index.columns))
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        v1.create_all(conn)
        conn.execute(sa.text("INSERT INTO store_meta (key, value) VALUES ('schema_version', '1')"))
    return engine


def test_the_store_upgrades_from_v1_keeping_its_rows(store_url: str) -> None:
    engine = v1_store(store_url)
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO persons (person_key, data, content_hash, updated_at) "
                             "VALUES ('email:a@x.io', '{}', 'h', CURRENT_TIMESTAMP)"))
    engine.dispose()
    store = StateStore(store_url)  # upgrades on open
    inspector = sa.inspect(store.engine)
    assert set(tables.RECORDS_V2_COLUMNS) <= {c["name"] for c in inspector.get_columns("records")}
    assert set(tables.RECORDS_V2_INDEXES) <= {i["name"] for i in inspector.get_indexes("records")}
    assert inspector.has_table("run_days")
    assert "moved_from" in {c["name"] for c in inspector.get_columns("sync_state")}
    with store.engine.connect() as conn:
        assert migrations.current_version(conn) == migrations.LATEST
    assert store.count("persons") == 1
    StateStore(store_url)  # a second open finds nothing to do


def v1_contact(source: str, stream: str, payload: dict[str, Any]) -> dict[str, Any]:
    """What contact v1's code path stored for this payload."""
    data = NORMALIZERS[(source, stream)](payload)
    return {**{key: data[key] for key in V1_KEYS}, "version": 1}


def test_contact_v2_from_a_v1_store_by_renormalizing_kept_payloads(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path / 'v1.db'}"
    engine = v1_store(url)
    now = "2026-11-09 00:00:00.000000"  # as SQLAlchemy stores a UTC DateTime in SQLite
    contacts = [(source, stream, payload) for source, stream, payload in RAW if stream != "conversations"]
    with engine.begin() as conn:
        for source, stream, payload in RAW:  # contact v1 kept every payload; it landed conversations raw only
            normalized = stream != "conversations"
            conn.execute(sa.text(
                "INSERT INTO raw_records (source, stream, record_id, payload, payload_hash, normalized_hash, "
                "normalized_version, first_seen_at, fetched_at) VALUES (:s, :st, :id, :p, :h, :nh, :nv, :t, :t)"),
                {"s": source, "st": stream, "id": payload["id"], "p": json.dumps(payload),
                 "h": content_hash(payload), "nh": content_hash(payload) if normalized else None,
                 "nv": 1 if normalized else None, "t": now})
        v1_rows = []
        for source, stream, payload in contacts:
            try:
                data = v1_contact(source, stream, payload)
            except InvalidRecord:
                continue  # quarantined under v1 as well
            key = f"email:{data['email']}" if data["email"] else f"phone:{data['phone']}"
            v1_rows.append((key, data))
            conn.execute(sa.text(
                "INSERT INTO records (source, stream, record_id, schema_name, schema_version, data, email, phone, "
                "person_key, content_hash, normalized_at) VALUES (:s, 'contacts', :id, 'contact', 1, :d, :e, :ph, "
                ":k, :h, :t)"),
                {"s": source, "id": payload["id"], "d": json.dumps(data), "e": data["email"], "ph": data["phone"],
                 "k": key, "h": content_hash(data), "t": now})
        for key in sorted({key for key, _ in v1_rows}):
            person = merge_person(key, [d for k, d in v1_rows if k == key])
            conn.execute(sa.text("INSERT INTO persons (person_key, data, content_hash, updated_at) "
                                 "VALUES (:k, :d, :h, :t)"), {"k": key, "d": json.dumps(person), "h": content_hash(person), "t": now})
    engine.dispose()

    store = StateStore(url)
    # Stored v1 rows already load as current (schemas.registry.migrate), before anything is re-normalized.
    groups = dict(store.iter_person_groups())
    assert all(c["version"] == CONTACT_VERSION and c["conversation_count"] == 0 for group in groups.values() for c in group)

    # Sources "configured" but unreachable: renormalize must not need them.
    for name, value in {"SYNC_DATABASE_URL": url, "AGENTCLARA_API_KEY": "ac_unused",
                        "AGENTCLARA_BASE_URL": "http://127.0.0.1:9"}.items():
        monkeypatch.setenv(name, value)
    result = run_renormalize(instance=dg.DagsterInstance.ephemeral())
    assert result.success
    with store.engine.connect() as conn:
        versions = dict(conn.execute(sa.text(
            "SELECT schema_name, MIN(schema_version) || '-' || MAX(schema_version) FROM records GROUP BY 1")).all())
        marks = {row[0] for row in conn.execute(sa.text(
            "SELECT normalized_version FROM raw_records WHERE stream != 'conversations'"))}
    assert versions == {"contact": f"{CONTACT_VERSION}-{CONTACT_VERSION}", "conversation": "1-1"}
    assert marks == {CONTACT_VERSION}
    persons = persons_of(store)
    assert (persons["email:ann@example.com"]["conversation_count"], persons["email:ann@example.com"]["channels"]) == (
        4, ["email", "sms", "whatsapp"])
    assert persons["email:bo@example.com"]["conversation_count"] == 1
    history = {row["step"]: row for row in store.run_history(result.run_id)}
    assert history["persons"]["stats"]["unlinked"] == 2
    assert history["agentclara_contacts"]["stats"]["normalized"] == 1  # cust_bad is quarantined again

    # A rerun has nothing pending; --force re-normalizes everything again, with the same outcome.
    again = run_renormalize(instance=dg.DagsterInstance.ephemeral())
    assert {r["step"]: r["stats"].get("normalized") for r in store.run_history(again.run_id)}["agentclara_contacts"] == 0
    forced = run_renormalize(force=True, sources=["clairo"], instance=dg.DagsterInstance.ephemeral())
    steps = {r["step"]: r["stats"] for r in store.run_history(forced.run_id)}
    assert steps["clairo_contacts"]["normalized"] == 1 and steps["clairo_conversations"]["normalized"] == 2
    assert "agentpro_contacts" not in steps  # not chosen
    assert persons_of(store) == persons


# -- a newest-first listing cut to the run's window --------------------------------------------

class Pages:
    """A listing whose consumption is visible: pages handed out, and whether it was closed."""

    def __init__(self, pages: list[list[dict[str, Any]]]) -> None:
        self.pages, self.handed, self.closed = pages, 0, False

    def __iter__(self):
        try:
            for page in self.pages:
                self.handed += 1
                yield page
        finally:
            self.closed = True


def item(cid: str, started: str | None) -> dict[str, Any]:
    return {"id": cid, "timestamp": started}


def test_a_listing_is_read_down_to_the_lookback_and_no_further() -> None:
    window = ReadWindow.for_days("2026-11-08", "2026-11-09", lookback_days=2)  # [11-08, 11-10), cutoff 11-06
    listing = Pages([
        [item("c1", "2026-11-10T08:00:00Z"), item("c2", "2026-11-09T23:00:00Z"), item("c3", None)],
        [item("c4", "2026-11-07T10:00:00Z"), item("c5", "not a time"), item("c6", "2026-11-05T23:59:59Z"),
         item("c7", "2026-11-09T00:00:00Z")],
        [item("c8", "2026-11-04T00:00:00Z")],
    ])
    pages = list(newest_first_in_window(listing, window, "timestamp"))
    assert [[i["id"] for i in page] for page in pages] == [["c2", "c3"], ["c4", "c5"]]
    assert listing.handed == 2 and listing.closed  # the third page was never asked for
    assert (window.kept, window.newer_skipped, window.stopped_early) == (4, 1, True)
    assert window.days == ("2026-11-08", "2026-11-09") and window.day_list() == ["2026-11-08", "2026-11-09"]
    assert window.cutoff == datetime(2026, 11, 6, tzinfo=timezone.utc)


def test_without_a_window_the_listing_is_handed_on_whole() -> None:
    listing = Pages([[item("c1", "2020-01-01T00:00:00Z")]])
    assert newest_first_in_window(listing, None, "timestamp") is listing
