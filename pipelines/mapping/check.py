"""A target's mapping held against what its CRM has, before anything is written. Pure.

The sink describes its CRM once (`catalog()`: HubSpot's property list,
Salesforce's describe) as plain data, property -> {type, options, writable,
required}; this module names every problem: a property the CRM does not
have (unless the sink may create it and the file says
`create_missing_properties: true`), a read-only one, a constant outside an
enumeration's options or a picklist's values, an upsert key the file tries
to remap, a required field set to `never`, a `write`-only rule on a
property with no built-in source. The caller reports them with the file's
own problems, in one message.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from connectors.fieldrules import NEVER, Rule
from pipelines.mapping.model import Problem, TargetMapping

OPTIONS_SHOWN = 12
# Property/field types that take only numbers (HubSpot `number`; Salesforce `double`, `int`, ...).
NUMERIC = frozenset({"number", "double", "int", "currency", "percent"})


@dataclass(frozen=True)
class CrmFacts:
    """What a sink says about its CRM and its built-in mapping (plain data, from `sink.mapping_facts()`)."""

    catalog: Mapping[str, Mapping[str, Any]]
    builtin: Sequence[Rule]
    keys: frozenset[str] = frozenset()
    # Properties the sink's own prepare() creates (its built-in custom properties).
    planned: frozenset[str] = frozenset()
    can_create: bool = False
    # How to add a missing property in this CRM, for the message.
    missing_hint: str = ""


def check(mapping: TargetMapping, facts: CrmFacts, path: str) -> tuple[list[Problem], tuple[str, ...]]:
    """(every problem of `mapping` against the CRM, the properties to create before the first write)."""
    problems: list[Problem] = []
    create: list[str] = []
    builtin = {rule.name for rule in facts.builtin}
    where = f"{mapping.target}.fields"

    def problem(rule: Rule, message: str) -> None:
        problems.append(Problem(f"{where}.{rule.name}: {message}", path, rule.line))

    for rule in mapping.rules:
        if rule.name in facts.keys:
            problem(rule, "is the upsert key of the sync; the mapping cannot change it")
            continue
        if not rule.fills and rule.name not in builtin and rule.write != NEVER:
            problem(rule, "has no built-in rule to keep; give it `from` or `value`")
        spec = facts.catalog.get(rule.name)
        if spec is None:
            if rule.name in facts.planned:
                continue
            if facts.can_create and mapping.create_missing_properties:
                if rule.write != NEVER:
                    create.append(rule.name)
                continue
            problem(rule, f"{mapping.target} has no such property. {facts.missing_hint}".rstrip())
            continue
        if rule.write != NEVER and not spec.get("writable", True):
            problem(rule, "is read-only in the CRM; the sync cannot write it")
        if rule.write == NEVER and spec.get("required"):
            problem(rule, "is required on new records; `never` would make every create fail (use if_empty)")
        if rule.has_value and spec.get("type") in NUMERIC and not _numeric(rule.value):
            problem(rule, f"is a number in the CRM; {rule.value!r} is not a number")
        options = spec.get("options")
        if rule.has_value and options and _text(rule.value) not in options:
            shown = ", ".join(list(options)[:OPTIONS_SHOWN]) + (", ..." if len(options) > OPTIONS_SHOWN else "")
            problem(rule, f"{rule.value!r} is not one of its options ({shown})")
    return problems, tuple(create)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _numeric(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    try:
        float(str(value))
    except ValueError:
        return False
    return True
