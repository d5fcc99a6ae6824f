# Two secrets live in Secret Manager, each readable by the functions' account
# alone. Their values reach it through a write-only attribute, so they are
# in neither the state nor the plan.
#
# A new value is a new secret version, which replaces the old one: the new
# version is created and the functions rolled onto it before the old one is
# deleted (create_before_destroy), so no instance starts against a version
# that is gone.

# The webhook signing secrets: webhook receivers hold them too, to check
# each delivery's signature.
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

  lifecycle {
    create_before_destroy = true
  }
}

resource "google_secret_manager_secret_iam_member" "functions_read_webhook" {
  secret_id = google_secret_manager_secret.webhook.id
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.functions.email}"
}

# The keys signing the status page links. Server-only: whoever holds one
# can open any tenant's status page, so it is never given to anyone, and
# replacing it revokes every link it signed.
resource "google_secret_manager_secret" "view_link_keys" {
  secret_id  = "imgpipe-view-link-keys"
  depends_on = [google_project_service.apis]

  replication {
    auto {}
  }
}

resource "google_secret_manager_secret_version" "view_link_keys" {
  secret                 = google_secret_manager_secret.view_link_keys.id
  secret_data_wo         = var.view_link_keys
  secret_data_wo_version = var.view_link_keys_version

  lifecycle {
    create_before_destroy = true
  }
}

resource "google_secret_manager_secret_iam_member" "functions_read_view_link_keys" {
  secret_id = google_secret_manager_secret.view_link_keys.id
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.functions.email}"
}
