"""The ingest step wired to one SQLite database: what the worker and `dlq replay` run."""

from __future__ import annotations

from coldchain.adapters.sqlite import (
    SqliteAlarmStore,
    SqliteDatabase,
    SqliteDeadLetterStore,
    SqliteDeviceStateStore,
    SqliteEventStore,
    SqliteOutbox,
    SqliteProfileRecord,
    SqliteReadingStore,
)
from coldchain.core.alarm_profile import AlarmProfile, default_profile
from coldchain.core.ingest import Ingest
from coldchain.core.processing import Processor
from coldchain.core.profile import DEFAULT_PROFILE, Profile
from coldchain.core.rules import Severity


def local_ingest(
    db: SqliteDatabase,
    alarm_profile: AlarmProfile | None = None,
    channels: dict[str, Severity] | None = None,
    limits: Profile = DEFAULT_PROFILE,
) -> Ingest:
    """Every store on ``db``: one transaction around :meth:`Ingest.run` commits it all.

    The worker passes ``channels``: they and the alarm profile are recorded in the database.
    `dlq replay` passes neither: it uses the ones the worker recorded (an explicit profile
    still wins; the built-in default when no worker has run).
    """
    record = SqliteProfileRecord(db)
    if alarm_profile is None:
        alarm_profile = record.remembered() or default_profile()
    processor = Processor(SqliteReadingStore(db), SqliteDeadLetterStore(db), limits)
    outbox = SqliteOutbox(db, channels or SqliteOutbox.remembered_channels(db))
    if channels is not None:  # the worker: `dlq replay` runs with the same channels and rules
        outbox.remember_channels()
        record.remember(alarm_profile)
    return Ingest(
        processor,
        SqliteDeviceStateStore(db),
        SqliteAlarmStore(db),
        outbox,
        alarm_profile,
        SqliteEventStore(db),
    )
