"""The mapping file (`SYNC_MAPPING_FILE`) as typed values: what a run writes, per target and property.

Frozen dataclasses, no I/O: `load.py` builds them from YAML (with the line
of every rule), `check.py` holds them against a CRM's properties,
`apply.py` turns a person and the CRM's current values into what is sent.
The rule shape itself (`Rule`) is `connectors.fieldrules`, shared with
the sinks, which keep each CRM's built-in mapping as data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from connectors.errors import ConfigError
from connectors.fieldrules import IF_EMPTY, NEVER, WRITE_POLICIES, Rule

__all__ = ["EXTRA_PREFIX", "MODES", "PERSON_FIELDS", "WRITE_POLICIES", "MappingError", "MappingFile", "Problem",
           "Rule", "TargetMapping"]

SERVICE = "mapping"
UPSERT, UPDATE_ONLY, CREATE_ONLY = "upsert", "update_only", "create_only"
MODES = (UPSERT, UPDATE_ONLY, CREATE_ONLY)
# What `from` accepts: the fields of a person dict (schemas/identity.py merge_person), or extra.<key>.
PERSON_FIELDS = ("email", "phone", "first_name", "last_name", "full_name", "company", "tags", "source_ids",
                 "last_seen_at", "conversation_count", "channels", "preferred_channel")
EXTRA_PREFIX = "extra."


def is_person_field(name: str) -> bool:
    """True for a field `from` accepts."""
    return name in PERSON_FIELDS or (name.startswith(EXTRA_PREFIX) and len(name) > len(EXTRA_PREFIX))


@dataclass(frozen=True)
class TargetMapping:
    """One target's section: its mode, its property rules, and whether missing custom properties are created."""

    target: str
    mode: str = UPSERT
    rules: tuple[Rule, ...] = ()
    create_missing_properties: bool = False
    line: int | None = None

    def policies(self) -> dict[str, str]:
        """Property -> write policy, for the properties the file names."""
        return {rule.name: rule.write for rule in self.rules}

    def if_empty(self) -> tuple[str, ...]:
        """The properties written only while the CRM's value is empty."""
        return tuple(rule.name for rule in self.rules if rule.write == IF_EMPTY)

    def never(self) -> frozenset[str]:
        return frozenset(rule.name for rule in self.rules if rule.write == NEVER)


@dataclass(frozen=True)
class MappingFile:
    """A loaded mapping file: one section per target it names."""

    path: str
    targets: tuple[TargetMapping, ...] = ()

    def target(self, name: str) -> TargetMapping | None:
        return next((t for t in self.targets if t.target == name), None)


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a mapping, with the file and line where there is one."""

    message: str
    file: str | None = None
    line: int | None = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}: " if self.file and self.line else (f"{self.file}: " if self.file else "")
        return f"{where}{self.message}"


class MappingError(ConfigError):
    """The mapping cannot be used: every problem in one message, raised before the first CRM write."""

    def __init__(self, problems: Sequence[Problem], target: str | None = None) -> None:
        self.problems = list(problems)
        where = f" for {target}" if target else ""
        lines = "\n  - ".join(str(p) for p in self.problems)
        super().__init__(SERVICE, f"SYNC_MAPPING_FILE cannot be used{where} ({len(self.problems)} "
                                  f"problem{'s' if len(self.problems) != 1 else ''}; nothing was written):\n  - {lines}")
