variable "name_prefix" {
  description = "Prefix of every resource name (letters, digits and hyphens)."
  type        = string
  default     = "coldchain"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}$", var.name_prefix))
    error_message = "name_prefix must be 2-31 lowercase letters, digits or hyphens, starting with a letter."
  }
}

variable "tags" {
  description = "Tags merged into every resource."
  type        = map(string)
  default     = { project = "coldchain" }
}

variable "devices" {
  description = "Devices to register: thing name => fleet id and the path of the device's CSR (PEM). The private key stays on the device; only the CSR is read."
  type = map(object({
    fleet_id         = string
    csr_path         = string
    firmware_version = optional(string, "2.1.4")
    device_type      = optional(string, "reefer-logger")
  }))
  default = {}

  validation {
    condition     = alltrue([for name in keys(var.devices) : can(regex("^[A-Za-z0-9_-]{1,128}$", name))])
    error_message = "Device names must be 1-128 of A-Z a-z 0-9 _ - (the client id and topic segment)."
  }
}

variable "ingest_mode" {
  description = "lambda: the topic rule invokes the processor per reading. kinesis: the rule writes to a Kinesis stream that the processor reads in batches (high rates)."
  type        = string
  default     = "lambda"

  validation {
    condition     = contains(["lambda", "kinesis"], var.ingest_mode)
    error_message = "ingest_mode must be \"lambda\" or \"kinesis\"."
  }
}

variable "lambda_zip_path" {
  description = "Path of the package built by `make lambda`."
  type        = string
  default     = "../dist/lambda.zip"
}

variable "powertools_layer_version" {
  description = "Version of the public layer AWSLambdaPowertoolsPythonV3-python312-arm64 (it carries pydantic v2)."
  type        = number
  default     = 18
}

variable "lambda_memory_mb" {
  description = "Memory of the processor functions (CPU scales with it)."
  type        = number
  default     = 256
}

variable "telemetry_ttl_days" {
  description = "Days a reading is kept before DynamoDB's TTL removes it (by reading time)."
  type        = number
  default     = 90

  validation {
    condition     = var.telemetry_ttl_days >= 1
    error_message = "telemetry_ttl_days must be at least 1."
  }
}

variable "log_retention_days" {
  description = "Retention of the processors' log groups (a year by default: excursion and dead-letter log lines are part of the shipment record)."
  type        = number
  default     = 365
}

variable "deletion_protection" {
  description = "Protect the DynamoDB tables from deletion (turn off only to tear down a test stack)."
  type        = bool
  default     = true
}

variable "alarm_email" {
  description = "Address subscribed to the alarm topic (confirm the email AWS sends); null for none."
  type        = string
  default     = null
}

variable "alarm_profile_file" {
  description = "The alarm profile (JSON from `coldchain profile show --format json`) the processor runs with; its band is drawn on the dashboard. Null: alarm-profile.json beside this module (the built-in profile)."
  type        = string
  default     = null
}

variable "silence_minutes" {
  description = "Minutes without a stored reading across the fleet before the ingest-stopped alarm."
  type        = number
  default     = 5
}

variable "processor_reserved_concurrency" {
  description = "Reserved concurrency of the processor (and the Kinesis processor). Null: none reserved, which every account can deploy; set it (e.g. 100) on an account with room to bound a flood."
  type        = number
  default     = null
}

variable "sweeper_reserved_concurrency" {
  description = "Reserved concurrency of the silence sweeper. Null: none reserved (an overlapping sweep is harmless: state writes are conditional)."
  type        = number
  default     = null
}

variable "kinesis_retention_hours" {
  description = "How long the stream keeps records (hours, 24-8760). A Kinesis failure record in the dead-letter queue points at a record; 'coldchain dlq replay' can fetch it only while the stream keeps it."
  type        = number
  default     = 168

  validation {
    condition     = var.kinesis_retention_hours >= 24 && var.kinesis_retention_hours <= 8760
    error_message = "kinesis_retention_hours must be between 24 and 8760."
  }
}

variable "fleet_index" {
  description = "Keep the readings table's fleet-timestamp index (every reading copied: one more write and the storage again). false for the cheapest deployment (coldchain aws cost --fleet-index none)."
  type        = bool
  default     = true
}
