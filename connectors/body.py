"""Response bodies, for every transport: the size cap, and JSON decoding that never crashes.

Why one place: a body is outside data, and the ways it can hurt are the
same whatever library fetched it. Read as a stream and refused past
`MAX_RESPONSE_BYTES` (one runaway answer cannot exhaust memory); decoded so
that every body that is not the JSON we can hold becomes a `PayloadError`
naming the request, never an exception from the guts of `json`:

- invalid UTF-8 is replaced by U+FFFD (the caller counts and logs it) rather
  than failing the page: the records go on, and a normalizer sees the
  replacement characters;
- malformed JSON;
- arrays or objects nested deeper than the interpreter's recursion limit
  (`json` raises RecursionError: a hostile or broken server can send
  `[[[[...` thousands deep in a few kB);
- an integer literal longer than the interpreter's int/str limit (4,300
  digits by default, `sys.get_int_max_str_digits`): `json` raises a plain
  ValueError for it.
"""

from __future__ import annotations

import json
import sys
from typing import Any, Iterable

from connectors.errors import PayloadError, ResponseTooLarge

# Largest response body read, after content decoding (a gzip bomb counts at its
# real size). A page of 100 records is tens of kB; 50 MiB is far above any
# documented answer and far below what would hurt a worker's memory.
MAX_RESPONSE_BYTES = 50 * 1024 * 1024


def read_capped(chunks: Iterable[bytes], *, service: str, what: str, cap: int = MAX_RESPONSE_BYTES,
                declared: int | None = None) -> bytes:
    """The body from `chunks`, refused with ResponseTooLarge as soon as it passes `cap` bytes.

    Shared by the source client (httpx) and the CRM transports (urllib3): the
    body is streamed and never held past the cap. `declared`, a
    Content-Length, lets an oversized answer be refused before reading."""
    if declared is not None and declared > cap:
        raise _too_large(service, what, cap, declared)
    size = 0
    chunks_read: list[bytes] = []
    for chunk in chunks:
        size += len(chunk)
        if size > cap:
            raise _too_large(service, what, cap, size)
        chunks_read.append(chunk)
    return b"".join(chunks_read)


def _too_large(service: str, what: str, cap: int, size: int) -> ResponseTooLarge:
    return ResponseTooLarge(service, f"{what} is larger than the {cap:,}-byte cap (at least {size:,} bytes; "
                                     "MAX_RESPONSE_BYTES): refused, not read further")


def decode_text(body: bytes) -> tuple[str, bool]:
    """The body as text, and whether invalid UTF-8 had to be replaced by U+FFFD (a BOM is dropped)."""
    try:
        return body.decode("utf-8-sig"), False
    except UnicodeDecodeError:
        return body.decode("utf-8", "replace"), True


def decode_json(text: str, *, service: str, what: str) -> Any:
    """The JSON value of `text`; PayloadError naming `what` for any body `json` cannot turn into one."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        raise PayloadError(service, f"malformed JSON in {what}") from None
    except RecursionError:
        raise PayloadError(service, f"{what} is nested too deeply to decode (arrays or objects deeper "
                                    f"than the recursion limit of {sys.getrecursionlimit():,}): "
                                    "refused") from None
    except ValueError as exc:  # the only other: an integer literal past the int/str digit limit
        raise PayloadError(service, f"{what} holds a number too long to decode ({_digits_limit(exc)}): "
                                    "refused") from None


def error_text(body: bytes) -> str | None:
    """The service's own message in an error body (`{"error": ...}` or `{"message": ...}`, the
    value itself possibly an object with a `message`), or None when the body holds none. Never
    raises: a body too broken to decode just has no message."""
    text = body.decode("utf-8", "replace")
    try:
        decoded = json.loads(text) if text else None
    except (ValueError, RecursionError):  # an error body is only ever read for its message
        decoded = None
    if not isinstance(decoded, dict):
        return None
    error = decoded.get("error") or decoded.get("message")
    if isinstance(error, dict):
        error = error.get("message") or error
    return str(error) if error else None


def _digits_limit(exc: ValueError) -> str:
    limit = sys.get_int_max_str_digits()
    if "digits" in str(exc) and limit:
        return f"an integer of more than {limit:,} digits"
    return "a value json could not convert"
