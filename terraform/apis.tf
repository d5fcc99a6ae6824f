# The APIs imgpipe uses, enabled before anything that needs them. They stay
# enabled on destroy: other things in the project may use them too.
locals {
  apis = toset([
    "artifactregistry.googleapis.com",     # build images of the functions
    "cloudbuild.googleapis.com",           # builds the function source
    "cloudfunctions.googleapis.com",       # the functions
    "cloudresourcemanager.googleapis.com", # project IAM bindings
    "cloudscheduler.googleapis.com",       # the sweep, every few minutes
    "cloudtasks.googleapis.com",           # webhook deliveries
    "firestore.googleapis.com",            # requests, counters, keys
    "iam.googleapis.com",                  # service accounts
    "iamcredentials.googleapis.com",       # signBlob: signed output and report links
    "logging.googleapis.com",              # build and function logs, log-based metrics
    "monitoring.googleapis.com",           # alert policies, dashboard
    "pubsub.googleapis.com",               # one message per image
    "run.googleapis.com",                  # the functions' services
    "secretmanager.googleapis.com",        # the webhook signing secrets
    "storage.googleapis.com",              # outputs, reports, function source
  ])
}

resource "google_project_service" "apis" {
  for_each           = local.apis
  project            = var.project
  service            = each.value
  disable_on_destroy = false
}

# Enabling a service is eventually consistent: calls made right after it
# may be refused as if it were still disabled (the provider's
# google_project_service guide, "Newly activated service errors"). Every
# other resource waits for this pause, not for the services themselves; a
# change to the list of services waits again.
resource "time_sleep" "apis_ready" {
  create_duration = "60s"
  triggers = {
    apis = join(",", sort(local.apis))
  }
  depends_on = [google_project_service.apis]
}
