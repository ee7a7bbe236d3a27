"""The webhook receiver: signed AgentClara events over real HTTP into the inbox, and nothing else.

`python -m pipelines.webhooks` runs as a real child process on a free port,
its state store a temp SQLite file or a private PostgreSQL schema
(`store_url`); the AgentClara emulator signs and sends. Covers: a signed
event stored once, a replay answered 200 and changing nothing, forged,
unsigned, malformed and oversized posts refused and stored nowhere, the
health endpoint, a clean SIGTERM, a SIGKILL between events losing nothing
answered 2xx, one log line per event without personal data; the signature
rule and the event validation as pure functions; the store's v4 -> v5
upgrade; the sensor's batches and run keys; the contract names resolving.
"""

from __future__ import annotations

import json
import uuid
from contextlib import ExitStack
from pathlib import Path
from typing import Iterator

import dagster as dg
import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipelines import defs
from pipelines.definitions import build_definitions
from pipelines.resources import StateStoreResource
from pipelines.state import StateStore, migrations
from pipelines.webhooks import inbox, signature
from pipelines.webhooks.events import InvalidEvent, parse_event
from pipelines.webhooks.process import ReceiverProcess
from sandbox.agentclara import AgentClaraApp
from tests.conftest import older_store, private_schema

SECRET = "whsec_test_5f1e0c"


@pytest.fixture
def agentclara() -> AgentClaraApp:
    return AgentClaraApp(contacts=10, conversations=20)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def served(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ReceiverProcess, str]]:
    """One receiver per store kind for the module's request tests (a child process costs ~2 s to start)."""
    with ExitStack() as stack:
        if request.param == "sqlite":
            url = f"sqlite:///{tmp_path_factory.mktemp('inbox') / 'state.db'}"
        else:
            url = stack.enter_context(private_schema())
        yield stack.enter_context(ReceiverProcess({"SYNC_DATABASE_URL": url, "SYNC_WEBHOOK_SECRET": SECRET})), url


@pytest.fixture
def receiver(served: tuple[ReceiverProcess, str]) -> ReceiverProcess:
    return served[0]


@pytest.fixture
def served_url(served: tuple[ReceiverProcess, str]) -> str:
    """The served receiver's store (shared by the module's request tests: they compare before and after)."""
    return served[1]


def _rows(store_url: str) -> list[dict]:
    store = StateStore(store_url)
    try:
        return inbox.events(store.engine)
    finally:
        store.dispose()


def _event(agentclara: AgentClaraApp, kind: str = "message.received") -> dict:
    """An event with an id no other test used (the request tests share one store)."""
    return agentclara.webhook_event(kind, next(agentclara.conversation_ids()), event_id=f"evt_{uuid.uuid4().hex}")


# ------------------------------------------------------------------ through real HTTP


def test_a_signed_event_is_stored_once_and_a_replay_changes_nothing(
        receiver: ReceiverProcess, agentclara: AgentClaraApp, served_url: str) -> None:
    event = _event(agentclara)
    assert agentclara.emit_webhook(receiver.url, event, SECRET) == (
        200, {"ok": True, "event_id": event["id"], "outcome": "stored"})
    stored = _rows(served_url)

    assert agentclara.emit_webhook(receiver.url, event, SECRET)[1]["outcome"] == "duplicate"

    assert _rows(served_url) == stored
    (row,) = [row for row in stored if row["event_id"] == event["id"]]
    assert (row["event_id"], row["event_type"], row["status"]) == (event["id"], "message.received", "pending")


@pytest.mark.parametrize("forgery", ["sha256=" + "0" * 64, None, "sha1=abc", signature.sign(b"other body", SECRET)])
def test_a_forged_or_unsigned_post_is_refused_and_stored_nowhere(
        receiver: ReceiverProcess, agentclara: AgentClaraApp, served_url: str, forgery: str | None) -> None:
    before = _rows(served_url)
    status, body = agentclara.emit_webhook(receiver.url, _event(agentclara), None, signature=forgery)
    assert status == 401 and body["ok"] is False and "X-AgentClara-Signature" in body["error"]
    assert _rows(served_url) == before


@pytest.mark.parametrize(("body", "reason"), [
    (b"{not json", "not valid JSON"),
    (b"[1, 2]", "must be a JSON object"),
    (b'{"id": "evt_1", "event": "message.received", "data": {"id": "c"}, "x": NaN}', "not valid JSON"),
    (b'{"event": "message.received", "data": {"id": "c"}}', "`id` must be a non-empty string"),
    (b'{"id": "evt_1", "event": "message.received", "data": []}', "`data` must be an object"),
    (b'{"id": "evt_1", "event": "message.received", "data": {}}', "`data.id` must be a non-empty string"),
    (b'{"id": "evt_1", "event": "message.received", "created_at": "soon", "data": {"id": "c"}}', "ISO-8601"),
    (b"\xff\xfe", "not UTF-8"),
])
def test_a_malformed_post_gets_400_with_the_reason_and_is_stored_nowhere(
        receiver: ReceiverProcess, served_url: str, body: bytes, reason: str) -> None:
    before = _rows(served_url)
    status, answer = AgentClaraApp.emit_webhook(receiver.url, body, SECRET)
    assert status == 400 and reason in answer["error"]
    assert _rows(served_url) == before


def test_a_body_over_the_cap_gets_413(receiver: ReceiverProcess, served_url: str) -> None:
    before = _rows(served_url)
    status, answer = AgentClaraApp.emit_webhook(receiver.url, b"x" * (1024 * 1024 + 1), SECRET)
    assert status == 413 and answer["ok"] is False
    assert _rows(served_url) == before


def test_the_health_endpoint_says_the_store_answers(receiver: ReceiverProcess) -> None:
    answer = httpx.get(receiver.health_url)
    assert answer.status_code == 200 and answer.json() == {"ok": True, "store": "ok", "signatures": "checked"}


def test_an_unknown_event_type_is_kept_and_marked_ignored(
        receiver: ReceiverProcess, agentclara: AgentClaraApp, served_url: str) -> None:
    event = {"id": f"evt_{uuid.uuid4().hex}", "event": "contact.merged", "data": {"id": "cust_1"}}
    assert agentclara.emit_webhook(receiver.url, event, SECRET)[1]["outcome"] == "ignored"
    assert [row["status"] for row in _rows(served_url) if row["event_id"] == event["id"]] == ["ignored"]


def test_sigterm_stops_cleanly_and_the_log_has_one_line_per_event_without_personal_data(
        store_url: str, tmp_path: Path, agentclara: AgentClaraApp) -> None:
    event = _event(agentclara)
    email = event["data"].get("customer_email") or "nobody@example.org"
    log_path = tmp_path / "receiver.log"
    with log_path.open("wb") as log:
        process = ReceiverProcess({"SYNC_DATABASE_URL": store_url, "SYNC_WEBHOOK_SECRET": SECRET}, log=log).start()
        agentclara.emit_webhook(process.url, event, SECRET)
        agentclara.emit_webhook(process.url, b"{", SECRET)
        assert process.stop() == 0
    text = log_path.read_text()
    lines = [line for line in text.splitlines() if "agentclara webhook" in line]
    assert len(lines) == 2 and f"{event['id']} message.received stored 200" in lines[0]
    assert "invalid" in lines[1] and " 400 " in lines[1]
    assert "receiver stopped, state store closed" in text
    for personal in (email, str(event["data"].get("customer_name")), str(event["data"].get("customer_phone"))):
        assert personal not in text


def test_a_receiver_killed_between_events_loses_nothing_it_answered(
        store_url: str, agentclara: AgentClaraApp) -> None:
    env = {"SYNC_DATABASE_URL": store_url, "SYNC_WEBHOOK_SECRET": SECRET}
    answered = []
    process = ReceiverProcess(env).start()
    for _ in range(3):
        event = _event(agentclara)
        assert agentclara.emit_webhook(process.url, event, SECRET)[0] == 200
        answered.append(event["id"])
    process.kill()  # SIGKILL: no shutdown, no flush
    late = _event(agentclara)
    with pytest.raises(httpx.TransportError):  # AgentClara would retry this delivery later
        agentclara.emit_webhook(process.url, late, SECRET)
    restarted = ReceiverProcess(env, port=process.port).start()
    try:
        assert agentclara.emit_webhook(restarted.url, late, SECRET)[0] == 200
        assert agentclara.emit_webhook(restarted.url, _event(agentclara) | {"id": answered[0]}, SECRET)[1][
            "outcome"] == "duplicate"
    finally:
        restarted.stop()
    assert [row["event_id"] for row in _rows(store_url)] == [*answered, late["id"]]


def test_without_a_secret_unsigned_events_are_accepted(store_url: str, agentclara: AgentClaraApp) -> None:
    with ReceiverProcess({"SYNC_DATABASE_URL": store_url, "SYNC_WEBHOOK_SECRET": ""}) as process:
        assert httpx.get(process.health_url).json()["signatures"] == "not checked"
        assert agentclara.emit_webhook(process.url, _event(agentclara))[0] == 200


def test_a_secret_with_a_control_character_stops_the_receiver_naming_the_variable(tmp_path: Path) -> None:
    log_path = tmp_path / "receiver.log"
    with log_path.open("wb") as log:
        process = ReceiverProcess({"SYNC_DATABASE_URL": f"sqlite:///{tmp_path / 's.db'}",
                                   "SYNC_WEBHOOK_SECRET": "whsec\x07bell"}, log=log)
        with pytest.raises(Exception, match="exited with 2"):
            process.start()
    text = log_path.read_text()
    assert "SYNC_WEBHOOK_SECRET contains a control character" in text and "bell" not in text


# ------------------------------------------------------------------ pure rules


def test_the_signature_is_hmac_sha256_hex_of_the_raw_body() -> None:
    import hashlib
    import hmac

    body = b'{"id": "evt_1"}'
    assert signature.sign(body, "k3y") == "sha256=" + hmac.new(b"k3y", body, hashlib.sha256).hexdigest()
    assert signature.verify(body, signature.sign(body, "k3y"), "k3y")
    assert signature.verify(body, signature.sign(body, "k3y").upper().replace("SHA256=", "sha256="), "k3y")
    assert not signature.verify(body + b" ", signature.sign(body, "k3y"), "k3y")
    assert not signature.verify(body, None, "k3y") and not signature.verify(body, "", "k3y")


@given(st.binary(max_size=300) | st.builds(lambda v: json.dumps(v).encode(), st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12)))
def test_any_body_is_an_event_or_an_invalid_event_never_an_error(body: bytes) -> None:
    try:
        event = parse_event(body)
    except InvalidEvent as exc:
        assert exc.reason
    else:
        assert event.event_id and event.payload["data"] is not None


def test_a_carried_thread_is_merged_with_the_kept_one_by_message_id() -> None:
    from pipelines.webhooks.land import merge_messages

    kept = [{"id": "m1", "content": "Hi"}, {"id": "m2", "content": "When?"}]
    carried = [{"id": "m2", "content": "When exactly?"}, {"id": "m3", "content": "Friday"}]
    assert merge_messages(kept, carried) == [kept[0], carried[0], carried[1]]
    assert merge_messages(None, carried) == carried
    assert merge_messages(kept, [{"content": "no id"}, {"content": "no id"}]) == [*kept, {"content": "no id"}]


# ------------------------------------------------------------------ the store and the sensor


def test_a_v4_store_upgrades_to_v5_with_the_inbox(store_url: str) -> None:
    older_store(store_url, without="webhook_inbox", version=4)
    store = StateStore(store_url)  # upgrades on open
    try:
        with store.engine.connect() as conn:
            assert migrations.current_version(conn) == migrations.LATEST == 5
        assert store.count("persons") == 1
        assert inbox.store_event(store.engine, parse_event(b'{"id": "e1", "event": "message.received", '
                                                           b'"data": {"id": "conv_1"}}'))
        assert inbox.status_counts(store.engine) == {"pending": 1}
    finally:
        store.dispose()


def _tick(sensor: dg.SensorDefinition, instance: dg.DagsterInstance, store_url: str) -> dg.SensorResult:
    """One evaluation with a resource of its own, its context closed after it: nothing of it keeps the
    test's instance alive past the test (Dagster tracks the current instance in a context variable)."""
    with dg.build_sensor_context(instance=instance,
                                 resources={"state": StateStoreResource(database_url=store_url)}) as context:
        return sensor.evaluate_tick(context)


def _store_events(store: StateStore, count: int, start: int = 0) -> None:
    for k in range(start, start + count):
        body = json.dumps({"id": f"evt_{k}", "event": "message.received", "data": {"id": f"conv_{k}"}}).encode()
        inbox.store_event(store.engine, parse_event(body))


def test_the_sensor_batches_pending_events_with_a_run_key_per_batch(store_url: str) -> None:
    store = StateStore(store_url)
    sensor = build_definitions({}).resolve_sensor_def("agentclara_webhook_sensor")  # none of it outlives the test
    with dg.instance_for_test() as instance:
        def tick() -> dg.SensorResult:
            return _tick(sensor, instance, store_url)

        assert tick().skip_message == "no pending webhook events"
        _store_events(store, 3)
        (request,) = tick().run_requests
        assert request.run_config == {"ops": {"webhook_land": {"config": {"first_seq": 1, "last_seq": 3}}}}
        assert request.run_key == "agentclara-inbox:1-3:3"
        in_flight = instance.create_run_for_job(defs.resolve_job_def("webhook_sync"), run_config=request.run_config,
                                                status=dg.DagsterRunStatus.STARTED)
        _store_events(store, 2, start=3)
        assert "still in flight" in tick().skip_message
        instance.report_run_failed(in_flight)
        inbox.mark(store.engine, [1, 2, 3], inbox.DONE, run_id=in_flight.run_id)
        (request,) = tick().run_requests  # what arrived meanwhile, in one batch
        assert request.run_key == "agentclara-inbox:4-5:2"
        failed = instance.create_run_for_job(defs.resolve_job_def("webhook_sync"), run_config=request.run_config,
                                             tags=request.tags, status=dg.DagsterRunStatus.STARTED)
        instance.report_run_failed(failed)
        assert "failed; trying again in" in tick().skip_message  # backs off, then a numbered attempt
    store.dispose()


def test_the_sensor_puts_bookings_kept_waiting_back_in_its_batch_once(store_url: str) -> None:
    """Bookings an earlier version marked `waiting_for_appointment_support` are batched again, once."""
    store = StateStore(store_url)
    sensor = build_definitions({}).resolve_sensor_def("agentclara_webhook_sensor")
    try:
        with dg.instance_for_test() as instance:
            _store_events(store, 3)
            inbox.mark(store.engine, [1, 2], inbox.WAITING_FOR_APPOINTMENTS, run_id="before-appointments")
            inbox.mark(store.engine, [3], inbox.DONE, run_id="before-appointments")

            (request,) = _tick(sensor, instance, store_url).run_requests

            assert request.run_key == "agentclara-inbox:1-2:2"  # the waiting ones, not the done one
            assert inbox.status_counts(store.engine) == {"pending": 2, "done": 1}
            assert inbox.requeue(store.engine) == 0  # idempotent: nothing is left waiting
    finally:
        store.dispose()


def test_a_failed_batch_is_tried_again_under_a_numbered_key_after_its_back_off(
        store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from pipelines.webhooks import sensor as module

    store = StateStore(store_url)
    sensor = build_definitions({}).resolve_sensor_def("agentclara_webhook_sensor")
    monkeypatch.setattr(module, "RETRY_AFTER_SECONDS", 0)  # the back-off's length, not its rule
    try:
        with dg.instance_for_test() as instance:
            _store_events(store, 1)
            keys = []
            for _ in range(module.MAX_ATTEMPTS + 1):
                result = _tick(sensor, instance, store_url)
                if not result.run_requests:
                    break
                (request,) = result.run_requests
                keys.append(request.run_key)
                run = instance.create_run_for_job(defs.resolve_job_def("webhook_sync"), tags=request.tags,
                                                  run_config=request.run_config, status=dg.DagsterRunStatus.STARTED)
                instance.report_run_failed(run)
            assert keys == ["agentclara-inbox:1-1:1", *(f"agentclara-inbox:1-1:1:attempt{n}" for n in range(2, 6))]
            assert "failed 5 times" in result.skip_message
    finally:
        store.dispose()


def test_the_contract_names_resolve() -> None:
    assert defs.resolve_job_def("webhook_sync").partitions_def is None
    sensor = defs.resolve_sensor_def("agentclara_webhook_sensor")
    assert sensor.default_status == dg.DefaultSensorStatus.STOPPED
    assert sensor.job_name == "webhook_sync" and sensor.minimum_interval_seconds <= 10
