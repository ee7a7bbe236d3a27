"""HubSpot outcome settling from recorded replies, no server: reply body -> one SyncOutcome per input.

Covers 200/201 results matched by objectWriteTraceId or, without it, by
their key values; 207 errors naming their inputs by trace id or by
`context.ids`; whole-batch refusals of one input; what is permanent; the
two "gone" codes; bisect-on-400 driven by a fake `send` that replays
recorded refusals; and the daily-limit test on 429s.
"""

from __future__ import annotations

from typing import Any, Sequence

import pytest

from connectors.hubspot.settle import (
    CONTACT_GONE,
    RECORD_GONE,
    Reply,
    Sent,
    bisect,
    describe_error,
    is_daily_limit,
    is_refusal,
    named_culprits,
    settle,
)

KEYS = ["email:a@example.com", "email:b@example.com", "email:c@example.com"]


def reply(status: int, body: Any) -> Reply:
    return Reply(status, body, {})


def by_email(result: dict[str, Any]) -> list[str]:
    return [((result.get("properties") or {}).get("email") or "").lower()]


SENT = Sent(KEYS, ["a@example.com", "b@example.com", "c@example.com"], by_email)

VALIDATION_207 = {
    "status": "COMPLETE",
    "results": [{"id": "101", "properties": {"email": "a@example.com"}, "new": True, "objectWriteTraceId": "0"},
                {"id": "102", "properties": {"email": "c@example.com"}, "new": False}],
    "numErrors": 1,
    "errors": [{"status": "error", "category": "VALIDATION_ERROR",
                "message": 'Property values were not valid: [{"isValid":false,"message":"Email address b@ is '
                           'invalid","error":"INVALID_EMAIL","name":"email"}]',
                "context": {"objectWriteTraceId": ["1"]}, "errors": [], "links": {}}],
}


def test_a_200_settles_every_input_by_trace_id_and_new() -> None:
    body = {"status": "COMPLETE", "results": [
        {"id": str(100 + i), "new": i == 0, "objectWriteTraceId": str(i), "properties": {}} for i in (2, 0, 1)]}
    outcomes = settle(reply(200, body), SENT)
    assert [(o.key, o.ok, o.crm_id, o.created) for o in outcomes] == [
        (KEYS[0], True, "100", True), (KEYS[1], True, "101", False), (KEYS[2], True, "102", False)]


def test_a_207_fails_only_the_named_input_and_matches_results_without_trace_ids() -> None:
    ok_a, failed_b, ok_c = settle(reply(207, VALIDATION_207), SENT)
    assert (ok_a.ok, ok_a.crm_id, ok_a.created) == (True, "101", True)
    assert (ok_c.ok, ok_c.crm_id, ok_c.created) == (True, "102", False)  # matched by its email
    assert not failed_b.ok and failed_b.permanent
    assert (failed_b.error, failed_b.error_code) == ("Email address b@ is invalid", "INVALID_EMAIL")


def test_a_207_error_naming_ids_only_lands_on_that_input() -> None:
    body = {"results": [], "errors": [{"category": "CONFLICT", "message": "Contact already exists. Existing ID: 9",
                                       "context": {"ids": ["c@example.com"]}}]}
    a, b, c = settle(reply(207, body), SENT)
    assert (a.error_code, b.error_code) == ("NO_RESULT", "NO_RESULT") and not (a.permanent or b.permanent)
    assert (c.ok, c.error_code, c.permanent) == (False, "CONFLICT", True)


def test_an_update_of_a_record_hubspot_no_longer_has_is_record_gone() -> None:
    sent = Sent(["k1", "k2"], ["11", "12"], lambda result: [str(result.get("id"))])
    body = {"results": [{"id": "11", "properties": {}}],
            "errors": [{"category": "OBJECT_NOT_FOUND", "message": "Object 12 not found",
                        "context": {"ids": ["12"]}}]}
    first, second = settle(reply(207, body), sent)
    assert first.ok and first.crm_id == "11" and not first.created
    assert (second.ok, second.error_code, second.permanent) == (False, RECORD_GONE, False)
    [alone] = settle(reply(404, {"status": "error", "message": "Object not found. objectId: 12"}), Sent(["k2"]))
    assert alone.error_code == RECORD_GONE


ASSOCIATION_400 = {
    "status": "error", "message": "One or more associations are invalid: no contacts with id 1002",
    "category": "VALIDATION_ERROR", "subCategory": "crm.associations.INVALID_OBJECT_IDS",
    "context": {"toObjectId": ["1002"]},
    "errors": [{"message": "One or more associations are invalid: no contacts with id 1002",
                "code": "INVALID_ASSOCIATION", "context": {"toObjectId": ["1002"]}}],
}


def test_an_association_to_a_missing_contact_is_contact_gone_never_permanent() -> None:
    [gone] = settle(reply(400, ASSOCIATION_400), Sent(["agentclara:c1"], created=True))
    assert (gone.ok, gone.error_code, gone.permanent) == (False, CONTACT_GONE, False)
    assert "deleted or merged" in (gone.error or "")
    per_input = {"results": [{"id": "7", "objectWriteTraceId": "1", "properties": {}}],
                 "errors": [{"category": "VALIDATION_ERROR", "message": "One or more associations are invalid: "
                             "no contacts with id 1002", "context": {"objectWriteTraceId": ["0"]},
                             "errors": [{"message": "...", "code": "INVALID_ASSOCIATION"}]}]}
    first, second = settle(reply(207, per_input), Sent(["c1", "c2"], created=True))
    assert first.error_code == CONTACT_GONE and second.ok and second.created


def test_a_whole_batch_refusal_settles_a_single_input_only() -> None:
    body = {"status": "error", "message": "Duplicate IDs found in batch input", "category": "VALIDATION_ERROR"}
    [alone] = settle(reply(400, body), Sent([KEYS[0]]))
    assert (alone.ok, alone.permanent, alone.error_code) == (False, True, "VALIDATION_ERROR")
    with pytest.raises(ValueError):
        settle(reply(400, body), SENT)


def test_what_is_a_refusal_worth_splitting() -> None:
    assert is_refusal(reply(400, ASSOCIATION_400)) and is_refusal(reply(409, {})) and is_refusal(reply(404, None))
    assert not is_refusal(reply(400, {"message": "Batch input size 101 exceeds the maximum of 100."}))
    assert not is_refusal(reply(500, {})) and not is_refusal(reply(207, {}))


def test_a_property_that_does_not_exist_yet_is_not_permanent() -> None:
    error = {"category": "VALIDATION_ERROR", "message": 'Property values were not valid: [{"isValid":false,'
             '"message":"Property \\"x\\" does not exist","error":"PROPERTY_DOESNT_EXIST","name":"x"}]',
             "context": {"objectWriteTraceId": ["0"]}}
    [outcome] = settle(reply(207, {"results": [], "errors": [error]}), Sent(["k"]))
    assert outcome.error_code == "PROPERTY_DOESNT_EXIST" and not outcome.permanent
    assert describe_error({}) == ("error", "ERROR")


class Replay:
    """A fake `send`: refuses every batch holding a bad input (as HubSpot's 400 does), else answers 201."""

    def __init__(self, bad: set[str], refusal: dict[str, Any]) -> None:
        self.bad, self.refusal, self.sent = bad, refusal, []  # type: tuple[set[str], dict, list[list[str]]]

    def __call__(self, items: Sequence[str]) -> Reply:
        self.sent.append(list(items))
        if self.bad & set(items):
            return reply(400, self.refusal)
        return reply(201, {"results": [{"id": f"id-{item}", "objectWriteTraceId": str(i), "properties": {}}
                                       for i, item in enumerate(items)]})


def read(items: Sequence[str], answer: Reply) -> list[Any]:
    return settle(answer, Sent(list(items), created=True))


def never(answer: Reply) -> None:
    raise AssertionError(f"unexpected HTTP {answer.status}")


@pytest.mark.parametrize("bad", [{"i3"}, {"i0", "i7"}, {"i9"}])
def test_bisect_splits_until_the_bad_inputs_stand_alone(bad: set[str]) -> None:
    items = [f"i{n}" for n in range(10)]
    send = Replay(bad, {"status": "error", "message": "Invalid input", "category": "VALIDATION_ERROR"})
    outcomes = bisect(items, send, read, never)
    assert [o.key for o in outcomes] == items  # input order, whatever the splits
    assert {o.key for o in outcomes if not o.ok} == bad
    assert all(o.crm_id == f"id-{o.key}" for o in outcomes if o.ok)
    assert len(send.sent) <= 1 + 2 * len(bad) * 4  # a bisection, not one request per input


def test_bisect_picks_out_inputs_a_refusal_names() -> None:
    items = ["c1", "c2", "c3", "c4"]
    contacts = {"c1": "1001", "c2": "1002", "c3": "1003", "c4": "1002"}
    send = Replay({"c2", "c4"}, ASSOCIATION_400)
    outcomes = bisect(items, send, read, never,
                      lambda part, answer: named_culprits(answer, [contacts[i] for i in part]))
    assert [(o.key, o.error_code) for o in outcomes if not o.ok] == [("c2", CONTACT_GONE), ("c4", CONTACT_GONE)]
    assert send.sent == [items, ["c1", "c3"]]


def test_bisect_raises_what_nobody_can_settle() -> None:
    class Stop(Exception):
        pass

    def fail(answer: Reply) -> None:
        raise Stop(answer.status)

    with pytest.raises(Stop):
        bisect(["a", "b"], lambda items: reply(503, {"message": "unavailable"}), read, fail)


def test_a_daily_limit_429_is_told_from_the_ten_second_window() -> None:
    assert is_daily_limit(429, {}, {"policyName": "DAILY"})
    assert is_daily_limit(429, {"X-HubSpot-RateLimit-Daily-Remaining": "0"}, None)
    assert not is_daily_limit(429, {}, {"policyName": "TEN_SECONDLY_ROLLING"})
    assert not is_daily_limit(500, {}, {"policyName": "DAILY"})
