"""Schema versions: a stored record of any known version loads as the current version
(step by step through the migration table); anything else raises MigrationError."""

from __future__ import annotations

import pytest

from schemas import registry
from schemas.contact import V2_ADDED_KEYS, Contact, contact_keys
from schemas.errors import MigrationError
from schemas.migrations import MIGRATIONS
from schemas.registry import CURRENT_VERSIONS, current_version, is_current, migrate

# A contact exactly as contact v1 was written to the store.
STORED_CONTACT_V1 = {
    "schema": "contact", "version": 1, "source": "agentclara", "source_id": "cust_1",
    "email": "john@example.com", "phone": "+15551234567",
    "first_name": "John", "last_name": "Smith", "full_name": "John Smith",
    "company": None, "tags": ["vip"],
    "created_at": "2024-03-15T10:30:00+00:00", "updated_at": "2024-03-15T10:30:00+00:00",
    "extra": {}, "warnings": [],
}


def test_stored_v1_contact_loads_as_current():
    loaded = migrate(STORED_CONTACT_V1)
    assert loaded["version"] == current_version("contact")
    assert tuple(loaded) == contact_keys()
    assert is_current(loaded)
    contact = Contact.from_dict(STORED_CONTACT_V1)
    assert contact.email == "john@example.com"
    assert contact.to_dict() == loaded


def test_v1_contact_upgrades_to_v2_with_defaults():
    upgraded = migrate(STORED_CONTACT_V1, to_version=2)
    assert tuple(upgraded) == contact_keys(2)
    assert (upgraded["version"], upgraded["preferred_channel"], upgraded["last_seen_at"],
            upgraded["conversation_count"]) == (2, None, None, 0)
    kept = {k: v for k, v in upgraded.items() if k != "version" and k not in V2_ADDED_KEYS}
    assert kept == {k: v for k, v in STORED_CONTACT_V1.items() if k != "version"}
    assert STORED_CONTACT_V1["version"] == 1  # the input is not mutated


def test_contact_to_dict_writes_either_version():
    contact = Contact.from_dict(STORED_CONTACT_V1)
    assert contact.to_dict(version=1) == STORED_CONTACT_V1
    assert contact.to_dict(version=2) == migrate(STORED_CONTACT_V1, to_version=2)


def test_every_non_current_known_version_has_a_path_to_current():
    for schema, versions in registry.KNOWN_VERSIONS.items():
        for version in versions:
            if version < CURRENT_VERSIONS[schema]:
                assert (schema, version) in MIGRATIONS


def test_current_record_is_returned_unchanged_as_a_copy():
    loaded = migrate(STORED_CONTACT_V1)
    again = migrate(loaded)
    assert again == loaded and again is not loaded


@pytest.mark.parametrize(
    ("record", "to_version"),
    [
        pytest.param({**STORED_CONTACT_V1, "version": 99}, None, id="unknown-future-version"),
        pytest.param({**STORED_CONTACT_V1, "version": 0}, None, id="unknown-old-version"),
        pytest.param({**STORED_CONTACT_V1, "version": "1"}, None, id="version-not-an-int"),
        pytest.param({**STORED_CONTACT_V1, "version": True}, None, id="version-bool"),
        pytest.param({k: v for k, v in STORED_CONTACT_V1.items() if k != "version"}, None, id="no-version"),
        pytest.param({**STORED_CONTACT_V1, "schema": "lead"}, None, id="unknown-schema"),
        pytest.param({k: v for k, v in STORED_CONTACT_V1.items() if k != "schema"}, None, id="no-schema"),
        pytest.param(STORED_CONTACT_V1, 3, id="unknown-target"),
        pytest.param({**STORED_CONTACT_V1, "version": 2, "preferred_channel": None,
                      "last_seen_at": None, "conversation_count": 0}, 1, id="no-downgrade"),
        pytest.param(["schema", "contact"], None, id="not-a-record"),
    ],
)
def test_no_path_raises_migration_error(record, to_version):
    with pytest.raises(MigrationError):
        migrate(record, to_version=to_version)


def test_missing_step_raises_migration_error(monkeypatch):
    monkeypatch.setitem(registry.KNOWN_VERSIONS, "contact", frozenset({1, 2, 3}))
    with pytest.raises(MigrationError, match="no migration for contact v2 -> v3"):
        migrate(STORED_CONTACT_V1, to_version=3)


def test_conversation_v1_is_current():
    record = {"schema": "conversation", "version": 1, "source": "clairo", "source_id": "cm2"}
    assert migrate(record) == record
    with pytest.raises(MigrationError):
        migrate({**record, "version": 2})
