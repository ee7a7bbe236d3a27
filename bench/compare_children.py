"""The measured runs of bench/compare.py, each in a child process of its own (its RSS is its own).

    python -m bench.compare_children project AGENTCLARA_URL HUBSPOT_URL   # historical_load, in-process Dagster
    python -m bench.compare_children loop AGENTCLARA_URL HUBSPOT_URL      # a hand-written sequential loop

Each prints one JSON line: {"wall_s", "peak_rss_mib", ...}. The wall time is
the work's, from just before the first request to the end (imports not
counted); the peak RSS is the child's whole life (`ru_maxrss`), and the
largest of its own children's (the project's normalize workers: WorkerPeaks) apart. dlt's run is
bench/dlt_runner.py, in the bench venv.
"""

from __future__ import annotations

import json
import os
import re
import resource
import sys
import tempfile
import time
from typing import Any

AGENTCLARA_KEY = "ac_sandbox_key"
HUBSPOT_TOKEN = "pat-sandbox-token"
PAGE = BATCH = 100
# The check an afternoon script has: HubSpot refuses a whole batch for one malformed address.
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[A-Za-z]{2,}")


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


class WorkerPeaks:
    """The largest peak RSS (VmHWM) of this process's children while it runs, sampled every second.

    Not `RUSAGE_CHILDREN`: Linux carries a process's peak across exec, so a
    worker spawned by a 200 MB process would report at least 200 MB there.
    """

    def __init__(self) -> None:
        import threading

        self.peak_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            self.sample()

    def sample(self) -> None:
        me = str(os.getpid())
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                with open(f"/proc/{pid}/stat") as stat:
                    if stat.read().rsplit(")", 1)[1].split()[1] != me:
                        continue
                with open(f"/proc/{pid}/status") as status:
                    hwm = next((int(line.split()[1]) for line in status if line.startswith("VmHWM:")), 0)
            except (OSError, IndexError):  # gone meanwhile
                continue
            self.peak_kib = max(self.peak_kib, hwm)

    def stop_mib(self) -> float:
        self._stop.set()
        self._thread.join()
        return self.peak_kib / 1024.0


def run_project(agentclara_url: str, hubspot_url: str) -> dict[str, Any]:
    """`historical_load`, the real Dagster job, executed in process against the emulators."""
    import dagster as dg

    from pipelines.definitions import build_definitions

    home = tempfile.mkdtemp(prefix="bench-compare-")
    env = {
        "AGENTCLARA_API_KEY": AGENTCLARA_KEY, "AGENTCLARA_BASE_URL": agentclara_url,
        "HUBSPOT_ACCESS_TOKEN": HUBSPOT_TOKEN, "HUBSPOT_BASE_URL": hubspot_url,
        "SYNC_DATABASE_URL": f"sqlite:///{home}/state.db", "DAGSTER_HOME": home,
    }
    os.environ.update(env)
    job = build_definitions(env).resolve_job_def("historical_load")
    started = time.monotonic()
    result = job.execute_in_process(instance=dg.DagsterInstance.ephemeral(), raise_on_error=False)
    wall = time.monotonic() - started
    steps = {
        e.step_key: round(e.event_specific_data.duration_ms / 1000.0, 1)
        for e in result.all_events if e.is_step_success and getattr(e.event_specific_data, "duration_ms", None)
    }
    return {"wall_s": wall, "success": result.success, "steps_s": steps}


def _get_with_retry(client: Any, path: str, params: dict[str, Any]) -> Any:
    """What a hand-written loop does about a 429: wait (Retry-After, else 1 s) and ask again."""
    while True:
        response = client.get(path, params=params)
        if response.status_code != 429:
            response.raise_for_status()
            return response.json()
        time.sleep(float(response.headers.get("Retry-After") or 1.0))


def _post_with_retry(client: Any, path: str, body: Any) -> int:
    while True:
        response = client.post(path, json=body)
        if response.status_code != 429:
            return response.status_code
        time.sleep(float(response.headers.get("Retry-After") or 1.0))


def run_loop(agentclara_url: str, hubspot_url: str) -> dict[str, Any]:
    """Read every contact page by page, then upsert them to HubSpot by email, 100 a batch."""
    import httpx

    started = time.monotonic()
    contacts: list[dict[str, Any]] = []
    with httpx.Client(base_url=agentclara_url, headers={"Authorization": f"Bearer {AGENTCLARA_KEY}"},
                      timeout=30) as source:
        offset = 0
        while True:
            page = _get_with_retry(source, "/contacts", {"limit": PAGE, "offset": offset})["data"]
            contacts.extend(page)
            if not page:
                break
            offset += PAGE
    by_email: dict[str, dict[str, Any]] = {}
    for contact in contacts:
        email = (contact.get("email") or "").strip().lower()
        if EMAIL.fullmatch(email):
            name = (contact.get("name") or "").split(" ", 1)
            by_email[email] = {"idProperty": "email", "id": email, "properties": {
                "email": email, "firstname": name[0], "lastname": name[1] if len(name) > 1 else "",
                "phone": contact.get("phone") or ""}}
    inputs = list(by_email.values())
    statuses: dict[int, int] = {}
    with httpx.Client(base_url=hubspot_url, headers={"Authorization": f"Bearer {HUBSPOT_TOKEN}"},
                      timeout=60) as crm:
        for i in range(0, len(inputs), BATCH):
            status = _post_with_retry(crm, "/crm/v3/objects/contacts/batch/upsert", {"inputs": inputs[i:i + BATCH]})
            statuses[status] = statuses.get(status, 0) + 1
    return {"wall_s": time.monotonic() - started, "success": True, "contacts": len(contacts),
            "upserted": len(inputs), "upsert_statuses": statuses}


def main(argv: list[str]) -> None:
    kind, agentclara_url, hubspot_url = argv
    run = {"project": run_project, "loop": run_loop}[kind]
    workers = WorkerPeaks()
    figures = run(agentclara_url, hubspot_url)
    figures["peak_rss_mib"] = peak_rss_mib()
    figures["workers_peak_rss_mib"] = workers.stop_mib()
    print(json.dumps(figures), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
