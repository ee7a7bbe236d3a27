"""The field mapping on both CRMs: mapping file -> check against the CRM -> read current values -> write.

Real clients over real HTTP (hubspot-api-client to the HubSpot emulator,
simple-salesforce to the Salesforce emulator over TLS), the real state
store and `push_persons`. Covers: a rep's hand edit (the emulators' UI
knobs) that survives under `if_empty` and is overwritten under `always`;
`update_only` with new people at the source (skipped, not recorded, sent
once the mode allows it); `create_only`; a bad file (several problems, one
message, nothing written); a mapping change that resends exactly the
persons it affects; custom properties created only when the file says so;
a dry run's preview, old value to new; a contact deleted between the read
and the write (not created again under `update_only`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pytest

from connectors.hubspot import HubSpotSink
from connectors.salesforce import RetryPolicy, SalesforceSettings, SalesforceSink
from pipelines.mapping.__main__ import default_text
from pipelines.mapping.model import MappingError
from pipelines.mapping.plan import load_for
from pipelines.state import StateStore
from pipelines.steps.push import OBJECT_TYPE, push_persons
from sandbox import tls
from sandbox.http import Request, Response, ServerThread
from sandbox.hubspot import DEFAULT_TOKEN, HubSpotApp
from sandbox.salesforce import SalesforceApp, serve

TARGETS = ("hubspot", "salesforce")


def person(i: int, **extra: Any) -> dict[str, Any]:
    email = f"p{i}@example.com"
    return {"person_key": f"email:{email}", "email": email, "first_name": "Pat", "last_name": f"Number{i}",
            "full_name": f"Pat Number{i}", "phone": None, "company": "Acme", "tags": ["vip"],
            "source_ids": {"agentclara": [f"cust_{i}"]}, **extra}


def save(store: StateStore, *persons: dict[str, Any]) -> None:
    store.save_persons([(p["person_key"], p) for p in persons])


def mapping_file(tmp_path: Path, text: str, name: str = "mapping.yaml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def push(store: StateStore, sink: Any, path: str | None = None, **kwargs: Any) -> Any:
    return push_persons(store, sink, mapping=load_for(path, sink.target, TARGETS), **kwargs)


@pytest.fixture
def store(tmp_path: Path) -> StateStore:
    return StateStore(f"sqlite:///{tmp_path / 'state.db'}")


# ====================================================================== HubSpot
@pytest.fixture
def hubspot() -> Iterator[tuple[HubSpotApp, str]]:
    app = HubSpotApp(retry_after_s=0)
    with ServerThread(app) as running:
        yield app, running.url


def hs_sink(url: str, **kwargs: Any) -> HubSpotSink:
    return HubSpotSink(DEFAULT_TOKEN, url, backoff_factor=0.001, **kwargs)


def contact(app: HubSpotApp, i: int) -> dict[str, Any]:
    found = app.find(email=f"p{i}@example.com")
    assert found is not None, i
    return found


def test_hubspot_a_hand_edit_survives_if_empty_and_is_overwritten_by_always(hubspot, store, tmp_path) -> None:
    app, url = hubspot
    save(store, person(1), person(2))
    push(store, hs_sink(url))
    app.edit_contact(contact(app, 1)["id"], {"firstname": "Patricia", "lastname": ""})  # a rep fixes a name
    if_empty = mapping_file(tmp_path, "hubspot:\n  fields:\n"
                                      "    firstname: {from: first_name, write: if_empty}\n"
                                      "    lastname: {from: last_name, write: if_empty}\n")
    save(store, person(1, tags=["vip", "returning"]), person(2, tags=["new"]), person(3))  # they change at source
    reads_before = len(app.requests("POST", "batch/read"))

    stats = push(store, hs_sink(url), if_empty)

    assert (stats.created, stats.updated, stats.failed, stats.held_back) == (1, 2, 0, 1)
    assert len(app.requests("POST", "batch/read")) == reads_before + 1  # one read of 3 persons, before the write
    assert len(app.requests("POST", "contacts/batch/update")) == 1  # the two it found: updated by id
    one = contact(app, 1)["properties"]
    assert one["firstname"] == "Patricia"  # what the rep typed stays
    assert one["lastname"] == "Number1"  # an empty value is filled
    assert one["agent_sync_tags"] == "returning;vip"  # the rest is written as always
    assert contact(app, 3)["properties"]["firstname"] == "Pat"  # a record created now gets every value

    save(store, person(1, tags=["vip"]))
    push(store, hs_sink(url))  # no file: `always`
    assert contact(app, 1)["properties"]["firstname"] == "Pat"


def test_hubspot_update_only_skips_new_people_until_the_mode_allows_it(hubspot, store, tmp_path) -> None:
    app, url = hubspot
    save(store, person(1), person(2))
    push(store, hs_sink(url))
    save(store, person(1, company="Initech"), person(3), person(4))  # one changed, two new at the source
    update_only = mapping_file(tmp_path, "hubspot:\n  mode: update_only\n")

    stats = push(store, hs_sink(url), update_only)

    assert (stats.created, stats.updated, stats.skipped["not in CRM"]) == (0, 1, 2)
    assert app.find(email="p3@example.com") is None and app.find(email="p4@example.com") is None
    assert contact(app, 1)["properties"]["company"] == "Initech"
    assert set(store.sync_rows("hubspot", OBJECT_TYPE, ["email:p3@example.com", "email:p4@example.com"])) == set()
    again = push(store, hs_sink(url), update_only)
    assert (again.skipped["not in CRM"], again.unchanged) == (2, 2)

    later = push(store, hs_sink(url), mapping_file(tmp_path, "hubspot:\n  mode: upsert\n", "upsert.yaml"))
    assert (later.created, later.unchanged) == (2, 2)
    assert app.find(email="p3@example.com") and app.find(email="p4@example.com")


class DeletesAfterRead(HubSpotApp):
    """Deletes one contact right after answering a batch read: a rep deleting it between read and write."""

    victim: str | None = None

    def dispatch(self, request: Request) -> Response:
        response = super().dispatch(request)
        if request.path.endswith("/contacts/batch/read") and self.victim:
            self.delete("contacts", self.victim)
            self.victim = None
        return response


@pytest.mark.parametrize("mode, recreated", [("update_only", False), ("upsert", True)])
def test_hubspot_a_contact_deleted_between_read_and_write(store, tmp_path, mode, recreated) -> None:
    app = DeletesAfterRead(retry_after_s=0)
    with ServerThread(app) as running:
        save(store, person(1), person(2))
        push(store, hs_sink(running.url))
        app.victim = contact(app, 1)["id"]
        save(store, person(1, company="Initech"), person(2, company="Initech"))
        text = f"hubspot:\n  mode: {mode}\n  fields:\n    firstname: {{from: first_name, write: if_empty}}\n"
        push(store, hs_sink(running.url), mapping_file(tmp_path, text))
        assert (app.find(email="p1@example.com") is not None) == recreated  # update_only never creates
        assert contact(app, 2)["properties"]["company"] == "Initech"


def test_hubspot_create_only_never_changes_an_existing_contact(hubspot, store, tmp_path) -> None:
    app, url = hubspot
    save(store, person(1))
    push(store, hs_sink(url))
    save(store, person(1, company="Initech"), person(2))
    stats = push(store, hs_sink(url), mapping_file(tmp_path, "hubspot:\n  mode: create_only\n"))
    assert (stats.created, stats.updated, stats.skipped["already in CRM"]) == (1, 0, 1)
    assert contact(app, 1)["properties"]["company"] == "Acme" and contact(app, 2)


def test_hubspot_a_bad_file_stops_before_anything_is_written(hubspot, store, tmp_path) -> None:
    app, url = hubspot
    save(store, person(1))
    bad = mapping_file(tmp_path, """\
hubspot:
  mode: upsert
  fields:
    firstname: {from: nickname}
    lifecyclestage: {value: prospect}
    favourite_colour: {value: blue}
    lastname: {from: last_name, write: sometimes}
""")
    with pytest.raises(MappingError) as caught:
        push(store, hs_sink(url), bad)
    message = str(caught.value)
    assert "4 problems; nothing was written" in message
    for line, what in ((4, "firstname.from: 'nickname' is not a person field"),
                       (5, "lifecyclestage: 'prospect' is not one of its options (subscriber, lead,"),
                       (6, "favourite_colour: hubspot has no such property"),
                       (7, "lastname.write: 'sometimes' is not one of")):
        assert f"{bad}:{line}: hubspot.fields.{what}" in message
    assert [r for r in app.request_log if r[0] != "GET"] == []  # not one write, not even the property group
    assert app.contacts() == [] and "agent_sync" not in app.group_names()


def test_hubspot_a_mapping_change_resends_exactly_the_affected_persons(hubspot, store, tmp_path) -> None:
    app, url = hubspot
    save(store, *[person(i, phone=f"+1415555{i:04d}" if i % 2 else None) for i in range(6)])
    push(store, hs_sink(url))
    before = dict(app.upserted)
    path = mapping_file(tmp_path, "hubspot:\n  fields:\n    mobilephone: {from: phone}\n")

    stats = push(store, hs_sink(url), path)

    resent = {key for key, n in app.upserted.items() if n != before.get(key)}
    assert resent == {f"p{i}@example.com" for i in (1, 3, 5)}
    assert (stats.updated, stats.unchanged) == (3, 3)
    assert contact(app, 3)["properties"]["mobilephone"] == "+14155550003"
    assert push(store, hs_sink(url), path).unchanged == 6  # and the next run sends nothing


def test_hubspot_never_is_not_sent_and_always_never_blanks(hubspot, store, tmp_path) -> None:
    app, url = hubspot
    save(store, person(1), person(2))
    push(store, hs_sink(url))
    path = mapping_file(tmp_path, "hubspot:\n  fields:\n    agent_sync_tags: {write: never}\n"
                                  "    company: {from: company, write: never_clear}\n")
    save(store, person(1, tags=["churned"], company=None), person(2, tags=["vip", "x"]))
    stats = push(store, hs_sink(url), path)
    assert stats.updated == 2  # both payloads changed (tags left the payload; company left person 1's)
    one, two = contact(app, 1)["properties"], contact(app, 2)["properties"]
    assert (one["agent_sync_tags"], two["agent_sync_tags"]) == ("vip", "vip")  # never sent
    assert one["company"] == "Acme"  # an empty source value never blanks the CRM
    save(store, person(2, tags=["other"]))
    assert push(store, hs_sink(url), path).unchanged == 2  # a change only in a `never` property sends nothing


def test_hubspot_creates_missing_custom_properties_only_when_told(hubspot, store, tmp_path) -> None:
    app, url = hubspot
    save(store, person(1))
    text = "hubspot:\n{create}  fields:\n    agent_favourite_colour: {{value: blue}}\n"
    with pytest.raises(MappingError, match="agent_favourite_colour: hubspot has no such property"):
        push(store, hs_sink(url), mapping_file(tmp_path, text.format(create="")))
    push(store, hs_sink(url), mapping_file(tmp_path, text.format(create="  create_missing_properties: true\n"), "c.yaml"))
    created = app.property("agent_favourite_colour")
    assert created and created["groupName"] == "agent_sync"
    assert contact(app, 1)["properties"]["agent_favourite_colour"] == "blue"


def test_hubspot_dry_run_previews_old_to_new_and_writes_nothing(hubspot, store, tmp_path) -> None:
    app, url = hubspot
    save(store, person(1), person(2))
    push(store, hs_sink(url))
    app.edit_contact(contact(app, 1)["id"], {"firstname": "Patricia"})
    save(store, person(1, company="Initech"), person(2, company="Globex"), person(3))
    path = mapping_file(tmp_path, "hubspot:\n  fields:\n    firstname: {from: first_name, write: if_empty}\n")
    writes_before = len([r for r in app.request_log if r[0] != "GET" and "batch/read" not in r[1]])

    stats = push(store, hs_sink(url), path, dry_run=True)

    assert len([r for r in app.request_log if r[0] != "GET" and "batch/read" not in r[1]]) == writes_before
    rows = {(c.key, c.name): (c.old, c.new, c.held) for c in stats.preview}
    assert rows[("email:p1@example.com", "company")] == ("Acme", "Initech", False)
    assert rows[("email:p1@example.com", "firstname")] == ("Patricia", "Pat", True)  # held back by if_empty
    assert rows[("email:p3@example.com", "firstname")] == (None, "Pat", False)  # a new record
    assert ("email:p2@example.com", "firstname") not in rows  # unchanged values are not listed
    assert (stats.created, stats.updated, stats.persons_changing) == (1, 2, 3)
    meta = stats.as_metadata()
    assert "email:p1@example.com: firstname 'Patricia' -> 'Pat' (held back: if_empty, the CRM has a value)" in \
        meta["changes (preview)"]


# ====================================================================== Salesforce

USER, PASSWORD, SECURITY_TOKEN = "ops@example.com", "s3cret-pass", "TOKENabc123"


@pytest.fixture(scope="module")
def sf_server() -> Iterator[Any]:
    thread = serve(SalesforceApp(users={USER: (PASSWORD, SECURITY_TOKEN)}))
    yield thread
    thread.stop()


@pytest.fixture
def salesforce(sf_server: Any) -> tuple[SalesforceApp, SalesforceSettings]:
    sf_server.app.reset()
    app = sf_server.app
    return app, SalesforceSettings(instance_url=sf_server.url, access_token=app.access_token, ca_bundle=tls.ca_path())


def sf_sink(settings: SalesforceSettings, **kwargs: Any) -> SalesforceSink:
    return SalesforceSink(settings, retry=RetryPolicy(attempts=2, base_s=0), bulk_poll_interval_s=0, **kwargs)


def lead(app: SalesforceApp, i: int) -> dict[str, Any]:
    found = app.find("Lead", "Agent_Contact_Id__c", f"email:p{i}@example.com")
    assert found is not None, i
    return found


def test_the_printed_default_file_passes_both_crms_checks_and_resends_nobody(hubspot, salesforce, store,
                                                                              tmp_path) -> None:
    (hs_app, url), (sf_app, settings) = hubspot, salesforce
    save(store, person(1), person(2, phone="+14155550002"), person(3, company=None))
    push(store, hs_sink(url)), push(store, sf_sink(settings))
    for target, sink in (("hubspot", hs_sink(url)), ("salesforce", sf_sink(settings))):
        stats = push(store, sink, mapping_file(tmp_path, default_text(target), f"{target}.yaml"))
        assert (stats.unchanged, stats.created, stats.updated) == (3, 0, 0), target


def test_salesforce_a_hand_edit_survives_if_empty_and_is_overwritten_by_always(salesforce, store, tmp_path) -> None:
    app, settings = salesforce
    save(store, person(1), person(2))
    push(store, sf_sink(settings))
    app.edit_record("Lead", lead(app, 1)["Id"], {"FirstName": "Patricia", "Phone": ""})
    path = mapping_file(tmp_path, "salesforce:\n  fields:\n"
                                  "    FirstName: {from: first_name, write: if_empty}\n"
                                  "    Phone: {from: phone, write: if_empty}\n")
    save(store, person(1, company="Initech", phone="+14155550001"), person(2, company="Globex"), person(3))
    queries_before = len([r for r in app.request_log if "/query" in r[1]])

    stats = push(store, sf_sink(settings), path)

    assert (stats.created, stats.updated, stats.failed, stats.held_back) == (1, 2, 0, 1)
    assert len([r for r in app.request_log if "/query" in r[1]]) == queries_before + 1
    one = lead(app, 1)
    assert (one["FirstName"], one["Company"], one["Phone"]) == ("Patricia", "Initech", "+14155550001")
    assert lead(app, 3)["FirstName"] == "Pat"

    save(store, person(1, company="Hooli", phone="+14155550001"))
    push(store, sf_sink(settings))  # no file: `always`
    assert lead(app, 1)["FirstName"] == "Pat"


def test_salesforce_update_only_skips_new_people_until_the_mode_allows_it(salesforce, store, tmp_path) -> None:
    app, settings = salesforce
    save(store, person(1))
    push(store, sf_sink(settings))
    save(store, person(1, company="Initech"), person(2), person(3))
    stats = push(store, sf_sink(settings), mapping_file(tmp_path, "salesforce:\n  mode: update_only\n"))
    assert (stats.created, stats.updated, stats.skipped["not in CRM"]) == (0, 1, 2)
    assert len(app.records("Lead")) == 1 and lead(app, 1)["Company"] == "Initech"
    later = push(store, sf_sink(settings))
    assert (later.created, later.unchanged) == (2, 1) and len(app.records("Lead")) == 3


def test_salesforce_a_bad_file_stops_before_anything_is_written(salesforce, store, tmp_path) -> None:
    app, settings = salesforce
    save(store, person(1))
    bad = mapping_file(tmp_path, """\
salesforce:
  fields:
    LeadSource: {value: Billboard}
    Rating__c: {from: tags}
    Agent_Contact_Id__c: {from: email}
    LastName: {write: never}
    Title: {from: extra.}
""")
    with pytest.raises(MappingError) as caught:
        push(store, sf_sink(settings), bad)
    message = str(caught.value)
    assert "5 problems; nothing was written" in message
    for line, what in ((3, "LeadSource: 'Billboard' is not one of its options (Web, Phone Inquiry"),
                       (4, "Rating__c: salesforce has no such property"),
                       (5, "Agent_Contact_Id__c: is the upsert key"),
                       (6, "LastName: is required on new records"),
                       (7, "Title.from: 'extra.' is not a person field")):
        assert f"{bad}:{line}: salesforce.fields.{what}" in message
    assert [r for r in app.request_log if r[0] not in ("GET",)] == [] and app.records("Lead") == []


def test_salesforce_a_mapping_change_resends_exactly_the_affected_persons(salesforce, store, tmp_path) -> None:
    app, settings = salesforce
    save(store, *[person(i, phone=f"+1415555{i:04d}" if i % 2 else None) for i in range(6)])
    push(store, sf_sink(settings))
    before = {i: app.upsert_count("Lead", f"email:p{i}@example.com") for i in range(6)}
    path = mapping_file(tmp_path, "salesforce:\n  fields:\n    MobilePhone: {from: phone}\n"
                                  "    LeadSource: {value: Web, write: if_empty}\n")

    stats = push(store, sf_sink(settings), path)

    # LeadSource is new for everyone: every person's payload changed, so all six are sent once.
    assert {i for i in range(6) if app.upsert_count("Lead", f"email:p{i}@example.com") != before[i]} == set(range(6))
    assert stats.updated == 6 and lead(app, 3)["MobilePhone"] == "+14155550003" and lead(app, 0)["LeadSource"] == "Web"
    before = {i: app.upsert_count("Lead", f"email:p{i}@example.com") for i in range(6)}
    narrower = mapping_file(tmp_path, "salesforce:\n  fields:\n    LeadSource: {value: Web, write: if_empty}\n",
                            "narrower.yaml")
    stats = push(store, sf_sink(settings), narrower)  # MobilePhone dropped: only persons with a phone change
    assert {i for i in range(6) if app.upsert_count("Lead", f"email:p{i}@example.com") != before[i]} == {1, 3, 5}
    assert (stats.updated, stats.unchanged) == (3, 3)
