"""Chatloom source: agents and their allowed domains (the whole v1 surface).

Chatloom answers with bare objects and no paging (`{"agents": [...],
"count": N}`), takes its `clf_` key as a Bearer token or an X-API-Key
header, and asks for "a few hundred requests per minute" at most, so the
limiter stays well under that. Conversation export is on Chatloom's
roadmap; when it ships it is one more method here:

    def iter_conversation_pages(self) -> OffsetPager:
        return self._paged("conversations", <fetch(offset, limit)>, page_size=..., max_page_size=...)

on the same pager, limiter and retry budget as every other source.
"""

from __future__ import annotations

from typing import Any, Literal, Sequence
from urllib.parse import quote

from connectors.errors import ConfigError
from connectors.http import SourceBase, check_api_key

DEFAULT_BASE_URL = "https://chatloom.app"
ENV_KEY = "CHATLOOM_API_KEY"
KEY_PREFIX = "clf_"

# "A few hundred per minute" is fair use: stay at 240, in bursts of 20 per 5 s.
RATE_LIMITS: tuple[tuple[int, float], ...] = ((240, 60.0), (20, 5.0))

AuthHeader = Literal["bearer", "x-api-key"]

AGENTS_PATH = "/api/plugin/agents"
DOMAINS_PATH = "/api/plugin/agents/{agent_id}/allowed-domains"


class ChatloomSource(SourceBase):
    """Reads Chatloom agents and allowed domains (clf_ key, bare JSON)."""

    name = "chatloom"

    def __init__(
        self,
        api_key: str,
        base_url: str = DEFAULT_BASE_URL,
        *,
        auth_header: AuthHeader = "bearer",
        concurrency: int = 2,
        limits: Sequence[tuple[int, float]] = RATE_LIMITS,
        **client_options: Any,
    ) -> None:
        """The key must start with clf_ (checked before any request)."""
        key = check_api_key(self.name, api_key, prefix=KEY_PREFIX, env_var=ENV_KEY)
        if auth_header == "bearer":
            headers = {"Authorization": f"Bearer {key}"}
        elif auth_header == "x-api-key":
            headers = {"X-API-Key": key}
        else:
            raise ConfigError(self.name, f"auth_header must be 'bearer' or 'x-api-key', not {auth_header!r}")
        super().__init__(base_url=base_url, headers=headers, limits=limits, concurrency=concurrency, **client_options)

    def list_agents(self) -> list[dict]:
        """Every agent in the workspace. A `count` that disagrees with the list is
        reported in `stats.warnings` (the list is what we trust)."""
        body = self.client.get_json(AGENTS_PATH)
        agents = self._member(body, "agents", AGENTS_PATH)
        count = body.get("count")
        if count is not None and count != len(agents):
            self._warn(f"{AGENTS_PATH} says count={count!r} but lists {len(agents)} agents")
        return agents

    def allowed_domains(self, agent_id: str) -> list[str]:
        """The domains an agent's widget may load on (oldest first)."""
        path = DOMAINS_PATH.format(agent_id=quote(str(agent_id), safe=""))
        return self._member(self.client.get_json(path), "domains", path)
