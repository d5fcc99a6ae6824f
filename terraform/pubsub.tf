# One message per image, pushed to compressImage by a subscription of our
# own (not an Eventarc trigger): the dead-letter policy and the ack deadline
# stay ours, and the push is the one the local stack makes. The local stack
# takes these settings from here (functions/deploy tests compare them).
#
# Pushes go to the function's URL followed by the topic's path,
# /projects/P/topics/T: functions-framework-go reads the event's source
# from it, as it does locally. The OIDC token's audience is the bare URL,
# which is what Cloud Run accepts.

# Delivery is sized for bursts (README, "Sizing and platform limits").
# Pub/Sub counts every failed push toward the dead-letter policy, Cloud
# Run's 429 ("no available instance") included, which never reaches the
# function. It waits min(maximum, minimum × 2^(k−1)) before delivery k+1
# (exponential, best effort), so compress_delivered_at[n−1] is the least
# time from an image's first delivery to its n-th. Checked at plan: the
# last delivery comes at least twice a 10-minute burst after the first
# (dead_letter_after), and at least one burst after delivery number
# max_failed_attempts (dead_letter_after_own_failures), so an image that
# failed on its own that often is recorded with its own reason, not
# dead-lettered by a burst.
#
# Each ack deadline is the target function's timeout plus a cold start:
# Cloud Run holds a push that waits for an instance to start (up to 3.5 ×
# the service's average start-up time, at least 10 s), and a push not
# answered within the deadline is delivered again, while the first still
# runs, and counted as a failed attempt.
locals {
  compress_backoff               = { min = 10, max = 300 }
  burst_seconds                  = 600
  cold_start_seconds             = 60
  compress_delays                = [for k in range(1, var.max_delivery_attempts) : min(local.compress_backoff.max, local.compress_backoff.min * pow(2, k - 1))]
  compress_delivered_at          = [for n in range(1, var.max_delivery_attempts + 1) : sum(concat([0], slice(local.compress_delays, 0, n - 1)))]
  dead_letter_after              = local.compress_delivered_at[var.max_delivery_attempts - 1]
  dead_letter_after_own_failures = local.dead_letter_after - local.compress_delivered_at[min(var.max_failed_attempts, var.max_delivery_attempts) - 1]
}

resource "google_pubsub_topic" "images" {
  name       = var.images_topic
  depends_on = [time_sleep.apis_ready]
}

resource "google_pubsub_topic" "dead_letters" {
  name       = "${var.images_topic}-dead"
  depends_on = [time_sleep.apis_ready]
}

resource "google_pubsub_subscription" "compress" {
  name                 = "${var.images_topic}-compress"
  topic                = google_pubsub_topic.images.id
  ack_deadline_seconds = local.functions["compressImage"].timeout + local.cold_start_seconds

  push_config {
    push_endpoint = "${google_cloudfunctions2_function.fn["compressImage"].service_config[0].uri}/projects/${var.project}/topics/${google_pubsub_topic.images.name}"
    oidc_token {
      service_account_email = google_service_account.pusher.email
      audience              = google_cloudfunctions2_function.fn["compressImage"].service_config[0].uri
    }
  }
  retry_policy {
    minimum_backoff = "${local.compress_backoff.min}s"
    maximum_backoff = "${local.compress_backoff.max}s"
  }
  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.dead_letters.id
    max_delivery_attempts = var.max_delivery_attempts
  }
  # Never expire: the provider's default deletes a subscription after 31
  # idle days, after which uploads would publish to a topic nobody reads.
  expiration_policy {
    ttl = ""
  }

  lifecycle {
    precondition {
      condition     = local.dead_letter_after >= 2 * local.burst_seconds
      error_message = "max_delivery_attempts = ${var.max_delivery_attempts} dead-letters an image ${local.dead_letter_after} s after its first delivery; Cloud Run's 429s count, and a 10-minute burst of them must not dead-letter good images. It takes ${2 * local.burst_seconds} s: raise max_delivery_attempts (terraform/README.md, Sizing and platform limits)."
    }
    precondition {
      condition     = local.dead_letter_after_own_failures >= local.burst_seconds
      error_message = "An image that failed max_failed_attempts = ${var.max_failed_attempts} times on its own would be dead-lettered ${local.dead_letter_after_own_failures} s later (max_delivery_attempts = ${var.max_delivery_attempts}), within a 10-minute burst of 429s: lower max_failed_attempts or raise max_delivery_attempts (terraform/README.md, Sizing and platform limits)."
    }
  }
}

resource "google_pubsub_subscription" "dead_letters" {
  name                 = "${var.images_topic}-dead-record"
  topic                = google_pubsub_topic.dead_letters.id
  ack_deadline_seconds = local.functions["deadLetter"].timeout + local.cold_start_seconds

  push_config {
    push_endpoint = "${google_cloudfunctions2_function.fn["deadLetter"].service_config[0].uri}/projects/${var.project}/topics/${google_pubsub_topic.dead_letters.name}"
    oidc_token {
      service_account_email = google_service_account.pusher.email
      audience              = google_cloudfunctions2_function.fn["deadLetter"].service_config[0].uri
    }
  }
  retry_policy {
    minimum_backoff = "1s"
    maximum_backoff = "60s"
  }
  expiration_policy {
    ttl = ""
  }
}
