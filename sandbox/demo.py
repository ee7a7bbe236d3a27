"""`make demo`: the whole product on one machine, in one command.

Starts the sandbox emulators on loopback (AgentClara, Clairo, AgentPro,
Chatloom, and the CRM targets), points the contract's environment variables
at them, runs `daily_sync` for yesterday's partition through Dagster with
the default SQLite state, and prints the run's summary: the lines the
`sync_report` asset shows, one per source and per target.

The demo keeps its own Dagster home and state under ./.crm_sync/demo and
starts them afresh each time (the sandbox CRMs start empty too), so it never
touches a state store named by SYNC_DATABASE_URL.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import warnings
import sys
import time
from contextlib import ExitStack
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from sandbox import tls
from sandbox.agentclara import DEFAULT_KEY as AGENTCLARA_KEY
from sandbox.agentclara import AgentClaraApp
from sandbox.agentpro import DEFAULT_KEY as AGENTPRO_KEY
from sandbox.agentpro import AgentProApp
from sandbox.chatloom import DEFAULT_KEY as CHATLOOM_KEY
from sandbox.chatloom import ChatloomApp
from sandbox.clairo import DEFAULT_KEY as CLAIRO_KEY
from sandbox.clairo import ClairoApp
from sandbox.http import App, ServerThread
from sandbox.hubspot import DEFAULT_TOKEN as HUBSPOT_TOKEN
from sandbox.hubspot import HubSpotApp
from sandbox.salesforce import SalesforceApp

DEMO_HOME = Path(".crm_sync/demo")
CONTRACT_PREFIXES = ("SYNC_", "AGENTCLARA_", "CLAIRO_", "AGENTPRO_", "CHATLOOM_", "HUBSPOT_", "SALESFORCE_")


def start_sandbox(stack: ExitStack, targets: set[str], contacts: int, latency_s: float) -> dict[str, str]:
    """Start the emulators; returns the environment that points the project at them."""

    def serve(app: App) -> str:
        app.faults.latency_s = latency_s
        return stack.enter_context(ServerThread(app)).url

    env = {
        "AGENTCLARA_API_KEY": AGENTCLARA_KEY,
        # One conversation per contact over 90 days: a daily run reads about 45 with their messages.
        "AGENTCLARA_BASE_URL": serve(AgentClaraApp(contacts=contacts, conversations=contacts)),
        "CLAIRO_API_KEY": CLAIRO_KEY,
        # Clairo's routes live under /api/v1, as in production.
        "CLAIRO_BASE_URL": serve(ClairoApp()) + ClairoApp.BASE_PATH,
        "AGENTPRO_API_KEY": AGENTPRO_KEY,
        "AGENTPRO_BASE_URL": serve(AgentProApp()),
        "CHATLOOM_API_KEY": CHATLOOM_KEY,
        "CHATLOOM_BASE_URL": serve(ChatloomApp()),
    }
    if "hubspot" in targets:
        env["HUBSPOT_ACCESS_TOKEN"] = HUBSPOT_TOKEN
        env["HUBSPOT_BASE_URL"] = stack.enter_context(ServerThread(HubSpotApp())).url
    if "salesforce" in targets:
        salesforce = SalesforceApp()
        server = stack.enter_context(ServerThread(salesforce, ssl_context=tls.server_context()))
        env["SALESFORCE_INSTANCE_URL"] = server.url
        env["SALESFORCE_ACCESS_TOKEN"] = salesforce.access_token
        env["REQUESTS_CA_BUNDLE"] = tls.ca_path()  # trust the sandbox's throwaway CA
    return env


def prepare_home() -> None:
    shutil.rmtree(DEMO_HOME, ignore_errors=True)
    DEMO_HOME.mkdir(parents=True)
    (DEMO_HOME / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    os.environ["DAGSTER_HOME"] = str(DEMO_HOME.resolve())
    # Only the sandbox is reached: drop any real keys and URLs from the shell.
    for name in list(os.environ):
        if name.startswith(CONTRACT_PREFIXES):
            del os.environ[name]


def serve_ui() -> int:
    """`dagster dev` on the project, its code location pointed at the running sandbox."""
    print("Dagster UI on http://127.0.0.1:3000 (sandbox APIs running; Ctrl-C to stop)")
    command = [sys.executable, "-m", "dagster", "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", "3000"]
    try:
        return subprocess.call(command)
    except KeyboardInterrupt:
        return 0


def run_daily_sync(partition: str) -> tuple[Any, float]:
    import dagster as dg

    # backfill_policy is marked beta in Dagster 1.13; the demo need not say so 11 times.
    warnings.filterwarnings("ignore", category=dg.BetaWarning)
    from pipelines.definitions import defs  # built now, from the environment set above

    started = time.monotonic()
    result = defs.resolve_job_def("daily_sync").execute_in_process(
        partition_key=partition,
        instance=dg.DagsterInstance.get(),
        raise_on_error=False,
        # Our own progress lines, warnings and errors; not every engine event.
        run_config={"loggers": {"console": {"config": {"log_level": "INFO"}}}},
    )
    return result, time.monotonic() - started


def print_summary(partition: str, result: Any, seconds: float) -> None:
    """The run's summary as sync_report computes it, from the store's run history."""
    from pipelines.resources import StateStoreResource
    from pipelines.summary import summarize

    store = StateStoreResource().store()
    status = "succeeded" if result.success else "FAILED"
    print(f"\ndaily_sync for {partition}: {status} in {seconds:.1f} s (run {result.run_id[:8]})")
    print("\n".join(summarize(store, result.run_id).text()))
    if not result.success:
        for event in result.all_events:
            if event.is_step_failure:
                print(f"  failed step {event.step_key}: {event.event_specific_data.error.message.strip()}")
    print(f"\nState: {store!r}\nDagster home: {os.environ['DAGSTER_HOME']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", choices=["hubspot", "salesforce", "both"], default="hubspot")
    parser.add_argument("--contacts", type=int, default=500, help="AgentClara contacts in the sandbox")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds of latency per sandbox request")
    parser.add_argument("--partition", help="day to run (default: yesterday, UTC)")
    parser.add_argument("--serve-ui", action="store_true",
                        help="instead of one run, serve the Dagster UI (dagster dev) against the sandbox")
    args = parser.parse_args(argv)
    targets = {"hubspot", "salesforce"} if args.target == "both" else {args.target}
    partition = args.partition or (datetime.now(timezone.utc) - timedelta(days=1)).date().isoformat()

    prepare_home()
    with ExitStack() as stack:
        os.environ.update(start_sandbox(stack, targets, args.contacts, args.latency))
        if args.serve_ui:
            return serve_ui()
        result, seconds = run_daily_sync(partition)
        print_summary(partition, result, seconds)
    return 0 if result.success else 1


if __name__ == "__main__":
    sys.exit(main())
