"""Dagster code location for the CRM sync: `dagster dev -m pipelines`."""

from pipelines.definitions import defs

__all__ = ["defs"]
