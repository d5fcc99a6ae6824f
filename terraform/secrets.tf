# The webhook signing secrets live in Secret Manager. Their value reaches it
# through a write-only attribute, so it is in neither the state nor the plan;
# only the functions' account may read it.
resource "google_secret_manager_secret" "webhook" {
  secret_id  = "imgpipe-webhook-secrets"
  depends_on = [google_project_service.apis]

  replication {
    auto {}
  }
}

resource "google_secret_manager_secret_version" "webhook" {
  secret                 = google_secret_manager_secret.webhook.id
  secret_data_wo         = var.webhook_secrets
  secret_data_wo_version = var.webhook_secrets_version
}

resource "google_secret_manager_secret_iam_member" "functions_read_webhook" {
  secret_id = google_secret_manager_secret.webhook.id
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.functions.email}"
}
