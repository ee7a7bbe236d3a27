"""SYNC_MAPPING_FILE through the real `daily_sync` job: AgentClara emulator -> state store -> HubSpot emulator.

Covers what the asset layer adds: a bad file fails `hubspot_contacts`
before its first CRM write, with every problem in the step's failure and
the run's summary; a dry run shows per person what would change, old value
to new (if_empty hold-backs included), in the asset metadata and in the
summary, and writes nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from pipelines.summary import summarize
from sandbox.agentclara import AgentClaraApp
from sandbox.http import ServerThread
from sandbox.hubspot import DEFAULT_TOKEN, HubSpotApp
from pipelines.state import StateStore
from tests.pipeline_runs import failure_messages, run_daily, step_metadata

PARTITION = "2026-11-22"


@pytest.fixture
def env(tmp_path: Path) -> Iterator[tuple[dict[str, str], HubSpotApp]]:
    agentclara, hubspot = AgentClaraApp(contacts=40, conversations=10), HubSpotApp()
    servers = [ServerThread(agentclara).start(), ServerThread(hubspot).start()]
    yield {
        "SYNC_DATABASE_URL": f"sqlite:///{tmp_path / 'state.db'}",
        "AGENTCLARA_API_KEY": "ac_sandbox_key", "AGENTCLARA_BASE_URL": servers[0].url,
        "HUBSPOT_ACCESS_TOKEN": DEFAULT_TOKEN, "HUBSPOT_BASE_URL": servers[1].url,
    }, hubspot
    for server in servers:
        server.stop()


def test_a_bad_mapping_file_fails_the_push_before_any_write(env, tmp_path: Path) -> None:
    variables, hubspot = env
    bad = tmp_path / "mapping.yaml"
    bad.write_text("hubspot:\n  mode: sometimes\n  fields:\n    firstname: {from: nickname}\n"
                   "    lifecyclestage: {value: prospect}\n")
    result = run_daily({**variables, "SYNC_MAPPING_FILE": str(bad)}, PARTITION)
    assert not result.success
    message = "\n".join(failure_messages(result))
    assert "3 problems; nothing was written" in message
    assert f"{bad}:2: hubspot.mode" in message and f"{bad}:4: hubspot.fields.firstname.from" in message
    assert f"{bad}:5: hubspot.fields.lifecyclestage: 'prospect' is not one of its options" in message
    assert hubspot.upsert_requests == [] and [r for r in hubspot.request_log if r[0] != "GET"] == []
    line = {line.name: line for line in summarize(StateStore(variables["SYNC_DATABASE_URL"]), result.run_id).lines}
    assert line["hubspot"].status == "failed" and "firstname.from" in line["hubspot"].error


def test_a_dry_run_previews_what_the_mapping_would_change(env, tmp_path: Path) -> None:
    variables, hubspot = env
    assert run_daily(variables, PARTITION).success
    edited = next(c for c in hubspot.contacts() if c["properties"].get("firstname"))
    hubspot.edit_contact(edited["id"], {"firstname": "Typed-by-a-rep"})
    path = tmp_path / "mapping.yaml"
    path.write_text("hubspot:\n  fields:\n    firstname: {from: first_name, write: if_empty}\n"
                    "    lifecyclestage: {value: lead}\n")
    upserts = len(hubspot.upsert_requests)

    result = run_daily({**variables, "SYNC_MAPPING_FILE": str(path), "SYNC_DRY_RUN": "1"}, PARTITION)

    assert result.success, failure_messages(result)
    assert len(hubspot.upsert_requests) == upserts and "lifecyclestage" not in edited["properties"]
    meta = step_metadata(result, "hubspot_contacts")
    persons = len(hubspot.contacts())
    assert meta["would be updated"] == persons and meta["persons with changes"] == persons
    table = meta["changes (preview)"]  # the asset's markdown table
    assert "| person | property | old | new | note |" in table and "| lifecyclestage |  | lead |" in table
    assert "Typed-by-a-rep | " in table and "held back (if_empty)" in table
    summary = "\n".join(summarize(StateStore(variables["SYNC_DATABASE_URL"]), result.run_id).text())
    assert f"would change {persons} persons, for example:" in summary
    assert "lifecyclestage '' -> 'lead'" in summary
