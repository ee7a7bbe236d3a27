"""Identity: canonical contacts -> person keys (DESIGN.md matching rule) -> merged person dicts
(survivorship), independent of input order."""

from __future__ import annotations

import itertools
import random

import pytest

from schemas.identity import (
    PERSON_KEYS,
    assign_person_keys,
    group_persons,
    latest_per_source_record,
    merge_person,
    person_key,
)

P1, P2, P3 = "+14155552671", "+12125550100", "+16175550199"
# Stored by contact v2's rule, which let any full-length number through: not identities now.
FICTIONAL, LETTERS = "+15551234567", "+15552255669"  # +1 555 area code; "555-CALL-NOW" read as keypad digits


def contact(source, source_id, email=None, phone=None, updated="2024-01-01T00:00:00+00:00", **fields):
    record = {
        "schema": "contact", "version": 1, "source": source, "source_id": source_id,
        "email": email, "phone": phone, "first_name": None, "last_name": None,
        "full_name": None, "company": None, "tags": [],
        "created_at": fields.pop("created", updated), "updated_at": updated,
        "extra": {}, "warnings": [],
    }
    record.update(fields)
    return record


@pytest.mark.parametrize(
    ("email", "phone", "expected"),
    [
        ("john@example.com", P1, "email:john@example.com"),
        (" John@Example.COM ", None, "email:john@example.com"),
        ("not-an-email", "(415) 555-2671", f"phone:{P1}"),
        (None, P1, f"phone:{P1}"),
        (None, "12345", None),
        (None, "555-CALL-NOW", None),
        (None, "+1 555 0100", None),
        (None, FICTIONAL, None),
        ("ann@x.com", "555-CALL-NOW", "email:ann@x.com"),
        ("", "", None),
        (None, None, None),
    ],
)
def test_person_key(email, phone, expected):
    assert person_key(email, phone) == expected


# Each case: contacts, then the expected person key of each contact by source_id.
RULE_CASES = {
    "emails-are-their-own-persons": (
        [contact("agentclara", "a1", "ann@x.com", P1), contact("clairo", "c1", "ann@x.com")],
        {"a1": "email:ann@x.com", "c1": "email:ann@x.com"},
    ),
    "email-less-joins-the-one-emailed-owner-of-its-phone": (
        [contact("agentclara", "a1", "ann@x.com", P1), contact("agentpro", "v1", None, P1)],
        {"a1": "email:ann@x.com", "v1": "email:ann@x.com"},
    ),
    "owner-with-two-records-is-still-one-owner": (
        [contact("agentclara", "a1", "ann@x.com", P1), contact("clairo", "c1", "ann@x.com", P1),
         contact("agentpro", "v1", None, P1)],
        {"a1": "email:ann@x.com", "c1": "email:ann@x.com", "v1": "email:ann@x.com"},
    ),
    "owner-with-two-phones-attracts-both": (
        [contact("agentclara", "a1", "ann@x.com", P1), contact("clairo", "c1", "ann@x.com", P2),
         contact("agentpro", "v1", None, P1), contact("agentpro", "v2", None, P2)],
        {"a1": "email:ann@x.com", "c1": "email:ann@x.com", "v1": "email:ann@x.com", "v2": "email:ann@x.com"},
    ),
    "two-emails-sharing-a-phone-never-merge": (
        [contact("agentclara", "a1", "ann@x.com", P1), contact("agentclara", "a2", "bob@x.com", P1)],
        {"a1": "email:ann@x.com", "a2": "email:bob@x.com"},
    ),
    "phone-of-two-emailed-people-stays-its-own-person": (
        [contact("agentclara", "a1", "ann@x.com", P1), contact("clairo", "c1", "bob@x.com", P1),
         contact("agentpro", "v1", None, P1)],
        {"a1": "email:ann@x.com", "c1": "email:bob@x.com", "v1": f"phone:{P1}"},
    ),
    "unowned-phone-records-share-one-phone-person": (
        [contact("agentclara", "a1", None, P2), contact("agentpro", "v1", None, P2),
         contact("agentpro", "v2", None, P3)],
        {"a1": f"phone:{P2}", "v1": f"phone:{P2}", "v2": f"phone:{P3}"},
    ),
    "ambiguous-phone-records-share-one-phone-person": (
        [contact("agentclara", "a1", "ann@x.com", P1), contact("clairo", "c1", "bob@x.com", P1),
         contact("agentpro", "v1", None, P1), contact("agentclara", "a2", None, P1)],
        {"a1": "email:ann@x.com", "c1": "email:bob@x.com", "v1": f"phone:{P1}", "a2": f"phone:{P1}"},
    ),
    "email-less-with-another-phone-is-not-pulled-in": (
        [contact("agentclara", "a1", "ann@x.com", P1), contact("agentpro", "v1", None, P2)],
        {"a1": "email:ann@x.com", "v1": f"phone:{P2}"},
    ),
    "a-phone-an-older-rule-let-through-keys-and-joins-no-one": (
        [contact("agentclara", "a1", "ann@x.com", LETTERS), contact("agentclara", "a2", None, LETTERS),
         contact("clairo", "c1", None, LETTERS), contact("agentpro", "v1", None, FICTIONAL)],
        {"a1": "email:ann@x.com"},
    ),
    "neither-email-nor-phone-gets-no-key": (
        [contact("agentclara", "a1", "ann@x.com"), contact("agentclara", "a9")],
        {"a1": "email:ann@x.com"},
    ),
}


@pytest.mark.parametrize(("contacts", "expected"), RULE_CASES.values(), ids=RULE_CASES.keys())
def test_assign_person_keys_follows_the_matching_rule(contacts, expected):
    keys = assign_person_keys(contacts)
    assert {source_id: key for (_, source_id), key in keys.items()} == expected
    for order in itertools.permutations(contacts):
        assert assign_person_keys(order) == keys


def test_duplicate_source_record_counts_once_latest_wins():
    stale = contact("agentpro", "v1", "ann@x.com", P1, updated="2024-01-01T00:00:00+00:00")
    fresh = contact("agentpro", "v1", "ann@x.com", P2, updated="2024-06-01T00:00:00+00:00")
    orphan = contact("agentclara", "a1", None, P1)
    for order in itertools.permutations([stale, fresh, orphan]):
        kept = latest_per_source_record(order)
        assert any(c is fresh for c in kept) and not any(c is stale for c in kept) and len(kept) == 2
        # Only the fresh record says who owns what: P1 has no emailed owner any more.
        assert assign_person_keys(order) == {("agentpro", "v1"): "email:ann@x.com", ("agentclara", "a1"): f"phone:{P1}"}


# --- survivorship ----------------------------------------------------------------

ANN = [
    contact("agentclara", "cust_1", "ann@x.com", P1, updated="2024-03-01T00:00:00+00:00",
            created="2024-01-01T00:00:00+00:00", first_name="Ann", last_name="Lee", full_name="Ann Lee",
            tags=["vip"]),
    contact("clairo", "cm3", "ann@x.com", None, updated=None, created="2024-05-01T00:00:00+00:00",
            first_name="Annie", last_name="Lee-Park", full_name="Annie Lee-Park", company="Acme",
            tags=["lead"]),
    contact("agentpro", f"phone:{P2}", None, P2, updated="2024-02-01T00:00:00+00:00",
            first_name="Ann", full_name="Ann", company="Acme Old"),
    contact("agentclara", "cust_0", "ann@x.com", P3, updated="2023-12-01T00:00:00+00:00",
            created="2023-11-01T00:00:00+00:00", tags=["vip", "old"]),
]


def test_merge_person_survivorship():
    person = merge_person("email:ann@x.com", ANN)
    assert tuple(person) == PERSON_KEYS
    assert person == {
        "person_key": "email:ann@x.com",
        "email": "ann@x.com",
        # most recent contact with a phone: cust_1 (March) beats agentpro (Feb) and cust_0 (Dec)
        "phone": P1,
        # clairo (created May, no updated_at) is most recent and has a complete name
        "first_name": "Annie", "last_name": "Lee-Park", "full_name": "Annie Lee-Park",
        "company": "Acme",
        "tags": ["lead", "old", "vip"],
        "source_ids": {"agentclara": ["cust_0", "cust_1"], "agentpro": [f"phone:{P2}"], "clairo": ["cm3"]},
        "created_at": "2023-11-01T00:00:00+00:00",
        "updated_at": "2024-05-01T00:00:00+00:00",
    }


def test_merge_person_input_order_never_changes_the_result():
    expected = merge_person("email:ann@x.com", ANN)
    for order in itertools.permutations(ANN):
        assert merge_person("email:ann@x.com", list(order)) == expected


@pytest.mark.parametrize(
    ("contacts", "field", "expected"),
    [
        pytest.param(
            [contact("agentpro", "b", "a@x.com", company="Newer", updated="2024-02-01T00:00:00+00:00"),
             contact("agentclara", "a", "a@x.com", company="Older", updated="2024-01-01T00:00:00+00:00")],
            "company", "Newer", id="most-recent-wins-over-priority",
        ),
        pytest.param(
            [contact("agentpro", "b", "a@x.com", company="From agentpro"),
             contact("clairo", "c", "a@x.com", company="From clairo"),
             contact("agentclara", "a", "a@x.com", company="From agentclara")],
            "company", "From agentclara", id="tie-broken-by-source-priority",
        ),
        pytest.param(
            [contact("clairo", "z", "a@x.com", company="From z"), contact("clairo", "m", "a@x.com", company="From m")],
            "company", "From m", id="then-by-source-id",
        ),
        pytest.param(
            [contact("agentclara", "a", "a@x.com", company="", updated="2024-02-01T00:00:00+00:00"),
             contact("clairo", "c", "a@x.com", company="Acme", updated="2024-01-01T00:00:00+00:00")],
            "company", "Acme", id="empty-values-do-not-win",
        ),
        pytest.param(
            [contact("agentclara", "a", "a@x.com", updated=None, created=None, company="Undated"),
             contact("chatloom", "c", "a@x.com", updated="2020-01-01T00:00:00+00:00", company="Dated")],
            "company", "Dated", id="undated-ranks-last",
        ),
        pytest.param(
            [contact("agentclara", "a", "a@x.com", first_name="Ann", full_name="Ann",
                     updated="2024-02-01T00:00:00+00:00"),
             contact("clairo", "c", "a@x.com", first_name="Ann", last_name="Lee", full_name="Ann Lee",
                     updated="2024-01-01T00:00:00+00:00")],
            "full_name", "Ann Lee", id="complete-name-beats-newer-partial-name",
        ),
        pytest.param(
            [contact("agentpro", "v", None, P1, updated="2024-02-01T00:00:00+00:00"),
             contact("agentclara", "a", None, P1, updated="2024-01-01T00:00:00+00:00")],
            "phone", P1, id="phone-person-phone-is-the-key",
        ),
        pytest.param(
            [contact("agentclara", "a", "a@x.com", updated="2024-01-01T00:00:00+00:00"),
             contact("clairo", "c", "a@x.com", updated="2024-01-01T00:00:00+02:00")],
            "updated_at", "2024-01-01T00:00:00+00:00", id="updated-at-is-the-latest-in-utc",
        ),
    ],
)
def test_merge_person_precedence(contacts, field, expected):
    key = person_key(contacts[0]["email"], contacts[0]["phone"])
    for order in itertools.permutations(contacts):
        assert merge_person(key, list(order))[field] == expected


def test_merge_phone_person_has_no_email():
    person = merge_person(f"phone:{P1}", [contact("agentpro", "v", None, P1, first_name="Bo", full_name="Bo")])
    assert (person["email"], person["phone"], person["first_name"], person["last_name"]) == (None, P1, "Bo", None)


@pytest.mark.parametrize(("key", "contacts"), [("email:a@x.com", []), ("a@x.com", ANN), ("phone:", ANN)])
def test_merge_person_rejects_bad_input(key, contacts):
    with pytest.raises(ValueError):
        merge_person(key, contacts)


def test_merge_person_sums_conversations_of_v2_contacts():
    v2 = [
        {**contact("agentclara", "a", "a@x.com"), "version": 2, "preferred_channel": "sms",
         "last_seen_at": "2024-03-01T00:00:00+00:00", "conversation_count": 2},
        {**contact("agentpro", "v", "a@x.com"), "version": 2, "preferred_channel": "webchat",
         "last_seen_at": "2024-04-01T00:00:00+00:00", "conversation_count": 3},
    ]
    person = merge_person("email:a@x.com", v2)
    assert (person["preferred_channel"], person["last_seen_at"], person["conversation_count"]) == (
        "webchat", "2024-04-01T00:00:00+00:00", 5)
    assert "conversation_count" not in merge_person("email:a@x.com", [contact("agentclara", "a", "a@x.com")])


def test_group_persons_end_to_end_is_order_independent():
    contacts = [c for case in RULE_CASES.values() for c in case[0]][:6] + ANN
    # make (source, source_id) unique across the mixed cases
    contacts = [{**c, "source_id": f"{i}-{c['source_id']}"} for i, c in enumerate(contacts)]
    expected = group_persons(contacts)
    assert set(expected) == set(assign_person_keys(contacts).values())
    rng = random.Random(7)
    for _ in range(20):
        shuffled = contacts[:]
        rng.shuffle(shuffled)
        assert group_persons(shuffled) == expected


# ------------------------------------------------------------------ extra, carried into the person
def test_extra_is_merged_per_key_from_the_best_ranked_contact_that_has_it():
    newer = contact("clairo", "c1", "ann@x.com", updated="2024-02-01T00:00:00+00:00",
                    extra={"title": "CTO", "budget": None, "conversationId": "conv_9"})
    older = contact("agentclara", "a1", "ann@x.com", extra={"title": "Engineer", "budget": "10k"})
    for order in itertools.permutations([newer, older]):
        person = merge_person("email:ann@x.com", list(order))
        # title from the newer contact; budget from the older one, the newer having none.
        assert person["extra"] == {"budget": "10k", "conversationId": "conv_9", "title": "CTO"}


def test_a_person_whose_contacts_have_no_extra_is_the_dict_it_was():
    person = merge_person("email:ann@x.com", [contact("agentclara", "a1", "ann@x.com", extra={"empty": ""})])
    assert "extra" not in person


def test_carrying_extra_changes_no_crm_hash_under_the_built_in_mappings():
    """The hash is over what a mapping sends; the built-in mappings read no extra."""
    from connectors.hubspot import mapping as hubspot
    from connectors.salesforce.mapping import FieldMapping
    from schemas.hashing import content_hash

    with_extra = merge_person("email:ann@x.com", [contact("clairo", "c1", "ann@x.com", first_name="Ann",
                                                          last_name="Lee", extra={"title": "CTO"})])
    without = {key: value for key, value in with_extra.items() if key != "extra"}
    lead = FieldMapping("Lead", "Agent_Contact_Id__c", {}, None)
    assert content_hash(hubspot.properties(with_extra)) == content_hash(hubspot.properties(without))
    assert content_hash(lead.properties(with_extra)) == content_hash(lead.properties(without))


def test_a_mapping_from_extra_now_writes_the_merged_value():
    from connectors.fieldrules import Rule, merged
    from connectors.hubspot import mapping as hubspot

    person = merge_person("email:ann@x.com", [contact("clairo", "c1", "ann@x.com", extra={"title": "CTO"})])
    rules = merged(hubspot.BUILTIN_RULES, [Rule("jobtitle", "extra.title")])
    assert hubspot.properties(person, rules)["jobtitle"] == "CTO"
