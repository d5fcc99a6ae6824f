# Two secrets live in Secret Manager, each readable by the functions' account
# alone. Secret Manager holds their versions, and is the one place that
# says which is current:
# - the first version of each is written here, from an ephemeral variable
#   through a write-only attribute (in neither the state nor the plan),
#   once: it is never replaced, and never deleted or re-enabled by
#   Terraform (deletion_policy ABANDON, enabled ignored);
# - later versions are added by `make rotate-secrets` (terraform/deploy.sh),
#   never by an apply, so no apply, from any machine or without make, can
#   write an older value over a newer one;
# - the functions read the version named by webhook_secrets_version and
#   view_link_keys_version: make deploy passes the newest enabled version's
#   number, read from Secret Manager; an apply without it reads "latest",
#   the newest version, which make deploy keeps enabled. Older versions are
#   disabled only after an apply has moved every function off them, so an
#   instance always starts on a readable version.

# The webhook signing secrets: webhook receivers hold them too, to check
# each delivery's signature.
resource "google_secret_manager_secret" "webhook" {
  secret_id  = "imgpipe-webhook-secrets"
  depends_on = [time_sleep.apis_ready]

  replication {
    auto {}
  }
}

resource "google_secret_manager_secret_version" "webhook_first" {
  secret                 = google_secret_manager_secret.webhook.id
  secret_data_wo         = var.webhook_secrets
  secret_data_wo_version = 1
  deletion_policy        = "ABANDON"

  lifecycle {
    ignore_changes = [enabled, secret_data_wo_version]
  }
}

resource "google_secret_manager_secret_iam_member" "functions_read_webhook" {
  secret_id = google_secret_manager_secret.webhook.id
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.functions.email}"
}

# The keys signing the status page links. Server-only: whoever holds one
# can open any tenant's status page, so it is never given to anyone, and
# dropping a key revokes every link it signed.
resource "google_secret_manager_secret" "view_link_keys" {
  secret_id  = "imgpipe-view-link-keys"
  depends_on = [time_sleep.apis_ready]

  replication {
    auto {}
  }
}

resource "google_secret_manager_secret_version" "view_link_keys_first" {
  secret                 = google_secret_manager_secret.view_link_keys.id
  secret_data_wo         = var.view_link_keys
  secret_data_wo_version = 1
  deletion_policy        = "ABANDON"

  lifecycle {
    ignore_changes = [enabled, secret_data_wo_version]
  }
}

resource "google_secret_manager_secret_iam_member" "functions_read_view_link_keys" {
  secret_id = google_secret_manager_secret.view_link_keys.id
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.functions.email}"
}

# Deployments made when each new value replaced the version resource keep
# their live version: moved here, and never replaced again.
moved {
  from = google_secret_manager_secret_version.webhook
  to   = google_secret_manager_secret_version.webhook_first
}

moved {
  from = google_secret_manager_secret_version.view_link_keys
  to   = google_secret_manager_secret_version.view_link_keys_first
}
