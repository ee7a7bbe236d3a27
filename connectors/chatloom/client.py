"""The Chatloom connector: agents and their allowed domains, and (behind its flag) conversations."""

from __future__ import annotations

from typing import Any, ClassVar, Literal
from urllib.parse import quote

from connectors.chatloom.spec import AUTH, DOMAINS_PATH, SPEC
from connectors.declared import DeclaredSource
from connectors.errors import ConfigError
from connectors.paging import OffsetPager
from connectors.spec import SourceSpec

AuthHeader = Literal["bearer", "x-api-key"]


class ChatloomSource(DeclaredSource):
    """Reads Chatloom agents and allowed domains (clf_ key, bare JSON)."""

    spec: ClassVar[SourceSpec] = SPEC

    def __init__(self, api_key: str, base_url: str | None = None, *, auth_header: AuthHeader = "bearer",
                 **options: Any) -> None:
        """The key must start with clf_ (checked before any request); `auth_header` picks how it is sent."""
        if auth_header not in AUTH:
            raise ConfigError(SPEC.name, f"auth_header must be 'bearer' or 'x-api-key', not {auth_header!r}")
        super().__init__(api_key, base_url, auth=AUTH[auth_header], **options)

    def list_agents(self) -> list[dict]:
        """Every agent in the workspace. A `count` that disagrees with the list is
        reported in `stats.warnings` (the list is what we trust)."""
        path = SPEC.stream("agents").path
        body = self.client.get_json(path)
        agents = self._member(body, "agents", path)
        count = body.get("count")
        if count is not None and count != len(agents):
            self._warn(f"{path} says count={count!r} but lists {len(agents)} agents")
        return agents

    def allowed_domains(self, agent_id: str) -> list[str]:
        """The domains an agent's widget may load on (oldest first)."""
        path = f"{DOMAINS_PATH}/{quote(str(agent_id), safe='')}/allowed-domains"
        return self._member(self.client.get_json(path), "domains", path)

    def iter_conversation_pages(self) -> OffsetPager:
        """The conversation export (on Chatloom's roadmap), page by page, each with its messages."""
        return self.paged("conversations")
