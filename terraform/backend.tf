# State lives in S3. The block is partial on purpose: bucket, key and region differ per
# deployment and are given at init, never written here.
#
#   terraform init -backend-config=backend.hcl   # real use: copy backend.hcl.example, edit
#   terraform init -backend=false                # static checks only (fmt, validate, tflint)
#
# Locking is S3-native (a lock object beside the state, Terraform >= 1.10): no DynamoDB
# table. Both settings below are also passed by CI and the example; they are written here too
# so no init can run unlocked or unencrypted.
terraform {
  backend "s3" {
    use_lockfile = true
    encrypt      = true
  }
}
