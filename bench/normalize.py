"""Measurement 2: records per second through normalize, persons and the dry-run diff, on one core and on all.

Raw records are written straight into a fresh store (no HTTP), so what is
timed is our own CPU and SQL path. The work runs in a child process pinned
to one core: the figure is per core, and does not borrow the second one.
With `cores` > 1 the child may use that many cores and normalizes on them
(`normalize_pending(cores=...)`, what a historical load and renormalize
do); CPU s then counts the worker processes too.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import tempfile
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Callable, Iterator

import sqlalchemy as sa

from bench.emulator import NOW
from bench.sqlprofile import SlowSql, SqlProfile
from sandbox.postgres import scratch_schema

PAGE = 100  # records per save_raw call, as a page from the source would be


@dataclass
class Stage:
    name: str
    records: int  # what the stage consumed: raw records, contact records, persons
    seconds: float  # wall
    cpu_seconds: float  # this process only (SQLite runs in it; a PostgreSQL server does not)

    @property
    def rate(self) -> float:
        return self.records / self.seconds if self.seconds else float("inf")

    @property
    def cpu_rate(self) -> float:
        """Records per CPU second: what the core could do were it not shared with other work."""
        return self.records / self.cpu_seconds if self.cpu_seconds else float("inf")


@dataclass
class CpuResult:
    backend: str
    records: int  # raw contacts written before timing
    prefill_s: float  # save_raw of those records (not part of the figure)
    stages: list[Stage]
    quarantined: int
    persons: int
    slow_sql: dict[str, SlowSql] = field(default_factory=dict)  # stage -> its slowest statement

    @property
    def seconds(self) -> float:
        return sum(s.seconds for s in self.stages)

    @property
    def cpu_seconds(self) -> float:
        return sum(s.cpu_seconds for s in self.stages)

    @property
    def rate(self) -> float:
        """Raw records per second through all three stages."""
        return self.records / self.seconds

    @property
    def cpu_rate(self) -> float:
        return self.records / self.cpu_seconds


def _contact_pages(records: int) -> Iterator[list[dict]]:
    from sandbox.agentclara import AgentClaraApp

    seed = AgentClaraApp(contacts=records, conversations=0, now=NOW).data
    for start in range(0, records, PAGE):
        yield [seed.contact_at(i) for i in range(start, min(start + PAGE, records))]


def _child(conn: Connection, backend: str, url: str, records: int, hubspot_url: str, cores: int) -> None:
    os.sched_setaffinity(0, set(sorted(os.sched_getaffinity(0))[:cores]))
    from connectors.hubspot import HubSpotSink
    from pipelines.state import StateStore
    from pipelines.steps.ingest import ingest
    from pipelines.steps.normalize import normalize_pending
    from pipelines.steps.persons import rebuild_persons
    from pipelines.steps.push import push_persons
    from sandbox.hubspot import DEFAULT_TOKEN

    store = StateStore(url)
    pages = list(_contact_pages(records))  # generated before timing: the emulator's cost, not ours
    started = time.perf_counter()
    ingest(store, "agentclara", "contacts", pages)
    prefill = time.perf_counter() - started
    sink = HubSpotSink(DEFAULT_TOKEN, hubspot_url)  # the dry run is the step's: nothing is written
    sink.prepare(create=False)  # reads the portal's properties once; the diff itself makes no HTTP call
    profile = SqlProfile(store.engine)
    stages: list[Stage] = []
    slow: dict[str, SlowSql] = {}

    def timed(name: str, run: Callable[[], Any], count: Callable[[Any], int]) -> Any:
        profile.reset()
        started, cpu = time.perf_counter(), _cpu()
        stats = run()
        stages.append(Stage(name, count(stats), time.perf_counter() - started, _cpu() - cpu))
        slow[name] = profile.top(1)[0]
        return stats

    norm = timed("normalize", lambda: normalize_pending(store, "agentclara", "contacts", cores=cores),
                 lambda s: s.normalized + s.quarantined)
    people = timed("persons", lambda: rebuild_persons(store), lambda s: s.records)
    timed("diff (dry run)", lambda: push_persons(store, sink, dry_run=True), lambda s: s.considered)
    store.dispose()
    conn.send(CpuResult(backend, records, prefill, stages, norm.quarantined, people.persons, slow))


def _cpu() -> float:
    """CPU seconds of this process and of its children that have ended (the normalize workers)."""
    import resource

    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def _run_child(backend: str, url: str, records: int, hubspot_url: str, cores: int = 1) -> CpuResult:
    ctx = mp.get_context("spawn")
    receive, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(send, backend, url, records, hubspot_url, cores))
    proc.start()
    send.close()
    try:
        return receive.recv()
    except EOFError:
        proc.join()
        raise RuntimeError(f"the {backend} normalize benchmark died (exit code {proc.exitcode})") from None
    finally:
        proc.join()


def measure_sqlite(records: int, hubspot_url: str, cores: int = 1) -> CpuResult:
    label = "SQLite" if cores == 1 else f"SQLite, {cores} cores"
    with tempfile.TemporaryDirectory(prefix="bench-cpu-") as folder:
        return _run_child(label, f"sqlite:///{Path(folder) / 'state.db'}", records, hubspot_url, cores)


def postgres_reason(url: str) -> str | None:
    """Why PostgreSQL cannot be measured here, or None when it answers."""
    try:
        engine = sa.create_engine(url, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        engine.dispose()
    except Exception as exc:  # any failure to reach it means: skip, saying why
        return f"no PostgreSQL at {sa.make_url(url).render_as_string(hide_password=True)}: {type(exc).__name__}"
    return None


def measure_postgres(url: str, records: int, hubspot_url: str) -> CpuResult:
    with scratch_schema(url, "bench") as schema_url:
        return _run_child("PostgreSQL", schema_url, records, hubspot_url)
