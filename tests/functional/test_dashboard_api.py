"""The dashboard's JSON API over a store with known contents, through real HTTP (uvicorn on a
free loopback port), authenticated with an API token."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from coldchain.adapters.sqlite import (
    SqliteAlarmStore,
    SqliteDatabase,
    SqliteDeadLetterStore,
    SqliteReadingStore,
)
from coldchain.adapters.sqlite.commands import SqliteCommandStore
from coldchain.adapters.sqlite.jobs import SqliteJobStore
from coldchain.adapters.sqlite.shadows import SqliteShadowStore
from coldchain.apps.local_ingest import local_ingest
from coldchain.core.alarm_profile import default_profile
from coldchain.core.alarms import Alarm, AlarmState, alarm_id
from coldchain.core.commands import CommandStatus, new_command
from coldchain.core.jobs import Execution, ExecutionStatus, Job, JobStatus
from coldchain.core.messages import DeadLetter, DeadLetterKind
from coldchain.core.reading import Reading
from coldchain.core.rules import Severity
from coldchain.core.shadow import Shadow
from coldchain.core.timestamps import to_canonical
from tests.dashboard import Running, running_dashboard
from tests.factories import T0

NOW = T0 + timedelta(hours=1)
Call = Callable[..., tuple[int, Any]]


def fill(path: Path) -> Path:
    """Two devices, a dead letter and an active alarm."""
    db = SqliteDatabase(path)
    temps = [4.0, 5.0, 9.5, 3.0, 4.0, 1.0]
    SqliteReadingStore(db).put_many(
        [
            Reading(
                "dev-1",
                to_canonical(T0 + timedelta(minutes=10 * i)),
                t,
                60.0,
                0.01,
                80.0 - i,
                latitude=52.5,
                longitude=13.4,
                fleet_id="f",
            )
            for i, t in enumerate(temps)
        ]
        + [Reading("dev-2", to_canonical(T0), 4.0, 60.0, 0.0, 12.0, fleet_id="g")]
    )
    SqliteDeadLetterStore(db).put_many(
        [DeadLetter(DeadLetterKind.REJECTED, "dt/coldchain/x/telemetry", b"x", NOW, "not JSON")]
    )
    SqliteAlarmStore(db).save(
        [
            Alarm(
                alarm_id("dev-2", "BatteryLow", T0),
                "dev-2",
                "g",
                "BatteryLow",
                Severity.WARNING,
                AlarmState.ACTIVE,
                T0,
                T0,
                None,
                12.0,
                timedelta(0),
                "battery_pct < 15 %",
            ),
        ]
    )
    db.close()
    return path


def fill_device_management(path: Path) -> Path:
    """dev-1's shadow (interval pending), 12 commands (the newest answered) and two firmware
    jobs; dev-2 is in the older job only."""
    db = SqliteDatabase(path)
    desired = {"interval_s": 30, "label": "reefer A"}
    reported = {"interval_s": 60, "label": "reefer A", "band": [2, 8]}
    SqliteShadowStore(db).put(Shadow("dev-1", desired, reported, 3, T0), 0, announce=False)
    commands = [
        new_command("dev-1", "self-test", {}, T0 + timedelta(minutes=i), command_id=f"c-{i:02}")
        for i in range(12)
    ]
    answered = replace(commands[-1], status=CommandStatus.SUCCEEDED, result={"gps": "ok"})
    SqliteCommandStore(db).save([*commands[:-1], answered])
    jobs = SqliteJobStore(db)
    for job_id, version, created, status in (
        ("job-old", "2.1.0", T0, JobStatus.COMPLETED),
        ("job-new", "2.2.0", T0 + timedelta(minutes=30), JobStatus.IN_PROGRESS),
    ):
        jobs.save_job(Job(job_id, "fleet=f", version, "0" * 64, None, None, None, created, status))
    jobs.save_executions(
        [
            Execution(
                "job-old", "dev-1", ExecutionStatus.SUCCEEDED, T0, T0, {"firmware_version": "2.1.0"}
            ),
            Execution("job-old", "dev-2", ExecutionStatus.FAILED, T0, T0, {"reason": "hash"}),
            Execution(
                "job-new", "dev-1", ExecutionStatus.IN_PROGRESS, NOW, NOW, {"step": "downloading"}
            ),
        ]
    )
    db.close()
    return path


@pytest.fixture
def dashboard(tmp_path: Path) -> Iterator[Running]:
    """The real server (uvicorn on a free loopback port) over the store, clock at NOW."""
    with running_dashboard(fill(tmp_path / "d.db"), clock=lambda: NOW) as running:
        yield running


@pytest.fixture
def base(dashboard: Running) -> str:
    return dashboard.base


@pytest.fixture
def call(dashboard: Running) -> Iterator[Call]:
    """GET (or POST ``body`` as JSON) with the operator's API token: (status, JSON)."""
    with dashboard.client("operator") as client:

        def request(url: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
            response = client.get(url) if body is None else client.post(url, json=body)
            return response.status_code, response.json()

        yield request


def test_health_and_devices(base: str, call: Call) -> None:
    status, health = call(f"{base}/api/health")
    assert status == 200
    assert (
        health["readings"],
        health["devices"],
        health["dead_letters"],
        health["active_alarms"],
    ) == (7, 2, 1, 1)
    _, devices = call(f"{base}/api/devices")
    one, two = devices
    assert one["device_id"] == "dev-1"
    assert one["temperature_c"] == 1.0
    assert one["seconds_since"] == 600.0  # last reading at T0+50 min, now T0+60 min
    assert one["silent"] is True
    assert two["status"] == "silent"
    status, device = call(f"{base}/api/devices/dev-2")
    assert status == 200
    assert [a["rule"] for a in device["alarms"]] == ["BatteryLow"]


def test_readings_keep_min_and_max_when_downsampled(base: str, call: Call) -> None:
    status, body = call(
        f"{base}/api/readings?device=dev-1&from=2024-01-15T09:00:00Z"
        "&to=2024-01-15T10:00:00Z&points=2"
    )
    assert status == 200
    assert body["bucket_s"] == 1800
    first, second = body["points"]
    assert (first["n"], first["min"], first["max"]) == (3, 4.0, 9.5)  # the breach survives
    assert (second["n"], second["min"], second["max"]) == (3, 1.0, 4.0)
    _, raw = call(f"{base}/api/readings?device=dev-1&hours=1&points=100")
    assert [p["max"] for p in raw["points"]] == [4.0, 5.0, 9.5, 3.0, 4.0, 1.0]


def test_ingest_alarms_and_dead_letters(base: str, call: Call) -> None:
    _, ingest = call(f"{base}/api/ingest?minutes=120")
    assert sum(row["stored"] for row in ingest) == 7
    assert sum(row["dead_letters"] for row in ingest) == 1
    _, alarms = call(f"{base}/api/alarms?active=true")
    assert [a["device_id"] for a in alarms] == ["dev-2"]
    _, dead = call(f"{base}/api/deadletters")
    assert dead[0]["reason"] == "not JSON"
    _, trend = call(f"{base}/api/trend?from=2024-01-15T09:00:00Z&to=2024-01-15T10:00:00Z&points=6")
    assert set(trend["series"]) == {"dev-1", "dev-2"}


def test_acknowledge_through_the_api_records_the_token_holder(base: str, call: Call) -> None:
    target = alarm_id("dev-2", "BatteryLow", T0)
    status, error = call(f"{base}/api/alarms/{target}/ack", {"comment": ""})
    assert status == 400
    assert "comment" in error["error"]
    status, acked = call(f"{base}/api/alarms/{target}/ack", {"by": "mallory", "comment": "swapped"})
    assert status == 200
    assert acked["acknowledgement"]["comment"] == "swapped"
    assert acked["acknowledgement"]["by"] == "operator"  # the token's user, never the body's "by"
    status, error = call(f"{base}/api/alarms/nope/ack", {"comment": "x"})
    assert status == 404


def test_a_device_without_configuration_commands_or_jobs(base: str, call: Call) -> None:
    status, device = call(f"{base}/api/devices/dev-2")
    assert status == 200
    assert (device["configuration"], device["commands"], device["jobs"]) == (None, [], [])


def test_a_device_shows_configuration_commands_and_jobs(tmp_path: Path) -> None:
    path = fill_device_management(fill(tmp_path / "d.db"))
    with running_dashboard(path, clock=lambda: NOW) as running, running.client("viewer") as viewer:
        one = viewer.get("/api/devices/dev-1").json()
        two = viewer.get("/api/devices/dev-2").json()
    assert one["configuration"] == {
        "desired": {"interval_s": 30, "label": "reefer A"},
        "reported": {"interval_s": 60, "label": "reefer A", "band": [2, 8]},
        "delta": {"interval_s": 30},
        "version": 3,
        "updated_at": to_canonical(T0),
    }
    commands = one["commands"]
    assert [c["command_id"] for c in commands] == [f"c-{i:02}" for i in range(11, 1, -1)]
    assert (commands[0]["status"], commands[0]["result"]) == ("succeeded", {"gps": "ok"})
    assert {c["status"] for c in commands[1:]} == {"sent"}
    assert one["firmware_version"] is None  # the filled readings carry none
    assert [(j["job_id"], j["execution_status"]) for j in one["jobs"]] == [
        ("job-new", "in_progress"),  # newest job first
        ("job-old", "succeeded"),
    ]
    assert one["jobs"][0] == {
        "job_id": "job-new",
        "job_status": "in_progress",
        "target_version": "2.2.0",
        "created_at": to_canonical(T0 + timedelta(minutes=30)),
        "execution_status": "in_progress",
        "started_at": to_canonical(NOW),
        "updated_at": to_canonical(NOW),
        "details": {"step": "downloading"},
    }
    assert [(j["job_id"], j["execution_status"], j["details"]) for j in two["jobs"]] == [
        ("job-old", "failed", {"reason": "hash"})
    ]
    assert two["configuration"] is None
    assert two["commands"] == []


def test_an_operator_sends_a_command_the_store_lists_and_the_audit_trail_names(
    dashboard: Running,
) -> None:
    with dashboard.client("operator") as operator:
        response = operator.post("/api/devices/dev-1/commands", json={"name": "self-test"})
        assert response.status_code == 202, response.text
        sent = response.json()
        listed = operator.get("/api/devices/dev-1").json()["commands"]
        trail = operator.get("/api/audit", params={"subject": f"command/{sent['command_id']}"})
        interval = operator.post(
            "/api/devices/dev-1/commands", json={"name": "set-interval", "args": {"seconds": "30"}}
        )
    assert sent["device_id"] == "dev-1"
    assert (sent["name"], sent["args"], sent["status"], sent["sent_at"]) == (
        "self-test",
        {},
        "sent",
        None,  # queued: the control service sends it
    )
    assert sent["issued_at"] == to_canonical(NOW)
    assert (sent["timeout_s"], sent["expires_at"]) == (30.0, to_canonical(NOW + timedelta(hours=1)))
    assert [c["command_id"] for c in listed] == [sent["command_id"]]
    [record] = trail.json()
    assert (record["action"], record["by"]) == ("sent", "operator")
    assert record["data"] == {"device_id": "dev-1", "name": "self-test", "args": {}}
    assert interval.status_code == 202
    assert interval.json()["args"] == {"seconds": "30"}
    db = SqliteDatabase(Path(dashboard.server.config.database))
    try:
        stored = SqliteCommandStore(db).list(device_id="dev-1")
    finally:
        db.close()
    assert sorted((c.name, c.status, c.sent_at) for c in stored) == [
        ("self-test", CommandStatus.SENT, None),
        ("set-interval", CommandStatus.SENT, None),
    ]


@pytest.mark.parametrize(
    ("device", "body", "status", "fragment"),
    [
        ("nope", {"name": "self-test"}, 404, "unknown device 'nope'"),
        ("dev-1", {"name": ""}, 400, "name"),
        ("dev-1", {"name": "self test; rm"}, 400, "name"),
        ("dev-1", {"name": "x" * 65}, 400, "name"),
        ("dev-1", {}, 400, "name"),
        ("dev-1", {"name": "self-test", "by": "mallory"}, 400, "by"),
        ("dev-1", {"name": "reboot", "args": {"n": 1}}, 400, "args"),
        ("dev-1", {"name": "reboot", "args": {str(i): "x" for i in range(17)}}, 400, "args"),
    ],
)
def test_a_bad_command_is_refused_and_not_stored(
    dashboard: Running, device: str, body: dict[str, Any], status: int, fragment: str
) -> None:
    with dashboard.client("operator") as operator:
        response = operator.post(f"/api/devices/{device}/commands", json=body)
        listed = operator.get("/api/devices/dev-1").json()["commands"]
    assert response.status_code == status, response.text
    assert fragment in response.json()["error"]
    assert listed == []


def test_a_viewer_cannot_send_a_command(dashboard: Running) -> None:
    with dashboard.client("viewer") as viewer:
        refused = viewer.post("/api/devices/dev-1/commands", json={"name": "self-test"})
        listed = viewer.get("/api/devices/dev-1").json()["commands"]
    assert refused.status_code == 403
    assert "to send commands takes operator or above" in refused.json()["error"]
    assert listed == []


@pytest.mark.parametrize(
    ("path", "status", "fragment"),
    [
        ("/api/devices/nope", 404, "unknown device"),
        ("/api/readings?device=nope", 404, "unknown device"),
        ("/api/readings", 400, "device is required"),
        (
            "/api/readings?device=dev-1&from=2024-01-15T10:00:00Z&to=2024-01-15T09:00:00Z",
            400,
            "from must be before to",
        ),
        ("/api/readings?device=dev-1&from=yesterday", 400, "bad time range"),
        (
            "/api/readings?device=dev-1&from=2024-01-01T00:00:00Z&to=2024-03-01T00:00:00Z",
            400,
            "at most 31 days",
        ),
        ("/api/readings?device=dev-1&points=0", 400, "points"),
        ("/api/alarms?active=maybe", 400, "active"),
        ("/api/nothing", 404, "no such endpoint"),
        ("/secret.txt", 404, "no such page"),
    ],
)
def test_bad_requests_get_a_clear_4xx(
    base: str, call: Call, path: str, status: int, fragment: str
) -> None:
    got, body = call(base + path)
    assert got == status
    assert fragment in body["error"]


def test_the_page_and_its_assets_are_served_locally(dashboard: Running) -> None:
    with dashboard.browser_session("viewer") as browser:
        page = browser.get("/").text
        assert "/static/app.js" in page
        for asset in ("/static/app.js", "/static/style.css", "/static/signin.js"):
            assert browser.get(asset).status_code == 200
    assert "http://" not in page.replace("http://127.0.0.1", "")
    assert "https://" not in page  # no CDN, no web fonts


def test_the_openapi_description_lists_every_endpoint(dashboard: Running) -> None:
    with dashboard.client("viewer") as client:
        described = client.get("/api/openapi.json").json()
    assert {
        "/api/health",
        "/api/devices",
        "/api/devices/{device_id}",
        "/api/readings",
        "/api/trend",
        "/api/ingest",
        "/api/alarms",
        "/api/deadletters",
        "/api/alarms/{alarm_id}/ack",
        "/api/devices/{device_id}/commands",
        "/api/session",
    } <= set(described["paths"])
    schemes = described["components"]["securitySchemes"]
    assert {scheme["type"] for scheme in schemes.values()} == {"http", "apiKey"}


def test_status_and_band_follow_the_profile_the_worker_recorded(tmp_path: Path) -> None:
    path = fill(tmp_path / "d.db")
    db = SqliteDatabase(path)
    # The worker runs a 15-minute silence time and a 2-25 °C band (a food profile).
    food = replace(
        default_profile(),
        silence_after=timedelta(minutes=15),
        rules=tuple(
            replace(r, threshold=25.0) if r.metric == "temperature_c" and r.threshold == 8.0 else r
            for r in default_profile().rules
        ),
    )
    local_ingest(db, food, {"log": Severity.INFO})
    db.close()
    with (
        running_dashboard(path, clock=lambda: NOW) as running,
        running.client("operator") as client,
    ):
        profile = client.get(f"{running.base}/api/profile").json()
        devices = client.get(f"{running.base}/api/devices").json()
    assert profile["band"] == [2.0, 25.0]
    assert profile["silence_after"] == "900s"
    one, two = devices
    assert (one["seconds_since"], one["status"]) == (600.0, "ok")  # 10 min: not yet silent
    assert two["status"] == "silent"  # an hour


def test_shipments_through_the_api_as_the_signed_in_users(tmp_path: Path) -> None:
    path = fill(tmp_path / "d.db")
    with running_dashboard(path, clock=lambda: NOW) as running:
        base = f"{running.base}/api/shipments"
        body = {
            "id": "SH-7",
            "product": "Vaccine X",
            "origin": "Hamburg",
            "destination": "Vienna",
            "devices": ["dev-1", "dev-2"],
        }
        with running.client("viewer") as viewer:
            assert viewer.post(base, json=body).status_code == 403
        with running.client("operator") as operator:
            created = operator.post(base, json=body)
            assert created.status_code == 201, created.text
            assert operator.post(f"{base}/SH-7/start", json={}).json()["status"] == "active"
            again = operator.post(base, json={**body, "id": "SH-8", "devices": ["dev-2"]})
            assert again.status_code == 201
            refused = operator.post(f"{base}/SH-8/start", json={})
            assert refused.status_code == 400
            assert "dev-2 is on active shipment SH-7" in refused.json()["error"]
            assert operator.post(f"{base}/SH-7/end", json={}).status_code == 200
            decision = {"decision": "release", "reason": "clean"}
            assert operator.post(f"{base}/SH-7/decision", json=decision).status_code == 403
            listed = operator.get(base, params={"status": "ended"}).json()
        with running.client("qa") as qa:
            decided = qa.post(f"{base}/SH-7/decision", json=decision)
            assert decided.status_code == 200, decided.text
            shown = qa.get(f"{base}/SH-7").json()
            audit = qa.get(f"{running.base}/api/audit").json()
    assert [s["id"] for s in listed] == ["SH-7"]
    assert shown["decision"]["by"] == "qa"
    assert shown["decision"]["meaning"] == "reviewed and released"
    assert [(r["action"], r["by"]) for r in shown["audit"]] == [
        ("created", "operator"),
        ("started", "operator"),
        ("ended", "operator"),
        ("decided", "qa"),
    ]
    assert audit[0]["action"] == "decided"  # newest first
