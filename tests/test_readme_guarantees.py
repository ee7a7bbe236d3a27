"""README's "What a run guarantees": every promise names the tests that back it, and they exist.

A reference is `tests/<file>.py::<test>` (or `::Class::test`); a reference
that starts with `::` is in the file named last before it.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = re.compile(r"`(tests/[\w/]+\.py)?((?:::\w+)*)`")


def _guarantees() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("### What a run guarantees", 1)[1].split("\n#", 1)[0]
    return [b.strip() for b in re.split(r"\n- ", "\n" + section.strip()) if b.strip()]


def _names(path: Path) -> set[str]:
    """Every `test_*` function and `Test*` class, and `Class::method`, defined in a test file."""
    names: set[str] = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.FunctionDef):
            names.add(node.name)
        elif isinstance(node, ast.ClassDef):
            names.add(node.name)
            names.update(f"{node.name}::{item.name}" for item in node.body if isinstance(item, ast.FunctionDef))
    return names


def _references(bullet: str) -> list[tuple[str, str]]:
    refs, current = [], None
    for match in REFERENCE.finditer(bullet):
        current = match.group(1) or current
        if current and (match.group(1) or match.group(2)):
            refs.append((current, match.group(2).removeprefix("::")))
    return refs


def test_every_guarantee_names_a_test() -> None:
    bullets = _guarantees()
    assert len(bullets) >= 10
    unbacked = [b.split("**")[1] for b in bullets if not _references(b)]
    assert not unbacked, f"guarantees without a named test: {unbacked}"


def test_every_named_test_exists() -> None:
    missing = []
    for bullet in _guarantees():
        for file, name in _references(bullet):
            path = ROOT / file
            if not path.exists() or (name and name not in _names(path)):
                missing.append(f"{file}::{name}")
    assert not missing, f"README names tests that do not exist: {missing}"
