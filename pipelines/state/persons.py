"""The `persons` family: one merged person per key, and what follows when a key moves.

A person is rebuilt from its records at every run (`iter_person_groups` ->
schemas.identity.merge_person -> `save_persons`). When its records move to
another key (a phone-only customer gives an email), its CRM records must
follow before the old person is dropped (`carry_rekeyed_crm_records`,
which moves `sync_state` rows), or the next push would create a second
contact. It is separate because it is the one family that writes across
tables on a person's behalf (persons and sync_state), and only the persons
step, under its lock, calls it.
"""

from __future__ import annotations

from typing import Any, Iterator, Mapping, Sequence

import sqlalchemy as sa

from pipelines.state.base import StoreBase, utcnow
from pipelines.state.rows import CONTACT_STREAM, Rekey
from pipelines.state.tables import persons, records, sync_state
from schemas.hashing import content_hash
from schemas.keys import parse_person_key
from schemas.registry import is_current, migrate


def _orphaned(stream: str) -> sa.ColumnElement[bool]:
    """A person no record of `stream` points at any more (its records were re-keyed)."""
    return ~sa.exists().where(records.c.person_key == persons.c.person_key, records.c.stream == stream)


class PersonsFamily(StoreBase):
    """Read records grouped by person, write persons, carry CRM records across re-keys."""

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
                moves += self._left_behind(conn, old_key) if new_key is None else self._carry(conn, old_key, new_key)
        return moves

    @staticmethod
    def _left_behind(conn: sa.Connection, old_key: str) -> list[Rekey]:
        """The CRM records of a person whose records went to no single key: kept as they are, reported.

        Their sync rows stay too: no person has the key, so nothing sends
        them, and if the key comes back its CRM record is reused.
        """
        s = sync_state.c
        rows = conn.execute(sa.select(s.target, s.crm_id).where(
            s.object_type == "contact", s.key == old_key, s.crm_id.is_not(None)).order_by(s.target))
        return [Rekey(target, old_key, None, crm_id, carried=False) for target, crm_id in rows.all()]

    @staticmethod
    def _successor(conn: sa.Connection, stream: str, old_key: str, data: Mapping[str, Any]) -> str | None:
        """The one key that the records of an orphaned person now have, if there is exactly one."""
        parsed = parse_person_key(old_key)
        wanted = {(source, str(source_id)) for source, ids in (data.get("source_ids") or {}).items()
                  for source_id in ids}
        if parsed is None or not wanted:
            return None
        kind, value = parsed
        column = {"phone": records.c.phone, "email": records.c.email}[kind]
        rows = conn.execute(sa.select(records.c.source, records.c.data, records.c.person_key).where(
            records.c.stream == stream, column == value, records.c.person_key.is_not(None))).all()
        found = {row.person_key for row in rows if (row.source, str((row.data or {}).get("source_id"))) in wanted}
        if len(found) != 1:
            return None
        (new_key,) = found
        return new_key if new_key != old_key else None

    @staticmethod
    def _carry(conn: sa.Connection, old_key: str, new_key: str) -> list[Rekey]:
        """Move each target's contact sync row from `old_key` to `new_key`, unless `new_key` has its own."""
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
        """Every person (key, data), in pages by key."""
        p = persons.c
        yield from self._keyset(
            sa.select(p.person_key, p.data), p.person_key, batch, lambda row: (row.person_key, row.data)
        )

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
