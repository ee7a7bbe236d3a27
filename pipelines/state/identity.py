"""The identity SQL over the `records` table: who each contact and conversation belongs to.

docs/identity.md's matching rule, applied in SQL over the whole store so it
scales with the store, not with memory (schemas.identity holds the
in-memory reference the tests compare it with). Rule 2 (the one emailed
person who has a phone) is written once, `_sole_owner_key`, for the two
statements that apply it. This family only sets `records.person_key`; it
is separate from records.py because these statements are the ones whose
SQLite plans are pinned (tests/test_sqlite_plans.py) and must not change
by accident. The key prefixes come from schemas.keys.
"""

from __future__ import annotations

from typing import Sequence

import sqlalchemy as sa

from pipelines.state.base import StoreBase
from pipelines.state.rows import CONTACT_STREAM, CONVERSATION_STREAM
from pipelines.state.tables import records
from schemas.keys import sql_person_key


def _sole_owner_key(outer: str, contacts: str) -> str:
    """SQL: "email:" + the one email whose contact records carry `outer`.phone; NULL when none or several.

    Rule 2 of the matching rule (docs/identity.md), written once for the two
    statements that apply it: resolve_phone_identities (an email-less
    contact) and link_conversations (a conversation's phone hint). A stored
    phone is already an identity (the phone rule in schemas.fields: every
    contact is at the current schema version when these run, see
    `upgrade_stale_contacts`). Taking MIN(email) lets SQLite answer from the
    (phone, email) index.
    """
    return f"""(SELECT {sql_person_key("email", "MIN(r2.email)")} FROM records r2
                 WHERE r2.stream = {contacts} AND r2.phone = {outer}.phone AND r2.email IS NOT NULL
                HAVING COUNT(DISTINCT r2.email) = 1)"""


def _distinct_from(conn: sa.Connection) -> str:
    """The null-safe "differs" operator of the connection's dialect, so an update writes changed rows only."""
    return "IS DISTINCT FROM" if conn.dialect.name == "postgresql" else "IS NOT"


class IdentityFamily(StoreBase):
    """Give contacts and conversations their person key; roll conversations up per person."""

    def refresh_planner_statistics(self) -> None:
        """On PostgreSQL, ANALYZE `records` before the identity statements run over it.

        After a bulk load the planner still holds the statistics of the empty
        table (autovacuum analyzes later, on its own time): it took
        `stream = 'contacts'` for 17 rows of 19,271 and answered each
        email-less contact's phone lookup by scanning the stream index, which
        is quadratic in the store (20,000 contacts: 950 ms for a statement
        that takes 9 ms with fresh statistics). ANALYZE reads a fixed sample,
        so it costs the same whatever the table's size. SQLite's plans are
        pinned without statistics (tests/test_sqlite_plans.py).
        """
        with self.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(sa.text("ANALYZE records"))

    def resolve_phone_identities(self, stream: str = CONTACT_STREAM) -> int:
        """Give every email-less record its person key by DESIGN.md's rule.

        Works over one canonical stream, across every source: contacts from
        all sources are stored under CONTACT_STREAM, so an AgentClara SMS
        contact finds the Clairo lead who has its phone. It joins the one emailed person who has its phone; when none or
        several have it, it is its own person keyed by the phone. Done in SQL
        so it scales with the store, not with memory; schemas.identity holds
        the in-memory reference implementation the tests compare against.
        Run after `upgrade_stale_contacts`, so every stored phone is a real
        number (an emailed contact's key is "email:" + its email). Only rows
        whose key changes are written, so a rebuild over a store that did not
        move writes nothing (on PostgreSQL every rewritten row is a new tuple
        and a dead one for VACUUM). Returns how many rows changed.
        """
        key = f"""COALESCE({_sole_owner_key("records", "records.stream")},
                {sql_person_key("phone", "records.phone")})"""
        with self.engine.begin() as conn:
            statement = sa.text(f"UPDATE records SET person_key = {key} "
                                f"WHERE stream = :stream AND email IS NULL AND phone IS NOT NULL "
                                f"AND person_key {_distinct_from(conn)} {key}")
            return conn.execute(statement, {"stream": stream}).rowcount

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
        email_key, phone_key = sql_person_key("email", "records.email"), sql_person_key("phone", "records.phone")
        linked_key = f"""COALESCE(
            (SELECT MIN(c.person_key) FROM records c
              WHERE c.stream = :contacts AND c.source = records.source AND c.link_id = records.link_id),
            (SELECT MIN(c.person_key) FROM records c
              WHERE c.stream = :contacts AND records.email IS NOT NULL AND c.person_key = {email_key}),
            {_sole_owner_key("records", ":contacts")},
            (SELECT MIN(c.person_key) FROM records c
              WHERE c.stream = :contacts AND records.phone IS NOT NULL AND c.person_key = {phone_key}))"""
        with self.engine.begin() as conn:
            conn.execute(
                sa.text(f"UPDATE records SET person_key = {linked_key} "
                        f"WHERE stream = :conversations AND person_key {_distinct_from(conn)} {linked_key}"),
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
