# Terraform 1.11 for write-only attributes: the webhook secret goes to
# Secret Manager without being stored in the state or the plan. The google
# provider is pinned to the minor version whose schema
# terraform/schema/google.json records (make deploy-check checks against it).
terraform {
  required_version = ">= 1.11"
  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "~> 6.50.0"
    }
  }
}

provider "google" {
  project = var.project
  region  = var.region
}
