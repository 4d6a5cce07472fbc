# TFLint for this module: run from terraform/ as `tflint --init && tflint` (CI does).
tflint {
  required_version = ">= 0.50"
}

config {
  call_module_type = "local"
}

# Terraform language rules: the recommended preset (unused declarations, typed variables,
# pinned provider versions, required_version, ...). Bundled with TFLint.
plugin "terraform" {
  enabled = true
  preset  = "recommended"
}

# AWS rules (invalid argument values, deprecated runtimes, ...). Pinned: bump deliberately.
plugin "aws" {
  enabled = true
  version = "0.48.0"
  source  = "github.com/terraform-linters/tflint-ruleset-aws"
}
