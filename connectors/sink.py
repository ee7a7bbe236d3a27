"""What every CRM sink offers the sync engine, and what it reports back.

The engine decides *what* to send (only persons whose content hash changed
for this target); a sink decides *how* (mapping, batching, keys) and returns
one outcome per person, so that a partial failure is recorded per record.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, Protocol, Sequence


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


class ContactSink(Protocol):
    """A CRM target. `target` names its sync state ('hubspot', 'salesforce')."""

    target: str

    def prepare(self) -> None:
        """Check or create what the mapping needs before anything is written."""

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
        batch is sent.
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
