"""CRM pace from the CRM's own headers: HubSpot sink (built from the environment, as the
pipeline builds it) -> hubspot-api-client -> loopback -> sandbox HubSpot emulator, over real
HTTP; then daily_sync through Dagster with the portal's daily budget running out.

Covers: the portal's window learned from `X-HubSpot-RateLimit-Max` / `-Interval-Milliseconds`
(190 per 10 s is used whole although `HUBSPOT_REQUESTS_PER_10S` is not set); the variable as
an upper cap; the header parsing itself; a daily budget down to its reserve stopping the push
before HubSpot refuses, its progress kept and the rest sent by the next run; a daily 429 that
another app caused not retried. Pacing is checked by counting requests per window on the
emulator, never by timing.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from connectors.errors import PartialProgress, QuotaExhausted
from connectors.hubspot.pacing import DAILY_RESERVE_SHARE, read_budget
from pipelines.resources import build_resources
from pipelines.state import StateStore
from sandbox.agentclara import AgentClaraApp
from sandbox.http import Request, Response, ServerThread
from sandbox.hubspot import DEFAULT_TOKEN, HubSpotApp
from tests.pipeline_runs import failure_messages, run_daily, step_metadata


class ArrivalLog(HubSpotApp):
    """The HubSpot emulator, noting each request when its rate windows count it (`before`)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.arrivals: list[float] = []
        self._arrival_lock = threading.Lock()

    def before(self, request: Request) -> Response | None:
        answer = super().before(request)
        with self._arrival_lock:
            self.arrivals.append(time.monotonic())
        return answer

    def first_window(self, period: float = 10.0) -> int:
        """Requests in the 10 s from the first one: the portal's whole budget when the burst went first."""
        times = sorted(self.arrivals)
        return sum(1 for t in times if t - times[0] < period)


def person(i: int) -> dict[str, Any]:
    return {"person_key": f"email:p{i}@example.com", "email": f"p{i}@example.com", "first_name": "Pat",
            "last_name": f"Number{i}", "source_ids": {"agentclara": [f"cust_{i}"]}}


def sink_from_env(server: ServerThread, **env: str):
    """The sink the pipeline would build for this environment (pipelines/resources.py; the
    token, which Dagster resolves from its EnvVar inside a run, is given as is)."""
    built = build_resources({"HUBSPOT_ACCESS_TOKEN": DEFAULT_TOKEN, "HUBSPOT_BASE_URL": server.url, **env})["hubspot"]
    resource = type(built)(access_token=DEFAULT_TOKEN, base_url=built.base_url, per_10s=built.per_10s)
    sink = resource.sink()
    sink.batch_size = 1  # one request per person: enough requests to fill windows quickly
    return sink


@pytest.fixture
def portal() -> Iterator[tuple[ArrivalLog, ServerThread]]:
    app = ArrivalLog(per_10s=190)
    with ServerThread(app) as server:
        yield app, server


class TestHeaders:
    def test_the_budget_is_read_whatever_the_case(self) -> None:
        budget = read_budget({"x-hubspot-ratelimit-max": "190", "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
                              "X-HUBSPOT-RATELIMIT-REMAINING": "17", "X-HubSpot-RateLimit-Daily": "650000",
                              "X-HubSpot-RateLimit-Daily-Remaining": "6500"})
        assert (budget.window_max, budget.window_s, budget.window_remaining) == (190, 10.0, 17)
        assert budget.daily_reserve == int(650_000 * DAILY_RESERVE_SHARE) and budget.daily_spent()

    @pytest.mark.parametrize("headers", [{}, {"X-HubSpot-RateLimit-Max": "lots"},
                                         {"X-HubSpot-RateLimit-Daily-Remaining": "-3"}])
    def test_missing_or_junk_headers_say_nothing(self, headers: dict[str, str]) -> None:
        budget = read_budget(headers)
        assert budget.window_max is None and budget.daily_remaining is None and not budget.daily_spent()


class TestLearnedWindow:
    def test_a_190_portal_is_paced_at_190_without_configuration(self, portal) -> None:
        app, server = portal
        sink = sink_from_env(server)  # HUBSPOT_REQUESTS_PER_10S not set
        sink.prepare()
        assert all(o.ok for o in sink.upsert([person(i) for i in range(240)]))
        assert app.status_counts.get(429, 0) == 0
        assert app.first_window() == 190  # the portal's whole window, not the old default of 100
        assert sink._transport.limiter.pace == ((190, 10.0),)

    def test_the_variable_is_an_upper_cap(self, portal) -> None:
        app, server = portal
        sink = sink_from_env(server, HUBSPOT_REQUESTS_PER_10S="40")
        sink.prepare()
        assert all(o.ok for o in sink.upsert([person(i) for i in range(40)]))
        assert app.first_window() == 40
        assert app.status_counts.get(429, 0) == 0


class TestDailyBudget:
    def test_a_daily_429_another_app_caused_is_not_retried(self, portal) -> None:
        app, server = portal
        sink = sink_from_env(server)
        sink.prepare()
        app.daily_used = app.daily_limit  # the portal's other apps spent it since our last answer
        with pytest.raises(PartialProgress) as caught:
            sink.upsert([person(i) for i in range(3)])
        assert isinstance(caught.value.cause, QuotaExhausted)
        assert app.status_counts[429] == 1 and len(caught.value.pending_keys) == 3


class SpendsOut(HubSpotApp):
    """A portal whose daily budget runs out on the `last`-th contact upsert: its answer says 0 left."""

    def __init__(self, last: int) -> None:
        super().__init__()
        self.last = last
        self.admitted_upserts = 0

    def before(self, request: Request) -> Response | None:
        if request.path.endswith("/contacts/batch/upsert") and self.daily_used < self.daily_limit:
            self.admitted_upserts += 1
            if self.admitted_upserts == self.last:
                self.daily_limit = self.daily_used + 1
        return super().before(request)


def test_a_daily_budget_near_its_end_stops_the_push_cleanly_and_the_next_run_finishes(tmp_path: Path) -> None:
    hubspot = SpendsOut(last=2)
    servers = [ServerThread(AgentClaraApp(contacts=300, conversations=0)).start(), ServerThread(hubspot).start()]
    try:
        env = {"SYNC_DATABASE_URL": f"sqlite:///{tmp_path / 'state.db'}", "AGENTCLARA_API_KEY": "ac_sandbox_key",
               "AGENTCLARA_BASE_URL": servers[0].url, "HUBSPOT_ACCESS_TOKEN": DEFAULT_TOKEN,
               "HUBSPOT_BASE_URL": servers[1].url}
        first = run_daily(env, "2026-11-22")
        pushed = step_metadata(first, "hubspot_contacts")
        assert hubspot.status_counts.get(429, 0) == 0  # stopped before HubSpot refused
        assert len(hubspot.upsert_requests) == 2  # the two batches the budget allowed, then no more
        done = sum(hubspot.upsert_requests)
        assert len(hubspot.upserted) == done and pushed["created"] == done
        persons = StateStore(env["SYNC_DATABASE_URL"]).count("persons")
        assert done < persons
        assert "daily" in str(pushed).lower()  # the stop is reported, naming the daily budget

        hubspot.daily_limit, hubspot.last = 250_000, 0  # midnight in the portal's time zone
        second = run_daily(env, "2026-11-22")
        assert second.success, failure_messages(second)
        assert len(hubspot.upserted) == persons and set(hubspot.upserted.values()) == {1}  # each person once
    finally:
        for server in servers:
            server.stop()


# -- Salesforce: the org's daily budget from Sforce-Limit-Info -------------------------------


@pytest.fixture(scope="module")
def org() -> Iterator[Any]:
    from sandbox.salesforce import serve

    server = serve()  # already serving
    yield server
    server.stop()


def salesforce_sink(org: Any):
    from connectors.salesforce import RetryPolicy, SalesforceSettings, SalesforceSink
    from sandbox import tls

    org.app.reset()
    settings = SalesforceSettings(instance_url=org.url, access_token=org.app.access_token, ca_bundle=tls.ca_path())
    return SalesforceSink(settings, collection_size=2, retry=RetryPolicy(attempts=3, base_s=0)), org.app


def sf_person(i: int) -> dict[str, Any]:
    return {"person_key": f"email:person{i}@example.com", "email": f"person{i}@example.com", "first_name": "Pat",
            "last_name": f"Doe{i}", "company": "Acme", "source_ids": {"agentclara": [f"cust_{i}"]}}


class TestSalesforceDailyBudget:
    @pytest.mark.parametrize("header, usage", [
        ("api-usage=10018/100000", (10018, 100000)),
        ("api-usage=1/750; api-bursts=1/750", (1, 750)),
        ("per-app-api-usage=2/250(appName=x); api-usage=7/15000", (7, 15000)),
        ("", None), ("api-usage=lots", None),
    ])
    def test_the_header_is_read(self, header: str, usage: tuple[int, int] | None) -> None:
        from connectors.salesforce.transport import api_usage

        assert api_usage(header) == usage

    def test_a_budget_down_to_its_reserve_stops_before_the_refusal(self, org) -> None:
        sink, app = salesforce_sink(org)
        sink.prepare()
        app.api_limit = app.api_used + 2  # two more requests, the last one says nothing is left
        with pytest.raises(PartialProgress) as caught:
            sink.upsert([sf_person(i) for i in range(6)])
        assert isinstance(caught.value.cause, QuotaExhausted) and "Sforce-Limit-Info" in str(caught.value)
        assert len(caught.value.outcomes) == 4 and len(caught.value.pending_keys) == 2
        assert app.status_counts.get(403) is None and len(app.records("Lead")) == 4

    def test_a_refusal_another_integration_caused_is_a_clean_stop(self, org) -> None:
        sink, app = salesforce_sink(org)
        sink.prepare()
        app.api_used = app.api_limit  # spent by others since our last answer
        with pytest.raises(PartialProgress) as caught:
            sink.upsert([sf_person(i) for i in range(2)])
        assert isinstance(caught.value.cause, QuotaExhausted) and "REQUEST_LIMIT_EXCEEDED" in str(caught.value)
        assert app.status_counts.get(403) == 1
