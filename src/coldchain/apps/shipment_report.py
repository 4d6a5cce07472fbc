"""The shipment report as a release document: what QA reads and signs.

The report is one canonical JSON document (:func:`build`): shipment identity, route, profile
and its rules, per-device and overall figures, excursions with units, alarm acknowledgements
with their comments, the decision and signature block, who generated it, when and with which
version, and warnings. Its SHA-256 (:func:`checksum`) is printed on every page of the PDF and
the document itself is attached to the PDF, so ``coldchain report verify FILE`` can check a
later copy: the attached document still hashes to the printed checksum, and the pages still
say what rendering that document says (an edited page, or an edited attachment, is refused).
"""

from __future__ import annotations

import hashlib
import html
import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fpdf import FPDF

from coldchain.apps.render import decision_document, shipment_document
from coldchain.apps.reports import summary_document
from coldchain.core.alarm_profile import AlarmProfile
from coldchain.core.alarms import Alarm, peak_unit
from coldchain.core.audit import AuditRecord
from coldchain.core.rules import UNITS
from coldchain.core.shipments import Shipment
from coldchain.core.timestamps import parse_iso, to_canonical
from coldchain.core.trip import TripSummary

ATTACHMENT: Final = "coldchain-report.json"
FORMAT: Final = 1


def build(
    shipment: Shipment,
    trips: Mapping[str, TripSummary | None],
    alarms: Sequence[Alarm],
    acknowledgements: Mapping[str, list[AuditRecord]],
    history: Sequence[AuditRecord],
    profile: AlarmProfile,
    generated_by: str,
    generated_at: datetime,
    version: str,
    zone: str,
) -> dict[str, Any]:
    """The report's data; times canonical UTC, durations in seconds."""
    end = shipment.ended_at or generated_at
    devices: list[dict[str, Any]] = []
    for device_id in shipment.devices:
        trip = trips.get(device_id)
        if trip is None:
            devices.append({"device_id": device_id, "readings": {"received": 0}})
            continue
        document = summary_document(trip)
        for excursion in document["excursions"]:
            rule = profile.rule(excursion["rule"])
            excursion["unit"] = "" if rule is None else UNITS[rule.metric]
        devices.append(document)
    warnings = []
    if shipment.started_at is None:
        warnings.append("the shipment has not started: there is nothing to report yet")
    if shipment.ended_at is None:
        warnings.append(
            f"the shipment has not ended: figures up to {to_canonical(generated_at)} only"
        )
    if shipment.planned_end is not None and shipment.planned_end > generated_at:
        warnings.append("the planned end lies in the future")
    for device in devices:
        received = device["readings"]["received"]
        if not received:
            warnings.append(f"{device['device_id']}: no readings in the shipment's window")
            continue
        missing = device["readings"].get("missing_by_seq") or 0
        if missing:
            warnings.append(f"{device['device_id']}: {missing} readings missing (seq gaps)")
        for excursion in device["excursions"]:
            if excursion["end"] is None:
                warnings.append(f"{device['device_id']}: excursion {excursion['rule']} still open")
    if profile.name != shipment.profile:
        warnings.append(
            f"evaluated with profile {profile.name!r}; the shipment was created under "
            f"{shipment.profile!r}"
        )
    decision = shipment.decision
    return {
        "format": FORMAT,
        "shipment": {
            **{k: v for k, v in shipment_document(shipment).items() if k != "decision"},
            "window": {
                "from": _canonical(shipment.started_at),
                "to": to_canonical(end),
            },
        },
        "profile": {
            "name": profile.name,
            "band": list(profile.band),
            "rules": [
                {"name": r.name, "severity": r.severity.value, "condition": r.describe()}
                for r in profile.rules
            ],
        },
        "devices": devices,
        "overall": _overall(devices),
        "alarms": [
            {
                "id": a.id,
                "device_id": a.device_id,
                "rule": a.rule,
                "severity": a.severity.value,
                "state": a.state.value,
                "started_at": to_canonical(a.started_at),
                "cleared_at": _canonical(a.cleared_at),
                "peak": a.peak,
                "unit": peak_unit(a),
                "acknowledgements": _acknowledgements(a, acknowledgements.get(a.id, [])),
            }
            for a in alarms
        ],
        "decision": decision_document(decision),
        "audit": [
            {
                "seq": r.seq,
                "action": r.action,
                "by": r.by,
                "at": to_canonical(r.at),
                "why": r.reason,
            }
            for r in history
            if r.action != "report issued"  # issuing this report is not part of it
        ],
        "warnings": warnings,
        "generated": {
            "at": to_canonical(generated_at),
            "by": generated_by,
            "software": f"coldchain {version}",
            "zone": zone,
        },
    }


def _acknowledgements(alarm: Alarm, records: Sequence[AuditRecord]) -> list[dict[str, str]]:
    """Every acknowledgement in the audit trail; the record's own when the trail has none
    (acknowledged before the trail existed, or the alarm re-keyed by a late reading).
    """
    found = [{"by": r.by, "at": to_canonical(r.at), "comment": r.reason} for r in records]
    first = alarm.acknowledgement
    if not found and first is not None:
        found = [{"by": first.by, "at": to_canonical(first.at), "comment": first.comment}]
    return found


def _canonical(moment: datetime | None) -> str | None:
    return None if moment is None else to_canonical(moment)


def _overall(devices: list[dict[str, Any]]) -> dict[str, Any]:
    measured = [d for d in devices if d["readings"]["received"]]
    if not measured:
        return {"received": 0}
    return {
        "received": sum(d["readings"]["received"] for d in measured),
        "expected": sum(d["readings"]["expected_by_interval"] for d in measured),
        "missing_by_seq": sum(d["readings"].get("missing_by_seq") or 0 for d in measured),
        "min_c": min(d["temperature_c"]["min"] for d in measured),
        "max_c": max(d["temperature_c"]["max"] for d in measured),
        "highest_mkt_c": max(d["temperature_c"]["mkt"] for d in measured),
        "time_in_range_s": sum(d["time_s"]["in_range"] for d in measured),
        "time_above_s": sum(d["time_s"]["above"] for d in measured),
        "time_below_s": sum(d["time_s"]["below"] for d in measured),
        "excursions": sum(len(d["excursions"]) for d in measured),
    }


def canonical_json(document: Mapping[str, Any]) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def checksum(document: Mapping[str, Any]) -> str:
    """SHA-256 of the canonical JSON of the report's data."""
    return hashlib.sha256(canonical_json(document)).hexdigest()


# -- what the pages say -----------------------------------------------------------------------


def _when(text: str | None, zone: tzinfo | None) -> str:
    if text is None:
        return "-"
    return parse_iso(text).astimezone(zone).strftime("%Y-%m-%d %H:%M:%S %Z")


def _span(seconds: float) -> str:
    minutes = round(seconds / 60)
    return f"{minutes // 60} h {minutes % 60:02d} min"


def sections(document: Mapping[str, Any], zone: tzinfo | None) -> list[tuple[str, list[str]]]:
    """The report as titled blocks of lines: the PDF and the HTML say the same."""
    shipment, profile = document["shipment"], document["profile"]
    overall, decision = document["overall"], document["decision"]
    lines = [
        f"Shipment: {shipment['id']}",
        f"Product: {shipment['product']}",
        f"Route: {shipment['origin']} -> {shipment['destination']}",
        f"Devices: {', '.join(shipment['devices'])}",
        f"Planned: {_when(shipment['planned_start'], zone)} to "
        f"{_when(shipment['planned_end'], zone)}",
        f"Actual: {_when(shipment['started_at'], zone)} to {_when(shipment['ended_at'], zone)}",
    ]
    rules = [f"Profile: {profile['name']}"] + [
        f"{r['name']} ({r['severity']}): {r['condition']}" for r in profile["rules"]
    ]
    figures = []
    if overall["received"]:
        figures.append(
            f"All devices: {overall['received']} readings received, {overall['expected']} "
            f"expected, {overall['missing_by_seq']} missing by seq; min {overall['min_c']:.2f} °C,"
            f" max {overall['max_c']:.2f} °C, highest MKT {overall['highest_mkt_c']:.2f} °C; "
            f"in range {_span(overall['time_in_range_s'])}, above "
            f"{_span(overall['time_above_s'])}, below {_span(overall['time_below_s'])}"
        )
    for device in document["devices"]:
        readings = device["readings"]
        if not readings["received"]:
            figures.append(f"{device['device_id']}: no readings")
            continue
        t = device["temperature_c"]
        s = device["time_s"]
        figures.append(
            f"{device['device_id']}: {readings['received']} received, "
            f"{readings['expected_by_interval']} expected, "
            f"{readings.get('missing_by_seq') or 0} missing by seq; min {t['min']:.2f} °C, "
            f"max {t['max']:.2f} °C, mean {t['mean']:.2f} °C, MKT {t['mkt']:.2f} °C; in range "
            f"{_span(s['in_range'])} ({s['percent_in_range']:.1f} %), above "
            f"{_span(s['above'])}, below {_span(s['below'])}"
        )
    figures.append(
        "MKT per USP <1160> (dH/R = 10,000 K), each reading weighted by the time it stands "
        "for, capped at the profile's max gap."
    )
    excursions = [
        f"{d['device_id']}: {e['rule']} ({e['severity']}) from {_when(e['start'], zone)} to "
        f"{_when(e['end'], zone) if e['end'] else 'still open'}, {_span(e['duration_s'])}, "
        f"peak {e['peak']:g} {e['unit']}"
        for d in document["devices"]
        if d["readings"]["received"]
        for e in d["excursions"]
    ] or ["none"]
    alarms = []
    for a in document["alarms"]:
        alarms.append(
            f"{a['device_id']}: {a['rule']} ({a['severity']}, {a['state']}) from "
            f"{_when(a['started_at'], zone)}, peak {a['peak']:g} {a['unit']}, alarm {a['id']}"
        )
        alarms += [
            f"    acknowledged by {k['by']} at {_when(k['at'], zone)}: {k['comment']}"
            for k in a["acknowledgements"]
        ] or ["    not acknowledged"]
    if decision is None:
        signature = ["Decision: pending decision"]
    else:
        signature = [
            f"Decision: {decision['decision'].upper()} - {decision['meaning']}",
            f"Reason: {decision['reason']}",
            f"Signed: {decision['by']} at {_when(decision['at'], zone)}",
        ]
    trail = [
        f"{r['seq']}. {_when(r['at'], zone)} {r['action']} by {r['by']}"
        + (f": {r['why']}" if r["why"] else "")
        for r in document["audit"]
    ]
    generated = document["generated"]
    return [
        ("Shipment", lines),
        ("Alarm profile", rules),
        ("Figures", figures),
        ("Excursions", excursions),
        ("Alarms and acknowledgements", alarms or ["none"]),
        ("Warnings", document["warnings"] or ["none"]),
        ("Release decision", signature),
        ("Audit trail of the shipment", trail or ["none"]),
        (
            "Generated",
            [
                f"At {_when(generated['at'], zone)} by {generated['by']} with "
                f"{generated['software']}; times in {generated['zone']}",
            ],
        ),
    ]


def render_html(document: Mapping[str, Any], zone: tzinfo | None) -> str:
    digest = checksum(document)
    body = "".join(
        f"<h2>{html.escape(title)}</h2><ul>"
        + "".join(f"<li>{html.escape(line)}</li>" for line in lines)
        + "</ul>"
        for title, lines in sections(document, zone)
    )
    title = html.escape(f"Shipment report {document['shipment']['id']}")
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
        "<style>body{font:14px sans-serif;margin:2rem}li{margin:.2rem 0}</style></head>"
        f"<body><h1>{title}</h1>{body}<p>SHA-256 of the report data: <code>{digest}</code></p>"
        "</body></html>\n"
    )


class _Pdf(FPDF):
    def __init__(self, heading: str, digest: str) -> None:
        super().__init__(orientation="P", unit="mm", format="A4")
        self.heading, self.digest = heading, digest

    def header(self) -> None:
        self.set_font("Helvetica", "B", 9)
        self.cell(0, 6, self.heading, new_x="LMARGIN", new_y="NEXT")
        self.ln(2)

    def footer(self) -> None:
        self.set_y(-14)
        self.set_font("Helvetica", size=7)
        self.cell(0, 4, f"page {self.page_no()} of {{nb}}", new_x="LMARGIN", new_y="NEXT")
        self.cell(0, 4, f"SHA-256 {self.digest}")


def render_pdf(document: Mapping[str, Any], zone: tzinfo | None, path: Path) -> None:
    """The PDF, with the report's data attached (what `report verify` checks)."""
    digest = checksum(document)
    shipment = document["shipment"]
    pdf = _Pdf(f"Shipment report {shipment['id']} - {shipment['product']}", digest)
    pdf.set_creation_date(parse_iso(document["generated"]["at"]))  # the same bytes each time
    pdf.set_auto_page_break(auto=True, margin=18)
    pdf.add_page()
    for title, lines in sections(document, zone):
        pdf.set_font("Helvetica", "B", 11)
        pdf.cell(0, 7, title, new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("Helvetica", size=9)
        for line in lines:
            pdf.multi_cell(0, 4.5, line, new_x="LMARGIN", new_y="NEXT")
        pdf.ln(2)
    pdf.embed_file(bytes=canonical_json(document), basename=ATTACHMENT, desc="report data")
    pdf.output(str(path))


def verify(path: Path) -> tuple[str, str]:
    """Check a report PDF; returns its checksum and the shipment's id.

    Raises:
        ValueError: not a coldchain report, or altered (the reason says how).
    """
    from pypdf import PdfReader  # noqa: PLC0415 - only this command reads PDFs

    try:
        reader = PdfReader(path)
        attached = reader.attachments.get(ATTACHMENT)
    except Exception as exc:
        raise ValueError(f"{path} is not a readable PDF: {exc}") from None
    if not attached:
        raise ValueError(f"{path} carries no coldchain report data")
    try:
        document = json.loads(attached[0])
    except ValueError:
        raise ValueError("the attached report data is not JSON: altered") from None
    digest = checksum(document)
    pages = [page.extract_text() for page in reader.pages]
    if not all(f"SHA-256 {digest}" in text for text in pages):
        raise ValueError("the attached data does not match the checksum printed on the pages")
    zone = zone_named(document["generated"]["zone"])
    with tempfile.TemporaryDirectory() as folder:
        again = Path(folder) / "again.pdf"
        render_pdf(document, zone, again)
        expected = again.read_bytes()
    # Rendering is deterministic (the creation date is the generation time), so an issued
    # report is byte for byte what its data renders to: a stamped, annotated or edited page
    # is refused, not only changed text. (A report rendered by another version of coldchain
    # or fpdf2 is refused too; verify with the version that issued it.)
    if expected != path.read_bytes():
        raise ValueError(
            "the file is not what its report data renders to: altered (or rendered by "
            f"another version than {document['generated']['software']})"
        )
    return digest, str(document["shipment"]["id"])


def zone_named(name: str) -> tzinfo:
    """An IANA zone (``Europe/Berlin``, ``UTC``).

    Raises:
        ValueError: no such zone.
    """
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r} (an IANA name, e.g. Europe/Berlin)") from None


def local_zone_name() -> str:
    """The machine's zone as an IANA name: ``TZ``, else /etc/localtime's target, else UTC."""
    candidates = [os.environ.get("TZ", "").lstrip(":")]
    localtime = Path("/etc/localtime")
    if localtime.is_symlink():
        candidates.append(str(localtime.resolve()).partition("zoneinfo/")[2])
    for name in candidates:
        if name:
            try:
                zone_named(name)
            except ValueError:
                continue
            return name
    return "UTC"
