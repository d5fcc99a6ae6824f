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
