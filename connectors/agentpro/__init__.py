"""AgentPro: the spec (connectors/agentpro/spec.py), the connector, and its normalizers."""

from connectors.agentpro.client import AgentProSource
from connectors.agentpro.spec import SPEC, TIER_LIMITS

__all__ = ["SPEC", "TIER_LIMITS", "AgentProSource"]
