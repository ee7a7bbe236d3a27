"""The three batch writes HubSpot takes, each through the one bisect and the one settle.

- `upsert_contacts`: `batch/upsert` by `email` or the person-key property;
- `update_by_id`: `batch/update` of contacts (re-keyed persons) or engagements;
- `create_engagements`: `batch/create` of notes or communications, each
  associated with its contact on create.

Each returns one `SyncOutcome` per input, in input order (see settle.py for
what the codes mean); the error of a reply nobody can settle is raised by
`HubSpotTransport.check`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from hubspot.crm.contacts.models import (
    BatchInputSimplePublicObjectBatchInputUpsert,
    SimplePublicObjectBatchInputUpsert,
)

from connectors.hubspot import mapping
from connectors.hubspot.settle import Reply, Sent, bisect, settle
from connectors.hubspot.transport import HubSpotTransport
from connectors.limits import Cut
from connectors.sink import SyncOutcome


@dataclass
class Upsert:
    """One distinct upsert input, and every person key that maps onto it."""

    keys: list[str]
    id_property: str
    id: str
    properties: dict[str, str]
    cuts: tuple[Cut, ...] = ()

    @property
    def lookup(self) -> str:
        """The id as HubSpot matches it (emails case-insensitively)."""
        return self.id.lower() if self.id_property == mapping.EMAIL_ID_PROPERTY else self.id


@dataclass
class Update:
    """A record written by its HubSpot id (a moved contact, or a known engagement)."""

    key: str
    crm_id: str
    properties: dict[str, str]


@dataclass
class Engagement:
    """A note or communication to create or update, and the contact it hangs off."""

    key: str
    object_type: str
    contact_id: str
    properties: dict[str, str]
    crm_id: str | None = None
    cuts: tuple[Cut, ...] = field(default=())


def _upsert_match(result: Mapping[str, Any]) -> list[str]:
    props = result.get("properties") or {}
    return [(props.get("email") or "").lower(), props.get(mapping.PERSON_KEY_PROPERTY) or ""]


def upsert_contacts(transport: HubSpotTransport, items: Sequence[Upsert]) -> list[SyncOutcome]:
    """`batch/upsert` contacts; one outcome per item (keyed by its first person key)."""

    def send(chunk: Sequence[Upsert]) -> Reply:
        inputs = [SimplePublicObjectBatchInputUpsert(id=item.id, id_property=item.id_property,
                                                     properties=item.properties, object_write_trace_id=str(i))
                  for i, item in enumerate(chunk)]
        return transport.call(transport.contacts.upsert_with_http_info,
                              BatchInputSimplePublicObjectBatchInputUpsert(inputs=inputs))

    def read(chunk: Sequence[Upsert], reply: Reply) -> list[SyncOutcome]:
        return settle(reply, Sent([item.keys[0] for item in chunk], [item.lookup for item in chunk],
                                  _upsert_match))

    return bisect(list(items), send, read, lambda reply: transport.check(reply, f"upsert {len(items)} contacts"))


def update_by_id(transport: HubSpotTransport, api: Any, object_type: str,
                 items: Sequence[Update]) -> list[SyncOutcome]:
    """`batch/update` by id; a record HubSpot no longer has comes back as RECORD_GONE."""

    def send(chunk: Sequence[Update]) -> Reply:
        body = {"inputs": [{"id": item.crm_id, "properties": item.properties, "objectWriteTraceId": str(i)}
                           for i, item in enumerate(chunk)]}
        return transport.call(api.update_with_http_info, body)

    def read(chunk: Sequence[Update], reply: Reply) -> list[SyncOutcome]:
        return settle(reply, Sent([item.key for item in chunk], [item.crm_id for item in chunk],
                                  lambda result: [str(result.get("id"))]))

    return bisect(list(items), send, read, lambda reply: transport.check(reply, f"update {object_type}"))


def create_body(object_type: str, items: Sequence[Engagement]) -> dict[str, Any]:
    """The `batch/create` body: each engagement with its properties and its contact association."""
    type_id = mapping.CONTACT_ASSOCIATION_TYPE[object_type]
    return {"inputs": [{
        "properties": item.properties,
        "objectWriteTraceId": str(i),
        "associations": [{"to": {"id": item.contact_id}, "types": [
            {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": type_id}]}],
    } for i, item in enumerate(items)]}


def settle_creates(items: Sequence[Engagement], reply: Reply) -> list[SyncOutcome]:
    """Outcomes of one `batch/create` reply (a result without trace id is matched by its activity key)."""
    return settle(reply, Sent([item.key for item in items], [item.key for item in items],
                              lambda result: [(result.get("properties") or {}).get(
                                  mapping.ACTIVITY_KEY_PROPERTY) or ""], created=True))
