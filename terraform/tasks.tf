# Webhook deliveries: one task per delivery, retried with exponential
# backoff; the functions read the same settings from their environment.
resource "google_cloud_tasks_queue" "webhooks" {
  name       = var.webhook_queue
  location   = var.region
  depends_on = [time_sleep.apis_ready]

  retry_config {
    max_attempts  = var.webhook_max_attempts
    min_backoff   = var.webhook_min_backoff
    max_backoff   = var.webhook_max_backoff
    max_doublings = var.webhook_max_doublings
  }
}
