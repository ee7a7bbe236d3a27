"""The shape the code keeps: small production modules, short functions, no vendor names in the core.

Production code is `connectors/`, `pipelines/`, `schemas/` (the emulators in
`sandbox/` are test tooling). Reads the source with `ast`; runs nothing.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PRODUCTION = ("connectors", "pipelines", "schemas")
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60
VENDORS = re.compile(r"agentclara|clairo|agentpro|chatloom|hubspot|salesforce", re.I)


def _modules() -> list[Path]:
    return sorted(p for package in PRODUCTION for p in (ROOT / package).rglob("*.py"))


def test_no_production_module_is_over_400_lines() -> None:
    long = {str(p.relative_to(ROOT)): n for p in _modules() if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES}
    assert not long, long


def test_no_function_is_over_60_lines() -> None:
    long = {}
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    long[f"{path.relative_to(ROOT)}:{node.name}"] = length
    assert not long, long


def test_the_connectors_core_names_no_vendor() -> None:
    """Top-level modules of connectors/ are generic; everything about a vendor is in its package."""
    named = [p.name for p in (ROOT / "connectors").glob("*.py") if VENDORS.search(p.read_text())]
    named += [f"paging/{p.name}" for p in (ROOT / "connectors" / "paging").glob("*.py") if VENDORS.search(p.read_text())]
    assert not named, named
