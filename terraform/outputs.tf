output "iot_endpoint" {
  description = "The ATS data endpoint devices connect to (port 8883, Amazon Root CA 1)."
  value       = data.aws_iot_endpoint.data.endpoint_address
}

output "telemetry_table_name" {
  description = "DynamoDB table of readings."
  value       = aws_dynamodb_table.telemetry.name
}

output "devices_table_name" {
  description = "DynamoDB table of each device's latest state."
  value       = aws_dynamodb_table.devices.name
}

output "events_table_name" {
  description = "DynamoDB table of raised events."
  value       = aws_dynamodb_table.events.name
}

output "alarms_table_name" {
  description = "DynamoDB table of alarm records."
  value       = aws_dynamodb_table.alarms.name
}

output "audit_table_name" {
  description = "The append-only audit trail: shipments, acknowledgements, release decisions."
  value       = aws_dynamodb_table.audit.name
}

output "dlq_url" {
  description = "SQS dead-letter queue."
  value       = aws_sqs_queue.dlq.url
}

output "alarm_topic_arn" {
  description = "SNS topic the alarms publish to."
  value       = aws_sns_topic.alarms.arn
}

output "device_policy_name" {
  description = "IoT policy to attach to device certificates (coldchain aws provision does)."
  value       = aws_iot_policy.device.name
}

output "dashboard_url" {
  description = "CloudWatch dashboard."
  value       = "https://${local.region}.console.aws.amazon.com/cloudwatch/home?region=${local.region}#dashboards:name=${aws_cloudwatch_dashboard.telemetry.dashboard_name}"
}

output "device_certificates" {
  description = "Each device's certificate (PEM, public): install it on the device beside its own key."
  value       = { for name, cert in aws_iot_certificate.device : name => cert.certificate_pem }
}

output "firmware_bucket" {
  description = "Where firmware images go (coldchain jobs on AWS sign per-device URLs to them)."
  value       = aws_s3_bucket.firmware.id
}

output "iot_presign_role_arn" {
  description = "The role IoT Jobs assumes to sign firmware download URLs (presignedUrlConfig.roleArn)."
  value       = aws_iam_role.iot_presign.arn
}
