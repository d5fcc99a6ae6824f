package wire

import "time"

// WebhookPayload is the body of a webhook delivery. Products are inlined
// up to a size threshold; beyond it ProductsOmitted is true and the report
// has them.
type WebhookPayload struct {
	Event           string           `json:"event"`
	RequestID       string           `json:"requestId"`
	Status          string           `json:"status"`
	TotalImages     int              `json:"totalImages"`
	ProcessedImages int              `json:"processedImages"`
	FailedImages    int              `json:"failedImages"`
	CompletedAt     time.Time        `json:"completedAt"`
	StatusURL       string           `json:"statusUrl"`
	ReportURL       string           `json:"reportUrl"`
	Products        []WebhookProduct `json:"products"`
	ProductsOmitted bool             `json:"productsOmitted,omitempty"`
}

// WebhookProduct is one product as a delivery reports it.
type WebhookProduct struct {
	SerialNumber    string   `json:"serialNumber"`
	ProductName     string   `json:"productName"`
	InputImageURLs  []string `json:"inputImageUrls"`
	OutputImageURLs []string `json:"outputImageUrls"`
	// SizeImageURLs are, in a request with sizes, each size's outputs by
	// name, aligned to InputImageURLs as OutputImageURLs are.
	SizeImageURLs map[string][]string `json:"sizeImageUrls,omitempty"`
}
