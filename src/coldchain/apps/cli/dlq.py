"""`coldchain dlq list|replay`: dead letters in the local store, or in the deployed stack's
SQS queue (``--store dynamodb://PREFIX``), where four kinds of message land (see
adapters/queued_dead_letters.py). Replay sends them through the same ingest step as the
worker or the Lambda; a message leaves the queue only once it is stored or dead-lettered
again with its new reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from coldchain.apps.cli.context import stores_of
from coldchain.apps.cli.options import DB_OPTION, LIST_FORMAT, PROFILE_OPTION, STORE_OPTION
from coldchain.apps.cli.profile import chosen_profile
from coldchain.apps.cli.tables import add_row, echo_documents, keep_whole, local, plain
from coldchain.apps.operator_stores import AwsTarget, OperatorStores
from coldchain.core.alarm_profile import AlarmProfile
from coldchain.core.errors import NotFoundError
from coldchain.core.messages import Message, Outcome
from coldchain.core.timestamps import parse_iso, to_canonical

_PREVIEW = 500


@click.group()
def dlq() -> None:
    """Dead letters: what could not be stored, and why."""


@dlq.command("list")
@click.option("--limit", type=click.IntRange(1, 100_000), default=50, show_default=True)
@LIST_FORMAT
@DB_OPTION
@STORE_OPTION
@click.pass_context
def dlq_list(ctx: click.Context, limit: int, output: str, db: Path | None) -> None:
    """Dead letters with their reasons (the local store: newest first; the AWS queue: as
    SQS hands them out, each of its four kinds read).

    Example: coldchain dlq list --format json
    """
    stores = stores_of(ctx, db)
    try:
        documents = _queued(stores.aws, limit) if stores.aws else _stored(stores, limit)
    finally:
        stores.close()
    if output in ("json", "csv"):
        echo_documents(output, documents)
        return
    table = Table(title=f"{len(documents)} dead letters")
    for column in ("id", "kind", "topic", "received", "attempts", "reason"):
        table.add_column(column)
    for d in documents:
        add_row(
            table,
            str(d["id"]),
            str(d["kind"]),
            str(d["topic"]),
            local(parse_iso(str(d["received_at"]))),
            str(d["attempts"]),
            str(d["reason"]),
        )
    Console().print(keep_whole(table, "id", "topic"))


def _stored(stores: OperatorStores, limit: int) -> list[dict[str, Any]]:
    from coldchain.adapters.sqlite import SqliteDeadLetterStore  # noqa: PLC0415

    assert stores.database is not None
    store = SqliteDeadLetterStore(stores.database)
    letters = store.list(limit)
    for drop in store.dropped():  # on stderr, so the JSON on stdout keeps its shape
        click.echo(
            f"dropped from {plain(drop.device_id)}: {drop.over_quota} over its quota, "
            f"{drop.expired} past the retention (last {drop.last_dropped_at})",
            err=True,
        )
    return [
        {
            "id": s.id,
            "kind": s.letter.kind.value,
            "topic": s.letter.topic,
            "received_at": to_canonical(s.letter.received_at),
            "reason": s.letter.reason,
            "attempts": s.attempts,
            "size": s.size,
            "sha256": s.sha256,
            "truncated": s.truncated,
            "payload": s.letter.payload.decode("utf-8", "replace")[:_PREVIEW],
        }
        for s in letters
    ]


def _queued(target: AwsTarget, limit: int) -> list[dict[str, Any]]:
    """The queue's messages, read and shown again at once (listing consumes nothing)."""
    from coldchain.adapters.queued_dead_letters import parse_queued  # noqa: PLC0415
    from coldchain.adapters.sqs import SqsDeadLetterQueue  # noqa: PLC0415

    queue = SqsDeadLetterQueue(target.clients("sqs"), target.queue_url(), hold_s=30)
    received = queue.receive(limit)
    try:
        documents = []
        for r in received:
            letter = parse_queued(r.body, r.sent_at, r.kind)
            pointer = letter.pointer
            payload = letter.messages[0].payload if letter.messages else b""
            documents.append(
                {
                    "id": r.message_id,
                    "kind": letter.format.value,
                    "topic": letter.topic,
                    "received_at": to_canonical(
                        letter.messages[0].received_at if letter.messages else r.sent_at
                    ),
                    "reason": letter.reason,
                    "attempts": r.receive_count,
                    "readings": pointer.batch_size if pointer else len(letter.messages),
                    "kinesis": None
                    if pointer is None
                    else {
                        "stream": pointer.stream_arn,
                        "shard": pointer.shard_id,
                        "first_sequence": pointer.first_sequence,
                        "last_sequence": pointer.last_sequence,
                    },
                    "payload": payload.decode("utf-8", "replace")[:_PREVIEW],
                }
            )
    finally:
        queue.release(received)
    return documents


@dlq.command("replay")
@click.option("--id", "letter_id", default=None, help="One dead letter (its id in the list).")
@click.option("--all", "replay_all", is_flag=True, help="Every dead letter.")
@PROFILE_OPTION
@DB_OPTION
@STORE_OPTION
@click.pass_context
def dlq_replay(
    ctx: click.Context,
    letter_id: str | None,
    replay_all: bool,
    profile_path: Path | None,
    db: Path | None,
) -> None:
    """Send dead letters through the ingest step again (after a fix), with the worker's
    profile (on AWS: --profile, else the built-in one Terraform deploys); alarms and
    notifications follow as if they had arrived now. Those that fail again are dead-lettered
    again with the new reason; a Kinesis failure record is replayed from the stream while it
    keeps the records.

    Example: coldchain dlq replay --all
    """
    if (letter_id is None) == (not replay_all):
        raise click.UsageError("give --id ID or --all")
    stores = stores_of(ctx, db)
    try:
        profile = chosen_profile(stores, profile_path)
        if stores.aws is not None:
            summary = _replay_queue(stores.aws, profile, letter_id)
        else:
            summary = _replay_stored(stores, profile, letter_id)
    finally:
        stores.close()
    click.echo(summary)


def _replay_stored(stores: OperatorStores, profile: AlarmProfile, letter_id: str | None) -> str:
    from coldchain.adapters.sqlite import SqliteDeadLetterStore  # noqa: PLC0415
    from coldchain.apps.local_ingest import local_ingest  # noqa: PLC0415

    database = stores.database
    assert database is not None
    letters_store = SqliteDeadLetterStore(database)
    ingest = local_ingest(database, profile)
    if letter_id is not None:
        if not letter_id.isdigit():
            raise click.BadParameter(f"{letter_id!r} is not a dead letter id", param_hint="--id")
        one = letters_store.get(int(letter_id))
        if one is None:
            raise NotFoundError(f"no dead letter {letter_id}")
        targets = [one]
    else:
        targets = letters_store.list(limit=10_000_000)
    recovered = 0
    with Progress(console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task("replaying", total=len(targets))
        for stored in targets:
            letter = stored.letter
            progress.advance(task)
            if stored.truncated:  # only its first 4 KiB were kept: nothing to replay
                continue
            message = Message(letter.topic, letter.payload, letter.received_at)
            with database.transaction():
                [result] = ingest.run([message], datetime.now(UTC)).results
                if result.outcome in (Outcome.STORED, Outcome.DUPLICATE):
                    letters_store.delete(stored.id)
                    recovered += 1
    return f"replayed {len(targets)}: {recovered} stored, {len(targets) - recovered} still failing"


def _replay_queue(target: AwsTarget, profile: AlarmProfile, letter_id: str | None) -> str:
    """Each queue message through the Lambda's ingest step: deleted when its readings were
    stored or dead-lettered again (a new message with the new reason), kept otherwise (a
    store failure, an unknown message, a Kinesis pointer past the stream's retention).
    """
    from coldchain.adapters.kinesis_records import fetch_records  # noqa: PLC0415
    from coldchain.adapters.queued_dead_letters import (  # noqa: PLC0415
        parse_queued,
        rule_output_messages,
    )
    from coldchain.adapters.sqs import Received, SqsDeadLetterQueue  # noqa: PLC0415

    queue = SqsDeadLetterQueue(target.clients("sqs"), target.queue_url())
    wired = target.ingest(profile)
    received = queue.receive(10_000_000)
    chosen = [r for r in received if letter_id in (None, r.message_id)]
    if letter_id is not None and not chosen:
        queue.release(received)
        raise NotFoundError(f"no dead letter {letter_id} in {target.prefix}-dlq")
    kept: list[Received] = [r for r in received if r not in chosen]
    stored = again = 0
    notes: list[str] = []
    try:
        for r in chosen:
            letter = parse_queued(r.body, r.sent_at, r.kind)
            messages: Sequence[Message] = letter.messages
            if letter.pointer is not None:
                records = fetch_records(target.clients("kinesis"), letter.pointer)
                if records is None:
                    notes.append(f"{r.message_id}: its records are no longer in the stream")
                    kept.append(r)
                    continue
                messages = rule_output_messages(records)
            if not messages:
                notes.append(f"{r.message_id}: nothing to replay ({letter.reason})")
                kept.append(r)
                continue
            done = wired.ingest.run_retrying(list(messages), datetime.now(UTC))
            outcomes = [result.outcome for result in done.results]
            stored += sum(o in (Outcome.STORED, Outcome.DUPLICATE) for o in outcomes)
            again += sum(o in (Outcome.REJECTED, Outcome.CONFLICT) for o in outcomes)
            queue.delete(r)
    finally:
        queue.release(kept)
    for note in notes:
        click.echo(note, err=True)
    return (
        f"replayed {len(chosen) - len(notes)} of {len(chosen)} messages: {stored} readings "
        f"stored, {again} dead-lettered again, {len(notes)} kept"
    )
