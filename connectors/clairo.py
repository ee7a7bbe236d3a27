"""Clairo source: agents, conversations and discovery briefs, for the CRM sync.

Clairo answers with bare objects (`{"agents": [...]}`), limits a business to
1,000 requests a minute and says so in X-RateLimit-* headers (which the
shared client feeds to the limiter), and documents only `limit` (default 50)
for its lists. Whether `offset` works is not documented, so every listing
probes it: if the second page repeats the first, the listing stops there
and is marked `truncated` in `stats` for the pipeline to flag, never dropped
silently.
"""

from __future__ import annotations

from typing import Any, Sequence
from urllib.parse import quote

from connectors.http import SourceBase, check_api_key
from connectors.paging import OffsetPager

DEFAULT_BASE_URL = "https://clairo.tech/api/v1"
ENV_KEY = "CLAIRO_API_KEY"
KEY_PREFIX = "clr_"

# Documented: 1,000 requests/minute per business.
RATE_LIMITS: tuple[tuple[int, float], ...] = ((1000, 60.0),)

# A 403 from Clairo means the plan, not the key (docs: "Forbidden - requires Max plan").
AUTH_HINTS = {403: "the Clairo plan has no API access; the API requires the Max plan"}

# -- Assumptions where the docs are silent (DESIGN.md). Correct them here. ----
MAX_PAGE_SIZE = 100  # a `limit` above 100 is not honoured
OFFSET_PARAM = "offset"  # undocumented: probed on every listing, never trusted
AGENTS_PATH, AGENTS_KEY = "/agents", "agents"  # one unpaged list
CONVERSATIONS_PATH, CONVERSATIONS_KEY = "/conversations", "conversations"
BRIEFS_PATH, BRIEFS_KEY = "/briefs", "briefs"
# -----------------------------------------------------------------------------


class ClairoSource(SourceBase):
    """Reads Clairo agents, conversations and briefs (Bearer clr_ key, bare JSON)."""

    name = "clairo"

    def __init__(
        self,
        api_key: str,
        base_url: str = DEFAULT_BASE_URL,
        *,
        concurrency: int = 4,
        limits: Sequence[tuple[int, float]] = RATE_LIMITS,
        **client_options: Any,
    ) -> None:
        """The key must start with clr_ (checked before any request)."""
        key = check_api_key(self.name, api_key, prefix=KEY_PREFIX, env_var=ENV_KEY)
        super().__init__(
            base_url=base_url,
            headers={"Authorization": f"Bearer {key}"},
            limits=limits,
            concurrency=concurrency,
            auth_hints=AUTH_HINTS,
            **client_options,
        )

    def list_agents(self) -> list[dict]:
        """Every agent of the business (one call; the list is not paged)."""
        return self._member(self.client.get_json(AGENTS_PATH), AGENTS_KEY, AGENTS_PATH)

    def iter_conversation_pages(self, agent_id: str | None = None) -> OffsetPager:
        """Conversations (of one agent, if given), page by page, offset probed."""
        stream = f"conversations[agent={agent_id}]" if agent_id else "conversations"
        params = {"agentId": agent_id} if agent_id else {}
        return self._probed(stream, CONVERSATIONS_PATH, CONVERSATIONS_KEY, params)

    def get_conversation(self, conversation_id: str) -> dict:
        """One conversation with its messages."""
        path = f"{CONVERSATIONS_PATH}/{quote(str(conversation_id), safe='')}"
        return self._expect(self.client.get_json(path), dict, path)

    def iter_brief_pages(self) -> OffsetPager:
        """Discovery briefs (summaries; `get_brief` adds the answers), page by page."""
        return self._probed("briefs", BRIEFS_PATH, BRIEFS_KEY, {})

    def get_brief(self, brief_id: str) -> dict:
        """One brief with its `answers` (question key -> answer) and conversation."""
        path = f"{BRIEFS_PATH}/{quote(str(brief_id), safe='')}"
        return self._expect(self.client.get_json(path), dict, path)

    @property
    def offset_honoured(self) -> bool | None:
        """What the probes found: True, False, or None while no list needed a second page."""
        with self._lock:
            verdicts = [s.offset_honoured for _, s in self._listings if s.offset_honoured is not None]
        if not verdicts:
            return None
        return all(verdicts)

    def _probed(self, stream: str, path: str, key: str, params: dict[str, Any]) -> OffsetPager:
        def fetch(offset: int, limit: int) -> list[dict]:
            query = {**params, "limit": limit}
            if offset:
                query[OFFSET_PARAM] = offset
            return self._member(self.client.get_json(path, query), key, path)

        # on_loop="stop": a server that ignores offset repeats page one; keep
        # what one call gives and mark the listing truncated.
        return self._paged(stream, fetch, page_size=MAX_PAGE_SIZE, max_page_size=MAX_PAGE_SIZE, on_loop="stop")
