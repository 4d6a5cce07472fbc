locals {
  # Alarms and widgets watch the processor that runs: the Kinesis one in kinesis mode.
  active_processor = local.kinesis_enabled ? aws_lambda_function.kinesis[0].function_name : aws_lambda_function.processor.function_name
}

# ---------------------------------------------------------------------------------------------
# Alarm topic: SNS, encrypted with the CMK (CloudWatch may use it: see kms.tf).
# ---------------------------------------------------------------------------------------------
resource "aws_sns_topic" "alarms" {
  name              = "${var.name_prefix}-alarms"
  kms_master_key_id = aws_kms_key.data.arn
}

resource "aws_sns_topic_subscription" "email" {
  count     = var.alarm_email == null ? 0 : 1
  topic_arn = aws_sns_topic.alarms.arn
  protocol  = "email"
  endpoint  = var.alarm_email
}

# ---------------------------------------------------------------------------------------------
# Alarms. Metric names, namespace and the service dimension are what
# coldchain.apps.lambda_handler emits through Powertools (tests check it).
# ---------------------------------------------------------------------------------------------
locals {
  service_dimension = { service = local.service_name }

  # Event alarms: any occurrence in a minute; no data means nothing happened.
  event_alarms = {
    temperature-high = { metric = "TemperatureExcursionHigh", description = "A device was above the band for consecutive readings." }
    temperature-low  = { metric = "TemperatureExcursionLow", description = "A device was below the band for consecutive readings." }
    battery-low      = { metric = "BatteryLow", description = "A device's battery fell below 15 %." }
  }
}

resource "aws_cloudwatch_metric_alarm" "event" {
  for_each            = local.event_alarms
  alarm_name          = "${var.name_prefix}-${each.key}"
  alarm_description   = each.value.description
  namespace           = local.metrics_namespace
  metric_name         = each.value.metric
  dimensions          = local.service_dimension
  statistic           = "Sum"
  period              = 60
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
}

# Ingest stopped: no reading stored for silence_minutes. Missing data is the silence itself.
resource "aws_cloudwatch_metric_alarm" "ingest_stopped" {
  alarm_name          = "${var.name_prefix}-ingest-stopped"
  alarm_description   = "No reading was stored across the fleet (per-device silence is raised by the processor)."
  namespace           = local.metrics_namespace
  metric_name         = "ReadingsStored"
  dimensions          = local.service_dimension
  statistic           = "Sum"
  period              = 60
  evaluation_periods  = var.silence_minutes
  datapoints_to_alarm = var.silence_minutes
  threshold           = 1
  comparison_operator = "LessThanThreshold"
  treat_missing_data  = "breaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
}

resource "aws_cloudwatch_metric_alarm" "processor_errors" {
  alarm_name          = "${var.name_prefix}-processor-errors"
  alarm_description   = "The processor failed an invocation (it will be retried, then dead-lettered)."
  namespace           = "AWS/Lambda"
  metric_name         = "Errors"
  dimensions          = { FunctionName = local.active_processor }
  statistic           = "Sum"
  period              = 60
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
}

# Kinesis mode: records waiting in the stream (the processor is behind or failing). Records
# older than the retention are lost, so this alarms long before that.
resource "aws_cloudwatch_metric_alarm" "iterator_age" {
  count               = local.kinesis_enabled ? 1 : 0
  alarm_name          = "${var.name_prefix}-kinesis-iterator-age"
  alarm_description   = "The Kinesis processor is more than 5 minutes behind the stream."
  namespace           = "AWS/Lambda"
  metric_name         = "IteratorAge"
  dimensions          = { FunctionName = local.active_processor }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 5
  threshold           = 300000
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
}

# The sweeper: devices silent now (one fleet-level figure each sweep, not a metric per
# device: CloudWatch bills each metric monthly), its errors, and its absence.
resource "aws_cloudwatch_metric_alarm" "silent_devices" {
  alarm_name          = "${var.name_prefix}-silent-devices"
  alarm_description   = "Devices that reported before have been quiet longer than the profile's silence time."
  namespace           = local.metrics_namespace
  metric_name         = "SilentDevices"
  dimensions          = local.service_dimension
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching" # no sweep at all is the heartbeat alarm's business
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
}

resource "aws_cloudwatch_metric_alarm" "sweeper_errors" {
  alarm_name          = "${var.name_prefix}-sweeper-errors"
  alarm_description   = "The silence sweeper failed: silence and reminders are not being raised."
  namespace           = "AWS/Lambda"
  metric_name         = "Errors"
  dimensions          = { FunctionName = aws_lambda_function.sweeper.function_name }
  statistic           = "Sum"
  period              = 60
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
}

resource "aws_cloudwatch_metric_alarm" "sweeper_heartbeat" {
  alarm_name          = "${var.name_prefix}-sweeper-missing"
  alarm_description   = "The silence sweeper has not run for 5 minutes (schedule disabled, function throttled or deleted)."
  namespace           = "AWS/Lambda"
  metric_name         = "Invocations"
  dimensions          = { FunctionName = aws_lambda_function.sweeper.function_name }
  statistic           = "Sum"
  period              = 60
  evaluation_periods  = 5
  threshold           = 1
  comparison_operator = "LessThanThreshold"
  treat_missing_data  = "breaching" # no invocations is exactly what this watches for
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
}

resource "aws_cloudwatch_metric_alarm" "dlq_depth" {
  alarm_name          = "${var.name_prefix}-dlq-depth"
  alarm_description   = "Telemetry is waiting in the dead-letter queue: read the reasons, fix, replay."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = aws_sqs_queue.dlq.name }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
}

# ---------------------------------------------------------------------------------------------
# Dashboard: six widgets.
# ---------------------------------------------------------------------------------------------
locals {
  metric_dims   = ["service", local.service_name]
  log_source    = "SOURCE '${aws_cloudwatch_log_group.processor.name}'"
  alarm_arns    = concat([for a in aws_cloudwatch_metric_alarm.event : a.arn], [aws_cloudwatch_metric_alarm.ingest_stopped.arn, aws_cloudwatch_metric_alarm.processor_errors.arn, aws_cloudwatch_metric_alarm.dlq_depth.arn])
  dashboard_ref = "${var.name_prefix}-telemetry"
}

resource "aws_cloudwatch_dashboard" "telemetry" {
  dashboard_name = local.dashboard_ref

  dashboard_body = jsonencode({
    start = "-PT6H"
    widgets = [
      {
        type = "metric", x = 0, y = 0, width = 12, height = 6
        properties = {
          title  = "Ingest rate (readings per minute)"
          region = local.region
          view   = "timeSeries"
          stat   = "Sum"
          period = 60
          metrics = [
            concat([local.metrics_namespace, "ReadingsStored"], local.metric_dims),
            concat([local.metrics_namespace, "ReadingsDuplicate"], local.metric_dims),
            concat([local.metrics_namespace, "ReadingsRejected"], local.metric_dims),
            concat([local.metrics_namespace, "ReadingsConflict"], local.metric_dims),
          ]
        }
      },
      {
        type = "metric", x = 12, y = 0, width = 12, height = 6
        properties = {
          title  = "Temperature across the fleet (°C)"
          region = local.region
          view   = "timeSeries"
          period = 60
          metrics = [
            concat([local.metrics_namespace, "Temperature"], local.metric_dims, [{ stat = "Maximum", label = "max" }]),
            concat([local.metrics_namespace, "Temperature"], local.metric_dims, [{ stat = "Minimum", label = "min" }]),
          ]
          annotations = {
            horizontal = [
              for limit in local.alarm_band : { value = limit, label = "${limit} °C" }
            ]
          }
        }
      },
      {
        type = "metric", x = 0, y = 6, width = 12, height = 6
        properties = {
          title  = "Errors and dead-letter depth"
          region = local.region
          view   = "timeSeries"
          period = 60
          metrics = concat([
            ["AWS/Lambda", "Errors", "FunctionName", local.active_processor, { stat = "Sum" }],
            concat([local.metrics_namespace, "ProcessingErrors"], local.metric_dims, [{ stat = "Sum" }]),
            ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", aws_sqs_queue.dlq.name, { stat = "Maximum" }],
          ], local.kinesis_enabled ? [["AWS/Lambda", "IteratorAge", "FunctionName", local.active_processor, { stat = "Maximum", yAxis = "right" }]] : [])
        }
      },
      {
        type = "log", x = 12, y = 6, width = 12, height = 6
        properties = {
          title  = "Device heartbeat (last reading per device)"
          region = local.region
          view   = "table"
          query  = "${local.log_source} | filter event_type = 'READING' | stats max(@timestamp) as last_seen by device_id | sort last_seen asc | limit 100"
        }
      },
      {
        type = "log", x = 0, y = 12, width = 12, height = 6
        properties = {
          title  = "Battery per device (lowest first)"
          region = local.region
          view   = "table"
          query  = "${local.log_source} | filter event_type = 'READING' | stats latest(battery_pct) as battery_pct by device_id | sort battery_pct asc | limit 100"
        }
      },
      {
        type = "alarm", x = 12, y = 12, width = 12, height = 6
        properties = {
          title  = "Alarm status"
          alarms = local.alarm_arns
        }
      },
    ]
  })
}
