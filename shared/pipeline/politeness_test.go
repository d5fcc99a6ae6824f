package pipeline_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imgpipe/imgpipe/shared/batch"
	"github.com/imgpipe/imgpipe/shared/fault"
	"github.com/imgpipe/imgpipe/shared/outbound"
	"github.com/imgpipe/imgpipe/shared/queue"
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

// throttled is what a host that asks to be left alone for wait answers.
func throttled(wait time.Duration) error {
	e := fault.New(fault.Transient, "http_429", "the image server answered 429 Too Many Requests")
	e.RetryAfter = wait
	return e
}

// submitURLs uploads one product per URL and returns the request.
func (h *harness) submitURLs(urls ...string) batch.Request {
	h.t.Helper()
	ps := products(len(urls), 1)
	for i, u := range urls {
		ps[i].InputURLs[0] = u
	}
	ctx := context.Background()
	r, err := h.svc.Submit(ctx, h.svc.NewUpload(ctx), batch.Submission{Products: ps, Quality: 50}, "owner", "https://api.example")
	if err != nil {
		h.t.Fatal(err)
	}
	return r
}

// Two compression slots (four fetch slots), and four images of a host that
// answers every fetch with 429 and a long Retry-After: while those four
// wait for it, images of other hosts are fetched and compressed.
func TestThrottledImagesHoldNoSlot(t *testing.T) {
	h := newHarness(t)
	h.svc.SetConcurrency(2)
	h.svc.ProcessTimeout = 2 * time.Minute // room to wait for the host in the delivery
	photo := newHarnessPhoto(t)
	asked := make(chan string, 100)
	h.svc.Fetcher = &fetcher{FetchFn: func(_ context.Context, url string, _ int64) ([]byte, error) {
		if strings.HasPrefix(url, "https://slow.example/") {
			asked <- url
			return nil, throttled(50 * time.Second)
		}
		return photo, nil
	}}
	var urls []string
	for i := range 4 {
		urls = append(urls, fmt.Sprintf("https://slow.example/%d.jpg", i))
	}
	for i := range 4 {
		urls = append(urls, fmt.Sprintf("https://fast.example/%d.jpg", i))
	}
	r := h.submitURLs(urls...)
	byURL := map[string]queue.ImageMessage{}
	for _, m := range h.msgs {
		byURL[m.URL] = m
	}

	slowCtx, stopSlow := context.WithCancel(context.Background())
	defer stopSlow()
	var slow sync.WaitGroup
	slowErrs := make(chan error, 4)
	for _, u := range urls[:4] {
		slow.Go(func() { slowErrs <- h.svc.Compress(slowCtx, byURL[u], 1) })
	}
	// Each slow image is sent away once, and then waits. Were the slots
	// held while they wait, two of them would wait for a slot instead.
	sentAway := map[string]bool{}
	for timeout := time.After(10 * time.Second); len(sentAway) < 4; {
		select {
		case u := <-asked:
			sentAway[u] = true
		case <-timeout:
			t.Fatalf("%d of 4 slow images were fetched: the others wait for a slot", len(sentAway))
		}
	}
	// The fast images get slots while the slow ones wait.
	var fast sync.WaitGroup
	for _, u := range urls[4:] {
		fast.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := h.svc.Compress(ctx, byURL[u], 1); err != nil {
				t.Errorf("%s while another host's images wait: %v", u, err)
			}
		})
	}
	fast.Wait()
	for _, u := range urls[4:] {
		if res, ok := h.st.result(r.ID, byURL[u].Image); !ok || res.State != batch.ImageDone {
			t.Errorf("%s: %+v (recorded %v), want done", u, res, ok)
		}
	}
	stopSlow()
	slow.Wait()
	close(slowErrs)
	for err := range slowErrs {
		if !fault.Retryable(err) {
			t.Errorf("a slow image's canceled delivery returned %v, want a retry", err)
		}
	}
	for _, u := range urls[:4] {
		if _, ok := h.st.result(r.ID, byURL[u].Image); ok {
			t.Errorf("%s was recorded while its host still asked to wait", u)
		}
	}
}

// A host that answers every fetch with a short Retry-After is waited for
// until the image's waits would pass MaxHostWait; then the image is
// recorded failed, host_throttled, with no failed attempt counted.
func TestHostWaitIsCapped(t *testing.T) {
	h := newHarness(t)
	h.svc.MaxHostWait = 300 * time.Millisecond
	var fetches atomic.Int32
	h.svc.Fetcher = &fetcher{FetchFn: func(context.Context, string, int64) ([]byte, error) {
		fetches.Add(1)
		return nil, throttled(100 * time.Millisecond)
	}}
	r := h.submit(1, 1)
	m := h.msgs[0]
	if err := h.deliver(m, 1); err != nil {
		t.Fatalf("delivery: %v, want the image recorded and acknowledged", err)
	}
	res, _ := h.st.result(r.ID, m.Image)
	if res.State != batch.ImageFailed || res.Reason != batch.ReasonHostThrottled {
		t.Errorf("result %+v, want failed %s", res, batch.ReasonHostThrottled)
	}
	if n := fetches.Load(); n != 4 {
		t.Errorf("%d fetches, want 4 (three waits of 100 ms fit in 300 ms)", n)
	}
	if n := h.st.attempts[r.ID][m.Image]; n != 0 {
		t.Errorf("%d failed attempts counted for waits a host asked for", n)
	}
	h.checkFinished(r, 0, 1, batch.Failed)
}

// A Retry-After longer than an image may wait records it host_throttled at
// once; one within the cap but longer than the delivery has time for is
// charged and redelivered, and the redelivery the host sends away again
// passes the cap: recorded, not nacked again.
func TestLongRetryAfterEndsWithAReason(t *testing.T) {
	t.Run("past the cap", func(t *testing.T) {
		h := newHarness(t)
		var fetches atomic.Int32
		h.svc.Fetcher = &fetcher{FetchFn: func(context.Context, string, int64) ([]byte, error) {
			fetches.Add(1)
			return nil, throttled(time.Hour)
		}}
		r := h.submit(1, 1)
		m := h.msgs[0]
		if err := h.deliver(m, 1); err != nil {
			t.Fatalf("delivery: %v, want the image recorded and acknowledged", err)
		}
		if res, _ := h.st.result(r.ID, m.Image); res.Reason != batch.ReasonHostThrottled || fetches.Load() != 1 {
			t.Errorf("result %+v after %d fetches, want %s after 1", res, fetches.Load(), batch.ReasonHostThrottled)
		}
	})
	t.Run("past the delivery", func(t *testing.T) {
		h := newHarness(t)
		h.svc.ProcessTimeout = 2 * time.Second
		h.svc.Fetcher = &fetcher{FetchFn: func(context.Context, string, int64) ([]byte, error) {
			return nil, throttled(90 * time.Second)
		}}
		r := h.submit(1, 1)
		m := h.msgs[0]
		if err := h.deliver(m, 1); err == nil || !fault.Retryable(err) {
			t.Fatalf("first delivery: %v, want a redelivery", err)
		}
		if st := h.st.stalls[r.ID][m.Image]; st.SeenAt.IsZero() {
			t.Error("the throttled delivery was not recorded as alive for the sweep")
		}
		if err := h.deliver(m, 0); err != nil {
			t.Fatalf("second delivery: %v, want the image recorded and acknowledged", err)
		}
		res, _ := h.st.result(r.ID, m.Image)
		if res.State != batch.ImageFailed || res.Reason != batch.ReasonHostThrottled {
			t.Errorf("result %+v, want failed %s", res, batch.ReasonHostThrottled)
		}
		h.checkFinished(r, 0, 1, batch.Failed)
	})
}

// lookups is a Resolver with fixed answers that says on its channel which
// name each lookup was for.
type lookups struct {
	addrs map[string]netip.Addr
	seen  chan string
}

func (l lookups) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	l.seen <- host
	if a, ok := l.addrs[host]; ok {
		return []netip.Addr{a}, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

// With the real fetcher, one compression slot (two fetch slots) and one
// fetch a host: four images of a host that is slow to answer queue behind
// its per-host cap without taking the instance's slots, and an image of
// another host is fetched and compressed meanwhile.
func TestQueuedForItsHostHoldsNoSlot(t *testing.T) {
	photo := newHarnessPhoto(t)
	release := make(chan struct{})
	var once sync.Once
	free := func() { once.Do(func() { close(release) }) }
	serve := func(addr string, wait bool) *httptest.Server {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			t.Skipf("cannot listen on %s: %v", addr, err)
		}
		srv := &httptest.Server{Listener: l, Config: &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if wait {
				<-release
			}
			_, _ = w.Write(photo)
		})}}
		srv.Start()
		return srv
	}
	slowHost, fastHost := serve("127.0.0.1:0", true), serve("127.0.0.2:0", false)
	defer slowHost.Close()
	defer fastHost.Close()
	defer free() // before the servers close, which waits for the handlers

	dns := lookups{addrs: map[string]netip.Addr{"slow.example": netip.MustParseAddr("127.0.0.1"), "fast.example": netip.MustParseAddr("127.0.0.2")}, seen: make(chan string, 100)}
	h := newHarness(t)
	h.svc.SetConcurrency(1)
	h.svc.Fetcher = outbound.NewClient(outbound.Options{
		Guard: outbound.Guard{AllowLoopback: true}, Resolver: dns, Timeout: 20 * time.Second, MaxPerHost: 1,
	})
	port := func(s *httptest.Server) string { return s.URL[strings.LastIndex(s.URL, ":"):] }
	var urls []string
	for i := range 4 {
		urls = append(urls, fmt.Sprintf("http://slow.example%s/%d.jpg", port(slowHost), i))
	}
	urls = append(urls, "http://fast.example"+port(fastHost)+"/0.jpg")
	r := h.submitURLs(urls...)
	byURL := map[string]queue.ImageMessage{}
	for _, m := range h.msgs {
		byURL[m.URL] = m
	}
	var slow sync.WaitGroup
	for _, u := range urls[:4] {
		slow.Go(func() {
			err := h.deliver(byURL[u], 1)
			// Two images that finish the request together: one waits for
			// the other's hook (completion_pending), as in deliverAllAtOnce.
			for a := 2; err != nil && fault.ReasonOf(err) == "completion_pending" && a <= 6; a++ {
				time.Sleep(50 * time.Millisecond)
				err = h.deliver(byURL[u], a)
			}
			if err != nil {
				t.Errorf("%s: %v", u, err)
			}
		})
	}
	// Every slow image has looked its host up, the step before its
	// per-host slot: one is at the host, three wait for it. Had they taken
	// the instance's slots first, two would not get this far.
	for n, timeout := 0, time.After(10*time.Second); n < 4; {
		select {
		case host := <-dns.seen:
			if host == "slow.example" {
				n++
			}
		case <-timeout:
			t.Fatalf("%d of 4 images of the slow host reached its per-host cap: the others wait for a slot of the instance", n)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	fast := byURL[urls[4]]
	if err := h.svc.Compress(ctx, fast, 1); err != nil {
		t.Fatalf("an image of another host while the slow host's queue: %v", err)
	}
	if res, ok := h.st.result(r.ID, fast.Image); !ok || res.State != batch.ImageDone {
		t.Errorf("the other host's image: %+v (recorded %v), want done", res, ok)
	}
	free()
	slow.Wait()
	h.checkFinished(r, 5, 0, batch.Completed)
}
