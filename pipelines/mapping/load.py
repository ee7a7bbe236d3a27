"""A mapping file's YAML -> `MappingFile`, with every problem found and the line it is on.

The file is composed (`yaml.compose` with PyYAML's SafeLoader), not just
loaded, so every node keeps its mark and each problem can name its line;
the whole file is walked even after a problem, so one run reports them
all at once (DESIGN.md: one message listing every problem). Nothing here
knows a CRM: whether a property exists is `check.py`'s question.
"""

from __future__ import annotations

from typing import Any, Sequence

import yaml

from connectors.fieldrules import ALWAYS, WRITE_POLICIES, Rule
from pipelines.mapping.model import MODES, UPSERT, MappingFile, Problem, TargetMapping, is_person_field

TARGET_KEYS = ("mode", "fields", "create_missing_properties")
RULE_KEYS = ("from", "value", "write")


class _Walk:
    """Collects problems while turning composed nodes into the model."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.problems: list[Problem] = []
        self._constructor = yaml.SafeLoader("")

    def problem(self, node: yaml.Node | None, message: str) -> None:
        line = node.start_mark.line + 1 if node is not None else None
        self.problems.append(Problem(message, self.path, line))

    def scalar(self, node: yaml.Node) -> Any:
        return self._constructor.construct_object(node, deep=True)

    def pairs(self, node: yaml.Node, what: str, allowed: Sequence[str] | None = None) -> list[tuple[str, yaml.Node, yaml.Node]]:
        """(key, key node, value node) of a mapping node; problems for a non-mapping, duplicate or unknown key.

        An empty value (`fields:` with nothing under it) is an empty mapping.
        """
        if isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null":
            return []
        if not isinstance(node, yaml.MappingNode):
            self.problem(node, f"{what} must be a mapping (key: value lines)")
            return []
        seen: set[str] = set()
        out = []
        for key_node, value_node in node.value:
            key = self.scalar(key_node) if isinstance(key_node, yaml.ScalarNode) else None
            if not isinstance(key, str) or not key.strip():
                self.problem(key_node, f"{what}: keys must be names, not {key!r}")
                continue
            if key in seen:
                self.problem(key_node, f"{what}: {key!r} is given twice")
                continue
            seen.add(key)
            if allowed is not None and key not in allowed:
                self.problem(key_node, f"{what}: unknown key {key!r} (expected one of {', '.join(allowed)})")
                continue
            out.append((key, key_node, value_node))
        return out


def load_text(text: str, path: str, targets: Sequence[str]) -> tuple[MappingFile | None, list[Problem]]:
    """The mapping in `text` (read from `path`), and every problem in it; None when it cannot be read at all."""
    walk = _Walk(path)
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        reason = getattr(exc, "problem", None) or str(exc)
        return None, [Problem(f"not valid YAML: {reason}", path, mark.line + 1 if mark else None)]
    if root is None:
        return None, [Problem("the file is empty; name at least one target (" + ", ".join(targets) + ")", path)]
    sections = []
    for name, key_node, node in walk.pairs(root, "the file", targets):
        sections.append(_target(walk, name, key_node, node))
    return MappingFile(path, tuple(sections)), sorted(walk.problems, key=lambda p: p.line or 0)


def load_file(path: str, targets: Sequence[str]) -> tuple[MappingFile | None, list[Problem]]:
    """`load_text` of the file at `path`; a file that cannot be read is one problem."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except (OSError, UnicodeDecodeError) as exc:
        return None, [Problem(f"cannot read the file: {type(exc).__name__}: {exc}", path)]
    return load_text(text, path, targets)


def _target(walk: _Walk, name: str, key_node: yaml.Node, node: yaml.Node) -> TargetMapping:
    mode, create, rules = UPSERT, False, []
    for key, _, value_node in walk.pairs(node, name, TARGET_KEYS):
        value = walk.scalar(value_node) if isinstance(value_node, yaml.ScalarNode) else None
        if key == "mode":
            if value not in MODES:
                walk.problem(value_node, f"{name}.mode: {value!r} is not one of {', '.join(MODES)}")
            else:
                mode = value
        elif key == "create_missing_properties":
            if not isinstance(value, bool):
                walk.problem(value_node, f"{name}.create_missing_properties must be true or false, not {value!r}")
            else:
                create = value
        else:
            rules = [rule for prop, prop_node, rule_node in walk.pairs(value_node, f"{name}.fields")
                     if (rule := _rule(walk, name, prop, prop_node, rule_node)) is not None]
    return TargetMapping(name, mode, tuple(rules), create, key_node.start_mark.line + 1)


def _rule(walk: _Walk, target: str, prop: str, prop_node: yaml.Node, node: yaml.Node) -> Rule | None:
    """One property's rule; None (with problems) when it cannot be one."""
    where = f"{target}.fields.{prop}"
    found = {key: value_node for key, _, value_node in walk.pairs(node, where, RULE_KEYS)}
    if not isinstance(node, yaml.MappingNode) and not found:
        if isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null":
            walk.problem(prop_node, f"{where}: say `from`, `value` or `write`")
        return None
    ok = True
    source = None
    if "from" in found:
        source = walk.scalar(found["from"]) if isinstance(found["from"], yaml.ScalarNode) else None
        if not isinstance(source, str) or not is_person_field(source):
            walk.problem(found["from"], f"{where}.from: {source!r} is not a person field (see README, "
                                        "'Field mapping': email, phone, first_name, ..., extra.<key>)")
            ok = False
    has_value = "value" in found
    value = None
    if has_value:
        if not isinstance(found["value"], yaml.ScalarNode):
            walk.problem(found["value"], f"{where}.value must be a single value (text, number, true/false)")
            ok = False
        else:
            value = walk.scalar(found["value"])
    if "from" in found and has_value:
        walk.problem(prop_node, f"{where}: give either `from` or `value`, not both")
        ok = False
    write = ALWAYS
    if "write" in found:
        write = walk.scalar(found["write"]) if isinstance(found["write"], yaml.ScalarNode) else None
        if write not in WRITE_POLICIES:
            walk.problem(found["write"], f"{where}.write: {write!r} is not one of {', '.join(WRITE_POLICIES)}")
            ok = False
    if not found and ok:
        walk.problem(prop_node, f"{where}: say `from`, `value` or `write`")
        ok = False
    return Rule(prop, source, value, has_value, write, prop_node.start_mark.line + 1) if ok else None
