"""SQLite's plans for the identity statements do not depend on the order the indexes were created in.

Without statistics SQLite picks between two usable indexes partly by the
order they appear in the schema, and SQLAlchemy creates a table's indexes
in an order that changes from process to process. One order made
`resolve_phone_identities` read every contact for each email-less one (a
100,000-contact persons step went from 27 s to over 270 s). The store pins
planner statistics (pipelines/state/migrations.py); this checks every
statement the persons step sends, in several index orders, for the plans
that grow with the square of the store.
"""

from __future__ import annotations

import itertools
import re
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from pipelines.state import StateStore
from pipelines.state import tables
from pipelines.state.store import Normalized
from pipelines.steps.persons import rebuild_persons
from schemas.identity import person_key
from schemas.registry import current_version

NAMES = sorted(index.name for index in tables.records.indexes)
ORDERS = [NAMES, NAMES[::-1], *itertools.islice(itertools.permutations(NAMES), 7, None, 29)]


def contact(i: int, email: str | None, phone: str | None) -> Normalized:
    data = {"schema": "contact", "version": current_version("contact"), "source": "agentclara", "source_id": f"c{i}", "email": email,
            "phone": phone, "first_name": None, "last_name": None, "full_name": None, "company": None,
            "tags": [], "created_at": None, "updated_at": None}
    return Normalized("agentclara", "contacts", f"c{i}", data, "h", email=email, phone=phone,
                      person_key=person_key(email, phone), link_id=f"c{i}")


def conversation(i: int) -> Normalized:
    data = {"schema": "conversation", "version": 1, "source": "agentclara", "source_id": f"v{i}",
            "email": None, "phone": f"+1202555{i % 50:04d}", "channel": "sms", "started_at": None}
    return Normalized("agentclara", "conversations", f"v{i}", data, "h", phone=data["phone"],
                      event_day="2026-11-20", link_id=f"c{i}", event_at="2026-11-20T10:00:00+00:00", channel="sms")


def store_with_indexes_in(order: list[str], url: str) -> StateStore:
    StateStore(url).engine.dispose()
    engine = sa.create_engine(url)
    by_name = {index.name: index for index in tables.records.indexes}
    with engine.begin() as conn:
        for name in order:
            conn.exec_driver_sql(f"DROP INDEX {name}")
        for name in order:
            by_name[name].create(conn)
    engine.dispose()
    return StateStore(url)


def quadratic_steps(conn: sa.Connection, statement: str, params: Any) -> list[str]:
    """Plan lines that read `records` once per row of an outer loop by a stream alone, or sort each page."""
    rows = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", params).all()
    correlated = {row[0] for row in rows if "CORRELATED" in row[3]}
    parents = {row[0]: row[1] for row in rows}

    def inside_correlated(node: int) -> bool:
        while node:
            if node in correlated:
                return True
            node = parents.get(node, 0)
        return False

    bad = []
    for node, _parent, _unused, detail in rows:
        reads_by_stream = re.search(r"(SCAN \w+$|SCAN \w+ USING|USING INDEX \w+ \(stream=\?\)$)", detail)
        if inside_correlated(node) and reads_by_stream:
            bad.append(detail)
        if "TEMP B-TREE FOR ORDER BY" in detail and "LIMIT" in statement.upper():
            bad.append(detail)
    return bad


@pytest.mark.parametrize("order", ORDERS, ids=lambda order: "-".join(name.split("_")[-1] for name in order))
def test_the_persons_step_plans_stay_linear_in_any_index_order(tmp_path: Path, order: list[str]) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    store = store_with_indexes_in(order, url)
    contacts = [contact(i, f"p{i}@example.com" if i % 3 else None, f"+1202555{i % 50:04d}") for i in range(200)]
    store.save_normalized(current_version("contact"), contacts, [])
    store.save_normalized(1, [conversation(i) for i in range(100)], [])

    sent: list[tuple[str, Any]] = []
    listen = lambda conn, cursor, statement, params, context, many: sent.append((statement, params))  # noqa: E731
    sa.event.listen(store.engine, "before_cursor_execute", listen)
    rebuild_persons(store)
    sa.event.remove(store.engine, "before_cursor_execute", listen)

    reading_records = [(s, p) for s, p in sent if re.search(r"\brecords\b", s) and not s.lstrip().startswith(
        "INSERT")]
    assert any("COUNT(DISTINCT r2.email)" in s for s, _ in reading_records)  # resolve_phone_identities was checked
    with store.engine.connect() as conn:
        found = {statement.split()[0] + " " + " ".join(statement.split())[:90]: steps
                 for statement, params in reading_records
                 for steps in [quadratic_steps(conn, statement, params if not isinstance(params, list) else params[0])]
                 if steps}
    assert found == {}
