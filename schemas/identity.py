"""Who is who: the matching rule and survivorship, as pure functions.

Matching rule (DESIGN.md, "Matching people"), over canonical contacts:

1. A contact with a valid email belongs to the person "email:<email>".
   Two different emails are never merged, whatever phone they share.
2. A contact without an email but with an E.164 phone joins the ONE emailed
   person who has that phone (some contact of that person carries it).
3. When no emailed person, or several, have that phone, the contact is a
   person of its own, "phone:<E.164>"; every email-less contact with that
   phone shares that person.
4. Contacts with neither were quarantined by the normalizers; they get no key.

A phone takes part only when it is a real number (schemas.fields, the phone
rule: valid for its region per libphonenumber, typed in digits); a current
canonical contact carries no other. Contacts of an older schema version are
brought to the current one first (schemas.migrations), so a phone an older
rule let through (`+15551234567`, `555-CALL-NOW`) never keys or joins anyone.

`assign_person_keys` is the in-memory reference implementation of this rule;
the state store implements the same rule in SQL and is tested against it.

Survivorship (`merge_person`): contacts are ranked most recent first
(`updated_at`, else `created_at`; undated last), ties broken by source
priority (SOURCE_PRIORITY, unknown sources after, by name), then source_id,
then content. Each field takes its value from the best-ranked contact that
has a non-empty one, except: the name (first, last, full) comes as one unit
from the best-ranked contact with the most complete name (first and last
beat only one); email is the key's email (null for phone persons); phone is
the key's phone for phone persons. tags = sorted union; source_ids =
{source: sorted ids}; created_at = earliest; updated_at = latest of all
`created_at`/`updated_at`; extra = merged key by key, like company (only
when some contact has one). Input order never changes the result.

Conversation roll-ups (contacts v2): `merge_person` gives a first summary
from the contacts themselves (preferred_channel of the most recently seen
contact, latest last_seen_at, sum of conversation_count, channels = the
contacts' channels). `fold_conversations` then replaces it with what the
person's stored conversations say, when it has any: their number, the
latest activity time, the channel of the latest one, every channel used
(`conversation_rollup` builds that from per-channel SQL aggregates).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

from schemas.errors import InvalidRecord
from schemas.fields import normalize_email, normalize_phone, parse_timestamp, to_iso
from schemas.hashing import content_hash
# The key format lives in schemas.keys; canonical_person_key stays importable from here.
from schemas.keys import canonical_person_key, parse_person_key, person_key_for_email, person_key_for_phone
from schemas.registry import is_current, migrate

SOURCE_PRIORITY = ("agentclara", "clairo", "agentpro", "chatloom")

PERSON_KEYS = (
    "person_key", "email", "phone", "first_name", "last_name", "full_name", "company",
    "tags", "source_ids", "created_at", "updated_at",
)
# Added to a person only when one of its contacts is a contact v2.
PERSON_V2_KEYS = ("preferred_channel", "last_seen_at", "conversation_count", "channels")

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROSECOND = timedelta(microseconds=1)

Contact = Mapping[str, Any]
SourceRef = tuple[str, str]


def person_key(email: Any, phone: Any, *, region: str = "US") -> str | None:
    """"email:<email>" for a valid email, else "phone:<E.164>", else None."""
    return canonical_person_key(normalize_email(email), normalize_phone(phone, region))


def assign_person_keys(contacts: Iterable[Contact]) -> dict[SourceRef, str]:
    """Person key of every (source, source_id), by the matching rule above.

    Expects canonical contacts (email and phone already normalized), of any
    schema version (older ones are migrated first). When a (source,
    source_id) appears more than once, only its best-ranked record counts
    (see `latest_per_source_record`). Contacts with neither email nor phone
    are left out of the result.
    """
    records = [_current(c) for c in latest_per_source_record(contacts)]
    owners: dict[str, set[str]] = defaultdict(set)
    for contact in records:
        email, phone = contact.get("email"), contact.get("phone")
        if email and phone:
            owners[phone].add(email)
    keys: dict[SourceRef, str] = {}
    for contact in records:
        email, phone = contact.get("email"), contact.get("phone")
        if email:
            key = person_key_for_email(email)
        elif phone:
            phone_owners = owners.get(phone, set())
            key = person_key_for_email(next(iter(phone_owners))) if len(phone_owners) == 1 \
                else person_key_for_phone(phone)
        else:
            continue
        keys[_ref(contact)] = key
    return keys


def latest_per_source_record(contacts: Iterable[Contact]) -> list[Contact]:
    """One contact per (source, source_id): the best-ranked one (see `merge_person`)."""
    by_ref: dict[SourceRef, list[Contact]] = defaultdict(list)
    for contact in contacts:
        by_ref[_ref(contact)].append(contact)
    return [group[0] if len(group) == 1 else min(group, key=_rank) for group in by_ref.values()]


def _current(contact: Contact) -> Contact:
    """The contact at its schema's current version (as the store loads it)."""
    return contact if is_current(contact) else migrate(contact)


def group_persons(contacts: Iterable[Contact]) -> dict[str, dict[str, Any]]:
    """Every person, merged, by person key (assign_person_keys + merge_person)."""
    records = {_ref(c): _current(c) for c in latest_per_source_record(contacts)}
    members: dict[str, list[Contact]] = defaultdict(list)
    for ref, key in assign_person_keys(records.values()).items():
        members[key].append(records[ref])
    return {key: merge_person(key, group) for key, group in sorted(members.items())}


def merge_person(person_key: str, contacts: Sequence[Contact]) -> dict[str, Any]:
    """The person dict (docs/architecture.md) for one key, by the survivorship rule."""
    if not contacts:
        raise ValueError(f"no contacts for person {person_key!r}")
    parsed = parse_person_key(person_key)
    if parsed is None:
        raise ValueError(f"not a person key: {person_key!r}")
    kind, value = parsed
    # One contact is most persons: nothing to rank (the rank's content hash is the costly part).
    ranked = list(contacts) if len(contacts) == 1 else sorted(contacts, key=_rank)
    name = _best_name(ranked)
    source_ids: dict[str, set[str]] = defaultdict(set)
    for contact in ranked:
        source_ids[str(contact.get("source"))].add(str(contact.get("source_id")))
    created = [t for c in ranked if (t := _time(c.get("created_at"))) is not None]
    touched = created + [t for c in ranked if (t := _time(c.get("updated_at"))) is not None]
    person: dict[str, Any] = {
        "person_key": person_key,
        "email": value if kind == "email" else None,
        "phone": value if kind == "phone" else _first(ranked, "phone"),
        "first_name": name.get("first_name"),
        "last_name": name.get("last_name"),
        "full_name": name.get("full_name"),
        "company": _first(ranked, "company"),
        "tags": sorted({tag for c in ranked for tag in c.get("tags") or ()}),
        "source_ids": {source: sorted(ids) for source, ids in sorted(source_ids.items())},
        "created_at": to_iso(min(created)) if created else None,
        "updated_at": to_iso(max(touched)) if touched else None,
    }
    if any(_version(c) >= 2 for c in ranked):
        person.update(_conversation_summary(ranked))
    extra = _merged_extra(ranked)
    if extra:  # only when there is some: a person without any stays the dict it was
        person["extra"] = extra
    return person


def _merged_extra(ranked: Sequence[Contact]) -> dict[str, Any]:
    """The contacts' `extra`, merged per key: each key's value from the best-ranked contact that has one.

    The rule `company` follows, key by key, so a mapping file's `from:
    extra.<key>` reads it. The CRM hash is over what a mapping sends, not
    over this dict, so the built-in mappings (which read no extra) send
    and hash exactly what they did before.
    """
    merged: dict[str, Any] = {}
    for contact in ranked:
        extra = contact.get("extra")
        if not isinstance(extra, Mapping):
            continue
        for key, value in extra.items():
            if str(key) not in merged and value not in (None, "", [], {}):
                merged[str(key)] = value
    return dict(sorted(merged.items()))


def _conversation_summary(ranked: Sequence[Contact]) -> dict[str, Any]:
    seen = [(t, c) for c in ranked if (t := _time(c.get("last_seen_at"))) is not None]
    latest_seen = max(t for t, _ in seen) if seen else None
    by_seen = sorted(ranked, key=lambda c: -_micros(_time(c.get("last_seen_at"))))
    return {
        "preferred_channel": _first(by_seen, "preferred_channel"),
        "last_seen_at": to_iso(latest_seen),
        "conversation_count": sum(int(c.get("conversation_count") or 0) for c in ranked),
        "channels": sorted({str(c["preferred_channel"]) for c in ranked if c.get("preferred_channel")}),
    }


def conversation_rollup(per_channel: Iterable[tuple[Any, int, Any]]) -> dict[str, Any] | None:
    """A person's roll-up from (channel, conversations, latest activity time) per channel.

    Gives conversation_count (the sum), last_seen_at (the latest time, ISO
    UTC), preferred_channel (the channel of the latest conversation; ties
    by channel name) and channels (sorted); None when there are none.
    """
    rows = [(str(channel or "other"), int(count), _time(latest)) for channel, count, latest in per_channel if count]
    if not rows:
        return None
    dated = [(t, channel) for channel, _, t in rows if t is not None]
    latest = min(dated, key=lambda pair: (-_micros(pair[0]), pair[1])) if dated else None
    return {
        "preferred_channel": latest[1] if latest else sorted(channel for channel, _, _ in rows)[0],
        "last_seen_at": to_iso(latest[0]) if latest else None,
        "conversation_count": sum(count for _, count, _ in rows),
        "channels": sorted({channel for channel, _, _ in rows}),
    }


def fold_conversations(person: Mapping[str, Any], rollup: Mapping[str, Any] | None) -> dict[str, Any]:
    """The person with its stored conversations' roll-up over the contacts' own summary."""
    folded = dict(person)
    if rollup:
        folded.update({key: rollup[key] for key in PERSON_V2_KEYS})
    return folded


def _rank(contact: Contact) -> tuple[Any, ...]:
    """Sort key, best first: most recent, source priority, source_id, content."""
    recency = _time(contact.get("updated_at")) or _time(contact.get("created_at"))
    source = str(contact.get("source"))
    priority = SOURCE_PRIORITY.index(source) if source in SOURCE_PRIORITY else len(SOURCE_PRIORITY)
    return (
        recency is None,
        -_micros(recency),
        priority,
        source,
        str(contact.get("source_id")),
        content_hash(dict(contact)),
    )


def _best_name(ranked: Sequence[Contact]) -> Contact:
    def completeness(contact: Contact) -> int:
        return bool(contact.get("first_name")) + bool(contact.get("last_name"))

    named = [c for c in ranked if c.get("first_name") or c.get("last_name") or c.get("full_name")]
    if not named:
        return {}
    top = max(completeness(c) for c in named)
    return next(c for c in named if completeness(c) == top)


def _first(ranked: Sequence[Contact], field: str) -> Any:
    for contact in ranked:
        value = contact.get(field)
        if value not in (None, "", [], {}):
            return value
    return None


def _time(value: Any) -> datetime | None:
    try:
        return parse_timestamp(value)
    except InvalidRecord:
        return None


def _micros(value: datetime | None) -> int:
    return 0 if value is None else (value - _EPOCH) // _MICROSECOND


def _version(contact: Contact) -> int:
    version = contact.get("version")
    return version if isinstance(version, int) and not isinstance(version, bool) else 1


def _ref(contact: Contact) -> SourceRef:
    return (str(contact.get("source")), str(contact.get("source_id")))
