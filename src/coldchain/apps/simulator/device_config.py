"""The device side of desired configuration (core.shadow), as the simulator plays it.

On connect the device asks for its shadow (``get``); from ``get/accepted`` and from every
``update/delta`` it applies the fields it knows (``interval_s``, ``band``, ``label``) and
reports what it now runs with, so the delta empties. Unknown fields are left unreported (they
stay in the delta, which is how an operator sees a device that cannot do what was asked).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Final

KNOWN: Final = ("interval_s", "band", "label")


@dataclass
class DeviceConfig:
    interval_s: float | None = None
    band: list[float] | None = None
    label: str | None = None
    applied: list[dict[str, Any]] = field(default_factory=list)  # each change, in order

    def on_message(self, suffix: str, payload: bytes) -> bytes | None:
        """Handle ``get/accepted`` or ``update/delta``; the ``update`` to publish, if any."""
        try:
            document = json.loads(payload)
        except ValueError:
            return None
        if not isinstance(document, dict):
            return None
        state = document.get("state") or {}
        if suffix == "get/accepted":
            state = state.get("delta") or {}
        elif suffix != "update/delta":
            return None
        change = {key: state[key] for key in KNOWN if key in state}
        if not change or not self._apply(change):
            return None
        self.applied.append(change)
        reported = {"interval_s": self.interval_s, "band": self.band, "label": self.label}
        return json.dumps({"state": {"reported": reported}}).encode()

    def _apply(self, change: dict[str, Any]) -> bool:
        interval = change.get("interval_s", self.interval_s)
        band = change.get("band", self.band)
        if interval is not None and not (isinstance(interval, int | float) and interval > 0):
            return False
        if band is not None and not (isinstance(band, list) and len(band) == 2):
            return False
        self.interval_s = None if interval is None else float(interval)
        self.band = band
        self.label = change.get("label", self.label)
        return True
