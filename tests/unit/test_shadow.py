"""The shadow's rules (core.shadow): delta, versions, deletion by null, limits."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from coldchain.apps.simulator.device_config import DeviceConfig
from coldchain.core.shadow import Rejected, Shadow, delta, parse_update, updated

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def test_delta_is_what_desired_has_and_reported_lacks() -> None:
    assert delta({"a": 1, "b": {"x": 1, "y": 2}}, {"a": 1, "b": {"x": 1, "y": 3}}) == {
        "b": {"y": 2}
    }
    assert delta({"a": 1}, {"a": 1, "z": 9}) == {}


def test_each_update_raises_the_version_and_a_stale_one_is_refused() -> None:
    first = updated(Shadow("d"), {"state": {"desired": {"interval_s": 30}}}, NOW)
    assert first.version == 1
    assert first.delta == {"interval_s": 30}
    second = updated(first, {"state": {"reported": {"interval_s": 30}}, "version": 1}, NOW)
    assert second.version == 2
    assert second.delta == {}
    with pytest.raises(Rejected) as refused:
        updated(second, {"state": {"desired": {"interval_s": 5}}, "version": 1}, NOW)
    assert refused.value.code == 409


def test_null_deletes_and_bad_updates_are_refused_with_codes() -> None:
    shadow = updated(Shadow("d"), {"state": {"desired": {"label": "x", "band": [2, 8]}}}, NOW)
    assert updated(shadow, {"state": {"desired": {"label": None}}}, NOW).desired == {"band": [2, 8]}
    for request, code in (
        ({"state": {"desired": 5}}, 400),
        ({"state": {"other": {}}}, 400),
        ({"state": {"desired": {"blob": "x" * 9000}}}, 413),
    ):
        with pytest.raises(Rejected) as refused:
            updated(shadow, request, NOW)
        assert refused.value.code == code
    for payload in (b"not json", b'{"nostate": 1}'):
        with pytest.raises(Rejected) as refused:
            parse_update(payload)
        assert refused.value.code == 400


def test_the_device_applies_what_it_knows_and_reports_it() -> None:
    device = DeviceConfig()
    update = device.on_message("update/delta", b'{"state": {"interval_s": 5, "fan": "on"}}')
    assert update is not None
    assert device.interval_s == 5.0
    assert b'"interval_s": 5.0' in update
    assert b"fan" not in update  # unknown: it stays in the delta
    assert device.on_message("update/delta", b'{"state": {"interval_s": -1}}') is None
    assert device.interval_s == 5.0
