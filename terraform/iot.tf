# ---------------------------------------------------------------------------------------------
# Registry: a thing type, a thing group, one thing per device.
# ---------------------------------------------------------------------------------------------
resource "aws_iot_thing_type" "sensor" {
  name = "${var.name_prefix}-reefer-sensor"

  properties {
    description           = "Refrigerated cargo sensor publishing telemetry over MQTT"
    searchable_attributes = ["fleet_id"]
  }
}

resource "aws_iot_thing_group" "fleet" {
  name = "${var.name_prefix}-fleet"

  properties {
    description = "Every coldchain device"
  }
}

resource "aws_iot_thing" "device" {
  for_each        = var.devices
  name            = each.key
  thing_type_name = aws_iot_thing_type.sensor.name

  attributes = {
    fleet_id = each.value.fleet_id
  }
}

resource "aws_iot_thing_group_membership" "device" {
  for_each         = var.devices
  thing_name       = aws_iot_thing.device[each.key].name
  thing_group_name = aws_iot_thing_group.fleet.name
}

# ---------------------------------------------------------------------------------------------
# One shared least-privilege policy: connect only as the thing the certificate is attached
# to (client id = thing name), publish only to that thing's telemetry topic.
# ---------------------------------------------------------------------------------------------
resource "aws_iot_policy" "device" {
  name = "${var.name_prefix}-device"

  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Effect   = "Allow"
        Action   = "iot:Connect"
        Resource = "arn:${local.partition}:iot:${local.region}:${local.account_id}:client/$${iot:Connection.Thing.ThingName}"
        Condition = {
          Bool = { "iot:Connection.Thing.IsAttached" = "true" }
        }
      },
      {
        Effect   = "Allow"
        Action   = "iot:Publish"
        Resource = "arn:${local.partition}:iot:${local.region}:${local.account_id}:topic/dt/coldchain/$${iot:Connection.Thing.ThingName}/telemetry"
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
resource "aws_iot_topic_rule" "telemetry" {
  name        = replace("${var.name_prefix}_telemetry", "-", "_")
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
