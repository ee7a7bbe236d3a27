"""The source registry: every chat-agent platform the sync reads, in one table.

Each `Source` says what the asset factories (pipelines/assets/sources.py),
the historical-load ops and the run summary need to know: its name (Dagster
group, resource key and the `source` of its records), the environment
variable that turns it on, the raw streams it lands, its read function, and
which raw stream yields contacts (normalized by
`pipelines.steps.normalize.NORMALIZERS[(name, contact_stream)]`) and which
conversations (`CONVERSATION_NORMALIZERS[(name, conversation_stream)]`).
Contacts and conversations come from different raw streams, so every raw
row has one output and one normalization mark.

A read function takes the connector, the `Landing`, and the run's
`ReadWindow` (None for a whole-history read such as historical_load).

A new stream is one more line in a read function and one more name in
`streams`; Chatloom's conversation export (on its roadmap) is exactly that:

    land.pages_with_details("conversations", client.iter_conversation_pages(), client.get_conversation)

plus `conversation_stream="conversations"` and a normalizer in
CONVERSATION_NORMALIZERS.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator

import dagster as dg

from connectors.agentclara import AgentClaraSource
from connectors.agentpro import AgentProSource
from connectors.chatloom import ChatloomSource
from connectors.clairo import ClairoSource
from connectors.errors import NotFound
from pipelines.partitions import ReadWindow
from pipelines.reporting import record
from pipelines.resources import AgentClaraResource, AgentProResource, ChatloomResource, ClairoResource
from pipelines.state import StateStore
from pipelines.steps.normalize import normalize_conversations, normalize_pending
from pipelines.steps.read import Landing
from schemas.errors import InvalidRecord
from schemas.fields import parse_timestamp

# -- AgentClara conversations: assumptions where the docs are silent. Correct them here. --
# `GET /conversations` has no date filter (only channel, status, customer_id)
# and lists newest first by `timestamp`, which the docs define as when the
# conversation *started*; a new message does not move it up the list. So a
# partitioned run reads the listing from the top down to its first day minus
# SYNC_CONVERSATION_LOOKBACK_DAYS (default 7) and stops there: conversations
# that started within the lookback and got messages inside the window are
# caught; one that started earlier and wakes up later is caught by a run
# with a longer lookback, or historical_load. Items started on or after the
# window's end are passed over (their own day's run lands them). An item
# whose `timestamp` is missing or unreadable is kept: it cannot be placed.
AGENTCLARA_CONVERSATION_STARTED = "timestamp"
# ---------------------------------------------------------------------------------------------


def newest_first_in_window(
    pages: Iterable[list[dict[str, Any]]], window: ReadWindow | None, started_key: str
) -> Iterable[list[dict[str, Any]]]:
    """The pages of a newest-first listing, cut to the window: stops at the first item before its cutoff.

    Without a window (a whole-history read) the listing is handed on as it
    is, so a historical load can still make it resumable.
    """
    return pages if window is None else _cut_to_window(pages, window, started_key)


def _cut_to_window(
    pages: Iterable[list[dict[str, Any]]], window: ReadWindow, started_key: str
) -> Iterator[list[dict[str, Any]]]:
    iterator = iter(pages)
    try:
        for page in iterator:
            kept = []
            for item in page:
                started = _started(item, started_key)
                if started is not None and started < window.cutoff:
                    window.stopped_early = True
                    break
                if started is not None and started >= window.end:
                    window.newer_skipped += 1
                    continue
                kept.append(item)
            window.kept += len(kept)
            if kept:
                yield kept
            if window.stopped_early:
                return
    finally:
        close = getattr(iterator, "close", None)
        if close is not None:
            close()  # stops the pager: no further page is requested


def _started(item: Any, key: str) -> Any:
    try:
        return parse_timestamp(item.get(key)) if isinstance(item, dict) else None
    except InvalidRecord:
        return None


def read_agentclara(client: AgentClaraSource, land: Landing, window: ReadWindow | None = None) -> None:
    """Contacts (the whole list); conversations of the window with their messages (details)."""
    land.pages("contacts", client.iter_contact_pages())
    land.pages_with_details(
        "conversations",
        newest_first_in_window(client.iter_conversation_pages(), window, AGENTCLARA_CONVERSATION_STARTED),
        client.get_conversation,
        workers=client.concurrency,
    )


def read_clairo(client: ClairoSource, land: Landing, window: ReadWindow | None = None) -> None:
    """Agents; conversations with their messages; briefs with their answers."""
    land.records("agents", client.list_agents())
    land.pages_with_details(
        "conversations", client.iter_conversation_pages(), client.get_conversation, workers=client.concurrency
    )
    land.pages_with_details("briefs", client.iter_brief_pages(), client.get_brief, workers=client.concurrency)


def read_agentpro(client: AgentProSource, land: Landing, window: ReadWindow | None = None) -> None:
    """Chatbots; each one's conversations, kept as listed ("visitors", who the
    contacts come from) and with their messages ("conversations")."""
    chatbots = client.list_chatbots()
    land.records("chatbots", chatbots)
    for bot in chatbots:
        if isinstance(bot, dict) and bot.get("id") not in (None, ""):
            land.pages_with_details(
                "conversations", client.iter_conversation_pages(str(bot["id"])), client.get_conversation,
                workers=client.concurrency, list_stream="visitors",
            )


def read_chatloom(client: ChatloomSource, land: Landing, window: ReadWindow | None = None) -> None:
    """The agent inventory, each agent with its allowed domains (`allowedDomains`)."""
    inventory = []
    for agent in client.list_agents():
        if isinstance(agent, dict) and agent.get("id") not in (None, ""):
            try:
                agent = {**agent, "allowedDomains": client.allowed_domains(str(agent["id"]))}
            except NotFound:
                continue  # deleted since the listing
        inventory.append(agent)
    land.records("agents", inventory)


@dataclass(frozen=True)
class Source:
    """One platform: how it is turned on, what it lands, where its people come from."""

    name: str  # Dagster group, resource key, and the `source` of its records
    label: str
    env_key: str  # on when set (DESIGN.md contract)
    resource: type[dg.ConfigurableResource]
    streams: tuple[str, ...]  # raw streams it lands, in read order
    read: Callable[[Any, Landing, ReadWindow | None], None]
    contact_stream: str | None = None  # the raw stream whose records are people
    conversation_stream: str | None = None  # the raw stream whose records are conversations (with messages)
    # Its conversation listing is read newest first down to the run's window (see the assumptions above).
    windowed_conversations: bool = False
    read_asset_name: str | None = None  # default "<name>_raw"
    preview: tuple[str, tuple[str, ...]] | None = None  # (stream, columns) shown in the UI
    # Share of quarantined contacts above which the `<name>_quarantine_rate`
    # check warns: set above what the platform's normal data gives.
    max_quarantine_rate: float = 0.05

    @property
    def read_asset(self) -> str:
        """The asset (and run-history step) that reads every stream of the source."""
        return self.read_asset_name or f"{self.name}_raw"

    @property
    def contacts_asset(self) -> str | None:
        """The asset that normalizes its people into canonical contacts, if it has any."""
        return f"{self.name}_contacts" if self.contact_stream else None

    @property
    def conversations_asset(self) -> str | None:
        """The asset that normalizes its conversations, if it has any."""
        return f"{self.name}_conversations" if self.conversation_stream else None


def normalize_source(context: dg.OpExecutionContext, store: StateStore, source: Source, region: str) -> None:
    """Normalize a source's kept contacts and conversations, each recorded as its asset's step in the run history.

    What an unpartitioned job does after (historical_load) or instead of
    (renormalize) reading the source.
    """
    run_id = context.run.run_id
    if source.contact_stream:
        stats = normalize_pending(store, source.name, source.contact_stream, region=region, run_id=run_id)
        record(context, store, source.contacts_asset, stats.as_metadata())
    if source.conversation_stream:
        stats = normalize_conversations(store, source.name, source.conversation_stream, region=region, run_id=run_id)
        record(context, store, source.conversations_asset, stats.as_metadata())


SOURCES: tuple[Source, ...] = (
    Source(
        "agentclara", "AgentClara", "AGENTCLARA_API_KEY", AgentClaraResource,
        streams=("contacts", "conversations"), read=read_agentclara, contact_stream="contacts",
        conversation_stream="conversations", windowed_conversations=True,
        read_asset_name="agentclara_contacts_raw",  # its name since the first release
    ),
    Source(
        "clairo", "Clairo", "CLAIRO_API_KEY", ClairoResource,
        streams=("agents", "conversations", "briefs"), read=read_clairo, contact_stream="briefs",
        conversation_stream="conversations",
        # Leads who skip both the email and the phone question are expected.
        max_quarantine_rate=0.25,
    ),
    Source(
        "agentpro", "AgentPro", "AGENTPRO_API_KEY", AgentProResource,
        streams=("chatbots", "visitors", "conversations"), read=read_agentpro, contact_stream="visitors",
        conversation_stream="conversations",
        # Most web-chat visitors never leave an email or a phone: they are
        # quarantined as no_valid_email_or_phone by design.
        max_quarantine_rate=0.75,
    ),
    Source(
        "chatloom", "Chatloom", "CHATLOOM_API_KEY", ChatloomResource,
        streams=("agents",), read=read_chatloom,
        preview=("agents", ("id", "name", "status", "template", "position", "createdAt", "allowedDomains")),
    ),
)

BY_NAME: dict[str, Source] = {source.name: source for source in SOURCES}
CONTACT_SOURCES: tuple[Source, ...] = tuple(s for s in SOURCES if s.contact_stream)
CONVERSATION_SOURCES: tuple[Source, ...] = tuple(s for s in SOURCES if s.conversation_stream)
