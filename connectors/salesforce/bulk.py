"""Large loads through Bulk API 2.0: upsert jobs whose three result sets are read back per record.

Above the sink's `bulk_threshold` (2,000 records by default, where
Salesforce advises switching to Bulk), records go in upsert jobs of at most
`job_size`. simple-salesforce creates, uploads, closes and polls each job;
its successful, failed and unprocessed result CSVs come back in no
guaranteed order and are matched to records by the external-id column
(`settle.bulk_outcomes`). A job that ends Failed or Aborted marks its
records BULK_JOB_FAILED (retried next run), never the whole run.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Sequence

from simple_salesforce.exceptions import SalesforceOperationError

from connectors.salesforce.settle import bulk_outcome, bulk_outcomes, failure
from connectors.sink import SyncOutcome

Call = Callable[[str, Callable[[], Any]], Any]

log = logging.getLogger(__name__)


def upsert_bulk(
    bulk: Any,
    call: Call,
    records: Sequence[tuple[str, dict[str, Any]]],
    *,
    obj: str,
    key_field: str,
    job_size: int,
    poll_interval_s: float,
    done: Callable[[list[SyncOutcome], bool], None],
) -> None:
    """Upsert `records` (key, fields) in jobs through `bulk` (`sf.bulk2.<obj>`).

    `done(outcomes, finished)` hears each job's outcomes; `finished` is False
    for a job that ended Failed or Aborted.
    """
    for start in range(0, len(records), job_size):
        chunk = records[start:start + job_size]
        rows = [{name: str(value) for name, value in fields.items()} for _, fields in chunk]
        try:
            jobs = call(f"bulk upsert {len(rows)} {obj}",
                        lambda: bulk.upsert(records=rows, external_id_field=key_field, wait=poll_interval_s))
        except SalesforceOperationError as exc:  # the job ended Failed or Aborted
            message = str(exc)[:500]
            log.warning("salesforce: bulk job for %d %s failed: %s", len(chunk), obj, message)
            done([failure(key, "BULK_JOB_FAILED", message) for key, _ in chunk], False)
            continue
        found: dict[str, SyncOutcome] = {}
        for job in jobs:
            found.update(_job_outcomes(bulk, call, job["job_id"], key_field))
        done([bulk_outcome(found, key) for key, _ in chunk], True)


def _job_outcomes(bulk: Any, call: Call, job_id: str, key_field: str) -> dict[str, SyncOutcome]:
    """Outcomes by external id from one finished job's three result sets."""
    texts = [call(f"bulk {kind} results of job {job_id}", lambda fetch=fetch: fetch(job_id))
             for kind, fetch in (("successful", bulk.get_successful_records), ("failed", bulk.get_failed_records),
                                 ("unprocessed", bulk.get_unprocessed_records))]
    return bulk_outcomes(*texts, key_field=key_field)
