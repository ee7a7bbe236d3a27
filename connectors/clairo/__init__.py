"""Clairo: the spec (connectors/clairo/spec.py), the connector, and its normalizers."""

from connectors.clairo.client import ClairoSource
from connectors.clairo.normalize import brief_contact
from connectors.clairo.spec import SPEC

__all__ = ["SPEC", "ClairoSource", "brief_contact"]
