"""The dashboard over 100 devices x 24 h of 10 s readings (864,000 rows): time until the page
shows every widget, the device page's 24 h chart, and the API calls behind them.

    python -m benchmarks.dashboard_render --devices 100 --hours 24
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

from argon2 import PasswordHasher
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from benchmarks.report import write_section
from coldchain.adapters.passwords import Argon2Passwords
from coldchain.adapters.sqlite import SqliteAlarmStore, SqliteDatabase
from coldchain.adapters.sqlite.auth import auth_path
from coldchain.apps.accounts import open_accounts
from coldchain.apps.dashboard.server import Dashboard, ServerConfig
from coldchain.core.alarms import Alarm, AlarmState, alarm_id
from coldchain.core.rules import Severity
from coldchain.core.timestamps import to_canonical
from coldchain.core.users import Role

USER = "bench"
PASSWORD = "benchmark password"


def fill(path: Path, devices: int, hours: float, interval_s: int) -> int:
    db = SqliteDatabase(path)
    now = datetime.now(UTC).replace(microsecond=0)
    steps = int(hours * 3600 / interval_s)
    start = now - timedelta(seconds=steps * interval_s)
    conn = db.connection
    with db.transaction():
        for d in range(1, devices + 1):
            device = f"reefer-{d:04d}"
            rows = [
                (
                    device,
                    to_canonical(start + timedelta(seconds=i * interval_s)),
                    "bench-fleet",
                    4.0 + (i % 37) / 10 + (6.0 if d % 10 == 0 and 3000 < i < 3100 else 0.0),
                    60.0,
                    0.02,
                    100 - i / steps * 20,
                    None,
                    None,
                    "2.1.4",
                    i,
                )
                for i in range(steps)
            ]
            conn.executemany(
                "INSERT INTO readings (device_id, ts, fleet_id, temperature_c, humidity_pct, "
                "shock_g, battery_pct, latitude, longitude, firmware_version, seq) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                rows,
            )
            conn.execute(
                "INSERT INTO devices VALUES (?, ?, ?, ?, ?)",
                (device, "bench-fleet", rows[0][1], rows[-1][1], steps),
            )
        SqliteAlarmStore(db).save(
            [
                Alarm(
                    alarm_id(f"reefer-{d:04d}", "TemperatureHigh30m", start),
                    f"reefer-{d:04d}",
                    "bench-fleet",
                    "TemperatureHigh30m",
                    Severity.CRITICAL,
                    AlarmState.ACTIVE,
                    start,
                    start,
                    None,
                    10.0,
                    timedelta(minutes=30),
                    "temperature_c > 8 °C for 30 min",
                )
                for d in range(10, devices + 1, 10)
            ]
        )
    db.close()
    return devices * steps


def browser(profile: Path) -> webdriver.Chrome:
    options = Options()
    options.binary_location = "/usr/bin/chromium"
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
        f"--user-data-dir={profile}",
    ):
        options.add_argument(flag)
    return webdriver.Chrome(
        service=Service(executable_path="/usr/bin/chromedriver"), options=options
    )


def timed_api(url: str, token: str, runs: int = 5) -> float:
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(request, timeout=60) as response:
            response.read()
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def sign_in(driver: webdriver.Chrome, base: str, devices: int) -> None:
    """Through the sign-in page, as a person would; the session cookie then stays."""
    driver.get(base + "/")
    WebDriverWait(driver, 30).until(lambda d: d.current_url == base + "/signin")
    driver.find_element(By.ID, "name").send_keys(USER)
    driver.find_element(By.ID, "password").send_keys(PASSWORD)
    driver.find_element(By.ID, "submit").click()
    WebDriverWait(driver, 60).until(
        lambda d: d.find_element(By.ID, "device-count").text == str(devices)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--devices", type=int, default=100)
    parser.add_argument("--hours", type=float, default=24)
    parser.add_argument("--interval", type=int, default=10)
    parser.add_argument(
        "--print-only", action="store_true", help="Print the figures; leave the docs alone."
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="coldchain-dash-") as tmp:
        path = Path(tmp) / "coldchain.db"
        began = time.perf_counter()
        rows = fill(path, args.devices, args.hours, args.interval)
        fill_s = time.perf_counter() - began
        # The sign-in hash at test cost: argon2's own cost is not what this measures.
        accounts = open_accounts(
            auth_path(path), Argon2Passwords(PasswordHasher(time_cost=1, memory_cost=8192))
        )
        accounts.add(USER, Role.VIEWER, PASSWORD)
        token = accounts.issue_token(USER, "benchmark")
        server = Dashboard(ServerConfig(path, accounts, host="127.0.0.1", port=0))
        thread = threading.Thread(target=server.serve, daemon=True)
        thread.start()
        while not server.server.started:
            time.sleep(0.02)
        base = server.url
        driver = browser(Path(tmp) / "chromium")
        try:
            sign_in(driver, base, args.devices)  # also the warm-up: Chromium's first start
            loads = []
            for _ in range(3):
                driver.get("about:blank")
                started = time.perf_counter()
                driver.get(base + "/")
                WebDriverWait(driver, 60).until(
                    lambda d: (
                        d.find_element(By.ID, "device-count").text == str(args.devices)
                        and len(d.find_elements(By.CSS_SELECTOR, "#w-trend svg polygon"))
                        >= args.devices
                        and len(d.find_elements(By.CSS_SELECTOR, "#w-heartbeat td.temperature"))
                        == args.devices
                        and len(d.find_elements(By.CSS_SELECTOR, "#w-alarms tr[data-alarm]")) >= 1
                    )
                )
                loads.append(time.perf_counter() - started)
            device_loads = []
            for _ in range(3):
                driver.get("about:blank")
                started = time.perf_counter()
                driver.get(base + "/#/device/reefer-0010")
                WebDriverWait(driver, 60).until(
                    lambda d: d.find_elements(By.CSS_SELECTOR, "#d-chart svg polyline")
                )
                device_loads.append(time.perf_counter() - started)
            api = {
                path: timed_api(base + path, token)
                for path in (
                    "/api/devices",
                    "/api/trend?hours=1&points=240",
                    "/api/ingest?minutes=60",
                    "/api/readings?device=reefer-0010&hours=24&points=300",
                )
            }
        finally:
            driver.quit()
            server.stop()
            thread.join(timeout=15)
            accounts.close()
    page = statistics.median(loads)
    device_page = statistics.median(device_loads)
    verdict = "within" if max(page, device_page) < 2.0 else "over"
    body = [
        f"Store: {rows:,} readings ({args.devices} devices x {args.hours:g} h at "
        f"{args.interval} s), filled in {fill_s:.1f} s.",
        "",
        "| what | median of 3 loads (headless Chromium, from navigation to every widget drawn) |",
        "|---|---|",
        f"| fleet page: 6 widgets, {args.devices} devices, trend of the last hour | {page:.2f} s |",
        f"| device page: 24 h chart (300 min/max buckets) and alarms | {device_page:.2f} s |",
        "",
        "| API call | median of 5 |",
        "|---|---|",
        *[f"| `{path}` | {seconds * 1000:.0f} ms |" for path, seconds in api.items()],
        "",
        f"Target: under 2 s. Result: {verdict} the target.",
    ]
    if args.print_only:
        print("\n".join(body))
        return
    write_section("dashboard", "Dashboard render, 100 devices x 24 h", "\n".join(body))


if __name__ == "__main__":
    main()
