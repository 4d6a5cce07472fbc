"""The simulator's payloads: one reading per message, or a batch from the buffer's head.

A batch is the format :mod:`coldchain.core.batches` expands on the pipeline's side::

    {"device_id":"reefer-0001","readings":[{"timestamp":...,"temperature_c":...},...]}

Its readings leave out ``device_id`` (the batch's applies to each), and it holds at most
:data:`~coldchain.core.batches.MAX_READINGS` readings and
:data:`~coldchain.core.batches.MAX_BYTES` bytes, counted on the encoded payload. Pure: no I/O.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from itertools import islice

from coldchain.core.batches import MAX_BYTES, MAX_READINGS
from coldchain.core.reading import Reading

_COMPACT = (",", ":")


def encode_reading(reading: Reading) -> bytes:
    """One reading as one message (the original simulator's payload)."""
    return json.dumps(reading.to_wire()).encode()


def encode_batch(device_id: str, readings: Iterable[Reading], limit: int) -> tuple[int, bytes]:
    """The first readings that fit in one batch, and how many that is.

    At most ``limit`` readings (capped at MAX_READINGS), fewer if the next one would take
    the payload past MAX_BYTES. A reading is always taken first, whatever its size, so that
    the caller makes progress (a reading is far smaller than the limit: validation refuses
    one above 16 KB).

    Raises:
        ValueError: ``readings`` is empty.
    """
    head = b'{"device_id":' + json.dumps(device_id).encode() + b',"readings":['
    tail = b"]}"
    size = len(head) + len(tail)
    parts: list[bytes] = []
    for reading in islice(readings, min(limit, MAX_READINGS)):
        wire = reading.to_wire()
        if wire["device_id"] == device_id:
            del wire["device_id"]
        part = json.dumps(wire, separators=_COMPACT).encode()
        grown = size + len(part) + (1 if parts else 0)  # the comma
        if parts and grown > MAX_BYTES:
            break
        parts.append(part)
        size = grown
    if not parts:
        raise ValueError("a batch needs at least one reading")
    return len(parts), head + b",".join(parts) + tail
