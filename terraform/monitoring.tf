# What an operator watches: log-based metrics read from the functions'
# structured log lines, alert policies, and one dashboard. The log lines
# are the pipeline's own: "image compressed" (inputBytes, outBytes,
# savedBytes, durationMs), "image failed" (reason), "image dead-lettered",
# "webhook attempt" (outcome), "request stalled" (the sweep's).

locals {
  # Cloud Run functions log as Cloud Run revisions of their service.
  log_of = { for k, v in google_cloudfunctions2_function.fn : k => "resource.type=\"cloud_run_revision\" AND resource.labels.service_name=\"${v.name}\"" }

  log_metrics = {
    imgpipe_images_compressed = {
      description = "Images compressed and stored."
      filter      = "${local.log_of["compressImage"]} AND jsonPayload.message=\"image compressed\""
    }
    imgpipe_images_failed = {
      description = "Images recorded failed, by reason code."
      filter      = "(${local.log_of["compressImage"]} OR ${local.log_of["sweep"]}) AND jsonPayload.message=\"image failed\""
    }
    imgpipe_requests_stalled = {
      description = "Requests a sweep found without progress and acted on (republished images, or recorded them stalled)."
      filter      = "${local.log_of["sweep"]} AND jsonPayload.message=\"request stalled\""
    }
    imgpipe_images_dead_lettered = {
      description = "Image messages Pub/Sub gave up on (recorded failed: dead_lettered)."
      filter      = "${local.log_of["deadLetter"]} AND jsonPayload.message=\"image dead-lettered\""
    }
    imgpipe_webhooks_failed = {
      description = "Webhooks that ended FAILED after every attempt."
      filter      = "${local.log_of["deliverWebhook"]} AND jsonPayload.message=\"webhook attempt\" AND jsonPayload.outcome=\"FAILED\""
    }
  }

  # The compress function's deliveries that failed (5xx: Pub/Sub delivers again).
  run_requests = "metric.type=\"run.googleapis.com/request_count\" AND resource.type=\"cloud_run_revision\""
}

resource "google_logging_metric" "count" {
  for_each    = local.log_metrics
  name        = each.key
  description = each.value.description
  filter      = each.value.filter

  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "INT64"
    unit        = "1"
    dynamic "labels" {
      for_each = each.key == "imgpipe_images_failed" ? ["reason"] : []
      content {
        key         = labels.value
        value_type  = "STRING"
        description = "The image's reason code (functions/README.md)."
      }
    }
  }
  label_extractors = each.key == "imgpipe_images_failed" ? { reason = "EXTRACT(jsonPayload.reason)" } : {}
  depends_on       = [time_sleep.apis_ready]
}

# Distributions of one value a compressed image logs.
resource "google_logging_metric" "distribution" {
  for_each = {
    imgpipe_image_duration_ms = { field = "durationMs", unit = "ms", description = "Time to fetch, compress, store and count one image." }
    imgpipe_bytes_saved       = { field = "savedBytes", unit = "By", description = "Input bytes minus output bytes of one image." }
  }
  name            = each.key
  description     = each.value.description
  filter          = "${local.log_of["compressImage"]} AND jsonPayload.message=\"image compressed\""
  value_extractor = "EXTRACT(jsonPayload.${each.value.field})"

  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "DISTRIBUTION"
    unit        = each.value.unit
  }
  bucket_options {
    exponential_buckets {
      num_finite_buckets = 40
      growth_factor      = 1.5
      scale              = 1
    }
  }
  depends_on = [time_sleep.apis_ready]
}

resource "google_monitoring_notification_channel" "email" {
  count        = var.alert_email != "" ? 1 : 0
  display_name = "imgpipe operators"
  type         = "email"
  labels       = { email_address = var.alert_email }
  depends_on   = [time_sleep.apis_ready]
}

locals {
  channels = google_monitoring_notification_channel.email[*].id

  # Each alert: a metric filter, what is too much, and over how long.
  alerts = {
    dead_lettered = {
      name      = "imgpipe: images dead-lettered"
      filter    = "metric.type=\"logging.googleapis.com/user/${google_logging_metric.count["imgpipe_images_dead_lettered"].name}\" AND resource.type=\"cloud_run_revision\""
      aligner   = "ALIGN_DELTA"
      threshold = 0
      duration  = "0s"
      doc       = "Pub/Sub gave up on image messages after max_delivery_attempts. The images are recorded failed (dead_lettered); the compress function's logs say why its deliveries failed."
    }
    webhook_failed = {
      name      = "imgpipe: webhooks FAILED"
      filter    = "metric.type=\"logging.googleapis.com/user/${google_logging_metric.count["imgpipe_webhooks_failed"].name}\" AND resource.type=\"cloud_run_revision\""
      aligner   = "ALIGN_DELTA"
      threshold = 0
      duration  = "0s"
      doc       = "A user's webhook failed every attempt. POST /api/requests/{id}/webhook/redeliver sends it again once the receiver is fixed."
    }
    api_5xx = {
      name      = "imgpipe: API answering 5xx"
      filter    = "${local.run_requests} AND resource.labels.service_name=\"${google_cloudfunctions2_function.fn["api"].name}\" AND metric.labels.response_code_class=\"5xx\""
      aligner   = "ALIGN_RATE"
      threshold = 0.05
      duration  = "300s"
      doc       = "More than 3 server errors a minute from the API for 5 minutes. Its logs carry \"api error\" with the cause."
    }
    compress_errors = {
      name      = "imgpipe: compress deliveries failing"
      filter    = "${local.run_requests} AND resource.labels.service_name=\"${google_cloudfunctions2_function.fn["compressImage"].name}\" AND metric.labels.response_code_class=\"5xx\""
      aligner   = "ALIGN_RATE"
      threshold = 1
      duration  = "600s"
      doc       = "More than one failed image delivery a second for 10 minutes: Firestore, Cloud Storage or the image hosts are failing, and Pub/Sub is redelivering."
    }
    stalled = {
      name      = "imgpipe: stalled requests swept"
      filter    = "metric.type=\"logging.googleapis.com/user/${google_logging_metric.count["imgpipe_requests_stalled"].name}\" AND resource.type=\"cloud_run_revision\""
      aligner   = "ALIGN_DELTA"
      threshold = 0
      duration  = "0s"
      doc       = "A sweep found a request without progress for stall_after and republished its images or recorded them stalled: messages were lost, or their deliveries die before recording anything. The sweep's \"request stalled\" log lines name the request; its images' attempts (requests/{id}/attempts in Firestore) say how often each failed."
    }
    oldest_unacked = {
      name      = "imgpipe: image messages waiting over 15 minutes"
      filter    = "metric.type=\"pubsub.googleapis.com/subscription/oldest_unacked_message_age\" AND resource.type=\"pubsub_subscription\" AND resource.labels.subscription_id=\"${google_pubsub_subscription.compress.name}\""
      aligner   = "ALIGN_MAX"
      threshold = 900
      duration  = "300s"
      doc       = "The oldest image message has waited over 15 minutes: compressImage is not keeping up (max_instances) or not answering pushes."
    }
  }
}

resource "google_monitoring_alert_policy" "alerts" {
  for_each              = local.alerts
  display_name          = each.value.name
  combiner              = "OR"
  notification_channels = local.channels

  conditions {
    display_name = each.value.name
    condition_threshold {
      filter          = each.value.filter
      comparison      = "COMPARISON_GT"
      threshold_value = each.value.threshold
      duration        = each.value.duration
      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = each.value.aligner
        cross_series_reducer = "REDUCE_SUM"
      }
    }
  }

  documentation {
    content   = each.value.doc
    mime_type = "text/markdown"
  }
  depends_on = [time_sleep.apis_ready]
}

resource "google_monitoring_dashboard" "imgpipe" {
  dashboard_json = jsonencode({
    displayName = "imgpipe"
    mosaicLayout = {
      columns = 12
      tiles = [for i, w in [
        { title = "Images compressed per minute", metric = google_logging_metric.count["imgpipe_images_compressed"].name, aligner = "ALIGN_DELTA", reducer = "REDUCE_SUM", group = [] },
        { title = "Mean bytes saved per image", metric = google_logging_metric.distribution["imgpipe_bytes_saved"].name, aligner = "ALIGN_DELTA", reducer = "REDUCE_MEAN", group = [] },
        { title = "Time per image, p50 (ms)", metric = google_logging_metric.distribution["imgpipe_image_duration_ms"].name, aligner = "ALIGN_DELTA", reducer = "REDUCE_PERCENTILE_50", group = [] },
        { title = "Time per image, p95 (ms)", metric = google_logging_metric.distribution["imgpipe_image_duration_ms"].name, aligner = "ALIGN_DELTA", reducer = "REDUCE_PERCENTILE_95", group = [] },
        { title = "Failed images per minute, by reason", metric = google_logging_metric.count["imgpipe_images_failed"].name, aligner = "ALIGN_DELTA", reducer = "REDUCE_SUM", group = ["metric.label.reason"] },
        { title = "Dead-lettered images per minute", metric = google_logging_metric.count["imgpipe_images_dead_lettered"].name, aligner = "ALIGN_DELTA", reducer = "REDUCE_SUM", group = [] },
        { title = "Stalled requests swept", metric = google_logging_metric.count["imgpipe_requests_stalled"].name, aligner = "ALIGN_DELTA", reducer = "REDUCE_SUM", group = [] },
        ] : {
        xPos   = (i % 2) * 6
        yPos   = floor(i / 2) * 4
        width  = 6
        height = 4
        widget = {
          title = w.title
          xyChart = {
            dataSets = [{
              plotType = "LINE"
              timeSeriesQuery = {
                timeSeriesFilter = {
                  filter = "metric.type=\"logging.googleapis.com/user/${w.metric}\" AND resource.type=\"cloud_run_revision\""
                  aggregation = {
                    alignmentPeriod    = "60s"
                    perSeriesAligner   = w.aligner
                    crossSeriesReducer = w.reducer
                    groupByFields      = w.group
                  }
                }
              }
            }]
          }
        }
      }]
    }
  })
  depends_on = [time_sleep.apis_ready]
}
