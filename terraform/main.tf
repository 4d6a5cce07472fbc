data "aws_region" "current" {}

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

locals {
  region     = data.aws_region.current.region
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition

  # Must match coldchain.core.topics and coldchain.apps.lambda_handler (tests check it).
  telemetry_filter   = "dt/coldchain/+/telemetry"
  topic_device_field = "coldchain_topic_device_id"
  received_at_field  = "coldchain_received_at_ms"
  rule_sql           = "SELECT *, topic(3) AS ${local.topic_device_field}, timestamp() AS ${local.received_at_field} FROM '${local.telemetry_filter}'"

  metrics_namespace = "ColdChain"
  service_name      = "coldchain-processor"
  kinesis_enabled   = var.ingest_mode == "kinesis"
}
