# ---------------------------------------------------------------------------------------------
# DynamoDB: telemetry (PK device_id, SK timestamp), device state, events.
# Key names must match coldchain.adapters.dynamodb (tests check it).
# ---------------------------------------------------------------------------------------------
resource "aws_dynamodb_table" "telemetry" {
  name                        = "${var.name_prefix}-telemetry"
  billing_mode                = var.readings_billing_mode # capacity.tf: the cost model's choice
  table_class                 = var.readings_table_class
  read_capacity               = local.readings_provisioned ? var.readings_read_capacity.min : null
  write_capacity              = local.readings_provisioned ? var.readings_write_capacity.min : null
  hash_key                    = "device_id"
  range_key                   = "timestamp"
  deletion_protection_enabled = var.deletion_protection

  attribute {
    name = "device_id"
    type = "S"
  }

  attribute {
    name = "timestamp"
    type = "S"
  }

  # The fleet index copies every reading (one more write, the storage again): fleet_index =
  # false drops it for the cheapest deployment (docs/performance.md); no ingest or operator
  # path on AWS queries it.
  dynamic "attribute" {
    for_each = var.fleet_index ? ["fleet_id"] : []
    content {
      name = attribute.value
      type = "S"
    }
  }

  dynamic "global_secondary_index" {
    for_each = var.fleet_index ? ["fleet-timestamp"] : []
    content {
      name            = global_secondary_index.value
      hash_key        = "fleet_id"
      range_key       = "timestamp"
      projection_type = "ALL"
      read_capacity   = local.readings_provisioned ? var.readings_read_capacity.min : null
      write_capacity  = local.readings_provisioned ? var.readings_write_capacity.min : null
    }
  }

  ttl {
    attribute_name = "expires_at"
    enabled        = true
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = aws_kms_key.data.arn
  }

  # PROVISIONED: autoscaling (capacity.tf) moves the table's capacity, not Terraform.
  lifecycle {
    ignore_changes = [read_capacity, write_capacity]
  }
}

resource "aws_dynamodb_table" "devices" {
  name                        = "${var.name_prefix}-devices"
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = "device_id"
  deletion_protection_enabled = var.deletion_protection

  attribute {
    name = "device_id"
    type = "S"
  }

  attribute {
    name = "registry"
    type = "S"
  }

  # Sparse, keys only: the device list (coldchain devices --store dynamodb://...) reads the
  # ids here instead of scanning. Its key never changes, so a state update writes no entry.
  global_secondary_index {
    name            = "registry-device"
    hash_key        = "registry"
    range_key       = "device_id"
    projection_type = "KEYS_ONLY"
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = aws_kms_key.data.arn
  }
}

resource "aws_dynamodb_table" "events" {
  name                        = "${var.name_prefix}-events"
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = "device_id"
  range_key                   = "event_key"
  deletion_protection_enabled = var.deletion_protection

  attribute {
    name = "device_id"
    type = "S"
  }

  attribute {
    name = "event_key"
    type = "S"
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = aws_kms_key.data.arn
  }
}

# ---------------------------------------------------------------------------------------------
# SQS dead-letter queue: rejected readings (with their reason), the processor's failed
# invocations after two retries, and messages the topic rule could not deliver.
# ---------------------------------------------------------------------------------------------
resource "aws_sqs_queue" "dlq" {
  name                              = "${var.name_prefix}-dlq"
  message_retention_seconds         = 1209600
  kms_master_key_id                 = aws_kms_key.data.arn
  kms_data_key_reuse_period_seconds = 3600
}

# ---------------------------------------------------------------------------------------------
# Kinesis stream for the high-rate path (ingest_mode = "kinesis").
# ---------------------------------------------------------------------------------------------
resource "aws_kinesis_stream" "telemetry" {
  count            = local.kinesis_enabled ? 1 : 0
  name             = "${var.name_prefix}-telemetry"
  retention_period = var.kinesis_retention_hours
  encryption_type  = "KMS"
  kms_key_id       = aws_kms_key.data.arn

  stream_mode_details {
    stream_mode = "ON_DEMAND"
  }
}

# ---------------------------------------------------------------------------------------------
# Alarm records: one item per occurrence (PK id); GSI device-started for one device's alarms.
# ---------------------------------------------------------------------------------------------
resource "aws_dynamodb_table" "alarms" {
  name                        = "${var.name_prefix}-alarms"
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = "id"
  deletion_protection_enabled = var.deletion_protection

  attribute {
    name = "id"
    type = "S"
  }

  attribute {
    name = "device_id"
    type = "S"
  }

  attribute {
    name = "started_at"
    type = "S"
  }

  attribute {
    name = "active"
    type = "S"
  }

  attribute {
    name = "started_month"
    type = "S"
  }

  global_secondary_index {
    name            = "device-started"
    hash_key        = "device_id"
    range_key       = "started_at"
    projection_type = "ALL"
  }

  # Sparse: only active alarms carry "active", so the sweep reads them without a scan.
  global_secondary_index {
    name            = "active-started"
    hash_key        = "active"
    range_key       = "started_at"
    projection_type = "ALL"
  }

  # Every alarm by the month it started: listings read the newest months first, no scan.
  global_secondary_index {
    name            = "month-started"
    hash_key        = "started_month"
    range_key       = "started_at"
    projection_type = "ALL"
  }

  # Cleared alarms expire 90 days after they cleared (the adapter sets the attribute only
  # then); active ones never do.
  ttl {
    attribute_name = "expires_at"
    enabled        = true
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = aws_kms_key.data.arn
  }
}

# The audit trail (shipments, acknowledgements, release decisions): append-only records, one
# item each, written with attribute_not_exists (coldchain.adapters.dynamodb_audit). No TTL:
# GMP records are kept for the retention the quality system sets, not expired here.
resource "aws_dynamodb_table" "audit" {
  name                        = "${var.name_prefix}-audit"
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = "subject"
  range_key                   = "seq"
  deletion_protection_enabled = var.deletion_protection

  attribute {
    name = "subject"
    type = "S"
  }

  attribute {
    name = "seq"
    type = "N"
  }

  attribute {
    name = "kind"
    type = "S"
  }

  attribute {
    name = "log"
    type = "S"
  }

  attribute {
    name = "at_key"
    type = "S"
  }

  # Only a subject's first record carries "kind": listing shipments reads one item each.
  global_secondary_index {
    name            = "kind-subject"
    hash_key        = "kind"
    range_key       = "subject"
    projection_type = "ALL"
  }

  # Every record, newest first (audit writes are rare: one partition is enough).
  global_secondary_index {
    name            = "log-at"
    hash_key        = "log"
    range_key       = "at_key"
    projection_type = "ALL"
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = aws_kms_key.data.arn
  }
}
