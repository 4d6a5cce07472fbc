# ---------------------------------------------------------------------------------------------
# The readings (telemetry) table's capacity mode and class: the cost model's choice
# (`coldchain aws cost`, docs/performance.md). A steady fleet writes at a constant rate, so
# provisioned capacity with target-tracking autoscaling costs about half of on demand per
# write, and Standard-IA storage 60% less than Standard (its writes 25% more). On demand and
# Standard by default, as before; the cheap configuration is
#
#   readings_billing_mode = "PROVISIONED"
#   readings_table_class  = "STANDARD_INFREQUENT_ACCESS"
#   readings_write_capacity = { min = <the WCU `coldchain aws cost` prints>, max = ... }
#
# AWS allows one switch of capacity mode per table per 24 hours.
# ---------------------------------------------------------------------------------------------
variable "readings_billing_mode" {
  description = "Capacity mode of the readings table and its index: PAY_PER_REQUEST, or PROVISIONED with autoscaling (cheaper for a steady fleet: `coldchain aws cost`)."
  type        = string
  default     = "PAY_PER_REQUEST"

  validation {
    condition     = contains(["PAY_PER_REQUEST", "PROVISIONED"], var.readings_billing_mode)
    error_message = "readings_billing_mode must be PAY_PER_REQUEST or PROVISIONED."
  }
}

variable "readings_table_class" {
  description = "Table class of the readings table: STANDARD, or STANDARD_INFREQUENT_ACCESS (storage 60% cheaper, requests 25% dearer)."
  type        = string
  default     = "STANDARD"

  validation {
    condition     = contains(["STANDARD", "STANDARD_INFREQUENT_ACCESS"], var.readings_table_class)
    error_message = "readings_table_class must be STANDARD or STANDARD_INFREQUENT_ACCESS."
  }
}

variable "readings_write_capacity" {
  description = "PROVISIONED only: autoscaling bounds of the write capacity (WCU) of the readings table and of each of its indexes. Set min to the steady need (readings a second / target utilisation; `coldchain aws cost` prints it): an apply sets an index back to min."
  type        = object({ min = number, max = number })
  default     = { min = 5, max = 1000 }

  validation {
    condition     = var.readings_write_capacity.min >= 1 && var.readings_write_capacity.max >= var.readings_write_capacity.min
    error_message = "readings_write_capacity needs 1 <= min <= max."
  }
}

variable "readings_read_capacity" {
  description = "PROVISIONED only: autoscaling bounds of the read capacity (RCU) of the readings table and of each of its indexes (ingest reads no history: a late reading's repair and reports do)."
  type        = object({ min = number, max = number })
  default     = { min = 5, max = 200 }

  validation {
    condition     = var.readings_read_capacity.min >= 1 && var.readings_read_capacity.max >= var.readings_read_capacity.min
    error_message = "readings_read_capacity needs 1 <= min <= max."
  }
}

variable "readings_target_utilisation" {
  description = "PROVISIONED only: the consumed share of provisioned capacity autoscaling aims at, in percent."
  type        = number
  default     = 70

  validation {
    condition     = var.readings_target_utilisation >= 20 && var.readings_target_utilisation <= 90
    error_message = "readings_target_utilisation must be between 20 and 90 (percent)."
  }
}

locals {
  readings_provisioned = var.readings_billing_mode == "PROVISIONED"
  # storage.tf's indexes on the readings table (a test checks the list): names from the
  # configuration, known at plan, unlike the table's computed index attributes.
  readings_indexes = var.fleet_index ? ["fleet-timestamp"] : []

  # What autoscaling moves: the table and each index, writes and reads.
  readings_scaled = merge(
    { table = { suffix = "", kind = "table" } },
    { for name in local.readings_indexes : "index-${name}" => { suffix = "/index/${name}", kind = "index" } },
  )
  readings_dimensions = {
    write = { unit = "WriteCapacityUnits", metric = "DynamoDBWriteCapacityUtilization", bounds = var.readings_write_capacity }
    read  = { unit = "ReadCapacityUnits", metric = "DynamoDBReadCapacityUtilization", bounds = var.readings_read_capacity }
  }
  readings_scaling = {
    for pair in setproduct(keys(local.readings_scaled), keys(local.readings_dimensions)) :
    "${pair[0]}-${pair[1]}" => merge(local.readings_scaled[pair[0]], local.readings_dimensions[pair[1]])
    if local.readings_provisioned
  }
}

resource "aws_appautoscaling_target" "readings" {
  for_each           = local.readings_scaling
  service_namespace  = "dynamodb"
  resource_id        = "table/${aws_dynamodb_table.telemetry.name}${each.value.suffix}"
  scalable_dimension = "dynamodb:${each.value.kind}:${each.value.unit}"
  min_capacity       = each.value.bounds.min
  max_capacity       = each.value.bounds.max
}

resource "aws_appautoscaling_policy" "readings" {
  for_each           = aws_appautoscaling_target.readings
  name               = "${var.name_prefix}-readings-${each.key}"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = each.value.service_namespace
  resource_id        = each.value.resource_id
  scalable_dimension = each.value.scalable_dimension

  target_tracking_scaling_policy_configuration {
    target_value = var.readings_target_utilisation

    predefined_metric_specification {
      predefined_metric_type = local.readings_scaling[each.key].metric
    }
  }
}
