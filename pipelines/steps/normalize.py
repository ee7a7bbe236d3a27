"""Normalize raw payloads against the current schema version.

Only rows whose payload or schema version changed since they were last
normalized are read, in chunks, so a daily run touches what changed and a
schema upgrade re-normalizes history from the kept payloads.

Contacts from every source land under one canonical stream,
`CONTACT_STREAM` ("contacts"), whatever raw stream they came from (a Clairo
brief, an AgentPro conversation's visitor, an AgentClara contact): identity
resolution then matches people across sources in one pass. Quarantined
payloads are filed under the same canonical stream, so a record that turns
valid (or invalid) moves between the two tables cleanly; the raw row is
marked normalized under its own raw stream.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from pipelines.state import StateStore
from pipelines.state.store import CONTACT_STREAM, Normalized, Quarantined, RawRow
from schemas import agentclara, agentpro, clairo, registry
from schemas.errors import InvalidRecord
from schemas.identity import person_key

Normalizer = Callable[..., dict[str, Any]]


def clairo_brief_contact(brief: Any, *, region: str = "US") -> dict[str, Any]:
    """The lead of a Clairo brief detail, linked to the brief's conversation.

    `contact_from_brief`, plus the brief's `conversationId` kept in the
    contact's `extra` (source data without a canonical field yet): the
    conversation is landed raw and becomes a CRM activity of this person in
    a later stage. An answer keyed "conversationId" would be overwritten.
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


@dataclass
class NormalizeStats:
    source: str
    stream: str
    normalized: int = 0
    quarantined: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
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
    normalizers: Mapping[tuple[str, str], Normalizer] = NORMALIZERS,
) -> NormalizeStats:
    """Normalize `source`'s pending payloads of raw `stream` into canonical contacts."""
    normalize = normalizers[(source, stream)]
    version = registry.current_version("contact")
    stats = NormalizeStats(source, stream)
    started = time.monotonic()
    for chunk in store.iter_pending_raw(source, stream, version):
        good: list[Normalized] = []
        bad: list[Quarantined] = []
        for row in chunk:
            try:
                data = normalize(row.payload, region=region)
            except InvalidRecord as exc:
                bad.append(_quarantined(row, exc.reason, exc.detail))
                continue
            except Exception as exc:  # a payload no rule foresaw: keep it, say why
                bad.append(_quarantined(row, "normalizer_error", f"{type(exc).__name__}: {exc}"))
                continue
            good.append(
                Normalized(
                    source=row.source,
                    stream=CONTACT_STREAM,
                    raw_stream=row.stream,
                    record_id=row.record_id,
                    data=data,
                    payload_hash=row.payload_hash,
                    email=data.get("email"),
                    phone=data.get("phone"),
                    person_key=person_key(data.get("email"), data.get("phone")),
                )
            )
        store.save_normalized(version, good, bad, run_id=run_id)
        stats.normalized += len(good)
        stats.quarantined += len(bad)
        stats.reasons.update(q.reason for q in bad)
    stats.seconds = time.monotonic() - started
    return stats


def _quarantined(row: RawRow, reason: str, detail: str) -> Quarantined:
    return Quarantined(
        row.source, CONTACT_STREAM, row.record_id, reason, detail, row.payload, row.payload_hash, raw_stream=row.stream
    )
