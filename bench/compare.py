"""Benchmark: this project's first load against dlt and a hand-written loop, same emulators, same limits.

    make bench-compare                         # 20,000 contacts -> bench/COMPARE.md and README "Benchmarks"
    python -m bench.compare --large            # also 200,000 contacts (about an hour)
    python -m bench.compare --contacts 2000 --out /tmp/compare.md --no-readme

One invocation runs three tools, one after another, each in a child
process of its own against fresh emulators in processes of their own:

- project: `historical_load`, the real Dagster job, in process (AgentClara -> state store -> HubSpot);
- dlt: dlt's REST API source, extraction only, into duckdb (no CRM), in the bench venv
  (`.venv-bench`, created here from the `bench` extra of pyproject.toml when missing:
  dlt would move pinned shared dependencies in the project's venv);
- loop: a plain sequential loop, httpx pages, then batch upserts of 100 to HubSpot.

Emulators: AgentClara at its documented limits (100 per 10 s and 1,000 per
minute), 150 ms added to every response, 429 without Retry-After; HubSpot at
190 per 10 s. Requests and 429s are the emulators' own counts; peak RSS is
the child's; the floor is what the documented limits allow for the requests
the tool made (bench/floor.py) and, in "× min floor", for the fewest
requests the job needs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bench.emulator import EmulatorProcess
from bench.floor import AGENTCLARA_WINDOWS, HUBSPOT_WINDOWS, floor_s, min_reads, min_upserts
from bench.servers import HubSpotProcess

ROOT = Path(__file__).resolve().parent.parent
BENCH_VENV = ROOT / ".venv-bench"
LATENCY_S = 0.15
HUBSPOT_PER_10S = 190
TOOLS = ("project", "dlt", "loop")
LABELS = {
    "project": "this project, `historical_load` (read, normalize, persons, push)",
    "dlt": "dlt {version} REST API source, extraction only (into duckdb)",
    "loop": "hand-written sequential loop (httpx + batch upserts of 100)",
}
README_START, README_END = "<!-- bench-compare:start -->", "<!-- bench-compare:end -->"
NOTES_MARK = "<!-- bench-compare: what follows is kept when the table above is rewritten -->"


@dataclass
class Measured:
    tool: str
    contacts: int
    wall_s: float
    source_requests: int
    source_429s: int
    crm_requests: int
    crm_429s: int
    peak_rss_mib: float
    workers_rss_mib: float  # the largest of the tool's own child processes (the project's normalize workers), 0: none
    load: tuple[float, float]  # 1-minute load average before and after
    extra: dict[str, Any]

    @property
    def floor_s(self) -> float:
        """The floor for the requests this tool made: source, then CRM (stages one after another)."""
        return (floor_s(self.source_requests, AGENTCLARA_WINDOWS, LATENCY_S)
                + floor_s(self.crm_requests, HUBSPOT_WINDOWS))

    @property
    def min_floor_s(self) -> float:
        """The floor for the fewest requests the tool's job needs (dlt: no CRM)."""
        crm = 0 if self.tool == "dlt" else floor_s(min_upserts(self.contacts), HUBSPOT_WINDOWS)
        return floor_s(min_reads(self.contacts), AGENTCLARA_WINDOWS, LATENCY_S) + crm


def ensure_bench_venv() -> Path:
    """The bench venv's Python, with the `bench` extra installed (created on first use)."""
    python = BENCH_VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(BENCH_VENV)], check=True)
    if subprocess.run([str(python), "-c", "import dlt, duckdb"], capture_output=True).returncode != 0:
        extra = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["bench"]
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", *extra], check=True)
    return python


def dlt_version(python: Path) -> str:
    out = subprocess.run([str(python), "-c", "import dlt; print(dlt.__version__)"], capture_output=True, text=True)
    return out.stdout.strip() or "?"


def _child_command(tool: str, agentclara_url: str, hubspot_url: str, bench_python: Path | None) -> list[str]:
    if tool == "dlt":
        assert bench_python is not None
        return [str(bench_python), str(ROOT / "bench" / "dlt_runner.py"), agentclara_url]
    return [sys.executable, "-m", "bench.compare_children", tool, agentclara_url, hubspot_url]


def measure(tool: str, contacts: int, bench_python: Path | None) -> Measured:
    """One tool against fresh emulators; its figures and the emulators' counts."""
    before = os.getloadavg()[0]
    with EmulatorProcess(contacts, latency_s=LATENCY_S) as clara, HubSpotProcess(HUBSPOT_PER_10S) as hubspot:
        command = _child_command(tool, clara.url, hubspot.url, bench_python)
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
        source, crm = clara.stop(), hubspot.stop()
    if done.returncode != 0:
        raise RuntimeError(f"{tool} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    return Measured(
        tool, contacts, float(figures.pop("wall_s")), sum(source.values()), source.get(429, 0),
        sum(crm.values()), crm.get(429, 0), float(figures.pop("peak_rss_mib")),
        float(figures.pop("workers_peak_rss_mib", 0.0)),
        (before, os.getloadavg()[0]), figures,
    )


def table(rows: list[Measured], labels: dict[str, str]) -> list[str]:
    """The comparison as a Markdown table, one row per tool and size."""
    out = [
        "| contacts | tool | wall s | floor s (its requests) | × floor | × min floor | AgentClara requests (429s) "
        "| HubSpot requests (429s) | peak RSS MiB | load before/after |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for m in rows:
        crm = "n/a (no CRM)" if m.tool == "dlt" else f"{m.crm_requests:,} ({m.crm_429s})"
        out.append(
            f"| {m.contacts:,} | {labels[m.tool]} | **{m.wall_s:.1f}** | {m.floor_s:.1f} | "
            f"**{m.wall_s / m.floor_s:.2f}** | {m.wall_s / m.min_floor_s:.2f} | "
            f"{m.source_requests:,} ({m.source_429s}) | {crm} | {_rss(m)} | "
            f"{m.load[0]:.2f} / {m.load[1]:.2f} |"
        )
    return out


def _rss(m: Measured) -> str:
    return f"{m.peak_rss_mib:.0f}" + (f" + {m.workers_rss_mib:.0f} per worker" if m.workers_rss_mib >= 1 else "")


def _machine() -> str:
    return (f"{os.cpu_count()} cores, Python {platform.python_version()}, "
            f"{platform.system()} {platform.release()}")


def report(rows: list[Measured], labels: dict[str, str], command: str) -> str:
    """bench/COMPARE.md: the table, how it was made, and the floors."""
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# This project against dlt and a hand-written loop", "",
        f"- Date: {stamp}; machine: {_machine()}; command: `{command}`",
        "- Emulators (each in its own process, fresh for every run): AgentClara at its documented limits, "
        "100 requests per 10 s and 1,000 per minute, 150 ms added to every response, 429 without Retry-After; "
        "HubSpot at 190 requests per 10 s.",
        "- Wall: the tool's work in its own child process, from before its first request to its end "
        "(interpreter start and imports not counted). Requests and 429s: counted by the emulators. "
        "Peak RSS: the child's `ru_maxrss`; \"+ N per worker\": the largest of its normalize worker processes "
        "(the project normalizes on every core: cores - 1 workers beside the step's process). Load: the 1-minute load average before and after the run "
        "(2 cores; above 2 means the machine was shared and walls are inflated).",
        "- Floor: the least time the documented limits allow for the requests the tool made, source then CRM "
        "(bench/floor.py: a sliding window admits a burst at once, then one window per period, so 200 "
        "AgentClara requests need 10.15 s and 201 need 20.15 s). × min floor: against the floor for the "
        "fewest requests the job needs (contacts/100 + 1 reads, the last one empty; contacts/100 upserts; "
        "dlt has no CRM stage).", "",
        *table(rows, labels), "",
    ]
    for m in rows:
        if m.extra:
            lines.append(f"- {m.tool} at {m.contacts:,}: {json.dumps(m.extra)}")
    return "\n".join(lines) + "\n"


def kept_notes(path: Path) -> str:
    """What follows NOTES_MARK in `path` (written by hand: other runs, notes), to keep under a new table."""
    text = path.read_text() if path.exists() else ""
    return "\n" + text[text.index(NOTES_MARK):] if NOTES_MARK in text else ""


def update_readme(rows: list[Measured], labels: dict[str, str]) -> None:
    """Put the latest table between the bench-compare markers of README's "Benchmarks"."""
    readme = ROOT / "README.md"
    text = readme.read_text()
    block = "\n".join([README_START, *table(rows, labels), README_END])
    pattern = re.compile(re.escape(README_START) + ".*?" + re.escape(README_END), re.S)
    if not pattern.search(text):
        raise RuntimeError("README.md has no bench-compare markers in its Benchmarks section")
    readme.write_text(pattern.sub(lambda _m: block, text, count=1))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--contacts", type=int, default=20_000)
    parser.add_argument("--large", action="store_true", help="also 200,000 contacts")
    parser.add_argument("--tools", default=",".join(TOOLS), help="comma-separated subset of " + ",".join(TOOLS))
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "COMPARE.md")
    parser.add_argument("--no-readme", action="store_true", help="do not update README's table")
    args = parser.parse_args(argv)
    tools = [t for t in args.tools.split(",") if t]
    bench_python = ensure_bench_venv() if "dlt" in tools else None
    labels = {**LABELS, "dlt": LABELS["dlt"].format(version=dlt_version(bench_python) if bench_python else "?")}
    sizes = [args.contacts] + ([200_000] if args.large else [])
    rows = []
    for contacts in sizes:
        for tool in tools:
            rows.append(measure(tool, contacts, bench_python))
            print("\n".join(table(rows[-1:], labels)[2:]), flush=True)
    command = "python -m bench.compare " + " ".join(argv if argv is not None else sys.argv[1:])
    args.out.write_text(report(rows, labels, command.strip()) + kept_notes(args.out))
    if not args.no_readme:
        update_readme(rows, labels)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
