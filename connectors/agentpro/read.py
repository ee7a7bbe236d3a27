"""What AgentPro's spec cannot say: its conversations are listed per chatbot.

So one plain function reads all three streams: the chatbots (one list),
then each chatbot's conversations, kept as listed in "visitors" (who the
contacts come from) and with their messages in "conversations" (details).
"""

from __future__ import annotations

from typing import Any


def read_chatbots(client: Any, land: Any, window: Any = None) -> None:
    """Chatbots; each one's conversations as listed ("visitors") and in full ("conversations")."""
    from pipelines.steps.read import has_usable_id  # the landing's own rule (imported late: it imports us)

    chatbots = client.list_chatbots()
    land.records("chatbots", chatbots)
    for bot in chatbots:
        if has_usable_id(bot):  # one whose id cannot be a key is kept as listed; nothing can be asked of it
            land.pages_with_details(
                "conversations", client.iter_conversation_pages(str(bot["id"])), client.get_conversation,
                workers=client.concurrency, list_stream="visitors",
            )


def landed_by_chatbots(client: Any, land: Any, window: Any = None) -> None:
    """Nothing to do: `read_chatbots` lands this stream with each chatbot's conversations."""
