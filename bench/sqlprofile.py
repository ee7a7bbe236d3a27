"""Wall time per SQL statement on one engine, to name what a slow stage waits on.

A stage that scales worse than linearly is nearly always one statement with
a bad plan; timing statements (not Python functions) finds it without
knowing the store's internals, and SQLite's EXPLAIN QUERY PLAN says why.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

# An expanded IN list or a VALUES row: "(?, ?, ?)", "(%(p_1)s, %(p_2)s)".
_BINDS = re.compile(r"\((?:\s*(?:\?|%\([^)]*\)s)\s*,)+\s*(?:\?|%\([^)]*\)s)\s*\)")


@dataclass
class SlowSql:
    statement: str  # whitespace collapsed, bind lists shortened
    seconds: float
    calls: int
    plan: str | None = None  # SQLite's EXPLAIN QUERY PLAN, details joined by "; "


class SqlProfile:
    """Accumulates time per statement between `reset()` and `top()`."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self._totals: dict[str, list[Any]] = {}  # key -> [seconds, calls, raw statement, last params]
        sa.event.listen(engine, "before_cursor_execute", self._before)
        sa.event.listen(engine, "after_cursor_execute", self._after)

    def reset(self) -> None:
        self._totals = {}

    def _before(self, conn: sa.Connection, cursor: Any, statement: str, params: Any, context: Any, many: bool) -> None:
        conn.info.setdefault("bench_started", []).append(time.perf_counter())

    def _after(self, conn: sa.Connection, cursor: Any, statement: str, params: Any, context: Any, many: bool) -> None:
        elapsed = time.perf_counter() - conn.info["bench_started"].pop()
        key = _BINDS.sub("(…)", " ".join(statement.split()))
        entry = self._totals.setdefault(key, [0.0, 0, statement, None])
        entry[0] += elapsed
        entry[1] += 1
        if not many:
            entry[2], entry[3] = statement, params

    def top(self, n: int = 1, *, explain: bool = True) -> list[SlowSql]:
        """The `n` statements that took longest in total, with their SQLite plan."""
        ranked = sorted(self._totals.items(), key=lambda item: item[1][0], reverse=True)[:n]
        found = [SlowSql(key, seconds, calls) for key, (seconds, calls, _s, _p) in ranked]
        if explain and self.engine.dialect.name == "sqlite":
            for slow, (_key, (_t, _c, statement, params)) in zip(found, ranked):
                if params is not None:
                    slow.plan = self._plan(statement, params)
        return found

    def _plan(self, statement: str, params: Any) -> str | None:
        try:
            with self.engine.connect() as conn:
                rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, params).all()
        except sa.exc.DBAPIError:
            return None
        return "; ".join(str(row[-1]) for row in rows)
