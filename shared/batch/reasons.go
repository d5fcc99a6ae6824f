package batch

import "strings"

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
	// ReasonHostThrottled: the image host asked imgpipe to wait (429 or
	// 503 with Retry-After) longer in all than an image may wait.
	ReasonHostThrottled = "host_throttled"

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
	ReasonDNSNotFound, ReasonConnectionFailed, ReasonCanceled, ReasonHostThrottled,
	ReasonNotAnImage, ReasonUnsupportedFormat, ReasonTooManyPixels, ReasonTooLargeDimension, ReasonCorruptImage,
	ReasonStorageUnavailable, ReasonPublishFailed, ReasonDeadLettered, ReasonStalled, ReasonInternal,
}

// reasonTexts say each reason in words, for people (the status page).
var reasonTexts = map[string]string{
	ReasonBlockedAddress:     "The address is one imgpipe never fetches (private, loopback or a metadata server).",
	ReasonUnsupportedScheme:  "The link is not an http or https URL on an allowed port.",
	ReasonFetchTooLarge:      "The file is larger than the size limit.",
	ReasonTimeout:            "The image host took too long to send the image.",
	ReasonTooManyRedirects:   "The link redirected too many times.",
	ReasonDNSNotFound:        "The host name does not exist.",
	ReasonConnectionFailed:   "The image host refused or dropped the connection.",
	ReasonCanceled:           "The image ran out of time before it was done.",
	ReasonHostThrottled:      "The image host kept asking imgpipe to come back later, for longer than an image may wait.",
	ReasonNotAnImage:         "The link does not lead to an image.",
	ReasonUnsupportedFormat:  "The image is in a format imgpipe does not read (it reads JPEG, PNG, GIF and WebP).",
	ReasonTooManyPixels:      "The image has more pixels than the limit.",
	ReasonTooLargeDimension:  "The image is wider or taller than the limit.",
	ReasonCorruptImage:       "The image is damaged and cannot be decoded.",
	ReasonStorageUnavailable: "The compressed image could not be stored.",
	ReasonPublishFailed:      "The image could not be queued when the upload arrived.",
	ReasonDeadLettered:       "The image was tried too many times without success.",
	ReasonStalled:            "The image made no progress and was given up on.",
	ReasonInternal:           "Something went wrong on our side.",
}

// ReasonText says reason code in words.
func ReasonText(code string) string {
	if n, ok := strings.CutPrefix(code, ReasonHTTPPrefix); ok && n != "" {
		switch n {
		case "404", "410":
			return "The image host says there is no image at this link (HTTP " + n + ")."
		case "401", "403":
			return "The image host refused to give the image (HTTP " + n + ")."
		}
		return "The image host answered HTTP " + n + " instead of the image."
	}
	if t, ok := reasonTexts[code]; ok {
		return t
	}
	return "The image failed (" + code + ")."
}
