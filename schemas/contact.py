"""The canonical contact: one per source record, schema "contact".

As a plain JSON dict (what travels between layers and is stored), v1
(v2 adds three keys, v3, the current version, has v2's: see below):

    {"schema": "contact", "version": 1, "source": "agentclara", "source_id": "cust_1",
     "email": "john@example.com", "phone": "+15551234567",
     "first_name": "John", "last_name": "Smith", "full_name": "John Smith",
     "company": null, "tags": ["vip"],
     "created_at": "2024-03-15T10:30:00+00:00", "updated_at": "2024-03-15T10:30:00+00:00",
     "extra": {}, "warnings": []}

- email: lower-case, syntax-valid, or null; phone: E.164 or null; at least
  one of the two is set (records without either are quarantined).
- tags: sorted unique lower-case list; times: ISO-8601 UTC strings or null.
- extra: source data kept for the CRM that has no canonical field yet
  (Clairo answers such as "budget"); {} for most sources.
- warnings: codes of what the normalizer dropped without quarantining the
  record: "invalid_email", "invalid_phone", "bad_timestamp:<field>"; and of
  what it cleaned: "cleaned:<field>" (control characters, ANSI escapes,
  lone surrogates, NaN, deep nesting: schemas._common.prepare) and
  "raw_sanitized:<change>" (what the store changed to keep the payload:
  schemas.raw). A clean payload gets none of these, so its hash is as before.
- v2 adds, after "updated_at", what the source record itself
  says about the contact's conversations: "preferred_channel" (a canonical
  channel, schemas.conversation.CHANNELS), "last_seen_at" (ISO-8601 UTC) and
  "conversation_count". The normalizers fill them only where the payload
  tells: an AgentPro visitor (the channel and last update of the
  conversation it was seen in), a Clairo lead (web chat, the brief's time);
  an AgentClara contact knows none (null, null, 0). No payload counts a
  contact's conversations, so conversation_count is 0 from every
  normalizer: the person's real roll-ups come from the stored
  conversations (pipelines/steps/persons.py). Stored v1 records load as v2
  through schemas.migrations.contact_v1_to_v2 (null, null, 0).
- v3 (current) has v2's keys; its phone is a real number or null (the
  phone rule in schemas.fields: valid for its region, typed in digits).
  Stored v2 contacts load through schemas.migrations.contact_v2_to_v3,
  which drops a phone the rule refuses ("invalid_phone").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Mapping

from schemas.errors import MALFORMED_PAYLOAD, InvalidRecord, MigrationError
from schemas.fields import parse_timestamp, to_iso
from schemas.registry import current_version, migrate

SCHEMA = "contact"

# Source names, in the order survivorship prefers them on a tie.
SOURCES = ("agentclara", "clairo", "agentpro", "chatloom")

V1_KEYS = (
    "schema", "version", "source", "source_id", "email", "phone",
    "first_name", "last_name", "full_name", "company", "tags",
    "created_at", "updated_at", "extra", "warnings",
)
V2_ADDED_KEYS = ("preferred_channel", "last_seen_at", "conversation_count")


def contact_keys(version: int | None = None) -> tuple[str, ...]:
    """The keys of a contact dict of `version` (default: current), in order."""
    version = current_version(SCHEMA) if version is None else version
    if version == 1:
        return V1_KEYS
    if version in (2, 3):  # v3 has v2's keys: only its phone rule is stricter
        at = V1_KEYS.index("updated_at") + 1
        return V1_KEYS[:at] + V2_ADDED_KEYS + V1_KEYS[at:]
    raise MigrationError(f"contact has no version {version}")


@dataclass(frozen=True)
class Contact:
    """A canonical contact; `to_dict()` gives the stored/passed JSON form."""

    source: str
    source_id: str
    email: str | None = None
    phone: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    full_name: str | None = None
    company: str | None = None
    tags: tuple[str, ...] = ()
    created_at: datetime | None = None
    updated_at: datetime | None = None
    preferred_channel: str | None = None
    last_seen_at: datetime | None = None
    conversation_count: int = 0
    extra: Mapping[str, Any] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()

    def to_dict(self, version: int | None = None) -> dict[str, Any]:
        """JSON-ready dict of `version` (default: current) with exactly `contact_keys(version)`."""
        version = current_version(SCHEMA) if version is None else version
        values: dict[str, Any] = {
            "schema": SCHEMA,
            "version": version,
            "source": self.source,
            "source_id": self.source_id,
            "email": self.email,
            "phone": self.phone,
            "first_name": self.first_name,
            "last_name": self.last_name,
            "full_name": self.full_name,
            "company": self.company,
            "tags": sorted(set(self.tags)),
            "created_at": to_iso(self.created_at),
            "updated_at": to_iso(self.updated_at),
            "preferred_channel": self.preferred_channel,
            "last_seen_at": to_iso(self.last_seen_at),
            "conversation_count": self.conversation_count,
            "extra": dict(self.extra),
            "warnings": list(self.warnings),
        }
        return {key: values[key] for key in contact_keys(version)}

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> Contact:
        """Load a stored contact of any known version (migrated to current first)."""
        data = migrate(record)
        if data.get("schema") != SCHEMA:
            raise MigrationError(f"not a contact: schema {data.get('schema')!r}")
        try:
            return cls(
                source=data["source"],
                source_id=data["source_id"],
                email=data.get("email"),
                phone=data.get("phone"),
                first_name=data.get("first_name"),
                last_name=data.get("last_name"),
                full_name=data.get("full_name"),
                company=data.get("company"),
                tags=tuple(data.get("tags") or ()),
                created_at=parse_timestamp(data.get("created_at")),
                updated_at=parse_timestamp(data.get("updated_at")),
                preferred_channel=data.get("preferred_channel"),
                last_seen_at=parse_timestamp(data.get("last_seen_at")),
                conversation_count=data.get("conversation_count") or 0,
                extra=dict(data.get("extra") or {}),
                warnings=tuple(data.get("warnings") or ()),
            )
        except KeyError as missing:
            raise InvalidRecord(MALFORMED_PAYLOAD, f"stored contact lacks {missing}") from None
