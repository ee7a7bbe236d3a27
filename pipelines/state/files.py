"""The SQLite state file, created private.

The store holds people's emails, phones and what they said to the agents,
so a file this project creates is readable by its owner only: the folder
0700 and the database 0600 (SQLite gives its `-wal` and `-shm` files the
database file's mode). Files and folders that already exist keep the mode
their owner chose: tightening someone's `$DAGSTER_HOME` behind their back
would be a surprise of its own.
"""

from __future__ import annotations

import os
from pathlib import Path

import sqlalchemy as sa

FOLDER_MODE = 0o700
FILE_MODE = 0o600


def create_private(url: str) -> None:
    """Create the file of a SQLite URL (and its missing folders) owner-only, before SQLite does."""
    database = sa.make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    path = Path(database)
    _make_folders(path.parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        return
    os.close(fd)


def _make_folders(folder: Path) -> None:
    missing = []
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    for path in reversed(missing):
        path.mkdir(mode=FOLDER_MODE, exist_ok=True)
        os.chmod(path, FOLDER_MODE)  # mkdir's mode is masked by the umask
