"""The sync's stages as plain functions over the state store.

Dagster assets (daily partitions) and the historical-load ops call the same
functions, so both ways of running share one behaviour.
"""
