"""What a HubSpot batch reply says about each input: pure functions, no I/O.

Every batch write (contact upsert, update by id, engagement create) is
settled here, so a 207 is read one way everywhere and a unit test can feed
recorded replies without a server.

- Every input carries `objectWriteTraceId` = its index in the request.
  HubSpot echoes it on results and names it in `context.objectWriteTraceId`
  of each error of a 207; `context.ids` (the id values) is the fallback, and
  a result without a trace id is matched by `Sent.match`.
- A whole-batch refusal (400, 404, 409) that names no global cause is split
  in two until each bad input stands alone (`bisect`), so one bad record
  never holds back the other 99. `_GLOBAL_400` refusals (a non-unique
  idProperty, an oversized batch) would fail every half too: they raise.
- An error's category decides whether resending the same data can succeed
  (`permanent`). Two errors are not the input's fault and never permanent:
  `RECORD_GONE` (an update by id of a record HubSpot no longer has: create it
  again) and `CONTACT_GONE` (an engagement's associated contact was deleted
  or merged away: re-sync the contact, then the engagement).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence, TypeVar

from connectors.sink import CONTACT_GONE, SyncOutcome

RECORD_GONE = "RECORD_GONE"
NO_RESULT = "NO_RESULT"
# Whole-batch 400s that no subset of the batch can cure: raise, do not bisect.
_GLOBAL_400 = ("non-unique", "exceeds the maximum", "Unable to infer object type")
# A whole batch refused for one input's sake: split until that input stands alone.
_REFUSALS = frozenset({400, 404, 409})
# Record errors that resending the same data cannot fix (until the data changes).
_PERMANENT_CATEGORIES = {"VALIDATION_ERROR", "CONFLICT"}
_NOT_PERMANENT_CODES = {"PROPERTY_DOESNT_EXIST"}

T = TypeVar("T")


@dataclass(frozen=True)
class Reply:
    """One HTTP answer: status, parsed JSON body (None when not JSON), headers."""

    status: int
    body: Any
    headers: Mapping[str, str]

    @property
    def message(self) -> str:
        if isinstance(self.body, dict) and self.body.get("message"):
            return str(self.body["message"])
        return f"HTTP {self.status}"

    @property
    def fields(self) -> Mapping[str, Any]:
        return self.body if isinstance(self.body, dict) else {}


@dataclass(frozen=True)
class Sent:
    """The inputs of one batch request, in request order (input i carried trace id "i")."""

    keys: Sequence[str]  # the outcome key of each input
    ids: Sequence[str | None] = ()  # the value each input is named by in an error's `context.ids`
    # a result without a trace id -> the id values it may be named by, best first
    match: Callable[[Mapping[str, Any]], Sequence[str]] | None = None
    created: bool = False  # what a success means when the result carries no `new`


def describe_error(error: Mapping[str, Any]) -> tuple[str, str]:
    """(readable message, code) of one HubSpot error entry; every field is optional."""
    message = str(error.get("message") or "error")
    code = None
    details = error.get("errors") or []
    if details and isinstance(details[0], dict):
        code = details[0].get("code")
    prefix = "Property values were not valid: "
    if message.startswith(prefix):
        try:
            inner = json.loads(message[len(prefix):])
            message = "; ".join(str(d.get("message")) for d in inner if isinstance(d, dict)) or message
            code = code or next((d.get("error") for d in inner if isinstance(d, dict) and d.get("error")), None)
        except ValueError:
            pass
    return message, str(code or error.get("category") or "ERROR")


def is_daily_limit(status: int, headers: Mapping[str, str] | None, body: Any) -> bool:
    """True for a 429 of the spent daily quota (waiting seconds cannot help), not the 10-second window."""
    if status != 429:
        return False
    if isinstance(body, dict) and body.get("policyName") == "DAILY":
        return True
    remaining = (headers or {}).get("X-HubSpot-RateLimit-Daily-Remaining")
    return remaining is not None and remaining.strip() == "0"


def is_refusal(reply: Reply) -> bool:
    """A whole batch refused because of (some of) its inputs, not for a reason all of them share."""
    return reply.status in _REFUSALS and not any(text in reply.message for text in _GLOBAL_400)


def _is_association_error(error: Mapping[str, Any], code: str) -> bool:
    texts = [code, str(error.get("subCategory") or ""), str(error.get("message") or "")]
    texts += [str(d.get("code") or "") + str(d.get("subCategory") or "")
              for d in error.get("errors") or [] if isinstance(d, dict)]
    return any("ASSOCIATION" in text.upper() or "associat" in text for text in texts)


def failure(key: str, error: Mapping[str, Any], status: int | None = None) -> SyncOutcome:
    """The outcome of one input HubSpot refused with `error` (a 207 entry, or the body of a 4xx)."""
    message, code = describe_error(error)
    if _is_association_error(error, code):
        return SyncOutcome(key, False, error=f"its contact is gone from HubSpot (deleted or merged): {message}",
                           error_code=CONTACT_GONE)
    if status == 404 or error.get("category") == "OBJECT_NOT_FOUND":
        return SyncOutcome(key, False, error=message, error_code=RECORD_GONE)
    permanent = error.get("category") in _PERMANENT_CATEGORIES and code not in _NOT_PERMANENT_CODES
    return SyncOutcome(key, False, error=message, error_code=code, permanent=permanent)


def settle(reply: Reply, sent: Sent) -> list[SyncOutcome]:
    """One outcome per input of a 200/201/207 reply, or of a refusal of a single input."""
    if reply.status not in (200, 201, 207):
        if len(sent.keys) != 1:
            raise ValueError(f"a whole-batch HTTP {reply.status} settles only a single input")
        return [failure(sent.keys[0], reply.fields, reply.status)]
    index_of = {str(i): i for i in range(len(sent.keys))}
    index_of_id = {value: i for i, value in enumerate(sent.ids) if value is not None}
    done: dict[int, SyncOutcome] = {}
    for result in reply.fields.get("results") or []:
        index = index_of.get(str(result.get("objectWriteTraceId")))
        if index is None and sent.match is not None:
            index = next((index_of_id[v] for v in sent.match(result) if v in index_of_id), None)
        if index is not None and result.get("id") is not None:
            done[index] = SyncOutcome(sent.keys[index], True, str(result["id"]),
                                      bool(result.get("new", sent.created)))
    for error in reply.fields.get("errors") or []:
        context = error.get("context") or {}
        indices = [index_of[t] for t in context.get("objectWriteTraceId") or [] if t in index_of]
        indices += [index_of_id[v] for v in context.get("ids") or [] if v in index_of_id]
        for index in indices:
            done[index] = failure(sent.keys[index], error)
    return [done.get(i) or SyncOutcome(key, False, error="HubSpot answered without a result or error for this "
                                                         "record", error_code=NO_RESULT)
            for i, key in enumerate(sent.keys)]


def named_culprits(reply: Reply, targets: Sequence[str]) -> list[int]:
    """Indices of the inputs whose association target (`targets[i]`) a refusal names as missing."""
    body = reply.fields
    named = set((body.get("context") or {}).get("toObjectId") or [])
    for detail in body.get("errors") or []:
        if isinstance(detail, dict):
            named.update((detail.get("context") or {}).get("toObjectId") or [])
    return [i for i, target in enumerate(targets) if target in {str(n) for n in named}]


def bisect(items: Sequence[T], send: Callable[[Sequence[T]], Reply],
           settle_reply: Callable[[Sequence[T], Reply], list[SyncOutcome]],
           fail: Callable[[Reply], None],
           culprits: Callable[[Sequence[T], Reply], list[int]] | None = None) -> list[SyncOutcome]:
    """Send `items`; a refused batch is split until each bad input stands alone. Outcomes in input order.

    `settle_reply` reads a settleable reply (2xx, or a refusal of one input);
    `fail` raises for any other reply (auth, quota, 5xx after retries).
    `culprits`, when a refusal names its bad inputs (an association to a
    missing contact names the contact), picks them out at once: they are
    settled from that refusal and the rest is sent again, no halving needed.
    """
    reply = send(items)
    if is_refusal(reply) and len(items) > 1:
        named = culprits(items, reply) if culprits else []
        if 0 < len(named) < len(items):
            done = {i: settle_reply([items[i]], reply)[0] for i in named}
            rest = [i for i in range(len(items)) if i not in done]
            done.update(zip(rest, bisect([items[i] for i in rest], send, settle_reply, fail, culprits)))
            return [done[i] for i in range(len(items))]
        middle = len(items) // 2
        return (bisect(items[:middle], send, settle_reply, fail, culprits)
                + bisect(items[middle:], send, settle_reply, fail, culprits))
    if reply.status in (200, 201, 207) or is_refusal(reply):
        return settle_reply(items, reply)
    fail(reply)
    raise AssertionError("fail() must raise")  # pragma: no cover
