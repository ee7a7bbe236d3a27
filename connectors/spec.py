"""A source as data: what a chat-agent platform's REST API looks like to the sync.

A `SourceSpec` says everything the pipeline and the generic connector
(`connectors.declared`) need to know about one platform: its name, its
key and base-URL variables (the DESIGN.md contract, written here once),
how the key is sent, its documented rate limits, how a body is unwrapped,
and its streams. A `StreamSpec` is one raw stream: where it is listed, how
it pages, where a listed item's detail is read, and which normalizer turns
its records into canonical contacts or conversations.

Why frozen dataclasses and not a configuration language: every value is a
plain Python value or function, checked by the type checker and read by a
newcomer in one place. What a spec cannot say is a plain function in the
integration's own package, referenced by `StreamSpec.read`; never a new
option here, never a templated string.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Callable, Mapping

# One record of a stream -> a canonical contact or conversation dict (schemas/).
Normalizer = Callable[..., dict[str, Any]]
# The escape hatch: read one stream with the connector into the landing, for the run's window (or None).
StreamReader = Callable[[Any, Any, Any], None]


class Envelope(Enum):
    """How a successful body carries its payload."""

    SUCCESS_DATA = "success-data"  # {"success": true, "data": ...}; {"success": false, "error": ...} is an error
    BARE = "bare"  # the resource itself, a list under a member key: {"agents": [...]}


class Paging(Enum):
    """How a listing is paged."""

    WHOLE = "whole"  # one call returns the whole list
    OFFSET = "offset"  # `limit` + `offset`, documented (or assumed like a documented one): a repeated page raises
    ASSUMED_OFFSET = "assumed-offset"  # `limit` + `offset` not documented: a repeated page stops it, truncated
    PROBED = "probed"  # `limit` documented, `offset` not: sent from the second page on; a repeated page stops it


class RecordKind(Enum):
    """What a raw stream's records become."""

    RAW = "raw"  # kept as read, no canonical record
    CONTACTS = "contacts"
    CONVERSATIONS = "conversations"


@dataclass(frozen=True)
class Auth:
    """How the key is sent: `header: scheme key` (scheme "" sends the key alone), and its documented prefix."""

    header: str = "Authorization"
    scheme: str = "Bearer"
    key_prefix: str = ""

    def headers(self, key: str) -> dict[str, str]:
        """The request headers that carry `key`."""
        return {self.header: f"{self.scheme} {key}" if self.scheme else key}


@dataclass(frozen=True)
class Setting:
    """A source option beside key and base URL, read from `env`; passed to the connector as `name`."""

    name: str
    env: str
    default: str
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class StreamSpec:
    """One raw stream of a source.

    Declarative streams set `path` (and `member` for bare bodies, `paging`,
    page sizes, `detail_path` when each listed item's detail is read from
    `<detail_path>/<id>`). `newest_first_by` names the start-time field of a
    listing without a date filter that lists newest first: a partitioned run
    cuts it to its window. `read` replaces all of that with a plain function
    of the integration (`read(connector, landing, window)`).
    `enabled_by` names a flag variable ("1", "true", "yes", "on") that turns
    the stream on, read when the step runs; unset, the stream is not read.
    """

    name: str
    path: str = ""
    member: str | None = None
    paging: Paging = Paging.WHOLE
    page_size: int = 100
    max_page_size: int = 100
    detail_path: str | None = None
    kind: RecordKind = RecordKind.RAW
    normalizer: Normalizer | None = None
    newest_first_by: str | None = None
    read: StreamReader | None = None
    enabled_by: str | None = None

    def __post_init__(self) -> None:
        if (self.kind is RecordKind.RAW) != (self.normalizer is None):
            raise ValueError(f"stream {self.name!r}: a normalizer goes with a contacts or conversations kind")
        if not self.path and self.read is None:
            raise ValueError(f"stream {self.name!r}: give a path or a read function")


@dataclass(frozen=True)
class SourceSpec:
    """One platform, declared: names, variables, auth, limits, envelope, streams."""

    name: str  # Dagster group, resource key, pool, and the `source` of its records
    title: str  # for people: logs, the UI, the summary
    key_env: str
    base_url_env: str
    default_base_url: str
    streams: tuple[StreamSpec, ...]
    auth: Auth = Auth()
    # Rate windows the client keeps to, (requests, seconds); a Setting may choose others (see the connector).
    limits: tuple[tuple[int, float], ...] = ()
    envelope: Envelope = Envelope.BARE
    concurrency: int = 4
    settings: tuple[Setting, ...] = ()
    auth_hints: Mapping[int, str] = field(default_factory=dict, hash=False)  # status -> what it means here
    max_quarantine_rate: float = 0.05  # the `<name>_quarantine_rate` check warns above this share
    read_asset_name: str | None = None  # default "<name>_raw"
    preview: tuple[str, tuple[str, ...]] | None = None  # (stream, columns) shown in the UI

    def __post_init__(self) -> None:
        names = [s.name for s in self.streams]
        if len(set(names)) != len(names):
            raise ValueError(f"{self.name}: stream names repeat: {names}")

    def stream(self, name: str) -> StreamSpec:
        """The stream called `name`; KeyError naming the source otherwise."""
        for stream in self.streams:
            if stream.name == name:
                return stream
        raise KeyError(f"{self.name} has no stream {name!r}")

    def of_kind(self, kind: RecordKind) -> tuple[StreamSpec, ...]:
        """The streams whose records become `kind`, in read order."""
        return tuple(s for s in self.streams if s.kind is kind)
