"""Benchmark: a historical load of 100,000 AgentClara conversations, and its resume.

The AgentClara emulator runs in its own process (latency 0, its rate limits
lifted; the client's limiter is lifted too, so what is measured is our own
cost, not the documented 10 requests/s). Each measurement runs in a fresh
child process against a fresh SQLite store, through the code path of
`historical_load`'s load op: `read_source` with the registry's AgentClara
read function and a `HistoricalCheckpoints` (checkpoint per listing, size
probe, progress lines). That read function lands the contacts (1,000 here)
and the conversations, each new conversation with its detail read
(`GET /conversations/{id}`, messages included).

1. full: the whole read, uninterrupted.
2. killed: the same read, stopped once half the conversations are landed by
   an exception raised in the consumer (the store write), as a kill would:
   every page landed so far is kept, the checkpoint says where.
3. resumed: a new read on that store: it starts at the checkpoint and asks
   for nothing before it (the emulator counts the requests it serves).
4. downstream: the rest of `historical_load` on the full run's store, in a
   fresh child: normalize contacts and conversations, merge persons (with
   conversation links and roll-ups), then the HubSpot diff of contacts and
   of one activity per conversation, as a dry run (mapping and hashing every
   record, no write: HubSpot's own rate limit would be what is measured).

    python -m bench.historical [--conversations 100000] [--contacts 1000] [--latency 0] [--out bench/HISTORICAL.md]
    python -m bench.historical --child SCENARIO URL DB STOP_AFTER   (one measurement; prints JSON)
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import multiprocessing as mp
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

NOW = datetime(2025, 1, 1, tzinfo=timezone.utc)  # pinned: every run serves the same records
RUN_ID = "bench-historical"


# -- the emulator, in its own process ---------------------------------------------------


def _serve(conn: Connection, contacts: int, conversations: int, latency_s: float) -> None:
    from sandbox.agentclara import AgentClaraApp
    from sandbox.http import Request, Response, ServerThread

    class Counting(AgentClaraApp):
        """Counts what it serves: page requests (and their lowest offset), size probes, detail reads."""

        def reset(self) -> None:
            self.counts: dict[str, Any] = {"list": 0, "probe": 0, "detail": 0, "min_list_offset": None}

        def dispatch(self, request: Request) -> Response:
            if request.method == "GET" and request.path.rstrip("/") == "/conversations":
                if request.query.get("limit") == "1":
                    self.counts["probe"] += 1
                else:
                    self.counts["list"] += 1
                    offset = int(request.query.get("offset", 0))
                    low = self.counts["min_list_offset"]
                    self.counts["min_list_offset"] = offset if low is None else min(low, offset)
            elif request.method == "GET" and request.path.startswith("/conversations/"):
                self.counts["detail"] += 1
            return super().dispatch(request)

    app = Counting(contacts=contacts, conversations=conversations, now=NOW, per_minute=None, per_10s=None)
    app.reset()
    app.faults.latency_s = latency_s
    with ServerThread(app) as server:
        conn.send(server.url)
        while True:
            message = conn.recv()
            if message == "counts":  # what was served since the last call
                conn.send(dict(app.counts))
                app.reset()
            else:
                conn.send(dict(app.status_counts))
                return


class Emulator:
    def __init__(self, contacts: int, conversations: int, latency_s: float) -> None:
        ctx = mp.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_serve, args=(child, contacts, conversations, latency_s), daemon=True)
        self._proc.start()
        if not self._conn.poll(60):
            self._proc.kill()
            raise RuntimeError("the AgentClara emulator did not start within 60 s")
        self.url: str = self._conn.recv()

    def counts(self) -> dict[str, Any]:
        self._conn.send("counts")
        return self._conn.recv()

    def stop(self) -> dict[int, int]:
        statuses: dict[int, int] = {}
        if self._proc.is_alive():
            self._conn.send("stop")
            if self._conn.poll(30):
                statuses = self._conn.recv()
            self._proc.join(10)
            if self._proc.is_alive():
                self._proc.kill()
        return statuses


# -- one measurement, in a child process -------------------------------------------------


class Killed(Exception):
    """Raised by the store once enough conversations are landed: the kill-equivalent."""


class _Resource:
    """What read_source needs of a resource: on, and a client (limits lifted)."""

    enabled = True

    def __init__(self, url: str) -> None:
        self.url = url
        self.made: Any = None

    def client(self) -> Any:
        from connectors.agentclara import AgentClaraSource
        from sandbox.agentclara import DEFAULT_KEY

        self.made = AgentClaraSource(DEFAULT_KEY, self.url, concurrency=8, limits=())
        return self.made


def _child(scenario: str, url: str, db: str, stop_after: int) -> dict[str, Any]:
    from pipelines.sources import BY_NAME
    from pipelines.state import StateStore
    from pipelines.steps.checkpoint import HistoricalCheckpoints, saved_checkpoints
    from pipelines.steps.read import read_source

    class StoppingStore(StateStore):
        landed = 0

        def save_raw(self, source: str, stream: str, items: Any, *, run_id: str | None = None) -> int:
            items = list(items)
            if stream == "conversations" and stop_after and self.landed >= stop_after:
                raise Killed(f"stopped after {self.landed} conversations")
            changed = super().save_raw(source, stream, items, run_id=run_id)
            if stream == "conversations":
                self.landed += len(items)
            return changed

        checkpoint_writes = 0
        checkpoint_s = 0.0

        def set_checkpoint(self, name: str, value: Any) -> None:
            started = time.perf_counter()
            super().set_checkpoint(name, value)
            self.checkpoint_writes += 1
            self.checkpoint_s += time.perf_counter() - started

    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format=f"[{scenario}] %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    log = logging.getLogger("bench.historical")
    store = StoppingStore(f"sqlite:///{db}")
    source = BY_NAME["agentclara"]
    checkpoints = HistoricalCheckpoints(store, "agentclara", label="AgentClara", log=log, run_id=RUN_ID)
    started = time.perf_counter()
    error = None
    outcome = None
    agentclara = _Resource(url)
    try:
        outcome = read_source(source, agentclara, store, run_id=RUN_ID, log=log, checkpoints=checkpoints)
    except Killed as exc:
        error = str(exc)
    wall = time.perf_counter() - started
    checkpoints.log_done()
    listings = {listing.pager.key: listing.pager.stats for listing in checkpoints.listings}
    conversations = listings.get("conversations")
    streams = outcome.streams if outcome else {}
    with store.engine.connect() as conn:
        import sqlalchemy as sa

        kept = dict(conn.execute(sa.text(
            "SELECT stream, COUNT(*) FROM raw_records WHERE source = 'agentclara' GROUP BY stream")).all())
    return {
        "scenario": scenario,
        "wall_s": wall,
        "stopped": error,
        "error": outcome.error if outcome else None,
        "conversations_s": streams["conversations"].seconds if "conversations" in streams else None,
        "conversations_yielded": conversations.records_yielded if conversations else 0,
        "conversations_details": streams["conversations"].details if "conversations" in streams else None,
        "pages_fetched": conversations.pages_fetched if conversations else 0,
        "probe_requests": conversations.probe_requests if conversations else 0,
        "estimated_total": conversations.estimated_total if conversations else None,
        "start_offset": conversations.start_offset if conversations else None,
        "resumed_from": conversations.resumed_from if conversations else None,
        "client": agentclara.made.client.stats.as_dict() if agentclara.made else {},
        "kept": kept,
        "checkpoints": {name: value.get("offset") for name, value in saved_checkpoints(store).items()},
        "checkpoint_writes": store.checkpoint_writes,
        "checkpoint_s": store.checkpoint_s,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def _downstream(db: str) -> dict[str, Any]:
    from connectors.hubspot import HubSpotSink
    from pipelines.state import StateStore
    from pipelines.steps.activities import push_activities
    from pipelines.steps.normalize import normalize_conversations, normalize_pending
    from pipelines.steps.persons import rebuild_persons
    from pipelines.steps.push import push_persons
    from sandbox.http import ServerThread
    from sandbox.hubspot import DEFAULT_TOKEN, HubSpotApp

    store = StateStore(f"sqlite:///{db}")
    stages: list[dict[str, Any]] = []

    def timed(name: str, run: Any, count: Any) -> Any:
        started, cpu = time.perf_counter(), time.process_time()
        stats = run()
        stages.append({"stage": name, "records": count(stats), "wall_s": time.perf_counter() - started,
                       "cpu_s": time.process_time() - cpu,
                       "rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024})
        return stats

    with ServerThread(HubSpotApp()) as hubspot:  # the dry-run sink reads the portal's properties once
        sink = HubSpotSink(DEFAULT_TOKEN, hubspot.url)  # the dry run is the step's: nothing is written
        timed("normalize contacts", lambda: normalize_pending(store, "agentclara", "contacts"),
              lambda s: s.normalized + s.quarantined)
        conversations = timed("normalize conversations",
                              lambda: normalize_conversations(store, "agentclara", "conversations"),
                              lambda s: s.normalized + s.quarantined)
        persons = timed("persons (links, roll-ups)", lambda: rebuild_persons(store), lambda s: s.linked + s.unlinked)
        timed("contacts diff (dry run)", lambda: push_persons(store, sink, dry_run=True), lambda s: s.considered)
        activities = timed("activities diff (dry run)", lambda: push_activities(store, sink, days=None, dry_run=True),
                           lambda s: s.considered)
    return {
        "scenario": "downstream",
        "stages": stages,
        "quarantined": conversations.quarantined,
        "persons": persons.persons,
        "linked": persons.linked,
        "activities": activities.created,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


# -- the parent --------------------------------------------------------------------------


@dataclass
class Measured:
    child: dict[str, Any]
    served: dict[str, Any]  # what the emulator served during it


def _measure(scenario: str, emulator: Emulator, db: Path, stop_after: int = 0) -> Measured:
    emulator.counts()  # reset
    done = subprocess.run(
        [sys.executable, "-W", "ignore", "-m", "bench.historical", "--child", scenario, emulator.url, str(db),
         str(stop_after)],
        stdout=subprocess.PIPE, stderr=None, text=True, check=True,
    )
    return Measured(json.loads(done.stdout.strip().splitlines()[-1]), emulator.counts())


def _machine() -> str:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f", {kib / 2**20:.1f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    return f"{platform.system()} {platform.release()}, {os.cpu_count()} cores ({model or platform.machine()}){memory}, Python {platform.python_version()}"


def _row(label: str, m: Measured) -> str:
    c, s = m.child, m.served
    # landed by this run: all it yielded, or (stopped) what the store kept before the stop
    landed = c["kept"].get("conversations", 0) if c["stopped"] else c["conversations_yielded"]
    seconds = c["conversations_s"] or c["wall_s"]
    rate = landed / seconds if seconds else 0.0
    requests = s["list"] + s["probe"] + s["detail"]
    low = "-" if s["min_list_offset"] is None else f"{s['min_list_offset']:,}"
    return (f"| {label} | {c['wall_s']:.1f} | {seconds:.1f} | {landed:,} | {rate:,.0f} | {s['list']:,} | {low} | "
            f"{s['probe']} | {s['detail']:,} | {requests / c['wall_s']:,.0f} | {c['peak_rss_mib']:.0f} |")


def _retries(m: Measured) -> str:
    client = m.child.get("client") or {}
    return f"{int(client.get('retries', 0))} ({int(client.get('transport_errors', 0))} transport errors)"


def run(conversations: int, contacts: int, latency_s: float, out: Path | None) -> str:
    folder = Path(tempfile.mkdtemp(prefix="bench-historical-"))
    load_before = os.getloadavg()[0]
    emulator = Emulator(contacts, conversations, latency_s)
    try:
        full = _measure("full", emulator, folder / "full.db")
        assert full.child["kept"].get("conversations") == conversations, full.child
        downstream = _measure("downstream", emulator, folder / "full.db").child
        killed = _measure("killed", emulator, folder / "resume.db", stop_after=conversations // 2)
        resumed = _measure("resumed", emulator, folder / "resume.db")
        assert resumed.child["kept"].get("conversations") == conversations, resumed.child
    finally:
        statuses = emulator.stop()
        shutil.rmtree(folder, ignore_errors=True)

    half = killed.child["checkpoints"].get("historical:agentclara:conversations")
    estimate = full.child["estimated_total"]
    both = killed.child["wall_s"] + resumed.child["wall_s"]
    lines = [
        f"# Historical load: {conversations:,} AgentClara conversations, and a resume",
        "",
        f"Measured {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC on {_machine()}; 1-minute load average "
        f"before the run {load_before:.1f} (above 0: other work was sharing the 2 cores).",
        "",
        f"Command: `python -m bench.historical --conversations {conversations} --contacts {contacts} "
        f"--latency {latency_s:g}` (about {full.child['wall_s'] + both + 10:.0f} s).",
        "",
        "What runs: the AgentClara emulator in its own process (latency "
        f"{latency_s * 1000:g} ms, rate limits lifted on both sides, so this is our own cost, not the API's "
        f"ceiling) with {conversations:,} conversations and {contacts:,} contacts; each measurement in a fresh "
        "child process, through `historical_load`'s load path: `read_source` with the registry's AgentClara "
        "read function, a `HistoricalCheckpoints` (checkpoint per listing, size probe, progress lines) and a "
        "fresh SQLite store. That read function lands the contacts, then the conversations, reading each new "
        "conversation's detail (`GET /conversations/{id}`, messages included) on 8 workers.",
        "",
        "| run | wall s | conversations s | conversations landed | conversations/s | list requests | "
        "lowest list offset | probe requests | detail requests | requests/s | peak RSS MiB |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
        _row("full, uninterrupted", full),
        _row(f"killed at half (exception in the consumer after {conversations // 2:,})", killed),
        _row("resumed from the checkpoint", resumed),
        "",
        "- **Resume does not start over.** The killed read left the conversations checkpoint at offset "
        f"{half:,}; the resumed read's lowest list request was offset "
        f"{resumed.served['min_list_offset']:,} (the checkpoint minus the 5-record overlap), it made "
        f"{resumed.served['list']:,} list requests against {full.served['list']:,} for the whole listing, and "
        f"{resumed.served['detail']:,} detail reads (the rest were landed before the kill). Killed + resumed "
        f"took {both:.1f} s against {full.child['wall_s']:.1f} s uninterrupted; the store ends with "
        f"{resumed.child['kept']['conversations']:,} conversations, each once.",
        f"- **Checkpoint cost.** {full.child['checkpoint_writes']:,} checkpoint writes (one per page) took "
        f"{full.child['checkpoint_s']:.2f} s of the uninterrupted run's {full.child['wall_s']:.1f} s; the size "
        f"probe {full.served['probe']} requests. A daily run does neither.",
        f"- **Estimate.** The probe said about {estimate:,} conversations ({full.served['probe']} `limit=1` "
        f"requests, true size {conversations:,}); on resume it probes from the checkpoint "
        f"({resumed.served['probe']} requests).",
        "- The contacts listing ({:,}) is resumed the same way: on the resumed run it cost one page.".format(contacts),
        "- Peak RSS is the child's `ru_maxrss`: Python, the imported project (Dagster included) and the pager's "
        "id set; the emulator's memory is not in it.",
        f"- At AgentClara's documented ceiling (100 requests per 10 s, 10/s sustained) the same load is "
        f"{(full.served['list'] + full.served['detail']):,} requests, about "
        f"{(full.served['list'] + full.served['detail']) / 10 / 3600:.1f} h: the detail reads dominate; "
        "the listing alone is about "
        f"{full.served['list'] / 10 / 60:.0f} min.",
        f"- Emulator responses by status: {dict(sorted(statuses.items()))}. Client retries (full / killed / "
        f"resumed): {_retries(full)} / {_retries(killed)} / {_retries(resumed)}.",
        "- The pager's 8 page threads and the Landing's 8 detail workers share one client with a pool of "
        "`2 * concurrency` connections (connectors/http.py): with fewer connections than threads, httpcore now and "
        "then handed a request a socket being closed (`ReadError: [Errno 9] Bad file descriptor`, ~100 retries "
        "per 100k before 2026-11-30).",
        "",
        "## The rest of the load: normalize, merge, diff",
        "",
        f"The full run's store, in a fresh child process: what `historical_load` does after reading. The diff "
        f"is a dry run against the HubSpot emulator (every contact and every activity mapped and hashed, "
        f"nothing written). {downstream['persons']:,} persons; {downstream['linked']:,} conversations linked to "
        f"them, {downstream['quarantined']:,} quarantined; {downstream['activities']:,} activities would be "
        "created.",
        "",
        "| stage | records | wall s | CPU s | records/s | peak RSS MiB so far |",
        "|---|---|---|---|---|---|",
        *(f"| {st['stage']} | {st['records']:,} | {st['wall_s']:.1f} | {st['cpu_s']:.1f} | "
          f"{st['records'] / st['wall_s'] if st['wall_s'] else 0:,.0f} | {st['rss_mib']:.0f} |"
          for st in downstream["stages"]),
        "",
        f"- Read plus the rest: {full.child['wall_s'] + sum(st['wall_s'] for st in downstream['stages']):,.0f} s "
        f"for {conversations:,} conversations on this machine, without the API's and HubSpot's rate limits. "
        f"Writing the {downstream['activities']:,} activities to HubSpot is "
        f"{math.ceil(downstream['activities'] / 100):,} batch requests of 100, about "
        f"{math.ceil(downstream['activities'] / 100) / 10 / 60:.1f} min at its 100 requests per 10 s.",
        "",
    ]
    text = "\n".join(lines)
    if out is not None:
        out.write_text(text)
    return text


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--child":
        scenario, url, db, stop_after = argv[1:5]
        measured = _downstream(db) if scenario == "downstream" else _child(scenario, url, db, int(stop_after))
        print(json.dumps(measured), flush=True)
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=100_000)
    parser.add_argument("--contacts", type=int, default=1_000)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per request in the emulator")
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("HISTORICAL.md"))
    args = parser.parse_args(argv)
    print(run(args.conversations, args.contacts, args.latency, args.out))


if __name__ == "__main__":
    main()
