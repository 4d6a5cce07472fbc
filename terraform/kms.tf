# One customer-managed key for the pipeline's data at rest: tables, queue, topic, stream, logs.
# A CMK (rather than AWS-owned keys) because CloudWatch alarms cannot publish to an SNS topic
# encrypted with alias/aws/sns, and the logs service needs a key policy of its own.

data "aws_iam_policy_document" "kms" {
  #checkov:skip=CKV_AWS_111:A key policy's resource "*" means this key only; the account root statement delegates to IAM, as AWS's default key policy does.
  #checkov:skip=CKV_AWS_356:Same: in a key policy "*" is the key itself.
  #checkov:skip=CKV_AWS_109:Same: the account administers its own key through IAM.
  statement {
    sid       = "AccountAdministers"
    actions   = ["kms:*"]
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account_id}:root"]
    }
  }

  statement {
    sid       = "LogsEncrypt"
    actions   = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
    resources = ["*"]

    principals {
      type        = "Service"
      identifiers = ["logs.${local.region}.amazonaws.com"]
    }

    condition {
      test     = "ArnLike"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values   = ["arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:/aws/lambda/${var.name_prefix}-*"]
    }
  }

  statement {
    sid       = "AlarmsPublishToTopic"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey*"]
    resources = ["*"]

    principals {
      type        = "Service"
      identifiers = ["cloudwatch.amazonaws.com"]
    }
    # Only this account's alarms (the confused-deputy guard for a service principal).
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_kms_key" "data" {
  description             = "${var.name_prefix}: telemetry, dead letters, alarms and logs"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.kms.json
}

resource "aws_kms_alias" "data" {
  name          = "alias/${var.name_prefix}-data"
  target_key_id = aws_kms_key.data.key_id
}
