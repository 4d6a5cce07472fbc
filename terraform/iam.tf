# ---------------------------------------------------------------------------------------------
# The processor functions' role: exact table, queue, stream and key ARNs.
# ---------------------------------------------------------------------------------------------
data "aws_iam_policy_document" "lambda_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

data "aws_iam_policy_document" "processor" {
  # Per table, exactly the calls the handlers make (a test runs every Lambda path on moto and
  # compares): readings are written once and read back only by a late reading's repair.
  statement {
    sid       = "Telemetry"
    actions   = ["dynamodb:PutItem", "dynamodb:Query"]
    resources = [aws_dynamodb_table.telemetry.arn]
  }

  # Each device's state: read per batch, written conditionally; the sweep scans the devices.
  statement {
    sid       = "Devices"
    actions   = ["dynamodb:BatchGetItem", "dynamodb:UpdateItem", "dynamodb:Scan"]
    resources = [aws_dynamodb_table.devices.arn]
  }

  statement {
    sid       = "Events"
    actions   = ["dynamodb:PutItem"]
    resources = [aws_dynamodb_table.events.arn]
  }

  # Alarm records; DeleteItem only here (a late reading re-keys an occurrence). No Scan: the
  # sweep reads the sparse index of active alarms.
  statement {
    sid       = "Alarms"
    actions   = ["dynamodb:PutItem", "dynamodb:GetItem", "dynamodb:DeleteItem"]
    resources = [aws_dynamodb_table.alarms.arn]
  }

  statement {
    sid     = "AlarmIndexes"
    actions = ["dynamodb:Query"]
    resources = [
      "${aws_dynamodb_table.alarms.arn}/index/device-started",
      "${aws_dynamodb_table.alarms.arn}/index/active-started",
    ]
  }

  statement {
    sid       = "AlarmNotifications"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.alarms.arn]
  }

  statement {
    sid       = "DeadLetters"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.dlq.arn]
  }

  statement {
    sid       = "DataKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.data.arn]
  }

  statement {
    sid       = "Logs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = [for group in concat([aws_cloudwatch_log_group.processor, aws_cloudwatch_log_group.sweeper], aws_cloudwatch_log_group.kinesis) : "${group.arn}:*"]
  }

  statement {
    sid = "Tracing"
    # X-Ray's PutTraceSegments and PutTelemetryRecords take no resource ARN.
    actions   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
    resources = ["*"]
  }

  dynamic "statement" {
    for_each = local.kinesis_enabled ? [1] : []

    content {
      sid       = "Stream"
      actions   = ["kinesis:GetRecords", "kinesis:GetShardIterator", "kinesis:DescribeStream", "kinesis:DescribeStreamSummary", "kinesis:ListShards"]
      resources = [aws_kinesis_stream.telemetry[0].arn]
    }
  }

  dynamic "statement" {
    for_each = local.kinesis_enabled ? [1] : []

    content {
      sid       = "ListStreams"
      actions   = ["kinesis:ListStreams"]
      resources = ["arn:${local.partition}:kinesis:${local.region}:${local.account_id}:stream/*"]
    }
  }
}

resource "aws_iam_role" "processor" {
  name               = "${var.name_prefix}-processor"
  assume_role_policy = data.aws_iam_policy_document.lambda_assume.json
}

resource "aws_iam_role_policy" "processor" {
  name   = "processor"
  role   = aws_iam_role.processor.id
  policy = data.aws_iam_policy_document.processor.json
}

# ---------------------------------------------------------------------------------------------
# The topic rule's role: its error action writes to the DLQ; the Kinesis action to the stream.
# ---------------------------------------------------------------------------------------------
data "aws_iam_policy_document" "iot_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["iot.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

data "aws_iam_policy_document" "iot_rule" {
  statement {
    sid       = "ErrorAction"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.dlq.arn]
  }

  statement {
    sid       = "DataKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.data.arn]
  }

  dynamic "statement" {
    for_each = local.kinesis_enabled ? [1] : []

    content {
      sid       = "Stream"
      actions   = ["kinesis:PutRecord"]
      resources = [aws_kinesis_stream.telemetry[0].arn]
    }
  }
}

resource "aws_iam_role" "iot_rule" {
  name               = "${var.name_prefix}-iot-rule"
  assume_role_policy = data.aws_iam_policy_document.iot_assume.json
}

resource "aws_iam_role_policy" "iot_rule" {
  name   = "iot-rule"
  role   = aws_iam_role.iot_rule.id
  policy = data.aws_iam_policy_document.iot_rule.json
}
