"""Installs that keep working: what the code imports is declared, and what is declared is pinned.

Reads pyproject.toml, constraints.txt and the production code's imports; no network.
"""

from __future__ import annotations

import ast
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
PRODUCTION = ("connectors", "pipelines", "schemas", "sandbox")
# These decide person keys and content hashes: a new major version could re-key or resend everyone.
KEY_DECIDING = ("phonenumbers", "email-validator", "nameparser", "rphonenumbers", "emval")


def _project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _requirements(*extras: str) -> list[Requirement]:
    project = _project()
    lines = list(project["dependencies"])
    for extra in extras:
        lines += project["optional-dependencies"][extra]
    return [Requirement(line) for line in lines]


def _imported_top_modules() -> set[str]:
    names: set[str] = set()
    for package in PRODUCTION:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import):
                    names.update(alias.name.split(".")[0] for alias in node.names)
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names.add(node.module.split(".")[0])
    return {n for n in names if n not in sys.stdlib_module_names and n not in PRODUCTION}


def _pins() -> dict[str, Version]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            pins[canonicalize_name(name)] = Version(version)
    return pins


def test_every_imported_library_is_declared() -> None:
    declared = {canonicalize_name(r.name) for r in _requirements("sandbox", "postgres")}
    providers = packages_distributions()
    undeclared = {
        module: providers.get(module, ["?"])
        for module in _imported_top_modules()
        if not declared & {canonicalize_name(d) for d in providers.get(module, [])}
    }
    assert not undeclared, f"imported but not declared in pyproject.toml: {undeclared}"


def test_every_declared_requirement_is_pinned_within_its_range() -> None:
    pins = _pins()
    problems = []
    for requirement in _requirements("sandbox", "test", "postgres"):
        pin = pins.get(canonicalize_name(requirement.name))
        if pin is None or not requirement.specifier.contains(pin, prereleases=True):
            problems.append(f"{requirement}: constraints.txt has {pin}")
    assert not problems, problems


def test_key_deciding_libraries_have_a_major_upper_bound() -> None:
    by_name = {canonicalize_name(r.name): r for r in _requirements()}
    for name in KEY_DECIDING:
        requirement = by_name[canonicalize_name(name)]
        uppers = [s for s in requirement.specifier if s.operator == "<"]
        assert uppers, f"{requirement} has no upper bound"
        upper = Version(uppers[0].version)
        if upper.major == 0:  # before 1.0 a minor release may break: bounded below the next minor
            assert upper.micro == 0 and upper.minor > 0, requirement
        else:
            assert upper.minor == 0 and upper.micro == 0, requirement
