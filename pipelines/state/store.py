"""The SQLAlchemy state store: raw payloads, canonical records, persons,
per-target sync state, quarantine, checkpoints and run history.

Every write is an idempotent upsert keyed by natural ids, so a run that is
killed and started again (or two runs writing at once) converge on the same
state. Reads that may cover millions of rows go by keyset pages so memory
stays flat and no long transaction holds SQLite's writer lock.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from pipelines.state import migrations
from pipelines.state.files import create_private
from pipelines.state.tables import (
    checkpoints,
    persons,
    quarantine,
    raw_records,
    records,
    run_days,
    runs,
    sync_state,
)
from schemas.hashing import content_hash
from schemas.registry import is_current, migrate

DEFAULT_FILE = "crm_sync.db"

# The one stream every canonical contact is stored under, whatever raw stream
# it came from (AgentClara contacts, Clairo briefs, AgentPro visitors), so
# that identity resolution sees the contacts of every source together.
CONTACT_STREAM = "contacts"
# The one stream every canonical conversation is stored under.
CONVERSATION_STREAM = "conversations"

# Marks one raw row normalized, if its payload is still the one that was normalized.
_MARK_NORMALIZED = (
    raw_records.update()
    .where(
        raw_records.c.source == sa.bindparam("m_source"),
        raw_records.c.stream == sa.bindparam("m_stream"),
        raw_records.c.record_id == sa.bindparam("m_id"),
        raw_records.c.payload_hash == sa.bindparam("m_hash"),
    )
    .values(normalized_hash=sa.bindparam("m_hash"))
)


def _orphaned(stream: str) -> sa.ColumnElement[bool]:
    """A person no record of `stream` points at any more (its records were re-keyed)."""
    return ~sa.exists().where(records.c.person_key == persons.c.person_key, records.c.stream == stream)


def default_database_url(env: Mapping[str, str] = os.environ) -> str:
    """SYNC_DATABASE_URL, else a SQLite file under $DAGSTER_HOME or ./.crm_sync/."""
    if env.get("SYNC_DATABASE_URL"):
        return env["SYNC_DATABASE_URL"]
    folder = Path(env["DAGSTER_HOME"]) if env.get("DAGSTER_HOME") else Path(".crm_sync")
    return f"sqlite:///{(folder / DEFAULT_FILE).resolve()}"


def redacted(url: str) -> str:
    """The URL with any password masked, for logs and metadata."""
    return sa.make_url(url).render_as_string(hide_password=True)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class RawRow:
    source: str
    stream: str
    record_id: str
    payload: Any
    payload_hash: str


@dataclass(frozen=True)
class Normalized:
    """A canonical record ready to store, with the identity fields pulled out."""

    source: str
    stream: str
    record_id: str
    data: dict[str, Any]
    payload_hash: str
    email: str | None = None
    phone: str | None = None
    person_key: str | None = None
    event_day: str | None = None
    raw_stream: str | None = None  # the raw stream it came from, when not `stream`
    link_id: str | None = None  # contact <-> conversation link within one source
    event_at: str | None = None  # a conversation's last activity (ISO-8601 UTC)
    channel: str | None = None  # a conversation's channel

    @property
    def raw(self) -> tuple[str, str, str]:
        return (self.source, self.raw_stream or self.stream, self.record_id)


@dataclass(frozen=True)
class ConversationRow:
    """A stored conversation with its person (None while unlinked), for the push."""

    source: str
    record_id: str
    person_key: str | None
    event_day: str | None
    data: dict[str, Any]


@dataclass(frozen=True)
class Quarantined:
    """A payload that could not be normalized; `stream` is the canonical stream it was meant for."""

    source: str
    stream: str
    record_id: str
    reason: str
    detail: str
    payload: Any
    payload_hash: str
    raw_stream: str | None = None  # the raw stream it came from, when not `stream`

    @property
    def raw(self) -> tuple[str, str, str]:
        return (self.source, self.raw_stream or self.stream, self.record_id)


@dataclass(frozen=True)
class SyncRow:
    key: str
    last_hash: str | None
    failed_hash: str | None
    error_permanent: bool
    crm_id: str | None
    moved_from: str | None = None  # the older person key its CRM record was synced under (re-keyed)


@dataclass(frozen=True)
class Rekey:
    """A person whose key changed (its records now make up `new_key`), and its CRM record in one target."""

    target: str
    old_key: str
    new_key: str
    crm_id: str
    carried: bool  # False: `new_key` already had its own CRM record there, so two exist (reported)


def _make_engine(url: str) -> sa.Engine:
    if url.startswith("sqlite"):
        create_private(url)
        engine = sa.create_engine(url, connect_args={"timeout": 60})

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            # WAL lets readers run beside the one writer; the busy timeout
            # makes a second writer wait instead of failing.
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=60000")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        return engine
    return sa.create_engine(url, pool_pre_ping=True)


class StateStore:
    """One handle on the store; cheap to create, safe to share across threads."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = _make_engine(url)
        migrations.upgrade(self.engine)

    def __repr__(self) -> str:
        return f"StateStore({redacted(self.url)!r})"

    def dispose(self) -> None:
        self.engine.dispose()

    # -- writing helpers -------------------------------------------------

    def _upsert(
        self,
        conn: sa.Connection,
        table: sa.Table,
        rows: Sequence[Mapping[str, Any]],
        update: Sequence[str],
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        if not rows:
            return
        dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
        stmt = dialect.insert(table)
        keys = [c.name for c in table.primary_key.columns]
        stmt = stmt.on_conflict_do_update(
            index_elements=keys,
            set_={**{name: stmt.excluded[name] for name in update}, **(extra or {})},
        )
        conn.execute(stmt, list(rows))

    # -- raw payloads ----------------------------------------------------

    def save_raw(
        self,
        source: str,
        stream: str,
        items: Iterable[tuple[str, Any]],
        *,
        run_id: str | None = None,
    ) -> int:
        """Keep raw payloads by id; returns how many are new or changed."""
        now = utcnow()
        rows = {
            record_id: {
                "source": source,
                "stream": stream,
                "record_id": record_id,
                "payload": payload,
                "payload_hash": content_hash(payload),
                "first_seen_at": now,
                "fetched_at": now,
                "run_id": run_id,
            }
            for record_id, payload in items
        }
        if not rows:
            return 0
        with self.engine.begin() as conn:
            known = dict(
                conn.execute(
                    sa.select(raw_records.c.record_id, raw_records.c.payload_hash).where(
                        raw_records.c.source == source,
                        raw_records.c.stream == stream,
                        raw_records.c.record_id.in_(list(rows)),
                    )
                ).all()
            )
            changed = [r for r in rows.values() if known.get(r["record_id"]) != r["payload_hash"]]
            self._upsert(conn, raw_records, changed, ["payload", "payload_hash", "fetched_at", "run_id"])
        return len(changed)

    def raw_payloads(self, source: str, stream: str, record_ids: Sequence[str]) -> dict[str, Any]:
        """The kept payloads of these ids (those the store has), by id."""
        if not record_ids:
            return {}
        r = raw_records.c
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(r.record_id, r.payload).where(
                    r.source == source, r.stream == stream, r.record_id.in_(list(record_ids))
                )
            ).all()
        return {row.record_id: row.payload for row in rows}

    def iter_pending_raw(
        self, source: str, stream: str, version: int, *, batch: int = 2000
    ) -> Iterator[list[RawRow]]:
        """Raw rows whose payload or schema version changed since they were normalized."""
        r = raw_records.c
        pending = sa.or_(
            r.normalized_hash.is_(None),
            r.normalized_hash != r.payload_hash,
            r.normalized_version != version,
        )
        yield from self._keyset(
            sa.select(r.record_id, r.payload, r.payload_hash).where(
                r.source == source, r.stream == stream, pending
            ),
            r.record_id,
            batch,
            lambda row: RawRow(source, stream, row.record_id, row.payload, row.payload_hash),
        )

    def _keyset(self, query: sa.Select, key: sa.ColumnElement, batch: int, make: Any) -> Iterator[list]:
        last = None
        while True:
            page_query = query.order_by(key).limit(batch)
            if last is not None:
                page_query = page_query.where(key > last)
            with self.engine.connect() as conn:
                rows = conn.execute(page_query).all()
            if not rows:
                return
            last = getattr(rows[-1], key.key)
            yield [make(row) for row in rows]

    def save_normalized(
        self, version: int, good: Sequence[Normalized], bad: Sequence[Quarantined], *, run_id: str | None = None
    ) -> None:
        """Store one chunk's outcome and mark its raw rows normalized, atomically."""
        now = utcnow()
        with self.engine.begin() as conn:
            self._upsert(
                conn,
                records,
                [
                    {
                        "source": n.source,
                        "stream": n.stream,
                        "record_id": n.record_id,
                        "schema_name": n.data["schema"],
                        "schema_version": n.data["version"],
                        "data": n.data,
                        "email": n.email,
                        "phone": n.phone,
                        "person_key": n.person_key,
                        "event_day": n.event_day,
                        "link_id": n.link_id,
                        "event_at": n.event_at,
                        "channel": n.channel,
                        "content_hash": content_hash(n.data),
                        "normalized_at": now,
                    }
                    for n in good
                ],
                ["schema_name", "schema_version", "data", "email", "phone", "person_key",
                 "event_day", "link_id", "event_at", "channel", "content_hash", "normalized_at"],
            )
            self._upsert(
                conn,
                quarantine,
                [
                    {
                        "source": q.source,
                        "stream": q.stream,
                        "record_id": q.record_id,
                        "reason": q.reason,
                        "detail": q.detail,
                        "payload": q.payload,
                        "quarantined_at": now,
                        "run_id": run_id,
                    }
                    for q in bad
                ],
                ["reason", "detail", "payload", "quarantined_at", "run_id"],
            )
            # A record that is now valid leaves quarantine, and the reverse.
            for rows, table in ((good, quarantine), (bad, records)):
                for source, stream, ids in _group_ids(rows):
                    conn.execute(
                        table.delete().where(
                            table.c.source == source, table.c.stream == stream, table.c.record_id.in_(ids)
                        )
                    )
            # One statement for the chunk (executemany), not one per record: it was a fifth of normalize.
            marks = []
            for row in [*good, *bad]:
                source, raw_stream, record_id = row.raw
                marks.append({"m_source": source, "m_stream": raw_stream, "m_id": record_id, "m_hash": row.payload_hash})
            if marks:
                conn.execute(_MARK_NORMALIZED.values(normalized_version=version), marks)

    def reset_normalization(self, source: str | None = None, streams: Sequence[str] | None = None) -> int:
        """Mark kept raw payloads for re-normalization (after a normalizer change)."""
        stmt = raw_records.update().values(normalized_hash=None)
        if source:
            stmt = stmt.where(raw_records.c.source == source)
        if streams is not None:
            stmt = stmt.where(raw_records.c.stream.in_(list(streams)))
        with self.engine.begin() as conn:
            return conn.execute(stmt).rowcount

    # -- identity --------------------------------------------------------

    def resolve_phone_identities(self, stream: str = CONTACT_STREAM) -> int:
        """Give every email-less record its person key by DESIGN.md's rule.

        Works over one canonical stream, across every source: contacts from
        all sources are stored under CONTACT_STREAM, so an AgentClara SMS
        contact finds the Clairo lead who has its phone. It joins the one emailed person who has its phone; when none or
        several have it, it is its own person keyed by the phone. Done in SQL
        so it scales with the store, not with memory; schemas.identity holds
        the in-memory reference implementation the tests compare against.
        (An emailed contact's key is "email:" + its email: taking MIN(email)
        lets SQLite answer from the (phone, email) index.)
        """
        statement = sa.text(
            """
            UPDATE records SET person_key = COALESCE(
                (SELECT 'email:' || MIN(r2.email) FROM records r2
                  WHERE r2.stream = records.stream AND r2.phone = records.phone
                    AND r2.email IS NOT NULL
                 HAVING COUNT(DISTINCT r2.email) = 1),
                'phone:' || records.phone)
            WHERE stream = :stream AND email IS NULL AND phone IS NOT NULL
            """
        )
        with self.engine.begin() as conn:
            return conn.execute(statement, {"stream": stream}).rowcount

    def iter_person_groups(
        self, stream: str = CONTACT_STREAM, *, batch: int = 5000
    ) -> Iterator[tuple[str, list[dict[str, Any]]]]:
        """(person_key, its records' data), in key order, streamed."""
        c = records.c
        query = (
            sa.select(c.person_key, c.record_id, c.data)
            .where(c.stream == stream, c.person_key.is_not(None))
            .order_by(c.person_key, c.record_id)
        )
        last_key: str | None = None
        last_id: str | None = None
        current_key: str | None = None
        current: list[dict[str, Any]] = []
        while True:
            page = query.limit(batch)
            if last_key is not None:
                page = page.where(
                    sa.or_(c.person_key > last_key, sa.and_(c.person_key == last_key, c.record_id > last_id))
                )
            with self.engine.connect() as conn:
                rows = conn.execute(page).all()
            if not rows:
                break
            for row in rows:
                if row.person_key != current_key:
                    if current:
                        yield current_key, current  # type: ignore[misc]
                    current_key, current = row.person_key, []
                # A record stored by an older schema version loads as the current one.
                current.append(row.data if is_current(row.data) else migrate(row.data))
            last_key, last_id = rows[-1].person_key, rows[-1].record_id
        if current:
            yield current_key, current  # type: ignore[misc]

    # -- conversations ---------------------------------------------------

    def link_conversations(self) -> tuple[int, int]:
        """Give every stored conversation its person; returns (linked, unlinked).

        By the first that answers: the contact record of the same source
        that shares its link_id (AgentClara customer_id, the AgentPro
        visitor key, the Clairo brief of the conversation); else its email
        hint, when that person exists; else its phone hint by the matching
        rule (the one emailed person who has that phone, else the phone's
        own person, when it exists). Else NULL: unlinked, it waits for its
        person. Run after resolve_phone_identities; only changed rows are written.
        Each lookup is an index search (ix_records_link, ix_records_stream_person,
        ix_records_phone_email), so the statement stays linear in conversations.
        """
        linked_key = """COALESCE(
            (SELECT MIN(c.person_key) FROM records c
              WHERE c.stream = :contacts AND c.source = records.source AND c.link_id = records.link_id),
            (SELECT MIN(c.person_key) FROM records c
              WHERE c.stream = :contacts AND records.email IS NOT NULL AND c.person_key = 'email:' || records.email),
            (SELECT 'email:' || MIN(c.email) FROM records c
              WHERE c.stream = :contacts AND records.phone IS NOT NULL AND c.phone = records.phone
                AND c.email IS NOT NULL
             HAVING COUNT(DISTINCT c.email) = 1),
            (SELECT MIN(c.person_key) FROM records c
              WHERE c.stream = :contacts AND records.phone IS NOT NULL AND c.person_key = 'phone:' || records.phone))"""
        with self.engine.begin() as conn:
            differs = "IS DISTINCT FROM" if conn.dialect.name == "postgresql" else "IS NOT"
            conn.execute(
                sa.text(f"UPDATE records SET person_key = {linked_key} "
                        f"WHERE stream = :conversations AND person_key {differs} {linked_key}"),
                {"contacts": CONTACT_STREAM, "conversations": CONVERSATION_STREAM},
            )
            c = records.c
            counts = dict(conn.execute(
                sa.select(c.person_key.is_not(None), sa.func.count())
                .where(c.stream == CONVERSATION_STREAM)
                .group_by(c.person_key.is_not(None))
            ).all())
        return int(counts.get(True, 0)), int(counts.get(False, 0))

    def conversation_rollups(self, keys: Sequence[str]) -> dict[str, list[tuple[str, int, str]]]:
        """Per person: (channel, conversations, latest activity) of its linked conversations."""
        if not keys:
            return {}
        c = records.c
        query = (
            sa.select(c.person_key, c.channel, sa.func.count(), sa.func.max(c.event_at))
            .where(c.stream == CONVERSATION_STREAM, c.person_key.in_(list(keys)))
            .group_by(c.person_key, c.channel)
        )
        found: dict[str, list[tuple[str, int, str]]] = {}
        with self.engine.connect() as conn:
            for key, channel, count, latest in conn.execute(query).all():
                found.setdefault(key, []).append((channel, int(count), latest))
        return found

    def iter_conversations(
        self, days: tuple[str, str] | None = None, *, batch: int = 1000
    ) -> Iterator[list[ConversationRow]]:
        """Stored conversations whose event_day is in [first, last] (all when None), by (source, id)."""
        c = records.c
        query = sa.select(c.source, c.record_id, c.person_key, c.event_day, c.data).where(
            c.stream == CONVERSATION_STREAM
        )
        if days is not None:
            query = query.where(c.event_day >= days[0], c.event_day <= days[1])
        last: tuple[str, str] | None = None
        while True:
            page = query.order_by(c.source, c.record_id).limit(batch)
            if last is not None:
                page = page.where(sa.or_(c.source > last[0], sa.and_(c.source == last[0], c.record_id > last[1])))
            with self.engine.connect() as conn:
                rows = conn.execute(page).all()
            if not rows:
                return
            last = (rows[-1].source, rows[-1].record_id)
            yield [ConversationRow(r.source, r.record_id, r.person_key, r.event_day, r.data) for r in rows]

    def conversation_days(self, source: str | None, days: tuple[str, str]) -> dict[str, int]:
        """Stored conversations per event_day in [first, last] (of one source, or all)."""
        c = records.c
        query = (
            sa.select(c.event_day, sa.func.count())
            .where(c.stream == CONVERSATION_STREAM, c.event_day >= days[0], c.event_day <= days[1])
            .group_by(c.event_day)
        )
        if source:
            query = query.where(c.source == source)
        with self.engine.connect() as conn:
            return {day: int(n) for day, n in conn.execute(query).all()}

    def save_persons(self, items: Sequence[tuple[str, dict[str, Any]]]) -> int:
        """Upsert persons whose content changed; returns how many changed."""
        if not items:
            return 0
        hashed = {key: (data, content_hash(data)) for key, data in items}
        now = utcnow()
        with self.engine.begin() as conn:
            known = dict(
                conn.execute(
                    sa.select(persons.c.person_key, persons.c.content_hash).where(
                        persons.c.person_key.in_(list(hashed))
                    )
                ).all()
            )
            changed = [
                {"person_key": k, "data": d, "content_hash": h, "updated_at": now}
                for k, (d, h) in hashed.items()
                if known.get(k) != h
            ]
            self._upsert(conn, persons, changed, ["data", "content_hash", "updated_at"])
        return len(changed)

    def carry_rekeyed_crm_records(self, stream: str = CONTACT_STREAM) -> list[Rekey]:
        """Hand the CRM records of re-keyed persons to their new key, before those persons are dropped.

        A person is re-keyed when its records now resolve to another key: a
        phone-only customer who later gives an email (or whose phone turns
        up on an emailed record) moves from "phone:+1..." to "email:...".
        Its CRM contact must follow, or the next push would create a second
        one. A person no record points at any more is looked up by what its
        key was made of (its phone or email) and its `source_ids`; when all
        of its records now sit under one key, each target's sync row moves
        there with its CRM id, marked `moved_from`, and the sink writes that
        record by id. When the new key already has a CRM record of its own,
        the two CRM records are reported, not merged: merging is for a person
        to decide in the CRM. (Records found by the old key's phone or email
        only: a customer whose phone changed in the same day as they gave an
        email is not followed.)
        """
        moves: list[Rekey] = []
        with self.engine.begin() as conn:
            orphans = sa.select(persons.c.person_key, persons.c.data).where(_orphaned(stream))
            for old_key, data in conn.execute(orphans).all():
                new_key = self._successor(conn, stream, old_key, data or {})
                if new_key is None:
                    continue
                moves += self._carry(conn, old_key, new_key)
        return moves

    @staticmethod
    def _successor(conn: sa.Connection, stream: str, old_key: str, data: Mapping[str, Any]) -> str | None:
        """The one key that the records of an orphaned person now have, if there is exactly one."""
        kind, _, value = old_key.partition(":")
        column = {"phone": records.c.phone, "email": records.c.email}.get(kind)
        wanted = {(source, str(source_id)) for source, ids in (data.get("source_ids") or {}).items()
                  for source_id in ids}
        if column is None or not value or not wanted:
            return None
        rows = conn.execute(sa.select(records.c.source, records.c.data, records.c.person_key).where(
            records.c.stream == stream, column == value, records.c.person_key.is_not(None))).all()
        found = {row.person_key for row in rows if (row.source, str((row.data or {}).get("source_id"))) in wanted}
        if len(found) != 1:
            return None
        (new_key,) = found
        return new_key if new_key != old_key else None

    @staticmethod
    def _carry(conn: sa.Connection, old_key: str, new_key: str) -> list[Rekey]:
        s = sync_state.c
        contact = s.object_type == "contact"
        rows = conn.execute(sa.select(s.target, s.crm_id).where(contact, s.key == old_key, s.crm_id.is_not(None)))
        moves = []
        for target, crm_id in rows.all():
            taken = conn.execute(sa.select(s.crm_id).where(
                contact, s.target == target, s.key == new_key, s.crm_id.is_not(None))).scalar()
            if taken is not None:
                moves.append(Rekey(target, old_key, new_key, crm_id, carried=False))
                continue
            where = sa.and_(contact, s.target == target)
            conn.execute(sync_state.delete().where(where, s.key == new_key))  # a failed first attempt, if any
            conn.execute(sync_state.update().where(where, s.key == old_key).values(
                key=new_key, moved_from=old_key, last_hash=None, failed_hash=None, last_error=None,
                error_code=None, error_permanent=False))
            moves.append(Rekey(target, old_key, new_key, crm_id, carried=True))
        return moves

    def delete_orphan_persons(self, stream: str = CONTACT_STREAM) -> int:
        """Drop persons no record points at any more (their records re-keyed)."""
        with self.engine.begin() as conn:
            return conn.execute(persons.delete().where(_orphaned(stream))).rowcount

    def iter_persons(self, *, batch: int = 2000) -> Iterator[list[tuple[str, dict[str, Any]]]]:
        p = persons.c
        yield from self._keyset(
            sa.select(p.person_key, p.data), p.person_key, batch, lambda row: (row.person_key, row.data)
        )

    def count(self, table_name: str, **where: Any) -> int:
        table = {t.name: t for t in (raw_records, records, quarantine, persons, sync_state, runs, run_days)}[table_name]
        query = sa.select(sa.func.count()).select_from(table)
        for column, value in where.items():
            query = query.where(table.c[column] == value)
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def duplicate_person_emails(self) -> list[tuple[str, int]]:
        """Emails carried by more than one person: must always be empty."""
        email = sa.func.json_extract(persons.c.data, "$.email")
        with self.engine.connect() as conn:
            if conn.dialect.name == "postgresql":
                email = persons.c.data["email"].as_string()
            rows = conn.execute(
                sa.select(email.label("email"), sa.func.count().label("n"))
                .where(email.is_not(None))
                .group_by(email)
                .having(sa.func.count() > 1)
            ).all()
        return [(row.email, row.n) for row in rows]

    def quarantine_reasons(self, source: str | None = None) -> dict[str, int]:
        q = quarantine.c
        query = sa.select(q.reason, sa.func.count()).group_by(q.reason).order_by(q.reason)
        if source:
            query = query.where(q.source == source)
        with self.engine.connect() as conn:
            return {reason: n for reason, n in conn.execute(query).all()}

    def quarantine_sample(
        self, limit: int = 10, source: str | None = None, stream: str | None = None
    ) -> list[dict[str, Any]]:
        q = quarantine.c
        query = sa.select(q.source, q.record_id, q.reason, q.detail).order_by(q.source, q.record_id).limit(limit)
        if source:
            query = query.where(q.source == source)
        if stream:
            query = query.where(q.stream == stream)
        with self.engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(query).all()]

    # -- sync state ------------------------------------------------------

    def sync_rows(self, target: str, object_type: str, keys: Sequence[str]) -> dict[str, SyncRow]:
        s = sync_state.c
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(s.key, s.last_hash, s.failed_hash, s.error_permanent, s.crm_id, s.moved_from).where(
                    s.target == target, s.object_type == object_type, s.key.in_(list(keys))
                )
            ).all()
        return {
            row.key: SyncRow(row.key, row.last_hash, row.failed_hash, bool(row.error_permanent), row.crm_id,
                             row.moved_from)
            for row in rows
        }

    def record_sync(
        self,
        target: str,
        object_type: str,
        results: Sequence[tuple[str, str, bool, str | None, str | None, str | None, bool]],
    ) -> None:
        """Record outcomes: (key, hash, ok, crm_id, error, error_code, permanent) each."""
        now = utcnow()
        ok_rows = [
            {"target": target, "object_type": object_type, "key": key, "crm_id": crm_id,
             "last_hash": h, "synced_at": now, "failed_hash": None, "last_error": None,
             "error_code": None, "error_permanent": False, "attempts": 0, "last_attempt_at": now,
             "moved_from": None}
            for key, h, ok, crm_id, _e, _c, _p in results if ok
        ]
        failed = [r for r in results if not r[2]]
        with self.engine.begin() as conn:
            self._upsert(
                conn, sync_state, ok_rows,
                ["crm_id", "last_hash", "synced_at", "failed_hash", "last_error", "error_code",
                 "error_permanent", "attempts", "last_attempt_at", "moved_from"],
            )
            self._upsert(
                conn,
                sync_state,
                [{"target": target, "object_type": object_type, "key": key, "failed_hash": h,
                  "last_error": error, "error_code": code, "error_permanent": permanent,
                  "attempts": 1, "last_attempt_at": now}
                 for key, h, _ok, _crm_id, error, code, permanent in failed],
                ["failed_hash", "last_error", "error_code", "error_permanent", "last_attempt_at"],
                extra={"attempts": sync_state.c.attempts + 1},
            )

    def sync_errors(self, target: str, *, limit: int = 20) -> list[dict[str, Any]]:
        s = sync_state.c
        query = (
            sa.select(s.key, s.error_code, s.last_error, s.attempts)
            .where(s.target == target, s.last_error.is_not(None))
            .order_by(s.key)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(query).all()]

    # -- checkpoints and runs -------------------------------------------

    def get_checkpoint(self, name: str) -> Any:
        with self.engine.connect() as conn:
            return conn.execute(sa.select(checkpoints.c.value).where(checkpoints.c.name == name)).scalar()

    def set_checkpoint(self, name: str, value: Any) -> None:
        with self.engine.begin() as conn:
            self._upsert(conn, checkpoints, [{"name": name, "value": value, "updated_at": utcnow()}],
                         ["value", "updated_at"])

    def clear_checkpoint(self, name: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(checkpoints.delete().where(checkpoints.c.name == name))

    def record_run(
        self, run_id: str, job: str, step: str, partition: str | None, status: str,
        stats: Mapping[str, Any] | None = None, started_at: datetime | None = None,
    ) -> None:
        now = utcnow()
        row = {"run_id": run_id, "job": job, "step": step, "partition": partition,
               "started_at": started_at or now, "status": status, "stats": dict(stats or {}),
               "finished_at": None if status == "running" else now}
        with self.engine.begin() as conn:
            self._upsert(conn, runs, [row], ["status", "stats", "finished_at", "partition"])

    def record_days(self, run_id: str, step: str, days: Mapping[str, Mapping[str, Any]]) -> None:
        """Keep what a step did per day of its partition range ({day: stats})."""
        now = utcnow()
        rows = [{"run_id": run_id, "step": step, "day": day, "stats": dict(stats), "recorded_at": now}
                for day, stats in days.items()]
        with self.engine.begin() as conn:
            self._upsert(conn, run_days, rows, ["stats", "recorded_at"])

    def day_results(self, run_id: str, step: str | None = None) -> dict[str, dict[str, dict[str, Any]]]:
        """{step: {day: stats}} of one run (one step when given)."""
        query = sa.select(run_days).where(run_days.c.run_id == run_id).order_by(run_days.c.step, run_days.c.day)
        if step:
            query = query.where(run_days.c.step == step)
        found: dict[str, dict[str, dict[str, Any]]] = {}
        with self.engine.connect() as conn:
            for row in conn.execute(query).all():
                found.setdefault(row.step, {})[row.day] = row.stats
        return found

    def run_history(self, run_id: str | None = None) -> list[dict[str, Any]]:
        query = sa.select(runs).order_by(runs.c.started_at, runs.c.step)
        if run_id:
            query = query.where(runs.c.run_id == run_id)
        with self.engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(query).all()]


def _group_ids(rows: Iterable[Normalized | Quarantined]) -> Iterator[tuple[str, str, list[str]]]:
    groups: dict[tuple[str, str], list[str]] = {}
    for row in rows:
        groups.setdefault((row.source, row.stream), []).append(row.record_id)
    for (source, stream), ids in groups.items():
        yield source, stream, ids
