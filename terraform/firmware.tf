# ---------------------------------------------------------------------------------------------
# Firmware images for IoT Jobs (coldchain.adapters.iot_device_management.IotJobs): a private,
# versioned, KMS-encrypted bucket that only TLS may reach, and the role IoT Jobs assumes to
# sign a download URL per device (the job document's ${aws:iot:s3-presigned-url:...}
# placeholder). Devices never get S3 credentials: a URL for one object, valid an hour at most.
# ---------------------------------------------------------------------------------------------
resource "aws_s3_bucket" "firmware" {
  #checkov:skip=CKV_AWS_144:Cross-region replication is a disaster-recovery choice for the operator; images are rebuilt from the firmware pipeline.
  #checkov:skip=CKV_AWS_18:Access logging would need a second bucket; CloudTrail data events cover GetObject where an operator needs an audit of downloads.
  #checkov:skip=CKV2_AWS_62:No consumer of object events: jobs are created through the API after upload.
  bucket_prefix = "${var.name_prefix}-firmware-"
  force_destroy = false
}

resource "aws_s3_bucket_versioning" "firmware" {
  bucket = aws_s3_bucket.firmware.id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "firmware" {
  bucket = aws_s3_bucket.firmware.id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.data.arn
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_public_access_block" "firmware" {
  bucket                  = aws_s3_bucket.firmware.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_lifecycle_configuration" "firmware" {
  bucket = aws_s3_bucket.firmware.id

  rule {
    id     = "old-versions"
    status = "Enabled"

    filter {}

    noncurrent_version_expiration {
      noncurrent_days = 365
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }
}

resource "aws_s3_bucket_policy" "firmware" {
  bucket = aws_s3_bucket.firmware.id

  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "TlsOnly"
      Effect    = "Deny"
      Principal = "*"
      Action    = "s3:*"
      Resource  = [aws_s3_bucket.firmware.arn, "${aws_s3_bucket.firmware.arn}/*"]
      Condition = { Bool = { "aws:SecureTransport" = "false" } }
    }]
  })
}

data "aws_iam_policy_document" "iot_presign_assume" {
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

resource "aws_iam_role" "iot_presign" {
  name               = "${var.name_prefix}-iot-presign"
  assume_role_policy = data.aws_iam_policy_document.iot_presign_assume.json
}

data "aws_iam_policy_document" "iot_presign" {
  statement {
    actions   = ["s3:GetObject"]
    resources = ["${aws_s3_bucket.firmware.arn}/*"]
  }

  # Only to read the firmware objects through S3: the key protects the other data too.
  statement {
    actions   = ["kms:Decrypt"]
    resources = [aws_kms_key.data.arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${local.region}.amazonaws.com"]
    }
  }
}

resource "aws_iam_role_policy" "iot_presign" {
  name   = "firmware-get"
  role   = aws_iam_role.iot_presign.id
  policy = data.aws_iam_policy_document.iot_presign.json
}
