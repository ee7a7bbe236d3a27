"""`make demo-webhook`: one signed AgentClara webhook through the receiver, the sensor and webhook_sync.

The AgentClara and HubSpot emulators on loopback, with `make demo`'s own
Dagster home and state under ./.crm_sync/demo (started afresh), then:

1. `daily_sync` for yesterday, so the people and their conversations are in HubSpot;
2. `python -m pipelines.webhooks` as a child process, with a webhook secret;
3. a new message on a synced conversation, sent by the AgentClara emulator as a
   signed `message.received`, and a signed `appointment.booked`;
4. one tick of `agentclara_webhook_sensor`, and the `webhook_sync` run it requests;
5. what happened: the inbox, the engagement the message updated in HubSpot, and
   the meeting the booking created there (on the customer's contact).
"""

from __future__ import annotations

import os
import sys
import time
import warnings
from contextlib import ExitStack
from datetime import datetime, timedelta, timezone
from typing import Any

from sandbox.agentclara import DEFAULT_KEY as AGENTCLARA_KEY
from sandbox.agentclara import AgentClaraApp
from sandbox.demo import prepare_home, run_daily_sync
from sandbox.http import ServerThread
from sandbox.hubspot import DEFAULT_TOKEN as HUBSPOT_TOKEN
from sandbox.hubspot import HubSpotApp

SECRET = "whsec_demo_secret"
KEY = "agent_sync_activity_key"


def synced_conversation() -> tuple[str, str]:
    """A conversation of the demo's AgentClara that has its HubSpot engagement: (id, engagement id)."""
    from pipelines.resources import StateStoreResource

    store = StateStoreResource().store()
    for chunk in store.iter_conversations():
        for row in chunk:
            key = f"agentclara:{row.record_id}"
            state = store.sync_rows("hubspot", "activity", [key]).get(key)
            if row.source == "agentclara" and state and state.crm_id:
                return row.record_id, state.crm_id
    raise SystemExit("no AgentClara conversation reached HubSpot in the daily run")


def sensor_run() -> tuple[Any, Any]:
    """One sensor tick against the demo's instance, then the run it requested."""
    import dagster as dg

    from pipelines.definitions import defs
    from pipelines.resources import StateStoreResource

    instance = dg.DagsterInstance.get()
    context = dg.build_sensor_context(instance=instance, resources={"state": StateStoreResource()})
    tick = defs.resolve_sensor_def("agentclara_webhook_sensor").evaluate_tick(context)
    if not tick.run_requests:
        raise SystemExit(f"the sensor requested no run: {tick.skip_message}")
    (request,) = tick.run_requests
    print(f"sensor: run key {request.run_key}, run config {request.run_config['ops']['webhook_land']['config']}")
    result = defs.resolve_job_def("webhook_sync").execute_in_process(
        run_config={**request.run_config, "loggers": {"console": {"config": {"log_level": "WARNING"}}}},
        tags=request.tags, instance=instance, raise_on_error=False)
    return request, result


def main() -> int:
    warnings.filterwarnings("ignore")
    prepare_home()
    yesterday = (datetime.now(timezone.utc) - timedelta(days=1)).date().isoformat()
    with ExitStack() as stack:
        agentclara, hubspot = AgentClaraApp(contacts=200, conversations=200), HubSpotApp()
        os.environ.update({
            "AGENTCLARA_API_KEY": AGENTCLARA_KEY, "AGENTCLARA_BASE_URL": stack.enter_context(ServerThread(agentclara)).url,
            "HUBSPOT_ACCESS_TOKEN": HUBSPOT_TOKEN, "HUBSPOT_BASE_URL": stack.enter_context(ServerThread(hubspot)).url,
        })
        daily, seconds = run_daily_sync(yesterday)
        print(f"daily_sync for {yesterday}: {'succeeded' if daily.success else 'FAILED'} in {seconds:.1f} s")
        from pipelines.webhooks.process import ReceiverProcess
        from pipelines.webhooks import inbox
        from pipelines.resources import StateStoreResource

        receiver = stack.enter_context(ReceiverProcess({"SYNC_WEBHOOK_SECRET": SECRET}))
        print(f"receiver: {receiver.url} (healthy)")
        conversation, engagement_id = synced_conversation()
        text = "Could we move my appointment to Friday at 3pm?"
        agentclara.add_message(conversation, text)
        posted = time.monotonic()
        booking = agentclara.appointment_event(conversation, title="Consultation")
        for event in (agentclara.webhook_event("message.received", conversation), booking):
            status, body = agentclara.emit_webhook(receiver.url, event, SECRET)
            print(f"POST {event['event']} {event['id']}: {status} {body}")
        request, result = sensor_run()
        print(f"webhook_sync: {'succeeded' if result.success else 'FAILED'} "
              f"({time.monotonic() - posted:.1f} s after the POST; in-process, no daemon)")
        for row in inbox.events(StateStoreResource().store().engine):
            print(f"  inbox #{row['seq']} {row['event_id']} {row['event_type']}: {row['status']}")
        for kind in ("notes", "communications"):
            for record in hubspot.objects(kind):
                if record["properties"].get(KEY) == f"agentclara:{conversation}":
                    body = record["properties"].get("hs_note_body") or record["properties"].get("hs_communication_body")
                    print(f"HubSpot {kind[:-1]} {record['id']} (was {engagement_id}) on contact "
                          f"{hubspot.associated(kind, record['id'], 'contacts')}: new message in it: {text in body}")
        show_meeting(hubspot, booking)
    return 0 if result.success else 1


def show_meeting(hubspot: HubSpotApp, booking: dict[str, Any]) -> None:
    """Print the HubSpot meeting the booking became (found by its key, as the sync keys it), or that none did."""
    key = f"agentclara:{booking['data']['id']}"
    meetings = [m for m in hubspot.meetings() if m["properties"].get(KEY) == key]
    if not meetings:
        print(f"HubSpot meeting for {key}: NONE")
    for meeting in meetings:
        props = meeting["properties"]
        print(f"HubSpot meeting {meeting['id']} ({key}) on contact "
              f"{hubspot.associated('meetings', meeting['id'], 'contacts')}: {props.get('hs_meeting_title')!r}, "
              f"{props.get('hs_meeting_start_time')} to {props.get('hs_meeting_end_time')}, "
              f"{props.get('hs_meeting_outcome')}")


if __name__ == "__main__":
    sys.exit(main())
