package pipeline_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imgpipe/imgpipe/shared/batch"
	"github.com/imgpipe/imgpipe/shared/outbound"
)

// An image host that answers 429 (Retry-After: 1) to any request past 2 in
// flight. With the real fetcher, capped at 4 fetches a host, and 8 images
// compressed at once: every image still finishes, none is recorded failed,
// the host never sees more than 4 at once from this instance, and every
// fetch names imgpipe and its contact URL.
func TestThrottlingHostIsWaitedFor(t *testing.T) {
	photo, err := os.ReadFile(filepath.Join("..", "..", "testdata", "images", "coffee.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	const hostLimit, perHost = 2, 4
	var inFlight, peak, throttled, served atomic.Int32
	var agents sync.Map
	host := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		agents.Store(r.UserAgent(), true)
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		if n > hostLimit {
			time.Sleep(50 * time.Millisecond) // a refusal takes time too
			throttled.Add(1)
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		time.Sleep(100 * time.Millisecond) // a host's time to send an image, so fetches overlap
		served.Add(1)
		w.Header().Set("Content-Type", "image/jpeg")
		_, _ = w.Write(photo)
	}))
	defer host.Close()

	h := newHarness(t)
	h.svc.SetConcurrency(8)
	h.svc.FetchBudget = 5 * time.Second
	h.svc.Fetcher = outbound.NewClient(outbound.Options{
		Guard: outbound.Guard{AllowLoopback: true}, Timeout: 5 * time.Second, MaxRedirects: 5,
		MaxPerHost: perHost, UserAgent: outbound.UserAgent("https://ops.example/imgpipe"),
	})
	ctx := context.Background()
	ps := products(16, 1)
	for i := range ps {
		ps[i].InputURLs[0] = host.URL + "/photo.jpg?p=" + ps[i].SerialNumber
	}
	st := h.svc.NewUpload(ctx)
	r, err := h.svc.Submit(ctx, st, batch.Submission{Products: ps, Quality: 50}, "owner", "https://api.example")
	if err != nil {
		t.Fatal(err)
	}
	h.deliverAllAtOnce(1)
	h.checkFinished(r, 16, 0, batch.Completed)
	if p := peak.Load(); p > perHost {
		t.Errorf("the host saw %d fetches at once from one instance, the cap is %d", p, perHost)
	}
	if throttled.Load() == 0 {
		t.Errorf("the host never had to throttle (peak %d): the test did not exercise Retry-After", peak.Load())
	}
	agents.Range(func(k, _ any) bool {
		if ua := k.(string); !strings.HasPrefix(ua, "imgpipe/1 (+https://ops.example/imgpipe)") {
			t.Errorf("a fetch said User-Agent %q", ua)
		}
		return true
	})
	t.Logf("16 images: peak %d in flight at the host (cap %d), %d answered 429, %d served", peak.Load(), perHost, throttled.Load(), served.Load())
}
