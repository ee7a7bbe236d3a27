"""The key formats (schemas.keys): a person key or activity key built, parsed back, and built
the same way by every copy that used to write its own (the store's SQL, the push engine, each CRM
mapping, the AgentPro visitor key, the appointment key)."""

from __future__ import annotations

import sqlite3

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.hubspot import mapping as hubspot_mapping
from connectors.salesforce import mapping as salesforce_mapping
from pipelines.state.rows import EventRow
from pipelines.steps.activities import activity_key as engine_activity_key
from schemas.appointment import appointment_key
from schemas.identity import canonical_person_key as identity_canonical_person_key
from schemas.identity import person_key
from schemas.keys import (
    EMAIL_PREFIX,
    PHONE_PREFIX,
    activity_key,
    canonical_person_key,
    parse_activity_key,
    parse_person_key,
    person_key_for_email,
    person_key_for_phone,
    record_activity_key,
    sql_person_key,
)

values = st.text(min_size=1, max_size=40)
sources = st.sampled_from(["agentclara", "clairo", "agentpro", "chatloom"])


@given(values)
def test_person_keys_round_trip(value: str) -> None:
    assert parse_person_key(person_key_for_email(value)) == ("email", value)
    assert parse_person_key(person_key_for_phone(value)) == ("phone", value)


@given(st.none() | values, st.none() | values)
def test_the_email_wins_over_the_phone(email: str | None, phone: str | None) -> None:
    key = canonical_person_key(email, phone)
    if email:
        assert key == f"email:{email}"
    elif phone:
        assert key == f"phone:{phone}"
    else:
        assert key is None


@pytest.mark.parametrize("key", ["", "email:", "phone:", "a@x.com", "sms:+12025550147", "Email:a@x.com"])
def test_what_is_not_a_person_key(key: str) -> None:
    assert parse_person_key(key) is None


def test_the_old_import_path_is_the_same_function() -> None:
    assert identity_canonical_person_key is canonical_person_key
    assert person_key(" Ann@Example.COM ", None) == "email:ann@example.com"
    assert person_key("not-an-email", "(202) 555-0147") == "phone:+12025550147"


@given(st.text(max_size=40), st.sampled_from(["email", "phone"]))
def test_the_sql_prefix_builds_the_python_key(value: str, kind: str) -> None:
    with sqlite3.connect(":memory:") as conn:
        (built,) = conn.execute(f"SELECT {sql_person_key(kind, '?')}", (value,)).fetchone()  # type: ignore[arg-type]
    assert built == (person_key_for_email(value) if kind == "email" else person_key_for_phone(value))
    assert sql_person_key("email", "records.email") == f"'{EMAIL_PREFIX}' || records.email"
    assert sql_person_key("phone", "records.phone") == f"'{PHONE_PREFIX}' || records.phone"


@given(sources, values)
def test_activity_keys_round_trip(source: str, source_id: str) -> None:
    assert parse_activity_key(activity_key(source, source_id)) == (source, source_id)


@pytest.mark.parametrize("key", ["", "agentclara", "agentclara:", ":conv_1"])
def test_what_is_not_an_activity_key(key: str) -> None:
    with pytest.raises(ValueError):
        parse_activity_key(key)


@given(sources, values, st.text(min_size=1, max_size=20))
def test_every_copy_builds_the_same_activity_key(source: str, source_id: str, record_id: str) -> None:
    """The engine drops outcomes under a key it did not ask for, so the engine and both CRMs must agree."""
    conversation = {"schema": "conversation", "version": 1, "source": source, "source_id": source_id}
    row = EventRow(source, record_id, "email:a@x.com", "2026-11-20", conversation)
    expected = f"{source}:{source_id}"
    assert record_activity_key(conversation) == expected
    assert engine_activity_key(row) == expected  # by the source_id, never the stored record id
    assert hubspot_mapping.activity_key(conversation) == expected
    assert salesforce_mapping.conversation_key(conversation) == expected
    assert appointment_key({"source": source, "source_id": source_id}) == expected
