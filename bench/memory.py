"""Measurement 3: peak RSS of the whole daily path as the data grows.

A child process reads every contact over HTTP from the emulator (another
process, no latency, limits lifted), ingests them into a fresh SQLite store,
normalizes, rebuilds persons and diffs in dry run. Its peak RSS comes from
wait4() on that one child, so neither the emulator nor this process counts.
The child reports its stage and RSS twice a second, which says which stage
holds the memory; a child still running when the budget is spent is killed,
and what it reached is reported as such.

Child: python -m bench.memory CONTACTS SOURCE_URL DB_PATH HUBSPOT_URL
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from bench.emulator import EmulatorProcess

SAMPLE_S = 0.5


@dataclass
class StageMemory:
    name: str
    seconds: float
    done: int  # records (ingest, normalize), persons saved (persons), persons diffed (diff)
    peak_mib: float  # highest RSS while this stage ran
    finished: bool


@dataclass
class MemoryResult:
    contacts: int
    wall_s: float
    peak_mib: float  # ru_maxrss of the child from wait4(): the whole run's peak
    db_mib: float  # SQLite file + WAL at the end
    stages: list[StageMemory] = field(default_factory=list)
    stopped_in: str | None = None  # the stage the budget ran out in
    error: str | None = None

    @property
    def finished(self) -> bool:
        return self.stopped_in is None and self.error is None


# -- the child -----------------------------------------------------------------


def _status_mib(field_name: str) -> float:
    """VmRSS or VmHWM of this process, MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


class _Reporter:
    """Prints JSON lines for the parent: stage boundaries and RSS samples."""

    def __init__(self) -> None:
        self.stage, self.done, self._started = "startup", 0, time.monotonic()
        self._stage_started = self._started
        self._lock = threading.Lock()
        threading.Thread(target=self._sample, daemon=True).start()

    def emit(self, event: str, **extra: Any) -> None:
        line = {"event": event, "stage": self.stage, "done": self.done,
                "t": time.monotonic() - self._started,
                "rss": _status_mib("VmRSS"), "hwm": _status_mib("VmHWM"), **extra}
        with self._lock:
            print(json.dumps(line), flush=True)

    def _sample(self) -> None:
        while True:
            time.sleep(SAMPLE_S)
            self.emit("sample")

    def end(self, next_stage: str | None) -> None:
        now = time.monotonic()
        self.emit("end", seconds=now - self._stage_started)
        if next_stage:
            self.stage, self.done, self._stage_started = next_stage, 0, now

    def count(self, obj: Any, method: str, size: Callable[..., int]) -> None:
        """Add `size(args)` to the stage's progress on each call of obj.method."""
        inner = getattr(obj, method)

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.done += size(*args, **kwargs)
            return inner(*args, **kwargs)

        setattr(obj, method, counted)


def _child(contacts: int, source_url: str, db_path: str, hubspot_url: str) -> None:
    report = _Reporter()
    from connectors.agentclara import AgentClaraSource
    from connectors.hubspot import HubSpotSink
    from pipelines.state import StateStore
    from pipelines.steps.ingest import ingest
    from pipelines.steps.normalize import normalize_pending
    from pipelines.steps.persons import rebuild_persons
    from pipelines.steps.push import push_persons
    from sandbox.agentclara import DEFAULT_KEY
    from sandbox.hubspot import DEFAULT_TOKEN

    store = StateStore(f"sqlite:///{db_path}")
    sink = HubSpotSink(DEFAULT_TOKEN, hubspot_url)  # the dry run is the step's: nothing is written
    sink.prepare(create=False)
    report.end("ingest")

    source = AgentClaraSource(DEFAULT_KEY, source_url, concurrency=8, limits=())  # limits lifted
    ingest(store, "agentclara", "contacts", source.iter_contact_pages(),
           on_page=lambda stats: setattr(report, "done", stats.records))
    source.close()
    report.end("normalize")

    report.count(store, "save_normalized", lambda _version, good, bad, **_: len(good) + len(bad))
    normalize_pending(store, "agentclara", "contacts")
    report.end("persons")

    report.count(store, "save_persons", lambda items: len(items))
    rebuild_persons(store)
    report.end("diff")

    report.count(store, "sync_rows", lambda _target, _type, keys: len(keys))
    push_persons(store, sink, dry_run=True)
    report.end(None)


# -- the parent ----------------------------------------------------------------


def _lines(stream: Any, out: queue.Queue) -> None:
    for line in stream:
        out.put(line)
    out.put(None)


def measure(contacts: int, hubspot_url: str, budget_s: float) -> MemoryResult:
    """Run the daily path over `contacts` in a child; kill it after `budget_s` seconds."""
    folder = tempfile.mkdtemp(prefix="bench-memory-")
    db = Path(folder) / "state.db"
    with EmulatorProcess(contacts, latency_s=0.0, limited=False) as emulator, \
            open(Path(folder) / "stderr.txt", "w+") as errors:
        started = time.monotonic()
        child = subprocess.Popen(
            [sys.executable, "-W", "ignore", "-m", "bench.memory", str(contacts), emulator.url, str(db), hubspot_url],
            stdout=subprocess.PIPE, stderr=errors, text=True,
        )
        lines: queue.Queue = queue.Queue()
        threading.Thread(target=_lines, args=(child.stdout, lines), daemon=True).start()
        samples, ends, killed = [], [], False
        while True:
            try:
                line = lines.get(timeout=max(0.0, started + budget_s - time.monotonic()))
            except queue.Empty:
                os.kill(child.pid, signal.SIGKILL)
                killed = True
                break
            if line is None:
                break
            event = json.loads(line)
            (ends if event["event"] == "end" else samples).append(event)
        _pid, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
        wall = time.monotonic() - started
        db_mib = sum(p.stat().st_size for p in Path(folder).glob("state.db*")) / 2**20
        errors.seek(0)
        tail = errors.read()[-2000:]
    for path in Path(folder).iterdir():
        path.unlink()
    os.rmdir(folder)

    result = MemoryResult(contacts, wall, usage.ru_maxrss / 1024, db_mib)
    result.stages = _stages(samples, ends)
    if killed:
        result.stopped_in = samples[-1]["stage"] if samples else "startup"
        result.stages.append(_unfinished(result.stopped_in, samples, ends))
    elif child.returncode != 0:
        result.error = f"exit code {child.returncode}: {tail.strip().splitlines()[-1] if tail.strip() else ''}"
    return result


def _peak(name: str, samples: list[dict], end: dict | None, hwm_before: float) -> float:
    """A stage's peak: VmHWM when it rose during the stage (exact), else the highest sample."""
    rss = [s["rss"] for s in samples if s["stage"] == name] + ([end["rss"]] if end else [])
    hwm = end["hwm"] if end else max((s["hwm"] for s in samples if s["stage"] == name), default=0.0)
    return hwm if hwm > hwm_before else max(rss, default=0.0)


def _stages(samples: list[dict], ends: list[dict]) -> list[StageMemory]:
    stages, hwm = [], 0.0
    for end in ends:
        stages.append(StageMemory(end["stage"], end["seconds"], end["done"], _peak(end["stage"], samples, end, hwm), True))
        hwm = end["hwm"]
    return stages


def _unfinished(name: str, samples: list[dict], ends: list[dict]) -> StageMemory:
    since = ends[-1]["t"] if ends else 0.0
    last = samples[-1] if samples else {"t": since, "done": 0}
    return StageMemory(name, last["t"] - since, last["done"],
                       _peak(name, samples, None, ends[-1]["hwm"] if ends else 0.0), False)


if __name__ == "__main__":
    _child(int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4])
