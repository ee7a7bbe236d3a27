"""Chatloom: the spec (connectors/chatloom/spec.py), the connector, and its normalizer."""

from connectors.chatloom.client import ChatloomSource
from connectors.chatloom.spec import SPEC

__all__ = ["SPEC", "ChatloomSource"]
