"""Every source through Dagster: the four source emulators (AgentClara, Clairo,
AgentPro, Chatloom) -> state store -> HubSpot emulator, over real HTTP, with
daily_sync and historical_load executed in process.

Covers each new source's streams landing and their quarantine reasons,
details read again only for what changed, Clairo ignoring `offset` (the
listing is flagged truncated and its check fails), a Clairo plan without
API access, Chatloom through X-API-Key, AgentPro's tier from the
environment, and one source down (outage, bad key, bad setting) while the
others still reach HubSpot and the run ends failed naming that source.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterator, Mapping

import dagster as dg
import pytest

from connectors.agentpro import TIER_LIMITS
from pipelines.definitions import build_definitions
from pipelines.resources import SourceResource, build_resources
from pipelines.sources import BY_NAME, SOURCES
from pipelines.state import StateStore
from pipelines.steps.normalize import CONVERSATION_NORMALIZERS, NORMALIZERS
from sandbox.agentclara import DEFAULT_KEY as AGENTCLARA_KEY
from sandbox.agentclara import AgentClaraApp
from sandbox.agentpro import DEFAULT_KEY as AGENTPRO_KEY
from sandbox.agentpro import AgentProApp
from sandbox.chatloom import DEFAULT_KEY as CHATLOOM_KEY
from sandbox.chatloom import ChatloomApp
from sandbox.clairo import DEFAULT_KEY as CLAIRO_KEY
from sandbox.clairo import ClairoApp
from sandbox.http import App, Request, Response, ServerThread
from sandbox.hubspot import DEFAULT_TOKEN, HubSpotApp
from tests.pipeline_runs import failure_messages, run_daily, step_metadata

PARTITION = "2026-11-22"


class Outage(App):
    """A platform that is down: every request answers 500 (Retry-After: 0 keeps the test fast)."""

    def dispatch(self, request: Request) -> Response:
        return Response(500, {"success": False, "error": "upstream unavailable"}, {"Retry-After": "0"})


class Platforms:
    """The four source emulators and HubSpot on loopback, and the env pointing the project at them."""

    def __init__(self, tmp_path: Path, **apps: App) -> None:
        self.agentclara = apps.get("agentclara") or AgentClaraApp(contacts=60, conversations=30)
        self.clairo = apps.get("clairo") or ClairoApp(briefs=20, conversations=30)
        # Server-side limits lifted: the client's own pacing is not what these tests are about.
        self.agentpro = apps.get("agentpro") or AgentProApp(chatbots=2, conversations=40, per_second=None, per_minute=None)
        self.chatloom = apps.get("chatloom") or ChatloomApp(agents=4)  # one deleted: 3 listed
        self.hubspot = HubSpotApp()
        self.servers = [ServerThread(app).start() for app in
                        (self.agentclara, self.clairo, self.agentpro, self.chatloom, self.hubspot)]
        tmp_path.mkdir(parents=True, exist_ok=True)
        self.db = f"sqlite:///{tmp_path / 'state.db'}"
        urls = [server.url for server in self.servers]
        self.env = {
            "SYNC_DATABASE_URL": self.db,
            "AGENTCLARA_API_KEY": AGENTCLARA_KEY,
            "AGENTCLARA_BASE_URL": urls[0],
            "CLAIRO_API_KEY": CLAIRO_KEY,
            "CLAIRO_BASE_URL": urls[1] + ClairoApp.BASE_PATH,
            "AGENTPRO_API_KEY": AGENTPRO_KEY,
            "AGENTPRO_BASE_URL": urls[2],
            "CHATLOOM_API_KEY": CHATLOOM_KEY,
            "CHATLOOM_BASE_URL": urls[3],
            "HUBSPOT_ACCESS_TOKEN": DEFAULT_TOKEN,
            "HUBSPOT_BASE_URL": urls[4],
        }

    @property
    def store(self) -> StateStore:
        return StateStore(self.db)

    def raw_counts(self) -> dict[tuple[str, str], int]:
        import sqlalchemy as sa

        with self.store.engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT source, stream, COUNT(*) FROM raw_records GROUP BY 1, 2")).all()
        return {(source, stream): n for source, stream, n in rows}

    def stop(self) -> None:
        for server in self.servers:
            server.stop()


@pytest.fixture
def platforms(tmp_path: Path) -> Iterator[Platforms]:
    box = Platforms(tmp_path)
    yield box
    box.stop()


def check(result: dg.ExecuteInProcessResult, name: str) -> Any:
    """The evaluation of asset check `name` in this run."""
    (evaluation,) = [e.event_specific_data for e in result.all_events
                     if e.event_type_value == "ASSET_CHECK_EVALUATION" and e.event_specific_data.check_name == name]
    return evaluation


def history(box: Platforms, result: dg.ExecuteInProcessResult) -> dict[str, dict[str, Any]]:
    return {row["step"]: row for row in box.store.run_history(result.run_id)}


def run_historical(env: Mapping[str, str]) -> dg.ExecuteInProcessResult:
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        job = build_definitions(env).resolve_job_def("historical_load")
        return job.execute_in_process(instance=dg.DagsterInstance.ephemeral(), raise_on_error=False)
    finally:
        os.environ.clear()
        os.environ.update(saved)


def test_the_registry_gives_every_source_a_group_and_every_contact_stream_a_normalizer() -> None:
    assert [s.name for s in SOURCES] == ["agentclara", "clairo", "agentpro", "chatloom"]
    for source in SOURCES:
        if source.contact_stream:
            assert source.contact_stream in source.streams and (source.name, source.contact_stream) in NORMALIZERS
        if source.conversation_stream:  # its own raw stream: one output, one normalization mark per raw row
            assert source.conversation_stream in source.streams and source.conversation_stream != source.contact_stream
            assert (source.name, source.conversation_stream) in CONVERSATION_NORMALIZERS
    graph = build_definitions({}).resolve_asset_graph()
    groups = {key.to_user_string(): graph.get(key).group_name for key in graph.get_all_asset_keys()}
    assert groups["clairo_raw"] == groups["clairo_contacts"] == "clairo"
    assert groups["agentpro_raw"] == "agentpro" and groups["chatloom_raw"] == "chatloom"
    assert groups["sync_report"] == "crm"
    persons = graph.get(dg.AssetKey("persons"))
    assert {k.to_user_string() for k in persons.parent_keys} == {
        "agentclara_contacts", "clairo_contacts", "agentpro_contacts",
        "agentclara_conversations", "clairo_conversations", "agentpro_conversations",
        "chatloom_conversations"}  # its export stream is in the graph; read only with its flag
    report = graph.get(dg.AssetKey("sync_report"))
    assert {"hubspot_contacts", "salesforce_contacts", "hubspot_activities", "salesforce_activities",
            "chatloom_raw"} <= {k.to_user_string() for k in report.parent_keys}
    assert {k.to_user_string() for k in graph.get(dg.AssetKey("hubspot_activities")).parent_keys} == {
        "hubspot_contacts"}
    # historical_load: one load op per source with nothing ahead of it (parallel steps), then the merge.
    dependencies = {getattr(k, "name", k): v for k, v in
                    build_definitions({}).resolve_job_def("historical_load").dependencies.items()}
    loads = sorted(name for name in dependencies if name.startswith("load_") and name != "load_report")
    assert loads == ["load_agentclara", "load_agentpro", "load_chatloom", "load_clairo"]
    assert all(dependencies[name] == {} for name in loads)
    assert sorted(d.node for d in dependencies["merge_persons"]["sources_loaded"].get_node_dependencies()) == loads


def test_source_settings_come_from_the_environment() -> None:
    env = {"CLAIRO_API_KEY": "clr_x", "AGENTPRO_API_KEY": "ap_x", "AGENTPRO_TIER": "free",
           "CHATLOOM_API_KEY": "clf_x", "CHATLOOM_AUTH_HEADER": "X-API-Key"}
    resources = build_resources(env)
    for name in ("clairo", "agentpro", "chatloom"):
        assert isinstance(resources[name].api_key, dg.EnvVar) and resources[name].spec is BY_NAME[name].spec
    with resources["clairo"].model_copy(update={"api_key": "clr_x"}).client() as clairo:
        assert clairo.client.base_url == "https://clairo.tech/api/v1"
    with resources["agentpro"].model_copy(update={"api_key": "ap_x"}).client() as agentpro:
        assert agentpro.client.base_url == "https://agentpro.chat" and agentpro.tier == "free"
        assert agentpro.limiter.windows == TIER_LIMITS["free"]
    with resources["chatloom"].model_copy(update={"api_key": "clf_x"}).client() as chatloom:
        assert chatloom.client.base_url == "https://chatloom.app"
        assert chatloom.client._http.headers.get("x-api-key") == "clf_x"
    assert not any(build_resources({})[name].enabled for name in ("clairo", "agentpro", "chatloom"))
    for tier in ("free", "pro"):
        with SourceResource(source="agentpro", api_key="ap_x", options={"AGENTPRO_TIER": tier}).client() as client:
            assert client.limiter.windows == TIER_LIMITS[tier]
    with SourceResource(source="agentpro", api_key="ap_x").client() as client:
        assert client.tier == "pro"  # the spec's default


def test_every_source_lands_its_streams_and_only_changes_are_read_again(platforms: Platforms) -> None:
    first = run_daily(platforms.env, PARTITION)
    assert first.success, failure_messages(first)
    raw = platforms.raw_counts()
    assert raw[("agentclara", "contacts")] == 60
    assert raw[("clairo", "agents")] == 5 and raw[("clairo", "briefs")] == 20 and raw[("clairo", "conversations")] == 30
    assert raw[("agentpro", "chatbots")] == 2 and raw[("agentpro", "visitors")] == raw[("agentpro", "conversations")] == 40
    assert raw[("chatloom", "agents")] == 3

    store = platforms.store
    for source in ("clairo", "agentpro"):
        normalized = step_metadata(first, f"{source}_contacts")
        assert normalized["normalized"] == store.count("records", source=source, stream="contacts") > 0
        assert normalized["quarantined"] == store.count("quarantine", source=source) > 0
        assert normalized["quarantine reasons"] == store.quarantine_reasons(source)
        assert check(first, f"{source}_read_complete").passed
        assert check(first, f"{source}_quarantine_rate").passed
    clairo = step_metadata(first, "clairo_raw")
    assert (clairo["briefs read"], clairo["briefs details fetched"], clairo["complete"]) == (20, 20, True)
    assert clairo["conversations details fetched"] == 30
    assert clairo["rate limit (X-RateLimit-Limit)"] == 1000  # Clairo's headers reached the limiter
    brief = next(r for r in store.run_history(first.run_id) if r["step"] == "clairo_raw")
    assert brief["status"] == "success"

    # The brief's conversation stays linked to its lead, and both conversations carry messages.
    import sqlalchemy as sa
    with store.engine.connect() as conn:
        lead = conn.execute(sa.text("SELECT data FROM records WHERE source = 'clairo' LIMIT 1")).scalar_one()
        kept = conn.execute(sa.text("SELECT payload FROM raw_records WHERE source = 'clairo' AND stream = 'conversations' "
                                    "AND record_id = :id"), {"id": _json(lead)["extra"]["conversationId"]}).scalar_one()
        detail = conn.execute(sa.text("SELECT payload FROM raw_records WHERE source = 'agentpro' "
                                      "AND stream = 'conversations' LIMIT 1")).scalar_one()
    assert _json(kept)["messages"] and _json(detail)["messages"]

    chatloom = step_metadata(first, "chatloom_raw")
    assert chatloom["agents read"] == 3 and "allowedDomains" in chatloom["agents preview"]
    assert all(name in chatloom["agents preview"] for name in _agent_names(platforms.chatloom))
    assert len(platforms.hubspot.contacts()) == store.count("persons") > 60 - 10
    report = step_metadata(first, "sync_report")
    assert report["failed"] == [] and set(report["sources synced"]) == {s.name for s in SOURCES}

    # Next day: one Clairo conversation got a message, one AgentPro visitor came back.
    conversation_id = next(platforms.clairo.conversation_ids())
    platforms.clairo.add_message(conversation_id, "One more thing: do you integrate with Slack?")
    bot = platforms.agentpro.chatbots[0]["id"]
    platforms.agentpro.add_conversation(bot, visitor_email="Returning.Visitor@Example.com", visitor_name="Rita Turner")
    upserts = len(platforms.hubspot.upsert_requests)
    second = run_daily(platforms.env, PARTITION)
    assert second.success, failure_messages(second)
    clairo = step_metadata(second, "clairo_raw")
    assert (clairo["conversations details fetched"], clairo["new or changed"]) == (1, 1)
    assert "briefs details fetched" not in clairo  # nothing changed there: no detail read
    agentpro = step_metadata(second, "agentpro_raw")
    assert agentpro["conversations details fetched"] == 1
    assert step_metadata(second, "hubspot_contacts")["created"] == 1
    assert platforms.hubspot.find(email="returning.visitor@example.com") is not None
    assert len(platforms.hubspot.upsert_requests) == upserts + 1


def test_clairo_ignoring_offset_is_flagged_truncated_and_its_check_fails(tmp_path: Path) -> None:
    box = Platforms(tmp_path, clairo=ClairoApp(briefs=130, conversations=140, honour_offset=False))
    try:
        result = run_daily(box.env, PARTITION)
        assert result.success, failure_messages(result)  # the others synced; nothing dropped silently:
        read = step_metadata(result, "clairo_raw")
        assert read["complete"] is False and read["briefs read"] == 100
        assert set(read["truncated"]) == {"briefs", "conversations"} and "offset" in read["truncated"]["briefs"]
        evaluation = check(result, "clairo_read_complete")
        assert not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.ERROR
        assert "briefs" in evaluation.metadata["truncated"].value
        assert box.store.count("raw_records", source="clairo", stream="briefs") == 100
        report = step_metadata(result, "sync_report")
        assert "clairo" in report["incomplete listings"] and "INCOMPLETE" in report["summary"]
    finally:
        box.stop()


def test_chatloom_through_x_api_key(tmp_path: Path) -> None:
    seen: list[dict[str, str]] = []

    class Recording(ChatloomApp):
        def dispatch(self, request: Request) -> Response:
            seen.append(dict(request.headers))
            return super().dispatch(request)

    box = Platforms(tmp_path, chatloom=Recording(agents=4))
    try:
        result = run_daily({**box.env, "CHATLOOM_AUTH_HEADER": "x-api-key"}, PARTITION)
        assert result.success, failure_messages(result)
        assert seen and all(h.get("x-api-key") == CHATLOOM_KEY and "authorization" not in h for h in seen)
        # 4 seeded agents, one of them deleted: 3 listed, each with its domains.
        kept = box.store.raw_payloads("chatloom", "agents", box.chatloom.agent_ids())
        assert len(kept) == 3 and all(isinstance(agent["allowedDomains"], list) for agent in kept.values())
        assert check(result, "chatloom_read_complete").passed
    finally:
        box.stop()


@pytest.mark.parametrize("case, env, app, service, says", [
    ("AgentPro answering 500 always", {}, {"agentpro": Outage()}, "agentpro", "500"),
    ("wrong AgentPro key", {"AGENTPRO_API_KEY": "ap_wrong_key_0123"}, {}, "agentpro", "401"),
    ("Clairo plan without API access", {}, {"clairo": ClairoApp(plan="pro", briefs=5, conversations=5)}, "clairo",
     "Max plan"),
    ("Clairo key without clr_", {"CLAIRO_API_KEY": "sk_not_a_clairo_key"}, {}, "clairo", "clr_"),
    ("unknown AgentPro tier", {"AGENTPRO_TIER": "platinum"}, {}, "agentpro", "AGENTPRO_TIER"),
])
def test_one_source_down_the_others_still_reach_hubspot_and_the_run_fails_naming_it(
    tmp_path: Path, case: str, env: dict[str, str], app: dict[str, App], service: str, says: str
) -> None:
    box = Platforms(tmp_path, **app)
    try:
        result = run_daily({**box.env, **env}, PARTITION)
        assert not result.success, case
        (message,) = failure_messages(result)  # one step fails: sync_report, naming the source
        assert f"{service} (" in message and says in message
        assert all(value not in message for value in env.values() if "key" in value)
        (failed,) = [e.step_key for e in result.all_events if e.is_step_failure]
        assert failed == "sync_report"
        app_of = {"agentpro": box.agentpro, "clairo": box.clairo}[service]
        if says == "401":
            assert app_of.status_counts.get(401) == 1  # refused once, never retried
        if case.endswith("without clr_"):
            assert app_of.status_counts == {}  # the prefix is checked before any request

        read = step_metadata(result, BY_NAME[service].read_asset)
        assert read["status"] == "failed" and says in read["error"]
        evaluation = check(result, f"{service}_read_complete")
        assert not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.ERROR
        row = history(box, result)[BY_NAME[service].read_asset]
        assert row["status"] == "failed" and says in row["stats"]["error"]

        # Everyone else synced: the other sources' people are in HubSpot.
        store = box.store
        others = {s.name for s in SOURCES if s.contact_stream} - {service}
        persons = [p for chunk in store.iter_persons() for _, p in chunk]
        assert {src for p in persons for src in p["source_ids"]} == others
        assert len(box.hubspot.contacts()) == len(persons) > 0
        assert store.count("raw_records", source="chatloom") == 3
        report = step_metadata(result, "sync_report")  # materialized before the failure
        assert report["failed"] == [service]
    finally:
        box.stop()


def test_a_source_that_failed_today_keeps_its_people_from_earlier_runs(platforms: Platforms) -> None:
    assert run_daily(platforms.env, PARTITION).success
    before = platforms.store.count("persons")
    result = run_daily({**platforms.env, "CLAIRO_API_KEY": "clr_revoked_key_0123"}, PARTITION)
    assert not result.success
    assert platforms.store.count("persons") == before  # nothing was removed because Clairo did not answer
    assert step_metadata(result, "hubspot_contacts")["unchanged"] == before


def test_historical_load_reads_every_source_and_reports_the_one_that_failed(tmp_path: Path) -> None:
    box = Platforms(tmp_path, agentpro=Outage())
    try:
        result = run_historical(box.env)
        assert not result.success
        (failure,) = [e for e in result.all_events if e.is_step_failure]
        assert failure.step_key == "load_report" and "agentpro (" in failure.event_specific_data.error.message
        steps = history(box, result)
        assert steps["agentpro_raw"]["status"] == "failed"
        assert {steps[s]["status"] for s in ("agentclara_contacts_raw", "clairo_raw", "chatloom_raw")} == {"success"}
        assert steps["hubspot_contacts"]["stats"]["created"] == box.store.count("persons") > 0
        assert len(box.hubspot.contacts()) == box.store.count("persons")
    finally:
        box.stop()


def _json(value: Any) -> Any:
    import json

    return json.loads(value) if isinstance(value, str) else value


def _agent_names(app: ChatloomApp) -> list[str]:
    listed = app._list_agents(Request("GET", "/api/plugin/agents", {}, {"authorization": f"Bearer {CHATLOOM_KEY}"}, b""))
    return [agent["name"] for agent in listed.body["agents"]]
