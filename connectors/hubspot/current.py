"""What HubSpot holds now, for the field mapping: the contact property list and current values.

Two reads, both through the sink's transport (the same client, limiter and
retry budget as the writes):

- `catalog()`: `GET /crm/v3/properties/contacts` as plain data, property ->
  {type, options, writable}, so `pipelines/mapping/check.py` can name every
  property the mapping file gets wrong before anything is written;
- `read_current()`: `POST /crm/v3/objects/contacts/batch/read`, at most 100
  inputs a call, by email or the person-key property (by record id for a
  contact the sync already knows), so `if_empty` sends a value only where
  the contact's is empty. A contact found through one of its
  `hs_additional_emails` (a merge's survivor) counts as found.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from connectors.hubspot import mapping
from connectors.hubspot.transport import HubSpotTransport
from connectors.hubspot.writes import Upsert

BATCH_READ_LIMIT = 100
_ID = "hs_object_id"


def catalog(transport: HubSpotTransport, object_type: str = "contacts") -> dict[str, dict[str, Any]]:
    """Every property of `object_type`: name -> {type, options (enumerations), writable, required}."""
    reply = transport.check(transport.call(transport.properties.get_all_with_http_info, object_type),
                            f"list {object_type} properties")
    out: dict[str, dict[str, Any]] = {}
    for spec in (reply.body or {}).get("results") or []:
        if not isinstance(spec, dict) or not spec.get("name"):
            continue
        meta = spec.get("modificationMetadata") or {}
        options = [str(o.get("value")) for o in spec.get("options") or [] if isinstance(o, dict)]
        if spec.get("type") == "bool" and not options:
            options = ["true", "false"]
        out[str(spec["name"])] = {
            "type": spec.get("type"),
            "options": options if spec.get("type") in ("enumeration", "bool") else None,
            "writable": not (meta.get("readOnlyValue") or spec.get("calculated")),
            "required": False,
        }
    return out


def definition(name: str) -> dict[str, Any]:
    """A custom contact property the mapping names and HubSpot lacks (PropertyCreate keywords)."""
    return {"name": name, "label": name.replace("_", " ").strip().capitalize(), "type": "string",
            "field_type": "text", "group_name": mapping.GROUP_NAME, "has_unique_value": False,
            "description": "Written by the AI agent sync (created for SYNC_MAPPING_FILE)."}


def read_current(transport: HubSpotTransport, items: Sequence[Upsert], names: Sequence[str],
                 ids: Mapping[str, str]) -> dict[str, dict[str, Any] | None]:
    """Person key -> the contact's current values of `names` (with its "id"), or None when there is none.

    `ids` (person key -> contact id) are read by id; the rest by their upsert key.
    """
    out: dict[str, dict[str, Any] | None] = {}
    groups: dict[str, list[tuple[Upsert, str]]] = {}
    for item in items:
        known = ids.get(item.keys[0])
        groups.setdefault(_ID if known else item.id_property, []).append((item, known or item.id))
    for id_property, members in groups.items():
        for start in range(0, len(members), BATCH_READ_LIMIT):
            chunk = members[start:start + BATCH_READ_LIMIT]
            found = _read(transport, id_property, [value for _, value in chunk], names)
            for item, value in chunk:
                record = found.get(_match(id_property, value))
                for key in item.keys:
                    out[key] = record
    return out


def _match(id_property: str, value: str) -> str:
    return value.lower() if id_property == mapping.EMAIL_ID_PROPERTY else value


def _read(transport: HubSpotTransport, id_property: str, values: Sequence[str],
          names: Sequence[str]) -> dict[str, dict[str, Any]]:
    """One batch read: matched value -> the record's properties (and "id")."""
    wanted = sorted({*names, id_property, "hs_additional_emails"} - {_ID})
    body: dict[str, Any] = {"inputs": [{"id": value} for value in values], "properties": wanted}
    if id_property != _ID:
        body["idProperty"] = id_property
    reply = transport.call(transport.contacts.read_with_http_info, body)
    if reply.status != 207:  # 207: some inputs have no contact (errors name them), the rest are results
        transport.check(reply, f"read {len(values)} contacts")
    found: dict[str, dict[str, Any]] = {}
    for result in (reply.body or {}).get("results") or []:
        props = dict(result.get("properties") or {})
        props["id"] = str(result.get("id"))
        if id_property == _ID:
            found[props["id"]] = props
            continue
        found[_match(id_property, str(props.get(id_property) or ""))] = props
        if id_property == mapping.EMAIL_ID_PROPERTY:
            for extra in (props.get("hs_additional_emails") or "").split(";"):
                if extra.strip():
                    found.setdefault(extra.strip().lower(), props)
    return found
