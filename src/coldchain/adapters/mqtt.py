"""MQTT adapters on paho-mqtt 2.x: the processor's consumer and a device publisher.

The consumer uses MQTT v5 with a persistent session (clean start off, a session expiry) and
a shared subscription, and acknowledges by hand: a message is acknowledged only after the
caller says its outcome is committed. paho's network thread receives; the caller's thread
processes and acknowledges.
"""

from __future__ import annotations

import logging
import queue
import ssl
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from coldchain.adapters.clock import SystemClock
from coldchain.core.errors import ConnectError
from coldchain.core.messages import Message
from coldchain.core.ports import Clock

log = logging.getLogger(__name__)

SESSION_EXPIRY_S: Final = 7 * 24 * 3600
RECEIVE_MAXIMUM: Final = 1000


@dataclass(frozen=True, slots=True)
class Delivery:
    """A received message and what is needed to acknowledge it on the connection it came on."""

    message: Message
    mid: int
    qos: int
    connection: int


class MqttConsumer:
    """Receives QoS 1 messages on a shared subscription; acknowledges after commit."""

    def __init__(
        self,
        host: str,
        port: int,
        client_id: str,
        tls: ssl.SSLContext,
        subscription: str | Sequence[str],
        *,
        keepalive_s: int = 30,
        session_expiry_s: int = SESSION_EXPIRY_S,
        clock: Clock | None = None,
    ) -> None:
        self._clock = clock or SystemClock()
        self._host, self._port = host, port
        self._subscriptions = (
            [subscription] if isinstance(subscription, str) else list(subscription)
        )
        self._session_expiry_s = session_expiry_s
        self._keepalive_s = keepalive_s
        self._inbox: queue.Queue[Delivery] = queue.Queue()
        self._lock = threading.Lock()
        self._connection = 0
        self._connected = threading.Event()
        self._subscribed = threading.Event()
        self._refused: str | None = None
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=mqtt.MQTTv5,
            manual_ack=True,
        )
        client.tls_set_context(tls)
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        self._client = client

    # paho's thread -----------------------------------------------------------------------
    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.ConnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason.is_failure:
            self._refused = str(reason)
            log.error("broker refused the connection: %s", reason)
            return
        with self._lock:
            self._connection += 1
        self._refused = None
        self._connected.set()
        log.info("connected (session present: %s)", flags.session_present)
        client.subscribe([(topic, SubscribeOptions(qos=1)) for topic in self._subscriptions])

    def _on_disconnect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.DisconnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        with self._lock:
            self._connection += 1  # acknowledgements of earlier deliveries are void now
        self._connected.clear()
        self._subscribed.clear()
        log.warning("disconnected: %s", reason)

    def _on_subscribe(
        self,
        client: mqtt.Client,
        userdata: Any,
        mid: int,
        reasons: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        if any(code.is_failure for code in reasons):
            self._refused = f"subscription refused: {', '.join(map(str, reasons))}"
            log.error(self._refused)
            return
        self._subscribed.set()

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        received = self._clock.now()
        with self._lock:
            connection = self._connection
        self._inbox.put(
            Delivery(Message(msg.topic, bytes(msg.payload), received), msg.mid, msg.qos, connection)
        )

    # the caller's thread -------------------------------------------------------------------
    def start(self, timeout_s: float = 10.0) -> None:
        """Connect, subscribe and start the network thread.

        Raises:
            ConnectError: the broker cannot be reached, or refuses us within ``timeout_s``.
        """
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        properties.SessionExpiryInterval = self._session_expiry_s
        properties.ReceiveMaximum = RECEIVE_MAXIMUM
        try:
            self._client.connect(
                self._host,
                self._port,
                keepalive=self._keepalive_s,
                clean_start=False,
                properties=properties,
            )
        except (OSError, ssl.SSLError) as exc:
            raise ConnectError(f"cannot connect to {self._host}:{self._port}: {exc}") from None
        self._client.loop_start()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._refused:
                self.stop()
                raise ConnectError(f"{self._host}:{self._port}: {self._refused}")
            if self._subscribed.wait(0.05):
                return
        self.stop()
        raise ConnectError(f"no subscription on {self._host}:{self._port} within {timeout_s} s")

    def take(self, max_items: int, linger_s: float) -> list[Delivery]:
        """Up to ``max_items`` deliveries: waits ``linger_s`` for the first, then takes
        whatever else has arrived without waiting again.
        """
        try:
            first = self._inbox.get(timeout=linger_s)
        except queue.Empty:
            return []
        batch = [first]
        while len(batch) < max_items:
            try:
                batch.append(self._inbox.get_nowait())
            except queue.Empty:
                break
        return batch

    def pending(self) -> int:
        """Deliveries received but not yet taken."""
        return self._inbox.qsize()

    def ack(self, deliveries: Sequence[Delivery]) -> int:
        """Acknowledge deliveries whose connection is still the current one.

        A delivery from an earlier connection is not acknowledged: its packet id means
        nothing on the new connection, and the broker redelivers it (a duplicate, stored once).

        Returns:
            How many were acknowledged.
        """
        done = 0
        with self._lock:
            for delivery in deliveries:
                if delivery.connection != self._connection or delivery.qos == 0:
                    continue
                if self._client.ack(delivery.mid, delivery.qos) == MQTTErrorCode.MQTT_ERR_SUCCESS:
                    done += 1
        return done

    def publish(self, topic: str, payload: bytes, expiry_s: int, timeout_s: float = 5.0) -> bool:
        """Publish QoS 1 with an MQTT v5 message expiry (the broker drops it for an offline
        session once it is older); True when the broker acknowledged it within ``timeout_s``.
        """
        if not self.connected:
            return False
        properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        properties.MessageExpiryInterval = max(1, expiry_s)
        info = self._client.publish(topic, payload, qos=1, properties=properties)
        try:
            info.wait_for_publish(timeout_s)
        except (RuntimeError, ValueError):
            return False
        return info.is_published() and info.rc == MQTTErrorCode.MQTT_ERR_SUCCESS

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def stop(self) -> None:
        """Disconnect (the session stays on the broker) and stop the network thread."""
        self._client.disconnect()
        self._client.loop_stop()
