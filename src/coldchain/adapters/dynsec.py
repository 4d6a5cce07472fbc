"""Mosquitto's dynamic-security plugin: who may publish and subscribe to what.

Why the plugin and not an ``acl_file``: mosquitto 2.0's ACL file does not check SUBSCRIBE at
all (any client may subscribe to anything, ``$share/...`` included, and only deliveries are
filtered), so a device could join the processors' shared subscription and take its
round-robin turns, which the broker then refuses to deliver: those readings were lost. The
plugin refuses at SUBSCRIBE.

Mosquitto 2.0.11's plugin has no ``%u`` substitution in ACL topics (checked: a role allowing
``dt/coldchain/%u/telemetry`` denied the device's own topic), so each device gets a role of
its own naming its exact topics. Processors share one role. The plugin's configuration file
is written from the certificate index each time the broker starts; while it runs, identities
issued or revoked are applied over ``$CONTROL/dynamic-security/v1`` with the admin identity
(:class:`DynsecControl`), and a deleted client is disconnected at once.

Clients authenticate with their certificate (``use_identity_as_username``), so the plugin's
clients carry no password and the plugin never sees one.
"""

from __future__ import annotations

import glob
import json
import os
import signal
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Final

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from coldchain.adapters.pki import ADMIN_IDENTITY, LocalPki
from coldchain.core.errors import BrokerError, ConfigurationError
from coldchain.core.topics import (
    COMMAND_REQUESTS,
    COMMAND_RESPONSES,
    JOB_UPDATES,
    SHADOW_REQUESTS,
    SHARED_TELEMETRY_FILTER,
    TELEMETRY_FILTER,
    command_request_topic,
    command_response_topic,
    jobs_topic,
    shadow_topic,
    telemetry_topic,
)
from coldchain.tls import client_context

CONTROL_TOPIC: Final = "$CONTROL/dynamic-security/v1"
RESPONSE_TOPIC: Final = f"{CONTROL_TOPIC}/response"
PROCESSOR_ROLE: Final = "processor"
ADMIN_ROLE: Final = "admin"
CONTROL_ROLE: Final = "control"
# Processor identities that run the control service (`coldchain control --client-id`).
CONTROL_IDENTITIES: Final = frozenset({"control"})
_PLUGIN_PLACES: Final = (
    "/usr/lib/*/mosquitto_dynamic_security.so",
    "/usr/lib/mosquitto_dynamic_security.so",
    "/usr/local/lib/mosquitto_dynamic_security.so",
)


def plugin_path() -> str:
    """The plugin's shared object.

    Raises:
        ConfigurationError: the mosquitto package on this machine does not ship it.
    """
    for pattern in _PLUGIN_PLACES:
        found = sorted(glob.glob(pattern))  # noqa: PTH207 - the folder itself is a wildcard
        if found:
            return found[0]
    raise ConfigurationError(
        "mosquitto's dynamic-security plugin (mosquitto_dynamic_security.so) is not installed; "
        "it ships with mosquitto 2.0 (Debian package 'mosquitto')"
    )


def _acl(kind: str, topic: str) -> dict[str, Any]:
    return {"acltype": kind, "topic": topic, "priority": 0, "allow": True}


def device_role_name(device_id: str) -> str:
    return f"device:{device_id}"


def device_role(device_id: str) -> dict[str, Any]:
    """A device publishes its own telemetry and its own command responses, and receives its
    own command requests; nothing else.
    """
    requests = command_request_topic(device_id)
    return {
        "rolename": device_role_name(device_id),
        "acls": [
            _acl("publishClientSend", telemetry_topic(device_id)),
            _acl("publishClientSend", command_response_topic(device_id)),
            _acl("subscribeLiteral", requests),
            _acl("publishClientReceive", requests),
            _acl("publishClientSend", shadow_topic(device_id, "update")),
            _acl("publishClientSend", shadow_topic(device_id, "get")),
            _acl("subscribePattern", shadow_topic(device_id, "#")),
            _acl("publishClientReceive", shadow_topic(device_id, "#")),
            _acl("subscribeLiteral", jobs_topic(device_id, "notify-next")),
            _acl("publishClientReceive", jobs_topic(device_id, "notify-next")),
            _acl("publishClientSend", jobs_topic(device_id, "+/update")),
        ],
    }


def processor_role() -> dict[str, Any]:
    """Processors read all telemetry, on their own or through the shared subscription."""
    return {
        "rolename": PROCESSOR_ROLE,
        "acls": [
            _acl("subscribePattern", TELEMETRY_FILTER),
            _acl("subscribePattern", SHARED_TELEMETRY_FILTER),
            _acl("publishClientReceive", TELEMETRY_FILTER),
        ],
    }


def control_role() -> dict[str, Any]:
    """The control service alone (not every processor: a worker's key must not command the
    fleet): sends commands and hears answers, serves shadows, rolls out jobs.
    """
    return {
        "rolename": CONTROL_ROLE,
        "acls": [
            _acl("publishClientSend", COMMAND_REQUESTS),
            _acl("subscribePattern", COMMAND_RESPONSES),
            _acl("publishClientReceive", COMMAND_RESPONSES),
            *(_acl("subscribePattern", topic) for topic in SHADOW_REQUESTS),
            *(_acl("publishClientReceive", topic) for topic in SHADOW_REQUESTS),
            _acl("publishClientSend", shadow_topic("+", "+/+")),
            _acl("subscribePattern", JOB_UPDATES),
            _acl("publishClientReceive", JOB_UPDATES),
            _acl("publishClientSend", jobs_topic("+", "notify-next")),
        ],
    }


def _service_role(name: str) -> str:
    """The role of a processor identity: the control service's, or a worker's."""
    return CONTROL_ROLE if name in CONTROL_IDENTITIES else PROCESSOR_ROLE


def admin_role() -> dict[str, Any]:
    return {
        "rolename": ADMIN_ROLE,
        "acls": [
            _acl("publishClientSend", f"{CONTROL_TOPIC}/#"),
            _acl("publishClientSend", CONTROL_TOPIC),
            _acl("subscribePattern", RESPONSE_TOPIC),
            _acl("publishClientReceive", RESPONSE_TOPIC),
        ],
    }


def render(devices: Iterable[str], processors: Iterable[str]) -> dict[str, Any]:
    """The plugin's configuration: default deny, one role per device, one for processors."""
    device_ids = sorted(set(devices))
    clients = [
        {"username": ADMIN_IDENTITY, "roles": [{"rolename": ADMIN_ROLE}]},
        *(
            {"username": name, "roles": [{"rolename": _service_role(name)}]}
            for name in sorted(set(processors))
        ),
        *(
            {"username": device_id, "roles": [{"rolename": device_role_name(device_id)}]}
            for device_id in device_ids
        ),
    ]
    return {
        "defaultACLAccess": {
            "publishClientSend": False,
            "publishClientReceive": False,
            "subscribe": False,
            "unsubscribe": True,
        },
        "clients": clients,
        "groups": [],
        "roles": [
            admin_role(),
            processor_role(),
            control_role(),
            *(device_role(d) for d in device_ids),
        ],
    }


def write_config(path: Path, pki: LocalPki) -> Path:
    """Write the plugin's file from the certificate index (every identity not revoked)."""
    document = render(pki.names("device"), pki.names("processor"))
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(json.dumps(document, indent=1))
    temporary.chmod(0o600)
    temporary.replace(path)
    return path


def grant_commands(name: str, kind: str) -> list[dict[str, Any]]:
    """Control commands that let a newly issued identity in.

    Creating what exists answers with an error and changes nothing, so granting twice is
    harmless and never disconnects a client already connected.
    """
    if kind == "processor":
        service = _service_role(name)
        return [{"command": "createClient", "username": name, "roles": [{"rolename": service}]}]
    role = device_role(name)
    return [
        {"command": "createRole", **role},
        {"command": "createClient", "username": name, "roles": [{"rolename": role["rolename"]}]},
    ]


def revoke_commands(name: str, kind: str) -> list[dict[str, Any]]:
    """Control commands that shut an identity out; the broker disconnects it at once."""
    commands: list[dict[str, Any]] = [{"command": "deleteClient", "username": name}]
    if kind == "device":
        commands.append({"command": "deleteRole", "rolename": device_role_name(name)})
    return commands


def running_broker_file(pki: LocalPki) -> Path:
    """Where a running broker serving this CA's identities says where it listens."""
    return pki.directory / "broker.json"


def announce(pki: LocalPki, pid: int, host: str, port: int) -> None:
    """Record the running broker, so identity changes reach it without a restart."""
    path = running_broker_file(pki)
    path.write_text(json.dumps({"pid": pid, "host": host, "port": port}))


def withdraw(pki: LocalPki, pid: int) -> None:
    path = running_broker_file(pki)
    try:
        if json.loads(path.read_text()).get("pid") == pid:
            path.unlink()
    except (OSError, ValueError):
        return


def running_broker(pki: LocalPki) -> tuple[int, str, int] | None:
    """The pid, host and port of the broker announced for this CA, if it still runs."""
    try:
        document = json.loads(running_broker_file(pki).read_text())
        pid, host, port = int(document["pid"]), str(document["host"]), int(document["port"])
        os.kill(pid, 0)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return pid, host, port


def tell_running_broker(
    pki: LocalPki, commands: list[dict[str, Any]], *, reload_crl: bool = False
) -> bool:
    """Apply ``commands`` to the running broker (and have it reread the CRL); returns whether
    a broker was running. A stopped broker needs nothing: it reads the index when it starts.

    Raises:
        BrokerError: a broker is announced but does not take the commands.
    """
    running = running_broker(pki)
    if running is None:
        return False
    pid, host, port = running
    if commands:
        wildcard = host in ("0.0.0.0", "::", "")  # noqa: S104 - a bind address, read not bound
        DynsecControl("127.0.0.1" if wildcard else host, port, pki).send(commands)
    if reload_crl:
        os.kill(pid, signal.SIGHUP)
    return True


def admit(pki: LocalPki, names: Iterable[str], kind: str) -> bool:
    """Let newly issued identities into the running broker, if one runs."""
    return tell_running_broker(pki, [c for name in names for c in grant_commands(name, kind)])


def shut_out(pki: LocalPki, name: str, kind: str) -> bool:
    """Disconnect and refuse a revoked identity now, and have the broker reread the CRL."""
    return tell_running_broker(pki, revoke_commands(name, kind), reload_crl=True)


class DynsecControl:
    """Sends commands to a running broker's plugin as the admin identity."""

    def __init__(self, host: str, port: int, pki: LocalPki, timeout_s: float = 5.0) -> None:
        self._host, self._port, self._timeout_s = host, port, timeout_s
        credentials = pki.admin()
        self._tls = client_context(credentials.ca, credentials.cert, credentials.key)

    def send(self, commands: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Run ``commands``; returns the plugin's responses (each may carry an ``error``).

        Raises:
            BrokerError: the broker cannot be reached or does not answer in time.
        """
        ready = threading.Event()
        answered = threading.Event()
        responses: list[dict[str, Any]] = []
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=ADMIN_IDENTITY, protocol=mqtt.MQTTv5
        )
        client.tls_set_context(self._tls)

        def on_connect(
            client: mqtt.Client,
            userdata: Any,
            flags: mqtt.ConnectFlags,
            reason: ReasonCode,
            properties: Properties | None,
        ) -> None:
            if not reason.is_failure:
                client.subscribe(RESPONSE_TOPIC, qos=1)

        def on_subscribe(
            client: mqtt.Client,
            userdata: Any,
            mid: int,
            reasons: list[ReasonCode],
            properties: Properties | None,
        ) -> None:
            ready.set()

        def on_message(client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
            responses.extend(json.loads(message.payload).get("responses", []))
            answered.set()

        client.on_connect = on_connect
        client.on_subscribe = on_subscribe
        client.on_message = on_message
        try:
            client.connect(self._host, self._port, keepalive=30)
        except OSError as exc:
            raise BrokerError(f"broker {self._host}:{self._port} unreachable: {exc}") from exc
        client.loop_start()
        try:
            if not ready.wait(self._timeout_s):
                raise BrokerError("the broker did not accept the admin identity in time")
            client.publish(CONTROL_TOPIC, json.dumps({"commands": commands}), qos=1)
            if not answered.wait(self._timeout_s):
                raise BrokerError("the broker's dynamic-security plugin did not answer in time")
        finally:
            client.disconnect()
            client.loop_stop()
        return responses
