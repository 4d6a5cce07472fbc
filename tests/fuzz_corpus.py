"""Hostile and near-valid payloads, as hypothesis strategies and as a fixed corpus."""

from __future__ import annotations

import json
import random
from typing import Any

from hypothesis import strategies as st

from coldchain.core.timestamps import to_canonical
from tests.factories import T0

VALID: dict[str, Any] = {
    "device_id": "dev-1",
    "timestamp": to_canonical(T0),
    "temperature_c": 4.0,
    "humidity_pct": 60.0,
    "shock_g": 0.02,
    "battery_pct": 90.0,
}
EDGE_NUMBERS = [
    0,
    -0.0,
    -40,
    85,
    85.0000001,
    -40.0000001,
    100,
    100.5,
    200,
    1e308,
    -1e308,
    10**400,
    2**63,
    -(2**63) - 1,
    1e-320,
    0.1 + 0.2,
]
EDGE_TEXT = [
    "",
    " ",
    "dev-1",
    "dev 1",
    "dév-1",
    "dev-1\x00",
    "dev\n1",
    "x" * 129,
    "x" * 128,
    "../../etc",
    "$share/x",
    "+",
    "#",
    "\u202edev",
    "🧊",
]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@st.composite
def near_valid(draw: st.DrawFn) -> bytes:
    """A valid reading with one to three fields bent out of shape."""
    body = dict(VALID)
    for _ in range(draw(st.integers(1, 3))):
        key = draw(st.sampled_from([*VALID, "latitude", "longitude", "seq", "fleet_id"]))
        body[key] = draw(
            st.one_of(
                st.sampled_from(EDGE_NUMBERS),
                st.sampled_from(EDGE_TEXT),
                st.none(),
                st.booleans(),
                st.floats(),
                json_values,
            )
        )
    raw = json.dumps(body, allow_nan=True)
    if draw(st.booleans()):
        raw = raw[:-1] + ', "temperature_c": 3.0}'  # a duplicated key
    return raw.encode()


def deep(levels: int) -> bytes:
    return b'{"device_id": ' + b"[" * levels + b"]" * levels + b"}"


def corpus(size: int, seed: int = 7) -> list[bytes]:
    """A fixed, reproducible set of hostile payloads for the broker-level fuzz test."""
    rng = random.Random(seed)
    out = [
        b"",
        b"\x00\xff\xfe",
        b"null",
        b"[]",
        b"{}",
        b'"text"',
        b"1e999",
        deep(5000),
        json.dumps({**VALID, "temperature_c": float("nan")}).encode(),
        json.dumps({**VALID, "temperature_c": float("inf")}).encode(),
    ]
    seen = set(out)
    while len(out) < size:
        body = dict(VALID)
        key = rng.choice([*VALID, "latitude", "seq"])
        body[key] = rng.choice(EDGE_NUMBERS + EDGE_TEXT + [None, True, [1], {"a": 1}])
        body["seq"] = len(out)  # distinct readings: a repeat would be a duplicate, not a test
        for candidate in (
            json.dumps(body, allow_nan=True).encode(),
            bytes(rng.randrange(256) for _ in range(rng.randrange(1, 64))),
        ):
            if candidate not in seen:
                seen.add(candidate)
                out.append(candidate)
    return out[:size]
