"""The HubSpot sink: persons upserted as contacts, conversations as engagements, appointments as meetings.

This module adds what the engine needs on top of the transport: preparing
the portal (the `agent_sync` group and custom properties, nothing else
touched), de-duplicating and batching inputs, keys, and one outcome per
person. Dry runs are the sync step's (pipelines/steps/sync.py): it never
calls a write here in one, and tells `prepare*` not to create anything. How a reply becomes outcomes is `settle.py`; the
writes themselves are `writes.py`; engagements are `engagements.py`.

Errors: 401/403 raise `AuthError` at once; a spent daily limit or a
transient failure that outlives the retries stops the call with
`PartialProgress` carrying the outcomes finished before the stop (and the
`QuotaExhausted` / `RetriesExhausted` cause), so the caller keeps that
progress. Other 4xx on a whole request raise `RequestError`; errors of
single records are outcomes, never exceptions.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Mapping, Sequence

from hubspot.crm.properties.models import PropertyCreate, PropertyGroupCreate

from connectors import redact
from connectors.body import MAX_RESPONSE_BYTES
from connectors.errors import ConfigError, PartialProgress, QuotaExhausted, RetriesExhausted
from connectors.fieldrules import Rule, merged
from connectors.hubspot import current, mapping, meetings
from connectors.hubspot.engagements import Engagements, chunks
from connectors.hubspot.settle import RECORD_GONE, Reply
from connectors.hubspot.transport import DEFAULT_BASE_URL, SERVICE, TIMEOUT, HubSpotTransport
from connectors.hubspot.writes import Engagement, Update, Upsert, update_by_id, upsert_contacts
from connectors.ratelimit import RateLimiter
from connectors.sink import SyncOutcome
from connectors.urls import check_base_url

MAX_BATCH = 100
_STOPS = (RetriesExhausted, QuotaExhausted)

log = logging.getLogger(__name__)


class HubSpotSink:
    """`connectors.sink.ContactSink` for HubSpot (target "hubspot")."""

    target = "hubspot"

    def __init__(
        self,
        access_token: str,
        base_url: str = DEFAULT_BASE_URL,
        *,
        per_10s: int = 100,
        batch_size: int = MAX_BATCH,
        max_retries: int = 5,
        backoff_factor: float = 0.5,
        timeout: tuple[float, float] = TIMEOUT,
        ca_cert: str | None = None,
        limiter: RateLimiter | None = None,
        max_response_bytes: int = MAX_RESPONSE_BYTES,
    ) -> None:
        access_token = redact.check_secret("HUBSPOT_ACCESS_TOKEN", access_token, service=SERVICE)
        base_url = check_base_url("HUBSPOT_BASE_URL", base_url, service=SERVICE)
        if not 1 <= batch_size <= MAX_BATCH:
            raise ConfigError(SERVICE, f"batch_size must be 1..{MAX_BATCH} (got {batch_size})")
        self.batch_size = batch_size
        self.missing: list[str] = []  # what prepare() found missing (and created when asked to)
        self._prepared = False
        self._activities_prepared = False
        self._rules: tuple[Rule, ...] | None = None  # None: the built-in mapping (mapping.BUILTIN)
        self._create: tuple[str, ...] = ()  # custom properties a mapping file names, created by prepare()
        self._appointments_prepared = False
        self._transport = HubSpotTransport(
            access_token, base_url, limiter=limiter or RateLimiter([(per_10s, 10.0)]), max_retries=max_retries,
            backoff_factor=backoff_factor, timeout=timeout, ca_cert=ca_cert, max_response_bytes=max_response_bytes)
        self._engagements = Engagements(self._transport)

    def __repr__(self) -> str:
        return f"HubSpotSink(batch_size={self.batch_size})"

    # ---------------------------------------------------------------- mapping
    def properties(self, person: Mapping[str, Any]) -> dict[str, str]:
        """The contact properties for a person under the mapping in force (hashed by the engine for diffing)."""
        return mapping.properties(person, self._rules)

    def mapping_facts(self) -> dict[str, Any]:
        """What a mapping file is checked against: the portal's contact properties and the built-in rules."""
        return {"catalog": current.catalog(self._transport), "builtin": mapping.BUILTIN_RULES,
                "keys": mapping.KEY_PROPERTIES, "planned": frozenset(p["name"] for p in mapping.CUSTOM_PROPERTIES),
                "can_create": True,
                "missing_hint": "Create it in HubSpot, or set `create_missing_properties: true` to have the "
                                f"sync create it (a text property in the {mapping.GROUP_NAME} group)."}

    def use_mapping(self, rules: Sequence[Rule], create: Sequence[str] = ()) -> None:
        """Write by a mapping file's rules (over the built-in ones); `create`: properties prepare() adds."""
        self._rules = merged(mapping.BUILTIN_RULES, rules)
        self._create = tuple(create)

    def current(self, persons: Sequence[Mapping[str, Any]], names: Sequence[str],
                ids: Mapping[str, str] | None = None) -> dict[str, dict[str, Any] | None]:
        """Person key -> the contact's current values of `names` (None: no such contact), in batches of 100."""
        return current.read_current(self._transport, _distinct(persons, self._rules), names, ids or {})

    # ---------------------------------------------------------------- prepare
    def prepare(self, *, create: bool = True) -> None:
        """Create the `agent_sync` group and custom contact properties that are missing.

        Nothing that exists is changed. A property that exists with another
        type or uniqueness raises ConfigError naming it. With `create=False`
        (a dry run) the missing ones are listed in `self.missing` (and
        logged), not created.
        """
        if self._prepared:
            return
        self._ensure("contacts", mapping.CUSTOM_PROPERTIES + tuple(current.definition(n) for n in self._create),
                     create)
        self._prepared = create

    def prepare_activities(self, *, create: bool = True) -> None:
        """The same for `agent_sync_activity_key` on notes and communications."""
        if self._activities_prepared:
            return
        for object_type in mapping.ACTIVITY_OBJECTS:
            self._ensure(object_type, mapping.ACTIVITY_PROPERTIES, create)
        self._activities_prepared = create

    def prepare_appointments(self, *, create: bool = True) -> None:
        """The key property on meetings (created if missing), and an outcome option for a booked meeting.

        A portal whose `hs_meeting_outcome` has no SCHEDULED option raises
        ConfigError naming its options, before any meeting is written.
        """
        if self._appointments_prepared:
            return
        self._ensure(meetings.OBJECT_TYPE, meetings.MEETING_PROPERTIES, create)
        t = self._transport
        reply = t.call(t.properties.get_by_name_with_http_info, meetings.OBJECT_TYPE, meetings.OUTCOME_PROPERTY)
        found = None if reply.status == 404 else t.check(reply, f"read property {meetings.OUTCOME_PROPERTY}").body
        problem = meetings.outcome_problem(found)
        if problem:
            raise ConfigError(SERVICE, f"{problem}; no meeting was written")
        self._appointments_prepared = create

    def _ensure(self, object_type: str, wanted: Sequence[Mapping[str, Any]], create: bool) -> None:
        t = self._transport
        reply = t.call(t.groups.get_by_name_with_http_info, object_type, mapping.GROUP_NAME)
        group_missing = reply.status == 404
        if not group_missing:
            t.check(reply, f"read property group {mapping.GROUP_NAME}")
        reply = t.check(t.call(t.properties.get_all_with_http_info, object_type), f"list {object_type} properties")
        existing = {p.get("name"): p for p in (reply.body or {}).get("results") or [] if isinstance(p, dict)}
        _refuse_conflicts(object_type, wanted, existing)
        missing = [spec for spec in wanted if spec["name"] not in existing]
        names = ([f"{object_type} group {mapping.GROUP_NAME}"] if group_missing else []) + [
            f"{object_type} property {spec['name']}" for spec in missing]
        self.missing.extend(names)
        if not names:
            return
        if not create:
            log.info("HubSpot dry run: would create %s", ", ".join(names))
            return
        if group_missing:
            group = PropertyGroupCreate(name=mapping.GROUP_NAME, label=mapping.GROUP_LABEL, display_order=-1)
            self._created(t.call(t.groups.create_with_http_info, object_type, group),
                          f"create property group {mapping.GROUP_NAME}")
        for spec in missing:
            self._created(t.call(t.properties.create_with_http_info, object_type, PropertyCreate(**spec)),
                          f"create property {spec['name']}")
            log.info("HubSpot: created %s property %s", object_type, spec["name"])

    def _created(self, reply: Reply, what: str) -> None:
        if reply.status != 409:  # 409: created meanwhile by someone else, which is fine
            self._transport.check(reply, what)

    # ---------------------------------------------------------------- upsert
    def upsert(
        self,
        persons: Sequence[Mapping[str, Any]],
        on_batch: Callable[[list[SyncOutcome]], None] | None = None,
        payloads: Mapping[str, Mapping[str, str]] | None = None,
        known: Mapping[str, str] | None = None,
        create: bool = True,
    ) -> list[SyncOutcome]:
        """Upsert persons in batches; one outcome per distinct person key.

        `on_batch` hears each batch's outcomes as soon as HubSpot answers, so
        a run killed mid-way has recorded everything that succeeded.
        `payloads` (person key -> properties), when given, is what is sent
        instead of `properties(person)`: the write policies already applied.
        `known` (person key -> contact id, just read) are updated by id: a
        partial update HubSpot documents (an upsert by email may not be one)
        that never creates; one deleted meanwhile is upserted only if `create`.
        """
        items = _distinct(persons, self._rules, payloads)
        known = known or {}
        done: dict[str, SyncOutcome] = {}
        fresh = [item for item in items if item.keys[0] not in known]
        try:
            for batch in chunks([item for item in items if item.keys[0] in known], self.batch_size):
                fresh += self._update_known(batch, known, done, create)
                if on_batch:
                    on_batch(_expand(batch, done))
            for batch in chunks(fresh, self.batch_size):
                for item, outcome in zip(batch, upsert_contacts(self._transport, batch)):
                    done[item.keys[0]] = outcome
                if on_batch:
                    on_batch(_expand(batch, done))
        except _STOPS as exc:
            raise PartialProgress(exc, _expand(items, done),
                                  [k for item in items if item.keys[0] not in done for k in item.keys]) from None
        return _expand(items, done)

    def _update_known(self, batch: Sequence[Upsert], known: Mapping[str, str], done: dict[str, SyncOutcome],
                      create: bool) -> list[Upsert]:
        """`batch/update` of contacts by the ids just read; returns those gone meanwhile, to upsert if `create`."""
        updates = [Update(item.keys[0], known[item.keys[0]], item.properties) for item in batch]
        gone = []
        for item, update, outcome in zip(batch, updates, update_by_id(self._transport, self._transport.contacts,
                                                                      "contacts", updates)):
            if outcome.error_code == RECORD_GONE:
                gone.append(item)
            else:
                done[item.keys[0]] = SyncOutcome(item.keys[0], True, update.crm_id) if outcome.ok else outcome
        return gone if create else []

    def move(
        self,
        persons: Sequence[tuple[Mapping[str, Any], str]],
        on_batch: Callable[[list[SyncOutcome]], None] | None = None,
        payloads: Mapping[str, Mapping[str, str]] | None = None,
    ) -> list[SyncOutcome]:
        """Update re-keyed persons by contact id (batch/update); a contact deleted meanwhile is upserted.

        The old key in `agent_sync_person_key` is cleared (or replaced, for a
        person still without email), so it can never match another person.
        """
        payloads = payloads or {}
        moves = [Update(str(person["person_key"]), crm_id, {mapping.PERSON_KEY_PROPERTY: "", **payloads.get(
            str(person["person_key"]), self.properties(person))}) for person, crm_id in persons]
        outcomes: dict[str, SyncOutcome] = {}
        deleted: set[str] = set()
        for chunk in chunks(moves, self.batch_size):
            for item, outcome in zip(chunk, update_by_id(self._transport, self._transport.contacts, "contacts",
                                                         chunk)):
                if outcome.error_code == RECORD_GONE:
                    deleted.add(item.key)
                else:
                    outcomes[item.key] = SyncOutcome(item.key, True, item.crm_id) if outcome.ok else outcome
            if on_batch:
                on_batch([outcomes[item.key] for item in chunk if item.key in outcomes])
        if deleted:
            log.info("HubSpot: %d moved contact(s) no longer exist; upserting them instead", len(deleted))
            outcomes.update((o.key, o) for o in self.upsert(
                [person for person, _ in persons if str(person["person_key"]) in deleted], on_batch))
        return list(outcomes.values())

    # ----------------------------------------------------------- engagements
    def activity(self, conversation: Mapping[str, Any], contact_id: str | None) -> dict[str, Any]:
        """What HubSpot would receive for a conversation (the engine hashes it for diffing)."""
        return {"object": mapping.activity_object(conversation), "contact_id": contact_id,
                "properties": mapping.activity_properties(conversation)}

    @staticmethod
    def activity_input(conversation: Mapping[str, Any], contact_id: str | None,
                       crm_id: str | None) -> dict[str, Any]:
        """One input of `upsert_activities`: the conversation, its contact's id, its engagement's id if known."""
        return {**conversation, "contact_id": contact_id, "crm_id": crm_id}

    def upsert_activities(self, conversations: Sequence[Mapping[str, Any]]) -> list[SyncOutcome]:
        """Create or update one engagement per conversation; one outcome per activity key.

        Each conversation is a canonical conversation dict plus `contact_id`
        (the HubSpot id of its person's contact) and, when an earlier run
        stored one, `crm_id`. The outcome's `crm_id` is what to store; an
        outcome `CONTACT_GONE` says the contact must be synced again first.
        """
        outcomes: dict[str, SyncOutcome] = {}
        items = _engagements(conversations, outcomes)
        self.prepare_activities()
        return self._write_engagements(items, outcomes, mapping.ACTIVITY_OBJECTS)

    # -------------------------------------------------------------- meetings
    @staticmethod
    def appointment(appointment: Mapping[str, Any], contact_id: str | None) -> dict[str, Any]:
        """What HubSpot would receive for an appointment: its meeting (the engine hashes it for diffing)."""
        return meetings.meeting(appointment, contact_id)

    @staticmethod
    def appointment_input(appointment: Mapping[str, Any], contact_id: str | None,
                          crm_id: str | None) -> dict[str, Any]:
        """One input of `upsert_appointments`: the appointment, its contact's id, its meeting's id if known."""
        return {**appointment, "contact_id": contact_id, "crm_id": crm_id}

    def upsert_appointments(self, appointments: Sequence[Mapping[str, Any]]) -> list[SyncOutcome]:
        """Create or update one meeting per appointment on its contact; one outcome per appointment key.

        The same path as engagements (created once, updated in place by the
        stored `crm_id`, reconciled by key after a lost answer, bisected on a
        400, CONTACT_GONE when the contact was deleted or merged away).
        """
        outcomes: dict[str, SyncOutcome] = {}
        items = meetings.meeting_items(appointments, outcomes)
        self.prepare_appointments()
        return self._write_engagements(items, outcomes, (meetings.OBJECT_TYPE,))

    def _write_engagements(self, items: Sequence[Engagement], outcomes: dict[str, SyncOutcome],
                           object_types: Sequence[str]) -> list[SyncOutcome]:
        """Write `items` per object type; a stop keeps what finished (PartialProgress)."""
        try:
            for object_type in object_types:
                self._engagements.write(object_type, [i for i in items if i.object_type == object_type], outcomes)
        except _STOPS as exc:
            raise PartialProgress(exc, list(outcomes.values()),
                                  [item.key for item in items if item.key not in outcomes]) from None
        return list(outcomes.values())


def _refuse_conflicts(object_type: str, wanted: Sequence[Mapping[str, Any]],
                      existing: Mapping[str, Mapping[str, Any]]) -> None:
    """ConfigError naming every wanted property that exists with another type or uniqueness."""
    conflicts = [
        f"{spec['name']} (type {existing[spec['name']].get('type')}, "
        f"hasUniqueValue {existing[spec['name']].get('hasUniqueValue')})"
        for spec in wanted
        if spec["name"] in existing and (
            existing[spec["name"]].get("type") != spec["type"]
            or bool(existing[spec["name"]].get("hasUniqueValue")) != spec["has_unique_value"])
    ]
    if conflicts:
        raise ConfigError(SERVICE, f"{object_type} properties exist with another definition: "
                                   f"{', '.join(conflicts)}; rename or fix them in HubSpot")


def _distinct(persons: Sequence[Mapping[str, Any]], rules: Sequence[Rule] | None = None,
              payloads: Mapping[str, Mapping[str, str]] | None = None) -> list[Upsert]:
    """One input per record HubSpot would resolve; later persons win, every key is kept.

    The key comes from the full mapped properties; the properties sent are
    the person's `payloads` entry when there is one.
    """
    by_id: dict[tuple[str, str], Upsert] = {}
    for person in persons:
        key = str(person["person_key"])
        props, cuts = mapping.properties_and_cuts(person, rules)
        id_property, record_id = mapping.upsert_key(person, props)
        if payloads is not None and key in payloads:
            props = dict(payloads[key])
        item = Upsert([key], id_property, record_id, props, cuts)
        found = by_id.get((id_property, item.lookup))
        if found is None:
            by_id[(id_property, item.lookup)] = item
        else:
            found.properties, found.cuts = props, cuts
            if key not in found.keys:
                found.keys.append(key)
    return list(by_id.values())


def _expand(items: Sequence[Upsert], done: Mapping[str, SyncOutcome]) -> list[SyncOutcome]:
    """The outcome of each settled input, once per person key that maps onto it."""
    outcomes: list[SyncOutcome] = []
    for item in items:
        first = done.get(item.keys[0])
        if first is None:
            continue
        outcomes.extend(SyncOutcome(key, first.ok, first.crm_id, first.created, first.error, first.error_code,
                                    first.permanent, item.cuts) for key in item.keys)
    return outcomes


def _engagements(conversations: Sequence[Mapping[str, Any]], outcomes: dict[str, SyncOutcome]) -> list[Engagement]:
    """The engagements to write; conversations that cannot be one get their outcome in `outcomes`."""
    items: dict[str, Engagement] = {}
    for conversation in conversations:
        key = mapping.activity_key(conversation)
        if not conversation.get("contact_id"):
            outcomes[key] = SyncOutcome(key, False, error="no HubSpot contact id for this conversation",
                                        error_code="NO_CONTACT")
            continue
        try:
            props, cuts = mapping.activity_properties_and_cuts(conversation)
        except ValueError as exc:
            outcomes[key] = SyncOutcome(key, False, error=str(exc), error_code="NO_TIMESTAMP", permanent=True)
            continue
        items[key] = Engagement(key, mapping.activity_object(conversation), str(conversation["contact_id"]),
                                props, str(conversation["crm_id"]) if conversation.get("crm_id") else None, cuts)
    return list(items.values())

