"""The dashboard in headless Chromium (Debian's chromium + chromedriver, driven by Selenium),
against a store filled by a short simulated run."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

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
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)


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
        wait_until(lambda: _up(base), 20, "the dashboard listening")
        browser.get(base + "/")
        wait = WebDriverWait(browser, 20)
        wait.until(expected_conditions.text_to_be_present_in_element((By.ID, "device-count"), "6"))
        temperatures = browser.find_elements(By.CSS_SELECTOR, "#w-heartbeat td.temperature")
        assert len(temperatures) == 6
        assert all(t.text.endswith("°C") for t in temperatures)
        for widget in ("w-ingest", "w-trend", "w-battery"):
            assert browser.find_elements(By.CSS_SELECTOR, f"#{widget} svg, #{widget} table")
        assert browser.find_elements(By.CSS_SELECTOR, "#w-trend svg polygon")  # min-max bands
        assert browser.find_element(By.ID, "dlq-depth").text == "0"
        button = wait.until(
            expected_conditions.element_to_be_clickable((By.CSS_SELECTOR, "#w-alarms button.ack"))
        )
        alarm_id = button.get_attribute("data-id")
        button.click()
        prompt = wait.until(expected_conditions.alert_is_present())
        prompt.send_keys("checked by the browser test")
        prompt.accept()

        def acknowledged() -> bool:
            alarms = get(f"{base}/api/alarms?active=true")
            found = [a for a in alarms if a["id"] == alarm_id]
            return bool(found and found[0]["acknowledgement"])

        wait_until(acknowledged, 15, "the acknowledgement stored")
        [stored] = [a for a in get(f"{base}/api/alarms") if a["id"] == alarm_id]
        assert stored["acknowledgement"]["comment"] == "checked by the browser test"
        wait.until(
            expected_conditions.text_to_be_present_in_element(
                (By.CSS_SELECTOR, f'tr[data-alarm="{alarm_id}"]'), "checked by the browser test"
            )
        )
        ARTIFACTS.mkdir(exist_ok=True)
        assert browser.save_screenshot(str(ARTIFACTS / "dashboard.png"))
        # The device page: its readings chart and its alarms.
        device = stack.rows("SELECT device_id FROM devices ORDER BY device_id")[0][0]
        browser.get(f"{base}/#/device/{device}")
        wait.until(
            expected_conditions.presence_of_element_located((By.CSS_SELECTOR, "#d-chart svg"))
        )
        assert device in browser.find_element(By.ID, "d-title").text
        assert browser.save_screenshot(str(ARTIFACTS / "dashboard-device.png"))
    finally:
        server.terminate()
        server.communicate(timeout=20)


def _up(base: str) -> bool:
    try:
        return bool(get(f"{base}/api/health")["status"] == "ok")
    except OSError:
        return False
