"""Transport rules, from the environment to the socket: resources -> one base-URL
check (https, or http to loopback only) before any request; source client
(httpx) and HubSpot sink (urllib3) over real HTTP to the emulators -> a
streamed body refused past the size cap; every listing under an overall
deadline (progress kept); a body that is not valid UTF-8 decoded with U+FFFD,
counted and logged, its page's records going on.
"""

from __future__ import annotations

import logging
from typing import Iterator

import pytest

from connectors.agentclara import AgentClaraSource
from connectors.body import MAX_RESPONSE_BYTES, read_capped
from connectors.errors import ConfigError, ListingDeadlineExceeded, ResponseTooLarge
from connectors.hubspot import HubSpotSink
from connectors.source import DEFAULT_LISTING_DEADLINE_S
from connectors.urls import check_base_url
from pipelines.resources import build_resources
from pipelines.state import StateStore
from sandbox.agentclara import AgentClaraApp
from sandbox.http import ServerThread
from sandbox.hubspot import DEFAULT_TOKEN, HubSpotApp
from tests.pipeline_runs import failure_messages, run_daily

KEY = "ac_transport_key_0123"


@pytest.fixture
def clara() -> Iterator[tuple[AgentClaraApp, str]]:
    app = AgentClaraApp(contacts=300, conversations=10, api_keys={KEY})
    server = ServerThread(app).start()
    yield app, server.url
    server.stop()


# -- base URLs ---------------------------------------------------------------------


@pytest.mark.parametrize("url", [
    "http://api.example.com", "http://10.0.0.5:8080", "http://127.0.0.1.evil.example", "http://localhost.evil.example",
    "http://[2001:db8::1]/", "ftp://api.example.com", "api.example.com", "",
])
def test_a_base_url_that_is_not_https_or_loopback_is_refused_naming_the_variable(url: str) -> None:
    with pytest.raises(ConfigError) as refused:
        check_base_url("AGENTCLARA_BASE_URL", url, service="agentclara")
    assert "AGENTCLARA_BASE_URL" in str(refused.value) and "https://" in str(refused.value)


@pytest.mark.parametrize("url", [
    "https://api.agentclara.app", "https://10.0.0.5:8443/api/v1", "http://127.0.0.1:8123", "http://127.8.9.10/x",
    "http://localhost:3000", "http://[::1]:9000", "HTTP://LOCALHOST:1",
])
def test_https_and_loopback_http_are_accepted(url: str) -> None:
    assert check_base_url("CLAIRO_BASE_URL", url, service="clairo") == url


def test_a_password_inside_a_base_url_is_refused_without_repeating_it() -> None:
    with pytest.raises(ConfigError) as refused:
        check_base_url("HUBSPOT_BASE_URL", "https://me:hunter2-secret@api.hubapi.com", service="HubSpot")
    assert "HUBSPOT_BASE_URL" in str(refused.value) and "hunter2" not in str(refused.value)


ENVS = {
    "AGENTCLARA_BASE_URL": {"AGENTCLARA_API_KEY": KEY},
    "CLAIRO_BASE_URL": {"CLAIRO_API_KEY": "clr_transport_key"},
    "AGENTPRO_BASE_URL": {"AGENTPRO_API_KEY": "ap_transport_key"},
    "CHATLOOM_BASE_URL": {"CHATLOOM_API_KEY": "clf_transport_key"},
    "HUBSPOT_BASE_URL": {"HUBSPOT_ACCESS_TOKEN": DEFAULT_TOKEN},
    "SALESFORCE_INSTANCE_URL": {"SALESFORCE_ACCESS_TOKEN": "00Dtransport!token"},
}


@pytest.mark.parametrize("variable", sorted(ENVS))
def test_every_base_url_variable_refuses_plain_http_before_the_first_request(
        variable: str, monkeypatch: pytest.MonkeyPatch) -> None:
    env = {**ENVS[variable], variable: "http://api.example.com"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    name = variable.split("_")[0].lower()
    resource = build_resources(env)[name].process_config_and_initialize()
    with pytest.raises(ConfigError) as refused:
        resource.client() if hasattr(resource, "client") else resource.sink()
    assert variable in str(refused.value) and "https://" in str(refused.value)


def test_daily_sync_with_a_plain_http_source_url_fails_that_source_naming_the_variable(tmp_path) -> None:
    env = {"SYNC_DATABASE_URL": f"sqlite:///{tmp_path / 'state.db'}", "AGENTCLARA_API_KEY": KEY,
           "AGENTCLARA_BASE_URL": "http://api.example.com"}
    result = run_daily(env, "2026-11-22")
    assert not result.success
    (message,) = failure_messages(result)
    assert "AGENTCLARA_BASE_URL" in message and "https://" in message and KEY not in message
    assert StateStore(env["SYNC_DATABASE_URL"]).count("raw_records") == 0  # nothing was read


# -- the size cap --------------------------------------------------------------------


def test_a_body_above_the_cap_is_refused(clara: tuple[AgentClaraApp, str]) -> None:
    app, url = clara
    with AgentClaraSource(KEY, url, max_response_bytes=4096, max_attempts=1) as source:
        with pytest.raises(ResponseTooLarge) as refused:
            list(source.iter_contact_pages().pages())
    assert "GET /contacts" in str(refused.value) and "4,096-byte cap" in str(refused.value)
    with AgentClaraSource(KEY, url) as source:  # the default cap lets the same pages through
        assert sum(len(page) for page in source.iter_contact_pages().pages()) == 300


def test_hubspot_answers_above_the_cap_are_refused() -> None:
    app = HubSpotApp()
    with ServerThread(app) as server:
        with pytest.raises(ResponseTooLarge) as refused:
            HubSpotSink(DEFAULT_TOKEN, server.url, max_response_bytes=512).prepare()
        assert "512-byte cap" in str(refused.value)
        HubSpotSink(DEFAULT_TOKEN, server.url).prepare()  # and the default cap does not get in the way


def test_the_cap_stops_reading_instead_of_loading_first() -> None:
    read: list[int] = []

    def huge() -> Iterator[bytes]:  # 1 MB in 1,000-byte chunks
        for _ in range(1000):
            read.append(1)
            yield b"x" * 1000

    with pytest.raises(ResponseTooLarge):
        read_capped(huge(), service="svc", what="the answer", cap=10_000)
    assert len(read) == 11  # one chunk past the cap, then it stopped
    assert read_capped(iter([b"a" * 10, b"b" * 10]), service="svc", what="x", cap=20) == b"a" * 10 + b"b" * 10
    assert read_capped(iter([b"a" * 20]), service="svc", what="x", cap=20, declared=20) == b"a" * 20
    with pytest.raises(ResponseTooLarge):  # a Content-Length above the cap: refused before reading
        read_capped(huge(), service="svc", what="x", cap=20, declared=21)
    assert len(read) == 11
    assert MAX_RESPONSE_BYTES == 50 * 1024 * 1024


# -- the listing deadline ---------------------------------------------------------------


def test_a_listing_stops_at_its_deadline_with_its_pages_kept(clara: tuple[AgentClaraApp, str]) -> None:
    app, url = clara
    app.faults.latency_s = 0.1
    kept: list[dict] = []
    with AgentClaraSource(KEY, url, concurrency=1, listing_deadline_s=0.15) as source:
        with pytest.raises(ListingDeadlineExceeded) as stopped:
            for page in source.iter_contact_pages().pages():
                kept.extend(page)
    assert stopped.value.listing == "contacts" and "contacts" in str(stopped.value)
    assert "SYNC_LISTING_DEADLINE_SECONDS" in str(stopped.value)
    assert 0 < len(kept) < 300  # what was read before the deadline reached the consumer


def test_the_deadline_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTCLARA_API_KEY", KEY)
    env = {"AGENTCLARA_API_KEY": KEY, "SYNC_LISTING_DEADLINE_SECONDS": "90"}
    resource = build_resources(env)["agentclara"].process_config_and_initialize()
    with resource.client() as source:
        assert source.listing_deadline_s == 90
    default = build_resources({"AGENTCLARA_API_KEY": KEY})["agentclara"].process_config_and_initialize()
    with default.client() as source:
        assert source.listing_deadline_s == DEFAULT_LISTING_DEADLINE_S == 6 * 3600
    with pytest.raises(ConfigError, match="SYNC_LISTING_DEADLINE_SECONDS"):
        build_resources({"SYNC_LISTING_DEADLINE_SECONDS": "soon"})


# -- bodies that are not valid UTF-8 --------------------------------------------------------


def test_an_invalid_utf8_body_is_decoded_with_replacements_counted_and_logged(
        clara: tuple[AgentClaraApp, str], caplog: pytest.LogCaptureFixture) -> None:
    app, url = clara
    app.faults.invalid_utf8_next = 1
    caplog.set_level(logging.WARNING)
    with AgentClaraSource(KEY, url) as source:
        contacts = [c for page in source.iter_contact_pages().pages() for c in page]
        assert len(contacts) == 300  # the page went on
        assert sum("\ufffd" in str(c.get("name")) for c in contacts) == 1
        assert source.client.stats.as_dict()["invalid_utf8_bodies"] == 1
        assert source.stats.invalid_utf8_bodies == 1
    assert "/contacts" in caplog.text and "UTF-8" in caplog.text
