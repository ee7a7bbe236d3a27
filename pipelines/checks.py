"""Asset checks a person can act on: too much quarantined, duplicate persons."""


import dagster as dg

from pipelines.partitions import daily_partitions
from pipelines.resources import StateStoreResource

# Above this share of quarantined records, something upstream changed shape.
MAX_QUARANTINE_RATE = 0.05


def quarantine_rate_check(asset: str, source: str) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=asset,
        name=f"{source}_quarantine_rate",
        partitions_def=daily_partitions,
        description=f"At most {MAX_QUARANTINE_RATE:.0%} of {source} records are quarantined.",
    )
    def _check(state: StateStoreResource) -> dg.AssetCheckResult:
        store = state.store()
        bad = store.count("quarantine", source=source)
        good = store.count("records", source=source)
        rate = bad / (bad + good) if bad + good else 0.0
        return dg.AssetCheckResult(
            passed=rate <= MAX_QUARANTINE_RATE,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={"quarantined": bad, "normalized": good, "rate": round(rate, 4),
                      "reasons": store.quarantine_reasons(source)},
        )

    return _check


@dg.asset_check(
    asset="persons",
    partitions_def=daily_partitions,
    description="No email belongs to two persons (each person is one CRM contact).",
)
def persons_no_duplicates(state: StateStoreResource) -> dg.AssetCheckResult:
    duplicates = state.store().duplicate_person_emails()
    return dg.AssetCheckResult(
        passed=not duplicates,
        metadata={"duplicate emails": len(duplicates), "sample": str(duplicates[:5])},
    )


checks = [quarantine_rate_check("agentclara_contacts", "agentclara"), persons_no_duplicates]
