"""Per-source normalizers: raw AgentClara / Clairo / AgentPro payloads -> canonical contact
and conversation dicts, or InvalidRecord with the quarantine reason."""

from __future__ import annotations

import pytest

from connectors.agentclara import normalize as agentclara
from connectors.agentpro import normalize as agentpro
from connectors.clairo import normalize as clairo
from schemas.contact import Contact, contact_keys
from schemas.conversation import KEYS as CONVERSATION_KEYS
from schemas.conversation import activity_day
from schemas.errors import InvalidRecord

ARCHITECTURE_CONTACT = {
    "schema": "contact", "version": 1, "source": "agentclara", "source_id": "cust_1",
    "email": "john@example.com", "phone": "+15551234567",
    "first_name": "John", "last_name": "Smith", "full_name": "John Smith",
    "company": None, "tags": ["vip"],
    "created_at": "2024-03-15T10:30:00+00:00", "updated_at": "2024-03-15T10:30:00+00:00",
}


# --- AgentClara contacts -------------------------------------------------------


def test_agentclara_documented_contact_gives_the_architecture_shape():
    raw = {"id": "cust_1", "name": "John Smith", "email": "john@example.com",
           "phone": "+15551234567", "tags": ["vip"],
           "created_at": "2024-03-15T10:30:00Z", "updated_at": "2024-03-15T10:30:00Z"}
    contact = agentclara.normalize_contact(raw)
    # contact v3: the architecture's v1 shape plus what conversations teach (nothing, for a contact record);
    # the docs' +1 555 number is fictional (not valid for the US), so it is no phone: only a warning.
    assert contact == {**ARCHITECTURE_CONTACT, "version": 3, "phone": None, "preferred_channel": None,
                       "last_seen_at": None, "conversation_count": 0, "extra": {}, "warnings": ["invalid_phone"]}
    assert tuple(contact) == contact_keys()
    assert Contact.from_dict(contact).to_dict() == contact


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param(
            {"id": "c1", "email": " JOHN@Example.com "},
            {"email": "john@example.com", "phone": None, "first_name": None, "full_name": None,
             "tags": [], "created_at": None, "updated_at": None, "warnings": []},
            id="only-email-everything-else-missing",
        ),
        pytest.param(
            {"id": "c1", "name": None, "email": None, "phone": "(415) 555-2671", "tags": None,
             "created_at": None, "updated_at": None},
            {"email": None, "phone": "+14155552671", "first_name": None, "tags": [], "warnings": []},
            id="nulls-and-a-local-phone",
        ),
        pytest.param(
            {"id": 1234, "name": "SMITH, JOHN", "email": "john@example.com",
             "unknown_field": {"nested": [1, 2]}, "custom_fields": None, "score": 9.5},
            {"source_id": "1234", "first_name": "John", "last_name": "Smith", "full_name": "John Smith",
             "extra": {}, "warnings": []},
            id="integer-id-caps-name-extra-fields-ignored",
        ),
        pytest.param(
            {"id": "c1", "email": "not-an-email", "phone": "+14155552671"},
            {"email": None, "phone": "+14155552671", "warnings": ["invalid_email"]},
            id="invalid-email-beside-valid-phone-is-kept",
        ),
        pytest.param(
            {"id": "c1", "email": "jane@example.com", "phone": "12345"},
            {"email": "jane@example.com", "phone": None, "warnings": ["invalid_phone"]},
            id="invalid-phone-beside-valid-email-is-kept",
        ),
        pytest.param(
            {"id": "c1", "email": "jane@example.com", "created_at": "yesterday",
             "updated_at": 1710498600},
            {"created_at": None, "updated_at": "2024-03-15T10:30:00+00:00",
             "warnings": ["bad_timestamp:created_at"]},
            id="bad-timestamp-is-a-warning",
        ),
        pytest.param(
            {"id": "c1", "email": "jane@example.com", "tags": "VIP, lead,vip",
             "created_at": "2024-03-15T12:30:00+02:00"},
            {"tags": ["lead", "vip"], "created_at": "2024-03-15T10:30:00+00:00"},
            id="tags-as-string-and-offset-time",
        ),
        pytest.param(
            {"id": "c1", "email": "jane@example.com", "name": "Guest", "company": "  Acme  Inc "},
            {"first_name": None, "last_name": None, "full_name": None, "company": "Acme Inc"},
            id="placeholder-name-and-company",
        ),
    ],
)
def test_agentclara_contact_messy_payloads(raw, expected):
    contact = agentclara.normalize_contact(raw)
    assert tuple(contact) == contact_keys()
    assert contact["source"] == "agentclara"
    assert contact["source_id"] == expected.get("source_id", "c1")
    for key, value in expected.items():
        assert contact[key] == value, key


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (None, "malformed_payload"),
        ("cust_1", "malformed_payload"),
        (["id", "cust_1"], "malformed_payload"),
        ({"email": "john@example.com"}, "missing_id"),
        ({"id": None, "email": "john@example.com"}, "missing_id"),
        ({"id": "  ", "email": "john@example.com"}, "missing_id"),
        ({"id": True, "email": "john@example.com"}, "missing_id"),
        ({"id": "c1"}, "no_valid_email_or_phone"),
        ({"id": "c1", "email": None, "phone": None, "name": "John"}, "no_valid_email_or_phone"),
        ({"id": "c1", "email": "john@", "phone": "n/a"}, "no_valid_email_or_phone"),
        ({"id": "c1", "email": "", "phone": "000-000-0000"}, "no_valid_email_or_phone"),
    ],
)
def test_agentclara_contact_quarantine_reasons(raw, reason):
    with pytest.raises(InvalidRecord) as caught:
        agentclara.normalize_contact(raw)
    assert caught.value.reason == reason


def test_agentclara_contact_region_applies_to_local_numbers():
    contact = agentclara.normalize_contact({"id": "c1", "phone": "020 7946 0958"}, region="GB")
    assert contact["phone"] == "+442079460958"
    with pytest.raises(InvalidRecord):
        agentclara.normalize_contact({"id": "c1", "phone": "020 7946 0958"}, region="US")


# --- AgentClara conversations --------------------------------------------------

AGENTCLARA_DETAIL = {
    "id": "conv_abc123", "customer_id": "cust_xyz789", "customer_name": "John Smith",
    "customer_phone": "+14155552671", "channel": "sms", "status": "open",
    "messages": [
        {"id": "msg_1", "sender": "customer", "content": "Can I reschedule my appointment?",
         "timestamp": "2024-03-15T10:30:00Z"},
        {"id": "msg_2", "sender": "assistant", "content": "Of course! What date works better?",
         "timestamp": "2024-03-15T10:31:00Z"},
    ],
}


def test_agentclara_conversation_detail():
    conv = agentclara.normalize_conversation(AGENTCLARA_DETAIL)
    assert tuple(conv) == CONVERSATION_KEYS
    assert conv == {
        "schema": "conversation", "version": 1, "source": "agentclara", "source_id": "conv_abc123",
        "contact_source_id": "cust_xyz789", "email": None, "phone": "+14155552671",
        "channel": "sms", "status": "open", "subject": None,
        "started_at": "2024-03-15T10:30:00+00:00", "last_message_at": "2024-03-15T10:31:00+00:00",
        "messages": [
            {"id": "msg_1", "role": "customer", "content": "Can I reschedule my appointment?",
             "sent_at": "2024-03-15T10:30:00+00:00"},
            {"id": "msg_2", "role": "assistant", "content": "Of course! What date works better?",
             "sent_at": "2024-03-15T10:31:00+00:00"},
        ],
        "message_count": 2, "warnings": [],
    }


def test_agentclara_conversation_list_item():
    item = {"id": "conv_abc123", "customer_id": "cust_xyz789", "customer_email": "John@Example.com",
            "channel": "SMS", "subject": "Appointment Question", "last_message": "Friday?",
            "timestamp": "2024-03-15T10:30:00Z", "status": "open", "unread": True}
    conv = agentclara.normalize_conversation(item)
    assert (conv["email"], conv["channel"], conv["subject"]) == ("john@example.com", "sms", "Appointment Question")
    assert (conv["started_at"], conv["last_message_at"]) == ("2024-03-15T10:30:00+00:00", None)
    assert (conv["messages"], conv["message_count"]) == ([], 0)


@pytest.mark.parametrize(
    ("channel", "status", "expected_channel", "expected_status", "warnings"),
    [
        ("whatsapp", "resolved", "whatsapp", "resolved", []),
        ("Facebook Messenger", "CLOSED", "facebook", "closed", []),
        ("telegram", "snoozed", "other", None, ["unknown_channel", "unknown_status"]),
        (None, None, "other", None, []),
    ],
)
def test_agentclara_conversation_channel_and_status(channel, status, expected_channel, expected_status, warnings):
    conv = agentclara.normalize_conversation({"id": "c", "channel": channel, "status": status,
                                              "timestamp": "2024-03-15T10:30:00Z"})
    assert (conv["channel"], conv["status"], conv["warnings"]) == (expected_channel, expected_status, warnings)


def test_agentclara_conversation_messages_roles_and_bad_items():
    raw = {"id": "c", "channel": "sms", "messages": [
        {"id": "1", "sender": "visitor", "content": "hi", "timestamp": "2024-03-15T10:30:00Z"},
        {"id": "2", "sender": "bot", "content": "hello", "timestamp": "2024-03-15T10:31:00Z"},
        {"id": "3", "sender": "operator", "content": "human here", "timestamp": "not a time"},
        {"id": "4", "sender": "system", "content": "assigned"},
        "garbage",
    ]}
    conv = agentclara.normalize_conversation(raw)
    assert [(m["id"], m["role"], m["sent_at"]) for m in conv["messages"]] == [
        ("1", "customer", "2024-03-15T10:30:00+00:00"),
        ("2", "assistant", "2024-03-15T10:31:00+00:00"),
        ("3", "agent", None),
    ]
    assert conv["message_count"] == 3
    assert conv["warnings"] == ["bad_timestamp:message", "unknown_role", "bad_message"]


@pytest.mark.parametrize(
    ("raw", "reason"),
    [({"customer_id": "x"}, "missing_id"), ([], "malformed_payload"), ({"id": "c", "messages": "x"}, "malformed_payload")],
)
def test_agentclara_conversation_quarantine_reasons(raw, reason):
    with pytest.raises(InvalidRecord) as caught:
        agentclara.normalize_conversation(raw)
    assert caught.value.reason == reason


def test_agentclara_contact_from_conversation_uses_customer_fields():
    contact = agentclara.contact_from_conversation(AGENTCLARA_DETAIL)
    assert tuple(contact) == contact_keys()
    assert (contact["source"], contact["source_id"]) == ("agentclara", "cust_xyz789")
    assert (contact["email"], contact["phone"], contact["full_name"]) == (None, "+14155552671", "John Smith")
    assert contact["updated_at"] == "2024-03-15T10:31:00+00:00"
    with pytest.raises(InvalidRecord) as caught:
        agentclara.contact_from_conversation({"id": "conv_1", "customer_name": "John", "customer_phone": "+14155552671"})
    assert caught.value.reason == "missing_id"


# --- Clairo briefs -------------------------------------------------------------


def _brief(answers, **fields):
    return {"id": "cm3abc", "agentId": "cm1def", "conversationId": "cm2ghi",
            "createdAt": "2026-04-01T14:30:00Z", "summary": "...", "answers": answers, **fields}


@pytest.mark.parametrize(
    ("answers", "expected"),
    [
        pytest.param(
            {"email": "john@example.com", "phone": "+14155552671", "name": "John Smith",
             "company": "TechStart", "budget": "$50-100/month"},
            {"email": "john@example.com", "phone": "+14155552671", "first_name": "John",
             "last_name": "Smith", "full_name": "John Smith", "company": "TechStart",
             "extra": {"budget": "$50-100/month"}},
            id="plain-keys",
        ),
        pytest.param(
            {"Email address": "JOHN@EXAMPLE.COM", "Phone number": "(415) 555-2671",
             "full_name": "SMITH, JOHN", "Company name": "TechStart", "Team size": "50"},
            {"email": "john@example.com", "phone": "+14155552671", "first_name": "John",
             "last_name": "Smith", "company": "TechStart", "extra": {"Team size": "50"}},
            id="spaced-and-cased-keys",
        ),
        pytest.param(
            {"work_email": "jane@acme.io", "First Name": "JANE", "LAST_NAME": "doe",
             "Organisation": "Acme"},
            {"email": "jane@acme.io", "phone": None, "first_name": "Jane", "last_name": "Doe",
             "full_name": "Jane Doe", "company": "Acme", "extra": {}},
            id="work-email-and-split-name",
        ),
        pytest.param(
            {"How can we reach you?": "you can write to Jane@Acme.io, thanks", "Budget": "$5k"},
            {"email": "jane@acme.io", "phone": None, "extra": {"Budget": "$5k"}},
            id="email-found-by-shape-in-free-text",
        ),
        pytest.param(
            {"Best number to call": "+44 20 7946 0958", "Employees": "50", "Start date": "2026-05-01"},
            {"email": None, "phone": "+442079460958",
             "extra": {"Employees": "50", "Start date": "2026-05-01"}},
            id="phone-found-by-shape",
        ),
        pytest.param(
            {"email": "n/a", "contact": "john@example.com", "name": "Guest"},
            {"email": "john@example.com", "full_name": None, "warnings": ["invalid_email"]},
            id="invalid-alias-value-then-shape",
        ),
        pytest.param(
            {"Company": "Acme (sales@acme.com)", "Your name": "Bo Li", "Contact": "bo@li.dev"},
            {"email": "bo@li.dev", "company": "Acme (sales@acme.com)", "full_name": "Bo Li", "extra": {}},
            id="shape-scan-skips-answers-claimed-by-an-alias",
        ),
        pytest.param(
            {"email": "bob@example.com", "e-mail": "other@example.com"},
            {"email": "bob@example.com", "extra": {}},
            id="first-alias-wins-and-duplicates-are-consumed",
        ),
    ],
)
def test_clairo_contact_from_brief(answers, expected):
    contact = clairo.contact_from_brief(_brief(answers))
    assert tuple(contact) == contact_keys()
    assert (contact["source"], contact["source_id"]) == ("clairo", "cm3abc")
    assert contact["created_at"] == "2026-04-01T14:30:00+00:00"
    for key, value in expected.items():
        assert contact[key] == value, key


def test_clairo_aliases_are_configurable():
    answers = {"courriel": "marie@exemple.fr", "société": "Exemple SA"}
    aliases = {**clairo.DEFAULT_ALIASES, "email": ("courriel",), "company": ("Société",)}
    contact = clairo.contact_from_brief(_brief(answers), aliases=aliases)
    assert (contact["email"], contact["company"], contact["extra"]) == ("marie@exemple.fr", "Exemple SA", {})
    default = clairo.contact_from_brief(_brief(answers))
    assert (default["email"], default["company"]) == ("marie@exemple.fr", None)  # found by shape only


@pytest.mark.parametrize(
    ("brief", "reason"),
    [
        ("cm3abc", "malformed_payload"),
        ({"answers": {"email": "john@example.com"}}, "missing_id"),
        (_brief(None), "no_valid_email_or_phone"),
        ({"id": "cm3abc", "summary": "John Smith, CEO of TechStart."}, "no_valid_email_or_phone"),
        (_brief({"name": "John", "budget": "$50", "email": "nope"}), "no_valid_email_or_phone"),
        (_brief(["email", "john@example.com"]), "malformed_payload"),
    ],
)
def test_clairo_brief_quarantine_reasons(brief, reason):
    with pytest.raises(InvalidRecord) as caught:
        clairo.contact_from_brief(brief)
    assert caught.value.reason == reason


@pytest.mark.parametrize(
    ("status", "expected"), [("ACTIVE", "open"), ("COMPLETED", "closed"), ("closed", "closed"), ("ARCHIVED", "closed")]
)
def test_clairo_conversation(status, expected):
    raw = {"id": "cm2xyz", "agentId": "cm1abc", "status": status, "createdAt": "2026-01-01T10:00:00Z",
           "messages": [{"role": "user", "content": "Hello!", "createdAt": "2026-01-01T10:00:00Z"},
                        {"role": "assistant", "content": "Hi! How can I help?", "createdAt": "2026-01-01T10:00:02Z"}]}
    conv = clairo.normalize_conversation(raw)
    assert (conv["status"], conv["channel"], conv["message_count"]) == (expected, "webchat", 2)
    assert [m["role"] for m in conv["messages"]] == ["customer", "assistant"]
    ids = [m["id"] for m in conv["messages"]]
    assert all(i.startswith("m_") for i in ids) and len(set(ids)) == 2
    assert ids == [m["id"] for m in clairo.normalize_conversation(raw)["messages"]]  # stable


def test_clairo_conversation_from_brief_links_the_brief_contact():
    brief = _brief({"email": "john@example.com"},
                   conversation={"id": "cm2ghi", "messages": [{"role": "user", "content": "50 people"}]})
    conv = clairo.conversation_from_brief(brief)
    assert (conv["source_id"], conv["contact_source_id"], conv["email"]) == ("cm2ghi", "cm3abc", "john@example.com")
    assert conv["started_at"] == "2026-04-01T14:30:00+00:00"


# --- AgentPro visitors ---------------------------------------------------------


def _agentpro(**visitor):
    return {"id": "conv-1", "chatbotId": "bot-1", "sessionId": "user-session-123",
            "visitorName": None, "visitorEmail": None, "visitorPhone": None, "channel": "widget",
            "createdAt": "2025-01-01T09:00:00Z", "updatedAt": "2025-01-01T09:05:00Z",
            "messageCount": 4, **visitor}


@pytest.mark.parametrize(
    ("visitor", "expected"),
    [
        ({"visitorEmail": "Ann@Example.com", "visitorName": "ann lee"},
         {"source_id": "email:ann@example.com", "email": "ann@example.com", "first_name": "Ann", "last_name": "Lee"}),
        ({"visitorPhone": "415.555.2671"},
         {"source_id": "phone:+14155552671", "email": None, "phone": "+14155552671"}),
        ({"visitorEmail": "bad@", "visitorPhone": "+14155552671"},
         {"source_id": "phone:+14155552671", "warnings": ["invalid_email"]}),
        ({"visitorEmail": "ann@example.com", "visitorPhone": "+14155552671", "visitorName": "Visitor"},
         {"source_id": "email:ann@example.com", "phone": "+14155552671", "full_name": None}),
    ],
)
def test_agentpro_visitor_contact(visitor, expected):
    contact = agentpro.contact_from_conversation(_agentpro(**visitor))
    assert tuple(contact) == contact_keys()
    assert contact["source"] == "agentpro"
    assert (contact["created_at"], contact["updated_at"]) == ("2025-01-01T09:00:00+00:00", "2025-01-01T09:05:00+00:00")
    for key, value in expected.items():
        assert contact[key] == value, key


def test_agentpro_same_visitor_across_conversations_has_one_source_id():
    first = agentpro.contact_from_conversation(_agentpro(visitorEmail="ann@example.com"))
    second = agentpro.contact_from_conversation(
        _agentpro(id="conv-2", chatbotId="bot-2", sessionId="other", visitorEmail=" ANN@example.com"))
    assert first["source_id"] == second["source_id"] == "email:ann@example.com"


@pytest.mark.parametrize(
    "visitor",
    [{}, {"visitorName": "Ann Lee"}, {"visitorEmail": "", "visitorPhone": "  "}, {"visitorEmail": "x", "visitorPhone": "1"}],
)
def test_agentpro_anonymous_visitor_is_quarantined(visitor):
    with pytest.raises(InvalidRecord) as caught:
        agentpro.contact_from_conversation(_agentpro(**visitor))
    assert caught.value.reason == "no_valid_email_or_phone"


def test_agentpro_conversation_detail_and_list_item():
    detail = _agentpro(visitorPhone="+14155552671", channel="whatsapp", messages=[
        {"id": "m1", "role": "user", "content": "Where is my order?", "createdAt": "2025-01-01T09:00:00Z"},
        {"id": "m2", "role": "assistant", "content": "Let me check.", "createdAt": "2025-01-01T09:00:03Z"},
    ])
    conv = agentpro.normalize_conversation(detail)
    assert tuple(conv) == CONVERSATION_KEYS
    assert (conv["contact_source_id"], conv["channel"], conv["message_count"]) == ("phone:+14155552671", "whatsapp", 2)
    assert conv["last_message_at"] == "2025-01-01T09:00:03+00:00"
    listed = agentpro.normalize_conversation(_agentpro())
    assert (listed["contact_source_id"], listed["channel"], listed["message_count"]) == (None, "webchat", 4)
    assert listed["last_message_at"] == "2025-01-01T09:05:00+00:00"


# --- conversations: the day they belong to, and the ones that belong to no day ---


@pytest.mark.parametrize(
    ("raw", "day"),
    [
        pytest.param({"id": "c", "timestamp": "2026-11-08T23:50:00Z", "messages": [
            {"sender": "customer", "content": "hi", "timestamp": "2026-11-08T23:50:00Z"},
            {"sender": "assistant", "content": "hello", "timestamp": "2026-11-09T00:02:00Z"}]},
            "2026-11-09", id="last-message-past-midnight"),
        pytest.param({"id": "c", "timestamp": "2026-11-08T23:50:00-05:00"}, "2026-11-09", id="start-in-utc"),
        pytest.param({"id": "c", "messages": [{"sender": "customer", "content": "hi",
                                               "timestamp": "2026-11-07T10:00:00Z"}]},
                     "2026-11-07", id="no-start-first-message"),
    ],
)
def test_a_conversation_belongs_to_the_utc_day_of_its_last_activity(raw, day):
    assert activity_day(agentclara.normalize_conversation(raw)) == day


def test_a_conversation_without_any_time_is_quarantined():
    for raw, normalize in (({"id": "c", "channel": "sms", "messages": []}, agentclara.normalize_conversation),
                           ({"id": "c", "createdAt": "garbage"}, clairo.normalize_conversation)):
        with pytest.raises(InvalidRecord) as caught:
            normalize(raw)
        assert caught.value.reason == "no_timestamp"
    # Clairo's list item: no messages, but its update time places it.
    listed = clairo.normalize_conversation({"id": "c", "updatedAt": "2026-01-01T10:00:00Z"})
    assert listed["last_message_at"] == "2026-01-01T10:00:00+00:00"


def test_contacts_v2_say_what_their_payload_tells_about_conversations():
    visitor = agentpro.contact_from_conversation(_agentpro(visitorEmail="ann@example.com", channel="whatsapp"))
    assert (visitor["version"], visitor["preferred_channel"], visitor["last_seen_at"], visitor["conversation_count"]) == (
        3, "whatsapp", "2025-01-01T09:05:00+00:00", 0)
    lead = clairo.contact_from_brief(_brief({"email": "john@example.com"}))
    assert (lead["preferred_channel"], lead["last_seen_at"]) == ("webchat", "2026-04-01T14:30:00+00:00")
