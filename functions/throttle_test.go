package functions_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imgpipe/imgpipe/shared/batch"
)

// On the stack: an image whose host answers every fetch with 429 and a
// Retry-After of an hour is recorded failed, host_throttled, after one
// fetch (not nacked until Pub/Sub dead-letters it); an image whose host
// asks for a second twice is waited for and compressed.
func TestThrottlingHostOnTheStack(t *testing.T) {
	t.Parallel()
	needStack(t)
	photo, err := os.ReadFile(filepath.Join("..", "testdata", "images", "coffee.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	var forever, twice atomic.Int32
	host := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/forever.jpg":
			forever.Add(1)
			w.Header().Set("Retry-After", "3600")
			w.WriteHeader(http.StatusTooManyRequests)
		case "/twice.jpg":
			if twice.Add(1) <= 2 {
				w.Header().Set("Retry-After", "1")
				w.WriteHeader(http.StatusTooManyRequests)
				return
			}
			_, _ = w.Write(photo)
		default:
			http.NotFound(w, r)
		}
	}))
	defer host.Close()
	csv := fmt.Sprintf("Serial Number,Product Name,Input Image URLs\nT1,Throttled,%s/forever.jpg\nT2,Waited for,%s/twice.jpg\n", host.URL, host.URL)
	id, _ := uploadCSV(t, csv)
	v := awaitFinal(t, id, 60*time.Second)
	var got []string
	for _, p := range v.Products {
		for _, e := range p.Errors {
			got = append(got, e.Reason)
		}
	}
	if v.ProcessedImages != 1 || v.FailedImages != 1 || strings.Join(got, ",") != batch.ReasonHostThrottled {
		t.Errorf("%s: %d processed, %d failed %v; want 1 processed, 1 failed %s", v.Status, v.ProcessedImages, v.FailedImages, got, batch.ReasonHostThrottled)
	}
	if n := forever.Load(); n != 1 {
		t.Errorf("the host that asked for an hour was fetched %d times, want once", n)
	}
	if n := twice.Load(); n != 3 {
		t.Errorf("the host that asked for a second twice was fetched %d times, want 3", n)
	}
}
