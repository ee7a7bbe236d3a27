"""Asset checks a person can act on: a source not fully read, too much
quarantined, duplicate persons.

Each check is declared on its asset (`check_specs`) and evaluated by that
asset's step, right after it wrote what the check looks at: the read asset
alone knows how its read ended, and a check in the same step costs no extra
step process under the multiprocess executor.
"""


import dagster as dg

from pipelines.sources import Source
from pipelines.state import StateStore
from pipelines.state.store import CONTACT_STREAM
from pipelines.steps.read import ReadOutcome


def read_check_name(source: Source) -> str:
    return f"{source.name}_read_complete"


def read_check_spec(source: Source) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(
        read_check_name(source),
        asset=source.read_asset,
        description=f"Every {source.label} listing was read to its end: the read did not fail and no "
        "list may have been cut short (a failed read or a short list never passes silently).",
    )


def read_check_result(source: Source, outcome: ReadOutcome) -> dg.AssetCheckResult:
    """Fails (ERROR) when the read failed or a listing may be incomplete; passes when skipped."""
    metadata: dict = {"status": outcome.status}
    if outcome.skipped:
        metadata["skipped"] = outcome.skipped
    if outcome.error:
        metadata["error"] = outcome.error
    if outcome.truncated:
        metadata["truncated"] = outcome.truncated
    return dg.AssetCheckResult(
        check_name=read_check_name(source),
        asset_key=source.read_asset,
        passed=bool(outcome.skipped) or outcome.complete,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata=metadata,
    )


def quarantine_check_spec(source: Source) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(
        f"{source.name}_quarantine_rate",
        asset=source.contacts_asset,
        description=f"At most {source.max_quarantine_rate:.0%} of {source.label} contacts are quarantined "
        "(more means something upstream changed shape).",
    )


def quarantine_check_result(store: StateStore, source: Source) -> dg.AssetCheckResult:
    """Warns when the share of quarantined contacts of `source` (all kept, not just this run's) is too high."""
    limit = source.max_quarantine_rate
    bad = store.count("quarantine", source=source.name, stream=CONTACT_STREAM)
    good = store.count("records", source=source.name, stream=CONTACT_STREAM)
    rate = bad / (bad + good) if bad + good else 0.0
    return dg.AssetCheckResult(
        check_name=f"{source.name}_quarantine_rate",
        asset_key=source.contacts_asset,
        passed=rate <= limit,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"quarantined": bad, "normalized": good, "rate": round(rate, 4), "limit": limit,
                  "reasons": store.quarantine_reasons(source.name)},
    )


PERSONS_NO_DUPLICATES = dg.AssetCheckSpec(
    "persons_no_duplicates",
    asset="persons",
    description="No email belongs to two persons (each person is one CRM contact).",
)


def persons_no_duplicates_result(store: StateStore) -> dg.AssetCheckResult:
    duplicates = store.duplicate_person_emails()
    return dg.AssetCheckResult(
        check_name=PERSONS_NO_DUPLICATES.name,
        asset_key="persons",
        passed=not duplicates,
        metadata={"duplicate emails": len(duplicates), "sample": str(duplicates[:5])},
    )
