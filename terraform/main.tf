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

variable "webhook_max_attempts" {
  type        = number
  default     = 5
  description = "IMGPIPE_WEBHOOK_MAX_ATTEMPTS, also the queue's max_attempts."
}

variable "webhook_min_backoff" {
  type    = string
  default = "1s"
}

variable "webhook_max_backoff" {
  type    = string
  default = "300s"
}

variable "webhook_max_doublings" {
  type    = number
  default = 16
}

resource "google_cloud_tasks_queue" "webhooks" {
  name     = var.webhook_queue
  location = var.region

  retry_config {
    max_attempts  = var.webhook_max_attempts
    min_backoff   = var.webhook_min_backoff
    max_backoff   = var.webhook_max_backoff
    max_doublings = var.webhook_max_doublings
  }
}
