"""Who may do what on the dashboard, and what a hostile page or client cannot do: sessions,
tokens, roles, cross-site requests, foreign Host headers, security headers, size limits.
Real HTTP against uvicorn on a free loopback port."""

from __future__ import annotations

import stat
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from coldchain.adapters.sqlite import SqliteAlarmStore, SqliteDatabase, SqliteReadingStore
from coldchain.adapters.sqlite.auth import auth_path
from coldchain.adapters.sqlite.commands import SqliteCommandStore
from coldchain.apps.dashboard.guard import CONTENT_SECURITY_POLICY
from coldchain.apps.dashboard.server import allowed_hosts, check_bind
from coldchain.core.alarms import Alarm, AlarmState, alarm_id
from coldchain.core.errors import ConfigurationError
from coldchain.core.reading import Reading
from coldchain.core.rules import Severity
from coldchain.core.timestamps import to_canonical
from tests.cli import run
from tests.dashboard import PASSWORD, Running, running_dashboard
from tests.factories import T0

ALARM = alarm_id("dev-2", "BatteryLow", T0)
READS = ("/api/health", "/api/devices", "/api/alarms", "/api/session", "/api/openapi.json")


@pytest.fixture
def dashboard(tmp_path: Path) -> Iterator[Running]:
    db = SqliteDatabase(tmp_path / "coldchain.db")
    SqliteReadingStore(db).put_many([Reading("dev-2", to_canonical(T0), 4.0, 60.0, 0.0, 12.0)])
    SqliteAlarmStore(db).save(
        [
            Alarm(
                ALARM,
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
            )
        ]
    )
    db.close()
    with running_dashboard(tmp_path / "coldchain.db", allowed_hosts=("ops.example",)) as running:
        yield running


def acknowledgement(dashboard: Running) -> object:
    with dashboard.client("viewer") as client:
        [alarm] = client.get("/api/alarms").json()
    return alarm["acknowledgement"]


def ack(client: httpx.Client, **kwargs: object) -> httpx.Response:
    return client.post(f"/api/alarms/{ALARM}/ack", **kwargs)  # type: ignore[arg-type]


def command(client: httpx.Client, **kwargs: object) -> httpx.Response:
    return client.post("/api/devices/dev-2/commands", **kwargs)  # type: ignore[arg-type]


def commands(dashboard: Running) -> list[tuple[str, str]]:
    """(name, status) of every stored command."""
    db = SqliteDatabase(Path(dashboard.server.config.database))
    try:
        return [(c.name, c.status.value) for c in SqliteCommandStore(db).list()]
    finally:
        db.close()


# -- authentication ------------------------------------------------------------------------------
@pytest.mark.parametrize("path", READS)
def test_a_request_without_session_or_token_gets_401(dashboard: Running, path: str) -> None:
    with dashboard.client(None) as client:
        response = client.get(path)
    assert response.status_code == 401
    assert "sign in" in response.json()["error"]
    assert response.headers["www-authenticate"] == "Bearer"


def test_an_unknown_token_or_session_gets_401(dashboard: Running) -> None:
    with dashboard.client(None, headers={"Authorization": "Bearer cct_made-up"}) as client:
        assert client.get("/api/health").status_code == 401
    with dashboard.client(None, cookies={"coldchain-session": "made-up"}) as client:
        assert client.get("/api/health").status_code == 401
        assert client.get("/", follow_redirects=False).headers["location"] == "/signin"


def test_the_page_sends_a_signed_out_browser_to_the_sign_in_page(dashboard: Running) -> None:
    with dashboard.client(None) as client:
        response = client.get("/", follow_redirects=False)
        assert response.status_code == 303
        assert response.headers["location"] == "/signin"
        signin = client.get("/signin")
    assert signin.status_code == 200
    assert "/static/signin.js" in signin.text


def test_sign_in_sets_a_strict_http_only_cookie_and_sign_out_ends_the_session(
    dashboard: Running,
) -> None:
    with dashboard.client(None, headers={"Origin": dashboard.origin}) as client:
        wrong = client.post("/api/session", json={"name": "operator", "password": "nope"})
        nobody = client.post("/api/session", json={"name": "nobody", "password": PASSWORD})
        assert wrong.status_code == nobody.status_code == 401
        assert wrong.json() == nobody.json() == {"error": "wrong name or password"}
        signed_in = client.post("/api/session", json={"name": "operator", "password": PASSWORD})
        assert signed_in.status_code == 200
        assert signed_in.json()["permissions"] == [
            "read",
            "acknowledge alarms",
            "manage shipments",
            "send commands",
        ]
        cookie = signed_in.headers["set-cookie"]
        assert cookie.startswith("coldchain-session=")
        for attribute in ("HttpOnly", "SameSite=strict", "Path=/", "Max-Age=43200"):
            assert attribute.lower() in cookie.lower()
        assert "secure" not in cookie.lower()  # plain HTTP on loopback; TLS adds it
        token = client.cookies["coldchain-session"]
        assert client.get("/api/session").json()["name"] == "operator"
        assert client.get("/").status_code == 200
        out = client.request(
            "DELETE", "/api/session", json={}, headers={"Content-Type": "application/json"}
        )
        assert out.status_code == 200
    # The old cookie, replayed, no longer works: the session is gone on the server.
    with dashboard.client(None, cookies={"coldchain-session": token}) as replay:
        assert replay.get("/api/health").status_code == 401


def test_a_session_is_stored_only_as_a_digest(dashboard: Running) -> None:
    with dashboard.browser_session("viewer") as browser:
        token = browser.cookies["coldchain-session"]
    raw = auth_path(Path(dashboard.server.config.database)).read_bytes()
    assert token.encode() not in raw
    assert dashboard.tokens["viewer"].encode() not in raw
    assert PASSWORD.encode() not in raw


def test_auth_db_is_a_separate_owner_only_file(dashboard: Running) -> None:
    folder = Path(dashboard.server.config.database).parent
    files = [p for p in folder.iterdir() if p.name.startswith("auth.db")]
    assert folder / "auth.db" in files
    for path in files:  # auth.db and its -wal/-shm
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


# -- roles ---------------------------------------------------------------------------------------
def test_a_viewer_reads_but_cannot_acknowledge(dashboard: Running) -> None:
    with dashboard.client("viewer") as viewer:
        assert viewer.get("/api/alarms").status_code == 200
        refused = ack(viewer, json={"comment": "I am only a viewer"})
    assert refused.status_code == 403
    assert "operator" in refused.json()["error"]
    assert acknowledgement(dashboard) is None
    with dashboard.browser_session("viewer") as browser:
        assert browser.get("/api/session").json()["permissions"] == ["read"]
        assert ack(browser, json={"comment": "still a viewer"}).status_code == 403
    assert acknowledgement(dashboard) is None


@pytest.mark.parametrize("role", ["operator", "qa", "admin"])
def test_operator_and_above_acknowledge_as_themselves(dashboard: Running, role: str) -> None:
    with dashboard.browser_session(role) as browser:
        response = ack(browser, json={"by": "someone else", "comment": "checked"})
    assert response.status_code == 200
    assert acknowledgement(dashboard) == {
        "by": role,
        "at": response.json()["acknowledgement"]["at"],
        "comment": "checked",
    }


def test_a_viewer_cannot_send_a_command(dashboard: Running) -> None:
    with dashboard.client("viewer") as viewer:
        refused = command(viewer, json={"name": "self-test"})
    assert refused.status_code == 403
    assert "operator" in refused.json()["error"]
    with dashboard.browser_session("viewer") as browser:
        assert command(browser, json={"name": "self-test"}).status_code == 403
    assert commands(dashboard) == []


@pytest.mark.parametrize("role", ["operator", "qa", "admin"])
def test_operator_and_above_send_a_command_from_the_page(dashboard: Running, role: str) -> None:
    with dashboard.browser_session(role) as browser:
        response = command(browser, json={"name": "self-test"})
        assert response.status_code == 202, response.text
        [record] = browser.get(
            "/api/audit", params={"subject": f"command/{response.json()['command_id']}"}
        ).json()
    assert commands(dashboard) == [("self-test", "sent")]
    assert (record["action"], record["by"]) == ("sent", role)


def test_a_script_acknowledges_with_a_token_and_no_origin(dashboard: Running) -> None:
    with dashboard.client("operator") as script:
        response = ack(script, json={"comment": "from cron"})
    assert response.status_code == 200
    assert response.json()["acknowledgement"]["by"] == "operator"


def test_a_removed_user_loses_sessions_and_tokens(dashboard: Running) -> None:
    with dashboard.browser_session("qa") as browser:
        dashboard.accounts.remove("qa")
        assert browser.get("/api/health").status_code == 401
    with dashboard.client("qa") as script:
        assert script.get("/api/health").status_code == 401


# -- cross-site requests -------------------------------------------------------------------------
CROSS_SITE = [
    # The finding: fetch(url, {mode: "no-cors", credentials: "include",
    # headers: {"Content-Type": "text/plain"}}) from another site.
    ({"Origin": "http://evil.example", "Content-Type": "text/plain"}, 403),
    # Another port on the same host is the same *site* (SameSite lets the cookie through)
    # but another *origin*: refused by the Origin check.
    ({"Origin": "http://127.0.0.1:1", "Content-Type": "text/plain"}, 403),
    ({"Origin": "http://127.0.0.1:1", "Content-Type": "application/json"}, 403),
    ({"Origin": "null", "Content-Type": "application/json"}, 403),
    ({"Sec-Fetch-Site": "cross-site", "Content-Type": "application/json"}, 403),
    ({"Content-Type": "application/json"}, 403),  # a cookie but no Origin at all
    ({"Content-Type": "text/plain"}, 403),
    ({"Content-Type": "application/x-www-form-urlencoded"}, 403),
]
NOT_JSON = ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data"]


@pytest.mark.parametrize(("headers", "status"), CROSS_SITE)
def test_a_cross_site_post_with_the_session_cookie_changes_nothing(
    dashboard: Running, headers: dict[str, str], status: int
) -> None:
    with dashboard.browser_session("operator") as browser:
        browser.headers.pop("Origin")
        response = ack(browser, content=b'{"comment": "forged"}', headers=headers)
    assert response.status_code == status, response.text
    assert acknowledgement(dashboard) is None


@pytest.mark.parametrize(("headers", "status"), CROSS_SITE)
def test_a_cross_site_command_with_the_session_cookie_sends_nothing(
    dashboard: Running, headers: dict[str, str], status: int
) -> None:
    with dashboard.browser_session("operator") as browser:
        browser.headers.pop("Origin")
        response = command(browser, content=b'{"name": "reboot"}', headers=headers)
    assert response.status_code == status, response.text
    assert commands(dashboard) == []


@pytest.mark.parametrize("content_type", NOT_JSON)
def test_a_same_origin_post_that_is_not_json_gets_415(
    dashboard: Running, content_type: str
) -> None:
    with dashboard.browser_session("operator") as browser:
        response = ack(browser, content=b'{"comment": "x"}', headers={"Content-Type": content_type})
        sent = command(
            browser, content=b'{"name": "reboot"}', headers={"Content-Type": content_type}
        )
    assert response.status_code == sent.status_code == 415
    assert acknowledgement(dashboard) is None
    assert commands(dashboard) == []


def test_signing_in_from_another_origin_is_refused(dashboard: Running) -> None:
    with dashboard.client(None, headers={"Origin": "http://evil.example"}) as client:
        response = client.post("/api/session", json={"name": "admin", "password": PASSWORD})
    assert response.status_code == 403
    assert "set-cookie" not in response.headers


# -- Host, headers, sizes ------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/", "/signin", "/api/health", "/static/app.js"])
def test_a_foreign_host_header_gets_400(dashboard: Running, path: str) -> None:
    with dashboard.client("admin", headers={"Host": "evil.example"}) as client:
        response = client.get(path)
    assert response.status_code == 400
    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "ops.example"])
def test_the_allowed_hosts_are_answered(dashboard: Running, host: str) -> None:
    with dashboard.client("viewer", headers={"Host": f"{host}:{dashboard.server.port}"}) as client:
        assert client.get("/api/health").status_code == 200


@pytest.mark.parametrize("path", ["/", "/signin", "/static/app.js", "/api/health", "/api/nope"])
def test_security_headers_are_on_every_response(dashboard: Running, path: str) -> None:
    with dashboard.client(None) as client:
        response = client.get(path, follow_redirects=False)
    headers = response.headers
    assert "default-src 'self'" in headers["content-security-policy"]
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "no-referrer"
    assert headers["x-frame-options"] == "DENY"
    assert "server" not in headers


def test_a_large_body_gets_413_before_it_is_read(dashboard: Running) -> None:
    with dashboard.browser_session("operator") as browser:
        response = ack(browser, json={"comment": "x" * 20_000})
        assert response.status_code == 413
        chunked = ack(
            browser,
            content=iter([b'{"comment": "', b"y" * 20_000, b'"}']),
            headers={"Content-Type": "application/json"},
        )
        assert chunked.status_code == 413
    assert acknowledgement(dashboard) is None


def test_unknown_fields_and_bad_json_are_400(dashboard: Running) -> None:
    with dashboard.browser_session("operator") as browser:
        bad = ack(browser, content=b"{not json", headers={"Content-Type": "application/json"})
        assert bad.status_code == 400
        assert "error" in bad.json()
        extra = browser.post(
            "/api/session", json={"name": "admin", "password": PASSWORD, "role": "admin"}
        )
        assert extra.status_code == 400


# -- where it listens ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--host", "0.0.0.0"], "refusing to serve the dashboard on 0.0.0.0 without TLS"),
        (["--host", "192.0.2.10"], "refusing to serve the dashboard on 192.0.2.10 without TLS"),
        (["--host", "ops.example"], "refusing to serve the dashboard on ops.example without TLS"),
        (["--tls-cert", "web.crt"], "--tls-cert and --tls-key go together"),
        (["--tls-cert", "no.crt", "--tls-key", "no.key"], "TLS certificate not found: no.crt"),
    ],
)
def test_the_dashboard_refuses_to_listen_unsafely_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    SqliteDatabase(tmp_path / "coldchain.db").close()
    code, out, err = run(["--home", str(tmp_path), "dashboard", "--port", "0", *extra], capsys)
    assert code == 1
    assert err.startswith("coldchain: ")
    assert message in err
    assert len(err.strip().splitlines()) == 1
    assert "dashboard on" not in out  # refused before binding anything


@pytest.mark.parametrize(
    ("host", "tls", "insecure", "allowed"),
    [
        ("127.0.0.1", False, False, True),
        ("127.0.0.2", False, False, True),
        ("::1", False, False, True),
        ("localhost", False, False, True),
        ("0.0.0.0", False, False, False),
        ("0.0.0.0", True, False, True),
        ("0.0.0.0", False, True, True),
        ("10.1.2.3", False, False, False),
    ],
)
def test_the_bind_rule(host: str, tls: bool, insecure: bool, allowed: bool) -> None:
    if allowed:
        check_bind(host, tls, insecure)
    else:
        with pytest.raises(ConfigurationError, match="--insecure-bind"):
            check_bind(host, tls, insecure)


def test_the_host_allow_list() -> None:
    assert allowed_hosts("0.0.0.0", ("Ops.Example",)) == (
        "127.0.0.1",
        "localhost",
        "[::1]",
        "ops.example",
    )
    assert "192.0.2.10" in allowed_hosts("192.0.2.10", ())
    assert "[fd00::1]" in allowed_hosts("fd00::1", ())
