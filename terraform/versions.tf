# Terraform 1.11 for write-only attributes: the secrets go to Secret Manager
# without being stored in the state or the plan. Each provider is pinned to
# the version whose schema terraform/schema records (make deploy-check
# checks against it); .terraform.lock.hcl holds the registry's checksums.
# hashicorp/time provides the waits for eventually consistent APIs and
# grants (apis.tf, iam.tf).
terraform {
  required_version = ">= 1.11"
  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "~> 6.50.0"
    }
    time = {
      source  = "hashicorp/time"
      version = "~> 0.13.1"
    }
  }
}

provider "google" {
  project = var.project
  region  = var.region
}
