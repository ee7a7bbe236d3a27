"""Salesforce sink round trips: the real simple-salesforce client against the
Salesforce emulator over TLS (sandbox CA trusted, never verify=False).

Covers: first load creates, a rerun updates without duplicates, per-record
failures, the Bulk API 2.0 path with failed rows read back, the set-up check
that names every missing field and writes nothing, expired sessions failing
at once, REQUEST_LIMIT_EXCEEDED stopping cleanly with the finished outcomes,
bounded retries, username/password login, Tasks per conversation. Pure
mapping and parsing functions are tested without a server at the end.
"""

from __future__ import annotations

from typing import Any, Iterator

import pytest
import requests
from simple_salesforce import Salesforce

from connectors.errors import AuthError, ConfigError, PartialProgress, QuotaExhausted, RetriesExhausted
from connectors.salesforce import RetryPolicy, SalesforceSettings, SalesforceSink, connect, settings_from_env
from connectors.salesforce.mapping import FieldMapping, external_id_problem, split_name
from connectors.salesforce.settle import parse_bulk_error
from sandbox import tls
from sandbox.salesforce import SalesforceApp, serve

USER, PASSWORD, SECURITY_TOKEN = "ops@example.com", "s3cret-pass", "TOKENabc123"
NO_WAIT = RetryPolicy(attempts=3, base_s=0)


@pytest.fixture(scope="module")
def server() -> Iterator[Any]:
    app = SalesforceApp(users={USER: (PASSWORD, SECURITY_TOKEN)})
    thread = serve(app)
    yield thread
    thread.stop()


@pytest.fixture
def app(server: Any) -> SalesforceApp:
    server.app.reset()
    return server.app


@pytest.fixture
def settings(server: Any, app: SalesforceApp) -> SalesforceSettings:
    return SalesforceSettings(instance_url=server.url, access_token=app.access_token, ca_bundle=tls.ca_path())


def make_sink(settings: SalesforceSettings, **kwargs: Any) -> SalesforceSink:
    kwargs.setdefault("retry", NO_WAIT)
    kwargs.setdefault("bulk_poll_interval_s", 0)
    return SalesforceSink(settings, **kwargs)


def person(i: int, **overrides: Any) -> dict[str, Any]:
    email = f"person{i}@example.com"
    base = {
        "person_key": f"email:{email}", "email": email, "phone": f"+1555000{i:04d}",
        "first_name": "Pat", "last_name": f"Doe{i}", "full_name": f"Pat Doe{i}",
        "company": "Acme", "tags": [], "source_ids": {"agentclara": [f"cust_{i}"]},
    }
    base.update(overrides)
    return base


def writes(app: SalesforceApp) -> list[tuple[str, str, int]]:
    return [entry for entry in app.request_log if entry[0] in ("PATCH", "PUT", "POST") and "Soap" not in entry[1]]


# ------------------------------------------------------------------ collections
def test_first_load_creates_and_rerun_updates_without_duplicates(settings, app):
    sink = make_sink(settings)
    persons = [person(i) for i in range(5)]

    first = sink.upsert(persons)
    assert [o.key for o in first] == [p["person_key"] for p in persons]
    assert all(o.ok and o.created and o.crm_id.startswith("00Q") for o in first)
    lead = app.find("Lead", "Agent_Contact_Id__c", "email:person3@example.com")
    assert lead["LastName"] == "Doe3" and lead["Company"] == "Acme" and lead["Phone"] == "+15550000003"

    second = sink.upsert(persons)
    assert all(o.ok and not o.created for o in second)
    assert [o.crm_id for o in second] == [o.crm_id for o in first]
    assert len(app.records("Lead")) == 5
    assert app.upsert_count("Lead", "email:person0@example.com") == 2
    # daily volumes use sObject Collections, never Bulk
    assert not any("jobs/ingest" in path for _, path, _ in app.request_log)


def test_collections_are_chunked_at_200(settings, app):
    sink = make_sink(settings)
    outcomes = sink.upsert([person(i) for i in range(450)])
    assert len(outcomes) == 450 and all(o.ok for o in outcomes)
    calls = [e for e in app.request_log if e[1].endswith("/composite/sobjects/Lead/Agent_Contact_Id__c")]
    assert len(calls) == 3


def test_placeholders_fill_required_fields(settings, app):
    sink = make_sink(settings, placeholders={"Company": "(unknown company)"})
    bare = {"person_key": "phone:+15551230000", "phone": "+15551230000", "email": None,
            "first_name": None, "last_name": None, "full_name": None, "company": None}
    [outcome] = sink.upsert([bare])
    assert outcome.ok
    lead = app.find("Lead", "Agent_Contact_Id__c", "phone:+15551230000")
    assert lead["LastName"] == "[not provided]" and lead["Company"] == "(unknown company)"
    assert "Email" not in lead and "FirstName" not in lead


def test_contact_object_needs_only_last_name(settings, app):
    sink = make_sink(settings, object_name="Contact")
    [outcome] = sink.upsert([person(1, last_name=None, full_name=None)])
    assert outcome.ok and outcome.crm_id.startswith("003")
    contact = app.find("Contact", "Agent_Contact_Id__c", "email:person1@example.com")
    assert contact["LastName"] == "[not provided]" and "Company" not in contact


def test_partial_failures_are_recorded_per_record(settings, app):
    app.duplicate_keys.add("email:person2@example.com")
    app.validation_failures["email:person3@example.com"] = "Leads from this domain are blocked"
    sink = make_sink(settings)
    persons = [person(0), person(1, email="not-an-email"), person(2), person(3), person(4),
               {"person_key": "x" * 300, "email": "long@example.com"}]

    by_key = {o.key: o for o in sink.upsert(persons)}

    assert by_key["email:person0@example.com"].ok and by_key["email:person4@example.com"].ok
    bad_email = by_key["email:person1@example.com"]
    assert (bad_email.ok, bad_email.error_code, bad_email.permanent) == (False, "INVALID_EMAIL_ADDRESS", True)
    assert "invalid email address" in bad_email.error
    assert by_key["email:person2@example.com"].error_code == "DUPLICATE_VALUE"
    custom = by_key["email:person3@example.com"]
    assert custom.error_code == "FIELD_CUSTOM_VALIDATION_EXCEPTION" and custom.error == "Leads from this domain are blocked"
    assert by_key["x" * 300].error_code == "INVALID_EXTERNAL_ID"  # never sent
    assert len(app.records("Lead")) == 2


def test_duplicate_keys_in_one_call_are_sent_once(settings, app):
    sink = make_sink(settings)
    outcomes = sink.upsert([person(1, last_name="Old"), person(1, last_name="New")])
    assert len(outcomes) == 1 and outcomes[0].ok
    assert app.find("Lead", "Agent_Contact_Id__c", "email:person1@example.com")["LastName"] == "New"


def test_sources_field_is_written_when_configured(settings, app):
    sink = make_sink(settings, sources_field="Agent_Sources__c")
    sink.upsert([person(1, source_ids={"clairo": ["b1"], "agentclara": ["c1"]})])
    assert app.find("Lead", "Agent_Contact_Id__c", "email:person1@example.com")["Agent_Sources__c"] == "agentclara;clairo"


def test_a_dry_run_push_writes_nothing_and_counts_what_it_would_send(settings, app, tmp_path):
    """Dry run is decided by the sync step alone: the sink is built for real writes, nothing is written."""
    from pipelines.state import StateStore
    from pipelines.steps.push import push_persons

    store = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
    store.save_persons([(p["person_key"], p) for p in (person(1), person(2))])
    stats = push_persons(store, make_sink(settings), dry_run=True)
    assert (stats.created, stats.updated) == (2, 0) and stats.as_metadata()["would be created"] == 2
    assert writes(app) == [] and app.records("Lead") == []
    assert store.sync_rows("salesforce", "contact", ["email:person1@example.com"]) == {}


# ------------------------------------------------------------------------- bulk
def test_bulk_path_reads_back_successes_and_failures(settings, app):
    app.bulk_polls_to_complete = 2  # InProgress twice, then JobComplete
    sink = make_sink(settings, bulk_threshold=5)
    persons = [person(i) for i in range(8)] + [person(8, email="broken@"), person(9, company=None, last_name=None,
                                                                                     full_name=None)]
    app.validation_failures["email:person5@example.com"] = "Rejected by rule"

    outcomes = sink.upsert(persons)

    assert len(app.jobs) == 1 and app.jobs[0]["state"] == "JobComplete"
    assert app.jobs[0]["numberRecordsProcessed"] == 10 and app.jobs[0]["numberRecordsFailed"] == 2
    by_key = {o.key: o for o in outcomes}
    assert len(by_key) == 10
    assert by_key["email:person8@example.com"].error_code == "INVALID_EMAIL_ADDRESS"
    assert by_key["email:person5@example.com"].error_code == "FIELD_CUSTOM_VALIDATION_EXCEPTION"
    assert "Rejected by rule" in by_key["email:person5@example.com"].error
    created = [o for o in outcomes if o.ok]
    assert len(created) == 8 and all(o.created and o.crm_id for o in created)
    assert app.find("Lead", "Agent_Contact_Id__c", "email:person9@example.com")["Company"] == "[not provided]"
    assert not any("composite/sobjects" in path for _, path, _ in app.request_log)

    again = sink.upsert(persons)
    assert sum(o.ok and not o.created for o in again) == 8
    assert len(app.records("Lead")) == 8


def test_bulk_job_failure_marks_the_chunk_retriable(settings, app):
    app.fail_next_bulk_jobs = 1
    sink = make_sink(settings, bulk_threshold=2)
    outcomes = sink.upsert([person(i) for i in range(4)])
    assert [o.error_code for o in outcomes] == ["BULK_JOB_FAILED"] * 4
    assert not any(o.permanent for o in outcomes)
    assert app.records("Lead") == []


def test_bulk_quota_keeps_the_finished_jobs(settings, app):
    sink = make_sink(settings, bulk_threshold=2, bulk_job_size=2)
    sink.prepare()
    # one job costs 9 calls: create, upload, close, 2 polls, job info, 3 result sets
    app.api_limit = app.api_used + 9 + 1
    persons = [person(i) for i in range(4)]
    with pytest.raises(PartialProgress) as caught:
        sink.upsert(persons)
    assert isinstance(caught.value.cause, QuotaExhausted)
    assert [o.key for o in caught.value.outcomes] == [p["person_key"] for p in persons[:2]]
    assert caught.value.pending_keys == [p["person_key"] for p in persons[2:]]


def test_bulk_matches_non_ascii_keys(settings, app):
    sink = make_sink(settings, bulk_threshold=1)
    persons = [person(1, person_key="email:zoë@exämple.com", email="zoe@example.com"), person(2)]
    outcomes = sink.upsert(persons)
    assert [o.key for o in outcomes] == ["email:zoë@exämple.com", "email:person2@example.com"]
    assert all(o.ok and o.crm_id for o in outcomes)


def test_bulk_splits_large_loads_into_jobs(settings, app):
    sink = make_sink(settings, bulk_threshold=2, bulk_job_size=3)
    outcomes = sink.upsert([person(i) for i in range(7)])
    assert len(app.jobs) == 3 and all(o.ok for o in outcomes)


# ---------------------------------------------------------------------- prepare
def test_prepare_lists_every_missing_field_and_writes_nothing(settings, app):
    app.drop_field("Lead", "Agent_Sources__c")
    app.drop_field("Lead", "Phone")
    app.set_external_id("Lead", "Agent_Contact_Id__c", False)
    sink = make_sink(settings, sources_field="Agent_Sources__c")

    with pytest.raises(ConfigError) as caught:
        sink.prepare()
    message = str(caught.value)
    assert "Lead.Agent_Sources__c is missing" in message
    assert "Lead.Phone" in message
    assert "Lead.Agent_Contact_Id__c is not an External ID" in message
    assert "Object Manager → Lead → Fields & Relationships" in message

    with pytest.raises(ConfigError):
        sink.upsert([person(1)])
    assert writes(app) == [] and app.records("Lead") == []


def test_prepare_explains_how_to_create_the_key_field(settings, app):
    app.drop_field("Lead", "Agent_Contact_Id__c")
    with pytest.raises(ConfigError) as caught:
        make_sink(settings).prepare()
    assert "Text(255)" in str(caught.value) and "'External ID'" in str(caught.value)


def test_prepare_checks_task_fields_when_activities_are_on(settings, app):
    app.drop_field("Task", "Agent_Conversation_Id__c")
    app.drop_field("Lead", "Agent_Contact_Id__c")
    with pytest.raises(ConfigError) as caught:
        make_sink(settings, activities=True).prepare()
    assert "Task.Agent_Conversation_Id__c is missing" in str(caught.value)
    assert "Lead.Agent_Contact_Id__c is missing" in str(caught.value)


# ------------------------------------------------------------- auth and quotas
def test_expired_session_fails_at_once(settings, app):
    sink = make_sink(settings)
    sink.prepare()
    app.expire_sessions()
    before = len(app.request_log)
    with pytest.raises(PartialProgress) as caught:
        sink.upsert([person(i) for i in range(3)])
    assert isinstance(caught.value.cause, AuthError)
    assert caught.value.cause.status == 401 and "INVALID_SESSION_ID" in str(caught.value)
    assert len(app.request_log) - before == 1  # one request, no retry storm
    assert caught.value.outcomes == [] and len(caught.value.pending_keys) == 3
    assert app.access_token not in str(caught.value)


def test_request_limit_stops_cleanly_with_finished_outcomes(settings, app):
    sink = make_sink(settings, collection_size=2)
    sink.prepare()
    app.api_limit = app.api_used + 2  # two more requests, then REQUEST_LIMIT_EXCEEDED
    persons = [person(i) for i in range(6)]

    with pytest.raises(PartialProgress) as caught:
        sink.upsert(persons)
    assert isinstance(caught.value.cause, QuotaExhausted)

    done = caught.value.outcomes
    assert [o.key for o in done] == [p["person_key"] for p in persons[:4]] and all(o.ok for o in done)
    assert caught.value.pending_keys == [p["person_key"] for p in persons[4:]]
    assert "REQUEST_LIMIT_EXCEEDED" in str(caught.value)
    # Sforce-Limit-Info said the budget was spent: stopped before the refusal (a refusal that
    # another integration caused is still a clean stop: tests/test_crm_pacing.py).
    assert app.status_counts.get(403) is None
    assert len(app.records("Lead")) == 4


def test_min_api_remaining_stops_before_the_org_runs_dry(settings, app):
    sink = make_sink(settings, collection_size=2, min_api_remaining=50)
    app.api_limit = app.api_used + 51  # describe + first chunk leave 49 < 50
    with pytest.raises(PartialProgress) as caught:
        sink.upsert([person(i) for i in range(6)])
    assert isinstance(caught.value.cause, QuotaExhausted)
    assert len(caught.value.outcomes) == 2 and sink.api_usage[1] == app.api_limit


def test_transient_errors_are_retried_then_succeed(settings, app):
    sink = make_sink(settings)
    sink.prepare()
    app.faults.fail_next = 1
    app.faults.drop_next = 1
    outcomes = sink.upsert([person(1), person(2)])
    assert all(o.ok and o.created for o in outcomes)
    assert len(app.records("Lead")) == 2


def test_retries_are_bounded(settings, app):
    sink = make_sink(settings)
    sink.prepare()
    app.faults.fail_next = 10
    with pytest.raises(PartialProgress) as caught:
        sink.upsert([person(1)])
    assert isinstance(caught.value.cause, RetriesExhausted)
    assert "3 attempts" in str(caught.value) and caught.value.pending_keys == ["email:person1@example.com"]
    assert app.faults.fail_next == 7


# ------------------------------------------------------------------ connecting
def test_username_password_login(server, app):
    settings = SalesforceSettings(username=USER, password=PASSWORD, security_token=SECURITY_TOKEN,
                                  domain=server.url, ca_bundle=tls.ca_path())
    sink = make_sink(settings)
    [outcome] = sink.upsert([person(1)])
    assert outcome.ok and outcome.created and app.login_count == 1
    found = sink.sf.query("SELECT Id, LastName FROM Lead WHERE Agent_Contact_Id__c = 'email:person1@example.com'")
    assert found["totalSize"] == 1 and found["records"][0]["Id"] == outcome.crm_id


def test_wrong_password_is_an_auth_error_without_secrets(server, app):
    settings = SalesforceSettings(username=USER, password="wrong-pass", security_token="WRONGTOKEN",
                                  domain=server.url, ca_bundle=tls.ca_path())
    with pytest.raises(AuthError) as caught:
        connect(settings)
    assert "INVALID_LOGIN" in str(caught.value)
    for secret in ("wrong-pass", "WRONGTOKEN"):
        assert secret not in str(caught.value) and secret not in repr(settings)


def test_secrets_stay_out_of_reprs(settings):
    text = repr(settings) + repr(make_sink(settings))
    assert settings.access_token not in text


def test_trust_through_requests_ca_bundle(server, app, monkeypatch):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", tls.ca_path())
    sf = Salesforce(instance_url=server.url, session_id=app.access_token, session=requests.Session())
    [outcome] = make_sink(sf).upsert([person(1)])
    assert outcome.ok


def test_untrusted_certificate_is_a_config_error(server, app, monkeypatch):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", requests.certs.where())
    settings = SalesforceSettings(instance_url=server.url, access_token=app.access_token)
    with pytest.raises(ConfigError) as caught:
        make_sink(settings).prepare()
    assert "not trusted" in str(caught.value)


def test_settings_from_env_maps_the_contract_names():
    env = {"SALESFORCE_USERNAME": "u@example.com", "SALESFORCE_PASSWORD": "p", "SALESFORCE_SECURITY_TOKEN": "",
           "SALESFORCE_DOMAIN": "test", "SALESFORCE_OBJECT": "Contact"}
    settings = settings_from_env(env)
    assert (settings.auth_mode, settings.domain, settings.object_name, settings.security_token) == (
        "password", "test", "Contact", "")
    token = settings_from_env({"SALESFORCE_INSTANCE_URL": "https://acme.my.salesforce.com",
                               "SALESFORCE_ACCESS_TOKEN": "00D!x", "SALESFORCE_USERNAME": "u"})
    assert token.auth_mode == "token"
    with pytest.raises(ConfigError, match="SALESFORCE_ACCESS_TOKEN"):
        settings_from_env({"SALESFORCE_INSTANCE_URL": "https://acme.my.salesforce.com"}).validate()
    with pytest.raises(ConfigError, match="https"):
        SalesforceSettings(instance_url="http://acme", access_token="t").validate()
    with pytest.raises(ConfigError, match="SALESFORCE_OBJECT"):
        SalesforceSettings(instance_url="https://a", access_token="t", object_name="Account").validate()


# ------------------------------------------------------------------ activities
def test_tasks_are_upserted_once_per_conversation(settings, app):
    sink = make_sink(settings, activities=True)
    [lead] = sink.upsert([person(1)])
    activity = {"conversation_key": "agentclara:conv_1", "person_key": "email:person1@example.com",
                "subject": "Chat with AgentClara", "description": "user: hi\nagent: hello",
                "activity_date": "2026-10-01T10:00:00+00:00"}
    first = sink.upsert_activities([activity, {**activity, "conversation_key": "agentclara:conv_2",
                                               "who_id": lead.crm_id}])
    again = sink.upsert_activities([activity])
    assert all(o.ok for o in first) and first[0].created and not again[0].created
    tasks = app.records("Task")
    assert len(tasks) == 2 and {t["WhoId"] for t in tasks} == {lead.crm_id}
    assert tasks[0]["ActivityDate"] == "2026-10-01" and tasks[0]["Status"] == "Completed"

    [orphan] = sink.upsert_activities([{**activity, "conversation_key": "c3", "person_key": "email:nobody@x.io"}])
    assert orphan.error_code == "INVALID_FIELD" and not orphan.permanent


# ------------------------------------------------------------ field lengths
EMOJI = "\U0001F600"  # two UTF-16 units, as Salesforce counts


def test_a_100_kb_name_and_transcript_arrive_capped_to_the_describe_lengths(settings, app):
    sink = make_sink(settings, activities=True)
    name = "L" * 79 + EMOJI * 50_000  # 100,079 units; the emoji at unit 80 would be split
    long_email = "x" * 80 + "@example.com"
    [lead] = sink.upsert([person(1, first_name="Ann" + EMOJI * 30, last_name=name, email=long_email)])
    assert lead.ok
    stored = app.find("Lead", "Agent_Contact_Id__c", "email:person1@example.com")
    assert stored["LastName"] == "L" * 79  # 80 units would cut the emoji in half: it goes whole
    assert stored["FirstName"] == "Ann" + EMOJI * 18  # 3 + 36 units of 40
    assert "Email" not in stored or not stored["Email"]  # an address is never shortened: left out
    assert {(c.field, c.limit, c.dropped) for c in lead.truncated} == {
        ("LastName", 80, False), ("FirstName", 40, False), ("Email", 80, True)}
    transcript = ("agent: " + EMOJI * 20_000 + "\n") * 2  # 80,016 units
    [task] = sink.upsert_activities([{"conversation_key": "agentclara:long", "who_id": lead.crm_id,
                                      "subject": "S" * 300, "description": transcript,
                                      "activity_date": "2026-10-01"}])
    assert task.ok and {c.field for c in task.truncated} == {"Subject", "Description"}
    [record] = app.records("Task")
    assert len(record["Description"].encode("utf-16-le")) // 2 <= 32_000
    assert record["Description"].endswith(" [truncated]") and len(record["Subject"]) == 255
    assert sink.upsert([person(2)])[0].truncated == ()


def test_lengths_come_from_the_org_describe(settings, app):
    app.drop_field("Lead", "Agent_Sources__c")
    app.add_field("Lead", "Agent_Sources__c", "string", length=12)
    sink = make_sink(settings, sources_field="Agent_Sources__c")
    before = sink.properties(person(1, source_ids={"agentclara": ["a"], "clairo": ["b"]}))
    [outcome] = sink.upsert([person(1, source_ids={"agentclara": ["a"], "clairo": ["b"]})])
    assert before["Agent_Sources__c"] == "agentclara;clairo"  # no describe yet: the custom default 255
    assert outcome.ok and [(c.field, c.length, c.limit) for c in outcome.truncated] == [("Agent_Sources__c", 17, 12)]
    assert app.find("Lead", "Agent_Contact_Id__c", "email:person1@example.com")["Agent_Sources__c"] == "agentclara;c"


# ------------------------------------------------------------- emulator shapes
def test_emulator_single_record_upsert_and_errors(settings, app):
    sf = connect(settings)
    created = sf.Lead.upsert("Agent_Contact_Id__c/email:a@example.com", {"LastName": "A", "Company": "C"},
                             raw_response=True)
    updated = sf.Lead.upsert("Agent_Contact_Id__c/email:a@example.com", {"FirstName": "Al"}, raw_response=True)
    assert (created.status_code, created.json()["created"]) == (201, True)
    assert (updated.status_code, updated.json()["created"]) == (200, False)
    assert "api-usage=" in updated.headers["Sforce-Limit-Info"]
    response = sf.session.patch(
        f"{sf.base_url}sobjects/Lead/Agent_Contact_Id__c/email:b@example.com", json={"LastName": "B"},
        headers=sf.headers,
    )
    assert response.status_code == 400
    assert response.json() == [{"message": "Required fields are missing: [Company]", "errorCode":
                                "REQUIRED_FIELD_MISSING", "fields": ["Company"]}]
    versions = requests.get(f"{settings.instance_url}/services/data", verify=tls.ca_path()).json()
    assert {"version": "59.0", "label": "Winter '24", "url": "/services/data/v59.0"} in versions


# ------------------------------------------------------------------ pure parts
@pytest.mark.parametrize(
    "names, expected",
    [
        ({"first_name": "John", "last_name": "Smith"}, ("John", "Smith")),
        ({"first_name": "John", "full_name": "John van Smith"}, ("John", "van Smith")),
        # The one rule (schemas.fields.crm_names, HubSpot's old copy): a one-word name is a first name,
        # the placeholder fills the required LastName; a full name never becomes the whole last name.
        ({"full_name": "Cher"}, ("Cher", None)),
        ({"first_name": "Bob", "full_name": "Robert Jones"}, ("Bob", None)),
        ({"first_name": "Mary Ann", "full_name": "Mary Ann Smith"}, ("Mary Ann", "Smith")),
        ({"full_name": "Ada Lovelace"}, ("Ada", "Lovelace")),
        ({"first_name": "Ada", "full_name": "Ada"}, ("Ada", None)),
        ({}, (None, None)),
    ],
)
def test_split_name(names, expected):
    assert split_name(names) == expected


def test_mapping_truncates_and_keys():
    mapping = FieldMapping("Lead")
    props = mapping.properties({"person_key": "email:x@y.io", "first_name": "F" * 60, "company": " "})
    assert len(props["FirstName"]) == 40 and props["Company"] == "[not provided]"
    assert props["Agent_Contact_Id__c"] == "email:x@y.io"
    assert external_id_problem("phone:+15551234567") is None
    assert external_id_problem("") and external_id_problem("a\nb") and external_id_problem("k" * 256)


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("REQUIRED_FIELD_MISSING:Required fields are missing: [LastName]:LastName --",
         ("REQUIRED_FIELD_MISSING", "Required fields are missing: [LastName] (fields: LastName)")),
        ("INVALID_EMAIL_ADDRESS:Email: invalid email address: x: --",
         ("INVALID_EMAIL_ADDRESS", "Email: invalid email address: x")),
        ("something odd", ("BULK_ERROR", "something odd")),
    ],
)
def test_parse_bulk_error(raw, expected):
    assert parse_bulk_error(raw) == expected


# ------------------------------------------------------------ re-keyed persons
def test_move_updates_the_record_by_id_with_the_new_external_id(settings, app):
    sink = make_sink(settings)
    (first,) = sink.upsert([person(1, person_key="phone:+15550001111", email=None)])
    (outcome,) = sink.move([(person(1), first.crm_id)])
    assert outcome.ok and outcome.crm_id == first.crm_id
    (lead,) = app.records("Lead")
    assert lead["Id"] == first.crm_id and lead["Email"] == "person1@example.com"
    assert lead["Agent_Contact_Id__c"] == "email:person1@example.com"


def test_move_of_a_deleted_record_upserts_it(settings, app):
    sink = make_sink(settings)
    (outcome,) = sink.move([(person(2), "00Q000000000999AAA")])
    assert outcome.ok and outcome.created and outcome.crm_id != "00Q000000000999AAA"
    assert [lead["Email"] for lead in app.records("Lead")] == ["person2@example.com"]


def test_move_onto_an_external_id_another_record_has_fails_for_that_person(settings, app):
    sink = make_sink(settings)
    first, _other = sink.upsert([person(3, person_key="phone:+15550003333", email=None), person(4)])
    (outcome,) = sink.move([(person(4), first.crm_id)])
    assert not outcome.ok and outcome.error_code == "DUPLICATE_VALUE" and outcome.permanent
    assert len(app.records("Lead")) == 2
