"""SQLite: the worker's batched insert against a bare ``executemany`` floor, and query latency
in a store of 100 devices x 7 days at a 10 s interval (about 6 million rows).

    python -m benchmarks.storage --devices 100 --days 7
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from benchmarks.report import write_section
from coldchain.adapters.sqlite import SqliteDatabase, SqliteReadingStore
from coldchain.core.reading import Reading
from coldchain.core.timestamps import to_canonical

BATCH = 500


def readings(device: str, count: int, start: datetime) -> list[Reading]:
    return [
        Reading(
            device,
            to_canonical(start + timedelta(seconds=10 * i)),
            4.0 + (i % 40) / 10,
            60.0,
            0.02,
            90.0,
            52.5,
            13.4,
            "fleet-1",
            "2.1.4",
            i,
        )
        for i in range(count)
    ]


def insert_rates(root: Path, count: int) -> tuple[float, float]:
    start = datetime(2024, 1, 1, tzinfo=UTC)
    rows = [r for d in range(10) for r in readings(f"dev-{d}", count // 10, start)]
    floor_db = SqliteDatabase(root / "floor.db")
    began = time.perf_counter()
    for i in range(0, len(rows), BATCH):
        with floor_db.transaction():
            floor_db.connection.executemany(
                "INSERT INTO readings VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                [
                    (
                        r.device_id,
                        r.timestamp,
                        r.fleet_id,
                        r.temperature_c,
                        r.humidity_pct,
                        r.shock_g,
                        r.battery_pct,
                        r.latitude,
                        r.longitude,
                        r.firmware_version,
                        r.seq,
                    )
                    for r in rows[i : i + BATCH]
                ],
            )
    floor = len(rows) / (time.perf_counter() - began)
    floor_db.close()
    db = SqliteDatabase(root / "worker.db")
    store = SqliteReadingStore(db)
    began = time.perf_counter()
    for i in range(0, len(rows), BATCH):
        with db.transaction():
            store.put_many(rows[i : i + BATCH])
    ours = len(rows) / (time.perf_counter() - began)
    db.close()
    return floor, ours


def fill(path: Path, devices: int, days: int) -> int:
    """Bulk load: the fleet index is dropped during the load and rebuilt after (the final
    store is the same), and the load does not fsync; only the queries are measured."""
    db = SqliteDatabase(path)
    db.connection.execute("PRAGMA synchronous=OFF")
    db.connection.execute("DROP INDEX readings_by_fleet")
    per_device = days * 8640
    start = datetime.now(UTC) - timedelta(days=days)
    total = 0
    for d in range(devices):
        device = f"reefer-{d:04d}"
        with db.transaction():
            db.connection.executemany(
                "INSERT INTO readings VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (
                    (
                        device,
                        to_canonical(start + timedelta(seconds=10 * i)),
                        "fleet-1",
                        4.0 + (i % 40) / 10,
                        60.0,
                        0.02,
                        90.0,
                        None,
                        None,
                        "2.1.4",
                        i,
                    )
                    for i in range(per_device)
                ),
            )
            last = to_canonical(start + timedelta(seconds=10 * (per_device - 1)))
            db.connection.execute(
                "INSERT INTO devices VALUES (?, 'fleet-1', ?, ?, ?)",
                (device, to_canonical(start), last, per_device),
            )
        total += per_device
    db.connection.execute("CREATE INDEX readings_by_fleet ON readings (fleet_id, ts)")
    db.close()
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--devices", type=int, default=100)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--insert-rows", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="coldchain-storage-") as tmp:
        root = Path(tmp)
        floor, ours = insert_rates(root, args.insert_rows)
        began = time.perf_counter()
        rows = fill(root / "big.db", args.devices, args.days)
        fill_s = time.perf_counter() - began
        db = SqliteDatabase(root / "big.db")
        store = SqliteReadingStore(db)
        end = datetime.now(UTC)
        day_ms = []
        for d in range(0, args.devices, max(1, args.devices // 10)):
            began = time.perf_counter()
            found = list(
                store.between(
                    f"reefer-{d:04d}", to_canonical(end - timedelta(days=1)), to_canonical(end)
                )
            )
            day_ms.append((time.perf_counter() - began) * 1000)
        latest_ms = []
        for _ in range(10):
            began = time.perf_counter()
            latest = store.latest()
            latest_ms.append((time.perf_counter() - began) * 1000)
        db.close()
    day, last = statistics.median(day_ms), statistics.median(latest_ms)
    body = "\n".join(
        [
            f"Insert, {args.insert_rows:,} readings of 10 devices in transactions of {BATCH}:",
            "",
            "| path | rows/s | share of the floor |",
            "|---|---|---|",
            f"| bare `executemany` (the floor) | {floor:,.0f} | 100 % |",
            f"| `SqliteReadingStore.put_many` (duplicate/conflict check per row, device summary "
            f"upsert) | {ours:,.0f} | {100 * ours / floor:.0f} % |",
            "",
            f"Queries on {rows:,} rows ({args.devices} devices x {args.days} days at 10 s; "
            f"filled in {fill_s:.0f} s), median of 10:",
            "",
            "| query | latency | target |",
            "|---|---|---|",
            f"| 24 h of one device ({len(found):,} readings, materialised) | {day:.1f} ms "
            "| < 50 ms |",
            f"| latest reading of all {len(latest)} devices | {last:.1f} ms | < 20 ms |",
        ]
    )
    write_section("storage", "Storage (SQLite)", body)


if __name__ == "__main__":
    main()
