"""1,000 simulated devices, each with its own certificate and TLS connection, publishing at
a 10 s interval for 2 minutes through the local broker and worker: connect time, CPU,
memory, readings sent vs stored.

    python -m benchmarks.simulator_fleet --devices 1000 --interval 10 --duration 120
"""

from __future__ import annotations

import argparse
import re
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.report import process_usage, write_section
from coldchain.adapters.mosquitto import BrokerConfig, MosquittoProcess
from coldchain.adapters.pki import LocalPki
from tests.stack import free_port


def run(devices: int, interval: float, duration: float) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="coldchain-bench-") as tmp:
        home = Path(tmp)
        pki = LocalPki(home / "pki")
        pki.init()
        began = time.perf_counter()
        for n in range(1, devices + 1):
            pki.issue_device(f"reefer-{n:04d}")
        issue_s = time.perf_counter() - began
        port = free_port()
        broker = MosquittoProcess(BrokerConfig(home / "broker", pki, port=port))
        broker.start()
        base = [sys.executable, "-m", "coldchain", "--home", str(home)]
        worker = subprocess.Popen(
            [*base, "worker", "--port", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(2)
        simulator = subprocess.Popen(
            [
                *base,
                "simulate",
                "--port",
                str(port),
                "--devices",
                str(devices),
                "--interval",
                f"{interval:g}",
                "--duration",
                f"{duration:g}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        peak_kib = 0
        cpu = 0.0
        while simulator.poll() is None:
            try:
                cpu, peak_kib = process_usage(simulator.pid)
            except (FileNotFoundError, ProcessLookupError, IndexError):
                break
            time.sleep(1)
        _, err = simulator.communicate()
        broker_cpu, broker_peak = process_usage(broker.pid or 0)
        time.sleep(3)
        worker.terminate()
        worker.wait(60)
        with sqlite3.connect(home / "coldchain.db") as conn:
            stored = conn.execute("SELECT count(*) FROM readings").fetchone()[0]
        broker.stop()
    summary = err.strip().splitlines()[-1] if err.strip() else ""
    if "acknowledged" not in summary:
        raise SystemExit(f"the simulator failed: {err.strip()[-2000:]}")
    numbers = dict(re.findall(r"(sampled|acknowledged|dropped|refused|reconnects) (\d+)", summary))
    connect_ms = float(re.search(r"connect ([\d.]+) ms", summary).group(1))  # type: ignore[union-attr]
    all_connected = re.search(r"all connected after ([\d.]+) s", summary)
    return {
        "devices": devices,
        "interval": interval,
        "duration": duration,
        "issue_s": issue_s,
        "sampled": int(numbers["sampled"]),
        "acked": int(numbers["acknowledged"]),
        "stored": stored,
        "dropped": int(numbers["dropped"]),
        "reconnects": int(numbers["reconnects"]),
        "connect_ms": connect_ms,
        "all_connected_s": float(all_connected.group(1)) if all_connected else float("nan"),
        "cpu_s": cpu,
        "cpu_share": cpu / duration,
        "peak_mib": peak_kib / 1024,
        "broker_cpu_s": broker_cpu,
        "broker_peak_mib": broker_peak / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--devices", type=int, nargs="+", default=[1000])
    parser.add_argument("--interval", type=float, default=10.0)
    parser.add_argument("--duration", type=float, default=120.0)
    args = parser.parse_args()
    rows = [run(n, args.interval, args.duration) for n in args.devices]
    table = [
        "| devices | interval | run | all connected after | mean TCP+TLS connect | readings sampled"
        " / acknowledged / stored | simulator CPU | simulator peak RSS | broker CPU | broker"
        " peak RSS |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        table.append(
            f"| {r['devices']:,} | {r['interval']:g} s | {r['duration']:g} s "
            f"| {r['all_connected_s']:.1f} s | {r['connect_ms']:.1f} ms "
            f"| {r['sampled']:,} / {r['acked']:,} / {r['stored']:,} "
            f"| {r['cpu_s']:.1f} s ({100 * r['cpu_share']:.0f} % of one core) "
            f"| {r['peak_mib']:.0f} MiB | {r['broker_cpu_s']:.1f} s "
            f"| {r['broker_peak_mib']:.0f} MiB |"
        )
    lost = [r for r in rows if r["stored"] != r["sampled"]]
    verdict = (
        "Every sampled reading was acknowledged and stored exactly once."
        if not lost
        else f"Readings missing in {len(lost)} run(s): see the table."
    )
    write_section(
        "simulator-fleet",
        "Simulated fleet through the local stack",
        "\n".join(table) + f"\n\n{verdict} Certificates were issued before the run "
        f"({rows[0]['issue_s']:.1f} s for {rows[0]['devices']:,}). The simulator runs every device "
        "in one thread (one paho client and one TLS socket each, driven by a selector); devices "
        "connect one after another at start, then publish spread evenly over the interval.",
    )


if __name__ == "__main__":
    main()
