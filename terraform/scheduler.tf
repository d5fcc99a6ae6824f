# The sweep: every few minutes Cloud Scheduler calls the sweep function as
# the pusher account, which gets unfinished requests without progress moving
# again (functions/PIPELINE.md, "Nothing stays PENDING forever"). A run that
# fails is not retried: the next one comes within minutes.
resource "google_cloud_scheduler_job" "sweep" {
  name             = "imgpipe-sweep"
  region           = var.region
  description      = "Republishes the images of stalled imgpipe requests; records stalled the ones that never finish."
  schedule         = var.sweep_schedule
  time_zone        = "Etc/UTC"
  attempt_deadline = "320s"

  retry_config {
    retry_count = 0
  }

  http_target {
    http_method = "POST"
    uri         = local.sweep_url
    oidc_token {
      service_account_email = google_service_account.pusher.email
      audience              = local.sweep_url
    }
  }

  depends_on = [time_sleep.apis_ready, google_cloud_run_service_iam_member.pusher]
}
