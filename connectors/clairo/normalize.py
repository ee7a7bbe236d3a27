"""Clairo payloads -> canonical contact (from a brief) and conversation dicts.

A Clairo brief (`GET /briefs/{id}`) is the only place Clairo names a person:
its `answers` is a flat object from the discovery agent's question keys to
string answers, and the keys differ per agent. `contact_from_brief` finds:

1. each field by key: a key matches an alias when both are equal after
   case-folding and dropping everything but letters and digits
   ("Email address" == "email_address" == "emailaddress"); aliases are tried
   in list order, the first one with a non-blank answer wins (for email and phone: the
   first that is valid; an invalid one adds "invalid_email"/"invalid_phone"
   to `warnings`);
2. then, for email and phone only, by the value's shape, among the answers
   no alias claimed: the first (in payload order) holding a valid email
   (anywhere in its text), or made only of phone characters and parsing as
   a valid number.

Answers not used for a field are kept in the contact's `extra` under their
original keys (e.g. {"budget": "$50-100/month"}). A brief without answers
(a `GET /briefs` list item) has no email or phone and is quarantined with
`no_valid_email_or_phone`: fetch the detail first.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from schemas._common import (
    field_id, is_blank, optional_field_id, person_fields, prepare, read_email, read_phone, read_time,
    require_email_or_phone, require_mapping, text_or_none,
)
from schemas.contact import Contact
from schemas.conversation import build_conversation, map_channel, map_status, normalize_messages
from schemas.errors import InvalidRecord
from schemas.fields import NameParts, name_from_parts, normalize_email, normalize_phone, parse_name

SOURCE = "clairo"

DEFAULT_ALIASES: Mapping[str, Sequence[str]] = {
    "email": ("email", "email address", "e-mail", "e-mail address", "work email",
              "business email", "your email", "contact email", "mail"),
    "phone": ("phone", "phone number", "mobile", "mobile number", "mobile phone", "cell",
              "cell phone", "telephone", "telephone number", "tel", "work phone",
              "your phone", "contact number", "whatsapp", "whatsapp number"),
    "full_name": ("name", "full name", "your name", "contact name"),
    "first_name": ("first name", "firstname", "given name", "first"),
    "last_name": ("last name", "lastname", "surname", "family name", "last"),
    "company": ("company", "company name", "organisation", "organization",
                "organisation name", "organization name", "business", "business name",
                "employer"),
}

# An answer that is only a phone number: digits and the usual separators.
_PHONE_SHAPE = re.compile(r"\+?[\d\s().\-/]{7,}")


def contact_from_brief(
    brief: Mapping[str, Any],
    *,
    region: str = "US",
    aliases: Mapping[str, Sequence[str]] = DEFAULT_ALIASES,
) -> dict[str, Any]:
    """Canonical contact from a Clairo brief detail; source_id is the brief id."""
    source_id = field_id(require_mapping(brief, "Clairo brief"), "id", "Clairo brief")
    what = f"Clairo brief {source_id}"
    record, warnings = prepare(brief, what)
    answers = record.get("answers")
    answers = require_mapping({} if answers is None else answers, f"{what} answers")
    finder = _AnswerFinder(answers, aliases)

    # By key first, for every field, so that the shape scan below only
    # looks at answers no alias claimed (a company answer stays a company).
    email = _first_valid(finder.by_alias("email"), lambda v: read_email(v, warnings))
    phone = _first_valid(finder.by_alias("phone"), lambda v: read_phone(v, region, warnings))
    name = _name(finder)
    company = text_or_none(_first(finder.by_alias("company")))
    if email is None:
        email = finder.by_shape(_email_in_text)
    if phone is None:
        phone = finder.by_shape(lambda v: _phone_shaped(v, region))
    require_email_or_phone(email, phone, what, warnings)
    created = read_time(record.get("createdAt"), "created_at", warnings)
    updated = read_time(record.get("updatedAt"), "updated_at", warnings)
    return Contact(
        source=SOURCE,
        source_id=source_id,
        **person_fields(email, phone, name),
        company=company,
        created_at=created,
        updated_at=updated,
        # v2: a brief is filed at the end of a web-chat discovery conversation.
        preferred_channel="webchat",
        last_seen_at=updated or created,
        extra=finder.unused(),
        warnings=tuple(warnings),
    ).to_dict()


def normalize_conversation(
    raw: Mapping[str, Any],
    *,
    region: str = "US",
    contact_source_id: str | None = None,
    email: str | None = None,
    phone: str | None = None,
) -> dict[str, Any]:
    """Canonical conversation from a Clairo conversation (list item or detail).

    Clairo conversations name no person: pass the brief's id and its
    contact's email/phone when the conversation is known to belong to one.
    Channel is web chat unless the payload says otherwise.
    """
    source_id = field_id(require_mapping(raw, "Clairo conversation"), "id", "Clairo conversation")
    record, warnings = prepare(raw, "Clairo conversation")
    messages = normalize_messages(record.get("messages"), warnings=warnings)
    return build_conversation(
        source=SOURCE, source_id=source_id, contact_source_id=contact_source_id, messages=messages, warnings=warnings,
        email=read_email(email, warnings), phone=read_phone(phone, region, warnings),
        channel=map_channel(record.get("channel"), default="webchat", warnings=warnings),
        status=map_status(record.get("status"), warnings=warnings),
        subject=text_or_none(record.get("title") or record.get("subject")), count_hint=record.get("messageCount"),
        started_at=read_time(record.get("createdAt"), "started_at", warnings),
        last_activity_at=read_time(record.get("updatedAt"), "updated_at", warnings),
    )


def conversation_from_brief(brief: Mapping[str, Any], *, region: str = "US") -> dict[str, Any]:
    """The discovery conversation embedded in a brief detail, linked to the brief's contact.

    Raises InvalidRecord when the brief has no embedded conversation with an
    id. When the brief's contact is itself invalid the conversation is still
    returned, without person hints.
    """
    record = require_mapping(brief, "Clairo brief")
    brief_id = field_id(record, "id", "Clairo brief")
    embedded = dict(require_mapping(record.get("conversation"), f"Clairo brief {brief_id} conversation"))
    embedded.setdefault("id", record.get("conversationId"))
    embedded.setdefault("createdAt", record.get("createdAt"))
    try:
        contact = contact_from_brief(record, region=region)
    except InvalidRecord:
        contact = {"email": None, "phone": None}
    return normalize_conversation(
        embedded, region=region, contact_source_id=brief_id,
        email=contact["email"], phone=contact["phone"],
    )


class _AnswerFinder:
    """Looks answers up by alias or by shape, remembering which keys it used."""

    def __init__(self, answers: Mapping[str, Any], aliases: Mapping[str, Sequence[str]]) -> None:
        self._answers = answers
        self._aliases = aliases
        self._index: dict[str, list[str]] = {}
        for key in answers:
            if isinstance(key, str):
                self._index.setdefault(_lookup_key(key), []).append(key)
        self._used: set[str] = set()

    def by_alias(self, field: str) -> list[Any]:
        """Non-blank answers whose key is an alias of `field`, in alias order (marked used)."""
        found = []
        for alias in self._aliases.get(field, ()):
            for key in self._index.get(_lookup_key(alias), ()):
                if key in self._used:
                    continue
                self._used.add(key)  # a blank answer to an email question is no "extra"
                if not is_blank(self._answers[key]):
                    found.append(self._answers[key])
        return found

    def by_shape(self, read: Any) -> str | None:
        """The first value `read` accepts among answers not used yet (marked used)."""
        for key, value in self._answers.items():
            if key in self._used:
                continue
            result = read(value)
            if result is not None:
                self._used.add(key)
                return result
        return None

    def unused(self) -> dict[str, Any]:
        return {key: value for key, value in self._answers.items() if key not in self._used}


def _lookup_key(key: str) -> str:
    return "".join(ch for ch in key.casefold() if ch.isalnum())


def _first(values: list[Any]) -> Any:
    return values[0] if values else None


def _first_valid(values: list[Any], read: Any) -> str | None:
    for value in values:
        result = read(value)
        if result is not None:
            return result
    return None


def _email_in_text(value: Any) -> str | None:
    if not isinstance(value, str) or "@" not in value:
        return None
    for token in value.split():
        email = normalize_email(token.strip("<>()[]{},;:'\"."))
        if email is not None:
            return email
    return None


def _phone_shaped(value: Any, region: str) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not _PHONE_SHAPE.fullmatch(value.strip()):
        return None
    return normalize_phone(value, region)


def _name(finder: _AnswerFinder) -> NameParts:
    """Separate first/last answers win for first/last; a full-name answer for full."""
    full = parse_name(_first(finder.by_alias("full_name")))
    parts = name_from_parts(_first(finder.by_alias("first_name")), _first(finder.by_alias("last_name")))
    return NameParts(parts.first or full.first, parts.last or full.last, full.full or parts.full)


def brief_contact(brief: Any, *, region: str = "US") -> dict[str, Any]:
    """The lead of a Clairo brief detail, linked to the brief's conversation.

    `contact_from_brief`, plus the brief's `conversationId` kept in the
    contact's `extra` (source data without a canonical field): the
    conversation is landed from Clairo's conversation listing and becomes a
    CRM activity of this person. An answer keyed "conversationId" would be
    overwritten.
    """
    contact = contact_from_brief(brief, region=region)
    conversation_id = optional_field_id(brief, "conversationId")  # one that cannot be a key links nothing
    if conversation_id is not None:
        contact["extra"] = {**contact["extra"], "conversationId": conversation_id}
    return contact
