"""The state store's tables.

Raw payloads are kept so a new schema version can re-normalize history
without calling a source again; sync state is per target so that turning a
second CRM on later sends it everything and the first one nothing new.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

# The store's own schema version, upgraded step by step by migrations.py.
store_meta = sa.Table(
    "store_meta",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.String(255), nullable=False),
)

raw_records = sa.Table(
    "raw_records",
    metadata,
    sa.Column("source", sa.String(32), primary_key=True),
    sa.Column("stream", sa.String(32), primary_key=True),
    sa.Column("record_id", sa.String(255), primary_key=True),
    sa.Column("payload", sa.JSON, nullable=False),
    sa.Column("payload_hash", sa.String(64), nullable=False),
    # The payload hash and schema version the record was last normalized
    # from: a row needs normalizing when either differs from the current one.
    sa.Column("normalized_hash", sa.String(64)),
    sa.Column("normalized_version", sa.Integer),
    sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("fetched_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("run_id", sa.String(64)),
)

records = sa.Table(
    "records",
    metadata,
    sa.Column("source", sa.String(32), primary_key=True),
    sa.Column("stream", sa.String(32), primary_key=True),
    sa.Column("record_id", sa.String(255), primary_key=True),
    sa.Column("schema_name", sa.String(32), nullable=False),
    sa.Column("schema_version", sa.Integer, nullable=False),
    sa.Column("data", sa.JSON, nullable=False),
    sa.Column("email", sa.String(320)),
    sa.Column("phone", sa.String(32)),
    sa.Column("person_key", sa.String(400)),
    sa.Column("event_day", sa.String(10)),
    sa.Column("content_hash", sa.String(64), nullable=False),
    sa.Column("normalized_at", sa.DateTime(timezone=True), nullable=False),
    # Store v2 (migrations step 1): what links a conversation to a contact
    # record of the same source (the two share a link_id: see
    # pipelines/steps/normalize.py), and a conversation's last activity
    # time (ISO-8601 UTC, so MAX() works on every dialect) and channel.
    sa.Column("link_id", sa.String(255)),
    sa.Column("event_at", sa.String(40)),
    sa.Column("channel", sa.String(32)),
    sa.Index("ix_records_person_key", "person_key"),
    sa.Index("ix_records_phone_email", "phone", "email"),
    sa.Index("ix_records_stream_day", "stream", "event_day"),
    sa.Index("ix_records_link", "stream", "source", "link_id", "person_key"),
    sa.Index("ix_records_stream_person", "stream", "person_key"),
)

# What store v2 added to `records` (migrations step 1 adds them to a v1 store).
RECORDS_V2_COLUMNS = ("link_id", "event_at", "channel")
RECORDS_V2_INDEXES = ("ix_records_link", "ix_records_stream_person")

quarantine = sa.Table(
    "quarantine",
    metadata,
    sa.Column("source", sa.String(32), primary_key=True),
    sa.Column("stream", sa.String(32), primary_key=True),
    sa.Column("record_id", sa.String(255), primary_key=True),
    sa.Column("reason", sa.String(64), nullable=False),
    sa.Column("detail", sa.Text, nullable=False),
    sa.Column("payload", sa.JSON),
    sa.Column("quarantined_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("run_id", sa.String(64)),
)

persons = sa.Table(
    "persons",
    metadata,
    sa.Column("person_key", sa.String(400), primary_key=True),
    sa.Column("data", sa.JSON, nullable=False),
    sa.Column("content_hash", sa.String(64), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

sync_state = sa.Table(
    "sync_state",
    metadata,
    sa.Column("target", sa.String(32), primary_key=True),
    sa.Column("object_type", sa.String(32), primary_key=True),
    sa.Column("key", sa.String(400), primary_key=True),
    sa.Column("crm_id", sa.String(64)),
    sa.Column("last_hash", sa.String(64)),
    sa.Column("synced_at", sa.DateTime(timezone=True)),
    sa.Column("failed_hash", sa.String(64)),
    sa.Column("last_error", sa.Text),
    sa.Column("error_code", sa.String(64)),
    sa.Column("error_permanent", sa.Boolean, nullable=False, default=False),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("last_attempt_at", sa.DateTime(timezone=True)),
    # Set when the person was re-keyed (phone:... -> email:...): the CRM record
    # `crm_id` was synced under this older key and is written by id until the
    # next successful sync clears it (pipelines/steps/persons.py).
    sa.Column("moved_from", sa.String(400)),
)

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("run_id", sa.String(64), primary_key=True),
    sa.Column("job", sa.String(64), nullable=False),
    sa.Column("partition", sa.String(64)),
    sa.Column("step", sa.String(64), primary_key=True),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("finished_at", sa.DateTime(timezone=True)),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("stats", sa.JSON),
)

checkpoints = sa.Table(
    "checkpoints",
    metadata,
    sa.Column("name", sa.String(128), primary_key=True),
    sa.Column("value", sa.JSON, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

# Store v2: what a step did per day of its partition range (a backfill of a
# range runs once and still says, day by day, what it found and sent).
run_days = sa.Table(
    "run_days",
    metadata,
    sa.Column("run_id", sa.String(64), primary_key=True),
    sa.Column("step", sa.String(64), primary_key=True),
    sa.Column("day", sa.String(10), primary_key=True),
    sa.Column("stats", sa.JSON, nullable=False),
    sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
)

# Store v4: named locks that keep two runs from pushing (or rebuilding the
# persons) at once (pipelines/state/locks.py). One row per held lock, naming
# its holder so that a run that waits in vain can say who holds it. On SQLite
# the row is the lock itself (taken while absent or past `expires_at`, renewed
# by its holder's heartbeat); on PostgreSQL the lock is an advisory lock and
# the row only describes its holder (`expires_at` is NULL there).
locks = sa.Table(
    "locks",
    metadata,
    sa.Column("name", sa.String(128), primary_key=True),
    sa.Column("token", sa.String(32), nullable=False),  # this acquisition (one run may take a lock twice)
    sa.Column("run_id", sa.String(64), nullable=False),
    sa.Column("host", sa.String(255), nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True)),
)

# Store v5: webhook events as received (pipelines/webhooks/), one row per
# event id, written before the receiver answers 2xx. `seq` orders them: the
# sensor batches pending events by it (pipelines/webhooks/sensor.py) and
# webhook_sync marks each one when its writes are recorded (status `pending`
# -> `done`, or `waiting_for_appointment_support` for bookings, which no
# sink pushes yet; `ignored` for an event type the sync does not handle).
webhook_inbox = sa.Table(
    "webhook_inbox",
    metadata,
    sa.Column("seq", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("source", sa.String(32), nullable=False),
    sa.Column("event_id", sa.String(255), nullable=False),
    sa.Column("event_type", sa.String(64), nullable=False),
    sa.Column("payload", sa.JSON, nullable=False),
    sa.Column("body_sha256", sa.String(64), nullable=False),
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("status", sa.String(40), nullable=False),
    sa.Column("detail", sa.Text),
    sa.Column("run_id", sa.String(64)),
    sa.Column("processed_at", sa.DateTime(timezone=True)),
    sa.UniqueConstraint("source", "event_id", name="uq_webhook_inbox_event"),
    sa.Index("ix_webhook_inbox_status_seq", "status", "seq"),
    sqlite_autoincrement=True,  # a seq is never reused, so a batch's bounds name its events for good
)
