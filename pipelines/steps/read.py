"""Read one source into the raw table: every stream, details only for what changed.

`read_source` is the one code path every source takes, from the daily
assets and the historical-load ops alike: skip with a log line when the
source is off, build its connector (a malformed key fails here, before any
request), run its streams (connectors/declared.read_streams, from its spec) against a
`Landing`, and turn a `ConnectorError` into a *failed outcome* rather than
an exception, so one source down (outage, bad key, wrong plan) never stops
the others. What was landed before the error is kept.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator

from connectors.errors import ConnectorError, NotFound
from pipelines.reporting import Progress
from pipelines.state import StateStore
from pipelines.state.rows import RawRow
from pipelines.steps.heap import long_lived_set_aside
from pipelines.steps.ingest import IngestStats, ingest, record_key
from schemas.raw import storable

if TYPE_CHECKING:
    from pipelines.partitions import ReadWindow
    from pipelines.sources import Source
    from pipelines.steps.normalize import StreamNormalizer

PREVIEW_ROWS = 20

# Traffic and listing-health figures of connectors.source.SourceStats shown per read.
TRAFFIC_KEYS = ("requests", "retries", "throttled", "server_errors", "transport_errors",
                "duplicates", "shifts", "recovery_passes")


class Landing:
    """Where a source's read function puts its records: the store, stream by stream, counted."""

    def __init__(
        self,
        store: StateStore,
        source: str,
        *,
        run_id: str | None = None,
        log: Any = None,
        label: str | None = None,
        preview_stream: str | None = None,
        checkpoints: Any = None,
        normalizer: StreamNormalizer | None = None,
    ) -> None:
        self.store, self.source, self.run_id, self.log = store, source, run_id, log
        # Historical loads only: a pipelines.steps.checkpoint.HistoricalCheckpoints
        # that makes each offset listing resumable and estimates its size.
        self.checkpoints = checkpoints
        # Historical loads only: normalizes each page's new or changed rows as it lands.
        self.normalizer = normalizer
        self.label = label or source
        self.streams: dict[str, IngestStats] = {}
        self.preview_stream = preview_stream
        self.preview: list[dict[str, Any]] = []
        self._progress: dict[str, Progress] = {}

    def stats(self, stream: str) -> IngestStats:
        if stream not in self.streams:
            self.streams[stream] = IngestStats(self.source, stream)
        return self.streams[stream]

    def pages(self, stream: str, pages: Iterable[list[dict[str, Any]]]) -> IngestStats:
        """Keep every listed record of `stream` as it is, page by page."""
        pages = self._tracked(stream, pages)
        return ingest(
            self.store, self.source, stream, self._previewed(stream, pages), run_id=self.run_id,
            on_page=self._on_page(stream), stats=self.stats(stream),
            on_landed=self.normalizer.add if self.normalizer else None,
        )

    def records(self, stream: str, items: list[dict[str, Any]]) -> IngestStats:
        """Keep an unpaged list (agents, chatbots) as one page."""
        return self.pages(stream, [items])

    def pages_with_details(
        self,
        stream: str,
        pages: Iterable[list[dict[str, Any]]],
        get_detail: Callable[[str], dict[str, Any]],
        *,
        workers: int = 4,
        list_stream: str | None = None,
    ) -> IngestStats:
        """Keep a listing whose items have a detail read (`GET /<stream>/{id}`).

        The detail is read only for items that are new or changed since the
        kept payload (a listed field differs from it), so a daily run reads
        the details of what changed and nothing else. The kept payload is
        the listed item with the detail over it. A 404 on the detail (deleted
        since the listing) skips the item. `list_stream`, when given, also
        keeps the listed items as they are (AgentPro "visitors").
        """
        pages = self._tracked(stream, pages)
        stats = self.stats(stream)
        on_page = self._on_page(stream)
        started = time.monotonic()
        try:
            with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix=f"{self.source}-details") as pool:
                for page in pages:
                    if list_stream:
                        self.records(list_stream, page)
                    stats.pages += 1
                    stats.records += len(page)
                    keyed = [(record_key(item), item) for item in page]
                    kept = self.store.raw_payloads(self.source, stream, [key for key, _ in keyed])
                    # (compared as the store keeps it: a payload it had to sanitize is still "covered")
                    todo = [(key, item) for key, item in keyed if not _covers(kept.get(key), storable(item).value)]
                    details = list(pool.map(lambda pair: _detail(pair[1], get_detail), todo))
                    fresh = [(key, detail) for (key, _), detail in zip(todo, details) if detail is not None]
                    stats.details += sum(1 for _, item in todo if has_usable_id(item))
                    stats.gone += len(todo) - len(fresh)
                    landed: list[RawRow] = []
                    stats.new_or_changed += self.store.save_raw(
                        self.source, stream, fresh, run_id=self.run_id, changes=stats.sanitized, landed=landed
                    )
                    if self.normalizer:
                        self.normalizer.add(stream, landed)
                    on_page(stats)
        finally:
            stats.seconds += time.monotonic() - started
        return stats

    def _tracked(self, stream: str, pages: Iterable[list[dict[str, Any]]]) -> Iterable[list[dict[str, Any]]]:
        return pages if self.checkpoints is None else self.checkpoints.attach(stream, pages)

    def _on_page(self, stream: str) -> Callable[[IngestStats], None]:
        if self.log is None:
            return lambda _stats: None
        if stream not in self._progress:
            self._progress[stream] = Progress(self.log, f"{self.label} {stream}")
        return self._progress[stream]

    def _previewed(self, stream: str, pages: Iterable[list[dict[str, Any]]]) -> Iterator[list[dict[str, Any]]]:
        for page in pages:
            if stream == self.preview_stream and len(self.preview) < PREVIEW_ROWS:
                self.preview.extend(item for item in page[: PREVIEW_ROWS - len(self.preview)] if isinstance(item, dict))
            yield page


def has_usable_id(item: Any) -> bool:
    """Has the item an id a detail read can be asked for? (One that cannot be a key gets none:
    the item is kept as listed, and quarantined.)"""
    return isinstance(item, dict) and record_key(item) == str(item.get("id"))


def _covers(kept: Any, item: Any) -> bool:
    """Does the kept payload already hold this listed item (every listed field equal)?"""
    if not isinstance(kept, dict) or not isinstance(item, dict):
        return False
    return all(kept.get(name, _MISSING) == value for name, value in item.items())


_MISSING = object()


def _detail(item: Any, get_detail: Callable[[str], dict[str, Any]]) -> Any:
    """The item with its detail over it; the item itself when it has no id; None when gone."""
    if not has_usable_id(item):
        return item  # kept as listed: normalization quarantines it with its reason
    try:
        detail = get_detail(str(item["id"]))
    except NotFound:
        return None
    return {**item, **detail} if isinstance(detail, dict) else item


@dataclass
class ReadOutcome:
    """What reading one source did: per-stream counts, traffic, and how it ended."""

    source: str
    streams: dict[str, IngestStats] = field(default_factory=dict)
    skipped: str | None = None
    error: str | None = None
    source_stats: dict[str, Any] = field(default_factory=dict)
    preview: list[dict[str, Any]] = field(default_factory=list)
    server_rate_limit: int | None = None  # what the server's X-RateLimit-Limit said, if it says
    seconds: float = 0.0

    @property
    def status(self) -> str:
        return "skipped" if self.skipped else "failed" if self.error else "success"

    @property
    def truncated(self) -> dict[str, str]:
        """Listings that may have been cut short (stream -> why)."""
        return dict(self.source_stats.get("truncated") or {})

    @property
    def complete(self) -> bool:
        return not self.error and not self.truncated

    def as_metadata(self) -> dict[str, Any]:
        """Flat figures for the Dagster UI and the run history (JSON only)."""
        if self.skipped:
            return {"skipped": self.skipped}
        metadata: dict[str, Any] = {"status": self.status}
        if self.error:
            metadata["error"] = self.error
        streams = self.streams.values()
        metadata["records read"] = sum(s.records for s in streams)
        metadata["pages fetched"] = sum(s.pages for s in streams)
        metadata["new or changed"] = sum(s.new_or_changed for s in streams)
        for stats in streams:
            metadata[f"{stats.stream} read"] = stats.records
            if stats.details or stats.gone:
                metadata[f"{stats.stream} details fetched"] = stats.details
            if stats.gone:
                metadata[f"{stats.stream} gone before their detail read"] = stats.gone
            if stats.sanitized:
                metadata[f"{stats.stream} payloads sanitized to be stored"] = dict(stats.sanitized)
        for key in TRAFFIC_KEYS:
            metadata[key] = self.source_stats.get(key, 0)
        if self.server_rate_limit is not None:
            metadata["rate limit (X-RateLimit-Limit)"] = self.server_rate_limit
        metadata["complete"] = self.complete
        if self.truncated:
            metadata["truncated"] = self.truncated
        if self.source_stats.get("warnings"):
            metadata["warnings"] = list(self.source_stats["warnings"])
        metadata["seconds"] = round(self.seconds, 2)
        return metadata


def read_source(
    source: Source, resource: Any, store: StateStore, *, run_id: str | None, log: Any, checkpoints: Any = None,
    window: ReadWindow | None = None, normalizer: StreamNormalizer | None = None,
) -> ReadOutcome:
    """Read every stream of `source`; a ConnectorError ends it as a failed outcome, logged.

    `checkpoints`, `normalizer` (historical loads): see `Landing`.
    `window`: the run's days, for listings read newest first down to its
    cutoff (its spec: StreamSpec.newest_first_by); None reads everything (historical_load)."""
    if not resource.enabled:
        message = f"{source.env_key} is not set: {source.label} is off, nothing read."
        log.info(message)
        return ReadOutcome(source.name, skipped=message)
    preview_stream = source.preview[0] if source.preview else None
    land = Landing(store, source.name, run_id=run_id, log=log, label=source.label, preview_stream=preview_stream,
                   checkpoints=checkpoints, normalizer=normalizer)
    outcome = ReadOutcome(source.name, streams=land.streams, preview=land.preview)
    started = time.monotonic()
    client = None
    try:
        client = resource.client()
        with long_lived_set_aside():
            source.read(client, land, window)
    except ConnectorError as exc:
        outcome.error = str(exc)
        log.error(
            f"{source.label} read failed; what it read before is kept, the other sources carry on: {exc}"
        )
    finally:
        if client is not None:
            outcome.source_stats = client.stats.as_dict()
            outcome.server_rate_limit = client.limiter.server_limit
            client.close()
        outcome.seconds = time.monotonic() - started
    if outcome.truncated:
        log.warning(f"{source.label}: these listings may be incomplete: {outcome.truncated}")
    return outcome
