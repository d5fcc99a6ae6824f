package pipeline_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imgpipe/imgpipe/shared/batch"
	"github.com/imgpipe/imgpipe/shared/fault"
	"github.com/imgpipe/imgpipe/shared/imagework"
	"github.com/imgpipe/imgpipe/shared/pipeline"
	"github.com/imgpipe/imgpipe/shared/queue"
)

// harness is a Service on in-memory fakes: the store, a publisher that
// keeps the messages, a bucket that keeps the objects, a fetcher that
// serves a real photograph, and a hook that counts its calls.
type harness struct {
	t        *testing.T
	svc      *pipeline.Service
	st       *memStore
	msgs     []queue.ImageMessage
	objects  sync.Map
	thumbs   *memThumbs
	hookRuns atomic.Int32
	mu       sync.Mutex
}

// newHarnessPhoto is the photograph the harness's fetcher serves.
func newHarnessPhoto(t *testing.T) []byte {
	t.Helper()
	photo, err := os.ReadFile(filepath.Join("..", "..", "testdata", "images", "coffee.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	return photo
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	photo := newHarnessPhoto(t)
	h := &harness{t: t, st: newMemStore(), thumbs: newMemThumbs()}
	h.svc = &pipeline.Service{
		Requests: h.st, Results: h.st, Completions: h.st, WebhookLog: h.st, Sweeps: h.st,
		Publisher: &publisher{PublishAllFn: func(_ context.Context, msgs []queue.ImageMessage) ([]int, error) {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.msgs = append(h.msgs, msgs...)
			return nil, nil
		}},
		Bucket: &bucket{PutFn: func(_ context.Context, name string, data []byte) error {
			h.objects.Store(name, len(data))
			return nil
		}},
		Thumbs:  h.thumbs,
		Fetcher: &fetcher{FetchFn: func(context.Context, string, int64) ([]byte, error) { return photo, nil }},
		Hook: &hook{RequestFinishedFn: func(context.Context, batch.Request, batch.Counts) error {
			h.hookRuns.Add(1)
			return nil
		}},
		Log:                 slog.New(slog.NewTextHandler(io.Discard, nil)),
		MaxImageBytes:       25 << 20,
		ImageLimits:         imagework.DefaultLimits,
		MaxDeliveryAttempts: 3,
		HookGrace:           time.Minute,
		ProcessTimeout:      30 * time.Second,
		FetchBudget:         time.Second,
		SweepSettings:       pipeline.SweepSettings{StallAfter: 15 * time.Minute, MaxRepublish: 2, MaxRequests: 100, MaxImages: 1000},
	}
	h.svc.SetConcurrency(4)
	return h
}

// submit uploads n products of urls images each and returns the request.
func (h *harness) submit(n, urls int) batch.Request {
	h.t.Helper()
	ctx := context.Background()
	st := h.svc.NewUpload(ctx)
	r, err := h.svc.Submit(ctx, st, batch.Submission{Products: products(n, urls), Quality: 50}, "owner", "https://api.example")
	if err != nil {
		h.t.Fatalf("Submit: %v", err)
	}
	if len(h.msgs) != n*urls {
		h.t.Fatalf("%d messages published for %d images", len(h.msgs), n*urls)
	}
	return r
}

// deliver hands m to Compress as delivery attempt n.
func (h *harness) deliver(m queue.ImageMessage, attempt int) error {
	return h.svc.Compress(context.Background(), m, attempt)
}

// deliverAllAtOnce hands every published message to Compress at once, as
// delivery attempt n. A delivery that asks to be retried is delivered
// again, as Pub/Sub would, up to 5 times: when two images finish the
// request together, the one that did not record the completion waits for
// the other's hook (completion_pending).
func (h *harness) deliverAllAtOnce(attempt int) {
	h.t.Helper()
	var wg sync.WaitGroup
	for _, m := range h.msgs {
		wg.Go(func() {
			err := h.deliver(m, attempt)
			for a := attempt + 1; err != nil && fault.Retryable(err) && a <= attempt+5; a++ {
				time.Sleep(50 * time.Millisecond)
				err = h.deliver(m, a)
			}
			if err != nil {
				h.t.Errorf("%s: %v", m.Image.ID(), err)
			}
		})
	}
	wg.Wait()
}

// checkFinished asserts the request finished with these counts, every
// image has one result, and the hook ran once.
func (h *harness) checkFinished(r batch.Request, processed, failed int, status batch.Status) {
	h.t.Helper()
	c, _, _ := h.st.Counts(context.Background(), r)
	if c.Processed != processed || c.Failed != failed {
		h.t.Errorf("counts %+v, want %d processed and %d failed", c, processed, failed)
	}
	comp, ok := h.st.completion(r.ID)
	if !ok || comp.Status != status || !comp.HookFired {
		h.t.Errorf("completion %+v (found %v), want %s with the hook fired", comp, ok, status)
	}
	if n := h.hookRuns.Load(); n != 1 {
		h.t.Errorf("the completion hook ran %d times, want once", n)
	}
}

func TestEveryImageCountsOnceUnderDuplicateDeliveries(t *testing.T) {
	h := newHarness(t)
	r := h.submit(3, 2)
	for _, m := range h.msgs {
		for attempt := 1; attempt <= 2; attempt++ { // a redelivery after success
			if err := h.deliver(m, attempt); err != nil {
				t.Fatalf("delivery %d of %s: %v", attempt, m.Image.ID(), err)
			}
		}
	}
	h.checkFinished(r, 6, 0, batch.Completed)
	n := 0
	h.objects.Range(func(any, any) bool { n++; return true })
	if n != 6 {
		t.Errorf("%d objects stored, want 6", n)
	}
}

func TestConcurrentDeliveriesOfOneMessageCountOnce(t *testing.T) {
	h := newHarness(t)
	r := h.submit(4, 3)
	var wg sync.WaitGroup
	for _, m := range h.msgs {
		for range 3 { // Pub/Sub's concurrent duplicates, all first deliveries
			wg.Go(func() {
				if err := h.deliver(m, 1); err != nil {
					t.Errorf("%s: %v", m.Image.ID(), err)
				}
			})
		}
	}
	wg.Wait()
	h.checkFinished(r, 12, 0, batch.Completed)
}

// An instance dies after the image is committed but before it checks for
// completion: its delivery fails, the redelivery finds the result and
// finishes the request.
func TestCrashAfterCommitBeforeCompletionCheck(t *testing.T) {
	h := newHarness(t)
	r := h.submit(2, 1)
	if err := h.deliver(h.msgs[0], 1); err != nil {
		t.Fatal(err)
	}
	crashed := false
	h.st.BeforeShardFinished = func(string, int) error {
		if !crashed {
			crashed = true
			return fault.New(fault.Transient, "", "instance lost")
		}
		return nil
	}
	last := h.msgs[1]
	if err := h.deliver(last, 1); err == nil || !fault.Retryable(err) {
		t.Fatalf("the crashed delivery returned %v, want a retryable error", err)
	}
	if _, ok := h.st.result(r.ID, last.Image); !ok {
		t.Fatal("the image was not committed before the crash")
	}
	if _, ok := h.st.completion(r.ID); ok {
		t.Fatal("the request completed although the completion check crashed")
	}
	if err := h.deliver(last, 2); err != nil {
		t.Fatalf("redelivery: %v", err)
	}
	h.checkFinished(r, 2, 0, batch.Completed)
}

// The instance that won the completion dies before firing the hook. A
// redelivery within the grace period asks to be retried (the winner may
// still fire it); one after the grace period fires it.
func TestHookGracePeriod(t *testing.T) {
	h := newHarness(t)
	r := h.submit(1, 1)
	m := h.msgs[0]
	h.svc.Hook = &hook{RequestFinishedFn: func(context.Context, batch.Request, batch.Counts) error {
		return errors.New("instance lost while firing the hook")
	}}
	if err := h.deliver(m, 1); err == nil {
		t.Fatal("the delivery whose hook failed reported success")
	}
	h.svc.Hook = &hook{RequestFinishedFn: func(context.Context, batch.Request, batch.Counts) error {
		h.hookRuns.Add(1)
		return nil
	}}
	err := h.deliver(m, 2)
	if fault.ReasonOf(err) != "completion_pending" || h.hookRuns.Load() != 0 {
		t.Fatalf("within the grace period: %v, hook ran %d times; want completion_pending and no run", err, h.hookRuns.Load())
	}
	h.st.backdateCompletion(r.ID, 2*h.svc.HookGrace)
	if err := h.deliver(m, 3); err != nil {
		t.Fatalf("after the grace period: %v", err)
	}
	h.checkFinished(r, 1, 0, batch.Completed)
	if err := h.deliver(m, 4); err != nil || h.hookRuns.Load() != 1 {
		t.Errorf("a delivery after the hook fired: %v, hook ran %d times", err, h.hookRuns.Load())
	}
}

// A transiently failing image is retried by redelivery until its failed
// attempts reach the limit, then recorded failed with the last reason.
func TestAttemptsCountedUpToTheLimit(t *testing.T) {
	h := newHarness(t)
	h.svc.ProcessTimeout = time.Second // no time for a retry within a delivery
	var fetches atomic.Int32
	h.svc.Fetcher = &fetcher{FetchFn: func(context.Context, string, int64) ([]byte, error) {
		fetches.Add(1)
		return nil, fault.New(fault.Transient, "http_503", "the image host answered 503")
	}}
	r := h.submit(1, 1)
	m := h.msgs[0]
	for attempt := 1; attempt < h.svc.MaxDeliveryAttempts; attempt++ {
		if err := h.deliver(m, attempt); err == nil || !fault.Retryable(err) {
			t.Fatalf("attempt %d: %v, want a retryable error", attempt, err)
		}
		if _, done := h.st.result(r.ID, m.Image); done {
			t.Fatalf("recorded after %d attempts of %d", attempt, h.svc.MaxDeliveryAttempts)
		}
	}
	if err := h.deliver(m, h.svc.MaxDeliveryAttempts); err != nil {
		t.Fatalf("the last attempt: %v, want it recorded and acknowledged", err)
	}
	res, _ := h.st.result(r.ID, m.Image)
	if res.State != batch.ImageFailed || res.Reason != "http_503" || res.Attempt != h.svc.MaxDeliveryAttempts {
		t.Errorf("result %+v, want failed http_503 at attempt %d", res, h.svc.MaxDeliveryAttempts)
	}
	if n := fetches.Load(); n != int32(h.svc.MaxDeliveryAttempts) {
		t.Errorf("%d fetches for %d attempts", n, h.svc.MaxDeliveryAttempts)
	}
	h.checkFinished(r, 0, 1, batch.Failed)
}

// A permanent failure is recorded at once, never retried.
func TestPermanentFailureRecordedAtOnce(t *testing.T) {
	h := newHarness(t)
	h.svc.Fetcher = &fetcher{FetchFn: func(context.Context, string, int64) ([]byte, error) {
		return nil, fault.New(fault.Permanent, "http_404", "the image host answered 404")
	}}
	r := h.submit(1, 2)
	for _, m := range h.msgs {
		if err := h.deliver(m, 1); err != nil {
			t.Fatalf("%s: %v", m.Image.ID(), err)
		}
		if res, _ := h.st.result(r.ID, m.Image); res.Reason != "http_404" || res.Attempt > 1 {
			t.Errorf("%s: %+v", m.Image.ID(), res)
		}
	}
	h.checkFinished(r, 0, 2, batch.Failed)
}

// Images whose messages cannot be published are recorded publish_failed,
// so the request still finishes, with exact counts and one hook call.
func TestPublishFailuresRecorded(t *testing.T) {
	h := newHarness(t)
	var calls atomic.Int32
	h.svc.Publisher = &publisher{PublishAllFn: func(_ context.Context, msgs []queue.ImageMessage) ([]int, error) {
		calls.Add(1)
		failed := make([]int, 0, len(msgs))
		for i := range msgs {
			if msgs[i].Image.Product != 0 { // product 0's images get through
				failed = append(failed, i)
			} else {
				h.msgs = append(h.msgs, msgs[i])
			}
		}
		return failed, errors.New("pubsub: unavailable")
	}}
	ctx := context.Background()
	st := h.svc.NewUpload(ctx)
	r, err := h.svc.Submit(ctx, st, batch.Submission{Products: products(3, 2), Quality: 50}, "owner", "https://api.example")
	if err == nil || fault.ReasonOf(err) != "publish_failed" {
		t.Fatalf("Submit: %v, want a publish_failed error", err)
	}
	if calls.Load() < 2 {
		t.Errorf("publishing was tried %d times, want retries", calls.Load())
	}
	for p := 1; p < 3; p++ {
		for u := range 2 {
			res, ok := h.st.result(r.ID, batch.ImageRef{Product: p, URL: u})
			if !ok || res.State != batch.ImageFailed || res.Reason != "publish_failed" {
				t.Errorf("image %d-%d: %+v (recorded %v), want failed publish_failed", p, u, res, ok)
			}
		}
	}
	if _, ok := h.st.completion(r.ID); ok {
		t.Fatal("the request completed before its published images were processed")
	}
	for _, m := range h.msgs {
		if err := h.deliver(m, 1); err != nil {
			t.Fatal(err)
		}
	}
	h.checkFinished(r, 2, 4, batch.Completed)
}

// A dead-lettered image is recorded once, however often the dead letter
// arrives, and the request finishes.
func TestDeadLetteredImage(t *testing.T) {
	h := newHarness(t)
	r := h.submit(2, 1)
	if err := h.deliver(h.msgs[0], 1); err != nil {
		t.Fatal(err)
	}
	dead := h.msgs[1]
	for range 2 {
		if err := h.svc.DeadLetter(context.Background(), dead, 5); err != nil {
			t.Fatal(err)
		}
	}
	res, _ := h.st.result(r.ID, dead.Image)
	if res.State != batch.ImageFailed || res.Reason != "dead_lettered" || res.Attempt != 5 {
		t.Errorf("dead-lettered image: %+v", res)
	}
	// A late delivery of the same message changes nothing.
	if err := h.deliver(dead, 6); err != nil {
		t.Fatal(err)
	}
	h.checkFinished(r, 1, 1, batch.Completed)
}
