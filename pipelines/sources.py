"""The sources as the pipeline sees them: one `Source` view per spec of pipelines/registry.py.

Each `Source` says what the asset factories (pipelines/assets/sources.py),
the historical-load ops and the run summary need to know, all read off its
spec (connectors/<name>/spec.py): its name (Dagster group, resource key and
the `source` of its records), the variable that turns it on, the raw
streams it lands, and which raw stream yields contacts
(`pipelines.steps.normalize.NORMALIZERS[(name, contact_stream)]`) and which
conversations (`CONVERSATION_NORMALIZERS[(name, conversation_stream)]`).
Contacts and conversations come from different raw streams, so every raw
row has one output and one normalization mark.

A stream with a flag (`StreamSpec.enabled_by`) is on when its variable says
so at the moment the step runs (`stream_on`), never when the definitions load.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

import dagster as dg

from connectors.declared import newest_first_in_window, read_streams
from connectors.spec import RecordKind, SourceSpec, StreamSpec
from pipelines.partitions import ReadWindow
from pipelines.registry import SPECS, stream_on
from pipelines.reporting import record
from pipelines.state import StateStore
from pipelines.steps.normalize import CONTACTS, CONVERSATIONS, NormalizeStats, normalize_pending
from pipelines.steps.read import Landing

__all__ = ["BY_NAME", "CONTACT_SOURCES", "CONVERSATION_SOURCES", "SOURCES", "Source", "newest_first_in_window",
           "normalize_source", "stream_on"]

def _single(spec: SourceSpec, kind: RecordKind) -> StreamSpec | None:
    streams = spec.of_kind(kind)
    if len(streams) > 1:  # one canonical record per raw row, one asset per kind and source
        raise ValueError(f"{spec.name}: more than one {kind.value} stream: {[s.name for s in streams]}")
    return streams[0] if streams else None


@dataclass(frozen=True)
class Source:
    """One platform seen by the pipeline: its spec, and the names derived from it."""

    spec: SourceSpec

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def label(self) -> str:
        return self.spec.title

    @property
    def env_key(self) -> str:
        """On when set (DESIGN.md contract), as the step runs."""
        return self.spec.key_env

    @property
    def streams(self) -> tuple[str, ...]:
        """Raw streams it lands, in read order."""
        return tuple(s.name for s in self.spec.streams)

    @property
    def read(self) -> Callable[[Any, Landing, ReadWindow | None], None]:
        return read_streams

    @property
    def contact_stream(self) -> str | None:
        stream = _single(self.spec, RecordKind.CONTACTS)
        return stream.name if stream else None

    @property
    def conversation_stream(self) -> str | None:
        stream = _single(self.spec, RecordKind.CONVERSATIONS)
        return stream.name if stream else None

    @property
    def windowed_conversations(self) -> bool:
        """A listing is read newest first down to the run's window (its metadata says how far)."""
        return any(s.newest_first_by for s in self.spec.streams)

    @property
    def preview(self) -> tuple[str, tuple[str, ...]] | None:
        return self.spec.preview

    @property
    def max_quarantine_rate(self) -> float:
        return self.spec.max_quarantine_rate

    @property
    def read_asset(self) -> str:
        """The asset (and run-history step) that reads every stream of the source."""
        return self.spec.read_asset_name or f"{self.name}_raw"

    @property
    def contacts_asset(self) -> str | None:
        """The asset that normalizes its people into canonical contacts, if it has any."""
        return f"{self.name}_contacts" if self.contact_stream else None

    @property
    def conversations_asset(self) -> str | None:
        """The asset that normalizes its conversations, if it has any."""
        return f"{self.name}_conversations" if self.conversation_stream else None

    def off_reason(self, stream: str | None) -> str | None:
        """Why `stream` is not read in this run (its flag is off), or None when it is read."""
        if stream is None:
            return None
        spec = self.spec.stream(stream)
        return None if stream_on(spec) else f"{spec.enabled_by} is not set: {self.label} {stream} are off."


def normalize_source(
    context: dg.OpExecutionContext, store: StateStore, source: Source, region: str, *, cores: int = 1,
    landed: Mapping[str, NormalizeStats] | None = None,
) -> None:
    """Normalize a source's kept contacts and conversations, each recorded as its asset's step in the run history.

    What an unpartitioned job does after (historical_load) or instead of
    (renormalize) reading the source. A stream whose flag is off is left
    alone. `landed`: what was normalized as the pages landed (the counts are
    added to this pass's, which then finds only what the read left pending).
    """
    run_id, landed = context.run.run_id, landed or {}
    for stream, kind, asset in ((source.contact_stream, CONTACTS, source.contacts_asset),
                                (source.conversation_stream, CONVERSATIONS, source.conversations_asset)):
        if stream and not source.off_reason(stream):
            stats = normalize_pending(store, source.name, stream, region=region, run_id=run_id, kind=kind,
                                      cores=cores)
            if stream in landed:
                stats = landed[stream].plus(stats)
            record(context, store, asset, stats.as_metadata())


SOURCES: tuple[Source, ...] = tuple(Source(spec) for spec in SPECS)
BY_NAME: dict[str, Source] = {source.name: source for source in SOURCES}
CONTACT_SOURCES: tuple[Source, ...] = tuple(s for s in SOURCES if s.contact_stream)
CONVERSATION_SOURCES: tuple[Source, ...] = tuple(s for s in SOURCES if s.conversation_stream)
