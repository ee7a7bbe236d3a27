"""Normalize raw payloads against the current schema version.

Only rows whose payload or schema version changed since they were last
normalized are read, in chunks, so a daily run touches what changed and a
schema upgrade re-normalizes history from the kept payloads.

Two kinds of canonical records come out, each from its own raw streams, so
a raw row has exactly one output and one normalization mark
(`raw_records.normalized_hash/normalized_version`):

- contacts (`NORMALIZERS`), from every source, under one canonical stream,
  `CONTACT_STREAM` ("contacts"), whatever raw stream they came from (a
  Clairo brief, an AgentPro conversation's visitor, an AgentClara contact):
  identity resolution then matches people across sources in one pass;
- conversations (`CONVERSATION_NORMALIZERS`), under `CONVERSATION_STREAM`,
  with their day (`event_day`, the UTC day of their last activity: the
  daily partition they belong to), activity time and channel.

Quarantined payloads are filed under the same canonical stream, so a record
that turns valid (or invalid) moves between the two tables cleanly; the raw
row is marked normalized under its own raw stream.

Contacts and conversations of one source are tied by a shared `link_id`
(`records.link_id`), which the persons step uses to give a conversation its
person: a conversation's link is its contact_source_id (AgentClara
customer_id, the AgentPro visitor key), else its own id; a contact's link is
the conversation it was taken from when it says so (a Clairo brief's
`conversationId`), else its source_id.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from pipelines.state import StateStore
from pipelines.state.store import CONTACT_STREAM, CONVERSATION_STREAM, Normalized, Quarantined, RawRow
from schemas import agentclara, agentpro, clairo, registry
from schemas.conversation import activity_day, activity_time
from schemas.errors import InvalidRecord
from schemas.identity import canonical_person_key

Normalizer = Callable[..., dict[str, Any]]


def clairo_brief_contact(brief: Any, *, region: str = "US") -> dict[str, Any]:
    """The lead of a Clairo brief detail, linked to the brief's conversation.

    `contact_from_brief`, plus the brief's `conversationId` kept in the
    contact's `extra` (source data without a canonical field): the
    conversation is landed from Clairo's conversation listing and becomes a
    CRM activity of this person. An answer keyed "conversationId" would be
    overwritten.
    """
    contact = clairo.contact_from_brief(brief, region=region)
    conversation_id = brief.get("conversationId")
    if conversation_id not in (None, ""):
        contact["extra"] = {**contact["extra"], "conversationId": str(conversation_id)}
    return contact


# (source, raw stream) -> the function that turns one raw payload into a
# canonical contact (stored under CONTACT_STREAM).
NORMALIZERS: dict[tuple[str, str], Normalizer] = {
    ("agentclara", "contacts"): agentclara.normalize_contact,
    ("clairo", "briefs"): clairo_brief_contact,
    ("agentpro", "visitors"): agentpro.contact_from_conversation,
}

# (source, raw stream) -> the function that turns one raw payload into a
# canonical conversation (stored under CONVERSATION_STREAM). The raw streams
# hold details (with messages), so no raw stream feeds both kinds.
CONVERSATION_NORMALIZERS: dict[tuple[str, str], Normalizer] = {
    ("agentclara", "conversations"): agentclara.normalize_conversation,
    ("clairo", "conversations"): clairo.normalize_conversation,
    ("agentpro", "conversations"): agentpro.normalize_conversation,
}


def contact_row(row: RawRow, data: dict[str, Any]) -> Normalized:
    extra = data.get("extra") or {}
    return Normalized(
        source=row.source,
        stream=CONTACT_STREAM,
        raw_stream=row.stream,
        record_id=row.record_id,
        data=data,
        payload_hash=row.payload_hash,
        email=data.get("email"),
        phone=data.get("phone"),
        person_key=canonical_person_key(data.get("email"), data.get("phone")),
        link_id=str(extra.get("conversationId") or data.get("source_id")),
    )


def conversation_row(row: RawRow, data: dict[str, Any]) -> Normalized:
    # person_key stays NULL here: the persons step links it (link_id, then email/phone hints).
    return Normalized(
        source=row.source,
        stream=CONVERSATION_STREAM,
        raw_stream=row.stream,
        record_id=row.record_id,
        data=data,
        payload_hash=row.payload_hash,
        email=data.get("email"),
        phone=data.get("phone"),
        event_day=activity_day(data),
        event_at=activity_time(data),
        channel=data.get("channel"),
        link_id=str(data.get("contact_source_id") or data.get("source_id")),
    )


@dataclass(frozen=True)
class Kind:
    """What a raw stream normalizes into: a schema, its canonical stream, its stored row."""

    schema: str
    stream: str
    normalizers: Mapping[tuple[str, str], Normalizer]
    row: Callable[[RawRow, dict[str, Any]], Normalized]


CONTACTS = Kind("contact", CONTACT_STREAM, NORMALIZERS, contact_row)
CONVERSATIONS = Kind("conversation", CONVERSATION_STREAM, CONVERSATION_NORMALIZERS, conversation_row)


@dataclass
class NormalizeStats:
    source: str
    stream: str
    normalized: int = 0
    quarantined: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    days: Counter[str] = field(default_factory=Counter)  # conversations normalized, per event_day
    seconds: float = 0.0

    def as_metadata(self) -> dict[str, Any]:
        return {
            "normalized": self.normalized,
            "quarantined": self.quarantined,
            "quarantine reasons": dict(self.reasons),
            "seconds": round(self.seconds, 2),
        }


def normalize_pending(
    store: StateStore,
    source: str,
    stream: str,
    *,
    region: str = "US",
    run_id: str | None = None,
    normalizers: Mapping[tuple[str, str], Normalizer] | None = None,
    kind: Kind = CONTACTS,
) -> NormalizeStats:
    """Normalize `source`'s pending payloads of raw `stream` into canonical records of `kind`."""
    normalize = (kind.normalizers if normalizers is None else normalizers)[(source, stream)]
    version = registry.current_version(kind.schema)
    stats = NormalizeStats(source, stream)
    started = time.monotonic()
    for chunk in store.iter_pending_raw(source, stream, version):
        good: list[Normalized] = []
        bad: list[Quarantined] = []
        for row in chunk:
            try:
                data = normalize(row.payload, region=region)
            except InvalidRecord as exc:
                bad.append(_quarantined(row, kind.stream, exc.reason, exc.detail))
                continue
            except Exception as exc:  # a payload no rule foresaw: keep it, say why
                bad.append(_quarantined(row, kind.stream, "normalizer_error", f"{type(exc).__name__}: {exc}"))
                continue
            good.append(kind.row(row, data))
        store.save_normalized(version, good, bad, run_id=run_id)
        stats.normalized += len(good)
        stats.quarantined += len(bad)
        stats.reasons.update(q.reason for q in bad)
        stats.days.update(n.event_day for n in good if n.event_day)
    stats.seconds = time.monotonic() - started
    return stats


def normalize_conversations(
    store: StateStore, source: str, stream: str, *, region: str = "US", run_id: str | None = None
) -> NormalizeStats:
    """Normalize `source`'s pending conversations of raw `stream` (CONVERSATION_NORMALIZERS)."""
    return normalize_pending(store, source, stream, region=region, run_id=run_id, kind=CONVERSATIONS)


def _quarantined(row: RawRow, stream: str, reason: str, detail: str) -> Quarantined:
    return Quarantined(
        row.source, stream, row.record_id, reason, detail, row.payload, row.payload_hash, raw_stream=row.stream
    )
