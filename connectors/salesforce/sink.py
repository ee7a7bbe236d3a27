"""Salesforce sink: persons upserted as Leads or Contacts by an external id, conversations as Tasks,
appointments as Events (connectors/salesforce/events.py).

- daily volumes: sObject Collections upsert, `PATCH composite/sobjects/{Obj}/{ExtId}`
  with at most 200 records a request, `allOrNone: false`, one result per record;
- loads above `bulk_threshold` records: Bulk API 2.0 (`bulk.py`).

The external id value is the person key (`email:...` / `phone:+...`), so every
write is an idempotent upsert: reruns update, never duplicate, and a retry
after a dropped connection is safe.

Errors, by what the caller should do: a record Salesforce rejects
(REQUIRED_FIELD_MISSING, INVALID_EMAIL_ADDRESS, DUPLICATE_VALUE, ...) is a
`SyncOutcome(ok=False, error_code=...)` for that person only (`settle.py`);
a stop part-way (REQUEST_LIMIT_EXCEEDED, an expired session, retries spent)
raises `PartialProgress` carrying the outcomes finished before it and the
keys not done, with the cause (`QuotaExhausted`, `AuthError`,
`RetriesExhausted`) the engine acts on.
"""

from __future__ import annotations

import logging
import re
from dataclasses import replace
from typing import Any, Callable, Iterator, Mapping, Sequence, TypeVar

from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest, SalesforceResourceNotFound

from connectors.errors import ConfigError, ConnectorError, PartialProgress, PayloadError, QuotaExhausted
from connectors.limits import Cut
from connectors.salesforce import events, org
from connectors.salesforce.appointments import AppointmentWrites
from connectors.salesforce.bulk import upsert_bulk
from connectors.salesforce.current import MappingReads
from connectors.salesforce.mapping import (
    DEFAULT_EXTERNAL_ID_FIELD,
    DEFAULT_TASK_EXTERNAL_ID_FIELD,
    MAX_LENGTH,
    SUPPORTED_OBJECTS,
    TASK_FIELDS,
    FieldMapping,
    conversation_task,
    external_id_problem,
    task_properties_and_cuts,
)
from connectors.salesforce.settings import SERVICE, SalesforceSettings
from connectors.salesforce.settle import GONE_CODES, failure, first_error, settle_collection
from connectors.salesforce.transport import RetryPolicy, call_with_retries, connect
from connectors.sink import SyncOutcome

COLLECTION_LIMIT = 200  # sObject Collections: at most 200 records per request
DEFAULT_BULK_THRESHOLD = 2000  # Salesforce advises Bulk API above about 2,000 records
DEFAULT_BULK_JOB_SIZE = 10_000
_API_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")

T = TypeVar("T")

log = logging.getLogger(__name__)


def _chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _with_cuts(outcome: SyncOutcome, cuts: tuple[Cut, ...]) -> SyncOutcome:
    return replace(outcome, truncated=cuts) if cuts else outcome


class SalesforceSink(AppointmentWrites, MappingReads):
    """Upserts persons into Lead or Contact by an external id field (see module docs).

    `sf` is a ready `Salesforce` client or `SalesforceSettings` (connected on
    first use). `bulk_threshold`: more records than this in one `upsert()`
    call go through Bulk API 2.0 instead of sObject Collections (default
    2,000, Salesforce's own advice). `bulk_poll_interval_s` is the first wait
    of simple-salesforce's job polling (it backs off from there up to 2 s).
    `min_api_remaining`: stop with QuotaExhausted once fewer daily API calls
    than this remain (per `Sforce-Limit-Info`), leaving headroom for other
    integrations. Dry runs are the sync step's (pipelines/steps/sync.py): it
    never calls a write here in one.
    """

    target = "salesforce"

    def __init__(
        self,
        sf: Salesforce | SalesforceSettings,
        *,
        object_name: str | None = None,
        external_id_field: str = DEFAULT_EXTERNAL_ID_FIELD,
        placeholders: Mapping[str, str] | None = None,
        sources_field: str | None = None,
        bulk_threshold: int = DEFAULT_BULK_THRESHOLD,
        bulk_job_size: int = DEFAULT_BULK_JOB_SIZE,
        bulk_poll_interval_s: float = 5.0,
        collection_size: int = COLLECTION_LIMIT,
        activities: bool = False,
        task_external_id_field: str = DEFAULT_TASK_EXTERNAL_ID_FIELD,
        appointments: bool = False,
        appointment_external_id_field: str = events.DEFAULT_APPOINTMENT_EXTERNAL_ID_FIELD,
        retry: RetryPolicy = RetryPolicy(),
        min_api_remaining: int = 0,
    ) -> None:
        if isinstance(sf, SalesforceSettings):
            sf.validate()
            self._settings: SalesforceSettings | None = sf
            self._sf: Salesforce | None = None
            object_name = object_name or sf.object_name
        else:
            self._settings = None
            self._sf = sf
        object_name = object_name or "Lead"
        if object_name not in SUPPORTED_OBJECTS:
            raise ConfigError(SERVICE, f"object_name must be one of {', '.join(SUPPORTED_OBJECTS)}, not {object_name!r}")
        for name in (external_id_field, task_external_id_field, appointment_external_id_field, sources_field):
            if name is not None and not _API_NAME.match(name):
                raise ConfigError(SERVICE, f"not a Salesforce field API name: {name!r}")
        if not 1 <= collection_size <= COLLECTION_LIMIT:
            raise ConfigError(SERVICE, f"collection_size must be 1..{COLLECTION_LIMIT}")
        if bulk_threshold < 0 or bulk_job_size < 1:
            raise ConfigError(SERVICE, "bulk_threshold must be >= 0 and bulk_job_size >= 1")
        self.object_name = object_name
        self.external_id_field = external_id_field
        self.mapping = FieldMapping(object_name, external_id_field, dict(placeholders or {}), sources_field)
        self.bulk_threshold = bulk_threshold
        self.bulk_job_size = bulk_job_size
        self.bulk_poll_interval_s = bulk_poll_interval_s
        self.collection_size = collection_size
        self.activities = activities
        self.task_external_id_field = task_external_id_field
        self.appointments = appointments
        self.appointment_external_id_field = appointment_external_id_field
        self.retry = retry
        self.min_api_remaining = min_api_remaining
        self._prepared = False
        self._describes: dict[str, dict[str, Any]] = {}
        self._task_lengths: Mapping[str, int] = MAX_LENGTH
        self._event_lengths: Mapping[str, int] = MAX_LENGTH
        self._on_batch: Callable[[list[SyncOutcome]], None] | None = None
        self._emitted = 0

    def __repr__(self) -> str:
        return f"SalesforceSink(object_name={self.object_name!r}, external_id_field={self.external_id_field!r})"

    # ------------------------------------------------------------ plumbing
    @property
    def sf(self) -> Salesforce:
        if self._sf is None:
            assert self._settings is not None
            self._sf = connect(self._settings)
        return self._sf

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        return call_with_retries(self.retry, what, fn)

    @property
    def api_usage(self) -> tuple[int, int] | None:
        """(used, total) daily API calls as last reported by Salesforce, if known."""
        usage = getattr(self._sf, "api_usage", None) or {}
        value = usage.get("api-usage")
        return (value.used, value.total) if value else None

    def _check_headroom(self) -> None:
        usage = self.api_usage
        if self.min_api_remaining and usage and usage[1] - usage[0] < self.min_api_remaining:
            raise QuotaExhausted(SERVICE, f"only {usage[1] - usage[0]} daily API calls left "
                                          f"(min_api_remaining={self.min_api_remaining}); resume later")

    # ------------------------------------------------------------- prepare
    def prepare(self, *, create: bool = True) -> None:
        """Describe the object(s) and fail with ONE ConfigError naming every field to fix. Writes nothing.

        `create` is the sink interface's (HubSpot creates missing properties); the org's set-up is
        never written here, so it changes nothing.

        The optional roll-up fields (mapping.ROLLUP_FIELDS) the object has are
        written from now on; the missing ones are not asked for. Values are
        capped to the field lengths the describe gives from now on.
        """
        fields = self._describe(self.object_name)
        problems = org.field_problems(fields, self.object_name, self.mapping.fields_needed(),
                                      self.external_id_field, "Agent Contact Id")
        present = org.rollup_fields(fields)
        self.mapping = replace(self.mapping, rollup_fields=present, lengths=org.lengths(fields))
        if self.activities:
            tasks = self._describe("Task")
            problems += org.field_problems(tasks, "Task", TASK_FIELDS + (self.task_external_id_field,),
                                           self.task_external_id_field, "Agent Conversation Id")
            self._task_lengths = org.lengths(tasks)
        if self.appointments:
            found = self._describe(events.OBJECT)
            problems += org.field_problems(found, events.OBJECT, events.EVENT_FIELDS + (
                self.appointment_external_id_field,), self.appointment_external_id_field, "Agent Appointment Id",
                setup_object="Activity")
            self._event_lengths = org.lengths(found)
        if problems:
            raise ConfigError(
                SERVICE,
                "the org is not set up for the sync (nothing was written); fix in Setup and rerun:\n  - "
                + "\n  - ".join(problems),
            )
        self._prepared = True
        log.info("salesforce: %s ready, upsert key %s, conversation roll-up fields: %s", self.object_name,
                 self.external_id_field, ", ".join(present) or "none")

    def _describe(self, obj: str) -> dict[str, Any]:
        """The object's fields by name (one describe call per object and sink)."""
        if obj not in self._describes:
            describe = self._call(f"describe {obj}", lambda: getattr(self.sf, obj).describe())
            self._describes[obj] = {f.get("name"): f for f in (describe or {}).get("fields", [])}
        return self._describes[obj]

    # -------------------------------------------------------------- upsert
    def properties(self, person: Mapping[str, Any]) -> dict[str, Any]:
        return self.mapping.properties(person)

    def upsert(
        self,
        persons: Sequence[Mapping[str, Any]],
        on_batch: Callable[[list[SyncOutcome]], None] | None = None,
        payloads: Mapping[str, Mapping[str, Any]] | None = None,
        known: Mapping[str, str] | None = None,
        create: bool = True,
    ) -> list[SyncOutcome]:
        """Upsert persons; one outcome per distinct person_key (a later duplicate wins).

        `on_batch` hears the outcomes of each collection or bulk job as soon
        as Salesforce answers, so a run killed mid-way has recorded them.
        `payloads` (person key -> fields, external id included), when given,
        is what is sent instead of `properties(person)`: the write policies applied.
        `known`/`create` are HubSpotSink's; here an upsert by external id is a partial update already.
        """
        self._on_batch, self._emitted = on_batch, 0
        if not self._prepared:
            self.prepare()  # the describe's field lengths decide the payload
        outcomes: list[SyncOutcome] = []
        items: dict[str, dict[str, Any]] = {}
        cuts: dict[str, tuple[Cut, ...]] = {}
        for person in persons:
            key = person.get("person_key")
            problem = external_id_problem(key)
            if problem:
                outcomes.append(failure(str(key), "INVALID_EXTERNAL_ID", problem))
                continue
            items.pop(key, None)
            items[key], cuts[key] = self.mapping.properties_and_cuts(person)
            if payloads is not None and key in payloads:
                items[key] = dict(payloads[key])
        try:
            records = list(items.items())
            if len(records) > self.bulk_threshold:
                upsert_bulk(getattr(self.sf.bulk2, self.object_name), self._call, records, obj=self.object_name,
                            key_field=self.external_id_field, job_size=self.bulk_job_size,
                            poll_interval_s=self.bulk_poll_interval_s,
                            done=lambda done, finished: self._add(outcomes, done, cuts, finished))
            else:
                self._upsert_collections(self.object_name, self.external_id_field, records, outcomes, cuts)
            self._flush(outcomes)
        except ConnectorError as exc:
            finished = {o.key for o in outcomes}
            raise PartialProgress(exc, outcomes, [k for k in items if k not in finished]) from None
        ok = sum(o.ok for o in outcomes)
        log.info("salesforce: upserted %d %s (%d created, %d failed)", ok, self.object_name,
                 sum(o.created for o in outcomes), len(outcomes) - ok)
        return outcomes

    def _add(self, outcomes: list[SyncOutcome], done: Sequence[SyncOutcome], cuts: Mapping[str, tuple[Cut, ...]],
             finished: bool = True) -> None:
        """Keep a batch's outcomes (with each record's cuts), tell `on_batch`, then mind the API headroom."""
        outcomes += [_with_cuts(o, cuts.get(o.key, ())) for o in done]
        self._flush(outcomes)
        if finished:
            self._check_headroom()

    def move(
        self,
        persons: Sequence[tuple[Mapping[str, Any], str]],
        on_batch: Callable[[list[SyncOutcome]], None] | None = None,
        payloads: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> list[SyncOutcome]:
        """Update re-keyed persons by record Id, their external id set to the new key (`payloads` as upsert's).

        One PATCH per record: a re-key is rare (a phone-only customer who
        later gives an email), so this path stays simple. A record deleted in
        Salesforce meanwhile is upserted instead.
        """
        if not self._prepared:
            self.prepare()
        outcomes: list[SyncOutcome] = []
        gone: list[Mapping[str, Any]] = []
        for person, record_id in persons:
            key = str(person["person_key"])
            error = self._call(f"update {self.object_name} {record_id}",
                               lambda: self._update_by_id(record_id, (payloads or {}).get(key) or self.properties(person)))
            if error is not None and error[0] in GONE_CODES:
                gone.append(person)
                continue
            outcome = SyncOutcome(key=key, ok=True, crm_id=record_id) if error is None else failure(key, *error)
            outcomes.append(outcome)
            if on_batch:
                on_batch([outcome])
        if gone:
            log.info("salesforce: %d moved %s record(s) no longer exist; upserting them instead",
                     len(gone), self.object_name)
            outcomes += self.upsert(gone, on_batch)
        return outcomes

    def _update_by_id(self, record_id: str, fields: Mapping[str, Any]) -> tuple[str, str] | None:
        """None when updated; else the record-level (errorCode, message)."""
        try:
            getattr(self.sf, self.object_name).update(record_id, dict(fields))
        except SalesforceResourceNotFound:
            return "NOT_FOUND", f"{self.object_name} {record_id} does not exist"
        except SalesforceMalformedRequest as exc:
            return first_error(exc.content)
        return None

    def _upsert_collections(self, obj: str, key_field: str, records: Sequence[tuple[str, dict[str, Any]]],
                            outcomes: list[SyncOutcome], cuts: Mapping[str, tuple[Cut, ...]]) -> None:
        path = f"composite/sobjects/{obj}/{key_field}"
        for chunk in _chunks(records, self.collection_size):
            body = {"allOrNone": False, "records": [{"attributes": {"type": obj}, **fields} for _, fields in chunk]}
            results = self._call(f"upsert {len(chunk)} {obj}",
                                 lambda: self.sf.restful(path, method="PATCH", json=body))
            try:
                settled = settle_collection([key for key, _ in chunk], results)
            except ValueError as exc:
                raise PayloadError(SERVICE, f"upsert {obj}: {exc}") from None
            self._add(outcomes, settled, cuts)

    def _flush(self, outcomes: list[SyncOutcome]) -> None:
        """Hand the outcomes not yet reported to the upsert's `on_batch`."""
        if self._on_batch and len(outcomes) > self._emitted:
            self._on_batch(outcomes[self._emitted:])
            self._emitted = len(outcomes)

    # ---------------------------------------------------------- activities
    @staticmethod
    def activity(conversation: Mapping[str, Any], contact_id: str | None) -> dict[str, Any]:
        """The Task for a conversation, linked to the Lead/Contact `contact_id` (hashed for diffing)."""
        return conversation_task(conversation, who_id=contact_id)

    @staticmethod
    def activity_input(conversation: Mapping[str, Any], contact_id: str | None,
                       crm_id: str | None) -> dict[str, Any]:
        """One input of `upsert_activities` (the Task is keyed by its external id, not by `crm_id`)."""
        return conversation_task(conversation, who_id=contact_id)

    def upsert_activities(self, activities: Sequence[Mapping[str, Any]]) -> list[SyncOutcome]:
        """Upsert one Task per conversation, keyed by `task_external_id_field` (reruns never duplicate).

        Each activity: conversation_key, person_key (or who_id), subject,
        description (transcript), activity_date, status. Outcomes are keyed by
        conversation_key. Needs `activities=True` (prepare checks Task too).
        """
        if not self.activities:
            raise ConfigError(SERVICE, "activities are off: construct the sink with activities=True")
        if not self._prepared:
            self.prepare()  # the Task describe's lengths decide the payload
        outcomes: list[SyncOutcome] = []
        items: dict[str, dict[str, Any]] = {}
        cuts: dict[str, tuple[Cut, ...]] = {}
        for activity in activities:
            key = activity.get("conversation_key")
            problem = external_id_problem(key)
            if problem or not (activity.get("who_id") or activity.get("person_key")):
                outcomes.append(failure(str(key), "INVALID_EXTERNAL_ID",
                                        problem or "activity has neither who_id nor person_key"))
                continue
            items.pop(key, None)
            items[key], cuts[key] = task_properties_and_cuts(
                activity, object_name=self.object_name, external_id_field=self.external_id_field,
                task_external_id_field=self.task_external_id_field, lengths=self._task_lengths)
        return self._upsert_keyed("Task", self.task_external_id_field, items, cuts, outcomes)

    def _upsert_keyed(self, obj: str, key_field: str, items: Mapping[str, dict[str, Any]],
                      cuts: Mapping[str, tuple[Cut, ...]], outcomes: list[SyncOutcome]) -> list[SyncOutcome]:
        """Upsert activity records by their external id; a stop keeps what finished."""
        self._on_batch, self._emitted = None, 0
        try:
            self._upsert_collections(obj, key_field, list(items.items()), outcomes, cuts)
        except ConnectorError as exc:
            finished = {o.key for o in outcomes}
            raise PartialProgress(exc, outcomes, [k for k in items if k not in finished]) from None
        return outcomes
