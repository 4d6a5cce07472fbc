data "aws_region" "current" {}

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

locals {
  region     = data.aws_region.current.region
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition

  metrics_namespace = "ColdChain"
  service_name      = "coldchain-processor"
  kinesis_enabled   = var.ingest_mode == "kinesis"
}
