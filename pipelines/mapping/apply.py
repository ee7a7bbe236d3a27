"""A person's mapped values + the CRM's current values + the write policies -> what is sent. Pure.

The sink renders what the mapping wants in a record (`desired`); this
module decides what of it goes out, so both CRMs follow one rule:

- `always` / `never_clear`: a non-empty value is sent; an empty one never
  blanks the CRM (desired values are never empty: sinks leave empties out);
- `if_empty`: sent only when the record does not exist yet or its current
  value is empty, so what a person typed in the CRM is never overwritten;
- `never`: not sent (the sinks already leave it out of `desired`; it is
  dropped here too, whatever `desired` holds).

`mode` decides whether a person is sent at all: `update_only` skips people
the CRM does not have, `create_only` people it has.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from connectors.fieldrules import IF_EMPTY, NEVER
from pipelines.mapping.model import CREATE_ONLY, UPDATE_ONLY

# Why a person was not sent (counted, never recorded as synced: sent once the mode allows it).
NOT_IN_CRM = "not in CRM"
IN_CRM = "already in CRM"


def is_empty(value: Any) -> bool:
    """None, an empty or blank string, or an empty list: what counts as 'no value' in a CRM field."""
    return value is None or (isinstance(value, str) and not value.strip()) or value == []


def same(old: Any, new: Any) -> bool:
    """Whether a CRM's current value equals what would be sent (CRMs answer numbers and booleans as text)."""
    if is_empty(old) and is_empty(new):
        return True
    return _text(old) == _text(new)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return "" if value is None else str(value).strip()


def skip_reason(mode: str, exists: bool) -> str | None:
    """Why `mode` does not send a person whose record exists (or not); None when it is sent."""
    if mode == UPDATE_ONLY and not exists:
        return NOT_IN_CRM
    if mode == CREATE_ONLY and exists:
        return IN_CRM
    return None


def outgoing(desired: Mapping[str, Any], current: Mapping[str, Any] | None,
             policies: Mapping[str, str]) -> tuple[dict[str, Any], tuple[str, ...]]:
    """(properties to send, the `if_empty` ones held back because the CRM has a value).

    `current` is the record's current values, or None when the CRM has no
    record yet (a record this run creates gets every mapped value).
    """
    send: dict[str, Any] = {}
    held: list[str] = []
    for name, value in desired.items():
        policy = policies.get(name)
        if policy == NEVER or is_empty(value):
            continue
        if policy == IF_EMPTY and current is not None and not is_empty(current.get(name)):
            held.append(name)
            continue
        send[name] = value
    return send, tuple(held)


@dataclass(frozen=True)
class Change:
    """One property of one person that a write would change (or that `if_empty` holds back)."""

    key: str
    name: str
    old: Any
    new: Any
    held: bool = False


def changes(key: str, desired: Mapping[str, Any], current: Mapping[str, Any] | None,
            policies: Mapping[str, str]) -> list[Change]:
    """The properties whose CRM value would change, old to new, and the `if_empty` ones held back."""
    send, held = outgoing(desired, current, policies)
    now = current or {}
    out = [Change(key, name, now.get(name), value) for name, value in send.items() if not same(now.get(name), value)]
    out += [Change(key, name, now.get(name), desired[name], held=True) for name in held
            if not same(now.get(name), desired[name])]
    return out
