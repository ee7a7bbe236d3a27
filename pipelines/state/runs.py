"""The `checkpoints`, `runs` and `run_days` family: where a load stopped, and what each run did.

Checkpoints are the historical load's resume points (by name, any JSON
value). `runs` keeps one row per run and step with its typed statistics,
`run_days` what a step did per day of its partition range; the summary
and `renormalize` read them back. It is separate because nothing here is
synced data: these tables say how the pipeline ran, never who a customer is.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Mapping

import sqlalchemy as sa

from pipelines.state.base import StoreBase, utcnow
from pipelines.state.tables import checkpoints, run_days, runs


class RunsFamily(StoreBase):
    """Keep and read checkpoints, run history and per-day results."""

    def get_checkpoint(self, name: str) -> Any:
        """The checkpoint's value, or None when there is none."""
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
        """Keep one step of a run: its status and statistics (finished unless `status` is "running")."""
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
        """Every recorded step (of one run when given), by start time and step."""
        query = sa.select(runs).order_by(runs.c.started_at, runs.c.step)
        if run_id:
            query = query.where(runs.c.run_id == run_id)
        with self.engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(query).all()]
