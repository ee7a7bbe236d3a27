"""The key formats, in one place: who a person is, and which activity a conversation is.

A person key is `email:<email>` for a person with a valid email, else
`phone:<E.164>` (docs/identity.md, the matching rule). It is the person's
id in the store (`persons`, `records.person_key`), in `sync_state`, and in
every CRM (HubSpot `agent_sync_person_key`, Salesforce
`Agent_Contact_Id__c`), and it is the AgentPro visitor's source_id, so
it must be written the same way by Python and by the store's SQL: the SQL
takes its prefixes from `sql_person_key` here.

An activity key is `<source>:<source record id>` (a conversation's or an
appointment's `source_id`). It keys the activity in `sync_state` and in the
CRM (HubSpot `agent_sync_activity_key`, the Salesforce Task's external id);
the push engine drops every outcome whose key it did not ask for, so the
engine and each CRM mapping must build it with the one function here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

PersonKind = Literal["email", "phone"]

EMAIL_PREFIX = "email:"
PHONE_PREFIX = "phone:"
_PREFIXES: dict[str, str] = {"email": EMAIL_PREFIX, "phone": PHONE_PREFIX}


def person_key_for_email(email: str) -> str:
    """The key of the person with this (normalized) email."""
    return f"{EMAIL_PREFIX}{email}"


def person_key_for_phone(phone: str) -> str:
    """The key of the email-less person with this E.164 phone."""
    return f"{PHONE_PREFIX}{phone}"


def canonical_person_key(email: str | None, phone: str | None) -> str | None:
    """The person key of a canonical contact, whose email and phone are already normalized (or None).

    Normalizing again would give the same values at the cost of a second
    email and phone validation per record, a fifth of normalize's time
    (`schemas.identity.person_key` normalizes raw values first).
    """
    if email:
        return person_key_for_email(email)
    if phone:
        return person_key_for_phone(phone)
    return None


def parse_person_key(key: str) -> tuple[PersonKind, str] | None:
    """("email" or "phone", the value) of a person key; None for anything else (or an empty value)."""
    kind, _, value = key.partition(":")
    if kind not in _PREFIXES or not value:
        return None
    return kind, value  # type: ignore[return-value]


def sql_person_key(kind: PersonKind, expression: str) -> str:
    """SQL for the person key of kind `kind` whose value is the SQL `expression`: `'email:' || expr`."""
    return f"'{_PREFIXES[kind]}' || {expression}"


def activity_key(source: str, source_id: Any) -> str:
    """`<source>:<id>`: the key of one source record's activity in every CRM and in sync_state."""
    return f"{source}:{source_id}"


def record_activity_key(record: Mapping[str, Any]) -> str:
    """`activity_key` of a canonical conversation or appointment (its `source` and `source_id`)."""
    return activity_key(record["source"], record["source_id"])


def parse_activity_key(key: str) -> tuple[str, str]:
    """(source, source record id) of an activity key; source names hold no ':', ids may."""
    source, sep, source_id = key.partition(":")
    if not sep or not source or not source_id:
        raise ValueError(f"not an activity key: {key!r}")
    return source, source_id
