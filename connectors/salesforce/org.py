"""Whether an org is set up for the sync: pure checks over its describe, nothing written.

The sink describes each object once (`describe()['fields']`, by name) and
these functions read it: every missing or read-only field is named with
where in Setup to fix it, so a run stops at start with one message rather
than half-writing; the optional roll-up fields the org has, and the field
lengths the mapping caps values to, come from the same describe.
"""

from __future__ import annotations

import logging
from typing import Any, Mapping, Sequence

from connectors.salesforce.mapping import ROLLUP_FIELDS

log = logging.getLogger(__name__)


def rollup_fields(fields: Mapping[str, Mapping[str, Any]]) -> tuple[str, ...]:
    """The optional roll-up fields (mapping.ROLLUP_FIELDS) the object has, createable and updateable."""
    return tuple(name for name in ROLLUP_FIELDS.values()
                 if fields.get(name, {}).get("createable") and fields.get(name, {}).get("updateable"))


def lengths(fields: Mapping[str, Mapping[str, Any]]) -> dict[str, int]:
    """Field -> maximum length, for the fields whose describe gives one (text, email, phone, ...)."""
    return {str(name): int(spec["length"]) for name, spec in fields.items()
            if isinstance(spec.get("length"), int) and spec["length"] > 0}


def field_problems(fields: Mapping[str, Mapping[str, Any]], obj: str, needed: Sequence[str], key_field: str,
                   label: str, *, setup_object: str | None = None) -> list[str]:
    """Every field of `needed` the describe `fields` lacks, or has in a shape the sync cannot write.

    `setup_object`: where in Object Manager its custom fields are made, when
    not `obj` itself (an Event's custom fields are Activity fields).
    """
    where = f"Setup → Object Manager → {setup_object or obj} → Fields & Relationships"
    problems = []
    for name in needed:
        spec = fields.get(name)
        if name == key_field:
            how = (f"{where} → New: type Text(255), Field Label '{label}', Field Name "
                   f"'{name.removesuffix('__c')}', tick 'Unique' and 'External ID'")
            if spec is None:
                problems.append(f"{obj}.{name} is missing (the upsert key): {how}")
                continue
            if not spec.get("externalId"):
                problems.append(f"{obj}.{name} is not an External ID: {where} → {name} → Edit: "
                                "tick 'External ID' and 'Unique'")
            if spec.get("type") not in ("string", "email"):
                problems.append(f"{obj}.{name} is of type {spec.get('type')}; the key needs Text(255)")
            elif spec.get("length") and spec["length"] < 255:
                log.warning("salesforce: %s.%s is Text(%s); keys longer than that will fail",
                            obj, name, spec["length"])
        elif spec is None:
            if name.endswith("__c"):
                problems.append(f"{obj}.{name} is missing: {where} → New: type Text(255), Field Name "
                                f"'{name.removesuffix('__c')}'")
            else:
                problems.append(f"{obj}.{name} is not visible to this user: grant read/edit on it "
                                f"(Setup → Profiles or Permission Sets → Object Settings → {obj})")
            continue
        if spec is not None and not (spec.get("createable") and spec.get("updateable")):
            problems.append(f"{obj}.{name} is read-only for this user: give it Edit access "
                            f"(field-level security)")
    return problems


def catalog(fields: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """The describe as the field mapping checks it: name -> {type, options (active picklist values), writable, required}."""
    out: dict[str, dict[str, Any]] = {}
    for name, spec in fields.items():
        picklist = spec.get("type") in ("picklist", "multipicklist")
        values = [str(v.get("value")) for v in spec.get("picklistValues") or []
                  if isinstance(v, Mapping) and v.get("active", True)]
        out[str(name)] = {
            "type": spec.get("type"),
            "options": values if picklist and values else (["true", "false"] if spec.get("type") == "boolean" else None),
            "writable": bool(spec.get("createable") and spec.get("updateable")),
            "required": bool(spec.get("createable") and not spec.get("nillable", True)
                             and not spec.get("defaultedOnCreate")),
        }
    return out
