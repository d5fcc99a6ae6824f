# Three identities, each with only what it needs:
# - functions: what the functions run as (Firestore, Pub/Sub, Cloud Tasks,
#   the images bucket, the webhook secret, signing its own links);
# - pusher: the OIDC identity of Pub/Sub pushes and webhook tasks, allowed
#   to invoke the four private functions and nothing else;
# - build: what Cloud Build builds the function source as.

resource "google_service_account" "functions" {
  account_id   = "imgpipe-functions"
  display_name = "imgpipe functions"
  depends_on   = [time_sleep.apis_ready]
}

resource "google_service_account" "pusher" {
  account_id   = "imgpipe-pusher"
  display_name = "imgpipe Pub/Sub push and Cloud Tasks identity"
  depends_on   = [time_sleep.apis_ready]
}

resource "google_service_account" "build" {
  account_id   = "imgpipe-build"
  display_name = "imgpipe Cloud Build"
  depends_on   = [time_sleep.apis_ready]
}

resource "google_project_iam_member" "functions" {
  for_each = toset(["roles/datastore.user", "roles/pubsub.publisher", "roles/cloudtasks.enqueuer", "roles/logging.logWriter"])
  project  = var.project
  role     = each.value
  member   = "serviceAccount:${google_service_account.functions.email}"
}

# Signed links (outputs when output_urls = "signed", and large reports) are
# signed with the functions' own account through signBlob: the right to
# mint its tokens is granted on that account alone, not on the project.
resource "google_service_account_iam_member" "functions_sign_own_links" {
  service_account_id = google_service_account.functions.name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = "serviceAccount:${google_service_account.functions.email}"
}

# The functions create webhook tasks that carry the pusher's OIDC token.
resource "google_service_account_iam_member" "functions_act_as_pusher" {
  service_account_id = google_service_account.pusher.name
  role               = "roles/iam.serviceAccountUser"
  member             = "serviceAccount:${google_service_account.functions.email}"
}

# Cloud Functions copies the source into its own gcf-v2-sources bucket, which
# the build reads: object reads are granted on the project for that reason.
resource "google_project_iam_member" "build" {
  for_each = toset(["roles/logging.logWriter", "roles/storage.objectViewer"])
  project  = var.project
  role     = each.value
  member   = "serviceAccount:${google_service_account.build.email}"
}

resource "google_artifact_registry_repository_iam_member" "build_writer" {
  location   = google_artifact_registry_repository.functions.location
  repository = google_artifact_registry_repository.functions.name
  role       = "roles/artifactregistry.writer"
  member     = "serviceAccount:${google_service_account.build.email}"
}

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

data "google_project" "this" {
  project_id = var.project
  depends_on = [time_sleep.apis_ready]
}

# IAM grants take effect eventually. The build reads the source and writes
# the image as the build account, and each function's deployment checks
# that the runtime account can read its secrets: started seconds after
# those grants, either may be refused. The functions wait for this pause
# after every grant they need to be built and started, as the provider's
# own "Cloudfunctions2 Basic Builder" example does.
resource "time_sleep" "grants_propagated" {
  create_duration = "60s"
  depends_on = [
    google_project_iam_member.build,
    google_artifact_registry_repository_iam_member.build_writer,
    google_project_iam_member.functions,
    google_service_account_iam_member.functions_sign_own_links,
    google_service_account_iam_member.functions_act_as_pusher,
    google_storage_bucket_iam_member.functions_write_images,
    google_storage_bucket_iam_member.functions_write_private,
    google_secret_manager_secret_iam_member.functions_read_webhook,
    google_secret_manager_secret_iam_member.functions_read_view_link_keys,
  ]
}
