"""The local processor worker: MQTT in, the core's processing, SQLite out.

Batches are committed in one SQLite transaction and acknowledged only after the commit, so
a crash at any point redelivers at most the uncommitted batch, which idempotent storage
turns into duplicates. While the store is unavailable the worker holds the batch, retries
with backoff and acknowledges nothing; the broker's in-flight limit is the back-pressure.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from coldchain.adapters.clock import SystemClock
from coldchain.adapters.mqtt import Delivery, MqttConsumer
from coldchain.adapters.sqlite import (
    SqliteDatabase,
    SqliteDeadLetterStore,
)
from coldchain.apps.local_ingest import local_ingest
from coldchain.core.alarm_profile import AlarmProfile, default_profile
from coldchain.core.errors import StorageError, StoreLostError
from coldchain.core.messages import DeadLetter, DeadLetterKind, Message
from coldchain.core.ports import Clock
from coldchain.core.processing import Result
from coldchain.core.profile import DEFAULT_PROFILE, Profile
from coldchain.core.rules import Severity

log = logging.getLogger("coldchain.worker")


@dataclass(frozen=True, slots=True)
class WorkerOptions:
    """Tuning of the batching loop."""

    batch_size: int = 500
    linger_s: float = 0.05
    stats_every_s: float = 10.0
    retry_max_s: float = 5.0
    sweep_every_s: float = 10.0
    drain_quiet_s: float = 0.5
    drain_max_s: float = 10.0


class Worker:
    """Takes batches from the consumer, processes and commits them, then acknowledges."""

    def __init__(
        self,
        consumer: MqttConsumer,
        db: SqliteDatabase,
        profile: Profile = DEFAULT_PROFILE,
        options: WorkerOptions | None = None,
        alarm_profile: AlarmProfile | None = None,
        channels: dict[str, Severity] | None = None,
        clock: Clock | None = None,
    ) -> None:
        self._clock = clock or SystemClock()
        self._consumer = consumer
        self._db = db
        self._dead_letters = SqliteDeadLetterStore(db)
        self._ingest = local_ingest(
            db, alarm_profile or default_profile(), channels or {"log": Severity.INFO}, profile
        )
        self._options = options or WorkerOptions()
        self.counts: Counter[str] = Counter()

    def run(self, stop: threading.Event) -> None:
        """Process until ``stop`` is set, then drain what was received and return."""
        last_stats = last_sweep = time.monotonic()
        while not stop.is_set():
            batch = self._consumer.take(self._options.batch_size, self._options.linger_s)
            if batch:
                self._commit_and_ack(batch, stop)
            if time.monotonic() - last_sweep >= self._options.sweep_every_s:
                self._sweep()
                last_sweep = time.monotonic()
            if time.monotonic() - last_stats >= self._options.stats_every_s:
                self._log_stats()
                last_stats = time.monotonic()
        # Drain: what was received, and what is still arriving (the broker forwards the last
        # readings of a fleet that has just stopped), is committed and acknowledged until the
        # stream has been quiet for ``drain_quiet_s``, for at most ``drain_max_s``.
        self._db.ensure_present()
        deadline = time.monotonic() + self._options.drain_max_s
        while batch := self._consumer.take(self._options.batch_size, self._options.drain_quiet_s):
            self._commit_and_ack(batch, None)
            if time.monotonic() >= deadline:
                break
        self._log_stats()

    def _commit_and_ack(self, batch: Sequence[Delivery], stop: threading.Event | None) -> None:
        delay = 0.1
        while True:
            try:
                results = self._process(batch)
                break
            except StoreLostError as exc:
                # Never acknowledge into a file nobody will read: the broker keeps the batch
                # for our session and redelivers it to the restarted worker.
                log.error("%s; holding %d messages unacknowledged", exc, len(batch))
                raise
            except StorageError as exc:
                log.error("store unavailable, holding %d messages: %s", len(batch), exc)
                if stop is not None and stop.wait(delay):
                    # Asked to stop while the store is down: leave the batch unacknowledged;
                    # the broker keeps it for our session.
                    raise
                if stop is None:
                    time.sleep(delay)
                delay = min(delay * 2, self._options.retry_max_s)
        self._consumer.ack(batch)
        self.counts.update(result.outcome.value for result in results)

    def _sweep(self) -> None:
        """Silence and reminders; a store outage only delays them to the next sweep."""
        try:
            with self._db.transaction():
                now = self._clock.now()
                swept = self._ingest.sweep(now)
                self.counts["dead_letters_expired"] += self._dead_letters.expire(now)
        except StoreLostError:
            raise
        except StorageError as exc:
            log.error("alarm sweep skipped: %s", exc)
            return
        self.counts.update(f"alarms_{note.kind.value}" for note in swept.notifications)
        self.counts["silent_devices"] = swept.silent_devices

    def _process_and_evaluate(self, messages: Sequence[Message]) -> list[Result]:
        """The ingest step, in the caller's transaction (the unit of work)."""
        done = self._ingest.run(messages, self._clock.now())
        self.counts.update(f"alarms_{note.kind.value}" for note in done.notifications)
        self.counts["repairs"] += done.repairs
        self.counts["events"] += len(done.events)
        for event in done.events:
            log.warning(
                "%s device=%s value=%s at=%s",
                event.kind,
                event.device_id,
                event.value,
                event.timestamp,
            )
        return done.results

    def _process(self, batch: Sequence[Delivery]) -> list[Result]:
        messages = [delivery.message for delivery in batch]
        try:
            with self._db.transaction():
                return self._process_and_evaluate(messages)
        except StorageError:
            raise
        except Exception:
            # A bug, not bad input (bad input is a rejection). Find the message that trips
            # it and dead-letter that one, so that one poison message cannot stall the stream.
            log.exception("processing failed; retrying the batch one message at a time")
        results: list[Result] = []
        for message in messages:
            try:
                with self._db.transaction():
                    results.extend(self._process_and_evaluate([message]))
            except StorageError:
                raise
            except Exception as exc:  # recorded with its reason, never dropped
                reason = f"internal error: {type(exc).__name__}: {exc}"
                with self._db.transaction():
                    self._dead_letters.put_many(
                        [
                            DeadLetter(
                                DeadLetterKind.REJECTED,
                                message.topic,
                                message.payload,
                                message.received_at,
                                reason,
                            )
                        ]
                    )
        return results

    def _log_stats(self) -> None:
        if self.counts:
            log.info(
                "totals: %s (pending %d)",
                " ".join(f"{k}={v}" for k, v in sorted(self.counts.items())),
                self._consumer.pending(),
            )
