"""What every CRM sink offers the sync engine, and what it reports back.

The engine decides *what* to send (only persons whose content hash changed
for this target), and whether to send at all (a dry run); a sink decides *how* (mapping, batching, keys) and returns
one outcome per person, so that a partial failure is recorded per record.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, Protocol, Sequence

from connectors.limits import Cut


# The outcome code of an activity whose CRM contact no longer exists (deleted or
# merged away in the CRM): the engine syncs the contact again, then the activity.
CONTACT_GONE = "CONTACT_GONE"


@dataclass(frozen=True)
class SyncOutcome:
    """The fate of one person in one upsert attempt."""

    key: str
    ok: bool
    crm_id: str | None = None
    created: bool = False
    error: str | None = None
    error_code: str | None = None
    # True when resending the same data cannot succeed (a validation error):
    # the record then waits for its data to change instead of being retried.
    permanent: bool = False
    # Values cut (or left out) to fit the CRM's field limits: the record's warnings.
    truncated: tuple[Cut, ...] = ()


class ContactSink(Protocol):
    """A CRM target. `target` names its sync state (the integration's name, as its package is called)."""

    target: str

    def prepare(self, *, create: bool = True) -> None:
        """Check what the mapping needs before anything is written; create what is missing if `create`.

        The sync step passes `create=False` in a dry run: the one place a dry
        run is decided (pipelines/steps/sync.py); no write method is called then.
        """

    def properties(self, person: Mapping[str, Any]) -> dict[str, Any]:
        """The CRM properties this sink would write for a person (hashed for diffing)."""

    def upsert(
        self,
        persons: Sequence[Mapping[str, Any]],
        on_batch: Callable[[list[SyncOutcome]], None] | None = None,
    ) -> list[SyncOutcome]:
        """Upsert persons; one outcome per input key, in any order.

        `on_batch`, when given, hears every outcome exactly once, batch by
        batch as the CRM answers, so progress is recorded before the next
        batch is sent. A stop part-way (quota, retries, auth) raises
        `connectors.errors.PartialProgress` carrying the outcomes settled
        before it and the cause.
        """

    def move(
        self,
        persons: Sequence[tuple[Mapping[str, Any], str]],
        on_batch: Callable[[list[SyncOutcome]], None] | None = None,
    ) -> list[SyncOutcome]:
        """Write re-keyed persons onto the CRM records (person, crm id) they were synced as before.

        The record's key property becomes the person's new key. A record
        deleted in the CRM meanwhile is upserted instead. Same outcome
        rules as `upsert`.
        """
