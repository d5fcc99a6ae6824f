# One message per image, pushed to compressImage by a subscription of our
# own (not an Eventarc trigger): the dead-letter policy and the ack deadline
# stay ours, and the push is the one the local stack makes. The local stack
# takes these settings from here (functions/deploy tests compare them).
#
# Pushes go to the function's URL followed by the topic's path,
# /projects/P/topics/T: functions-framework-go reads the event's source
# from it, as it does locally. The OIDC token's audience is the bare URL,
# which is what Cloud Run accepts.

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
  ack_deadline_seconds = 120

  push_config {
    push_endpoint = "${google_cloudfunctions2_function.fn["compressImage"].service_config[0].uri}/projects/${var.project}/topics/${google_pubsub_topic.images.name}"
    oidc_token {
      service_account_email = google_service_account.pusher.email
      audience              = google_cloudfunctions2_function.fn["compressImage"].service_config[0].uri
    }
  }
  retry_policy {
    minimum_backoff = "1s"
    maximum_backoff = "60s"
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
}

resource "google_pubsub_subscription" "dead_letters" {
  name                 = "${var.images_topic}-dead-record"
  topic                = google_pubsub_topic.dead_letters.id
  ack_deadline_seconds = 60

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
