"""The webhook sandbox of tests/test_webhook_sync.py: the AgentClara emulator as the sender, a CRM
emulator as the target, `python -m pipelines.webhooks` as a real child process, the state store,
and a Dagster instance the sensor's runs go through (set by the test module's fixture).
"""

from __future__ import annotations

import functools
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping

import dagster as dg
import sqlalchemy as sa

from pipelines.definitions import build_definitions
from pipelines.resources import StateStoreResource
from pipelines.state import StateStore
from pipelines.state.tables import records
from pipelines.webhooks import inbox
from pipelines.webhooks.process import ReceiverProcess
from sandbox import tls
from sandbox.agentclara import DEFAULT_KEY as AGENTCLARA_KEY
from sandbox.agentclara import AgentClaraApp
from sandbox.http import ServerThread
from sandbox.hubspot import DEFAULT_TOKEN, HubSpotApp
from sandbox.salesforce import SalesforceApp, serve

NOW = datetime(2026, 11, 10, 12, 0, tzinfo=timezone.utc)
DAY = "2026-11-09"
SECRET = "whsec_sandbox_0123456789"
KEY = "agent_sync_activity_key"
SENSOR = "agentclara_webhook_sensor"


class Box:
    """The emulators, the receiver, the state store and one Dagster instance for the sensor's runs."""

    def __init__(self, tmp_path: Path, *, salesforce: bool = False) -> None:
        """HubSpot as the target; with `salesforce`, the Salesforce emulator (over TLS) instead."""
        self.agentclara = AgentClaraApp(contacts=40, conversations=160, now=NOW, per_10s=None, per_minute=None)
        self.hubspot = HubSpotApp()
        self.salesforce = SalesforceApp()
        self.servers = [ServerThread(app).start() for app in (self.agentclara, self.hubspot)]
        self.db = f"sqlite:///{tmp_path / 'state.db'}"
        self.env = {
            "SYNC_DATABASE_URL": self.db, "SYNC_CONVERSATION_LOOKBACK_DAYS": "1",
            "AGENTCLARA_API_KEY": AGENTCLARA_KEY, "AGENTCLARA_BASE_URL": self.servers[0].url,
        }
        if salesforce:
            self.servers.append(serve(self.salesforce))
            self.env |= {"SALESFORCE_INSTANCE_URL": self.servers[2].url, "SALESFORCE_OBJECT": "Lead",
                         "SALESFORCE_ACCESS_TOKEN": self.salesforce.access_token,
                         "REQUESTS_CA_BUNDLE": tls.ca_path()}
        else:
            self.env |= {"HUBSPOT_ACCESS_TOKEN": DEFAULT_TOKEN, "HUBSPOT_BASE_URL": self.servers[1].url}
        self.receiver = ReceiverProcess({"SYNC_DATABASE_URL": self.db, "SYNC_WEBHOOK_SECRET": SECRET})
        self.instance: dg.DagsterInstance  # set by the fixture, inside instance_for_test
        self.cursor: str | None = None
        self.used: set[str] = set()  # conversations a test already sent events about

    @functools.cached_property
    def store(self) -> StateStore:
        return StateStore(self.db)

    def send(self, event: dict[str, Any]) -> tuple[int, Any]:
        return self.agentclara.emit_webhook(self.receiver.url, event, SECRET)

    def sensor_requests(self) -> tuple[list[dg.RunRequest], str | None]:
        """One sensor tick against the instance: its run requests, and its skip reason."""
        sensor = build_definitions(self.env).resolve_sensor_def(SENSOR)
        with dg.build_sensor_context(instance=self.instance, cursor=self.cursor,
                                     resources={"state": StateStoreResource(database_url=self.db)}) as context:
            result = sensor.evaluate_tick(context)  # (closed after: its resources' ephemeral instance too)
        self.cursor = result.cursor or self.cursor
        return list(result.run_requests or []), result.skip_message

    def run(self, request: dg.RunRequest, **env: str) -> dg.ExecuteInProcessResult:
        """webhook_sync with the request's run config and tags, in the instance (secrets via os.environ)."""
        environment = {**self.env, **env}
        saved = dict(os.environ)
        os.environ.update(environment)
        try:
            job = build_definitions(environment).resolve_job_def("webhook_sync")
            return job.execute_in_process(run_config=request.run_config, tags=request.tags,
                                          instance=self.instance, raise_on_error=False)
        finally:
            os.environ.clear()
            os.environ.update(saved)

    def sync(self, **env: str) -> dg.ExecuteInProcessResult:
        """Evaluate the sensor, expect one run request, execute it."""
        requests, skipped = self.sensor_requests()
        assert len(requests) == 1, skipped
        return self.run(requests[0], **env)

    def engagements(self) -> dict[str, list[dict[str, Any]]]:
        """HubSpot engagements (notes and communications) by activity key, each with its kind."""
        found: dict[str, list[dict[str, Any]]] = {}
        for kind in ("notes", "communications"):
            for record in self.hubspot.objects(kind):
                found.setdefault(record["properties"].get(KEY), []).append({**record, "kind": kind})
        return found

    def meetings(self) -> dict[str, list[dict[str, Any]]]:
        """HubSpot meetings by appointment key (`agentclara:<appointment id>`)."""
        found: dict[str, list[dict[str, Any]]] = {}
        for meeting in self.hubspot.meetings():
            found.setdefault(meeting["properties"].get(KEY), []).append(meeting)
        return found

    def booking(self, email: str, name: str, **times: str) -> dict[str, Any]:
        """A signed-to-be `appointment.booked` by a customer AgentClara just created (a new conversation)."""
        conversation_id = self.agentclara.add_conversation(
            channel="sms", customer_email=email, customer_name=name, message="Can I book a visit?",
            sender="customer")
        return self.agentclara.appointment_event(conversation_id, title="Whitening", **times)

    def rebooked(self, booking: Mapping[str, Any], start: str, end: str) -> dict[str, Any]:
        """The same appointment (its id) booked again at a new time, as a new event."""
        event = self.agentclara.appointment_event(booking["data"]["conversation_id"], title="Whitening",
                                                  start=start, end=end)
        event["data"]["id"] = booking["data"]["id"]
        return event

    def hubspot_contact_of(self, customer_id: str) -> str | None:
        """The HubSpot contact id the store holds for this AgentClara customer's person."""
        c = records.c
        with self.store.engine.connect() as conn:
            person = conn.execute(sa.select(c.person_key).where(
                c.source == "agentclara", c.stream == "contacts", c.record_id == customer_id)).scalar()
        row = self.store.sync_rows("hubspot", "contact", [person]).get(person) if person else None
        return row.crm_id if row else None

    def recorded(self, result: dg.ExecuteInProcessResult) -> dict[str, dict[str, Any]]:
        """The run's steps as the store's run history keeps them, by step."""
        return {row["step"]: row for row in self.store.run_history(result.run_id)}

    def statuses(self) -> dict[str, str]:
        return {row["event_id"]: row["status"] for row in inbox.events(self.store.engine)}

    def stop(self) -> None:
        self.receiver.stop()
        for server in self.servers:
            server.stop()
