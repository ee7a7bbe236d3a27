"""The AgentClara connector: its spec's streams under the names the pipeline and the webhooks call.

Its listings, like every source's, are `OffsetPager`s handed out before
they start (`SourceBase._paged`), so a historical load can make them
resumable without the read function knowing.
"""

from __future__ import annotations

from typing import ClassVar
from urllib.parse import urlencode

from connectors.agentclara.spec import CONTACTS, CONVERSATION_FILTERS, CONVERSATIONS, SPEC
from connectors.declared import DeclaredSource
from connectors.errors import ConfigError
from connectors.paging import OffsetPager
from connectors.spec import SourceSpec


class AgentClaraSource(DeclaredSource):
    """Reads AgentClara contacts and conversations (Bearer key, enveloped JSON)."""

    spec: ClassVar[SourceSpec] = SPEC

    def iter_contact_pages(self, *, page_size: int = CONTACTS.max_page_size) -> OffsetPager:
        """Every contact, page by page, de-duplicated by id."""
        return self.paged(CONTACTS.name, page_size=page_size)

    def iter_conversation_pages(self, *, page_size: int = CONVERSATIONS.max_page_size, **filters: str) -> OffsetPager:
        """Every conversation (optionally filtered by channel, status, customer_id), page by page.

        A filtered listing is its own sub-listing for checkpoints (`conversations?channel=sms`)."""
        unknown = set(filters) - CONVERSATION_FILTERS
        if unknown:
            raise ConfigError(self.name, f"unknown conversation filter(s) {sorted(unknown)}; known: {sorted(CONVERSATION_FILTERS)}")
        key = CONVERSATIONS.name + (f"?{urlencode(sorted(filters.items()))}" if filters else "")
        return self.paged(CONVERSATIONS.name, filters, key=key, page_size=page_size)

    def get_conversation(self, conversation_id: str) -> dict:
        """One conversation with its `messages`. NotFound if it was deleted meanwhile."""
        return self.detail(CONVERSATIONS.name, conversation_id)
