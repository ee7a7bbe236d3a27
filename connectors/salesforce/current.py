"""What the org holds now, for the field mapping: its fields (from the describe) and current values.

`MappingReads` is mixed into `SalesforceSink`: it adds the three calls the
mapping needs, through the sink's own client and retry loop (the same
budget as the writes), and nothing else:

- `mapping_facts()`: the object's describe as plain data, so
  `pipelines/mapping/check.py` names every field or picklist value the
  mapping file gets wrong before anything is written;
- `use_mapping()`: write by a mapping file's rules from now on;
- `current()`: the current values of some fields, by SOQL on the external
  id (`WHERE Ext__c IN (...)`, chunked so no query passes `SOQL_CHUNK_CHARS`),
  by record Id for records the sync already knows, so `if_empty` sends a
  value only where the record's is empty. External ids match
  case-insensitively, as Salesforce's Text external ids do.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Iterator, Mapping, Sequence

from connectors.fieldrules import Rule, builtin_rules
from connectors.salesforce import org

SOQL_CHUNK_CHARS = 8_000  # keys per query kept well under the REST query URL limit (16,384)


def quote(value: str) -> str:
    """A SOQL string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def in_chunks(values: Sequence[str], budget: int = SOQL_CHUNK_CHARS) -> Iterator[list[str]]:
    """Quoted values in groups whose `IN (...)` list stays under `budget` characters."""
    chunk: list[str] = []
    size = 0
    for value in values:
        literal = quote(value)
        if chunk and size + len(literal) + 1 > budget:
            yield chunk
            chunk, size = [], 0
        chunk.append(literal)
        size += len(literal) + 1
    if chunk:
        yield chunk


class MappingReads:
    """The field-mapping reads of `SalesforceSink` (see the module docs)."""

    object_name: str
    external_id_field: str

    def mapping_facts(self) -> dict[str, Any]:
        """What a mapping file is checked against: the object's fields and the built-in rules."""
        fields = self._describe(self.object_name)  # type: ignore[attr-defined]
        builtin = replace(self.mapping, rollup_fields=org.rollup_fields(fields)).builtin()  # type: ignore[attr-defined]
        return {"catalog": org.catalog(fields), "builtin": builtin_rules(builtin),
                "keys": frozenset({self.external_id_field, "Id"}), "planned": frozenset(), "can_create": False,
                "missing_hint": f"Add it in Setup → Object Manager → {self.object_name} → Fields & Relationships "
                                "(the sync creates no Salesforce fields)."}

    def use_mapping(self, rules: Sequence[Rule], create: Sequence[str] = ()) -> None:
        """Write by a mapping file's rules (over the built-in ones) from now on."""
        self.mapping = replace(self.mapping, overrides=tuple(rules))  # type: ignore[attr-defined]

    def current(self, persons: Sequence[Mapping[str, Any]], names: Sequence[str],
                ids: Mapping[str, str] | None = None) -> dict[str, dict[str, Any] | None]:
        """Person key -> the record's current values of `names` (with its "id"); None when the org has none."""
        ids = ids or {}
        fields = sorted({*names} - {"Id", self.external_id_field})
        keys = [str(p["person_key"]) for p in persons]
        out: dict[str, dict[str, Any] | None] = {key: None for key in keys}
        by_key = self._select(self.external_id_field, [k for k in keys if k not in ids], fields)
        by_id = self._select("Id", [ids[k] for k in keys if k in ids], fields)
        for key in keys:
            out[key] = by_id.get(ids[key].lower()) if key in ids else by_key.get(key.lower())
        return out

    def _select(self, where: str, values: Sequence[str], fields: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Lower-cased `where` value -> the record's `fields` (and "id"), for every record found."""
        found: dict[str, dict[str, Any]] = {}
        columns = ", ".join(dict.fromkeys(["Id", self.external_id_field, *fields]))
        for chunk in in_chunks(list(dict.fromkeys(values))):
            soql = f"SELECT {columns} FROM {self.object_name} WHERE {where} IN ({', '.join(chunk)})"
            reply = self._call(f"read {len(chunk)} {self.object_name}",  # type: ignore[attr-defined]
                               lambda soql=soql: self.sf.query_all(soql))  # type: ignore[attr-defined]
            for record in (reply or {}).get("records") or []:
                values_now = {name: record.get(name) for name in fields}
                values_now["id"] = record.get("Id")
                values_now[self.external_id_field] = record.get(self.external_id_field)
                found[str(record.get(where) or "").lower()] = values_now
        return found
