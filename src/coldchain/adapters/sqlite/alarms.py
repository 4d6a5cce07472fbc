"""Alarm records in SQLite, one row per occurrence (core.alarms)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Final

from coldchain.adapters.sqlite.database import SqliteDatabase, translated, where_equal
from coldchain.core.alarms import Acknowledgement, Alarm, AlarmState
from coldchain.core.errors import Issue, NotFoundError, StorageError, ValidationError
from coldchain.core.rules import Severity
from coldchain.core.timestamps import to_canonical

_ALARM_COLUMNS: Final = (
    "id, device_id, fleet_id, rule, severity, state, started_at, raised_at, cleared_at, peak, "
    "out_of_range_s, detail, ack_by, ack_at, ack_comment, last_notified_at"
)


def _ts(moment: datetime | None) -> str | None:
    return None if moment is None else to_canonical(moment)


def _dt(text: object) -> datetime | None:
    return None if text is None else datetime.fromisoformat(str(text))


def _alarm_row(alarm: Alarm) -> tuple[object, ...]:
    ack = alarm.acknowledgement
    return (
        alarm.id,
        alarm.device_id,
        alarm.fleet_id,
        alarm.rule,
        alarm.severity.value,
        alarm.state.value,
        _ts(alarm.started_at),
        _ts(alarm.raised_at),
        _ts(alarm.cleared_at),
        alarm.peak,
        alarm.out_of_range.total_seconds(),
        alarm.detail,
        None if ack is None else ack.by,
        None if ack is None else _ts(ack.at),
        None if ack is None else ack.comment,
        _ts(alarm.last_notified_at),
    )


def _required(value: object, name: str) -> datetime:
    """A time the schema always fills; its absence is a damaged record, not a default."""
    found = _dt(value)
    if found is None:
        raise StorageError(f"alarm record without {name}")
    return found


def _row_alarm(row: tuple[object, ...]) -> Alarm:
    (
        alarm_id_,
        device,
        fleet,
        rule,
        severity,
        state,
        started,
        raised,
        cleared,
        peak,
        out_s,
        detail,
        ack_by,
        ack_at,
        ack_comment,
        notified,
    ) = row
    ack = None
    if ack_by is not None:
        ack = Acknowledgement(str(ack_by), _required(ack_at, "ack_at"), str(ack_comment))
    return Alarm(
        id=str(alarm_id_),
        device_id=str(device),
        fleet_id=None if fleet is None else str(fleet),
        rule=str(rule),
        severity=Severity(str(severity)),
        state=AlarmState(str(state)),
        started_at=_required(started, "started_at"),
        raised_at=_required(raised, "raised_at"),
        cleared_at=_dt(cleared),
        peak=float(peak),  # type: ignore[arg-type]
        out_of_range=timedelta(seconds=float(out_s)),  # type: ignore[arg-type]
        detail=str(detail),
        acknowledgement=ack,
        last_notified_at=_dt(notified),
    )


class SqliteAlarmStore:
    """Alarm records in SQLite; see :class:`coldchain.core.ports.AlarmStore`."""

    def __init__(self, db: SqliteDatabase) -> None:
        self._db = db

    def get(self, alarm_id: str) -> Alarm | None:
        with translated():
            row = self._db.connection.execute(
                f"SELECT {_ALARM_COLUMNS} FROM alarms WHERE id = ?", (alarm_id,)
            ).fetchone()
        return None if row is None else _row_alarm(row)

    def resolve(self, prefix: str) -> str:
        """The one alarm id that is ``prefix`` or starts with it (ids are shown whole, and a
        short unique prefix is accepted, as git does).

        Raises:
            NotFoundError: no alarm id starts with it.
            ValidationError: several do (they are named).
        """
        with translated():
            rows = self._db.connection.execute(
                "SELECT id FROM alarms WHERE substr(id, 1, ?) = ? ORDER BY id LIMIT 6",
                (len(prefix), prefix),
            ).fetchall()
        ids = [alarm_id for (alarm_id,) in rows]
        if prefix in ids or len(ids) == 1:
            return prefix if prefix in ids else ids[0]
        if not ids:
            raise NotFoundError(f"no alarm {prefix!r}")
        shown = ", ".join(ids[:5]) + (", ..." if len(ids) > 5 else "")
        raise ValidationError([Issue("alarm", f"{prefix!r} is ambiguous: {shown}")])

    def save(self, alarms: Sequence[Alarm]) -> None:
        if not alarms:
            return
        placeholders = ", ".join("?" * 16)
        with self._db.transaction(), translated():
            self._db.connection.executemany(
                f"INSERT INTO alarms ({_ALARM_COLUMNS}) VALUES ({placeholders}) "
                "ON CONFLICT (id) DO UPDATE SET fleet_id = excluded.fleet_id, "
                "severity = excluded.severity, state = excluded.state, "
                "raised_at = excluded.raised_at, cleared_at = excluded.cleared_at, "
                "peak = excluded.peak, out_of_range_s = excluded.out_of_range_s, "
                "detail = excluded.detail, "
                "ack_by = coalesce(excluded.ack_by, alarms.ack_by), "
                "ack_at = coalesce(excluded.ack_at, alarms.ack_at), "
                "ack_comment = coalesce(excluded.ack_comment, alarms.ack_comment), "
                "last_notified_at = coalesce(excluded.last_notified_at, alarms.last_notified_at)",
                [_alarm_row(alarm) for alarm in alarms],
            )

    def delete(self, alarm_ids: Sequence[str]) -> None:
        with self._db.transaction(), translated():
            self._db.connection.executemany(
                "DELETE FROM alarms WHERE id = ?", [(alarm_id,) for alarm_id in alarm_ids]
            )

    def for_device(self, device_id: str, since: datetime) -> list[Alarm]:
        with translated():
            rows = self._db.connection.execute(
                f"SELECT {_ALARM_COLUMNS} FROM alarms WHERE device_id = ? "
                "AND (state = 'active' OR cleared_at >= ?) ORDER BY started_at",
                (device_id, to_canonical(since)),
            ).fetchall()
        return [_row_alarm(row) for row in rows]

    def list(
        self,
        *,
        active: bool | None = None,
        device_id: str | None = None,
        fleet_id: str | None = None,
        limit: int = 100,
    ) -> list[Alarm]:
        state = None if active is None else ("active" if active else "cleared")
        where, params = where_equal(state=state, device_id=device_id, fleet_id=fleet_id)
        with translated():
            rows = self._db.connection.execute(
                f"SELECT {_ALARM_COLUMNS} FROM alarms {where} ORDER BY started_at DESC, id LIMIT ?",
                (*params, limit),
            ).fetchall()
        return [_row_alarm(row) for row in rows]
