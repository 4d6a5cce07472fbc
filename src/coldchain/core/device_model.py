"""A simulated refrigerated-cargo sensor: pure and deterministic for a given seed.

The model is fed the wall-clock time of each sample (readings always carry real time; the
pipeline rejects readings from the future) and evolves with the time elapsed between
samples, so the same seed and the same sample times give the same readings.

Temperature is mean-reverting (an Ornstein-Uhlenbeck process) towards a target that the
scenario moves: a door opening pulls it up for a minute or two, a compressor failure pulls
it past 8 °C until repaired, a freezing fault pulls it below 2 °C. Every fault starts
within the first minute so a short demo shows every alarm.
"""

from __future__ import annotations

import itertools
import math
import random
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Final

from coldchain.core.reading import Reading
from coldchain.core.timestamps import to_canonical


class Scenario(StrEnum):
    """What happens to a device during a run."""

    HEALTHY = "healthy"
    DOOR_OPEN = "door-open"
    COMPRESSOR_FAILURE = "compressor-failure"
    FREEZING = "freezing"
    ROUGH_ROAD = "rough-road"
    LOW_BATTERY = "low-battery"
    OUTAGE = "outage"


FAULTS: Final = (
    Scenario.COMPRESSOR_FAILURE,
    Scenario.LOW_BATTERY,
    Scenario.ROUGH_ROAD,
    Scenario.FREEZING,
    Scenario.DOOR_OPEN,
    Scenario.OUTAGE,
)

# A route through Europe for devices with GPS: (latitude, longitude) waypoints.
ROUTE: Final = ((53.5511, 9.9937), (52.5200, 13.4050), (50.0755, 14.4378), (48.2082, 16.3738))
_KM_PER_DEGREE: Final = 111.0


def scenario_mix(count: int) -> list[Scenario]:
    """Scenarios for a fleet: about 30 % of devices faulty, each fault present once the
    fleet has at least as many devices as there are faults, the faulty ones spread out.
    """
    if count <= 0:
        return []
    faulty = max(min(count, len(FAULTS)), round(count * 0.3))
    mix = [Scenario.HEALTHY] * count
    for k in range(faulty):
        mix[(k * count) // faulty] = FAULTS[k % len(FAULTS)]
    return mix


@dataclass(frozen=True, slots=True)
class ModelSettings:
    """Physical constants of the model (defaults give a plausible reefer)."""

    set_point_c: float = 4.0
    time_constant_s: float = 120.0
    fault_time_constant_s: float = 30.0
    noise_c_per_sqrt_s: float = 0.03
    fault_start_window_s: tuple[float, float] = (5.0, 20.0)
    repair_after_s: float = 600.0
    outage_s: float = 30.0
    speed_kmh: float = 80.0


class DeviceModel:
    """One device's sensors. Call :meth:`sample` with increasing times."""

    def __init__(
        self,
        device_id: str,
        scenario: Scenario = Scenario.HEALTHY,
        *,
        seed: int = 0,
        fleet_id: str | None = None,
        firmware_version: str = "2.1.4",
        gps: bool = False,
        settings: ModelSettings | None = None,
    ) -> None:
        self.device_id = device_id
        self.scenario = scenario
        self.fleet_id = fleet_id
        self.firmware_version = firmware_version
        self.gps = gps
        self.settings = settings or ModelSettings()
        self._rng = random.Random(f"{seed}:{device_id}")
        low, high = self.settings.fault_start_window_s
        self.fault_start_s = self._rng.uniform(low, high)
        self._start: datetime | None = None
        self._last: datetime | None = None
        self._seq = 0
        self._temperature = self.settings.set_point_c + self._rng.gauss(0, 0.3)
        self._humidity = self._rng.uniform(55, 65)
        if scenario is Scenario.LOW_BATTERY:
            self._battery = 15.0 + self._rng.uniform(0.5, 1.0)
        else:
            self._battery = self._rng.uniform(70, 100)
        self._door_until_s = -1.0
        self._route_offset_km = self._rng.uniform(0, 200)
        self._shocked = False

    @property
    def seq(self) -> int:
        """How many readings the model has produced."""
        return self._seq

    def elapsed_s(self, at: datetime) -> float:
        """Seconds since the first sample (0 before it)."""
        return 0.0 if self._start is None else (at - self._start).total_seconds()

    def in_fault(self, at: datetime) -> bool:
        """Whether the scenario's fault is active at ``at``."""
        if self.scenario is Scenario.HEALTHY:
            return False
        elapsed = self.elapsed_s(at)
        if self.scenario is Scenario.OUTAGE:
            return self.fault_start_s <= elapsed < self.fault_start_s + self.settings.outage_s
        return self.fault_start_s <= elapsed < self.fault_start_s + self.settings.repair_after_s

    def link_up(self, at: datetime) -> bool:
        """False while an outage scenario holds the device's link down."""
        return not (self.scenario is Scenario.OUTAGE and self.in_fault(at))

    @property
    def battery_pct(self) -> float:
        return round(self._battery, 1)

    def sample(self, at: datetime) -> Reading:
        """The reading the sensors give at ``at`` (a wall-clock, zone-aware time)."""
        if self._start is None:
            self._start = self._last = at
        assert self._last is not None
        dt = max(0.0, (at - self._last).total_seconds())
        self._last = at
        elapsed = self.elapsed_s(at)
        fault = self.in_fault(at)
        door = self._door_open(elapsed, dt)
        self._step_temperature(dt, self._target(fault, door), fault)
        self._step_humidity(dt, door)
        self._step_battery(dt, fault)
        latitude, longitude = self._position(elapsed) if self.gps else (None, None)
        reading = Reading(
            device_id=self.device_id,
            timestamp=to_canonical(at),
            temperature_c=round(self._temperature, 2),
            humidity_pct=round(min(100.0, max(0.0, self._humidity)), 1),
            shock_g=round(self._shock(fault), 2),
            battery_pct=round(self._battery, 1),
            latitude=latitude,
            longitude=longitude,
            fleet_id=self.fleet_id,
            firmware_version=self.firmware_version,
            seq=self._seq,
        )
        self._seq += 1
        return reading

    def _door_open(self, elapsed: float, dt: float) -> bool:
        if elapsed < self._door_until_s:
            return True
        # Healthy reefers open about once an hour; the door-open scenario every few minutes,
        # the first time at its fault start.
        if self.scenario is Scenario.DOOR_OPEN and self._door_until_s < 0:
            if elapsed >= self.fault_start_s:
                self._door_until_s = elapsed + self._rng.uniform(60, 120)
                return True
            return False
        rate_per_s = 1 / 240 if self.scenario is Scenario.DOOR_OPEN else 1 / 3600
        if self._rng.random() < 1 - math.exp(-rate_per_s * dt):
            self._door_until_s = elapsed + self._rng.uniform(30, 120)
            return True
        return False

    def _target(self, fault: bool, door: bool) -> float:
        target = self.settings.set_point_c
        if fault and self.scenario is Scenario.COMPRESSOR_FAILURE:
            target = 14.0
        elif fault and self.scenario is Scenario.FREEZING:
            target = -3.0
        if door:
            target += 7.0
        return target

    def _step_temperature(self, dt: float, target: float, fault: bool) -> None:
        heating_fault = fault and self.scenario in (Scenario.COMPRESSOR_FAILURE, Scenario.FREEZING)
        tau = (
            self.settings.fault_time_constant_s if heating_fault else self.settings.time_constant_s
        )
        pull = 1 - math.exp(-dt / tau)
        noise = self.settings.noise_c_per_sqrt_s * math.sqrt(dt) * self._rng.gauss(0, 1)
        self._temperature = min(
            85.0, max(-40.0, self._temperature + pull * (target - self._temperature) + noise)
        )

    def _step_humidity(self, dt: float, door: bool) -> None:
        target = 80.0 if door else 60.0
        pull = 1 - math.exp(-dt / 60)
        self._humidity += pull * (target - self._humidity) + math.sqrt(dt) * self._rng.gauss(0, 0.2)

    def _step_battery(self, dt: float, fault: bool) -> None:
        per_s = 0.1 if (fault and self.scenario is Scenario.LOW_BATTERY) else 0.0002
        self._battery = max(0.0, self._battery - per_s * dt)

    def _shock(self, fault: bool) -> float:
        base = abs(self._rng.gauss(0, 0.03))
        if self.scenario is Scenario.ROUGH_ROAD and fault:
            if not self._shocked or self._rng.random() < 0.1:
                self._shocked = True
                return self._rng.uniform(2.2, 6.0)
        elif self._rng.random() < 0.0005:
            return self._rng.uniform(2.1, 3.5)
        return base

    def _position(self, elapsed: float) -> tuple[float, float]:
        """Along ROUTE at the model's speed, back and forth."""
        legs = list(itertools.pairwise(ROUTE))
        lengths = [math.dist(a, b) * _KM_PER_DEGREE for a, b in legs]
        total = sum(lengths)
        travelled = (self._route_offset_km + elapsed * self.settings.speed_kmh / 3600) % (2 * total)
        if travelled > total:
            travelled = 2 * total - travelled
        for (start, end), length in zip(legs, lengths, strict=True):
            if travelled <= length:
                share = travelled / length
                return (
                    round(start[0] + share * (end[0] - start[0]), 5),
                    round(start[1] + share * (end[1] - start[1]), 5),
                )
            travelled -= length
        return ROUTE[-1]
