"""Property-based: whatever arrives, processing never raises and accounts for every message."""

from __future__ import annotations

import json
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coldchain.adapters.memory import MemoryDeadLetterStore, MemoryReadingStore
from coldchain.core.messages import Message, Outcome
from coldchain.core.processing import Processor
from coldchain.core.topics import telemetry_topic
from tests.factories import T0
from tests.fuzz_corpus import corpus, deep, json_values, near_valid

ARRIVAL = T0 + timedelta(minutes=1)
FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def account(payloads: list[bytes], topic: str = telemetry_topic("dev-1")) -> None:
    readings, letters = MemoryReadingStore(), MemoryDeadLetterStore()
    processor = Processor(readings, letters)
    results = [processor.process(Message(topic, p, ARRIVAL)) for p in payloads]
    assert [r.message.payload for r in results] == payloads
    for result in results:
        assert result.outcome in set(Outcome)
        if result.outcome in (Outcome.REJECTED, Outcome.CONFLICT):
            assert result.reason
        if result.outcome is Outcome.STORED:
            assert result.reading is not None
    stored = sum(r.outcome is Outcome.STORED for r in results)
    assert len(list(readings.between("dev-1", "0", "9"))) == stored
    dead = sum(r.outcome in (Outcome.REJECTED, Outcome.CONFLICT) for r in results)
    assert sum(s.attempts for s in letters.list(limit=10**6)) == dead


@FAST
@given(st.lists(st.binary(max_size=300), max_size=5))
def test_arbitrary_bytes(payloads: list[bytes]) -> None:
    account(payloads)


@FAST
@given(st.lists(json_values, max_size=5))
def test_arbitrary_json(values: list[object]) -> None:
    account([json.dumps(v).encode() for v in values])


@FAST
@given(st.lists(near_valid(), min_size=1, max_size=5))
def test_near_valid_payloads(payloads: list[bytes]) -> None:
    account(payloads)


@FAST
@given(st.text(max_size=40))
def test_arbitrary_topics(topic: str) -> None:
    account([json.dumps({"device_id": "dev-1"}).encode()], topic=topic)


def test_deep_nesting_and_the_fixed_corpus() -> None:
    account([deep(100_000), *corpus(400)])
