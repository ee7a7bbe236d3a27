"""The Clairo connector: agents, conversations and discovery briefs under their named reads."""

from __future__ import annotations

from typing import ClassVar

from connectors.clairo.spec import SPEC
from connectors.declared import DeclaredSource
from connectors.paging import OffsetPager
from connectors.spec import SourceSpec


class ClairoSource(DeclaredSource):
    """Reads Clairo agents, conversations and briefs (Bearer clr_ key, bare JSON)."""

    spec: ClassVar[SourceSpec] = SPEC

    def list_agents(self) -> list[dict]:
        """Every agent of the business (one call; the list is not paged)."""
        return self.whole("agents")

    def iter_conversation_pages(self, agent_id: str | None = None) -> OffsetPager:
        """Conversations (of one agent, if given), page by page, offset probed."""
        if agent_id:
            return self.paged("conversations", {"agentId": agent_id}, label=f"conversations[agent={agent_id}]")
        return self.paged("conversations")

    def get_conversation(self, conversation_id: str) -> dict:
        """One conversation with its messages."""
        return self.detail("conversations", conversation_id)

    def iter_brief_pages(self) -> OffsetPager:
        """Discovery briefs (summaries; `get_brief` adds the answers), page by page."""
        return self.paged("briefs")

    def get_brief(self, brief_id: str) -> dict:
        """One brief with its `answers` (question key -> answer) and conversation."""
        return self.detail("briefs", brief_id)

    @property
    def offset_honoured(self) -> bool | None:
        """What the probes found: True, False, or None while no list needed a second page."""
        with self._lock:
            verdicts = [s.offset_honoured for _, s in self._listings if s.offset_honoured is not None]
        if not verdicts:
            return None
        return all(verdicts)
