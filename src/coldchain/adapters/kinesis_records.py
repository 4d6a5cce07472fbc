"""Kinesis records by sequence number (boto3 client, injected): what a Kinesis failure record
in the dead-letter queue points at, fetched while the stream still keeps it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final

from botocore.exceptions import BotoCoreError, ClientError

from coldchain.adapters.queued_dead_letters import KinesisPointer
from coldchain.core.errors import StorageUnavailableError

if TYPE_CHECKING:
    from mypy_boto3_kinesis.client import KinesisClient

_GONE: Final = frozenset({"ResourceNotFoundException", "InvalidArgumentException"})
_MAX_CALLS: Final = 1000


def fetch_records(
    client: KinesisClient, pointer: KinesisPointer
) -> list[tuple[bytes, datetime]] | None:
    """The records from the pointer's first to its last sequence number, with their arrival
    times; None when the stream no longer holds them (past its retention, or deleted).

    Raises:
        StorageUnavailableError: Kinesis could not be read (try again).
    """
    stream = pointer.stream_arn.rsplit("/", 1)[-1]
    try:
        first, last = int(pointer.first_sequence), int(pointer.last_sequence)
    except ValueError:
        return None  # a pointer without sequence numbers points at nothing
    found: list[tuple[bytes, datetime]] = []
    first_seen: int | None = None
    last_seen = False
    try:
        iterator: str | None = client.get_shard_iterator(
            StreamName=stream,
            ShardId=pointer.shard_id,
            ShardIteratorType="AT_SEQUENCE_NUMBER",
            StartingSequenceNumber=pointer.first_sequence,
        )["ShardIterator"]
        for _ in range(_MAX_CALLS):
            if iterator is None:
                break
            page = client.get_records(ShardIterator=iterator, Limit=1000)
            records = page["Records"]
            for record in records:
                sequence = int(record["SequenceNumber"])
                if sequence > last:
                    iterator = None
                    break
                last_seen = last_seen or sequence == last
                first_seen = sequence if first_seen is None else first_seen
                found.append(
                    (record["Data"], record["ApproximateArrivalTimestamp"].astimezone(UTC))
                )
            else:
                if not records and page.get("MillisBehindLatest", 0) == 0:
                    break
                iterator = page.get("NextShardIterator")
    except ClientError as exc:
        if exc.response["Error"]["Code"] in _GONE:
            return None
        raise StorageUnavailableError(f"Kinesis read failed: {exc}") from exc
    except BotoCoreError as exc:
        raise StorageUnavailableError(f"Kinesis read failed: {exc}") from exc
    # Whole or nothing: the first ones trimmed, or the end never reached, is not the batch.
    return found if first_seen == first and last_seen else None
