"""The Dagster UI on the project, driven in Debian's chromium by Playwright.

Starts the sandbox emulators (AgentClara, HubSpot) in this process, then
`dagster dev -w workspace.yaml` in a session of its own with the sandbox's
URLs and keys in its environment, a fresh DAGSTER_HOME and a SQLite state
store under tmp. In the browser: the asset catalog lists the project's
assets; a backfill of the last two days is launched by clicking through
"Materialize all" and the partition range; while it runs, the asset graph
shows the groups and assets, the automation page `daily_sync_schedule`, an
asset its daily partitions; then the backfill page shows it succeeded and
HubSpot's asset two materialized partitions. The launch is done in the UI
only; the test waits for the backfill on the webserver's GraphQL API.

Not in the default run: `make test-browser` (installs chromium with apt and
playwright with pip when missing; never `playwright install`). Screenshots
and the webserver's log are kept in the test's tmp folder.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

import httpx
import pytest

from sandbox.agentclara import DEFAULT_KEY as AGENTCLARA_KEY
from sandbox.agentclara import AgentClaraApp
from sandbox.http import ServerThread
from sandbox.hubspot import DEFAULT_TOKEN as HUBSPOT_TOKEN
from sandbox.hubspot import HubSpotApp

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
    "--disable-component-update", "--no-first-run", "--disable-sync",
]
CONTRACT_PREFIXES = ("SYNC_", "AGENTCLARA_", "CLAIRO_", "AGENTPRO_", "CHATLOOM_", "HUBSPOT_", "SALESFORCE_")
ASSETS = ["agentclara_contacts_raw", "agentclara_contacts", "persons", "hubspot_contacts"]
SERVER_START_S = 120.0
BACKFILL_S = 180.0
UI_TIMEOUT_MS = 30_000

WORKSPACE_QUERY = """{ workspaceOrError { __typename ... on Workspace { locationEntries {
  name loadStatus locationOrLoadError { __typename ... on PythonError { message } } } } } }"""
BACKFILL_QUERY = """query ($id: String!) { partitionBackfillOrError(backfillId: $id) { __typename
  ... on PartitionBackfill { id status partitionNames runs(limit: 20) { id status } }
  ... on PythonError { message } } }"""
BACKFILL_DONE = {"COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED", "FAILING", "CANCELING"}


def _why_no_browser() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (make test-browser installs it)"
    if not os.access(CHROMIUM, os.X_OK):
        return f"{CHROMIUM} is missing (make test-browser installs Debian's chromium)"
    return None


_NO_BROWSER = _why_no_browser()
pytestmark = [pytest.mark.browser, pytest.mark.skipif(_NO_BROWSER is not None, reason=_NO_BROWSER or "")]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(what: str, deadline_s: float, probe: Callable[[], Any], every_s: float = 0.5) -> Any:
    """Call `probe` until it returns something truthy, failing after `deadline_s` seconds."""
    deadline = time.monotonic() + deadline_s
    last: Any = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(every_s)
    pytest.fail(f"timed out after {deadline_s:.0f} s waiting for {what} (last: {last!r})")


class DagsterDev:
    """`dagster dev` on the project, in a process group of its own."""

    def __init__(self, tmp_path: Path, sandbox_env: dict[str, str]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        home = tmp_path / "dagster_home"
        home.mkdir()
        (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
        env = {k: v for k, v in os.environ.items() if not k.startswith(CONTRACT_PREFIXES)}
        env |= sandbox_env | {
            "DAGSTER_HOME": str(home),
            "SYNC_DATABASE_URL": f"sqlite:///{tmp_path / 'state.db'}",
            "PYTHONUNBUFFERED": "1",
        }
        self.log_path = tmp_path / "dagster-dev.log"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "dagster", "dev", "-w", "workspace.yaml",
             "-h", "127.0.0.1", "-p", str(self.port)],
            cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: ended as a whole in stop()
        )
        self.http = httpx.Client(base_url=self.url, timeout=10)

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def graphql(self, query: str, **variables: Any) -> dict[str, Any]:
        response = self.http.post("/graphql", json={"query": query, "variables": variables})
        response.raise_for_status()
        body = response.json()
        assert "errors" not in body, body["errors"]
        return body["data"]

    def wait_until_loaded(self) -> None:
        def loaded() -> bool:
            if self.proc.poll() is not None:
                pytest.fail(f"dagster dev exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                workspace = self.graphql(WORKSPACE_QUERY)["workspaceOrError"]
            except (httpx.HTTPError, ValueError):
                return False  # not serving yet
            for entry in workspace.get("locationEntries", []):
                location = entry.get("locationOrLoadError") or {}
                if location.get("__typename") == "PythonError":
                    pytest.fail(f"code location {entry['name']} failed to load: {location['message']}")
                if entry["name"] == "pipelines" and location.get("__typename") == "RepositoryLocation":
                    return True
            return False

        wait_for("the webserver to serve the `pipelines` code location", SERVER_START_S, loaded)

    def stop(self) -> None:
        """SIGTERM to the whole group (webserver, daemon, code server, runs), SIGKILL after 20 s."""
        self.http.close()
        pgid = self.proc.pid  # start_new_session: the leader's pid is the group's id
        for sig, grace in ((signal.SIGTERM, 20.0), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(pgid, sig)
            except ProcessLookupError:
                break
            deadline = time.monotonic() + grace
            while time.monotonic() < deadline and _group_alive(pgid):
                self.proc.poll()  # reap the leader, so an exited group reads as gone
                time.sleep(0.2)
            if not _group_alive(pgid):
                break
        self.proc.wait(timeout=5)
        self._log.close()


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture
def hubspot() -> HubSpotApp:
    return HubSpotApp()


@pytest.fixture
def sandbox_env(hubspot: HubSpotApp) -> Iterator[dict[str, str]]:
    """The emulators on loopback, in threads of this process; the env that points at them."""
    servers = [ServerThread(AgentClaraApp(contacts=200)).start(), ServerThread(hubspot).start()]
    yield {
        "AGENTCLARA_API_KEY": AGENTCLARA_KEY,
        "AGENTCLARA_BASE_URL": servers[0].url,
        "HUBSPOT_ACCESS_TOKEN": HUBSPOT_TOKEN,
        "HUBSPOT_BASE_URL": servers[1].url,
    }
    for server in servers:
        server.stop()


@pytest.fixture
def dagster_ui(tmp_path: Path, sandbox_env: dict[str, str]) -> Iterator[DagsterDev]:
    server = DagsterDev(tmp_path, sandbox_env)
    try:
        server.wait_until_loaded()
        yield server
    finally:
        server.stop()


def test_the_ui_shows_the_project_and_runs_a_two_day_backfill(
    dagster_ui: DagsterDev, hubspot: HubSpotApp, tmp_path: Path
) -> None:
    from playwright.sync_api import Page, expect, sync_playwright

    timings: dict[str, float] = {}
    shots = tmp_path / "screenshots"
    shots.mkdir()
    # Without end_offset the newest partition is yesterday (UTC): take it and the day before.
    last = (datetime.now(timezone.utc) - timedelta(days=1)).date()
    days = [(last - timedelta(days=1)).isoformat(), last.isoformat()]
    url = dagster_ui.url

    def shot(page: Page, name: str) -> None:
        page.screenshot(path=str(shots / f"{len(list(shots.iterdir())) + 1:02d}-{name}.png"))

    started = time.monotonic()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        page.set_default_timeout(UI_TIMEOUT_MS)
        expect.set_options(timeout=UI_TIMEOUT_MS)
        # "Join the Dagster community" shows up once per browser profile, over any page.
        page.add_locator_handler(page.get_by_role("button", name="Skip", exact=True),
                                 lambda skip: skip.click())
        try:
            # The asset catalog lists the project's assets, each with its daily partitions.
            page.goto(f"{url}/assets")
            for asset in ASSETS:
                expect(page.locator(f'a[href="/assets/{asset}"]').first).to_be_visible()
            expect(page.get_by_text(re.compile(r"^[\d,]+ partitions$")).first).to_be_visible()
            shot(page, "catalog")

            # The backfill, by clicking: Materialize all -> a range of two days -> Launch backfill.
            page.goto(f"{url}/locations/pipelines/jobs/daily_sync")
            page.get_by_role("button", name=re.compile(r"Materialize all")).first.click()
            dialog = page.get_by_role("dialog")
            expect(dialog.get_by_text(re.compile(r"Launch runs to materialize \d+ assets"))).to_be_visible()
            box = dialog.get_by_placeholder("No matching partitions")
            box.fill(f"[{days[0]}...{days[1]}]")
            box.press("Enter")
            expect(dialog.get_by_text("2 partitions", exact=True)).to_be_visible()
            shot(page, "backfill-dialog")
            launched = time.monotonic()
            dialog.get_by_role("button", name="Launch backfill").click()
            toast = page.get_by_text(re.compile(r"Created backfill \w+"))
            expect(toast).to_be_visible()
            backfill_id = re.search(r"Created backfill (\w+)", toast.inner_text()).group(1)
            shot(page, "backfill-launched")

            # While it runs: the asset graph, the schedule, an asset's partitions.
            page.goto(f"{url}/asset-groups")
            for group in ("agentclara", "people", "crm"):
                expect(page.get_by_text(group, exact=True).first).to_be_visible()
            shot(page, "lineage")
            page.goto(f"{url}/locations/pipelines/asset-groups/agentclara")
            expect(page.get_by_text("agentclara_contacts_raw", exact=True).first).to_be_visible()
            expect(page.get_by_text("agentclara_contacts", exact=True).first).to_be_visible()
            shot(page, "graph-agentclara")

            page.goto(f"{url}/automation")
            expect(page.get_by_text("daily_sync_schedule", exact=True).first).to_be_visible()
            expect(page.get_by_text(re.compile(r"02:00 AM UTC")).first).to_be_visible()
            shot(page, "automation")

            page.goto(f"{url}/assets/agentclara_contacts_raw?view=partitions")
            for day in reversed(days):  # one per UTC day, the newest first
                expect(page.get_by_text(day, exact=True).first).to_be_visible()
            expect(page.get_by_text(re.compile(r"Missing \([\d,]+\)")).first).to_be_visible()
            shot(page, "partitions")
            timings["pages"] = time.monotonic() - started

            # Done when the API says so (the backfill daemon updates it every 30 s); then the UI says so.
            def finished() -> dict[str, Any] | None:
                backfill = dagster_ui.graphql(BACKFILL_QUERY, id=backfill_id)["partitionBackfillOrError"]
                assert backfill["__typename"] == "PartitionBackfill", backfill
                return backfill if backfill["status"] in BACKFILL_DONE else None

            backfill = wait_for(f"backfill {backfill_id} to finish", BACKFILL_S, finished, every_s=1.0)
            timings["backfill"] = time.monotonic() - launched
            assert backfill["status"] == "COMPLETED_SUCCESS", (backfill, dagster_ui.log_tail())
            assert sorted(backfill["partitionNames"]) == days
            assert backfill["runs"] and {r["status"] for r in backfill["runs"]} == {"SUCCESS"}

            page.goto(f"{url}/runs/b/{backfill_id}")
            expect(page.get_by_text("Succeeded", exact=True).first).to_be_visible()
            expect(page.get_by_text("100% completed").first).to_be_visible()
            shot(page, "backfill-succeeded")
            page.goto(f"{url}/assets/hubspot_contacts?view=partitions")
            expect(page.get_by_text("Materialized (2)").first).to_be_visible()
            shot(page, "hubspot-partitions")
        except BaseException:
            shot(page, "failure")
            print(f"\nscreenshots: {shots}\nwebserver log: {dagster_ui.log_path}")
            raise
        finally:
            browser.close()

    assert len(hubspot.contacts()) > 0  # the run really pushed into the sandbox CRM
    timings["total in browser"] = time.monotonic() - started
    print("\n" + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()) + f"; screenshots in {shots}")
