"""How to reach one Salesforce org: settings, read from a mapping shaped like os.environ.

Nothing here reads the environment. The Dagster resource maps the contract
variables:

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
login URL (how the local emulator is reached).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from connectors.errors import ConfigError
from connectors.salesforce.mapping import SUPPORTED_OBJECTS

SERVICE = "salesforce"
DEFAULT_API_VERSION = "59.0"
TIMEOUT_S = (10.0, 120.0)  # (connect, read)


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
