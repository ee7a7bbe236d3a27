"""Salesforce outcome settling from recorded replies, no server: reply -> one SyncOutcome per record.

Covers sObject Collections `UpsertResult` lists (created, updated, a record
error with its fields, a misshapen reply), which codes are worth sending
again, Bulk API 2.0's three result CSVs matched by external id (UTF-8 keys
that requests decoded as Latin-1 included), and error bodies.
"""

from __future__ import annotations

import pytest

from connectors.salesforce.settle import (
    bulk_outcome,
    bulk_outcomes,
    failure,
    first_error,
    settle_collection,
)

KEYS = ["email:a@example.com", "email:b@example.com", "email:c@example.com"]

# As Salesforce answers PATCH composite/sobjects/Lead/Agent_Contact_Id__c with allOrNone false.
COLLECTION_REPLY = [
    {"id": "00Q000000000001AAA", "success": True, "errors": [], "created": True},
    {"success": False, "errors": [{"statusCode": "INVALID_EMAIL_ADDRESS", "message": "Email: invalid email address: b@",
                                   "fields": ["Email"]}]},
    {"id": "00Q000000000003AAA", "success": True, "errors": [], "created": False},
]


def test_collection_results_settle_in_input_order() -> None:
    created, rejected, updated = settle_collection(KEYS, COLLECTION_REPLY)
    assert (created.ok, created.created, created.crm_id) == (True, True, "00Q000000000001AAA")
    assert (updated.ok, updated.created) == (True, False)
    assert (rejected.ok, rejected.error_code, rejected.permanent) == (False, "INVALID_EMAIL_ADDRESS", True)
    assert rejected.error == "Email: invalid email address: b@ (fields: Email)"


def test_a_misshapen_collection_reply_is_refused() -> None:
    with pytest.raises(ValueError, match="expected 3 results, got 2"):
        settle_collection(KEYS, COLLECTION_REPLY[:2])
    with pytest.raises(ValueError, match="got dict"):
        settle_collection(KEYS, {"errorCode": "X"})


@pytest.mark.parametrize("code, permanent", [
    ("UNABLE_TO_LOCK_ROW", False), ("ALL_OR_NONE_OPERATION_ROLLED_BACK", False), ("INVALID_FIELD", False),
    ("REQUIRED_FIELD_MISSING", True), ("DUPLICATE_VALUE", True), ("STRING_TOO_LONG", True),
])
def test_which_record_errors_wait_for_a_data_change(code: str, permanent: bool) -> None:
    assert failure("k", code, "").permanent is permanent and failure("k", code, "").error == code


SUCCESSFUL = "sf__Id,sf__Created,Agent_Contact_Id__c,LastName\n00Q1,true,email:a@example.com,A\n" \
             "00Q3,false,email:zo\u00c3\u00ab@example.com,Z\n"  # "zoë" as requests decodes UTF-8 text/csv
FAILED = 'sf__Id,sf__Error,Agent_Contact_Id__c,LastName\n,"REQUIRED_FIELD_MISSING:Required fields are missing: ' \
         '[LastName]:LastName --",email:b@example.com,\n'
UNPROCESSED = "Agent_Contact_Id__c,LastName\nemail:c@example.com,C\n"


def test_bulk_result_sets_are_matched_by_external_id() -> None:
    found = bulk_outcomes(SUCCESSFUL, FAILED, UNPROCESSED, "Agent_Contact_Id__c")
    a = bulk_outcome(found, "email:a@example.com")
    assert (a.ok, a.crm_id, a.created) == (True, "00Q1", True)
    zoe = bulk_outcome(found, "email:zoë@example.com")
    assert zoe.ok and zoe.crm_id == "00Q3" and not zoe.created
    b = bulk_outcome(found, "email:b@example.com")
    assert (b.error_code, b.permanent) == ("REQUIRED_FIELD_MISSING", True)
    assert b.error == "Required fields are missing: [LastName] (fields: LastName)"
    c = bulk_outcome(found, "EMAIL:C@EXAMPLE.COM".lower())
    assert (c.error_code, c.permanent) == ("UNPROCESSED", False)
    missing = bulk_outcome(found, "email:nobody@example.com")
    assert (missing.error_code, missing.permanent) == ("NO_RESULT", False)


def test_bulk_result_sets_may_be_empty() -> None:
    assert bulk_outcomes(None, "", None, "Agent_Contact_Id__c") == {}


def test_error_bodies() -> None:
    assert first_error([{"errorCode": "INVALID_SESSION_ID", "message": "Session expired"}]) == (
        "INVALID_SESSION_ID", "Session expired")
    assert first_error({"error": "invalid_grant", "error_description": "bad"}) == ("invalid_grant", "bad")
    assert first_error(b"<html>oops</html>") == ("UNKNOWN", "<html>oops</html>")
