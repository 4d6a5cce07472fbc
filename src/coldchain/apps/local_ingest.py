"""The ingest step wired to one SQLite database: what the worker and `dlq replay` run."""

from __future__ import annotations

from coldchain.adapters.sqlite import (
    SqliteAlarmStore,
    SqliteDatabase,
    SqliteDeadLetterStore,
    SqliteDeviceStateStore,
    SqliteEventStore,
    SqliteOutbox,
    SqliteReadingStore,
)
from coldchain.core.alarm_profile import AlarmProfile
from coldchain.core.ingest import Ingest
from coldchain.core.processing import Processor
from coldchain.core.profile import DEFAULT_PROFILE, Profile
from coldchain.core.rules import Severity


def local_ingest(
    db: SqliteDatabase,
    alarm_profile: AlarmProfile,
    channels: dict[str, Severity] | None = None,
    limits: Profile = DEFAULT_PROFILE,
) -> Ingest:
    """Every store on ``db``: one transaction around :meth:`Ingest.run` commits it all.

    ``channels`` given (the worker): they are recorded in the database; not given (`dlq
    replay`): the ones the worker recorded are used.
    """
    processor = Processor(SqliteReadingStore(db), SqliteDeadLetterStore(db), limits)
    outbox = SqliteOutbox(db, channels or SqliteOutbox.remembered_channels(db))
    if channels is not None:
        outbox.remember_channels()  # the worker: `dlq replay` enqueues for the same channels
    return Ingest(
        processor,
        SqliteDeviceStateStore(db),
        SqliteAlarmStore(db),
        outbox,
        alarm_profile,
        SqliteEventStore(db),
    )
