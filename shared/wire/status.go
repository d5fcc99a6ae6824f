package wire

import (
	"time"

	"github.com/imgpipe/imgpipe/shared/batch"
)

// Status is the answer to GET /api/status/{id}: the request's counts and
// one page of its products.
type Status struct {
	RequestID       string       `json:"requestId"`
	Status          batch.Status `json:"status"`
	TotalImages     int          `json:"totalImages"`
	ProcessedImages int          `json:"processedImages"`
	FailedImages    int          `json:"failedImages"`
	// InputBytes and OutputBytes sum the compressed images so far (each
	// occurrence of a repeated URL as listed); SavedBytes is their
	// difference and SavedPercent its share of InputBytes.
	InputBytes   int64      `json:"inputBytes"`
	OutputBytes  int64      `json:"outputBytes"`
	SavedBytes   int64      `json:"savedBytes"`
	SavedPercent float64    `json:"savedPercent"`
	CreatedAt    time.Time  `json:"createdAt"`
	UpdatedAt    time.Time  `json:"updatedAt"`
	CompletedAt  *time.Time `json:"completedAt,omitempty"`
	// Sizing echoes the request's sizing options, when it has any.
	Sizing   *batch.Sizing  `json:"sizing,omitempty"`
	Webhook  *WebhookStatus `json:"webhook,omitempty"`
	Products []Product      `json:"products"`
	Page     Page           `json:"page"`
}

// Product is one product with its outputs aligned to its inputs.
type Product struct {
	SerialNumber    string       `json:"serialNumber"`
	ProductName     string       `json:"productName"`
	InputImageURLs  []string     `json:"inputImageUrls"`
	OutputImageURLs []string     `json:"outputImageUrls"` // "" where failed or pending
	Errors          []ImageError `json:"errors,omitempty"`
	// Outputs, in a request with sizing options, describe each compressed
	// image's outputs: the main one's size and the extra sizes by name.
	Outputs []ImageOutputs `json:"outputs,omitempty"`
}

// SizeURLs are the links to size name's outputs, aligned to the product's
// inputs ("" where an image failed or is pending).
func (p Product) SizeURLs(name string) []string {
	urls := make([]string, len(p.InputImageURLs))
	for _, o := range p.Outputs {
		urls[o.Index] = o.Sizes[name].URL
	}
	return urls
}

// ImageOutputs are the outputs of one compressed image of a product.
type ImageOutputs struct {
	Index  int             `json:"index"` // position in inputImageUrls
	Width  int             `json:"width"`
	Height int             `json:"height"`
	Sizes  map[string]Size `json:"sizes,omitempty"`
}

// Size is one extra output of an image. Name is the key it is listed
// under in ImageOutputs.Sizes, so it is not repeated inside.
type Size struct {
	Name        string `json:"-"`
	URL         string `json:"url"`
	Width       int    `json:"width"`
	Height      int    `json:"height"`
	OutputBytes int64  `json:"outputBytes"`
}

// ImageError explains one failed image.
type ImageError struct {
	Index    int    `json:"index"` // position in inputImageUrls
	InputURL string `json:"inputUrl"`
	Reason   string `json:"reason"`
	Message  string `json:"message"`
}

// Page says which products the answer holds: [Offset, Offset+Limit) of
// TotalProducts; NextOffset is absent on the last page.
type Page struct {
	Offset        int  `json:"offset"`
	Limit         int  `json:"limit"`
	TotalProducts int  `json:"totalProducts"`
	NextOffset    *int `json:"nextOffset,omitempty"`
}

// WebhookStatus is the webhook part of a status.
type WebhookStatus struct {
	URL           string     `json:"url"` // query and credentials redacted
	Status        string     `json:"status"`
	Attempts      int        `json:"attempts"`
	LastAttemptAt *time.Time `json:"lastAttemptAt,omitempty"`
	LastError     string     `json:"lastError,omitempty"`
}
