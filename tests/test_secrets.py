"""Secrets never leave: environment -> resources (one secret check) -> real
httpx / hubspot-api-client / simple-salesforce over real HTTP to the
emulators -> Dagster's run storage, event log and compute logs under a real
DAGSTER_HOME, and the state store. Afterwards every byte under DAGSTER_HOME
and the state store is searched for the token: it is never there.

Covers a HubSpot token and a Salesforce token pasted with a trailing newline
(stripped with a warning naming the variable; the run works), a token with an
inner control character (ConfigError naming the variable, never the value),
the error path of every vendor client (their exceptions carry headers and
URLs), and repr() of every resource, settings and client object.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterator

import dagster as dg
from dagster._utils.error import serializable_error_info_from_exc_info
import pytest

from connectors import redact
from connectors.agentclara import AgentClaraSource
from connectors.errors import ConfigError, ConnectorError
from connectors.hubspot import HubSpotSink
from connectors.salesforce import SalesforceSettings, SalesforceSink
from pipelines.resources import build_resources
from sandbox import tls
from sandbox.agentclara import AgentClaraApp
from sandbox.http import App, Request, Response, ServerThread
from sandbox.hubspot import HubSpotApp
from sandbox.salesforce import SalesforceApp, serve
from tests.pipeline_runs import failure_messages, run_daily, step_metadata

PARTITION = "2026-11-22"
HUBSPOT_TOKEN = "pat-na1-7f3c9e2a-secret-hubspot-token"
CLARA_KEY = "ac_live_secret_clara_key_4242"


class Box:
    """AgentClara + HubSpot + Salesforce emulators, a state store and a DAGSTER_HOME."""

    def __init__(self, tmp_path: Path) -> None:
        self.agentclara = AgentClaraApp(contacts=60, conversations=20, api_keys={CLARA_KEY})
        self.hubspot = HubSpotApp(tokens=(HUBSPOT_TOKEN,))
        self.salesforce = SalesforceApp()
        self.servers = [ServerThread(self.agentclara).start(), ServerThread(self.hubspot).start(),
                        serve(self.salesforce)]
        self.home = tmp_path / "dagster_home"
        self.home.mkdir()
        self.db_path = tmp_path / "state.db"
        self.env = {
            "SYNC_DATABASE_URL": f"sqlite:///{self.db_path}",
            "AGENTCLARA_API_KEY": CLARA_KEY,
            "AGENTCLARA_BASE_URL": self.servers[0].url,
        }
        self.hubspot_env = {"HUBSPOT_ACCESS_TOKEN": HUBSPOT_TOKEN, "HUBSPOT_BASE_URL": self.servers[1].url}
        self.salesforce_env = {"SALESFORCE_INSTANCE_URL": self.servers[2].url,
                               "SALESFORCE_ACCESS_TOKEN": self.salesforce.access_token}

    def run(self, env: dict[str, str]) -> dg.ExecuteInProcessResult:
        """daily_sync on a persistent instance in DAGSTER_HOME (sqlite run/event storage, compute logs)."""
        with dg.instance_for_test(temp_dir=str(self.home)) as instance:
            return run_daily(env, PARTITION, instance=instance)

    def files(self) -> list[Path]:
        found = [p for p in self.home.rglob("*") if p.is_file()]
        found += [p for p in self.db_path.parent.glob(self.db_path.name + "*") if p.is_file()]
        return found

    def holding(self, secret: str) -> list[str]:
        """Every file under DAGSTER_HOME or of the state store that holds `secret` (raw or escaped)."""
        needles = {secret.encode(), secret.encode("unicode_escape"), repr(secret).encode()}
        return [str(p) for p in self.files() if any(n in p.read_bytes() for n in needles)]

    def stop(self) -> None:
        for server in self.servers:
            server.stop()


@pytest.fixture
def box(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Box]:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", tls.ca_path())
    created = Box(tmp_path)
    yield created
    created.stop()


def _compute_logs(box: Box) -> list[Path]:
    return [p for p in box.home.rglob("*") if p.suffix in (".err", ".out", ".complete")]


def test_a_hubspot_token_with_a_trailing_newline_works_and_is_found_nowhere(
        box: Box, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    result = box.run({**box.env, **box.hubspot_env, "HUBSPOT_ACCESS_TOKEN": HUBSPOT_TOKEN + "\n"})
    assert result.success, failure_messages(result)
    assert step_metadata(result, "hubspot_contacts")["created"] == len(box.hubspot.contacts()) > 0
    assert "HUBSPOT_ACCESS_TOKEN" in caplog.text and HUBSPOT_TOKEN not in caplog.text
    assert len(box.files()) > 3 and _compute_logs(box)  # the search below has something to search
    assert box.holding(HUBSPOT_TOKEN) == []


def test_a_salesforce_token_with_a_trailing_newline_works_and_is_found_nowhere(
        box: Box, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    token = box.salesforce.access_token
    result = box.run({**box.env, **box.salesforce_env, "SALESFORCE_ACCESS_TOKEN": token + "\r\n"})
    assert result.success, failure_messages(result)
    assert step_metadata(result, "salesforce_contacts")["created"] == len(box.salesforce.records("Lead")) > 0
    assert "SALESFORCE_ACCESS_TOKEN" in caplog.text and token not in caplog.text
    assert box.holding(token) == []


@pytest.mark.parametrize("variable", ["HUBSPOT_ACCESS_TOKEN", "SALESFORCE_ACCESS_TOKEN"])
def test_an_inner_control_character_fails_naming_the_variable_and_the_token_is_found_nowhere(
        box: Box, variable: str) -> None:
    token = HUBSPOT_TOKEN if variable.startswith("HUBSPOT") else box.salesforce.access_token
    bad = token[:10] + "\x1b[0m" + token[10:]
    targets = box.hubspot_env if variable.startswith("HUBSPOT") else box.salesforce_env
    result = box.run({**box.env, **targets, variable: bad})
    assert not result.success
    (message,) = failure_messages(result)
    assert variable in message and "control character" in message
    assert token[:10] not in message and token[10:] not in message
    assert box.holding(token[10:]) == [] and box.holding(token[:10]) == []
    assert box.hubspot.requests("POST") == [] and box.salesforce.records("Lead") == []


def test_a_refused_token_fails_without_the_token_anywhere(box: Box) -> None:
    """The error path: the CRM answers 401 and the vendor clients raise with headers and URLs."""
    wrong = "pat-na1-wrong-but-secret-0123456789"
    result = box.run({**box.env, **box.hubspot_env, "HUBSPOT_ACCESS_TOKEN": wrong})
    assert not result.success
    assert "401" in " ".join(failure_messages(result))
    assert box.holding(wrong) == []


def test_a_salesforce_password_and_security_token_with_newlines_log_in(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", tls.ca_path())
    caplog.set_level(logging.WARNING)
    app = SalesforceApp(users={"sync@example.com": ("pw-secret-0451", "sectok-secret-0452")})
    server = serve(app)
    try:
        env = {"SALESFORCE_USERNAME": "sync@example.com", "SALESFORCE_PASSWORD": "pw-secret-0451\n",
               "SALESFORCE_SECURITY_TOKEN": " sectok-secret-0452\r\n", "SALESFORCE_DOMAIN": server.url}
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        resource = build_resources(env)["salesforce"].process_config_and_initialize()
        resource.sink().prepare()  # logs in, then describes Lead
    finally:
        server.stop()
    assert app.login_count == 1
    assert "SALESFORCE_PASSWORD" in caplog.text and "SALESFORCE_SECURITY_TOKEN" in caplog.text
    assert "pw-secret" not in caplog.text and "sectok-secret" not in caplog.text


# -- every vendor client's exceptions, one by one, over real sockets ------------------


def _chain(exc: BaseException) -> str:
    """What Dagster stores of an exception (its serialized error info: message, traceback, cause and
    unsuppressed context), plus the message and args of every exception on that chain."""
    info = serializable_error_info_from_exc_info((type(exc), exc, exc.__traceback__))
    seen, parts, current = set(), [info.to_string()], exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        parts += [type(current).__name__, str(current), repr(current.args)]
        current = current.__cause__ or (None if current.__suppress_context__ else current.__context__)
    return "\n".join(parts)


def test_a_dead_port_raises_scrubbed_errors_from_every_client(box: Box) -> None:
    dead = "http://127.0.0.1:9"  # discard port: nothing listens
    token = "pat-na1-dead-port-secret-0123456789"
    sink = HubSpotSink(token, dead, max_retries=0)
    with pytest.raises(ConnectorError) as hub:
        sink.prepare()
    assert token not in _chain(hub.value)
    source = AgentClaraSource(CLARA_KEY, dead, max_attempts=1)
    with pytest.raises(ConnectorError) as clara:
        list(source.iter_contact_pages().pages())
    assert CLARA_KEY not in _chain(clara.value)
    sf_token = "00D000000000001!dead-port-secret-0123456789"
    settings = SalesforceSettings(instance_url="https://127.0.0.1:9", access_token=sf_token)
    with pytest.raises(ConnectorError) as sf:
        SalesforceSink(settings).prepare()
    assert sf_token not in _chain(sf.value)


def test_a_token_the_http_libraries_cannot_send_fails_as_a_scrubbed_connector_error(box: Box) -> None:
    """A non-Latin-1 character (a smart quote pasted with the token) passes the secret check but
    makes http.client/httpx raise from inside the vendor call: still a ConnectorError, token-free.
    (The tokens are in variables: a traceback quotes source lines, never values.)"""
    hub_token, clara_key, sf_token = ("pat-na1-\u201csmart-hub-secret", "ac_\u201csmart-clara-secret",
                                      "00D!\u201csmart-sf-secret")
    with pytest.raises(ConnectorError) as hub:
        HubSpotSink(hub_token, box.servers[1].url, max_retries=0).prepare()
    with pytest.raises(ConnectorError) as clara:
        list(AgentClaraSource(clara_key, box.servers[0].url, max_attempts=1).iter_contact_pages().pages())
    settings = SalesforceSettings(instance_url=box.servers[2].url, access_token=sf_token)
    with pytest.raises(ConnectorError) as sf:
        SalesforceSink(settings).prepare()
    for raised, secret in ((hub, hub_token), (clara, clara_key), (sf, sf_token)):
        assert secret.split("\u201c")[1] not in _chain(raised.value), raised.value


class Echo(App):
    """Answers every request 400 with the request's own Authorization header in its error body,
    in a shape each client reads (`error`, `message`, Salesforce's `errorCode`)."""

    def dispatch(self, request: Request) -> Response:
        said = f"bad credentials: {request.header('authorization')}"
        return Response(400, {"error": said, "message": said, "errorCode": "BAD_AUTH"})


def test_a_server_that_echoes_the_token_never_gets_it_into_an_error(tmp_path: Path) -> None:
    hub_token, clara_key, sf_token = ("pat-na1-echoed-hub-secret-1", "ac_echoed_clara_secret_2",
                                      "00D!echoed-sf-secret-3")
    with ServerThread(Echo()) as plain, ServerThread(Echo(), ssl_context=tls.server_context()) as tls_server:
        with pytest.raises(ConnectorError) as hub:
            HubSpotSink(hub_token, plain.url, max_retries=0).prepare()
        with pytest.raises(ConnectorError) as clara:
            list(AgentClaraSource(clara_key, plain.url, max_attempts=1).iter_contact_pages().pages())
        settings = SalesforceSettings(instance_url=tls_server.url, access_token=sf_token, ca_bundle=tls.ca_path())
        with pytest.raises(ConnectorError) as sf:
            SalesforceSink(settings).prepare()
    for raised, secret in ((hub, hub_token), (clara, clara_key), (sf, sf_token)):
        assert "bad credentials" in str(raised.value)  # the server's words arrive ...
        assert secret not in _chain(raised.value), raised.value  # ... without the token


def test_redaction_covers_escaped_and_encoded_forms() -> None:
    secret = "s3cr3t+v/al=ue&<x>"
    redact.register(secret)
    for form in (f"b'Bearer {secret}'", "s3cr3t%2Bv%2Fal%3Due%26%3Cx%3E", "s3cr3t+v/al=ue&amp;&lt;x&gt;", f"{{'Authorization': 'Bearer {secret}'}}"):
        assert "s3cr3t" not in redact.scrub(f"error: {form} (end)"), form
    assert redact.scrub("nothing secret here") == "nothing secret here"
    assert redact.describe(ValueError(f"Invalid header value {secret!r}")) == "ValueError: Invalid header value '[redacted]'"


# -- repr() of every resource, settings and client object ------------------------------


SECRETS = {
    "AGENTCLARA_API_KEY": "ac_live_repr_secret_1",
    "CLAIRO_API_KEY": "clr_repr_secret_2",
    "AGENTPRO_API_KEY": "ap_repr_secret_3",
    "CHATLOOM_API_KEY": "clf_repr_secret_4",
    "HUBSPOT_ACCESS_TOKEN": "pat-repr-secret-5",
    "SALESFORCE_INSTANCE_URL": "https://127.0.0.1:1",
    "SALESFORCE_ACCESS_TOKEN": "00Drepr!secret6",
    "SALESFORCE_USERNAME": "someone@example.com",
    "SALESFORCE_PASSWORD": "repr-secret-password-7",
    "SALESFORCE_SECURITY_TOKEN": "repr-secret-sectoken-8",
    "SYNC_DATABASE_URL": "postgresql+psycopg://sync:repr-secret-dbpw-9@db.example.com/sync",
}


def _assert_hidden(text: str) -> None:
    for name, value in SECRETS.items():
        if name.endswith(("_KEY", "_TOKEN", "_PASSWORD")):
            assert value not in text, (name, text)
    assert "repr-secret-dbpw-9" not in text, text


def test_repr_of_every_resource_hides_its_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    resources = build_resources(SECRETS)
    for resource in resources.values():
        _assert_hidden(repr(resource) + str(resource))
        ready = resource.process_config_and_initialize()  # EnvVar fields now hold the values
        _assert_hidden(repr(ready) + str(ready))
    plain = build_resources({})["hubspot"].model_copy(update={"access_token": "pat-repr-secret-5"})
    _assert_hidden(repr(plain))
    assert "access_token=" in repr(plain)  # the field is shown, not its value


def test_repr_of_every_client_sink_and_settings_object_hides_its_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    resources = {k: v.process_config_and_initialize() for k, v in build_resources(SECRETS).items()}
    objects: list[object] = [resources[name].client() for name in ("agentclara", "clairo", "agentpro", "chatloom")]
    objects += [o.client for o in objects]
    objects.append(resources["hubspot"].sink())
    sf_sink = resources["salesforce"].sink()
    objects += [sf_sink, sf_sink._settings]
    objects.append(resources["state"])
    objects.append(resources["settings"])
    for obj in objects:
        _assert_hidden(repr(obj) + str(obj))
    for obj in objects[:4]:
        obj.close()  # type: ignore[attr-defined]


def test_the_secret_check_is_the_same_for_every_secret(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    assert redact.check_secret("X_TOKEN", "  abc-123\n", service="svc") == "abc-123"
    assert "X_TOKEN" in caplog.text and "abc-123" not in caplog.text
    for bad in ("abc\x00def", "abc def", "abc\tdef", "abc\x7fdef", "abc\u2028def"):
        with pytest.raises(ConfigError) as refused:
            redact.check_secret("X_TOKEN", bad, service="svc")
        assert "X_TOKEN" in str(refused.value) and "abc" not in str(refused.value)
        assert refused.value.__cause__ is None and refused.value.__context__ is None
    with pytest.raises(ConfigError, match="X_TOKEN"):
        redact.check_secret("X_TOKEN", " \n ", service="svc")
