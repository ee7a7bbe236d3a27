"""What a CRM property is filled from: the one rule shape the sinks and the mapping file share.

Each CRM package keeps its built-in mapping as data, `(property, person
field)` pairs (`connectors/<crm>/mapping.py`); a mapping file
(`SYNC_MAPPING_FILE`, read by `pipelines/mapping`) overrides it property by
property with `Rule`s. `merged()` is the one place that decides the result,
so both CRMs and the `--print-default` file agree on it. No vendor names
here: the vendor packages render values, this module only says which.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

ALWAYS, IF_EMPTY, NEVER_CLEAR, NEVER = "always", "if_empty", "never_clear", "never"
WRITE_POLICIES = (ALWAYS, IF_EMPTY, NEVER_CLEAR, NEVER)


@dataclass(frozen=True)
class Rule:
    """One CRM property: filled from a person field (`source`) or a constant (`value`), and how it is written.

    A rule with neither keeps the built-in source and changes only `write`.
    `line` is where the mapping file says it (None for the built-in).
    """

    name: str
    source: str | None = None
    value: Any = None
    has_value: bool = False
    write: str = ALWAYS
    line: int | None = None

    @property
    def fills(self) -> bool:
        """True when the rule says where the value comes from (not only how it is written)."""
        return self.source is not None or self.has_value


def builtin_rules(pairs: Sequence[tuple[str, str]]) -> tuple[Rule, ...]:
    """The built-in `(property, person field)` pairs as rules (written `always`)."""
    return tuple(Rule(name, source) for name, source in pairs)


def merged(builtin: Sequence[Rule], overrides: Sequence[Rule] = ()) -> tuple[Rule, ...]:
    """The rules in force: the built-in ones, each replaced by the override naming it, then the new ones.

    An override without a source keeps the built-in source with its own
    `write`. Order stays fixed (built-in order, then the file's), so the
    payload built from the result is the same dict run after run.
    """
    by_name = {rule.name: rule for rule in overrides}
    out: list[Rule] = []
    for rule in builtin:
        override = by_name.pop(rule.name, None)
        if override is None:
            out.append(rule)
        elif override.fills:
            out.append(override)
        else:
            out.append(Rule(rule.name, rule.source, rule.value, rule.has_value, override.write, override.line))
    out.extend(rule for rule in overrides if rule.name in by_name)
    return tuple(out)


def sent(rules: Sequence[Rule]) -> tuple[Rule, ...]:
    """The rules whose property is ever sent (every rule but `never`) and that say where the value comes from."""
    return tuple(rule for rule in rules if rule.write != NEVER and rule.fills)


EXTRA_PREFIX = "extra."

Render = Callable[[Mapping[str, Any]], Any]


PLAIN_TEXT_FIELDS = ("full_name", "phone", "company", "preferred_channel")


def shared_renderers(
    text: Callable[[Any], Any], names: Callable[[Mapping[str, Any]], tuple[Any, Any]]
) -> dict[str, Render]:
    """The person fields every CRM renders alike: its own text rule on plain fields, its own name split."""
    plain = {field: (lambda key: lambda p: text(p.get(key)))(field) for field in PLAIN_TEXT_FIELDS}
    return {"first_name": lambda p: names(p)[0], "last_name": lambda p: names(p)[1], **plain}


def render_field(
    source: str,
    person: Mapping[str, Any],
    table: Mapping[str, Render],
    *,
    joined: Callable[[Any], Any],
    constant: Callable[[Any], Any],
) -> Any:
    """A person field, or `extra.<key>`, rendered by a CRM's own `table` and value rules.

    One reading of `extra.<key>` for every CRM: a list is joined the CRM's
    way, anything else taken as that CRM takes a constant.
    """
    if source.startswith(EXTRA_PREFIX):
        value = (person.get("extra") or {}).get(source[len(EXTRA_PREFIX):])
        return joined(value) if isinstance(value, (list, tuple, set)) else constant(value)
    return table[source](person)
