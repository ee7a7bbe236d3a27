"""Normalize raw payloads against the current schema version.

Only rows whose payload or schema version changed since they were last
normalized are read, in chunks, so a daily run touches what changed and a
schema upgrade re-normalizes history from the kept payloads.

Two kinds of canonical records come out, each from its own raw streams, so
a raw row has exactly one output and one normalization mark
(`raw_records.normalized_hash/normalized_version`):

- contacts (`NORMALIZERS`), from every source, under one canonical stream,
  `CONTACT_STREAM` ("contacts"), whatever raw stream they came from (a
  Clairo brief, an AgentPro conversation's visitor, an AgentClara contact):
  identity resolution then matches people across sources in one pass;
- conversations (`CONVERSATION_NORMALIZERS`), under `CONVERSATION_STREAM`,
  with their day (`event_day`, the UTC day of their last activity: the
  daily partition they belong to), activity time and channel.

Quarantined payloads are filed under the same canonical stream, so a record
that turns valid (or invalid) moves between the two tables cleanly; the raw
row is marked normalized under its own raw stream.

Contacts and conversations of one source are tied by a shared `link_id`
(`records.link_id`), which the persons step uses to give a conversation its
person: a conversation's link is its contact_source_id (AgentClara
customer_id, the AgentPro visitor key), else its own id; a contact's link is
the conversation it was taken from when it says so (a Clairo brief's
`conversationId`), else its source_id.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Mapping

import sqlalchemy as sa

from pipelines.state import StateStore
from pipelines.state.store import (
    CONTACT_STREAM,
    CONVERSATION_STREAM,
    Normalized,
    Quarantined,
    RawRow,
    refused_data,
)
from connectors.spec import RecordKind
from pipelines.registry import SPECS
from pipelines.steps.heap import long_lived_set_aside
from pipelines.steps.workers import Workers
from schemas import registry
from schemas.conversation import activity_day, activity_time
from schemas.apply import Outcome
from schemas.errors import NORMALIZER_ERROR, UNSTORABLE
from schemas.text import clean_text
from schemas.keys import canonical_person_key

Normalizer = Callable[..., dict[str, Any]]


def _normalizers(kind: RecordKind) -> dict[tuple[str, str], Normalizer]:
    """(source, raw stream) -> normalizer, for every stream of `kind` in every spec (pipelines/registry.py)."""
    return {(spec.name, stream.name): stream.normalizer
            for spec in SPECS for stream in spec.of_kind(kind) if stream.normalizer is not None}


# (source, raw stream) -> the function that turns one raw payload into a
# canonical contact (stored under CONTACT_STREAM).
NORMALIZERS: dict[tuple[str, str], Normalizer] = _normalizers(RecordKind.CONTACTS)

# (source, raw stream) -> the function that turns one raw payload into a
# canonical conversation (stored under CONVERSATION_STREAM). The raw streams
# hold details (with messages), so no raw stream feeds both kinds.
CONVERSATION_NORMALIZERS: dict[tuple[str, str], Normalizer] = _normalizers(RecordKind.CONVERSATIONS)


def contact_row(row: RawRow, data: dict[str, Any]) -> Normalized:
    extra = data.get("extra") or {}
    return Normalized(
        source=row.source,
        stream=CONTACT_STREAM,
        raw_stream=row.stream,
        record_id=row.record_id,
        data=data,
        payload_hash=row.payload_hash,
        email=data.get("email"),
        phone=data.get("phone"),
        person_key=canonical_person_key(data.get("email"), data.get("phone")),
        link_id=str(extra.get("conversationId") or data.get("source_id")),
    )


def conversation_row(row: RawRow, data: dict[str, Any]) -> Normalized:
    # person_key stays NULL here: the persons step links it (link_id, then email/phone hints).
    return Normalized(
        source=row.source,
        stream=CONVERSATION_STREAM,
        raw_stream=row.stream,
        record_id=row.record_id,
        data=data,
        payload_hash=row.payload_hash,
        email=data.get("email"),
        phone=data.get("phone"),
        event_day=activity_day(data),
        event_at=activity_time(data),
        channel=data.get("channel"),
        link_id=str(data.get("contact_source_id") or data.get("source_id")),
    )


@dataclass(frozen=True)
class Kind:
    """What a raw stream normalizes into: a schema, its canonical stream, its stored row."""

    schema: str
    stream: str
    normalizers: Mapping[tuple[str, str], Normalizer]
    row: Callable[[RawRow, dict[str, Any]], Normalized]


CONTACTS = Kind("contact", CONTACT_STREAM, NORMALIZERS, contact_row)
CONVERSATIONS = Kind("conversation", CONVERSATION_STREAM, CONVERSATION_NORMALIZERS, conversation_row)


@dataclass
class NormalizeStats:
    source: str
    stream: str
    normalized: int = 0
    quarantined: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    days: Counter[str] = field(default_factory=Counter)  # conversations normalized, per event_day
    seconds: float = 0.0

    def as_metadata(self) -> dict[str, Any]:
        return {
            "normalized": self.normalized,
            "quarantined": self.quarantined,
            "quarantine reasons": dict(self.reasons),
            "seconds": round(self.seconds, 2),
        }

    def plus(self, other: "NormalizeStats") -> "NormalizeStats":
        """These counts and another pass's over the same stream."""
        return NormalizeStats(self.source, self.stream, self.normalized + other.normalized,
                              self.quarantined + other.quarantined, self.reasons + other.reasons,
                              self.days + other.days, self.seconds + other.seconds)


def normalize_pending(
    store: StateStore,
    source: str,
    stream: str,
    *,
    region: str = "US",
    run_id: str | None = None,
    normalizers: Mapping[tuple[str, str], Normalizer] | None = None,
    kind: Kind = CONTACTS,
    cores: int = 1,
) -> NormalizeStats:
    """Normalize `source`'s pending payloads of raw `stream` into canonical records of `kind`.

    One bad payload never stops the others: whatever its normalizer raises,
    or a record that cannot be stored as it is, sends that one payload to
    quarantine with its reason, and the chunk goes on. `cores` > 1
    normalizes on that many cores (pipelines/steps/workers.py) while this
    process reads and stores.
    """
    normalize = (kind.normalizers if normalizers is None else normalizers)[(source, stream)]
    started = time.monotonic()
    with long_lived_set_aside(), StreamNormalizer(store, source, region=region, run_id=run_id, cores=cores,
                                                  kinds={stream: (kind, normalize)}) as normalizer:
        for chunk in store.iter_pending_raw(source, stream, normalizer.version(kind)):
            normalizer.add(stream, chunk)
        stats = normalizer.finish().get(stream) or NormalizeStats(source, stream)
    stats.seconds = time.monotonic() - started
    return stats


class StreamNormalizer:
    """Normalizes and stores a source's raw rows chunk by chunk, as they are handed in.

    What `normalize_pending` runs over the store's pending rows, and what a
    historical load runs over each page as it lands (pipelines/steps/read.py
    `Landing`), so that normalizing is done when the read is. Rows of a raw
    stream without a normalizer are ignored. Chunks are stored in the order
    they were added.
    """

    CHUNK = 500  # rows per store write when pages are handed in one by one

    def __init__(
        self, store: StateStore, source: str, *, region: str = "US", run_id: str | None = None, cores: int = 1,
        kinds: Mapping[str, tuple[Kind, Normalizer]] | None = None,
    ) -> None:
        self.store, self.source, self.region, self.run_id = store, source, region, run_id
        self._kinds = dict(kinds) if kinds is not None else {
            stream: (kind, kind.normalizers[(name, stream)])
            for kind in (CONTACTS, CONVERSATIONS) for (name, stream) in kind.normalizers if name == source
        }
        self._workers: Workers[tuple[str, list[RawRow]]] = Workers(cores)
        self._buffer: dict[str, list[RawRow]] = {}
        self._stats: dict[str, NormalizeStats] = {}
        self._versions: dict[str, int] = {}

    def version(self, kind: Kind) -> int:
        if kind.schema not in self._versions:
            self._versions[kind.schema] = registry.current_version(kind.schema)
        return self._versions[kind.schema]

    def add(self, stream: str, rows: list[RawRow]) -> None:
        """Normalize these rows of raw `stream` (now, or on the worker processes) and store what is done."""
        if stream not in self._kinds or not rows:
            return
        started = time.monotonic()
        buffer = self._buffer.setdefault(stream, [])
        buffer.extend(rows)
        if len(buffer) >= self.CHUNK:
            self._submit(stream)
        self._store(wait=False)
        self._stat(stream).seconds += time.monotonic() - started

    def finish(self) -> dict[str, NormalizeStats]:
        """Normalize and store everything handed in; the counts per raw stream."""
        started = time.monotonic()
        for stream in list(self._buffer):
            self._submit(stream)
        self._store(wait=True)
        for stats in self._stats.values():
            stats.seconds += time.monotonic() - started
        return self._stats

    def _submit(self, stream: str) -> None:
        rows = self._buffer.pop(stream, [])
        if rows:
            self._workers.submit((stream, rows), self._kinds[stream][1], [row.payload for row in rows], self.region)

    def _store(self, *, wait: bool) -> None:
        for (stream, rows), outcomes in self._workers.done(wait=wait):
            kind = self._kinds[stream][0]
            built = [_outcome(row, outcome, kind) for row, outcome in zip(rows, outcomes)]
            good = [o for o in built if isinstance(o, Normalized)]
            bad = [o for o in built if isinstance(o, Quarantined)]
            raw = {(row.source, row.stream, row.record_id): row for row in rows}
            good, bad = _save(self.store, self.version(kind), good, bad, raw, self.run_id)
            stats = self._stat(stream)
            stats.normalized += len(good)
            stats.quarantined += len(bad)
            stats.reasons.update(q.reason for q in bad)
            stats.days.update(n.event_day for n in good if n.event_day)

    def _stat(self, stream: str) -> NormalizeStats:
        return self._stats.setdefault(stream, NormalizeStats(self.source, stream))

    def close(self) -> None:
        self._workers.close()

    def __enter__(self) -> "StreamNormalizer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _outcome(row: RawRow, outcome: Outcome, kind: Kind) -> Normalized | Quarantined:
    """The stored row of one payload: its canonical record, or its quarantine with the reason."""
    if outcome.data is None:
        return _quarantined(row, kind.stream, outcome.reason or NORMALIZER_ERROR, outcome.detail or "")
    try:
        normalized = kind.row(row, outcome.data)
        problem = _unstorable(normalized)
    except Exception as exc:  # a canonical record no rule foresaw: keep the payload, say why
        return _quarantined(row, kind.stream, NORMALIZER_ERROR, f"{type(exc).__name__}: {exc}"[:500])
    if problem:
        return _quarantined(row, kind.stream, NORMALIZER_ERROR, problem)
    return normalized


# Widths of the records columns a canonical record fills (pipelines/state/tables.py).
_COLUMN_WIDTHS = {"email": 320, "phone": 32, "person_key": 400, "event_day": 10, "link_id": 255,
                  "event_at": 40, "channel": 32}


def _unstorable(row: Normalized) -> str | None:
    """Why this canonical record's columns cannot hold it (a normalizer bug), or None.
    (Its data was checked where it was made: schemas.apply.)"""
    for column, width in _COLUMN_WIDTHS.items():
        value = getattr(row, column)
        if value is not None and len(value) > width:
            return f"{column} has {len(value)} characters, more than the column's {width}"
    return None


def _save(
    store: StateStore, version: int, good: list[Normalized], bad: list[Quarantined],
    raw: Mapping[tuple[str, str, str], RawRow], run_id: str | None,
) -> tuple[list[Normalized], list[Quarantined]]:
    """Store a chunk; when the database refuses it, row by row (`_save_one`). Returns what was stored."""
    try:
        store.save_normalized(version, good, bad, run_id=run_id)
        return good, bad
    except sa.exc.StatementError as exc:
        if not refused_data(exc):
            raise
    kept_good: list[Normalized] = []
    kept_bad: list[Quarantined] = []
    for row in [*good, *bad]:
        kept = _save_one(store, version, row, raw[row.raw], run_id)
        (kept_good if isinstance(kept, Normalized) else kept_bad).append(kept)  # type: ignore[arg-type]
    return kept_good, kept_bad


def _save_one(
    store: StateStore, version: int, row: Normalized | Quarantined, source_row: RawRow, run_id: str | None
) -> Normalized | Quarantined:
    """One record stored alone; refused, it is quarantined (`unstorable`), without its payload if
    even that is refused, so its raw row is marked normalized and counted either way."""
    if isinstance(row, Normalized):
        if _stored(store, version, [row], [], run_id):
            return row
        row = _quarantined(source_row, row.stream, UNSTORABLE, "the store refused its canonical record")
    if _stored(store, version, [], [row], run_id):
        return row
    row = replace(row, payload=None, detail=f"{row.detail} (payload not kept: the store refused it)")
    store.save_normalized(version, [], [row], run_id=run_id)  # refused even so: not about this row, raised
    return row


def _stored(
    store: StateStore, version: int, good: list[Normalized], bad: list[Quarantined], run_id: str | None
) -> bool:
    """Stored, or False when the database refused the data (any other failure is raised)."""
    try:
        store.save_normalized(version, good, bad, run_id=run_id)
    except sa.exc.StatementError as exc:
        if not refused_data(exc):
            raise
        return False
    return True


def normalize_conversations(
    store: StateStore, source: str, stream: str, *, region: str = "US", run_id: str | None = None, cores: int = 1
) -> NormalizeStats:
    """Normalize `source`'s pending conversations of raw `stream` (CONVERSATION_NORMALIZERS)."""
    return normalize_pending(store, source, stream, region=region, run_id=run_id, kind=CONVERSATIONS, cores=cores)


def _quarantined(row: RawRow, stream: str, reason: str, detail: str) -> Quarantined:
    """The quarantine row of a raw row; `detail` cleaned (it may quote the payload) and bounded."""
    return Quarantined(
        row.source, stream, row.record_id, reason, clean_text(detail)[:2000], row.payload, row.payload_hash,
        raw_stream=row.stream,
    )
