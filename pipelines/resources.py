"""Dagster resources: configuration as data, secrets through EnvVar.

`build_resources(env)` binds every secret set in the environment it is
given with `EnvVar`, so no secret value is ever stored in the definitions,
logged or shown in the UI. A target is on when its key is set. A source
(one `SourceResource` per spec of pipelines/registry.py) is on when its key
is set as its step runs: what is unset when the definitions load is read
from the step's environment, so a key set later turns its source on
without a reload.

Source settings beside the contract's key and base URL (docs/sources.md):
- `AGENTPRO_TIER`: "free" or "pro" (default "pro"), AgentPro's documented
  rate limits for that plan (Free 100/min and 10/s, Pro 1,000/min and 50/s).
- `CHATLOOM_AUTH_HEADER`: "bearer" (default) or "x-api-key", the header the
  Chatloom key is sent in.
- `SYNC_LISTING_DEADLINE_SECONDS`: overall deadline of each listing (default
  6 h, connectors.source.DEFAULT_LISTING_DEADLINE_S).
A source's resource builds its connector lazily, inside the asset, so a bad
setting fails that source's read (with a clear message), never the others.
Every secret goes through one check there (`connectors.redact.check_secret`:
surrounding whitespace stripped with a warning, a control character refused
naming the variable), every base URL through `connectors.urls.check_base_url`
(https, or http to loopback only), and repr() of every resource hides secrets.
"""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Any, ClassVar, Iterator, Mapping, Optional

import dagster as dg
import sqlalchemy as sa

from connectors import redact

from connectors.declared import DeclaredSource
from connectors.errors import ConfigError
from connectors.hubspot import SERVICE as HUBSPOT
from connectors.hubspot import HubSpotSink
from connectors.salesforce import SERVICE as SALESFORCE
from connectors.salesforce import SalesforceSettings, SalesforceSink
from connectors.spec import Setting, SourceSpec
from connectors.source import DEFAULT_LISTING_DEADLINE_S
from connectors.urls import check_base_url
from pipelines.partitions import DEFAULT_LOOKBACK_DAYS
from pipelines.registry import CONNECTORS, SPECS, stream_on
from pipelines.state import StateStore, default_database_url
from pipelines.steps.workers import available_cores

TRUE = {"1", "true", "yes", "on"}


@lru_cache(maxsize=8)
def _store(url: str) -> StateStore:
    return StateStore(url)


def _hide_password(url: str | None) -> str | None:
    """A database URL with its password masked (the whole URL when it cannot be parsed)."""
    if not url:
        return url
    try:
        return sa.make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - whatever the URL is, its repr must not show it
        return redact.REDACTED


class _Resource(dg.ConfigurableResource):
    """A resource whose repr() and str() never show a secret.

    Dagster's (pydantic's) repr prints every field, and once a resource is
    initialized an EnvVar-bound field holds the secret itself. `SECRETS`
    maps each secret field to its environment variable, for the repr and for
    `_checked` (the one secret check, with the variable's name)."""

    SECRETS: ClassVar[Mapping[str, str]] = {}

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        for name, value in super().__repr_args__():
            yield name, (redact.REDACTED if name in self.SECRETS and value else value)

    def _checked(self, field: str, service: str) -> str:
        """The secret in `field`, stripped (with a warning) and checked; ConfigError naming its variable."""
        return redact.check_secret(self.SECRETS[field], getattr(self, field), service=service)


class StateStoreResource(_Resource):
    """The state store; SYNC_DATABASE_URL, or a SQLite file by default."""

    database_url: Optional[str] = None

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        for name, value in super().__repr_args__():
            yield name, (_hide_password(value) if name == "database_url" else value)

    def store(self) -> StateStore:
        url = self.database_url or default_database_url()
        try:
            redact.register(sa.make_url(url).password)  # scrubbed from every message from now on
        except Exception:  # noqa: BLE001 - a bad URL fails in StateStore, with its own message
            pass
        return _store(url)


class SyncSettings(_Resource):
    """Run-wide switches: dry run, the region for phone numbers without a country code, and
    how many days before a run's first day conversation listings are read
    (SYNC_CONVERSATION_LOOKBACK_DAYS, default 7: see connectors/agentclara/spec.py)."""

    dry_run: bool = False
    default_region: str = "US"
    conversation_lookback_days: int = DEFAULT_LOOKBACK_DAYS
    # SYNC_MAPPING_FILE: the field mapping and write policies (pipelines/mapping); None: the built-in mapping.
    mapping_file: Optional[str] = None
    # SYNC_NORMALIZE_CORES: cores that normalize a historical load or a renormalize; 0: every core.
    normalize_cores: int = 0

    def cores(self) -> int:
        """How many cores normalize a backlog (a daily run's few changes are normalized in its own process)."""
        return self.normalize_cores or available_cores()


class SourceResource(_Resource):
    """One platform's connection, the same class for every spec (pipelines/registry.py).

    Every value is looked up when the step runs, not when the definitions
    load: a field given at load wins (the key bound with `EnvVar`, so Dagster
    resolves it as the run starts and never stores it); a field left unset
    is read from the spec's variable as the step runs. So the definitions
    load with no keys, and setting a key later turns its source on without a
    reload. The key and the base URL are checked before the first request,
    naming their variables; repr() never shows the key.
    """

    SECRETS: ClassVar[Mapping[str, str]] = {"api_key": "<the spec's key_env>"}  # repr: the field is hidden
    source: str  # the spec's name
    api_key: Optional[str] = None
    base_url: Optional[str] = None
    options: dict[str, str] = {}  # the spec's settings by variable (AGENTPRO_TIER, ...), as given at load
    listing_deadline_s: float = DEFAULT_LISTING_DEADLINE_S
    concurrency: Optional[int] = None  # default: the spec's

    @property
    def spec(self) -> SourceSpec:
        return CONNECTORS[self.source].spec

    @property
    def enabled(self) -> bool:
        """On when its key is set, as the step runs (DESIGN.md: a source is on when its key is set)."""
        return bool(self._now(self.api_key, self.spec.key_env))

    def client(self) -> DeclaredSource:
        """The platform's connector, its settings checked (a bad one fails this source's read only)."""
        spec = self.spec
        key = redact.check_secret(spec.key_env, self._now(self.api_key, spec.key_env), service=spec.name)
        base_url = self._now(self.base_url, spec.base_url_env) or spec.default_base_url
        return CONNECTORS[self.source](
            key, check_base_url(spec.base_url_env, base_url, service=spec.name),
            listing_deadline_s=self.listing_deadline_s, concurrency=self.concurrency,
            streams_on=[stream.name for stream in spec.streams if stream.enabled_by and stream_on(stream)],
            **{setting.name: self._setting(setting) for setting in spec.settings},
        )

    def _setting(self, setting: Setting) -> str:
        value = (self._now(self.options.get(setting.env), setting.env) or setting.default).strip().lower()
        if setting.choices and value not in setting.choices:
            raise ConfigError(self.source, f"{setting.env} must be one of {list(setting.choices)}, not {value!r}")
        return value

    @staticmethod
    def _now(given: Optional[str], variable: str) -> Optional[str]:
        """The value given at load, else the variable's value now (the step's environment)."""
        return given if given is not None else os.environ.get(variable)


def source_resource(spec: SourceSpec, env: Mapping[str, str], listing_deadline_s: float) -> SourceResource:
    """The resource of `spec` for the environment the definitions load in (what is unset there is read later)."""
    return SourceResource(
        source=spec.name,
        api_key=_secret(env, spec.key_env),
        base_url=env.get(spec.base_url_env) or None,
        options={setting.env: env[setting.env] for setting in spec.settings if env.get(setting.env)},
        listing_deadline_s=listing_deadline_s,
    )


class HubSpotResource(_Resource):
    SECRETS: ClassVar[Mapping[str, str]] = {"access_token": "HUBSPOT_ACCESS_TOKEN"}
    access_token: Optional[str] = None
    base_url: str = "https://api.hubapi.com"
    # An upper cap on the pace, not the tier: the pace is what HubSpot's headers say
    # (connectors/hubspot/pacing.py). 250 per 10 s is HubSpot's highest published burst.
    per_10s: int = 250

    @property
    def enabled(self) -> bool:
        return bool(self.access_token)

    def sink(self, *, activities: bool = False, appointments: bool = False) -> HubSpotSink:
        """The sink (contacts, engagements and meetings alike: `activities`, `appointments` change nothing here)."""
        token = self._checked("access_token", HUBSPOT)
        base_url = check_base_url("HUBSPOT_BASE_URL", self.base_url, service=HUBSPOT)
        return HubSpotSink(token, base_url, per_10s=self.per_10s)


class SalesforceResource(_Resource):
    """Instance URL + access token, or username + password + security token."""

    SECRETS: ClassVar[Mapping[str, str]] = {
        "access_token": "SALESFORCE_ACCESS_TOKEN",
        "password": "SALESFORCE_PASSWORD",
        "security_token": "SALESFORCE_SECURITY_TOKEN",
    }
    instance_url: Optional[str] = None
    access_token: Optional[str] = None
    username: Optional[str] = None
    password: Optional[str] = None
    security_token: Optional[str] = None
    domain: str = "login"
    object_name: str = "Lead"
    external_id_field: str = "Agent_Contact_Id__c"
    task_external_id_field: str = "Agent_Conversation_Id__c"
    appointment_external_id_field: str = "Agent_Appointment_Id__c"
    bulk_threshold: int = 2000

    @property
    def enabled(self) -> bool:
        return bool((self.instance_url and self.access_token) or (self.username and self.password))

    def sink(self, *, activities: bool = False, appointments: bool = False) -> SalesforceSink:
        """The sink; `activities=True` also checks the Task fields (conversations), `appointments=True` the Event's."""
        settings = SalesforceSettings(
            instance_url=self.instance_url and check_base_url(
                "SALESFORCE_INSTANCE_URL", self.instance_url, service=SALESFORCE),
            access_token=self._present("access_token"),
            username=self.username,
            password=self._present("password"),
            security_token=self._present("security_token"),
            domain=check_base_url("SALESFORCE_DOMAIN", self.domain, service=SALESFORCE)
            if "://" in self.domain else self.domain,
            object_name=self.object_name,
        )
        return SalesforceSink(
            settings,
            external_id_field=self.external_id_field,
            bulk_threshold=self.bulk_threshold,
            activities=activities,
            task_external_id_field=self.task_external_id_field,
            appointments=appointments,
            appointment_external_id_field=self.appointment_external_id_field,
        )

    def _present(self, field: str) -> str | None:
        """The checked secret when it is set; unset stays unset (the security token may be empty)."""
        return self._checked(field, SALESFORCE) if getattr(self, field) else getattr(self, field)


def _secret(env: Mapping[str, str], name: str) -> Any:
    return dg.EnvVar(name) if env.get(name) else None


def _seconds(env: Mapping[str, str], name: str, default: float) -> float:
    raw = (env.get(name) or "").strip()
    try:
        return float(raw) if raw else default
    except ValueError:
        raise ConfigError("sync", f"{name} must be a number of seconds, not {raw!r}") from None


def _count(env: Mapping[str, str], name: str) -> int:
    raw = (env.get(name) or "").strip()
    if raw and not (raw.isascii() and raw.isdigit()):
        raise ConfigError("sync", f"{name} must be a whole number (0 or unset: every core), not {raw!r}")
    return int(raw) if raw else 0


def build_resources(env: Mapping[str, str] = os.environ) -> dict[str, dg.ConfigurableResource]:
    """The resources for a given environment (tests pass their own mapping).

    Secrets are bound with EnvVar and checked (stripped, control characters
    refused) when a connector is built, inside its step; so are base URLs."""
    deadline = _seconds(env, "SYNC_LISTING_DEADLINE_SECONDS", DEFAULT_LISTING_DEADLINE_S)
    return {
        "state": StateStoreResource(database_url=_secret(env, "SYNC_DATABASE_URL")),
        "settings": SyncSettings(
            dry_run=env.get("SYNC_DRY_RUN", "").strip().lower() in TRUE,
            default_region=env.get("SYNC_DEFAULT_REGION", "US"),
            conversation_lookback_days=int(env.get("SYNC_CONVERSATION_LOOKBACK_DAYS") or DEFAULT_LOOKBACK_DAYS),
            mapping_file=(env.get("SYNC_MAPPING_FILE") or "").strip() or None,
            normalize_cores=_count(env, "SYNC_NORMALIZE_CORES"),
        ),
        **{spec.name: source_resource(spec, env, deadline) for spec in SPECS},
        "hubspot": HubSpotResource(
            access_token=_secret(env, "HUBSPOT_ACCESS_TOKEN"),
            base_url=env.get("HUBSPOT_BASE_URL") or "https://api.hubapi.com",
            per_10s=int(env.get("HUBSPOT_REQUESTS_PER_10S") or "250"),
        ),
        "salesforce": SalesforceResource(
            instance_url=env.get("SALESFORCE_INSTANCE_URL") or None,
            access_token=_secret(env, "SALESFORCE_ACCESS_TOKEN"),
            username=env.get("SALESFORCE_USERNAME") or None,
            password=_secret(env, "SALESFORCE_PASSWORD"),
            security_token=_secret(env, "SALESFORCE_SECURITY_TOKEN"),
            domain=env.get("SALESFORCE_DOMAIN") or "login",
            object_name=env.get("SALESFORCE_OBJECT") or "Lead",
            external_id_field=env.get("SALESFORCE_EXTERNAL_ID_FIELD") or "Agent_Contact_Id__c",
            task_external_id_field=env.get("SALESFORCE_TASK_EXTERNAL_ID_FIELD") or "Agent_Conversation_Id__c",
            appointment_external_id_field=env.get("SALESFORCE_APPOINTMENT_EXTERNAL_ID_FIELD")
            or "Agent_Appointment_Id__c",
            bulk_threshold=int(env.get("SALESFORCE_BULK_THRESHOLD", "2000")),
        ),
    }
