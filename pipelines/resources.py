"""Dagster resources: configuration as data, secrets through EnvVar.

`build_resources(env)` decides, from the environment it is given, which
sources and targets are on (a source or target is on when its key is set)
and binds every secret with `EnvVar`, so no secret value is ever stored in
the definitions, logged or shown in the UI.

Source settings beside the contract's key and base URL (docs/sources.md):
- `AGENTPRO_TIER`: "free" or "pro" (default "pro"), AgentPro's documented
  rate limits for that plan (Free 100/min and 10/s, Pro 1,000/min and 50/s).
- `CHATLOOM_AUTH_HEADER`: "bearer" (default) or "x-api-key", the header the
  Chatloom key is sent in.
A source's resource builds its connector lazily, inside the asset, so a bad
setting fails that source's read (with a clear message), never the others.
"""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Any, Mapping, Optional

import dagster as dg

from connectors.agentclara import AgentClaraSource
from connectors.agentpro import TIER_LIMITS, AgentProSource
from connectors.chatloom import ChatloomSource
from connectors.clairo import ClairoSource
from connectors.errors import ConfigError
from connectors.hubspot import HubSpotSink
from connectors.salesforce import SalesforceSettings, SalesforceSink
from pipelines.partitions import DEFAULT_LOOKBACK_DAYS
from pipelines.state import StateStore, default_database_url

TRUE = {"1", "true", "yes", "on"}
AUTH_HEADERS = ("bearer", "x-api-key")  # CHATLOOM_AUTH_HEADER


@lru_cache(maxsize=8)
def _store(url: str) -> StateStore:
    return StateStore(url)


class StateStoreResource(dg.ConfigurableResource):
    """The state store; SYNC_DATABASE_URL, or a SQLite file by default."""

    database_url: Optional[str] = None

    def store(self) -> StateStore:
        return _store(self.database_url or default_database_url())


class SyncSettings(dg.ConfigurableResource):
    """Run-wide switches: dry run, the region for phone numbers without a country code, and
    how many days before a run's first day conversation listings are read
    (SYNC_CONVERSATION_LOOKBACK_DAYS, default 7: see pipelines/sources.py)."""

    dry_run: bool = False
    default_region: str = "US"
    conversation_lookback_days: int = DEFAULT_LOOKBACK_DAYS


class AgentClaraResource(dg.ConfigurableResource):
    api_key: Optional[str] = None
    base_url: str = "https://api.agentclara.app"
    concurrency: int = 8

    @property
    def enabled(self) -> bool:
        return bool(self.api_key)

    def client(self) -> AgentClaraSource:
        assert self.api_key
        return AgentClaraSource(self.api_key, self.base_url, concurrency=self.concurrency)


class ClairoResource(dg.ConfigurableResource):
    """Clairo: a `clr_` key on the Max plan; base URL includes `/api/v1`."""

    api_key: Optional[str] = None
    base_url: str = "https://clairo.tech/api/v1"
    concurrency: int = 4

    @property
    def enabled(self) -> bool:
        return bool(self.api_key)

    def client(self) -> ClairoSource:
        assert self.api_key
        return ClairoSource(self.api_key, self.base_url, concurrency=self.concurrency)


class AgentProResource(dg.ConfigurableResource):
    """AgentPro: Bearer key; `tier` ("free" or "pro") picks the documented rate limits."""

    api_key: Optional[str] = None
    base_url: str = "https://agentpro.chat"
    tier: str = "pro"
    concurrency: int = 4

    @property
    def enabled(self) -> bool:
        return bool(self.api_key)

    def client(self) -> AgentProSource:
        assert self.api_key
        if self.tier not in TIER_LIMITS:
            raise ConfigError("agentpro", f"AGENTPRO_TIER must be one of {sorted(TIER_LIMITS)}, not {self.tier!r}")
        return AgentProSource(self.api_key, self.base_url, tier=self.tier, concurrency=self.concurrency)  # type: ignore[arg-type]


class ChatloomResource(dg.ConfigurableResource):
    """Chatloom: a `clf_` key sent as `Authorization: Bearer` or `X-API-Key` (`auth_header`)."""

    api_key: Optional[str] = None
    base_url: str = "https://chatloom.app"
    auth_header: str = "bearer"

    @property
    def enabled(self) -> bool:
        return bool(self.api_key)

    def client(self) -> ChatloomSource:
        assert self.api_key
        if self.auth_header not in AUTH_HEADERS:
            raise ConfigError("chatloom", f"CHATLOOM_AUTH_HEADER must be one of {list(AUTH_HEADERS)}, not {self.auth_header!r}")
        return ChatloomSource(self.api_key, self.base_url, auth_header=self.auth_header)  # type: ignore[arg-type]


class HubSpotResource(dg.ConfigurableResource):
    access_token: Optional[str] = None
    base_url: str = "https://api.hubapi.com"
    per_10s: int = 100

    @property
    def enabled(self) -> bool:
        return bool(self.access_token)

    def sink(self, *, dry_run: bool, activities: bool = False) -> HubSpotSink:
        """The sink (contacts and engagements alike: `activities` changes nothing here)."""
        assert self.access_token
        return HubSpotSink(self.access_token, self.base_url, per_10s=self.per_10s, dry_run=dry_run)


class SalesforceResource(dg.ConfigurableResource):
    """Instance URL + access token, or username + password + security token."""

    instance_url: Optional[str] = None
    access_token: Optional[str] = None
    username: Optional[str] = None
    password: Optional[str] = None
    security_token: Optional[str] = None
    domain: str = "login"
    object_name: str = "Lead"
    external_id_field: str = "Agent_Contact_Id__c"
    task_external_id_field: str = "Agent_Conversation_Id__c"
    bulk_threshold: int = 2000

    @property
    def enabled(self) -> bool:
        return bool((self.instance_url and self.access_token) or (self.username and self.password))

    def sink(self, *, dry_run: bool, activities: bool = False) -> SalesforceSink:
        """The sink; `activities=True` also checks the Task fields (for conversations)."""
        settings = SalesforceSettings(
            instance_url=self.instance_url,
            access_token=self.access_token,
            username=self.username,
            password=self.password,
            security_token=self.security_token,
            domain=self.domain,
            object_name=self.object_name,
        )
        return SalesforceSink(
            settings,
            external_id_field=self.external_id_field,
            bulk_threshold=self.bulk_threshold,
            activities=activities,
            task_external_id_field=self.task_external_id_field,
            dry_run=dry_run,
        )


def _secret(env: Mapping[str, str], name: str) -> Any:
    return dg.EnvVar(name) if env.get(name) else None


def build_resources(env: Mapping[str, str] = os.environ) -> dict[str, dg.ConfigurableResource]:
    """The resources for a given environment (tests pass their own mapping)."""
    return {
        "state": StateStoreResource(database_url=_secret(env, "SYNC_DATABASE_URL")),
        "settings": SyncSettings(
            dry_run=env.get("SYNC_DRY_RUN", "").strip().lower() in TRUE,
            default_region=env.get("SYNC_DEFAULT_REGION", "US"),
            conversation_lookback_days=int(env.get("SYNC_CONVERSATION_LOOKBACK_DAYS") or DEFAULT_LOOKBACK_DAYS),
        ),
        "agentclara": AgentClaraResource(
            api_key=_secret(env, "AGENTCLARA_API_KEY"),
            base_url=env.get("AGENTCLARA_BASE_URL", "https://api.agentclara.app"),
        ),
        "clairo": ClairoResource(
            api_key=_secret(env, "CLAIRO_API_KEY"),
            base_url=env.get("CLAIRO_BASE_URL") or "https://clairo.tech/api/v1",
        ),
        "agentpro": AgentProResource(
            api_key=_secret(env, "AGENTPRO_API_KEY"),
            base_url=env.get("AGENTPRO_BASE_URL") or "https://agentpro.chat",
            tier=(env.get("AGENTPRO_TIER") or "pro").strip().lower(),
        ),
        "chatloom": ChatloomResource(
            api_key=_secret(env, "CHATLOOM_API_KEY"),
            base_url=env.get("CHATLOOM_BASE_URL") or "https://chatloom.app",
            auth_header=(env.get("CHATLOOM_AUTH_HEADER") or "bearer").strip().lower(),
        ),
        "hubspot": HubSpotResource(
            access_token=_secret(env, "HUBSPOT_ACCESS_TOKEN"),
            base_url=env.get("HUBSPOT_BASE_URL", "https://api.hubapi.com"),
            per_10s=int(env.get("HUBSPOT_REQUESTS_PER_10S", "100")),
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
            bulk_threshold=int(env.get("SALESFORCE_BULK_THRESHOLD", "2000")),
        ),
    }
