"""The stores the operator commands read and write: the local SQLite store, or the deployed
AWS stack's DynamoDB tables and dead-letter queue (``--store dynamodb://PREFIX``).

A DynamoDB store is named by the Terraform ``name_prefix``: tables ``PREFIX-telemetry``,
``-devices``, ``-events``, ``-alarms``, ``-audit``, the queue ``PREFIX-dlq`` and the topic
``PREFIX-alarms``. Region, credentials and endpoint come from the standard AWS settings
(``AWS_REGION``/``AWS_DEFAULT_REGION``, ``AWS_PROFILE``, ``AWS_ENDPOINT_URL``), so the same
command reaches AWS, LocalStack or a moto server.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Protocol

from coldchain.config import AwsSettings, Settings
from coldchain.core.alarm_profile import AlarmProfile
from coldchain.core.audit import AuditLog
from coldchain.core.errors import ConfigurationError, NotFoundError, StorageError
from coldchain.core.ports import AlarmStore, DeviceStateStore, EventLog, ReadingStore

if TYPE_CHECKING:
    from coldchain.adapters.sqlite import SqliteDatabase
    from coldchain.apps.aws_ingest import AwsIngest

DYNAMODB_SCHEME: Final = "dynamodb://"
SQLITE_SCHEME: Final = "sqlite:///"
_PREFIX: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,200}")


class DeviceDirectory(Protocol):
    """The device list the CLI shows, and reading counts."""

    def devices(self) -> list[dict[str, Any]]: ...

    def count(self, device_id: str, start: datetime, end: datetime) -> int: ...


class AlarmRecords(AlarmStore, Protocol):
    def resolve(self, prefix: str) -> str: ...


@dataclass(frozen=True, slots=True)
class AwsTarget:
    """The deployed stack a ``dynamodb://`` store names, with its clients."""

    prefix: str
    clients: Any  # a factory: clients("sqs") -> a boto3 client

    def settings(self, profile: AlarmProfile) -> AwsSettings:
        """The names the Lambda gets from Terraform, found from the prefix."""
        sns = self.clients("sns")
        queue_url = self.queue_url()
        topic = f":{self.prefix}-alarms"
        from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415

        try:
            arns = [
                t["TopicArn"]
                for page in sns.get_paginator("list_topics").paginate()
                for t in page.get("Topics", [])
                if t["TopicArn"].endswith(topic)
            ]
        except (ClientError, BotoCoreError) as exc:
            raise StorageError(f"cannot list SNS topics: {exc}") from None
        return AwsSettings(
            telemetry_table=f"{self.prefix}-telemetry",
            devices_table=f"{self.prefix}-devices",
            events_table=f"{self.prefix}-events",
            dlq_url=queue_url,
            alarms_table=f"{self.prefix}-alarms",
            alarm_topic_arn=arns[0] if arns else "",
            alarm_profile=profile,
        )

    def queue_url(self) -> str:
        """The dead-letter queue's URL.

        Raises:
            NotFoundError: there is no such queue (or it cannot be seen with these credentials).
        """
        from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415

        try:
            url: str = self.clients("sqs").get_queue_url(QueueName=f"{self.prefix}-dlq")["QueueUrl"]
        except (ClientError, BotoCoreError) as exc:
            raise NotFoundError(f"no dead-letter queue {self.prefix}-dlq: {exc}") from None
        return url

    def ingest(self, profile: AlarmProfile) -> AwsIngest:
        from coldchain.apps.aws_ingest import aws_ingest  # noqa: PLC0415 - boto3 side only

        settings = self.settings(profile)
        return aws_ingest(
            settings, self.clients("dynamodb"), self.clients("sqs"), self.clients("sns")
        )


@dataclass(frozen=True, slots=True)
class OperatorStores:
    """One store's adapters behind the ports; ``database`` or ``aws`` says which it is."""

    readings: ReadingStore
    alarms: AlarmRecords
    events: EventLog
    states: DeviceStateStore
    audit: AuditLog
    directory: DeviceDirectory
    recorded_profile: Callable[[], AlarmProfile | None]
    unit_of_work: Callable[[], AbstractContextManager[object]]
    close: Callable[[], None]
    database: SqliteDatabase | None = None
    aws: AwsTarget | None = None

    @property
    def name(self) -> str:
        return f"{DYNAMODB_SCHEME}{self.aws.prefix}" if self.aws else "the local store"


@contextmanager
def _no_transaction() -> Iterator[None]:
    yield  # DynamoDB: each write stands alone (the ingest step orders them, core/ingest.py)


def dynamodb_prefix(url: str) -> str | None:
    """The prefix of a ``dynamodb://PREFIX`` store; None for a SQLite one.

    Raises:
        ConfigurationError: an unknown scheme or an unusable prefix.
    """
    if not url.startswith(DYNAMODB_SCHEME):
        if "://" in url and not url.startswith(SQLITE_SCHEME):
            raise ConfigurationError(
                f"unknown store {url!r}: use dynamodb://PREFIX or sqlite:///PATH (or --db PATH)"
            )
        return None
    prefix = url.removeprefix(DYNAMODB_SCHEME).strip("/")
    if not _PREFIX.fullmatch(prefix):
        raise ConfigurationError(f"bad store {url!r}: dynamodb://PREFIX, the Terraform name_prefix")
    return prefix


def sqlite_path(url: str) -> Path:
    return Path(url.removeprefix(SQLITE_SCHEME)) if url.startswith(SQLITE_SCHEME) else Path(url)


def open_stores(settings: Settings, store: str | None) -> OperatorStores:
    """The stores ``store`` names (``dynamodb://PREFIX``, ``sqlite:///PATH``), else the local
    SQLite store of ``settings``.

    Raises:
        ConfigurationError: an unknown store, or no local store at the path.
    """
    url = store or settings.store_url
    prefix = dynamodb_prefix(url) if url else None
    if prefix is not None:
        return _dynamodb_stores(prefix)
    if url:
        settings = settings.override(db_path=sqlite_path(url))
    return _sqlite_stores(settings)


def _sqlite_stores(settings: Settings) -> OperatorStores:
    from coldchain.adapters.sqlite import (  # noqa: PLC0415 - one backend's imports
        SqliteAlarmStore,
        SqliteAuditLog,
        SqliteDatabase,
        SqliteDeviceStateStore,
        SqliteEventStore,
        SqliteProfileRecord,
        SqliteReadingStore,
    )
    from coldchain.adapters.sqlite.queries import SqliteReadModel  # noqa: PLC0415

    if not settings.database.exists():
        raise ConfigurationError(f"no store at {settings.database} (start the stack first)")
    database = SqliteDatabase(settings.database)
    return OperatorStores(
        readings=SqliteReadingStore(database),
        alarms=SqliteAlarmStore(database),
        events=SqliteEventStore(database),
        states=SqliteDeviceStateStore(database),
        audit=SqliteAuditLog(database),
        directory=SqliteReadModel(database),
        recorded_profile=SqliteProfileRecord(database).remembered,
        unit_of_work=database.transaction,
        close=database.close,
        database=database,
    )


def _dynamodb_stores(prefix: str) -> OperatorStores:
    try:
        import boto3  # noqa: PLC0415 - the 'aws' extra, loaded only for a dynamodb:// store
        from botocore.exceptions import BotoCoreError  # noqa: PLC0415
    except ImportError:
        raise ConfigurationError(
            "a dynamodb:// store needs boto3: pip install 'coldchain[aws]'"
        ) from None

    from coldchain.adapters.dynamodb import (  # noqa: PLC0415
        DynamoAlarmStore,
        DynamoDeviceStateStore,
        DynamoEventStore,
        DynamoReadingStore,
    )
    from coldchain.adapters.dynamodb_audit import DynamoAuditLog  # noqa: PLC0415
    from coldchain.adapters.dynamodb_queries import DynamoReadModel  # noqa: PLC0415

    session = boto3.session.Session()
    made: dict[str, Any] = {}

    def clients(service: str) -> Any:
        if service not in made:
            try:
                made[service] = session.client(service)  # type: ignore[call-overload]
            except BotoCoreError as exc:  # no region, a bad endpoint or profile
                raise ConfigurationError(
                    f"cannot reach AWS {service}: {exc} (set AWS_REGION, AWS_PROFILE or "
                    "AWS_ENDPOINT_URL)"
                ) from None
        return made[service]

    dynamodb = clients("dynamodb")
    telemetry, devices = f"{prefix}-telemetry", f"{prefix}-devices"
    return OperatorStores(
        readings=DynamoReadingStore(dynamodb, telemetry, devices, record_latest=False),
        alarms=DynamoAlarmStore(dynamodb, f"{prefix}-alarms"),
        events=DynamoEventStore(dynamodb, f"{prefix}-events"),
        states=DynamoDeviceStateStore(dynamodb, devices),
        audit=DynamoAuditLog(dynamodb, f"{prefix}-audit"),
        directory=DynamoReadModel(dynamodb, telemetry, devices),
        # The Lambda's profile is Terraform's alarm_profile_file (by default the built-in
        # one, terraform/alarm-profile.json): give the same file with --profile.
        recorded_profile=lambda: None,
        unit_of_work=_no_transaction,
        close=lambda: None,
        aws=AwsTarget(prefix, clients),
    )
