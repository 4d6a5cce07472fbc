"""Every schema migration of the SQLite stores, in order, and the splitter that runs them.

:data:`MIGRATIONS` builds the telemetry database (readings, devices, dead letters, events,
alarms, the outbox, device state, channels, the worker's profile, the audit log, commands,
shadows, firmware and jobs); :data:`AUTH_MIGRATIONS` builds ``auth.db``, the dashboard's
credentials file, which never shares a file with telemetry. A migration is applied once,
in order, and recorded in ``PRAGMA user_version``; published ones are never edited, only
followed by new ones.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import Final

MIGRATIONS: Final[tuple[str, ...]] = (
    # 1: readings keyed by (device_id, ts); a per-device summary row for "latest" queries;
    #    dead letters deduplicated by fingerprint; raised events.
    """
    CREATE TABLE readings (
        device_id TEXT NOT NULL,
        ts TEXT NOT NULL,
        fleet_id TEXT,
        temperature_c REAL NOT NULL,
        humidity_pct REAL NOT NULL,
        shock_g REAL NOT NULL,
        battery_pct REAL NOT NULL,
        latitude REAL,
        longitude REAL,
        firmware_version TEXT,
        seq INTEGER,
        PRIMARY KEY (device_id, ts)
    ) STRICT, WITHOUT ROWID;
    CREATE INDEX readings_by_fleet ON readings (fleet_id, ts);
    CREATE TABLE devices (
        device_id TEXT PRIMARY KEY,
        fleet_id TEXT,
        first_ts TEXT NOT NULL,
        last_ts TEXT NOT NULL,
        readings INTEGER NOT NULL
    ) STRICT, WITHOUT ROWID;
    CREATE TABLE dead_letters (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        fingerprint BLOB NOT NULL UNIQUE,
        kind TEXT NOT NULL,
        topic TEXT NOT NULL,
        payload BLOB NOT NULL,
        received_at TEXT NOT NULL,
        reason TEXT NOT NULL,
        attempts INTEGER NOT NULL,
        last_attempt_at TEXT NOT NULL
    ) STRICT;
    CREATE TABLE events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        kind TEXT NOT NULL,
        device_id TEXT NOT NULL,
        fleet_id TEXT,
        ts TEXT NOT NULL,
        value REAL NOT NULL,
        threshold REAL NOT NULL,
        detail TEXT NOT NULL
    ) STRICT;
    CREATE INDEX events_by_device ON events (device_id, ts);
    """,
    # 2: alarm records (one per occurrence) and the notification outbox.
    """
    CREATE TABLE alarms (
        id TEXT PRIMARY KEY,
        device_id TEXT NOT NULL,
        fleet_id TEXT,
        rule TEXT NOT NULL,
        severity TEXT NOT NULL,
        state TEXT NOT NULL,
        started_at TEXT NOT NULL,
        raised_at TEXT NOT NULL,
        cleared_at TEXT,
        peak REAL NOT NULL,
        out_of_range_s REAL NOT NULL,
        detail TEXT NOT NULL,
        ack_by TEXT,
        ack_at TEXT,
        ack_comment TEXT,
        last_notified_at TEXT
    ) STRICT, WITHOUT ROWID;
    CREATE INDEX alarms_by_device ON alarms (device_id, started_at);
    CREATE INDEX alarms_by_state ON alarms (state, started_at);
    CREATE TABLE outbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        channel TEXT NOT NULL,
        alarm_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        subject TEXT NOT NULL,
        document TEXT NOT NULL,
        created_at TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at TEXT NOT NULL,
        delivered_at TEXT,
        last_error TEXT
    ) STRICT;
    CREATE INDEX outbox_due ON outbox (delivered_at, next_attempt_at);
    """,
    # 3: bounded dead letters: the sending device (for its quota), the whole payload's size
    #    and SHA-256 beside its kept first 4 KiB, and counts of what the bounds dropped.
    """
    ALTER TABLE dead_letters ADD COLUMN device_id TEXT NOT NULL DEFAULT '-';
    ALTER TABLE dead_letters ADD COLUMN size INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE dead_letters ADD COLUMN sha256 TEXT NOT NULL DEFAULT '';
    UPDATE dead_letters SET size = length(payload),
        device_id = CASE WHEN topic LIKE 'dt/coldchain/%/telemetry'
                         THEN substr(topic, 14, length(topic) - 23) ELSE '-' END;
    CREATE INDEX dead_letters_by_device ON dead_letters (device_id);
    CREATE INDEX dead_letters_by_arrival ON dead_letters (received_at);
    CREATE TABLE dead_letter_drops (
        device_id TEXT PRIMARY KEY,
        over_quota INTEGER NOT NULL DEFAULT 0,
        expired INTEGER NOT NULL DEFAULT 0,
        last_dropped_at TEXT NOT NULL
    ) STRICT, WITHOUT ROWID;
    """,
    # 4: each device's rule state between readings (core.device_state), versioned; one
    #    outbox row per notification key and channel (a redelivery enqueues nothing twice).
    """
    CREATE TABLE device_state (
        device_id TEXT PRIMARY KEY,
        version INTEGER NOT NULL,
        document TEXT NOT NULL
    ) STRICT, WITHOUT ROWID;
    ALTER TABLE outbox ADD COLUMN notification_key TEXT;
    UPDATE outbox SET notification_key = 'legacy:' || id;
    CREATE UNIQUE INDEX outbox_once ON outbox (channel, notification_key);
    """,
    # 5: the notification channels the worker runs with (name, lowest severity), so that
    #    `dlq replay` enqueues for the same channels.
    """
    CREATE TABLE channels (
        name TEXT PRIMARY KEY,
        minimum TEXT NOT NULL
    ) STRICT, WITHOUT ROWID;
    """,
    # 6: the alarm profile the worker runs with (its TOML keys as JSON), so that `dlq replay`,
    #    the dashboard and the CLI use the same rules, band and silence time.
    """
    CREATE TABLE worker_profile (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        document TEXT NOT NULL
    ) STRICT;
    """,
    # 7: the audit trail (shipments, acknowledgements, decisions): append-only; triggers
    #    refuse an UPDATE or DELETE, so not even a bug in this code can rewrite history.
    """
    CREATE TABLE audit_log (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        subject TEXT NOT NULL,
        seq INTEGER NOT NULL,
        at TEXT NOT NULL,
        document TEXT NOT NULL,
        UNIQUE (subject, seq)
    ) STRICT;
    CREATE INDEX audit_by_time ON audit_log (at);
    CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit_log
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
    CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit_log
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
    """,
    # 8: INSERT OR REPLACE deletes without firing the delete trigger (recursive triggers are
    #    off): refuse any insert that would replace a record.
    """
    CREATE TRIGGER audit_no_replace BEFORE INSERT ON audit_log
    WHEN EXISTS (
        SELECT 1 FROM audit_log
        WHERE id = NEW.id OR (subject = NEW.subject AND seq = NEW.seq)
    )
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only: that record exists'); END;
    """,
    # 9: device commands and their lifecycle (core.commands); the control service sends the
    #    unsent ones and records the answers.
    """
    CREATE TABLE commands (
        command_id TEXT PRIMARY KEY,
        device_id TEXT NOT NULL,
        document TEXT NOT NULL,
        status TEXT NOT NULL,
        issued_at TEXT NOT NULL,
        sent_at TEXT
    );
    CREATE INDEX commands_by_device ON commands (device_id, issued_at);
    CREATE INDEX commands_open ON commands (status) WHERE status NOT IN
        ('succeeded', 'failed', 'rejected', 'expired');
    """,
    # 10: device shadows (core.shadow): desired and reported configuration with a version;
    #     delta_due marks an operator's change the control service has yet to announce.
    """
    CREATE TABLE shadows (
        device_id TEXT PRIMARY KEY,
        desired TEXT NOT NULL,
        reported TEXT NOT NULL,
        version INTEGER NOT NULL,
        updated_at TEXT,
        delta_due INTEGER NOT NULL DEFAULT 0
    );
    """,
    # 11: firmware images, jobs and their per-device executions (core.jobs).
    """
    CREATE TABLE firmware (
        version TEXT PRIMARY KEY,
        sha256 TEXT NOT NULL,
        size INTEGER NOT NULL,
        added_at TEXT NOT NULL
    );
    CREATE TABLE jobs (
        job_id TEXT PRIMARY KEY,
        status TEXT NOT NULL,
        document TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE TABLE job_executions (
        job_id TEXT NOT NULL REFERENCES jobs (job_id),
        device_id TEXT NOT NULL,
        status TEXT NOT NULL,
        document TEXT NOT NULL,
        PRIMARY KEY (job_id, device_id)
    );
    """,
)

AUTH_MIGRATIONS: Final[tuple[str, ...]] = (
    # 1: users (role by name, argon2 hash), sessions and API tokens by digest.
    """
    CREATE TABLE users (
        name TEXT PRIMARY KEY,
        role TEXT NOT NULL CHECK (role IN ('viewer', 'operator', 'qa', 'admin')),
        password_hash TEXT NOT NULL,
        created_at TEXT NOT NULL,
        password_changed_at TEXT NOT NULL
    ) STRICT;
    CREATE TABLE sessions (
        digest TEXT PRIMARY KEY,
        user_name TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE,
        created_at TEXT NOT NULL,
        expires_at TEXT NOT NULL
    ) STRICT;
    CREATE INDEX sessions_by_user ON sessions (user_name);
    CREATE INDEX sessions_by_expiry ON sessions (expires_at);
    CREATE TABLE tokens (
        digest TEXT PRIMARY KEY,
        user_name TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE,
        label TEXT NOT NULL,
        created_at TEXT NOT NULL,
        last_used_at TEXT
    ) STRICT;
    CREATE INDEX tokens_by_user ON tokens (user_name);
    """,
)


def statements(script: str) -> Iterator[str]:
    """The statements of a migration script (a trigger's body holds semicolons too)."""
    pending = ""
    for piece in script.split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \n;"):
                yield pending
            pending = ""
