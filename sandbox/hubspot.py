"""A local emulator of the HubSpot CRM v3/v4 API, faithful to its shapes.

What it covers is what the HubSpot sink uses, answered the way HubSpot
answers (private-app bearer token, rate-limit headers, error bodies):

- properties and property groups per object type (`contacts`, `notes`,
  `communications`, `meetings`), with HubSpot's built-in properties (an
  enumeration with options, like `hs_meeting_outcome`, takes only its
  option values: INVALID_OPTION otherwise);
- contacts: batch upsert by `email` or by any `hasUniqueValue` property,
  batch read, list, get by id, and a simple search;
- notes, communications and meetings: batch create (with associations),
  update, read. A meeting's `hs_timestamp` defaults to its
  `hs_meeting_start_time`, as the meetings guide says; the other
  engagements must carry one;
- associations v4: batch create and batch read;
- what people do in HubSpot's UI, over the real endpoints: delete a record
  (`DELETE /crm/v3/objects/{type}/{id}`; deleting a contact deletes the
  activities associated with it alone and unassociates the rest, as
  HubSpot's knowledge base says) and merge two contacts
  (`POST /crm/v3/objects/contacts/merge`: the survivor gets a new id unless
  `preserve_primary_id`, keeps both records' associations, and the merged
  record's email becomes one of its `hs_additional_emails`, which an upsert
  by that email finds).

Batch writes follow HubSpot's multi-status rule: when every input carries an
`objectWriteTraceId`, per-record validation errors give `207 Multi-Status`
(the valid inputs are applied, each error names its input through
`context.objectWriteTraceId`); otherwise the first invalid input rejects the
whole batch with 400 and nothing is applied. Structural errors (more than 100
inputs, a non-unique `idProperty`, two inputs resolving to the same record)
always reject the whole batch. So does an engagement create associated with a
record that does not exist (a deleted or merged-away contact): 400
naming the missing ids in `context.toObjectId` (assumed; HubSpot documents
no body for it), or, with `missing_association_reply = "207"`, a 207 error
per input naming it.

Tests read the state through plain Python accessors (`contacts()`, `find()`,
`upserted`, `notes()`, `meetings()`, ...) instead of going through HTTP.
"""

from __future__ import annotations

import json
import math
import re
import threading
import uuid
from collections import Counter
from datetime import datetime, timezone
from typing import Any, Callable, Iterable, Mapping

from sandbox.http import App, Request, Response, SlidingWindowLimiter

DEFAULT_TOKEN = "pat-sandbox-token"
MAX_BATCH = 100
ASSOCIATION_READ_LIMIT = 500
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")
_NUMBER_RE = re.compile(r"^-?\d+(\.\d+)?$")
_EPOCH_MS_RE = re.compile(r"^\d{10,13}$")
_DATETIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$")
OBJECT_TYPES = ("contacts", "notes", "communications", "meetings")
# Object type ids HubSpot accepts in place of the names.
OBJECT_TYPE_IDS = {"0-1": "contacts", "0-46": "notes", "0-18": "communications", "0-47": "meetings"}
# HubSpot-defined association type ids (from -> to).
ASSOCIATION_TYPES = {
    ("notes", "contacts"): 202,
    ("contacts", "notes"): 201,
    ("communications", "contacts"): 81,
    ("contacts", "communications"): 82,
    ("meetings", "contacts"): 200,
    ("contacts", "meetings"): 199,
}
_READ_ONLY = {"hs_object_id", "createdate", "lastmodifieddate", "hs_additional_emails"}

_BUILTIN_GROUPS = {
    "contacts": [("contactinformation", "Contact information"), ("emailinformation", "Email information")],
    "notes": [("engagement", "Engagement")],
    "communications": [("communication", "Communication")],
    "meetings": [("meetinginformation", "Meeting information")],
}
# name, label, type, fieldType, groupName, hasUniqueValue
_BUILTIN_PROPERTIES = {
    "contacts": [
        ("email", "Email", "string", "text", "contactinformation", False),
        ("firstname", "First Name", "string", "text", "contactinformation", False),
        ("lastname", "Last Name", "string", "text", "contactinformation", False),
        ("phone", "Phone Number", "string", "phonenumber", "contactinformation", False),
        ("mobilephone", "Mobile Phone Number", "string", "phonenumber", "contactinformation", False),
        ("company", "Company Name", "string", "text", "contactinformation", False),
        ("hs_additional_emails", "Additional email addresses", "string", "textarea", "emailinformation", False),
        ("jobtitle", "Job Title", "string", "text", "contactinformation", False),
        ("website", "Website URL", "string", "text", "contactinformation", False),
        ("lifecyclestage", "Lifecycle Stage", "enumeration", "radio", "contactinformation", False),
        ("hs_lead_status", "Lead Status", "enumeration", "radio", "contactinformation", False),
        ("hs_object_id", "Record ID", "number", "number", "contactinformation", False),
        ("createdate", "Create Date", "datetime", "date", "contactinformation", False),
        ("lastmodifieddate", "Last Modified Date", "datetime", "date", "contactinformation", False),
    ],
    "notes": [
        ("hs_note_body", "Note body", "string", "html", "engagement", False),
        ("hs_timestamp", "Activity date", "datetime", "date", "engagement", False),
        ("hubspot_owner_id", "Activity assigned to", "enumeration", "select", "engagement", False),
        ("hs_object_id", "Record ID", "number", "number", "engagement", False),
        ("hs_createdate", "Create date", "datetime", "date", "engagement", False),
        ("hs_lastmodifieddate", "Last modified date", "datetime", "date", "engagement", False),
    ],
    "communications": [
        ("hs_communication_channel_type", "Channel type", "enumeration", "select", "communication", False),
        ("hs_communication_logged_from", "Logged from", "enumeration", "select", "communication", False),
        ("hs_communication_body", "Body", "string", "textarea", "communication", False),
        ("hs_timestamp", "Activity date", "datetime", "date", "communication", False),
        ("hs_object_id", "Record ID", "number", "number", "communication", False),
        ("hs_createdate", "Create date", "datetime", "date", "communication", False),
        ("hs_lastmodifieddate", "Last modified date", "datetime", "date", "communication", False),
    ],
    # The meetings guide's properties (none but hs_timestamp marked required).
    "meetings": [
        ("hs_meeting_title", "Meeting name", "string", "text", "meetinginformation", False),
        ("hs_meeting_body", "Meeting description", "string", "html", "meetinginformation", False),
        ("hs_internal_meeting_notes", "Internal notes", "string", "html", "meetinginformation", False),
        ("hs_meeting_external_url", "External URL", "string", "text", "meetinginformation", False),
        ("hs_meeting_location", "Location", "string", "text", "meetinginformation", False),
        ("hs_meeting_start_time", "Start time", "datetime", "date", "meetinginformation", False),
        ("hs_meeting_end_time", "End time", "datetime", "date", "meetinginformation", False),
        ("hs_meeting_outcome", "Meeting outcome", "enumeration", "select", "meetinginformation", False),
        ("hs_activity_type", "Call and meeting type", "enumeration", "select", "meetinginformation", False),
        ("hs_timestamp", "Activity date", "datetime", "date", "meetinginformation", False),
        ("hubspot_owner_id", "Activity assigned to", "enumeration", "select", "meetinginformation", False),
        ("hs_object_id", "Record ID", "number", "number", "meetinginformation", False),
        ("hs_createdate", "Create date", "datetime", "date", "meetinginformation", False),
        ("hs_lastmodifieddate", "Last modified date", "datetime", "date", "meetinginformation", False),
    ],
}
# Options of built-in enumerations that are validated (others take any value here).
# The meetings guide gives the outcome labels; the internal values are assumed.
_BUILTIN_OPTIONS = {
    # HubSpot's default contact lifecycle stages and lead statuses (internal values).
    ("contacts", "lifecyclestage"): [("Subscriber", "subscriber"), ("Lead", "lead"),
                                     ("Marketing Qualified Lead", "marketingqualifiedlead"),
                                     ("Sales Qualified Lead", "salesqualifiedlead"), ("Opportunity", "opportunity"),
                                     ("Customer", "customer"), ("Evangelist", "evangelist"), ("Other", "other")],
    ("contacts", "hs_lead_status"): [("New", "NEW"), ("Open", "OPEN"), ("In Progress", "IN_PROGRESS"),
                                     ("Open Deal", "OPEN_DEAL"), ("Unqualified", "UNQUALIFIED"),
                                     ("Attempted to Contact", "ATTEMPTED_TO_CONTACT"), ("Connected", "CONNECTED"),
                                     ("Bad Timing", "BAD_TIMING")],
    ("meetings", "hs_meeting_outcome"): [("Scheduled", "SCHEDULED"), ("Completed", "COMPLETED"),
                                         ("Rescheduled", "RESCHEDULED"), ("No show", "NO_SHOW"),
                                         ("Canceled", "CANCELED")],
}
_DEFAULT_READ = {
    "contacts": ["email", "firstname", "lastname", "createdate", "lastmodifieddate", "hs_object_id"],
    "notes": ["hs_createdate", "hs_lastmodifieddate", "hs_object_id"],
    "communications": ["hs_createdate", "hs_lastmodifieddate", "hs_object_id"],
    "meetings": ["hs_createdate", "hs_lastmodifieddate", "hs_object_id"],
}
_VALID_TYPES = {"string", "number", "date", "datetime", "enumeration", "bool"}
_VALID_FIELD_TYPES = {"textarea", "text", "date", "file", "number", "select", "radio", "checkbox",
                      "booleancheckbox", "calculation_equation", "phonenumber", "html"}


def _now() -> str:
    now = datetime.now(timezone.utc)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


class _RecordError(Exception):
    """One input of a batch is invalid; becomes a 207 entry or a 400."""

    def __init__(self, category: str, message: str, code: str, name: str | None = None) -> None:
        super().__init__(message)
        self.category, self.message, self.code, self.name = category, message, code, name


def _invalid_property(name: str, message: str, code: str) -> _RecordError:
    detail = {"isValid": False, "message": message, "error": code, "name": name,
              "localizedErrorMessage": message}
    return _RecordError(
        "VALIDATION_ERROR",
        f"Property values were not valid: {json.dumps([detail], separators=(',', ':'))}",
        code,
        name,
    )


class HubSpotApp(App):
    """The HubSpot API of one portal. Knobs are plain attributes tests may set.

    - `tokens`: private-app tokens accepted as `Authorization: Bearer ...`.
    - `per_10s` (100; 190 on Pro/Enterprise), `per_second` (enforced only when
      set), `daily_limit` / `daily_used`: per-token limits, answered with 429
      bodies of policy TEN_SECONDLY_ROLLING, SECONDLY or DAILY.
    - `retry_after_s`: the Retry-After of rolling-window 429s (None: the
      seconds until a slot frees; tests set 0).
    - `reject_keys`: upsert id (lower-cased email, or the unique value) ->
      message; such inputs fail alone (207, code REJECTED).
    - `fail_after_create_next`: apply the next N batch creates, then answer
      502, as a gateway timeout after the write would.
    - `missing_association_reply`: "400" (whole batch) or "207" (per input)
      for creates associated with a record that does not exist.
    - `preserve_primary_id`: a merge keeps the primary's id (HubSpot's beta)
      instead of giving the survivor a new one.
    - `edit_contact(id, properties)`: a sales rep's edit in HubSpot's UI (no API call).
    - `faults` (base class): fail_next, drop_next, throttle_next, latency_s.
    """

    def __init__(
        self,
        tokens: Iterable[str] = (DEFAULT_TOKEN,),
        *,
        per_10s: int = 100,
        daily_limit: int = 250_000,
        per_second: int | None = None,
        retry_after_s: int | None = None,
        reject_keys: Mapping[str, str] | None = None,
        portal_id: int = 12345678,
    ) -> None:
        super().__init__()
        self.tokens = set(tokens)
        self.per_10s = per_10s
        self.daily_limit = daily_limit
        self.daily_used = 0
        self.per_second = per_second  # SECONDLY policy enforced only when set
        self.retry_after_s = retry_after_s  # None: seconds until a slot frees
        self.reject_keys: dict[str, str] = dict(reject_keys or {})
        self.fail_after_create_next = 0  # apply a batch/create, then answer 502
        self.missing_association_reply = "400"
        self.preserve_primary_id = False
        self.portal_id = portal_id
        self.upserted: Counter[str] = Counter()  # upsert key -> times applied
        self.upsert_requests: list[int] = []  # input count of every admitted upsert
        self._lock = threading.RLock()
        self._local = threading.local()
        self._windows: dict[str, tuple[SlidingWindowLimiter, SlidingWindowLimiter]] = {}
        self._next_id = 1001
        # Whether any contact may hold hs_additional_emails (only a merge or a UI edit sets it):
        # until then an unknown email is not looked for there, a scan of every contact per input.
        self._may_have_additional_emails = False
        self._objects: dict[str, dict[str, dict[str, Any]]] = {t: {} for t in OBJECT_TYPES}
        self._associations: set[tuple[str, str, str, str, int]] = set()
        self._index: dict[str, dict[str, dict[str, str]]] = {}  # type -> unique prop -> value -> id
        self._groups: dict[str, dict[str, dict[str, Any]]] = {t: {} for t in OBJECT_TYPES}
        self._properties: dict[str, dict[str, dict[str, Any]]] = {t: {} for t in OBJECT_TYPES}
        for object_type in OBJECT_TYPES:
            for order, (name, label) in enumerate(_BUILTIN_GROUPS[object_type]):
                self._groups[object_type][name] = {"name": name, "label": label,
                                                   "displayOrder": order, "archived": False}
            for name, label, ptype, field, group, unique in _BUILTIN_PROPERTIES[object_type]:
                options = [{"label": text, "value": value, "displayOrder": order, "hidden": False}
                           for order, (text, value) in enumerate(_BUILTIN_OPTIONS.get((object_type, name), []))]
                self._properties[object_type][name] = self._property_record(
                    {"name": name, "label": label, "type": ptype, "fieldType": field,
                     "groupName": group, "hasUniqueValue": unique, "options": options}, hubspot_defined=True)
        self._register_routes()

    # ----------------------------------------------------------- test accessors
    def contacts(self) -> list[dict[str, Any]]:
        """Every contact, as `{"id", "properties", "createdAt", "updatedAt", "archived"}` copies."""
        return self.objects("contacts")

    def notes(self) -> list[dict[str, Any]]:
        return self.objects("notes")

    def communications(self) -> list[dict[str, Any]]:
        return self.objects("communications")

    def meetings(self) -> list[dict[str, Any]]:
        return self.objects("meetings")

    def objects(self, object_type: str) -> list[dict[str, Any]]:
        with self._lock:
            return [json.loads(json.dumps(o)) for o in self._objects[object_type].values()]

    def find(self, object_type: str = "contacts", **properties: str) -> dict[str, Any] | None:
        """The one record whose properties equal the given ones (email case-insensitive)."""
        wanted = {k: (v.lower() if k == "email" else v) for k, v in properties.items()}
        for record in self.objects(object_type):
            props = record["properties"]
            if all((props.get(k) or "").lower() == v if k == "email" else props.get(k) == v
                   for k, v in wanted.items()):
                return record
        return None

    def associated(self, from_type: str, from_id: str, to_type: str) -> list[str]:
        """Ids of `to_type` records associated with one record."""
        with self._lock:
            return sorted({t for (f, fid, tt, t, _) in self._associations
                           if f == from_type and fid == from_id and tt == to_type}, key=int)

    def property_names(self, object_type: str = "contacts") -> set[str]:
        with self._lock:
            return set(self._properties[object_type])

    def property(self, name: str, object_type: str = "contacts") -> dict[str, Any] | None:
        with self._lock:
            found = self._properties[object_type].get(name)
            return dict(found) if found else None

    def group_names(self, object_type: str = "contacts") -> set[str]:
        with self._lock:
            return set(self._groups[object_type])

    def seed_contact(self, properties: Mapping[str, str]) -> str:
        """Create a contact directly (as if entered in the HubSpot UI); returns its id."""
        with self._lock:
            return self._create("contacts", dict(properties))["id"]

    def edit_contact(self, record_id: str, properties: Mapping[str, str]) -> None:
        """Change a contact's properties as a sales rep would in HubSpot's UI: no API call, no rate limit.

        `""` clears a value. The contact keeps its id; its last-modified time moves.
        """
        with self._lock:
            if "hs_additional_emails" in properties:
                self._may_have_additional_emails = True
            self._update("contacts", self._objects["contacts"][record_id], dict(properties))

    def requests(self, method: str | None = None, path_contains: str = "") -> list[tuple[str, str, int]]:
        """The request log (method, path, status), filtered."""
        return [r for r in list(self.request_log)
                if (method is None or r[0] == method) and path_contains in r[1]]

    # ----------------------------------------------------- auth, limits, errors
    def error_response(self, status: int, message: str, category: str | None = None,
                       **extra: Any) -> Response:
        if category is None:
            category = {400: "VALIDATION_ERROR", 401: "INVALID_AUTHENTICATION", 403: "MISSING_SCOPES",
                        404: "OBJECT_NOT_FOUND", 409: "CONFLICT"}.get(status, "INTERNAL_ERROR")
        body = {"status": "error", "message": message, "correlationId": str(uuid.uuid4()),
                "category": category, **extra}
        return Response(status, body)

    def throttled_response(self, policy: str = "TEN_SECONDLY_ROLLING",
                           retry_after: float | None = None) -> Response:
        limit_name = {"TEN_SECONDLY_ROLLING": "ten_secondly_rolling", "SECONDLY": "secondly",
                      "DAILY": "daily"}[policy]
        body = {"status": "error", "message": f"You have reached your {limit_name} limit.",
                "errorType": "RATE_LIMIT", "correlationId": str(uuid.uuid4()), "policyName": policy,
                "groupName": f"publicapi:private-app-api-calls-{limit_name}:{self.portal_id}"}
        headers = {}
        if policy != "DAILY":
            seconds = self.retry_after_s if self.retry_after_s is not None else retry_after or 1
            headers["Retry-After"] = str(max(0, math.ceil(seconds)))
        return Response(429, body, headers)

    def before(self, request: Request) -> Response | None:
        self._local.headers = {}
        auth = request.header("authorization") or ""
        token = auth[7:] if auth.startswith("Bearer ") else ""
        if token not in self.tokens:
            return self.error_response(
                401,
                "Authentication credentials not found. This API supports OAuth 2.0 authentication "
                "and you can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview",
                "INVALID_AUTHENTICATION",
            )
        with self._lock:
            ten, one = self._windows.setdefault(token, (
                SlidingWindowLimiter(self.per_10s, 10.0),
                SlidingWindowLimiter(self.per_second or max(1, self.per_10s // 10), 1.0)))
            ten.limit = self.per_10s  # knobs may change between requests
            if self.per_second:
                one.limit = self.per_second
            if self.daily_used >= self.daily_limit:
                response = self.throttled_response("DAILY")
                response.headers.update(self._rate_headers(0, 0, self.per_10s // 10))
                return response
            allowed, remaining, wait = ten.hit()
            daily_left = self.daily_limit - self.daily_used
            if not allowed:
                response = self.throttled_response("TEN_SECONDLY_ROLLING", wait)
                response.headers.update(self._rate_headers(0, daily_left, 0))  # HubSpot sends them on 429s too
                return response
            sec_allowed, sec_remaining, sec_wait = one.hit()
            if not sec_allowed and self.per_second:
                response = self.throttled_response("SECONDLY", sec_wait)
                response.headers.update(self._rate_headers(remaining, daily_left, 0))
                return response
            self.daily_used += 1
            self._local.headers = self._rate_headers(remaining, self.daily_limit - self.daily_used,
                                                     sec_remaining)
        return None

    def _rate_headers(self, remaining: int, daily_remaining: int, secondly_remaining: int) -> dict[str, str]:
        secondly = self.per_second or max(1, self.per_10s // 10)
        return {
            "X-HubSpot-RateLimit-Daily": str(self.daily_limit),
            "X-HubSpot-RateLimit-Daily-Remaining": str(max(0, daily_remaining)),
            "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
            "X-HubSpot-RateLimit-Max": str(self.per_10s),
            "X-HubSpot-RateLimit-Remaining": str(max(0, remaining)),
            "X-HubSpot-RateLimit-Secondly": str(secondly),
            "X-HubSpot-RateLimit-Secondly-Remaining": str(max(0, secondly_remaining)),
        }

    def dispatch(self, request: Request) -> Response:
        response = super().dispatch(request)
        headers = getattr(self._local, "headers", {})
        for name, value in headers.items():
            response.headers.setdefault(name, value)
        return response

    # ------------------------------------------------------------------ routes
    def _register_routes(self) -> None:
        r = self.route
        r("GET", "/crm/v3/properties/{objectType}/groups", self._list_groups)
        r("POST", "/crm/v3/properties/{objectType}/groups", self._create_group)
        r("GET", "/crm/v3/properties/{objectType}/groups/{groupName}", self._get_group)
        r("GET", "/crm/v3/properties/{objectType}", self._list_properties)
        r("POST", "/crm/v3/properties/{objectType}", self._create_property)
        r("GET", "/crm/v3/properties/{objectType}/{propertyName}", self._get_property)
        r("POST", "/crm/v3/objects/contacts/batch/upsert", self._batch_upsert)
        r("POST", "/crm/v3/objects/contacts/merge", self._merge)
        r("POST", "/crm/v3/objects/contacts/search", self._search)
        r("POST", "/crm/v3/objects/{objectType}/batch/create", self._batch_create)
        r("POST", "/crm/v3/objects/{objectType}/batch/update", self._batch_update)
        r("POST", "/crm/v3/objects/{objectType}/batch/read", self._batch_read)
        r("GET", "/crm/v3/objects/{objectType}", self._list_objects)
        r("GET", "/crm/v3/objects/{objectType}/{objectId}", self._get_object)
        r("DELETE", "/crm/v3/objects/{objectType}/{objectId}", self._delete_object)
        r("POST", "/crm/v4/associations/{fromType}/{toType}/batch/create", self._associate)
        r("POST", "/crm/v4/associations/{fromType}/{toType}/batch/read", self._read_associations)

    def _object_type(self, request: Request) -> str | None:
        """`contacts`, `notes`, `communications`, `meetings` (or their ids, OBJECT_TYPE_IDS); None if unknown."""
        object_type = request.params.get("objectType", "")
        object_type = OBJECT_TYPE_IDS.get(object_type, object_type)
        return object_type if object_type in OBJECT_TYPES else None

    def _unknown_type(self, request: Request) -> Response:
        return self.error_response(400, f"Unable to infer object type from: {request.params.get('objectType')}")

    # -------------------------------------------------------------- properties
    def _property_record(self, body: Mapping[str, Any], hubspot_defined: bool = False) -> dict[str, Any]:
        now = _now()
        return {
            "name": body["name"], "label": body["label"], "type": body["type"],
            "fieldType": body["fieldType"], "groupName": body["groupName"],
            "description": body.get("description", ""), "options": list(body.get("options") or []),
            "displayOrder": body.get("displayOrder", -1), "hasUniqueValue": bool(body.get("hasUniqueValue")),
            "hidden": bool(body.get("hidden")), "formField": bool(body.get("formField")),
            "calculated": False, "externalOptions": False, "archived": False,
            "hubspotDefined": hubspot_defined, "createdAt": now, "updatedAt": now,
            "modificationMetadata": {"archivable": not hubspot_defined, "readOnlyDefinition": hubspot_defined,
                                     "readOnlyValue": body["name"] in _READ_ONLY},
        }

    def _list_properties(self, request: Request) -> Response:
        object_type = self._object_type(request)
        if object_type is None:
            return self._unknown_type(request)
        with self._lock:
            return Response(200, {"results": [dict(p) for p in self._properties[object_type].values()]})

    def _get_property(self, request: Request) -> Response:
        object_type = self._object_type(request)
        if object_type is None:
            return self._unknown_type(request)
        name = request.params["propertyName"]
        with self._lock:
            found = self._properties[object_type].get(name)
        if found is None:
            return self.error_response(404, f"Unable to find property {name} for object type {object_type}",
                                       "OBJECT_NOT_FOUND", subCategory="PropertyError.PROPERTY_NOT_FOUND")
        return Response(200, dict(found))

    def _create_property(self, request: Request) -> Response:
        object_type = self._object_type(request)
        if object_type is None:
            return self._unknown_type(request)
        body = request.json() or {}
        missing = [k for k in ("name", "label", "type", "fieldType", "groupName") if not body.get(k)]
        if missing:
            return self.error_response(400, f"Missing required fields: {missing}")
        if body["type"] not in _VALID_TYPES or body["fieldType"] not in _VALID_FIELD_TYPES:
            return self.error_response(400, f"Invalid type/fieldType: {body['type']}/{body['fieldType']}")
        with self._lock:
            if body["name"] in self._properties[object_type]:
                return self.error_response(
                    409, f"Property named '{body['name']}' already exists.", "OBJECT_ALREADY_EXISTS",
                    subCategory="PropertyError.PROPERTY_ALREADY_EXISTS")
            if body["groupName"] not in self._groups[object_type]:
                return self.error_response(400, f"Property group {body['groupName']} does not exist.")
            record = self._property_record(body)
            self._properties[object_type][body["name"]] = record
        return Response(201, dict(record))

    def _list_groups(self, request: Request) -> Response:
        object_type = self._object_type(request)
        if object_type is None:
            return self._unknown_type(request)
        with self._lock:
            return Response(200, {"results": [dict(g) for g in self._groups[object_type].values()]})

    def _get_group(self, request: Request) -> Response:
        object_type = self._object_type(request)
        if object_type is None:
            return self._unknown_type(request)
        with self._lock:
            found = self._groups[object_type].get(request.params["groupName"])
        if found is None:
            return self.error_response(404, f"Unable to find property group {request.params['groupName']}")
        return Response(200, dict(found))

    def _create_group(self, request: Request) -> Response:
        object_type = self._object_type(request)
        if object_type is None:
            return self._unknown_type(request)
        body = request.json() or {}
        if not body.get("name") or not body.get("label"):
            return self.error_response(400, "Property group needs name and label")
        with self._lock:
            if body["name"] in self._groups[object_type]:
                return self.error_response(409, f"Property group named '{body['name']}' already exists.",
                                           "OBJECT_ALREADY_EXISTS")
            group = {"name": body["name"], "label": body["label"],
                     "displayOrder": body.get("displayOrder", -1), "archived": False}
            self._groups[object_type][body["name"]] = group
        return Response(201, dict(group))

    # ----------------------------------------------------------------- records
    def _create(self, object_type: str, properties: dict[str, str]) -> dict[str, Any]:
        record_id = str(self._next_id)
        self._next_id += 1
        now = _now()
        created, modified = ("createdate", "lastmodifieddate") if object_type == "contacts" else (
            "hs_createdate", "hs_lastmodifieddate")
        record = {"id": record_id, "properties": {"hs_object_id": record_id, created: now},
                  "createdAt": now, "updatedAt": now, "archived": False}
        self._objects[object_type][record_id] = record
        self._set(object_type, record, properties, now)
        return record

    def _update(self, object_type: str, record: dict[str, Any], properties: Mapping[str, str]) -> None:
        self._set(object_type, record, properties, _now())

    def _set(self, object_type: str, record: dict[str, Any], properties: Mapping[str, str], now: str) -> None:
        """Write property values and keep the unique-value index in step."""
        props = record["properties"]
        index = self._index.setdefault(object_type, {})
        for name, value in properties.items():
            if name == "email" and value:
                value = value.lower()
            if name in index or self._is_unique(object_type, name):
                values = index.setdefault(name, {})
                if props.get(name):
                    values.pop(props[name].lower() if name == "email" else props[name], None)
                if value:
                    values[value.lower() if name == "email" else value] = record["id"]
            props[name] = value
        props["lastmodifieddate" if object_type == "contacts" else "hs_lastmodifieddate"] = now
        record["updatedAt"] = now

    def _check_unique(self, object_type: str, properties: Mapping[str, str], own_id: str | None) -> None:
        """Raise as HubSpot answers when a unique value (email included) is held by another record."""
        for name, value in properties.items():
            holder = self._lookup(object_type, name, value) if value and self._is_unique(object_type, name) else None
            if holder is not None and holder["id"] != own_id:
                if name == "email":
                    raise _RecordError("CONFLICT", f"Contact already exists. Existing ID: {holder['id']}", "CONFLICT")
                raise _invalid_property(name, f"{value} already has that value for property {name}", "INVALID_OPTION")

    def _is_unique(self, object_type: str, name: str) -> bool:
        found = self._properties[object_type].get(name)
        return (object_type == "contacts" and name == "email") or bool(found and found["hasUniqueValue"])

    def _lookup(self, object_type: str, prop: str, value: str) -> dict[str, Any] | None:
        if prop in ("hs_object_id", "id"):
            return self._objects[object_type].get(value)
        wanted = value.lower() if prop == "email" else value
        if self._is_unique(object_type, prop):
            record_id = self._index.get(object_type, {}).get(prop, {}).get(wanted)
            if record_id is None and prop == "email":
                return self._by_additional_email(object_type, wanted)
            return self._objects[object_type].get(record_id) if record_id else None
        for record in self._objects[object_type].values():
            have = record["properties"].get(prop)
            if have is not None and (have.lower() if prop == "email" else have) == wanted:
                return record
        return None

    def _by_additional_email(self, object_type: str, email: str) -> dict[str, Any] | None:
        """The record that holds `email` among its `hs_additional_emails` (a merge's survivor)."""
        if not email or not self._may_have_additional_emails:
            return None
        for record in self._objects[object_type].values():
            extra = (record["properties"].get("hs_additional_emails") or "").lower().split(";")
            if email in extra:
                return record
        return None

    def _public(self, object_type: str, record: Mapping[str, Any], wanted: Iterable[str] | None = None,
                everything: bool = False) -> dict[str, Any]:
        names = set(_DEFAULT_READ[object_type]) | set(wanted or ())
        props = dict(record["properties"]) if everything else {
            k: v for k, v in record["properties"].items() if k in names}
        for name in names:
            props.setdefault(name, None)
        return {"id": record["id"], "properties": props, "createdAt": record["createdAt"],
                "updatedAt": record["updatedAt"], "archived": record["archived"]}

    def _validate_properties(self, object_type: str, properties: Any) -> dict[str, str]:
        if not isinstance(properties, dict):
            raise _RecordError("VALIDATION_ERROR", "properties must be an object", "INVALID_INPUT")
        clean: dict[str, str] = {}
        known = self._properties[object_type]
        for name, value in properties.items():
            if name not in known:
                raise _invalid_property(name, f'Property "{name}" does not exist', "PROPERTY_DOESNT_EXIST")
            if name in _READ_ONLY or known[name]["modificationMetadata"]["readOnlyValue"]:
                raise _invalid_property(name, f'"{name}" is a read only property; its value cannot be set.',
                                        "READ_ONLY_VALUE")
            text = "" if value is None else (json.dumps(value) if isinstance(value, bool) else str(value))
            if name == "email" and text and not EMAIL_RE.match(text):
                raise _invalid_property(name, f"Email address {text} is invalid", "INVALID_EMAIL")
            kind = known[name]["type"]
            if text and kind == "number" and not _NUMBER_RE.match(text):
                raise _invalid_property(name, f"{text} was not a valid number.", "INVALID_FLOAT")
            if text and kind == "datetime" and not (_EPOCH_MS_RE.match(text) or _DATETIME_RE.match(text)):
                raise _invalid_property(name, f"{text} was not a valid datetime (ISO 8601 or epoch milliseconds).",
                                        "INVALID_DATETIME")
            allowed = [option["value"] for option in known[name]["options"]]
            if text and kind == "enumeration" and allowed and text not in allowed:
                raise _invalid_property(name, f"{text} was not one of the allowed options: {allowed}",
                                        "INVALID_OPTION")
            clean[name] = text
        return clean

    def _batch_response(self, results: list[dict[str, Any]], errors: list[dict[str, Any]],
                        started: str, ok_status: int) -> Response:
        body: dict[str, Any] = {"status": "COMPLETE", "results": results, "startedAt": started,
                                "completedAt": _now(), "links": {}}
        if errors:
            body.update(numErrors=len(errors), errors=errors)
            return Response(207, body)
        return Response(ok_status, body)

    def _error_entry(self, error: _RecordError, context: dict[str, list[str]]) -> dict[str, Any]:
        detail: dict[str, Any] = {"message": error.message, "code": error.code}
        if error.name:
            detail["in"] = error.name
            detail["context"] = {"propertyName": [error.name]}
        return {"status": "error", "category": error.category, "message": error.message,
                "context": context, "errors": [detail], "links": {}}

    def _inputs(self, request: Request) -> list[dict[str, Any]] | Response:
        body = request.json()
        inputs = body.get("inputs") if isinstance(body, dict) else None
        if not isinstance(inputs, list) or not all(isinstance(i, dict) for i in inputs):
            return self.error_response(400, "Invalid input JSON: inputs must be an array of objects")
        if len(inputs) > MAX_BATCH:
            return self.error_response(
                400, f"Batch input size {len(inputs)} exceeds the maximum of {MAX_BATCH}.",
                context={"inputs": [f"size must be between 1 and {MAX_BATCH}"]})
        return inputs

    def _settle(self, inputs: list[dict[str, Any]], checked: list[Any], started: str, ok_status: int,
                apply: Callable[[dict[str, Any], Any], dict[str, Any]],
                context_of: Callable[[dict[str, Any]], dict[str, list[str]]]) -> Response:
        """Shared tail of batch writes: 207 with per-record errors, or 400, or apply all."""
        traced = all(i.get("objectWriteTraceId") for i in inputs)
        failures = [(i, c) for i, c in zip(inputs, checked) if isinstance(c, _RecordError)]
        if failures and not traced:
            first = failures[0][1]
            return self.error_response(400, first.message, first.category, context=context_of(failures[0][0]),
                                       errors=[self._error_entry(first, {})["errors"][0]])
        results = []
        for item, check in zip(inputs, checked):
            if not isinstance(check, _RecordError):
                result = apply(item, check)
                if item.get("objectWriteTraceId"):
                    result["objectWriteTraceId"] = item["objectWriteTraceId"]
                results.append(result)
        errors = [self._error_entry(c, context_of(i)) for i, c in failures]
        return self._batch_response(results, errors, started, ok_status)

    @staticmethod
    def _trace_context(item: Mapping[str, Any]) -> dict[str, list[str]]:
        if item.get("objectWriteTraceId"):
            return {"objectWriteTraceId": [str(item["objectWriteTraceId"])]}
        return {"ids": [str(item.get("id"))]} if item.get("id") is not None else {}

    # ---------------------------------------------------------------- upserts
    def _batch_upsert(self, request: Request) -> Response:
        started = _now()
        inputs = self._inputs(request)
        if isinstance(inputs, Response):
            return inputs
        with self._lock:
            self.upsert_requests.append(len(inputs))
            props_def = self._properties["contacts"]
            for item in inputs:
                id_property, record_id = item.get("idProperty"), item.get("id")
                if not record_id or not isinstance(record_id, str):
                    return self.error_response(400, "Each input needs an id (the value of idProperty)")
                if id_property != "email" and not (id_property in props_def
                                                   and props_def[id_property]["hasUniqueValue"]):
                    return self.error_response(
                        400, f"Unable to perform update/upsert by non-unique 0-1 property {id_property} "
                             f"in portal ID {self.portal_id}")
            # Two inputs that resolve to one record reject the whole batch.
            owner: dict[tuple[str, str], int] = {}
            duplicates: set[str] = set()
            for index, item in enumerate(inputs):
                for claim in self._claims(item):
                    if owner.setdefault(claim, index) != index:
                        duplicates.update((item["id"], inputs[owner[claim]]["id"]))
            if duplicates:
                return self.error_response(
                    400, f"Duplicate IDs found in batch input: {sorted(duplicates)}. IDs must be unique",
                    context={"ids": sorted(duplicates)})
            checked = [self._check_upsert(item) for item in inputs]
            return self._settle(inputs, checked, started, 200, self._apply_upsert, self._trace_context)

    def _claims(self, item: Mapping[str, Any]) -> set[tuple[str, str]]:
        """The identities an upsert input claims: its key, unique values, the record it resolves to."""
        id_property, record_id = item["idProperty"], item["id"]
        claims = {(id_property, record_id.lower() if id_property == "email" else record_id)}
        existing = self._lookup("contacts", id_property, record_id)
        if existing is not None:
            claims.add(("record", existing["id"]))
        properties = item.get("properties") if isinstance(item.get("properties"), dict) else {}
        for name, value in properties.items():
            if value and name in self._unique_names():
                claims.add((name, str(value).lower() if name == "email" else str(value)))
        return claims

    def _unique_names(self) -> set[str]:
        return {n for n in self._properties["contacts"] if self._is_unique("contacts", n)}

    def _check_upsert(self, item: dict[str, Any]) -> dict[str, str] | _RecordError:
        id_property, record_id = item["idProperty"], item["id"]
        key = record_id.lower() if id_property == "email" else record_id
        try:
            if key in self.reject_keys:
                raise _RecordError("VALIDATION_ERROR", self.reject_keys[key], "REJECTED")
            properties = self._validate_properties("contacts", item.get("properties") or {})
            properties[id_property] = record_id
            if id_property == "email" and not EMAIL_RE.match(record_id):
                raise _invalid_property("email", f"Email address {record_id} is invalid", "INVALID_EMAIL")
            target = self._lookup("contacts", id_property, record_id)
            self._check_unique("contacts", properties, target["id"] if target else None)
            return properties
        except _RecordError as error:
            return error

    def _apply_upsert(self, item: dict[str, Any], properties: dict[str, str]) -> dict[str, Any]:
        id_property, record_id = item["idProperty"], item["id"]
        record = self._lookup("contacts", id_property, record_id)
        new = record is None
        if new:
            record = self._create("contacts", properties)
        else:
            if (properties.get("email") or "").lower() != (record["properties"].get("email") or "").lower():
                properties = {k: v for k, v in properties.items() if k != "email"}  # found by an additional email
            self._update("contacts", record, properties)
        self.upserted[record_id.lower() if id_property == "email" else record_id] += 1
        public = self._public("contacts", record, properties)
        return {**public, "new": new}

    # ------------------------------------------------------- creates, updates
    def _batch_create(self, request: Request) -> Response:
        object_type = self._object_type(request)
        if object_type is None or object_type == "contacts":
            return self._unknown_type(request) if object_type is None else self.error_response(
                400, "Use batch/upsert for contacts in this sandbox")
        started = _now()
        inputs = self._inputs(request)
        if isinstance(inputs, Response):
            return inputs
        with self._lock:
            missing = self._missing_associations(inputs)
            if missing and self.missing_association_reply != "207":
                message = f"One or more associations are invalid: no contacts with id {', '.join(missing)}"
                return self.error_response(400, message, "VALIDATION_ERROR",
                                           subCategory="crm.associations.INVALID_OBJECT_IDS",
                                           context={"toObjectId": missing},
                                           errors=[{"message": message, "code": "INVALID_ASSOCIATION",
                                                    "context": {"toObjectId": missing}}])
            checked = [self._check_create(object_type, item) for item in inputs]
            response = self._settle(inputs, checked, started, 201,
                                    lambda item, props: self._apply_create(object_type, item, props),
                                    self._trace_context)
            if self.fail_after_create_next > 0 and response.status in (201, 207):
                self.fail_after_create_next -= 1
                return self.error_response(502, "Bad gateway: the upstream did not answer in time",
                                           "INTERNAL_ERROR")
            return response

    def _missing_associations(self, inputs: list[dict[str, Any]]) -> list[str]:
        """Ids of contacts the inputs ask to be associated with that do not exist, in order."""
        wanted = [str((a.get("to") or {}).get("id")) for item in inputs for a in item.get("associations") or []]
        return sorted({i for i in wanted if i not in self._objects["contacts"]}, key=lambda v: (len(v), v))

    def _check_create(self, object_type: str, item: dict[str, Any]) -> dict[str, str] | _RecordError:
        try:
            properties = self._validate_properties(object_type, item.get("properties") or {})
            if object_type == "meetings" and not properties.get("hs_timestamp"):
                properties["hs_timestamp"] = properties.get("hs_meeting_start_time", "")
            if not properties.get("hs_timestamp"):
                raise _invalid_property("hs_timestamp", "hs_timestamp is required", "REQUIRED_PROPERTY")
            for association in item.get("associations") or []:
                to_id = str((association.get("to") or {}).get("id"))
                if to_id not in self._objects["contacts"]:
                    raise _RecordError("VALIDATION_ERROR", f"One or more associations are invalid: no contacts "
                                       f"with id {to_id}", "INVALID_ASSOCIATION")
            return properties
        except _RecordError as error:
            return error

    def _apply_create(self, object_type: str, item: dict[str, Any], properties: dict[str, str]) -> dict[str, Any]:
        record = self._create(object_type, properties)
        for association in item.get("associations") or []:
            to_id = str(association["to"]["id"])
            for kind in association.get("types") or [{}]:
                self._link(object_type, record["id"], "contacts", to_id,
                           int(kind.get("associationTypeId") or ASSOCIATION_TYPES[(object_type, "contacts")]))
        return self._public(object_type, record, properties)

    def _link(self, from_type: str, from_id: str, to_type: str, to_id: str, type_id: int) -> None:
        self._associations.add((from_type, from_id, to_type, to_id, type_id))
        reverse = ASSOCIATION_TYPES.get((to_type, from_type), type_id)
        self._associations.add((to_type, to_id, from_type, from_id, reverse))

    def _batch_update(self, request: Request) -> Response:
        object_type = self._object_type(request)
        if object_type is None:
            return self._unknown_type(request)
        started = _now()
        inputs = self._inputs(request)
        if isinstance(inputs, Response):
            return inputs
        with self._lock:
            def check(item: dict[str, Any]) -> dict[str, str] | _RecordError:
                if str(item.get("id")) not in self._objects[object_type]:
                    return _RecordError("OBJECT_NOT_FOUND", f"Object {item.get('id')} not found", "NOT_FOUND")
                try:
                    properties = self._validate_properties(object_type, item.get("properties") or {})
                    self._check_unique(object_type, properties, str(item["id"]))
                    return properties
                except _RecordError as error:
                    return error

            def apply(item: dict[str, Any], properties: dict[str, str]) -> dict[str, Any]:
                record = self._objects[object_type][str(item["id"])]
                self._update(object_type, record, properties)
                return self._public(object_type, record, properties)

            checked = [check(item) for item in inputs]
            return self._settle(inputs, checked, started, 200, apply, self._trace_context)

    # ------------------------------------------------- deletes and merges (UI-like)
    def delete(self, object_type: str, record_id: str) -> None:
        """Delete a record as a user would in HubSpot (see `_delete_object`)."""
        with self._lock:
            self._remove(object_type, record_id)

    def _delete_object(self, request: Request) -> Response:
        object_type = self._object_type(request)
        if object_type is None:
            return self._unknown_type(request)
        with self._lock:
            self._remove(object_type, request.params["objectId"])
        return Response(204, None)

    def _remove(self, object_type: str, record_id: str) -> None:
        """Drop a record and its associations; a contact's activities associated with it alone go too."""
        record = self._objects[object_type].pop(record_id, None)
        if record is None:
            return
        self._unindex(object_type, record)
        linked = {(tt, tid) for (f, fid, tt, tid, _) in self._associations if f == object_type and fid == record_id}
        self._associations = {a for a in self._associations if not (
            (a[0] == object_type and a[1] == record_id) or (a[2] == object_type and a[3] == record_id))}
        if object_type == "contacts":
            for to_type, to_id in linked:
                if to_type != "contacts" and not any(f == to_type and fid == to_id for (f, fid, *_r) in self._associations):
                    self._remove(to_type, to_id)

    def _unindex(self, object_type: str, record: Mapping[str, Any]) -> None:
        for name, values in self._index.get(object_type, {}).items():
            value = record["properties"].get(name)
            if value:
                values.pop(value.lower() if name == "email" else value, None)

    def _merge(self, request: Request) -> Response:
        body = request.json() or {}
        primary, other = str(body.get("primaryObjectId")), str(body.get("objectIdToMerge"))
        with self._lock:
            if primary not in self._objects["contacts"] or other not in self._objects["contacts"]:
                return self.error_response(400, f"Contacts {primary} and {other} must both exist to merge")
            survivor = self.merge_contacts(primary, other)
            return Response(200, self._public("contacts", survivor))

    def merge_contacts(self, primary_id: str, other_id: str) -> dict[str, Any]:
        """Merge `other_id` into `primary_id` as HubSpot does; returns the surviving record."""
        with self._lock:
            primary, other = self._objects["contacts"][primary_id], self._objects["contacts"][other_id]
            props = {k: v for k, v in other["properties"].items() if v}
            props.update({k: v for k, v in primary["properties"].items() if v})
            extra = [e for e in [other["properties"].get("email"), other["properties"].get("hs_additional_emails"),
                                 primary["properties"].get("hs_additional_emails")] if e]
            props["hs_additional_emails"] = ";".join(extra)
            self._may_have_additional_emails = True
            links = {(a[2], a[3], a[4]) for a in self._associations
                     if a[0] == "contacts" and a[1] in (primary_id, other_id)}
            for record in (primary, other):
                self._objects["contacts"].pop(record["id"])
                self._unindex("contacts", record)
            self._associations = {a for a in self._associations if not (
                (a[0] == "contacts" and a[1] in (primary_id, other_id))
                or (a[2] == "contacts" and a[3] in (primary_id, other_id)))}
            for name in ("hs_object_id", "createdate", "lastmodifieddate"):
                props.pop(name, None)
            if self.preserve_primary_id:
                self._next_id, saved = int(primary_id), self._next_id
                survivor = self._create("contacts", props)
                self._next_id = saved
            else:
                survivor = self._create("contacts", props)
            survivor["properties"]["hs_merged_object_ids"] = ";".join(sorted({primary_id, other_id} - {survivor["id"]}))
            for to_type, to_id, type_id in links:
                self._link("contacts", survivor["id"], to_type, to_id, type_id)
            return survivor

    # ------------------------------------------------------------------ reads
    def _batch_read(self, request: Request) -> Response:
        object_type = self._object_type(request)
        if object_type is None:
            return self._unknown_type(request)
        started = _now()
        body = request.json() or {}
        inputs = body.get("inputs") or []
        id_property = body.get("idProperty") or "hs_object_id"
        results, errors = [], []
        with self._lock:
            for item in inputs:
                record = self._lookup(object_type, id_property, str(item.get("id")))
                if record is None:
                    errors.append(self._error_entry(
                        _RecordError("OBJECT_NOT_FOUND", "Could not get some records", "NOT_FOUND"),
                        {"ids": [str(item.get("id"))]}))
                else:
                    results.append(self._public(object_type, record, body.get("properties")))
        return self._batch_response(results, errors, started, 200)

    def _list_objects(self, request: Request) -> Response:
        object_type = self._object_type(request)
        if object_type is None:
            return self._unknown_type(request)
        limit = min(int(request.query.get("limit") or 10), 100)
        after = int(request.query.get("after") or 0)
        wanted = [p for p in (request.query.get("properties") or "").split(",") if p]
        with self._lock:
            records = sorted(self._objects[object_type].values(), key=lambda r: int(r["id"]))
            page = [r for r in records if int(r["id"]) > after][:limit]
            body: dict[str, Any] = {"results": [self._public(object_type, r, wanted) for r in page]}
            if page and int(page[-1]["id"]) < int(records[-1]["id"]):
                body["paging"] = {"next": {"after": page[-1]["id"]}}
        return Response(200, body)

    def _get_object(self, request: Request) -> Response:
        object_type = self._object_type(request)
        if object_type is None:
            return self._unknown_type(request)
        wanted = [p for p in (request.query.get("properties") or "").split(",") if p]
        with self._lock:
            record = self._lookup(object_type, request.query.get("idProperty") or "hs_object_id",
                                  request.params["objectId"])
            if record is None:
                return self.error_response(404, f"Object not found. objectId: {request.params['objectId']}")
            return Response(200, self._public(object_type, record, wanted))

    def _search(self, request: Request) -> Response:
        body = request.json() or {}
        groups = body.get("filterGroups") or [{"filters": []}]
        limit = min(int(body.get("limit") or 10), 200)
        after = int(body.get("after") or 0)

        def matches(record: Mapping[str, Any], flt: Mapping[str, Any]) -> bool:
            value = record["properties"].get(flt.get("propertyName"))
            operator = flt.get("operator", "EQ")
            if operator == "HAS_PROPERTY":
                return bool(value)
            if operator == "NOT_HAS_PROPERTY":
                return not value
            if operator == "EQ":
                return (value or "").lower() == str(flt.get("value", "")).lower()
            raise ValueError(f"operator {operator} is not emulated")

        with self._lock:
            hits = [r for r in sorted(self._objects["contacts"].values(), key=lambda r: int(r["id"]))
                    if any(all(matches(r, f) for f in g.get("filters") or []) for g in groups)]
            page = hits[after:after + limit]
            out: dict[str, Any] = {"total": len(hits),
                                   "results": [self._public("contacts", r, body.get("properties")) for r in page]}
            if after + limit < len(hits):
                out["paging"] = {"next": {"after": str(after + limit)}}
        return Response(200, out)

    # ----------------------------------------------------------- associations
    def _associate(self, request: Request) -> Response:
        from_type, to_type = request.params["fromType"], request.params["toType"]
        if from_type not in OBJECT_TYPES or to_type not in OBJECT_TYPES:
            return self.error_response(400, f"Unknown object types {from_type}/{to_type}")
        started = _now()
        inputs = self._inputs(request)
        if isinstance(inputs, Response):
            return inputs
        results, errors = [], []
        with self._lock:
            for item in inputs:
                from_id = str((item.get("from") or {}).get("id"))
                to_id = str((item.get("to") or {}).get("id"))
                if from_id not in self._objects[from_type] or to_id not in self._objects[to_type]:
                    errors.append(self._error_entry(
                        _RecordError("VALIDATION_ERROR", f"No {from_type} {from_id} or {to_type} {to_id}",
                                     "INVALID_ASSOCIATION"), {"fromObjectId": [from_id], "toObjectId": [to_id]}))
                    continue
                for kind in item.get("types") or []:
                    self._link(from_type, from_id, to_type, to_id, int(kind["associationTypeId"]))
                results.append({"fromObjectTypeId": from_type, "fromObjectId": int(from_id),
                                "toObjectTypeId": to_type, "toObjectId": int(to_id), "labels": []})
        return self._batch_response(results, errors, started, 201)

    def _read_associations(self, request: Request) -> Response:
        from_type, to_type = request.params["fromType"], request.params["toType"]
        if from_type not in OBJECT_TYPES or to_type not in OBJECT_TYPES:
            return self.error_response(400, f"Unknown object types {from_type}/{to_type}")
        started = _now()
        body = request.json() or {}
        results, errors = [], []
        with self._lock:
            for item in body.get("inputs") or []:
                from_id = str(item.get("id"))
                if from_id not in self._objects[from_type]:
                    errors.append(self._error_entry(
                        _RecordError("OBJECT_NOT_FOUND", f"No {from_type} {from_id}", "NOT_FOUND"),
                        {"fromObjectId": [from_id]}))
                    continue
                linked: dict[str, list[int]] = {}
                for (f, fid, tt, tid, type_id) in self._associations:
                    if f == from_type and fid == from_id and tt == to_type:
                        linked.setdefault(tid, []).append(type_id)
                ordered = sorted(linked, key=int)
                start = int(item.get("after") or 0)
                page = ordered[start:start + ASSOCIATION_READ_LIMIT]
                entry: dict[str, Any] = {"from": {"id": from_id}, "to": [
                    {"toObjectId": int(tid), "associationTypes": [
                        {"category": "HUBSPOT_DEFINED", "typeId": t, "label": None} for t in sorted(linked[tid])]}
                    for tid in page]}
                if start + ASSOCIATION_READ_LIMIT < len(ordered):
                    entry["paging"] = {"next": {"after": str(start + ASSOCIATION_READ_LIMIT)}}
                results.append(entry)
        return self._batch_response(results, errors, started, 200)
