"""The fuzz corpus through the real broker and worker: the worker never dies, nothing is lost."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.fuzz_corpus import corpus
from tests.stack import Stack, reading_body, wait_until


def test_hostile_payloads_never_kill_the_worker(stack: Stack) -> None:
    worker = stack.start_worker()
    device = stack.device("dev-1")
    payloads = corpus(300)
    device.publish_all(payloads)
    marker = reading_body("dev-1", 999_999, at=datetime.now(UTC) - timedelta(minutes=1))
    device.publish_all([marker])  # a good reading behind them

    def accounted() -> int:
        stored = stack.count()
        attempts = stack.rows("SELECT coalesce(sum(attempts), 0) FROM dead_letters")[0][0]
        return stored + int(attempts)

    wait_until(lambda: accounted() == len(payloads) + 1, 60, "every message accounted for")
    assert worker.poll() is None
    assert stack.count("readings", "seq = 999999") == 1
    assert "Traceback" not in stack.worker_log()
