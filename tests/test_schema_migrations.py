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
    "email": "john@example.com", "phone": "+14155552671",
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


@pytest.mark.parametrize(
    ("phone", "email", "kept", "warnings"),
    [
        pytest.param("+14155552671", "john@example.com", "+14155552671", [], id="a-real-number-stays"),
        pytest.param("+15551234567", "john@example.com", None, ["invalid_phone"], id="the-docs-fictional-555"),
        pytest.param("+15552255669", None, None, ["invalid_phone"], id="555-CALL-NOW-as-v2-stored-it"),
    ],
)
def test_v2_contact_upgrades_to_v3_without_a_phone_that_is_no_identity(phone, email, kept, warnings):
    stored_v2 = {**migrate(STORED_CONTACT_V1, to_version=2), "email": email, "phone": phone}
    upgraded = migrate(stored_v2, to_version=3)
    assert tuple(upgraded) == contact_keys(3) == contact_keys(2)
    assert (upgraded["version"], upgraded["phone"], upgraded["warnings"]) == (3, kept, warnings)
    assert {k: v for k, v in upgraded.items() if k not in ("version", "phone", "warnings")} == {
        k: v for k, v in stored_v2.items() if k not in ("version", "phone", "warnings")}
    assert stored_v2["phone"] == phone  # the input is not mutated
    if kept is None:  # noted once, also when the record already carried the warning
        assert migrate({**stored_v2, "warnings": ["invalid_phone"]}, to_version=3)["warnings"] == ["invalid_phone"]


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
        pytest.param(STORED_CONTACT_V1, 4, id="unknown-target"),
        pytest.param({**STORED_CONTACT_V1, "version": 2, "preferred_channel": None,
                      "last_seen_at": None, "conversation_count": 0}, 1, id="no-downgrade"),
        pytest.param(["schema", "contact"], None, id="not-a-record"),
    ],
)
def test_no_path_raises_migration_error(record, to_version):
    with pytest.raises(MigrationError):
        migrate(record, to_version=to_version)


def test_missing_step_raises_migration_error(monkeypatch):
    monkeypatch.setitem(registry.KNOWN_VERSIONS, "contact", frozenset({1, 2, 3, 4}))
    with pytest.raises(MigrationError, match="no migration for contact v3 -> v4"):
        migrate(STORED_CONTACT_V1, to_version=4)


def test_conversation_v1_is_current():
    record = {"schema": "conversation", "version": 1, "source": "clairo", "source_id": "cm2"}
    assert migrate(record) == record
    with pytest.raises(MigrationError):
        migrate({**record, "version": 2})
