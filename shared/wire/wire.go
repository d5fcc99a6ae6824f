// Package wire holds the JSON bodies of imgpipe's HTTP API and of its
// webhook deliveries, as functions/openapi.yaml specifies them: what the
// functions write, and what the imgpipe command and webhook receivers
// read; and FormatBytes, how both the status page and the command show
// their byte counts. It imports the domain's value types (batch) and
// nothing else of imgpipe, so a client that links it links no cloud client
// and no codec.
//
// A struct's field order is the order of its keys on the wire.
package wire

import "github.com/imgpipe/imgpipe/shared/batch"

// Upload is the answer to POST /api/upload (202 Accepted).
type Upload struct {
	RequestID   string       `json:"requestId"`
	Status      batch.Status `json:"status"`
	TotalImages int          `json:"totalImages"`
	StatusURL   string       `json:"statusUrl"`
	ReportURL   string       `json:"reportUrl"`
	// ViewURL opens the request's status page in a browser, without an API
	// key, until the link expires (IMGPIPE_VIEW_LINK_TTL).
	ViewURL string `json:"viewUrl"`
}

// ErrorBody is every error the API answers.
type ErrorBody struct {
	Error     ErrorDetail `json:"error"`
	RequestID string      `json:"requestId,omitempty"`
}

// ErrorDetail is what went wrong: Code is the fault kind (invalid,
// not_found, …), Details one line per problem (a refused upload's, by line
// and column).
type ErrorDetail struct {
	Code    string   `json:"code"`
	Message string   `json:"message"`
	Details []string `json:"details,omitempty"`
}

// Progress is the answer to GET /api/view/{id}/progress, what the status
// page polls.
type Progress struct {
	// Done counts the images that finished, compressed or failed.
	Done            int          `json:"done"`
	FailedImages    int          `json:"failedImages"`
	Finished        bool         `json:"finished"`
	Percent         int          `json:"percent"` // of TotalImages done, rounded down
	ProcessedImages int          `json:"processedImages"`
	Status          batch.Status `json:"status"`
	TotalImages     int          `json:"totalImages"`
}
