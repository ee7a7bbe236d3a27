"""Benchmarks against the sandbox: `python -m bench.run` (`make bench`).

Three measurements (see each module's docstring for why it is built so):
  throughput  bench/throughput.py  reading at 150 ms latency vs the documented rate ceiling
  normalize   bench/normalize.py   records/s through normalize, persons, dry-run diff, one core
  memory      bench/memory.py      peak RSS of the whole daily path at 100k and 1M contacts

Prints markdown tables; a full run at the default sizes also writes them to
bench/RESULTS.md (keeping hand-written notes below its KEEP line), whose
figures the README quotes.
"""

from __future__ import annotations

import argparse
import os
import platform
import sqlite3
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from bench import memory, normalize, throughput
from sandbox.http import ServerThread
from sandbox.hubspot import HubSpotApp

RESULTS = Path(__file__).with_name("RESULTS.md")
# Analysis written by hand under this line survives a rewrite of the file.
KEEP = "<!-- Notes below this line are written by hand; bench/run.py keeps them when it rewrites the figures above. -->"
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
KINDS = ("throughput", "normalize", "memory")


def main(argv: list[str] | None = None) -> None:
    args = _parse(argv)
    started, load_before = time.monotonic(), os.getloadavg()[0]
    sections: list[str] = []
    with ServerThread(HubSpotApp()) as hubspot:  # the dry-run sink reads the portal's properties once
        if "throughput" in args.only:
            sections.append(_throughput(args))
            print(sections[-1], flush=True)
        if "normalize" in args.only:
            sections.append(_normalize(args, hubspot.url))
            print(sections[-1], flush=True)
        if "memory" in args.only:
            sections.append(_memory(args, hubspot.url))
            print(sections[-1], flush=True)
    text = "\n".join([_header(args, time.monotonic() - started, (load_before, os.getloadavg()[0])), *sections])
    if args.out:
        out = Path(args.out)
        old = out.read_text() if out.exists() else ""
        out.write_text(text + ("\n" + old[old.index(KEEP):] if KEEP in old else ""))
        print(f"written to {args.out}")


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run of a minute or two")
    parser.add_argument("--only", default=",".join(KINDS), help="comma list of: " + ", ".join(KINDS))
    parser.add_argument("--sizes", help="contacts for the memory runs (default 100000,1000000)")
    parser.add_argument("--records", type=int, help="raw records for the normalize run (default 10000)")
    parser.add_argument("--memory-budget", type=float, help="seconds per memory run before it is stopped (default 360)")
    parser.add_argument("--postgres", default=os.environ.get("TEST_POSTGRES_URL", PG_URL),
                        help="PostgreSQL for the normalize run ('' to skip); a fresh schema is made and dropped")
    parser.add_argument("--out", help="markdown file to write (default: bench/RESULTS.md on a full run at default sizes, none otherwise)")
    args = parser.parse_args(argv)
    args.only = [k.strip() for k in args.only.split(",") if k.strip()]
    if unknown := set(args.only) - set(KINDS):
        parser.error(f"unknown --only {sorted(unknown)}; choose from {', '.join(KINDS)}")
    quick = args.quick
    # Only the default sizes produce the figures the README quotes.
    full = not quick and set(args.only) == set(KINDS) and args.sizes is args.records is args.memory_budget is None
    args.sizes = [int(s) for s in (args.sizes or ("2000,10000" if quick else "100000,1000000")).split(",")]
    args.records = args.records or (1000 if quick else 10_000)
    args.memory_budget = args.memory_budget or (120.0 if quick else 360.0)
    args.read = (3_000, 1_000) if quick else (40_000, 10_000)  # contacts: concurrent read, sequential read
    args.out = args.out if args.out is not None else (str(RESULTS) if full else "")
    return args


# -- sections ------------------------------------------------------------------


def _table(header: list[str], rows: list[list[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _n(value: float, digits: int = 0) -> str:
    return f"{value:,.{digits}f}"


def _header(args: argparse.Namespace, wall: float, load: tuple[float, float]) -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    mem = int(Path("/proc/meminfo").read_text().split()[1]) / 2**20
    command = "python -m bench.run" + ("" if len(sys.argv) < 2 else " " + " ".join(sys.argv[1:]))
    return "\n".join([
        "# Benchmark results",
        "",
        f"- Date: {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC; code: {_git_revision()}",
        f"- Machine: {os.cpu_count()} cores ({cpu}), {mem:.0f} GiB RAM; Linux {platform.release()}",
        f"- Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}",
        f"- Command: `{command}` (from the repository root, in .venv); whole run {_n(wall / 60, 1)} min",
        f"- 1-minute load average: {load[0]:.1f} at the start, {load[1]:.1f} at the end ({os.cpu_count()} cores; well above 2",
        "  means other work shared the machine, and wall times, unlike CPU times, RSS and req/s, are inflated).",
        "- Every emulator runs on 127.0.0.1; the AgentClara one in a process of its own.",
        "",
    ])


def _git_revision() -> str:
    """The commit, marked when the working tree has changes (read-only git calls)."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + (" with uncommitted changes" if dirty else "")


def _throughput(args: argparse.Namespace) -> str:
    concurrent, sequential = args.read
    results = [
        throughput.measure(concurrent, 8, "concurrent pager (concurrency=8)"),
        throughput.measure(sequential, 1, "sequential (concurrency=1)"),
    ]
    rows = [[r.label, _n(r.contacts), _n(r.requests), _n(r.wall_s, 1), _n(r.overall_rps, 2),
             "n/a (read < 20 s)" if r.sustained_rps is None else _n(r.sustained_rps, 2),
             _n(throughput.CEILING_RPS), _n(r.ratio, 2), f"{r.client_429} / {r.server_429}",
             "yes" if r.complete else "NO"] for r in results]
    return "\n".join([
        "## 1. Reading AgentClara at 150 ms latency, against its rate ceiling",
        "",
        _table(["client", "contacts", "requests", "wall s", "req/s overall", "req/s sustained",
                "ceiling req/s", "achieved / ceiling", "429s client / server", "all read"], rows),
        "",
        "- Emulator: 150 ms added to every response, documented limits (1,000/min and 100 per 10 s per key);",
        "  `AgentClaraSource(key, url, concurrency=N).iter_contact_pages()`, page size 100 with a one-record",
        "  overlap (five after a shift).",
        "- Ceiling: 100 requests per 10 s binds first, so 10 req/s sustained.",
        "- req/s overall: requests (retries included) / wall time of the whole read; it includes the one-off",
        "  burst of 100 the limit allows up front, so a short read can show more than 10.",
        "- req/s sustained: requests sent in whole 10 s windows after the first one; this is what is compared",
        "  with the ceiling (achieved / ceiling; for a read too short to measure it, overall is used).",
        "- 429s: responses the client counted as throttled (`SourceClient` stats) / the emulator's 429 answers.",
        "",
    ])


def _normalize(args: argparse.Namespace, hubspot_url: str) -> str:
    results = [normalize.measure_sqlite(args.records, hubspot_url)]
    cores = len(os.sched_getaffinity(0))
    if cores > 1:
        results.append(normalize.measure_sqlite(args.records, hubspot_url, cores))
    skipped = normalize.postgres_reason(args.postgres) if args.postgres else "skipped (--postgres '')"
    if skipped is None:
        results.append(normalize.measure_postgres(args.postgres, args.records, hubspot_url))
    rows, plans = [], []
    for r in results:
        for stage in r.stages:
            slow = r.slow_sql[stage.name]
            rows.append([r.backend, stage.name, _n(stage.records), _n(stage.seconds, 2), _n(stage.cpu_seconds, 2),
                         _n(stage.rate), _n(stage.cpu_rate), f"{slow.seconds / stage.seconds:.0%}: `{_short(slow.statement)}`"])
            if slow.plan:
                plans.append(f"- {r.backend} {stage.name}: `{_short(slow.statement, 160)}` "
                             f"({slow.calls} calls, {_n(slow.seconds, 2)} s); plan: `{slow.plan}`")
        rows.append([r.backend, "**all three**", _n(r.records), _n(r.seconds, 2), _n(r.cpu_seconds, 2),
                     f"**{_n(r.rate)}**", f"**{_n(r.cpu_rate)}**", ""])
    notes = [f"- {r.backend}: {_n(r.records)} raw contacts -> {_n(r.quarantined)} quarantined, "
             f"{_n(r.persons)} persons; writing them with `save_raw` took {_n(r.prefill_s, 1)} s (not counted)."
             for r in results]
    return "\n".join([
        f"## 2. Normalize + persons + dry-run diff, one core and every core ({_n(args.records)} raw contacts)",
        "",
        _table(["store", "stage", "records in", "wall s", "CPU s", "records/s", "records per CPU s",
                "slowest SQL statement (share of stage wall time)"], rows),
        "",
        *notes,
        *([f"- PostgreSQL: {skipped}."] if skipped else []),
        "- Raw contacts are the emulator's own records, written with `StateStore.save_raw` (no HTTP), into a fresh",
        "  store; the child process is pinned to one core (`os.sched_setaffinity`); on the `N cores` rows to N,",
        "  and normalize runs on all of them (`normalize_pending(cores=N)`: N - 1 worker processes normalize while",
        "  the step's process reads and stores); persons and the diff run in one process either way.",
        "- Stages: `normalize_pending` (records in: raw records), `rebuild_persons` (contact records merged),",
        "  `push_persons(..., dry_run=True)` (persons diffed against sync state, nothing written).",
        "  records/s on the last row: raw contacts / the three stages' seconds.",
        "- records/s is over wall time; records per CPU s over this process's CPU time, which other work on the",
        "  machine does not inflate (the PostgreSQL server's own CPU is not in it: compare those by wall time).",
        "- Slowest SQL: the statement with the most time inside the database driver during the stage, all calls.",
        *(["", "Query plans (SQLite `EXPLAIN QUERY PLAN`) of those statements:", "", *plans] if plans else []),
        "",
    ])


def _short(statement: str, width: int = 70) -> str:
    return statement if len(statement) <= width else statement[: width - 1] + "…"


def _memory(args: argparse.Namespace, hubspot_url: str) -> str:
    results = [memory.measure(size, hubspot_url, args.memory_budget) for size in args.sizes]
    summary, rows = [], []
    for r in results:
        state = "yes" if r.finished else (f"no: {r.error}" if r.error else f"no: budget spent in {r.stopped_in}")
        summary.append([_n(r.contacts), state, _n(r.wall_s), f"**{_n(r.peak_mib)}**", _n(r.db_mib)])
        for s in r.stages:
            rate = _n(s.done / s.seconds) if s.done and s.seconds else ""
            rows.append([_n(r.contacts), s.name + ("" if s.finished else " (stopped)"), _n(s.seconds, 1),
                         _n(s.done) if s.name != "startup" else "", rate, _n(s.peak_mib)])
    return "\n".join([
        "## 3. Peak RSS of the daily path",
        "",
        _table(["contacts", "finished", "wall s", "peak RSS MiB", "SQLite MiB"], summary),
        "",
        _table(["contacts", "stage", "seconds", "done", "per second", "peak RSS MiB in stage"], rows),
        "",
        *_growth(results[0], results[-1]),
        "- One child process runs the daily path: HTTP read of every contact from the emulator (another process,",
        "  no latency, limits lifted on both sides; concurrency 8), `ingest` into a fresh SQLite store,",
        "  `normalize_pending`, `rebuild_persons`, `push_persons` in dry run. Peak RSS: `ru_maxrss` of that child",
        "  from `wait4()` (the emulator and the parent are not counted).",
        f"- A run still going after {_n(args.memory_budget)} s is killed; its last stage is marked (stopped), with",
        "  how far it got. `done`: records read (ingest) or normalized, persons saved, persons diffed.",
        "- startup: imports (Dagster among them), the store's migrations and the sink's property check.",
        "- Peak RSS in stage: VmHWM at the stage's end when it rose during the stage, else the highest of the",
        f"  child's VmRSS samples (every {memory.SAMPLE_S} s) during it.",
        "",
    ])


def _growth(small: memory.MemoryResult, large: memory.MemoryResult) -> list[str]:
    """Per stage finished at both sizes: how much its peak grew per extra contact."""
    extra = large.contacts - small.contacts
    if extra <= 0:
        return []
    done = {s.name: s for s in small.stages if s.finished}
    lines = [
        f"- {s.name}: peak {_n(done[s.name].peak_mib)} -> {_n(s.peak_mib)} MiB from {_n(small.contacts)} to "
        f"{_n(large.contacts)} contacts, {(s.peak_mib - done[s.name].peak_mib) * 2**20 / extra:+,.0f} bytes per extra contact."
        for s in large.stages if s.finished and s.name in done and s.name != "startup"
    ]
    return [*lines, ""] if lines else []


if __name__ == "__main__":
    main()
