"""Conversations as HubSpot engagements (notes, communications), appointments as meetings: never
duplicated, failing per record (every object type of `HubSpotTransport.engagements` the same way).

Batch creates are not idempotent, and a create whose answer is lost (a
dropped connection, a 502 after the write) may or may not have happened.
So creates are never retried blindly: the create client retries only 429,
and before creating anything we read what already hangs off the contacts
(v4 association reads, then a batch read of `agent_sync_activity_key`; both
read the primary store, unlike the search index, which lags). An engagement
found there is updated instead of created. An ambiguous failure triggers
one more reconcile-then-create round; if that fails too, the outcome is a
non-permanent failure and the next run reconciles the same way. A stored
CRM id means update (`batch/update`, idempotent); an id HubSpot no longer
knows (RECORD_GONE) goes back to reconcile/create.

A whole-batch 400 on create or update is bisected down to the bad inputs,
as contact upserts are (settle.bisect). An engagement whose contact was
deleted or merged away in HubSpot comes back as CONTACT_GONE: the activity
step then resets that person's contact sync state, so the next contact push
upserts the contact again (by email, which finds a merge's survivor) and
the engagement follows on its new id.
"""

from __future__ import annotations

import logging
from typing import Any, Iterator, Sequence, TypeVar

from hubspot.crm.associations.v4.models import (
    BatchInputPublicFetchAssociationsBatchRequest,
    PublicFetchAssociationsBatchRequest,
)

from connectors.errors import RetriesExhausted
from connectors.hubspot import mapping
from connectors.hubspot.settle import RECORD_GONE, Reply, bisect, named_culprits
from connectors.hubspot.transport import HubSpotTransport
from connectors.hubspot.writes import Engagement, Update, create_body, settle_creates, update_by_id
from connectors.sink import SyncOutcome

MAX_BATCH = 100
T = TypeVar("T")

log = logging.getLogger(__name__)


class _Ambiguous(Exception):
    """A create whose fate is unknown (5xx after the write, or no answer): reconcile before trying again."""


def chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


class Engagements:
    """Creates and updates engagements for `HubSpotSink.upsert_activities`."""

    def __init__(self, transport: HubSpotTransport) -> None:
        self.transport = transport

    def write(self, object_type: str, items: Sequence[Engagement], outcomes: dict[str, SyncOutcome]) -> None:
        """Update the engagements with a known id, reconcile-then-create the rest; outcomes by key."""
        fresh = [i for i in items if not i.crm_id]
        creates = fresh + self._update(object_type, [i for i in items if i.crm_id], outcomes)
        for chunk in chunks(creates, MAX_BATCH):
            self._create(object_type, list(chunk), outcomes)

    def _update(self, object_type: str, items: Sequence[Engagement],
                outcomes: dict[str, SyncOutcome]) -> list[Engagement]:
        """batch/update the engagements with a known id; returns those HubSpot no longer has."""
        gone: list[Engagement] = []
        api = self.transport.engagements[object_type][0]
        by_key = {item.key: item for item in items}
        for chunk in chunks(items, MAX_BATCH):
            updates = [Update(item.key, str(item.crm_id), item.properties) for item in chunk]
            for outcome in update_by_id(self.transport, api, object_type, updates):
                item = by_key[outcome.key]
                if outcome.error_code == RECORD_GONE:
                    item.crm_id = None
                    gone.append(item)
                else:
                    outcomes[item.key] = outcome if not outcome.ok else SyncOutcome(
                        item.key, True, item.crm_id, created=False, truncated=item.cuts)
        return gone

    def _create(self, object_type: str, chunk: list[Engagement], outcomes: dict[str, SyncOutcome]) -> None:
        """Reconcile, then create what is really missing; one more round after an ambiguous failure."""
        todo = chunk
        failure = "not attempted"
        for _round in range(2):
            found = self._existing(object_type, todo)
            if found:
                for item in todo:
                    item.crm_id = found.get(item.key)
                missing = [i for i in todo if not i.crm_id]
                todo = missing + self._update(object_type, [i for i in todo if i.crm_id], outcomes)
            if not todo:
                return
            try:
                settled = self._send_creates(object_type, todo)
            except (RetriesExhausted, _Ambiguous) as exc:  # the create may have happened
                failure = str(exc)
                continue
            by_key = {item.key: item for item in todo}
            for outcome in settled:
                outcomes[outcome.key] = outcome if not outcome.ok else SyncOutcome(
                    outcome.key, True, outcome.crm_id, created=True, truncated=by_key[outcome.key].cuts)
            return
        for item in todo:
            outcomes[item.key] = SyncOutcome(
                item.key, False, error=f"create not confirmed ({failure}); the next run reconciles",
                error_code="AMBIGUOUS_CREATE")

    def _send_creates(self, object_type: str, todo: Sequence[Engagement]) -> list[SyncOutcome]:
        api = self.transport.engagements[object_type][1]

        def send(part: Sequence[Engagement]) -> Reply:
            return self.transport.call(api.create_with_http_info, create_body(object_type, part))

        def fail(reply: Reply) -> None:
            if reply.status >= 500:
                raise _Ambiguous(f"HTTP {reply.status}: {self.transport.scrub(reply.message)}")
            self.transport.check(reply, f"create {object_type}")

        return bisect(todo, send, settle_creates, fail,
                      lambda part, reply: named_culprits(reply, [item.contact_id for item in part]))

    def _existing(self, object_type: str, todo: Sequence[Engagement]) -> dict[str, str]:
        """Activity key -> id of the engagements of these contacts that carry one of our keys."""
        wanted = {item.key for item in todo}
        found: dict[str, str] = {}
        api = self.transport.engagements[object_type][0]
        linked = self._linked(object_type, sorted({item.contact_id for item in todo}))
        for ids in chunks(sorted(linked, key=lambda v: (len(v), v)), MAX_BATCH):
            body = {"properties": [mapping.ACTIVITY_KEY_PROPERTY], "propertiesWithHistory": [],
                    "inputs": [{"id": record_id} for record_id in ids]}
            reply = self.transport.check(self.transport.call(api.read_with_http_info, body), f"read {object_type}")
            for result in (reply.body or {}).get("results") or []:
                key = (result.get("properties") or {}).get(mapping.ACTIVITY_KEY_PROPERTY)
                if key in wanted and key not in found:
                    found[key] = str(result["id"])
        return found

    def _linked(self, object_type: str, contact_ids: Sequence[str]) -> set[str]:
        """Ids of the engagements of `object_type` associated with these contacts (v4 reads, all pages)."""
        linked: set[str] = set()
        pending: list[tuple[str, Any]] = [(contact_id, None) for contact_id in contact_ids]
        while pending:
            batch, pending = pending[:MAX_BATCH], pending[MAX_BATCH:]
            request = BatchInputPublicFetchAssociationsBatchRequest(
                inputs=[PublicFetchAssociationsBatchRequest(id=cid, after=after) for cid, after in batch])
            reply = self.transport.check(
                self.transport.call(self.transport.associations.get_page_with_http_info, "contacts",
                                    object_type, request), f"read contact-{object_type} associations")
            for result in (reply.body or {}).get("results") or []:
                linked.update(str(to.get("toObjectId")) for to in result.get("to") or [])
                after = ((result.get("paging") or {}).get("next") or {}).get("after")
                if after:
                    pending.append((str((result.get("from") or {}).get("id")), after))
        return linked
