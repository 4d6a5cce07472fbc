"""Shipment reports: JSON (the summary), CSV (the raw readings), HTML and PDF (summary,
chart with the band and excursions shaded, excursion table).
"""

from __future__ import annotations

import csv
import html
import itertools
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Final

from coldchain.core.reading import READING_FIELDS, Reading
from coldchain.core.timestamps import to_canonical
from coldchain.core.trip import TripSummary

if TYPE_CHECKING:
    from fpdf import FPDF

CSV_FIELDS: Final = READING_FIELDS  # one column per field of Reading, in its order
CHART_POINTS: Final = 400


def summary_document(trip: TripSummary) -> dict[str, Any]:
    """Every figure of the summary, times in canonical UTC, durations in seconds."""
    return {
        "device_id": trip.device_id,
        "fleet_id": trip.fleet_id,
        "window": {"from": to_canonical(trip.window_start), "to": to_canonical(trip.window_end)},
        "first_reading": to_canonical(trip.first_reading),
        "last_reading": to_canonical(trip.last_reading),
        "readings": {
            "received": trip.received,
            "interval_s": trip.interval.total_seconds(),
            "expected_by_interval": trip.expected_by_interval,
            "expected_by_seq": trip.expected_by_seq,
            "missing_by_seq": trip.missing_seq,
            "missing_seq_ranges": [list(r) for r in trip.missing_ranges],
        },
        "temperature_c": {
            "min": trip.minimum,
            "max": trip.maximum,
            "mean": round(trip.mean, 3),
            "mkt": round(trip.mkt, 3),
            "band": [trip.band_low, trip.band_high],
        },
        "time_s": {
            "in_range": trip.time_in_range.total_seconds(),
            "above": trip.time_above.total_seconds(),
            "below": trip.time_below.total_seconds(),
            "percent_in_range": round(trip.percent_in_range, 2),
        },
        "excursions": [
            {
                "rule": e.rule,
                "severity": e.severity,
                "start": to_canonical(e.started_at),
                "end": None if e.ended_at is None else to_canonical(e.ended_at),
                "duration_s": e.duration.total_seconds(),
                "peak": e.peak,
            }
            for e in trip.excursions
        ],
        "verdict": trip.verdict,
    }


def write_csv(readings: Iterable[Reading], out: IO[str]) -> int:
    """Stream readings as CSV; returns how many were written."""
    writer = csv.writer(out)
    writer.writerow(CSV_FIELDS)
    count = 0
    for reading in readings:
        writer.writerow(
            ["" if getattr(reading, f) is None else getattr(reading, f) for f in CSV_FIELDS]
        )
        count += 1
    return count


def chart_points(readings: Sequence[Reading]) -> list[tuple[datetime, float, float]]:
    """(time, min, max) per bucket: at most CHART_POINTS buckets, true extremes kept."""
    if len(readings) <= CHART_POINTS:
        return [(r.at, r.temperature_c, r.temperature_c) for r in readings]
    size = -(-len(readings) // CHART_POINTS)
    out = []
    for i in range(0, len(readings), size):
        chunk = readings[i : i + size]
        temps = [r.temperature_c for r in chunk]
        out.append((chunk[0].at, min(temps), max(temps)))
    return out


def _scales(
    trip: TripSummary, width: float, height: float, x0: float, y0: float
) -> tuple[Any, Any]:
    t0 = trip.window_start.timestamp()
    t1 = max(trip.window_end.timestamp(), t0 + 1)
    lo = min(trip.minimum, *trip.limits) - 1
    hi = max(trip.maximum, *trip.limits) + 1

    def x(moment: datetime) -> float:
        return x0 + (moment.timestamp() - t0) / (t1 - t0) * width

    def y(value: float) -> float:
        return y0 + (1 - (value - lo) / (hi - lo)) * height

    return x, y


def _rows(trip: TripSummary, zone: tzinfo | None, now: datetime) -> list[tuple[str, str]]:
    doc = summary_document(trip)
    readings = doc["readings"]
    seq = (
        f"{readings['missing_by_seq']} missing of {readings['expected_by_seq']} by seq"
        if readings["expected_by_seq"] is not None
        else "no seq"
    )
    return [
        ("Device", f"{trip.device_id} (fleet {trip.fleet_id or '-'})"),
        ("Window", f"{shown(trip.window_start, zone)} to {shown(trip.window_end, zone)}"),
        (
            "First / last reading",
            f"{shown(trip.first_reading, zone)} / {shown(trip.last_reading, zone)}",
        ),
        (
            "Readings",
            f"{trip.received} received, {trip.expected_by_interval} expected at "
            f"{trip.interval.total_seconds():g} s; {seq}",
        ),
        ("Min / max / mean", f"{trip.minimum:.2f} / {trip.maximum:.2f} / {trip.mean:.2f} °C"),
        ("Mean kinetic temperature", f"{trip.mkt:.2f} °C"),
        ("Band", trip.band_text),
        (
            "Time in range",
            f"{_hours(trip.time_in_range.total_seconds())} ({trip.percent_in_range:.1f} %)",
        ),
        (
            "Time above / below",
            f"{_hours(trip.time_above.total_seconds())} / "
            f"{_hours(trip.time_below.total_seconds())}",
        ),
        ("Verdict", trip.verdict),
        ("Warnings", "; ".join(report_warnings(trip, now)) or "none"),
    ]


def shown(moment: datetime | None, zone: tzinfo | None) -> str:
    """A time as the report shows it: 24-hour, in ``zone`` (UTC when None), with the zone."""
    if moment is None:
        return "-"
    return moment.astimezone(zone or UTC).strftime("%Y-%m-%d %H:%M:%S %Z")


def _zone_name(zone: tzinfo | None) -> str:
    return str(getattr(zone, "key", None) or zone or "UTC")


def report_warnings(trip: TripSummary, now: datetime) -> list[str]:
    """What a reader must not miss: a window that ends in the future, open excursions,
    missing readings.
    """
    out = []
    if trip.window_end > now:
        out.append("the window ends in the future: figures up to the last reading only")
    out += [f"excursion {e.rule} still open" for e in trip.excursions if e.ended_at is None]
    if trip.missing_seq:
        out.append(f"{trip.missing_seq} readings missing (seq gaps)")
    return out


def _hours(seconds: float) -> str:
    minutes = round(seconds / 60)
    return f"{minutes // 60} h {minutes % 60:02d} min"


def render_html(
    trip: TripSummary,
    readings: Sequence[Reading],
    zone: tzinfo | None = None,
    now: datetime | None = None,
) -> str:
    """A self-contained HTML page (inline SVG, no external assets); times in ``zone``."""
    now = now or datetime.now(UTC)
    width, height = 900.0, 260.0
    x, y = _scales(trip, width - 50, height - 30, 45, 10)
    shapes = []
    for e in trip.excursions:
        left, right = x(e.started_at), x(e.ended_at or trip.last_reading)
        shapes.append(
            f'<rect x="{left:.1f}" y="10" width="{max(right - left, 1):.1f}" '
            f'height="{height - 30}" fill="#f8514933"><title>{html.escape(e.rule)}</title></rect>'
        )
    for value in trip.limits:
        shapes.append(
            f'<line x1="45" x2="{width - 5}" y1="{y(value):.1f}" y2="{y(value):.1f}" '
            f'stroke="#d22" stroke-dasharray="5 3"/>'
            f'<text x="2" y="{y(value) + 4:.1f}">{value:g} °C</text>'
        )
    middle = trip.window_start + (trip.window_end - trip.window_start) / 2
    for moment, anchor in (
        (trip.window_start, "start"),
        (middle, "middle"),
        (trip.window_end, "end"),
    ):  # a time axis
        shapes.append(
            f'<text class="time" x="{x(moment):.1f}" y="{height - 4:.1f}" '
            f'text-anchor="{anchor}">{html.escape(shown(moment, zone))}</text>'
        )
    points = chart_points(readings)
    line = " ".join(f"{x(t):.1f},{y((lo + hi) / 2):.1f}" for t, lo, hi in points)
    band = (
        " ".join(f"{x(t):.1f},{y(hi):.1f}" for t, _, hi in points)
        + " "
        + " ".join(f"{x(t):.1f},{y(lo):.1f}" for t, lo, _ in reversed(points))
    )
    shapes.append(f'<polygon points="{band}" fill="#2f81f755"/>')
    shapes.append(f'<polyline points="{line}" fill="none" stroke="#2f81f7" stroke-width="1.2"/>')
    rows = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>"
        for k, v in _rows(trip, zone, now)
    )
    excursions = (
        "".join(
            f"<tr><td>{html.escape(e.rule)}</td><td>{e.severity}</td>"
            f"<td>{shown(e.started_at, zone)}</td><td>{shown(e.ended_at, zone)}</td>"
            f"<td>{_hours(e.duration.total_seconds())}</td><td>{e.peak:g}</td></tr>"
            for e in trip.excursions
        )
        or '<tr><td colspan="6">none</td></tr>'
    )
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>Shipment report {html.escape(trip.device_id)}</title>
<style>body{{font:14px sans-serif;margin:2rem}}table{{border-collapse:collapse}}
th,td{{text-align:left;padding:.2rem .6rem;border-bottom:1px solid #ddd}}
svg text{{font-size:10px;fill:#555}}</style>
</head><body><h1>Shipment report: {html.escape(trip.device_id)}</h1>
<table>{rows}</table>
<h2>Temperature over the trip</h2>
<svg viewBox="0 0 {width} {height}" width="100%">{"".join(shapes)}</svg>
<h2>Excursions</h2>
<table><tr><th>rule</th><th>severity</th><th>start</th><th>end</th><th>duration</th>
<th>peak °C</th></tr>{excursions}</table>
</body></html>
"""


def _a4() -> FPDF:
    from fpdf import FPDF  # noqa: PLC0415 - fpdf and fontTools: only for a PDF, not `telemetry`

    return FPDF(orientation="P", unit="mm", format="A4")


def render_pdf(
    trip: TripSummary,
    readings: Sequence[Reading],
    path: Path,
    zone: tzinfo | None = None,
    now: datetime | None = None,
) -> None:
    """A one- or two-page PDF for the QA file; times in ``zone``."""
    now = now or datetime.now(UTC)
    pdf = _a4()
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 16)
    pdf.cell(0, 10, f"Shipment report: {trip.device_id}", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", size=10)
    for key, value in _rows(trip, zone, now):
        pdf.set_font("Helvetica", "B", 10)
        pdf.cell(55, 6, key)
        pdf.set_font("Helvetica", size=10)
        pdf.cell(0, 6, value, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    pdf.set_font("Helvetica", "B", 12)
    pdf.cell(0, 8, "Temperature over the trip", new_x="LMARGIN", new_y="NEXT")
    left, top, width, height = 25.0, pdf.get_y() + 2, 170.0, 70.0
    x, y = _scales(trip, width, height, left, top)
    pdf.set_draw_color(150, 150, 150)
    pdf.rect(left, top, width, height)
    pdf.set_fill_color(255, 215, 215)
    for e in trip.excursions:
        start, end = x(e.started_at), x(e.ended_at or trip.last_reading)
        pdf.rect(start, top, max(end - start, 0.3), height, style="F")
    pdf.set_font("Helvetica", size=7)
    pdf.set_draw_color(210, 40, 40)
    for limit in trip.limits:
        pdf.line(left, y(limit), left + width, y(limit))
        pdf.text(left - 14, y(limit) + 1, f"{limit:g} °C")
    pdf.set_draw_color(40, 100, 220)
    points = chart_points(readings)
    for (t_a, lo_a, hi_a), (t_b, lo_b, hi_b) in itertools.pairwise(points):
        pdf.line(x(t_a), y((lo_a + hi_a) / 2), x(t_b), y((lo_b + hi_b) / 2))
        if hi_a != lo_a:
            pdf.line(x(t_a), y(lo_a), x(t_a), y(hi_a))
    pdf.text(left, top + height + 4, shown(trip.window_start, zone))
    pdf.text(left + width - 36, top + height + 4, shown(trip.window_end, zone))
    pdf.set_y(top + height + 8)
    pdf.set_font("Helvetica", "B", 12)
    pdf.cell(0, 8, "Excursions", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "B", 9)
    widths = (42, 18, 40, 40, 22, 18)
    for title, w in zip(
        ("rule", "severity", "start", "end", "duration", "peak °C"), widths, strict=True
    ):
        pdf.cell(w, 6, title, border="B")
    pdf.ln()
    pdf.set_font("Helvetica", size=9)
    if not trip.excursions:
        pdf.cell(0, 6, "none", new_x="LMARGIN", new_y="NEXT")
    for e in trip.excursions:
        cells = (
            e.rule,
            e.severity,
            shown(e.started_at, zone),
            shown(e.ended_at, zone),
            _hours(e.duration.total_seconds()),
            f"{e.peak:g}",
        )
        for text, w in zip(cells, widths, strict=True):
            pdf.cell(w, 6, text)
        pdf.ln()
    pdf.ln(3)
    pdf.set_font("Helvetica", "I", 8)
    pdf.multi_cell(
        0,
        4,
        "MKT per USP <1160> with dH/R = 10,000 K; each reading weighted by the time "
        f"it stands for (capped at the profile's max gap). Times in {_zone_name(zone)}.",
    )
    pdf.output(str(path))
