"""What Chatloom's spec cannot say: its agent inventory is each agent with its allowed domains.

The domains come from one call per agent, and a `count` that disagrees with
the agent list is worth a warning (the list is what we trust).
"""

from __future__ import annotations

from typing import Any

from connectors.errors import NotFound


def read_agents(client: Any, land: Any, window: Any = None) -> None:
    """The agent inventory, each agent with its allowed domains (`allowedDomains`)."""
    from pipelines.steps.read import has_usable_id  # the landing's own rule (imported late: it imports us)

    inventory = []
    for agent in client.list_agents():
        if has_usable_id(agent):
            try:
                agent = {**agent, "allowedDomains": client.allowed_domains(str(agent["id"]))}
            except NotFound:
                continue  # deleted since the listing
        inventory.append(agent)
    land.records("agents", inventory)
