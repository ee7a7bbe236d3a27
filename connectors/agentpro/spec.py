"""AgentPro, declared: Bearer key, `{"success", "data"}` envelope, rate limits by plan.

AgentPro lists conversations per chatbot, which a spec cannot say: its
streams are read by one plain function (connectors/agentpro/read.py). Its
paging is not documented: what we assume sits in the block below, and a
server that ignores `offset` is caught by the pager and marks the listing
truncated instead of looping (`Paging.ASSUMED_OFFSET`).
"""

from __future__ import annotations

from connectors.agentpro.normalize import contact_from_conversation, normalize_conversation
from connectors.agentpro.read import landed_by_chatbots, read_chatbots
from connectors.spec import Envelope, Paging, RecordKind, Setting, SourceSpec, StreamSpec

# Documented per plan: (requests per minute, burst per second), as documented:
# the one safety margin is the limiter's (connectors/ratelimit.py). Enterprise
# limits are custom: pass `limits=` explicitly.
TIER_LIMITS: dict[str, tuple[tuple[int, float], ...]] = {
    "free": ((100, 60.0), (10, 1.0)),
    "pro": ((1000, 60.0), (50, 1.0)),
}
TIER = Setting("tier", env="AGENTPRO_TIER", default="pro", choices=tuple(sorted(TIER_LIMITS)))

# -- Assumptions where the docs are silent (DESIGN.md). Correct them here. ----
# GET /api/v1/chatbots is one unpaged list in the envelope;
# GET /api/v1/conversations?chatbotId=ID&limit=N&offset=M (limit max 100);
# GET /api/v1/conversations/{id} adds `messages`.
CHATBOT_PARAM = "chatbotId"
MAX_PAGE_SIZE = 100
STREAMS = (
    StreamSpec("chatbots", path="/api/v1/chatbots", read=read_chatbots),
    StreamSpec("visitors", kind=RecordKind.CONTACTS,
               normalizer=contact_from_conversation, read=landed_by_chatbots),
    StreamSpec(
        "conversations", path="/api/v1/conversations", paging=Paging.ASSUMED_OFFSET, page_size=MAX_PAGE_SIZE,
        max_page_size=MAX_PAGE_SIZE, detail_path="/api/v1/conversations", kind=RecordKind.CONVERSATIONS,
        normalizer=normalize_conversation, read=landed_by_chatbots,
    ),
)
# -----------------------------------------------------------------------------

SPEC = SourceSpec(
    "agentpro", "AgentPro",
    key_env="AGENTPRO_API_KEY", base_url_env="AGENTPRO_BASE_URL", default_base_url="https://agentpro.chat",
    envelope=Envelope.SUCCESS_DATA, settings=(TIER,), limits=TIER_LIMITS[TIER.default], streams=STREAMS,
    # Most web-chat visitors never leave an email or a phone: they are
    # quarantined as no_valid_email_or_phone by design.
    max_quarantine_rate=0.75,
)
