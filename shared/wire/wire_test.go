package wire

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/imgpipe/imgpipe/shared/batch"
)

// The bodies are pinned byte for byte: a renamed key, a lost omitempty or
// a reordered field changes what every client and receiver reads, so it
// must change here, in functions/openapi.yaml and in the webhook docs
// together.
func TestJSONBodies(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	next := 7
	full := Status{RequestID: "r1", Status: batch.Completed, TotalImages: 3, ProcessedImages: 2, FailedImages: 1,
		InputBytes: 100, OutputBytes: 40, SavedBytes: 60, SavedPercent: 60.5, CreatedAt: at, UpdatedAt: at, CompletedAt: &at,
		Sizing:  &batch.Sizing{MaxWidth: 10, MaxHeight: 20, Sizes: []batch.Size{{Name: "thumb", Width: 5}}},
		Webhook: &WebhookStatus{URL: "https://x", Status: "DELIVERED", Attempts: 2, LastAttemptAt: &at, LastError: "e"},
		Products: []Product{{SerialNumber: "s", ProductName: "n", InputImageURLs: []string{"a", "b"}, OutputImageURLs: []string{"o", ""},
			Errors: []ImageError{{Index: 1, InputURL: "b", Reason: "r", Message: "m"}},
			Outputs: []ImageOutputs{{Index: 0, Width: 1, Height: 2,
				Sizes: map[string]Size{"thumb": {Name: "thumb", URL: "u", Width: 3, Height: 4, OutputBytes: 5}}}}}},
		Page: Page{Offset: 1, Limit: 2, TotalProducts: 3, NextOffset: &next}}
	var refused ErrorBody
	refused.RequestID = "r1"
	refused.Error = ErrorDetail{Code: "invalid", Message: "m", Details: []string{"d"}}
	cases := []struct {
		name string
		v    any
		want string
	}{
		{"status, every field", full, `{"requestId":"r1","status":"COMPLETED","totalImages":3,"processedImages":2,"failedImages":1,` +
			`"inputBytes":100,"outputBytes":40,"savedBytes":60,"savedPercent":60.5,"createdAt":"2026-01-02T03:04:05.000000006Z",` +
			`"updatedAt":"2026-01-02T03:04:05.000000006Z","completedAt":"2026-01-02T03:04:05.000000006Z",` +
			`"sizing":{"maxWidth":10,"maxHeight":20,"sizes":[{"name":"thumb","width":5}]},` +
			`"webhook":{"url":"https://x","status":"DELIVERED","attempts":2,"lastAttemptAt":"2026-01-02T03:04:05.000000006Z","lastError":"e"},` +
			`"products":[{"serialNumber":"s","productName":"n","inputImageUrls":["a","b"],"outputImageUrls":["o",""],` +
			`"errors":[{"index":1,"inputUrl":"b","reason":"r","message":"m"}],` +
			`"outputs":[{"index":0,"width":1,"height":2,"sizes":{"thumb":{"url":"u","width":3,"height":4,"outputBytes":5}}}]}],` +
			`"page":{"offset":1,"limit":2,"totalProducts":3,"nextOffset":7}}`},
		{"status, optional parts empty", Status{Products: []Product{{}}, Webhook: &WebhookStatus{}},
			`{"requestId":"","status":"","totalImages":0,"processedImages":0,"failedImages":0,"inputBytes":0,"outputBytes":0,` +
				`"savedBytes":0,"savedPercent":0,"createdAt":"0001-01-01T00:00:00Z","updatedAt":"0001-01-01T00:00:00Z",` +
				`"webhook":{"url":"","status":"","attempts":0},` +
				`"products":[{"serialNumber":"","productName":"","inputImageUrls":null,"outputImageUrls":null}],` +
				`"page":{"offset":0,"limit":0,"totalProducts":0}}`},
		{"upload", Upload{RequestID: "r1", Status: batch.Pending, TotalImages: 3, StatusURL: "s", ReportURL: "r", ViewURL: "v"},
			`{"requestId":"r1","status":"PENDING","totalImages":3,"statusUrl":"s","reportUrl":"r","viewUrl":"v"}`},
		{"error, every field", refused, `{"error":{"code":"invalid","message":"m","details":["d"]},"requestId":"r1"}`},
		{"error, no details", ErrorBody{}, `{"error":{"code":"","message":""}}`},
		{"progress", Progress{Status: batch.Processing, Done: 2, Percent: 66, TotalImages: 3, ProcessedImages: 1, FailedImages: 1},
			`{"done":2,"failedImages":1,"finished":false,"percent":66,"processedImages":1,"status":"PROCESSING","totalImages":3}`},
		{"webhook payload, every field", WebhookPayload{Event: "request.completed", RequestID: "r1", Status: "COMPLETED", TotalImages: 1,
			ProcessedImages: 1, CompletedAt: at, StatusURL: "s", ReportURL: "r", ProductsOmitted: true,
			Products: []WebhookProduct{{SerialNumber: "s", ProductName: "n", InputImageURLs: []string{"a"}, OutputImageURLs: []string{"o"},
				SizeImageURLs: map[string][]string{"thumb": {"t"}}}}},
			`{"event":"request.completed","requestId":"r1","status":"COMPLETED","totalImages":1,"processedImages":1,"failedImages":0,` +
				`"completedAt":"2026-01-02T03:04:05.000000006Z","statusUrl":"s","reportUrl":"r",` +
				`"products":[{"serialNumber":"s","productName":"n","inputImageUrls":["a"],"outputImageUrls":["o"],"sizeImageUrls":{"thumb":["t"]}}],` +
				`"productsOmitted":true}`},
		{"webhook payload, optional parts empty", WebhookPayload{Products: []WebhookProduct{{}}},
			`{"event":"","requestId":"","status":"","totalImages":0,"processedImages":0,"failedImages":0,"completedAt":"0001-01-01T00:00:00Z",` +
				`"statusUrl":"","reportUrl":"","products":[{"serialNumber":"","productName":"","inputImageUrls":null,"outputImageUrls":null}]}`},
	}
	for _, tc := range cases {
		b, err := json.Marshal(tc.v)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if string(b) != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.name, b, tc.want)
		}
	}
}

// A size's links line up with the product's inputs, "" where an image has
// no such output.
func TestSizeURLs(t *testing.T) {
	p := Product{InputImageURLs: []string{"a", "b", "c"}, Outputs: []ImageOutputs{
		{Index: 0, Sizes: map[string]Size{"thumb": {URL: "t0"}}},
		{Index: 2, Sizes: map[string]Size{"thumb": {URL: "t2"}, "big": {URL: "b2"}}},
	}}
	if got := p.SizeURLs("thumb"); !slices.Equal(got, []string{"t0", "", "t2"}) {
		t.Errorf("thumb: %q", got)
	}
	if got := p.SizeURLs("big"); !slices.Equal(got, []string{"", "", "b2"}) {
		t.Errorf("big: %q", got)
	}
}

func TestFormatBytes(t *testing.T) {
	cases := []struct {
		n    int64
		want string
	}{
		{0, "0 B"},
		{1023, "1023 B"},
		{1024, "1.0 KiB"},
		{1536, "1.5 KiB"},
		{25 << 20, "25.0 MiB"},
		{5 << 29, "2.50 GiB"},
		{-3 << 10, "-3.0 KiB"},
		{-12, "-12 B"},
	}
	for _, tc := range cases {
		if got := FormatBytes(tc.n); got != tc.want {
			t.Errorf("FormatBytes(%d) = %q, want %q", tc.n, got, tc.want)
		}
	}
}
