"""The audit trail in DynamoDB: one item per record, keyed by subject and sequence.

Appends are conditional (``attribute_not_exists``), so a record is never overwritten and two
writers cannot both take the next sequence number. Two indexes serve the reads
that are not by subject: ``kind-subject`` (only a subject's first record carries ``kind``, so
listing shipments reads one item per shipment) and ``log-at`` (every record, newest first;
audit writes are rare, so one partition is enough).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Final

from botocore.exceptions import BotoCoreError, ClientError

from coldchain.adapters.dynamodb import pages, storage_error
from coldchain.core.audit import AuditRecord, record_from_document
from coldchain.core.errors import StateConflictError
from coldchain.core.timestamps import to_canonical

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

AUDIT_PK: Final = "subject"
AUDIT_SK: Final = "seq"
AUDIT_KIND_INDEX: Final = "kind-subject"
AUDIT_KIND: Final = "kind"
AUDIT_TIME_INDEX: Final = "log-at"
AUDIT_LOG: Final = "log"
AUDIT_AT: Final = "at_key"
_LOG: Final = "audit"


class DynamoAuditLog:
    """See :class:`coldchain.core.audit.AuditLog`."""

    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self._client = client
        self._table = table

    def append(self, record: AuditRecord) -> None:
        item: dict[str, AttributeValueTypeDef] = {
            AUDIT_PK: {"S": record.subject},
            AUDIT_SK: {"N": str(record.seq)},
            AUDIT_LOG: {"S": _LOG},
            AUDIT_AT: {"S": f"{to_canonical(record.at)}#{record.subject}#{record.seq:010d}"},
            "document": {"S": json.dumps(record.document(), separators=(",", ":"))},
        }
        if record.seq == 1:
            item[AUDIT_KIND] = {"S": record.subject.split("/", 1)[0]}
        try:
            self._client.put_item(
                TableName=self._table,
                Item=item,
                ConditionExpression="attribute_not_exists(#s)",
                ExpressionAttributeNames={"#s": AUDIT_PK},
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                raise StateConflictError(f"{record.subject}: record {record.seq} exists") from None
            raise storage_error(exc, "put_item") from exc
        except BotoCoreError as exc:
            raise storage_error(exc, "put_item") from exc

    def history(self, subject: str) -> list[AuditRecord]:
        return self._query(
            KeyConditionExpression="#s = :s",
            ExpressionAttributeNames={"#s": AUDIT_PK},
            ExpressionAttributeValues={":s": {"S": subject}},
            ConsistentRead=True,
        )

    def subjects(self, prefix: str) -> list[str]:
        kind = prefix.split("/", 1)[0]
        found = self._query(
            IndexName=AUDIT_KIND_INDEX,
            KeyConditionExpression="#k = :k AND begins_with(#s, :p)",
            ExpressionAttributeNames={"#k": AUDIT_KIND, "#s": AUDIT_PK},
            ExpressionAttributeValues={":k": {"S": kind}, ":p": {"S": prefix}},
        )
        return sorted({record.subject for record in found})

    def recent(self, limit: int) -> list[AuditRecord]:
        return self._query(
            IndexName=AUDIT_TIME_INDEX,
            KeyConditionExpression="#l = :l",
            ExpressionAttributeNames={"#l": AUDIT_LOG},
            ExpressionAttributeValues={":l": {"S": _LOG}},
            ScanIndexForward=False,
            Limit=limit,
            limit=limit,
        )

    def _query(self, limit: int | None = None, **request: Any) -> list[AuditRecord]:
        """Every page of a Query (at most ``limit`` records)."""
        out: list[AuditRecord] = []
        for page in pages(self._client.query, {"TableName": self._table, **request}, "query"):
            out += [record_from_document(json.loads(i["document"]["S"])) for i in page["Items"]]
            if limit is not None and len(out) >= limit:
                break
        return out if limit is None else out[:limit]
