package functions_test

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/imgpipe/imgpipe/shared/batch"
	"github.com/imgpipe/imgpipe/shared/pipeline"
)

// A report larger than the inline limit (4 KiB in these tests, 8 MiB by
// default: Cloud Run caps responses at 32 MiB) is stored in the bucket and
// answered with 303 See Other to a link; a small one comes in the response.
func TestReportLargeIsALinkSmallIsInline(t *testing.T) {
	needStack(t)
	t.Parallel()
	ctx := context.Background()
	create := func(n int) string {
		products := make([]batch.Product, n)
		for i := range products {
			products[i] = batch.Product{SerialNumber: fmt.Sprint("SKU-", i), ProductName: fmt.Sprint("Product number ", i),
				InputURLs: []string{fmt.Sprintf("https://img.example/catalogue/%d/front.jpg", i)}}
		}
		r, err := st.CreateRequest(ctx, batch.Request{ID: pipeline.NewRequestID(), Owner: apiKeyID, TotalImages: n, Quality: 50}, products)
		if err != nil {
			t.Fatal(err)
		}
		return r.ID
	}
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	small := create(2)
	resp, err := noRedirect.Get(apiURL + "/api/report/" + small)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(resp.Body).ReadAll()
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || err != nil || len(rows) != 3 || resp.Header.Get("Content-Length") == "" {
		t.Errorf("small report: %d, %d rows, %v, Content-Length %q", resp.StatusCode, len(rows), err, resp.Header.Get("Content-Length"))
	}

	large := create(300)
	resp, err = noRedirect.Get(apiURL + "/api/report/" + large)
	if err != nil {
		t.Fatal(err)
	}
	var body struct {
		ReportURL string `json:"reportUrl"`
		Bytes     int64  `json:"bytes"`
	}
	err = json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusSeeOther || err != nil || loc == "" || loc != body.ReportURL || body.Bytes <= 4096 {
		t.Fatalf("large report: %d %v, Location %q, body %+v", resp.StatusCode, err, loc, body)
	}
	if !strings.Contains(loc, "reports%2F"+large) && !strings.Contains(loc, "reports/"+large) {
		t.Errorf("the link %s is not the request's stored report", loc)
	}
	// Following the link (as curl -L and browsers do) gives the whole CSV.
	resp, err = http.Get(apiURL + "/api/report/" + large)
	if err != nil {
		t.Fatal(err)
	}
	rows, err = csv.NewReader(resp.Body).ReadAll()
	resp.Body.Close()
	if err != nil || len(rows) != 301 || rows[300][0] != "SKU-299" || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/csv") {
		t.Errorf("the stored report: %v, %d rows, %s", err, len(rows), resp.Header.Get("Content-Type"))
	}
}
