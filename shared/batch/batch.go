// Package batch is imgpipe's domain: a request of products and their image
// URLs, its statuses and per-image reason codes, and the parsing and
// validation of what users upload (CSV or JSON).
package batch

import (
	"fmt"
	"strings"
	"time"
)

// Status of a request.
type Status string

const (
	Pending    Status = "PENDING"    // accepted, no image finished yet
	Processing Status = "PROCESSING" // some images finished
	Completed  Status = "COMPLETED"  // every image finished, at least one compressed
	Failed     Status = "FAILED"     // every image finished and every one failed
)

// ImageState is one image's terminal state.
type ImageState string

const (
	ImageDone   ImageState = "DONE"
	ImageFailed ImageState = "FAILED"
)

// DefaultQuality is the JPEG quality when a request names none.
const DefaultQuality = 50

// Product is one row of the user's sheet.
type Product struct {
	SerialNumber string   `json:"serialNumber"`
	ProductName  string   `json:"productName"`
	InputURLs    []string `json:"inputImageUrls"`
}

// Submission is a parsed, validated upload.
type Submission struct {
	Products   []Product
	WebhookURL string
	Quality    int
	Sizing     Sizing
	// Trace is the upload's Cloud Trace name (projects/P/traces/ID), when
	// the platform gave one: every log line of its images carries it.
	Trace string
}

// TotalImages counts every input URL of every product.
func (s Submission) TotalImages() int {
	n := 0
	for _, p := range s.Products {
		n += len(p.InputURLs)
	}
	return n
}

// ImageRef locates one image of a request: the product's position in the
// input and the URL's position in that product's list.
type ImageRef struct {
	Product int `json:"p"`
	URL     int `json:"u"`
}

// ShardedRef is an image and the counter shard it counts in.
type ShardedRef struct {
	ImageRef
	Shard int `json:"s"`
}

// ID is the image's stable identifier inside its request, "P-U".
func (r ImageRef) ID() string { return fmt.Sprintf("%d-%d", r.Product, r.URL) }

// ParseImageID is the inverse of ImageRef.ID.
func ParseImageID(id string) (ImageRef, error) {
	var r ImageRef
	if _, err := fmt.Sscanf(id, "%d-%d", &r.Product, &r.URL); err != nil || r.ID() != id {
		return ImageRef{}, fmt.Errorf("invalid image id %q", id)
	}
	return r, nil
}

// ImageResult is an image's terminal record.
type ImageResult struct {
	State      ImageState `json:"state" firestore:"state"`
	Object     string     `json:"object,omitempty" firestore:"object,omitempty"` // GCS object name of the output
	Reason     string     `json:"reason,omitempty" firestore:"reason,omitempty"`
	Error      string     `json:"error,omitempty" firestore:"error,omitempty"`
	InputBytes int64      `json:"inputBytes,omitempty" firestore:"inputBytes,omitempty"`
	OutBytes   int64      `json:"outputBytes,omitempty" firestore:"outputBytes,omitempty"`
	KeptInput  bool       `json:"keptInput,omitempty" firestore:"keptInput,omitempty"` // the input JPEG was smaller than our output
	Codec      string     `json:"codec,omitempty" firestore:"codec,omitempty"`         // "dct" (recompressed coefficients) or "pixel"
	Format     string     `json:"format,omitempty" firestore:"format,omitempty"`
	// Width and Height are the main output's, upright.
	Width  int `json:"width,omitempty" firestore:"width,omitempty"`
	Height int `json:"height,omitempty" firestore:"height,omitempty"`
	// Sizes are the extra outputs the request asked for, in its order.
	Sizes   []SizeOutput `json:"sizes,omitempty" firestore:"sizes,omitempty"`
	Attempt int          `json:"attempt,omitempty" firestore:"attempt,omitempty"`
	// SameAs is the image whose fetch and compression this one shares
	// (the same URL earlier in the request); its output is that image's.
	SameAs     string    `json:"sameAs,omitempty" firestore:"sameAs,omitempty"`
	FinishedAt time.Time `json:"finishedAt" firestore:"finishedAt"`
	// Thumb is the object name of the status page's thumbnail of the
	// output, in the private bucket (ThumbObjectName); empty when none
	// was stored.
	Thumb string `json:"thumb,omitempty" firestore:"thumb,omitempty"`
}

// SizeOutput is one extra output of an image.
type SizeOutput struct {
	Name     string `json:"name" firestore:"name"`
	Object   string `json:"object" firestore:"object"`
	Width    int    `json:"width" firestore:"width"`
	Height   int    `json:"height" firestore:"height"`
	OutBytes int64  `json:"outputBytes" firestore:"outputBytes"`
}

// Counts are a request's progress.
type Counts struct {
	Total     int
	Processed int // compressed and stored
	Failed    int
	// InputBytes and OutputBytes sum the processed images' sizes, each
	// occurrence of a repeated URL counted as the user listed it.
	InputBytes, OutputBytes int64
}

// Finished reports whether every image reached a terminal state.
func (c Counts) Finished() bool { return c.Processed+c.Failed >= c.Total }

// StatusOf derives a request's status from its counts.
func StatusOf(c Counts) Status {
	switch {
	case c.Finished() && c.Processed == 0 && c.Total > 0:
		return Failed
	case c.Finished():
		return Completed
	case c.Processed+c.Failed > 0:
		return Processing
	default:
		return Pending
	}
}

// ObjectName is the deterministic GCS name of an image's output.
func ObjectName(requestID string, ref ImageRef) string {
	return "requests/" + requestID + "/" + ref.ID() + ".jpg"
}

// ThumbObjectName is the deterministic name of an image's thumbnail, in
// the private bucket: a small JPEG of its output that only the status
// page serves.
func ThumbObjectName(requestID string, ref ImageRef) string {
	return "thumbs/" + requestID + "/" + ref.ID() + ".jpg"
}

// normalizeHeader folds a CSV header cell for matching: case, spaces and
// underscores do not count.
func normalizeHeader(s string) string {
	s = strings.ToLower(strings.TrimSpace(s))
	return strings.NewReplacer(" ", "", "_", "", "-", "", "\t", "").Replace(s)
}
