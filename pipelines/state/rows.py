"""The rows the state store reads and writes, as frozen dataclasses, and its canonical streams.

Kept apart from the table families so that the steps that build or read
these rows (normalize, persons, activities, appointments) import them
without the store; `pipelines.state.store` re-exports every name here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# The one stream every canonical contact is stored under, whatever raw stream
# it came from (AgentClara contacts, Clairo briefs, AgentPro visitors), so
# that identity resolution sees the contacts of every source together.
CONTACT_STREAM = "contacts"
# The one stream every canonical conversation is stored under.
CONVERSATION_STREAM = "conversations"


@dataclass(frozen=True)
class RawRow:
    source: str
    stream: str
    record_id: str
    payload: Any
    payload_hash: str


@dataclass(frozen=True)
class Normalized:
    """A canonical record ready to store, with the identity fields pulled out."""

    source: str
    stream: str
    record_id: str
    data: dict[str, Any]
    payload_hash: str
    email: str | None = None
    phone: str | None = None
    person_key: str | None = None
    event_day: str | None = None
    raw_stream: str | None = None  # the raw stream it came from, when not `stream`
    link_id: str | None = None  # contact <-> conversation link within one source
    event_at: str | None = None  # a conversation's last activity (ISO-8601 UTC)
    channel: str | None = None  # a conversation's channel

    @property
    def raw(self) -> tuple[str, str, str]:
        return (self.source, self.raw_stream or self.stream, self.record_id)


@dataclass(frozen=True)
class EventRow:
    """A stored conversation or appointment with its person (None while unlinked), for the push."""

    source: str
    record_id: str
    person_key: str | None
    event_day: str | None
    data: dict[str, Any]


@dataclass(frozen=True)
class Quarantined:
    """A payload that could not be normalized; `stream` is the canonical stream it was meant for."""

    source: str
    stream: str
    record_id: str
    reason: str
    detail: str
    payload: Any
    payload_hash: str
    raw_stream: str | None = None  # the raw stream it came from, when not `stream`

    @property
    def raw(self) -> tuple[str, str, str]:
        return (self.source, self.raw_stream or self.stream, self.record_id)


@dataclass(frozen=True)
class SyncRow:
    key: str
    last_hash: str | None
    failed_hash: str | None
    error_permanent: bool
    crm_id: str | None
    moved_from: str | None = None  # the older person key its CRM record was synced under (re-keyed)


@dataclass(frozen=True)
class Rekey:
    """A person no record points at any more, and its CRM record in one target.

    `new_key`: the key its records now make up, or None when they went to no
    single person (quarantined, split, or gone: e.g. strangers once merged on
    a placeholder phone that is no longer an identity). `carried`: the CRM
    record moved to `new_key`; otherwise it is left as it is in the CRM and
    reported, for a person to merge or delete.
    """

    target: str
    old_key: str
    new_key: str | None
    crm_id: str
    carried: bool
