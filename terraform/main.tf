data "aws_region" "current" {}

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

locals {
  region     = data.aws_region.current.region
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition

  # Must match coldchain.core.topics and coldchain.apps.lambda_handler (tests check it).
  telemetry_filter = "dt/coldchain/+/telemetry"
  # The device's exact bytes (base64), the topic and the arrival time: the processor validates
  # the same bytes the local worker does, and a non-JSON payload reaches it.
  payload_field     = "coldchain_payload_b64"
  topic_field       = "coldchain_topic"
  received_at_field = "coldchain_received_at_ms"
  rule_sql          = "SELECT encode(*, 'base64') AS ${local.payload_field}, topic() AS ${local.topic_field}, timestamp() AS ${local.received_at_field} FROM '${local.telemetry_filter}'"

  metrics_namespace = "ColdChain"
  service_name      = "coldchain-processor"
  kinesis_enabled   = var.ingest_mode == "kinesis"
}
