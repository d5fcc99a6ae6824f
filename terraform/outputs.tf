output "api_url" {
  description = "Base URL of the API: POST {api_url}/api/upload."
  value       = google_cloudfunctions2_function.fn["api"].service_config[0].uri
}

output "bucket" {
  description = "Bucket holding the compressed images (public to read only when output_urls = \"public\")."
  value       = google_storage_bucket.images.name
}

output "functions_service_account" {
  description = "Account the functions run as."
  value       = google_service_account.functions.email
}

output "pusher_service_account" {
  description = "Identity of Pub/Sub pushes and webhook tasks (the only invoker of the private functions)."
  value       = google_service_account.pusher.email
}

output "build_service_account" {
  description = "Account Cloud Build builds the functions as."
  value       = google_service_account.build.email
}

output "webhook_secret_name" {
  description = "Secret Manager secret holding IMGPIPE_WEBHOOK_SECRETS."
  value       = google_secret_manager_secret.webhook.secret_id
}

output "private_bucket" {
  description = "Private bucket holding large reports and the status page's thumbnails."
  value       = google_storage_bucket.private.name
}

output "view_link_keys_secret_name" {
  description = "Secret Manager secret holding IMGPIPE_VIEW_LINK_KEYS (server-only)."
  value       = google_secret_manager_secret.view_link_keys.secret_id
}
