"""The field mapping without a server: YAML file -> model (with lines) -> rules -> what is sent.

Covers: no file gives exactly today's payloads (content hashes of a sample
of persons recorded before the mapping existed), the `--print-default` file
is valid and changes nothing, every problem of a bad file in one list with
its line, the CRM checks (unknown property, enumeration/picklist options,
keys, read-only, required), and the write policies as a property over
arbitrary persons, current values and policies.
"""

from __future__ import annotations

import hashlib
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.fieldrules import WRITE_POLICIES, Rule, merged
from connectors.hubspot import mapping as hubspot
from connectors.salesforce.mapping import ROLLUP_FIELDS, FieldMapping
from pipelines.mapping.__main__ import default_text
from pipelines.mapping.apply import IN_CRM, NOT_IN_CRM, changes, is_empty, outgoing, skip_reason
from pipelines.mapping.check import CrmFacts, check
from pipelines.mapping.load import load_text
from pipelines.mapping.model import PERSON_FIELDS, MappingError, TargetMapping
from schemas.hashing import content_hash

TARGETS = ("hubspot", "salesforce")


def sample_persons(n: int = 60) -> list[dict[str, Any]]:
    """Deterministic persons covering the shapes merge_person produces (names, cuts, v2 roll-ups, phone keys)."""
    rng = random.Random(11)
    firsts = ["Ann", "bob", "José", "Zoë", None, "", "  Li  ", "Dr. Jane"]
    lasts = ["Lee", None, "O'Brien", "van der Berg", "", "Smith-Jones", "🙂" * 50]
    fulls = [None, "Ann Marie Lee", "SMITH, JOHN", "Cher", "", "Bob  Dylan", "José Álvarez"]
    out = []
    for i in range(n):
        has_email = rng.random() < 0.7
        email = f"User{i}@Example.com" if has_email else None
        phone = rng.choice([None, f"+1415555{i:04d}", f"+4420794{i:05d}"])
        key = f"email:user{i}@example.com" if has_email else f"phone:{phone or '+14155550000'}"
        person = {
            "person_key": key, "email": email, "phone": phone,
            "first_name": rng.choice(firsts), "last_name": rng.choice(lasts), "full_name": rng.choice(fulls),
            "company": rng.choice([None, "Acme", "", "x" * 300, "Ünïcode GmbH"]),
            "tags": rng.choice([[], ["vip"], ["b", "a", "a;b"], ["  ", "lead"]]),
            "source_ids": rng.choice([{}, {"agentclara": [f"cust_{i}"]},
                                      {"clairo": ["cm1", "cm2"], "agentpro": ["v9"]}]),
            "created_at": "2026-01-02T03:04:05+00:00", "updated_at": "2026-02-03T04:05:06+00:00",
        }
        if rng.random() < 0.6:
            person.update({
                "preferred_channel": rng.choice(["sms", "webchat", None]),
                "last_seen_at": rng.choice([None, "2026-11-20T10:00:00+00:00", "2026-11-21T23:59:59.123456Z"]),
                "conversation_count": rng.choice([0, 1, 7]),
                "channels": rng.choice([[], ["sms"], ["webchat", "email", "sms"]]),
            })
        out.append(person)
    return out


# Digests of content_hash(properties(person)) over sample_persons(), taken with the code as it was
# before the mapping file existed (connectors/hubspot_mapping.py and salesforce_mapping.py, 2026-12-01).
# Salesforce's two changed with the one name rule (schemas.fields.crm_names, issue 10): only for the
# sample persons whose names the two old splitters disagreed on (12 of 60, held by
# test_the_one_name_rule_changes_only_names_the_old_copies_disagreed_on); HubSpot's copy won, so its
# digest is the one of 2026-12-01. Before: lead 05f1d20f...37d9574c53, contact 1a9efabe...125ee6bdee.
TODAYS_DIGESTS = {
    "hubspot": "879e919171a28ffaa63d5973711490aaef21591b0d4caa7776dcac38e5a11c7a",
    "lead": "d99cafb657f35f61063d956f81c7fcea2eb76b08aa031a03aeea239ebacbeead",
    "contact": "28f37477135f252db58aaba30b9e6c4e0d918605641fe2c9b62a4073608b1c3b",
}


def _text(value: Any) -> str | None:
    return (" ".join(str(value).split()) or None) if value is not None else None


def _old_hubspot_names(person: dict[str, Any]) -> tuple[str | None, str | None]:
    """connectors/hubspot/mapping.py `_names` before issue 10, frozen here as the reference."""
    first, last, full = _text(person.get("first_name")), _text(person.get("last_name")), _text(person.get("full_name"))
    if full and not (first and last):
        words = full.split(" ")
        if first is None and last is None:
            first, last = words[0], " ".join(words[1:]) or None
        elif last is None and full.lower().startswith(str(first).lower() + " "):
            last = full[len(str(first)) + 1:]
    return first, last


def _old_salesforce_names(person: dict[str, Any]) -> tuple[str | None, str | None]:
    """connectors/salesforce/mapping.py `split_name` before issue 10, frozen here as the reference."""
    first, last, full = _text(person.get("first_name")), _text(person.get("last_name")), _text(person.get("full_name"))
    if last or not full:
        return first, last
    words = full.split()
    if first:
        if len(words) > 1 and words[0].lower() == first.lower():
            return first, " ".join(words[1:])
        return first, None if full.lower() == first.lower() else full
    return (words[0], " ".join(words[1:])) if len(words) > 1 else (None, full)


def _digest(properties: Any) -> str:
    return hashlib.sha256("".join(content_hash(properties(p)) for p in sample_persons()).encode()).hexdigest()


def _lead(overrides: tuple[Rule, ...] = ()) -> FieldMapping:
    return FieldMapping("Lead", "Agent_Contact_Id__c", {}, "Agent_Sources__c", tuple(ROLLUP_FIELDS.values()),
                        overrides=overrides)


def _load(text: str) -> tuple[Any, list[Any]]:
    return load_text(text, "m.yaml", TARGETS)


# ------------------------------------------------------------------ no file, no change
def test_without_a_file_every_content_hash_is_todays() -> None:
    assert _digest(hubspot.properties) == TODAYS_DIGESTS["hubspot"]
    assert _digest(_lead().properties) == TODAYS_DIGESTS["lead"]
    assert _digest(FieldMapping("Contact").properties) == TODAYS_DIGESTS["contact"]


def test_the_one_name_rule_changes_only_names_the_old_copies_disagreed_on() -> None:
    from connectors.salesforce.mapping import split_name

    disagreed = 0
    for person in sample_persons():
        hubspot_names, salesforce_names = _old_hubspot_names(person), _old_salesforce_names(person)
        disagreed += hubspot_names != salesforce_names
        assert hubspot._names(person) == split_name(person) == hubspot_names  # HubSpot's copy won
    assert disagreed == 12


def test_print_default_writes_a_file_that_loads_without_a_problem() -> None:
    printed = subprocess.run([sys.executable, "-m", "pipelines.mapping", "--print-default"], capture_output=True,
                             text=True, check=True, cwd=Path(__file__).resolve().parent.parent).stdout
    loaded, problems = _load(printed)
    assert problems == [] and [t.target for t in loaded.targets] == ["hubspot", "salesforce"]
    assert printed == default_text(None)


def test_the_printed_default_file_is_valid_and_changes_no_hash() -> None:
    for target in TARGETS:
        loaded, problems = _load(default_text(target))
        assert problems == [] and loaded.target(target).mode == "upsert"
    rules = _load(default_text("hubspot"))[0].target("hubspot").rules
    assert _digest(lambda p: hubspot.properties(p, merged(hubspot.BUILTIN_RULES, rules))) == TODAYS_DIGESTS["hubspot"]
    lead_rules = _load(default_text("salesforce"))[0].target("salesforce").rules
    assert _digest(_lead(lead_rules).properties) == TODAYS_DIGESTS["lead"]


def test_a_mapping_change_moves_exactly_the_hashes_it_affects() -> None:
    persons = sample_persons()
    rules = merged(hubspot.BUILTIN_RULES, (Rule("company", value="Acme", has_value=True),))
    moved = {p["person_key"] for p in persons
             if content_hash(hubspot.properties(p)) != content_hash(hubspot.properties(p, rules))}
    assert moved == {p["person_key"] for p in persons if (p.get("company") or "").strip() != "Acme"}


# ------------------------------------------------------------------ the file, with lines
GOOD = """\
hubspot:
  mode: update_only
  create_missing_properties: true
  fields:
    firstname: {from: first_name, write: if_empty}
    lifecyclestage: {value: lead, write: if_empty}
    agent_sync_tags: {write: never}
    jobtitle:
      from: extra.title
salesforce:
  fields:
    LeadSource: {value: Web}
"""


def test_a_good_file_loads_into_typed_rules_with_their_lines() -> None:
    loaded, problems = _load(GOOD)
    assert problems == []
    hs = loaded.target("hubspot")
    assert (hs.mode, hs.create_missing_properties) == ("update_only", True)
    assert [(r.name, r.source, r.value, r.write, r.line) for r in hs.rules] == [
        ("firstname", "first_name", None, "if_empty", 5), ("lifecyclestage", None, "lead", "if_empty", 6),
        ("agent_sync_tags", None, None, "never", 7), ("jobtitle", "extra.title", None, "always", 8)]
    assert hs.if_empty() == ("firstname", "lifecyclestage")
    assert loaded.target("salesforce").rules[0].has_value


def test_every_problem_of_a_bad_file_is_listed_with_its_line() -> None:
    text = """\
hubspot:
  mode: merge
  fields:
    firstname: {from: nickname}
    lastname: {from: last_name, write: sometimes}
    company: {from: company, value: Acme}
    phone: {}
  colour: blue
pipedrive: {}
"""
    loaded, problems = _load(text)
    assert [(p.line, p.message.split(":")[0]) for p in problems] == [
        (2, "hubspot.mode"), (4, "hubspot.fields.firstname.from"), (5, "hubspot.fields.lastname.write"),
        (6, "hubspot.fields.company"), (7, "hubspot.fields.phone"), (8, "hubspot"), (9, "the file")]
    message = str(MappingError(problems, "hubspot"))
    assert "7 problems; nothing was written" in message and "m.yaml:4: hubspot.fields.firstname.from" in message


def test_malformed_yaml_is_one_problem_with_its_line() -> None:
    loaded, problems = _load("hubspot:\n  fields:\n    firstname: {from: first_name\n")
    assert loaded is None and len(problems) == 1 and problems[0].line == 4 and "not valid YAML" in problems[0].message
    assert _load("")[1][0].message.startswith("the file is empty")


# ------------------------------------------------------------------ the CRM check
FACTS = CrmFacts(
    catalog={"firstname": {"type": "string", "options": None, "writable": True},
             "lifecyclestage": {"type": "enumeration", "options": ["lead", "customer"], "writable": True},
             "hs_object_id": {"type": "number", "options": None, "writable": False},
             "score": {"type": "number", "options": None, "writable": True},
             "LastName": {"type": "string", "options": None, "writable": True, "required": True}},
    builtin=(Rule("firstname", "first_name"),), keys=frozenset({"email"}), planned=frozenset({"agent_sync_tags"}),
    can_create=True, missing_hint="Create it.")


def _check(*rules: Rule, create: bool = False) -> tuple[list[str], tuple[str, ...]]:
    problems, created = check(TargetMapping("hubspot", rules=rules, create_missing_properties=create), FACTS, "m.yaml")
    return [p.message for p in problems], created


def test_the_crm_check_names_every_problem() -> None:
    messages, created = _check(
        Rule("lifecyclestage", value="prospect", has_value=True, line=3), Rule("nope", "email", line=4),
        Rule("email", "phone", line=5), Rule("hs_object_id", value=1, has_value=True, line=6),
        Rule("LastName", write="never", line=7), Rule("agent_sync_tags", write="never"),
        Rule("firstname", write="if_empty"), Rule("score", value="high", has_value=True))
    assert created == ()
    assert messages == [
        "hubspot.fields.lifecyclestage: 'prospect' is not one of its options (lead, customer)",
        "hubspot.fields.nope: hubspot has no such property. Create it.",
        "hubspot.fields.email: is the upsert key of the sync; the mapping cannot change it",
        "hubspot.fields.hs_object_id: is read-only in the CRM; the sync cannot write it",
        "hubspot.fields.LastName: is required on new records; `never` would make every create fail (use if_empty)",
        "hubspot.fields.score: is a number in the CRM; 'high' is not a number",
    ]


def test_missing_custom_properties_are_created_only_when_the_file_says_so() -> None:
    assert _check(Rule("favourite_colour", value="blue", has_value=True), create=True) == ([], ("favourite_colour",))
    messages, created = _check(Rule("favourite_colour", value="blue", has_value=True))
    assert created == () and "no such property" in messages[0]


# ------------------------------------------------------------------ write policies and modes
def test_if_empty_fills_an_empty_value_and_keeps_a_typed_one() -> None:
    desired = {"email": "a@x.com", "firstname": "Ann", "lastname": "Lee"}
    policies = {"firstname": "if_empty", "lastname": "if_empty"}
    assert outgoing(desired, {"firstname": "Anne", "lastname": ""}, policies) == (
        {"email": "a@x.com", "lastname": "Lee"}, ("firstname",))
    assert outgoing(desired, None, policies) == (desired, ())  # a record created now gets every value
    assert [(c.name, c.old, c.new, c.held) for c in changes("k", desired, {"firstname": "Anne"}, policies)] == [
        ("email", None, "a@x.com", False), ("lastname", None, "Lee", False), ("firstname", "Anne", "Ann", True)]


def test_modes_skip_who_they_must() -> None:
    assert skip_reason("update_only", exists=False) == NOT_IN_CRM and skip_reason("update_only", True) is None
    assert skip_reason("create_only", exists=True) == IN_CRM and skip_reason("create_only", False) is None
    assert skip_reason("upsert", False) is None and skip_reason("upsert", True) is None


values = st.one_of(st.none(), st.just(""), st.just("  "), st.text(max_size=8), st.integers(0, 9))
names = st.sampled_from(["firstname", "lastname", "company", "phone", "x_custom"])


@settings(max_examples=300, deadline=None)
@given(desired=st.dictionaries(names, values), current=st.one_of(st.none(), st.dictionaries(names, values)),
       policies=st.dictionaries(names, st.sampled_from(WRITE_POLICIES)))
def test_no_policy_ever_blanks_overwrites_under_if_empty_or_sends_never(desired, current, policies) -> None:
    send, held = outgoing(desired, current, policies)
    assert not any(is_empty(value) for value in send.values())  # never blanks a CRM value
    assert not any(policies.get(name) == "never" for name in send)  # never sends a `never` property
    for name in send:
        assert name in desired and send[name] == desired[name]  # only mapped values, unchanged
        if policies.get(name) == "if_empty" and current is not None:
            assert is_empty(current.get(name))  # if_empty never overwrites a non-empty value
    for name, value in desired.items():  # everything else that has a value is sent
        if not is_empty(value) and policies.get(name) != "never" and name not in held:
            assert name in send


@settings(max_examples=200, deadline=None)
@given(person=st.fixed_dictionaries({
    "person_key": st.just("email:a@x.com"), "email": st.just("a@x.com"),
    "first_name": st.one_of(st.none(), st.text(max_size=5)), "last_name": st.one_of(st.none(), st.text(max_size=5)),
    "company": st.one_of(st.none(), st.text(max_size=5)), "tags": st.lists(st.text(max_size=3), max_size=3),
    "extra": st.dictionaries(st.sampled_from(["title", "budget"]), st.one_of(st.none(), st.text(max_size=4)))}),
    field=st.sampled_from(PERSON_FIELDS + ("extra.title", "extra.budget")), write=st.sampled_from(WRITE_POLICIES))
def test_a_rule_from_any_person_field_renders_on_both_crms(person, field, write) -> None:
    rule = Rule("company", field, write=write)
    hs = hubspot.properties(person, merged(hubspot.BUILTIN_RULES, (rule,)))
    sf = _lead((Rule("Company", field, write=write),)).properties(person)
    assert ("company" in hs) == (write != "never" and hubspot.render(field, person) is not None)
    assert ("Company" in sf) == (write != "never")  # required on a Lead: its placeholder when the person has none
    assert all(not is_empty(v) for v in hs.values())
