"""HubSpotSink round trips: the real hubspot-api-client, over real HTTP, to the HubSpot emulator.

Covers prepare (group and properties, once, nothing else touched), contact
upserts keyed by email or person key, per-record failures (207) and
whole-batch 400s, de-duplication, batching, retries through injected faults
(every record applied exactly once), auth and quota errors, dry runs, and
engagements that are never duplicated by a rerun or a lost answer.
"""

from __future__ import annotations

from typing import Any, Iterator

import pytest
from hubspot import HubSpot
from hubspot.crm.contacts.models import (
    BatchInputSimplePublicObjectBatchInputUpsert,
    Filter,
    FilterGroup,
    PublicObjectSearchRequest,
    SimplePublicObjectBatchInputUpsert,
)
from hubspot.crm.properties.models import PropertyCreate

from connectors.hubspot import mapping
from connectors.errors import AuthError, ConfigError, PartialProgress, QuotaExhausted, RetriesExhausted
from connectors.hubspot import HubSpotSink, describe_error
from connectors.ratelimit import RateLimiter
from sandbox.http import ServerThread
from sandbox.hubspot import DEFAULT_TOKEN, HubSpotApp


class _CurrentApp:
    """What the module's one server serves: the current test's HubSpotApp.

    Stopping a ServerThread waits out its 0.5 s poll, so one server is shared by
    the module and every test gets a fresh emulator behind it.
    """

    target: HubSpotApp

    def __getattr__(self, name: str) -> Any:
        return getattr(self.target, name)


@pytest.fixture(scope="module")
def _shared() -> Iterator[tuple[_CurrentApp, ServerThread]]:
    current = _CurrentApp()
    with ServerThread(current) as running:  # type: ignore[arg-type]
        yield current, running


@pytest.fixture
def app(_shared: tuple[_CurrentApp, ServerThread]) -> HubSpotApp:
    _shared[0].target = HubSpotApp(retry_after_s=0)  # Retry-After: 0: retries wait only the tiny backoff
    return _shared[0].target


@pytest.fixture
def server(app: HubSpotApp, _shared: tuple[_CurrentApp, ServerThread]) -> ServerThread:
    return _shared[1]


def make_sink(server: ServerThread, **kwargs: Any) -> HubSpotSink:
    kwargs.setdefault("backoff_factor", 0.001)
    return HubSpotSink(kwargs.pop("token", DEFAULT_TOKEN), server.url, **kwargs)


def person(i: int, **extra: Any) -> dict[str, Any]:
    return {"person_key": f"email:p{i}@example.com", "email": f"p{i}@example.com",
            "first_name": "Pat", "last_name": f"Number{i}", "phone": f"+1555000{i:04d}",
            "company": None, "tags": ["vip", "lead"], "source_ids": {"agentclara": [f"cust_{i}"]},
            **extra}


def phone_person(number: str, **extra: Any) -> dict[str, Any]:
    return {"person_key": f"phone:{number}", "email": None, "phone": number,
            "full_name": "Ann Marie Lee", "source_ids": {"clairo": ["cm1"]}, **extra}


def posts(app: HubSpotApp, path: str = "") -> list[tuple[str, str, int]]:
    return app.requests("POST", path)


# ------------------------------------------------------------------ mapping


class TestMapping:
    def test_email_person(self) -> None:
        props = mapping.properties(person(1, email="P1@Example.com", tags=["b", "a", "a"]))
        assert props == {
            "email": "p1@example.com", "firstname": "Pat", "lastname": "Number1",
            "phone": "+15550000001", "agent_sync_sources": "agentclara:cust_1", "agent_sync_tags": "a;b",
        }

    def test_person_without_email_gets_its_key_and_split_name(self) -> None:
        props = mapping.properties(phone_person("+15551234567"))
        assert props["agent_sync_person_key"] == "phone:+15551234567"
        assert (props["firstname"], props["lastname"]) == ("Ann", "Marie Lee")
        assert "email" not in props
        assert mapping.upsert_key(phone_person("+15551234567"), props) == (
            "agent_sync_person_key", "phone:+15551234567")

    def test_deterministic_whatever_the_input_order(self) -> None:
        a = person(2, source_ids={"clairo": ["x"], "agentclara": ["b", "a"]}, tags=["z", "y"])
        b = person(2, source_ids={"agentclara": ["a", "b"], "clairo": ["x"]}, tags=["y", "z"])
        assert list(mapping.properties(a).items()) == list(mapping.properties(b).items())
        assert mapping.properties(a)["agent_sync_sources"] == "agentclara:a;agentclara:b;clairo:x"

    def test_describe_error_unwraps_property_validation(self) -> None:
        error = {"category": "VALIDATION_ERROR", "message": 'Property values were not valid: [{"isValid":false,'
                 '"message":"Email address x@ is invalid","error":"INVALID_EMAIL","name":"email"}]'}
        assert describe_error(error) == ("Email address x@ is invalid", "INVALID_EMAIL")
        assert describe_error({}) == ("error", "ERROR")


# ------------------------------------------------------------------ prepare


def test_prepare_creates_group_and_properties_once_and_touches_nothing_else(
        app: HubSpotApp, server: ServerThread) -> None:
    before = {name: app.property(name) for name in app.property_names()}
    groups_before = app.group_names()
    make_sink(server).prepare()
    assert app.group_names() == groups_before | {"agent_sync"}
    created = app.property_names() - set(before)
    assert created == {"agent_sync_person_key", "agent_sync_sources", "agent_sync_tags",
                       "agent_sync_last_conversation_at", "agent_sync_conversation_count", "agent_sync_channels"}
    assert app.property("agent_sync_person_key")["hasUniqueValue"] is True
    assert (app.property("agent_sync_last_conversation_at")["type"],
            app.property("agent_sync_conversation_count")["type"]) == ("datetime", "number")
    assert all(app.property(name)["groupName"] == "agent_sync" for name in created)
    assert {name: app.property(name) for name in before} == before  # nothing else changed
    assert len(posts(app)) == 7  # one group + six properties

    rerun = make_sink(server)
    rerun.prepare()
    rerun.prepare()
    assert len(posts(app)) == 7  # a rerun only reads
    assert rerun.missing == []
    assert len(app.requests("GET")) == 4  # two reads per sink, none for a second prepare() call


def test_prepare_refuses_a_conflicting_property(app: HubSpotApp, server: ServerThread) -> None:
    client = HubSpot(access_token=DEFAULT_TOKEN, host=server.url)
    client.crm.properties.core_api.create("contacts", PropertyCreate(
        name="agent_sync_person_key", label="x", type="string", field_type="text",
        group_name="contactinformation", has_unique_value=False))
    with pytest.raises(ConfigError, match="agent_sync_person_key"):
        make_sink(server).prepare()


# ------------------------------------------------------------------ upserts


def test_first_upsert_creates_second_updates(app: HubSpotApp, server: ServerThread) -> None:
    sink = make_sink(server)
    sink.prepare()
    people = [person(i) for i in range(3)]
    first = {o.key: o for o in sink.upsert(people)}
    assert all(o.ok and o.created and o.crm_id for o in first.values())
    contact = app.find(email="p1@example.com")
    assert contact["properties"]["lastname"] == "Number1"
    assert contact["properties"]["agent_sync_sources"] == "agentclara:cust_1"

    people[1]["last_name"] = "Renamed"
    second = {o.key: o for o in sink.upsert(people)}
    assert all(o.ok and not o.created for o in second.values())
    assert {k: o.crm_id for k, o in second.items()} == {k: o.crm_id for k, o in first.items()}
    assert len(app.contacts()) == 3
    assert app.find(email="p1@example.com")["properties"]["lastname"] == "Renamed"


def test_persons_without_email_are_keyed_by_person_key(app: HubSpotApp, server: ServerThread) -> None:
    sink = make_sink(server)
    sink.prepare()
    [first] = sink.upsert([phone_person("+15551234567")])
    [again] = sink.upsert([phone_person("+15551234567", company="Acme")])
    assert first.ok and first.created and again.ok and not again.created
    assert again.crm_id == first.crm_id
    contact = app.find(agent_sync_person_key="phone:+15551234567")
    assert contact["id"] == first.crm_id and contact["properties"]["company"] == "Acme"
    assert app.upserted == {"phone:+15551234567": 2}


def test_partial_failure_is_recorded_per_record(app: HubSpotApp, server: ServerThread) -> None:
    app.reject_keys["p3@example.com"] = "This contact is blocked in the sandbox"
    sink = make_sink(server)
    sink.prepare()
    people = [person(i) for i in range(5)] + [person(9, email="not-an-email", person_key="email:not-an-email")]
    outcomes = {o.key: o for o in sink.upsert(people)}
    assert len(posts(app, "batch/upsert")) == 1  # one 207, no retry, no split
    assert app.status_counts.get(207) == 1
    blocked, invalid = outcomes["email:p3@example.com"], outcomes["email:not-an-email"]
    assert not blocked.ok and blocked.error_code == "REJECTED" and "blocked" in blocked.error
    assert not invalid.ok and invalid.error_code == "INVALID_EMAIL" and invalid.permanent
    assert "not-an-email" in invalid.error
    good = [o for k, o in outcomes.items() if k not in ("email:p3@example.com", "email:not-an-email")]
    assert len(good) == 4 and all(o.ok and o.crm_id for o in good)
    assert {c["properties"]["email"] for c in app.contacts()} == {
        f"p{i}@example.com" for i in (0, 1, 2, 4)}


def test_duplicates_in_a_batch_are_sent_once(app: HubSpotApp, server: ServerThread) -> None:
    sink = make_sink(server)
    sink.prepare()
    people = [person(1), person(2), person(1, last_name="Later"),
              person(2, person_key="email:P2@example.com", email="P2@Example.com"),
              phone_person("+15550001111"), phone_person("+15550001111")]
    outcomes = sink.upsert(people)
    assert app.upsert_requests == [3]
    assert sorted(o.key for o in outcomes) == sorted(
        ["email:p1@example.com", "email:p2@example.com", "email:P2@example.com", "phone:+15550001111"])
    by_key = {o.key: o for o in outcomes}
    assert by_key["email:p2@example.com"].crm_id == by_key["email:P2@example.com"].crm_id
    assert all(o.ok for o in outcomes)
    assert app.find(email="p1@example.com")["properties"]["lastname"] == "Later"  # the later person wins


def test_250_persons_go_in_batches_of_100(app: HubSpotApp, server: ServerThread) -> None:
    sink = make_sink(server)
    sink.prepare()
    outcomes = sink.upsert([person(i) for i in range(250)])
    assert app.upsert_requests == [100, 100, 50]
    assert len(outcomes) == 250 and all(o.ok and o.created for o in outcomes)
    assert len(app.contacts()) == 250


def test_a_whole_batch_400_is_split_until_the_culprits_stand_alone(
        app: HubSpotApp, server: ServerThread) -> None:
    sink = make_sink(server)
    sink.prepare()
    # Someone merged records in HubSpot: one contact holds both this email and this person key,
    # so the two inputs resolve to the same record and HubSpot rejects the whole batch.
    merged = app.seed_contact({"email": "p5@example.com", "agent_sync_person_key": "phone:+15559990000"})
    people = [person(i) for i in range(10)] + [phone_person("+15559990000")]
    outcomes = {o.key: o for o in sink.upsert(people)}
    assert app.status_counts.get(400, 0) >= 1
    assert all(o.ok for o in outcomes.values())
    assert outcomes["email:p5@example.com"].crm_id == merged
    assert outcomes["phone:+15559990000"].crm_id == merged
    assert set(app.upserted.values()) == {1} and len(app.upserted) == 11
    assert len(app.upsert_requests) <= 1 + 2 * 4  # a bisection, not one request per record


@pytest.mark.parametrize("fault", ["fail_next", "drop_next", "throttle_next"])
@pytest.mark.parametrize("count", [1, 3])
def test_transient_faults_end_with_every_record_upserted_exactly_once(
        app: HubSpotApp, server: ServerThread, fault: str, count: int) -> None:
    sink = make_sink(server)
    sink.prepare()
    setattr(app.faults, fault, count)
    outcomes = sink.upsert([person(i) for i in range(150)])
    assert len(outcomes) == 150 and all(o.ok for o in outcomes)
    assert len(app.upserted) == 150 and set(app.upserted.values()) == {1}
    faulty = {"fail_next": 500, "drop_next": 0, "throttle_next": 429}[fault]
    assert app.status_counts.get(faulty) == count


def test_injected_500_has_hubspot_shape(app: HubSpotApp, server: ServerThread) -> None:
    app.faults.fail_next = 10
    sink = make_sink(server, max_retries=2)
    with pytest.raises(PartialProgress) as caught:
        sink.upsert([person(1)])
    assert isinstance(caught.value.cause, RetriesExhausted)
    assert "HTTP 500" in str(caught.value) and "Injected server error" in str(caught.value)
    assert caught.value.outcomes == [] and caught.value.pending_keys == ["email:p1@example.com"]
    assert len(posts(app)) == 3  # the first attempt and two retries


def test_wrong_token_fails_fast_without_showing_the_token(app: HubSpotApp, server: ServerThread) -> None:
    secret = "pat-na1-0123-wrong-secret"
    sink = make_sink(server, token=secret)
    with pytest.raises(AuthError) as caught:
        sink.upsert([person(1)])
    assert caught.value.status == 401
    assert "HubSpot" in str(caught.value) and "401" in str(caught.value)
    assert secret not in str(caught.value) and secret not in repr(caught.value.args)
    assert len(app.requests()) == 1
    with pytest.raises(AuthError):
        make_sink(server, token=secret).prepare()


def test_daily_limit_stops_cleanly_keeping_progress(app: HubSpotApp, server: ServerThread) -> None:
    sink = make_sink(server, batch_size=50)
    sink.prepare()
    app.daily_limit = app.daily_used + 1  # room for exactly one more request
    with pytest.raises(PartialProgress) as caught:
        sink.upsert([person(i) for i in range(120)])
    assert isinstance(caught.value.cause, QuotaExhausted) and "daily" in str(caught.value)
    assert len(caught.value.outcomes) == 50 and all(o.ok for o in caught.value.outcomes)
    assert len(caught.value.pending_keys) == 70
    # The answer to the first batch said no daily call was left: stopped before HubSpot refused
    # (a daily 429 is still not retried: tests/test_crm_pacing.py).
    assert app.status_counts.get(429, 0) == 0


def test_prepare_without_create_lists_what_is_missing_and_writes_nothing(app: HubSpotApp,
                                                                         server: ServerThread) -> None:
    """A dry run's prepare (the sync step passes create=False): the missing properties named, none created."""
    sink = make_sink(server)
    sink.prepare(create=False)
    assert "contacts property agent_sync_person_key" in sink.missing
    assert posts(app) == [] and "agent_sync_person_key" not in app.property_names()
    sink.prepare()  # a later real run still creates them: a listing-only prepare is not remembered as done
    assert "agent_sync_person_key" in app.property_names()


def test_a_dry_run_push_writes_nothing_whatever_the_sink(app: HubSpotApp, server: ServerThread,
                                                         tmp_path: Any) -> None:
    """Dry run is decided by the sync step alone: a sink built for real writes still sends nothing."""
    from pipelines.state import StateStore
    from pipelines.steps.push import push_persons

    store = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
    store.save_persons([(p["person_key"], p) for p in [person(i) for i in range(5)]])
    stats = push_persons(store, make_sink(server), dry_run=True)
    assert stats.created == 5 and stats.as_metadata()["would be created"] == 5
    assert posts(app) == [] and app.contacts() == [] and "agent_sync_person_key" not in app.property_names()
    assert store.sync_rows("hubspot", "contact", [f"email:p{i}@example.com" for i in range(5)]) == {}


def test_every_attempt_retries_included_takes_a_limiter_slot(app: HubSpotApp, server: ServerThread) -> None:
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:  # a fake clock: the limiter's waits cost no real time
        slept.append(seconds)
        now[0] += seconds

    limiter = RateLimiter([(3, 10.0)], clock=lambda: now[0], sleep=sleep)
    sink = make_sink(server, limiter=limiter, batch_size=10)
    sink.prepare()  # 2 reads + 7 creates (the group and six properties)
    app.faults.fail_next = 2
    assert all(o.ok for o in sink.upsert([person(i) for i in range(30)]))
    assert limiter.granted == len(app.requests()) == 9 + 3 + 2
    assert sum(slept) >= 40.0  # 14 requests at 3 per 10 s need at least four more windows


def test_tls_is_verified_and_a_private_ca_comes_in_the_standard_way(monkeypatch: pytest.MonkeyPatch) -> None:
    from sandbox import tls

    app = HubSpotApp()
    with ServerThread(app, ssl_context=tls.server_context()) as https:
        assert https.url.startswith("https://")
        monkeypatch.delenv("SSL_CERT_FILE", raising=False)
        monkeypatch.delenv("SSL_CERT_DIR", raising=False)
        with pytest.raises(ConfigError, match="TLS"):
            make_sink(https).prepare()  # an unknown CA is refused, and not retried
        assert app.requests() == []
        make_sink(https, ca_cert=tls.ca_path()).prepare()
        monkeypatch.setenv("SSL_CERT_FILE", tls.ca_path())
        make_sink(https).upsert([person(1)])
    assert app.find(email="p1@example.com") is not None


# --------------------------------------------------------------- emulator shapes


def test_emulator_answers_in_hubspot_shapes(app: HubSpotApp, server: ServerThread) -> None:
    client = HubSpot(access_token=DEFAULT_TOKEN, host=server.url)
    app.reject_keys["bad@example.com"] = "nope"
    batch = BatchInputSimplePublicObjectBatchInputUpsert(inputs=[
        SimplePublicObjectBatchInputUpsert(id="ok@example.com", id_property="email", object_write_trace_id="a",
                                           properties={"firstname": "Ok"}),
        SimplePublicObjectBatchInputUpsert(id="bad@example.com", id_property="email", object_write_trace_id="b",
                                           properties={"firstname": "Bad"}),
    ])
    response, status, headers = client.crm.contacts.batch_api.upsert_with_http_info(batch)
    assert status == 207 and response.num_errors == 1
    assert response.errors[0].context == {"objectWriteTraceId": ["b"]}
    assert response.results[0].new is True and response.results[0].object_write_trace_id == "a"
    for name in ("Daily", "Daily-Remaining", "Secondly", "Secondly-Remaining", "Max", "Remaining",
                 "Interval-Milliseconds"):
        assert f"X-HubSpot-RateLimit-{name}" in headers
    contact = client.crm.contacts.basic_api.get_by_id(response.results[0].id, properties=["firstname"])
    assert contact.properties["firstname"] == "Ok"
    page = client.crm.contacts.basic_api.get_page(limit=10)
    assert [c.id for c in page.results] == [contact.id]
    assert client.crm.properties.groups_api.get_all("contacts").results

    found = client.crm.contacts.search_api.do_search(PublicObjectSearchRequest(filter_groups=[
        FilterGroup(filters=[Filter(property_name="email", operator="EQ", value="OK@example.com")])]))
    assert found.total == 1 and found.results[0].id == contact.id

    # Without trace ids, one invalid input rejects the whole batch; so do structural errors, always.
    def upsert_input(record_id: str, id_property: str = "email") -> SimplePublicObjectBatchInputUpsert:
        return SimplePublicObjectBatchInputUpsert(id=record_id, id_property=id_property, properties={},
                                                  object_write_trace_id=record_id)

    for inputs, expected in (
        ([SimplePublicObjectBatchInputUpsert(id="x", id_property="email", properties={})], "invalid"),
        ([upsert_input("x", "firstname")], "non-unique"),
        ([upsert_input("a@example.com"), upsert_input("A@example.com")], "Duplicate IDs"),
        ([upsert_input(f"n{i}@example.com") for i in range(101)], "exceeds the maximum"),
    ):
        with pytest.raises(Exception) as caught:
            client.crm.contacts.batch_api.upsert(BatchInputSimplePublicObjectBatchInputUpsert(inputs=inputs))
        assert caught.value.status == 400 and expected in caught.value.body


def test_emulator_rate_limit_and_auth_bodies(app: HubSpotApp, server: ServerThread) -> None:
    import json

    import urllib3

    app.per_10s = 2
    http = urllib3.PoolManager(retries=False)
    headers = {"Authorization": f"Bearer {DEFAULT_TOKEN}"}
    statuses = [http.request("GET", f"{server.url}/crm/v3/objects/contacts", headers=headers) for _ in range(3)]
    assert [r.status for r in statuses] == [200, 200, 429]
    body = json.loads(statuses[2].data)
    assert body["policyName"] == "TEN_SECONDLY_ROLLING" and body["errorType"] == "RATE_LIMIT"
    assert body["message"] == "You have reached your ten_secondly_rolling limit."
    assert int(statuses[2].headers["Retry-After"]) in range(0, 11)
    assert statuses[1].headers["X-HubSpot-RateLimit-Remaining"] == "0"
    denied = http.request("GET", f"{server.url}/crm/v3/objects/contacts", headers={"Authorization": "Bearer no"})
    assert denied.status == 401 and json.loads(denied.data)["category"] == "INVALID_AUTHENTICATION"


# --------------------------------------------------------------- engagements


def conversation(i: int, contact_id: str, channel: str = "webchat", **extra: Any) -> dict[str, Any]:
    return {"source": "agentclara", "source_id": f"conv_{i}", "contact_id": contact_id, "channel": channel,
            "status": "closed", "subject": f"Question {i}", "started_at": "2024-03-15T10:30:00+00:00",
            "messages": [{"id": "m1", "role": "customer", "content": "Hi <there>",
                          "sent_at": "2024-03-15T10:30:00+00:00"}], **extra}


@pytest.fixture
def contact_ids(app: HubSpotApp, server: ServerThread) -> list[str]:
    sink = make_sink(server)
    sink.prepare()
    return [o.crm_id for o in sink.upsert([person(i) for i in range(3)])]


def test_activities_are_created_once_then_updated(
        app: HubSpotApp, server: ServerThread, contact_ids: list[str]) -> None:
    sink = make_sink(server)
    convs = [conversation(1, contact_ids[0]), conversation(2, contact_ids[1], channel="sms")]
    first = {o.key: o for o in sink.upsert_activities(convs)}
    assert all(o.ok and o.created for o in first.values())
    note, = app.notes()
    comm, = app.communications()
    assert note["properties"]["agent_sync_activity_key"] == "agentclara:conv_1"
    assert "Hi &lt;there&gt;" in note["properties"]["hs_note_body"]
    assert comm["properties"]["hs_communication_channel_type"] == "SMS"
    assert app.associated("notes", note["id"], "contacts") == [contact_ids[0]]
    assert app.associated("contacts", contact_ids[1], "communications") == [comm["id"]]

    convs[0]["subject"] = "Changed"
    stored = [{**c, "crm_id": first[f"agentclara:{c['source_id']}"].crm_id} for c in convs]
    second = {o.key: o for o in sink.upsert_activities(stored)}
    assert all(o.ok and not o.created for o in second.values())
    assert len(app.notes()) == 1 and len(app.communications()) == 1
    assert "Changed" in app.notes()[0]["properties"]["hs_note_body"]


def test_a_rerun_without_stored_ids_finds_instead_of_duplicating(
        app: HubSpotApp, server: ServerThread, contact_ids: list[str]) -> None:
    convs = [conversation(i, contact_ids[i % 3]) for i in range(5)]
    created = {o.key: o.crm_id for o in make_sink(server).upsert_activities(convs)}
    # The state store lost the ids (or the run died before saving them): a new run must not duplicate.
    again = {o.key: o for o in make_sink(server).upsert_activities(convs)}
    assert {k: o.crm_id for k, o in again.items()} == created
    assert all(o.ok and not o.created for o in again.values())
    assert len(app.notes()) == 5


def test_a_create_whose_answer_is_lost_is_not_repeated(
        app: HubSpotApp, server: ServerThread, contact_ids: list[str]) -> None:
    app.fail_after_create_next = 1  # the notes are written, then the gateway answers 502
    outcomes = make_sink(server).upsert_activities([conversation(i, contact_ids[0]) for i in range(3)])
    assert all(o.ok for o in outcomes)
    assert len(app.notes()) == 3
    assert len(posts(app, "/notes/batch/create")) == 1


def test_an_activity_deleted_in_hubspot_is_created_again(
        app: HubSpotApp, server: ServerThread, contact_ids: list[str]) -> None:
    [outcome] = make_sink(server).upsert_activities([conversation(1, contact_ids[0], crm_id="999999")])
    assert outcome.ok and outcome.created and outcome.crm_id != "999999"
    assert len(app.notes()) == 1


def hubspot_client(server: ServerThread) -> HubSpot:
    """The vendor client, as a person's script (or HubSpot's UI) would act on the portal."""
    return HubSpot(access_token=DEFAULT_TOKEN, host=server.url)


@pytest.mark.parametrize("reply", ["400", "207"])
def test_an_engagement_on_a_deleted_contact_fails_alone_as_contact_gone(
        app: HubSpotApp, server: ServerThread, contact_ids: list[str], reply: str) -> None:
    app.missing_association_reply = reply
    hubspot_client(server).crm.contacts.basic_api.archive(contact_ids[1])  # deleted in HubSpot
    convs = [conversation(i, contact_ids[i % 3]) for i in range(9)]
    outcomes = {o.key: o for o in make_sink(server).upsert_activities(convs)}
    gone = {k for k, o in outcomes.items() if not o.ok}
    assert gone == {f"agentclara:conv_{i}" for i in (1, 4, 7)}
    assert {outcomes[k].error_code for k in gone} == {"CONTACT_GONE"}
    assert not any(outcomes[k].permanent for k in gone)
    assert all(o.ok and o.created for k, o in outcomes.items() if k not in gone)
    assert len(app.notes()) == 6
    creates = posts(app, "/notes/batch/create")
    # A 400 names the missing contact: its inputs are picked out, the rest is sent again at once.
    assert len(creates) == (2 if reply == "400" else 1)


def test_an_engagement_on_a_merged_away_contact_lands_on_the_survivor_after_a_resync(
        app: HubSpotApp, server: ServerThread, contact_ids: list[str]) -> None:
    from hubspot.crm.contacts.models import PublicMergeInput

    survivor = hubspot_client(server).crm.contacts.basic_api.merge(
        PublicMergeInput(primary_object_id=contact_ids[0], object_id_to_merge=contact_ids[1]))
    assert survivor.id not in contact_ids  # HubSpot gives the merged record a new id
    sink = make_sink(server)
    [outcome] = sink.upsert_activities([conversation(1, contact_ids[1])])
    assert outcome.error_code == "CONTACT_GONE"
    # What the activity step makes happen next: the contact is upserted again, by email.
    [again] = sink.upsert([person(1)])
    assert again.ok and again.crm_id == survivor.id and not again.created
    assert app.find(email="p0@example.com")["id"] == survivor.id  # the primary's email stays primary
    [outcome] = sink.upsert_activities([conversation(1, again.crm_id)])
    assert outcome.ok and app.associated("contacts", survivor.id, "notes") == [outcome.crm_id]


def test_a_whole_batch_400_on_engagement_update_is_bisected(
        app: HubSpotApp, server: ServerThread, contact_ids: list[str]) -> None:
    sink = make_sink(server)
    created = sink.upsert_activities([conversation(i, contact_ids[0]) for i in range(6)])
    stored = [{**conversation(o_i, contact_ids[0]), "crm_id": o.crm_id}
              for o_i, o in enumerate(sorted(created, key=lambda o: o.key))]
    app.faults.fail_next, app.faults.fail_status = 1, 400  # one whole-batch refusal, then the halves pass
    outcomes = sink.upsert_activities(stored)
    assert all(o.ok and not o.created for o in outcomes) and len(app.notes()) == 6
    assert len(posts(app, "/notes/batch/update")) == 3


def test_a_100_kb_name_and_transcript_arrive_capped_on_a_character_boundary(
        app: HubSpotApp, server: ServerThread) -> None:
    sink = make_sink(server)
    sink.prepare()
    name = "a" * (mapping.MAX_VALUE_LENGTH - len(mapping.TRUNCATION_MARK) - 1) + "\U0001F600" * 20_000
    [outcome] = sink.upsert([person(1, first_name=name)])
    assert outcome.ok
    stored = app.find(email="p1@example.com")["properties"]["firstname"]
    assert stored.endswith("a" + mapping.TRUNCATION_MARK)  # the emoji would have been split: left out whole
    assert not any(0xD800 <= ord(ch) <= 0xDFFF for ch in stored)
    assert [(c.field, c.limit) for c in outcome.truncated] == [("firstname", 65_536)]
    long = "\U0001F600" * 60_000  # 120,000 UTF-16 units
    conv = conversation(1, outcome.crm_id, channel="sms", messages=[
        {"id": "m1", "role": "customer", "content": long, "sent_at": "2024-03-15T10:30:00+00:00"}])
    [activity] = sink.upsert_activities([conv])
    body = app.communications()[0]["properties"]["hs_communication_body"]
    assert activity.ok and body.endswith(mapping.TRUNCATION_MARK)
    assert len(body.encode("utf-16-le")) // 2 <= 65_536 and "\ufffd" not in body
    assert [c.field for c in activity.truncated] == ["hs_communication_body"]
    short = person(2)
    assert sink.upsert([short])[0].truncated == () and mapping.properties_and_cuts(short)[1] == ()


# ------------------------------------------------------------ re-keyed persons
def test_move_updates_the_old_contact_by_id_and_clears_its_old_key(app, server):
    sink = make_sink(server)
    sink.prepare()
    (first,) = sink.upsert([phone_person("+15550009999")])
    moved = person(9, phone="+15550009999")
    (outcome,) = sink.move([(moved, first.crm_id)])
    assert outcome.ok and outcome.crm_id == first.crm_id and not outcome.created
    (contact,) = app.contacts()
    assert contact["properties"]["email"] == "p9@example.com"
    assert not contact["properties"].get(mapping.PERSON_KEY_PROPERTY)  # the old phone key cannot match again


def test_move_of_a_contact_deleted_in_hubspot_upserts_it(app, server):
    sink = make_sink(server)
    sink.prepare()
    heard: list[Any] = []
    (outcome,) = sink.move([(person(1), "999999")], on_batch=heard.extend)
    assert outcome.ok and outcome.created and outcome.crm_id != "999999"
    assert [o.key for o in heard] == ["email:p1@example.com"]
    assert len(app.contacts()) == 1


def test_move_onto_an_email_another_contact_has_fails_for_that_person(app, server):
    sink = make_sink(server)
    sink.prepare()
    first, _other = sink.upsert([phone_person("+15550009999"), person(2)])
    (outcome,) = sink.move([(person(2, person_key="email:p2@example.com"), first.crm_id)])
    assert not outcome.ok and outcome.error_code == "CONFLICT" and outcome.permanent
    assert len(app.contacts()) == 2
