"""Wiring of ``coldchain simulate``: settings, certificates, models, output."""

from __future__ import annotations

import signal
import ssl
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import Final, TextIO

from coldchain.adapters import dynsec
from coldchain.adapters.pki import LocalPki
from coldchain.apps.simulator.fleet import Fleet, FleetOptions, FleetStats
from coldchain.config import simulator_environment
from coldchain.core.batches import MAX_READINGS
from coldchain.core.device_model import DeviceModel, Scenario, scenario_mix
from coldchain.core.errors import ConfigurationError
from coldchain.core.reading import Reading
from coldchain.core.topics import telemetry_topic
from coldchain.tls import client_context

# The original reference simulator's environment variables; flags override them.
DEFAULT_DEVICE_ID: Final = "cold-chain-sim-01"
MQTTS_PORT: Final = 8883


@dataclass(frozen=True, slots=True)
class SimulateRequest:
    """What the user asked for, flags already merged over the environment."""

    endpoint: str
    port: int
    interval_s: float
    devices: int | None
    device_id: str
    device_prefix: str
    fleet_id: str | None
    firmware_version: str
    cert: Path | None
    key: Path | None
    ca: Path | None
    pki_dir: Path
    scenario: str | None
    seed: int
    duration_s: float | None
    count: int | None
    buffer_size: int
    gps: bool
    protocol: str
    batch: int = 1  # readings per message; more than one: the batch format, see fleet.py
    firmware_failure_rate: float = 0.0  # share of devices whose firmware updates fail
    basic_ingest_rule: str | None = None  # AWS IoT Basic Ingest: no messaging charge


def env_defaults(environ: Mapping[str, str] | None = None) -> dict[str, str | None]:
    """The original simulator's variables, by our option names (read in config.py; an option
    on the command line wins over them).
    """
    return simulator_environment(environ)


def original_line(reading: Reading, when: datetime) -> str:
    """The original simulator's line for one publish."""
    return (
        f"[{when.strftime('%Y-%m-%d %H:%M:%S')}] Published -> {telemetry_topic(reading.device_id)}"
        f" | temp: {reading.temperature_c:.1f}°C, hum: {reading.humidity_pct:.0f}%,"
        f" shock: {reading.shock_g:.2f}g, bat: {reading.battery_pct:.0f}%"
    )


def build_models(request: SimulateRequest) -> list[DeviceModel]:
    """One model per device: the scenario mix for a fleet, the named scenario otherwise."""
    if request.devices is None:
        ids = [request.device_id]
    else:
        ids = [f"{request.device_prefix}-{n:04d}" for n in range(1, request.devices + 1)]
    if request.scenario in (None, "mix"):
        scenarios = scenario_mix(len(ids)) if request.devices is not None else [Scenario.HEALTHY]
    else:
        try:
            scenarios = [Scenario(request.scenario)] * len(ids)
        except ValueError:
            names = ", ".join(["mix", *(s.value for s in Scenario)])
            raise ConfigurationError(
                f"unknown scenario {request.scenario!r} (one of {names})"
            ) from None
    return [
        DeviceModel(
            device_id,
            scenario,
            seed=request.seed,
            fleet_id=request.fleet_id,
            firmware_version=request.firmware_version,
            gps=request.gps,
        )
        for device_id, scenario in zip(ids, scenarios, strict=True)
    ]


def tls_factory(request: SimulateRequest, device_ids: list[str]) -> Callable[[str], ssl.SSLContext]:
    """Where each device's certificate comes from.

    One device with ``--cert/--key/--ca`` (or CERT_PATH, KEY_PATH, CA_PATH) uses those files;
    otherwise certificates come from the local PKI: issued for every device before the first
    connection and admitted by a broker already running.
    """
    if request.cert is not None or request.key is not None:
        if request.cert is None or request.key is None or request.ca is None:
            raise ConfigurationError(
                "--cert, --key and --ca (CERT_PATH, KEY_PATH, CA_PATH) go together"
            )
        if request.devices is not None:
            raise ConfigurationError("--cert/--key name one device's files; a fleet uses --pki-dir")
        context = client_context(request.ca, request.cert, request.key)
        return lambda device_id: context
    pki = LocalPki(request.pki_dir)
    issued = {device_id: pki.issue_device(device_id) for device_id in device_ids}
    dynsec.admit(pki, device_ids, "device")

    def for_device(device_id: str) -> ssl.SSLContext:
        credentials = issued.get(device_id) or pki.issue_device(device_id)
        return client_context(request.ca or credentials.ca, credentials.cert, credentials.key)

    return for_device


def simulate(request: SimulateRequest, out: TextIO = sys.stdout) -> FleetStats:
    """Run the simulator until the duration or count is reached, or SIGINT/SIGTERM.

    Raises:
        ConfigurationError: unusable certificates, endpoint or authorisation (ConnectError),
            or a batch size outside 1 to MAX_READINGS.
    """
    if not 1 <= request.batch <= MAX_READINGS:
        raise ConfigurationError(f"a batch holds 1 to {MAX_READINGS} readings, not {request.batch}")
    models = build_models(request)
    tls_for = tls_factory(request, [model.device_id for model in models])
    single = request.devices is None

    def print_line(reading: Reading) -> None:
        print(original_line(reading, datetime.now().astimezone()), file=out, flush=True)

    def print_status(running: Fleet) -> None:
        stats = running.stats
        print(
            f"[{datetime.now().astimezone():%Y-%m-%d %H:%M:%S}] connected {running.connected}"
            f"/{len(models)} | sampled {stats.sampled} published {stats.published} acked "
            f"{stats.acked} buffered {running.buffered} dropped {stats.dropped} "
            f"reconnects {stats.reconnects}"
            + (f" messages {stats.messages}" if request.batch > 1 else ""),
            file=out,
            flush=True,
        )

    fleet = Fleet(
        models,
        tls_for,
        FleetOptions(
            host=request.endpoint,
            port=request.port,
            interval_s=request.interval_s,
            duration_s=request.duration_s,
            count=request.count,
            buffer_size=request.buffer_size,
            protocol=request.protocol,
            batch=request.batch,
            firmware_failure_rate=request.firmware_failure_rate,
            basic_ingest_rule=request.basic_ingest_rule,
        ),
        on_publish=print_line if single else None,
        seed=request.seed,
        on_status=None if single else print_status,
    )

    def stop(signum: int, frame: FrameType | None) -> None:
        fleet.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    fleet.check_first_connection()
    if not single:
        print(
            f"{len(models)} devices publishing to {request.endpoint}:{request.port} every "
            f"{request.interval_s:g} s"
            + (f", in batches of {request.batch}" if request.batch > 1 else "")
            + " (Ctrl-C to stop)",
            file=out,
            flush=True,
        )
    return fleet.run()
