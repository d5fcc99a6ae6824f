package batch

// Reason codes: why an image failed, as users read it in the status, the
// report and the webhook. Every code is defined here, once; the packages
// that detect a failure use these constants.
const (
	// ReasonHTTPPrefix is followed by the image host's status: http_404.
	ReasonHTTPPrefix = "http_"

	// Fetching (shared/outbound).
	ReasonBlockedAddress    = "blocked_address"
	ReasonUnsupportedScheme = "unsupported_scheme"
	ReasonFetchTooLarge     = "too_large"
	ReasonTimeout           = "timeout"
	ReasonTooManyRedirects  = "too_many_redirects"
	ReasonDNSNotFound       = "dns_not_found"
	ReasonConnectionFailed  = "connection_failed"
	ReasonCanceled          = "canceled"

	// Decoding (shared/imagework).
	ReasonNotAnImage        = "not_an_image"
	ReasonUnsupportedFormat = "unsupported_format"
	ReasonTooManyPixels     = "too_many_pixels"
	ReasonTooLargeDimension = "too_large_dimension"
	ReasonCorruptImage      = "corrupt_image"

	// Storing, queueing, giving up (shared/blob, shared/pipeline).
	ReasonStorageUnavailable = "storage_unavailable"
	ReasonPublishFailed      = "publish_failed"
	ReasonDeadLettered       = "dead_lettered"
	// ReasonStalled: the image had no result and no delivery in flight
	// for the stall window, and republishing it did not help.
	ReasonStalled = "stalled"
	// ReasonInternal is what an error without a reason records
	// (fault.ReasonOf).
	ReasonInternal = "internal"
)

// Reasons lists every reason code; ReasonHTTPPrefix stands for all
// http_NNN.
var Reasons = []string{
	ReasonHTTPPrefix + "NNN",
	ReasonBlockedAddress, ReasonUnsupportedScheme, ReasonFetchTooLarge, ReasonTimeout, ReasonTooManyRedirects,
	ReasonDNSNotFound, ReasonConnectionFailed, ReasonCanceled,
	ReasonNotAnImage, ReasonUnsupportedFormat, ReasonTooManyPixels, ReasonTooLargeDimension, ReasonCorruptImage,
	ReasonStorageUnavailable, ReasonPublishFailed, ReasonDeadLettered, ReasonStalled, ReasonInternal,
}
