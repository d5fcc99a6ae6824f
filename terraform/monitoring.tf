# What an operator watches: log-based metrics read from the functions'
# structured log lines, alert policies, and one dashboard. The log lines
# are the pipeline's own: "image compressed" (inputBytes, outBytes,
# savedBytes, durationMs), "image failed" (reason), "image dead-lettered",
# "webhook attempt" (outcome), "request stalled" (the sweep's).
#
# Filters. In the Logging query language OR binds tighter than AND
# (a AND b OR c means a AND (b OR c)). Every filter here is a conjunction
# of comparisons and parenthesised disjunctions: no level joins its terms
# with both AND and OR, so a filter means what it reads whatever the
# precedence. functions/deploy checks it, and evaluates each filter
# against the lines the code writes.
#
# First apply. A log-based metric just created can take up to 10 minutes
# to be known to Monitoring, and an alert policy on it fails with 404
# until then (the provider does not retry: terraform-provider-google
# issue 11102). The alerts on single log lines are therefore log-match
# policies, which read the logs and need no metric; the threshold alerts
# read Google's own metrics. The dashboard reads the log-based metrics
# through time series filters only: a query Monitoring compiles when the
# dashboard is saved (MQL, PromQL) fails on a metric it does not know.

locals {
  # The lines each log-based metric counts: written by one of its
  # functions (Cloud Run functions log as revisions of their service),
  # matching lines.
  log_metrics = {
    imgpipe_images_compressed = {
      description = "Images compressed and stored."
      functions   = ["compressImage"]
      lines       = "jsonPayload.message=\"image compressed\""
    }
    imgpipe_images_failed = {
      description = "Images recorded failed, by reason code."
      functions   = ["compressImage", "sweep"]
      lines       = "jsonPayload.message=\"image failed\""
    }
    imgpipe_requests_stalled = {
      description = "Requests a sweep found without progress and acted on (republished images, or recorded them stalled)."
      functions   = ["sweep"]
      lines       = "jsonPayload.message=\"request stalled\""
    }
    imgpipe_images_dead_lettered = {
      description = "Image messages Pub/Sub gave up on (recorded failed: dead_lettered)."
      functions   = ["deadLetter"]
      lines       = "jsonPayload.message=\"image dead-lettered\""
    }
    imgpipe_webhooks_failed = {
      description = "Webhooks that ended FAILED after every attempt."
      functions   = ["deliverWebhook"]
      lines       = "jsonPayload.message=\"webhook attempt\" AND jsonPayload.outcome=\"FAILED\""
    }
  }

  log_filters = { for k, m in local.log_metrics : k => join(" AND ", [
    "resource.type=\"cloud_run_revision\"",
    "resource.labels.service_name=(${join(" OR ", [for f in m.functions : "\"${google_cloudfunctions2_function.fn[f].name}\""])})",
    m.lines,
  ]) }

  # Distributions of one value a compressed image logs, in exponential
  # buckets from 1 to at least the largest value it can take: a step of
  # 1.5 (a value is known to within 50 %), as many steps as reach it.
  distributions = {
    imgpipe_image_duration_ms = {
      field       = "durationMs"
      unit        = "ms"
      description = "Time to fetch, compress, store and count one image."
      largest     = local.functions["compressImage"].timeout * 1000
    }
    imgpipe_bytes_saved = {
      field       = "savedBytes"
      unit        = "By"
      description = "Input bytes minus output bytes of one image."
      largest     = var.max_image_bytes
    }
  }
  bucket_growth = 1.5

  # The compress function's deliveries that failed (5xx: Pub/Sub delivers again).
  run_requests = "metric.type=\"run.googleapis.com/request_count\" AND resource.type=\"cloud_run_revision\""
}

resource "google_logging_metric" "count" {
  for_each    = local.log_metrics
  name        = each.key
  description = each.value.description
  filter      = local.log_filters[each.key]

  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "INT64"
    unit        = "1"
    dynamic "labels" {
      for_each = each.key == "imgpipe_images_failed" ? ["reason"] : []
      content {
        key         = labels.value
        value_type  = "STRING"
        description = "The image's reason code (functions/API.md, Reason codes)."
      }
    }
  }
  label_extractors = each.key == "imgpipe_images_failed" ? { reason = "EXTRACT(jsonPayload.reason)" } : {}
  depends_on       = [time_sleep.apis_ready]
}

resource "google_logging_metric" "distribution" {
  for_each        = local.distributions
  name            = each.key
  description     = each.value.description
  filter          = local.log_filters["imgpipe_images_compressed"]
  value_extractor = "EXTRACT(jsonPayload.${each.value.field})"

  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "DISTRIBUTION"
    unit        = each.value.unit
  }
  bucket_options {
    exponential_buckets {
      num_finite_buckets = max(1, ceil(log(each.value.largest, local.bucket_growth)))
      growth_factor      = local.bucket_growth
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

  # Alerts on a metric: a filter, what is too much, and over how long.
  alerts = {
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
    oldest_unacked = {
      name      = "imgpipe: image messages waiting over 15 minutes"
      filter    = "metric.type=\"pubsub.googleapis.com/subscription/oldest_unacked_message_age\" AND resource.type=\"pubsub_subscription\" AND resource.labels.subscription_id=\"${google_pubsub_subscription.compress.name}\""
      aligner   = "ALIGN_MAX"
      threshold = 900
      duration  = "300s"
      doc       = "The oldest image message has waited over 15 minutes: compressImage is not keeping up (max_instances) or not answering pushes."
    }
  }

  # Alerts on a log line: any line a log-based metric counts (lines: its
  # name), read from the logs themselves.
  log_alerts = {
    dead_lettered = {
      name  = "imgpipe: images dead-lettered"
      lines = "imgpipe_images_dead_lettered"
      doc   = "Pub/Sub gave up on image messages of request $${log.extracted_label.request_id} after max_delivery_attempts. The images are recorded failed (dead_lettered); the compress function's logs say why its deliveries failed."
    }
    webhook_failed = {
      name  = "imgpipe: webhooks FAILED"
      lines = "imgpipe_webhooks_failed"
      doc   = "The webhook of request $${log.extracted_label.request_id} failed every attempt. POST /api/requests/{id}/webhook/redeliver sends it again once the receiver is fixed."
    }
    stalled = {
      name  = "imgpipe: stalled requests swept"
      lines = "imgpipe_requests_stalled"
      doc   = "A sweep found request $${log.extracted_label.request_id} without progress for stall_after and republished its images or recorded them stalled: messages were lost, or their deliveries die before recording anything. The sweep's \"request stalled\" log lines name the request; its images' attempts (requests/{id}/attempts in Firestore) say how often each failed."
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

# A log-match policy has one condition and must limit its notifications:
# at most one every 5 minutes for each request (the label request_id);
# an incident closes after 30 minutes without a matching line.
resource "google_monitoring_alert_policy" "log_alerts" {
  for_each              = local.log_alerts
  display_name          = each.value.name
  combiner              = "OR"
  notification_channels = local.channels

  conditions {
    display_name = each.value.name
    condition_matched_log {
      filter           = local.log_filters[each.value.lines]
      label_extractors = { request_id = "EXTRACT(jsonPayload.requestId)" }
    }
  }

  alert_strategy {
    auto_close = "1800s"
    notification_rate_limit {
      period = "300s"
    }
  }

  documentation {
    content   = each.value.doc
    mime_type = "text/markdown"
  }
  depends_on = [time_sleep.apis_ready]
}

# The API leaves out of a dashboard the fields at their zero value (a tile
# at xPos 0, an empty groupByFields), and the provider compares what it
# reads with this JSON: those fields are left out here too, or every
# apply would update the dashboard.
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
        ] : merge({ for k, v in { xPos = (i % 2) * 6, yPos = floor(i / 2) * 4 } : k => v if v != 0 }, {
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
                    aggregation = merge({
                      alignmentPeriod    = "60s"
                      perSeriesAligner   = w.aligner
                      crossSeriesReducer = w.reducer
                    }, { for k, v in { groupByFields = w.group } : k => v if length(v) > 0 })
                  }
                }
              }]
            }
          }
      })]
    }
  })
  depends_on = [time_sleep.apis_ready]
}

# Deployments whose single-line alerts were threshold policies on the
# log-based metrics keep those policies: moved here, then updated in place.
moved {
  from = google_monitoring_alert_policy.alerts["dead_lettered"]
  to   = google_monitoring_alert_policy.log_alerts["dead_lettered"]
}

moved {
  from = google_monitoring_alert_policy.alerts["webhook_failed"]
  to   = google_monitoring_alert_policy.log_alerts["webhook_failed"]
}

moved {
  from = google_monitoring_alert_policy.alerts["stalled"]
  to   = google_monitoring_alert_policy.log_alerts["stalled"]
}
