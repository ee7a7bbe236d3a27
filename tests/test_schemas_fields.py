"""Field normalizers: raw email/phone/name/time/tag values -> canonical values, and content hashing."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from schemas.errors import InvalidRecord
from schemas.fields import (
    ISO_DATE,
    ISO_MILLIS_UTC,
    clean_tags,
    crm_datetime,
    crm_names,
    name_from_parts,
    normalize_email,
    normalize_phone,
    parse_name,
    parse_timestamp,
    split_name,
    to_iso,
)
from schemas.hashing import canonical_json, content_hash

UTC = timezone.utc


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("john@example.com", "john@example.com"),
        ("John.Smith@Example.COM", "john.smith@example.com"),
        ("  john@example.com \n", "john@example.com"),
        ("mailto:John@Example.com", "john@example.com"),
        ("John Smith <John@Example.com>", "john@example.com"),
        ("jane+crm@sub.example.co.uk", "jane+crm@sub.example.co.uk"),
        ("user@münchen.de", "user@münchen.de"),
        ("", None),
        ("   ", None),
        (None, None),
        (42, None),
        (["john@example.com"], None),
        ("not an email", None),
        ("john@", None),
        ("@example.com", None),
        ("john@example", None),
        ("john..smith@example.com", None),
        ("john smith@example.com", None),
        ("john@example.test", None),
        ("john@localhost", None),
        ("n/a", None),
    ],
)
def test_normalize_email(raw, expected):
    assert normalize_email(raw) == expected


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("+12025550147", "US", "+12025550147"),
        ("(202) 555-0147", "US", "+12025550147"),
        ("202.555.0147", "US", "+12025550147"),
        ("1-415-555-2671", "US", "+14155552671"),
        ("+1 415 555 2671 ext. 12", "US", "+14155552671"),
        ("tel:+1-415-555-2671", "US", "+14155552671"),
        (14155552671, "US", "+14155552671"),
        ("020 7946 0958", "GB", "+442079460958"),
        ("+44 20 7946 0958", "US", "+442079460958"),
        ("06 12 34 56 78", "FR", "+33612345678"),
        ("+33 6 12 34 56 78", "US", "+33612345678"),
        ("020 7946 0958", "US", None),
        ("12345", "US", None),
        ("0000000000", "US", None),
        ("1234567890", "US", None),
        ("call me", "US", None),
        ("n/a", "US", None),
        ("", "US", None),
        (None, "US", None),
        (True, "US", None),
        (4155552671.0, "US", None),
        ("4155552671", None, None),
    ],
)
def test_normalize_phone(raw, region, expected):
    assert normalize_phone(raw, region) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("+14155552671", "+14155552671"),
        ("+1 212 555 0100", "+12125550100"),  # libphonenumber: valid for the US
        # Not identities: a full length is not enough, and letters are placeholders (docs/identity.md).
        ("+15551234567", None), ("(555) 123-4567", None), ("+1 555 0100", None), ("+1 555 010 0101", None),
        ("555-CALL-NOW", None), ("1-800-FLOWERS", None), ("+1 415 555 CALL", None), ("415-555-267l", None),
        ("+1-800-356-9377", "+18003569377"),  # the same toll-free number, typed in digits
    ],
)
def test_normalize_phone_keeps_only_real_numbers(raw, expected):
    assert normalize_phone(raw, "US") == expected


@pytest.mark.parametrize(
    ("raw", "first", "last", "full"),
    [
        ("John Smith", "John", "Smith", "John Smith"),
        ("SMITH, JOHN", "John", "Smith", "John Smith"),
        ("smith, john", "John", "Smith", "John Smith"),
        ("  jane   DOE ", "Jane", "Doe", "Jane Doe"),
        ("Dr. Jane Doe Jr.", "Jane", "Doe", "Dr. Jane Doe Jr."),
        ("JOHN Q. PUBLIC III", "John", "Public", "John Q. Public III"),
        ("Mary Ann McDonald", "Mary", "McDonald", "Mary Ann McDonald"),
        ("mcdonald, ronald", "Ronald", "McDonald", "Ronald McDonald"),
        ("DeShawn JONES", "DeShawn", "Jones", "DeShawn Jones"),
        ("VAN DER BERG, ANNA", "Anna", "van der Berg", "Anna van der Berg"),
        ("ZOË SALDAÑA", "Zoë", "Saldaña", "Zoë Saldaña"),
        ("José Álvarez", "José", "Álvarez", "José Álvarez"),
        ("Cher", "Cher", None, "Cher"),
        ("CHER", "Cher", None, "Cher"),
        ("Guest", None, None, None),
        ("unknown", None, None, None),
        ("john@example.com", None, None, None),
        ("+1 555 123 4567", None, None, None),
        ("", None, None, None),
        (None, None, None, None),
        (123, None, None, None),
    ],
)
def test_parse_name(raw, first, last, full):
    parts = parse_name(raw)
    assert (parts.first, parts.last, parts.full) == (first, last, full)
    assert split_name(raw) == (first, last)


@pytest.mark.parametrize(
    ("first", "last", "expected"),
    [
        ("JOHN", "SMITH", ("John", "Smith", "John Smith")),
        ("mary ann", "mcdonald", ("Mary Ann", "McDonald", "Mary Ann McDonald")),
        ("DeShawn", "o'BRIEN", ("DeShawn", "o'BRIEN", "DeShawn o'BRIEN")),
        ("Jane", None, ("Jane", None, "Jane")),
        (None, "Doe", (None, "Doe", "Doe")),
        ("n/a", "  ", (None, None, None)),
    ],
)
def test_name_from_parts(first, last, expected):
    parts = name_from_parts(first, last)
    assert (parts.first, parts.last, parts.full) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2024-03-15T10:30:00Z", datetime(2024, 3, 15, 10, 30, tzinfo=UTC)),
        ("2024-03-15T10:30:00+00:00", datetime(2024, 3, 15, 10, 30, tzinfo=UTC)),
        ("2024-03-15T12:30:00+02:00", datetime(2024, 3, 15, 10, 30, tzinfo=UTC)),
        ("2024-03-15T05:30:00-05:00", datetime(2024, 3, 15, 10, 30, tzinfo=UTC)),
        ("2024-03-15T10:30:00.250Z", datetime(2024, 3, 15, 10, 30, 0, 250000, tzinfo=UTC)),
        ("2024-03-15T10:30:00", datetime(2024, 3, 15, 10, 30, tzinfo=UTC)),
        ("2024-03-15 10:30:00", datetime(2024, 3, 15, 10, 30, tzinfo=UTC)),
        ("2024-03-15", datetime(2024, 3, 15, tzinfo=UTC)),
        ("Fri, 15 Mar 2024 10:30:00 GMT", datetime(2024, 3, 15, 10, 30, tzinfo=UTC)),
        (1710498600, datetime(2024, 3, 15, 10, 30, tzinfo=UTC)),
        (1710498600000, datetime(2024, 3, 15, 10, 30, tzinfo=UTC)),
        ("1710498600", datetime(2024, 3, 15, 10, 30, tzinfo=UTC)),
        (1710498600.5, datetime(2024, 3, 15, 10, 30, 0, 500000, tzinfo=UTC)),
        (datetime(2024, 3, 15, 10, 30), datetime(2024, 3, 15, 10, 30, tzinfo=UTC)),
        (
            datetime(2024, 3, 15, 12, 30, tzinfo=timezone(timedelta(hours=2))),
            datetime(2024, 3, 15, 10, 30, tzinfo=UTC),
        ),
        (date(2024, 3, 15), datetime(2024, 3, 15, tzinfo=UTC)),
        (None, None),
        ("", None),
        ("   ", None),
    ],
)
def test_parse_timestamp(raw, expected):
    parsed = parse_timestamp(raw)
    assert parsed == expected
    if parsed is not None:
        assert parsed.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    "raw", ["garbage", "tomorrow", "2024-13-45", "15/03/2024 10:30", [2024], {"t": 1}, True, float("nan"), 1e20]
)
def test_parse_timestamp_rejects_garbage(raw):
    with pytest.raises(InvalidRecord) as caught:
        parse_timestamp(raw)
    assert caught.value.reason == "bad_timestamp"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (datetime(2024, 3, 15, 10, 30, tzinfo=UTC), "2024-03-15T10:30:00+00:00"),
        (datetime(2024, 3, 15, 10, 30), "2024-03-15T10:30:00+00:00"),
        (datetime(2024, 3, 15, 5, 30, tzinfo=timezone(timedelta(hours=-5))), "2024-03-15T10:30:00+00:00"),
        (None, None),
    ],
)
def test_to_iso(raw, expected):
    assert to_iso(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (["vip"], ["vip"]),
        (["VIP", "vip", " Lead  Hot ", "", "b", "a"], ["a", "b", "lead hot", "vip"]),
        ("vip, lead ,,", ["lead", "vip"]),
        ([{"name": "VIP"}, {"label": "new"}, 7, None, True], ["7", "new", "vip"]),
        (None, []),
        (5, []),
        ({"vip": True}, []),
    ],
)
def test_clean_tags(raw, expected):
    assert clean_tags(raw) == expected


def test_content_hash_ignores_key_and_set_order():
    a = {"b": [1, 2], "a": {"y": 1, "x": "é"}, "s": {"q", "p"}}
    b = {"s": {"p", "q"}, "a": {"x": "é", "y": 1}, "b": [1, 2]}
    assert content_hash(a) == content_hash(b)
    assert canonical_json(a) == '{"a":{"x":"é","y":1},"b":[1,2],"s":["p","q"]}'


def test_content_hash_is_a_fixed_value():
    # A change here means every stored hash changes and every record is re-sent.
    # sha256 of '{"email":"john@example.com","tags":["vip"]}'
    assert content_hash({"tags": ["vip"], "email": "john@example.com"}) == (
        "7b102426a96f446a27137c4b8e16acd74da1916d0c03d239d04c21b4f2a896d2"
    )


@pytest.mark.parametrize(
    ("left", "right"),
    [
        ({"t": datetime(2024, 3, 15, 10, 30, tzinfo=UTC)}, {"t": "2024-03-15T10:30:00+00:00"}),
        ({"t": datetime(2024, 3, 15, 12, 30, tzinfo=timezone(timedelta(hours=2)))},
         {"t": "2024-03-15T10:30:00+00:00"}),
        ({"d": date(2024, 3, 15)}, {"d": "2024-03-15"}),
        ({"x": (1, 2)}, {"x": [1, 2]}),
    ],
)
def test_content_hash_encodes_times_as_iso(left, right):
    assert content_hash(left) == content_hash(right)


@pytest.mark.parametrize(("left", "right"), [({"a": 1}, {"a": 2}), ({"a": None}, {}), ({"a": [1, 2]}, {"a": [2, 1]})])
def test_content_hash_changes_with_content(left, right):
    assert content_hash(left) != content_hash(right)


class TestSimpleNameFastPath:
    """Plain names skip nameparser's pipeline; the result must be what nameparser gives (tests/test_name_parity.py
    holds it on 100,000 messy names; this, on the sandbox's)."""

    def corpus(self) -> list[str]:
        from sandbox.agentclara import AgentClaraApp

        app = AgentClaraApp(contacts=2000)
        names = [c.get("name") for c in map(app.get_contact, app.contact_ids()) if c]
        extra = ["jane doe", "JANE DOE", "jane DOE", "Zoë O'Brien", "jean-luc picard", "DeShawn Smith",
                 "mary mcdonald", "MARY MACDONALD", "Dr Smith", "John Jr", "Anna van", "Tom and", "José Núñez"]
        return [n for n in names + extra if isinstance(n, str)]

    def test_fast_path_equals_nameparser(self) -> None:
        from schemas.fields import _parse_with_nameparser, _simple_first_last

        taken = 0
        for name in self.corpus():
            text = " ".join(name.split())
            fast = _simple_first_last(text)
            if fast is not None:
                taken += 1
                assert fast == _parse_with_nameparser(text), name
        assert taken > 100  # the fast path really serves the common case


# ------------------------------------------------- the one CRM name rule and datetime formatter
@pytest.mark.parametrize(
    ("first", "last", "full", "expected"),
    [
        ("John", "Smith", "John Smith", ("John", "Smith")),  # stored parts are kept
        (None, None, "Ada  Lovelace", ("Ada", "Lovelace")),
        (None, None, "Cher", ("Cher", None)),  # a one-word name is a first name, as parse_name reads it
        ("John", None, "John van Smith", ("John", "van Smith")),
        ("Mary Ann", None, "mary ann Smith", ("Mary Ann", "Smith")),  # the prefix rule, not the first word
        ("Bob", None, "Robert Jones", ("Bob", None)),  # never the whole full name as the last name
        ("Ada", None, "Ada", ("Ada", None)),
        (None, "Smith", "Jo Smith", (None, "Smith")),
        (None, None, None, (None, None)),
    ],
)
def test_crm_names(first, last, full, expected):
    assert crm_names(first, last, full) == expected


def test_both_crm_mappings_send_the_same_first_and_last_names():
    """The bug the issue named: one person, different names in HubSpot and in Salesforce."""
    from connectors.hubspot import mapping as hubspot
    from connectors.salesforce.mapping import FieldMapping

    lead = FieldMapping("Lead", "Agent_Contact_Id__c", {}, None)
    for first, last, full in [("Bob", None, "Robert Jones"), (None, None, "Cher"), ("Mary Ann", None, "Mary Ann Smith")]:
        person = {"person_key": "email:a@example.com", "email": "a@example.com", "first_name": first,
                  "last_name": last, "full_name": full, "company": "Acme"}
        props, fields = hubspot.properties(person), lead.properties(person)
        assert (props.get("firstname"), props.get("lastname")) == (fields.get("FirstName"),
                                                                  None if fields["LastName"] == "[not provided]"
                                                                  else fields["LastName"])


@pytest.mark.parametrize(
    ("value", "fmt", "expected"),
    [
        ("2024-03-15T10:30:00+02:00", ISO_MILLIS_UTC, "2024-03-15T08:30:00.000Z"),
        ("2024-03-15T10:30:00.123456Z", ISO_MILLIS_UTC, "2024-03-15T10:30:00.123Z"),
        (datetime(2024, 3, 15, 10, 30), ISO_MILLIS_UTC, "2024-03-15T10:30:00.000Z"),  # naive: UTC
        ("2024-03-15T23:30:00-05:00", ISO_DATE, "2024-03-15"),  # the day as written, no shift
        (date(2024, 3, 15), ISO_DATE, "2024-03-15"),
        (datetime(2024, 3, 15, 23, 0, tzinfo=UTC), ISO_DATE, "2024-03-15"),
        ("", ISO_MILLIS_UTC, None),
        (None, ISO_DATE, None),
    ],
)
def test_crm_datetime(value, fmt, expected):
    assert crm_datetime(value, fmt) == expected


def test_both_crms_get_one_moment_in_one_format():
    from connectors.hubspot.mapping import hubspot_datetime
    from connectors.salesforce.mapping import salesforce_datetime

    moment = "2026-12-01T10:00:00-05:00"
    assert hubspot_datetime(moment) == salesforce_datetime(moment) == "2026-12-01T15:00:00.000Z"
