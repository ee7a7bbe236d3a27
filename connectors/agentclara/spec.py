"""AgentClara, declared: Bearer key, `{"success", "data"}` envelope, limit + offset paging.

Its docs say nothing about the contacts list, and its conversation listing
has no date filter: what we assume sits in the block below (DESIGN.md,
"Assumptions where the docs are silent"). When a real payload disagrees,
correct it there, in one edit.
"""

from __future__ import annotations

from connectors.agentclara.normalize import normalize_contact, normalize_conversation
from connectors.spec import Envelope, Paging, RecordKind, SourceSpec, StreamSpec

# Documented: 1,000 requests/minute per key, and a burst of 100 per 10 s. Kept
# as documented: the one safety margin is the limiter's (connectors/ratelimit.py).
DOCUMENTED_LIMITS: tuple[tuple[int, float], ...] = ((1000, 60.0), (100, 10.0))
RATE_LIMITS: tuple[tuple[int, float], ...] = DOCUMENTED_LIMITS

# -- Assumptions where the docs are silent (DESIGN.md). Correct them here. ----
# GET /contacts pages like /conversations: limit (max 100) + offset, in the
# same {"success", "data"} envelope; an offset past the end answers
# "data": [], which the pager reads as the end.
CONTACTS = StreamSpec(
    "contacts", path="/contacts", paging=Paging.OFFSET, page_size=100, max_page_size=100,
    kind=RecordKind.CONTACTS, normalizer=normalize_contact,
)
# GET /conversations has no date filter (only channel, status, customer_id)
# and lists newest first by `timestamp`, which the docs define as when the
# conversation *started*; a new message does not move it up the list. So a
# partitioned run reads the listing from the top down to its first day minus
# SYNC_CONVERSATION_LOOKBACK_DAYS (default 7) and stops there: conversations
# that started within the lookback and got messages inside the window are
# caught; one that started earlier and wakes up later is caught by a run
# with a longer lookback, or historical_load. Items started on or after the
# window's end are passed over (their own day's run lands them). An item
# whose `timestamp` is missing or unreadable is kept: it cannot be placed.
CONVERSATION_STARTED = "timestamp"
# -----------------------------------------------------------------------------

CONVERSATIONS = StreamSpec(
    "conversations", path="/conversations", paging=Paging.OFFSET, page_size=100, max_page_size=100,
    detail_path="/conversations", kind=RecordKind.CONVERSATIONS, normalizer=normalize_conversation,
    newest_first_by=CONVERSATION_STARTED,
)
CONVERSATION_FILTERS = frozenset({"channel", "status", "customer_id"})  # documented filters

SPEC = SourceSpec(
    "agentclara", "AgentClara",
    key_env="AGENTCLARA_API_KEY", base_url_env="AGENTCLARA_BASE_URL", default_base_url="https://api.agentclara.app",
    envelope=Envelope.SUCCESS_DATA, limits=RATE_LIMITS, concurrency=8,
    streams=(CONTACTS, CONVERSATIONS),
    read_asset_name="agentclara_contacts_raw",  # its name since the first release
)
