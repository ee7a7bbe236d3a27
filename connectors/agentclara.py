"""AgentClara source: contacts and conversations, for the CRM sync.

AgentClara wraps every answer in `{"success": true, "data": ...}` and pages
lists with `limit` (max 100) + `offset`. Its docs say nothing about the
contacts list, so what we assume about it sits in the block below: when a
real payload disagrees, correct it there, in one edit.

Its listings, like every source's, are `OffsetPager`s handed out before
they start (`SourceBase._paged`), so a historical load can make them
resumable without the read function knowing.
"""

from __future__ import annotations

from typing import Any, Sequence
from urllib.parse import quote, urlencode

from connectors.errors import ConfigError
from connectors.http import SourceBase, check_api_key
from connectors.paging import Fetch, OffsetPager

DEFAULT_BASE_URL = "https://api.agentclara.app"
ENV_KEY = "AGENTCLARA_API_KEY"

# Documented: 1,000 requests/minute per key, and a burst of 100 per 10 s.
DOCUMENTED_LIMITS: tuple[tuple[int, float], ...] = ((1000, 60.0), (100, 10.0))
# Paced with each window a little longer: requests granted exactly at the
# limit reach the server with network and thread jitter, and a few would
# land inside its window early (9 429s in 435 requests, bench/RESULTS.md).
PACING_MARGIN_S = 0.25
RATE_LIMITS: tuple[tuple[int, float], ...] = tuple((n, period + PACING_MARGIN_S) for n, period in DOCUMENTED_LIMITS)

# -- Assumptions where the docs are silent (DESIGN.md). Correct them here. ----
CONTACTS_PATH = "/contacts"  # pages like /conversations: limit + offset ...
CONTACTS_MAX_PAGE_SIZE = 100  # ... with the same maximum,
CONTACTS_ENVELOPED = True  # ... and the same {"success", "data"} envelope.
# An offset past the end answers "data": [], which the pager reads as the end.
# -----------------------------------------------------------------------------

CONVERSATIONS_PATH = "/conversations"
CONVERSATIONS_MAX_PAGE_SIZE = 100  # documented maximum of `limit`
CONVERSATION_FILTERS = frozenset({"channel", "status", "customer_id"})  # documented filters


class AgentClaraSource(SourceBase):
    """Reads AgentClara contacts and conversations (Bearer key, enveloped JSON)."""

    name = "agentclara"

    def __init__(
        self,
        api_key: str,
        base_url: str = DEFAULT_BASE_URL,
        *,
        concurrency: int = 8,
        limits: Sequence[tuple[int, float]] = RATE_LIMITS,
        **client_options: Any,
    ) -> None:
        """`client_options` go to SourceClient (limiter, sleep, transport, max_attempts, timeout)."""
        key = check_api_key(self.name, api_key, env_var=ENV_KEY)
        super().__init__(
            base_url=base_url,
            headers={"Authorization": f"Bearer {key}"},
            limits=limits,
            concurrency=concurrency,
            **client_options,
        )

    def iter_contact_pages(self, *, page_size: int = CONTACTS_MAX_PAGE_SIZE) -> OffsetPager:
        """Every contact, page by page, de-duplicated by id."""
        return self._paged(
            "contacts",
            self._list_fetcher(CONTACTS_PATH, {}, enveloped=CONTACTS_ENVELOPED),
            page_size=page_size,
            max_page_size=CONTACTS_MAX_PAGE_SIZE,
        )

    def iter_conversation_pages(
        self, *, page_size: int = CONVERSATIONS_MAX_PAGE_SIZE, **filters: str
    ) -> OffsetPager:
        """Every conversation (optionally filtered by channel, status, customer_id), page by page.

        A filtered listing is its own sub-listing for checkpoints (`conversations?channel=sms`)."""
        unknown = set(filters) - CONVERSATION_FILTERS
        if unknown:
            raise ConfigError(self.name, f"unknown conversation filter(s) {sorted(unknown)}; known: {sorted(CONVERSATION_FILTERS)}")
        return self._paged(
            "conversations",
            self._list_fetcher(CONVERSATIONS_PATH, filters, enveloped=True),
            page_size=page_size,
            max_page_size=CONVERSATIONS_MAX_PAGE_SIZE,
            key="conversations" + (f"?{urlencode(sorted(filters.items()))}" if filters else ""),
        )

    def get_conversation(self, conversation_id: str) -> dict:
        """One conversation with its `messages`. NotFound if it was deleted meanwhile."""
        path = f"{CONVERSATIONS_PATH}/{quote(str(conversation_id), safe='')}"
        return self._expect(self._unwrap(self.client.get_json(path), path), dict, path)

    def _list_fetcher(self, path: str, params: dict[str, Any], *, enveloped: bool) -> Fetch:
        def fetch(offset: int, limit: int) -> list[dict]:
            body = self.client.get_json(path, {**params, "limit": limit, "offset": offset})
            data = self._unwrap(body, path) if enveloped else body
            return self._expect(data, list, path)

        return fetch
