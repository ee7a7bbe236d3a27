"""Named locks kept in the state store, so two runs at once never send anything twice.

Dagster's pools (deploy/dagster.yaml) only exist on an instance that
configures them; `dagster dev`, a second instance or a hand-run job has
none. These locks live where the state lives, so every process that
writes the same store sees them:

- PostgreSQL: a session advisory lock (`pg_try_advisory_lock`) on a
  connection held for the lock's life; the server frees it the moment that
  connection closes, so a holder that dies never blocks anyone (a heartbeat
  uses the connection every lease/3, so an idle-session cut-off is noticed
  and logged rather than silent). The key is
  the first 8 bytes of sha256(schema + name): stores in different schemas
  of one database do not block each other.
- SQLite: a row in `locks`, taken in one atomic upsert while it is absent
  or its lease has expired, and renewed every lease/3 by a heartbeat thread
  of its holder. A holder killed outright stops renewing, and the next run
  takes the lock over once the lease has run out.

Either way the `locks` row names the holder (run id, host, pid, since), so
a run that waited in vain fails with a `LockTimeout` saying whom it waited
for and what to do.

Which locks (see `rebuild_lock_names`): the persons rebuild takes
`persons` and every `push:<target>`; a push takes its own `push:<target>`.
So a rebuild and any push exclude each other, two pushes to one target
exclude each other, and pushes to different targets run at once. Several
locks are always taken in one global order (sorted by name), so two runs
can never each hold a lock the other waits for.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import threading
import time
import uuid
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterable, Iterator, Mapping

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from connectors.errors import ConfigError
from pipelines.state.tables import locks

WAIT_VARIABLE = "SYNC_LOCK_WAIT_SECONDS"
LEASE_VARIABLE = "SYNC_LOCK_LEASE_SECONDS"
DEFAULT_WAIT_SECONDS = 600.0  # a daily push of a few thousand persons fits; a long historical load may not
DEFAULT_LEASE_SECONDS = 60.0  # how long a dead SQLite holder blocks the next run
POLL_SECONDS = 0.2

PERSONS_LOCK = "persons"

Log = Callable[[str], None]
_logger = logging.getLogger(__name__)


def push_lock_name(target: str) -> str:
    """The lock a push to `target` holds (its contacts and its activities)."""
    return f"push:{target}"


def rebuild_lock_names(targets: Iterable[str]) -> list[str]:
    """The locks the persons rebuild holds: `persons` and every target's push lock, in lock order.

    Holding every push lock is what keeps a rebuild from re-keying persons
    under a push that is running, without a shared/exclusive lock mode.
    """
    return sorted({PERSONS_LOCK, *(push_lock_name(target) for target in targets)})


@dataclass(frozen=True)
class LockSettings:
    """How long a run waits for a lock, and how long a SQLite lock outlives a holder that stopped renewing it."""

    wait: timedelta = timedelta(seconds=DEFAULT_WAIT_SECONDS)
    lease: timedelta = timedelta(seconds=DEFAULT_LEASE_SECONDS)

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> "LockSettings":
        """SYNC_LOCK_WAIT_SECONDS (>= 0) and SYNC_LOCK_LEASE_SECONDS (> 0), read when a lock is taken."""
        return cls(wait=timedelta(seconds=_seconds(env, WAIT_VARIABLE, DEFAULT_WAIT_SECONDS, minimum=0.0)),
                   lease=timedelta(seconds=_seconds(env, LEASE_VARIABLE, DEFAULT_LEASE_SECONDS, minimum=1.0)))


def _seconds(env: Mapping[str, str], name: str, default: float, *, minimum: float) -> float:
    raw = (env.get(name) or "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not value >= minimum or value == float("inf"):
        raise ConfigError("state store", f"{name} must be a number of seconds, at least {minimum:g}; got {raw!r}")
    return value


@dataclass(frozen=True)
class Holder:
    """Who holds a lock, as its `locks` row says."""

    name: str
    run_id: str
    host: str
    pid: int
    acquired_at: datetime
    expires_at: datetime | None  # SQLite: the lease's end; PostgreSQL: None


class LockTimeout(RuntimeError):
    """A lock stayed held by another run for the whole wait: the run stops before sending anything."""

    def __init__(self, name: str, holder: Holder | None, waited: float, dialect: str) -> None:
        self.name, self.holder, self.waited = name, holder, waited
        super().__init__(_timeout_message(name, holder, waited, dialect))


def _timeout_message(name: str, holder: Holder | None, waited: float, dialect: str) -> str:
    head = f"state store lock {name!r} is still held after waiting {waited:.0f} s ({WAIT_VARIABLE})"
    if holder is None:
        return f"{head}, by a process that has not recorded itself yet; run again in a moment"
    who = (f"run {holder.run_id} (host {holder.host}, pid {holder.pid}) since "
           f"{_iso(holder.acquired_at)}")
    if holder.expires_at is not None:
        died = f"if it died, its lease expires at {_iso(holder.expires_at)} and the next run takes over"
    else:
        died = "if it died, PostgreSQL has already freed the lock with its connection and a rerun goes ahead"
    return f"{head}: held by {who}. Wait for run {holder.run_id} to finish, or {died}"


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _utc(moment: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; every one this module writes is UTC."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=timezone.utc)


def _now() -> datetime:
    return datetime.now(timezone.utc)


def read_holder(engine: sa.Engine, name: str) -> Holder | None:
    """The recorded holder of lock `name`, or None when nobody is recorded."""
    with engine.connect() as conn:
        row = conn.execute(sa.select(locks).where(locks.c.name == name)).mappings().first()
    if row is None:
        return None
    return Holder(row["name"], row["run_id"], row["host"], row["pid"], _utc(row["acquired_at"]),
                  _utc(row["expires_at"]))


class _Lock:
    """One acquisition of one named lock; `try_acquire` until it says True, then `release` once."""

    def __init__(self, engine: sa.Engine, name: str, owner: str, lease: timedelta, log: Log) -> None:
        self.engine, self.name, self.owner, self.lease, self.log = engine, name, owner, lease, log
        self.token = uuid.uuid4().hex
        self.lost = False

    def _row(self, expires_at: datetime | None) -> dict[str, Any]:
        return {"name": self.name, "token": self.token, "run_id": self.owner, "host": socket.gethostname(),
                "pid": os.getpid(), "acquired_at": _now(), "expires_at": expires_at}

    def try_acquire(self) -> bool:
        raise NotImplementedError

    def release(self) -> None:
        raise NotImplementedError

    def abandon(self) -> None:
        """Give up on a lock not (or not fully) taken."""

    # A held lock is renewed (SQLite) or its connection checked (PostgreSQL) every lease/3.
    lost_because = ""

    def _renew(self) -> bool:
        """One heartbeat: False when the lock is no longer ours."""
        raise NotImplementedError

    def _start_heartbeat(self) -> None:
        self._stop = threading.Event()
        self._beat = threading.Thread(target=self._heartbeat, name=f"lock-heartbeat {self.name}", daemon=True)
        self._beat.start()

    def _heartbeat(self) -> None:
        while not self._stop.wait(self.lease.total_seconds() / 3):
            try:
                renewed = self._renew()
            except sa.exc.OperationalError as exc:  # SQLite busy past its timeout: a missed beat is harmless
                _logger.warning("lock %s: not renewed this time: %s", self.name, exc)
                continue
            if not renewed:
                self.lost = True
                self.log(f"lock {self.name!r} lost: {self.lost_because}; this step may have overlapped another run")
                return

    def _stop_heartbeat(self) -> None:
        self._stop.set()
        self._beat.join()


class _SqliteLock(_Lock):
    """The `locks` row is the lock: taken while absent or expired, renewed by a heartbeat thread."""

    lost_because = "its lease expired while this process was stalled, and another run took it"

    def try_acquire(self) -> bool:
        now = _now()
        row = self._row(now + self.lease)
        insert = sqlite.insert(locks).values(row)
        take = insert.on_conflict_do_update(
            index_elements=[locks.c.name],
            set_={name: insert.excluded[name] for name in row if name != "name"},
            where=locks.c.expires_at < now,
        )
        with self.engine.begin() as conn:  # one statement, under SQLite's single writer lock: atomic
            conn.execute(take)
            taken = conn.execute(sa.select(locks.c.token).where(locks.c.name == self.name)).scalar() == self.token
        if taken:
            self._start_heartbeat()
        return taken

    def _renew(self) -> bool:
        with self.engine.begin() as conn:
            return bool(conn.execute(
                locks.update().where(locks.c.name == self.name, locks.c.token == self.token)
                .values(expires_at=_now() + self.lease)).rowcount)

    def release(self) -> None:
        self._stop_heartbeat()
        with self.engine.begin() as conn:
            conn.execute(locks.delete().where(locks.c.name == self.name, locks.c.token == self.token))


class _PostgresLock(_Lock):
    """A session advisory lock on a connection of its own; the `locks` row only describes the holder.

    The heartbeat uses that connection now and then, so a server or proxy
    that drops idle sessions does not free the lock unnoticed.
    """

    _conn: sa.Connection | None = None
    lost_because = "its PostgreSQL connection broke, and the server freed the lock with it"

    def _key(self, conn: sa.Connection) -> int:
        schema = conn.execute(sa.text("SELECT current_schema()")).scalar() or ""
        digest = hashlib.sha256(f"{schema}\0{self.name}".encode()).digest()
        return int.from_bytes(digest[:8], "big", signed=True)

    def try_acquire(self) -> bool:
        if self._conn is None:
            self._conn = self.engine.connect()
            self._lock_key = self._key(self._conn)
        taken = bool(self._conn.execute(sa.text("SELECT pg_try_advisory_lock(:key)"),
                                        {"key": self._lock_key}).scalar())
        self._conn.commit()  # the session lock outlives the transaction; nothing stays "idle in transaction"
        if taken:
            row = self._row(None)
            insert = postgresql.insert(locks).values(row)
            record = insert.on_conflict_do_update(
                index_elements=[locks.c.name], set_={name: insert.excluded[name] for name in row if name != "name"})
            with self.engine.begin() as conn:
                conn.execute(record)
            self._start_heartbeat()
        return taken

    def _renew(self) -> bool:
        assert self._conn is not None
        try:
            self._conn.execute(sa.text("SELECT 1"))
            self._conn.commit()
        except sa.exc.DBAPIError:
            return False
        return True

    def release(self) -> None:
        """Forget the holder row, unlock, close; a broken connection is discarded (the server freed the lock)."""
        self._stop_heartbeat()
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            with self.engine.begin() as other:
                other.execute(locks.delete().where(locks.c.name == self.name, locks.c.token == self.token))
            conn.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": self._lock_key})
            conn.commit()
        except sa.exc.DBAPIError as exc:
            conn.invalidate()
            _logger.warning("lock %s: released by closing its connection: %s", self.name, exc)
        finally:
            conn.close()

    def abandon(self) -> None:
        """Give up waiting: close the lock connection without holding anything."""
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()


def _make_lock(engine: sa.Engine, name: str, owner: str, lease: timedelta, log: Log) -> _Lock:
    if engine.dialect.name == "postgresql":
        return _PostgresLock(engine, name, owner, lease, log)
    if engine.dialect.name == "sqlite":
        return _SqliteLock(engine, name, owner, lease, log)
    raise ConfigError("state store", f"locks are implemented for SQLite and PostgreSQL, not {engine.dialect.name}")


def _acquire(lock: _Lock, deadline: float, log: Log) -> None:
    """Poll until the lock is ours or the deadline passes (then LockTimeout naming the holder)."""
    started, told = time.monotonic(), False
    while not _try(lock):
        if time.monotonic() >= deadline:
            lock.abandon()
            raise LockTimeout(lock.name, read_holder(lock.engine, lock.name), time.monotonic() - started,
                              lock.engine.dialect.name)
        if not told:
            holder = read_holder(lock.engine, lock.name)
            by = f"run {holder.run_id} (host {holder.host}, pid {holder.pid})" if holder else "another process"
            log(f"waiting for lock {lock.name!r} held by {by}, up to {deadline - started:.0f} s")
            told = True
        time.sleep(min(POLL_SECONDS, max(0.0, deadline - time.monotonic())))
    if told:
        log(f"lock {lock.name!r} acquired after {time.monotonic() - started:.1f} s")


def _try(lock: _Lock) -> bool:
    try:
        return lock.try_acquire()
    except BaseException:
        lock.abandon()  # PostgreSQL: closing the connection frees a lock taken before the failure
        raise


@contextmanager
def store_locks(
    store: Any,
    names: Iterable[str],
    *,
    owner: str,
    wait: timedelta | None = None,
    lease: timedelta | None = None,
    log: Log | None = None,
) -> Iterator[list[str]]:
    """Hold every lock of `names` (taken in sorted order, under one wait) for the `with` block.

    `store` is a StateStore or an Engine; `owner` is the run id the holder
    row shows. `wait` and `lease` default to SYNC_LOCK_WAIT_SECONDS and
    SYNC_LOCK_LEASE_SECONDS. Raises LockTimeout when a lock stays held by
    someone else for the whole wait; locks taken before it are released.
    """
    engine: sa.Engine = getattr(store, "engine", store)
    settings = LockSettings.from_env() if wait is None or lease is None else LockSettings(wait, lease)
    say = log or _logger.info
    deadline = time.monotonic() + (wait if wait is not None else settings.wait).total_seconds()
    ordered = sorted(set(names))
    with ExitStack() as held:
        for name in ordered:
            lock = _make_lock(engine, name, owner, lease if lease is not None else settings.lease, say)
            _acquire(lock, deadline, say)
            held.callback(lock.release)
        yield ordered


@contextmanager
def store_lock(store: Any, name: str, *, owner: str, wait: timedelta | None = None,
               lease: timedelta | None = None, log: Log | None = None) -> Iterator[str]:
    """Hold one named lock for the `with` block (see `store_locks`)."""
    with store_locks(store, [name], owner=owner, wait=wait, lease=lease, log=log):
        yield name
