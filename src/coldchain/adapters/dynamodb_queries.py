"""Read-side queries over the DynamoDB tables for the operator CLI (the counterpart of
``sqlite.queries.SqliteReadModel``). No Scan: the device list reads the sparse
``registry-device`` index for the ids (KEYS_ONLY) and the items by BatchGetItem.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final, cast

from coldchain.adapters.dynamodb import (
    DEVICES_PK,
    DEVICES_REGISTRY_INDEX,
    DEVICES_REGISTRY_KEY,
    DEVICES_REGISTRY_VALUE,
    TELEMETRY_PK,
    TELEMETRY_SK,
    item_reading,
    pages,
    translated,
)
from coldchain.core.reading import READING_FIELDS
from coldchain.core.timestamps import to_canonical

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

_BATCH_GET: Final = 100  # BatchGetItem takes at most 100 keys
_ROW_KEYS: Final = frozenset({"device_id", "timestamp", "fleet_id"})


class DynamoReadModel:
    """The device list and counts; see :class:`coldchain.apps.operator_stores.DeviceDirectory`."""

    def __init__(self, client: DynamoDBClient, telemetry_table: str, devices_table: str) -> None:
        self._client = client
        self._telemetry = telemetry_table
        self._devices = devices_table

    def device_ids(self) -> list[str]:
        """Every device that has stored a reading, from the registry index."""
        request: dict[str, Any] = {
            "TableName": self._devices,
            "IndexName": DEVICES_REGISTRY_INDEX,
            "KeyConditionExpression": "#k = :k",
            "ExpressionAttributeNames": {"#k": DEVICES_REGISTRY_KEY},
            "ExpressionAttributeValues": {":k": {"S": DEVICES_REGISTRY_VALUE}},
        }
        found = pages(self._client.query, request, "query")
        return sorted(str(item[DEVICES_PK]["S"]) for page in found for item in page["Items"])

    def devices(self) -> list[dict[str, Any]]:
        """Every device with its newest reading, first and last time and reading count (the
        same rows as the SQLite read model).
        """
        rows = [self._row(item) for item in self._items(self.device_ids())]
        return sorted(rows, key=lambda row: str(row["device_id"]))

    def _items(self, device_ids: Sequence[str]) -> list[Any]:
        items: list[Any] = []
        with translated("batch_get_item"):
            for start in range(0, len(device_ids), _BATCH_GET):
                keys = [{DEVICES_PK: {"S": d}} for d in device_ids[start : start + _BATCH_GET]]
                request: dict[str, Any] = {self._devices: {"Keys": keys}}
                while request:
                    answer = self._client.batch_get_item(RequestItems=request)
                    items += answer["Responses"].get(self._devices, [])
                    request = cast("dict[str, Any]", answer.get("UnprocessedKeys") or {})
        return [item for item in items if "last_ts" in item]

    @staticmethod
    def _row(item: Any) -> dict[str, Any]:
        reading = item_reading(item)
        row: dict[str, Any] = {
            "device_id": reading.device_id,
            "fleet_id": reading.fleet_id,
            "first_ts": str(item.get("first_ts", item["last_ts"])["S"]),
            "last_ts": reading.timestamp,
            "readings": int(item["readings"]["N"]) if "readings" in item else 0,
        }
        # The newest reading's values, in the model's order (the SQLite read model's columns).
        shown = (name for name in READING_FIELDS if name not in _ROW_KEYS)
        return row | {name: getattr(reading, name) for name in shown}

    def count(self, device_id: str, start: datetime, end: datetime) -> int:
        """Readings of one device in ``[start, end]`` (a COUNT query: it reads the range)."""
        request: dict[str, Any] = {
            "TableName": self._telemetry,
            "KeyConditionExpression": "#pk = :d AND #ts BETWEEN :start AND :end",
            "ExpressionAttributeNames": {"#pk": TELEMETRY_PK, "#ts": TELEMETRY_SK},
            "ExpressionAttributeValues": {
                ":d": {"S": device_id},
                ":start": {"S": to_canonical(start)},
                ":end": {"S": to_canonical(end)},
            },
            "Select": "COUNT",
        }
        return sum(
            int(page.get("Count", 0)) for page in pages(self._client.query, request, "query")
        )
