"""AgentPro source: chatbots and their conversations, for the CRM sync.

AgentPro wraps answers in `{"success": true, "data": ...}` like AgentClara,
lists conversations per chatbot, and rate-limits by plan (Free 100/min and
10/s, Pro 1,000/min and 50/s). Its paging is not documented: what we assume
sits in the block below, and a server that ignores `offset` is caught by the
pager and marks the listing truncated instead of looping.
"""

from __future__ import annotations

from typing import Any, Literal, Sequence
from urllib.parse import quote

from connectors.errors import ConfigError
from connectors.http import SourceBase, check_api_key
from connectors.paging import OffsetPager

DEFAULT_BASE_URL = "https://agentpro.chat"
ENV_KEY = "AGENTPRO_API_KEY"

Tier = Literal["free", "pro"]
# Documented per plan: (requests per minute, burst per second). The one-second
# burst window is paced at 90 %: requests sent exactly at the limit arrive
# bunched by network jitter and trip the server's window. Enterprise limits
# are custom: pass `limits=` explicitly.
TIER_LIMITS: dict[str, tuple[tuple[int, float], ...]] = {
    "free": ((100, 60.0), (9, 1.0)),
    "pro": ((1000, 60.0), (45, 1.0)),
}

# -- Assumptions where the docs are silent (DESIGN.md). Correct them here. ----
CHATBOTS_PATH = "/api/v1/chatbots"  # one unpaged list in the envelope
CONVERSATIONS_PATH = "/api/v1/conversations"  # ?chatbotId=ID&limit=N&offset=M
CHATBOT_PARAM = "chatbotId"
MAX_PAGE_SIZE = 100
# -----------------------------------------------------------------------------


class AgentProSource(SourceBase):
    """Reads AgentPro chatbots and conversations (Bearer key, enveloped JSON)."""

    name = "agentpro"

    def __init__(
        self,
        api_key: str,
        base_url: str = DEFAULT_BASE_URL,
        *,
        tier: Tier = "pro",
        concurrency: int = 4,
        limits: Sequence[tuple[int, float]] | None = None,
        **client_options: Any,
    ) -> None:
        """`tier` picks the documented rate limits unless `limits` is given."""
        key = check_api_key(self.name, api_key, env_var=ENV_KEY)
        if limits is None:
            if tier not in TIER_LIMITS:
                raise ConfigError(self.name, f"tier must be one of {sorted(TIER_LIMITS)}, not {tier!r}")
            limits = TIER_LIMITS[tier]
        self.tier = tier
        super().__init__(
            base_url=base_url,
            headers={"Authorization": f"Bearer {key}"},
            limits=limits,
            concurrency=concurrency,
            **client_options,
        )

    def list_chatbots(self) -> list[dict]:
        """Every chatbot of the organisation."""
        return self._expect(self._unwrap(self.client.get_json(CHATBOTS_PATH), CHATBOTS_PATH), list, CHATBOTS_PATH)

    def iter_conversation_pages(self, chatbot_id: str) -> OffsetPager:
        """One chatbot's conversations, page by page, de-duplicated by id."""

        def fetch(offset: int, limit: int) -> list[dict]:
            params = {CHATBOT_PARAM: chatbot_id, "limit": limit, "offset": offset}
            data = self._unwrap(self.client.get_json(CONVERSATIONS_PATH, params), CONVERSATIONS_PATH)
            return self._expect(data, list, CONVERSATIONS_PATH)

        return self._paged(
            f"conversations[chatbot={chatbot_id}]",
            fetch,
            page_size=MAX_PAGE_SIZE,
            max_page_size=MAX_PAGE_SIZE,
            on_loop="stop",
        )

    def get_conversation(self, conversation_id: str) -> dict:
        """One conversation with its `messages`."""
        path = f"{CONVERSATIONS_PATH}/{quote(str(conversation_id), safe='')}"
        return self._expect(self._unwrap(self.client.get_json(path), path), dict, path)
