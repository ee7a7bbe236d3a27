"""Dirty data, one item at a time (issue 9, item 1 and the string half of item 2).

Round trip covered: a page of AgentClara contacts holding broken items ->
`ingest` (raw rows, `schemas.raw.storable`) -> `normalize_pending` ->
canonical records or quarantine, on SQLite and on PostgreSQL; the rules
underneath (`text.clean_text`, `text.parse_source_id`, `raw.storable`)
as pure functions; then property-based tests (hypothesis) over every
normalizer and over the store's write path. tests/test_dirty_sync.py runs
the same items through real HTTP and `daily_sync`.
"""

from __future__ import annotations

import itertools
import json
import math
from typing import Any

import pytest
import sqlalchemy as sa

from pipelines.state import StateStore
from pipelines.state.store import CONTACT_STREAM, Normalized
from pipelines.state.tables import quarantine, raw_records, records
from pipelines.steps.ingest import ingest
from pipelines.steps.normalize import _save, normalize_pending
from connectors.agentclara import normalize as agentclara
from schemas.errors import InvalidRecord
from schemas.text import clean_text, parse_source_id, replace_lone_surrogates
from schemas.hashing import content_hash
from schemas.raw import MAX_DEPTH, NESTING_MARKER, SANITIZED_KEY, content_key, is_storable_key, storable
from schemas.registry import current_version

VALID_PHONE = "+14155552671"


def nested(depth: int) -> Any:
    """A value `depth` objects deep."""
    value: Any = "bottom"
    for _ in range(depth):
        value = {"deeper": value}
    return value


def contact(n: int, **fields: Any) -> dict[str, Any]:
    """A clean AgentClara contact with its own email, `fields` over it."""
    return {"id": f"cust_{n}", "name": "Jane Doe", "email": f"p{n}@example.com", "tags": ["vip"],
            "created_at": "2026-01-05T10:00:00Z", "updated_at": "2026-01-06T10:00:00Z", **fields}


# label -> (item as served, expected: a quarantine reason, or the canonical fields it must have)
DIRTY: dict[str, tuple[Any, Any]] = {
    "a JSON string among the objects": ("not a contact", "malformed_payload"),
    "a number among the objects": (7, "malformed_payload"),
    "null among the objects": (None, "malformed_payload"),
    "id missing": ({"name": "No Id", "email": "noid@example.com"}, "missing_id"),
    "id null": (contact(1, id=None), "missing_id"),
    "id blank": (contact(2, id="  "), "missing_id"),
    "id a list": (contact(3, id=["cust_3"]), "invalid_id"),
    "id an object": (contact(4, id={"v": 4}), "invalid_id"),
    "id a float": (contact(5, id=5.5), "invalid_id"),
    "id of 256 characters": (contact(6, id="c" * 256), "invalid_id"),
    "id with NUL": (contact(7, id="cust_\x007"), "invalid_id"),
    "id with an ANSI escape": (contact(8, id="\x1b[31mcust_8"), "invalid_id"),
    "id with a lone surrogate": (contact(9, id="cust_9\ud83d"), "invalid_id"),
    "id with a C0 control": (contact(10, id="cust\x0710"), "invalid_id"),
    "id an integer": (contact(11, id=4711), {"source_id": "4711"}),
    "id of 255 characters": (contact(12, id="k" * 255), {"source_id": "k" * 255}),
    "name ending in half an emoji": (contact(13, name="Jane Doe\ud83d"),
                                     {"full_name": "Jane Doe\ufffd", "warning": "raw_sanitized:lone_surrogates"}),
    "NUL, C0 and ANSI in a name": (contact(14, name="\x1b[31mJane\x00 Doe\x07\x1b[0m"),
                                   {"full_name": "Jane Doe", "warning": "cleaned:name"}),
    "ANSI around an email": (contact(15, email="\x1b[1mp15@example.com\x1b[0m"),
                             {"email": "p15@example.com", "warning": "cleaned:email"}),
    "NaN in a field": (contact(16, score=math.nan), {"warning": "raw_sanitized:non_finite_numbers"}),
    "Infinity as the phone": (contact(17, phone=math.inf), {"phone": None}),
    "every field of the wrong type": (
        contact(18, name=["Jane"], phone=4155552671.0, tags="vip, new", company={"a": 1}, created_at=["x"]),
        {"full_name": None, "phone": None, "tags": ["new", "vip"], "company": None,
         "warning": "bad_timestamp:created_at"}),
    "wrong types and nothing left": (
        {"id": "cust_19", "name": ["Jane"], "email": {"a": 1}, "phone": 1.5, "tags": "vip"},
        "no_valid_email_or_phone"),
    "a 100 kB string": (contact(20, name="A" * 100_000, bio="b" * 100_000), {"first_name": "A" + "a" * 99_999}),
    "an extra field nested 200 deep": (contact(21, extra=nested(200)),
                                       {"warning": "raw_sanitized:nesting_too_deep"}),
}


def _page() -> list[Any]:
    return [contact(100), *(item for item, _ in DIRTY.values()), contact(101)]


def _stored(store: StateStore) -> tuple[dict[str, dict[str, Any]], dict[str, str], int]:
    with store.engine.connect() as conn:
        found = {row.record_id: row.data for row in conn.execute(
            sa.select(records.c.record_id, records.c.data).where(records.c.stream == CONTACT_STREAM))}
        held = dict(conn.execute(sa.select(quarantine.c.record_id, quarantine.c.reason)).all())
        raw = conn.execute(sa.select(sa.func.count()).select_from(raw_records)).scalar_one()
    return found, held, raw


def test_every_dirty_item_is_kept_and_normalized_or_quarantined_with_its_reason(store_url: str) -> None:
    store = StateStore(store_url)
    stats = ingest(store, "agentclara", "contacts", [_page()])
    assert stats.records == stats.new_or_changed == len(DIRTY) + 2
    outcome = normalize_pending(store, "agentclara", "contacts")
    found, held, raw = _stored(store)
    assert raw == len(DIRTY) + 2 and len(found) + len(held) == raw  # nothing lost
    assert outcome.normalized == len(found) and outcome.quarantined == len(held)

    by_source_id = {data["source_id"]: data for data in found.values()}
    reasons = sorted(held.values())
    expected_reasons = sorted(want for _, want in DIRTY.values() if isinstance(want, str))
    assert reasons == expected_reasons and dict(outcome.reasons) == store.quarantine_reasons("agentclara")
    for label, (item, want) in DIRTY.items():
        if isinstance(want, str):
            continue
        source_id = want.get("source_id") or item["id"]
        data = by_source_id[source_id]
        for key, value in want.items():
            if key == "warning":
                assert value in data["warnings"], label
            else:
                assert data[key] == value, label
    assert {"cust_100", "cust_101"} <= set(by_source_id)
    assert by_source_id["cust_100"]["warnings"] == []  # clean records carry no cleaning notes


def test_a_rerun_of_the_same_dirty_page_changes_nothing(store_url: str) -> None:
    store = StateStore(store_url)
    ingest(store, "agentclara", "contacts", [_page()])
    normalize_pending(store, "agentclara", "contacts")
    again = ingest(store, "agentclara", "contacts", [_page()])
    assert again.new_or_changed == 0  # the stored (sanitized) form hashes the same every time
    assert normalize_pending(store, "agentclara", "contacts").normalized == 0


def test_what_the_store_keeps_of_a_payload_it_cannot_hold(store_url: str) -> None:
    store = StateStore(store_url)
    item = contact(1, name="Jane\x00 Doe\ud83d", score=math.nan, extra=nested(200))
    stats = ingest(store, "agentclara", "contacts", [[item]])
    assert stats.sanitized == {"nul_bytes": 1, "lone_surrogates": 1, "non_finite_numbers": 1, "nesting_too_deep": 1}
    (kept,) = store.raw_payloads("agentclara", "contacts", ["cust_1"]).values()
    assert kept["name"] == "Jane Doe\ufffd" and kept["score"] is None
    assert kept[SANITIZED_KEY] == {"changes": ["lone_surrogates", "nesting_too_deep", "non_finite_numbers",
                                               "nul_bytes"], "fields": ["name", "score", "extra"]}
    depth, value = 1, kept["extra"]
    while isinstance(value, dict):
        depth, value = depth + 1, value["deeper"]
    assert value == NESTING_MARKER and depth == MAX_DEPTH


def test_a_record_the_store_refuses_is_quarantined_alone_and_the_chunk_goes_on(pg_url: str) -> None:
    """PostgreSQL refuses a value wider than its column; SQLite would keep it, so this runs on PostgreSQL."""
    store = StateStore(pg_url)
    ingest(store, "agentclara", "contacts", [[contact(1), contact(2)]])
    version = current_version("contact")
    (chunk,) = list(store.iter_pending_raw("agentclara", "contacts", version))
    rows = {row.record_id: row for row in chunk}
    good = [Normalized("agentclara", CONTACT_STREAM, rid, agentclara.normalize_contact(row.payload), row.payload_hash,
                       email=f"{rid}@example.com", phone="+1" * 40 if rid == "cust_2" else None)
            for rid, row in rows.items()]
    raw = {(row.source, row.stream, row.record_id): row for row in chunk}
    kept_good, kept_bad = _save(store, version, good, [], raw, None)
    assert [n.record_id for n in kept_good] == ["cust_1"]
    assert [(q.record_id, q.reason) for q in kept_bad] == [("cust_2", "unstorable")]
    found, held, _ = _stored(store)
    assert set(found) == {"cust_1"} and held == {"cust_2": "unstorable"}


class RefusingStore(StateStore):
    """A store whose database refuses any page holding a payload marked "refuse" (as PostgreSQL refuses
    a value it cannot hold): what `storable` does not foresee must still cost only its own row."""

    def _save_raw_rows(self, source: str, stream: str, rows: list[dict[str, Any]]) -> int:
        if any(isinstance(row["payload"], dict) and row["payload"].get("refuse") for row in rows):
            raise sa.exc.DataError("INSERT INTO raw_records ...", {}, Exception("value refused"))
        return super()._save_raw_rows(source, stream, rows)


def test_a_raw_row_the_database_refuses_costs_only_itself(store_url: str) -> None:
    store = RefusingStore(store_url)
    items = [("cust_1", contact(1)), ("cust_2", contact(2, refuse=True)), ("cust_3", contact(3))]
    assert store.save_raw("agentclara", "contacts", items) == 2
    assert set(store.raw_payloads("agentclara", "contacts", ["cust_1", "cust_2", "cust_3"])) == {"cust_1", "cust_3"}
    assert store.quarantine_reasons("agentclara") == {"unstorable": 1}
    assert store.quarantine_sample(source="agentclara")[0]["record_id"] == "cust_2"


def test_a_lost_connection_is_not_taken_for_a_bad_row(store_url: str) -> None:
    class Down(StateStore):
        def _save_raw_rows(self, source: str, stream: str, rows: list[dict[str, Any]]) -> int:
            raise sa.exc.OperationalError("INSERT ...", {}, Exception("server closed the connection"))

    with pytest.raises(sa.exc.OperationalError):
        Down(store_url).save_raw("agentclara", "contacts", [("cust_1", contact(1))])


# -- the rules, as pure functions ------------------------------------------------------


@pytest.mark.parametrize("raw, one_line, multi_line", [
    ("Jane Doe", "Jane Doe", "Jane Doe"),
    ("Jane\ud83d", "Jane\ufffd", "Jane\ufffd"),
    ("\ud83d\ude00", "\U0001f600", "\U0001f600"),  # a pair written as two halves is one character
    ("\x1b[31mred\x1b[0m", "red", "red"),
    ("\x1b]0;title\x07text", "text", "text"),
    ("a\x00b\x07c\x7fd\x80e", "abcde", "abcde"),
    ("\x9b1mbold", "bold", "bold"),
    ("a\tb\nc", "a b c", "a\tb\nc"),
    ("a\x0bb\x85c", "a b c", "a\nb\nc"),  # whitespace controls still separate words
    ("line 1\r\nline 2\rline 3", "line 1  line 2 line 3", "line 1\nline 2\nline 3"),
])
def test_clean_text(raw: str, one_line: str, multi_line: str) -> None:
    assert clean_text(raw) == one_line
    assert clean_text(raw, multiline=True) == multi_line


@pytest.mark.parametrize("value, expected", [
    ("cust_1", "cust_1"), (" cust_1 ", "cust_1"), (42, "42"), (0, "0"), ("k" * 255, "k" * 255),
    (None, "missing_id"), ("", "missing_id"), ("   ", "missing_id"), (True, "missing_id"),
    (1.5, "invalid_id"), (math.nan, "invalid_id"), ([1], "invalid_id"), ({"a": 1}, "invalid_id"),
    ("k" * 256, "invalid_id"), ("a\x00b", "invalid_id"), ("\x1b[31ma", "invalid_id"), ("a\ud83d", "invalid_id"),
])
def test_the_id_rule(value: Any, expected: str) -> None:
    if expected in ("missing_id", "invalid_id"):
        with pytest.raises(InvalidRecord) as caught:
            parse_source_id(value)
        assert caught.value.reason == expected
    else:
        assert parse_source_id(value) == expected


def test_storable_keeps_clean_payloads_as_they_are() -> None:
    clean = {"id": "c1", "name": "Zoë \U0001f600", "n": [1, 2.5, None, True], "ctl": "\x1b[31m\x07 kept raw"}
    kept = storable(clean)
    assert kept.value == clean and kept.changes == () and content_hash(kept.value) == content_hash(clean)
    assert storable("a\x00\ud83d").value == "a\ufffd"  # not an object: changed, with no note
    assert storable({"n": 10 ** 5000}).changes == ("not_json",)  # json.dumps would refuse it
    assert storable(storable({"x": math.inf}).value).value == storable({"x": math.inf}).value  # idempotent


# -- properties --------------------------------------------------------------------------

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from pipelines.steps.normalize import CONVERSATION_NORMALIZERS, NORMALIZERS  # noqa: E402
from schemas.errors import REASONS  # noqa: E402

NASTY = ["\ud83d", "\x00", "\x1b[31m", "\x07", "\r\n", "\x9b1m", "\u0085", "x" * 300, " ", "", "null",
         "+14155552671", "jane@example.com", "2026-01-05T10:00:00Z", "Jane Doe", "user", "sms"]
FIELDS = ["id", "name", "email", "phone", "tags", "company", "first_name", "last_name", "created_at",
          "updated_at", "customer_id", "customer_name", "customer_email", "customer_phone", "channel",
          "status", "subject", "timestamp", "messages", "answers", "conversationId", "createdAt",
          "updatedAt", "visitorName", "visitorEmail", "visitorPhone", "messageCount", "title",
          "role", "sender", "content", "text", "sent_at"]

texts = st.one_of(st.text(st.characters(exclude_categories=()), max_size=12), st.sampled_from(NASTY))
scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True, allow_infinity=True), texts)
json_like = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.one_of(st.sampled_from(FIELDS), texts), inner, max_size=5)),
    max_leaves=25,
)
# Usable values with dirt around them that cleaning removes: records that normalize, carrying dirty text.
dirt = st.sampled_from(["", "", "\x1b[31m", "\x1b[0m", "\x00", "\x07", "\x7f", "\x9b1m", "\r\n", " ", "\ud83d"])


def dirty(*good: str) -> st.SearchStrategy[str]:
    return st.builds(lambda before, value, after: before + value + after, dirt, st.sampled_from(good), dirt)


def field(usable: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly (4 in 5) a usable (dirty) value, else anything at all."""
    return st.integers(0, 4).flatmap(lambda n: usable if n else json_like)


emails = field(dirty("jane@example.com", "John.Smith@Example.COM"))
phones = field(dirty("+14155552671", "(415) 555-2671"))
times = field(dirty("2026-01-05T10:00:00Z", "2026-01-05"))
words = field(dirty("Jane Doe", "Dr. Jane Doe Jr.", "SMITH, JOHN", "Acme", "sms", "open", "vip"))
message = st.fixed_dictionaries({}, optional={
    "id": field(st.sampled_from(["m1", "m2"])), "role": field(dirty("customer", "assistant", "user")),
    "sender": field(dirty("customer", "bot")), "content": words, "text": words, "timestamp": times,
    "createdAt": times})
answers = st.dictionaries(st.one_of(st.sampled_from(["email", "Phone number", "name", "company", "budget"]), texts),
                          st.one_of(emails, phones, words), max_size=5)
FIELD_STRATEGIES = {
    **{name: words for name in FIELDS},
    **{name: emails for name in ("email", "customer_email", "visitorEmail")},
    **{name: phones for name in ("phone", "customer_phone", "visitorPhone")},
    **{name: times for name in ("created_at", "updated_at", "timestamp", "createdAt", "updatedAt", "sent_at")},
    "messages": field(st.lists(message, max_size=3)),
    "answers": field(answers),
    "tags": field(st.lists(words, max_size=3)),
    "customer_id": field(st.sampled_from(["cust_1", 7])),
    "conversationId": field(st.sampled_from(["conv_1", 8])),
}
records_like = st.fixed_dictionaries(
    {"id": field(st.sampled_from(["c1", 42, "conv_1"]))},
    optional={name: strategy for name, strategy in FIELD_STRATEGIES.items() if name != "id"},
)
payloads = st.integers(0, 4).flatmap(lambda n: records_like if n else json_like)

ALL_NORMALIZERS = {**NORMALIZERS, **CONVERSATION_NORMALIZERS}
ONE_LINE_FIELDS = ("email", "phone", "first_name", "last_name", "full_name", "company", "subject", "source_id")


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (*_strings(k), *_strings(v))]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def _assert_canonical_is_clean(data: dict[str, Any]) -> None:
    assert storable(data).changes == ()  # no NaN, no NUL, no surrogates, bounded depth
    json.dumps(data, allow_nan=False)
    content_hash(data)
    for text in _strings(data):
        assert clean_text(text, multiline=True) == text, text
    for name in ONE_LINE_FIELDS:
        if isinstance(data.get(name), str):
            assert clean_text(data[name]) == data[name] and "\n" not in data[name], name
    assert all(clean_text(tag) == tag for tag in data.get("tags") or [])


@settings(max_examples=300, deadline=None)
@given(payload=payloads, which=st.sampled_from(sorted(ALL_NORMALIZERS)), stored=st.booleans())
def test_normalizers_give_a_clean_record_or_a_quarantine_reason(payload: Any, which: Any, stored: bool) -> None:
    normalize = ALL_NORMALIZERS[which]
    if stored:  # as the store hands it back
        payload = storable(payload).value
    try:
        data = normalize(payload, region="US")
    except InvalidRecord as exc:
        assert exc.reason in REASONS
        return
    _assert_canonical_is_clean(data)


@pytest.fixture
def shared_store(store_url: str) -> StateStore:
    return StateStore(store_url)


ids = st.one_of(texts, st.integers(), st.none(), st.floats(allow_nan=True), st.lists(st.integers(), max_size=2),
                st.sampled_from(["cust_1", "cust_2", "k" * 256]))
ids_and_payloads = st.lists(
    st.tuples(ids, st.one_of(payloads, st.builds(lambda i, rest: {**rest, "id": i}, ids, records_like))),
    max_size=8,
)


_EXAMPLES = itertools.count()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(items=ids_and_payloads)
def test_the_write_path_never_raises_and_never_loses_an_item(shared_store: StateStore, items: list) -> None:
    store = shared_store
    source = f"h{next(_EXAMPLES)}"  # one source per example (and per replay): its rows are its own
    keys = {}
    for record_id, payload in items:  # what save_raw must keep: one row per distinct key
        kept = storable(payload).value
        keys[record_id if is_storable_key(record_id) else content_key(kept)] = kept
    store.save_raw(source, "contacts", items)
    stats = normalize_pending(store, source, "contacts", normalizers={(source, "contacts"): agentclara.normalize_contact})
    with store.engine.connect() as conn:
        raw = {r for (r,) in conn.execute(sa.select(raw_records.c.record_id).where(raw_records.c.source == source))}
        done = [r for (r,) in conn.execute(sa.select(records.c.record_id).where(records.c.source == source))]
        held = [r for (r,) in conn.execute(sa.select(quarantine.c.record_id).where(quarantine.c.source == source))]
    assert raw == set(keys)
    assert sorted(done + held) == sorted(raw) and not set(done) & set(held)
    assert (stats.normalized, stats.quarantined) == (len(done), len(held))


def test_replace_lone_surrogates_is_the_identity_on_valid_text() -> None:
    assert replace_lone_surrogates("Zoë \U0001f600") == "Zoë \U0001f600"
