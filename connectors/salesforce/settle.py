"""What a Salesforce reply says about each record: pure functions, no I/O.

sObject Collections answer one `UpsertResult` per record, in input order
(`{id, success, created, errors: [{statusCode, message, fields}]}`); Bulk
API 2.0 answers three CSV result sets (successful, failed, unprocessed)
in no guaranteed order, matched to records by the external-id column;
error bodies are a list of `{errorCode, message, fields}`. Each becomes a
`SyncOutcome`, so a unit test can feed recorded replies without a server.
A record error is permanent (waits for its data to change) unless its
code is one where sending the same data again can succeed.
"""

from __future__ import annotations

import csv
import io
import re
from typing import Any, Callable, Iterable, Mapping, Sequence

from connectors.sink import SyncOutcome

_ERROR_CODE = re.compile(r"^[A-Z][A-Z0-9_]+$")


def first_error(content: Any) -> tuple[str, str]:
    """(errorCode, message) from a Salesforce error body (a list of errors, or text)."""
    if isinstance(content, list) and content and isinstance(content[0], Mapping):
        first = content[0]
        code = str(first.get("errorCode") or first.get("statusCode") or "UNKNOWN")
        return code, str(first.get("message") or "")
    if isinstance(content, Mapping):
        return str(content.get("errorCode") or content.get("error") or "UNKNOWN"), str(
            content.get("message") or content.get("error_description") or ""
        )
    if isinstance(content, bytes):
        content = content.decode("utf-8", "replace")
    return "UNKNOWN", str(content or "")[:300]


# Record-level codes where sending the same data again can succeed; every other
# code (validation, duplicates, bad values) is permanent until the data changes.
RETRYABLE_RECORD_CODES = frozenset({
    "UNABLE_TO_LOCK_ROW", "ALL_OR_NONE_OPERATION_ROLLED_BACK", "UNPROCESSED", "BULK_JOB_FAILED",
    "NO_RESULT", "SERVER_UNAVAILABLE", "UNKNOWN_EXCEPTION", "REQUEST_RUNNING_TOO_LONG",
    "INVALID_FIELD",  # e.g. a Task whose Lead/Contact does not exist yet
})


# A record that is no longer there: a moved person is upserted instead.
GONE_CODES = frozenset({"NOT_FOUND", "ENTITY_IS_DELETED"})


def failure(key: str, code: str, message: str) -> SyncOutcome:
    """A record Salesforce refused with `code`; permanent unless resending can succeed."""
    return SyncOutcome(key=key, ok=False, error=message or code, error_code=code,
                       permanent=code not in RETRYABLE_RECORD_CODES)


def outcome_from_result(key: str, result: Mapping[str, Any]) -> SyncOutcome:
    """One UpsertResult of sObject Collections -> SyncOutcome."""
    if result.get("success"):
        return SyncOutcome(key=key, ok=True, crm_id=result.get("id"), created=bool(result.get("created")))
    errors = result.get("errors") or [{}]
    codes = [str(e.get("statusCode") or e.get("errorCode") or "UNKNOWN") for e in errors]
    messages = []
    for e in errors:
        text = str(e.get("message") or "")
        if e.get("fields"):
            text += f" (fields: {', '.join(e['fields'])})"
        messages.append(text)
    return failure(key, codes[0], "; ".join(m for m in messages if m) or codes[0])


def parse_bulk_error(raw: str) -> tuple[str, str]:
    """sf__Error 'CODE:message:fields --' -> (CODE, 'message')."""
    text = (raw or "").strip().removesuffix("--").strip()
    code, _, rest = text.partition(":")
    if not _ERROR_CODE.match(code):
        return "BULK_ERROR", text
    message, _, fields = rest.rpartition(":")
    if not message:  # no fields part
        message, fields = rest, ""
    message = message.strip()
    return code, f"{message} (fields: {fields.strip()})" if fields.strip() else message


def settle_collection(keys: Sequence[str], results: Any) -> list[SyncOutcome]:
    """The outcomes of one sObject Collections reply (results in input order); ValueError if misshapen."""
    if not isinstance(results, list) or len(results) != len(keys):
        got = len(results) if isinstance(results, list) else type(results).__name__
        raise ValueError(f"expected {len(keys)} results, got {got}")
    return [outcome_from_result(key, result) for key, result in zip(keys, results)]


def _rows(text: str | None) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text or "")))


def bulk_outcomes(successful: str | None, failed: str | None, unprocessed: str | None,
                  key_field: str) -> dict[str, SyncOutcome]:
    """Outcomes by external id (also lower-cased) from a finished job's three result CSVs."""
    found: dict[str, SyncOutcome] = {}

    def put(rows: Iterable[dict[str, str]], outcome_for: Callable[[str, dict[str, str]], SyncOutcome]) -> None:
        for row in rows:
            key = undo_latin1(row.get(key_field, ""))
            found[key] = outcome_for(key, row)
            found.setdefault(key.lower(), found[key])

    put(_rows(successful), lambda k, row: SyncOutcome(
        key=k, ok=True, crm_id=row.get("sf__Id") or None, created=str(row.get("sf__Created", "")).lower() == "true"))
    put(_rows(failed), lambda k, row: failure(k, *parse_bulk_error(row.get("sf__Error", ""))))
    put(_rows(unprocessed), lambda k, row: failure(k, "UNPROCESSED", "the bulk job did not process it"))
    return found


def bulk_outcome(found: Mapping[str, SyncOutcome], key: str) -> SyncOutcome:
    """The outcome of one record of a job, or NO_RESULT when no result set names it."""
    return found.get(key) or found.get(key.lower()) or failure(
        key, "NO_RESULT", "the bulk job reported nothing for this record")


def undo_latin1(text: str) -> str:
    """Result CSVs may be decoded as ISO-8859-1 by requests (text/csv without charset): repair UTF-8."""
    try:
        return text.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return text
