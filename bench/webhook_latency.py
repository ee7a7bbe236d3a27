"""Benchmark: POST of an AgentClara webhook -> the engagement written in HubSpot, under `dagster dev`.

What `make dev` gives: `dagster dev -w workspace.yaml` (webserver and
daemon, the default instance) on a fresh DAGSTER_HOME, with
`agentclara_webhook_sensor` turned on (`dagster sensor start`), its
`minimum_interval_seconds` (pipelines/webhooks/sensor.py) deciding how
often the daemon evaluates it. Around it: the AgentClara and HubSpot
emulators (in this process, loopback HTTP), `python -m pipelines.webhooks`
as a child process, and a SQLite state store seeded by one daily_sync (so
the conversations already have their engagements).

Each sample: a new message is added to a synced conversation, its signed
`message.received` is POSTed to the receiver, and the clock runs until the
HubSpot emulator holds that conversation's engagement with the new message
in it (polled every 50 ms in this process: a read of the emulator's memory,
not a request). Between samples a random pause (0 to the sensor interval)
spreads the POSTs over the sensor's tick phase.

    python -m bench.webhook_latency [--samples 8] [--out bench/WEBHOOKS.md]
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

import httpx

from pipelines.webhooks.process import ReceiverProcess, free_port
from pipelines.webhooks.sensor import MINIMUM_INTERVAL_SECONDS
from sandbox.agentclara import DEFAULT_KEY as AGENTCLARA_KEY
from sandbox.agentclara import AgentClaraApp
from sandbox.http import ServerThread
from sandbox.hubspot import DEFAULT_TOKEN, HubSpotApp

ROOT = Path(__file__).resolve().parent.parent
SECRET = "whsec_bench"
KEY = "agent_sync_activity_key"
POLL_S = 0.05


def wait_for(what: str, check: Callable[[], Any], deadline_s: float) -> Any:
    """Poll `check` until it returns something truthy (RuntimeError naming `what` past the deadline)."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(POLL_S)
    raise RuntimeError(f"{what}: not within {deadline_s:.0f} s")


def engagement_with(hubspot: HubSpotApp, key: str, text: str) -> bool:
    """Does HubSpot hold the engagement of `key` with `text` in its body?"""
    for kind in ("notes", "communications"):
        for record in hubspot.objects(kind):
            props = record["properties"]
            if props.get(KEY) == key and text in str(props.get("hs_note_body") or props.get("hs_communication_body")):
                return True
    return False


def seed(env: dict[str, str]) -> None:
    """One daily_sync for yesterday, in this process, so contacts and engagements exist."""
    from tests.pipeline_runs import run_daily  # the same helper the tests use

    yesterday = (datetime.now(timezone.utc) - timedelta(days=1)).date().isoformat()
    result = run_daily(env, yesterday)
    if not result.success:
        raise RuntimeError("the seeding daily_sync failed")


def start_dagster_dev(stack: ExitStack, env: dict[str, str], home: Path) -> str:
    """`dagster dev` in its own session (ended as a group), and the sensor started; returns the UI URL."""
    port = free_port()
    child_env = {**os.environ, **env, "DAGSTER_HOME": str(home)}
    log = stack.enter_context((home / "dagster-dev.log").open("wb"))
    process = subprocess.Popen(
        [sys.executable, "-m", "dagster", "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
        cwd=ROOT, env=child_env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    stack.callback(_end_group, process)
    url = f"http://127.0.0.1:{port}"
    wait_for("dagster dev's webserver", lambda: _answers(f"{url}/server_info"), 180)
    subprocess.run([sys.executable, "-m", "dagster", "sensor", "start", "agentclara_webhook_sensor",
                    "-w", "workspace.yaml"], cwd=ROOT, env=child_env, check=True, capture_output=True)
    return url


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def _end_group(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def synced_conversations(agentclara: AgentClaraApp, hubspot: HubSpotApp, count: int) -> list[str]:
    """`count` conversations that already have their engagement in HubSpot (taken in turn if fewer)."""
    keys = {record["properties"].get(KEY) for kind in ("notes", "communications") for record in hubspot.objects(kind)}
    found = [cid for cid in agentclara.conversation_ids() if f"agentclara:{cid}" in keys]
    if not found:
        raise RuntimeError("no conversation reached HubSpot in the seeding daily_sync")
    return [found[k % len(found)] for k in range(count)]


def sample(agentclara: AgentClaraApp, hubspot: HubSpotApp, receiver: ReceiverProcess, conversation: str,
           k: int) -> tuple[float, float]:
    """(seconds from the POST of one message.received to its engagement update in HubSpot,
    milliseconds the receiver took to answer the POST: stored in the inbox)."""
    text = f"latency sample {k}: is Friday still possible?"
    agentclara.add_message(conversation, text)
    event = agentclara.webhook_event("message.received", conversation)
    started = time.monotonic()
    status, _ = agentclara.emit_webhook(receiver.url, event, SECRET)
    answered_ms = (time.monotonic() - started) * 1000
    if status != 200:
        raise RuntimeError(f"the receiver answered {status}")
    wait_for(f"sample {k}'s engagement", lambda: engagement_with(hubspot, f"agentclara:{conversation}", text), 180)
    return time.monotonic() - started, answered_ms


def report(latencies: list[float], answers_ms: list[float], seconds_to_ready: float) -> str:
    ordered = sorted(latencies)
    p90 = ordered[max(0, round(0.9 * len(ordered)) - 1)]
    return "\n".join([
        "# Webhook latency: POST -> HubSpot write under `dagster dev`",
        "",
        f"Measured {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC by `python -m bench.webhook_latency` on "
        f"{os.cpu_count()} cores, Python {platform.python_version()}, SQLite state; sensor "
        f"`minimum_interval_seconds` = {MINIMUM_INTERVAL_SECONDS}; `dagster dev` ready after "
        f"{seconds_to_ready:.0f} s.",
        "",
        "| samples | min | median | p90 | max |",
        "|---|---|---|---|---|",
        f"| {len(ordered)} | {ordered[0]:.1f} s | {statistics.median(ordered):.1f} s | {p90:.1f} s | "
        f"{ordered[-1]:.1f} s |",
        "",
        f"The receiver answered each POST (event stored in the inbox) in {min(answers_ms):.0f} to "
        f"{max(answers_ms):.0f} ms (median {statistics.median(answers_ms):.0f} ms), client round trip included.",
        "",
        "Each sample: POST a signed `message.received` (new message on a conversation already in HubSpot) ->",
        "receiver stores it -> the daemon's next sensor tick requests a `webhook_sync` run -> the run is",
        "launched in its own process (code location loaded) -> land, normalize, persons, push -> the",
        "engagement is updated in the HubSpot emulator. Samples: " + ", ".join(f"{x:.1f}" for x in latencies) + " s.",
        "",
    ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--contacts", type=int, default=200)
    parser.add_argument("--out", default=str(ROOT / "bench" / "WEBHOOKS.md"))
    args = parser.parse_args(argv)
    # The directory outlives the stack: dagster dev (ended by the stack) writes into it until it stops.
    with tempfile.TemporaryDirectory(prefix="webhook-bench-", ignore_cleanup_errors=True) as tmp, ExitStack() as stack:
        home = Path(tmp)
        (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
        agentclara = AgentClaraApp(contacts=args.contacts, conversations=5 * args.contacts, per_10s=None,
                                   per_minute=None)
        hubspot = HubSpotApp()
        urls = [stack.enter_context(ServerThread(app)).url for app in (agentclara, hubspot)]
        env = {"SYNC_DATABASE_URL": f"sqlite:///{home / 'state.db'}", "AGENTCLARA_API_KEY": AGENTCLARA_KEY,
               "AGENTCLARA_BASE_URL": urls[0], "HUBSPOT_ACCESS_TOKEN": DEFAULT_TOKEN, "HUBSPOT_BASE_URL": urls[1]}
        seed(env)
        receiver = stack.enter_context(ReceiverProcess({**env, "SYNC_WEBHOOK_SECRET": SECRET}))
        started = time.monotonic()
        start_dagster_dev(stack, env, home)
        ready = time.monotonic() - started
        latencies, answers_ms = [], []
        for k, conversation in enumerate(synced_conversations(agentclara, hubspot, args.samples)):
            time.sleep(random.uniform(0, MINIMUM_INTERVAL_SECONDS))  # spread POSTs over the tick phase
            seconds, answered_ms = sample(agentclara, hubspot, receiver, conversation, k)
            latencies.append(seconds)
            answers_ms.append(answered_ms)
            print(f"sample {k}: POST at {datetime.now(timezone.utc) - timedelta(seconds=seconds):%H:%M:%S}, "
                  f"answered in {answered_ms:.0f} ms, in HubSpot after {seconds:.1f} s", flush=True)
        text = report(latencies, answers_ms, ready)
    Path(args.out).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
