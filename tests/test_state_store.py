"""The state store on SQLite and PostgreSQL: schema upgrades, raw payloads,
normalization marks, quarantine, identity in SQL, sync state, concurrent runs."""

from __future__ import annotations

import random
import threading

import pytest
import sqlalchemy as sa

from pipelines.state import StateStore, default_database_url, redacted
from pipelines.state import migrations
from pipelines.state.rows import Normalized, Quarantined
from schemas.identity import assign_person_keys, person_key


def _normalized(record_id: str, email: str | None, phone: str | None, payload_hash: str = "h") -> Normalized:
    data = {"schema": "contact", "version": 1, "source": "agentclara", "source_id": record_id,
            "email": email, "phone": phone, "first_name": None, "last_name": None,
            "full_name": None, "company": None, "tags": [], "created_at": None,
            "updated_at": None}
    return Normalized("agentclara", "contacts", record_id, data, payload_hash, email=email,
                      phone=phone, person_key=person_key(email, phone))


class TestSchema:
    def test_upgrade_creates_every_table_and_is_idempotent(self, store_url: str) -> None:
        store = StateStore(store_url)
        names = set(sa.inspect(store.engine).get_table_names())
        assert {"raw_records", "records", "quarantine", "persons", "sync_state", "runs",
                "checkpoints", "store_meta"} <= names
        assert migrations.upgrade(store.engine) == migrations.LATEST  # second upgrade: nothing to do

    def test_a_store_from_a_newer_project_is_refused(self, store_url: str) -> None:
        store = StateStore(store_url)
        with store.engine.begin() as conn:
            conn.execute(sa.text("UPDATE store_meta SET value = '999' WHERE key = 'schema_version'"))
        with pytest.raises(migrations.StoreVersionError, match="newer"):
            StateStore(store_url)

    def test_default_url_follows_the_contract(self, tmp_path) -> None:
        assert default_database_url({"SYNC_DATABASE_URL": "postgresql://u@h/db"}) == "postgresql://u@h/db"
        url = default_database_url({"DAGSTER_HOME": str(tmp_path)})
        assert url == f"sqlite:///{tmp_path / 'crm_sync.db'}"
        assert "secret" not in redacted("postgresql://user:secret@host/db")


class TestRawAndNormalized:
    def test_only_new_or_changed_payloads_count(self, store_url: str) -> None:
        store = StateStore(store_url)
        assert store.save_raw("agentclara", "contacts", [("a", {"id": "a"}), ("b", {"id": "b"})]) == 2
        assert store.save_raw("agentclara", "contacts", [("a", {"id": "a"}), ("b", {"id": "b", "x": 1})]) == 1
        assert store.count("raw_records") == 2

    def test_pending_rows_are_those_changed_since_normalization(self, store_url: str) -> None:
        store = StateStore(store_url)
        store.save_raw("agentclara", "contacts", [(str(i), {"id": str(i)}) for i in range(5)])
        chunks = list(store.iter_pending_raw("agentclara", "contacts", 1, batch=2))
        assert [len(c) for c in chunks] == [2, 2, 1]
        rows = [row for chunk in chunks for row in chunk]
        good = [_normalized(r.record_id, f"{r.record_id}@example.com", None, r.payload_hash) for r in rows[:4]]
        bad = [Quarantined("agentclara", "contacts", rows[4].record_id, "missing_id", "no id",
                           rows[4].payload, rows[4].payload_hash)]
        store.save_normalized(1, good, bad)
        assert list(store.iter_pending_raw("agentclara", "contacts", 1)) == []
        # A changed payload and a schema version bump both make rows pending again.
        store.save_raw("agentclara", "contacts", [("0", {"id": "0", "name": "new"})])
        assert [r.record_id for c in store.iter_pending_raw("agentclara", "contacts", 1) for r in c] == ["0"]
        assert sum(len(c) for c in store.iter_pending_raw("agentclara", "contacts", 2)) == 5

    def test_a_record_moves_between_quarantine_and_records(self, store_url: str) -> None:
        store = StateStore(store_url)
        store.save_raw("agentclara", "contacts", [("a", {"id": "a"})])
        bad = Quarantined("agentclara", "contacts", "a", "no_valid_email_or_phone", "neither", {"id": "a"}, "h")
        store.save_normalized(1, [], [bad])
        assert store.quarantine_reasons() == {"no_valid_email_or_phone": 1}
        store.save_normalized(1, [_normalized("a", "a@example.com", None)], [])
        assert store.count("quarantine") == 0 and store.count("records") == 1
        store.save_normalized(1, [], [bad])
        assert store.count("quarantine") == 1 and store.count("records") == 0


class TestIdentityInSql:
    def test_sql_rule_matches_the_reference_implementation(self, store_url: str) -> None:
        """Random overlapping emails and phones: SQL and schemas.identity agree."""
        rng = random.Random(11)
        emails = [f"p{i}@example.com" for i in range(12)] + [None] * 8
        phones = [f"+1202555{i:04d}" for i in range(8)] + [None] * 2
        contacts = []
        for i in range(120):
            email, phone = rng.choice(emails), rng.choice(phones)
            if email is None and phone is None:
                continue
            contacts.append(_normalized(f"c{i}", email, phone))
        store = StateStore(store_url)
        store.save_normalized(1, contacts, [])
        store.resolve_phone_identities()
        expected = assign_person_keys([c.data for c in contacts])
        with store.engine.connect() as conn:
            got = dict(conn.execute(sa.text("SELECT record_id, person_key FROM records")).all())
        assert got == {source_id: key for (_source, source_id), key in expected.items()}
        assert store.resolve_phone_identities() == 0  # nothing moved since: nothing is written again

    def test_a_phone_shared_by_two_emailed_people_stays_its_own_person(self, store_url: str) -> None:
        store = StateStore(store_url)
        store.save_normalized(1, [
            _normalized("a", "ann@example.com", "+12025551111"),
            _normalized("b", "bob@example.com", "+12025551111"),
            _normalized("c", None, "+12025551111"),
            _normalized("d", "dan@example.com", "+12025552222"),
            _normalized("e", None, "+12025552222"),
        ], [])
        assert store.resolve_phone_identities() == 1  # only e's key changes ("c" keeps its phone's)
        with store.engine.connect() as conn:
            got = dict(conn.execute(sa.text("SELECT record_id, person_key FROM records")).all())
        assert got["c"] == "phone:+12025551111"
        assert got["e"] == "email:dan@example.com"
        assert store.resolve_phone_identities() == 0  # a rebuild over a store that did not move writes nothing

    def test_the_rebuild_plans_its_identity_sql_with_the_loaded_tables_statistics(self, pg_url: str) -> None:
        # Right after a bulk load PostgreSQL still plans with the empty table's statistics, and the
        # phone lookups become scans of the whole stream (quadratic); the rebuild analyzes first.
        from pipelines.steps.persons import rebuild_persons

        store = StateStore(pg_url)
        store.save_normalized(1, [_normalized(f"c{i}", None if i % 5 == 0 else f"p{i}@example.com",
                                              f"+1202555{i:04d}") for i in range(3000)], [])
        rebuild_persons(store)
        with store.engine.connect() as conn:
            plan = conn.execute(sa.text("EXPLAIN (FORMAT JSON) SELECT * FROM records WHERE stream = 'contacts'")).scalar()
        store.dispose()
        assert plan[0]["Plan"]["Plan Rows"] == 3000


class TestSyncState:
    def test_outcomes_are_recorded_per_target(self, store_url: str) -> None:
        store = StateStore(store_url)
        store.record_sync("hubspot", "contact", [
            ("k1", "h1", True, "101", None, None, False),
            ("k2", "h2", False, None, "Invalid email", "INVALID_EMAIL", True),
        ])
        store.record_sync("hubspot", "contact", [("k2", "h2", False, None, "again", "INVALID_EMAIL", True)])
        rows = store.sync_rows("hubspot", "contact", ["k1", "k2"])
        assert rows["k1"].last_hash == "h1" and rows["k1"].crm_id == "101"
        assert rows["k2"].last_hash is None and rows["k2"].failed_hash == "h2" and rows["k2"].error_permanent
        assert store.sync_errors("hubspot")[0]["attempts"] == 2
        assert store.sync_rows("salesforce", "contact", ["k1"]) == {}
        store.record_sync("hubspot", "contact", [("k2", "h3", True, "102", None, None, False)])
        assert store.sync_errors("hubspot") == []

    def test_checkpoints_and_run_history(self, store_url: str) -> None:
        store = StateStore(store_url)
        store.set_checkpoint("historical:agentclara", {"offset": 300})
        store.set_checkpoint("historical:agentclara", {"offset": 400})
        assert store.get_checkpoint("historical:agentclara") == {"offset": 400}
        store.clear_checkpoint("historical:agentclara")
        assert store.get_checkpoint("historical:agentclara") is None
        store.record_run("r1", "daily_sync", "persons", "2026-11-22", "running")
        store.record_run("r1", "daily_sync", "persons", "2026-11-22", "success", {"persons": 3})
        (row,) = store.run_history("r1")
        assert row["status"] == "success" and row["stats"] == {"persons": 3} and row["finished_at"]


class TestConcurrentRuns:
    def test_two_runs_writing_at_once_converge(self, store_url: str) -> None:
        """Two stores (two connection pools, as two runs have) write overlapping
        records and sync outcomes at the same moment; nothing is lost or doubled."""
        StateStore(store_url)  # schema in place before both start
        barrier = threading.Barrier(2)
        errors: list[BaseException] = []

        def run(offset: int) -> None:
            store = StateStore(store_url)
            try:
                barrier.wait(timeout=30)
                for start in range(0, 200, 20):
                    ids = [str(i) for i in range(start + offset, start + offset + 20)]
                    store.save_raw("agentclara", "contacts", [(i, {"id": i}) for i in ids])
                    store.record_sync("hubspot", "contact", [(i, "h", True, i, None, None, False) for i in ids])
            except BaseException as exc:  # surfaced below
                errors.append(exc)
            finally:
                store.dispose()

        threads = [threading.Thread(target=run, args=(offset,)) for offset in (0, 10)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        store = StateStore(store_url)
        assert store.count("raw_records") == 210
        assert store.count("sync_state") == 210


class TestRekeyedPersons:
    """A person whose key changes hands its CRM records to the new key (pipelines.steps.persons)."""

    def test_the_crm_records_follow_a_phone_only_person_who_gets_an_email(self, store_url: str) -> None:
        from pipelines.steps.persons import rebuild_persons

        store = StateStore(store_url)
        store.save_normalized(2, [_normalized("c1", None, "+12025551111")], [])
        rebuild_persons(store)
        store.record_sync("hubspot", "contact", [("phone:+12025551111", "h1", True, "101", None, None, False)])
        store.record_sync("salesforce", "contact", [("phone:+12025551111", "h1", True, "00Q1", None, None, False)])

        store.save_normalized(2, [_normalized("c1", "pat@example.com", "+12025551111", "h2")], [])
        stats = rebuild_persons(store)

        assert sorted((m.target, m.crm_id, m.carried) for m in stats.rekeyed) == [
            ("hubspot", "101", True), ("salesforce", "00Q1", True)]
        for target, crm_id in (("hubspot", "101"), ("salesforce", "00Q1")):
            assert store.sync_rows(target, "contact", ["phone:+12025551111"]) == {}
            row = store.sync_rows(target, "contact", ["email:pat@example.com"])["email:pat@example.com"]
            assert (row.crm_id, row.moved_from, row.last_hash) == (crm_id, "phone:+12025551111", None)
        # A successful sync under the new key ends the move.
        store.record_sync("hubspot", "contact", [("email:pat@example.com", "h3", True, "101", None, None, False)])
        assert store.sync_rows("hubspot", "contact", ["email:pat@example.com"])["email:pat@example.com"].moved_from \
            is None

    def test_a_new_key_with_its_own_crm_record_keeps_it_and_the_old_one_is_reported(self, store_url: str) -> None:
        from pipelines.steps.persons import rebuild_persons

        store = StateStore(store_url)
        store.save_normalized(2, [_normalized("c1", None, "+12025551111"), _normalized("c2", "pat@example.com", None)], [])
        rebuild_persons(store)
        store.record_sync("hubspot", "contact", [("phone:+12025551111", "h1", True, "101", None, None, False),
                                                 ("email:pat@example.com", "h1", True, "102", None, None, False)])

        store.save_normalized(2, [_normalized("c3", "pat@example.com", "+12025551111")], [])  # the phone joins them
        stats = rebuild_persons(store)

        assert [(m.crm_id, m.old_key, m.new_key, m.carried) for m in stats.rekeyed] == [
            ("101", "phone:+12025551111", "email:pat@example.com", False)]
        assert store.sync_rows("hubspot", "contact", ["email:pat@example.com"])["email:pat@example.com"].crm_id == "102"


class TestLayout:
    def test_the_row_types_stay_importable_from_the_store_module(self) -> None:
        from pipelines.state import rows, store

        for name in ("RawRow", "Normalized", "Quarantined", "SyncRow", "Rekey", "EventRow",
                     "CONTACT_STREAM", "CONVERSATION_STREAM"):
            assert getattr(store, name) is getattr(rows, name)
        assert callable(store.refused_data) and callable(store.utcnow)
