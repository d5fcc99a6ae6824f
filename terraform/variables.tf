variable "project" {
  type        = string
  description = "Google Cloud project ID to deploy into (GOOGLE_CLOUD_PROJECT)."
}

variable "region" {
  type        = string
  default     = "us-central1"
  description = "Region of the functions, the queue, the buckets and the build repository (IMGPIPE_LOCATION)."
}

variable "firestore_location" {
  type        = string
  default     = ""
  description = "Location of the (default) Firestore database: a multi-region such as nam5 or eur3, or a region. Empty follows region: nam5 for a us- region, eur3 for a europe- region, the region itself elsewhere. Fixed once created."
}

variable "bucket" {
  type        = string
  default     = ""
  description = "Bucket for compressed images (IMGPIPE_BUCKET); empty means PROJECT-imgpipe-images."
}

variable "output_urls" {
  type        = string
  default     = "signed"
  description = "Links to outputs: signed (V4 signed URLs valid for signed_url_ttl; the bucket stays private) or public (allUsers may read objects, never list them; refused in organisations that enforce iam.allowedPolicyMemberDomains or storage.publicAccessPrevention)."
  validation {
    condition     = contains(["public", "signed"], var.output_urls)
    error_message = "output_urls is public or signed."
  }
}

variable "signed_url_ttl" {
  type        = string
  default     = "168h"
  description = "Lifetime of signed links (IMGPIPE_SIGNED_URL_TTL); V4 signing allows at most 168h."
}

variable "source_archive" {
  type        = string
  description = "Path of the zipped function source (make deploy builds it: functions/cmd/imgpipe-source). Its content hash names the uploaded object, so a change rebuilds the functions."
}

variable "images_topic" {
  type        = string
  default     = "imgpipe-images"
  description = "Topic with one message per image (IMGPIPE_IMAGES_TOPIC); the dead-letter topic is this name with -dead."
}

variable "webhook_queue" {
  type        = string
  default     = "imgpipe-webhooks"
  description = "Cloud Tasks queue delivering webhooks (IMGPIPE_WEBHOOK_QUEUE)."
}

variable "webhook_secrets" {
  type        = string
  default     = null
  sensitive   = true
  ephemeral   = true
  description = "IMGPIPE_WEBHOOK_SECRETS: comma-separated whsec_<base64> secrets, newest first while rotating. Written to Secret Manager (write-only: never in state or plan) as the secret's first version, on the first apply only; make deploy passes it from terraform/.webhook-secrets. Later versions come from make rotate-secrets."
}

variable "webhook_secrets_version" {
  type        = string
  default     = "latest"
  description = "Secret Manager version of the webhook secrets the functions read: a version number, or latest. make deploy passes the newest enabled version's number, so a new version rolls the functions onto it."
  validation {
    condition     = can(regex("^(latest|[1-9][0-9]*)$", var.webhook_secrets_version))
    error_message = "webhook_secrets_version is a version number or latest."
  }
}

variable "view_link_keys" {
  type        = string
  default     = null
  sensitive   = true
  ephemeral   = true
  description = "IMGPIPE_VIEW_LINK_KEYS: comma-separated base64 keys of at least 32 random bytes, newest first, signing the status page links. Server-only: never given to anyone. Written to Secret Manager (write-only: never in state or plan) as the secret's first version, on the first apply only; make deploy passes it from terraform/.view-link-keys. Later versions come from make rotate-secrets."
}

variable "view_link_keys_version" {
  type        = string
  default     = "latest"
  description = "Secret Manager version of the status link keys the functions read: a version number, or latest. make deploy passes the newest enabled version's number."
  validation {
    condition     = can(regex("^(latest|[1-9][0-9]*)$", var.view_link_keys_version))
    error_message = "view_link_keys_version is a version number or latest."
  }
}

variable "view_link_ttl" {
  type        = string
  default     = "720h"
  description = "Lifetime of the status page link an upload answers (IMGPIPE_VIEW_LINK_TTL), in whole hours; the status page's thumbnails are kept a day longer."
  validation {
    condition     = can(regex("^[1-9][0-9]*h$", var.view_link_ttl))
    error_message = "view_link_ttl is a whole number of hours, such as 720h."
  }
}

variable "public_url" {
  type        = string
  default     = ""
  description = "IMGPIPE_PUBLIC_URL: base URL of the API in links; empty derives it from each request."
}

variable "max_delivery_attempts" {
  type        = number
  default     = 9
  description = "Deliveries of an image message before Pub/Sub dead-letters it and it is recorded failed (dead_lettered): its dead-letter policy, which counts every failed push, Cloud Run's 429s and timeouts included. Sized with the retry policy so that a 10-minute burst of 429s dead-letters no good image (README, Sizing and platform limits; plan fails below that); Pub/Sub accepts 5 to 100."
  validation {
    condition     = var.max_delivery_attempts >= 5 && var.max_delivery_attempts <= 100
    error_message = "Pub/Sub's dead-letter policy takes 5 to 100 delivery attempts."
  }
}

variable "max_failed_attempts" {
  type        = number
  default     = 5
  description = "Failed attempts at one image that compressImage counts itself (a fetch retried within a delivery, a delivery that failed) before it records the image failed with the failure's reason (IMGPIPE_MAX_DELIVERY_ATTEMPTS). Cloud Run's 429s never reach the function and do not count here. Keep it well below max_delivery_attempts (plan fails otherwise)."
  validation {
    condition     = var.max_failed_attempts >= 1 && var.max_failed_attempts <= 100
    error_message = "max_failed_attempts is 1 to 100."
  }
}

variable "compress_concurrency" {
  type        = number
  default     = 4
  description = "Images one compressImage instance works on at once (IMGPIPE_COMPRESS_CONCURRENCY). Its memory and CPU follow from this, max_pixels and max_image_bytes (see locals in functions.tf)."
  validation {
    condition     = var.compress_concurrency >= 1 && var.compress_concurrency <= 16
    error_message = "compress_concurrency is 1 to 16."
  }
}

variable "max_pixels" {
  type        = number
  default     = 50000000
  description = "Largest image decoded, width × height (IMGPIPE_MAX_PIXELS)."
}

variable "max_image_bytes" {
  type        = number
  default     = 26214400
  description = "Largest image fetched, in bytes (IMGPIPE_MAX_IMAGE_BYTES)."
}

variable "max_instances" {
  type        = number
  default     = 100
  description = "Most instances of each function but the sweep, which runs one at a time."
}

variable "webhook_max_attempts" {
  type        = number
  default     = 5
  description = "Webhook attempts before FAILED (IMGPIPE_WEBHOOK_MAX_ATTEMPTS), also the queue's max_attempts."
}

variable "webhook_min_backoff" {
  type        = string
  default     = "1s"
  description = "Delay before the first webhook retry (IMGPIPE_WEBHOOK_MIN_BACKOFF)."
}

variable "webhook_max_backoff" {
  type        = string
  default     = "300s"
  description = "Longest delay between webhook attempts (IMGPIPE_WEBHOOK_MAX_BACKOFF)."
}

variable "webhook_max_doublings" {
  type        = number
  default     = 16
  description = "Times the webhook delay doubles before growing linearly (IMGPIPE_WEBHOOK_MAX_DOUBLINGS)."
}

variable "alert_email" {
  type        = string
  default     = ""
  description = "Address the alert policies notify; empty creates the policies without a notification channel."
}

variable "contact_url" {
  type        = string
  default     = "https://github.com/imgpipe/imgpipe"
  description = "Where image hosts can reach you: every fetch sends User-Agent imgpipe/1 (+contact_url) (IMGPIPE_CONTACT_URL)."
}

variable "max_fetches_per_host" {
  type        = number
  default     = 4
  description = "Fetches in flight to one image host from one instance (IMGPIPE_MAX_FETCHES_PER_HOST)."
}

variable "stall_after" {
  type        = string
  default     = "30m"
  description = "An unfinished request without progress this long is swept (IMGPIPE_STALL_AFTER). Keep it above the image subscription's retry window (about 20 minutes from the first delivery to the last) and the longest backlog of image messages you expect: a message still queued or retried after it is republished, at a fetch's cost."
}

variable "sweep_max_republish" {
  type        = number
  default     = 2
  description = "Times the sweep republishes one image before recording it failed with reason stalled (IMGPIPE_SWEEP_MAX_REPUBLISH)."
}

variable "sweep_schedule" {
  type        = string
  default     = "*/5 * * * *"
  description = "Cron schedule (UTC) of the Cloud Scheduler job that calls the sweep function."
}
