"""Normalizing while the read goes on, and on every core (issue 12, items 3 and 4).

A historical load hands each page's new or changed rows to a
`StreamNormalizer` as it lands (pipelines/steps/read.py `Landing`), so
normalizing is done when the read is; `SYNC_NORMALIZE_CORES` processes
(default: every core) do the CPU work, with the same outcomes as one.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from typing import Any, Iterator

import pytest
import sqlalchemy as sa

from connectors.agentclara import normalize as agentclara
from connectors.errors import ConfigError
from pipelines.resources import build_resources
from pipelines.state import StateStore
from pipelines.state.tables import quarantine, records
from pipelines.steps.ingest import ingest
from pipelines.steps.normalize import StreamNormalizer, normalize_pending
from pipelines.steps.read import Landing
from pipelines.steps.workers import available_cores
from schemas.registry import current_version
from tests.test_dirty_data import DIRTY, contact

PAGE = 100


def _pages(count: int) -> list[list[Any]]:
    pages = [[contact(p * PAGE + i, id=f"bulk_{p * PAGE + i}", email=f"bulk{p * PAGE + i}@example.com")
              for i in range(PAGE)]
             for p in range(count)]
    pages[0] = [*(item for item, _ in DIRTY.values()), *pages[0]]
    return pages


def _outcomes(store: StateStore) -> tuple[dict[str, Any], dict[str, tuple[str, str]]]:
    with store.engine.connect() as conn:
        found = {r.record_id: r.data for r in conn.execute(sa.select(records.c.record_id, records.c.data))}
        held = {r.record_id: (r.reason, r.detail) for r in conn.execute(
            sa.select(quarantine.c.record_id, quarantine.c.reason, quarantine.c.detail))}
    return found, held


def _done(store: StateStore) -> int:
    return store.count("records") + store.count("quarantine")


def _pending(store: StateStore) -> int:
    return sum(len(chunk) for chunk in store.iter_pending_raw("agentclara", "contacts", current_version("contact")))


def test_pages_are_normalized_while_later_pages_are_still_being_read(store_url: str) -> None:
    store = StateStore(store_url)
    pages = _pages(12)
    seen_before_page: list[int] = []

    def served() -> Iterator[list[Any]]:
        for page in pages:
            seen_before_page.append(_done(store))  # what is normalized when this page is handed over
            yield page

    landed = sum(len(page) for page in pages)
    with StreamNormalizer(store, "agentclara", cores=1) as normalizer:
        land = Landing(store, "agentclara", normalizer=normalizer)
        land.pages("contacts", served())
        assert _done(store) > landed - StreamNormalizer.CHUNK  # before finish(): all but one chunk's worth
        stats = normalizer.finish()["contacts"]
    # Page k is handed over once pages < k are stored; at most one chunk (500 rows) waits in the buffer.
    for k, done in enumerate(seen_before_page):
        assert done >= k * PAGE - StreamNormalizer.CHUNK, (k, done)
    assert stats.normalized + stats.quarantined == landed == _done(store)
    assert _pending(store) == 0  # the pass after the read finds nothing left to do
    assert normalize_pending(store, "agentclara", "contacts").normalized == 0


def test_every_core_gives_the_same_outcomes_as_one(tmp_path) -> None:
    outcomes = []
    for cores in (1, 2):
        store = StateStore(f"sqlite:///{tmp_path / f'c{cores}.db'}")
        ingest(store, "agentclara", "contacts", _pages(8))
        stats = normalize_pending(store, "agentclara", "contacts", cores=cores)
        outcomes.append((stats.normalized, stats.quarantined, dict(stats.reasons), _outcomes(store)))
        assert _pending(store) == 0
        store.dispose()
    assert outcomes[0] == outcomes[1]
    assert outcomes[0][1] == sum(1 for _, want in DIRTY.values() if isinstance(want, str))


def test_a_record_changed_between_pages_ends_with_its_later_payload(store_url: str) -> None:
    store = StateStore(store_url)
    first = [contact(1, email="old@example.com"), *(contact(n) for n in range(2, 600))]
    again = [contact(1, email="new@example.com")]
    with StreamNormalizer(store, "agentclara", cores=2) as normalizer:
        Landing(store, "agentclara", normalizer=normalizer).pages("contacts", [first, again])
        normalizer.finish()
    found, _ = _outcomes(store)
    assert found["cust_1"]["email"] == "new@example.com"
    assert _pending(store) == 0


def _normalize_but_die_in_a_worker(payload: Any, region: str = "US") -> dict[str, Any]:
    if mp.parent_process() is not None:  # a worker process: killed, as the OOM killer would
        os._exit(1)
    return agentclara.normalize_contact(payload, region=region)


@pytest.mark.parametrize("normalize", [
    _normalize_but_die_in_a_worker,
    lambda payload, region="US": agentclara.normalize_contact(payload, region=region),  # cannot be pickled
], ids=["a worker killed", "a normalizer a worker cannot receive"])
def test_a_broken_pool_costs_time_not_records(tmp_path, normalize: Any) -> None:
    store = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
    ingest(store, "agentclara", "contacts", _pages(4))
    stats = normalize_pending(store, "agentclara", "contacts", cores=2,
                              normalizers={("agentclara", "contacts"): normalize})
    assert stats.normalized + stats.quarantined == _done(store) == 4 * PAGE + len(DIRTY)
    assert _pending(store) == 0


def test_sync_normalize_cores() -> None:
    assert build_resources({})["settings"].cores() == available_cores()
    assert build_resources({"SYNC_NORMALIZE_CORES": "1"})["settings"].cores() == 1
    with pytest.raises(ConfigError, match="SYNC_NORMALIZE_CORES must be a whole number"):
        build_resources({"SYNC_NORMALIZE_CORES": "two"})


def report_pid(payload: Any, region: str = "US") -> dict[str, Any]:
    return {"pid": os.getpid()}


_KILLED_PARENT = """
import sys
from pipelines.steps.workers import Workers
from tests.test_normalize_as_landed import report_pid
workers = Workers(3)  # two worker processes
for n in range(2):
    workers.submit(n, report_pid, [n], "US")
pids = {outcome.data["pid"] for _, outcomes in workers.done(wait=True) for outcome in outcomes}
print(" ".join(map(str, pids)), flush=True)
sys.stdin.read()  # until killed
"""


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has exited
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads process states from /proc")
def test_workers_exit_when_the_step_process_is_killed() -> None:
    import signal
    import subprocess
    import sys
    import time

    parent = subprocess.Popen([sys.executable, "-c", _KILLED_PARENT], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, cwd=os.path.dirname(os.path.dirname(__file__)))
    pids = [int(pid) for pid in parent.stdout.readline().split()]
    assert pids and all(_running(pid) for pid in pids)
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 30
    while any(_running(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)  # polling the condition itself, with a deadline
    assert not any(_running(pid) for pid in pids), "a worker outlived the killed step process"
