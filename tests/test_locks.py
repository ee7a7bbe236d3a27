"""Locks in the state store: two runs at once never send anything twice.

Round trip covered: real OS processes take named locks in one store (SQLite
file, or a PostgreSQL schema) -> a second taker waits, then fails naming the
holder, or goes ahead once the holder releases or dies (SIGKILL: the SQLite
lease runs out, the PostgreSQL session ends) -> and, end to end, two
`historical_load` pushes started at once against one store and the HubSpot
emulator, with no Dagster pools, leave every contact and engagement in
HubSpot exactly once.

Every wait for another process is on a real signal (a line on a pipe, a
request reaching the emulator, a process exiting), never a sleep.

This module is also the child process of those tests:
`python -m tests.test_locks hold URL NAMES RUN_ID LEASE` or `... push ENV_JSON`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import sqlalchemy as sa

from connectors.errors import ConfigError
from pipelines.state import (
    LockSettings,
    LockTimeout,
    StateStore,
    push_lock_name,
    rebuild_lock_names,
    store_lock,
    store_locks,
)
from pipelines.state import migrations
from pipelines.state.locks import read_holder
from tests.conftest import older_store

ROOT = Path(__file__).resolve().parents[1]
SIGNAL_TIMEOUT = 120.0  # how long a test waits for a signal before failing (never a synchronisation sleep)
NOW = timedelta(0)


# ------------------------------------------------------------------ child processes
def _spawn(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.test_locks", *args], cwd=ROOT, text=True,
        env={**os.environ, **(env or {}), "PYTHONPATH": str(ROOT)},
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )


@contextmanager
def held_by_child(url: str, names: list[str], run_id: str, lease: float = 30.0) -> Iterator[subprocess.Popen[str]]:
    """Another process holds `names` for the block: it said "held" on its stdout; it releases on stdin's EOF."""
    child = _spawn("hold", url, ",".join(names), run_id, str(lease))
    assert child.stdout is not None and child.stdin is not None and child.stderr is not None
    try:
        line = child.stdout.readline()
        assert line.strip() == "held", f"the holder did not take {names}: {line!r} {child.stderr.read()}"
        yield child
    finally:
        if child.poll() is None:
            child.stdin.close()
        child.wait(timeout=SIGNAL_TIMEOUT)
        child.stdout.close()
        child.stderr.close()


def _hold(url: str, names: str, run_id: str, lease: str) -> None:
    store = StateStore(url)
    with store_locks(store, names.split(","), owner=run_id, wait=timedelta(seconds=60),
                     lease=timedelta(seconds=float(lease))):
        print("held", flush=True)
        sys.stdin.read()  # until the test closes our stdin, or kills us
    print("released", flush=True)


def _push(env_json: str) -> None:
    """One `historical_load` run of `push_hubspot` alone; prints its run id and outcome as JSON."""
    import dagster as dg

    from pipelines.definitions import build_definitions
    from tests.pipeline_runs import failure_messages

    os.environ.update(json.loads(env_json))
    job = build_definitions(os.environ).resolve_job_def("historical_load")
    result = job.execute_in_process(op_selection=["push_hubspot"], instance=dg.DagsterInstance.ephemeral(),
                                    raise_on_error=False)
    print(json.dumps({"run_id": result.run_id, "success": result.success, "failures": failure_messages(result)}),
          flush=True)


# --------------------------------------------------------------------- unit tests
def test_rebuild_takes_persons_and_every_push_lock_in_one_order() -> None:
    assert rebuild_lock_names(["salesforce", "hubspot"]) == ["persons", "push:hubspot", "push:salesforce"]
    assert push_lock_name("hubspot") == "push:hubspot"


def test_settings_come_from_the_environment_with_defaults() -> None:
    assert LockSettings.from_env({}) == LockSettings(timedelta(seconds=600), timedelta(seconds=60))
    assert LockSettings.from_env({"SYNC_LOCK_WAIT_SECONDS": "0", "SYNC_LOCK_LEASE_SECONDS": " 15 "}) == \
        LockSettings(timedelta(0), timedelta(seconds=15))
    for name, value in [("SYNC_LOCK_WAIT_SECONDS", "ten"), ("SYNC_LOCK_WAIT_SECONDS", "-1"),
                        ("SYNC_LOCK_LEASE_SECONDS", "0"), ("SYNC_LOCK_LEASE_SECONDS", "nan")]:
        with pytest.raises(ConfigError, match=name):
            LockSettings.from_env({name: value})


def test_a_lock_is_held_for_the_block_then_released(store_url: str) -> None:
    store = StateStore(store_url)
    with store_lock(store, "push:hubspot", owner="run-1", wait=NOW):
        holder = read_holder(store.engine, "push:hubspot")
        assert holder is not None and (holder.run_id, holder.pid) == ("run-1", os.getpid())
        with pytest.raises(LockTimeout, match="run-1"):  # not re-entrant: a second taking is a second run
            with store_lock(store, "push:hubspot", owner="run-2", wait=NOW):
                pass
    assert read_holder(store.engine, "push:hubspot") is None
    with store_lock(store, "push:hubspot", owner="run-2", wait=NOW):
        assert read_holder(store.engine, "push:hubspot").run_id == "run-2"  # type: ignore[union-attr]


def test_a_second_run_waits_then_fails_naming_the_holder(store_url: str) -> None:
    store = StateStore(store_url)
    with held_by_child(store_url, ["push:hubspot"], "run-holding-1") as child:
        started = time.monotonic()
        with pytest.raises(LockTimeout) as caught:
            with store_lock(store, "push:hubspot", owner="run-2", wait=timedelta(seconds=1)):
                pass
        assert time.monotonic() - started >= 1.0  # it waited the whole wait
    message = str(caught.value)
    assert "'push:hubspot'" in message and f"run run-holding-1 (host {os.uname().nodename}, pid {child.pid})" in message
    assert "since 20" in message and "Wait for run run-holding-1 to finish" in message
    if store_url.startswith("sqlite"):
        assert "its lease expires at 20" in message
    else:
        assert "PostgreSQL has already freed the lock" in message


def test_a_live_holder_keeps_its_lock_past_its_lease(store_url: str) -> None:
    """The heartbeat renews the SQLite lease: a waiter four leases long still finds it held."""
    store = StateStore(store_url)
    with held_by_child(store_url, ["push:hubspot"], "run-alive", lease=0.5):
        with pytest.raises(LockTimeout, match="run-alive"):
            with store_lock(store, "push:hubspot", owner="run-2", wait=timedelta(seconds=2)):
                pass


def test_a_killed_holders_lock_is_taken_over(store_url: str) -> None:
    """SIGKILL leaves no chance to release: SQLite's lease runs out, PostgreSQL ends the session."""
    store = StateStore(store_url)
    with held_by_child(store_url, ["push:hubspot"], "run-killed", lease=1.0) as child:
        before = read_holder(store.engine, "push:hubspot")
        assert before is not None and before.run_id == "run-killed"
        with pytest.raises(LockTimeout):
            with store_lock(store, "push:hubspot", owner="run-next", wait=NOW):
                pass
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=SIGNAL_TIMEOUT)
        with store_lock(store, "push:hubspot", owner="run-next", wait=timedelta(seconds=60)):
            taken_at = datetime.now(timezone.utc)
            assert read_holder(store.engine, "push:hubspot").run_id == "run-next"  # type: ignore[union-attr]
    if before.expires_at is not None:  # SQLite: not before the dead holder's lease had run out
        assert taken_at >= before.expires_at


def test_the_rebuild_and_pushes_exclude_each_other_and_targets_do_not(store_url: str) -> None:
    store = StateStore(store_url)
    rebuild = rebuild_lock_names(["hubspot", "salesforce"])
    with held_by_child(store_url, [push_lock_name("hubspot")], "run-pushing"):
        with store_lock(store, push_lock_name("salesforce"), owner="run-other-target", wait=NOW):
            pass  # another target pushes at the same time
        with pytest.raises(LockTimeout, match="run-pushing"):
            with store_locks(store, rebuild, owner="run-rebuild", wait=timedelta(seconds=0.5)):
                pass
        assert read_holder(store.engine, "persons") is None  # what the rebuild took before giving up is released
    with held_by_child(store_url, rebuild, "run-rebuilding"):
        for target in ("hubspot", "salesforce"):
            with pytest.raises(LockTimeout, match="run-rebuilding"):
                with store_lock(store, push_lock_name(target), owner="run-push", wait=NOW):
                    pass


@pytest.mark.parametrize(("job", "step"), [
    ("daily_sync", "persons"), ("historical_load", "merge_persons"), ("renormalize", "renormalize_persons"),
])
def test_every_persons_rebuild_waits_for_a_push_then_fails_naming_it(
        store_url: str, monkeypatch: pytest.MonkeyPatch, job: str, step: str) -> None:
    import dagster as dg

    from pipelines.definitions import build_definitions
    from tests.pipeline_runs import failure_messages

    env = {"SYNC_DATABASE_URL": store_url, "SYNC_LOCK_WAIT_SECONDS": "0.5"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    store = StateStore(store_url)
    with held_by_child(store_url, [push_lock_name("salesforce")], "run-pushing-salesforce"):
        definition = build_definitions(env).resolve_job_def(job)
        selection = {"asset_selection": [dg.AssetKey(step)], "partition_key": "2026-11-22"} \
            if job == "daily_sync" else {"op_selection": [step]}
        result = definition.execute_in_process(instance=dg.DagsterInstance.ephemeral(), raise_on_error=False,
                                               **selection)
    assert not result.success
    assert any("Wait for run run-pushing-salesforce to finish" in m for m in failure_messages(result))
    history = {row["step"]: row["status"] for row in store.run_history(result.run_id)}
    assert history["persons"] == "failed"
    assert store.count("persons") == 0 and read_holder(store.engine, "persons") is None


def test_a_v3_store_upgrades_to_v4_with_the_locks_table(store_url: str) -> None:
    older_store(store_url, without="locks", version=3)
    store = StateStore(store_url)  # upgrades on open
    assert sa.inspect(store.engine).has_table("locks")
    with store.engine.connect() as conn:
        assert migrations.current_version(conn) == migrations.LATEST
    assert store.count("persons") == 1
    with store_lock(store, "persons", owner="run-after-upgrade", wait=NOW):
        pass


# ------------------------------------------------- two pushes at once, end to end
class GatedHubSpot:
    """Builds a HubSpot emulator that holds every engagement create until `gate` is set."""

    def __init__(self) -> None:
        from sandbox.hubspot import HubSpotApp

        self.progress = threading.Event()  # set at every arrival (and by the log readers)
        self.gate = threading.Event()
        self.creates_held = 0
        outer = self

        class _App(HubSpotApp):
            def dispatch(self, request: Any) -> Any:
                if request.path.endswith("/batch/create") and "/objects/contacts/" not in request.path:
                    if not outer.gate.is_set():
                        outer.creates_held += 1
                        outer.progress.set()
                    outer.gate.wait(timeout=SIGNAL_TIMEOUT)
                return super().dispatch(request)

        self.app = _App()


class PushRun:
    """A child `historical_load` push; its stderr (Dagster's log) read as it comes."""

    def __init__(self, env: dict[str, str], progress: threading.Event) -> None:
        self.child = _spawn("push", json.dumps(env))
        self.log: list[str] = []
        self.progress = progress
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.child.stderr:  # type: ignore[union-attr]
            self.log.append(line)
            self.progress.set()
        self.child.wait(timeout=SIGNAL_TIMEOUT)  # EOF comes just before the exit: signal once poll() sees it
        self.progress.set()

    def said(self, text: str) -> bool:
        return any(text in line for line in self.log)

    def outcome(self) -> dict[str, Any]:
        out, _ = self.child.communicate(timeout=SIGNAL_TIMEOUT)
        self._reader.join(timeout=SIGNAL_TIMEOUT)
        assert out.strip(), "".join(self.log[-40:])
        return json.loads(out.strip().splitlines()[-1])


def wait_until(condition: Callable[[], bool], progress: threading.Event, what: str) -> None:
    """Block until `condition` holds, re-checking at every signal on `progress`."""
    deadline = time.monotonic() + SIGNAL_TIMEOUT
    while True:
        progress.clear()
        if condition():
            return
        assert progress.wait(max(0.0, deadline - time.monotonic())), f"timed out waiting for {what}"


@pytest.fixture
def push_sandbox(store_url: str,
                 monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[GatedHubSpot, dict[str, str], StateStore]]:
    """AgentClara loaded and persons merged into the store (HubSpot off); then HubSpot's env for the pushes."""
    from sandbox.agentclara import AgentClaraApp
    from sandbox.http import ServerThread
    from sandbox.hubspot import DEFAULT_TOKEN

    import dagster as dg

    from pipelines.definitions import build_definitions

    hubspot = GatedHubSpot()
    servers = [ServerThread(AgentClaraApp(contacts=60, conversations=60)).start(), ServerThread(hubspot.app).start()]
    try:
        load_env = {"SYNC_DATABASE_URL": store_url, "AGENTCLARA_API_KEY": "ac_sandbox_key",
                    "AGENTCLARA_BASE_URL": servers[0].url}
        with monkeypatch.context() as patched:  # EnvVar reads os.environ; the pushes get their own env
            for name, value in load_env.items():
                patched.setenv(name, value)
            job = build_definitions(load_env).resolve_job_def("historical_load")
            loaded = job.execute_in_process(op_selection=["load_agentclara", "merge_persons"],
                                            instance=dg.DagsterInstance.ephemeral(), raise_on_error=False)
        assert loaded.success
        push_env = {"SYNC_DATABASE_URL": store_url, "HUBSPOT_ACCESS_TOKEN": DEFAULT_TOKEN,
                    "HUBSPOT_BASE_URL": servers[1].url, "SYNC_LOCK_WAIT_SECONDS": "120"}
        yield hubspot, push_env, StateStore(store_url)
    finally:
        hubspot.gate.set()
        for server in servers:
            server.stop()


def _activity_keys(hubspot: GatedHubSpot) -> Counter[str]:
    engagements = hubspot.app.notes() + hubspot.app.communications()
    return Counter(e["properties"].get("agent_sync_activity_key") for e in engagements)


def _rebuild_refused(store: StateStore) -> str | None:
    """The LockTimeout message a persons rebuild gets right now, or None if it could run."""
    try:
        with store_locks(store, rebuild_lock_names(["hubspot", "salesforce"]), owner="rebuild", wait=NOW):
            return None
    except LockTimeout as exc:
        return str(exc)


def _step_stats(store: StateStore, run_id: str) -> dict[str, dict[str, Any]]:
    return {row["step"]: {**(row["stats"] or {}), "status": row["status"]} for row in store.run_history(run_id)}


@pytest.mark.parametrize("second_waits", [True, False], ids=["second-waits", "second-gives-up"])
def test_two_pushes_at_once_send_every_contact_and_engagement_once(
        push_sandbox: tuple[GatedHubSpot, dict[str, str], StateStore], second_waits: bool) -> None:
    hubspot, env, store = push_sandbox
    first = PushRun(env, hubspot.progress)
    wait_until(lambda: hubspot.creates_held >= 1 or first.child.poll() is not None, hubspot.progress,
               "the first push to reach its engagement creates")
    holder = read_holder(store.engine, "push:hubspot")
    rebuild_refused = _rebuild_refused(store)  # no persons rebuild under a push either
    second = PushRun({**env, "SYNC_LOCK_WAIT_SECONDS": "120" if second_waits else "0.5"}, hubspot.progress)
    wait_until(lambda: second.said("waiting for lock 'push:hubspot'") or hubspot.creates_held >= 2
               or second.child.poll() is not None, hubspot.progress, "the second push to wait or to send")
    if not second_waits:  # it fails while the first still holds the lock (or, unlocked, sends too)
        wait_until(lambda: second.child.poll() is not None or hubspot.creates_held >= 2, hubspot.progress,
                   "the second push to give up or to send")
    hubspot.gate.set()
    done, later = first.outcome(), second.outcome()
    assert done["success"], done["failures"]

    keys = _activity_keys(hubspot)
    assert keys and max(keys.values()) == 1, f"engagements created twice: {[k for k, n in keys.items() if n > 1]}"
    assert len(hubspot.app.contacts()) == store.count("persons")
    assert set(hubspot.app.upserted.values()) == {1}
    assert holder is not None and holder.run_id == done["run_id"]
    assert rebuild_refused is not None and f"held by run {done['run_id']}" in rebuild_refused
    assert second.said(f"waiting for lock 'push:hubspot' held by run {done['run_id']}")
    pushed = _step_stats(store, later["run_id"])
    if second_waits:
        assert later["success"], later["failures"]
        assert pushed["hubspot_contacts"]["created"] == pushed["hubspot_contacts"]["updated"] == 0
        assert pushed["hubspot_activities"]["created"] == pushed["hubspot_activities"]["updated"] == 0
    else:
        assert not later["success"]
        assert any(f"Wait for run {done['run_id']} to finish" in message for message in later["failures"])
        assert pushed["hubspot_contacts"]["status"] == "failed"


if __name__ == "__main__":
    if sys.argv[1] == "hold":
        _hold(*sys.argv[2:6])
    elif sys.argv[1] == "push":
        _push(sys.argv[2])
