# The five functions. All are built from one source archive (every function
# ships in every deployment; FUNCTION_TARGET picks one) by a build account
# of our own into a repository of our own.
#
# Sizing rule. Cloud Run serves more than one request per instance only
# with at least 1 CPU, so every function has one. compressImage compresses
# compress_concurrency images at once and takes twice as many deliveries:
# a delivery waiting for an image host (429 and Retry-After, or the
# per-host cap) holds no compression slot, so the others keep the CPU
# busy. Its memory follows from what it may hold: per image compressed,
# the decoded image (at most 8 bytes a pixel at max_pixels: progressive
# JPEG coefficients, or the pixels of the other formats) plus its input
# and output (2 × max_image_bytes); per delivery fetched and waiting for a
# compression slot, its input (max_image_bytes); plus 256 MiB for the
# runtime and clients, rounded up to 256 MiB. With the defaults: 432 MiB
# an image and 25 MiB a waiting input, 4 at once, 2304 MiB. compressImage
# sets the Go soft memory limit to the same rule, and the upload's pixel
# cap keeps an image's outputs within its share (functions/API.md, The
# pixel cap). It gets 2 CPUs (the work is CPU-bound; Cloud Run needs 2
# above 4 GiB), 4 above 8 GiB and 8 above 16 GiB (Cloud Run needs 6 above
# 16 GiB, 8 above 24 GiB); plan fails above Cloud Run's 32 GiB. api holds
# an upload's staged chunks (about 41 MB at the 100k-row limit) per
# request: 16 at once in 1 GiB. Every function but the sweep may run
# max_instances instances.

locals {
  compress_image_mib  = ceil((var.max_pixels * 8 + var.max_image_bytes * 2) / 1048576)
  compress_input_mib  = ceil(var.max_image_bytes / 1048576)
  compress_memory_mib = ceil((256 + var.compress_concurrency * (local.compress_image_mib + local.compress_input_mib)) / 256) * 256
  compress_cpu        = local.compress_memory_mib <= 8192 ? 2 : (local.compress_memory_mib <= 16384 ? 4 : 8)

  functions = {
    api            = { memory = "1Gi", cpu = "1", timeout = 300, concurrency = 16, max_instances = var.max_instances }
    compressImage  = { memory = "${local.compress_memory_mib}Mi", cpu = tostring(local.compress_cpu), timeout = 120, concurrency = 2 * var.compress_concurrency, max_instances = var.max_instances }
    deadLetter     = { memory = "256Mi", cpu = "1", timeout = 60, concurrency = 20, max_instances = var.max_instances }
    deliverWebhook = { memory = "256Mi", cpu = "1", timeout = 60, concurrency = 40, max_instances = var.max_instances }
    # One sweep at a time (one request on one instance): a run that starts
    # while another is at work is refused (429) rather than sweeping the
    # same requests twice. It reads the products of stalled requests a
    # chunk at a time and acts on at most 5,000 images a run.
    sweep = { memory = "512Mi", cpu = "1", timeout = 300, concurrency = 1, max_instances = 1 }
  }

  # Cloud Run function URLs of this form are known before the function
  # exists, so the functions can be told where webhooks are delivered.
  deliver_url = "https://${var.region}-${var.project}.cloudfunctions.net/imgpipe-deliverwebhook"
  sweep_url   = "https://${var.region}-${var.project}.cloudfunctions.net/imgpipe-sweep"

  env = {
    GOOGLE_CLOUD_PROJECT          = var.project
    IMGPIPE_BUCKET                = google_storage_bucket.images.name
    IMGPIPE_PRIVATE_BUCKET        = google_storage_bucket.private.name
    IMGPIPE_LOCATION              = var.region
    IMGPIPE_IMAGES_TOPIC          = google_pubsub_topic.images.name
    IMGPIPE_DEADLETTER_TOPIC      = google_pubsub_topic.dead_letters.name
    IMGPIPE_WEBHOOK_QUEUE         = google_cloud_tasks_queue.webhooks.name
    IMGPIPE_PUBLIC_URL            = var.public_url
    IMGPIPE_OUTPUT_URLS           = var.output_urls
    IMGPIPE_SIGNED_URL_TTL        = var.signed_url_ttl
    IMGPIPE_VIEW_LINK_TTL         = var.view_link_ttl
    IMGPIPE_COMPRESS_CONCURRENCY  = tostring(var.compress_concurrency)
    IMGPIPE_MAX_PIXELS            = tostring(var.max_pixels)
    IMGPIPE_MAX_IMAGE_BYTES       = tostring(var.max_image_bytes)
    IMGPIPE_MAX_DELIVERY_ATTEMPTS = tostring(var.max_failed_attempts)
    IMGPIPE_MAX_FETCHES_PER_HOST  = tostring(var.max_fetches_per_host)
    IMGPIPE_CONTACT_URL           = var.contact_url
    IMGPIPE_WEBHOOK_MAX_ATTEMPTS  = tostring(var.webhook_max_attempts)
    IMGPIPE_WEBHOOK_MIN_BACKOFF   = var.webhook_min_backoff
    IMGPIPE_WEBHOOK_MAX_BACKOFF   = var.webhook_max_backoff
    IMGPIPE_WEBHOOK_MAX_DOUBLINGS = tostring(var.webhook_max_doublings)
    IMGPIPE_WEBHOOK_DELIVERY_URL  = local.deliver_url
    IMGPIPE_TASKS_SERVICE_ACCOUNT = google_service_account.pusher.email
    IMGPIPE_TASKS_OIDC_AUDIENCE   = local.deliver_url
    IMGPIPE_SWEEP_URL             = local.sweep_url
    IMGPIPE_STALL_AFTER           = var.stall_after
    IMGPIPE_SWEEP_MAX_REPUBLISH   = tostring(var.sweep_max_republish)
  }
}

resource "google_cloudfunctions2_function" "fn" {
  for_each = local.functions
  name     = "imgpipe-${lower(each.key)}"
  location = var.region

  # Cloud Run gives an instance at most 32 GiB; compressImage's memory
  # grows with max_pixels, max_image_bytes and compress_concurrency.
  lifecycle {
    precondition {
      condition     = each.key != "compressImage" || local.compress_memory_mib <= 32768
      error_message = "compressImage would need ${local.compress_memory_mib} MiB (256 + ${var.compress_concurrency} × (${local.compress_image_mib} + ${local.compress_input_mib}) MiB at max_pixels = ${var.max_pixels}, max_image_bytes = ${var.max_image_bytes}, compress_concurrency = ${var.compress_concurrency}), above Cloud Run's 32768 MiB an instance: lower max_pixels, max_image_bytes or compress_concurrency."
    }
  }

  build_config {
    runtime           = "go126"
    entry_point       = each.key
    service_account   = google_service_account.build.id
    docker_repository = google_artifact_registry_repository.functions.id
    source {
      storage_source {
        bucket = google_storage_bucket.source.name
        object = google_storage_bucket_object.source.name
      }
    }
  }

  service_config {
    available_memory                 = each.value.memory
    available_cpu                    = each.value.cpu
    timeout_seconds                  = each.value.timeout
    max_instance_request_concurrency = each.value.concurrency
    max_instance_count               = each.value.max_instances
    service_account_email            = google_service_account.functions.email
    environment_variables            = local.env
    ingress_settings                 = "ALLOW_ALL"
    all_traffic_on_latest_revision   = true

    secret_environment_variables {
      key        = "IMGPIPE_WEBHOOK_SECRETS"
      project_id = var.project
      secret     = google_secret_manager_secret.webhook.secret_id
      version    = var.webhook_secrets_version
    }

    secret_environment_variables {
      key        = "IMGPIPE_VIEW_LINK_KEYS"
      project_id = var.project
      secret     = google_secret_manager_secret.view_link_keys.secret_id
      version    = var.view_link_keys_version
    }
  }

  # The grants' pause follows the APIs' pause (every grant waits for it);
  # the first secret versions exist before any instance starts.
  depends_on = [
    time_sleep.grants_propagated,
    google_secret_manager_secret_version.webhook_first,
    google_secret_manager_secret_version.view_link_keys_first,
  ]
}

# The API is public: it checks API keys itself.
resource "google_cloud_run_service_iam_member" "public_api" {
  location = var.region
  service  = google_cloudfunctions2_function.fn["api"].service_config[0].service
  role     = "roles/run.invoker"
  member   = "allUsers"
}

# The others answer only Pub/Sub pushes, Cloud Tasks and Cloud Scheduler,
# all of which call as the pusher account: this binding is the gate, and
# make deploy-check fails if any other member may invoke them.
resource "google_cloud_run_service_iam_member" "pusher" {
  for_each = toset(["compressImage", "deadLetter", "deliverWebhook", "sweep"])
  location = var.region
  service  = google_cloudfunctions2_function.fn[each.key].service_config[0].service
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.pusher.email}"
}
