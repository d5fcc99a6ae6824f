# terraform test with mocked providers: the configuration plans and
# applies (against mocks) with the defaults, with public outputs and with
# pinned secret versions, and what it computes is what the README says.
# make deploy-check runs it where the providers can be installed.

mock_provider "google" {
  mock_resource "google_service_account" {
    defaults = {
      email = "imgpipe-mock@acme-prod.iam.gserviceaccount.com"
      name  = "projects/acme-prod/serviceAccounts/imgpipe-mock@acme-prod.iam.gserviceaccount.com"
      id    = "projects/acme-prod/serviceAccounts/imgpipe-mock@acme-prod.iam.gserviceaccount.com"
    }
  }
  mock_resource "google_cloudfunctions2_function" {
    defaults = {
      service_config = {
        uri     = "https://imgpipe-mock-abc123-uc.a.run.app"
        service = "imgpipe-mock"
      }
    }
  }
  mock_resource "google_pubsub_topic" {
    defaults = {
      id = "projects/acme-prod/topics/imgpipe-mock"
    }
  }
  mock_resource "google_pubsub_subscription" {
    defaults = {
      id = "projects/acme-prod/subscriptions/imgpipe-mock"
    }
  }
  mock_resource "google_secret_manager_secret" {
    defaults = {
      id = "projects/acme-prod/secrets/imgpipe-mock"
    }
  }
  mock_resource "google_artifact_registry_repository" {
    defaults = {
      id = "projects/acme-prod/locations/us-central1/repositories/imgpipe-functions"
    }
  }
  mock_data "google_project" {
    defaults = {
      number = "123456789012"
    }
  }
}

mock_provider "time" {}

variables {
  project         = "acme-prod"
  source_archive  = "versions.tf"
  webhook_secrets = "whsec_bW9jay1zZWNyZXQtbW9jay1zZWNyZXQtbW9jay1zZWNyZXQ="
  view_link_keys  = "bW9jay1rZXktbW9jay1rZXktbW9jay1rZXktbW9jay1rZXk="
}

run "defaults_plan" {
  command = plan

  assert {
    condition     = google_storage_bucket.images.public_access_prevention == "enforced" && google_storage_bucket.private.public_access_prevention == "enforced"
    error_message = "with the defaults both buckets must enforce public access prevention"
  }
  assert {
    condition     = length(google_storage_bucket_iam_member.public_read) == 0
    error_message = "with the defaults no one may read the output bucket publicly"
  }
  assert {
    condition     = google_firestore_database.default.location_id == "nam5"
    error_message = "Firestore follows us-central1 into nam5"
  }
  assert {
    condition     = time_sleep.apis_ready.create_duration == "60s" && time_sleep.grants_propagated.create_duration == "60s"
    error_message = "the first apply waits 60 s after the APIs and after the grants"
  }
  assert {
    condition     = google_secret_manager_secret_version.webhook_first.secret_data_wo_version == 1 && google_secret_manager_secret_version.webhook_first.deletion_policy == "ABANDON"
    error_message = "the first webhook secret version is written once and never deleted by Terraform"
  }
}

run "defaults_apply" {
  assert {
    condition     = alltrue([for k, f in google_cloudfunctions2_function.fn : f.service_config[0].secret_environment_variables[0].version == "latest"])
    error_message = "without make, the functions read the latest secret versions"
  }
  assert {
    condition     = google_cloudfunctions2_function.fn["compressImage"].service_config[0].available_memory == "2304Mi"
    error_message = "compressImage's memory follows the sizing rule (2304 MiB at the defaults)"
  }
  assert {
    condition     = google_cloudfunctions2_function.fn["sweep"].service_config[0].max_instance_count == 1
    error_message = "the sweep runs one instance at most"
  }
  assert {
    condition     = !strcontains(google_monitoring_dashboard.imgpipe.dashboard_json, "\"xPos\":0") && !strcontains(google_monitoring_dashboard.imgpipe.dashboard_json, "\"yPos\":0")
    error_message = "the dashboard JSON carries no zero positions (the API drops them, and the diff would never settle)"
  }
}

run "public_outputs" {
  command = plan
  variables {
    output_urls = "public"
  }
  assert {
    condition     = length(google_storage_bucket_iam_member.public_read) == 1 && google_storage_bucket_iam_member.public_read[0].role == "roles/storage.legacyObjectReader"
    error_message = "public outputs grant allUsers object reads, never listing"
  }
  assert {
    condition     = google_storage_bucket.private.public_access_prevention == "enforced"
    error_message = "the private bucket stays private with public outputs"
  }
}

run "pinned_secret_versions" {
  command = plan
  variables {
    webhook_secrets_version = "3"
    view_link_keys_version  = "2"
    region                  = "europe-west4"
  }
  assert {
    condition = alltrue([for k, f in google_cloudfunctions2_function.fn : contains(
      [for s in f.service_config[0].secret_environment_variables : "${s.key}=${s.version}"], "IMGPIPE_WEBHOOK_SECRETS=3"
    )])
    error_message = "make deploy's pinned webhook secret version reaches every function"
  }
  assert {
    condition = alltrue([for k, f in google_cloudfunctions2_function.fn : contains(
      [for s in f.service_config[0].secret_environment_variables : "${s.key}=${s.version}"], "IMGPIPE_VIEW_LINK_KEYS=2"
    )])
    error_message = "make deploy's pinned status link key version reaches every function"
  }
  assert {
    condition     = google_firestore_database.default.location_id == "eur3"
    error_message = "Firestore follows europe-west4 into eur3"
  }
}

run "secret_version_refused" {
  command = plan
  variables {
    webhook_secrets_version = "0"
  }
  expect_failures = [var.webhook_secrets_version]
}
