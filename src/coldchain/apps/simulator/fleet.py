"""Run simulated devices against a broker: steady sampling, store-and-forward, reconnects.

Each device samples on its own schedule (the fleet is spread evenly over the interval, so
a thousand devices at 10 s publish 100 readings a second, not a thousand every 10 s),
appends the reading to a bounded buffer, and publishes from the buffer's head while its
link is up, with at most ``window`` unacknowledged. A reading leaves the buffer only when
the broker acknowledges it; when the link drops, the unacknowledged ones go back to the
head in order and are replayed after a reconnect with jittered exponential backoff. When
the buffer is full the oldest reading is dropped and counted.

With ``batch`` N > 1 a message is a batch (:mod:`coldchain.core.batches`) of up to N
readings from the buffer's head, within the format's reading and byte limits. A batch is
sent when N readings are buffered, or when the oldest buffered reading has waited
``batch_wait_s`` (N intervals by default: a steady device fills its batch first, so this
only bounds the wait of a device whose sampling stalls or that comes back from an outage
with a short backlog; checked at each sample and acknowledgement and once a second), or
when the device has stopped sampling (count reached, stop, duration). A backlog after an
outage is therefore replayed in full batches, oldest first. The whole batch is one
publish: it leaves the buffer on its PUBACK, or goes back to the head in order when the
link drops first. With N = 1 every message is one reading, as the original simulator sends.
"""

from __future__ import annotations

import functools
import heapq
import json
import logging
import random
import selectors
import ssl
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from coldchain.adapters.clock import SystemClock
from coldchain.adapters.mqtt_device import DeviceLink, LinkState
from coldchain.apps.simulator.batching import encode_batch, encode_reading
from coldchain.apps.simulator.device_commands import DeviceCommands
from coldchain.apps.simulator.device_config import DeviceConfig
from coldchain.apps.simulator.device_firmware import run_job
from coldchain.core.device_model import DeviceModel
from coldchain.core.errors import ConnectError
from coldchain.core.ports import Clock
from coldchain.core.reading import Reading
from coldchain.core.topics import (
    command_request_topic,
    command_response_topic,
    jobs_topic,
    shadow_topic,
    telemetry_topic,
)

log = logging.getLogger("coldchain.simulator")

NOT_AUTHORIZED: Final = 135
TICK_S: Final = 1.0


@dataclass(frozen=True, slots=True)
class FleetOptions:
    """How the fleet runs.

    ``window`` counts unacknowledged messages (of up to ``batch`` readings each);
    ``buffer_size`` counts readings; ``batch_wait_s`` None means ``batch * interval_s``.
    """

    host: str
    port: int
    interval_s: float = 10.0
    duration_s: float | None = None
    count: int | None = None
    window: int = 20
    buffer_size: int = 10_000
    protocol: str = "5"
    drain_s: float = 30.0
    backoff_min_s: float = 0.5
    backoff_max_s: float = 30.0
    batch: int = 1
    batch_wait_s: float | None = None
    commands: bool = True  # answer cmd/{device}/request (a persistent session per device)
    firmware_failure_rate: float = 0.0  # this share of the fleet fails its firmware updates
    basic_ingest_rule: str | None = None  # AWS IoT: publish to $aws/rules/<rule>/<topic>

    @property
    def hold_s(self) -> float:
        """How long the oldest buffered reading may wait for its batch to fill."""
        if self.batch_wait_s is not None:
            return self.batch_wait_s
        return self.batch * self.interval_s


@dataclass
class FleetStats:
    """Counters across the fleet.

    ``sampled``, ``published``, ``acked``, ``refused`` and ``dropped`` count readings (a
    batch of ten acknowledged is ten ``acked``; a reading published again after a link drop
    counts again in ``published``); ``messages`` counts MQTT publishes.
    """

    sampled: int = 0
    messages: int = 0
    published: int = 0
    acked: int = 0
    refused: int = 0
    dropped: int = 0
    reconnects: int = 0
    connect_failures: int = 0
    connects: int = 0
    connect_seconds: float = 0.0
    all_connected_after_s: float | None = None

    @property
    def lost(self) -> int:
        return self.dropped + self.refused


_Buffered = tuple[float, Reading]
"""A buffered reading and when it was sampled (monotonic seconds)."""


@dataclass
class _Device:
    index: int
    model: DeviceModel
    tls: ssl.SSLContext
    topic: str
    buffer: deque[_Buffered] = field(default_factory=deque)
    inflight: dict[int, list[_Buffered]] = field(default_factory=dict)  # by packet id
    link: DeviceLink | None = None
    backoff_s: float = 0.0
    connected_once: bool = False
    counted_up: bool = False
    done_sampling: bool = False
    reconnect_queued: bool = False
    commands: DeviceCommands | None = None
    config: DeviceConfig = field(default_factory=DeviceConfig)
    interval_s: float | None = None  # set by a set-interval command or the shadow
    reboot_due: bool = False
    fails_updates: bool = False


def _subscriptions(device_id: str) -> tuple[str, ...]:
    """Commands, and the shadow's answers and deltas."""
    shadow = (shadow_topic(device_id, suffix) for suffix in ("get/accepted", "update/delta"))
    return (command_request_topic(device_id), *shadow, jobs_topic(device_id, "notify-next"))


def _sensors(device: _Device) -> Callable[[], dict[str, Any]]:
    """What a self-test reports: each sensor's status and the battery."""

    def report() -> dict[str, Any]:
        return {
            "temperature": "ok",
            "humidity": "ok",
            "accelerometer": "ok",
            "gps": "ok" if device.model.gps else "absent",
            "battery_pct": device.model.battery_pct,
            "firmware_version": device.model.firmware_version,
        }

    return report


PublishHook = Callable[[Reading], None]
StatusHook = Callable[["Fleet"], None]
STATUS_EVERY_S: Final = 10.0
CONNECTS_PER_TURN: Final = 25


class Fleet:
    """Simulated devices sharing one selector loop.

    The loop does work only for devices that need it: those that sampled, were acknowledged,
    or are due to reconnect (a "dirty" set and two heaps), plus a keepalive tick per device
    each second, so its cost grows with the message rate rather than with the fleet size.
    """

    def __init__(
        self,
        models: Sequence[DeviceModel],
        tls_for: Callable[[str], ssl.SSLContext],
        options: FleetOptions,
        on_publish: PublishHook | None = None,
        seed: int = 0,
        on_status: StatusHook | None = None,
        clock: Clock | None = None,
    ) -> None:
        self._clock = clock or SystemClock()
        self.options = options
        self.stats = FleetStats()
        self._on_publish = on_publish
        self._on_status = on_status
        self._rng = random.Random(seed)
        prefix = f"$aws/rules/{options.basic_ingest_rule}/" if options.basic_ingest_rule else ""
        self._devices = [
            _Device(
                index, model, tls_for(model.device_id), prefix + telemetry_topic(model.device_id)
            )
            for index, model in enumerate(models)
        ]
        if options.commands:
            for device in self._devices:
                device.commands = DeviceCommands(device.model.device_id, _sensors(device))
        failing = round(options.firmware_failure_rate * len(self._devices))
        for index in self._rng.sample(range(len(self._devices)), failing):
            self._devices[index].fails_updates = True
        self._selector = selectors.DefaultSelector()
        self._stopping = False
        self._up = 0
        self._connected = 0
        self._started = time.monotonic()
        self._dirty: set[int] = set()
        self._connects: list[tuple[float, int]] = []  # (when, index): due (re)connections
        self._next_tick = self._next_status = self._started

    @property
    def connected(self) -> int:
        """Devices whose link is up now."""
        return self._connected

    @property
    def buffered(self) -> int:
        """Readings sampled but not yet acknowledged, refused or dropped."""
        stats = self.stats
        return stats.sampled - stats.acked - stats.refused - stats.dropped

    def stop(self) -> None:
        """Stop sampling; the run drains the buffers (bounded by ``drain_s``) and returns."""
        self._stopping = True

    def check_first_connection(self, timeout_s: float = 10.0) -> None:
        """Connect the first device and wait for its CONNACK, so that bad configuration
        (certificates, endpoint, authorisation) fails at once with a clear message.

        Raises:
            ConnectError: the first device cannot connect.
        """
        device = self._devices[0]
        self._connect(device, time.monotonic(), raise_errors=True)
        link = device.link
        assert link is not None
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if link.state is LinkState.CLOSED:
                raise ConnectError(
                    f"{self.options.host}:{self.options.port}: "
                    f"{link.refusal or 'the connection closed before the broker accepted it'}"
                )
            if link.state is LinkState.CONNECTED:
                return
            self._poll(0.05)
        raise ConnectError(
            f"{self.options.host}:{self.options.port}: no answer to CONNECT within {timeout_s} s"
        )

    def run(self) -> FleetStats:
        """Sample, publish and reconnect until the duration or count is reached (or
        :meth:`stop`), then drain the buffers. Returns the counters.
        """
        options = self.options
        start = self._started = time.monotonic()
        count = len(self._devices)
        # (when, index): the fleet spread evenly over one interval
        schedule = [(start + i * options.interval_s / count, i) for i in range(count)]
        heapq.heapify(schedule)
        for device in self._devices:
            if device.link is None:
                self._queue_connect(device, start)
        self._next_tick = start + TICK_S
        self._next_status = start + STATUS_EVERY_S
        drain_deadline: float | None = None
        while True:
            now = time.monotonic()
            if options.duration_s is not None and now - start >= options.duration_s:
                self._stopping = True
            if self._stopping and drain_deadline is None:
                drain_deadline = now + options.drain_s
                # Partial batches go at once: no reading will come to fill them.
                self._dirty.update(d.index for d in self._devices if d.buffer)
            if drain_deadline is not None and (self.buffered <= 0 or now >= drain_deadline):
                break
            if not self._stopping:
                self._sample_due(schedule, now)
            self._connect_due(now)
            dirty, self._dirty = self._dirty, set()
            for index in dirty:
                self._publish(self._devices[index], now)
            self._housekeeping(now)
            due = [self._next_tick]
            if schedule and not self._stopping:
                due.append(schedule[0][0])
            if self._connects:
                due.append(self._connects[0][0])
            self._poll(0.0 if self._dirty else max(0.0, min(0.05, min(due) - now)))
        for device in self._devices:
            if device.link is not None:
                device.link.disconnect()
        return self.stats

    def _housekeeping(self, now: float) -> None:
        """Keepalives and overdue partial batches once a second; the status line every
        STATUS_EVERY_S.
        """
        if now >= self._next_tick:
            batching, hold_s = self.options.batch > 1, self.options.hold_s
            for device in self._devices:
                if device.link is not None:
                    device.link.tick()
                    if batching and device.buffer and now - device.buffer[0][0] >= hold_s:
                        self._dirty.add(device.index)  # a partial batch waited long enough
            self._next_tick = now + TICK_S
        if self._on_status is not None and now >= self._next_status:
            self._on_status(self)
            self._next_status = now + STATUS_EVERY_S

    def _sample_due(self, schedule: list[tuple[float, int]], now: float) -> None:
        options = self.options
        while schedule and schedule[0][0] <= now:
            when, index = heapq.heappop(schedule)
            device = self._devices[index]
            if options.count is not None and device.model.seq >= options.count:
                device.done_sampling = True
                self._dirty.add(index)  # its partial batch, if any, goes now
                if all(d.done_sampling for d in self._devices):
                    self._stopping = True
                continue
            at = self._clock.now()
            reading = device.model.sample(at)
            self.stats.sampled += 1
            if len(device.buffer) >= options.buffer_size:
                device.buffer.popleft()
                self.stats.dropped += 1
            device.buffer.append((now, reading))
            link = device.link
            if not device.model.link_up(at):
                if link is not None and link.state is not LinkState.CLOSED:
                    link.cut()  # the outage scenario: the link is lost, sampling goes on
            elif link is None:
                self._queue_connect(device, now)
            self._dirty.add(index)
            interval = device.interval_s or options.interval_s
            nxt = when + interval
            heapq.heappush(schedule, (nxt if nxt > now - interval else now, index))

    def _queue_connect(self, device: _Device, when: float) -> None:
        if not device.reconnect_queued:
            device.reconnect_queued = True
            heapq.heappush(self._connects, (when, device.index))

    def _connect_due(self, now: float) -> None:
        # A bounded number per turn, so that sampling and reading go on while a fleet connects.
        for _ in range(CONNECTS_PER_TURN):
            if not self._connects or self._connects[0][0] > now:
                return
            _, index = heapq.heappop(self._connects)
            device = self._devices[index]
            device.reconnect_queued = False
            if device.link is not None or (self._stopping and not device.buffer):
                continue
            if not device.model.link_up(self._clock.now()):
                self._queue_connect(device, now + TICK_S)  # the outage scenario: try again
                continue
            self._connect(device, now)

    def _publish(self, device: _Device, now: float) -> None:
        """Publish from the head of the buffer while the window allows and a message is due."""
        link = device.link
        if link is None or link.state is not LinkState.CONNECTED:
            return
        if not device.counted_up:
            device.counted_up = True
            self._up += 1
            if self._up == len(self._devices):
                self.stats.all_connected_after_s = time.monotonic() - self._started
        while device.buffer and len(device.inflight) < self.options.window:
            if not self._due(device, now):
                break
            taken, payload = self._payload(device)
            mid = link.publish(device.topic, payload)
            if mid is None:
                return
            sent = [device.buffer.popleft() for _ in range(taken)]
            device.inflight[mid] = sent
            self.stats.messages += 1
            self.stats.published += taken
            if self._on_publish is not None:
                for _, reading in sent:
                    self._on_publish(reading)
        if not device.buffer or not self._due(device, now):
            device.backoff_s = 0.0  # caught up: the next drop backs off from the minimum

    def _due(self, device: _Device, now: float) -> bool:
        """Whether the buffer's head should go now (always, one reading per message)."""
        options = self.options
        if options.batch == 1 or len(device.buffer) >= options.batch:
            return True
        if device.done_sampling or self._stopping:
            return True
        return bool(device.buffer) and now - device.buffer[0][0] >= options.hold_s

    def _payload(self, device: _Device) -> tuple[int, bytes]:
        """How many readings from the buffer's head the next message carries, and its bytes."""
        if self.options.batch == 1:
            return 1, encode_reading(device.buffer[0][1])
        readings = (reading for _, reading in device.buffer)
        return encode_batch(device.model.device_id, readings, self.options.batch)

    def _connect(self, device: _Device, now: float, raise_errors: bool = False) -> None:
        def on_ack(mid: int, reason: int) -> None:
            self._dirty.add(device.index)
            sent = device.inflight.pop(mid, None)
            if sent is None:
                return
            if reason >= 0x80:
                self.stats.refused += len(sent)
                log.error(
                    "%s: publish refused by the broker (reason %d%s)",
                    device.model.device_id,
                    reason,
                    ", not authorised" if reason == NOT_AUTHORIZED else "",
                )
            else:
                self.stats.acked += len(sent)

        def on_drop(reason: str) -> None:
            dropped = device.link
            if dropped is not None and dropped.was_connected:
                self._connected -= 1
            self._forget(device)
            # Unacknowledged readings go back to the head of the buffer, oldest first.
            for sent in reversed(list(device.inflight.values())):
                device.buffer.extendleft(reversed(sent))
            device.inflight.clear()
            self._schedule_reconnect(device, time.monotonic())
            if dropped is not None and dropped.was_connected and not self._stopping:
                log.info("%s: link down (%s)", device.model.device_id, reason)

        def on_up() -> None:
            self._connected += 1
            self._dirty.add(device.index)
            if device.commands is not None and device.link is not None:  # what changed offline
                device.link.publish(shadow_topic(device.model.device_id, "get"), b"{}")

        link = DeviceLink(
            device.model.device_id,
            self.options.host,
            self.options.port,
            device.tls,
            on_ack,
            on_drop,
            protocol=self.options.protocol,
            on_up=on_up,
            subscriptions=_subscriptions(device.model.device_id)
            if device.commands is not None
            else (),
            on_message=functools.partial(self._message, device)
            if device.commands is not None
            else None,
        )
        began = time.perf_counter()
        try:
            link.connect()
        except ConnectError as exc:
            self.stats.connect_failures += 1
            if raise_errors:
                raise
            log.info("%s: %s", device.model.device_id, exc)
            self._schedule_reconnect(device, now)
            return
        self.stats.connects += 1
        self.stats.connect_seconds += time.perf_counter() - began
        if device.connected_once:
            self.stats.reconnects += 1
        device.connected_once = True
        device.link = link
        self._selector.register(link.fileno(), selectors.EVENT_READ, device)

    def _message(self, device: _Device, topic: str, payload: bytes) -> None:
        """A command, or the shadow's answer or delta, for ``device``."""
        device_id = device.model.device_id
        link = device.link
        shadow_base = shadow_topic(device_id, "")
        if topic == jobs_topic(device_id, "notify-next"):
            self._firmware(device, payload)
            return
        if topic.startswith(shadow_base):
            update = device.config.on_message(topic.removeprefix(shadow_base), payload)
            if update is not None and link is not None:
                device.interval_s = device.config.interval_s or device.interval_s
                link.publish(shadow_topic(device_id, "update"), update)
                log.info("%s: configuration %s", device_id, device.config.applied[-1])
            return
        assert device.commands is not None
        response, action = device.commands.handle(payload, self._clock.now())
        if response is not None and link is not None:
            link.publish(command_response_topic(device_id), response)
        if action.interval_s is not None:
            device.interval_s = action.interval_s
            log.info("%s: interval now %g s", device_id, action.interval_s)
        device.reboot_due = device.reboot_due or action.reboot

    def _firmware(self, device: _Device, payload: bytes) -> None:
        model = device.model
        outcome = run_job(payload, model.firmware_version, device.fails_updates)
        if outcome is None or device.link is None:
            return
        model.firmware_version = outcome.firmware_version
        for report in outcome.reports:
            topic = jobs_topic(model.device_id, f"{outcome.job_id}/update")
            device.link.publish(topic, json.dumps(report).encode())
        log.info("%s: job %s %s", model.device_id, outcome.job_id, outcome.reports[-1]["status"])

    def _schedule_reconnect(self, device: _Device, now: float) -> None:
        options = self.options
        device.backoff_s = min(
            options.backoff_max_s, max(options.backoff_min_s, device.backoff_s * 2)
        )
        # Full jitter: a fleet that lost the broker together does not come back together.
        self._queue_connect(device, now + self._rng.uniform(0, device.backoff_s))

    def _forget(self, device: _Device) -> None:
        link = device.link
        if link is None:
            return
        fileno = link.fileno()
        key = self._selector.get_map().get(fileno) if fileno >= 0 else None
        if key is not None and key.data is device:
            self._selector.unregister(fileno)
        else:  # the socket is already closed: find the registration by device
            for stale in list(self._selector.get_map().values()):
                if stale.data is device:
                    self._selector.unregister(stale.fileobj)
        device.link = None

    def _poll(self, timeout: float) -> None:
        if not self._selector.get_map():
            time.sleep(timeout)
            return
        for key, _ in self._selector.select(timeout):
            device = key.data
            assert isinstance(device, _Device)
            if device.link is not None:
                device.link.on_readable()
                if device.link is not None:
                    device.link.tick_write()
                if device.reboot_due and device.link is not None:
                    device.reboot_due = False  # answered first, then down and back up
                    log.info("%s: rebooting", device.model.device_id)
                    device.link.disconnect()
