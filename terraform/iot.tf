# ---------------------------------------------------------------------------------------------
# Registry: a thing type, a thing group, one thing per device.
# ---------------------------------------------------------------------------------------------
resource "aws_iot_thing_type" "sensor" {
  name = "${var.name_prefix}-logger" # what `coldchain aws provision` uses

  properties {
    description           = "Refrigerated cargo sensor publishing telemetry over MQTT"
    searchable_attributes = ["fleet", "firmware_version", "device_type"]
  }
}

resource "aws_iot_thing_group" "fleet" {
  name = "${var.name_prefix}-fleet"

  properties {
    description = "Every coldchain device"
  }
}

# The registry shape `coldchain aws provision` makes (adapters/iot_provisioning.py): a group
# per fleet and per firmware version, so jobs can target either.
locals {
  fleet_groups    = { for fleet in distinct([for d in var.devices : d.fleet_id]) : "fleet-${replace(fleet, "/[^A-Za-z0-9:_-]/", "_")}" => fleet }
  firmware_groups = { for version in distinct([for d in var.devices : d.firmware_version]) : "firmware-${replace(version, "/[^A-Za-z0-9:_-]/", "_")}" => version }
  device_groups = merge([
    for name, d in var.devices : {
      "${name}/fleet"    = { thing = name, group = "fleet-${replace(d.fleet_id, "/[^A-Za-z0-9:_-]/", "_")}" }
      "${name}/firmware" = { thing = name, group = "firmware-${replace(d.firmware_version, "/[^A-Za-z0-9:_-]/", "_")}" }
    }
  ]...)
}

resource "aws_iot_thing_group" "by" {
  for_each = merge(local.fleet_groups, local.firmware_groups)
  name     = each.key

  properties {
    description = "coldchain devices with ${each.value}"
  }
}

resource "aws_iot_thing" "device" {
  for_each        = var.devices
  name            = each.key
  thing_type_name = aws_iot_thing_type.sensor.name

  attributes = {
    fleet            = each.value.fleet_id
    firmware_version = each.value.firmware_version
    device_type      = each.value.device_type
  }
}

resource "aws_iot_thing_group_membership" "device" {
  for_each         = var.devices
  thing_name       = aws_iot_thing.device[each.key].name
  thing_group_name = aws_iot_thing_group.fleet.name
}

resource "aws_iot_thing_group_membership" "by" {
  for_each         = local.device_groups
  thing_name       = aws_iot_thing.device[each.value.thing].name
  thing_group_name = aws_iot_thing_group.by[each.value.group].name
}

# ---------------------------------------------------------------------------------------------
# One shared least-privilege policy: connect only as the thing the certificate is attached
# to (client id = thing name); publish only that thing's telemetry (directly or through Basic
# Ingest), command answers, shadow updates and job reports; subscribe to and receive only its
# own commands, shadow answers and jobs. The lists are coldchain.core.topics.aws_device_topics
# (a test keeps them equal).
# ---------------------------------------------------------------------------------------------
locals {
  thing     = "$${iot:Connection.Thing.ThingName}"
  rule_name = replace("${var.name_prefix}_telemetry", "-", "_")
  device_publish = [
    "dt/coldchain/${local.thing}/telemetry",
    "$aws/rules/${local.rule_name}/dt/coldchain/${local.thing}/telemetry",
    "cmd/${local.thing}/response",
    "$aws/things/${local.thing}/shadow/update",
    "$aws/things/${local.thing}/shadow/get",
    "$aws/things/${local.thing}/jobs/*",
  ]
  device_subscribe = [
    "cmd/${local.thing}/request",
    "$aws/things/${local.thing}/shadow/*",
    "$aws/things/${local.thing}/jobs/*",
  ]
  iot_arn = "arn:${local.partition}:iot:${local.region}:${local.account_id}"
}

resource "aws_iot_policy" "device" {
  name = "${var.name_prefix}-device"

  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Effect   = "Allow"
        Action   = "iot:Connect"
        Resource = "${local.iot_arn}:client/${local.thing}"
        Condition = {
          Bool = { "iot:Connection.Thing.IsAttached" = "true" }
        }
      },
      {
        Effect   = "Allow"
        Action   = "iot:Publish"
        Resource = [for topic in local.device_publish : "${local.iot_arn}:topic/${topic}"]
      },
      {
        Effect   = "Allow"
        Action   = "iot:Subscribe"
        Resource = [for topic in local.device_subscribe : "${local.iot_arn}:topicfilter/${topic}"]
      },
      {
        Effect   = "Allow"
        Action   = "iot:Receive"
        Resource = [for topic in local.device_subscribe : "${local.iot_arn}:topic/${topic}"]
      },
    ]
  })
}

# Certificates from CSRs: AWS signs the device's public key; the private key never leaves
# the device and never enters Terraform state.
resource "aws_iot_certificate" "device" {
  for_each = var.devices
  csr      = file(each.value.csr_path)
  active   = true
}

resource "aws_iot_policy_attachment" "device" {
  for_each = var.devices
  policy   = aws_iot_policy.device.name
  target   = aws_iot_certificate.device[each.key].arn
}

resource "aws_iot_thing_principal_attachment" "device" {
  for_each  = var.devices
  principal = aws_iot_certificate.device[each.key].arn
  thing     = aws_iot_thing.device[each.key].name
}

# ---------------------------------------------------------------------------------------------
# The topic rule: every telemetry message to the processor (or the stream), and what the
# rules engine cannot deliver (including payloads that are not JSON) to the DLQ.
# ---------------------------------------------------------------------------------------------
locals {
  # Must match coldchain.core.topics and coldchain.adapters.iot_rule_output (tests check it).
  telemetry_filter = "dt/coldchain/+/telemetry"
  # The device's exact bytes (base64), the topic and the arrival time: the processor validates
  # the same bytes the local worker does, and a non-JSON payload reaches it.
  payload_field     = "coldchain_payload_b64"
  topic_field       = "coldchain_topic"
  received_at_field = "coldchain_received_at_ms"
  rule_sql          = "SELECT encode(*, 'base64') AS ${local.payload_field}, topic() AS ${local.topic_field}, timestamp() AS ${local.received_at_field} FROM '${local.telemetry_filter}'"
}

resource "aws_iot_topic_rule" "telemetry" {
  name        = local.rule_name
  description = "Cold chain telemetry to the processor"
  enabled     = true
  sql         = local.rule_sql
  sql_version = "2016-03-23"

  dynamic "lambda" {
    for_each = local.kinesis_enabled ? [] : [1]

    content {
      function_arn = aws_lambda_function.processor.arn
    }
  }

  dynamic "kinesis" {
    for_each = local.kinesis_enabled ? [1] : []

    content {
      stream_name   = aws_kinesis_stream.telemetry[0].name
      role_arn      = aws_iam_role.iot_rule.arn
      partition_key = "$${topic(3)}"
    }
  }

  error_action {
    sqs {
      queue_url  = aws_sqs_queue.dlq.url
      role_arn   = aws_iam_role.iot_rule.arn
      use_base64 = true
    }
  }
}

data "aws_iot_endpoint" "data" {
  endpoint_type = "iot:Data-ATS"
}
