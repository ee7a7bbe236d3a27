"""The generic source connector: a `SourceBase` that reads what a `SourceSpec` declares.

Why one class for every platform: auth headers, the key check, envelope
unwrapping, the three paging styles and detail reads are the same code for
every platform once their differences are data (connectors/spec.py). A platform's package subclasses `DeclaredSource` only
to keep its named methods (`iter_contact_pages`, `get_brief`, ...) and the
constructor options its spec's settings name; `read_streams` reads every
stream of a spec into a landing, calling a stream's own `read` function
where the spec could not say it.
"""

from __future__ import annotations

from datetime import datetime
from functools import partial
from typing import Any, ClassVar, Iterable, Iterator, Literal, Mapping, Protocol, Sequence
from urllib.parse import quote

from connectors.source import SourceBase, check_api_key
from connectors.paging import Fetch, OffsetPager
from connectors.spec import Auth, Envelope, Paging, SourceSpec, StreamSpec
from schemas.errors import InvalidRecord
from schemas.fields import parse_timestamp

class Window(Protocol):
    """The run's days as a listing sees them (pipelines.partitions.ReadWindow), and what the cut did."""

    end: datetime  # after the last day: items started from here on are passed over
    stopped_early: bool
    newer_skipped: int
    kept: int

    @property
    def cutoff(self) -> datetime:
        """The first day minus the lookback: an item started before it ends the listing."""


# A repeated page: an error where offset paging is documented, the end of what we can read where it is not.
_ON_LOOP: dict[Paging, Literal["raise", "stop"]] = {
    Paging.OFFSET: "raise", Paging.ASSUMED_OFFSET: "stop", Paging.PROBED: "stop"}


class DeclaredSource(SourceBase):
    """A source whose requests come from its spec; `streams_on` names the flagged streams turned on."""

    spec: ClassVar[SourceSpec]

    def __init__(
        self,
        api_key: str,
        base_url: str | None = None,
        *,
        concurrency: int | None = None,
        limits: Sequence[tuple[int, float]] | None = None,
        auth: Auth | None = None,
        streams_on: Iterable[str] = (),
        **client_options: Any,
    ) -> None:
        """The key is checked (and its prefix) before any request; `client_options` go to SourceClient."""
        spec = self.spec
        auth = auth or spec.auth
        key = check_api_key(spec.name, api_key, prefix=auth.key_prefix, env_var=spec.key_env)
        self.streams_on = frozenset(streams_on)
        super().__init__(
            base_url=base_url or spec.default_base_url,
            headers=auth.headers(key),
            limits=spec.limits if limits is None else limits,
            concurrency=spec.concurrency if concurrency is None else concurrency,
            auth_hints=spec.auth_hints,
            base_url_variable=spec.base_url_env,
            **client_options,
        )

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """A platform's class is named after its spec: the service in every error and log line."""
        super().__init_subclass__(**kwargs)
        if "spec" in cls.__dict__:
            cls.name = cls.spec.name

    def is_on(self, stream: StreamSpec) -> bool:
        """A stream without a flag is always read; a flagged one only when turned on."""
        return stream.enabled_by is None or stream.name in self.streams_on

    def whole(self, stream: str) -> list[dict]:
        """The unpaged list of `stream` (one call)."""
        spec = self.spec.stream(stream)
        return self._items(self.client.get_json(spec.path), spec)

    def paged(
        self, stream: str, params: Mapping[str, Any] | None = None, *, label: str | None = None,
        key: str | None = None, page_size: int | None = None,
    ) -> OffsetPager:
        """One listing of `stream` (with `params`), unstarted; `label` names it in stats, `key` in checkpoints."""
        spec = self.spec.stream(stream)
        return self._paged(
            label or spec.name, self._fetcher(spec, dict(params or {})),
            page_size=page_size or spec.page_size, max_page_size=spec.max_page_size,
            on_loop=_ON_LOOP[spec.paging], key=key,
        )

    def detail(self, stream: str, item_id: str) -> dict:
        """One listed item of `stream` read in full, `<detail_path>/<id>`. NotFound if it was deleted meanwhile."""
        spec = self.spec.stream(stream)
        path = f"{spec.detail_path}/{quote(str(item_id), safe='')}"
        return self._expect(self._body(self.client.get_json(path), path), dict, path)

    def _fetcher(self, spec: StreamSpec, params: dict[str, Any]) -> Fetch:
        def fetch(offset: int, limit: int) -> list[dict]:
            query = {**params, "limit": limit}
            if offset or spec.paging is not Paging.PROBED:  # a probed offset is sent only once it matters
                query["offset"] = offset
            return self._items(self.client.get_json(spec.path, query), spec)

        return fetch

    def _body(self, body: Any, path: str) -> Any:
        return self._unwrap(body, path) if self.spec.envelope is Envelope.SUCCESS_DATA else body

    def _items(self, body: Any, spec: StreamSpec) -> list[dict]:
        data = self._body(body, spec.path)
        if spec.member is not None:
            return self._member(data, spec.member, spec.path)
        return self._expect(data, list, spec.path)


def read_streams(client: DeclaredSource, land: Any, window: Window | None = None) -> None:
    """Every stream of the client's spec that is on, in order, into `land` (pipelines.steps.read.Landing).

    `window` is the run's ReadWindow, or None for a whole-history read."""
    for stream in client.spec.streams:
        if not client.is_on(stream):
            continue
        if stream.read is not None:
            stream.read(client, land, window)
            continue
        if stream.paging is Paging.WHOLE:
            pages: Iterable[list[dict]] = [client.whole(stream.name)]
        else:
            pages = newest_first_in_window(client.paged(stream.name), window, stream.newest_first_by)
        if stream.detail_path:
            land.pages_with_details(stream.name, pages, partial(client.detail, stream.name), workers=client.concurrency)
        else:
            land.pages(stream.name, pages)  # an unpaged list is one page (Landing.records)


def newest_first_in_window(
    pages: Iterable[list[dict[str, Any]]], window: Window | None, started_key: str | None
) -> Iterable[list[dict[str, Any]]]:
    """The pages of a newest-first listing, cut to the window: stops at the first item before its cutoff.

    Without a window (a whole-history read) or a start key the listing is
    handed on as it is, so a historical load can still make it resumable.
    """
    return pages if window is None or started_key is None else _cut_to_window(pages, window, started_key)


def _cut_to_window(
    pages: Iterable[list[dict[str, Any]]], window: Window, started_key: str
) -> Iterator[list[dict[str, Any]]]:
    iterator = iter(pages)
    try:
        for page in iterator:
            kept = []
            for item in page:
                started = _started(item, started_key)
                if started is not None and started < window.cutoff:
                    window.stopped_early = True
                    break
                if started is not None and started >= window.end:
                    window.newer_skipped += 1
                    continue
                kept.append(item)
            window.kept += len(kept)
            if kept:
                yield kept
            if window.stopped_early:
                return
    finally:
        close = getattr(iterator, "close", None)
        if close is not None:
            close()  # stops the pager: no further page is requested


def _started(item: Any, key: str) -> Any:
    try:
        return parse_timestamp(item.get(key)) if isinstance(item, dict) else None
    except InvalidRecord:
        return None
