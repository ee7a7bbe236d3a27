"""Stage statistics are data: typed figures in the run history, words only at display time.

Round trip: a stage's stats -> `pipelines.reporting.figures_of` (what
`record` stores, whether handed the stats or their `as_metadata()`) -> the
store's `runs` table -> `pipelines.summary.summarize` and renormalize's
figures line. Renaming a label changes the Dagster metadata and nothing
the report reads; no server is needed.
"""

from __future__ import annotations

import re

import pytest

from pipelines import renormalize
from pipelines.reporting import figures_of
from pipelines.state import StateStore
from pipelines.state.rows import Rekey
from pipelines.steps import activities, persons, push
from pipelines.steps.activities import ActivityStats
from pipelines.steps.persons import PersonStats
from pipelines.steps.push import PushStats
from pipelines.summary import summarize

RUN = "run-figures"
STABLE_KEY = re.compile(r"^[a-z][a-z0-9_]*$")


def stages() -> dict[str, object]:
    people = PersonStats(persons=7, changed=2, records=9, linked=3, unlinked=5)
    people.rekeyed.append(Rekey("hubspot", "phone:+15550001111", None, "901", False))
    contacts = PushStats("hubspot", created=4, updated=1, unchanged=2, failed=1)
    contacts.errors["INVALID_EMAIL"] += 1
    conversations = ActivityStats("hubspot", days=("2026-11-28", "2026-11-29"), created=6, unlinked=5,
                                  waiting_for_contact=2)
    return {"persons": people, "hubspot_contacts": contacts, "hubspot_activities": conversations}


def record_all(store: StateStore, displayed: bool) -> None:
    for step, stats in stages().items():
        handed = stats.as_metadata() if displayed else stats  # type: ignore[attr-defined]
        store.record_run(RUN, "daily_sync", step, "2026-11-29", "success", figures_of(handed))


@pytest.fixture
def store(tmp_path) -> StateStore:
    return StateStore(f"sqlite:///{tmp_path / 'state.db'}")


@pytest.mark.parametrize("displayed", [False, True], ids=["stats", "their-display"])
def test_the_run_history_keeps_figures_under_stable_keys_never_labels(store: StateStore, displayed: bool) -> None:
    record_all(store, displayed)
    rows = {row["step"]: row["stats"] for row in store.run_history(RUN)}
    for stats in rows.values():
        assert all(STABLE_KEY.match(key) for key in stats), sorted(stats)
    assert rows["persons"]["unlinked"] == 5 and rows["hubspot_activities"]["waiting_for_contact"] == 2
    assert rows["persons"]["left_behind"] == [{"target": "hubspot", "crm_id": "901", "old_key": "phone:+15550001111"}]


def report(store: StateStore) -> list[str]:
    return summarize(store, RUN).text()


def test_renaming_a_label_changes_the_display_and_not_the_report(store: StateStore,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    record_all(store, displayed=True)
    before = report(store)
    assert any("conversations: 3 linked to their person, 5 unlinked" in line for line in before)
    assert any("activities 2026-11-28...2026-11-29: created 6" in line and "(5 unlinked, 2 waiting for their "
               "contact)" in line for line in before)
    assert any("created 4, updated 1, unchanged 2, failed 1" in line for line in before)
    line = renormalize._figures({row["step"]: row["stats"] for row in store.run_history(RUN)}["persons"])
    assert "conversations unlinked (waiting for their person) 5" in line

    for labels in (persons.LABELS, activities.LABELS, push.LABELS):
        for key in list(labels):
            monkeypatch.setitem(labels, key, f"renamed {key}")
    people = stages()["persons"]
    assert people.as_metadata()["renamed unlinked"] == 5  # type: ignore[attr-defined]
    assert "conversations unlinked (waiting for their person)" not in people.as_metadata()  # type: ignore[attr-defined]

    store2 = StateStore(str(store.engine.url))
    store2.record_run(RUN + "-2", "daily_sync", "persons", "2026-11-29", "success",
                      figures_of(people.as_metadata()))  # type: ignore[attr-defined]
    for step in ("hubspot_contacts", "hubspot_activities"):
        store2.record_run(RUN + "-2", "daily_sync", step, "2026-11-29", "success",
                          figures_of(stages()[step].as_metadata()))  # type: ignore[attr-defined]
    assert summarize(store2, RUN + "-2").text() == before  # the report reads figures, not labels
    line = renormalize._figures({row["step"]: row["stats"] for row in store2.run_history(RUN + "-2")}["persons"])
    assert "renamed unlinked 5" in line and "renamed linked 3" in line
