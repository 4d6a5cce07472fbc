locals {
  # The alarm profile, written once in the code (`coldchain profile show --format json`): the
  # processor runs its rules, the dashboard draws its band (tests check the file is current).
  alarm_profile = jsondecode(file(coalesce(var.alarm_profile_file, "${path.module}/alarm-profile.json")))
  alarm_band    = [for limit in local.alarm_profile.band : limit if limit != null]

  powertools_layer = "arn:${local.partition}:lambda:${local.region}:017000801446:layer:AWSLambdaPowertoolsPythonV3-python312-arm64:${var.powertools_layer_version}"

  # Names must match coldchain.config (tests check it).
  processor_environment = {
    COLDCHAIN_TELEMETRY_TABLE    = aws_dynamodb_table.telemetry.name
    COLDCHAIN_DEVICES_TABLE      = aws_dynamodb_table.devices.name
    COLDCHAIN_EVENTS_TABLE       = aws_dynamodb_table.events.name
    COLDCHAIN_DLQ_URL            = aws_sqs_queue.dlq.url
    COLDCHAIN_TTL_DAYS           = tostring(var.telemetry_ttl_days)
    COLDCHAIN_ALARMS_TABLE       = aws_dynamodb_table.alarms.name
    COLDCHAIN_ALARM_TOPIC_ARN    = aws_sns_topic.alarms.arn
    COLDCHAIN_ALARM_PROFILE      = jsonencode(local.alarm_profile)
    POWERTOOLS_SERVICE_NAME      = local.service_name
    POWERTOOLS_METRICS_NAMESPACE = local.metrics_namespace
    POWERTOOLS_LOG_LEVEL         = "INFO"
  }
}

# ---------------------------------------------------------------------------------------------
# The processor for the IoT rule: one reading per (asynchronous) invocation.
# ---------------------------------------------------------------------------------------------
resource "aws_cloudwatch_log_group" "processor" {
  name              = "/aws/lambda/${var.name_prefix}-processor"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.data.arn
}

resource "aws_lambda_function" "processor" {
  #checkov:skip=CKV_AWS_117:No VPC: the function reaches only AWS APIs; a VPC would add NAT or endpoints and cold-start cost for no isolation gain.
  #checkov:skip=CKV_AWS_272:Code signing needs a signing profile and pipeline outside this module; the zip is built reproducibly by `make lambda`.
  #checkov:skip=CKV_AWS_116:Failed invocations go to the on-failure destination (aws_lambda_function_event_invoke_config), which carries the error, not to a DLQ.
  #checkov:skip=CKV_AWS_115:Reserved concurrency is a variable, unset by default: small accounts cannot reserve any.
  function_name    = "${var.name_prefix}-processor"
  role             = aws_iam_role.processor.arn
  runtime          = "python3.12"
  architectures    = ["arm64"]
  handler          = "coldchain.apps.lambda_handler.iot_rule_handler"
  filename         = var.lambda_zip_path
  source_code_hash = filebase64sha256(var.lambda_zip_path)
  layers           = [local.powertools_layer]
  memory_size      = var.lambda_memory_mb
  timeout          = 10
  kms_key_arn      = aws_kms_key.data.arn

  # Unset by default: reserving needs 100 unreserved executions left in the account, which
  # new accounts (often 10 in all) do not have. Set it to bound a flood on a large account.
  reserved_concurrent_executions = var.processor_reserved_concurrency

  environment {
    variables = local.processor_environment
  }

  logging_config {
    log_format            = "JSON"
    application_log_level = "INFO"
    system_log_level      = "WARN"
    log_group             = aws_cloudwatch_log_group.processor.name
  }

  tracing_config {
    mode = "Active"
  }
}

# Two retries (the maximum), then the invocation record, with the error, to the DLQ.
resource "aws_lambda_function_event_invoke_config" "processor" {
  function_name                = aws_lambda_function.processor.function_name
  maximum_retry_attempts       = 2
  maximum_event_age_in_seconds = 21600

  destination_config {
    on_failure {
      destination = aws_sqs_queue.dlq.arn
    }
  }
}

resource "aws_lambda_permission" "iot" {
  statement_id   = "AllowTelemetryRule"
  action         = "lambda:InvokeFunction"
  function_name  = aws_lambda_function.processor.function_name
  principal      = "iot.amazonaws.com"
  source_arn     = aws_iot_topic_rule.telemetry.arn
  source_account = local.account_id
}

# ---------------------------------------------------------------------------------------------
# The Kinesis path (ingest_mode = "kinesis"): batches, partial failures, finite retries.
# ---------------------------------------------------------------------------------------------
resource "aws_cloudwatch_log_group" "kinesis" {
  count             = local.kinesis_enabled ? 1 : 0
  name              = "/aws/lambda/${var.name_prefix}-kinesis"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.data.arn
}

resource "aws_lambda_function" "kinesis" {
  #checkov:skip=CKV_AWS_117:No VPC: the function reaches only AWS APIs.
  #checkov:skip=CKV_AWS_272:Code signing needs a signing profile outside this module.
  #checkov:skip=CKV_AWS_116:Stream failures go to the event source mapping's on-failure destination, not a function DLQ.
  #checkov:skip=CKV_AWS_115:Reserved concurrency is a variable, unset by default: small accounts cannot reserve any.
  count            = local.kinesis_enabled ? 1 : 0
  function_name    = "${var.name_prefix}-kinesis"
  role             = aws_iam_role.processor.arn
  runtime          = "python3.12"
  architectures    = ["arm64"]
  handler          = "coldchain.apps.lambda_handler.kinesis_handler"
  filename         = var.lambda_zip_path
  source_code_hash = filebase64sha256(var.lambda_zip_path)
  layers           = [local.powertools_layer]
  memory_size      = var.lambda_memory_mb
  timeout          = 60
  kms_key_arn      = aws_kms_key.data.arn

  reserved_concurrent_executions = var.processor_reserved_concurrency

  environment {
    variables = local.processor_environment
  }

  logging_config {
    log_format            = "JSON"
    application_log_level = "INFO"
    system_log_level      = "WARN"
    log_group             = aws_cloudwatch_log_group.kinesis[0].name
  }

  tracing_config {
    mode = "Active"
  }
}

resource "aws_lambda_event_source_mapping" "kinesis" {
  count                              = local.kinesis_enabled ? 1 : 0
  function_name                      = aws_lambda_function.kinesis[0].arn
  event_source_arn                   = aws_kinesis_stream.telemetry[0].arn
  starting_position                  = "TRIM_HORIZON"
  batch_size                         = 100
  maximum_batching_window_in_seconds = 1
  parallelization_factor             = 2
  function_response_types            = ["ReportBatchItemFailures"]
  bisect_batch_on_function_error     = true
  maximum_retry_attempts             = 5
  maximum_record_age_in_seconds      = 21600

  destination_config {
    on_failure {
      destination_arn = aws_sqs_queue.dlq.arn
    }
  }
}

# ---------------------------------------------------------------------------------------------
# The alarm sweeper: every minute, per-device silence and reminders for critical alarms.
# ---------------------------------------------------------------------------------------------
resource "aws_cloudwatch_log_group" "sweeper" {
  name              = "/aws/lambda/${var.name_prefix}-sweeper"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.data.arn
}

resource "aws_lambda_function" "sweeper" {
  #checkov:skip=CKV_AWS_117:No VPC: the function reaches only AWS APIs.
  #checkov:skip=CKV_AWS_272:Code signing needs a signing profile outside this module.
  #checkov:skip=CKV_AWS_116:A missed sweep is repeated a minute later; there is no event worth keeping.
  #checkov:skip=CKV_AWS_115:Reserved concurrency is a variable, unset by default: small accounts cannot reserve any.
  function_name    = "${var.name_prefix}-sweeper"
  role             = aws_iam_role.processor.arn
  runtime          = "python3.12"
  architectures    = ["arm64"]
  handler          = "coldchain.apps.lambda_handler.sweep_handler"
  filename         = var.lambda_zip_path
  source_code_hash = filebase64sha256(var.lambda_zip_path)
  layers           = [local.powertools_layer]
  memory_size      = var.lambda_memory_mb
  timeout          = 50
  kms_key_arn      = aws_kms_key.data.arn

  # Overlap is harmless (state writes are conditional); reserving 1 fails on small accounts.
  reserved_concurrent_executions = var.sweeper_reserved_concurrency

  environment {
    variables = local.processor_environment
  }

  logging_config {
    log_format            = "JSON"
    application_log_level = "INFO"
    system_log_level      = "WARN"
    log_group             = aws_cloudwatch_log_group.sweeper.name
  }

  tracing_config {
    mode = "Active"
  }
}

resource "aws_cloudwatch_event_rule" "sweep" {
  name                = "${var.name_prefix}-alarm-sweep"
  description         = "Per-device silence and alarm reminders"
  schedule_expression = "rate(1 minute)"
}

resource "aws_cloudwatch_event_target" "sweep" {
  rule = aws_cloudwatch_event_rule.sweep.name
  arn  = aws_lambda_function.sweeper.arn
}

resource "aws_lambda_permission" "sweep" {
  statement_id  = "AllowSchedule"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.sweeper.function_name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.sweep.arn
}
