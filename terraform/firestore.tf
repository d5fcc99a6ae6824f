# The (default) database, in Native mode. Deleting the stack keeps it (the
# provider's default deletion_policy, ABANDON): requests and API keys are
# data, not infrastructure.
locals {
  firestore_location = var.firestore_location != "" ? var.firestore_location : (
    startswith(var.region, "us-") ? "nam5" : (startswith(var.region, "europe-") ? "eur3" : var.region)
  )
}

resource "google_firestore_database" "default" {
  name        = "(default)"
  location_id = local.firestore_location
  type        = "FIRESTORE_NATIVE"
  depends_on  = [time_sleep.apis_ready]
}

# TTL policies: Firestore deletes a document some time after its expireAt.
# - apiRates: one counter per key and minute, expiring two minutes on;
# - chunks: the products of an upload, expiring a day on unless the upload
#   committed them to a request (which clears expireAt).
resource "google_firestore_field" "ttl" {
  for_each   = toset(["apiRates", "chunks"])
  database   = google_firestore_database.default.name
  collection = each.value
  field      = "expireAt"

  ttl_config {}
  # No single-field indexes on a timestamp nobody queries.
  index_config {}
}
