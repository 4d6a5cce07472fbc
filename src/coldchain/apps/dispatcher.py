"""Delivers the notification outbox in a thread of its own.

Alarm records and their notifications are committed with the readings; this thread then
delivers them, so a webhook that hangs costs ingestion nothing, and a channel that fails
is retried with back-off (1 s, 2 s, 4 s ... capped at 5 minutes, 10 attempts) without
touching the alarm record.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Final

from coldchain.adapters.clock import SystemClock
from coldchain.adapters.notify import Channel
from coldchain.adapters.sqlite import SqliteDatabase, SqliteOutbox
from coldchain.core.errors import DeliveryError, StorageError
from coldchain.core.ports import Clock
from coldchain.core.rules import Severity

log = logging.getLogger("coldchain.dispatcher")
MAX_ATTEMPTS: Final = 10


class Dispatcher:
    """Polls the outbox and hands each due item to its channel."""

    def __init__(
        self,
        db_path: Path,
        channels: Sequence[tuple[Channel, Severity]],
        poll_s: float = 0.5,
        clock: Clock | None = None,
    ) -> None:
        self._clock = clock or SystemClock()
        self._db_path = db_path
        self._channels = {channel.name: channel for channel, _ in channels}
        self.minimums = {channel.name: minimum for channel, minimum in channels}
        self._poll_s = poll_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="coldchain-dispatcher", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        self._thread.join(timeout_s)

    def _run(self) -> None:
        db = SqliteDatabase(self._db_path)
        outbox = SqliteOutbox(db, self.minimums)
        try:
            while not self._stop.is_set():
                try:
                    self.deliver_due(outbox)
                except StorageError as exc:
                    log.error("outbox unavailable: %s", exc)
                self._stop.wait(self._poll_s)
            self.deliver_due(outbox)  # one last pass on the way out
        finally:
            db.close()

    def deliver_due(self, outbox: SqliteOutbox) -> int:
        """Try every due item once; returns how many were delivered."""
        delivered = 0
        for item in outbox.due(self._clock.now()):
            channel = self._channels.get(item.channel)
            if channel is None:
                outbox.failed(item.id, f"no channel {item.channel!r} configured", None)
                continue
            try:
                channel.send(item.subject, item.document)
            except DeliveryError as exc:
                attempts = item.attempts + 1
                retry = None
                if attempts < MAX_ATTEMPTS:
                    retry = self._clock.now() + timedelta(seconds=min(300, 2 ** (attempts - 1)))
                log.warning("%s: %s (attempt %d)", item.channel, exc, attempts)
                outbox.failed(item.id, str(exc), retry)
                continue
            outbox.delivered(item.id, self._clock.now())
            delivered += 1
        return delivered
