"""AgentClara: the spec (connectors/agentclara/spec.py), the connector, and its normalizers."""

from connectors.agentclara.client import AgentClaraSource
from connectors.agentclara.spec import DOCUMENTED_LIMITS, RATE_LIMITS, SPEC

__all__ = ["AgentClaraSource", "DOCUMENTED_LIMITS", "RATE_LIMITS", "SPEC"]
