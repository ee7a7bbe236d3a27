"""The Salesforce emulator's Event: its describe and the rules Salesforce keeps on its times.

Salesforce's Event reference: "If IsAllDayEvent is false, a value must be
supplied for either DurationInMinutes or EndDateTime. Supplying values in
both fields is allowed if the values add up to the same amount of time."
So an Event that is not all-day needs a start and a length; a write that
names DurationInMinutes (or moves the start) without an EndDateTime
recomputes the end, one that names EndDateTime the duration; an end before
the start is refused; ActivityDateTime and ActivityDate follow the start.
The error codes are Salesforce's; the message texts are the emulator's.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

# (errorCode, message, fields) of a refused write.
Refusal = tuple[str, str, list[str]]
_SALESFORCE_TIME = "%Y-%m-%dT%H:%M:%S.000+0000"


def event_fields(field: Callable[..., dict[str, Any]], shared: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Event's describe fields; `field` builds one entry, `shared` are Id, WhoId, WhatId and the Activity fields."""
    return [
        *shared,
        field("Subject", "combobox", length=255),
        field("Description", "textarea", length=32000),
        field("Location", length=255),
        field("StartDateTime", "datetime"),
        field("EndDateTime", "datetime"),
        field("ActivityDateTime", "datetime"),
        field("ActivityDate", "date"),
        field("DurationInMinutes", "int"),
        field("IsAllDayEvent", "boolean", nillable=False, defaulted=True),
        field("ShowAs", "picklist", defaulted=True),
        field("EventSubtype", "picklist"),
    ]


def parse_time(value: Any) -> datetime:
    """A dateTime as clients send it (`...Z`, `...+0000`, `...+00:00`) as an aware datetime."""
    text = str(value).replace("Z", "+00:00")
    if re.search(r"[+-]\d{4}$", text):
        text = f"{text[:-2]}:{text[-2:]}"
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def settle_event_times(merged: dict[str, Any], values: dict[str, Any]) -> Refusal | None:
    """Apply the rules above to `merged` (the record after the write `values`); the refusal, or None."""
    if str(merged.get("IsAllDayEvent")).lower() == "true":
        return None
    start = merged.get("StartDateTime") or merged.get("ActivityDateTime")
    if not start:
        return "REQUIRED_FIELD_MISSING", "Required fields are missing: [StartDateTime]", ["StartDateTime"]
    begin = parse_time(start)
    keeps_length = "EndDateTime" not in values and ("DurationInMinutes" in values or "StartDateTime" in values)
    if keeps_length and merged.get("DurationInMinutes") is not None:
        merged["EndDateTime"] = (begin + timedelta(minutes=int(merged["DurationInMinutes"]))).strftime(
            _SALESFORCE_TIME)
    if not merged.get("EndDateTime"):
        return "REQUIRED_FIELD_MISSING", "Required fields are missing: [DurationInMinutes]", ["DurationInMinutes"]
    end = parse_time(merged["EndDateTime"])
    if end < begin:
        return "FIELD_INTEGRITY_EXCEPTION", "End Date/Time: End time can't be before start time", ["EndDateTime"]
    merged["DurationInMinutes"] = int((end - begin).total_seconds() // 60)
    merged["StartDateTime"] = merged["ActivityDateTime"] = start
    merged["ActivityDate"] = begin.astimezone(timezone.utc).date().isoformat()
    return None
