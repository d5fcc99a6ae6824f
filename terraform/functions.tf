# The functions, their service accounts and the Pub/Sub wiring.
#
# compressImage and deadLetter are CloudEvent functions fed by our own push
# subscriptions (not Eventarc triggers): that is how the dead-letter policy
# and the ack deadline stay ours, and it is the path the local stack tests
# (functions-framework-go turns a raw push into a messagePublished event).

variable "source_bucket" {
  type        = string
  description = "Bucket holding the zipped source (make deploy-source uploads it)."
}

variable "source_object" {
  type        = string
  description = "Object name of the zipped source."
}

variable "public_url" {
  type        = string
  default     = ""
  description = "IMGPIPE_PUBLIC_URL: base URL of the API in links; empty derives it from each request."
}

variable "compress_concurrency" {
  type        = number
  default     = 5
  description = "Requests one compress instance serves at once (IMGPIPE_COMPRESS_CONCURRENCY)."
}

variable "webhook_secrets" {
  type        = string
  sensitive   = true
  description = "IMGPIPE_WEBHOOK_SECRETS: comma-separated whsec_<base64> secrets (newest first while rotating)."
}

variable "max_delivery_attempts" {
  type        = number
  default     = 5
  description = "Deliveries of an image message before it is recorded failed; also the dead-letter policy."
}

locals {
  env = {
    GOOGLE_CLOUD_PROJECT          = var.project
    IMGPIPE_BUCKET                = var.bucket
    IMGPIPE_LOCATION              = var.region
    IMGPIPE_IMAGES_TOPIC          = google_pubsub_topic.images.name
    IMGPIPE_DEADLETTER_TOPIC      = google_pubsub_topic.dead_letters.name
    IMGPIPE_WEBHOOK_QUEUE         = google_cloud_tasks_queue.webhooks.name
    IMGPIPE_PUBLIC_URL            = var.public_url
    IMGPIPE_OUTPUT_URLS           = "public"
    IMGPIPE_COMPRESS_CONCURRENCY  = tostring(var.compress_concurrency)
    IMGPIPE_MAX_DELIVERY_ATTEMPTS = tostring(var.max_delivery_attempts)
    IMGPIPE_WEBHOOK_SECRETS       = var.webhook_secrets
    IMGPIPE_WEBHOOK_MAX_ATTEMPTS  = tostring(var.webhook_max_attempts)
    IMGPIPE_WEBHOOK_DELIVERY_URL  = local.deliver_url
    IMGPIPE_TASKS_SERVICE_ACCOUNT = google_service_account.pusher.email
    IMGPIPE_TASKS_OIDC_AUDIENCE   = local.deliver_url
  }
  # Cloud Run function URLs are deterministic: https://REGION-PROJECT.cloudfunctions.net/NAME.
  deliver_url = "https://${var.region}-${var.project}.cloudfunctions.net/imgpipe-deliverwebhook"
  functions = {
    api            = { memory = "512Mi", timeout = 300, concurrency = 20, public = true }
    compressImage  = { memory = "1Gi", timeout = 120, concurrency = var.compress_concurrency, public = false }
    deadLetter     = { memory = "256Mi", timeout = 60, concurrency = 20, public = false }
    deliverWebhook = { memory = "256Mi", timeout = 60, concurrency = 40, public = false }
  }
}

resource "google_service_account" "functions" {
  account_id   = "imgpipe-functions"
  display_name = "imgpipe functions"
}

resource "google_service_account" "pusher" {
  account_id   = "imgpipe-pusher"
  display_name = "imgpipe Pub/Sub push identity"
}

resource "google_project_iam_member" "functions" {
  for_each = toset(["roles/datastore.user", "roles/pubsub.publisher", "roles/cloudtasks.enqueuer", "roles/iam.serviceAccountTokenCreator"])
  project  = var.project
  role     = each.value
  member   = "serviceAccount:${google_service_account.functions.email}"
}

resource "google_storage_bucket_iam_member" "writer" {
  bucket = google_storage_bucket.images.name
  role   = "roles/storage.objectAdmin"
  member = "serviceAccount:${google_service_account.functions.email}"
}

resource "google_storage_bucket_iam_member" "public_read" {
  bucket = google_storage_bucket.images.name
  role   = "roles/storage.objectViewer"
  member = "allUsers"
}

resource "google_cloudfunctions2_function" "fn" {
  for_each = local.functions
  name     = "imgpipe-${lower(each.key)}"
  location = var.region

  build_config {
    runtime     = "go126"
    entry_point = each.key
    source {
      storage_source {
        bucket = var.source_bucket
        object = var.source_object
      }
    }
  }

  service_config {
    available_memory                 = each.value.memory
    timeout_seconds                  = each.value.timeout
    max_instance_request_concurrency = each.value.concurrency
    max_instance_count               = 100
    service_account_email            = google_service_account.functions.email
    environment_variables            = local.env
    ingress_settings                 = "ALLOW_ALL"
  }
}

resource "google_cloud_run_service_iam_member" "public_api" {
  location = var.region
  service  = google_cloudfunctions2_function.fn["api"].service_config[0].service
  role     = "roles/run.invoker"
  member   = "allUsers"
}

resource "google_cloud_run_service_iam_member" "pusher" {
  for_each = toset(["compressImage", "deadLetter", "deliverWebhook"])
  location = var.region
  service  = google_cloudfunctions2_function.fn[each.key].service_config[0].service
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.pusher.email}"
}

resource "google_pubsub_topic" "dead_letters" {
  name = "${var.images_topic}-dead"
}

resource "google_pubsub_subscription" "compress" {
  name                 = "${var.images_topic}-compress"
  topic                = google_pubsub_topic.images.id
  ack_deadline_seconds = 120

  push_config {
    push_endpoint = google_cloudfunctions2_function.fn["compressImage"].service_config[0].uri
    oidc_token {
      service_account_email = google_service_account.pusher.email
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
}

resource "google_pubsub_subscription" "dead_letters" {
  name                 = "${var.images_topic}-dead-record"
  topic                = google_pubsub_topic.dead_letters.id
  ack_deadline_seconds = 60

  push_config {
    push_endpoint = google_cloudfunctions2_function.fn["deadLetter"].service_config[0].uri
    oidc_token {
      service_account_email = google_service_account.pusher.email
    }
  }
}

data "google_project" "this" {}

# Pub/Sub's own agent forwards dead letters and acknowledges the originals.
resource "google_pubsub_topic_iam_member" "dead_letter_publisher" {
  topic  = google_pubsub_topic.dead_letters.id
  role   = "roles/pubsub.publisher"
  member = "serviceAccount:service-${data.google_project.this.number}@gcp-sa-pubsub.iam.gserviceaccount.com"
}

resource "google_pubsub_subscription_iam_member" "dead_letter_subscriber" {
  subscription = google_pubsub_subscription.compress.id
  role         = "roles/pubsub.subscriber"
  member       = "serviceAccount:service-${data.google_project.this.number}@gcp-sa-pubsub.iam.gserviceaccount.com"
}

output "api_url" {
  value = google_cloudfunctions2_function.fn["api"].service_config[0].uri
}

# The functions create tasks that carry the pusher's OIDC token.
resource "google_service_account_iam_member" "act_as_pusher" {
  service_account_id = google_service_account.pusher.name
  role               = "roles/iam.serviceAccountUser"
  member             = "serviceAccount:${google_service_account.functions.email}"
}
