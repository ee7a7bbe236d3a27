"""Salesforce sink: persons upserted as Leads or Contacts by an external id.

Everything goes through simple-salesforce (no hand-written HTTP):

- daily volumes: sObject Collections upsert, `PATCH composite/sobjects/{Obj}/{ExtId}`
  with at most 200 records a request, `allOrNone: false`, one result per record;
- loads above `bulk_threshold` records (2,000 by default, where Salesforce
  advises switching to Bulk): Bulk API 2.0 upsert jobs of at most
  `bulk_job_size` records, whose successful/failed/unprocessed result CSVs are
  read back and matched to persons by the external id column.

The external id value is the person key (`email:...` / `phone:+...`), so every
write is an idempotent upsert: reruns update, never duplicate, and a retry
after a dropped connection is safe.

Errors, by what the caller should do:
- a record Salesforce rejects (REQUIRED_FIELD_MISSING, INVALID_EMAIL_ADDRESS,
  DUPLICATE_VALUE, FIELD_CUSTOM_VALIDATION_EXCEPTION, ...) is a
  `SyncOutcome(ok=False, error_code=...)` for that person only;
- REQUEST_LIMIT_EXCEEDED raises `QuotaExhausted`; INVALID_SESSION_ID raises
  `AuthError` at once (no re-login loop); 5xx and dropped connections are
  retried with backoff (bounded), then `RetriesExhausted`. Any of these raised
  from `upsert()` carries `.outcomes` (what was finished before it, to record)
  and `.pending_keys` (what was not done) so the engine keeps progress and
  stops cleanly.

Configuration comes in as `SalesforceSettings`; nothing here reads the
environment. The Dagster resource maps the contract variables:

| env var                     | setting          |
|-----------------------------|------------------|
| SALESFORCE_INSTANCE_URL     | instance_url     |
| SALESFORCE_ACCESS_TOKEN     | access_token     |
| SALESFORCE_USERNAME         | username         |
| SALESFORCE_PASSWORD         | password         |
| SALESFORCE_SECURITY_TOKEN   | security_token   |
| SALESFORCE_DOMAIN           | domain           |
| SALESFORCE_OBJECT           | object_name      |

(`settings_from_env(mapping)` does exactly that from a mapping it is given.)
Instance URL + access token wins when both are set; otherwise username,
password and security token log in through Salesforce's SOAP login at
`https://{domain}.salesforce.com` (`login`, `test` for sandboxes, or a My
Domain such as `acme.my`). `domain` may also be a full `https://host:port`
login URL: simple-salesforce's `domain` can only name a `*.salesforce.com`
host, so a full URL is passed to `SalesforceLogin(scratch_url=...)`, which
is how the local emulator is reached. TLS is always verified: a private CA
comes through `ca_bundle` (pinned on the session, so a machine-wide
REQUESTS_CA_BUNDLE cannot override it) or through REQUESTS_CA_BUNDLE.
"""

from __future__ import annotations

import csv
import io
import logging
import re
import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterator, Mapping, Sequence, TypeVar

import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import (
    SalesforceAuthenticationFailed,
    SalesforceBulkV2LoadError,
    SalesforceError,
    SalesforceExpiredSession,
    SalesforceOperationError,
    SalesforceMalformedRequest,
    SalesforceRefusedRequest,
    SalesforceResourceNotFound,
)
from simple_salesforce.login import SalesforceLogin

from connectors.errors import (
    AuthError,
    ConfigError,
    ConnectorError,
    PayloadError,
    QuotaExhausted,
    RequestError,
    RetriesExhausted,
    TransientError,
)
from connectors.retry import is_tls_verification_error, retry_delay
from connectors.salesforce_mapping import (
    DEFAULT_EXTERNAL_ID_FIELD,
    DEFAULT_TASK_EXTERNAL_ID_FIELD,
    ROLLUP_FIELDS,
    SUPPORTED_OBJECTS,
    TASK_FIELDS,
    FieldMapping,
    conversation_task,
    external_id_problem,
    task_properties,
)
from connectors.sink import SyncOutcome

__all__ = [
    "SERVICE",
    "RetryPolicy",
    "SalesforceSettings",
    "SalesforceSink",
    "connect",
    "settings_from_env",
]

log = logging.getLogger(__name__)

SERVICE = "salesforce"
DEFAULT_API_VERSION = "59.0"
COLLECTION_LIMIT = 200  # sObject Collections: at most 200 records per request
DEFAULT_BULK_THRESHOLD = 2000  # Salesforce advises Bulk API above about 2,000 records
DEFAULT_BULK_JOB_SIZE = 10_000
TIMEOUT_S = (10.0, 120.0)  # (connect, read)
_API_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_ERROR_CODE = re.compile(r"^[A-Z][A-Z0-9_]+$")

T = TypeVar("T")


# --------------------------------------------------------------------- settings
@dataclass(frozen=True)
class SalesforceSettings:
    """How to reach one org. Secrets are kept out of repr()."""

    instance_url: str | None = None
    access_token: str | None = field(default=None, repr=False)
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    security_token: str | None = field(default=None, repr=False)
    domain: str = "login"
    object_name: str = "Lead"
    api_version: str = DEFAULT_API_VERSION
    ca_bundle: str | None = None
    timeout_s: tuple[float, float] = TIMEOUT_S

    @property
    def auth_mode(self) -> str:
        """'token' (instance URL + access token) or 'password'; ConfigError when neither is complete."""
        if self.instance_url and self.access_token:
            return "token"
        if self.username and self.password:
            return "password"
        if self.instance_url or self.access_token:
            missing = "SALESFORCE_ACCESS_TOKEN" if self.instance_url else "SALESFORCE_INSTANCE_URL"
            raise ConfigError(SERVICE, f"{missing} is not set (token login needs both the instance URL and the token)")
        if self.username or self.password:
            missing = "SALESFORCE_PASSWORD" if self.username else "SALESFORCE_USERNAME"
            raise ConfigError(SERVICE, f"{missing} is not set (password login needs username, password, security token)")
        raise ConfigError(
            SERVICE,
            "no credentials: set SALESFORCE_INSTANCE_URL + SALESFORCE_ACCESS_TOKEN, or SALESFORCE_USERNAME + "
            "SALESFORCE_PASSWORD + SALESFORCE_SECURITY_TOKEN (+ SALESFORCE_DOMAIN=test for a sandbox org)",
        )

    def validate(self) -> None:
        mode = self.auth_mode
        if mode == "token" and not str(self.instance_url).startswith("https://"):
            raise ConfigError(SERVICE, "SALESFORCE_INSTANCE_URL must be an https:// URL")
        if mode == "password" and "://" in self.domain and not self.domain.startswith("https://"):
            raise ConfigError(SERVICE, "SALESFORCE_DOMAIN must be a name like 'login'/'test' or an https:// URL")
        if self.object_name not in SUPPORTED_OBJECTS:
            raise ConfigError(SERVICE, f"SALESFORCE_OBJECT must be one of {', '.join(SUPPORTED_OBJECTS)}, "
                                       f"not {self.object_name!r}")
        if self.api_version.startswith("v"):
            raise ConfigError(SERVICE, "api_version is a number like '59.0', without the 'v'")


def settings_from_env(env: Mapping[str, str], **overrides: Any) -> SalesforceSettings:
    """Build settings from a mapping shaped like os.environ (the caller passes it in)."""

    def get(name: str) -> str | None:
        value = env.get(name)
        return value if value not in (None, "") else None

    values: dict[str, Any] = {
        "instance_url": get("SALESFORCE_INSTANCE_URL"),
        "access_token": get("SALESFORCE_ACCESS_TOKEN"),
        "username": get("SALESFORCE_USERNAME"),
        "password": get("SALESFORCE_PASSWORD"),
        "security_token": env.get("SALESFORCE_SECURITY_TOKEN"),  # "" is valid for trusted IP ranges
        "domain": get("SALESFORCE_DOMAIN") or "login",
        "object_name": get("SALESFORCE_OBJECT") or "Lead",
    }
    values.update(overrides)
    return SalesforceSettings(**values)


class _Session(requests.Session):
    """A requests Session with default timeouts and, optionally, a pinned CA bundle.

    requests lets REQUESTS_CA_BUNDLE override `session.verify`; when a CA
    bundle is configured explicitly it is kept instead (verification stays on
    either way), while proxies and the rest still come from the environment.
    """

    def __init__(self, timeout: tuple[float, float], ca_bundle: str | None) -> None:
        super().__init__()
        self._timeout = timeout
        self._pinned = ca_bundle is not None
        if ca_bundle is not None:
            self.verify = ca_bundle

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        kwargs.setdefault("timeout", self._timeout)
        return super().request(method, url, *args, **kwargs)

    def merge_environment_settings(self, url, proxies, stream, verify, cert):  # type: ignore[no-untyped-def]
        merged = super().merge_environment_settings(url, proxies, stream, verify, cert)
        if self._pinned and verify in (None, True):
            merged["verify"] = self.verify
        return merged


def connect(settings: SalesforceSettings) -> Salesforce:
    """Log in (or wrap a token) and return a simple-salesforce client. Reads no environment."""
    settings.validate()
    if settings.ca_bundle is not None:
        try:
            open(settings.ca_bundle, "rb").close()
        except OSError:
            raise ConfigError(SERVICE, f"CA bundle not readable: {settings.ca_bundle}") from None
    session = _Session(settings.timeout_s, settings.ca_bundle)
    if settings.auth_mode == "token":
        return Salesforce(
            instance_url=settings.instance_url,
            session_id=settings.access_token,
            version=settings.api_version,
            session=session,
        )
    login_url = settings.domain.rstrip("/") if settings.domain.startswith("https://") else None
    session_id, instance = _call_with_retries(
        RetryPolicy(),
        "login",
        lambda: SalesforceLogin(
            username=settings.username,
            password=settings.password,
            security_token=settings.security_token or "",
            domain=None if login_url else settings.domain.removesuffix(".salesforce.com"),
            scratch_url=login_url,
            sf_version=settings.api_version,
            session=session,
        ),
    )
    return Salesforce(instance=instance, session_id=session_id, version=settings.api_version, session=session)


# ----------------------------------------------------------------------- errors
@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries with capped exponential backoff and jitter, for transient failures only."""

    attempts: int = 4
    base_s: float = 0.5
    cap_s: float = 8.0
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False, compare=False)

    def delay(self, attempt: int) -> float:
        """Full-jitter exponential backoff (connectors.retry); Salesforce sends no Retry-After."""
        if self.base_s <= 0:
            return 0.0
        return retry_delay(attempt, base=self.base_s, cap=self.cap_s)


def _first_error(content: Any) -> tuple[str, str]:
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


def translate(exc: BaseException, what: str) -> ConnectorError | None:
    """The ConnectorError a simple-salesforce/requests failure stands for, or None if unknown."""
    if isinstance(exc, ConnectorError):
        return exc
    if isinstance(exc, SalesforceAuthenticationFailed):
        return AuthError(SERVICE, 401, f"{what}: login refused ({exc.code}: {exc.auth_message})")
    if isinstance(exc, SalesforceExpiredSession):
        code, message = _first_error(exc.content)
        return AuthError(SERVICE, 401, f"{what}: {code}: {message or 'session expired or invalid'}; "
                                       "get a new access token (or check the login) and rerun")
    if isinstance(exc, SalesforceRefusedRequest):
        code, message = _first_error(exc.content)
        if code == "REQUEST_LIMIT_EXCEEDED":
            return QuotaExhausted(SERVICE, f"{what}: REQUEST_LIMIT_EXCEEDED: {message}; "
                                           "the org's API allocation is spent, resume later")
        return AuthError(SERVICE, 403, f"{what}: {code}: {message}")
    if isinstance(exc, SalesforceError):
        code, message = _first_error(exc.content)
        if exc.status >= 500 or exc.status == 429:
            return TransientError(SERVICE, f"{what}: HTTP {exc.status} {code}: {message}")
        return RequestError(SERVICE, exc.status, f"{what}: {code}: {message}")
    if isinstance(exc, requests.exceptions.SSLError):
        if is_tls_verification_error(exc) or "certificate verify failed" in str(exc):
            return ConfigError(SERVICE, f"{what}: the server's TLS certificate is not trusted; "
                                        "give its CA through ca_bundle or REQUESTS_CA_BUNDLE")
        return TransientError(SERVICE, f"{what}: TLS error: {type(exc).__name__}")
    if isinstance(exc, (requests.exceptions.ConnectionError, requests.exceptions.Timeout,
                        requests.exceptions.ChunkedEncodingError)):
        return TransientError(SERVICE, f"{what}: connection failed: {type(exc).__name__}")
    if isinstance(exc, requests.exceptions.JSONDecodeError):
        return PayloadError(SERVICE, f"{what}: answer was not JSON")
    if isinstance(exc, SalesforceBulkV2LoadError):
        return RequestError(SERVICE, 400, f"{what}: {exc}")
    return None


def _call_with_retries(policy: RetryPolicy, what: str, fn: Callable[[], T]) -> T:
    attempt = 0
    while True:
        attempt += 1
        try:
            return fn()
        except Exception as exc:  # noqa: BLE001 - translated or re-raised below
            error = translate(exc, what)
            if error is None:
                raise
            if not error.retriable:
                raise error from exc
            if attempt >= policy.attempts:
                raise RetriesExhausted(SERVICE, f"{what}: gave up after {attempt} attempts; last: {error}") from exc
            log.warning("salesforce: %s failed (%s); retry %d of %d", what, error, attempt, policy.attempts - 1)
            policy.sleep(policy.delay(attempt))


def _chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# Record-level codes where sending the same data again can succeed; every other
# code (validation, duplicates, bad values) is permanent until the data changes.
RETRYABLE_RECORD_CODES = frozenset({
    "UNABLE_TO_LOCK_ROW", "ALL_OR_NONE_OPERATION_ROLLED_BACK", "UNPROCESSED", "BULK_JOB_FAILED",
    "NO_RESULT", "SERVER_UNAVAILABLE", "UNKNOWN_EXCEPTION", "REQUEST_RUNNING_TOO_LONG",
    "INVALID_FIELD",  # e.g. a Task whose Lead/Contact does not exist yet
})


# A record that is no longer there: a moved person is upserted instead.
GONE_CODES = frozenset({"NOT_FOUND", "ENTITY_IS_DELETED"})


def _failure(key: str, code: str, message: str) -> SyncOutcome:
    return SyncOutcome(key=key, ok=False, error=message or code, error_code=code,
                       permanent=code not in RETRYABLE_RECORD_CODES)


def _outcome_from_result(key: str, result: Mapping[str, Any]) -> SyncOutcome:
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
    return _failure(key, codes[0], "; ".join(m for m in messages if m) or codes[0])


def _parse_bulk_error(raw: str) -> tuple[str, str]:
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


# ------------------------------------------------------------------------- sink
class SalesforceSink:
    """Upserts persons into Lead or Contact by an external id field (see module docs).

    `sf` is a ready `Salesforce` client or `SalesforceSettings` (connected on
    first use). `bulk_threshold`: more records than this in one `upsert()`
    call go through Bulk API 2.0 instead of sObject Collections (default
    2,000, Salesforce's own advice). `bulk_poll_interval_s` is the first wait
    of simple-salesforce's job polling (it backs off from there up to 2 s).
    `min_api_remaining`: stop with QuotaExhausted once fewer daily API calls
    than this remain (per `Sforce-Limit-Info`), leaving headroom for other
    integrations. `dry_run`: describe and map, write nothing; every person
    gets `SyncOutcome(ok=True, error_code="DRY_RUN")` with no CRM id.
    """

    target = "salesforce"

    def __init__(
        self,
        sf: Salesforce | SalesforceSettings,
        *,
        object_name: str | None = None,
        external_id_field: str = DEFAULT_EXTERNAL_ID_FIELD,
        placeholders: Mapping[str, str] | None = None,
        sources_field: str | None = None,
        bulk_threshold: int = DEFAULT_BULK_THRESHOLD,
        bulk_job_size: int = DEFAULT_BULK_JOB_SIZE,
        bulk_poll_interval_s: float = 5.0,
        collection_size: int = COLLECTION_LIMIT,
        activities: bool = False,
        task_external_id_field: str = DEFAULT_TASK_EXTERNAL_ID_FIELD,
        retry: RetryPolicy = RetryPolicy(),
        min_api_remaining: int = 0,
        dry_run: bool = False,
    ) -> None:
        if isinstance(sf, SalesforceSettings):
            sf.validate()
            self._settings: SalesforceSettings | None = sf
            self._sf: Salesforce | None = None
            object_name = object_name or sf.object_name
        else:
            self._settings = None
            self._sf = sf
        object_name = object_name or "Lead"
        if object_name not in SUPPORTED_OBJECTS:
            raise ConfigError(SERVICE, f"object_name must be one of {', '.join(SUPPORTED_OBJECTS)}, not {object_name!r}")
        for name in (external_id_field, task_external_id_field, sources_field):
            if name is not None and not _API_NAME.match(name):
                raise ConfigError(SERVICE, f"not a Salesforce field API name: {name!r}")
        if not 1 <= collection_size <= COLLECTION_LIMIT:
            raise ConfigError(SERVICE, f"collection_size must be 1..{COLLECTION_LIMIT}")
        if bulk_threshold < 0 or bulk_job_size < 1:
            raise ConfigError(SERVICE, "bulk_threshold must be >= 0 and bulk_job_size >= 1")
        self.object_name = object_name
        self.external_id_field = external_id_field
        self.mapping = FieldMapping(object_name, external_id_field, dict(placeholders or {}), sources_field)
        self.bulk_threshold = bulk_threshold
        self.bulk_job_size = bulk_job_size
        self.bulk_poll_interval_s = bulk_poll_interval_s
        self.collection_size = collection_size
        self.activities = activities
        self.task_external_id_field = task_external_id_field
        self.retry = retry
        self.min_api_remaining = min_api_remaining
        self.dry_run = dry_run
        self._prepared = False
        self._describes: dict[str, dict[str, Any]] = {}
        self._on_batch: Callable[[list[SyncOutcome]], None] | None = None
        self._emitted = 0

    def __repr__(self) -> str:
        return (f"SalesforceSink(object_name={self.object_name!r}, external_id_field={self.external_id_field!r}, "
                f"dry_run={self.dry_run})")

    # ------------------------------------------------------------ plumbing
    @property
    def sf(self) -> Salesforce:
        if self._sf is None:
            assert self._settings is not None
            self._sf = connect(self._settings)
        return self._sf

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        return _call_with_retries(self.retry, what, fn)

    @property
    def api_usage(self) -> tuple[int, int] | None:
        """(used, total) daily API calls as last reported by Salesforce, if known."""
        usage = getattr(self._sf, "api_usage", None) or {}
        value = usage.get("api-usage")
        return (value.used, value.total) if value else None

    def _check_headroom(self) -> None:
        usage = self.api_usage
        if self.min_api_remaining and usage and usage[1] - usage[0] < self.min_api_remaining:
            raise QuotaExhausted(SERVICE, f"only {usage[1] - usage[0]} daily API calls left "
                                          f"(min_api_remaining={self.min_api_remaining}); resume later")

    # ------------------------------------------------------------- prepare
    def prepare(self) -> None:
        """Describe the object(s) and fail with ONE ConfigError naming every field to fix. Writes nothing.

        The optional roll-up fields (salesforce_mapping.ROLLUP_FIELDS) the
        object has are written from now on; the missing ones are not asked for.
        """
        problems = self._field_problems(self.object_name, self.mapping.fields_needed(), self.external_id_field,
                                        "Agent Contact Id")
        fields = self._describe(self.object_name)
        present = tuple(name for name in ROLLUP_FIELDS.values()
                        if fields.get(name, {}).get("createable") and fields.get(name, {}).get("updateable"))
        self.mapping = replace(self.mapping, rollup_fields=present)
        if self.activities:
            problems += self._field_problems("Task", TASK_FIELDS + (self.task_external_id_field,),
                                             self.task_external_id_field, "Agent Conversation Id")
        if problems:
            raise ConfigError(
                SERVICE,
                "the org is not set up for the sync (nothing was written); fix in Setup and rerun:\n  - "
                + "\n  - ".join(problems),
            )
        self._prepared = True
        log.info("salesforce: %s ready, upsert key %s, conversation roll-up fields: %s", self.object_name,
                 self.external_id_field, ", ".join(present) or "none")

    def _describe(self, obj: str) -> dict[str, Any]:
        """The object's fields by name (one describe call per object and sink)."""
        if obj not in self._describes:
            describe = self._call(f"describe {obj}", lambda: getattr(self.sf, obj).describe())
            self._describes[obj] = {f.get("name"): f for f in (describe or {}).get("fields", [])}
        return self._describes[obj]

    def _field_problems(self, obj: str, needed: Sequence[str], key_field: str, label: str) -> list[str]:
        fields = self._describe(obj)
        where = f"Setup → Object Manager → {obj} → Fields & Relationships"
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

    # -------------------------------------------------------------- upsert
    def properties(self, person: Mapping[str, Any]) -> dict[str, Any]:
        return self.mapping.properties(person)

    def upsert(
        self,
        persons: Sequence[Mapping[str, Any]],
        on_batch: Callable[[list[SyncOutcome]], None] | None = None,
    ) -> list[SyncOutcome]:
        """Upsert persons; one outcome per distinct person_key (a later duplicate wins).

        `on_batch` hears the outcomes of each collection or bulk job as soon
        as Salesforce answers, so a run killed mid-way has recorded them.
        """
        self._on_batch, self._emitted = on_batch, 0
        outcomes: list[SyncOutcome] = []
        items: dict[str, dict[str, Any]] = {}
        for person in persons:
            key = person.get("person_key")
            problem = external_id_problem(key)
            if problem:
                outcomes.append(_failure(str(key), "INVALID_EXTERNAL_ID", problem))
                continue
            items.pop(key, None)
            items[key] = self.properties(person)
        try:
            if not self._prepared:
                self.prepare()
            if self.dry_run:
                outcomes += [SyncOutcome(key=k, ok=True, error_code="DRY_RUN") for k in items]
                return outcomes
            records = list(items.items())
            if len(records) > self.bulk_threshold:
                self._upsert_bulk(records, outcomes)
            else:
                self._upsert_collections(self.object_name, self.external_id_field, records, outcomes)
            self._flush(outcomes)
        except ConnectorError as exc:
            done = {o.key for o in outcomes}
            exc.outcomes = list(outcomes)  # type: ignore[attr-defined]
            exc.pending_keys = [k for k in items if k not in done]  # type: ignore[attr-defined]
            raise
        ok = sum(o.ok for o in outcomes)
        log.info("salesforce: upserted %d %s (%d created, %d failed)", ok, self.object_name,
                 sum(o.created for o in outcomes), len(outcomes) - ok)
        return outcomes

    def move(
        self,
        persons: Sequence[tuple[Mapping[str, Any], str]],
        on_batch: Callable[[list[SyncOutcome]], None] | None = None,
    ) -> list[SyncOutcome]:
        """Update re-keyed persons by record Id, their external id set to the new key.

        One PATCH per record: a re-key is rare (a phone-only customer who
        later gives an email), so this path stays simple. A record deleted in
        Salesforce meanwhile is upserted instead.
        """
        if not self._prepared:
            self.prepare()
        outcomes: list[SyncOutcome] = []
        gone: list[Mapping[str, Any]] = []
        for person, record_id in persons:
            key = str(person["person_key"])
            if self.dry_run:
                outcomes.append(SyncOutcome(key=key, ok=True, crm_id=record_id, error_code="DRY_RUN"))
                continue
            error = self._call(f"update {self.object_name} {record_id}",
                               lambda: self._update_by_id(record_id, self.properties(person)))
            if error is not None and error[0] in GONE_CODES:
                gone.append(person)
                continue
            outcome = SyncOutcome(key=key, ok=True, crm_id=record_id) if error is None else _failure(key, *error)
            outcomes.append(outcome)
            if on_batch:
                on_batch([outcome])
        if gone:
            log.info("salesforce: %d moved %s record(s) no longer exist; upserting them instead",
                     len(gone), self.object_name)
            outcomes += self.upsert(gone, on_batch)
        return outcomes

    def _update_by_id(self, record_id: str, fields: Mapping[str, Any]) -> tuple[str, str] | None:
        """None when updated; else the record-level (errorCode, message)."""
        try:
            getattr(self.sf, self.object_name).update(record_id, dict(fields))
        except SalesforceResourceNotFound:
            return "NOT_FOUND", f"{self.object_name} {record_id} does not exist"
        except SalesforceMalformedRequest as exc:
            return _first_error(exc.content)
        return None

    def _upsert_collections(self, obj: str, key_field: str, records: Sequence[tuple[str, dict[str, Any]]],
                            outcomes: list[SyncOutcome]) -> None:
        path = f"composite/sobjects/{obj}/{key_field}"
        for chunk in _chunks(records, self.collection_size):
            body = {"allOrNone": False, "records": [{"attributes": {"type": obj}, **fields} for _, fields in chunk]}
            results = self._call(f"upsert {len(chunk)} {obj}",
                                 lambda: self.sf.restful(path, method="PATCH", json=body))
            if not isinstance(results, list) or len(results) != len(chunk):
                raise PayloadError(SERVICE, f"upsert {obj}: expected {len(chunk)} results, got "
                                            f"{len(results) if isinstance(results, list) else type(results).__name__}")
            outcomes += [_outcome_from_result(key, result) for (key, _), result in zip(chunk, results)]
            self._flush(outcomes)
            self._check_headroom()

    def _upsert_bulk(self, records: Sequence[tuple[str, dict[str, Any]]], outcomes: list[SyncOutcome]) -> None:
        obj, key_field = self.object_name, self.external_id_field
        for chunk in _chunks(records, self.bulk_job_size):
            rows = [{name: str(value) for name, value in fields.items()} for _, fields in chunk]
            bulk = getattr(self.sf.bulk2, obj)
            try:
                jobs = self._call(
                    f"bulk upsert {len(rows)} {obj}",
                    lambda: bulk.upsert(records=rows, external_id_field=key_field, wait=self.bulk_poll_interval_s),
                )
            except SalesforceOperationError as exc:  # the job ended Failed or Aborted
                message = str(exc)[:500]
                outcomes += [_failure(key, "BULK_JOB_FAILED", message) for key, _ in chunk]
                log.warning("salesforce: bulk job for %d %s failed: %s", len(chunk), obj, message)
                self._flush(outcomes)
                continue
            found: dict[str, SyncOutcome] = {}
            for job in jobs:
                found.update(self._bulk_results(bulk, job["job_id"], key_field))
            for key, _ in chunk:
                outcome = found.get(key) or found.get(key.lower())
                outcomes.append(outcome if outcome else _failure(key, "NO_RESULT",
                                                                 "the bulk job reported nothing for this record"))
            self._flush(outcomes)
            self._check_headroom()

    def _flush(self, outcomes: list[SyncOutcome]) -> None:
        """Hand the outcomes not yet reported to the upsert's `on_batch`."""
        if self._on_batch and len(outcomes) > self._emitted:
            self._on_batch(outcomes[self._emitted:])
            self._emitted = len(outcomes)

    def _bulk_results(self, bulk: Any, job_id: str, key_field: str) -> dict[str, SyncOutcome]:
        """Outcomes by external id from a finished job's three result sets."""

        def rows(kind: str, fetch: Callable[[str], str]) -> list[dict[str, str]]:
            text = self._call(f"bulk {kind} results of job {job_id}", lambda: fetch(job_id))
            return list(csv.DictReader(io.StringIO(text or "")))

        found: dict[str, SyncOutcome] = {}

        def put(raw_key: str, outcome_for: Callable[[str], SyncOutcome]) -> None:
            key = _undo_latin1(raw_key)
            found[key] = outcome_for(key)
            found.setdefault(key.lower(), found[key])

        for row in rows("successful", bulk.get_successful_records):
            put(row.get(key_field, ""), lambda k, row=row: SyncOutcome(
                key=k, ok=True, crm_id=row.get("sf__Id") or None,
                created=str(row.get("sf__Created", "")).lower() == "true"))
        for row in rows("failed", bulk.get_failed_records):
            code, message = _parse_bulk_error(row.get("sf__Error", ""))
            put(row.get(key_field, ""), lambda k, code=code, message=message: _failure(k, code, message))
        for row in rows("unprocessed", bulk.get_unprocessed_records):
            put(row.get(key_field, ""), lambda k: _failure(k, "UNPROCESSED", "the bulk job did not process it"))
        return found

    # ---------------------------------------------------------- activities
    @staticmethod
    def activity(conversation: Mapping[str, Any], contact_id: str | None) -> dict[str, Any]:
        """The Task for a conversation, linked to the Lead/Contact `contact_id` (hashed for diffing)."""
        return conversation_task(conversation, who_id=contact_id)

    @staticmethod
    def activity_input(conversation: Mapping[str, Any], contact_id: str | None,
                       crm_id: str | None) -> dict[str, Any]:
        """One input of `upsert_activities` (the Task is keyed by its external id, not by `crm_id`)."""
        return conversation_task(conversation, who_id=contact_id)

    def upsert_activities(self, activities: Sequence[Mapping[str, Any]]) -> list[SyncOutcome]:
        """Upsert one Task per conversation, keyed by `task_external_id_field` (reruns never duplicate).

        Each activity: conversation_key, person_key (or who_id), subject,
        description (transcript), activity_date, status. Outcomes are keyed by
        conversation_key. Needs `activities=True` (prepare checks Task too).
        """
        if not self.activities:
            raise ConfigError(SERVICE, "activities are off: construct the sink with activities=True")
        self._on_batch, self._emitted = None, 0
        outcomes: list[SyncOutcome] = []
        items: dict[str, dict[str, Any]] = {}
        for activity in activities:
            key = activity.get("conversation_key")
            problem = external_id_problem(key)
            if problem or not (activity.get("who_id") or activity.get("person_key")):
                outcomes.append(_failure(str(key), "INVALID_EXTERNAL_ID",
                                         problem or "activity has neither who_id nor person_key"))
                continue
            items.pop(key, None)
            items[key] = task_properties(activity, object_name=self.object_name,
                                         external_id_field=self.external_id_field,
                                         task_external_id_field=self.task_external_id_field)
        try:
            if not self._prepared:
                self.prepare()
            if self.dry_run:
                return outcomes + [SyncOutcome(key=k, ok=True, error_code="DRY_RUN") for k in items]
            self._upsert_collections("Task", self.task_external_id_field, list(items.items()), outcomes)
        except ConnectorError as exc:
            done = {o.key for o in outcomes}
            exc.outcomes = list(outcomes)  # type: ignore[attr-defined]
            exc.pending_keys = [k for k in items if k not in done]  # type: ignore[attr-defined]
            raise
        return outcomes


def _undo_latin1(text: str) -> str:
    """Result CSVs may be decoded as ISO-8859-1 by requests (text/csv without charset): repair UTF-8."""
    try:
        return text.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return text
