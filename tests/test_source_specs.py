"""The sources as specs: registry (pipelines/registry.py) -> derived tables, resources and
definitions; and the run-time on/off decision through a real daily_sync against the
AgentClara emulator over HTTP.

Covers: the specs hold the DESIGN.md contract names (each written once in production
code); every table keyed by source name derives from the registry; a spec refuses a
stream it cannot read; the definitions load with no key, and setting the key later
turns the source on without reloading them (and unsetting it turns it off again).
"""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg
import pytest

from connectors.spec import Paging, RecordKind, StreamSpec
from pipelines.definitions import build_definitions
from pipelines.historical import load_ops
from pipelines.registry import SPECS
from pipelines.resources import build_resources
from pipelines.sources import BY_NAME
from pipelines.state import StateStore
from pipelines.steps.normalize import CONVERSATION_NORMALIZERS, NORMALIZERS
from sandbox.agentclara import DEFAULT_KEY, AgentClaraApp
from sandbox.http import ServerThread
from tests.pipeline_runs import failure_messages, step_metadata

ROOT = Path(__file__).resolve().parents[1]
CONTRACT = {  # DESIGN.md, "Contract": key, base URL and its default
    "agentclara": ("AGENTCLARA_API_KEY", "AGENTCLARA_BASE_URL", "https://api.agentclara.app"),
    "clairo": ("CLAIRO_API_KEY", "CLAIRO_BASE_URL", "https://clairo.tech/api/v1"),
    "agentpro": ("AGENTPRO_API_KEY", "AGENTPRO_BASE_URL", "https://agentpro.chat"),
    "chatloom": ("CHATLOOM_API_KEY", "CHATLOOM_BASE_URL", "https://chatloom.app"),
}


def test_the_specs_hold_the_contract_names_each_written_once() -> None:
    assert {s.name: (s.key_env, s.base_url_env, s.default_base_url) for s in SPECS} == CONTRACT
    production = [p for folder in ("connectors", "pipelines") for p in (ROOT / folder).rglob("*.py")]
    for names in CONTRACT.values():
        for name in names:
            holders = [p.relative_to(ROOT).as_posix() for p in production if f'"{name}"' in p.read_text()]
            assert len(holders) == 1 and holders[0].endswith("/spec.py"), (name, holders)


def test_every_table_keyed_by_source_derives_from_the_registry() -> None:
    assert NORMALIZERS == {(spec.name, s.name): s.normalizer for spec in SPECS for s in spec.streams
                           if s.kind is RecordKind.CONTACTS}
    assert CONVERSATION_NORMALIZERS == {(spec.name, s.name): s.normalizer for spec in SPECS for s in spec.streams
                                        if s.kind is RecordKind.CONVERSATIONS}
    assert ("chatloom", "conversations") in CONVERSATION_NORMALIZERS
    assert [op.name for op in load_ops] == [f"load_{spec.name}" for spec in SPECS]
    resources = build_resources({})
    assert all(resources[spec.name].spec is spec for spec in SPECS)
    assert [BY_NAME[spec.name].spec for spec in SPECS] == list(SPECS)


def test_a_stream_the_spec_cannot_read_is_refused() -> None:
    with pytest.raises(ValueError, match="normalizer"):
        StreamSpec("people", path="/people", kind=RecordKind.CONTACTS)
    with pytest.raises(ValueError, match="path or a read function"):
        StreamSpec("people", paging=Paging.OFFSET)


def _run(job: dg.JobDefinition, env: dict[str, str]) -> dg.ExecuteInProcessResult:
    """`job` (built once, beforehand) run with `env` as the process environment."""
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        return job.execute_in_process(partition_key="2026-11-22", instance=dg.DagsterInstance.ephemeral(),
                                      raise_on_error=False)
    finally:
        os.environ.clear()
        os.environ.update(saved)


def test_a_key_set_after_the_definitions_load_turns_its_source_on_without_a_reload(tmp_path: Path) -> None:
    app = AgentClaraApp(contacts=30, conversations=5)
    db = f"sqlite:///{tmp_path / 'state.db'}"
    for name in CONTRACT["agentclara"][:2]:
        assert name not in os.environ
    job = build_definitions({"SYNC_DATABASE_URL": db}).resolve_job_def("daily_sync")  # no key at all
    with ServerThread(app) as server:
        off = _run(job, {"SYNC_DATABASE_URL": db})
        assert off.success, failure_messages(off)
        assert "AGENTCLARA_API_KEY is not set" in step_metadata(off, "agentclara_contacts_raw")["skipped"]
        on = _run(job, {"SYNC_DATABASE_URL": db, "AGENTCLARA_API_KEY": DEFAULT_KEY,
                        "AGENTCLARA_BASE_URL": server.url})
        assert on.success, failure_messages(on)
        assert step_metadata(on, "agentclara_contacts_raw")["contacts read"] == 30
        assert StateStore(db).count("raw_records", source="agentclara", stream="contacts") == 30
        again_off = _run(job, {"SYNC_DATABASE_URL": db})
        assert "skipped" in step_metadata(again_off, "agentclara_contacts_raw")
