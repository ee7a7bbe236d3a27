"""Source clients over real HTTP: client -> httpx -> loopback socket ->
sandbox.http.ServerThread -> a small scripted App (and, at the end, the
AgentClara and Clairo emulators). Covers retries on injected 500s, dropped
connections and 429s, Retry-After, auth failures that stop at once without
leaking the key, malformed payloads (and valid JSON too deep or with too long
a number to decode), TLS verification, offset probing and concurrent paging.
Sleeps and the limiter's clock are fakes, so waits are recorded, not slept."""

from __future__ import annotations

import threading
import time
from typing import Iterator

import pytest

from connectors.agentclara import AgentClaraSource
from connectors.agentpro import AgentProSource
from connectors.chatloom import ChatloomSource
from connectors.clairo import ClairoSource
from connectors.errors import (
    AuthError,
    ConfigError,
    NotFound,
    PayloadError,
    RequestError,
    RetriesExhausted,
)
from connectors.ratelimit import RateLimiter
from sandbox.agentclara import DEFAULT_KEY as CLARA_DEFAULT_KEY
from sandbox.agentclara import AgentClaraApp
from sandbox.http import App, Request, Response, ServerThread
from sandbox.process import ServerProcess, serve_until_stopped

CLARA_KEY = "ac_live_0123456789abcdef"
CLAIRO_KEY = "clr_live_0123456789abcdef"
LOOM_KEY = "clf_live_0123456789abcdef"
PRO_KEY = "ap_live_0123456789abcdef"


class FakeTime:
    """Clock that moves only when slept on; every sleep is recorded."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []
        self._lock = threading.Lock()

    def clock(self) -> float:
        with self._lock:
            return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            self.now += seconds


def fake_options(fake: FakeTime, windows=((1000, 60.0),)) -> dict:
    """Source keyword arguments that route every wait through `fake`."""
    return {
        "limiter": RateLimiter(list(windows), clock=fake.clock, sleep=fake.sleep),
        "sleep": fake.sleep,
        "rng": lambda: 0.5,
    }


def paged(items: list[dict], request: Request, max_limit: int = 100) -> list[dict]:
    limit = min(int(request.query.get("limit", 25)), max_limit)
    offset = int(request.query.get("offset", 0))
    return items[offset : offset + limit]


class Gauge:
    """How many requests the server is answering at once, and the most ever."""

    def __init__(self) -> None:
        self.now = 0
        self.peak = 0
        self._lock = threading.Lock()

    def __enter__(self) -> None:
        with self._lock:
            self.now += 1
            self.peak = max(self.peak, self.now)

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self.now -= 1


class MiniClara(App):
    """AgentClara-shaped: Bearer key, {"success", "data"} envelope, limit/offset."""

    def __init__(self, contacts: int = 250) -> None:
        super().__init__()
        self.contacts = [{"id": f"cust_{i}", "name": f"Person {i}"} for i in range(contacts)]
        self.gauge = Gauge()
        self.latency_s = 0.0  # server think time inside the gauge
        self.retry_after = "1"
        self.route("GET", "/contacts", self.list_contacts)
        self.route("GET", "/conversations/{cid}", self.get_conversation)

    def error_response(self, status: int, message: str) -> Response:
        return Response(status, {"success": False, "error": message})

    def throttled_response(self) -> Response:
        return Response(429, {"success": False, "error": "Rate limit"}, {"Retry-After": self.retry_after})

    def before(self, request: Request) -> Response | None:
        if request.header("authorization") != f"Bearer {CLARA_KEY}":
            return self.error_response(401, "Invalid API key")
        return None

    def list_contacts(self, request: Request) -> Response:
        with self.gauge:
            if self.latency_s:
                time.sleep(self.latency_s)  # simulated server work, not synchronisation
            return Response(200, {"success": True, "data": paged(self.contacts, request)})

    def get_conversation(self, request: Request) -> Response:
        cid = request.params["cid"]
        if cid == "broken":
            return Response(200, raw=b'{"success": true, "data": {"id": ')
        if cid == "refused":
            return Response(200, {"success": False, "error": "Conversation is archived"})
        if cid == "gone":
            return self.error_response(404, "Conversation not found")
        return Response(200, {"success": True, "data": {"id": cid, "messages": [{"id": "m1"}]}})


class Stage:
    """Stands in for an App on one server shared by the module; each test puts
    its own app on stage (a ServerThread takes ~0.5 s to shut down)."""

    def __init__(self) -> None:
        self.app: App = App()

    def __getattr__(self, name: str):
        return getattr(self.app, name)


@pytest.fixture(scope="module")
def stage() -> Iterator[tuple[Stage, ServerThread]]:
    shared = Stage()
    with ServerThread(shared) as server:  # type: ignore[arg-type]
        yield shared, server


@pytest.fixture
def serve(stage):
    """serve(app) -> the shared server, now answering with `app`."""
    shared, server = stage

    def put(app) -> ServerThread:
        shared.app = app
        return server

    yield put
    shared.app = App()


@pytest.fixture
def clara(serve) -> tuple[MiniClara, ServerThread]:
    app = MiniClara()
    return app, serve(app)


def ids(pages) -> list[str]:
    out = [r["id"] for page in pages for r in page]
    assert len(out) == len(set(out))
    return out


class TestRetriesOverHTTP:
    @pytest.mark.parametrize("failures_before_success", [0, 1, 3, 5])
    def test_injected_500s_end_with_the_right_data(self, clara, failures_before_success: int) -> None:
        app, server = clara
        app.faults.fail_next = failures_before_success
        fake = FakeTime()
        with AgentClaraSource(CLARA_KEY, server.url, concurrency=1, **fake_options(fake)) as source:
            got = ids(source.iter_contact_pages())
            stats = source.stats
        assert got == [c["id"] for c in app.contacts]
        assert stats.retries == failures_before_success == stats.server_errors
        assert app.status_counts.get(500, 0) == failures_before_success
        assert stats.requests == stats.pages + failures_before_success
        assert stats.complete

    def test_retry_budget_runs_out(self, clara) -> None:
        app, server = clara
        app.faults.fail_next = 6
        fake = FakeTime()
        with AgentClaraSource(CLARA_KEY, server.url, concurrency=1, max_attempts=6, **fake_options(fake)) as source:
            with pytest.raises(RetriesExhausted) as info:
                list(source.iter_contact_pages())
        assert info.value.last_status == 500
        assert "agentclara" in str(info.value) and "HTTP 500" in str(info.value)
        assert len(app.request_log) == 6

    def test_dropped_connections_are_retried(self, clara) -> None:
        app, server = clara
        app.faults.drop_next = 2
        fake = FakeTime()
        with AgentClaraSource(CLARA_KEY, server.url, concurrency=1, **fake_options(fake)) as source:
            got = ids(source.iter_contact_pages())
            assert source.stats.transport_errors == 2 and source.stats.retries == 2
        assert got == [c["id"] for c in app.contacts]

    @pytest.mark.parametrize("retry_after, expected", [("1", 1.0), ("7", 7.0), ("0", 0.0)])
    def test_429_honours_retry_after(self, clara, retry_after: str, expected: float) -> None:
        app, server = clara
        app.retry_after = retry_after
        app.faults.throttle_next = 1
        fake = FakeTime()
        with AgentClaraSource(CLARA_KEY, server.url, concurrency=1, **fake_options(fake)) as source:
            got = ids(source.iter_contact_pages())
            assert source.stats.throttled == 1 and source.stats.retries == 1
        assert got == [c["id"] for c in app.contacts]
        assert fake.sleeps == ([expected] if expected else [])

    def test_mixed_faults_under_concurrency(self, clara) -> None:
        app, server = clara
        app.contacts = [{"id": f"cust_{i}"} for i in range(1000)]
        # fewer faults than the retry budget, wherever they land
        app.faults.fail_next, app.faults.drop_next, app.faults.throttle_next = 2, 1, 2
        fake = FakeTime()
        with AgentClaraSource(CLARA_KEY, server.url, concurrency=4, **fake_options(fake)) as source:
            got = ids(source.iter_contact_pages())
            assert source.stats.retries == 5
        assert got == [c["id"] for c in app.contacts]


class TestAuthFailures:
    def test_401_fails_at_once_without_the_key(self, clara) -> None:
        app, server = clara
        wrong = "ac_wrong_key_ffffffffffff"
        with AgentClaraSource(wrong, server.url, **fake_options(FakeTime())) as source:
            with pytest.raises(AuthError) as info:
                list(source.iter_contact_pages())
            text = " ".join([str(info.value), repr(info.value), repr(source), repr(source.client), str(source.stats)])
        assert len(app.request_log) == 1
        assert "agentclara" in str(info.value) and "401" in str(info.value)
        assert wrong not in text and "Invalid API key" in str(info.value)

    def test_clairo_403_names_the_plan(self, serve) -> None:
        class NoPlan(App):
            def before(self, request: Request) -> Response:
                return Response(403, {"error": "Forbidden"})

        app = NoPlan()
        server = serve(app)
        with ClairoSource(CLAIRO_KEY, server.url, **fake_options(FakeTime())) as source:
            with pytest.raises(AuthError) as info:
                source.list_agents()
        assert len(app.request_log) == 1
        message = str(info.value)
        assert "clairo" in message and "403" in message and "Max plan" in message
        assert CLAIRO_KEY not in message

    @pytest.mark.parametrize(
        "factory, key",
        [
            (lambda k: ClairoSource(k, "http://127.0.0.1:9"), "sk_wrong_prefix_123456"),
            (lambda k: ChatloomSource(k, "http://127.0.0.1:9"), "clr_not_a_chatloom_key"),
            (lambda k: AgentClaraSource(k, "http://127.0.0.1:9"), ""),
        ],
    )
    def test_bad_keys_fail_before_any_request(self, factory, key: str) -> None:
        with pytest.raises(ConfigError) as info:
            factory(key)
        assert not key or key not in str(info.value)

    def test_key_never_logged(self, clara, caplog) -> None:
        import logging

        app, server = clara
        app.faults.fail_next, app.faults.throttle_next = 1, 1
        caplog.set_level(logging.DEBUG)
        with AgentClaraSource(CLARA_KEY, server.url, **fake_options(FakeTime())) as source:
            ids(source.iter_contact_pages())
        with AgentClaraSource("ac_bad_key_0000000000", server.url, **fake_options(FakeTime())) as source:
            with pytest.raises(AuthError):
                source.get_conversation("c1")
        assert "retry 1/5" in caplog.text
        assert CLARA_KEY not in caplog.text and "ac_bad_key_0000000000" not in caplog.text

    @pytest.mark.parametrize("factory, variable", [
        (lambda key: AgentClaraSource("ac_" + key, "https://api.agentclara.app"), "AGENTCLARA_API_KEY"),
        (lambda key: ClairoSource("clr_" + key, "https://clairo.tech/api/v1"), "CLAIRO_API_KEY"),
        (lambda key: AgentProSource("ap_" + key, "https://agentpro.chat"), "AGENTPRO_API_KEY"),
        (lambda key: ChatloomSource("clf_" + key, "https://chatloom.app"), "CHATLOOM_API_KEY"),
    ])
    def test_a_control_character_in_a_key_is_refused_naming_the_variable(self, factory, variable: str) -> None:
        with pytest.raises(ConfigError) as info:
            factory("live\x1b[31mkey0123")
        assert variable in str(info.value) and "live" not in str(info.value) and "key0123" not in str(info.value)

    def test_a_trailing_newline_is_stripped_with_a_warning_naming_the_variable(self, clara, caplog) -> None:
        import logging

        app, server = clara
        caplog.set_level(logging.WARNING)
        with AgentClaraSource(CLARA_KEY + "\n", server.url, **fake_options(FakeTime())) as source:
            assert ids(source.iter_contact_pages())  # the key works once stripped
        assert "AGENTCLARA_API_KEY" in caplog.text and CLARA_KEY not in caplog.text

    def test_a_plain_http_base_url_is_refused_before_any_request(self) -> None:
        with pytest.raises(ConfigError) as info:
            AgentClaraSource(CLARA_KEY, "http://api.example.com")
        assert "AGENTCLARA_BASE_URL" in str(info.value) and "https://" in str(info.value)

    def test_server_echoing_the_key_is_scrubbed(self, serve) -> None:
        class Echo(App):
            def before(self, request: Request) -> Response:
                return Response(400, {"error": f"bad header {request.header('authorization')}"})

        server = serve(Echo())
        with AgentClaraSource(CLARA_KEY, server.url, **fake_options(FakeTime())) as source:
            with pytest.raises(RequestError) as info:
                list(source.iter_contact_pages())
        assert CLARA_KEY not in str(info.value) and "[redacted]" in str(info.value)


class TestPayloads:
    def test_malformed_json(self, clara) -> None:
        _, server = clara
        with AgentClaraSource(CLARA_KEY, server.url, **fake_options(FakeTime())) as source:
            with pytest.raises(PayloadError) as info:
                source.get_conversation("broken")
        message = str(info.value)
        assert "agentclara" in message and "/conversations/broken" in message and "200" in message

    def test_success_false_is_an_error_with_its_message(self, clara) -> None:
        _, server = clara
        with AgentClaraSource(CLARA_KEY, server.url, **fake_options(FakeTime())) as source:
            with pytest.raises(RequestError, match="Conversation is archived"):
                source.get_conversation("refused")

    def test_404_is_not_found(self, clara) -> None:
        _, server = clara
        with AgentClaraSource(CLARA_KEY, server.url, **fake_options(FakeTime())) as source:
            with pytest.raises(NotFound, match="Conversation not found"):
                source.get_conversation("gone")
            assert source.get_conversation("conv_1")["messages"] == [{"id": "m1"}]

    def test_unknown_filter_is_refused(self, clara) -> None:
        _, server = clara
        with AgentClaraSource(CLARA_KEY, server.url) as source:
            with pytest.raises(ConfigError, match="chanel"):
                source.iter_conversation_pages(chanel="sms")


class TestHostileBodies:
    """Valid JSON that `json` cannot hold (the emulator's `deep_nesting_next` and
    `huge_integer_next` knobs): a PayloadError naming the page, never a crash."""

    @pytest.fixture
    def emulator(self, serve):
        from sandbox.agentclara import DEFAULT_KEY, AgentClaraApp

        app = AgentClaraApp(contacts=250, conversations=0)
        return app, serve(app), DEFAULT_KEY

    @pytest.mark.parametrize("knob, words", [
        ("deep_nesting_next", "nested too deeply to decode"),
        ("huge_integer_next", "an integer of more than 4,300 digits"),
    ])
    def test_a_hostile_page_is_a_payload_error_naming_that_page(self, emulator, knob: str, words: str) -> None:
        app, server, key = emulator
        with AgentClaraSource(key, server.url, concurrency=1, **fake_options(FakeTime())) as source:
            pages = source.iter_contact_pages()
            assert len(next(pages)) == 100
            setattr(app.faults, knob, 1)  # the second page
            with pytest.raises(PayloadError) as info:
                next(pages)
            assert len(ids(source.iter_contact_pages())) == 250  # the source goes on
        message = str(info.value)
        assert words in message and "GET /contacts?" in message and "offset=99" in message and "HTTP 200" in message

    @pytest.mark.parametrize("knob", ["deep_nesting_next", "huge_integer_next"])
    def test_a_hostile_error_body_is_retried_like_any_500(self, emulator, knob: str) -> None:
        app, server, key = emulator
        app.faults.fail_next = 1
        setattr(app.faults, knob, 1)  # the 500's body
        with AgentClaraSource(key, server.url, **fake_options(FakeTime())) as source:
            assert len(ids(source.iter_contact_pages())) == 250
            assert source.stats.server_errors == 1 and source.stats.retries == 1


class TestConcurrency:
    def test_requests_overlap_on_the_server(self, clara) -> None:
        app, server = clara
        app.contacts = [{"id": f"cust_{i}"} for i in range(1200)]
        app.latency_s = 0.03
        with AgentClaraSource(CLARA_KEY, server.url, concurrency=4, **fake_options(FakeTime())) as source:
            got = ids(source.iter_contact_pages())
            assert source.stats.complete
        assert got == [c["id"] for c in app.contacts]
        assert 2 <= app.gauge.peak <= 4

    def test_concurrency_one_never_overlaps(self, clara) -> None:
        app, server = clara
        app.latency_s = 0.01
        with AgentClaraSource(CLARA_KEY, server.url, concurrency=1, **fake_options(FakeTime())) as source:
            ids(source.iter_contact_pages())
        assert app.gauge.peak == 1


class TestTLS:
    def test_untrusted_certificate_is_refused_not_retried(self, monkeypatch) -> None:
        from sandbox import tls

        monkeypatch.delenv("SSL_CERT_FILE", raising=False)
        monkeypatch.delenv("SSL_CERT_DIR", raising=False)
        app = MiniClara()
        with ServerThread(app, ssl_context=tls.server_context()) as server:
            with AgentClaraSource(CLARA_KEY, server.url, **fake_options(FakeTime())) as source:
                with pytest.raises(ConfigError, match="SSL_CERT_FILE"):
                    list(source.iter_contact_pages())
                assert source.stats.requests == 1

    def test_private_ca_through_ssl_cert_file(self, monkeypatch) -> None:
        from sandbox import tls

        monkeypatch.setenv("SSL_CERT_FILE", tls.ca_path())
        app = MiniClara(contacts=30)
        with ServerThread(app, ssl_context=tls.server_context()) as server:
            assert server.url.startswith("https://")
            with AgentClaraSource(CLARA_KEY, server.url, **fake_options(FakeTime())) as source:
                assert len(ids(source.iter_contact_pages())) == 30


class MiniPro(App):
    """AgentPro-shaped: chatbots and per-chatbot conversations in the envelope."""

    def __init__(self) -> None:
        super().__init__()
        self.conversations = {"bot_a": [{"id": f"c{i}", "chatbotId": "bot_a"} for i in range(130)], "bot_b": []}
        self.route("GET", "/api/v1/chatbots", lambda r: self.ok([{"id": b, "name": b} for b in self.conversations]))
        self.route("GET", "/api/v1/conversations", self.list_conversations)
        self.route("GET", "/api/v1/conversations/{cid}", lambda r: self.ok({"id": r.params["cid"], "messages": []}))

    @staticmethod
    def ok(data) -> Response:
        return Response(200, {"success": True, "data": data})

    def list_conversations(self, request: Request) -> Response:
        return self.ok(paged(self.conversations[request.query["chatbotId"]], request))


class TestAgentPro:
    def test_chatbots_and_conversations(self, serve) -> None:
        server = serve(MiniPro())
        with AgentProSource(PRO_KEY, server.url, **fake_options(FakeTime())) as source:
            bots = [b["id"] for b in source.list_chatbots()]
            assert bots == ["bot_a", "bot_b"]
            assert len(ids(source.iter_conversation_pages("bot_a"))) == 130
            assert ids(source.iter_conversation_pages("bot_b")) == []
            assert source.get_conversation("c1")["id"] == "c1"
            assert source.stats.complete and source.listing("conversations[chatbot=bot_a]").complete

    @pytest.mark.parametrize("tier, windows", [("free", ((100, 60.0), (10, 1.0))), ("pro", ((1000, 60.0), (50, 1.0)))])
    def test_tier_picks_limits(self, tier: str, windows) -> None:
        assert AgentProSource(PRO_KEY, tier=tier).limiter.windows == windows

    def test_unknown_tier(self) -> None:
        with pytest.raises(ConfigError, match="tier"):
            AgentProSource(PRO_KEY, tier="gold")  # type: ignore[arg-type]


class MiniLoom(App):
    """Chatloom-shaped: clf_ key in either header, bare bodies, a wrong count."""

    def __init__(self, count: int = 2) -> None:
        super().__init__()
        self.agent_count = count
        self.route("GET", "/api/plugin/agents", lambda r: Response(200, {"agents": [{"id": "agt_1"}, {"id": "agt_2"}], "count": self.agent_count}))
        self.route("GET", "/api/plugin/agents/{aid}/allowed-domains", lambda r: Response(200, {"domains": ["example.com"]}))

    def before(self, request: Request) -> Response | None:
        bearer = request.header("authorization")
        if bearer != f"Bearer {LOOM_KEY}" and request.header("x-api-key") != LOOM_KEY:
            return Response(401, {"error": "API key is required."})
        return None


class TestChatloom:
    @pytest.mark.parametrize("auth_header", ["bearer", "x-api-key"])
    def test_both_auth_headers(self, serve, auth_header: str) -> None:
        server = serve(MiniLoom())
        with ChatloomSource(LOOM_KEY, server.url, auth_header=auth_header, **fake_options(FakeTime())) as source:
            assert [a["id"] for a in source.list_agents()] == ["agt_1", "agt_2"]
            assert source.allowed_domains("agt_1") == ["example.com"]
            assert source.stats.warnings == ()

    def test_count_mismatch_is_flagged(self, serve) -> None:
        server = serve(MiniLoom(count=5))
        with ChatloomSource(LOOM_KEY, server.url, **fake_options(FakeTime())) as source:
            assert len(source.list_agents()) == 2
            assert any("count=5" in w for w in source.stats.warnings)

    def test_x_api_key_is_not_in_repr(self) -> None:
        source = ChatloomSource(LOOM_KEY, auth_header="x-api-key")
        assert LOOM_KEY not in repr(source) and LOOM_KEY not in repr(source.client)
        assert LOOM_KEY not in source.client.scrub(f"echo {LOOM_KEY}")


# -- against the platform emulators (sandbox/agentclara.py, sandbox/clairo.py) --


class TestAgentClaraEmulator:
    def test_contacts_survive_inserts_and_deletes_while_paging(self, serve) -> None:
        from sandbox.agentclara import DEFAULT_KEY, AgentClaraApp

        app = AgentClaraApp(contacts=1500, conversations=0)
        before = set(app.contact_ids())
        app.on_request(3, lambda: app.insert_contacts(40, at="front"))
        deleted: list[str] = []
        app.on_request(6, lambda: deleted.extend(app.delete_contacts(120)))
        server = serve(app)
        with AgentClaraSource(DEFAULT_KEY, server.url, concurrency=4, **fake_options(FakeTime())) as source:
            got = ids(source.iter_contact_pages())
            stats = source.stats
        assert before - set(deleted) <= set(got)
        assert stats.complete and stats.throttled == 0

    def test_conversations_and_one_conversation(self, serve) -> None:
        from sandbox.agentclara import DEFAULT_KEY, AgentClaraApp

        server = serve(AgentClaraApp(contacts=50, conversations=120))
        with AgentClaraSource(DEFAULT_KEY, server.url, **fake_options(FakeTime())) as source:
            conversations = [c for page in source.iter_conversation_pages() for c in page]
            assert len(conversations) == 120
            sms = [c for page in source.iter_conversation_pages(channel="sms") for c in page]
            assert sms and all(c["channel"] == "sms" for c in sms)
            one = source.get_conversation(conversations[0]["id"])
            assert one["id"] == conversations[0]["id"] and isinstance(one["messages"], list)


class TestClairoEmulator:
    @pytest.fixture
    def clairo(self, serve):
        """clairo(app) -> a ClairoSource talking to `app` on the shared server."""
        from sandbox.clairo import BASE_PATH, DEFAULT_KEY

        def make(app) -> ClairoSource:
            return ClairoSource(DEFAULT_KEY, serve(app).url + BASE_PATH, **fake_options(FakeTime()))

        return make

    def test_offset_honoured_reads_everything(self, clairo) -> None:
        from sandbox.clairo import ClairoApp

        app = ClairoApp(briefs=230)
        with clairo(app) as source:
            got = ids(source.iter_brief_pages())
            assert got == list(app.brief_ids())
            assert source.offset_honoured is True and source.stats.complete
            assert source.limiter.server_limit == 1000  # X-RateLimit-* reached the limiter

    def test_offset_ignored_is_flagged_truncated(self, clairo) -> None:
        from sandbox.clairo import ClairoApp

        app = ClairoApp(briefs=230, honour_offset=False)
        with clairo(app) as source:
            got = ids(source.iter_brief_pages())
            stats = source.stats
            assert len(got) == 100
            assert source.offset_honoured is False
            assert not stats.complete and "offset" in stats.truncated["briefs"]

    def test_brief_answers_and_agents(self, clairo) -> None:
        from sandbox.clairo import ClairoApp

        app = ClairoApp(briefs=5, conversations=20)
        with clairo(app) as source:
            agents = source.list_agents()
            assert agents and all("id" in a for a in agents)
            brief_id = ids(source.iter_brief_pages())[0]
            assert source.get_brief(brief_id)["answers"] == app.brief_answers(brief_id)
            conversations = ids(source.iter_conversation_pages(agents[0]["id"]))
            assert conversations == list(app.conversation_ids(agents[0]["id"]))

    def test_wrong_plan(self, clairo) -> None:
        from sandbox.clairo import ClairoApp

        with clairo(ClairoApp(plan="pro")) as source:
            with pytest.raises(AuthError, match="Max plan"):
                source.list_agents()


class ArrivalLog(AgentClaraApp):
    """The AgentClara emulator at its documented limits, noting each request when its rate
    windows count it (`before`), and whether they admitted it (200) or refused it (429)."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.arrivals: list[tuple[float, int, str]] = []  # (monotonic time, status, limit asked)
        self._arrival_lock = threading.Lock()

    def before(self, request: Request) -> Response | None:
        refused = super().before(request)
        with self._arrival_lock:
            status = refused.status if refused is not None else 200
            self.arrivals.append((time.monotonic(), status, request.query.get("limit", "")))
        return refused


def _serve_paced_clara(conn, contacts: int, latency_s: float) -> None:
    """The child's side of TestDocumentedPace: the emulator at its documented limits, its arrivals sent back."""
    app = ArrivalLog(contacts=contacts, conversations=0)
    app.faults.latency_s = latency_s
    serve_until_stopped(conn, app, lambda: app.arrivals)


class TestDocumentedPace:
    """The real limiter against the emulator's documented 100 per 10 s and 1,000 per minute:
    the burst is spent first (the server admits the whole 100 in its first window), then
    the sustained rate, with under 0.5 % 429s. Counted per window on the server, not timed.

    The emulator is served from its own process: in the client's it shares the GIL, and on a
    loaded machine its handler threads count arrivals late and bunched, in windows the client
    never filled."""

    def test_the_burst_is_spent_first_then_the_ceiling(self) -> None:
        # 148 pages + 1, estimate probes on top
        with ServerProcess("AgentClara", _serve_paced_clara, 14_000, 0.02) as server:
            with AgentClaraSource(CLARA_DEFAULT_KEY, server.url) as source:
                pager = source.iter_contact_pages().track(None, estimate=True)
                got = [record["id"] for page in pager for record in page]
            arrivals = server.stop()
        assert arrivals is not None, "the emulator's process died before it reported its arrivals"
        assert len(got) == len(set(got)) == 14_000
        admitted = sorted(t for t, status, _ in arrivals if status == 200)
        statuses = [s for _, s, _ in arrivals]
        assert statuses.count(429) <= 0.005 * len(statuses)
        # The size probe (limit=1) does not hold the pages back: they go out while it runs.
        asked = [limit for _, _, limit in sorted(arrivals)]
        assert pager.stats.probe_requests > 1 and asked.index("100") < len(asked) - asked[::-1].index("1") - 1
        # The server's first window admitted its whole budget: the burst went first.
        assert sum(1 for t in admitted if t - admitted[0] < 10.0) == 100

    def test_a_listing_read_whole_keeps_fetching_while_the_consumer_is_busy(self) -> None:
        # A historical listing (read whole, with its size estimate): a consumer that holds one
        # page (a slow store write) does not hold the requests back; the pager keeps fetching
        # ahead, up to its bound, so a burst is spent whatever the consumer.
        from connectors.paging.driver import PREFETCH_AHEAD

        app = ArrivalLog(contacts=10_000, conversations=0, per_10s=None, per_minute=None)
        with ServerThread(app) as server:
            with AgentClaraSource(CLARA_DEFAULT_KEY, server.url, concurrency=4) as source:
                pager = source.iter_contact_pages().track(None, estimate=True)
                next(pager)  # the first page, held
                probes = pager.stats.probe_requests
                deadline = time.monotonic() + 30
                while len(app.arrivals) < probes + 1 + PREFETCH_AHEAD * 4 and time.monotonic() < deadline:
                    time.sleep(0.01)
                time.sleep(0.2)  # room for one too many to show up
                assert len(app.arrivals) == probes + 1 + PREFETCH_AHEAD * 4  # then it stops: memory stays bounded
                pager.close()

    def test_a_listing_stopped_after_its_first_page_costs_one_request(self) -> None:
        # A daily run stops a newest-first listing at its lookback: nothing is fetched ahead of it.
        app = ArrivalLog(contacts=10_000, conversations=0, per_10s=None, per_minute=None)
        with ServerThread(app) as server:
            with AgentClaraSource(CLARA_DEFAULT_KEY, server.url, concurrency=8) as source:
                pager = source.iter_contact_pages()
                next(pager)
                time.sleep(0.2)  # room for a speculative request to show up
                pager.close()
        assert len(app.arrivals) == 1
