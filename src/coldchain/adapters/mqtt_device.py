"""One device's MQTT connection (paho-mqtt 2.x), driven by the caller's event loop.

A fleet of a thousand devices runs in one thread: each :class:`DeviceLink` exposes its
socket, and the caller selects on all of them and calls :meth:`DeviceLink.on_readable` and
:meth:`DeviceLink.tick`. No paho thread, no socket pair: one file descriptor per device.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
from collections.abc import Callable
from enum import Enum
from typing import Any, Final

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from coldchain.core.errors import ConnectError

AckCallback = Callable[[int, int], None]
"""Called with (mid, reason code) when the broker acknowledges a publish."""
DropCallback = Callable[[str], None]
"""Called with a reason when the connection is lost or refused."""
MessageCallback = Callable[[str, bytes], None]
"""Called with (topic, payload) for a message on a subscribed topic."""
SESSION_EXPIRY_S: Final = 24 * 3600

PROTOCOLS = {"5": MQTTProtocolVersion.MQTTv5, "3.1.1": MQTTProtocolVersion.MQTTv311}


class LinkState(Enum):
    CONNECTING = "connecting"
    CONNECTED = "connected"
    CLOSED = "closed"


class DeviceLink:
    """A device's MQTT connection: connect, publish QoS 1, report acknowledgements."""

    def __init__(
        self,
        client_id: str,
        host: str,
        port: int,
        tls: ssl.SSLContext,
        on_ack: AckCallback,
        on_drop: DropCallback,
        *,
        protocol: str = "5",
        keepalive_s: int = 60,
        connect_timeout_s: float = 10.0,
        on_up: Callable[[], None] | None = None,
        subscriptions: tuple[str, ...] = (),
        on_message: MessageCallback | None = None,
    ) -> None:
        """With ``subscriptions`` the device keeps a persistent session (MQTT v5 clean start
        off and a session expiry; 3.1.1 clean session off), so QoS 1 messages sent while it
        is offline reach it when it reconnects; it subscribes (QoS 1) on every connect.
        """
        self.client_id = client_id
        self._host, self._port, self._keepalive_s = host, port, keepalive_s
        self._on_ack, self._on_drop, self._on_up = on_ack, on_drop, on_up
        self.state = LinkState.CLOSED
        self.refusal: str | None = None
        self.was_connected = False
        self._subscriptions, self._on_message = subscriptions, on_message
        self._v5 = protocol == "5"
        persistent = bool(subscriptions) and not self._v5
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=PROTOCOLS[protocol],
            clean_session=False if persistent else None,
        )
        client.tls_set_context(tls)
        client.connect_timeout = connect_timeout_s
        client.max_inflight_messages_set(0)  # the caller keeps its own window
        client.max_queued_messages_set(0)
        client.on_connect = self._connected
        client.on_disconnect = self._disconnected
        client.on_publish = self._published
        client.on_message = self._received
        self._client = client

    def _connected(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: Any,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason.is_failure:
            self.refusal = f"the broker refused the connection: {reason}"
            self._close(self.refusal)
            return
        self.state = LinkState.CONNECTED
        self.was_connected = True
        for topic in self._subscriptions:
            client.subscribe(topic, options=SubscribeOptions(qos=1))
        if self._on_up is not None:
            self._on_up()

    def _disconnected(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: Any,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if self.state is LinkState.CONNECTING and self.refusal is None:
            self.refusal = (
                "the broker closed the connection before accepting it "
                "(certificate not trusted, revoked, or not authorised)"
            )
        self._close(str(reason))

    def _published(
        self,
        client: mqtt.Client,
        userdata: Any,
        mid: int,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        self._on_ack(mid, int(reason.value))

    def _received(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        if self._on_message is not None:
            self._on_message(message.topic, bytes(message.payload))

    def connect(self) -> None:
        """Open TCP and TLS (blocking, bounded by the connect timeout) and send CONNECT.

        Raises:
            ConnectError: the endpoint cannot be resolved or reached, or TLS fails.
        """
        self.refusal = None
        target = f"{self._host}:{self._port}"
        try:
            if self._subscriptions and self._v5:
                properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
                properties.SessionExpiryInterval = SESSION_EXPIRY_S
                self._client.connect(
                    self._host,
                    self._port,
                    keepalive=self._keepalive_s,
                    clean_start=False,
                    properties=properties,
                )
            else:
                self._client.connect(self._host, self._port, keepalive=self._keepalive_s)
        except socket.gaierror:
            raise ConnectError(f"cannot resolve the endpoint {self._host!r}") from None
        except ConnectionRefusedError:
            raise ConnectError(f"connection refused by {target} (is the broker running?)") from None
        except ssl.SSLCertVerificationError as exc:
            raise ConnectError(
                f"TLS with {target} failed: the server certificate is not trusted by the CA "
                f"file ({exc.verify_message})"
            ) from None
        except ssl.SSLError as exc:
            raise ConnectError(f"TLS with {target} failed: {exc.reason or exc}") from None
        except (TimeoutError, OSError) as exc:
            raise ConnectError(f"cannot connect to {target}: {exc.strerror or exc}") from None
        if self._client.socket() is None:  # TLS went through, then the broker hung up
            raise ConnectError(
                f"{target}: the broker closed the connection before accepting it "
                "(certificate not trusted, revoked, or not authorised)"
            )
        self.state = LinkState.CONNECTING

    def fileno(self) -> int:
        sock = self._client.socket()
        return -1 if sock is None else sock.fileno()

    def publish(self, topic: str, payload: bytes) -> int | None:
        """Queue a QoS 1 publish; the packet id, or None when the link is not up."""
        if self.state is not LinkState.CONNECTED:
            return None
        info = self._client.publish(topic, payload, qos=1)
        if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            return None
        return info.mid

    def on_readable(self) -> None:
        """Read what the socket (and TLS's own buffer) holds."""
        while self.state is not LinkState.CLOSED:
            if self._client.loop_read() != MQTTErrorCode.MQTT_ERR_SUCCESS:
                self._close("connection lost")
                return
            sock = self._client.socket()
            if not isinstance(sock, ssl.SSLSocket) or not sock.pending():
                return

    def tick_write(self) -> None:
        """Flush what a partial write left queued."""
        if (
            self._client.want_write()
            and self._client.loop_write() != MQTTErrorCode.MQTT_ERR_SUCCESS
        ):
            self._close("connection lost")

    def tick(self) -> None:
        """Flush pending writes and keep the connection alive (pings, timeouts)."""
        if self.state is LinkState.CLOSED:
            return
        if (
            self._client.want_write()
            and self._client.loop_write() != MQTTErrorCode.MQTT_ERR_SUCCESS
        ):
            self._close("connection lost")
            return
        if self._client.loop_misc() != MQTTErrorCode.MQTT_ERR_SUCCESS:
            self._close("keepalive timed out")

    def cut(self) -> None:
        """Drop the connection without a DISCONNECT, as a lost link would."""
        sock = self._client.socket()
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.close()
        self._close("link cut")

    def disconnect(self) -> None:
        """Close politely (DISCONNECT sent)."""
        if self.state is LinkState.CONNECTED:
            self._client.disconnect()
            self._client.loop_write()
        self._close("disconnected")

    def _close(self, reason: str) -> None:
        if self.state is LinkState.CLOSED:
            return
        self.state = LinkState.CLOSED
        # paho has no public close for an external loop; its own loop calls this.
        with contextlib.suppress(OSError):
            self._client._sock_close()
        self._on_drop(reason)
