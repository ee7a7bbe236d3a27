"""The HubSpot sink: persons upserted as contacts, conversations as engagements.

Everything goes through `hubspot-api-client`; this module adds batching,
keys, per-record outcomes and the error policy.

Retries: the client's urllib3 `Retry` is the one retry layer. It retries
429 and 500/502/503/504 and dropped connections with exponential backoff and
jitter, honours `Retry-After` (capped), and allows POST, since a batch upsert
is idempotent. A spent *daily* limit is not retried (waiting seconds cannot
help): it surfaces as `QuotaExhausted`. Every attempt, retries included,
first takes a slot from a client-side limiter (`per_10s` requests per 10 s),
so 429 is a rare event rather than the brake.

Errors: 401/403 raise `AuthError` at once; a transient failure that outlives
the retry budget raises `RetriesExhausted`, a spent daily limit
`QuotaExhausted`. Both are raised as subclasses carrying `outcomes`, the
outcomes of the batches finished before the stop, so the caller keeps that
progress. Other 4xx on a whole request raise `RequestError`; errors of single
records are outcomes, never exceptions.

Partial failures: every input carries an `objectWriteTraceId` (its index in
the request), which HubSpot echoes on results and puts in the `context` of
each error of a 207 Multi-Status, so a failure lands on the right record. A
400 that rejects a whole batch (two inputs resolving to one existing
contact, for one) is bisected until the offending records stand alone, so
one bad record never holds back the other 99.

Engagements and reruns: batch creates are not idempotent, and a create whose
answer is lost (a dropped connection, a 502 after the write) may or may not
have happened. So creates are never retried blindly: the create client
retries only 429 and connection failures (the request was not processed),
and before creating anything the sink reads what already hangs off the
contacts (v4 association reads, then a batch read of
`agent_sync_activity_key`; both read the primary store, unlike the search
index, which lags). An engagement found there is updated instead of created.
An ambiguous failure triggers one more reconcile-then-create round; if that
fails too, the outcome is a non-permanent failure and the next run
reconciles the same way. A stored CRM id means update (batch/update, which
is idempotent); an id HubSpot no longer knows goes back to reconcile/create.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Mapping, Sequence

import urllib3
from hubspot import HubSpot
from hubspot.crm.associations.v4 import exceptions as assoc_exc
from hubspot.crm.associations.v4.models import (
    BatchInputPublicFetchAssociationsBatchRequest,
    PublicFetchAssociationsBatchRequest,
)
from hubspot.crm.contacts import exceptions as contacts_exc
from hubspot.crm.contacts.models import (
    BatchInputSimplePublicObjectBatchInputUpsert,
    SimplePublicObjectBatchInputUpsert,
)
from hubspot.crm.objects.communications import exceptions as comms_exc
from hubspot.crm.objects.notes import exceptions as notes_exc
from hubspot.crm.properties import exceptions as props_exc
from hubspot.crm.properties.models import PropertyCreate, PropertyGroupCreate
from urllib3.exceptions import MaxRetryError, ResponseError
from urllib3.util.retry import Retry

from connectors import hubspot_mapping as mapping
from connectors.errors import (
    AuthError,
    ConfigError,
    QuotaExhausted,
    RequestError,
    RetriesExhausted,
)
from connectors.ratelimit import RateLimiter
from connectors.sink import SyncOutcome

SERVICE = "HubSpot"
DEFAULT_BASE_URL = "https://api.hubapi.com"
MAX_BATCH = 100
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
# (connect, read) seconds for every request.
TIMEOUT = (10.0, 60.0)
# Whole-batch 400s that no subset of the batch can cure: raise, do not bisect.
_GLOBAL_400 = ("non-unique", "exceeds the maximum", "Unable to infer object type")
# Record errors that resending the same data cannot fix (until the data changes).
_PERMANENT_CATEGORIES = {"VALIDATION_ERROR", "CONFLICT"}
_NOT_PERMANENT_CODES = {"PROPERTY_DOESNT_EXIST"}

_API_EXCEPTIONS = (
    contacts_exc.ApiException, props_exc.ApiException, notes_exc.ApiException,
    comms_exc.ApiException, assoc_exc.ApiException,
)

log = logging.getLogger(__name__)


class HubSpotRetriesExhausted(RetriesExhausted):
    """RetriesExhausted with the outcomes finished before the stop."""

    def __init__(self, message: str, outcomes: Sequence[SyncOutcome] = ()) -> None:
        super().__init__(SERVICE, message)
        self.outcomes = list(outcomes)


class HubSpotQuotaExhausted(QuotaExhausted):
    """QuotaExhausted (daily limit) with the outcomes finished before the stop."""

    def __init__(self, message: str, outcomes: Sequence[SyncOutcome] = ()) -> None:
        super().__init__(SERVICE, message)
        self.outcomes = list(outcomes)


def _is_daily_limit(status: int, headers: Mapping[str, str] | None, body: Any) -> bool:
    if status != 429:
        return False
    if isinstance(body, dict) and body.get("policyName") == "DAILY":
        return True
    remaining = (headers or {}).get("X-HubSpot-RateLimit-Daily-Remaining")
    return remaining is not None and remaining.strip() == "0"


class _Retry(Retry):
    """urllib3 Retry that paces every retry through the limiter and never retries a spent daily limit."""

    limiter: RateLimiter | None = None

    def new(self, **kw: Any) -> "_Retry":
        fresh = super().new(**kw)
        fresh.limiter = self.limiter
        return fresh

    def increment(self, method: str | None = None, url: str | None = None, response: Any = None,
                  error: Exception | None = None, _pool: Any = None, _stacktrace: Any = None) -> "_Retry":
        if response is not None and response.status == 429:
            try:
                body = json.loads(response.data or b"null")
            except ValueError:
                body = None
            if _is_daily_limit(429, response.headers, body):
                # Give the 429 back to the caller (raise_on_status=False) instead of waiting.
                raise MaxRetryError(_pool, url or "", ResponseError("daily limit reached"))
        return super().increment(method, url, response, error, _pool, _stacktrace)

    def sleep(self, response: Any = None) -> None:
        super().sleep(response)
        if self.limiter is not None:
            self.limiter.acquire()


class _CreateRetry(_Retry):
    """For non-idempotent creates: retry only what was certainly not processed (429, no connection)."""

    def is_retry(self, method: str, status_code: int, has_retry_after: bool = False) -> bool:
        return status_code == 429


@dataclass
class _Reply:
    status: int
    body: Any
    headers: Mapping[str, str]

    @property
    def message(self) -> str:
        if isinstance(self.body, dict) and self.body.get("message"):
            return str(self.body["message"])
        return f"HTTP {self.status}"


@dataclass
class _Item:
    """One distinct upsert input, and every person key that maps onto it."""

    keys: list[str]
    id_property: str
    id: str
    properties: dict[str, str]


@dataclass
class _Move:
    """A re-keyed person, written by id onto the contact it was synced as."""

    key: str
    properties: dict[str, str]
    crm_id: str | None


@dataclass
class _Activity:
    key: str
    object_type: str
    contact_id: str
    properties: dict[str, str]
    crm_id: str | None = None
    found: bool = field(default=False)


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _json(data: Any) -> Any:
    if isinstance(data, bytes):
        data = data.decode("utf-8", "replace")
    try:
        return json.loads(data) if data else None
    except ValueError:
        return None


def describe_error(error: Mapping[str, Any]) -> tuple[str, str]:
    """(readable message, code) of one HubSpot error entry; every field is optional."""
    message = str(error.get("message") or "error")
    code = None
    details = error.get("errors") or []
    if details and isinstance(details[0], dict):
        code = details[0].get("code")
    prefix = "Property values were not valid: "
    if message.startswith(prefix):
        try:
            inner = json.loads(message[len(prefix):])
            message = "; ".join(str(d.get("message")) for d in inner if isinstance(d, dict)) or message
            code = code or next((d.get("error") for d in inner if isinstance(d, dict) and d.get("error")), None)
        except ValueError:
            pass
    return message, str(code or error.get("category") or "ERROR")


def _permanent(error: Mapping[str, Any], code: str) -> bool:
    return error.get("category") in _PERMANENT_CATEGORIES and code not in _NOT_PERMANENT_CODES


class HubSpotSink:
    """`connectors.sink.ContactSink` for HubSpot (target "hubspot")."""

    target = "hubspot"

    def __init__(
        self,
        access_token: str,
        base_url: str = DEFAULT_BASE_URL,
        *,
        per_10s: int = 100,
        dry_run: bool = False,
        batch_size: int = MAX_BATCH,
        max_retries: int = 5,
        backoff_factor: float = 0.5,
        backoff_max: float = 30.0,
        retry_after_max: int = 60,
        timeout: tuple[float, float] = TIMEOUT,
        ca_cert: str | None = None,
        limiter: RateLimiter | None = None,
    ) -> None:
        if not access_token or not access_token.strip():
            raise ConfigError(SERVICE, "the access token is empty (set HUBSPOT_ACCESS_TOKEN)")
        if not base_url.startswith(("https://", "http://")):
            raise ConfigError(SERVICE, f"base URL must start with https:// (got {base_url!r})")
        if not 1 <= batch_size <= MAX_BATCH:
            raise ConfigError(SERVICE, f"batch_size must be 1..{MAX_BATCH} (got {batch_size})")
        self.dry_run = dry_run
        self.batch_size = batch_size
        self.missing: list[str] = []  # what prepare() found missing (and created unless dry run)
        self._token = access_token
        self._timeout = timeout
        self._limiter = limiter or RateLimiter([(per_10s, 10.0)])
        self._prepared = False
        self._activities_prepared = False
        retry_args = dict(
            total=max_retries, connect=max_retries, read=max_retries, status=max_retries, other=0,
            redirect=0, allowed_methods=None, status_forcelist=RETRY_STATUSES,
            backoff_factor=backoff_factor, backoff_max=backoff_max, backoff_jitter=backoff_factor,
            retry_after_max=retry_after_max, respect_retry_after_header=True, raise_on_status=False,
        )
        retry = _Retry(**retry_args)  # type: ignore[arg-type]
        create_retry = _CreateRetry(**{**retry_args, "read": 0})  # type: ignore[arg-type]
        retry.limiter = create_retry.limiter = self._limiter
        host = base_url.rstrip("/")
        # verify_ssl stays at its default (True); a private CA comes in as ca_cert or SSL_CERT_FILE.
        extra = {"ssl_ca_cert": ca_cert} if ca_cert else {}
        client = HubSpot(access_token=access_token, host=host, retry=retry, **extra)
        creator = HubSpot(access_token=access_token, host=host, retry=create_retry, **extra)
        # Each `client.crm...` access builds a new ApiClient (and connection pool): keep them.
        self._contacts = client.crm.contacts.batch_api
        self._properties = client.crm.properties.core_api
        self._groups = client.crm.properties.groups_api
        self._associations = client.crm.associations.v4.batch_api
        self._engagements = {
            "notes": (client.crm.objects.notes.batch_api, creator.crm.objects.notes.batch_api),
            "communications": (client.crm.objects.communications.batch_api,
                               creator.crm.objects.communications.batch_api),
        }

    # ---------------------------------------------------------------- mapping
    def properties(self, person: Mapping[str, Any]) -> dict[str, str]:
        """The contact properties for a person (hashed by the engine for diffing)."""
        return mapping.properties(person)

    # ---------------------------------------------------------------- prepare
    def prepare(self) -> None:
        """Create the `agent_sync` group and custom contact properties that are missing.

        Nothing that exists is changed. A property that exists with another
        type or uniqueness raises ConfigError naming it. In a dry run the
        missing ones are listed in `self.missing` (and logged), not created.
        """
        if self._prepared:
            return
        self._ensure("contacts", mapping.CUSTOM_PROPERTIES)
        self._prepared = True

    def prepare_activities(self) -> None:
        """The same for `agent_sync_activity_key` on notes and communications."""
        if self._activities_prepared:
            return
        for object_type in mapping.ACTIVITY_OBJECTS:
            self._ensure(object_type, mapping.ACTIVITY_PROPERTIES)
        self._activities_prepared = True

    def _ensure(self, object_type: str, wanted: Sequence[Mapping[str, Any]]) -> None:
        reply = self._call(self._groups.get_by_name_with_http_info, object_type, mapping.GROUP_NAME)
        group_missing = reply.status == 404
        if not group_missing:
            self._check(reply, f"read property group {mapping.GROUP_NAME}")
        reply = self._check(self._call(self._properties.get_all_with_http_info, object_type),
                            f"list {object_type} properties")
        existing = {p.get("name"): p for p in (reply.body or {}).get("results") or [] if isinstance(p, dict)}
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
        missing = [spec for spec in wanted if spec["name"] not in existing]
        names = ([f"{object_type} group {mapping.GROUP_NAME}"] if group_missing else []) + [
            f"{object_type} property {spec['name']}" for spec in missing]
        self.missing.extend(names)
        if not names:
            return
        if self.dry_run:
            log.info("HubSpot dry run: would create %s", ", ".join(names))
            return
        if group_missing:
            group = PropertyGroupCreate(name=mapping.GROUP_NAME, label=mapping.GROUP_LABEL, display_order=-1)
            self._created(self._call(self._groups.create_with_http_info, object_type, group),
                          f"create property group {mapping.GROUP_NAME}")
        for spec in missing:
            self._created(self._call(self._properties.create_with_http_info, object_type,
                                     PropertyCreate(**spec)), f"create property {spec['name']}")
            log.info("HubSpot: created %s property %s", object_type, spec["name"])

    def _created(self, reply: _Reply, what: str) -> None:
        if reply.status != 409:  # 409: created meanwhile by someone else, which is fine
            self._check(reply, what)

    # ---------------------------------------------------------------- upsert
    def upsert(
        self,
        persons: Sequence[Mapping[str, Any]],
        on_batch: Callable[[list[SyncOutcome]], None] | None = None,
    ) -> list[SyncOutcome]:
        """Upsert persons in batches; one outcome per distinct person key.

        `on_batch` hears each batch's outcomes as soon as HubSpot answers, so
        a run killed mid-way has recorded everything that succeeded.
        """
        items = self._items(persons)
        if self.dry_run:
            return [SyncOutcome(key, True) for item in items for key in item.keys]
        done: dict[str, SyncOutcome] = {}
        for batch in _chunks(items, self.batch_size):
            try:
                self._upsert_batch(list(batch), done)
                if on_batch:
                    on_batch(self._expand(batch, done))
            except (RetriesExhausted, QuotaExhausted) as exc:
                finished = self._expand(items, done)
                if isinstance(exc, QuotaExhausted):
                    raise HubSpotQuotaExhausted(str(exc).removeprefix(f"{SERVICE}: "), finished) from exc
                raise HubSpotRetriesExhausted(str(exc).removeprefix(f"{SERVICE}: "), finished) from exc
        return self._expand(items, done)

    def _items(self, persons: Sequence[Mapping[str, Any]]) -> list[_Item]:
        """One input per record HubSpot would resolve; later persons win, every key is kept."""
        by_id: dict[tuple[str, str], _Item] = {}
        for person in persons:
            key = str(person["person_key"])
            props = self.properties(person)
            id_property, record_id = mapping.upsert_key(person, props)
            slot = (id_property, record_id.lower() if id_property == "email" else record_id)
            item = by_id.get(slot)
            if item is None:
                by_id[slot] = _Item([key], id_property, record_id, props)
            else:
                item.properties = props
                if key not in item.keys:
                    item.keys.append(key)
        return list(by_id.values())

    @staticmethod
    def _expand(items: Sequence[_Item], done: Mapping[str, SyncOutcome]) -> list[SyncOutcome]:
        outcomes: list[SyncOutcome] = []
        for item in items:
            first = done.get(item.id_property + "\0" + item.id)
            if first is None:
                continue
            outcomes.extend(SyncOutcome(key, first.ok, first.crm_id, first.created, first.error,
                                        first.error_code, first.permanent) for key in item.keys)
        return outcomes

    def _upsert_batch(self, batch: list[_Item], done: dict[str, SyncOutcome]) -> None:
        inputs = [
            SimplePublicObjectBatchInputUpsert(id=item.id, id_property=item.id_property,
                                               properties=item.properties, object_write_trace_id=str(i))
            for i, item in enumerate(batch)
        ]
        reply = self._call(self._contacts.upsert_with_http_info,
                           BatchInputSimplePublicObjectBatchInputUpsert(inputs=inputs))
        if reply.status in (200, 201, 207):
            self._settle(batch, reply.body if isinstance(reply.body, dict) else {}, done)
            return
        if reply.status in (400, 409) and not any(text in reply.message for text in _GLOBAL_400):
            if len(batch) > 1:
                middle = len(batch) // 2
                log.info("HubSpot rejected a batch of %d (HTTP %d); splitting it", len(batch), reply.status)
                self._upsert_batch(batch[:middle], done)
                self._upsert_batch(batch[middle:], done)
                return
            body = reply.body if isinstance(reply.body, dict) else {}
            message, code = describe_error(body)
            done[self._slot(batch[0])] = SyncOutcome(batch[0].keys[0], False, error=message, error_code=code,
                                                     permanent=_permanent(body, code))
            return
        self._check(reply, f"upsert {len(batch)} contacts")

    @staticmethod
    def _slot(item: _Item) -> str:
        return item.id_property + "\0" + item.id

    def _settle(self, batch: list[_Item], body: Mapping[str, Any], done: dict[str, SyncOutcome]) -> None:
        by_trace = {str(i): item for i, item in enumerate(batch)}
        by_value = {(item.id.lower() if item.id_property == "email" else item.id): item for item in batch}
        settled: set[str] = set()
        for result in body.get("results") or []:
            item = by_trace.get(str(result.get("objectWriteTraceId")))
            if item is None:  # an answer without the trace id: match on the key values
                props = result.get("properties") or {}
                item = by_value.get((props.get("email") or "").lower()) or by_value.get(
                    props.get(mapping.PERSON_KEY_PROPERTY) or "")
            if item is None or result.get("id") is None:
                continue
            done[self._slot(item)] = SyncOutcome(item.keys[0], True, str(result["id"]), bool(result.get("new")))
            settled.add(self._slot(item))
        for error in body.get("errors") or []:
            context = error.get("context") or {}
            targets = [by_trace[t] for t in context.get("objectWriteTraceId") or [] if t in by_trace]
            targets += [by_value[i] for i in context.get("ids") or [] if i in by_value]
            message, code = describe_error(error)
            for item in targets:
                done[self._slot(item)] = SyncOutcome(item.keys[0], False, error=message, error_code=code,
                                                     permanent=_permanent(error, code))
                settled.add(self._slot(item))
        for item in batch:
            if self._slot(item) not in settled:
                done[self._slot(item)] = SyncOutcome(
                    item.keys[0], False, error="HubSpot answered without a result or error for this record",
                    error_code="NO_RESULT")

    def move(
        self,
        persons: Sequence[tuple[Mapping[str, Any], str]],
        on_batch: Callable[[list[SyncOutcome]], None] | None = None,
    ) -> list[SyncOutcome]:
        """Update re-keyed persons by contact id (batch/update); a contact deleted meanwhile is upserted.

        The old key in `agent_sync_person_key` is cleared (or replaced, for a
        person still without email), so it can never match another person.
        """
        moves = [_Move(str(person["person_key"]), {mapping.PERSON_KEY_PROPERTY: "", **self.properties(person)},
                       crm_id) for person, crm_id in persons]
        if self.dry_run:
            return [SyncOutcome(item.key, True, item.crm_id) for item in moves]
        outcomes: dict[str, SyncOutcome] = {}
        gone: list[_Move] = []
        for chunk in _chunks(moves, self.batch_size):
            self._update_chunk(self._contacts, "contacts", list(chunk), outcomes, gone)
            if on_batch:
                on_batch([outcomes[item.key] for item in chunk if item.key in outcomes])
        deleted = {item.key for item in gone}
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
        stored one, `crm_id`. The outcome's `crm_id` is what to store.
        """
        items: dict[str, _Activity] = {}
        outcomes: dict[str, SyncOutcome] = {}
        for conversation in conversations:
            key = mapping.activity_key(conversation)
            if not conversation.get("contact_id"):
                outcomes[key] = SyncOutcome(key, False, error="no HubSpot contact id for this conversation",
                                            error_code="NO_CONTACT")
                continue
            try:
                props = mapping.activity_properties(conversation)
            except ValueError as exc:
                outcomes[key] = SyncOutcome(key, False, error=str(exc), error_code="NO_TIMESTAMP", permanent=True)
                continue
            items[key] = _Activity(key, mapping.activity_object(conversation), str(conversation["contact_id"]),
                                   props, str(conversation["crm_id"]) if conversation.get("crm_id") else None)
        if self.dry_run:
            outcomes.update({key: SyncOutcome(key, True, item.crm_id) for key, item in items.items()})
            return list(outcomes.values())
        self.prepare_activities()
        try:
            for object_type in mapping.ACTIVITY_OBJECTS:
                mine = [item for item in items.values() if item.object_type == object_type]
                fresh = [i for i in mine if not i.crm_id]
                gone = self._update_activities(object_type, [i for i in mine if i.crm_id], outcomes)
                creates = fresh + gone
                for chunk in _chunks(creates, MAX_BATCH):
                    self._create_activities(object_type, list(chunk), outcomes)
        except RetriesExhausted as exc:
            raise HubSpotRetriesExhausted(str(exc).removeprefix(f"{SERVICE}: "), list(outcomes.values())) from exc
        except QuotaExhausted as exc:
            raise HubSpotQuotaExhausted(str(exc).removeprefix(f"{SERVICE}: "), list(outcomes.values())) from exc
        return list(outcomes.values())

    def _update_activities(self, object_type: str, items: list[_Activity],
                           outcomes: dict[str, SyncOutcome]) -> list[_Activity]:
        """batch/update the engagements with a known id; returns those HubSpot no longer has."""
        gone: list[_Activity] = []
        for chunk in _chunks(items, MAX_BATCH):
            self._update_chunk(self._engagements[object_type][0], object_type, list(chunk), outcomes, gone)
        return gone

    def _update_chunk(self, api: Any, object_type: str, chunk: list[Any], outcomes: dict[str, SyncOutcome],
                      gone: list[Any]) -> None:
        """batch/update by id (items with key, crm_id, properties); what HubSpot no longer has goes to `gone`."""
        body = {"inputs": [{"id": item.crm_id, "properties": item.properties, "objectWriteTraceId": str(i)}
                           for i, item in enumerate(chunk)]}
        reply = self._call(api.update_with_http_info, body)
        if reply.status in (400, 404):  # the whole batch refused: split; alone, a 404 means deleted
            if len(chunk) > 1:
                middle = len(chunk) // 2
                self._update_chunk(api, object_type, chunk[:middle], outcomes, gone)
                self._update_chunk(api, object_type, chunk[middle:], outcomes, gone)
                return
            error = reply.body if isinstance(reply.body, dict) else {}
            if reply.status == 404 or error.get("category") == "OBJECT_NOT_FOUND":
                chunk[0].crm_id = None
                gone.append(chunk[0])
            else:
                message, code = describe_error(error)
                outcomes[chunk[0].key] = SyncOutcome(chunk[0].key, False, chunk[0].crm_id, error=message,
                                                     error_code=code, permanent=_permanent(error, code))
            return
        reply = self._check(reply, f"update {object_type}")
        by_trace = {str(i): item for i, item in enumerate(chunk)}
        by_id = {item.crm_id: item for item in chunk}
        settled: set[str] = set()
        for result in (reply.body or {}).get("results") or []:
            item = by_trace.get(str(result.get("objectWriteTraceId"))) or by_id.get(str(result.get("id")))
            if item is not None:
                outcomes[item.key] = SyncOutcome(item.key, True, item.crm_id, created=False)
                settled.add(item.key)
        for error in (reply.body or {}).get("errors") or []:
            message, code = describe_error(error)
            context = error.get("context") or {}
            targets = [by_trace[t] for t in context.get("objectWriteTraceId") or [] if t in by_trace]
            targets += [by_id[i] for i in context.get("ids") or [] if i in by_id]
            for item in targets:
                settled.add(item.key)
                if error.get("category") == "OBJECT_NOT_FOUND":
                    item.crm_id = None
                    gone.append(item)
                else:
                    outcomes[item.key] = SyncOutcome(item.key, False, item.crm_id, error=message,
                                                     error_code=code, permanent=_permanent(error, code))
        for item in chunk:
            if item.key not in settled:
                outcomes[item.key] = SyncOutcome(item.key, False, item.crm_id, error="no result returned",
                                                 error_code="NO_RESULT")

    def _create_activities(self, object_type: str, chunk: list[_Activity],
                           outcomes: dict[str, SyncOutcome]) -> None:
        """Reconcile, then create what is really missing; one more round after an ambiguous failure."""
        todo = chunk
        failure = "not attempted"
        for _round in range(2):
            found = self._existing_activities(object_type, todo)
            if found:
                for item in todo:
                    if item.key in found:
                        item.crm_id, item.found = found[item.key], True
                self._update_activities(object_type, [i for i in todo if i.found], outcomes)
                todo = [i for i in todo if not i.found]
            if not todo:
                return
            try:
                reply = self._call(self._engagements[object_type][1].create_with_http_info,
                                   self._create_body(object_type, todo))
            except RetriesExhausted as exc:  # the connection dropped: the create may have happened
                failure = str(exc)
                continue
            if reply.status >= 500:
                failure = f"HTTP {reply.status}: {reply.message}"
                continue
            if reply.status != 400:  # a 400 is a record error, settled below
                self._check(reply, f"create {object_type}")
            self._settle_creates(todo, reply, outcomes)
            return
        for item in todo:
            outcomes[item.key] = SyncOutcome(
                item.key, False, error=f"create not confirmed ({failure}); the next run reconciles",
                error_code="AMBIGUOUS_CREATE")

    @staticmethod
    def _create_body(object_type: str, todo: Sequence[_Activity]) -> dict[str, Any]:
        type_id = mapping.CONTACT_ASSOCIATION_TYPE[object_type]
        return {"inputs": [{
            "properties": item.properties,
            "objectWriteTraceId": str(i),
            "associations": [{"to": {"id": item.contact_id}, "types": [
                {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": type_id}]}],
        } for i, item in enumerate(todo)]}

    @staticmethod
    def _settle_creates(todo: list[_Activity], reply: _Reply, outcomes: dict[str, SyncOutcome]) -> None:
        body = reply.body if isinstance(reply.body, dict) else {}
        by_trace = {str(i): item for i, item in enumerate(todo)}
        if reply.status == 400:
            message, code = describe_error(body)
            for item in todo:
                outcomes[item.key] = SyncOutcome(item.key, False, error=message, error_code=code,
                                                 permanent=_permanent(body, code))
            return
        by_key = {item.key: item for item in todo}
        for result in body.get("results") or []:
            item = by_trace.get(str(result.get("objectWriteTraceId"))) or by_key.get(
                (result.get("properties") or {}).get(mapping.ACTIVITY_KEY_PROPERTY) or "")
            if item is not None and result.get("id") is not None:
                outcomes[item.key] = SyncOutcome(item.key, True, str(result["id"]), created=True)
        for error in body.get("errors") or []:
            message, code = describe_error(error)
            for trace in (error.get("context") or {}).get("objectWriteTraceId") or []:
                if trace in by_trace:
                    item = by_trace[trace]
                    outcomes[item.key] = SyncOutcome(item.key, False, error=message, error_code=code,
                                                     permanent=_permanent(error, code))
        for item in todo:
            outcomes.setdefault(item.key, SyncOutcome(item.key, False, error="no result returned",
                                                      error_code="NO_RESULT"))

    def _existing_activities(self, object_type: str, todo: Sequence[_Activity]) -> dict[str, str]:
        """Activity key -> id of the engagements of these contacts that carry one of our keys."""
        wanted = {item.key for item in todo}
        linked: set[str] = set()
        pending = [(contact_id, None) for contact_id in sorted({item.contact_id for item in todo})]
        while pending:
            batch, pending = pending[:MAX_BATCH], pending[MAX_BATCH:]
            request = BatchInputPublicFetchAssociationsBatchRequest(
                inputs=[PublicFetchAssociationsBatchRequest(id=cid, after=after) for cid, after in batch])
            reply = self._check(self._call(self._associations.get_page_with_http_info, "contacts",
                                           object_type, request), f"read contact-{object_type} associations")
            for result in (reply.body or {}).get("results") or []:
                linked.update(str(to.get("toObjectId")) for to in result.get("to") or [])
                after = ((result.get("paging") or {}).get("next") or {}).get("after")
                if after:
                    pending.append((str((result.get("from") or {}).get("id")), after))
        found: dict[str, str] = {}
        api = self._engagements[object_type][0]
        for ids in _chunks(sorted(linked, key=lambda v: (len(v), v)), MAX_BATCH):
            body = {"properties": [mapping.ACTIVITY_KEY_PROPERTY], "propertiesWithHistory": [],
                    "inputs": [{"id": record_id} for record_id in ids]}
            reply = self._check(self._call(api.read_with_http_info, body), f"read {object_type}")
            for result in (reply.body or {}).get("results") or []:
                key = (result.get("properties") or {}).get(mapping.ACTIVITY_KEY_PROPERTY)
                if key in wanted and key not in found:
                    found[key] = str(result["id"])
        return found

    # ------------------------------------------------------------------ HTTP
    def _call(self, method: Callable[..., Any], *args: Any) -> _Reply:
        """One API call (its retries are urllib3's); never raises for an HTTP status."""
        self._limiter.acquire()
        try:
            raw = method(*args, _preload_content=False, _request_timeout=self._timeout)
        except _API_EXCEPTIONS as exc:
            if not exc.status:  # the client's wrapper of a TLS failure
                raise ConfigError(SERVICE, f"TLS error: {self._scrub(str(exc.reason))}") from None
            return _Reply(exc.status, _json(exc.body), exc.headers or {})
        except urllib3.exceptions.HTTPError as exc:
            reason = getattr(exc, "reason", None) or exc
            if isinstance(reason, urllib3.exceptions.SSLError):
                raise ConfigError(SERVICE, f"TLS error (is the CA trusted?): {self._scrub(str(reason))}") from None
            raise RetriesExhausted(SERVICE, f"no answer after retries: {type(reason).__name__}: "
                                            f"{self._scrub(str(reason))}") from None
        data = raw.data
        raw.release_conn()
        return _Reply(raw.status, _json(data), raw.headers)

    def _check(self, reply: _Reply, what: str) -> _Reply:
        """The reply if it succeeded; otherwise the error the caller should act on."""
        if 200 <= reply.status < 300:
            return reply
        message = self._scrub(reply.message)
        if reply.status in (401, 403):
            raise AuthError(SERVICE, reply.status, message)
        if reply.status == 429:
            if _is_daily_limit(429, reply.headers, reply.body):
                raise QuotaExhausted(SERVICE, f"daily API limit reached while trying to {what}: {message}")
            raise RetriesExhausted(SERVICE, f"still rate limited after retries ({what}): {message}")
        if reply.status >= 500:
            raise RetriesExhausted(SERVICE, f"HTTP {reply.status} after retries ({what}): {message}")
        raise RequestError(SERVICE, reply.status, f"{what}: {message}")

    def _scrub(self, text: str) -> str:
        return text.replace(self._token, "***")
