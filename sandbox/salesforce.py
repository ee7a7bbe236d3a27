"""Salesforce emulator: the REST, sObject Collections, Bulk API 2.0 and SOAP
login endpoints that simple-salesforce calls, over TLS.

Shapes follow Salesforce's documentation: errors are a list
`[{"message", "errorCode", "fields"}]` (inside collection results the code is
`statusCode`), upserts by external id answer 201 with `{id, success, errors,
created}` or 200 when updated, bulk ingest jobs go Open -> UploadComplete ->
InProgress -> JobComplete and expose successfulResults / failedResults /
unprocessedrecords CSVs, and every REST answer carries
`Sforce-Limit-Info: api-usage=N/M`. Describe gives a fresh org's field
lengths (FirstName 40, LastName 80, Email 80, Phone 40, Company 255, Subject
255, Description 32,000) and writes enforce them as Salesforce counts,
in UTF-16 units (an emoji is two), with STRING_TOO_LONG.

Start it (simple-salesforce always builds https URLs):

    from sandbox import tls
    from sandbox.salesforce import SalesforceApp, serve
    app = SalesforceApp(users={"ops@example.com": ("pw", "tok")})
    server = serve(app)                   # ServerThread over TLS, started
    # instance URL: server.url; token: app.access_token; CA: tls.ca_path()

Task and Event are activities: their custom fields are fields of the shared
Activity object, so `Agent_Conversation_Id__c` and `Agent_Appointment_Id__c`
show on both describes, and adding, dropping or changing a custom field on
one changes it on the other (as Setup → Object Manager → Activity does). An
Event that is not all-day needs `StartDateTime` and an `EndDateTime` or a
`DurationInMinutes` (REQUIRED_FIELD_MISSING), never ends before it starts
(FIELD_INTEGRITY_EXCEPTION), and keeps the two consistent: a write of one
recomputes the other, and `ActivityDateTime`/`ActivityDate` follow the start
(sandbox/salesforce_events.py).

Knobs tests turn (all plain attributes or methods):
- `drop_field(obj, name)`, `set_external_id(obj, name, False)`, `add_field(obj, name, type_)`: describe drifts.
- `duplicate_keys`: external ids answered with DUPLICATE_VALUE.
- `validation_failures`: {external id: message} -> FIELD_CUSTOM_VALIDATION_EXCEPTION.
- `expire_sessions()`: every issued token now gets 401 INVALID_SESSION_ID.
- `edit_record(obj, id, values)`: a sales rep's edit in the UI (no API call).
- `api_limit`, `api_used`: 403 REQUEST_LIMIT_EXCEEDED once `api_used` reaches `api_limit`.
- `bulk_polls_to_complete`: job-info polls answered InProgress before JobComplete.
- `fail_next_bulk_jobs`: the next N ingest jobs end Failed, records unprocessed.
- `faults` (from sandbox.http): injected 5xx, dropped connections, latency.

Accessors: `records(obj)`, `find(obj, field, value)`, `upsert_count(obj, key)`,
`jobs`, `login_count`, `request_log` / `status_counts` (from sandbox.http).
`reset()` returns to a fresh org, so one server can serve many tests.
"""

from __future__ import annotations

import copy
import csv
import io
import itertools
import re
import secrets
import socket
import ssl
import sys
import threading
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from html import escape
from typing import Any
from urllib.parse import unquote

from sandbox import tls
from sandbox.http import App, Faults, Request, Response, ServerThread
from sandbox.salesforce_events import event_fields, settle_event_times

API_VERSIONS = (
    ("Summer '23", "58.0"),
    ("Winter '24", "59.0"),
    ("Spring '24", "60.0"),
    ("Summer '24", "61.0"),
    ("Winter '25", "62.0"),
)
ORG_ID = "00D000000000001AAA"
USER_ID = "005000000000001AAA"
COLLECTION_LIMIT = 200
KEY_PREFIX = {"Lead": "00Q", "Contact": "003", "Task": "00T", "Event": "00U", "Account": "001"}
# Objects whose custom fields live on the shared Activity object.
ACTIVITY_OBJECTS = ("Task", "Event")
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
DATETIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})$")
NUMBER_RE = re.compile(r"^-?\d+(\.\d+)?$")
CSV_DELIMITERS = {"COMMA": ",", "TAB": "\t", "PIPE": "|", "SEMICOLON": ";", "CARET": "^", "BACKQUOTE": "`"}


def _utf16_length(text: str) -> int:
    """Length as Salesforce (Java) counts it: an emoji outside the BMP is two characters."""
    return len(text.encode("utf-16-le")) // 2


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000+0000")


# A fresh org's Lead picklists (Setup → Object Manager → Lead → Fields): Status is restricted.
LEAD_STATUSES = ("Open - Not Contacted", "Working - Contacted", "Closed - Converted", "Closed - Not Converted")
LEAD_SOURCES = ("Web", "Phone Inquiry", "Partner Referral", "Purchased List", "Other")


def _field(
    name: str,
    type_: str = "string",
    *,
    length: int = 255,
    label: str | None = None,
    nillable: bool = True,
    createable: bool = True,
    defaulted: bool = False,
    external_id: bool = False,
    unique: bool = False,
    reference_to: tuple[str, ...] = (),
    relationship: str | None = None,
    picklist_values: tuple[str, ...] = (),
    restricted: bool = False,
) -> dict[str, Any]:
    """One entry of describe()['fields'], with the keys clients read."""
    return {
        "picklistValues": [{"value": v, "label": v, "active": True, "defaultValue": i == 0, "validFor": None}
                           for i, v in enumerate(picklist_values)],
        "restrictedPicklist": restricted,
        "name": name,
        "label": label or re.sub(r"(?<!^)(?=[A-Z])", " ", name.removesuffix("__c")).replace("_", " "),
        "type": type_,
        "length": length if type_ in ("string", "email", "phone", "textarea", "picklist", "url") else 0,
        "custom": name.endswith("__c"),
        "nillable": nillable,
        "createable": createable,
        "updateable": createable,
        "defaultedOnCreate": defaulted,
        "externalId": external_id,
        "unique": unique,
        "caseSensitive": False,
        "idLookup": external_id or name == "Id",
        "referenceTo": list(reference_to),
        "relationshipName": relationship,
    }


def _activity_fields() -> list[dict[str, Any]]:
    """The sync's custom Activity fields, shown on Task and Event alike."""
    return [_field("Agent_Conversation_Id__c", external_id=True, unique=True, label="Agent Conversation Id"),
            _field("Agent_Appointment_Id__c", external_id=True, unique=True, label="Agent Appointment Id")]


def standard_schema() -> dict[str, list[dict[str, Any]]]:
    """Lead, Contact, Task and Event as a fresh org with the sync's custom fields set up."""
    ident = _field("Id", "id", length=18, nillable=False, createable=False, defaulted=True)
    agent_key = _field("Agent_Contact_Id__c", external_id=True, unique=True, label="Agent Contact Id")
    sources = _field("Agent_Sources__c", label="Agent Sources")
    who = _field("WhoId", "reference", reference_to=("Contact", "Lead"), relationship="Who")
    what = _field("WhatId", "reference", reference_to=("Account",), relationship="What")
    return {
        "Lead": [
            ident,
            _field("FirstName", length=40),
            _field("LastName", length=80, nillable=False),
            _field("Company", length=255, nillable=False),
            _field("Email", "email", length=80),
            _field("Phone", "phone", length=40),
            _field("MobilePhone", "phone", length=40),
            _field("Status", "picklist", nillable=False, defaulted=True, picklist_values=LEAD_STATUSES, restricted=True),
            _field("LeadSource", "picklist", picklist_values=LEAD_SOURCES),
            _field("Description", "textarea", length=32000),
            agent_key,
            sources,
        ],
        "Contact": [
            ident,
            _field("FirstName", length=40),
            _field("LastName", length=80, nillable=False),
            _field("Email", "email", length=80),
            _field("Phone", "phone", length=40),
            _field("MobilePhone", "phone", length=40),
            _field("AccountId", "reference", reference_to=("Account",), relationship="Account"),
            _field("Description", "textarea", length=32000),
            dict(agent_key),
            dict(sources),
        ],
        "Task": [
            ident,
            who,
            what,
            _field("Subject", "combobox", length=255),
            _field("Description", "textarea", length=32000),
            _field("ActivityDate", "date"),
            _field("Status", "picklist", nillable=False, defaulted=True),
            _field("Priority", "picklist", nillable=False, defaulted=True),
            _field("TaskSubtype", "picklist"),
            *_activity_fields(),
        ],
        "Event": event_fields(_field, [dict(ident), dict(who), dict(what), *_activity_fields()]),
    }


class _Invalid(Exception):
    """A record-level failure: (code, message, fields)."""

    def __init__(self, code: str, message: str, fields: list[str] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.fields = fields or []


class _BadRequest(Exception):
    """A request-level failure answered with one error list and a status."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@dataclass
class _Change:
    obj: str
    record_id: str
    created: bool
    values: dict[str, Any]
    key_field: str
    key: str


@dataclass
class _Job:
    info: dict[str, Any]
    data: list[str] = field(default_factory=list)
    polls: int = 0
    fail: bool = False
    header: list[str] = field(default_factory=list)
    successful: list[list[str]] = field(default_factory=list)
    failed: list[list[str]] = field(default_factory=list)
    unprocessed: list[list[str]] = field(default_factory=list)


class SalesforceApp(App):
    """A small Salesforce org: Lead, Contact, Task, Event; REST, collections, Bulk 2.0, SOAP login."""

    def __init__(
        self,
        *,
        users: dict[str, tuple[str, str]] | None = None,
        api_limit: int = 100_000,
        bulk_polls_to_complete: int = 1,
    ) -> None:
        super().__init__()
        self._lock = threading.RLock()
        self.users = dict(users or {})
        self.reset(api_limit=api_limit, bulk_polls_to_complete=bulk_polls_to_complete)
        self._register()

    def reset(self, *, api_limit: int = 100_000, bulk_polls_to_complete: int = 1) -> None:
        """Back to a fresh org (schema, data, knobs, a new access token), keeping users and routes."""
        with self._lock:
            self.schema = standard_schema()
            self._valid_tokens: set[str] = set()
            self.access_token = self.issue_token()
            self.api_limit = api_limit
            self.api_used = 0
            self.bulk_polls_to_complete = bulk_polls_to_complete
            self.fail_next_bulk_jobs = 0
            self.duplicate_keys: set[str] = set()
            self.validation_failures: dict[str, str] = {}
            self.login_count = 0
            self.upsert_counts: Counter[tuple[str, str]] = Counter()
            self._records: dict[str, dict[str, dict[str, Any]]] = {obj: {} for obj in self.schema}
            self._jobs: dict[str, _Job] = {}
            self._ids = itertools.count(1)
            self.faults = Faults()
            self.request_log.clear()
            self.status_counts.clear()

    # ----------------------------------------------------------- knobs and accessors
    def issue_token(self) -> str:
        """A new valid session id, shaped like Salesforce's (org id, '!', opaque)."""
        token = f"{ORG_ID[:15]}!{secrets.token_urlsafe(24)}"
        with self._lock:
            self._valid_tokens.add(token)
        return token

    def expire_sessions(self) -> None:
        """Invalidate every session issued so far (a later SOAP login issues a fresh one)."""
        with self._lock:
            self._valid_tokens.clear()

    @staticmethod
    def _sharing(obj: str, name: str) -> tuple[str, ...]:
        """The objects a field change applies to: a custom Activity field is on Task and Event."""
        return ACTIVITY_OBJECTS if obj in ACTIVITY_OBJECTS and name.endswith("__c") else (obj,)

    def drop_field(self, obj: str, name: str) -> None:
        with self._lock:
            for each in self._sharing(obj, name):
                self.schema[each] = [f for f in self.schema[each] if f["name"] != name]

    def add_field(self, obj: str, name: str, type_: str = "string", **options: Any) -> None:
        """Add a (custom) field to the object, as an admin would in Setup (`options` as `_field`)."""
        with self._lock:
            for each in self._sharing(obj, name):
                self.schema[each] = [f for f in self.schema[each] if f["name"] != name] + [
                    _field(name, type_, **options)]

    def set_external_id(self, obj: str, name: str, external_id: bool) -> None:
        with self._lock:
            for each in self._sharing(obj, name):
                for f in self.schema[each]:
                    if f["name"] == name:
                        f["externalId"] = external_id
                        f["idLookup"] = external_id
                        f["unique"] = external_id

    def edit_record(self, obj: str, record_id: str, values: dict[str, Any]) -> None:
        """Change a record's fields as a sales rep would in Salesforce's UI: no API call, no API usage.

        None or "" clears a field. The record keeps its Id; LastModifiedDate moves.
        """
        with self._lock:
            record = self._records[obj][record_id]
            record.update({name: (None if value == "" else value) for name, value in values.items()})
            record["SystemModstamp"] = record["LastModifiedDate"] = _now()

    def records(self, obj: str) -> list[dict[str, Any]]:
        with self._lock:
            return [copy.deepcopy(r) for r in self._records[obj].values()]

    def find(self, obj: str, field_name: str, value: Any) -> dict[str, Any] | None:
        with self._lock:
            found = self._lookup(obj, field_name, value)
            return copy.deepcopy(found) if found else None

    def upsert_count(self, obj: str, key: str) -> int:
        """How many successful upserts (any path) hit this external id."""
        with self._lock:
            return self.upsert_counts[(obj, key.lower())]

    @property
    def jobs(self) -> list[dict[str, Any]]:
        with self._lock:
            return [copy.deepcopy(job.info) for job in self._jobs.values()]

    # ------------------------------------------------------------------ plumbing
    def _register(self) -> None:
        data = "/services/data/v{version}"
        self.route("GET", "/services/data", self._versions)
        self.route("POST", "/services/Soap/u/{version}", self._soap_login)
        self.route("GET", data + "/limits", self._limits)
        self.route("GET", data + "/sobjects", self._global_describe)
        self.route("GET", data + "/sobjects/{obj}/describe", self._describe)
        self.route("GET", data + "/sobjects/{obj}/{record_id}", self._get_record)
        self.route("PATCH", data + "/sobjects/{obj}/{record_id}", self._update_record)
        self.route("GET", data + "/sobjects/{obj}/{key_field}/{key}", self._get_by_key)
        self.route("PATCH", data + "/sobjects/{obj}/{key_field}/{key}", self._upsert_single)
        self.route("PATCH", data + "/composite/sobjects/{obj}/{key_field}", self._upsert_collection)
        self.route("GET", data + "/query", self._query)
        self.route("POST", data + "/jobs/ingest", self._create_job)
        self.route("GET", data + "/jobs/ingest", self._list_jobs)
        self.route("PUT", data + "/jobs/ingest/{job_id}/batches", self._upload_job_data)
        self.route("PATCH", data + "/jobs/ingest/{job_id}", self._set_job_state)
        self.route("GET", data + "/jobs/ingest/{job_id}", self._job_info)
        self.route("DELETE", data + "/jobs/ingest/{job_id}", self._delete_job)
        for name, kind in (
            ("successfulResults", "successful"),
            ("failedResults", "failed"),
            ("unprocessedrecords", "unprocessed"),
            ("unprocessedRecords", "unprocessed"),
        ):
            self.route("GET", data + "/jobs/ingest/{job_id}/" + name,
                       lambda r, kind=kind: self._job_results(r, kind))

    @staticmethod
    def _errors(status: int, code: str, message: str, fields: list[str] | None = None) -> Response:
        body: dict[str, Any] = {"message": message, "errorCode": code}
        if fields is not None:
            body["fields"] = fields
        return Response(status, [body])

    def error_response(self, status: int, message: str) -> Response:
        code = {
            400: "MALFORMED_REQUEST", 401: "INVALID_SESSION_ID", 403: "FORBIDDEN",
            404: "NOT_FOUND", 503: "SERVER_UNAVAILABLE",
        }.get(status, "UNKNOWN_EXCEPTION")
        return self._errors(status, code, message)

    def throttled_response(self) -> Response:
        return self._errors(503, "SERVER_UNAVAILABLE", "Server temporarily unavailable, retry later")

    def before(self, request: Request) -> Response | None:
        if not request.path.startswith("/services/data/v"):
            return None
        auth = request.header("authorization") or ""
        token = auth[7:] if auth.startswith("Bearer ") else ""
        with self._lock:
            if token not in self._valid_tokens:
                return self._errors(401, "INVALID_SESSION_ID", "Session expired or invalid")
            if self.api_used >= self.api_limit:
                return self._errors(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
            self.api_used += 1
        return None

    def dispatch(self, request: Request) -> Response:
        try:
            response = super().dispatch(request)
        except _BadRequest as exc:
            response = self._errors(exc.status, exc.code, exc.message)
        if request.path.startswith("/services/data/v"):
            response.headers.setdefault("Sforce-Limit-Info", f"api-usage={self.api_used}/{self.api_limit}")
        return response

    def _fields(self, obj: str) -> dict[str, dict[str, Any]]:
        if obj not in self.schema:
            raise _BadRequest(404, "NOT_FOUND", f"The requested resource does not exist: sobject type '{obj}'")
        return {f["name"]: f for f in self.schema[obj]}

    def _key_field(self, obj: str, name: str) -> dict[str, Any]:
        spec = self._fields(obj).get(name)
        if spec is None or not spec["externalId"]:
            raise _BadRequest(404, "NOT_FOUND", f"Provided external ID field does not exist or is not accessible: {name}")
        return spec

    def _lookup(self, obj: str, field_name: str, value: Any) -> dict[str, Any] | None:
        if value is None:
            return None
        wanted = str(value).lower()
        for record in self._records.get(obj, {}).values():
            current = record.get(field_name)
            if current is not None and str(current).lower() == wanted:
                return record
        return None

    def _record_view(self, obj: str, record: dict[str, Any], version: str,
                     names: list[str] | None = None) -> dict[str, Any]:
        view: dict[str, Any] = {
            "attributes": {"type": obj, "url": f"/services/data/v{version}/sobjects/{obj}/{record['Id']}"}
        }
        for name in names or list(record):
            view[name] = record.get(name)
        return view

    # ------------------------------------------------------------ login, meta
    def _versions(self, request: Request) -> Response:
        return Response(200, [
            {"label": label, "url": f"/services/data/v{version}", "version": version}
            for label, version in API_VERSIONS
        ])

    def _soap_login(self, request: Request) -> Response:
        try:
            root = ET.fromstring(request.body)
        except ET.ParseError:
            return self._soap_fault("INVALID_LOGIN", "Invalid request body")
        values = {el.tag.rsplit("}", 1)[-1]: (el.text or "") for el in root.iter()}
        username, secret = values.get("username", ""), values.get("password", "")
        with self._lock:
            known = self.users.get(username)
            if known is None or secret != known[0] + known[1]:
                return self._soap_fault(
                    "INVALID_LOGIN", "Invalid username, password, security token; or user locked out."
                )
            self.login_count += 1
        token = self.issue_token()
        host = request.header("host") or "localhost"
        version = request.params["version"]
        server = f"https://{host}/services/Soap/u/{version}/{ORG_ID[:15]}"
        xml = (
            '<?xml version="1.0" encoding="UTF-8"?>'
            '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
            'xmlns="urn:partner.soap.sforce.com" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
            "<soapenv:Body><loginResponse><result>"
            f"<metadataServerUrl>https://{host}/services/Soap/m/{version}/{ORG_ID[:15]}</metadataServerUrl>"
            "<passwordExpired>false</passwordExpired><sandbox>true</sandbox>"
            f"<serverUrl>{server}</serverUrl><sessionId>{escape(token)}</sessionId>"
            f"<userId>{USER_ID}</userId><userInfo><organizationId>{ORG_ID}</organizationId>"
            f"<userName>{escape(username)}</userName></userInfo>"
            "</result></loginResponse></soapenv:Body></soapenv:Envelope>"
        )
        return Response(200, raw=xml.encode(), content_type="text/xml; charset=utf-8")

    @staticmethod
    def _soap_fault(code: str, message: str) -> Response:
        xml = (
            '<?xml version="1.0" encoding="UTF-8"?>'
            '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
            'xmlns:sf="urn:fault.partner.soap.sforce.com" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
            f"<soapenv:Body><soapenv:Fault><faultcode>{code}</faultcode>"
            f"<faultstring>{code}: {escape(message)}</faultstring><detail>"
            '<sf:LoginFault xsi:type="sf:LoginFault">'
            f"<sf:exceptionCode>{code}</sf:exceptionCode>"
            f"<sf:exceptionMessage>{escape(message)}</sf:exceptionMessage>"
            "</sf:LoginFault></detail></soapenv:Fault></soapenv:Body></soapenv:Envelope>"
        )
        return Response(500, raw=xml.encode(), content_type="text/xml; charset=utf-8")

    def _limits(self, request: Request) -> Response:
        with self._lock:
            return Response(200, {"DailyApiRequests": {"Max": self.api_limit,
                                                       "Remaining": max(0, self.api_limit - self.api_used)}})

    def _global_describe(self, request: Request) -> Response:
        version = request.params["version"]
        return Response(200, {"encoding": "UTF-8", "maxBatchSize": COLLECTION_LIMIT, "sobjects": [
            {"name": obj, "label": obj, "keyPrefix": KEY_PREFIX.get(obj), "custom": False,
             "createable": True, "updateable": True, "queryable": True,
             "urls": {"sobject": f"/services/data/v{version}/sobjects/{obj}",
                      "describe": f"/services/data/v{version}/sobjects/{obj}/describe"}}
            for obj in self.schema
        ]})

    def _describe(self, request: Request) -> Response:
        obj, version = request.params["obj"], request.params["version"]
        with self._lock:
            fields = copy.deepcopy(list(self._fields(obj).values()))
        return Response(200, {
            "name": obj, "label": obj, "keyPrefix": KEY_PREFIX.get(obj), "custom": False,
            "createable": True, "updateable": True, "queryable": True, "fields": fields,
            "urls": {"sobject": f"/services/data/v{version}/sobjects/{obj}",
                     "describe": f"/services/data/v{version}/sobjects/{obj}/describe"},
        })

    def _get_record(self, request: Request) -> Response:
        obj = request.params["obj"]
        with self._lock:
            self._fields(obj)
            record = self._records[obj].get(request.params["record_id"])
            if record is None:
                return self._errors(404, "NOT_FOUND", "The requested resource does not exist")
            return Response(200, self._record_view(obj, record, request.params["version"]))

    def _update_record(self, request: Request) -> Response:
        """PATCH /sobjects/{obj}/{Id}: update one record by Id (204), as the REST API does."""
        obj, record_id = request.params["obj"], request.params["record_id"]
        body = request.json()
        if not isinstance(body, dict):
            raise _BadRequest(400, "JSON_PARSER_ERROR", "The request body must be a JSON object")
        with self._lock:
            fields = self._fields(obj)
            record = self._records[obj].get(record_id)
            if record is None:
                return self._errors(404, "NOT_FOUND", "The requested resource does not exist")
            self._check_columns(obj, list(body))
            for name, value in body.items():
                spec = fields.get(name)
                if spec is None or value in (None, ""):
                    continue
                if spec["type"] == "email" and not EMAIL_RE.match(str(value)):
                    return self._errors(400, "INVALID_EMAIL_ADDRESS", f"{spec['label']}: invalid email address: {value}")
                holder = self._lookup(obj, name, value) if spec["unique"] else None
                if holder is not None and holder["Id"] != record_id:
                    return self._errors(400, "DUPLICATE_VALUE", f"duplicate value found: {name} duplicates value "
                                                                f"on record with id: {holder['Id']}")
            record.update({name: value for name, value in body.items() if name != "attributes"})
            record["SystemModstamp"] = record["LastModifiedDate"] = _now()
        return Response(204, None)

    def _get_by_key(self, request: Request) -> Response:
        obj, key_field = request.params["obj"], request.params["key_field"]
        with self._lock:
            self._key_field(obj, key_field)
            record = self._lookup(obj, key_field, unquote(request.params["key"]))
            if record is None:
                return self._errors(404, "NOT_FOUND", "The requested resource does not exist")
            return Response(200, self._record_view(obj, record, request.params["version"]))

    # ------------------------------------------------------------------ upserts
    def _check_columns(self, obj: str, names: list[str]) -> None:
        fields = self._fields(obj)
        relationships = {f["relationshipName"] for f in fields.values() if f["relationshipName"]}
        for name in names:
            if name == "attributes" or name in fields or name in relationships:
                continue
            raise _BadRequest(400, "INVALID_FIELD", f"No such column '{name}' on sobject of type {obj}")

    def _plan(self, obj: str, key_field: str, key: Any, values: dict[str, Any],
              pending: dict[str, str]) -> _Change:
        """Validate one upsert and say what it would do; nothing is stored yet."""
        fields = self._fields(obj)
        if key in (None, ""):
            raise _Invalid("MISSING_ARGUMENT", f"{key_field} not specified", [key_field])
        key = str(key)
        values = dict(values)
        values.pop(key_field, None)
        values.pop("Id", None)
        # relationship references by external id, e.g. Who: {attributes: {type}, Ext__c: v}
        for spec in fields.values():
            rel = spec["relationshipName"]
            if rel and rel in values:
                values[spec["name"]] = self._resolve_reference(spec, values.pop(rel))
            elif spec["type"] == "reference" and values.get(spec["name"]):
                target = values[spec["name"]]
                if not any(target in self._records.get(t, {}) for t in spec["referenceTo"]):
                    raise _Invalid("INVALID_CROSS_REFERENCE_KEY",
                                   f"invalid cross reference id", [spec["name"]])
        lowered = key.lower()
        existing = self._lookup(obj, key_field, key)
        created = existing is None
        merged = {} if created else dict(existing)
        merged.update(values)
        merged[key_field] = key if created else existing[key_field]
        if _utf16_length(key) > fields[key_field]["length"]:
            raise _Invalid("STRING_TOO_LONG", f"{fields[key_field]['label']}: data value too large: {key[:40]}... "
                           f"(max length={fields[key_field]['length']})", [key_field])
        missing = [
            name for name, spec in fields.items()
            if not spec["nillable"] and spec["createable"] and not spec["defaultedOnCreate"]
            and (merged.get(name) in (None, "") and (created or name in values))
        ]
        if missing:
            raise _Invalid("REQUIRED_FIELD_MISSING", f"Required fields are missing: [{', '.join(missing)}]", missing)
        for name, value in values.items():
            spec = fields[name]
            if value in (None, ""):
                continue
            if spec["type"] == "email" and not EMAIL_RE.match(str(value)):
                raise _Invalid("INVALID_EMAIL_ADDRESS", f"{spec['label']}: invalid email address: {value}", [name])
            if (spec["type"] == "date" and not DATE_RE.match(str(value))) or (
                    spec["type"] == "datetime" and not DATETIME_RE.match(str(value))) or (
                    spec["type"] in ("double", "int", "currency") and not NUMBER_RE.match(str(value))):
                raise _Invalid("INVALID_TYPE_ON_FIELD_IN_RECORD",
                               f"{spec['label']}: value not of required type: {value}", [name])
            allowed = {v["value"] for v in spec.get("picklistValues") or [] if v.get("active")}
            if spec.get("restrictedPicklist") and allowed and str(value) not in allowed:
                raise _Invalid("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                               f"{spec['label']}: bad value for restricted picklist field: {value}", [name])
            if spec["length"] and isinstance(value, str) and _utf16_length(value) > spec["length"]:
                raise _Invalid("STRING_TOO_LONG", f"{spec['label']}: data value too large: {value[:40]} "
                               f"(max length={spec['length']})", [name])
        if lowered in {k.lower() for k in self.duplicate_keys}:
            other = f"{KEY_PREFIX.get(obj, '000')}{999999999999:012d}AAA"
            raise _Invalid("DUPLICATE_VALUE",
                           f"duplicate value found: Email duplicates value on record with id: {other}", [])
        for rejected, message in self.validation_failures.items():
            if rejected.lower() == lowered:
                raise _Invalid("FIELD_CUSTOM_VALIDATION_EXCEPTION", message, [])
        refused = settle_event_times(merged, values) if obj == "Event" else None
        if refused:
            raise _Invalid(*refused)
        if created:
            record_id = pending.get(lowered) or self._new_id(obj)
            pending[lowered] = record_id
        else:
            record_id = existing["Id"]
        return _Change(obj, record_id, created, merged, key_field, key)

    def _resolve_reference(self, spec: dict[str, Any], ref: Any) -> str:
        if not isinstance(ref, dict):
            raise _BadRequest(400, "JSON_PARSER_ERROR", f"Cannot deserialize {spec['relationshipName']}")
        target = (ref.get("attributes") or {}).get("type")
        if len(spec["referenceTo"]) > 1 and not target:
            raise _BadRequest(400, "INVALID_FIELD", f"Polymorphic field {spec['name']} needs attributes.type")
        target = target or spec["referenceTo"][0]
        pairs = [(k, v) for k, v in ref.items() if k != "attributes"]
        if target not in self.schema or len(pairs) != 1:
            raise _BadRequest(400, "INVALID_FIELD", f"Bad reference for {spec['relationshipName']}")
        ext, value = pairs[0]
        record = self._lookup(target, ext, value)
        if record is None:
            raise _Invalid("INVALID_FIELD",
                           f"Foreign key external ID: {value} not found for field {ext} in entity {target}", [])
        return record["Id"]

    def _new_id(self, obj: str) -> str:
        return f"{KEY_PREFIX.get(obj, 'a00')}{next(self._ids):012d}AAA"

    def _apply(self, change: _Change) -> None:
        now = _now()
        record = change.values
        record["Id"] = change.record_id
        record["SystemModstamp"] = record["LastModifiedDate"] = now
        record.setdefault("CreatedDate", now)
        if change.obj == "Lead":
            record.setdefault("Status", "Open - Not Contacted")
        if change.obj == "Task":
            record.setdefault("Status", "Not Started")
            record.setdefault("Priority", "Normal")
        if change.obj == "Event":
            record.setdefault("IsAllDayEvent", False)
            record.setdefault("ShowAs", "Busy")
        self._records[change.obj][change.record_id] = record
        self.upsert_counts[(change.obj, change.key.lower())] += 1

    def _upsert_single(self, request: Request) -> Response:
        obj, key_field = request.params["obj"], request.params["key_field"]
        key = unquote(request.params["key"])
        body = request.json()
        if not isinstance(body, dict):
            raise _BadRequest(400, "JSON_PARSER_ERROR", "The request body must be a JSON object")
        with self._lock:
            self._key_field(obj, key_field)
            self._check_columns(obj, list(body))
            try:
                change = self._plan(obj, key_field, key, body, {})
            except _Invalid as exc:
                return self._errors(400, exc.code, exc.message, exc.fields)
            self._apply(change)
        result = {"id": change.record_id, "success": True, "errors": [], "created": change.created}
        return Response(201 if change.created else 200, result)

    def _upsert_collection(self, request: Request) -> Response:
        obj, key_field = request.params["obj"], request.params["key_field"]
        body = request.json()
        if not isinstance(body, dict) or not isinstance(body.get("records"), list):
            raise _BadRequest(400, "JSON_PARSER_ERROR", "Expected {allOrNone, records: [...]}")
        records = body["records"]
        if len(records) > COLLECTION_LIMIT:
            raise _BadRequest(400, "EXCEEDED_ID_LIMIT",
                              f"record limit exceeded: at most {COLLECTION_LIMIT} records per request")
        with self._lock:
            self._key_field(obj, key_field)
            for record in records:
                if not isinstance(record, dict) or (record.get("attributes") or {}).get("type") != obj:
                    raise _BadRequest(400, "INVALID_TYPE",
                                      f"Each record needs attributes.type = {obj} for this request")
                self._check_columns(obj, list(record))
            keys = Counter(str(r.get(key_field, "")).lower() for r in records)
            pending: dict[str, str] = {}
            planned: list[_Change | _Invalid] = []
            for record in records:
                key = record.get(key_field)
                values = {k: v for k, v in record.items() if k != "attributes"}
                if key not in (None, "") and keys[str(key).lower()] > 1:
                    planned.append(_Invalid("DUPLICATE_EXTERNAL_ID",
                                            f"Duplicate external id specified: {key}", [key_field]))
                    continue
                try:
                    planned.append(self._plan(obj, key_field, key, values, pending))
                except _Invalid as exc:
                    planned.append(exc)
            failed = any(isinstance(p, _Invalid) for p in planned)
            results = []
            for item in planned:
                if isinstance(item, _Invalid):
                    results.append({"id": None, "success": False, "errors": [
                        {"statusCode": item.code, "message": item.message, "fields": item.fields}]})
                elif failed and body.get("allOrNone"):
                    results.append({"id": None, "success": False, "errors": [{
                        "statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
                        "message": "Record rolled back because not all records were valid and the "
                                   "request was using AllOrNone header", "fields": []}]})
                else:
                    self._apply(item)
                    results.append({"id": item.record_id, "success": True, "errors": [],
                                    "created": item.created})
        return Response(200, results)

    # -------------------------------------------------------------------- query
    _SOQL = re.compile(
        r"^\s*SELECT\s+(?P<fields>.+?)\s+FROM\s+(?P<obj>\w+)"
        r"(?:\s+WHERE\s+(?P<where>.+?))?(?:\s+LIMIT\s+(?P<limit>\d+))?\s*$",
        re.IGNORECASE | re.DOTALL,
    )
    _COND = re.compile(r"^\s*(\w+)\s*=\s*(?:'((?:[^'\\]|\\.)*)'|(null))\s*$", re.IGNORECASE)
    _IN = re.compile(r"^\s*(\w+)\s+IN\s*\((.*)\)\s*$", re.IGNORECASE | re.DOTALL)
    _LITERAL = re.compile(r"'((?:[^'\\]|\\.)*)'")

    def _query(self, request: Request) -> Response:
        """Enough SOQL for checks: SELECT a, b | COUNT() FROM Obj [WHERE f = 'v' | f IN ('v', ...) [AND ...]] [LIMIT n]."""
        match = self._SOQL.match(request.query.get("q", ""))
        if not match:
            raise _BadRequest(400, "MALFORMED_QUERY", "unexpected token in query")
        obj = match["obj"]
        with self._lock:
            fields = self._fields(obj)
            conditions = []
            for part in re.split(r"\s+AND\s+", match["where"] or "", flags=re.IGNORECASE) if match["where"] else []:
                listed = self._IN.match(part)
                if listed and listed[1] in fields:
                    values = {re.sub(r"\\(.)", r"\1", v).lower() for v in self._LITERAL.findall(listed[2])}
                    conditions.append((listed[1], frozenset(values)))
                    continue
                cond = self._COND.match(part)
                if not cond or cond[1] not in fields:
                    raise _BadRequest(400, "MALFORMED_QUERY", f"unsupported condition: {part.strip()}")
                value = None if cond[3] else cond[2].replace("\\'", "'")
                conditions.append((cond[1], value))
            rows = [
                r for r in self._records[obj].values()
                if all((r.get(f) is None if v is None else str(r.get(f) or "").lower() in v
                        if isinstance(v, frozenset) else str(r.get(f) or "").lower() == v.lower())
                       for f, v in conditions)
            ]
            if match["limit"]:
                rows = rows[: int(match["limit"])]
            if match["fields"].strip().upper() == "COUNT()":
                return Response(200, {"totalSize": len(rows), "done": True, "records": []})
            names = [n.strip() for n in match["fields"].split(",")]
            unknown = [n for n in names if n not in fields]
            if unknown:
                raise _BadRequest(400, "INVALID_FIELD", f"No such column '{unknown[0]}' on entity '{obj}'")
            version = request.params["version"]
            records = [self._record_view(obj, r, version, names) for r in rows]
        return Response(200, {"totalSize": len(records), "done": True, "records": records})

    # ----------------------------------------------------------------- bulk 2.0
    def _job(self, job_id: str) -> _Job:
        job = self._jobs.get(job_id)
        if job is None:
            raise _BadRequest(404, "NOT_FOUND", f"Job not found: {job_id}")
        return job

    def _create_job(self, request: Request) -> Response:
        spec = request.json() or {}
        obj, operation = spec.get("object"), spec.get("operation")
        if operation not in ("insert", "upsert", "update", "delete", "hardDelete"):
            raise _BadRequest(400, "INVALIDJOB", f"InvalidJob : Invalid operation: {operation}")
        with self._lock:
            self._fields(obj)
            if operation == "upsert":
                self._key_field(obj, spec.get("externalIdFieldName") or "")
            version = request.params["version"]
            job_id = f"750{next(self._ids):012d}AAA"
            now = _now()
            info = {
                "id": job_id, "operation": operation, "object": obj, "createdById": USER_ID,
                "createdDate": now, "systemModstamp": now, "state": "Open",
                "externalIdFieldName": spec.get("externalIdFieldName"),
                "concurrencyMode": "Parallel", "contentType": spec.get("contentType", "CSV"),
                "apiVersion": float(version), "jobType": "V2Ingest",
                "contentUrl": f"services/data/v{version}/jobs/ingest/{job_id}/batches",
                "lineEnding": spec.get("lineEnding", "LF"),
                "columnDelimiter": spec.get("columnDelimiter", "COMMA"),
                "numberRecordsProcessed": 0, "numberRecordsFailed": 0, "retries": 0,
                "totalProcessingTime": 0, "apiActiveProcessingTime": 0, "apexProcessingTime": 0,
            }
            job = _Job(info)
            if self.fail_next_bulk_jobs > 0:
                self.fail_next_bulk_jobs -= 1
                job.fail = True
            self._jobs[job_id] = job
            return Response(200, dict(info))

    def _list_jobs(self, request: Request) -> Response:
        return Response(200, {"done": True, "records": self.jobs, "nextRecordsUrl": None})

    def _upload_job_data(self, request: Request) -> Response:
        with self._lock:
            job = self._job(request.params["job_id"])
            if job.info["state"] != "Open":
                raise _BadRequest(409, "INVALIDJOBSTATE", f"Job state {job.info['state']}: no more data accepted")
            job.data.append(request.body.decode("utf-8"))
        return Response(201, raw=b"")

    def _set_job_state(self, request: Request) -> Response:
        state = (request.json() or {}).get("state")
        with self._lock:
            job = self._job(request.params["job_id"])
            current = job.info["state"]
            if state == "UploadComplete" and current == "Open":
                job.info["state"] = "UploadComplete"
                self._process(job)
            elif state == "Aborted" and current in ("Open", "UploadComplete", "InProgress"):
                job.info["state"] = "Aborted"
            else:
                raise _BadRequest(400, "INVALIDJOBSTATE", f"Cannot move job from {current} to {state}")
            job.info["systemModstamp"] = _now()
            return Response(200, dict(job.info))

    def _job_info(self, request: Request) -> Response:
        with self._lock:
            job = self._job(request.params["job_id"])
            if job.info["state"] in ("UploadComplete", "InProgress"):
                job.polls += 1
                if job.polls > self.bulk_polls_to_complete:
                    job.info["state"] = "Failed" if job.fail else "JobComplete"
                    if job.fail:
                        job.info["errorMessage"] = "InternalServerError : the job failed (sandbox fault)"
                    job.info["numberRecordsProcessed"] = len(job.successful) + len(job.failed)
                    job.info["numberRecordsFailed"] = len(job.failed)
                else:
                    job.info["state"] = "InProgress"
            return Response(200, dict(job.info))

    def _delete_job(self, request: Request) -> Response:
        with self._lock:
            self._job(request.params["job_id"])
            del self._jobs[request.params["job_id"]]
        return Response(204)

    def _process(self, job: _Job) -> None:
        """Run the whole job at UploadComplete; polls reveal the outcome later."""
        delimiter = CSV_DELIMITERS.get(job.info["columnDelimiter"], ",")
        rows: list[list[str]] = []
        for chunk in job.data:
            reader = csv.reader(io.StringIO(chunk), delimiter=delimiter)
            header = next(reader, [])
            job.header = job.header or header
            rows.extend(row for row in reader if row)
        obj, key_field = job.info["object"], job.info["externalIdFieldName"]
        if job.fail:
            job.unprocessed = rows
            return
        try:
            self._check_columns(obj, job.header)
        except _BadRequest as exc:
            job.fail = True
            job.unprocessed = rows
            job.info["errorMessage"] = f"InvalidBatch : {exc.message}"
            return
        for row in rows:
            values = {}
            for name, raw in zip(job.header, row):
                if raw == "":
                    continue  # blank cell: leave the field as it is
                values[name] = None if raw == "#N/A" else raw
            try:
                if job.info["operation"] != "upsert":
                    raise _Invalid("INVALID_OPERATION", f"{job.info['operation']} is not emulated", [])
                change = self._plan(obj, key_field, values.get(key_field), values, {})
            except _Invalid as exc:
                job.failed.append(["", f"{exc.code}:{exc.message}:{','.join(exc.fields)} --", *row])
                continue
            self._apply(change)
            job.successful.append([change.record_id, "true" if change.created else "false", *row])

    def _job_results(self, request: Request, kind: str) -> Response:
        with self._lock:
            job = self._job(request.params["job_id"])
            if kind == "successful":
                header, rows = ["sf__Id", "sf__Created", *job.header], job.successful
            elif kind == "failed":
                header, rows = ["sf__Id", "sf__Error", *job.header], job.failed
            else:
                header, rows = list(job.header), job.unprocessed
            buffer = io.StringIO()
            writer = csv.writer(buffer, quoting=csv.QUOTE_ALL, lineterminator="\n")
            writer.writerow(header)
            writer.writerows(rows)
        return Response(200, raw=buffer.getvalue().encode("utf-8"), content_type="text/csv; charset=UTF-8")


def serve(app: SalesforceApp | None = None, port: int = 0) -> ServerThread:
    """Start `app` (a fresh SalesforceApp by default) over TLS on localhost; returns the running server."""
    thread = ServerThread(app or SalesforceApp(), port=port, ssl_context=tls.server_context())
    # Headers and body leave in two writes; without TCP_NODELAY (inherited by
    # accepted sockets on Linux) Nagle + delayed ACK add ~40 ms per response.
    thread.server.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    default_handle_error = thread.server.handle_error

    def handle_error(request: Any, client_address: Any) -> None:
        # A client that does not trust the sandbox CA aborts the handshake: that is
        # the client's error to report, not a server traceback on stderr.
        if isinstance(sys.exc_info()[1], (ssl.SSLError, ConnectionError)):
            return
        default_handle_error(request, client_address)

    thread.server.handle_error = handle_error  # type: ignore[method-assign]
    return thread.start()


def main() -> None:  # pragma: no cover - manual demo entry point
    import argparse
    import time

    parser = argparse.ArgumentParser(description="Run the Salesforce emulator over TLS")
    parser.add_argument("--port", type=int, default=8443)
    args = parser.parse_args()
    app = SalesforceApp(users={"demo@example.com": ("demo-password", "demo-token")})
    server = serve(app, port=args.port)
    print(f"SALESFORCE_INSTANCE_URL={server.url}")
    print(f"SALESFORCE_ACCESS_TOKEN={app.access_token}")
    print(f"SALESFORCE_DOMAIN={server.url}  (login: demo@example.com / demo-password / demo-token)")
    print(f"REQUESTS_CA_BUNDLE={tls.ca_path()}")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":  # pragma: no cover
    main()
