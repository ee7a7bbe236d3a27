"""Chatloom emulator: the v1 plugin API, agents and their allowed domains (seeds/chatloom-api.txt).

Base URL: the server root (`ServerThread(ChatloomApp()).url`); routes carry
the documented `/api/plugin/...` paths, as `https://chatloom.app/api/plugin/agents`.

Documented: keys start `clf_`, sent as `Authorization: Bearer clf_...` or
`X-API-Key: clf_...`; bare bodies, errors `{"error": "..."}`; agents newest
first with `count`, deleted agents excluded; allowed domains oldest first;
404 for an agent of another workspace. "A few hundred requests per minute"
becomes 300/minute per key (a knob).

Assumed (the conversation history export is on Chatloom's roadmap, not
documented; connectors/chatloom/spec.py says the same): `GET
/api/plugin/conversations?limit=N&offset=M` (limit default 50, max 100)
answers like the agents list, bare, `{"conversations": [...], "count": N}`
(the count of this answer), newest first by last message, each conversation
whole: its agent, channel, status, times, `visitor` (name, email, phone; an
anonymous visitor has none) and `messages`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from sandbox.common import (
    Clock,
    HttpError,
    KeyedRateLimits,
    SourceApp,
    bearer_token,
    iso_ms,
    key_map,
    page_args,
)
from sandbox.http import Request, Response
from sandbox.seed import DEFAULT_SEED, SHARED_PEOPLE, PeoplePool

DEFAULT_KEY = "clf_sandbox_key"
DEFAULT_WORKSPACE = "ws_sandbox"
OTHER_WORKSPACE = "ws_other"  # always exists, so "an agent you don't own" can be asked for
MISSING_KEY = "API key is required. Please provide it in Authorization or X-API-Key header."
AGENT_NAMES = ("Sales Assistant", "Support Agent", "Booking Helper", "Onboarding Guide", "Returns Desk", "Lead Catcher")
TEMPLATES = ("modern", "classic", "minimal", "bubble")
POSITIONS = ("bottom-right", "bottom-left", "top-right", "top-left")
COLORS = ("#611F69", "#764ba2", "#1E88E5", "#43A047", "#F4511E", "#222222")
CHANNELS = ("web", "web", "web", "whatsapp", "email")
OPENERS = ("Hi, do you ship to Canada?", "What are your opening hours?", "Can I change my order?",
           "Is there a discount for teams?", "I need help with my account.")
DOMAINS = ("example.com", "support.example.com", "www.example.org", "shop.example.net", "localhost:3000", "staging.example.com")


class ChatloomApp(SourceApp):
    """The Chatloom public API over seeded workspaces."""

    def __init__(
        self,
        *,
        api_keys: Iterable[str] | Mapping[str, str] | None = None,
        agents: int = 4,
        conversations: int = 12,
        seed: int = DEFAULT_SEED,
        per_minute: int | None = 300,
        retry_after_header: bool = False,
        now: datetime | None = None,
    ) -> None:
        super().__init__()
        self.keys = key_map(api_keys, DEFAULT_KEY, DEFAULT_WORKSPACE)
        for key in self.keys:
            if not key.startswith("clf_"):
                raise ValueError(f"Chatloom keys start with clf_: {key!r}")
        self.retry_after_header = retry_after_header
        self.limits = KeyedRateLimits([(per_minute, 60.0)])
        self.clock = Clock(now)
        self.pool = PeoplePool(seed)
        self._lock = threading.RLock()
        self._rng = self.pool.rng("chatloom:live", 0)
        # agent id -> agent (with private "_workspace", "_deleted", "_created", "_domains")
        self._agents: dict[str, dict[str, Any]] = {}
        for w, workspace in enumerate(sorted(set(self.keys.values()) | {OTHER_WORKSPACE})):
            for k in range(agents):
                created = self.clock.start - timedelta(days=365 - 40 * k, seconds=self.pool.hash("chatloom:t", w * 100 + k) % 86400)
                agent_id = self._new_agent(workspace, AGENT_NAMES[k % len(AGENT_NAMES)], created)
                self._agents[agent_id]["_deleted"] = k == 1 and agents > 2  # one deleted, hidden
        # conversation id -> conversation (with private "_workspace", "_last")
        self._conversations: dict[str, dict[str, Any]] = {}
        self._conversation_rng = self.pool.rng("chatloom:conversation-ids", 0)  # agents' ids stay as they were
        for j in range(conversations):
            self._seed_conversation(j)

        self.route("GET", "/api/plugin/agents", self._list_agents)
        self.route("GET", "/api/plugin/agents/{agent_id}/allowed-domains", self._allowed_domains)
        self.route("GET", "/api/plugin/conversations", self._list_conversations)

    def _seed_conversation(self, j: int) -> None:
        """Conversation `j` of the default workspace: two in three with a visitor who left an email
        (a regular of the shared pool, so other platforms know them), the rest anonymous."""
        rng = self.pool.rng("chatloom:conversation", j)
        person = self.pool.person(self.pool.hash("chatloom:who", j) % SHARED_PEOPLE) if j % 3 else None
        visitor = {"name": person.full_name, "email": person.email, "phone": None} if person else {}
        started = self.clock.start - timedelta(days=j % 10, minutes=rng.randrange(600))
        self.add_conversation(visitor=visitor, channel=rng.choice(CHANNELS), started=started,
                              opener=rng.choice(OPENERS))

    def _new_agent(self, workspace: str, name: str, created: datetime) -> str:
        rng = self._rng
        agent_id = "agt_" + "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(10))
        self._agents[agent_id] = {
            "id": agent_id,
            "name": name,
            "primaryColor": rng.choice(COLORS),
            "secondaryColor": rng.choice(COLORS),
            "position": rng.choice(POSITIONS),
            "template": rng.choice(TEMPLATES),
            "status": "active",
            "createdAt": iso_ms(created),
            "_workspace": workspace,
            "_deleted": False,
            "_created": created,
            "_domains": rng.sample(DOMAINS, rng.randint(0, 3)),
        }
        return agent_id

    # --- service behaviour ----------------------------------------------------------------

    def error_response(self, status: int, message: str) -> Response:
        return Response(status, {"error": message})

    def throttled_response(self) -> Response:
        headers = {"Retry-After": "1"} if self.retry_after_header else {}
        return Response(429, {"error": "Too many requests. Please slow down and retry."}, headers)

    def _api_key(self, request: Request) -> str:
        """The key from either documented header; a 401 with the service's wording if unusable."""
        authorization = request.header("authorization")
        if authorization:
            key = bearer_token(request)
            if key is None:
                raise HttpError(401, "Invalid Authorization header. Use: Bearer clf_...")
        else:
            key = (request.header("x-api-key") or "").strip()
            if not key:
                raise HttpError(401, MISSING_KEY)
        if not key.startswith("clf_"):
            raise HttpError(401, "Invalid API key format. Keys start with clf_")
        if key not in self.keys:
            raise HttpError(401, "Invalid or expired API key")
        return key

    def before(self, request: Request) -> Response | None:
        return self.throttled(self.limits.hit(self._api_key(request)))

    def _workspace_agents(self, workspace: str) -> list[dict[str, Any]]:
        found = [a for a in self._agents.values() if a["_workspace"] == workspace and not a["_deleted"]]
        return sorted(found, key=lambda a: (a["_created"], a["id"]), reverse=True)

    # --- routes ------------------------------------------------------------------------------

    def _list_agents(self, request: Request) -> Response:
        workspace = self._workspace_of(request)
        with self._lock:
            agents = [{k: v for k, v in a.items() if not k.startswith("_")} for a in self._workspace_agents(workspace)]
        return Response(200, {"agents": agents, "count": len(agents)})

    def _allowed_domains(self, request: Request) -> Response:
        workspace = self._workspace_of(request)
        with self._lock:
            agent = self._agents.get(request.params["agent_id"])
            if agent is None or agent["_deleted"] or agent["_workspace"] != workspace:
                raise HttpError(404, "Agent not found")
            return Response(200, {"domains": list(agent["_domains"])})

    def _list_conversations(self, request: Request) -> Response:
        workspace = self._workspace_of(request)
        limit, offset = page_args(request.query, default_limit=50, max_limit=100)
        with self._lock:
            found = [c for c in self._conversations.values() if c["_workspace"] == workspace]
            found.sort(key=lambda c: (c["_last"], c["id"]), reverse=True)
            page = [{k: v for k, v in c.items() if not k.startswith("_")} for c in found[offset: offset + limit]]
        return Response(200, {"conversations": page, "count": len(page)})

    def _workspace_of(self, request: Request) -> str:
        """The caller's workspace (before() has already vetted the key)."""
        return self.keys[self._api_key(request)]

    # --- mutation API for tests ------------------------------------------------------------------

    def add_agent(self, name: str = "New Agent", *, workspace: str | None = None) -> str:
        """Create an agent now (first in the list)."""
        with self._lock:
            return self._new_agent(workspace or self._default_workspace(), name, self.clock.now())

    def delete_agent(self, agent_id: str) -> None:
        """Soft-delete an agent: it disappears from lists and its domains 404."""
        with self._lock:
            self._agents[agent_id]["_deleted"] = True

    def add_domain(self, agent_id: str, domain: str) -> None:
        with self._lock:
            self._agents[agent_id]["_domains"].append(domain)

    def add_conversation(self, *, visitor: Mapping[str, Any] | None = None, channel: str = "web",
                         started: datetime | None = None, opener: str = "Hello!") -> str:
        """A conversation of the default workspace's first agent: the visitor's opener and the agent's answer."""
        with self._lock:
            workspace = self._default_workspace()
            agent = self._workspace_agents(workspace)[0]
            started = started or self.clock.now()
            answered = started + timedelta(seconds=40)
            conversation_id = "conv_" + "".join(self._conversation_rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(12))
            self._conversations[conversation_id] = {
                "id": conversation_id, "agentId": agent["id"], "agentName": agent["name"], "channel": channel,
                "status": "closed", "startedAt": iso_ms(started), "lastMessageAt": iso_ms(answered),
                "visitor": dict(visitor or {}),
                "messages": [
                    {"id": f"{conversation_id}_1", "role": "user", "content": opener, "createdAt": iso_ms(started)},
                    {"id": f"{conversation_id}_2", "role": "assistant", "content": "Happy to help with that.",
                     "createdAt": iso_ms(answered)},
                ],
                "_workspace": workspace, "_last": answered,
            }
            return conversation_id

    def conversation_ids(self) -> list[str]:
        """The default workspace's conversation ids, in list order (newest last message first)."""
        with self._lock:
            workspace = self._default_workspace()
            found = [c for c in self._conversations.values() if c["_workspace"] == workspace]
            return [c["id"] for c in sorted(found, key=lambda c: (c["_last"], c["id"]), reverse=True)]

    def agent_ids(self, workspace: str | None = None) -> list[str]:
        """Visible agent ids of a workspace in list order (newest first)."""
        with self._lock:
            return [a["id"] for a in self._workspace_agents(workspace or self._default_workspace())]

    def _default_workspace(self) -> str:
        return next(iter(self.keys.values()))
