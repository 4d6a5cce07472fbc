"""The audit trail: append-only records of who did what, when and why.

Every change to a shipment, every alarm acknowledgement and every release decision is a
record here. Records are never updated or deleted: a correction is a new record that names
the one it corrects (``corrects``), the idea of an audit trail in 21 CFR Part 11 and EU GMP
Annex 11. Each subject (``shipment/<id>``, ``alarm/<id>``) has its own sequence, and a store
appends a record only if its ``(subject, seq)`` is new, so two writers cannot both append the
"next" record: the loser reloads and decides again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from coldchain.core.timestamps import parse_iso, to_canonical


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One thing that happened to one subject."""

    subject: str  # "shipment/SH-1", "alarm/3f2a9c1b7d0e"
    seq: int  # 1, 2, ... within the subject
    action: str  # "created", "started", "ended", "decided", "acknowledged", ...
    by: str
    at: datetime
    reason: str = ""
    data: Mapping[str, Any] = field(default_factory=dict)
    corrects: int | None = None  # the seq of the record this one corrects

    def document(self) -> dict[str, Any]:
        """JSON-ready, for the stores, the API and the CLI."""
        return {
            "subject": self.subject,
            "seq": self.seq,
            "action": self.action,
            "by": self.by,
            "at": to_canonical(self.at),
            "reason": self.reason,
            "data": dict(self.data),
            "corrects": self.corrects,
        }


def record_from_document(document: Mapping[str, Any]) -> AuditRecord:
    return AuditRecord(
        subject=str(document["subject"]),
        seq=int(document["seq"]),
        action=str(document["action"]),
        by=str(document["by"]),
        at=parse_iso(str(document["at"])),
        reason=str(document.get("reason", "")),
        data=dict(document.get("data") or {}),
        corrects=None if document.get("corrects") is None else int(document["corrects"]),
    )


class AuditLog(Protocol):
    """Append-only; see the module docstring."""

    def append(self, record: AuditRecord) -> None:
        """Add ``record``.

        Raises:
            StateConflictError: the subject already has a record with that ``seq``.
        """
        ...

    def history(self, subject: str) -> list[AuditRecord]:
        """The subject's records, oldest first."""
        ...

    def subjects(self, prefix: str) -> list[str]:
        """Every subject starting with ``prefix`` (``shipment/``), sorted."""
        ...

    def recent(self, limit: int) -> list[AuditRecord]:
        """The newest records of every subject, newest first."""
        ...


def next_record(
    history: list[AuditRecord],
    subject: str,
    action: str,
    by: str,
    at: datetime,
    reason: str = "",
    data: Mapping[str, Any] | None = None,
    corrects: int | None = None,
) -> AuditRecord:
    """The record that follows ``history`` (the subject's records so far)."""
    return AuditRecord(subject, len(history) + 1, action, by, at, reason, data or {}, corrects)
