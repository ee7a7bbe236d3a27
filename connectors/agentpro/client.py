"""The AgentPro connector: chatbots and each one's conversations, at its plan's rate limits."""

from __future__ import annotations

from typing import Any, ClassVar, Literal, Sequence

from connectors.agentpro.spec import CHATBOT_PARAM, SPEC, TIER_LIMITS
from connectors.declared import DeclaredSource
from connectors.errors import ConfigError
from connectors.paging import OffsetPager
from connectors.spec import SourceSpec

Tier = Literal["free", "pro"]


class AgentProSource(DeclaredSource):
    """Reads AgentPro chatbots and conversations (Bearer key, enveloped JSON)."""

    spec: ClassVar[SourceSpec] = SPEC

    def __init__(
        self, api_key: str, base_url: str | None = None, *, tier: Tier = "pro",
        limits: Sequence[tuple[int, float]] | None = None, **options: Any,
    ) -> None:
        """`tier` picks the documented rate limits unless `limits` is given."""
        if limits is None:
            if tier not in TIER_LIMITS:
                raise ConfigError(SPEC.name, f"tier must be one of {sorted(TIER_LIMITS)}, not {tier!r}")
            limits = TIER_LIMITS[tier]
        self.tier = tier
        super().__init__(api_key, base_url, limits=limits, **options)

    def list_chatbots(self) -> list[dict]:
        """Every chatbot of the organisation."""
        return self.whole("chatbots")

    def iter_conversation_pages(self, chatbot_id: str) -> OffsetPager:
        """One chatbot's conversations, page by page, de-duplicated by id."""
        return self.paged("conversations", {CHATBOT_PARAM: chatbot_id}, label=f"conversations[chatbot={chatbot_id}]")

    def get_conversation(self, conversation_id: str) -> dict:
        """One conversation with its `messages`."""
        return self.detail("conversations", conversation_id)
