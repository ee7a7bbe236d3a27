"""The source registry: every chat-agent platform the sync reads, in one table.

Each `Source` says what the asset factories (pipelines/assets/sources.py),
the historical-load ops and the run summary need to know: its name (Dagster
group, resource key and the `source` of its records), the environment
variable that turns it on, the raw streams it lands, its read function, and
which raw stream yields contacts (normalized by
`pipelines.steps.normalize.NORMALIZERS[(name, contact_stream)]`).

A new stream is one more line in a read function and one more name in
`streams`; Chatloom's conversation export (on its roadmap) is exactly that:

    land.pages("conversations", client.iter_conversation_pages())

plus, if its conversations name people, `contact_stream="conversations"`
and a normalizer in NORMALIZERS.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import dagster as dg

from connectors.agentclara import AgentClaraSource
from connectors.agentpro import AgentProSource
from connectors.chatloom import ChatloomSource
from connectors.clairo import ClairoSource
from connectors.errors import NotFound
from pipelines.resources import AgentClaraResource, AgentProResource, ChatloomResource, ClairoResource
from pipelines.steps.normalize import NORMALIZERS, Normalizer
from pipelines.steps.read import Landing


def read_agentclara(client: AgentClaraSource, land: Landing) -> None:
    land.pages("contacts", client.iter_contact_pages())


def read_clairo(client: ClairoSource, land: Landing) -> None:
    """Agents; conversations with their messages; briefs with their answers."""
    land.records("agents", client.list_agents())
    land.pages_with_details(
        "conversations", client.iter_conversation_pages(), client.get_conversation, workers=client.concurrency
    )
    land.pages_with_details("briefs", client.iter_brief_pages(), client.get_brief, workers=client.concurrency)


def read_agentpro(client: AgentProSource, land: Landing) -> None:
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


def read_chatloom(client: ChatloomSource, land: Landing) -> None:
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
    read: Callable[[Any, Landing], None]
    contact_stream: str | None = None  # the raw stream whose records are people
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
    def normalizer(self) -> Normalizer | None:
        return NORMALIZERS[(self.name, self.contact_stream)] if self.contact_stream else None


SOURCES: tuple[Source, ...] = (
    Source(
        "agentclara", "AgentClara", "AGENTCLARA_API_KEY", AgentClaraResource,
        streams=("contacts",), read=read_agentclara, contact_stream="contacts",
        read_asset_name="agentclara_contacts_raw",  # its name since the first release
    ),
    Source(
        "clairo", "Clairo", "CLAIRO_API_KEY", ClairoResource,
        streams=("agents", "conversations", "briefs"), read=read_clairo, contact_stream="briefs",
        # Leads who skip both the email and the phone question are expected.
        max_quarantine_rate=0.25,
    ),
    Source(
        "agentpro", "AgentPro", "AGENTPRO_API_KEY", AgentProResource,
        streams=("chatbots", "visitors", "conversations"), read=read_agentpro, contact_stream="visitors",
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
