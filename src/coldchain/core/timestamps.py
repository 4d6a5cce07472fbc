"""One canonical UTC timestamp form, ``2024-01-15T09:23:41.000Z``: string order is time order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Final

CANONICAL_FORMAT: Final = "%Y-%m-%dT%H:%M:%S"
EARLIEST: Final = datetime(2000, 1, 1, tzinfo=UTC)
LATEST: Final = datetime(2100, 1, 1, tzinfo=UTC)
LAST_TIMESTAMP: Final = "9999-12-31T23:59:59.999Z"
"""Sorts after every canonical timestamp: the open end of a range."""


def to_canonical(moment: datetime) -> str:
    """Format an aware datetime as UTC with fixed-width milliseconds (truncated, not rounded)."""
    if moment.tzinfo is None:
        raise ValueError("timestamp has no zone")
    utc = moment.astimezone(UTC)
    return f"{utc.strftime(CANONICAL_FORMAT)}.{utc.microsecond // 1000:03d}Z"


def parse_iso(text: str) -> datetime:
    """Parse an ISO 8601 timestamp that carries a zone (``Z`` or an offset) into UTC.

    Raises:
        ValueError: the text is not ISO 8601, has no zone, or lies outside 2000-2100.
    """
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError("not an ISO 8601 timestamp") from None
    if moment.tzinfo is None:
        raise ValueError("timestamp must carry a zone, e.g. 2024-01-15T09:23:41Z")
    return _in_range(moment.astimezone(UTC))


def from_epoch_seconds(seconds: float) -> datetime:
    """A UTC datetime from Unix epoch seconds (the original firmware's integer form)."""
    return _in_range(datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=seconds))


def parse_canonical(text: str) -> datetime:
    """Parse a timestamp this package wrote (fast path for stored values)."""
    return datetime.fromisoformat(text)


def _in_range(moment: datetime) -> datetime:
    if not EARLIEST <= moment < LATEST:
        raise ValueError("timestamp must lie between 2000 and 2100")
    return moment
