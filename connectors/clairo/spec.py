"""Clairo, declared: Bearer `clr_` key, bare objects, `limit` documented and `offset` not.

Clairo answers with bare objects (`{"agents": [...]}`), limits a business to
1,000 requests a minute and says so in X-RateLimit-* headers (which the
shared client feeds to the limiter), and documents only `limit` (default 50)
for its lists. Whether `offset` works is not documented, so every listing
probes it (`Paging.PROBED`): if the second page repeats the first, the
listing stops there and is marked `truncated` for the pipeline to flag,
never dropped silently.
"""

from __future__ import annotations

from connectors.clairo.normalize import brief_contact, normalize_conversation
from connectors.spec import Auth, Envelope, Paging, RecordKind, SourceSpec, StreamSpec

# Documented: 1,000 requests/minute per business.
RATE_LIMITS: tuple[tuple[int, float], ...] = ((1000, 60.0),)

# A 403 from Clairo means the plan, not the key (docs: "Forbidden - requires Max plan").
AUTH_HINTS = {403: "the Clairo plan has no API access; the API requires the Max plan"}

# -- Assumptions where the docs are silent (DESIGN.md). Correct them here. ----
# A `limit` above 100 is not honoured; `offset` is probed on every listing,
# never trusted. GET /agents is one unpaged list; GET /conversations returns
# {"conversations": [...]}, GET /briefs {"briefs": [...]}, each item's
# detail at /<stream>/{id} (a brief's adds its `answers`).
MAX_PAGE_SIZE = 100
STREAMS = (
    StreamSpec("agents", path="/agents", member="agents"),
    StreamSpec(
        "conversations", path="/conversations", member="conversations", paging=Paging.PROBED,
        page_size=MAX_PAGE_SIZE, max_page_size=MAX_PAGE_SIZE, detail_path="/conversations",
        kind=RecordKind.CONVERSATIONS, normalizer=normalize_conversation,
    ),
    StreamSpec(
        "briefs", path="/briefs", member="briefs", paging=Paging.PROBED,
        page_size=MAX_PAGE_SIZE, max_page_size=MAX_PAGE_SIZE, detail_path="/briefs",
        kind=RecordKind.CONTACTS, normalizer=brief_contact,
    ),
)
# -----------------------------------------------------------------------------

SPEC = SourceSpec(
    "clairo", "Clairo",
    key_env="CLAIRO_API_KEY", base_url_env="CLAIRO_BASE_URL", default_base_url="https://clairo.tech/api/v1",
    auth=Auth(key_prefix="clr_"), auth_hints=AUTH_HINTS, envelope=Envelope.BARE, limits=RATE_LIMITS,
    streams=STREAMS,
    max_quarantine_rate=0.25,  # leads who skip both the email and the phone question are expected
)
