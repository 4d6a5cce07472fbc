terraform {
  required_version = ">= 1.10" # use_lockfile: S3-native state locking (backend.tf)

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 6.0"
    }
  }
}

provider "aws" {
  default_tags {
    tags = var.tags
  }
}
