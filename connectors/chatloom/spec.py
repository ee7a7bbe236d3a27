"""Chatloom, declared: a `clf_` key as Bearer or X-API-Key, bare objects, no paging (v1).

Chatloom answers with bare objects and no paging (`{"agents": [...],
"count": N}`) and asks for "a few hundred requests per minute" at most, so
the limiter stays well under that. Its agents are read by a plain function
(connectors/chatloom/read.py: each agent with its allowed domains).

Conversation history export is on Chatloom's roadmap: it is one more stream
below, read only with `CHATLOOM_CONVERSATIONS=1` until the platform ships it.
"""

from __future__ import annotations

from connectors.chatloom.normalize import normalize_conversation
from connectors.chatloom.read import read_agents
from connectors.spec import Auth, Paging, RecordKind, Setting, SourceSpec, StreamSpec

# "A few hundred per minute" is fair use: stay at 240, in bursts of 20 per 5 s.
RATE_LIMITS: tuple[tuple[int, float], ...] = ((240, 60.0), (20, 5.0))

# The two documented ways to send the key (CHATLOOM_AUTH_HEADER).
AUTH = {"bearer": Auth(key_prefix="clf_"), "x-api-key": Auth(header="X-API-Key", scheme="", key_prefix="clf_")}
AUTH_HEADER = Setting("auth_header", env="CHATLOOM_AUTH_HEADER", default="bearer", choices=tuple(AUTH))

DOMAINS_PATH = "/api/plugin/agents"  # + /{agentId}/allowed-domains

# -- Assumptions where the docs are silent (the export is not documented yet). Correct them here. --
# GET /api/plugin/conversations pages with limit (max 100) + offset and
# answers like the agents list, `{"conversations": [...], "count": N}`, each
# item whole, with its visitor and messages (an export: no detail call):
# {"id", "agentId", "agentName", "channel", "status", "startedAt", "lastMessageAt",
#  "visitor": {"name", "email", "phone"}, "messages": [{"id", "role", "content", "createdAt"}]}.
CONVERSATIONS = StreamSpec(
    "conversations", path="/api/plugin/conversations", member="conversations", paging=Paging.ASSUMED_OFFSET,
    kind=RecordKind.CONVERSATIONS, normalizer=normalize_conversation, enabled_by="CHATLOOM_CONVERSATIONS",
)
# ---------------------------------------------------------------------------------------------------

SPEC = SourceSpec(
    "chatloom", "Chatloom",
    key_env="CHATLOOM_API_KEY", base_url_env="CHATLOOM_BASE_URL", default_base_url="https://chatloom.app",
    auth=AUTH[AUTH_HEADER.default], settings=(AUTH_HEADER,), limits=RATE_LIMITS, concurrency=2,
    streams=(
        StreamSpec("agents", path="/api/plugin/agents", member="agents", read=read_agents),
        CONVERSATIONS,
    ),
    preview=("agents", ("id", "name", "status", "template", "position", "createdAt", "allowedDomains")),
)
