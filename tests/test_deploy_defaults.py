"""Deployment defaults: the SQLite state is private, the documented UI binds to loopback."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

from pipelines.state import StateStore

ROOT = Path(__file__).resolve().parent.parent


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_new_sqlite_store_is_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "home" / "state" / "crm_sync.db"
    store = StateStore(f"sqlite:///{path}")
    store.set_checkpoint("probe", {"offset": 1})  # a write, so SQLite opens its WAL file
    wal = path.with_name(path.name + "-wal")
    assert _mode(path) == 0o600
    assert wal.exists() and _mode(wal) == 0o600
    assert _mode(path.parent) == 0o700 and _mode(path.parent.parent) == 0o700
    store.dispose()


def test_existing_folder_keeps_its_mode(tmp_path: Path) -> None:
    tmp_path.chmod(0o755)
    StateStore(f"sqlite:///{tmp_path / 'crm_sync.db'}").dispose()
    assert _mode(tmp_path) == 0o755
    assert _mode(tmp_path / "crm_sync.db") == 0o600


def test_documented_webserver_binds_loopback() -> None:
    commands = re.findall(r"^dagster(?:-webserver| dev) [^\n]*", (ROOT / "deploy" / "README.md").read_text(), re.M)
    assert commands, "deploy/README.md shows no webserver command"
    for command in commands:
        host = re.search(r"-h\s+(\S+)", command)
        assert host and host.group(1) in {"127.0.0.1", "localhost"}, command
