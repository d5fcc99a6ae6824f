# imgpipe on Google Cloud. The platform resources every function needs; the
# functions themselves are added by the pipeline and webhook issues.
# `terraform validate` needs the google provider, which this workplace's
# registries do not serve; `make lint` runs `terraform fmt -check`.

terraform {
  required_version = ">= 1.5"
  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "~> 6.0"
    }
  }
}

provider "google" {
  project = var.project
  region  = var.region
}

variable "project" {
  type        = string
  description = "Google Cloud project ID (GOOGLE_CLOUD_PROJECT)."
}

variable "region" {
  type        = string
  default     = "us-central1"
  description = "Region of the functions and the queue (IMGPIPE_LOCATION)."
}

variable "bucket" {
  type        = string
  description = "Bucket for compressed images (IMGPIPE_BUCKET)."
}

variable "images_topic" {
  type        = string
  default     = "imgpipe-images"
  description = "Topic with one message per image (IMGPIPE_IMAGES_TOPIC)."
}

variable "webhook_queue" {
  type        = string
  default     = "imgpipe-webhooks"
  description = "Cloud Tasks queue delivering webhooks (IMGPIPE_WEBHOOK_QUEUE)."
}

resource "google_storage_bucket" "images" {
  name                        = var.bucket
  location                    = var.region
  uniform_bucket_level_access = true
}

resource "google_pubsub_topic" "images" {
  name = var.images_topic
}

resource "google_cloud_tasks_queue" "webhooks" {
  name     = var.webhook_queue
  location = var.region

  retry_config {
    max_attempts  = 5
    min_backoff   = "1s"
    max_backoff   = "16s"
    max_doublings = 4
  }
}
