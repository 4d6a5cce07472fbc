"""The dashboard in headless Chromium (Debian's chromium + chromedriver, driven by Selenium),
against a store filled by a short simulated run: sign in, a forged cross-origin request
refused, an alarm acknowledged as the signed-in user, a device's configuration, firmware job
and a self-test sent from its page, sign out."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from coldchain.adapters.sqlite import SqliteAuditLog, SqliteDatabase
from coldchain.adapters.sqlite.jobs import SqliteJobStore
from coldchain.adapters.sqlite.shadows import SqliteShadowStore
from coldchain.core.jobs import Execution, ExecutionStatus, Job
from coldchain.core.shadow import Shadow
from coldchain.core.shipments import Shipments
from coldchain.core.users import Role
from tests.dashboard import PASSWORD, accounts_for
from tests.factories import T0
from tests.stack import Stack, free_port, wait_until

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[webdriver.Chrome]:
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.fail("chromium and chromium-driver are not installed: `make test` installs them")
    options = Options()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1400,1100",
        f"--user-data-dir={tmp_path / 'chromium'}",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def get(url: str, token: str) -> Any:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


@contextmanager
def hostile_page(target: str) -> Iterator[str]:
    """Another origin on this host (a different port: the same *site*, so a SameSite=Strict
    cookie goes along) whose page fires the forged request of the original finding."""
    page = f"""<!doctype html><title>loading</title><script>
fetch({json.dumps(target)}, {{method: "POST", mode: "no-cors", credentials: "include",
  headers: {{"Content-Type": "text/plain"}}, body: JSON.stringify({{comment: "forged"}})}})
  .then(() => {{ document.title = "sent"; }}, () => {{ document.title = "failed"; }});
</script>""".encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def test_dashboard_shows_the_run_and_acknowledges_an_alarm(
    stack: Stack, browser: webdriver.Chrome
) -> None:
    stack.start_worker()
    fleet = subprocess.run(
        [
            sys.executable,
            "-m",
            "coldchain",
            "--home",
            str(stack.home),
            "simulate",
            "--endpoint",
            "127.0.0.1",
            "--port",
            str(stack.port),
            "--devices",
            "6",
            "--interval",
            "0.5",
            "--duration",
            "30",
            "--seed",
            "2",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert fleet.returncode == 0, fleet.stderr
    wait_until(lambda: stack.count("alarms", "state = 'active'") >= 1, 30, "an active alarm")
    device_ids = [row[0] for row in stack.rows("SELECT device_id FROM devices ORDER BY device_id")]
    store = SqliteDatabase(stack.db_path)
    shipments = Shipments(SqliteAuditLog(store))
    shipments.create(
        "SH-BROWSER-1", "Vaccine X", "default", "Hamburg", "Vienna", device_ids[:2], "ana", T0
    )
    shipments.start("SH-BROWSER-1", "ana", T0)
    # The first device's configuration: a pending interval, and a label with markup in it
    # (shown as text, never as HTML); a firmware job under way on it.
    desired = {"interval_s": 30, "label": "<b>dock 4</b>"}
    reported = {"interval_s": 0.5, "label": "<b>dock 4</b>"}
    SqliteShadowStore(store).put(Shadow(device_ids[0], desired, reported, 2, T0), 0, announce=False)
    jobs = SqliteJobStore(store)
    jobs.save_job(Job("job-browser-1", "fleet=f", "9.9.9", "0" * 64, None, None, None, T0))
    jobs.save_executions(
        [
            Execution(
                "job-browser-1",
                device_ids[0],
                ExecutionStatus.IN_PROGRESS,
                T0,
                T0,
                {"step": "downloading"},
            )
        ]
    )
    store.close()
    accounts = accounts_for(stack.db_path)
    accounts.add("ana", Role.OPERATOR, PASSWORD)
    token = accounts.issue_token("ana", "browser test")
    accounts.close()
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "coldchain",
            "--home",
            str(stack.home),
            "dashboard",
            "--port",
            str(port),
            "--db",
            str(stack.db_path),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _up(base, token), 20, "the dashboard listening")
        # Signed out, the page sends the browser to sign in.
        browser.get(base + "/")
        wait = WebDriverWait(browser, 20)
        wait.until(expected_conditions.url_to_be(base + "/signin"))
        browser.find_element(By.ID, "name").send_keys("ana")
        browser.find_element(By.ID, "password").send_keys("not the password")
        browser.find_element(By.ID, "submit").click()
        wait.until(
            expected_conditions.text_to_be_present_in_element(
                (By.ID, "error"), "wrong name or password"
            )
        )
        ARTIFACTS.mkdir(exist_ok=True)
        assert browser.save_screenshot(str(ARTIFACTS / "dashboard-signin.png"))
        browser.find_element(By.ID, "password").clear()
        browser.find_element(By.ID, "password").send_keys(PASSWORD)
        browser.find_element(By.ID, "submit").click()
        wait.until(expected_conditions.text_to_be_present_in_element((By.ID, "device-count"), "6"))
        assert browser.find_element(By.ID, "who").text == "ana"
        temperatures = browser.find_elements(By.CSS_SELECTOR, "#w-heartbeat td.temperature")
        assert len(temperatures) == 6
        assert all(t.text.endswith("°C") for t in temperatures)
        for widget in ("w-ingest", "w-trend", "w-battery"):
            assert browser.find_elements(By.CSS_SELECTOR, f"#{widget} svg, #{widget} table")
        assert browser.find_elements(By.CSS_SELECTOR, "#w-trend svg polygon")  # min-max bands
        assert len(browser.find_elements(By.CSS_SELECTOR, "#w-battery svg.bar")) == 6
        assert browser.find_element(By.ID, "dlq-depth").text == "0"
        button = wait.until(
            expected_conditions.element_to_be_clickable((By.CSS_SELECTOR, "#w-alarms button.ack"))
        )
        alarm_id = button.get_attribute("data-id")
        assert alarm_id
        # At 1280x800 the active alarms and their acknowledge buttons are in view, unscrolled.
        browser.set_window_size(1280, 800)
        wait.until(
            expected_conditions.presence_of_element_located(
                (By.CSS_SELECTOR, '#w-shipments tr[data-shipment="SH-BROWSER-1"]')
            )
        )
        in_view = browser.execute_script(
            "const r = document.querySelector('#w-alarms button.ack').getBoundingClientRect();"
            "return [r.top >= 0, r.left >= 0, r.bottom <= window.innerHeight,"
            " r.right <= document.documentElement.clientWidth, window.scrollY];"
        )
        assert in_view == [True, True, True, True, 0], in_view
        row = browser.find_element(By.CSS_SELECTOR, '#w-shipments tr[data-shipment="SH-BROWSER-1"]')
        assert "active" in row.text
        assert "Hamburg → Vienna" in row.text
        # The operator ends it from the dashboard; the audit trail names her.
        row.find_element(By.CSS_SELECTOR, 'button.shipment-step[data-step="end"]').click()
        wait.until(expected_conditions.alert_is_present()).accept()
        wait.until(
            expected_conditions.text_to_be_present_in_element(
                (By.CSS_SELECTOR, '#w-shipments tr[data-shipment="SH-BROWSER-1"]'), "ended"
            )
        )
        trail = get(f"{base}/api/audit?subject=shipment/SH-BROWSER-1", token)
        newest = trail[0]  # newest first
        assert (newest["action"], newest["by"]) == ("ended", "ana")
        statuses = [
            e.text for e in browser.find_elements(By.CSS_SELECTOR, "#w-heartbeat td.status")
        ]
        order = {"alarm": 0, "silent": 1, "ok": 2}
        assert statuses == sorted(statuses, key=order.__getitem__)  # by trouble
        assert browser.find_elements(By.CSS_SELECTOR, "#w-trend svg line.tick")  # a y scale
        ARTIFACTS.mkdir(exist_ok=True)
        assert browser.save_screenshot(str(ARTIFACTS / "dashboard-1280x800.png"))
        browser.set_window_size(1400, 1100)

        def acknowledgement() -> Any:
            [found] = [a for a in get(f"{base}/api/alarms", token) if a["id"] == alarm_id]
            return found["acknowledgement"]

        # The original finding, replayed by the real browser from another origin while signed
        # in here: the session cookie goes along, and the server refuses the request.
        with hostile_page(f"{base}/api/alarms/{alarm_id}/ack") as evil:
            browser.get(evil)
            wait.until(lambda driver: driver.title in ("sent", "failed"))
        assert acknowledgement() is None
        browser.get(base + "/")
        button = wait.until(
            expected_conditions.element_to_be_clickable(
                (By.CSS_SELECTOR, f'#w-alarms button.ack[data-id="{alarm_id}"]')
            )
        )
        button.click()
        prompt = wait.until(expected_conditions.alert_is_present())
        prompt.send_keys("checked by the browser test")
        prompt.accept()
        wait_until(lambda: acknowledgement() is not None, 15, "the acknowledgement stored")
        stored = acknowledgement()
        assert stored["comment"] == "checked by the browser test"
        assert stored["by"] == "ana"  # the signed-in user, recorded by the server
        wait.until(
            expected_conditions.text_to_be_present_in_element(
                (By.CSS_SELECTOR, f'tr[data-alarm="{alarm_id}"]'),
                "ana: checked by the browser test",
            )
        )
        assert browser.save_screenshot(str(ARTIFACTS / "dashboard.png"))
        # The device page: its readings chart and its alarms.
        device = stack.rows("SELECT device_id FROM devices ORDER BY device_id")[0][0]
        browser.get(f"{base}/#/device/{device}")
        wait.until(
            expected_conditions.presence_of_element_located((By.CSS_SELECTOR, "#d-chart svg"))
        )
        assert device in browser.find_element(By.ID, "d-title").text
        # Its configuration: desired against reported, the interval pending; the label's
        # markup stays text.
        pending = wait.until(
            expected_conditions.presence_of_element_located(
                (By.CSS_SELECTOR, '#d-configuration tr.pending[data-field="interval_s"]')
            )
        )
        assert pending.text.split() == ["interval_s", "30", "0.5", "pending"]
        label = browser.find_element(By.CSS_SELECTOR, '#d-configuration tr[data-field="label"]')
        assert "pending" not in (label.get_attribute("class") or "")
        assert label.text.split() == ["label", "<b>dock", "4</b>", "<b>dock", "4</b>", "applied"]
        assert not browser.find_elements(By.CSS_SELECTOR, "#d-configuration b")
        assert "version 2" in browser.find_element(By.ID, "d-config-summary").text
        # Its firmware and the job under way.
        shown = get(f"{base}/api/devices/{device}", token)
        assert browser.find_element(By.ID, "d-firmware-version").text == shown["firmware_version"]
        job = browser.find_element(By.CSS_SELECTOR, '#d-firmware tr[data-job="job-browser-1"]')
        assert "9.9.9" in job.text
        assert "step: downloading" in job.text
        # A self-test from the page: queued as sent (no control service runs here to send it),
        # recorded as sent by the signed-in user.
        assert "no commands sent" in browser.find_element(By.ID, "d-commands").text
        wait.until(expected_conditions.element_to_be_clickable((By.ID, "d-self-test"))).click()
        row = wait.until(
            expected_conditions.presence_of_element_located(
                (By.CSS_SELECTOR, "#d-commands tr[data-command]")
            )
        )
        assert row.find_element(By.CSS_SELECTOR, "td.name").text == "self-test"
        assert row.find_element(By.CSS_SELECTOR, "td.status").text == "sent"
        command_id = row.get_attribute("data-command")
        [sent] = get(f"{base}/api/audit?subject=command/{command_id}", token)
        assert (sent["action"], sent["by"], sent["data"]["device_id"]) == ("sent", "ana", device)
        assert browser.save_screenshot(str(ARTIFACTS / "dashboard-device.png"))
        # Nothing on the page broke the Content-Security-Policy.
        console = [entry["message"] for entry in browser.get_log("browser")]  # type: ignore[no-untyped-call]
        assert not [m for m in console if "Content Security Policy" in m], console
        # Sign out: back to the sign-in page, and the page is closed again.
        browser.find_element(By.ID, "sign-out").click()
        wait.until(expected_conditions.url_to_be(base + "/signin"))
        browser.get(base + "/")
        wait.until(expected_conditions.url_to_be(base + "/signin"))
    finally:
        server.terminate()
        output, _ = server.communicate(timeout=20)
    assert server.returncode == 0, output
    assert "Traceback" not in output
    assert f"refused POST /api/alarms/{alarm_id}/ack from 127.0.0.1: cross-origin" in output


def _up(base: str, token: str) -> bool:
    try:
        return bool(get(f"{base}/api/health", token)["status"] == "ok")
    except OSError:
        return False
