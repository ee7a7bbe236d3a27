"""From a loaded mapping file to what one push does: checked against the CRM, handed to the sink.

`configure()` runs before the push's first CRM write (before the sink's
prepare, which may create properties): it reads what the CRM has
(`sink.mapping_facts()`), checks the target's section against it, and
raises one `MappingError` with the file's own problems and the CRM's
together. Without a file (or without a section for this target) it calls
nothing, so the sync behaves exactly as it does without the feature.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Protocol, Sequence

from connectors.fieldrules import Rule
from pipelines.mapping.check import CrmFacts, check
from pipelines.mapping.load import load_file
from pipelines.mapping.model import UPSERT, MappingError, Problem, TargetMapping


class MappedSink(Protocol):
    """What a sink offers the field mapping (HubSpotSink, SalesforceSink)."""

    target: str

    def mapping_facts(self) -> dict[str, Any]: ...

    def use_mapping(self, rules: Sequence[Rule], create: Sequence[str] = ()) -> None: ...


@dataclass(frozen=True)
class Loaded:
    """A mapping file read for one target: its section (None when the file has none) and every problem."""

    path: str
    mapping: TargetMapping | None = None
    problems: tuple[Problem, ...] = ()


@dataclass(frozen=True)
class WritePlan:
    """What the push step needs to know: the mode and the write policy of each named property."""

    mode: str = UPSERT
    policies: Mapping[str, str] = field(default_factory=dict)
    if_empty: tuple[str, ...] = ()
    active: bool = False  # a mapping file is in force for this target

    @property
    def needs_current(self) -> bool:
        """Whether the CRM's current records must be read before writing (if_empty, or a mode)."""
        return self.mode != UPSERT or bool(self.if_empty)


def load_for(path: str | None, target: str, targets: Sequence[str]) -> Loaded | None:
    """The mapping file at `path` for `target` (None without a file); an unreadable file raises at once."""
    if not path:
        return None
    loaded, problems = load_file(path, targets)
    if loaded is None:
        raise MappingError(problems, target)
    return Loaded(path, loaded.target(target), tuple(problems))


def configure(sink: MappedSink, loaded: Loaded | None) -> WritePlan:
    """Check the mapping against the sink's CRM and hand its rules to the sink; MappingError lists every problem."""
    if loaded is None:
        return WritePlan()
    if loaded.mapping is None:
        if loaded.problems:
            raise MappingError(loaded.problems, sink.target)
        return WritePlan()
    facts = CrmFacts(**sink.mapping_facts())
    found, create = check(loaded.mapping, facts, loaded.path)
    problems = sorted([*loaded.problems, *found], key=lambda p: p.line or 0)
    if problems:
        raise MappingError(problems, sink.target)
    sink.use_mapping(loaded.mapping.rules, create)
    mapping = loaded.mapping
    return WritePlan(mapping.mode, mapping.policies(), mapping.if_empty(), active=True)
