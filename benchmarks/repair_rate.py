"""How often the late-reading repair path runs on the simulator's scenarios (outage replay
included): `coldchain up` with a simulated fleet (about 30 % faulty: compressor failure,
freezing, door open, rough road, low battery, a 30 s link outage), then the worker's totals.

    python -m benchmarks.repair_rate --devices 60 --interval 0.5 --duration 90
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.report import write_section
from coldchain.core.device_model import scenario_mix
from tests.stack import free_port

TOTALS = re.compile(r"totals: (.*?) \(pending")


def worker_totals(log: Path) -> dict[str, int]:
    """The last totals line of the worker's log, as numbers."""
    found = TOTALS.findall(log.read_text(errors="replace"))
    if not found:
        raise SystemExit(f"no totals line in {log}")
    return {k: int(v) for k, v in (pair.split("=") for pair in found[-1].split())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--devices", type=int, default=60)
    parser.add_argument("--interval", type=float, default=0.5)
    parser.add_argument("--duration", type=float, default=90.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="coldchain-repairs-") as folder:
        home = Path(folder)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "coldchain",
                "up",
                "--data-dir",
                str(home),
                "--devices",
                str(args.devices),
                "--interval",
                str(args.interval),
                "--duration",
                str(args.duration),
                "--port",
                str(free_port()),
                "--no-dashboard",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            timeout=args.duration + 300,
        )
        totals = worker_totals(home / "logs" / "worker.log")
    mix = scenario_mix(args.devices)
    scenarios = ", ".join(f"{s.value} {mix.count(s)}" for s in sorted(set(mix)))
    applied = totals.get("stored", 0) + totals.get("duplicate", 0)
    repairs = totals.get("repairs", 0)
    body = "\n".join(
        [
            f"Fleet: {args.devices} devices ({scenarios}), one reading each "
            f"{args.interval:g} s for {args.duration:g} s, through the broker to one worker.",
            "",
            "| readings stored | duplicates | repairs (late readings) | repairs per reading |",
            "|---|---|---|---|",
            f"| {totals.get('stored', 0):,} | {totals.get('duplicate', 0):,} | {repairs} | "
            f"{repairs / max(applied, 1):.4%} |",
            "",
            "A repair is a device whose state a late reading (older than its last applied one,"
            " not a redelivery) made the worker rebuild from a bounded window; a device's first"
            " sight is not counted.",
        ]
    )
    write_section("repair-rate", "How often the late-reading path runs", body)


if __name__ == "__main__":
    main()
