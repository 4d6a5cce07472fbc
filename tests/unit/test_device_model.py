"""The simulated device: deterministic per seed, and each scenario does what it says."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from coldchain.core.device_model import FAULTS, ROUTE, DeviceModel, Scenario, scenario_mix
from coldchain.core.reading import Reading
from tests.factories import T0


def run(model: DeviceModel, seconds: int, step_s: int = 2, start: datetime = T0) -> list[Reading]:
    return [model.sample(start + timedelta(seconds=t)) for t in range(0, seconds, step_s)]


def test_same_seed_same_readings() -> None:
    first = run(DeviceModel("dev-1", Scenario.DOOR_OPEN, seed=7, gps=True), 600)
    second = run(DeviceModel("dev-1", Scenario.DOOR_OPEN, seed=7, gps=True), 600)
    assert first == second


def test_other_seed_or_device_other_readings() -> None:
    base = run(DeviceModel("dev-1", seed=7), 60)
    assert run(DeviceModel("dev-1", seed=8), 60) != base
    other_device = run(DeviceModel("dev-2", seed=7), 60)
    assert [r.temperature_c for r in other_device] != [r.temperature_c for r in base]


def test_only_the_wall_clock_moves_timestamps_and_seq_counts() -> None:
    readings = run(DeviceModel("dev-1"), 20, step_s=5, start=T0)
    assert [r.timestamp for r in readings] == [
        "2024-01-15T09:00:00.000Z",
        "2024-01-15T09:00:05.000Z",
        "2024-01-15T09:00:10.000Z",
        "2024-01-15T09:00:15.000Z",
    ]
    assert [r.seq for r in readings] == [0, 1, 2, 3]


def test_healthy_device_stays_in_band() -> None:
    readings = run(DeviceModel("dev-1", seed=3), 3600, step_s=10)
    temps = [r.temperature_c for r in readings]
    assert min(temps) > 2.0
    assert max(temps) < 8.0


def test_compressor_failure_climbs_past_8_within_a_minute_and_recovers() -> None:
    model = DeviceModel("dev-1", Scenario.COMPRESSOR_FAILURE, seed=1)
    readings = run(model, 60 * 20, step_s=2)
    first_minute = [r.temperature_c for r in readings[:30]]
    assert sum(t > 8.0 for t in first_minute) >= 2
    assert readings[-1].temperature_c < 8.0  # repaired after ten minutes


def test_freezing_drops_below_2_within_a_minute() -> None:
    readings = run(DeviceModel("dev-1", Scenario.FREEZING, seed=1), 60)
    assert sum(r.temperature_c < 2.0 for r in readings) >= 2


def test_low_battery_drops_below_15_within_a_minute() -> None:
    readings = run(DeviceModel("dev-1", Scenario.LOW_BATTERY, seed=1), 60)
    assert readings[0].battery_pct > 15
    assert readings[-1].battery_pct < 15
    batteries = [r.battery_pct for r in readings]
    assert batteries == sorted(batteries, reverse=True)


def test_rough_road_shocks_within_a_minute_otherwise_near_zero() -> None:
    rough = run(DeviceModel("dev-1", Scenario.ROUGH_ROAD, seed=1), 60)
    assert any(r.shock_g > 2.0 for r in rough)
    assert all(r.shock_g < 0.3 for r in rough[:2])


def test_door_opening_raises_temperature_and_humidity() -> None:
    readings = run(DeviceModel("dev-1", Scenario.DOOR_OPEN, seed=1), 120)
    assert max(r.temperature_c for r in readings) > readings[0].temperature_c + 1.5
    assert max(r.humidity_pct for r in readings) > readings[0].humidity_pct + 5


def test_outage_holds_the_link_down_for_a_while_within_the_first_minute() -> None:
    model = DeviceModel("dev-1", Scenario.OUTAGE, seed=1)
    states = []
    for t in range(0, 90):
        model.sample(T0 + timedelta(seconds=t))
        states.append(model.link_up(T0 + timedelta(seconds=t)))
    assert states[0]
    assert not all(states[:60])
    assert states[-1]


def test_gps_follows_the_route() -> None:
    readings = run(DeviceModel("dev-1", gps=True), 600, step_s=60)
    lats = [lat for lat, _ in ROUTE]
    lons = [lon for _, lon in ROUTE]
    for reading in readings:
        assert reading.latitude is not None
        assert reading.longitude is not None
        assert min(lats) <= reading.latitude <= max(lats)
        assert min(lons) <= reading.longitude <= max(lons)
    assert readings[0].latitude != readings[-1].latitude


@pytest.mark.parametrize("count", [6, 25, 1000])
def test_scenario_mix_has_every_fault_and_mostly_healthy(count: int) -> None:
    mix = scenario_mix(count)
    assert len(mix) == count
    assert set(FAULTS) <= set(mix)
    if count >= 25:
        assert mix.count(Scenario.HEALTHY) > count / 2


def test_small_fleet_gets_the_most_important_faults_first() -> None:
    assert scenario_mix(3) == list(FAULTS[:3])
    assert scenario_mix(0) == []
