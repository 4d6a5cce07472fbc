"""SQLite adapters: the local stack's stores in one WAL-mode database file, plus ``auth.db``.

One :class:`SqliteDatabase` owns the connection; the stores share it so that a batch's
readings, dead letters, events, alarms and notifications commit in one transaction
(:meth:`SqliteDatabase.transaction`) and the worker acknowledges the batch only after that
commit.

Modules:
    database: the connection, nestable transactions, applying migrations, ``translated()``
        (sqlite3 errors as ours).
    migrations: every schema migration, of the telemetry database and of ``auth.db``.
    readings: readings and the per-device summary row (:class:`SqliteReadingStore`).
    dead_letters: bounded, deduplicated dead letters (:class:`SqliteDeadLetterStore`).
    events: raised events, the local event sink (:class:`SqliteEventStore`).
    alarms: alarm records (:class:`SqliteAlarmStore`).
    outbox: notifications per channel awaiting delivery (:class:`SqliteOutbox`).
    state: each device's rule state and the worker's alarm profile
        (:class:`SqliteDeviceStateStore`, :class:`SqliteProfileRecord`).
    audit: the append-only audit trail (:class:`SqliteAuditLog`).
    queries: read-side queries for the dashboard and CLI (:class:`SqliteReadModel`) and the
        store totals (:func:`summarise`).
    commands: device commands (:class:`SqliteCommandStore`).
    shadows: device shadows (:class:`SqliteShadowStore`).
    jobs: firmware images, jobs and their executions (:class:`SqliteJobStore`).
    auth: the dashboard's users, sessions and tokens in ``auth.db`` (:class:`SqliteAuthStore`).

The stores' classes are importable from the package itself.
"""

from __future__ import annotations

from coldchain.adapters.sqlite.alarms import SqliteAlarmStore
from coldchain.adapters.sqlite.audit import SqliteAuditLog
from coldchain.adapters.sqlite.auth import SqliteAuthStore, UserRecord
from coldchain.adapters.sqlite.commands import SqliteCommandStore
from coldchain.adapters.sqlite.database import SqliteDatabase
from coldchain.adapters.sqlite.dead_letters import SqliteDeadLetterStore
from coldchain.adapters.sqlite.events import SqliteEventStore
from coldchain.adapters.sqlite.jobs import SqliteJobStore
from coldchain.adapters.sqlite.outbox import OutboxItem, SqliteOutbox
from coldchain.adapters.sqlite.queries import Bucket, SqliteReadModel, StoreSummary, summarise
from coldchain.adapters.sqlite.readings import SqliteReadingStore
from coldchain.adapters.sqlite.shadows import SqliteShadowStore
from coldchain.adapters.sqlite.state import SqliteDeviceStateStore, SqliteProfileRecord

__all__ = [
    "Bucket",
    "OutboxItem",
    "SqliteAlarmStore",
    "SqliteAuditLog",
    "SqliteAuthStore",
    "SqliteCommandStore",
    "SqliteDatabase",
    "SqliteDeadLetterStore",
    "SqliteDeviceStateStore",
    "SqliteEventStore",
    "SqliteJobStore",
    "SqliteOutbox",
    "SqliteProfileRecord",
    "SqliteReadModel",
    "SqliteReadingStore",
    "SqliteShadowStore",
    "StoreSummary",
    "UserRecord",
    "summarise",
]
