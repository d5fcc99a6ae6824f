locals {
  bucket         = var.bucket != "" ? var.bucket : "${var.project}-imgpipe-images"
  private_bucket = "${var.project}-imgpipe-private"
  # A status page link lives view_link_ttl from the upload; its thumbnails,
  # written while the request is compressed, are kept a day longer.
  thumbs_days = ceil(tonumber(trimsuffix(var.view_link_ttl, "h")) / 24) + 1
}

# Compressed images. Private unless output_urls = "public", which lets
# anyone read an object whose name they know and no one list the bucket:
# roles/storage.legacyObjectReader is storage.objects.get alone, where
# roles/storage.objectViewer would add storage.objects.list.
resource "google_storage_bucket" "images" {
  name                        = local.bucket
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = var.output_urls == "public" ? "inherited" : "enforced"
  depends_on                  = [time_sleep.apis_ready]
}

resource "google_storage_bucket_iam_member" "functions_write_images" {
  bucket = google_storage_bucket.images.name
  role   = "roles/storage.objectAdmin"
  member = "serviceAccount:${google_service_account.functions.email}"
}

resource "google_storage_bucket_iam_member" "public_read" {
  count  = var.output_urls == "public" ? 1 : 0
  bucket = google_storage_bucket.images.name
  role   = "roles/storage.legacyObjectReader"
  member = "allUsers"
}

# Reports too large to answer inline (under reports/) and the status
# page's thumbnails (under thumbs/): never public, whatever output_urls
# says; reached only through the functions or links they sign.
resource "google_storage_bucket" "private" {
  name                        = local.private_bucket
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  depends_on                  = [time_sleep.apis_ready]

  # Reports are written again on demand; old copies are only cost.
  lifecycle_rule {
    condition {
      age            = 7
      matches_prefix = ["reports/"]
    }
    action {
      type = "Delete"
    }
  }

  # A thumbnail is of no use once every link to its status page expired.
  lifecycle_rule {
    condition {
      age            = local.thumbs_days
      matches_prefix = ["thumbs/"]
    }
    action {
      type = "Delete"
    }
  }
}

resource "google_storage_bucket_iam_member" "functions_write_private" {
  bucket = google_storage_bucket.private.name
  role   = "roles/storage.objectAdmin"
  member = "serviceAccount:${google_service_account.functions.email}"
}

# The zipped function source, one object per content hash: a changed
# source is a new object name, which makes the functions rebuild.
resource "google_storage_bucket" "source" {
  name                        = "${var.project}-imgpipe-source"
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  depends_on                  = [time_sleep.apis_ready]
}

resource "google_storage_bucket_object" "source" {
  name   = "imgpipe-${filesha256(var.source_archive)}.zip"
  bucket = google_storage_bucket.source.name
  source = var.source_archive
}

# Function build images, in a repository of our own so the build account
# writes there and nowhere else.
resource "google_artifact_registry_repository" "functions" {
  location      = var.region
  repository_id = "imgpipe-functions"
  format        = "DOCKER"
  description   = "imgpipe function images"
  depends_on    = [time_sleep.apis_ready]

  cleanup_policies {
    id     = "keep-recent"
    action = "KEEP"
    most_recent_versions {
      keep_count = 10
    }
  }
  cleanup_policies {
    id     = "delete-old"
    action = "DELETE"
    condition {
      older_than = "2592000s"
    }
  }
}
