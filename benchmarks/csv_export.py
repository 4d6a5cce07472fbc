"""`coldchain telemetry --format csv` on 100,000 and 1,000,000 readings of one device: the
export streams, so peak memory stays flat as the export grows tenfold.

    python -m benchmarks.csv_export --rows 100000 1000000
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from benchmarks.report import process_usage, write_section
from coldchain.adapters.sqlite import SqliteDatabase
from coldchain.core.timestamps import to_canonical


def fill(path: Path, rows: int) -> tuple[str, str]:
    db = SqliteDatabase(path)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    with db.transaction():
        db.connection.executemany(
            "INSERT INTO readings (device_id, ts, fleet_id, temperature_c, humidity_pct, "
            "shock_g, battery_pct, latitude, longitude, firmware_version, seq) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (
                (
                    "reefer-0001",
                    to_canonical(start + timedelta(seconds=10 * i)),
                    "f",
                    4.0 + (i % 40) / 10,
                    60.0,
                    0.02,
                    90.0,
                    52.52,
                    13.40,
                    "2.1.4",
                    i,
                )
                for i in range(rows)
            ),
        )
        last = to_canonical(start + timedelta(seconds=10 * (rows - 1)))
        db.connection.execute(
            "INSERT INTO devices VALUES ('reefer-0001', 'f', ?, ?, ?)",
            (to_canonical(start), last, rows),
        )
    db.close()
    return to_canonical(start), last


def export(home: Path, start: str, end: str, target: Path) -> tuple[float, float, int]:
    began = time.perf_counter()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "coldchain",
            "--home",
            str(home),
            "telemetry",
            "reefer-0001",
            "--from",
            start,
            "--to",
            end,
            "--format",
            "csv",
            "-o",
            str(target),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    peak = 0
    while process.poll() is None:
        try:
            peak = max(peak, process_usage(process.pid)[1])
        except (FileNotFoundError, ProcessLookupError, IndexError):
            break
        time.sleep(0.05)
    elapsed = time.perf_counter() - began
    if process.returncode != 0:
        raise SystemExit("export failed")
    lines = sum(1 for _ in target.open()) - 1
    return elapsed, peak / 1024, lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    args = parser.parse_args()
    table = [
        "| readings | rows written | time | rate | peak RSS of the export process |",
        "|---|---|---|---|---|",
    ]
    for rows in args.rows:
        with tempfile.TemporaryDirectory(prefix="coldchain-csv-") as tmp:
            home = Path(tmp)
            start, end = fill(home / "coldchain.db", rows)
            elapsed, peak_mib, lines = export(home, start, end, home / "out.csv")
        table.append(
            f"| {rows:,} | {lines:,} | {elapsed:.1f} s | {lines / elapsed:,.0f} rows/s "
            f"| {peak_mib:.0f} MiB |"
        )
    write_section(
        "csv-export",
        "Streaming CSV export",
        "\n".join(table)
        + "\n\nThe export reads through a cursor in pages of 1,000 rows and writes "
        "as it reads: peak memory is the interpreter plus one page, whatever the export's size.",
    )


if __name__ == "__main__":
    main()
